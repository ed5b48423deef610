//! Proxy transactions: one server side (the request received) and its client branches
//! (RFC 3261 §16), plus the messages a proxy builds itself (CANCEL, hop-by-hop ACK) and the
//! choice of the best final response (§16.7 step 6).

use super::io::Hop;
use crate::sip::{Header, HeaderName, Method, SipMessage};

/// What a transaction is doing beyond proxying.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TxKind {
    /// Proxying to branches.
    Proxy,
    /// Waiting for the shell's answer to a lookup of `user`; `fwd` is the request to forward.
    Lookup { id: u64, user: String },
    /// A *43 echo INVITE waiting for (or answered with) the echo bridge's SDP.
    Echo { id: u64 },
    /// A REGISTER relayed to the upstream.
    RelayRegister,
    /// A new INVITE waiting for the shell's bridge session (`fwd` is the request to forward).
    BridgeAlloc { id: u64 },
    /// A browser's re-offer in a bridged dialog, answered here from the renegotiation.
    BridgeReoffer { id: u64 },
}

/// One client branch.
#[derive(Debug, Clone)]
pub(crate) struct Branch {
    /// Our Via branch.
    pub branch: String,
    /// Where it went.
    pub target: Hop,
    /// The request as sent (with our Via on top).
    pub request: SipMessage,
    /// Any response (100 included) received.
    pub answered: bool,
    /// The final status, received or synthesized (408 Timer C, 487 cancel, 480 flow gone).
    pub final_status: Option<u16>,
    /// The final response received (our Via popped), `None` if synthesized.
    pub final_response: Option<SipMessage>,
    /// Timer C / Timer F / cancel timeout.
    pub timer: Option<u64>,
    /// A CANCEL was sent.
    pub cancel_sent: bool,
    /// We ACKed its non-2xx final.
    pub acked: bool,
}

impl Branch {
    pub fn is_pending(&self) -> bool {
        self.final_status.is_none()
    }
}

/// One proxy transaction.
#[derive(Debug, Clone)]
pub(crate) struct Tx {
    /// Who sent the request.
    pub source: Hop,
    /// The matching key of the request (source + its top Via branch).
    pub key: (Hop, String),
    /// The method.
    pub method: Method,
    /// The request as received (its Vias intact): responses are built from it.
    pub request: SipMessage,
    /// The request to forward, while the transaction waits for a lookup.
    pub fwd: Option<SipMessage>,
    /// The To-tag of every response this proxy generates in this transaction.
    pub to_tag: String,
    /// What it is.
    pub kind: TxKind,
    /// A call through a media bridge: responses go back through it.
    pub bridged: bool,
    /// The branches.
    pub branches: Vec<Branch>,
    /// The last response sent back (resent if the request is retransmitted).
    pub last_response: Option<SipMessage>,
    /// A final response was sent back.
    pub final_sent: bool,
    /// The final sent back was a 2xx.
    pub got_2xx: bool,
    /// The request was cancelled.
    pub cancelled: bool,
    /// The source is gone (its browser connection or the upstream closed).
    pub source_gone: bool,
    /// Deadline of a lookup / echo answer.
    pub pending_until: Option<u64>,
    /// When the finished transaction is forgotten.
    pub linger_until: Option<u64>,
}

impl Tx {
    pub fn is_invite(&self) -> bool {
        self.method == Method::INVITE
    }

    pub fn all_done(&self) -> bool {
        self.branches.iter().all(|b| !b.is_pending())
    }
}

/// The CANCEL for a branch (RFC 3261 §9.1): same Request-URI, Call-ID, From, To, CSeq number
/// and Route as the request, a single Via equal to its top Via.
pub(crate) fn build_cancel(request: &SipMessage) -> Option<SipMessage> {
    build_like(request, Method::CANCEL, None)
}

/// The ACK for a non-2xx final response to a branch's INVITE (RFC 3261 §17.1.1.3): the To of
/// the response (with its tag).
pub(crate) fn build_ack(request: &SipMessage, response: &SipMessage) -> Option<SipMessage> {
    let to = response.headers.get(&HeaderName::To)?.to_owned();
    build_like(request, Method::ACK, Some(to))
}

fn build_like(request: &SipMessage, method: Method, to: Option<String>) -> Option<SipMessage> {
    let uri = request.request_uri()?.clone();
    let via = request.top_via().ok()?;
    let cseq = request.cseq().ok()?;
    let mut m = SipMessage::new_request(method.clone(), uri);
    m.headers
        .push(Header::new(HeaderName::Via, via.to_string()));
    for h in request.headers.iter() {
        if h.name == HeaderName::Route {
            m.headers.push(h.clone());
        }
    }
    m.headers.push(Header::new(HeaderName::MaxForwards, "70"));
    m.headers.push(Header::new(
        HeaderName::From,
        request.headers.get(&HeaderName::From)?,
    ));
    let to = match to {
        Some(t) => t,
        None => request.headers.get(&HeaderName::To)?.to_owned(),
    };
    m.headers.push(Header::new(HeaderName::To, to));
    m.headers
        .push(Header::new(HeaderName::CallId, request.call_id().ok()?));
    m.headers.push(Header::new(
        HeaderName::CSeq,
        format!("{} {}", cseq.seq, method),
    ));
    m.headers.push(Header::new(HeaderName::ContentLength, "0"));
    Some(m)
}

/// Index of the best final response among the branches (RFC 3261 §16.7 step 6): a 6xx wins,
/// else the lowest class; the first received wins within a class. `None` if no branch has one.
pub(crate) fn best_branch(branches: &[Branch]) -> Option<usize> {
    let rank = |s: u16| -> u16 {
        if s >= 600 {
            0
        } else {
            s / 100
        }
    };
    branches
        .iter()
        .enumerate()
        .filter_map(|(i, b)| b.final_status.map(|s| (i, s)))
        .min_by_key(|(i, s)| (rank(*s), *i))
        .map(|(i, _)| i)
}

/// Adds to `chosen` (a 401/407) the challenges of every other 401/407 (RFC 3261 §16.7 step 7).
pub(crate) fn merge_challenges(chosen: &mut SipMessage, branches: &[Branch], skip: usize) {
    for (i, b) in branches.iter().enumerate() {
        if i == skip {
            continue;
        }
        let Some(r) = &b.final_response else { continue };
        if !matches!(r.status(), Some(401 | 407)) {
            continue;
        }
        for h in r.headers.iter() {
            if matches!(
                h.name,
                HeaderName::WwwAuthenticate | HeaderName::ProxyAuthenticate
            ) {
                insert_before_length(chosen, h.clone());
            }
        }
    }
}

/// Inserts a header before Content-Length (or at the end).
pub(crate) fn insert_before_length(msg: &mut SipMessage, header: Header) {
    match msg.headers.position(&HeaderName::ContentLength) {
        Some(p) => msg.headers.insert(p, header),
        None => msg.headers.push(header),
    }
}
