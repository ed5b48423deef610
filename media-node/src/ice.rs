//! ICE-lite for the lean audio-only WebRTC leg: the node's side of one call, sans-IO, no
//! allocation per packet.
//!
//! # What it implements
//!
//! - **A lite agent** (RFC 8445 §2.5): the node has one host candidate on its media port, sends
//!   no connectivity checks and only answers the browser's. With a full peer (every browser) a
//!   lite agent is always **controlled** (RFC 8445 §6.1.1); the browser nominates.
//! - **Answering checks** (RFC 8445 §7.3, STUN server side of RFC 5389 / RFC 8489): a Binding
//!   request is parsed in place (the attributes are walked in the datagram, nothing is copied
//!   or allocated) and checked in the order RFC 5389 §7.3 gives: header (two zero bits, magic
//!   cookie, length a multiple of 4 that matches the datagram), class and method, FINGERPRINT
//!   when present (CRC-32 of the message before it, XOR `0x5354554e`, §15.5; it must be the
//!   last attribute), then authentication (§10.1.2): USERNAME is `local-ufrag:remote-ufrag`
//!   (RFC 8445 §7.2.2) and MESSAGE-INTEGRITY is HMAC-SHA1 keyed with the local password
//!   (short-term credential) over the message up to the attribute, with the header length
//!   counting up to and including it (§15.4). Attributes after MESSAGE-INTEGRITY other than
//!   FINGERPRINT are ignored (§15.4); of an attribute that appears twice the first counts
//!   (§15). Then the STUN checks for unknown comprehension-required attributes (§7.3.1) and the
//!   ICE role check (RFC 8445 §7.3.1.1). A check that passes gets a Binding success response
//!   with the same transaction id, XOR-MAPPED-ADDRESS of the source (IPv4 or IPv6, §15.2; an
//!   IPv4-mapped IPv6 source from a dual-stack socket is reported as the IPv4 address the
//!   browser used), MESSAGE-INTEGRITY with the local password and FINGERPRINT.
//! - **Nomination** (RFC 8445 §7.3.1.5, §8.2): a valid check with USE-CANDIDATE makes its
//!   source the selected address (where media goes). The latest nomination wins: a browser
//!   moving to another pair (network change, ICE restart) nominates that one.
//! - **Consent** (RFC 7675): consent to send to the selected address lasts
//!   [`CONSENT_TIMEOUT`] (30 s) after the last valid check from it; before anything is
//!   nominated, after the last valid check from anywhere. Browsers send consent checks every
//!   few seconds, so 30 s is several lost in a row.
//! - **Credentials**: ufrag and password of ice-chars (RFC 8839 §5.4: ALPHA / DIGIT / `+` /
//!   `/`, 4 and 22 to 256 characters); [`Credentials::random`] draws 8 and 24 alphanumerics
//!   (47 and 142 bits, over the 24 and 128 the same section asks for). The HMAC key is built once
//!   per credential set, not per packet. An ICE restart ([`IceLite::restart`], RFC 8445 §9)
//!   swaps both sides' credentials and forgets the addresses seen, but keeps the selected
//!   address and its consent: media keeps flowing until the browser nominates again.
//!
//! # Decisions where the RFCs leave room or where we deviate
//!
//! - **Remote ufrag not known yet**: accepted. When the node is the offerer the browser answers
//!   and starts checking before its answer reaches us through the control plane, and RFC 8445
//!   §7.3 says a check that arrives before the peer's candidates MUST be answered at once. The
//!   local half must match and MESSAGE-INTEGRITY is keyed with our password, so nothing is lost:
//!   once [`IceLite::set_remote`] has run the remote half must match too.
//! - **No 400 or 401 responses**: a request without USERNAME, MESSAGE-INTEGRITY or PRIORITY
//!   (RFC 8445 §7.1.1 makes PRIORITY mandatory), with a USERNAME that is not ours or with a
//!   wrong MESSAGE-INTEGRITY is dropped with an [`IceError`] for the counters, and nothing is
//!   sent (RFC 5389 §10.1.2 asks for 400/401 in some of these cases; unauthenticated answers
//!   only help whoever is probing, and browsers never send such requests).
//! - **420 Unknown Attribute**: an authenticated request with comprehension-required attributes
//!   we do not know (types below `0x8000` other than those of RFC 5389 and RFC 8445) gets a 420
//!   listing them in UNKNOWN-ATTRIBUTES (at most [`MAX_UNKNOWN_ATTRIBUTES`]), with
//!   MESSAGE-INTEGRITY and FINGERPRINT, as RFC 5389 §7.3.1 and §10.1.2 say. Unknown
//!   comprehension-optional attributes (Chrome's GOOG-NETWORK-INFO `0xC057` and friends) are
//!   ignored. The request is not a valid check: no nomination, no consent.
//! - **487 Role Conflict**: a request with ICE-CONTROLLED means the peer also thinks it is
//!   controlled. A lite agent cannot take the controlling role, so it always answers 487
//!   (RFC 8445 §7.3.1.1 as if our tie-breaker were the smaller), integrity-protected, telling
//!   the peer to switch. Requests with ICE-CONTROLLING, or with neither, are fine.
//! - **FINGERPRINT** is verified when present but not required (browsers always send it).
//!   Flipping a bit of its attribute type turns it into an attribute after MESSAGE-INTEGRITY,
//!   which must be ignored: such a request is still authentic and still answered.
//! - **Binding indications** (keepalives) and anything else that is not a Binding request give
//!   [`IceError::NotBindingRequest`]: drop them.
//!
//! # What it leaves out
//!
//! Full ICE (gathering, pairing, sending checks, the controlling role, peer-reflexive
//! candidates learnt from priorities), TCP candidates (RFC 6544), TURN, long-term credentials
//! and MESSAGE-INTEGRITY-SHA256 (RFC 8489; WebRTC uses short-term SHA-1), the specifics of
//! aggressive nomination (RFC 5245: every check nominates; here the latest simply wins, not
//! the highest priority), Chrome's GOOG-PING (only used when both sides advertise it), and any
//! treatment of IPv6 link-local addresses (scope ids are not part of XOR-MAPPED-ADDRESS).
//! Candidates and ICE options in SDP are the bridge's business.
//!
//! # How the bridge will use it
//!
//! One [`IceLite`] per browser call. The bridge keeps routing STUN to a call by the local half
//! of USERNAME (`bridge/stun.rs`), then calls [`IceLite::handle_request`] with the
//! source, the datagram and an output buffer of [`MAX_RESPONSE_LEN`] bytes, and sends
//! `out[..response_len]` back to the source when the result is `Ok` or an error whose
//! [`IceError::response_len`] is `Some`. DTLS and SRTP go to and come from
//! [`IceLite::selected`] (the answer's `setup:passive` DTLS starts once a check arrived);
//! [`IceLite::consent_deadline`] goes into the session timer heap and
//! [`IceLite::consent_expired`] stops sending (RFC 7675 §5.1). The local [`Credentials`] go
//! into the SDP (`a=ice-lite`, `a=ice-ufrag`, `a=ice-pwd`), the browser's into
//! [`IceLite::set_remote`], an ICE restart into [`IceLite::restart`].
//!
//! # Cost
//!
//! Per check: one HMAC-SHA1 to verify and one to sign from the pre-keyed state (a copy of the
//! keyed context each, no key schedule), two table-driven CRC-32 passes over about 100 bytes,
//! an attribute walk and a few comparisons; no allocation. Checks come every few seconds per
//! call, so this is off the per-packet path (not measured separately). [`IceLite`] is 360
//! bytes inline plus, on the heap, the aws-lc HMAC key (about 1.2 KiB) and the two credential
//! strings.

#![forbid(unsafe_code)]

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use aws_lc_rs::constant_time::verify_slices_are_equal;
use aws_lc_rs::hmac;
use rand::distr::{Alphanumeric, SampleString as _};

#[cfg(test)]
mod tests;

/// How long consent lasts after the last valid check (RFC 7675 §5.1).
pub const CONSENT_TIMEOUT: Duration = Duration::from_secs(30);
/// Source addresses with valid checks remembered per call (least recently checked goes first).
pub const MAX_ADDRESSES: usize = 4;
/// Unknown comprehension-required attribute types a 420 response lists at most.
pub const MAX_UNKNOWN_ATTRIBUTES: usize = 8;
/// The longest response [`IceLite::handle_request`] writes (a 420 listing
/// [`MAX_UNKNOWN_ATTRIBUTES`] types); a success response is 64 (IPv4) or 76 (IPv6) bytes.
pub const MAX_RESPONSE_LEN: usize = HEADER_LEN
    + ATTR_HEADER_LEN
    + padded(4 + REASON_UNKNOWN_ATTRIBUTE.len())
    + ATTR_HEADER_LEN
    + padded(2 * MAX_UNKNOWN_ATTRIBUTES)
    + INTEGRITY_ATTR_LEN
    + FINGERPRINT_ATTR_LEN;

const HEADER_LEN: usize = 20;
const ATTR_HEADER_LEN: usize = 4;
const HMAC_LEN: usize = 20;
const INTEGRITY_ATTR_LEN: usize = ATTR_HEADER_LEN + HMAC_LEN;
const FINGERPRINT_ATTR_LEN: usize = ATTR_HEADER_LEN + 4;
const MAGIC_COOKIE: [u8; 4] = [0x21, 0x12, 0xa4, 0x42];
const FINGERPRINT_XOR: u32 = 0x5354_554e;

// Message types: method Binding (0x001) in the four classes (RFC 5389 §6).
const BINDING_REQUEST: u16 = 0x0001;
const BINDING_SUCCESS: u16 = 0x0101;
const BINDING_ERROR: u16 = 0x0111;

// Attribute types (RFC 5389 §18.2, RFC 8445 §16.1).
const MAPPED_ADDRESS: u16 = 0x0001;
const USERNAME: u16 = 0x0006;
const MESSAGE_INTEGRITY: u16 = 0x0008;
const ERROR_CODE: u16 = 0x0009;
const UNKNOWN_ATTRIBUTES: u16 = 0x000a;
const REALM: u16 = 0x0014;
const NONCE: u16 = 0x0015;
const XOR_MAPPED_ADDRESS: u16 = 0x0020;
const PRIORITY: u16 = 0x0024;
const USE_CANDIDATE: u16 = 0x0025;
const FINGERPRINT: u16 = 0x8028;
const ICE_CONTROLLED: u16 = 0x8029;
const ICE_CONTROLLING: u16 = 0x802a;

const REASON_ROLE_CONFLICT: &str = "Role Conflict";
const REASON_UNKNOWN_ATTRIBUTE: &str = "Unknown Attribute";

/// Why a datagram got no success response. [`IceError::response_len`] says whether an error
/// response was written to the output buffer all the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IceError {
    /// Shorter than a STUN header, the first two bits set or no magic cookie.
    #[error("not a STUN message")]
    NotStun,
    /// STUN, but not a Binding request (an indication, a response, another method).
    #[error("not a STUN Binding request")]
    NotBindingRequest,
    /// The header length does not match the datagram or is not a multiple of 4, an attribute
    /// runs past the end, or an attribute has the wrong length for its type.
    #[error("bad STUN length")]
    BadLength,
    /// No USERNAME, MESSAGE-INTEGRITY or PRIORITY before MESSAGE-INTEGRITY.
    #[error("STUN Binding request without USERNAME, MESSAGE-INTEGRITY or PRIORITY")]
    MissingAttribute,
    /// USERNAME is not `local-ufrag:remote-ufrag` for this call's credentials.
    #[error("unknown STUN USERNAME")]
    UnknownUsername,
    /// MESSAGE-INTEGRITY does not verify with the local password (silently discarded: no 401,
    /// see the module documentation).
    #[error("bad STUN MESSAGE-INTEGRITY")]
    BadIntegrity,
    /// FINGERPRINT does not match, or is not the last attribute.
    #[error("bad STUN FINGERPRINT")]
    BadFingerprint,
    /// Authenticated, but with comprehension-required attributes we do not know: a 420
    /// response is in the output buffer.
    #[error("unknown comprehension-required STUN attribute (420 answered)")]
    UnknownAttributes {
        /// Length of the 420 response at the start of the output buffer.
        response_len: usize,
    },
    /// The request carries ICE-CONTROLLED: a 487 response is in the output buffer.
    #[error("ICE role conflict (487 answered)")]
    RoleConflict {
        /// Length of the 487 response at the start of the output buffer.
        response_len: usize,
    },
    /// The output buffer cannot hold the response ([`MAX_RESPONSE_LEN`] always can).
    #[error("output buffer too small for the STUN response")]
    BufferTooSmall,
}

impl IceError {
    /// The length of the error response written to the output buffer, to be sent back to the
    /// source, if this error came with one.
    pub fn response_len(&self) -> Option<usize> {
        match *self {
            IceError::UnknownAttributes { response_len }
            | IceError::RoleConflict { response_len } => Some(response_len),
            _ => None,
        }
    }
}

/// Invalid ICE credentials (RFC 8839 §5.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CredentialsError {
    #[error("an ICE ufrag is 4 to 256 ice-chars (ALPHA / DIGIT / \"+\" / \"/\")")]
    BadUfrag,
    #[error("an ICE password is 22 to 256 ice-chars (ALPHA / DIGIT / \"+\" / \"/\")")]
    BadPwd,
}

/// An ICE username fragment and password. `Debug` leaves the password out.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    ufrag: String,
    pwd: String,
}

impl Credentials {
    /// Checks both against RFC 8839 §5.4: ice-chars only, 4..=256 and 22..=256 of them.
    pub fn new(ufrag: impl Into<String>, pwd: impl Into<String>) -> Result<Self, CredentialsError> {
        let (ufrag, pwd) = (ufrag.into(), pwd.into());
        if !is_ice_chars(&ufrag, 4) {
            return Err(CredentialsError::BadUfrag);
        }
        if !is_ice_chars(&pwd, 22) {
            return Err(CredentialsError::BadPwd);
        }
        Ok(Credentials { ufrag, pwd })
    }

    /// Fresh random credentials: 8 and 24 alphanumerics.
    pub fn random() -> Self {
        let mut rng = rand::rng();
        Credentials {
            ufrag: Alphanumeric.sample_string(&mut rng, 8),
            pwd: Alphanumeric.sample_string(&mut rng, 24),
        }
    }

    pub fn ufrag(&self) -> &str {
        &self.ufrag
    }

    pub fn pwd(&self) -> &str {
        &self.pwd
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("ufrag", &self.ufrag)
            .field("pwd", &"<redacted>")
            .finish()
    }
}

fn is_ice_chars(s: &str, min: usize) -> bool {
    (min..=256).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
}

/// What a valid check did. The success response is `out[..response_len]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Handled {
    /// Length of the Binding success response at the start of the output buffer.
    pub response_len: usize,
    /// The request carried USE-CANDIDATE: its source is now the selected address.
    pub nominated: bool,
    /// The selected address is not what it was before this check.
    pub selected_changed: bool,
    /// No valid check came from this source before (among the [`MAX_ADDRESSES`] remembered).
    pub new_address: bool,
}

#[derive(Debug, Clone, Copy)]
struct Seen {
    address: SocketAddr,
    last_check: Instant,
}

/// The ICE-lite agent of one call (controlled role). See the module documentation.
#[derive(Debug)]
pub struct IceLite {
    local: Credentials,
    /// HMAC-SHA1 keyed with the local password, for MESSAGE-INTEGRITY both ways. Boxed: the
    /// aws-lc HMAC state is about 1.2 KiB and only checks (every few seconds) touch it.
    key: Box<hmac::Key>,
    remote: Option<Credentials>,
    /// The nominated address and the time of the last valid check from it.
    selected: Option<Seen>,
    /// Addresses with valid checks under the current credentials.
    seen: [Option<Seen>; MAX_ADDRESSES],
    last_valid_check: Option<Instant>,
}

impl IceLite {
    /// An agent with these local credentials; the remote ones may follow with
    /// [`IceLite::set_remote`].
    pub fn new(local: Credentials) -> Self {
        IceLite {
            key: Box::new(integrity_key(&local.pwd)),
            local,
            remote: None,
            selected: None,
            seen: [None; MAX_ADDRESSES],
            last_valid_check: None,
        }
    }

    /// An agent with [`Credentials::random`].
    pub fn with_random_credentials() -> Self {
        IceLite::new(Credentials::random())
    }

    /// The browser's credentials from its SDP. Only the ufrag is used (a lite agent sends no
    /// requests, and responses are signed with the local password); from now on the remote
    /// half of USERNAME must match it.
    pub fn set_remote(&mut self, remote: Credentials) {
        self.remote = Some(remote);
    }

    /// ICE restart (RFC 8445 §9): new credentials on both sides (the remote ones may come
    /// later). The addresses seen are forgotten; the selected address and its consent stay,
    /// so media keeps flowing until the browser nominates with the new credentials.
    pub fn restart(&mut self, local: Credentials, remote: Option<Credentials>) {
        *self.key = integrity_key(&local.pwd);
        self.local = local;
        self.remote = remote;
        self.seen = [None; MAX_ADDRESSES];
    }

    pub fn local_credentials(&self) -> &Credentials {
        &self.local
    }

    pub fn remote_credentials(&self) -> Option<&Credentials> {
        self.remote.as_ref()
    }

    /// The nominated address: where media goes.
    pub fn selected(&self) -> Option<SocketAddr> {
        self.selected.map(|s| s.address)
    }

    /// Source addresses with valid checks under the current credentials, most recent first.
    pub fn addresses(&self) -> impl Iterator<Item = SocketAddr> + '_ {
        let mut seen: [Option<Seen>; MAX_ADDRESSES] = self.seen;
        seen.sort_by(|a, b| {
            let at = |s: &Option<Seen>| s.map(|s| s.last_check);
            at(b).cmp(&at(a))
        });
        seen.into_iter().flatten().map(|s| s.address)
    }

    /// A valid check has arrived (ever, restarts included).
    pub fn is_connected(&self) -> bool {
        self.last_valid_check.is_some()
    }

    /// When the last valid check arrived, from any address.
    pub fn last_valid_check(&self) -> Option<Instant> {
        self.last_valid_check
    }

    /// When consent runs out without another valid check: [`CONSENT_TIMEOUT`] after the last
    /// valid check from the selected address, or from anywhere while nothing is selected.
    /// `None` before the first valid check.
    pub fn consent_deadline(&self) -> Option<Instant> {
        let last = self
            .selected
            .map(|s| s.last_check)
            .or(self.last_valid_check)?;
        Some(last + CONSENT_TIMEOUT)
    }

    /// Consent has run out (RFC 7675 §5.1): stop sending media. `false` before the first valid
    /// check (there was no consent to lose; setup timeouts are the bridge's).
    pub fn consent_expired(&self, now: Instant) -> bool {
        self.consent_deadline()
            .is_some_and(|deadline| now >= deadline)
    }

    /// Answers one datagram from `source` that should be a Binding request (see the module
    /// documentation for the checks and their order). On `Ok` the success response is
    /// `out[..response_len]`; on an error with [`IceError::response_len`] an error response is
    /// there instead; otherwise nothing is to be sent. The state only moves on `Ok`.
    pub fn handle_request(
        &mut self,
        now: Instant,
        source: SocketAddr,
        datagram: &[u8],
        out: &mut [u8],
    ) -> Result<Handled, IceError> {
        let header = Header::parse(datagram)?;
        if header.msg_type != BINDING_REQUEST {
            return Err(IceError::NotBindingRequest);
        }
        let attrs = Attributes::walk(datagram)?;
        let (Some(username), Some(integrity_at), Some(_priority)) =
            (attrs.username, attrs.integrity_at, attrs.priority)
        else {
            return Err(IceError::MissingAttribute);
        };
        if !self.username_matches(username) {
            return Err(IceError::UnknownUsername);
        }
        if !integrity_verifies(datagram, integrity_at, &self.key) {
            return Err(IceError::BadIntegrity);
        }
        if !attrs.unknown.is_empty() {
            let response_len = self.unknown_attributes_response(&header, &attrs.unknown, out)?;
            return Err(IceError::UnknownAttributes { response_len });
        }
        if attrs.ice_controlled {
            let response_len = self.role_conflict_response(&header, out)?;
            return Err(IceError::RoleConflict { response_len });
        }

        let response_len = self.success_response(&header, source, out)?;
        let nominated = attrs.use_candidate;
        let before = self.selected();
        let new_address = self.record_check(now, source);
        if nominated {
            self.selected = Some(Seen {
                address: source,
                last_check: now,
            });
        } else if let Some(selected) = self.selected.as_mut().filter(|s| s.address == source) {
            selected.last_check = now;
        }
        self.last_valid_check = Some(now);
        Ok(Handled {
            response_len,
            nominated,
            selected_changed: self.selected() != before,
            new_address,
        })
    }

    /// `local:remote` with our ufrag first; the remote half must be ours to check once known.
    fn username_matches(&self, username: &[u8]) -> bool {
        let mut halves = username.splitn(2, |&b| b == b':');
        let (Some(local), Some(remote)) = (halves.next(), halves.next()) else {
            return false;
        };
        local == self.local.ufrag.as_bytes()
            && !remote.is_empty()
            && self
                .remote
                .as_ref()
                .is_none_or(|r| remote == r.ufrag.as_bytes())
    }

    /// Remembers a valid check from `source`; `true` if it was not among the addresses seen.
    fn record_check(&mut self, now: Instant, source: SocketAddr) -> bool {
        let entry = Seen {
            address: source,
            last_check: now,
        };
        if let Some(known) = self.seen.iter_mut().flatten().find(|s| s.address == source) {
            known.last_check = now;
            return false;
        }
        // A free slot, else the least recently checked address.
        let slot = self
            .seen
            .iter_mut()
            .min_by_key(|s| s.map(|s| s.last_check))
            .expect("MAX_ADDRESSES > 0");
        *slot = Some(entry);
        true
    }

    fn success_response(
        &self,
        header: &Header,
        source: SocketAddr,
        out: &mut [u8],
    ) -> Result<usize, IceError> {
        let mut w = Writer::start(out, BINDING_SUCCESS, &header.transaction_id)?;
        let mut value = [0; 20];
        let len = encode_xor_mapped_address(source, &header.transaction_id, &mut value);
        w.attribute(XOR_MAPPED_ADDRESS, value.get(..len).unwrap_or_default())?;
        w.seal(&self.key)
    }

    fn role_conflict_response(&self, header: &Header, out: &mut [u8]) -> Result<usize, IceError> {
        let mut w = Writer::start(out, BINDING_ERROR, &header.transaction_id)?;
        w.error_code(487, REASON_ROLE_CONFLICT)?;
        w.seal(&self.key)
    }

    fn unknown_attributes_response(
        &self,
        header: &Header,
        unknown: &UnknownList,
        out: &mut [u8],
    ) -> Result<usize, IceError> {
        let mut w = Writer::start(out, BINDING_ERROR, &header.transaction_id)?;
        w.error_code(420, REASON_UNKNOWN_ATTRIBUTE)?;
        let mut value = [0; 2 * MAX_UNKNOWN_ATTRIBUTES];
        for (slot, kind) in value.chunks_exact_mut(2).zip(unknown.types()) {
            slot.copy_from_slice(&kind.to_be_bytes());
        }
        let len = 2 * unknown.types().len();
        w.attribute(UNKNOWN_ATTRIBUTES, value.get(..len).unwrap_or_default())?;
        w.seal(&self.key)
    }
}

fn integrity_key(pwd: &str) -> hmac::Key {
    hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, pwd.as_bytes())
}

const fn padded(len: usize) -> usize {
    len.div_ceil(4) * 4
}

fn be_u16(bytes: [u8; 2]) -> u16 {
    u16::from_be_bytes(bytes)
}

// ---- Parsing ----------------------------------------------------------------------------

/// A checked STUN header: the datagram is exactly header + length.
#[derive(Debug)]
struct Header {
    msg_type: u16,
    transaction_id: [u8; 12],
}

impl Header {
    fn parse(datagram: &[u8]) -> Result<Header, IceError> {
        let header: &[u8; HEADER_LEN] = datagram
            .get(..HEADER_LEN)
            .and_then(|h| h.try_into().ok())
            .ok_or(IceError::NotStun)?;
        let [t0, t1, l0, l1, c0, c1, c2, c3, transaction_id @ ..] = *header;
        if t0 & 0xc0 != 0 || [c0, c1, c2, c3] != MAGIC_COOKIE {
            return Err(IceError::NotStun);
        }
        let length = usize::from(be_u16([l0, l1]));
        if length % 4 != 0 || HEADER_LEN + length != datagram.len() {
            return Err(IceError::BadLength);
        }
        Ok(Header {
            msg_type: be_u16([t0, t1]),
            transaction_id,
        })
    }
}

/// Unknown comprehension-required attribute types, in order of appearance.
#[derive(Debug, Default)]
struct UnknownList {
    types: [u16; MAX_UNKNOWN_ATTRIBUTES],
    len: usize,
}

impl UnknownList {
    fn push(&mut self, kind: u16) {
        if self.types().contains(&kind) {
            return;
        }
        if let Some(slot) = self.types.get_mut(self.len) {
            *slot = kind;
            self.len += 1;
        }
    }

    fn types(&self) -> &[u16] {
        self.types.get(..self.len).unwrap_or_default()
    }

    fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// What the attribute walk found: values are slices of the datagram.
#[derive(Debug, Default)]
struct Attributes<'a> {
    username: Option<&'a [u8]>,
    /// Offset of the MESSAGE-INTEGRITY attribute header in the datagram.
    integrity_at: Option<usize>,
    priority: Option<u32>,
    use_candidate: bool,
    ice_controlled: bool,
    xor_mapped_address: Option<&'a [u8]>,
    error_code: Option<&'a [u8]>,
    unknown_attributes: Option<&'a [u8]>,
    unknown: UnknownList,
    /// A FINGERPRINT was present (and verified).
    fingerprint: bool,
}

impl<'a> Attributes<'a> {
    /// Walks the attributes of a datagram whose header [`Header::parse`] accepted, verifying
    /// FINGERPRINT if there is one (it must be last).
    fn walk(datagram: &'a [u8]) -> Result<Attributes<'a>, IceError> {
        let mut attrs = Attributes::default();
        let mut at = HEADER_LEN;
        while at < datagram.len() {
            if attrs.fingerprint {
                return Err(IceError::BadFingerprint);
            }
            let [k0, k1, n0, n1] = datagram
                .get(at..at + ATTR_HEADER_LEN)
                .and_then(|h| <[u8; 4]>::try_from(h).ok())
                .ok_or(IceError::BadLength)?;
            let (kind, len) = (be_u16([k0, k1]), usize::from(be_u16([n0, n1])));
            let start = at + ATTR_HEADER_LEN;
            let value = datagram
                .get(start..start + len)
                .ok_or(IceError::BadLength)?;
            let next = start + padded(len);
            if next > datagram.len() {
                return Err(IceError::BadLength);
            }
            if kind == FINGERPRINT {
                let value: [u8; 4] = value.try_into().map_err(|_| IceError::BadLength)?;
                let covered = datagram.get(..at).ok_or(IceError::BadLength)?;
                if u32::from_be_bytes(value) != crc32(covered) ^ FINGERPRINT_XOR {
                    return Err(IceError::BadFingerprint);
                }
                attrs.fingerprint = true;
            } else if attrs.integrity_at.is_none() {
                // RFC 5389 §15.4: what follows MESSAGE-INTEGRITY (FINGERPRINT aside) is ignored.
                attrs.take(kind, value, at)?;
            }
            at = next;
        }
        Ok(attrs)
    }

    /// Records one attribute before MESSAGE-INTEGRITY; the first of a type counts.
    fn take(&mut self, kind: u16, value: &'a [u8], at: usize) -> Result<(), IceError> {
        match kind {
            USERNAME => {
                self.username.get_or_insert(value);
            }
            MESSAGE_INTEGRITY => {
                if value.len() != HMAC_LEN {
                    return Err(IceError::BadLength);
                }
                self.integrity_at = Some(at);
            }
            PRIORITY => {
                let value: [u8; 4] = value.try_into().map_err(|_| IceError::BadLength)?;
                self.priority.get_or_insert(u32::from_be_bytes(value));
            }
            USE_CANDIDATE => {
                if !value.is_empty() {
                    return Err(IceError::BadLength);
                }
                self.use_candidate = true;
            }
            ICE_CONTROLLING | ICE_CONTROLLED => {
                if value.len() != 8 {
                    return Err(IceError::BadLength);
                }
                self.ice_controlled |= kind == ICE_CONTROLLED;
            }
            XOR_MAPPED_ADDRESS => {
                self.xor_mapped_address.get_or_insert(value);
            }
            ERROR_CODE => {
                self.error_code.get_or_insert(value);
            }
            UNKNOWN_ATTRIBUTES => {
                self.unknown_attributes.get_or_insert(value);
            }
            // Known, and of no use to us here.
            MAPPED_ADDRESS | REALM | NONCE => {}
            kind if kind < 0x8000 => self.unknown.push(kind),
            _ => {} // comprehension-optional: ignored (RFC 5389 §15)
        }
        Ok(())
    }
}

/// RFC 5389 §15.4: HMAC-SHA1 over the message up to MESSAGE-INTEGRITY, with the header length
/// as if the message ended right after it.
fn integrity_verifies(datagram: &[u8], integrity_at: usize, key: &hmac::Key) -> bool {
    let (Some(msg_type), Some(rest), Some(tag)) = (
        datagram.get(..2),
        datagram.get(4..integrity_at),
        datagram.get(integrity_at + ATTR_HEADER_LEN..integrity_at + INTEGRITY_ATTR_LEN),
    ) else {
        return false;
    };
    let Ok(length) = u16::try_from(integrity_at + INTEGRITY_ATTR_LEN - HEADER_LEN) else {
        return false;
    };
    let mut ctx = hmac::Context::with_key(key);
    ctx.update(msg_type);
    ctx.update(&length.to_be_bytes());
    ctx.update(rest);
    verify_slices_are_equal(ctx.sign().as_ref(), tag).is_ok()
}

/// XOR-MAPPED-ADDRESS value (RFC 5389 §15.2) for `address` into `out`; returns its length (8
/// for IPv4, 20 for IPv6). IPv4-mapped IPv6 addresses are written as IPv4.
fn encode_xor_mapped_address(
    address: SocketAddr,
    transaction_id: &[u8; 12],
    out: &mut [u8; 20],
) -> usize {
    let [m0, m1, ..] = MAGIC_COOKIE;
    let port = address.port() ^ be_u16([m0, m1]);
    let [_, family, p0, p1, ip @ ..] = out;
    [*p0, *p1] = port.to_be_bytes();
    let mask = xor_mask(transaction_id);
    match address.ip().to_canonical() {
        IpAddr::V4(v4) => {
            *family = 0x01;
            for ((o, a), m) in ip.iter_mut().zip(v4.octets()).zip(mask) {
                *o = a ^ m;
            }
            8
        }
        IpAddr::V6(v6) => {
            *family = 0x02;
            for ((o, a), m) in ip.iter_mut().zip(v6.octets()).zip(mask) {
                *o = a ^ m;
            }
            20
        }
    }
}

/// Decodes an XOR-MAPPED-ADDRESS value.
fn decode_xor_mapped_address(
    value: &[u8],
    transaction_id: &[u8; 12],
) -> Result<SocketAddr, IceError> {
    let mask = xor_mask(transaction_id);
    let [m0, m1, ..] = MAGIC_COOKIE;
    let unmask = |ip: &[u8], out: &mut [u8]| {
        for ((o, a), m) in out.iter_mut().zip(ip).zip(mask) {
            *o = a ^ m;
        }
    };
    match value {
        [_, 0x01, p0, p1, ip @ ..] if ip.len() == 4 => {
            let mut octets = [0; 4];
            unmask(ip, &mut octets);
            let port = be_u16([*p0, *p1]) ^ be_u16([m0, m1]);
            Ok(SocketAddr::new(Ipv4Addr::from(octets).into(), port))
        }
        [_, 0x02, p0, p1, ip @ ..] if ip.len() == 16 => {
            let mut octets = [0; 16];
            unmask(ip, &mut octets);
            let port = be_u16([*p0, *p1]) ^ be_u16([m0, m1]);
            Ok(SocketAddr::new(Ipv6Addr::from(octets).into(), port))
        }
        _ => Err(IceError::BadLength),
    }
}

/// Magic cookie followed by the transaction id: what addresses are XORed with.
fn xor_mask(transaction_id: &[u8; 12]) -> [u8; 16] {
    let mut mask = [0; 16];
    let (cookie, id) = mask.split_at_mut(4);
    cookie.copy_from_slice(&MAGIC_COOKIE);
    id.copy_from_slice(transaction_id);
    mask
}

// ---- Writing ----------------------------------------------------------------------------

/// Writes a STUN message into a caller's buffer; every write is bounds-checked.
struct Writer<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl<'a> Writer<'a> {
    fn start(
        buf: &'a mut [u8],
        msg_type: u16,
        transaction_id: &[u8; 12],
    ) -> Result<Self, IceError> {
        let mut w = Writer { buf, len: 0 };
        w.put(&msg_type.to_be_bytes())?;
        w.put(&[0, 0])?; // length, set as attributes are added
        w.put(&MAGIC_COOKIE)?;
        w.put(transaction_id)?;
        Ok(w)
    }

    fn put(&mut self, bytes: &[u8]) -> Result<(), IceError> {
        let end = self.len + bytes.len();
        self.buf
            .get_mut(self.len..end)
            .ok_or(IceError::BufferTooSmall)?
            .copy_from_slice(bytes);
        self.len = end;
        Ok(())
    }

    /// One attribute with zero padding (RFC 8489 §14), and the header length updated.
    fn attribute(&mut self, kind: u16, value: &[u8]) -> Result<(), IceError> {
        let len = u16::try_from(value.len()).map_err(|_| IceError::BufferTooSmall)?;
        self.put(&kind.to_be_bytes())?;
        self.put(&len.to_be_bytes())?;
        self.put(value)?;
        let padding = [0; 3];
        self.put(
            padding
                .get(..padded(value.len()) - value.len())
                .unwrap_or_default(),
        )?;
        self.set_length(self.len)
    }

    fn error_code(&mut self, code: u16, reason: &str) -> Result<(), IceError> {
        let mut value = [0; 4 + 32];
        let [_, _, class, number, phrase @ ..] = &mut value;
        *class = u8::try_from(code / 100).unwrap_or(0);
        *number = u8::try_from(code % 100).unwrap_or(0);
        phrase
            .get_mut(..reason.len())
            .ok_or(IceError::BufferTooSmall)?
            .copy_from_slice(reason.as_bytes());
        self.attribute(
            ERROR_CODE,
            value.get(..4 + reason.len()).unwrap_or_default(),
        )
    }

    /// Sets the header length for a message of `total` bytes.
    fn set_length(&mut self, total: usize) -> Result<(), IceError> {
        let length = u16::try_from(total - HEADER_LEN).map_err(|_| IceError::BufferTooSmall)?;
        self.buf
            .get_mut(2..4)
            .ok_or(IceError::BufferTooSmall)?
            .copy_from_slice(&length.to_be_bytes());
        Ok(())
    }

    /// Appends MESSAGE-INTEGRITY (RFC 5389 §15.4) and FINGERPRINT (§15.5); returns the length.
    fn seal(mut self, key: &hmac::Key) -> Result<usize, IceError> {
        if self.buf.len() < self.len + INTEGRITY_ATTR_LEN + FINGERPRINT_ATTR_LEN {
            return Err(IceError::BufferTooSmall);
        }
        self.set_length(self.len + INTEGRITY_ATTR_LEN)?;
        let signed = self.buf.get(..self.len).ok_or(IceError::BufferTooSmall)?;
        let tag = hmac::sign(key, signed);
        self.attribute(MESSAGE_INTEGRITY, tag.as_ref())?;
        self.set_length(self.len + FINGERPRINT_ATTR_LEN)?;
        let covered = self.buf.get(..self.len).ok_or(IceError::BufferTooSmall)?;
        let crc = crc32(covered) ^ FINGERPRINT_XOR;
        self.put(&FINGERPRINT.to_be_bytes())?;
        self.put(&4u16.to_be_bytes())?;
        self.put(&crc.to_be_bytes())?;
        Ok(self.len)
    }
}

// ---- CRC-32 -----------------------------------------------------------------------------

/// CRC-32 as in ISO-HDLC / IEEE 802.3 (reflected polynomial 0xEDB88320), which FINGERPRINT
/// uses (RFC 5389 §15.5).
const CRC_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u32;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 != 0 {
                0xedb8_8320 ^ (crc >> 1)
            } else {
                crc >> 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
};

fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc = CRC_TABLE[usize::from(crc.to_le_bytes()[0] ^ byte)] ^ (crc >> 8);
    }
    !crc
}

// ---- Stand-ins for the browser's side (tests, benches) -----------------------------------

/// The ICE role a request claims, with its tie-breaker (RFC 8445 §7.1.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// ICE-CONTROLLING: what a browser facing a lite agent sends.
    Controlling(u64),
    /// ICE-CONTROLLED: a role conflict for a lite agent.
    Controlled(u64),
}

/// A Binding request as a browser builds it, for tests and stand-ins for the browser. The
/// attribute order is Chrome's: USERNAME, the extra attributes, the role, USE-CANDIDATE,
/// PRIORITY, MESSAGE-INTEGRITY (keyed with `pwd`, the node's password), FINGERPRINT.
#[derive(Clone, Copy)]
pub struct BindingRequest<'a> {
    pub transaction_id: [u8; 12],
    /// `node-ufrag:browser-ufrag`.
    pub username: &'a str,
    /// The password of the agent the request goes to.
    pub pwd: &'a str,
    pub priority: u32,
    pub use_candidate: bool,
    pub role: Option<Role>,
    /// Further attributes (type, value) after USERNAME, e.g. GOOG-NETWORK-INFO (`0xC057`).
    pub extra_attributes: &'a [(u16, &'a [u8])],
    /// Leave out FINGERPRINT.
    pub without_fingerprint: bool,
}

impl fmt::Debug for BindingRequest<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BindingRequest")
            .field("transaction_id", &self.transaction_id)
            .field("username", &self.username)
            .field("priority", &self.priority)
            .field("use_candidate", &self.use_candidate)
            .field("role", &self.role)
            .field("extra_attributes", &self.extra_attributes)
            .field("without_fingerprint", &self.without_fingerprint)
            .finish_non_exhaustive()
    }
}

impl BindingRequest<'_> {
    /// The request's bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let attributes = [(USERNAME, self.username.as_bytes())]
            .into_iter()
            .chain(self.extra_attributes.iter().copied());
        let capacity = HEADER_LEN
            + attributes
                .clone()
                .map(|(_, v)| ATTR_HEADER_LEN + padded(v.len()))
                .sum::<usize>()
            + 12 // ICE-CONTROLLING / ICE-CONTROLLED
            + ATTR_HEADER_LEN // USE-CANDIDATE
            + 8 // PRIORITY
            + INTEGRITY_ATTR_LEN
            + FINGERPRINT_ATTR_LEN;
        let mut buf = vec![0; capacity];
        let len = self
            .write(attributes, &mut buf)
            .expect("the buffer is sized for the request");
        buf.truncate(len);
        buf
    }

    fn write<'v>(
        &self,
        attributes: impl Iterator<Item = (u16, &'v [u8])>,
        buf: &mut [u8],
    ) -> Result<usize, IceError> {
        let mut w = Writer::start(buf, BINDING_REQUEST, &self.transaction_id)?;
        for (kind, value) in attributes {
            w.attribute(kind, value)?;
        }
        match self.role {
            Some(Role::Controlling(tie_breaker)) => {
                w.attribute(ICE_CONTROLLING, &tie_breaker.to_be_bytes())?
            }
            Some(Role::Controlled(tie_breaker)) => {
                w.attribute(ICE_CONTROLLED, &tie_breaker.to_be_bytes())?
            }
            None => {}
        }
        if self.use_candidate {
            w.attribute(USE_CANDIDATE, &[])?;
        }
        w.attribute(PRIORITY, &self.priority.to_be_bytes())?;
        if !self.without_fingerprint {
            return w.seal(&integrity_key(self.pwd));
        }
        w.set_length(w.len + INTEGRITY_ATTR_LEN)?;
        let signed = w.buf.get(..w.len).ok_or(IceError::BufferTooSmall)?;
        let tag = hmac::sign(&integrity_key(self.pwd), signed);
        w.attribute(MESSAGE_INTEGRITY, tag.as_ref())?;
        Ok(w.len)
    }
}

/// A Binding request as Chrome sends it to a lite agent (ICE-CONTROLLING, PRIORITY,
/// USE-CANDIDATE when nominating, MESSAGE-INTEGRITY, FINGERPRINT), without GOOG-NETWORK-INFO.
pub fn binding_request(
    transaction_id: [u8; 12],
    username: &str,
    pwd: &str,
    priority: u32,
    use_candidate: bool,
    controlling_tie_breaker: u64,
) -> Vec<u8> {
    BindingRequest {
        transaction_id,
        username,
        pwd,
        priority,
        use_candidate,
        role: Some(Role::Controlling(controlling_tie_breaker)),
        extra_attributes: &[],
        without_fingerprint: false,
    }
    .to_bytes()
}

/// A Binding response whose MESSAGE-INTEGRITY verified (and FINGERPRINT, if present).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindingResponse {
    pub transaction_id: [u8; 12],
    pub outcome: ResponseOutcome,
}

/// What a [`BindingResponse`] says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResponseOutcome {
    /// Binding success with its XOR-MAPPED-ADDRESS.
    Success { mapped_address: SocketAddr },
    /// Binding error with its ERROR-CODE and the types in UNKNOWN-ATTRIBUTES, if any.
    Error {
        code: u16,
        unknown_attributes: Vec<u16>,
    },
}

/// Parses a Binding response and verifies its MESSAGE-INTEGRITY with `pwd` (the password the
/// request was signed with) and its FINGERPRINT if present: what the browser does with ours.
pub fn parse_response(datagram: &[u8], pwd: &str) -> Result<BindingResponse, IceError> {
    let header = Header::parse(datagram)?;
    if header.msg_type != BINDING_SUCCESS && header.msg_type != BINDING_ERROR {
        return Err(IceError::NotBindingRequest);
    }
    let attrs = Attributes::walk(datagram)?;
    let integrity_at = attrs.integrity_at.ok_or(IceError::MissingAttribute)?;
    if !integrity_verifies(datagram, integrity_at, &integrity_key(pwd)) {
        return Err(IceError::BadIntegrity);
    }
    let outcome = if header.msg_type == BINDING_SUCCESS {
        let value = attrs.xor_mapped_address.ok_or(IceError::MissingAttribute)?;
        ResponseOutcome::Success {
            mapped_address: decode_xor_mapped_address(value, &header.transaction_id)?,
        }
    } else {
        let [_, _, class, number, ..] = *attrs.error_code.ok_or(IceError::MissingAttribute)? else {
            return Err(IceError::BadLength);
        };
        let unknown_attributes = attrs
            .unknown_attributes
            .unwrap_or_default()
            .chunks_exact(2)
            .filter_map(|pair| pair.try_into().ok().map(be_u16))
            .collect();
        ResponseOutcome::Error {
            code: u16::from(class & 0x07) * 100 + u16::from(number),
            unknown_attributes,
        }
    };
    Ok(BindingResponse {
        transaction_id: header.transaction_id,
        outcome,
    })
}
