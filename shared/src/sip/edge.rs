//! What the SIP-over-WebSocket edge does with one message arriving from a browser.

use super::error::SipError;
use super::header::{Header, HeaderName};
use super::message::{looks_like_response, SipMessage};
use super::method::Method;
use super::typed::Contacts;
use super::uri::Uri;

/// Option tags the edge supports in Require / Proxy-Require (anything else gets 420):
/// `100rel` (RFC 3262), `gruu` (RFC 5627), `outbound` (RFC 5626), `path` (RFC 3327),
/// `replaces` (RFC 3891), `timer` (RFC 4028). These are what JsSIP and SIP.js send and what the
/// edge's registration relay and B2BUA pass through to the upstream.
pub const SUPPORTED_OPTION_TAGS: [&str; 6] =
    ["100rel", "gruu", "outbound", "path", "replaces", "timer"];

/// The edge's decision about one message from a browser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EdgeVerdict {
    /// Well-formed and acceptable: hand it to the SIP core.
    Accept(Box<SipMessage>),
    /// A request the edge answers with `status` and `reason` (build it with
    /// [`EdgeVerdict::response`]); it goes no further.
    Reject {
        /// The SIP status code to answer with.
        status: u16,
        /// The reason phrase.
        reason: String,
        /// Why, in detail.
        error: SipError,
        /// The request as far as it parsed, when that is enough to build a response.
        request: Option<Box<SipMessage>>,
    },
    /// A response (or an ACK, which is never answered) that is malformed or unacceptable:
    /// discard it and log `reason`.
    Drop {
        /// Why it was dropped.
        reason: String,
        /// The error behind it.
        error: SipError,
    },
}

impl EdgeVerdict {
    fn reject(error: SipError, request: Option<SipMessage>) -> Self {
        EdgeVerdict::Reject {
            status: error.status(),
            reason: error.reason(),
            error,
            request: request.map(Box::new),
        }
    }

    fn drop(error: SipError) -> Self {
        EdgeVerdict::Drop {
            reason: error.reason(),
            error,
        }
    }

    /// For a [`EdgeVerdict::Reject`] whose request parsed far enough (Via, From, To, Call-ID and
    /// CSeq present), the response to send, with the headers the status calls for
    /// (`Unsupported` for 420, `Accept` for 415, `Allow` for 501). `to_tag` is added to To.
    pub fn response(&self, to_tag: &str) -> Option<SipMessage> {
        let EdgeVerdict::Reject {
            status,
            reason,
            error,
            request: Some(req),
        } = self
        else {
            return None;
        };
        // A response needs these to be routable and matchable; without them say nothing.
        req.top_via().ok()?;
        req.from().ok()?;
        req.to().ok()?;
        req.call_id().ok()?;
        req.cseq().ok()?;
        let mut resp = req.response_to(*status, reason, Some(to_tag)).ok()?;
        let len = resp.headers.0.len().saturating_sub(1);
        let extra = match error {
            SipError::BadExtension { tags } => {
                Some(Header::new(HeaderName::Unsupported, tags.join(", ")))
            }
            SipError::UnsupportedMediaType => {
                Some(Header::new(HeaderName::Accept, "application/sdp"))
            }
            SipError::UnknownMethod => {
                let allow: Vec<&str> = Method::KNOWN.iter().map(Method::as_str).collect();
                Some(Header::new(HeaderName::Allow, allow.join(", ")))
            }
            _ => None,
        };
        if let Some(h) = extra {
            resp.headers.insert(len, h);
        }
        Some(resp)
    }
}

/// Decides what the edge does with `bytes`, one WebSocket message from a browser.
///
/// Never panics. Requests are checked in this order, the first failure deciding the answer:
/// size (513), framing and start line (400/505), the headers the edge reads (400: Via, From, To,
/// Call-ID, CSeq, Max-Forwards, Contact, Route, Record-Route, Content-Type, Expires, Supported,
/// Require, Proxy-Require, Authorization, Proxy-Authorization, Accept), Request-URI scheme (416),
/// method (501), CSeq method (400), Max-Forwards 0 (483: the edge forwards every request it
/// accepts, to the upstream or to another browser), Require/Proxy-Require (420), top Via branch
/// (400), a REGISTER's To scheme (400), the body type of INVITE/ACK/PRACK/UPDATE (415: the edge
/// rewrites SDP and nothing else), and an INVITE's Accept (406).
///
/// Responses and ACKs are never answered: any of the checks that apply to them (framing, the
/// headers above, a broadcast/multicast Via sent-by) makes the verdict [`EdgeVerdict::Drop`].
/// An empty or CRLF-only message (a keep-alive) is dropped too.
pub fn edge_verdict(bytes: &[u8]) -> EdgeVerdict {
    let response_like = looks_like_response(bytes);
    let msg = match SipMessage::parse(bytes) {
        Ok(m) => m,
        Err(e) if response_like || e == SipError::Empty => return EdgeVerdict::drop(e),
        Err(e) => {
            // An ACK cannot be answered, even when it is malformed.
            if bytes.starts_with(b"ACK ") {
                return EdgeVerdict::drop(e);
            }
            return EdgeVerdict::reject(e, None);
        }
    };
    if msg.is_request() {
        match check_request(&msg) {
            Ok(()) => EdgeVerdict::Accept(Box::new(msg)),
            Err(e) if msg.method() == Some(&Method::ACK) => EdgeVerdict::drop(e),
            Err(e) => EdgeVerdict::reject(e, Some(msg)),
        }
    } else {
        match check_response(&msg) {
            Ok(()) => EdgeVerdict::Accept(Box::new(msg)),
            Err(e) => EdgeVerdict::drop(e),
        }
    }
}

/// The checks shared by requests and responses: every header the edge reads must parse.
fn check_headers(msg: &SipMessage) -> Result<(), SipError> {
    let vias = msg.vias()?;
    if vias.is_empty() {
        return Err(SipError::MissingHeader { name: "Via" });
    }
    msg.from()?;
    msg.to()?;
    msg.call_id()?;
    msg.cseq()?;
    msg.max_forwards()?;
    msg.contacts()?;
    msg.routes()?;
    msg.record_routes()?;
    msg.content_type()?;
    msg.expires()?;
    msg.supported()?;
    msg.require()?;
    msg.proxy_require()?;
    msg.authorization()?;
    msg.proxy_authorization()?;
    msg.www_authenticate()?;
    msg.proxy_authenticate()?;
    msg.accept()?;
    Ok(())
}

fn check_request(msg: &SipMessage) -> Result<(), SipError> {
    check_headers(msg)?;
    let method = msg.method().ok_or(SipError::WrongKind)?;
    if !msg.request_uri().is_some_and(Uri::is_sip) {
        return Err(SipError::UnsupportedUriScheme);
    }
    if !method.is_known() {
        return Err(SipError::UnknownMethod);
    }
    let cseq = msg.cseq()?;
    // CANCEL and ACK carry their own method in CSeq too (RFC 3261 §9.1, §17.1.1.3).
    if &cseq.method != method {
        return Err(SipError::CseqMethodMismatch);
    }
    if msg.max_forwards()? == Some(0) {
        return Err(SipError::TooManyHops);
    }
    let mut unsupported: Vec<String> = Vec::new();
    for tag in msg.require()?.into_iter().chain(msg.proxy_require()?) {
        let known = SUPPORTED_OPTION_TAGS
            .iter()
            .any(|s| s.eq_ignore_ascii_case(tag));
        if !known && !unsupported.iter().any(|u| u == tag) {
            unsupported.push(tag.to_owned());
        }
    }
    // RFC 3261 §8.2.2.3: Require on CANCEL and ACK is not checked.
    if !unsupported.is_empty() && !matches!(method, Method::Ack | Method::Cancel) {
        return Err(SipError::BadExtension { tags: unsupported });
    }
    if msg.top_via()?.branch() == Some("z9hG4bK") {
        return Err(SipError::EmptyBranch);
    }
    if method == &Method::REGISTER {
        if !msg.to()?.uri.is_sip() {
            return Err(SipError::AorNotSip);
        }
        if let Contacts::Any = msg.contacts()? {
            // `Contact: *` is only valid with Expires: 0 (RFC 3261 §10.2.2).
            if msg.expires()? != Some(0) {
                return Err(SipError::BadHeader { name: "Contact" });
            }
        }
    }
    let offer_answer = matches!(
        method,
        Method::Invite | Method::Ack | Method::Prack | Method::Update
    );
    if offer_answer && !msg.body().is_empty() {
        let sdp = msg
            .content_type()?
            .is_some_and(|ct| ct.is("application", "sdp"));
        if !sdp {
            return Err(SipError::UnsupportedMediaType);
        }
    }
    if method == &Method::INVITE {
        if let Some(ranges) = msg.accept()? {
            let ok = ranges.iter().any(|m| {
                (m.ty == "*" && m.subtype == "*")
                    || (m.ty.eq_ignore_ascii_case("application")
                        && (m.subtype == "*" || m.subtype.eq_ignore_ascii_case("sdp")))
            });
            if !ok {
                return Err(SipError::NotAcceptable);
            }
        }
    }
    Ok(())
}

fn check_response(msg: &SipMessage) -> Result<(), SipError> {
    check_headers(msg)?;
    if msg
        .vias()?
        .iter()
        .any(|v| v.host.is_broadcast_or_multicast())
    {
        return Err(SipError::BroadcastVia);
    }
    Ok(())
}
