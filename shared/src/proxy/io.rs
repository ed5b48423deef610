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
