//! The one error type of the SDP module.

/// Why a session description (or one of its values) was rejected.
///
/// Every variant that comes from a description names the 1-based line it was found on, and says what
/// was wrong with it, so the message can be passed on in a SIP `488 Not Acceptable Here` warning or a log.
/// Values that hold secrets (ICE passwords, SDES keys) are never echoed back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SdpError {
    /// The input has no lines at all (or only blank ones).
    #[error("the session description is empty")]
    Empty,

    /// A line is not of the form `<letter>=<value>` with a lower-case ASCII letter.
    #[error("line {line}: expected `<letter>=<value>`, found {found:?}")]
    MalformedLine {
        /// 1-based line number.
        line: usize,
        /// The start of the offending line (at most 32 characters).
        found: String,
    },

    /// The bytes are not UTF-8 (SDP is UTF-8 text, RFC 8866 §5).
    #[error("line {line}: not valid UTF-8")]
    NotUtf8 {
        /// 1-based line number of the first invalid byte.
        line: usize,
    },

    /// A line contains a NUL or a carriage return that does not end it.
    #[error("line {line}: contains the control character {byte:#04x}")]
    ControlCharacter {
        /// 1-based line number.
        line: usize,
        /// The offending byte.
        byte: u8,
    },

    /// The first line is not `v=0`.
    #[error("line {line}: a session description must start with `v=0`")]
    BadVersion {
        /// 1-based line number.
        line: usize,
    },

    /// A line of a known type appears where RFC 8866 does not allow it (a second `o=`, an `o=` after
    /// the first `m=`, an `s=` that does not follow `o=` ...).
    #[error("line {line}: `{kind}=` {reason}")]
    Misplaced {
        /// 1-based line number.
        line: usize,
        /// The line's type letter.
        kind: char,
        /// Where it would have been allowed.
        reason: &'static str,
    },

    /// A mandatory line (`o=` or `s=`) is missing.
    #[error("the session description has no `{kind}=` line")]
    Missing {
        /// The missing line's type letter.
        kind: char,
    },

    /// A value does not match its grammar: a payload type above 127, a port that is not a number,
    /// a fingerprint that is not hex ...
    #[error("{}`{field}`: {reason}", at_line(*.line))]
    Invalid {
        /// 1-based line number, or `None` when a value was parsed on its own (e.g. a trickled candidate).
        line: Option<usize>,
        /// Which line type or attribute, e.g. `m=` or `a=rtpmap`.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

fn at_line(line: Option<usize>) -> String {
    match line {
        Some(n) => format!("line {n}: "),
        None => String::new(),
    }
}

impl SdpError {
    /// The 1-based line the error was found on, when there is one.
    pub fn line(&self) -> Option<usize> {
        match self {
            SdpError::Empty | SdpError::Missing { .. } => None,
            SdpError::MalformedLine { line, .. }
            | SdpError::ControlCharacter { line, .. }
            | SdpError::NotUtf8 { line }
            | SdpError::BadVersion { line }
            | SdpError::Misplaced { line, .. } => Some(*line),
            SdpError::Invalid { line, .. } => *line,
        }
    }

    pub(crate) fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        SdpError::Invalid {
            line: None,
            field,
            reason: reason.into(),
        }
    }

    /// Attaches a line number to an error that was produced without one.
    pub(crate) fn at(mut self, n: usize) -> Self {
        if let SdpError::Invalid { line, .. } = &mut self {
            if line.is_none() {
                *line = Some(n);
            }
        }
        self
    }
}

/// Short, char-boundary-safe excerpt of untrusted text for error messages.
pub(crate) fn excerpt(s: &str) -> String {
    s.chars().take(32).collect()
}
