//! The one error type of the SIP module, and the SIP status that answers each variant.

/// Why a SIP message could not be parsed or is not acceptable to the edge.
///
/// Each variant documents the response the edge sends when the message is a request
/// ([`SipError::status`] and [`SipError::reason`]). A response, or an `ACK`, that fails is never
/// answered: it is dropped, and the same text ([`SipError::reason`]) is the reason logged.
///
/// The reason phrases are fixed texts chosen by this module: they never echo bytes from the
/// message, so they are always safe to put on a status line or in a log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SipError {
    /// The message is empty or only CRLFs (a keep-alive, RFC 5626 §3.5.1): nothing to answer.
    /// Status 400 "Empty Message" if anything must be said; the edge drops it.
    #[error("Empty Message")]
    Empty,

    /// The message is longer than [`MAX_MESSAGE_LEN`](super::MAX_MESSAGE_LEN) bytes.
    /// Answered with 513 "Message Too Large".
    #[error("Message Too Large")]
    TooLarge {
        /// The message's length in bytes.
        len: usize,
    },

    /// The header section (start line and headers) is not valid UTF-8 (RFC 3261 §7.3.1 allows
    /// only UTF-8 there). Answered with 400 "Header Section Not UTF-8".
    #[error("Header Section Not UTF-8")]
    NotUtf8,

    /// No empty line (CRLF CRLF) ends the header section. Over WebSocket one message is one SIP
    /// message (RFC 7118 §5), so this is a framing error, not "wait for more".
    /// Answered with 400 "Missing Empty Line After Headers".
    #[error("Missing Empty Line After Headers")]
    MissingHeaderEnd,

    /// A line in the header section ends with a bare CR or LF instead of CRLF.
    /// Answered with 400 "Malformed Line Ending".
    #[error("Malformed Line Ending")]
    BadLineEnding,

    /// The Request-Line is malformed: not exactly `Method SP Request-URI SP SIP-Version`
    /// (extra or trailing spaces included, RFC 4475 §3.1.2.9 and §3.1.2.10), or the method is not
    /// a token. Answered with 400 "Malformed Request-Line".
    #[error("Malformed Request-Line")]
    BadRequestLine,

    /// The Status-Line of a response is malformed (status code not three digits in 100..=699).
    /// Responses are dropped, never answered (status 400 for completeness).
    #[error("Malformed Status-Line")]
    BadStatusLine,

    /// The SIP-Version is well-formed but not `SIP/2.0`.
    /// Answered with 505 "Version Not Supported".
    #[error("Version Not Supported")]
    VersionNotSupported,

    /// The Request-URI does not parse, or carries `?headers` (not allowed in a Request-URI,
    /// RFC 3261 §19.1.1; RFC 4475 §3.1.2.11). Answered with 400 "Invalid Request-URI".
    #[error("Invalid Request-URI")]
    BadRequestUri,

    /// A header line is not `name HCOLON value` (no colon, a name that is not a token, or a
    /// continuation line with nothing to continue). Answered with 400 "Malformed Header Line".
    #[error("Malformed Header Line")]
    BadHeaderLine,

    /// A header the edge reads has a value that does not follow its grammar (for example stray
    /// `;`/`,` in Via or Contact, an unquoted display name with a comma, spaces inside `<...>`,
    /// a CSeq number above 2^32-1). Answered with 400 "Invalid NAME Header".
    #[error("Invalid {name} Header")]
    BadHeader {
        /// The header's canonical name, e.g. `"Via"`.
        name: &'static str,
    },

    /// A mandatory header is missing (Via, From, To, Call-ID or CSeq; RFC 3261 §8.1.1).
    /// Answered with 400 "Missing NAME Header".
    #[error("Missing {name} Header")]
    MissingHeader {
        /// The header's canonical name.
        name: &'static str,
    },

    /// A header that must appear once appears more than once (RFC 4475 §3.3.8).
    /// Answered with 400 "Multiple NAME Headers".
    #[error("Multiple {name} Headers")]
    DuplicateHeader {
        /// The header's canonical name.
        name: &'static str,
    },

    /// Content-Length is larger than the body received (RFC 4475 §3.1.2.2). Over WebSocket the
    /// rest will never come. Answered with 400 "Content-Length Larger Than Body".
    #[error("Content-Length Larger Than Body")]
    ContentLengthTooLarge {
        /// The value of Content-Length.
        declared: u32,
        /// The bytes actually present after the header section.
        actual: usize,
    },

    /// The CSeq method differs from the Request-Line method (RFC 3261 §8.1.1.5).
    /// Answered with 400 "CSeq Method Does Not Match Request".
    #[error("CSeq Method Does Not Match Request")]
    CseqMethodMismatch,

    /// The top Via's branch is only the magic cookie `z9hG4bK`, so it names no transaction
    /// (RFC 4475 §3.2.1). Answered with 400 "Via Branch Has No Transaction Id".
    #[error("Via Branch Has No Transaction Id")]
    EmptyBranch,

    /// A REGISTER whose To (the address-of-record) is not a `sip:`/`sips:` URI (RFC 3261 §10.3
    /// step 3; RFC 4475 §3.3.4). Answered with 400 "Address-Of-Record Must Be A SIP URI".
    #[error("Address-Of-Record Must Be A SIP URI")]
    AorNotSip,

    /// The Request-URI's scheme is not `sip` or `sips` (RFC 4475 §3.3.2, §3.3.3).
    /// Answered with 416 "Unsupported URI Scheme".
    #[error("Unsupported URI Scheme")]
    UnsupportedUriScheme,

    /// Require or Proxy-Require lists option tags the edge does not support (RFC 3261 §8.2.2.3).
    /// Answered with 420 "Bad Extension", with an `Unsupported` header listing `tags`.
    #[error("Bad Extension")]
    BadExtension {
        /// The unsupported option tags, as received.
        tags: Vec<String>,
    },

    /// Max-Forwards is 0 on a request the edge would forward (RFC 3261 §16.3 step 2).
    /// Answered with 483 "Too Many Hops".
    #[error("Too Many Hops")]
    TooManyHops,

    /// The method is not one the edge implements (RFC 3261 §8.2.1).
    /// Answered with 501 "Not Implemented" (with an `Allow` header).
    #[error("Not Implemented")]
    UnknownMethod,

    /// The body of an offer/answer request is not `application/sdp` (RFC 3261 §8.2.3).
    /// Answered with 415 "Unsupported Media Type", with `Accept: application/sdp`.
    #[error("Unsupported Media Type")]
    UnsupportedMediaType,

    /// An INVITE's Accept header excludes `application/sdp`, the only body the edge can answer
    /// with (RFC 3261 §21.4.7; RFC 4475 §3.3.15). Answered with 406 "Not Acceptable".
    #[error("Not Acceptable")]
    NotAcceptable,

    /// A response's Via names a broadcast or multicast sent-by (RFC 4475 §3.3.10). Only ever
    /// dropped (status 400 for completeness).
    #[error("Via Sent-By Is A Broadcast Address")]
    BroadcastVia,

    /// The message is a response where a request was needed, or a request where a response was
    /// (for example building a response to a response). Status 500 "Not A Request" / "Not A Response":
    /// a programming error on the caller's side, never caused by a browser.
    #[error("Wrong Message Kind")]
    WrongKind,
}

impl SipError {
    /// The SIP status code the edge answers a request failing this way with.
    pub fn status(&self) -> u16 {
        match self {
            SipError::TooLarge { .. } => 513,
            SipError::VersionNotSupported => 505,
            SipError::UnsupportedUriScheme => 416,
            SipError::BadExtension { .. } => 420,
            SipError::TooManyHops => 483,
            SipError::UnknownMethod => 501,
            SipError::UnsupportedMediaType => 415,
            SipError::NotAcceptable => 406,
            SipError::WrongKind => 500,
            _ => 400,
        }
    }

    /// The reason phrase for the status line (the same text as `Display`).
    pub fn reason(&self) -> String {
        self.to_string()
    }
}
