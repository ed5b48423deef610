//! The lean audio-only browser leg: one call's WebRTC side (ICE-lite, DTLS-SRTP, RTCP toward
//! the browser) composed from the node's own sans-IO parts; [`crate::bridge`] holds one per
//! session (it replaced a per-call str0m `Rtc`).
//!
//! # What it composes
//!
//! A [`BrowserLeg`] owns an [`IceLite`] agent (answers the browser's checks, nomination,
//! consent), a [`DtlsLeg`] (the DTLS 1.2 handshake on the node's [`NodeCertificate`], checked
//! against the browser's SDP fingerprints) and, once the handshake gave keys, two
//! [`srtp::Context`]s: ours protects what we send, theirs unprotects what the browser sends.
//! On top it keeps the few RTCP numbers an audio call needs ([`LegStats`]) and the receive
//! statistics of the browser's stream ([`BrowserLeg::received`], the bridge's
//! [`rtp::ReceiveStats`]), and sends an SR (an RR before we sent any RTP) with an SDES CNAME and
//! a report block toward the browser every [`REPORT_INTERVAL`].
//!
//! # Data flow
//!
//! - **In**: [`BrowserLeg::handle_datagram`] classifies by the first byte (RFC 7983,
//!   [`crate::demux`]). STUN goes to ICE (the response is queued). DTLS and SRTP are only
//!   accepted from an address ICE has validated with a check. DTLS drives the handshake
//!   (flights queued; the keys become the SRTP contexts). SRTP/SRTCP before the keys is
//!   dropped. RTP and RTCP share the port (RFC 5761 §4): the second byte with the marker bit
//!   masked off in 64..=95 (RTCP packet types 192..=223) is RTCP; RTP payload types 64..=95 are
//!   not used on a muxed port. RTP is unprotected in place and handed back as
//!   [`Received::Rtp`] (the plain packet at the front of the buffer, and its header read, so
//!   the bridge need not parse it again); RTCP is unprotected and
//!   read here (the report block about our SSRC gives RTT and loss, an SR from the browser is
//!   echoed in our next report's LSR/DLSR) and not handed on. The first packet that
//!   authenticates tells DTLS the browser is done ([`DtlsLeg::confirm_peer`]), which drops the
//!   handshake state.
//! - **Out**: [`BrowserLeg::protect_rtp`] protects a plain RTP packet in place and returns the
//!   ICE-selected address (before the browser's nominating check: the validated address its
//!   DTLS came from, as Chrome sends its first packets before it nominates), or refuses
//!   without keys, without such an address or without consent (RFC 7675 §5.1). ICE responses, DTLS flights and SRTCP reports wait in a small
//!   queue for [`BrowserLeg::poll_transmit`].
//! - **Time**: [`BrowserLeg::poll_timeout`] is the earliest of the DTLS timer, the next report
//!   and the consent deadline; [`BrowserLeg::handle_timeout`] runs DTLS retransmissions and
//!   deadlines (the handshake state goes after its grace), sends the due report and notes
//!   consent expiry ([`BrowserLeg::is_connected`] goes false).
//!
//! Nothing on the RTP path allocates: the packet is unprotected or protected in the caller's
//! buffer and counted. The transmit queue is one byte buffer and a ring of ranges reused for
//! every datagram (it grows during the handshake and keeps its capacity; after the handshake
//! state is dropped it is shrunk back to what an RTCP report needs).
//!
//! [`answer_sdp`] writes the node's answer to the browser's offer, [`offer_sdp`] the node's
//! offer (`a=setup:actpass`) to the browser; both go through one writer. [`BrowserSdp`] takes
//! what the leg needs (ICE credentials, fingerprints, setup, mid, direction) from the
//! browser's offer ([`BrowserSdp::from_offer`]) or answer
//! ([`BrowserSdp::from_answer`], which refuses `actpass`).
//!
//! # The node as offerer
//!
//! [`BrowserLeg::offerer`] makes a leg before the browser's answer exists: it has our ICE
//! credentials and certificate but no DTLS leg. The browser can start before its answer has
//! come back through the control API: its checks are answered (any remote ufrag, see
//! [`crate::ice`]), DTLS from a validated address is kept (up to [`MAX_EARLY_DTLS`]
//! datagrams, the oldest dropped and counted in [`LegStats::early_dtls_dropped`]), SRTP is
//! dropped ([`DropReason::NoKeys`]). [`BrowserLeg::apply_answer`] sets the browser's ufrag
//! and creates the DTLS leg with the role the answer's `a=setup` gives (`active`: we are the
//! server and the kept datagrams are handed over at once, so the browser's ClientHello is not
//! lost to its 1 s retransmission timer; `passive`: we are the client and send the
//! ClientHello at once if ICE has already nominated). From then on it is the same leg.
//!
//! # What it leaves out
//!
//! Video, several m-lines in one BUNDLE group, TURN, TCP candidates, DTLS 1.3, full ICE (see
//! [`crate::ice`]), data channels, NACK/retransmission, transport-cc and bandwidth estimation,
//! RTCP feedback messages, several SSRCs from the browser (the report block is about the
//! latest SSRC seen), and RTCP reduced-size. After consent expires nothing is sent; a later valid check from the browser
//! restores it (ICE keeps the selected address). As offerer: no timeout of its own for an
//! answer that never comes (the bridge's setup timeout ends the call), no re-offer or ICE
//! restart, and codec choice from the answer is the bridge's (the leg does not read the
//! answer's m-line).
//!
//! # How the bridge uses it
//!
//! [`crate::bridge::Bridge`] holds one [`BrowserLeg`] per session, all on the node's one
//! [`NodeCertificate`]. A browser's offer gives [`BrowserSdp::from_offer`] and a leg from
//! [`BrowserLeg::new`]; [`answer_sdp`] writes the answer (again, narrowed, once the upstream
//! has answered, and with the next `o=` version for a re-offer). The answerer leg's DTLS leg
//! starts with the browser's first valid ICE check: the browser may only get the answer when
//! the far end answers, and the handshake deadline counts from when it can start. For a call
//! from the SIP side the bridge makes a [`BrowserLeg::offerer`], sends [`offer_sdp`] through
//! the Worker and indexes the leg's ufrag at once, so early checks and DTLS reach it; the
//! answer goes to [`BrowserLeg::apply_answer`]. The bridge routes a datagram to the leg (STUN
//! by the local ufrag, the rest by source address), copies it once into a recycled buffer,
//! calls [`BrowserLeg::handle_datagram`] there and sends `Received::Rtp` on from the same
//! buffer; it counts `Received::Dropped` and ends the session on an `Err` (a DTLS failure;
//! the browser's `close_notify` during the handshake grace ends it as closed by the browser).
//! Packets toward the browser are written into a recycled buffer with
//! [`srtp::MAX_RTP_OVERHEAD`] spare bytes and go through [`BrowserLeg::protect_rtp`]. After
//! every call the bridge drains [`BrowserLeg::poll_transmit`] and puts
//! [`BrowserLeg::poll_timeout`] into its timer heap. A browser's new ICE ufrag in a re-offer
//! is an ICE restart ([`BrowserLeg::restart_ice`]).
//!
//! # Size
//!
//! Inline, `size_of::<BrowserLeg>()` is 1,016 bytes (the ignored test `leg::tests::inline_size`
//! prints it: [`IceLite`] 360, [`DtlsLeg`] 224, the rest counters, RTCP state and the queue
//! handles; an offerer leg's certificate handle and early DTLS queue are boxed and gone after
//! the answer). On the heap in steady state, from the parts' documentation (no heaptrack run):
//! the ICE HMAC key (about 1.2 KiB) and the credential strings (about 100 bytes), nothing for
//! DTLS (its handshake state is gone), the two SRTP contexts boxed together (2 x 480 bytes
//! plus about 1.2 KiB of aws-lc AEAD state each with GCM, or about 3.5 KiB each with
//! AES-CM), and the transmit and report buffers (at most 256 + 100 bytes): about 5 KiB with
//! GCM, about 9 KiB with AES-CM, against the 65 KiB str0m holds per call. During the
//! handshake add the DTLS leg's 5-11 KiB and the queued flights (a few KiB).

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::ops::Range;
use std::time::{Duration, Instant};

use shared::sdp::{
    Attribute, Candidate, Connection, Direction, Group, Media, MediaDescription, MediaType, Origin,
    PayloadCodec, Proto, Secret, SessionDescription, Setup, Ssrc,
};

use crate::bridge::{rtcp, rtp};
use crate::demux::{self, PacketKind};
use crate::dtls::{
    DtlsError, DtlsLeg, DtlsOutput, DtlsRole, NodeCertificate, PeerFingerprint, POLL_BUFFER_LEN,
};
use crate::ice::{Credentials, IceError, IceLite, MAX_RESPONSE_LEN};
use crate::srtp::{self, Context, SrtpError};

#[cfg(test)]
mod tests;

/// How often an RTCP report goes to the browser once the keys exist (RFC 3550's 5 s minimum).
pub const REPORT_INTERVAL: Duration = Duration::from_secs(5);
/// Datagrams the transmit queue holds at most; a further one replaces nothing and is dropped
/// (DTLS retransmits, ICE checks repeat).
pub const MAX_QUEUED: usize = 16;
/// A buffer of this size always takes the next [`BrowserLeg::poll_transmit`] datagram.
pub const MAX_TRANSMIT_LEN: usize = POLL_BUFFER_LEN;
/// DTLS datagrams an offerer leg keeps until the browser's answer creates its DTLS leg; a
/// further one drops the oldest ([`LegStats::early_dtls_dropped`]). An `active` browser's
/// first flight is one ClientHello datagram; eight leave room for its retransmissions (and
/// bound what a validated address can make us hold to about 8 x 1.5 KB).
pub const MAX_EARLY_DTLS: usize = 8;

/// How often a client leg without a selected address looks at its handshake deadline.
const CLIENT_WAIT_TICK: Duration = Duration::from_millis(500);

/// Why the leg failed or refused an operation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LegError {
    /// The DTLS handshake failed or timed out: final, the leg is dead.
    #[error("DTLS: {0}")]
    Dtls(#[from] DtlsError),
    /// SRTP keys from the handshake could not be used, or protecting a packet failed.
    #[error("SRTP: {0}")]
    Srtp(#[from] SrtpError),
    /// No SRTP keys yet: the DTLS handshake has not completed.
    #[error("no SRTP keys yet")]
    NoKeys,
    /// ICE has not nominated an address to send to.
    #[error("no ICE-selected address")]
    NotSelected,
    /// Consent to send to the selected address has expired (RFC 7675).
    #[error("ICE consent expired")]
    ConsentExpired,
    /// `len` is larger than the buffer, or the buffer has no room for the SRTP tag.
    #[error("bad buffer length")]
    BadLength,
    /// The SDP offer lacks something the leg needs.
    #[error("browser offer: {0}")]
    Offer(&'static str),
    /// The browser's SDP answer lacks something the leg needs or is not valid as an answer,
    /// or the leg is not waiting for one.
    #[error("browser answer: {0}")]
    Answer(&'static str),
}

/// Why a datagram was dropped, for counters. The leg is unaffected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// Not STUN, DTLS or RTP/RTCP by its first byte (RFC 7983), or empty.
    NotWebRtc,
    /// STUN that got no success response (an error response may have been queued).
    Stun(IceError),
    /// DTLS or SRTP from an address without a valid ICE check.
    UnvalidatedSource,
    /// SRTP or SRTCP before the DTLS handshake gave keys.
    NoKeys,
    /// SRTP that did not unprotect (authentication, replay, malformed).
    Srtp(SrtpError),
    /// SRTCP that did not unprotect.
    Srtcp(SrtpError),
    /// SRTCP that authenticated but is not a well-formed RTCP compound.
    BadRtcp,
}

/// What [`BrowserLeg::handle_datagram`] did with a datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received {
    /// Plain RTP from the browser, `buf[..len]`, ready for the bridge, with its header read.
    Rtp { len: usize, view: rtp::RtpView },
    /// SRTCP from the browser, read into [`LegStats`].
    Rtcp,
    /// STUN answered or DTLS progressed: see [`BrowserLeg::poll_transmit`].
    Handled,
    /// Dropped; nothing changed.
    Dropped(DropReason),
}

/// What the leg needs from the browser's offer and the node.
#[derive(Debug, Clone)]
pub struct LegParams {
    /// Our ICE credentials (they go into the answer).
    pub local_ice: Credentials,
    /// The browser's ICE credentials, if known.
    pub remote_ice: Option<Credentials>,
    /// The browser's `a=fingerprint`s.
    pub remote_fingerprints: Vec<PeerFingerprint>,
    /// Our DTLS role (from our `a=setup`).
    pub dtls_role: DtlsRole,
    /// The SSRC we send with (our `a=ssrc`), for our reports and the browser's blocks.
    pub ssrc: u32,
    /// The RTP clock rate of what we send, for the RTP timestamp of our SR.
    pub clock_rate: u32,
    /// The CNAME of our SDES (our `a=ssrc:... cname:`).
    pub cname: String,
}

/// What [`BrowserSdp::from_offer`] / [`BrowserSdp::from_answer`] take from the browser's SDP
/// (its first audio section).
#[derive(Debug, Clone)]
pub struct BrowserSdp {
    /// `a=mid` of the audio section.
    pub mid: String,
    /// The browser's ICE credentials.
    pub remote_ice: Credentials,
    /// The browser's fingerprints (usable hash functions only).
    pub remote_fingerprints: Vec<PeerFingerprint>,
    /// The browser's `a=setup`.
    pub setup: Setup,
    /// The browser's direction.
    pub direction: Direction,
}

impl BrowserSdp {
    /// Extracts the leg's inputs from the browser's offer; no `a=setup` reads as `actpass`.
    pub fn from_offer(sdp: &str) -> Result<Self, LegError> {
        Self::parse(sdp, LegError::Offer, Setup::Actpass)
    }

    /// Extracts the leg's inputs from the browser's answer to our [`offer_sdp`]. Its
    /// `a=setup` must be `active` or `passive` (RFC 8842 §5.3; none reads as `active`, RFC
    /// 4145 §4): `actpass` or `holdconn` is refused.
    pub fn from_answer(sdp: &str) -> Result<Self, LegError> {
        let answer = Self::parse(sdp, LegError::Answer, Setup::Active)?;
        answer.offerer_role()?;
        Ok(answer)
    }

    /// [`BrowserSdp::from_offer`] of an offer already parsed (the bridge reads its codecs
    /// from the same parse).
    pub fn from_parsed_offer(sdp: &SessionDescription) -> Result<Self, LegError> {
        Self::read(sdp, LegError::Offer, Setup::Actpass)
    }

    fn parse(
        sdp: &str,
        error: fn(&'static str) -> LegError,
        default_setup: Setup,
    ) -> Result<Self, LegError> {
        let parsed = SessionDescription::parse(sdp).map_err(|_| error("unparsable"))?;
        Self::read(&parsed, error, default_setup)
    }

    /// Reads the first audio section that is not rejected (port 0).
    fn read(
        parsed: &SessionDescription,
        error: fn(&'static str) -> LegError,
        default_setup: Setup,
    ) -> Result<Self, LegError> {
        let media = parsed
            .media
            .iter()
            .find(|m| m.media.media_type == MediaType::Audio && !m.is_rejected())
            .ok_or(error("no audio section"))?;
        let ufrag = parsed.ice_ufrag_for(media).ok_or(error("no a=ice-ufrag"))?;
        let pwd = parsed.ice_pwd_for(media).ok_or(error("no a=ice-pwd"))?;
        let remote_ice =
            Credentials::new(ufrag, pwd.expose()).map_err(|_| error("bad ICE credentials"))?;
        let remote_fingerprints = PeerFingerprint::select_from_sdp(parsed.fingerprints_for(media))
            .map_err(|_| error("no usable a=fingerprint"))?;
        Ok(BrowserSdp {
            mid: media.mid().ok_or(error("no a=mid"))?.to_owned(),
            remote_ice,
            remote_fingerprints,
            setup: parsed.setup_for(media).unwrap_or(default_setup),
            direction: parsed.direction_for(media),
        })
    }

    /// Our DTLS role when this is the browser's answer to our `actpass` offer: its `active`
    /// makes us the server, its `passive` the client; anything else is not an answer.
    pub fn offerer_role(&self) -> Result<DtlsRole, LegError> {
        match self.setup {
            Setup::Active => Ok(DtlsRole::Server),
            Setup::Passive => Ok(DtlsRole::Client),
            Setup::Actpass => Err(LegError::Answer("a=setup:actpass in an answer")),
            Setup::Holdconn => Err(LegError::Answer("a=setup:holdconn")),
        }
    }

    /// Our `a=setup` in the answer (RFC 8842 §5): `passive` for `actpass` or `active`,
    /// `active` for `passive`.
    pub fn answer_setup(&self) -> Setup {
        match self.setup {
            Setup::Passive => Setup::Active,
            _ => Setup::Passive,
        }
    }

    /// The leg parameters for this offer (`clock_rate` is 8000: set it for the codec the
    /// bridge sends, e.g. 48000 for Opus).
    pub fn leg_params(&self, local_ice: Credentials, ssrc: u32, cname: &str) -> LegParams {
        LegParams {
            local_ice,
            remote_ice: Some(self.remote_ice.clone()),
            remote_fingerprints: self.remote_fingerprints.clone(),
            dtls_role: DtlsRole::from_local_setup(self.answer_setup()).unwrap_or(DtlsRole::Server),
            ssrc,
            clock_rate: 8000,
            cname: cname.to_owned(),
        }
    }
}

/// RTCP-level numbers of the call, toward and from the browser.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LegStats {
    /// RTP packets we protected.
    pub packets_sent: u32,
    /// RTP payload octets we protected.
    pub octets_sent: u32,
    /// SRTCP packets from the browser that unprotected.
    pub rtcp_received: u64,
    /// Report blocks from the browser about our SSRC.
    pub reports_received: u64,
    /// Our reports sent (SR or RR).
    pub reports_sent: u64,
    /// Round trip from the latest report block with an LSR, ms.
    pub rtt_ms: Option<u32>,
    /// Fraction lost of our stream in the latest report block, 1/256.
    pub fraction_lost: u8,
    /// Cumulative packets of ours lost in the latest report block.
    pub cumulative_lost: i32,
    /// DTLS datagrams an offerer leg dropped from its queue before the answer (oldest first,
    /// past [`MAX_EARLY_DTLS`]), or discarded because the answer made it the DTLS client.
    pub early_dtls_dropped: u32,
}

/// SRTP state once the handshake gave keys; boxed in the leg (two contexts are about 1 KiB
/// inline).
struct Keyed {
    outbound: Context,
    inbound: Context,
}

/// What an offerer leg holds until the browser's answer: the certificate its DTLS leg will use
/// and the DTLS datagrams that came first. Boxed in the leg, gone after the answer.
struct AwaitingAnswer {
    certificate: NodeCertificate,
    early_dtls: VecDeque<Vec<u8>>,
}

/// What an answerer leg needs to make its DTLS leg once the browser starts (its first valid
/// ICE check): the browser may get our answer only when the far end answers, long after the
/// leg was made, and the DTLS handshake deadline must not run before then. Boxed in the leg.
struct DeferredDtls {
    certificate: NodeCertificate,
    role: DtlsRole,
    fingerprints: Vec<PeerFingerprint>,
}

/// One call's browser side: ICE-lite + DTLS-SRTP + RTCP, sans-IO. See the module documentation.
pub struct BrowserLeg {
    ice: IceLite,
    /// `None` in an answerer leg until the browser's first valid check, and in an offerer leg
    /// until the browser's answer.
    dtls: Option<DtlsLeg>,
    deferred_dtls: Option<Box<DeferredDtls>>,
    awaiting_answer: Option<Box<AwaitingAnswer>>,
    keys: Option<Box<Keyed>>,
    /// Where DTLS flights go: the source of the last DTLS datagram, or the selected address.
    dtls_peer: Option<SocketAddr>,
    dtls_timeout: Option<Instant>,
    peer_confirmed: bool,
    ssrc: u32,
    clock_rate: u32,
    cname: String,
    stats: LegStats,
    /// The browser's RTP stream (RFC 3550 A.1, A.3, A.8), for our report blocks and the
    /// bridge's call quality.
    received: rtp::ReceiveStats,
    /// Middle 32 bits of the browser's last SR and when it arrived (our blocks' LSR/DLSR).
    browser_sr: Option<(u32, Instant)>,
    /// RTP timestamp of the latest packet we sent and when.
    last_sent: Option<(u32, Instant)>,
    next_report: Option<Instant>,
    consent_lost: bool,
    /// The transmit queue was shrunk after the handshake.
    shrunk: bool,
    ntp: rtcp::NtpClock,
    /// Arrival times of the browser's packets count from here (for jitter).
    clock_base: Instant,
    /// The transmit queue: datagram bytes and (destination, range) per datagram.
    tx_bytes: Vec<u8>,
    tx: VecDeque<(SocketAddr, Range<usize>)>,
    /// Scratch for our RTCP reports.
    report: Vec<u8>,
}

impl std::fmt::Debug for BrowserLeg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrowserLeg")
            .field("ice", &self.ice)
            .field("dtls", &self.dtls)
            .field("awaiting_answer", &self.awaiting_answer.is_some())
            .field("keyed", &self.keys.is_some())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl BrowserLeg {
    /// A leg for one call, made from the browser's offer (the node answers). Its DTLS leg
    /// starts with the browser's first valid ICE check (the browser has our answer then), so
    /// the handshake deadline counts from there and a call that rings for a while holds no
    /// handshake state. A server leg then waits for the browser's ClientHello; a client leg
    /// sends its ClientHello once ICE has nominated an address. Refused without a fingerprint.
    pub fn new(
        now: Instant,
        certificate: &NodeCertificate,
        params: LegParams,
    ) -> Result<Self, LegError> {
        if params.remote_fingerprints.is_empty() {
            return Err(LegError::Dtls(DtlsError::NoFingerprint));
        }
        let mut ice = IceLite::new(params.local_ice);
        if let Some(remote) = params.remote_ice {
            ice.set_remote(remote);
        }
        let mut leg = Self::without_dtls(now, ice, params.ssrc, params.clock_rate, params.cname);
        leg.deferred_dtls = Some(Box::new(DeferredDtls {
            certificate: certificate.clone(),
            role: params.dtls_role,
            fingerprints: params.remote_fingerprints,
        }));
        Ok(leg)
    }

    /// An answerer leg at the browser's first valid check: its DTLS leg starts now.
    fn start_deferred_dtls(&mut self, now: Instant) -> Result<(), LegError> {
        let Some(deferred) = self.deferred_dtls.take() else {
            return Ok(());
        };
        let dtls = DtlsLeg::new(
            &deferred.certificate,
            deferred.role,
            &deferred.fingerprints,
            now,
        )?;
        self.dtls = Some(dtls);
        self.dtls_timeout = Some(now);
        Ok(())
    }

    /// A leg for a call where the node offers ([`offer_sdp`] with `local_ice`) and the
    /// browser's answer comes later ([`BrowserLeg::apply_answer`]). Until then it answers the
    /// browser's ICE checks (whatever their remote ufrag), keeps up to [`MAX_EARLY_DTLS`] DTLS
    /// datagrams from validated addresses for the DTLS leg the answer creates, and drops SRTP.
    /// `clock_rate` is that of the codec we send (for our SR).
    pub fn offerer(
        now: Instant,
        certificate: &NodeCertificate,
        local_ice: Credentials,
        ssrc: u32,
        clock_rate: u32,
        cname: &str,
    ) -> Self {
        let awaiting = AwaitingAnswer {
            certificate: certificate.clone(),
            early_dtls: VecDeque::new(),
        };
        let mut leg = Self::without_dtls(
            now,
            IceLite::new(local_ice),
            ssrc,
            clock_rate,
            cname.to_owned(),
        );
        leg.awaiting_answer = Some(Box::new(awaiting));
        leg
    }

    /// Applies the browser's answer to our offer ([`BrowserSdp::from_answer`]): its ICE ufrag
    /// is checked from now on, its `a=setup` gives our DTLS role (`active`: we are the
    /// server and the DTLS datagrams kept so far go to the new DTLS leg at once; `passive`:
    /// we are the client and send the ClientHello as soon as ICE has nominated, at once if it
    /// already has). Refused, with the leg unchanged, for an answer with `actpass` or
    /// without fingerprints, or when the leg is not waiting for an answer.
    pub fn apply_answer(&mut self, now: Instant, answer: &BrowserSdp) -> Result<(), LegError> {
        if self.awaiting_answer.is_none() {
            return Err(LegError::Answer("the leg is not waiting for an answer"));
        }
        let role = answer.offerer_role()?;
        if answer.remote_fingerprints.is_empty() {
            return Err(LegError::Answer("no usable a=fingerprint"));
        }
        let Some(awaiting) = self.awaiting_answer.as_deref() else {
            return Err(LegError::Answer("the leg is not waiting for an answer"));
        };
        let dtls = DtlsLeg::new(
            &awaiting.certificate,
            role,
            &answer.remote_fingerprints,
            now,
        )?;
        let early = self
            .awaiting_answer
            .take()
            .map(|a| a.early_dtls)
            .unwrap_or_default();
        self.ice.set_remote(answer.remote_ice.clone());
        self.dtls = Some(dtls);
        self.dtls_timeout = Some(now);
        match role {
            DtlsRole::Server => {
                for datagram in &early {
                    if let Some(dtls) = self.dtls.as_mut() {
                        dtls.handle_datagram(now, datagram)?;
                    }
                }
            }
            DtlsRole::Client => {
                let discarded = u32::try_from(early.len()).unwrap_or(u32::MAX);
                self.stats.early_dtls_dropped =
                    self.stats.early_dtls_dropped.saturating_add(discarded);
                if self.dtls_peer.is_none() {
                    self.dtls_peer = self.ice.selected();
                }
            }
        }
        self.pump_dtls(now)
    }

    /// An offerer leg still waiting for the browser's answer.
    pub fn is_awaiting_answer(&self) -> bool {
        self.awaiting_answer.is_some()
    }

    /// A leg whose DTLS leg does not exist yet (the constructors say what it waits for).
    fn without_dtls(now: Instant, ice: IceLite, ssrc: u32, clock_rate: u32, cname: String) -> Self {
        BrowserLeg {
            ice,
            dtls: None,
            deferred_dtls: None,
            awaiting_answer: None,
            keys: None,
            dtls_peer: None,
            dtls_timeout: None,
            peer_confirmed: false,
            ssrc,
            clock_rate: clock_rate.max(1),
            cname,
            stats: LegStats::default(),
            received: rtp::ReceiveStats::default(),
            browser_sr: None,
            last_sent: None,
            next_report: None,
            consent_lost: false,
            shrunk: false,
            ntp: rtcp::NtpClock::new(now),
            clock_base: now,
            tx_bytes: Vec::new(),
            tx: VecDeque::new(),
            report: Vec::new(),
        }
    }

    /// Our ICE credentials (for the answer).
    pub fn local_credentials(&self) -> &Credentials {
        self.ice.local_credentials()
    }

    /// The ICE-selected address, if any.
    pub fn selected(&self) -> Option<SocketAddr> {
        self.ice.selected()
    }

    /// The browser's ICE credentials, once known (its offer, or its answer to ours).
    pub fn remote_credentials(&self) -> Option<&Credentials> {
        self.ice.remote_credentials()
    }

    /// ICE restart (RFC 8445 §9) from the browser's new offer: new credentials both ways. The
    /// selected address, its consent and the DTLS-SRTP keys stay, so media keeps flowing
    /// until the browser nominates under the new credentials.
    pub fn restart_ice(&mut self, local: Credentials, remote: Credentials) {
        self.ice.restart(local, Some(remote));
    }

    /// RTCP-level statistics.
    pub fn stats(&self) -> &LegStats {
        &self.stats
    }

    /// The browser's RTP stream as received: packets, bytes, loss, jitter.
    pub fn received(&self) -> &rtp::ReceiveStats {
        &self.received
    }

    /// The RTP clock rate of the call's codec, when the codec the call settled on is not the
    /// one the leg was made with (the upstream's answer narrowed the codecs): it times our
    /// sender reports and the browser stream's jitter.
    pub fn set_clock_rate(&mut self, clock_rate: u32) {
        self.clock_rate = clock_rate.max(1);
    }

    /// Whether the DTLS handshake has given the SRTP keys.
    pub fn has_keys(&self) -> bool {
        self.keys.is_some()
    }

    /// The SRTP protection profile the DTLS handshake settled on, once it has.
    pub fn srtp_profile(&self) -> Option<srtp::Profile> {
        self.keys.as_deref().map(|k| k.outbound.profile())
    }

    /// Whether the DTLS handshake state (dimpl) is still held.
    pub fn has_handshake_state(&self) -> bool {
        self.dtls.as_ref().is_some_and(DtlsLeg::has_handshake_state)
    }

    /// Our DTLS role; `None` in an offerer leg before the answer.
    pub fn dtls_role(&self) -> Option<DtlsRole> {
        self.dtls
            .as_ref()
            .map(DtlsLeg::role)
            .or(self.deferred_dtls.as_ref().map(|d| d.role))
    }

    /// Media can flow: ICE has a selected address, DTLS gave keys, and consent had not expired
    /// at the last `handle_*` call.
    pub fn is_connected(&self) -> bool {
        self.ice.selected().is_some() && self.keys.is_some() && !self.consent_lost
    }

    /// Consent to send has run out at `now` (RFC 7675 §5.1); `false` before the first check.
    pub fn consent_expired(&self, now: Instant) -> bool {
        self.ice.consent_expired(now)
    }

    /// One datagram from `source` in `buf[..len]`. See [`Received`]. An `Err` is a DTLS
    /// failure: final for the leg.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        source: SocketAddr,
        buf: &mut [u8],
        len: usize,
    ) -> Result<Received, LegError> {
        let Some(datagram) = buf.get_mut(..len) else {
            return Err(LegError::BadLength);
        };
        match demux::classify(datagram) {
            PacketKind::Stun => self.handle_stun(now, source, datagram),
            PacketKind::Dtls => {
                if !self.is_validated(source) {
                    return Ok(Received::Dropped(DropReason::UnvalidatedSource));
                }
                self.dtls_peer = Some(source);
                match self.dtls.as_mut() {
                    Some(dtls) => {
                        dtls.handle_datagram(now, datagram)?;
                        self.pump_dtls(now)?;
                    }
                    None => self.keep_early_dtls(datagram),
                }
                Ok(Received::Handled)
            }
            PacketKind::Rtp => self.handle_srtp(now, source, datagram),
            PacketKind::Other => Ok(Received::Dropped(DropReason::NotWebRtc)),
        }
    }

    fn handle_stun(
        &mut self,
        now: Instant,
        source: SocketAddr,
        datagram: &[u8],
    ) -> Result<Received, LegError> {
        let mut out = [0u8; MAX_RESPONSE_LEN];
        match self.ice.handle_request(now, source, datagram, &mut out) {
            Ok(handled) => {
                self.enqueue(source, &out[..handled.response_len]);
                self.consent_lost = self.ice.consent_expired(now);
                if self.deferred_dtls.is_some() {
                    self.start_deferred_dtls(now)?;
                    self.pump_dtls(now)?;
                }
                let client = self.dtls_role() == Some(DtlsRole::Client);
                if client && self.dtls_peer.is_none() {
                    self.dtls_peer = self.ice.selected();
                }
                if handled.selected_changed && client {
                    self.pump_dtls(now)?;
                }
                Ok(Received::Handled)
            }
            Err(e) => {
                if let Some(n) = e.response_len() {
                    self.enqueue(source, &out[..n]);
                }
                Ok(Received::Dropped(DropReason::Stun(e)))
            }
        }
    }

    fn handle_srtp(
        &mut self,
        now: Instant,
        source: SocketAddr,
        datagram: &mut [u8],
    ) -> Result<Received, LegError> {
        if !self.is_validated(source) {
            return Ok(Received::Dropped(DropReason::UnvalidatedSource));
        }
        let Some(keys) = self.keys.as_deref_mut() else {
            return Ok(Received::Dropped(DropReason::NoKeys));
        };
        if rtp::is_rtcp(datagram) {
            let n = match keys.inbound.unprotect_rtcp(datagram) {
                Ok(n) => n,
                Err(e) => return Ok(Received::Dropped(DropReason::Srtcp(e))),
            };
            self.confirm_peer();
            self.stats.rtcp_received += 1;
            let Some(report) = rtcp::parse(&datagram[..n], self.ssrc) else {
                return Ok(Received::Dropped(DropReason::BadRtcp));
            };
            if let Some((ssrc, ntp_mid)) = report.sender_report {
                if self.received.ssrc().is_none_or(|s| s == ssrc) {
                    self.browser_sr = Some((ntp_mid, now));
                }
            }
            if let Some(block) = report.block {
                self.stats.reports_received += 1;
                self.stats.fraction_lost = block.fraction_lost;
                self.stats.cumulative_lost = block.cumulative_lost;
                if let Some(rtt) = rtcp::rtt_ms(self.ntp.at(now), &block) {
                    self.stats.rtt_ms = Some(rtt);
                }
            }
            Ok(Received::Rtcp)
        } else {
            let n = match keys.inbound.unprotect_rtp(datagram) {
                Ok(n) => n,
                Err(e) => return Ok(Received::Dropped(DropReason::Srtp(e))),
            };
            self.confirm_peer();
            // Authentic, so well-formed but for padding that does not fit the payload.
            let Some(view) = datagram.get(..n).and_then(rtp::parse) else {
                return Ok(Received::Dropped(DropReason::Srtp(SrtpError::BadHeader)));
            };
            let arrival_us = now.saturating_duration_since(self.clock_base).as_micros() as u64;
            let payload_len = view.payload.1 - view.payload.0;
            self.received
                .record(&view, payload_len, arrival_us, self.clock_rate);
            Ok(Received::Rtp { len: n, view })
        }
    }

    /// SRTP-protects the plain RTP packet `buf[..len]` in place (`buf` needs
    /// [`srtp::MAX_RTP_OVERHEAD`] spare bytes) and says where it goes: the ICE-selected address
    /// (until the browser nominates, the validated address its DTLS came from). Refused
    /// without keys, without an address, or once consent expired.
    pub fn protect_rtp(
        &mut self,
        now: Instant,
        buf: &mut [u8],
        len: usize,
    ) -> Result<(SocketAddr, usize), LegError> {
        let destination = self.destination().ok_or(LegError::NotSelected)?;
        if self.ice.consent_expired(now) {
            self.consent_lost = true;
            return Err(LegError::ConsentExpired);
        }
        let keys = self.keys.as_deref_mut().ok_or(LegError::NoKeys)?;
        let view = buf
            .get(..len)
            .and_then(rtp::parse)
            .ok_or(LegError::Srtp(SrtpError::BadHeader))?;
        let n = keys.outbound.protect_rtp(buf, len)?;
        self.stats.packets_sent = self.stats.packets_sent.wrapping_add(1);
        let payload = (view.payload.1 - view.payload.0) as u32;
        self.stats.octets_sent = self.stats.octets_sent.wrapping_add(payload);
        self.last_sent = Some((view.timestamp, now));
        Ok((destination, n))
    }

    /// Whether a datagram waits for [`BrowserLeg::poll_transmit`].
    pub fn has_transmit(&self) -> bool {
        !self.tx.is_empty()
    }

    /// The next queued datagram (ICE response, DTLS flight, SRTCP report) into `out`
    /// ([`MAX_TRANSMIT_LEN`] bytes always suffice; a datagram that does not fit is dropped).
    pub fn poll_transmit(&mut self, out: &mut [u8]) -> Option<(SocketAddr, usize)> {
        while let Some((destination, range)) = self.tx.pop_front() {
            let n = range.len();
            let copied = match (out.get_mut(..n), self.tx_bytes.get(range)) {
                (Some(slot), Some(bytes)) => {
                    slot.copy_from_slice(bytes);
                    true
                }
                _ => false,
            };
            if self.tx.is_empty() {
                // Everything queued has gone: reuse the bytes from the start.
                self.tx_bytes.clear();
            }
            if copied {
                return Some((destination, n));
            }
        }
        None
    }

    /// When [`BrowserLeg::handle_timeout`] is next due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let consent = if self.consent_lost {
            None
        } else {
            self.ice.consent_deadline()
        };
        [self.dtls_timeout, self.next_report, consent]
            .into_iter()
            .flatten()
            .min()
    }

    /// Advances time: DTLS retransmissions and deadlines, the RTCP report when due, consent.
    /// An `Err` is a DTLS failure: final for the leg.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), LegError> {
        self.consent_lost = self.ice.consent_expired(now);
        if let Some(dtls) = self.dtls.as_mut().filter(|d| d.has_handshake_state()) {
            dtls.handle_timeout(now)?;
            self.pump_dtls(now)?;
        }
        if !self.shrunk && self.dtls.is_some() && !self.has_handshake_state() && self.tx.is_empty()
        {
            // The handshake flights are gone for good: keep what a report needs.
            self.shrunk = true;
            self.tx_bytes.shrink_to(256);
            self.tx.shrink_to(2);
        }
        if let Some(at) = self.next_report {
            if now >= at {
                self.next_report = Some(at.max(now - REPORT_INTERVAL) + REPORT_INTERVAL);
                self.send_report(now)?;
            }
        }
        Ok(())
    }

    fn send_report(&mut self, now: Instant) -> Result<(), LegError> {
        let Some(destination) = self.destination() else {
            return Ok(());
        };
        if self.consent_lost {
            return Ok(());
        }
        let sender = self.last_sent.map(|(ts, at)| {
            let elapsed = now.saturating_duration_since(at);
            let ticks = elapsed.as_micros() * u128::from(self.clock_rate) / 1_000_000;
            rtcp::SenderInfo {
                ntp: self.ntp.at(now),
                rtp_timestamp: ts.wrapping_add(ticks as u32),
                packets: self.stats.packets_sent,
                octets: self.stats.octets_sent,
            }
        });
        let block = self.received.report_block().map(|mut block| {
            if let Some((lsr, at)) = self.browser_sr {
                block.lsr = lsr;
                block.dlsr = rtcp::dlsr_of(now.saturating_duration_since(at));
            }
            block
        });
        let mut report = std::mem::take(&mut self.report);
        rtcp::write_report(&mut report, self.ssrc, sender.as_ref(), block.as_ref());
        write_sdes_cname(&mut report, self.ssrc, &self.cname);
        let len = report.len();
        report.resize(len + srtp::MAX_RTCP_OVERHEAD, 0);
        let result = match self.keys.as_deref_mut() {
            Some(keys) => keys.outbound.protect_rtcp(&mut report, len),
            None => Err(SrtpError::Unsupported),
        };
        if let Ok(n) = result {
            self.enqueue(destination, &report[..n]);
            self.stats.reports_sent += 1;
        }
        self.report = report;
        match result {
            Ok(_) | Err(SrtpError::Unsupported) => Ok(()),
            Err(e) => Err(LegError::Srtp(e)),
        }
    }

    /// Polls DTLS until its timeout: flights to the queue, keys to the SRTP contexts.
    fn pump_dtls(&mut self, now: Instant) -> Result<(), LegError> {
        let Some(role) = self.dtls.as_ref().map(DtlsLeg::role) else {
            return Ok(());
        };
        let peer = self.dtls_peer.or(self.ice.selected());
        if peer.is_none() && role == DtlsRole::Client {
            // A client leg speaks first only once ICE has nominated where to; until then only
            // its handshake deadline needs a look now and then.
            self.dtls_timeout = Some(now + CLIENT_WAIT_TICK);
            return Ok(());
        }
        let mut buf = [0u8; POLL_BUFFER_LEN];
        loop {
            let Some(dtls) = self.dtls.as_mut() else {
                return Ok(());
            };
            match dtls.poll_output(&mut buf)? {
                DtlsOutput::Transmit(datagram) => {
                    if let Some(peer) = peer {
                        self.enqueue(peer, datagram);
                    }
                }
                DtlsOutput::Keys(keys) => {
                    let (outbound, inbound) = keys.contexts()?;
                    self.keys = Some(Box::new(Keyed { outbound, inbound }));
                    self.next_report = Some(now + REPORT_INTERVAL);
                }
                DtlsOutput::BufferTooSmall(_) => {}
                DtlsOutput::Timeout(at) => {
                    self.dtls_timeout = at;
                    return Ok(());
                }
            }
        }
    }

    fn confirm_peer(&mut self) {
        if !self.peer_confirmed {
            self.peer_confirmed = true;
            if let Some(dtls) = self.dtls.as_mut() {
                dtls.confirm_peer();
            }
            self.dtls_timeout = None;
        }
    }

    /// An offerer leg before the answer: keeps the datagram for the DTLS leg to come.
    fn keep_early_dtls(&mut self, datagram: &[u8]) {
        let Some(awaiting) = self.awaiting_answer.as_deref_mut() else {
            return;
        };
        if awaiting.early_dtls.len() >= MAX_EARLY_DTLS {
            awaiting.early_dtls.pop_front();
            self.stats.early_dtls_dropped = self.stats.early_dtls_dropped.saturating_add(1);
        }
        awaiting.early_dtls.push_back(datagram.to_vec());
    }

    /// Where media goes: the ICE-selected address, or before the browser nominates one, the
    /// validated address its DTLS came from (a browser starts its media as soon as DTLS is
    /// done, often a few packets before its nominating check).
    fn destination(&self) -> Option<SocketAddr> {
        self.ice.selected().or(self.dtls_peer)
    }

    fn is_validated(&self, source: SocketAddr) -> bool {
        self.ice.selected() == Some(source) || self.ice.addresses().any(|a| a == source)
    }

    fn enqueue(&mut self, destination: SocketAddr, datagram: &[u8]) {
        if self.tx.len() >= MAX_QUEUED || datagram.len() > MAX_TRANSMIT_LEN {
            return;
        }
        let start = self.tx_bytes.len();
        self.tx_bytes.extend_from_slice(datagram);
        self.tx
            .push_back((destination, start..start + datagram.len()));
    }
}

/// Appends an SDES packet with one CNAME chunk (RFC 3550 §6.5) to a report.
fn write_sdes_cname(out: &mut Vec<u8>, ssrc: u32, cname: &str) {
    let cname = &cname.as_bytes()[..cname.len().min(255)];
    // SSRC, CNAME type and length, the text, then at least one zero octet to a 32-bit boundary.
    let chunk = 4 + 2 + cname.len();
    let padded = (chunk + 1).div_ceil(4) * 4;
    out.push(0x81);
    out.push(202);
    out.extend_from_slice(&((padded / 4) as u16).to_be_bytes());
    out.extend_from_slice(&ssrc.to_be_bytes());
    out.push(1);
    out.push(cname.len() as u8);
    out.extend_from_slice(cname);
    out.resize(out.len() + padded - chunk, 0);
}

/// The node's SDP answer to a browser's offer (ICE-lite, one audio section, rtcp-mux), with our
/// `a=setup` (`passive` normally, see [`BrowserSdp::answer_setup`]); `local.direction` is ours,
/// the offer's reversed.
pub fn answer_sdp(local: &LocalSdp<'_>, setup: Setup) -> String {
    write_sdp(local, setup)
}

/// The node's SDP offer to a browser: as [`answer_sdp`], with `a=setup:actpass` (RFC 8842
/// §5.2: the answer decides the DTLS roles, see [`BrowserSdp::offerer_role`]).
pub fn offer_sdp(local: &LocalSdp<'_>) -> String {
    write_sdp(local, Setup::Actpass)
}

/// What the node says of its side of the call in SDP, offer or answer ([`offer_sdp`],
/// [`answer_sdp`]).
#[derive(Debug, Clone)]
pub struct LocalSdp<'a> {
    /// `o=` session id.
    pub session_id: u64,
    /// `o=` session version: 1 in the first offer or answer, one more in each later one of
    /// the session (RFC 3264 §8).
    pub version: u64,
    /// The media address (c=, o=, candidate).
    pub ip: IpAddr,
    /// The media port.
    pub port: u16,
    /// The audio section's mid (the browser's in an answer, `"0"` normally in an offer).
    pub mid: &'a str,
    /// Our ICE credentials.
    pub ice: &'a Credentials,
    /// The node certificate (its fingerprint is written).
    pub certificate: &'a NodeCertificate,
    /// Our direction, as written (in an answer: the offer's reversed).
    pub direction: Direction,
    /// The codecs, in order of preference (in an answer: those kept).
    pub codecs: &'a [PayloadCodec],
    /// Our SSRC and CNAME (`a=ssrc`).
    pub ssrc: u32,
    pub cname: &'a str,
}

/// The node's SDP (ICE-lite, one audio section, rtcp-mux), offer or answer, written by
/// `shared::sdp`.
fn write_sdp(a: &LocalSdp<'_>, setup: Setup) -> String {
    let address = SocketAddr::new(a.ip, a.port);
    let mut sdp = SessionDescription::new(Origin::new(a.session_id.to_string(), a.version, a.ip));
    sdp.push_attribute(Attribute::IceLite);
    sdp.push_attribute(Attribute::Group(Group {
        semantics: "BUNDLE".into(),
        mids: vec![a.mid.to_owned()],
    }));
    let pts: Vec<u8> = a.codecs.iter().map(|c| c.payload_type).collect();
    let mut audio = MediaDescription::new(Media::rtp(
        MediaType::Audio,
        a.port,
        Proto::UdpTlsRtpSavpf,
        &pts,
    ));
    audio.set_connection(Connection::from_ip(a.ip));
    audio.push_attribute(Attribute::Mid(a.mid.to_owned()));
    audio.push_attribute(Attribute::IceUfrag(a.ice.ufrag().to_owned()));
    audio.push_attribute(Attribute::IcePwd(Secret::new(a.ice.pwd())));
    audio.push_attribute(Attribute::Fingerprint(a.certificate.sdp_fingerprint()));
    audio.push_attribute(Attribute::Setup(setup));
    audio.set_direction(a.direction);
    audio.push_attribute(Attribute::RtcpMux);
    audio.set_codecs(a.codecs);
    audio.push_attribute(Attribute::Ssrc(Ssrc {
        ssrc: a.ssrc,
        attribute: "cname".into(),
        value: Some(a.cname.to_owned()),
    }));
    audio.push_attribute(Attribute::Candidate(Candidate::host("1", address)));
    audio.push_attribute(Attribute::EndOfCandidates);
    sdp.media.push(audio);
    sdp.to_string()
}
