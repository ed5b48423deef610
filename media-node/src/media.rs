//! The multiplexed media UDP socket. For now it only classifies, counts and drops datagrams;
//! the bridge (ICE-lite, DTLS-SRTP, RTP relay) will plug in where [`receive_loop`] drops them.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::net::UdpSocket;

use crate::demux::{self, PacketKind};

/// Largest datagram read; larger ones are truncated (and would be dropped by the bridge).
const MAX_DATAGRAM: usize = 2048;

/// Counters of datagrams seen on the media socket (shared with reports and tests).
#[derive(Debug, Default)]
pub struct MediaStats {
    packets: AtomicU64,
    bytes: AtomicU64,
    by_kind: [AtomicU64; PacketKind::ALL.len()],
}

impl MediaStats {
    /// Counts one datagram of `len` bytes of `kind`.
    pub fn record(&self, kind: PacketKind, len: usize) {
        self.packets.fetch_add(1, Ordering::Relaxed);
        self.bytes
            .fetch_add(u64::try_from(len).unwrap_or(u64::MAX), Ordering::Relaxed);
        self.by_kind[kind.index()].fetch_add(1, Ordering::Relaxed);
    }

    /// Datagrams received.
    pub fn packets(&self) -> u64 {
        self.packets.load(Ordering::Relaxed)
    }

    /// Bytes received.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Datagrams received of `kind`.
    pub fn packets_of(&self, kind: PacketKind) -> u64 {
        self.by_kind[kind.index()].load(Ordering::Relaxed)
    }
}

/// Receives datagrams on `socket` until `stop` completes, counting each in `stats` and
/// dropping it.
pub async fn receive_loop(socket: &UdpSocket, stats: &MediaStats, stop: impl Future<Output = ()>) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    tokio::pin!(stop);
    loop {
        tokio::select! {
            biased;
            () = &mut stop => break,
            received = socket.recv_from(&mut buf) => match received {
                Ok((len, peer)) => {
                    let kind = demux::classify(&buf[..len]);
                    stats.record(kind, len);
                    tracing::trace!(%peer, len, ?kind, "media datagram dropped (no bridge yet)");
                }
                // On Linux an ICMP error from an earlier send surfaces here; the socket stays usable.
                Err(e) => tracing::debug!(error = %e, "media socket receive error"),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[tokio::test]
    async fn received_datagrams_are_counted_by_kind_and_dropped() {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = socket.local_addr().unwrap();
        let stats = Arc::new(MediaStats::default());
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let task = {
            let stats = Arc::clone(&stats);
            tokio::spawn(async move {
                receive_loop(&socket, &stats, async {
                    let _ = stop_rx.await;
                })
                .await;
            })
        };

        let sender = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        sender.send_to(&[0x80, 0, 0, 1], addr).await.unwrap();
        sender
            .send_to(&[0x00, 0x01, 0, 0, 0, 0], addr)
            .await
            .unwrap();
        tokio::time::timeout(Duration::from_secs(10), async {
            while stats.packets() < 2 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .expect("datagrams were not counted");

        assert_eq!(stats.bytes(), 10);
        assert_eq!(stats.packets_of(PacketKind::Rtp), 1);
        assert_eq!(stats.packets_of(PacketKind::Stun), 1);
        stop_tx.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .expect("receive loop did not stop")
            .unwrap();
    }
}
