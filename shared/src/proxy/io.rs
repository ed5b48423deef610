//! What goes into an account core and what comes out of it.

use serde::{Deserialize, Serialize};

use super::bindings::StoredBinding;
use crate::sip::SipMessage;

/// An opaque id of a browser connection object (one WebSocket, one RFC 5626 flow).
pub type ConnId = String;

/// Something that happened, fed to [`AccountCore::handle`](super::AccountCore::handle).
#[derive(Debug, Clone)]
pub enum Event {
    /// A browser connection of this account sent `msg` (already through
    /// [`edge_verdict`](crate::sip::edge_verdict) and the tenant check).
    FromBrowser {
        /// The connection it came over.
        conn: ConnId,
        /// The message.
        msg: SipMessage,
    },
    /// Another account object of the same tenant sent `msg`.
    FromAccount {
        /// The user part of that account.
        user: String,
        /// The message.
        msg: SipMessage,
    },
    /// `msg` came over this account's upstream connection.
    FromUpstream {
        /// The message.
        msg: SipMessage,
    },
    /// A browser connection closed: its bindings go (RFC 5626 flow failure), its pending
    /// transactions fail.
    ConnectionClosed {
        /// The connection.
        conn: ConnId,
    },
    /// The connection to the upstream dropped: transactions over it fail, and in relay mode the
    /// bindings made through it are gone until the browsers register again.
    UpstreamLost,
    /// The answer to [`Output::Lookup`].
    LookupResult {
        /// The id of the lookup.
        id: u64,
        /// Whether the user is a local account of this tenant.
        is_account: bool,
    },
    /// The answer to [`Output::Echo`]: the echo bridge's SDP answer, or the status to fail with.
    EchoAnswer {
        /// The id of the echo request.
        id: u64,
        /// The SDP answer, or a SIP status (300..=699) and reason phrase.
        answer: Result<String, (u16, String)>,
    },
    /// The answer to [`Output::BridgeOffer`] (a call from a browser to the upstream): the
    /// allocated bridge session and the plain RTP offer to send to the upstream, or a SIP status
    /// (300..=699) and reason phrase to answer the browser with (e.g. 503 "No Media Node
    /// Available"). Nothing goes to the upstream on `Err`.
    BridgeReady {
        /// The id of the [`Output::BridgeOffer`].
        id: u64,
        /// The session and the upstream offer, or the failure.
        result: Result<BridgeOffer, (u16, String)>,
    },
    /// The answer to [`Output::BridgeAnswer`]: the final SDP answer for the browser, or a
    /// failure (the call is then torn down: the browser gets that status, the upstream a CANCEL
    /// or an ACK and BYE, and the session a [`Output::BridgeRelease`]).
    BridgeAnswered {
        /// The id of the [`Output::BridgeAnswer`].
        id: u64,
        /// The browser answer, or a SIP status and reason phrase.
        result: Result<String, (u16, String)>,
    },
    /// The answer to [`Output::BridgeOfferFromUpstream`] (a call from the upstream to the
    /// browsers): the session and the WebRTC offer to fork to the browsers, or a status
    /// (e.g. 488 or 503) to answer the upstream with.
    BridgeReadyFromUpstream {
        /// The id of the [`Output::BridgeOfferFromUpstream`].
        id: u64,
        /// The session and the browser offer, or the failure.
        result: Result<BridgeBrowserOffer, (u16, String)>,
    },
    /// The answer to [`Output::BridgeAnswerFromBrowser`]: the SDP answer for the upstream, or a
    /// failure (the upstream then gets that status, the answering browser an ACK and BYE, and
    /// the session a [`Output::BridgeRelease`]).
    BridgeAnsweredForUpstream {
        /// The id of the [`Output::BridgeAnswerFromBrowser`].
        id: u64,
        /// The upstream answer, or a SIP status and reason phrase.
        result: Result<String, (u16, String)>,
    },
    /// The answer to [`Output::BridgeRenegotiate`]: the SDP answer for the browser's new offer
    /// (the core answers the re-INVITE/UPDATE 200 with it), or a status to refuse it with (the
    /// call goes on with the previous media).
    BridgeRenegotiated {
        /// The id of the [`Output::BridgeRenegotiate`].
        id: u64,
        /// The browser answer, or a SIP status and reason phrase.
        result: Result<String, (u16, String)>,
    },
    /// The answer to [`Output::BridgeUpstreamReoffer`]: the node's answer for the upstream's new
    /// offer (the core answers the re-INVITE/UPDATE 200 with it, its direction mirroring the
    /// offer's and its `o=` version bumped), or a status to refuse it with (the call goes on
    /// with the previous media).
    BridgeUpstreamReoffered {
        /// The id of the [`Output::BridgeUpstreamReoffer`].
        id: u64,
        /// The upstream answer, or a SIP status and reason phrase.
        result: Result<String, (u16, String)>,
    },
    /// The answer to [`Output::CheckMedia`]: how the media session looked. A session the node
    /// no longer knows ([`MediaHealth::Gone`]) ends its call at once; one whose node could not
    /// be reached ([`MediaHealth::Unreachable`]) `limits.media_check_failures` times in a row
    /// ends it too. The call ends for both sides with a BYE (an established call) or a CANCEL
    /// and a 503 (one being set up), carrying `Reason: SIP;cause=503;text="Media Node Lost"`
    /// (RFC 3326), and the session is released. A shell that learns otherwise that a session is
    /// gone (a control request about it answered "unknown session") may send this unasked.
    MediaChecked {
        /// The session of the [`Output::CheckMedia`].
        session: String,
        /// What the check found.
        health: MediaHealth,
    },
}

/// What a check of a media session found ([`Event::MediaChecked`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaHealth {
    /// The node answered and still carries the session.
    Alive,
    /// The node answered that it does not know the session (it restarted, or released it,
    /// e.g. for lack of media).
    Gone,
    /// The node could not be reached: a transport failure, a timeout, or an answer that is not
    /// the control protocol's. Possibly a blip; counted.
    Unreachable,
}

/// A bridge session allocated from a browser's offer ([`Event::BridgeReady`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeOffer {
    /// The media node's session id (given back in later outputs about this call).
    pub session: String,
    /// The plain RTP/AVP offer for the upstream (replaces the browser's offer in the INVITE).
    pub upstream_offer: String,
}

/// A bridge session allocated from the upstream's offer ([`Event::BridgeReadyFromUpstream`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeBrowserOffer {
    /// The media node's session id.
    pub session: String,
    /// The WebRTC (ICE/DTLS-SRTP) offer for the browsers (replaces the upstream's offer in the
    /// INVITE forked to them).
    pub browser_offer: String,
}

/// Something the shell must do, from [`AccountCore::poll_output`](super::AccountCore::poll_output).
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Send `msg` over that browser connection.
    ToBrowser {
        /// The connection.
        conn: ConnId,
        /// The message.
        msg: SipMessage,
    },
    /// Deliver `msg` to that account object (same tenant), as its [`Event::FromAccount`] with
    /// this account's user.
    ToAccount {
        /// The user part of the target account.
        user: String,
        /// The message.
        msg: SipMessage,
    },
    /// Send `msg` over this account's upstream connection (connecting first if needed).
    ToUpstream {
        /// The message.
        msg: SipMessage,
    },
    /// Is `user` a local account of this tenant? Answer with [`Event::LookupResult`].
    Lookup {
        /// The id to answer with.
        id: u64,
        /// The user part asked about.
        user: String,
    },
    /// *43: get an echo bridge's SDP answer for `offer` (the media node loops audio back);
    /// answer with [`Event::EchoAnswer`].
    Echo {
        /// The id to answer with.
        id: u64,
        /// The call's Call-ID (to release it later with [`Output::EchoEnded`]).
        call_id: String,
        /// The browser's SDP offer.
        offer: String,
    },
    /// Release the echo bridge of that call.
    EchoEnded {
        /// The call's Call-ID.
        call_id: String,
    },
    /// A browser calls the upstream: allocate a bridge session for the browser's WebRTC offer
    /// and answer with [`Event::BridgeReady`] (the session and the plain RTP offer for the
    /// upstream: the media node's `AllocateRequest` in bridge mode). The INVITE waits.
    BridgeOffer {
        /// The id to answer with.
        id: u64,
        /// The call's Call-ID (logs and stats).
        call_id: String,
        /// The browser's SDP offer.
        browser_offer: String,
    },
    /// The upstream answered (a 2xx, or an 18x with SDP) the offer of that session: turn its
    /// answer into the browser's (the media node's `ApplyAnswer`), and answer with
    /// [`Event::BridgeAnswered`]. The response, and any after it, wait.
    BridgeAnswer {
        /// The id to answer with.
        id: u64,
        /// The session of [`Event::BridgeReady`].
        session: String,
        /// The upstream's SDP answer.
        upstream_answer: String,
    },
    /// The upstream calls the browsers with a plain RTP offer: allocate a bridge session for it
    /// and answer with [`Event::BridgeReadyFromUpstream`] (the session and a WebRTC offer for
    /// the browsers). The INVITE waits. A shell whose media nodes cannot do this answers
    /// `Err((488, ..))` or `Err((503, ..))`.
    BridgeOfferFromUpstream {
        /// The id to answer with.
        id: u64,
        /// The call's Call-ID.
        call_id: String,
        /// The upstream's SDP offer.
        upstream_offer: String,
    },
    /// A browser answered (2xx) the offer of that session: turn its answer into the upstream's,
    /// and answer with [`Event::BridgeAnsweredForUpstream`]. The 2xx waits.
    BridgeAnswerFromBrowser {
        /// The id to answer with.
        id: u64,
        /// The session of [`Event::BridgeReadyFromUpstream`].
        session: String,
        /// The browser's SDP answer.
        browser_answer: String,
    },
    /// The browser of a bridged call sent a new offer (re-INVITE or UPDATE: hold, resume, ICE
    /// restart): renegotiate the browser side of the session (the media node's `Renegotiate`)
    /// and answer with [`Event::BridgeRenegotiated`]. When the offer changes the direction
    /// (hold, resume) the core then re-INVITEs the upstream itself; nothing more is asked.
    BridgeRenegotiate {
        /// The id to answer with.
        id: u64,
        /// The session.
        session: String,
        /// The browser's new SDP offer.
        browser_offer: String,
    },
    /// The upstream of a bridged call sent a new offer that differs from its last one (a new
    /// address or port, other codecs, hold or resume): apply it to the upstream side of the
    /// session (the media node's `UpstreamReoffer`) and answer with
    /// [`Event::BridgeUpstreamReoffered`]. A session refresh (the same SDP again) is answered
    /// by the core without asking.
    BridgeUpstreamReoffer {
        /// The id to answer with.
        id: u64,
        /// The session.
        session: String,
        /// The upstream's new SDP offer.
        upstream_offer: String,
    },
    /// Is this media session still there? Asked every `limits.media_check_interval_ms` for each
    /// allocated bridge session while there are any (never when there are none); answer with
    /// [`Event::MediaChecked`] (the media node's `GET /v1/sessions/{id}/stats` does), within
    /// the interval.
    CheckMedia {
        /// The session.
        session: String,
    },
    /// The bridged call is over (BYE, failure, cancel, timeout, a leg lost, its media lost):
    /// release the session. Sent once per session.
    BridgeRelease {
        /// The session.
        session: String,
    },
    /// Save these bindings (all of them, replacing what was saved); give them back to
    /// [`AccountCore::restore`](super::AccountCore::restore) after an eviction.
    PersistBindings(Vec<StoredBinding>),
    /// The connection authenticated as this account (mark it so its requests come here).
    Registered {
        /// The connection.
        conn: ConnId,
    },
}

/// Where a message came from or goes to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub(crate) enum Hop {
    /// A browser connection of this account.
    Browser(ConnId),
    /// Another account object of the tenant.
    Account(String),
    /// The upstream connection.
    Upstream,
}

impl Hop {
    pub(crate) fn output(&self, msg: SipMessage) -> Output {
        match self {
            Hop::Browser(conn) => Output::ToBrowser {
                conn: conn.clone(),
                msg,
            },
            Hop::Account(user) => Output::ToAccount {
                user: user.clone(),
                msg,
            },
            Hop::Upstream => Output::ToUpstream { msg },
        }
    }
}
