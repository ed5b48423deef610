//! DTLS-SRTP for the lean audio-only WebRTC leg: one DTLS 1.2 handshake per call, sans-IO, on
//! `dimpl` (the DTLS engine of str0m's aws-lc-rs provider, on the same aws-lc crypto), ending in
//! the two SRTP master keys our [`crate::srtp`] needs.
//!
//! # What it implements
//!
//! - **RFC 5763 / RFC 5764 DTLS-SRTP.** A self-signed certificate per node
//!   ([`NodeCertificate`], ECDSA P-256, generated once, shared by every call), a DTLS 1.2
//!   handshake per call ([`DtlsLeg`]) with the `use_srtp` extension, and the RFC 5764 §4.2
//!   exporter output cut into our key and theirs by [`srtp::split_keying_material`]
//!   ([`SrtpKeys`]). The peer's certificate is self-signed and authenticated only by its
//!   fingerprint from the SDP (no PKI); a mismatch is fatal and yields no keys.
//! - **RFC 8122 fingerprints.** Ours as `a=fingerprint:sha-256 AB:CD:...` (upper-case hex,
//!   colons, §5) via [`NodeCertificate::sdp_fingerprint`]. Theirs: `sha-1`, `sha-256`,
//!   `sha-384` and `sha-512` (aws-lc-rs digests); other hash functions are ignored. When the
//!   peer lists several, the strongest hash function present is the one checked, and the
//!   certificate must match one of the fingerprints of that hash function (the RFC lets an
//!   endpoint choose the hash function it trusts most; several fingerprints of one function
//!   stand for several certificates, of which the peer uses one). The comparison is constant
//!   time.
//! - **RFC 8842 / RFC 4145 roles.** [`DtlsRole::Server`] for `a=setup:passive` (our answer to a
//!   browser's `actpass` offer: the browser, full ICE and controlling, opens DTLS once its
//!   checks succeed), [`DtlsRole::Client`] for `a=setup:active` (the browser answered our
//!   `actpass` offer with `passive`). [`DtlsRole::from_local_setup`] maps our own `a=setup`.
//! - **SRTP profiles:** `SRTP_AEAD_AES_256_GCM`, `SRTP_AEAD_AES_128_GCM` and
//!   `SRTP_AES128_CM_HMAC_SHA1_80`, the three both dimpl and [`crate::srtp`] implement. What is
//!   negotiated is dimpl's choice, with no setting for it: as a DTLS 1.2 **server** it picks
//!   by its own fixed priority, AES-256-GCM, then AES-128-GCM, then AES-CM-SHA1-80, whatever
//!   the order of the client's list (so GCM whenever the browser offers it); as a **client** it
//!   offers the same three in that order and takes what the server picks (a browser as DTLS
//!   server picks by its own preference). The tests check that a client offering all three
//!   (dimpl, and str0m as the browser) gets AES-256-GCM from a server leg.
//! - **Retransmissions and the browser's lost final flight** (RFC 6347 §4.2.4): dimpl resends
//!   a flight on its timer (1 s, doubling, 4 retries) and, once its part is done, resends its
//!   final flight whenever the peer's final flight comes again. As DTLS server our flight 6
//!   (ChangeCipherSpec + Finished) is the last one; if it is lost the browser times out and
//!   repeats flight 5, and the leg must still answer after it has handed out the keys. So the
//!   dimpl instance is kept after the handshake until the peer is known to be done, which is
//!   when the first SRTP or SRTCP packet from it authenticates under the new keys (the browser
//!   only derives them after it has verified our Finished): the bridge reports that with
//!   [`DtlsLeg::confirm_peer`]. Without that signal it is kept for
//!   [`DtlsLegConfig::handshake_state_grace`] after the handshake (30 s by default: the first
//!   several retransmissions of a 1-second doubling timer. RFC 6347 §4.2.4 asks for twice the
//!   TCP MSL, 4 minutes; a deliberate shortcut, as a call whose browser has not completed its
//!   handshake after 30 s has no media and is ended by the media timeout anyway). dimpl
//!   itself cannot tell: it learns that the peer is done only from DTLS application data,
//!   which an audio-only call never sends. After that the leg ignores DTLS datagrams.
//! - **Robustness.** Datagrams outside the DTLS range of RFC 7983 (first byte 20..=63) are
//!   ignored; dimpl drops malformed, truncated, replayed and out-of-window records itself and
//!   reports only fatal conditions. Nothing on the network path panics (the tests feed garbage,
//!   truncations and bit flips of real flights). Every [`DtlsError`] is final: the leg keeps
//!   returning it and holds no dimpl state after it.
//! - **A handshake deadline**: [`DtlsLegConfig::handshake_timeout`] (10 s by default) from the
//!   leg's creation; past it the leg fails with [`DtlsError::Timeout`].
//!
//! # What it leaves out
//!
//! DTLS 1.3 (dimpl has it, `Dtls::new_auto`; str0m 0.25 also defaults to 1.2, a browser that
//! offers 1.3 settles for 1.2 with us as server and accepts a 1.2-only ClientHello with us as
//! client; its ACK-based retransmission and its memory would want their own tests), data
//! channels (DTLS application data is dropped), session resumption and renegotiation (WebRTC
//! does a fresh handshake on an ICE restart: a new [`DtlsLeg`]), HelloVerifyRequest cookies
//! (ICE has already checked the return path, as in str0m), certificate rotation and persistence
//! (one certificate per node run, valid for a year from the start), and a
//! `close_notify` of ours (the call ends in signalling; the peer's `close_notify` during the
//! handshake grace ends the leg with [`DtlsError::ClosedByPeer`]).
//!
//! # How the bridge will use it
//!
//! At start: `NodeCertificate::generate()` once; every SDP we send carries
//! `cert.sdp_fingerprint()`. Per call: parse the browser's fingerprints with
//! [`PeerFingerprint::select_from_sdp`], make a [`DtlsLeg`] with the role of our `a=setup`
//! when the browser starts (its first valid ICE check, or its answer to our offer; a client
//! leg speaks once ICE has a nominated pair, as its first [`DtlsLeg::poll_output`] sends the
//! ClientHello). Datagrams from the browser's
//! ICE-verified address whose first byte is 20..=63 (RFC 7983) go to
//! [`DtlsLeg::handle_datagram`]; after every `handle_*` call, [`DtlsLeg::poll_output`] until
//! [`DtlsOutput::Timeout`]: [`DtlsOutput::Transmit`] goes to the browser,
//! [`DtlsOutput::Keys`] (once) gives the two [`srtp::Context`]s ([`SrtpKeys::contexts`]), the
//! timeout goes into the session deadline heap and comes back as [`DtlsLeg::handle_timeout`].
//! Any `Err` ends the call's WebRTC leg. When the first SRTP/SRTCP packet from the browser
//! unprotects, [`DtlsLeg::confirm_peer`] drops the dimpl instance (and
//! [`DtlsLeg::handle_timeout`] drops it at the end of the grace otherwise; the bridge can ask
//! [`DtlsLeg::is_done_with_handshake_state`]).
//!
//! # Cost
//!
//! Measured on this 2-core VM (AMD EPYC, aws-lc with its assembly). CPU: a complete in-memory
//! handshake, both sides in one thread (two ECDSA P-256 signatures and two verifications, two
//! P-256 key exchanges, the PRF, the exporter), takes about 0.21 ms of thread CPU time in a
//! release build without LTO (`cost_handshake_cpu` in `dtls/tests.rs`, `--ignored`), so about
//! 0.1 ms per call for our side; the certificate is generated once per node. Memory
//! (`cost_heap_per_leg`, 500 server legs kept alive under heaptrack, one run per phase, the peak
//! minus a run that keeps none, over 500; a debug build, which allocates as release does):
//!
//! | phase | inline | heap |
//! |---|---|---|
//! | created, no ClientHello yet | 224 B | about 4.6 KiB (dimpl's 3.3 KiB state machine, boxed, and its copy of the certificate and key) |
//! | ClientHello in, first flight out | 224 B | about 8 KiB |
//! | keys handed out, in the grace | 224 B | about 11 KiB (the received handshake messages and the saved final flight are most of the growth) |
//! | after [`DtlsLeg::confirm_peer`] or the grace | 224 B | nothing |
//!
//! So in steady state a call's DTLS costs its 224 bytes (plus the two [`srtp::Context`]s the
//! keys became); the 11 KiB of the grace last from the handshake to the browser's first
//! SRTP packet, normally tens of milliseconds. The node certificate (about 0.6 KiB of DER and
//! key and dimpl's configuration) exists once per node.

#![forbid(unsafe_code)]

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lc_rs::constant_time::verify_slices_are_equal;
use aws_lc_rs::digest;
use dimpl::{Dtls, DtlsCertificate, Output, SrtpProfile};
use shared::sdp::{Fingerprint, Setup};

use crate::srtp::{self, Context, MasterKey, Profile, SrtpError};

#[cfg(test)]
mod tests;

/// Default for [`DtlsLegConfig::handshake_timeout`].
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Default for [`DtlsLegConfig::handshake_state_grace`].
pub const DEFAULT_HANDSHAKE_STATE_GRACE: Duration = Duration::from_secs(30);
/// A buffer of this size always takes the next [`DtlsOutput::Transmit`] (dimpl writes records
/// of at most its MTU, 1150 bytes by default).
pub const POLL_BUFFER_LEN: usize = 2048;

/// Why a DTLS leg failed. Every error is final for the leg.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DtlsError {
    /// dimpl gave up on the handshake (or on the connection after it): its reason.
    #[error("DTLS handshake failed: {0}")]
    Handshake(dimpl::Error),
    /// The peer's certificate matches none of the fingerprints from its SDP (or it sent none).
    #[error("the peer's DTLS certificate does not match its SDP fingerprint")]
    FingerprintMismatch,
    /// The handshake completed without an SRTP protection profile (no `use_srtp` in common).
    #[error("no SRTP protection profile negotiated")]
    NoSrtpProfile,
    /// The SDP fingerprint uses a hash function we do not implement (e.g. `md5`).
    #[error("unsupported fingerprint hash function {0:?}")]
    UnsupportedFingerprintAlgorithm(String),
    /// A fingerprint whose length does not fit its hash function.
    #[error("{algorithm} fingerprint of {len} bytes")]
    InvalidFingerprint {
        /// The hash function's SDP name.
        algorithm: &'static str,
        /// The length given.
        len: usize,
    },
    /// No fingerprint to check the peer against.
    #[error("the peer's SDP has no fingerprint")]
    NoFingerprint,
    /// The handshake did not complete within this time from the leg's creation.
    #[error("DTLS handshake not done after {0:?}")]
    Timeout(Duration),
    /// The peer sent a `close_notify` alert.
    #[error("DTLS closed by the peer")]
    ClosedByPeer,
    /// Generating the node certificate failed.
    #[error("DTLS certificate generation failed")]
    Certificate,
    /// dimpl refused its configuration (cannot happen with the fixed settings used here).
    #[error("DTLS configuration refused: {0}")]
    Config(dimpl::Error),
    /// The exported keying material does not fit the profile (cannot happen with dimpl).
    #[error("SRTP keys: {0}")]
    Srtp(#[from] SrtpError),
}

/// The node's DTLS certificate: self-signed ECDSA P-256, generated once at start and shared by
/// every call (an [`Arc`] inside: cloning is cheap), with its SHA-256 fingerprint and the
/// dimpl configuration every leg uses.
#[derive(Clone)]
pub struct NodeCertificate(Arc<CertificateInner>);

struct CertificateInner {
    certificate: DtlsCertificate,
    config: Arc<dimpl::Config>,
    sha256: [u8; 32],
}

impl NodeCertificate {
    /// Generates a key pair and a self-signed certificate (dimpl's rcgen helper: ECDSA P-256,
    /// a random 128-bit serial number, valid for a year).
    pub fn generate() -> Result<Self, DtlsError> {
        let certificate = dimpl::certificate::generate_self_signed_certificate()
            .map_err(|_| DtlsError::Certificate)?;
        Self::from_certificate(certificate)
    }

    fn from_certificate(certificate: DtlsCertificate) -> Result<Self, DtlsError> {
        // ICE has already verified the return path before DTLS starts, so the server's cookie
        // exchange (HelloVerifyRequest) would only cost a round trip (str0m does the same).
        // A client certificate is required (the default): it is what the fingerprint checks.
        let config = dimpl::Config::builder()
            .use_server_cookie(false)
            .build()
            .map_err(DtlsError::Config)?;
        let sha256 = digest::digest(&digest::SHA256, &certificate.certificate);
        let mut bytes = [0; 32];
        bytes.copy_from_slice(sha256.as_ref());
        Ok(NodeCertificate(Arc::new(CertificateInner {
            certificate,
            config: Arc::new(config),
            sha256: bytes,
        })))
    }

    /// The certificate (DER).
    pub fn der(&self) -> &[u8] {
        &self.0.certificate.certificate
    }

    /// The SHA-256 digest of the certificate.
    pub fn sha256(&self) -> &[u8; 32] {
        &self.0.sha256
    }

    /// Our `a=fingerprint` (`sha-256`, upper-case hex: it displays as
    /// `sha-256 AB:CD:...`, the value after `a=fingerprint:`).
    pub fn sdp_fingerprint(&self) -> Fingerprint {
        Fingerprint::new(
            FingerprintAlgorithm::Sha256.sdp_name(),
            self.0.sha256.to_vec(),
        )
    }

    /// The value of our `a=fingerprint` attribute, `sha-256 AB:CD:...` (RFC 8122 §5).
    pub fn sdp_fingerprint_value(&self) -> String {
        let mut s = String::with_capacity(8 + 3 * self.0.sha256.len());
        s.push_str(FingerprintAlgorithm::Sha256.sdp_name());
        for (i, b) in self.0.sha256.iter().enumerate() {
            s.push(if i == 0 { ' ' } else { ':' });
            s.push(char::from(HEX_UPPER[usize::from(b >> 4)]));
            s.push(char::from(HEX_UPPER[usize::from(b & 0x0f)]));
        }
        s
    }

    /// What a peer expects of this certificate (for tests and for a leg talking to us).
    pub fn peer_fingerprint(&self) -> PeerFingerprint {
        PeerFingerprint {
            algorithm: FingerprintAlgorithm::Sha256,
            digest: {
                let mut d = [0; MAX_DIGEST_LEN];
                d[..32].copy_from_slice(&self.0.sha256);
                d
            },
        }
    }
}

const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";

impl fmt::Debug for NodeCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeCertificate")
            .field("fingerprint", &self.sdp_fingerprint_value())
            .finish_non_exhaustive()
    }
}

/// A certificate fingerprint hash function (RFC 8122 §5, "Hash Function Textual Names").
/// Ordered from weakest to strongest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FingerprintAlgorithm {
    /// `sha-1` (legacy; still accepted from peers, never used for ours).
    Sha1,
    /// `sha-256`, what browsers send and what we send.
    Sha256,
    /// `sha-384`.
    Sha384,
    /// `sha-512`.
    Sha512,
}

const MAX_DIGEST_LEN: usize = 64;

impl FingerprintAlgorithm {
    /// The hash function for an SDP name (case-insensitive), if we implement it.
    pub fn from_sdp_name(name: &str) -> Option<Self> {
        [Self::Sha1, Self::Sha256, Self::Sha384, Self::Sha512]
            .into_iter()
            .find(|a| a.sdp_name().eq_ignore_ascii_case(name))
    }

    /// The SDP name.
    pub const fn sdp_name(self) -> &'static str {
        match self {
            Self::Sha1 => "sha-1",
            Self::Sha256 => "sha-256",
            Self::Sha384 => "sha-384",
            Self::Sha512 => "sha-512",
        }
    }

    /// The digest length in bytes.
    pub const fn digest_len(self) -> usize {
        match self {
            Self::Sha1 => 20,
            Self::Sha256 => 32,
            Self::Sha384 => 48,
            Self::Sha512 => 64,
        }
    }

    fn digest_algorithm(self) -> &'static digest::Algorithm {
        match self {
            Self::Sha1 => &digest::SHA1_FOR_LEGACY_USE_ONLY,
            Self::Sha256 => &digest::SHA256,
            Self::Sha384 => &digest::SHA384,
            Self::Sha512 => &digest::SHA512,
        }
    }
}

/// A fingerprint the peer's certificate must match, from its SDP. Fixed size, no allocation.
#[derive(Clone, PartialEq, Eq)]
pub struct PeerFingerprint {
    algorithm: FingerprintAlgorithm,
    digest: [u8; MAX_DIGEST_LEN],
}

impl PeerFingerprint {
    /// A fingerprint of `algorithm`; `digest` must have the function's length.
    pub fn new(algorithm: FingerprintAlgorithm, digest: &[u8]) -> Result<Self, DtlsError> {
        if digest.len() != algorithm.digest_len() {
            return Err(DtlsError::InvalidFingerprint {
                algorithm: algorithm.sdp_name(),
                len: digest.len(),
            });
        }
        let mut d = [0; MAX_DIGEST_LEN];
        d[..digest.len()].copy_from_slice(digest);
        Ok(PeerFingerprint {
            algorithm,
            digest: d,
        })
    }

    /// One `a=fingerprint` from an SDP.
    pub fn from_sdp(fingerprint: &Fingerprint) -> Result<Self, DtlsError> {
        let algorithm = FingerprintAlgorithm::from_sdp_name(&fingerprint.hash_function)
            .ok_or_else(|| {
                DtlsError::UnsupportedFingerprintAlgorithm(fingerprint.hash_function.clone())
            })?;
        Self::new(algorithm, &fingerprint.bytes)
    }

    /// The usable fingerprints among an SDP's `a=fingerprint` lines (e.g.
    /// `SessionDescription::fingerprints_for(media)`): those of hash functions we do not
    /// implement are skipped; none left is [`DtlsError::UnsupportedFingerprintAlgorithm`]
    /// (or [`DtlsError::NoFingerprint`] for no lines at all); a line of a known hash function
    /// with the wrong length is an error.
    pub fn select_from_sdp<'f>(
        fingerprints: impl IntoIterator<Item = &'f Fingerprint>,
    ) -> Result<Vec<Self>, DtlsError> {
        let mut usable = Vec::new();
        let mut unsupported = None;
        for fingerprint in fingerprints {
            match Self::from_sdp(fingerprint) {
                Ok(f) => usable.push(f),
                Err(DtlsError::UnsupportedFingerprintAlgorithm(name)) => {
                    unsupported.get_or_insert(name);
                }
                Err(e) => return Err(e),
            }
        }
        match (usable.is_empty(), unsupported) {
            (false, _) => Ok(usable),
            (true, Some(name)) => Err(DtlsError::UnsupportedFingerprintAlgorithm(name)),
            (true, None) => Err(DtlsError::NoFingerprint),
        }
    }

    /// The hash function.
    pub fn algorithm(&self) -> FingerprintAlgorithm {
        self.algorithm
    }

    /// The digest.
    pub fn digest(&self) -> &[u8] {
        &self.digest[..self.algorithm.digest_len()]
    }

    /// Whether the certificate `der` has this fingerprint (constant-time comparison).
    pub fn matches(&self, der: &[u8]) -> bool {
        let actual = digest::digest(self.algorithm.digest_algorithm(), der);
        verify_slices_are_equal(actual.as_ref(), self.digest()).is_ok()
    }
}

impl fmt::Debug for PeerFingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PeerFingerprint({}", self.algorithm.sdp_name())?;
        for (i, b) in self.digest().iter().enumerate() {
            write!(f, "{}{b:02X}", if i == 0 { " " } else { ":" })?;
        }
        f.write_str(")")
    }
}

/// Our side of the DTLS handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DtlsRole {
    /// We wait for the ClientHello: our `a=setup:passive` (the answer to a browser's
    /// `actpass` offer, RFC 8842 §5).
    Server,
    /// We send the ClientHello: our `a=setup:active` (the browser answered our `actpass`
    /// offer with `passive`).
    Client,
}

impl DtlsRole {
    /// The role our own final `a=setup` gives us: `passive` is the server, `active` the
    /// client; `actpass` (not decided yet) and `holdconn` give none.
    pub fn from_local_setup(setup: Setup) -> Option<Self> {
        match setup {
            Setup::Passive => Some(DtlsRole::Server),
            Setup::Active => Some(DtlsRole::Client),
            Setup::Actpass | Setup::Holdconn => None,
        }
    }

    fn is_client(self) -> bool {
        self == DtlsRole::Client
    }
}

/// The SRTP profile and master keys a handshake produced: `local` protects what we send,
/// `remote` unprotects what the peer sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SrtpKeys {
    /// The negotiated protection profile.
    pub profile: Profile,
    /// Our master key and salt (the peer's `remote`).
    pub local: MasterKey,
    /// The peer's master key and salt (the peer's `local`).
    pub remote: MasterKey,
}

impl SrtpKeys {
    /// The two SRTP contexts: `(outbound, inbound)`, to protect with and to unprotect with.
    pub fn contexts(&self) -> Result<(Context, Context), SrtpError> {
        Ok((
            Context::new(self.profile, &self.local)?,
            Context::new(self.profile, &self.remote)?,
        ))
    }
}

/// Timing settings of a [`DtlsLeg`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DtlsLegConfig {
    /// The handshake must complete within this time from the leg's creation.
    pub handshake_timeout: Duration,
    /// How long the dimpl instance is kept after the handshake to answer a repeated final
    /// flight of the peer, unless [`DtlsLeg::confirm_peer`] says the peer is done first.
    pub handshake_state_grace: Duration,
}

impl Default for DtlsLegConfig {
    fn default() -> Self {
        DtlsLegConfig {
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            handshake_state_grace: DEFAULT_HANDSHAKE_STATE_GRACE,
        }
    }
}

/// What [`DtlsLeg::poll_output`] has for the caller.
#[derive(Debug)]
pub enum DtlsOutput<'a> {
    /// A datagram to send to the peer.
    Transmit(&'a [u8]),
    /// The handshake completed and the peer's certificate matched its fingerprint: the SRTP
    /// keys. Given once.
    Keys(SrtpKeys),
    /// The next datagram needs a buffer of this many bytes (never with [`POLL_BUFFER_LEN`]).
    BufferTooSmall(usize),
    /// Nothing more for now: call [`DtlsLeg::handle_timeout`] at this instant (`None`: no
    /// timer, the handshake state is gone). Always the last output of a round.
    Timeout(Option<Instant>),
}

/// One call's DTLS-SRTP endpoint. Sans-IO: feed it datagrams and time, poll it for datagrams,
/// keys and its next timeout.
pub struct DtlsLeg {
    /// The handshake engine: boxed (dimpl's state machine is large inline) and dropped once the
    /// handshake state is no longer needed, after a failure, or at the end of the grace.
    dtls: Option<Box<Dtls>>,
    role: DtlsRole,
    config: DtlsLegConfig,
    /// The fingerprints of the strongest hash function the peer listed; emptied once the
    /// certificate has been checked.
    expected: Vec<PeerFingerprint>,
    /// Handshake deadline.
    deadline: Instant,
    /// The latest time given to the leg (dimpl wants monotonic time).
    now: Instant,
    /// dimpl reported `Connected`.
    dimpl_connected: bool,
    /// The peer's certificate matched.
    peer_verified: bool,
    /// Keys from dimpl's keying material, until handed out.
    pending_keys: Option<SrtpKeys>,
    /// When the keys were handed out: the handshake is complete.
    connected_at: Option<Instant>,
    /// Set by [`DtlsLeg::confirm_peer`].
    peer_confirmed: bool,
    failure: Option<Box<DtlsError>>,
}

impl fmt::Debug for DtlsLeg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DtlsLeg")
            .field("role", &self.role)
            .field("dtls", &self.dtls)
            .field("connected_at", &self.connected_at)
            .field("peer_confirmed", &self.peer_confirmed)
            .field("failure", &self.failure)
            .finish_non_exhaustive()
    }
}

/// One step of dimpl's output, without a borrow of the caller's buffer.
enum Step {
    Packet { offset: usize, len: usize },
    BufferTooSmall(usize),
    Timeout(Instant),
    Again,
}

impl DtlsLeg {
    /// A leg with the default timing ([`DtlsLegConfig::default`]).
    pub fn new(
        certificate: &NodeCertificate,
        role: DtlsRole,
        peer_fingerprints: &[PeerFingerprint],
        now: Instant,
    ) -> Result<Self, DtlsError> {
        Self::with_config(
            certificate,
            role,
            peer_fingerprints,
            DtlsLegConfig::default(),
            now,
        )
    }

    /// A leg that will check the peer's certificate against `peer_fingerprints` (the
    /// strongest hash function among them: see the module documentation). A client leg sends
    /// its ClientHello at the first [`DtlsLeg::poll_output`].
    pub fn with_config(
        certificate: &NodeCertificate,
        role: DtlsRole,
        peer_fingerprints: &[PeerFingerprint],
        config: DtlsLegConfig,
        now: Instant,
    ) -> Result<Self, DtlsError> {
        let strongest = peer_fingerprints
            .iter()
            .map(PeerFingerprint::algorithm)
            .max()
            .ok_or(DtlsError::NoFingerprint)?;
        let expected = peer_fingerprints
            .iter()
            .filter(|f| f.algorithm == strongest)
            .cloned()
            .collect();
        let inner = &certificate.0;
        let mut dtls = Box::new(Dtls::new_12(
            Arc::clone(&inner.config),
            inner.certificate.clone(),
            now,
        ));
        if role.is_client() {
            dtls.set_active(true);
        }
        // Seeds dimpl's clock (and the server's random): a client queues its ClientHello.
        dtls.handle_timeout(now).map_err(DtlsError::Handshake)?;
        Ok(DtlsLeg {
            dtls: Some(dtls),
            role,
            config,
            expected,
            deadline: after(now, config.handshake_timeout),
            now,
            dimpl_connected: false,
            peer_verified: false,
            pending_keys: None,
            connected_at: None,
            peer_confirmed: false,
            failure: None,
        })
    }

    /// Our role.
    pub fn role(&self) -> DtlsRole {
        self.role
    }

    /// Whether the handshake completed and the keys were handed out.
    pub fn is_connected(&self) -> bool {
        self.connected_at.is_some()
    }

    /// The error the leg failed with, if it did.
    pub fn failure(&self) -> Option<&DtlsError> {
        self.failure.as_deref()
    }

    /// Whether the dimpl instance is still held (handshake running, or within the grace).
    pub fn has_handshake_state(&self) -> bool {
        self.dtls.is_some()
    }

    /// A datagram from the peer. Anything but DTLS (first byte outside 20..=63, RFC 7983) is
    /// ignored, and so is everything once the handshake state is gone. An `Err` is final.
    pub fn handle_datagram(&mut self, now: Instant, datagram: &[u8]) -> Result<(), DtlsError> {
        self.handle_timeout(now)?;
        let Some(dtls) = self.dtls.as_deref_mut() else {
            return Ok(());
        };
        if !matches!(datagram.first(), Some(20..=63)) {
            return Ok(());
        }
        match dtls.handle_packet(datagram) {
            Ok(()) => Ok(()),
            Err(e) => Err(self.fail(DtlsError::Handshake(e))),
        }
    }

    /// Advances time: retransmissions, the handshake deadline, the end of the grace. An `Err`
    /// is final.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), DtlsError> {
        self.check_failed()?;
        self.now = self.now.max(now);
        let now = self.now;
        match self.connected_at {
            None if now >= self.deadline => {
                return Err(self.fail(DtlsError::Timeout(self.config.handshake_timeout)));
            }
            Some(_) if self.is_done_with_handshake_state(now) => {
                self.dtls = None;
                return Ok(());
            }
            _ => {}
        }
        let Some(dtls) = self.dtls.as_deref_mut() else {
            return Ok(());
        };
        match dtls.handle_timeout(now) {
            Ok(()) => Ok(()),
            Err(e) => Err(self.fail(DtlsError::Handshake(e))),
        }
    }

    /// The next thing to do: call after every `handle_*` call until it returns
    /// [`DtlsOutput::Timeout`]. `buf` takes a datagram to send ([`POLL_BUFFER_LEN`] bytes are
    /// always enough). An `Err` is final.
    pub fn poll_output<'a>(&mut self, buf: &'a mut [u8]) -> Result<DtlsOutput<'a>, DtlsError> {
        let base = buf.as_ptr() as usize;
        loop {
            self.check_failed()?;
            if let Some(keys) = self.take_keys() {
                return Ok(DtlsOutput::Keys(keys));
            }
            let Some(dtls) = self.dtls.as_deref_mut() else {
                return Ok(DtlsOutput::Timeout(None));
            };
            let step = match dtls.poll_output(&mut *buf) {
                Output::Packet(p) => Step::Packet {
                    offset: (p.as_ptr() as usize).wrapping_sub(base),
                    len: p.len(),
                },
                Output::BufferTooSmall { needed } => Step::BufferTooSmall(needed),
                Output::Timeout(at) => Step::Timeout(at),
                Output::PeerCert(der) => {
                    self.check_peer_certificate(der)?;
                    Step::Again
                }
                Output::KeyingMaterial(material, profile) => {
                    self.accept_keying_material(&material[..], profile)?;
                    Step::Again
                }
                Output::Connected => {
                    self.dimpl_connected = true;
                    Step::Again
                }
                Output::CloseNotify => return Err(self.fail(DtlsError::ClosedByPeer)),
                // Application data (no data channels here) and anything a later dimpl adds.
                _ => Step::Again,
            };
            match step {
                Step::Again => continue,
                Step::BufferTooSmall(needed) => return Ok(DtlsOutput::BufferTooSmall(needed)),
                Step::Packet { offset, len } => {
                    let buf: &'a [u8] = buf;
                    // dimpl writes the record at the front of the buffer; the offset only
                    // guards against that changing.
                    match offset.checked_add(len).and_then(|end| buf.get(offset..end)) {
                        Some(datagram) => return Ok(DtlsOutput::Transmit(datagram)),
                        None => return Ok(DtlsOutput::BufferTooSmall(POLL_BUFFER_LEN)),
                    }
                }
                Step::Timeout(at) => {
                    self.check_connected()?;
                    return Ok(DtlsOutput::Timeout(Some(self.next_timeout(at))));
                }
            }
        }
    }

    /// Tells the leg that the peer is past its handshake: an SRTP or SRTCP packet from it
    /// authenticated under the keys of [`DtlsOutput::Keys`]. The dimpl instance is dropped (a
    /// repeated final flight can no longer come). Before the keys were handed out it does
    /// nothing.
    pub fn confirm_peer(&mut self) {
        if self.connected_at.is_some() {
            self.peer_confirmed = true;
            self.dtls = None;
        }
    }

    /// Whether the handshake state can go at `now`: the handshake is complete and either the
    /// peer is confirmed ([`DtlsLeg::confirm_peer`]) or the grace is over; or the leg failed.
    /// [`DtlsLeg::handle_timeout`] drops it by itself; this is for a bridge that wants to know.
    pub fn is_done_with_handshake_state(&self, now: Instant) -> bool {
        if self.failure.is_some() {
            return true;
        }
        match self.connected_at {
            Some(at) => self.peer_confirmed || now >= after(at, self.config.handshake_state_grace),
            None => false,
        }
    }

    fn check_failed(&self) -> Result<(), DtlsError> {
        match &self.failure {
            Some(e) => Err((**e).clone()),
            None => Ok(()),
        }
    }

    /// Records a final error and drops the handshake state.
    fn fail(&mut self, error: DtlsError) -> DtlsError {
        tracing::debug!(role = ?self.role, %error, "DTLS leg failed");
        self.dtls = None;
        self.pending_keys = None;
        self.expected = Vec::new();
        self.failure = Some(Box::new(error.clone()));
        error
    }

    fn check_peer_certificate(&mut self, der: &[u8]) -> Result<(), DtlsError> {
        // `expected` is empty only after a successful check: a second certificate (dimpl
        // reports one per handshake) would have nothing to match.
        if self.expected.iter().any(|f| f.matches(der)) {
            self.peer_verified = true;
            self.expected = Vec::new();
            Ok(())
        } else {
            Err(self.fail(DtlsError::FingerprintMismatch))
        }
    }

    fn accept_keying_material(
        &mut self,
        material: &[u8],
        profile: SrtpProfile,
    ) -> Result<(), DtlsError> {
        let profile = match profile {
            SrtpProfile::AES128_CM_SHA1_80 => Profile::AesCm128HmacSha1_80,
            SrtpProfile::AEAD_AES_128_GCM => Profile::AeadAes128Gcm,
            SrtpProfile::AEAD_AES_256_GCM => Profile::AeadAes256Gcm,
            _ => return Err(self.fail(DtlsError::NoSrtpProfile)),
        };
        match srtp::split_keying_material(profile, material, self.role.is_client()) {
            Ok((local, remote)) => {
                self.pending_keys = Some(SrtpKeys {
                    profile,
                    local,
                    remote,
                });
                Ok(())
            }
            Err(e) => Err(self.fail(DtlsError::Srtp(e))),
        }
    }

    /// The keys, once: dimpl connected, the certificate matched and the material is in.
    fn take_keys(&mut self) -> Option<SrtpKeys> {
        if !(self.dimpl_connected && self.peer_verified && self.connected_at.is_none()) {
            return None;
        }
        let keys = self.pending_keys.take()?;
        self.connected_at = Some(self.now);
        Some(keys)
    }

    /// At the end of a round (dimpl's state is consistent at its `Timeout`): a completed
    /// handshake must have given a verified certificate and keying material.
    fn check_connected(&mut self) -> Result<(), DtlsError> {
        if !self.dimpl_connected || self.connected_at.is_some() {
            return Ok(());
        }
        if !self.peer_verified {
            return Err(self.fail(DtlsError::FingerprintMismatch));
        }
        Err(self.fail(DtlsError::NoSrtpProfile))
    }

    fn next_timeout(&self, dimpl_at: Instant) -> Instant {
        match self.connected_at {
            None => dimpl_at.min(self.deadline),
            Some(at) => dimpl_at.min(after(at, self.config.handshake_state_grace)),
        }
    }
}

/// `t + d`, or a year after `t` where that does not fit an [`Instant`] (a huge configured
/// duration must not panic).
fn after(t: Instant, d: Duration) -> Instant {
    t.checked_add(d)
        .or_else(|| t.checked_add(Duration::from_secs(365 * 24 * 3600)))
        .unwrap_or(t)
}
