//! Two-stage shutdown: the first SIGTERM/SIGINT starts a graceful drain, the second one
//! means "now".

use std::io;

use tokio::sync::{mpsc, oneshot};

/// A shutdown signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShutdownSignal {
    /// SIGTERM (systemd stop, `kill`).
    Term,
    /// SIGINT (Ctrl-C).
    Int,
}

impl ShutdownSignal {
    /// The signal's name, for logs.
    pub fn name(self) -> &'static str {
        match self {
            Self::Term => "SIGTERM",
            Self::Int => "SIGINT",
        }
    }

    /// The conventional exit status of a process ended by this signal (128 + number).
    pub fn exit_code(self) -> u8 {
        match self {
            Self::Term => 128 + 15,
            Self::Int => 128 + 2,
        }
    }
}

/// Installs the SIGTERM and SIGINT handlers and returns the stream of signals received.
///
/// Call it inside a tokio runtime *before* announcing readiness: from then on these signals no
/// longer kill the process by default.
#[cfg(unix)]
pub fn install() -> io::Result<mpsc::UnboundedReceiver<ShutdownSignal>> {
    use tokio::signal::unix::{signal, SignalKind};

    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let received = tokio::select! {
                Some(()) = term.recv() => ShutdownSignal::Term,
                Some(()) = int.recv() => ShutdownSignal::Int,
                else => break,
            };
            if tx.send(received).is_err() {
                break;
            }
        }
    });
    Ok(rx)
}

/// Installs the Ctrl-C handler and returns the stream of signals received.
#[cfg(not(unix))]
pub fn install() -> io::Result<mpsc::UnboundedReceiver<ShutdownSignal>> {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while tokio::signal::ctrl_c().await.is_ok() {
            if tx.send(ShutdownSignal::Int).is_err() {
                break;
            }
        }
    });
    Ok(rx)
}

/// Sends the first signal of `signals` to `first` (start draining) and returns the second
/// one (stop now), or `None` if the stream ends first.
pub async fn two_stage(
    mut signals: mpsc::UnboundedReceiver<ShutdownSignal>,
    first: oneshot::Sender<ShutdownSignal>,
) -> Option<ShutdownSignal> {
    let initial = signals.recv().await?;
    let _ = first.send(initial);
    signals.recv().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn first_signal_starts_the_drain_and_second_one_is_returned() {
        let (tx, rx) = mpsc::unbounded_channel();
        let (first_tx, mut first_rx) = oneshot::channel();
        let stages = tokio::spawn(two_stage(rx, first_tx));

        tokio::task::yield_now().await;
        assert!(
            first_rx.try_recv().is_err(),
            "drain started without a signal"
        );
        tx.send(ShutdownSignal::Term).unwrap();
        assert_eq!(first_rx.await.unwrap(), ShutdownSignal::Term);
        tx.send(ShutdownSignal::Int).unwrap();
        assert_eq!(stages.await.unwrap(), Some(ShutdownSignal::Int));
    }

    #[tokio::test]
    async fn signal_stream_ending_starts_nothing() {
        let (tx, rx) = mpsc::unbounded_channel::<ShutdownSignal>();
        let (first_tx, first_rx) = oneshot::channel();
        drop(tx);
        assert_eq!(two_stage(rx, first_tx).await, None);
        assert!(first_rx.await.is_err());
    }

    #[test]
    fn exit_codes_follow_the_shell_convention() {
        assert_eq!(ShutdownSignal::Term.exit_code(), 143);
        assert_eq!(ShutdownSignal::Int.exit_code(), 130);
    }
}
