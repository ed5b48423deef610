//! The one error type of the registrar, and the SIP status each variant is answered with.

/// Why a REGISTER was refused. Nothing changes in the [`Bindings`](super::Bindings) when one
/// is returned (RFC 3261 §10.3: updates are committed all or nothing).
///
/// Reason phrases are fixed texts that never echo the request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RegistrarError {
    /// A contact asks for a non-zero expiry shorter than the minimum (RFC 3261 §10.3 step 7).
    /// Answered with 423 "Interval Too Brief" and `Min-Expires: min_expires`.
    #[error("Interval Too Brief")]
    IntervalTooBrief {
        /// The shortest expiry accepted, in seconds: the `Min-Expires` header value.
        min_expires: u32,
    },

    /// A binding with the same Call-ID has a CSeq equal to or above the request's: the request
    /// is a retransmission or arrived out of order (RFC 3261 §10.3 steps 6 and 7: "the update
    /// MUST be aborted and the request fails"). Answered with 500 "Server Internal Error"
    /// (the status RFC 3261 implementations use for an out-of-order request).
    #[error("Out Of Order CSeq")]
    OutOfOrder,

    /// `Contact: *` with an `Expires` other than 0 (or none), or mixed with other contacts
    /// (RFC 3261 §10.3 step 6). Answered with 400 "Bad Request".
    #[error("Invalid Wildcard Contact")]
    InvalidWildcard,

    /// More than one contact carries both `+sip.instance` and `reg-id` (RFC 5626 §6: one flow
    /// per REGISTER). Answered with 400 "Bad Request".
    #[error("Multiple Outbound Contacts")]
    MultipleRegIds,

    /// A contact URI is empty. Answered with 400 "Bad Request".
    #[error("Empty Contact URI")]
    EmptyContact,

    /// Accepting the request would leave more bindings than allowed for the address-of-record.
    /// Answered with 403 "Forbidden": the existing registrations are kept (none is evicted to
    /// make room), and the client should not retry the same request.
    #[error("Too Many Registrations")]
    TooManyBindings {
        /// The limit per address-of-record.
        max: usize,
    },
}

impl RegistrarError {
    /// The SIP status the registrar answers with.
    pub fn status(&self) -> u16 {
        match self {
            RegistrarError::IntervalTooBrief { .. } => 423,
            RegistrarError::OutOfOrder => 500,
            RegistrarError::InvalidWildcard
            | RegistrarError::MultipleRegIds
            | RegistrarError::EmptyContact => 400,
            RegistrarError::TooManyBindings { .. } => 403,
        }
    }

    /// The reason phrase for the status line (fixed text, safe to send and log).
    pub fn reason(&self) -> &'static str {
        match self {
            RegistrarError::IntervalTooBrief { .. } => "Interval Too Brief",
            RegistrarError::OutOfOrder => "Server Internal Error",
            RegistrarError::TooManyBindings { .. } => "Forbidden",
            _ => "Bad Request",
        }
    }

    /// The `Min-Expires` header value to send, for a 423.
    pub fn min_expires(&self) -> Option<u32> {
        match self {
            RegistrarError::IntervalTooBrief { min_expires } => Some(*min_expires),
            _ => None,
        }
    }
}
