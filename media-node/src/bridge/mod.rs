//! The bridge core, sans-IO: sessions with a browser leg (ICE-lite, DTLS-SRTP and rtcp-mux on
//! the one multiplexed media port, a [`BrowserLeg`] of our own) and an upstream leg (plain
//! RTP/AVP on a port pair of the configured range), fed datagrams and time, returning datagrams
//! to send and when to wake up.
//!
//! The caller (the IO shell in [`crate::media`], or a test) owns the sockets and the clock:
//!
//! - [`Bridge::handle_receive`] with every datagram (`destination` is the node's advertised
//!   address of the socket it arrived on),
//! - then sends everything [`Bridge::poll_transmit`] yields (from the socket whose port is the
//!   transmit's `source` port),
//! - sleeps until [`Bridge::poll_timeout`] and then calls [`Bridge::handle_timeout`],
//! - after each call closes the sockets of every [`BridgeEvent::Ended`] from
//!   [`Bridge::poll_event`].
//!
//! Control calls ([`Bridge::allocate`], [`Bridge::apply_answer`], [`Bridge::renegotiate`],
//! [`Bridge::release`], [`Bridge::stats`]) take and return the `shared::control` messages.
//! Calls from the upstream start the other way round: [`Bridge::allocate_inbound`] takes the
//! upstream's RTP/AVP offer and makes the node's offer to the browser (ICE-lite,
//! `setup:actpass`), [`Bridge::apply_browser_answer`] takes the browser's answer and returns
//! the upstream's answer; from then on the session relays exactly like one the browser offered.
//!
//! The node writes its SDP for the browser itself ([`leg::answer_sdp`], [`leg::offer_sdp`]):
//! one audio section, ICE-lite, one host candidate on the media port, the node certificate's
//! fingerprint, rtcp-mux, no header extensions (audio needs none) and the codecs the call keeps,
//! with the browser's payload type numbers in an answer and the usual WebRTC ones in an offer.
//!
//! Per packet the core takes no lock, spawns nothing and allocates nothing: a browser datagram
//! is copied once into a recycled buffer, unprotected there, re-headed in place and sent on
//! from it; an upstream packet is written once into a recycled buffer with the browser-side
//! header and protected there.

mod negotiate;
mod ports;
pub mod rtcp;
pub mod rtp;
mod stun;
mod timers;

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use rand::distr::{Alphanumeric, SampleString as _};
use rand::Rng as _;
use shared::control::{
    AllocateInbound, AllocateInboundResponse, AllocateRequest, AllocateResponse, ApplyAnswer,
    ApplyAnswerResponse, ApplyBrowserAnswer, ApplyBrowserAnswerResponse, ControlError, Mode,
    Renegotiate, RenegotiateResponse, SessionId, SessionStats, UpstreamReoffer,
    UpstreamReofferResponse,
};
use shared::sdp::{Codec, PayloadCodec, PayloadTypeMap, SessionDescription, Setup};
use shared::sdp::{Direction as SdpDirection, MediaType};
use tracing::{debug, info};

use crate::demux::{self, PacketKind};
use crate::dtls::{DtlsError, DtlsRole, NodeCertificate};
use crate::ice::Credentials;
use crate::leg::{self, BrowserLeg, BrowserSdp, LegError, LocalSdp, Received};
use crate::srtp;
pub use negotiate::{
    browser_answer_payload_types, browser_offer, upstream_answer, upstream_inbound_answer,
    upstream_inbound_offer, upstream_offer, BrowserOffer, UpstreamAnswer, UpstreamOffer,
};
pub use ports::{PortBinder, PortPool};
use timers::Timers;

/// Payload type table entry meaning "not mapped".
const UNMAPPED: u8 = 0xff;
/// Most recycled transmit buffers kept.
const MAX_POOLED_BUFFERS: usize = 64;
/// Interval of the RTCP reports sent to the upstream (RFC 3550's 5 s minimum).
pub const RTCP_INTERVAL: Duration = Duration::from_secs(5);

/// What the core needs to know about the node.
#[derive(Debug, Clone)]
pub struct BridgeConfig {
    /// Advertised address of the multiplexed media port (the ICE candidate).
    pub media_addr: SocketAddr,
    /// Advertised IP of the upstream RTP ports.
    pub rtp_ip: IpAddr,
    /// Lowest upstream RTP port.
    pub rtp_port_min: u16,
    /// Highest upstream RTP port.
    pub rtp_port_max: u16,
    /// Most concurrent sessions.
    pub capacity: usize,
    /// A session that receives nothing (no RTP, RTCP or ICE check on either leg) for this long
    /// is released, and so is one whose browser, once heard from, has been silent this long
    /// while the upstream still sends (the browser vanished; a browser's consent checks keep a
    /// call it holds alive).
    pub media_timeout: Duration,
}

/// Why a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// The worker released it.
    Released,
    /// Nothing arrived for [`BridgeConfig::media_timeout`].
    MediaTimeout,
    /// The WebRTC engine failed (e.g. DTLS failure).
    Failed,
    /// The browser closed its side (DTLS close, the peer connection went away), normally on
    /// hang-up, just before the worker's release arrives.
    BrowserClosed,
    /// The node stopped while the session was still up ([`Bridge::end_all`]).
    Shutdown,
}

impl EndReason {
    /// Every reason, in the order of [`BridgeMetrics::ended`].
    pub const ALL: [Self; 5] = [
        Self::Released,
        Self::MediaTimeout,
        Self::Failed,
        Self::BrowserClosed,
        Self::Shutdown,
    ];

    fn index(self) -> usize {
        match self {
            Self::Released => 0,
            Self::MediaTimeout => 1,
            Self::Failed => 2,
            Self::BrowserClosed => 3,
            Self::Shutdown => 4,
        }
    }

    /// The name used in call records (`CallRecord::end_reason`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Released => "released",
            Self::MediaTimeout => "media-timeout",
            Self::Failed => "failed",
            Self::BrowserClosed => "browser-closed",
            Self::Shutdown => "shutdown",
        }
    }
}

/// Something the IO shell acts on.
#[derive(Debug, Clone)]
pub enum BridgeEvent {
    /// A session ended; close the upstream port pair if it had one.
    Ended {
        /// The session.
        session_id: SessionId,
        /// The SIP Call-ID it was allocated for.
        call_id: String,
        /// How long it lasted.
        duration: Duration,
        /// Why.
        reason: EndReason,
        /// Its upstream RTP port (RTCP is the next one), if any.
        rtp_port: Option<u16>,
        /// What it carried.
        stats: SessionStats,
    },
}

/// A datagram to send. `contents` is valid until the next call on the bridge.
#[derive(Debug)]
pub struct Transmit<'a> {
    /// The node's advertised address to send from (its port picks the socket).
    pub source: SocketAddr,
    /// Where to.
    pub destination: SocketAddr,
    /// The datagram.
    pub contents: &'a [u8],
}

#[derive(Debug)]
struct Pending {
    source: SocketAddr,
    destination: SocketAddr,
    buf: Vec<u8>,
}

/// Outgoing datagrams and the buffers they recycle.
#[derive(Debug, Default)]
struct Outbox {
    queue: VecDeque<Pending>,
    pool: Vec<Vec<u8>>,
    current: Option<Pending>,
}

impl Outbox {
    fn buffer(&mut self) -> Vec<u8> {
        self.pool.pop().unwrap_or_else(|| Vec::with_capacity(1500))
    }

    fn recycle(&mut self, mut buf: Vec<u8>) {
        if self.pool.len() < MAX_POOLED_BUFFERS {
            buf.clear();
            self.pool.push(buf);
        }
    }
}

#[derive(Debug)]
struct Upstream {
    rtp_port: u16,
    offered: Vec<PayloadCodec>,
    /// Address from the upstream's SDP, used until the real source is latched.
    signalled: Option<SocketAddr>,
    /// The source the upstream's RTP actually comes from (symmetric RTP).
    latched: Option<SocketAddr>,
    /// Browser PT -> upstream PT.
    to_upstream: [u8; 128],
    /// Upstream PT -> browser PT.
    to_browser: [u8; 128],
    answered: bool,
    /// Where RTCP goes (from the answer: `a=rtcp-mux`, `a=rtcp` or the RTP port + 1).
    rtcp_signalled: Option<SocketAddr>,
    /// The source the upstream's RTCP actually comes from.
    rtcp_latched: Option<SocketAddr>,
    /// RTCP on the RTP port (`a=rtcp-mux` in the answer).
    rtcp_mux: bool,
    /// When the next SR/RR goes.
    next_rtcp: Instant,
    /// SSRC of the stream towards the upstream (the browser's, relayed; random until then).
    send_ssrc: u32,
    /// RTP packets and payload octets sent to the upstream (SR sender info).
    sent_packets: u64,
    sent_octets: u64,
    /// RTP timestamp, clock rate and time of the last packet sent (for the SR's timestamp).
    last_sent: Option<(u32, u32, Instant)>,
    /// Middle NTP bits of the upstream's last SR and when it arrived (LSR/DLSR).
    last_sr: Option<(u32, Instant)>,
    /// Round trip from the upstream's report blocks.
    rtt_ms: Option<u32>,
    /// Fraction of our stream the upstream reports lost (last report block).
    reported_loss: Option<f32>,
    /// RTCP reports sent and received.
    rtcp_sent: u64,
    rtcp_received: u64,
}

impl Upstream {
    fn new(rtp_port: u16, offered: Vec<PayloadCodec>, now: Instant) -> Self {
        Self {
            rtp_port,
            offered,
            signalled: None,
            latched: None,
            to_upstream: [UNMAPPED; 128],
            to_browser: [UNMAPPED; 128],
            answered: false,
            rtcp_signalled: None,
            rtcp_latched: None,
            rtcp_mux: false,
            next_rtcp: now + RTCP_INTERVAL,
            send_ssrc: rand::rng().random(),
            sent_packets: 0,
            sent_octets: 0,
            last_sent: None,
            last_sr: None,
            rtt_ms: None,
            reported_loss: None,
            rtcp_sent: 0,
            rtcp_received: 0,
        }
    }

    fn map(&mut self, pairs: &[(u8, u8)]) {
        self.to_upstream = [UNMAPPED; 128];
        self.to_browser = [UNMAPPED; 128];
        for &(browser, upstream) in pairs {
            self.to_upstream[usize::from(browser & 0x7f)] = upstream;
            self.to_browser[usize::from(upstream & 0x7f)] = browser;
        }
    }

    fn destination(&self) -> Option<SocketAddr> {
        self.latched.or(self.signalled)
    }

    fn rtcp_destination(&self) -> Option<SocketAddr> {
        match (self.rtcp_mux, self.rtcp_latched) {
            (_, Some(addr)) => Some(addr),
            (true, None) => self.destination(),
            (false, None) => self.rtcp_signalled,
        }
    }
}

/// What the node says of its browser side in SDP, kept to write the later answers of the call.
#[derive(Debug)]
struct LocalSide {
    /// `o=` session id and version (one more for each answer to a re-offer).
    session_id: u64,
    version: u64,
    /// The audio section's `a=mid` (the browser's when it offered).
    mid: Box<str>,
    /// The SSRC and CNAME of the stream toward the browser.
    ssrc: u32,
    cname: Box<str>,
    /// Our direction toward the browser.
    direction: SdpDirection,
    /// Our `a=setup`: `actpass` in our offer, then the role the handshake took in answers.
    setup: Setup,
}

struct Session {
    id: SessionId,
    call_id: String,
    mode: Mode,
    leg: BrowserLeg,
    local: LocalSide,
    /// Codecs answered (or offered) to the browser, with its PT numbers.
    browser_codecs: Vec<PayloadCodec>,
    browser_addrs: Vec<SocketAddr>,
    upstream: Option<Upstream>,
    /// Inbound call: the upstream made the offer (the node answers it, never the reverse).
    inbound: bool,
    created: Instant,
    last_activity: Instant,
    /// When a datagram from the browser last passed its leg's checks (`None` before the
    /// first).
    browser_heard: Option<Instant>,
    /// Next sequence number towards the browser.
    seq_to_browser: u16,
    from_upstream: rtp::ReceiveStats,
    dropped: u64,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("id", &self.id)
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// When this session needs [`Bridge::handle_timeout`] next.
    fn deadline(&self, media_timeout: Duration) -> Instant {
        let mut deadline = self.silent_since() + media_timeout;
        if let Some(at) = self.leg.poll_timeout() {
            deadline = deadline.min(at);
        }
        if let Some(upstream) = &self.upstream {
            deadline = deadline.min(upstream.next_rtcp);
        }
        deadline
    }

    /// A session that has just started: no media yet, every counter at zero. Callers fill in what
    /// their direction knows (codecs, upstream leg).
    fn new(
        id: SessionId,
        call_id: String,
        mode: Mode,
        leg: BrowserLeg,
        local: LocalSide,
        now: Instant,
    ) -> Self {
        Session {
            id,
            call_id,
            mode,
            leg,
            local,
            browser_codecs: Vec::new(),
            browser_addrs: Vec::new(),
            upstream: None,
            inbound: false,
            created: now,
            last_activity: now,
            browser_heard: None,
            seq_to_browser: rand::rng().random(),
            from_upstream: rtp::ReceiveStats::default(),
            dropped: 0,
        }
    }

    /// Since when the session counts as silent: the last datagram from either leg, or, once
    /// the browser has been heard, the browser's last one (a vanished browser ends the call even
    /// while the upstream keeps sending).
    fn silent_since(&self) -> Instant {
        self.browser_heard.unwrap_or(self.last_activity)
    }

    fn clock_rate(&self, browser_pt: u8) -> u32 {
        self.browser_codecs
            .iter()
            .find(|c| c.payload_type == browser_pt)
            .map_or(0, |c| c.codec.clock_rate)
    }

    /// Whether our direction toward the browser lets us send (not `recvonly` or `inactive`
    /// after the browser put the call on hold).
    fn sends_to_browser(&self) -> bool {
        matches!(
            self.local.direction,
            SdpDirection::SendRecv | SdpDirection::SendOnly
        )
    }

    /// The node's SDP for the browser with `codecs`: the offer of an inbound call, else the
    /// answer to the browser's latest offer.
    fn browser_sdp(
        &self,
        certificate: &NodeCertificate,
        media_addr: SocketAddr,
        codecs: &[PayloadCodec],
    ) -> String {
        let local = LocalSdp {
            session_id: self.local.session_id,
            version: self.local.version,
            ip: media_addr.ip(),
            port: media_addr.port(),
            mid: &self.local.mid,
            ice: self.leg.local_credentials(),
            certificate,
            direction: self.local.direction,
            codecs,
            ssrc: self.local.ssrc,
            cname: &self.local.cname,
        };
        match self.local.setup {
            Setup::Actpass => leg::offer_sdp(&local),
            setup => leg::answer_sdp(&local, setup),
        }
    }

    fn stats(&self, now: Instant) -> SessionStats {
        let loss_up = self.from_upstream.loss();
        let from_browser = self.leg.received();
        let loss_browser = from_browser.loss();
        let jitter = self.from_upstream.jitter_ms();
        let worst_jitter = jitter.max(from_browser.jitter_ms());
        let has_media = from_browser.packets + self.from_upstream.packets > 0;
        let upstream_rtt = self.upstream.as_ref().and_then(|u| u.rtt_ms);
        let leg = self.leg.stats();
        // What the browser's RTCP reports of our stream.
        let browser_reported_loss =
            (leg.reports_received > 0).then(|| f32::from(leg.fraction_lost) / 256.0);
        // The worst loss either way, measured here or reported by a peer's RTCP.
        let loss = [
            loss_up,
            loss_browser,
            browser_reported_loss.unwrap_or(0.0),
            self.upstream
                .as_ref()
                .and_then(|u| u.reported_loss)
                .unwrap_or(0.0),
        ]
        .into_iter()
        .fold(0.0f32, f32::max);
        SessionStats {
            packets_from_browser: from_browser.packets,
            bytes_from_browser: from_browser.bytes,
            packets_from_upstream: self.from_upstream.packets,
            bytes_from_upstream: self.from_upstream.bytes,
            packets_dropped: self.dropped,
            loss_from_browser: loss_browser,
            loss_from_upstream: loss_up,
            jitter_ms: jitter,
            rtt_ms: leg.rtt_ms,
            mos: has_media.then(|| {
                rtp::mos_estimate(
                    rtp::mouth_to_ear_ms(leg.rtt_ms, upstream_rtt, worst_jitter),
                    loss,
                    rtp::CodecImpairment::G711,
                )
            }),
            age_secs: now.saturating_duration_since(self.created).as_secs(),
        }
    }
}

/// The payload type number the node offers a browser for a codec it relays (the numbers
/// browsers use themselves) and the `a=fmtp` it offers when the upstream gave none.
fn browser_payload_type(codec: &Codec) -> Option<(u8, Option<&'static str>)> {
    let known = [
        (Codec::OPUS, 111, Some("minptime=10;useinbandfec=1")),
        (Codec::G722, 9, None),
        (Codec::PCMU, 0, None),
        (Codec::PCMA, 8, None),
        (Codec::TELEPHONE_EVENT_8000, 101, Some("0-15")),
        (Codec::TELEPHONE_EVENT_48000, 110, Some("0-15")),
    ];
    known
        .into_iter()
        .find(|(c, _, _)| c == codec)
        .map(|(_, pt, fmtp)| (pt, fmtp))
}

/// The clock rate of the first audio codec (not telephone-event) of `codecs`, for the RTP
/// timestamps of our sender reports; 8000 if there is none.
fn send_clock_rate(codecs: &[PayloadCodec]) -> u32 {
    codecs
        .iter()
        .find(|c| !c.codec.is_auxiliary())
        .map_or(8000, |c| c.codec.clock_rate)
}

/// The bridge: every session of the node and the indexes that route datagrams to them.
#[derive(Debug)]
pub struct Bridge {
    config: BridgeConfig,
    /// The node's DTLS certificate: every browser leg uses it, every SDP carries its
    /// fingerprint.
    certificate: NodeCertificate,
    ports: PortPool,
    /// Boxed: a session is 1.8 KiB inline (its browser leg half of it), so the slot vector
    /// stays small and its spare capacity costs a pointer a slot, not a session.
    sessions: Vec<Option<Box<Session>>>,
    free_slots: Vec<usize>,
    by_id: HashMap<SessionId, usize>,
    by_ufrag: HashMap<String, usize>,
    by_browser_addr: HashMap<SocketAddr, usize>,
    by_port: HashMap<u16, usize>,
    /// Each session's next deadline, so neither `poll_timeout` nor `handle_timeout` scans
    /// every session.
    timers: Timers,
    outbox: Outbox,
    events: VecDeque<BridgeEvent>,
    draining: bool,
    /// Datagrams that belonged to no session or were malformed.
    pub unroutable: u64,
    /// Sessions allocated since start.
    allocated: u64,
    /// Sessions ended, by [`EndReason::ALL`] order.
    ended: [u64; 5],
    /// What ended sessions carried (live ones are added at read time).
    ended_totals: Totals,
    /// Wall clock (NTP) at an instant, for RTCP sender reports; set on first use.
    ntp_clock: Option<rtcp::NtpClock>,
}

/// Traffic totals of the node.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    /// RTP packets from browsers.
    pub packets_from_browser: u64,
    /// RTP payload bytes from browsers.
    pub bytes_from_browser: u64,
    /// RTP packets from upstreams.
    pub packets_from_upstream: u64,
    /// RTP payload bytes from upstreams.
    pub bytes_from_upstream: u64,
    /// Packets dropped by sessions.
    pub packets_dropped: u64,
}

impl Totals {
    fn add(&mut self, stats: &SessionStats) {
        self.packets_from_browser += stats.packets_from_browser;
        self.bytes_from_browser += stats.bytes_from_browser;
        self.packets_from_upstream += stats.packets_from_upstream;
        self.bytes_from_upstream += stats.bytes_from_upstream;
        self.packets_dropped += stats.packets_dropped;
    }
}

/// One live session in [`BridgeMetrics`].
#[derive(Debug, Clone, PartialEq)]
pub struct SessionMetrics {
    /// The session.
    pub id: SessionId,
    /// Its current stats (as `GET /v1/sessions/{id}/stats` returns them).
    pub stats: SessionStats,
    /// Round trip to the upstream from its RTCP receiver reports.
    pub upstream_rtt_ms: Option<u32>,
}

/// A snapshot of the bridge's counters for the metrics endpoint, built on request by the media
/// thread from counters the bridge keeps anyway (nothing is added per packet for it).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BridgeMetrics {
    /// Sessions in progress.
    pub active: usize,
    /// Most concurrent sessions.
    pub capacity: usize,
    /// Whether new sessions are refused.
    pub draining: bool,
    /// Sessions allocated since start.
    pub allocated: u64,
    /// Sessions ended since start, in [`EndReason::ALL`] order.
    pub ended: [u64; 5],
    /// Traffic of ended and live sessions.
    pub totals: Totals,
    /// Datagrams that belonged to no session or were malformed.
    pub garbage: u64,
    /// Every live session.
    pub sessions: Vec<SessionMetrics>,
}

impl Bridge {
    /// An empty bridge whose browser legs use `certificate` (one per node run:
    /// [`NodeCertificate::generate`]).
    pub fn new(config: BridgeConfig, certificate: NodeCertificate) -> Self {
        let ports = PortPool::new(config.rtp_port_min, config.rtp_port_max);
        Self {
            config,
            certificate,
            ports,
            sessions: Vec::new(),
            free_slots: Vec::new(),
            by_id: HashMap::new(),
            by_ufrag: HashMap::new(),
            by_browser_addr: HashMap::new(),
            by_port: HashMap::new(),
            timers: Timers::default(),
            outbox: Outbox::default(),
            events: VecDeque::new(),
            draining: false,
            unroutable: 0,
            allocated: 0,
            ended: [0; 5],
            ended_totals: Totals::default(),
            ntp_clock: None,
        }
    }

    /// Sessions in progress.
    pub fn active(&self) -> usize {
        self.by_id.len()
    }

    /// A snapshot of the counters and of every live session (for `/metrics`; allocates, so
    /// it is called on a scrape, never per packet).
    pub fn metrics(&self, now: Instant) -> BridgeMetrics {
        let mut totals = self.ended_totals;
        let sessions: Vec<SessionMetrics> = self
            .sessions
            .iter()
            .flatten()
            .map(|s| {
                let stats = s.stats(now);
                totals.add(&stats);
                SessionMetrics {
                    id: s.id.clone(),
                    stats,
                    upstream_rtt_ms: s.upstream.as_ref().and_then(|u| u.rtt_ms),
                }
            })
            .collect();
        BridgeMetrics {
            active: self.active(),
            capacity: self.config.capacity,
            draining: self.draining,
            allocated: self.allocated,
            ended: self.ended,
            totals,
            garbage: self.unroutable,
            sessions,
        }
    }

    /// The 64-bit NTP time at `now` (the clock is set on first use).
    fn ntp(&mut self, now: Instant) -> u64 {
        self.ntp_clock
            .get_or_insert_with(|| rtcp::NtpClock::new(now))
            .at(now)
    }

    /// Stops (or resumes) taking new sessions; existing ones continue.
    pub fn set_draining(&mut self, draining: bool) {
        self.draining = draining;
    }

    /// Creates a session for a browser offer (and, in bridge mode, binds an upstream port pair
    /// through `binder`).
    pub fn allocate(
        &mut self,
        now: Instant,
        request: &AllocateRequest,
        binder: &mut dyn PortBinder,
    ) -> Result<AllocateResponse, ControlError> {
        if self.draining {
            return Err(ControlError::Draining);
        }
        if self.active() >= self.config.capacity {
            return Err(ControlError::NoFreePort);
        }
        let offer = negotiate::browser_offer(&request.browser_offer_sdp)?;
        let browser = &offer.leg;
        let local = LocalSide {
            session_id: rand::rng().random_range(1..1 << 40),
            version: 1,
            mid: browser.mid.as_str().into(),
            ssrc: rand::rng().random_range(1..=u32::MAX),
            cname: Alphanumeric.sample_string(&mut rand::rng(), 16).into(),
            direction: browser.direction.reversed(),
            setup: browser.answer_setup(),
        };
        let mut params = browser.leg_params(self.fresh_credentials(), local.ssrc, &local.cname);
        params.clock_rate = send_clock_rate(&offer.codecs);
        let leg = BrowserLeg::new(now, &self.certificate, params)
            .map_err(|e| ControlError::bad_sdp(format!("browser offer: {e}")))?;

        let (upstream, upstream_offer_sdp) = match request.mode {
            Mode::Echo => (None, None),
            Mode::Bridge => {
                let rtp_port = self.ports.take(binder).ok_or(ControlError::NoFreePort)?;
                let session_version: u64 = rand::rng().random_range(1..1 << 40);
                let sdp = negotiate::upstream_offer(
                    self.config.rtp_ip,
                    rtp_port,
                    &offer.codecs,
                    session_version,
                    1,
                );
                let mut leg = Upstream::new(rtp_port, offer.codecs.clone(), now);
                // Until the answer: the offered numbers both ways (early media usually uses them).
                let identity: Vec<(u8, u8)> = offer
                    .codecs
                    .iter()
                    .map(|c| (c.payload_type, c.payload_type))
                    .collect();
                leg.map(&identity);
                (Some(leg), Some(sdp))
            }
        };

        let id = new_session_id();
        let session = Session {
            browser_codecs: offer.codecs,
            upstream,
            ..Session::new(
                id.clone(),
                request.call_id.clone(),
                request.mode,
                leg,
                local,
                now,
            )
        };
        let browser_answer_sdp = session.browser_sdp(
            &self.certificate,
            self.config.media_addr,
            &session.browser_codecs,
        );
        self.start(session);
        info!(session = %id, call_id = %request.call_id, mode = ?request.mode, "session allocated");
        Ok(AllocateResponse {
            session_id: id,
            browser_answer_sdp,
            upstream_offer_sdp,
        })
    }

    /// Puts a new session in a free slot and indexes it by id, ufrag and upstream ports.
    fn insert(&mut self, session: Session) -> usize {
        let id = session.id.clone();
        let ufrag = session.leg.local_credentials().ufrag().to_owned();
        let port = session.upstream.as_ref().map(|u| u.rtp_port);
        let slot = match self.free_slots.pop() {
            Some(slot) => {
                self.sessions[slot] = Some(Box::new(session));
                slot
            }
            None => {
                self.sessions.push(Some(Box::new(session)));
                self.sessions.len() - 1
            }
        };
        self.by_id.insert(id, slot);
        self.by_ufrag.insert(ufrag, slot);
        if let Some(port) = port {
            self.by_port.insert(port, slot);
            self.by_port.insert(port + 1, slot);
        }
        slot
    }

    /// Adds a new session, counts it and sets its first timer.
    fn start(&mut self, session: Session) {
        let slot = self.insert(session);
        self.allocated += 1;
        self.drive(slot);
    }

    /// Local ICE credentials whose ufrag no session uses.
    fn fresh_credentials(&self) -> Credentials {
        loop {
            let credentials = Credentials::random();
            if !self.by_ufrag.contains_key(credentials.ufrag()) {
                return credentials;
            }
        }
    }

    /// Creates a session for a call from the upstream: binds an upstream port pair through
    /// `binder` (symmetric RTP, latched as for any bridge session) and makes the WebRTC offer
    /// for the browser (ICE-lite, `setup:actpass`, rtcp-mux, one host candidate on the media
    /// port, the upstream's relayable codecs and telephone-event under the payload type
    /// numbers browsers use). The session takes the browser's ICE checks and DTLS at once, so a
    /// browser that starts before its answer reaches the node loses no time.
    pub fn allocate_inbound(
        &mut self,
        now: Instant,
        request: &AllocateInbound,
        binder: &mut dyn PortBinder,
    ) -> Result<AllocateInboundResponse, ControlError> {
        if self.draining {
            return Err(ControlError::Draining);
        }
        if self.active() >= self.config.capacity {
            return Err(ControlError::NoFreePort);
        }
        let offer = negotiate::upstream_inbound_offer(&request.upstream_offer_sdp)?;
        let mut browser_codecs: Vec<PayloadCodec> = Vec::new();
        for codec in &offer.codecs {
            let Some((payload_type, fmtp)) = browser_payload_type(&codec.codec) else {
                continue;
            };
            if browser_codecs
                .iter()
                .all(|c| c.payload_type != payload_type)
            {
                browser_codecs.push(PayloadCodec {
                    payload_type,
                    codec: codec.codec.clone(),
                    fmtp: codec.fmtp.clone().or(fmtp.map(str::to_owned)),
                });
            }
        }
        let map = PayloadTypeMap::between(&browser_codecs, &offer.codecs);
        if map.is_empty() {
            return Err(ControlError::bad_sdp(
                "the browser offer has none of the upstream's codecs",
            ));
        }
        let local = LocalSide {
            session_id: rand::rng().random_range(1..1 << 40),
            version: 1,
            mid: "0".into(),
            ssrc: rand::rng().random_range(1..=u32::MAX),
            cname: Alphanumeric.sample_string(&mut rand::rng(), 16).into(),
            direction: SdpDirection::SendRecv,
            setup: Setup::Actpass,
        };
        let leg = BrowserLeg::offerer(
            now,
            &self.certificate,
            self.fresh_credentials(),
            local.ssrc,
            send_clock_rate(&browser_codecs),
            &local.cname,
        );

        let rtp_port = self.ports.take(binder).ok_or(ControlError::NoFreePort)?;
        let mut upstream = Upstream::new(rtp_port, offer.codecs, now);
        upstream.signalled = offer.remote;
        upstream.rtcp_signalled = offer.rtcp;
        upstream.rtcp_mux = offer.rtcp_mux;
        upstream.map(map.pairs());

        let id = new_session_id();
        let session = Session {
            browser_codecs,
            upstream: Some(upstream),
            inbound: true,
            ..Session::new(
                id.clone(),
                request.call_id.clone(),
                Mode::Bridge,
                leg,
                local,
                now,
            )
        };
        let browser_offer_sdp = session.browser_sdp(
            &self.certificate,
            self.config.media_addr,
            &session.browser_codecs,
        );
        self.start(session);
        info!(session = %id, call_id = %request.call_id, "inbound session allocated");
        Ok(AllocateInboundResponse {
            session_id: id,
            browser_offer_sdp,
        })
    }

    /// Applies the browser's answer to the node's offer of an inbound session and returns the
    /// plain RTP/AVP answer for the upstream: the node's address and RTP port, the codecs the
    /// browser accepted (and telephone-event) under the upstream's payload type numbers.
    pub fn apply_browser_answer(
        &mut self,
        now: Instant,
        request: &ApplyBrowserAnswer,
    ) -> Result<ApplyBrowserAnswerResponse, ControlError> {
        let slot = self.slot_of(&request.session_id)?;
        let rtp_ip = self.config.rtp_ip;
        let session = self.session_mut(slot).ok_or(ControlError::UnknownSession)?;
        if !session.leg.is_awaiting_answer() {
            return Err(ControlError::bad_sdp(
                "the session has no offer to the browser waiting for an answer",
            ));
        }
        let accepted = negotiate::browser_answer_payload_types(&request.browser_answer_sdp)?;
        let kept: Vec<PayloadCodec> = session
            .browser_codecs
            .iter()
            .filter(|c| accepted.contains(&c.payload_type))
            .cloned()
            .collect();
        if !kept.iter().any(|c| !c.codec.is_auxiliary()) {
            return Err(ControlError::bad_sdp(
                "browser answer accepts none of the offered audio codecs",
            ));
        }
        let answer = BrowserSdp::from_answer(&request.browser_answer_sdp)
            .map_err(|e| ControlError::bad_sdp(e.to_string()))?;
        let Some(upstream) = session.upstream.as_ref() else {
            return Err(ControlError::UnknownSession);
        };
        let map = PayloadTypeMap::between(&kept, &upstream.offered);
        let failure = session.leg.apply_answer(now, &answer).err();
        if let Some(LegError::Answer(why)) = failure {
            return Err(ControlError::bad_sdp(format!("browser answer: {why}")));
        }
        session.local.setup = match session.leg.dtls_role() {
            Some(DtlsRole::Client) => Setup::Active,
            _ => Setup::Passive,
        };
        let Some(upstream) = session.upstream.as_mut() else {
            return Err(ControlError::UnknownSession);
        };
        upstream.map(map.pairs());
        upstream.answered = true;
        let answered: Vec<PayloadCodec> = upstream
            .offered
            .iter()
            .filter(|c| map.b_to_a(c.payload_type).is_some())
            .cloned()
            .collect();
        let session_version: u64 = rand::rng().random_range(1..1 << 40);
        let upstream_answer_sdp = negotiate::upstream_inbound_answer(
            rtp_ip,
            upstream.rtp_port,
            &answered,
            upstream.rtcp_mux,
            session_version,
        );
        session.leg.set_clock_rate(send_clock_rate(&kept));
        session.browser_codecs = kept;
        debug!(session = %request.session_id, pairs = ?map.pairs(), "browser answer applied");
        if let Some(e) = failure {
            // The answer was taken but the DTLS leg it started failed at once: the call is over.
            info!(session = %request.session_id, error = %e, "browser leg failed");
            self.end(slot, now, end_reason(&e));
            return Err(ControlError::bad_sdp(format!("browser answer: {e}")));
        }
        self.drive(slot);
        Ok(ApplyBrowserAnswerResponse {
            upstream_answer_sdp,
        })
    }

    fn slot_of(&self, id: &SessionId) -> Result<usize, ControlError> {
        self.by_id
            .get(id)
            .copied()
            .ok_or(ControlError::UnknownSession)
    }

    fn session_mut(&mut self, slot: usize) -> Option<&mut Session> {
        self.sessions.get_mut(slot).and_then(Option::as_deref_mut)
    }

    /// Applies the upstream's answer: its address, the codecs it accepted and their payload type
    /// numbers. Returns the browser answer narrowed to those codecs.
    pub fn apply_answer(
        &mut self,
        _now: Instant,
        request: &ApplyAnswer,
    ) -> Result<ApplyAnswerResponse, ControlError> {
        let slot = self.slot_of(&request.session_id)?;
        let media_addr = self.config.media_addr;
        let Some(session) = self.sessions.get_mut(slot).and_then(Option::as_deref_mut) else {
            return Err(ControlError::UnknownSession);
        };
        if session.inbound {
            return Err(ControlError::bad_sdp(
                "an inbound session's upstream made the offer: answer it with browser-answer",
            ));
        }
        let upstream = session.upstream.as_mut().ok_or_else(|| {
            ControlError::bad_sdp("an echo session has no upstream leg to answer")
        })?;
        let answer = negotiate::upstream_answer(&request.upstream_answer_sdp, &upstream.offered)?;
        let map = PayloadTypeMap::between(&session.browser_codecs, &answer.codecs);
        upstream.map(map.pairs());
        upstream.signalled = answer.remote;
        upstream.rtcp_signalled = answer.rtcp;
        upstream.rtcp_mux = answer.rtcp_mux;
        upstream.answered = true;
        let kept: Vec<PayloadCodec> = session
            .browser_codecs
            .iter()
            .filter(|c| map.a_to_b(c.payload_type).is_some())
            .cloned()
            .collect();
        session.leg.set_clock_rate(send_clock_rate(&kept));
        let browser_answer_sdp = session.browser_sdp(&self.certificate, media_addr, &kept);
        debug!(session = %request.session_id, pairs = ?map.pairs(), "upstream answer applied");
        Ok(ApplyAnswerResponse { browser_answer_sdp })
    }

    /// A new offer from the browser on an existing session (hold, resume, ICE restart). A new
    /// ICE ufrag from the browser is an ICE restart: the node answers with new credentials and
    /// keeps sending to the address in use until the browser nominates again. The DTLS
    /// association and its keys stay (browsers keep their certificate for the life of a
    /// peer connection), and so does the node's DTLS role.
    pub fn renegotiate(
        &mut self,
        _now: Instant,
        request: &Renegotiate,
    ) -> Result<RenegotiateResponse, ControlError> {
        let slot = self.slot_of(&request.session_id)?;
        let offer = negotiate::browser_offer(&request.browser_offer_sdp)?;
        let browser = offer.leg;
        let (restart, kept) = {
            let session = self.sessions[slot]
                .as_deref()
                .ok_or(ControlError::UnknownSession)?;
            if session.leg.is_awaiting_answer() {
                return Err(ControlError::bad_sdp(
                    "the node's offer to the browser is still waiting for its answer",
                ));
            }
            // Keep what is still offered and, once the upstream answered, what it accepted.
            let kept: Vec<PayloadCodec> = offer
                .codecs
                .into_iter()
                .filter(|c| match &session.upstream {
                    Some(up) if up.answered => {
                        up.to_upstream[usize::from(c.payload_type & 0x7f)] != UNMAPPED
                    }
                    _ => true,
                })
                .collect();
            if !kept.iter().any(|c| !c.codec.is_auxiliary()) {
                return Err(ControlError::bad_sdp(
                    "the browser's new offer has none of the call's audio codecs",
                ));
            }
            let restart = session
                .leg
                .remote_credentials()
                .is_none_or(|c| c.ufrag() != browser.remote_ice.ufrag());
            (restart, kept)
        };
        let new_local = restart.then(|| self.fresh_credentials());
        let media_addr = self.config.media_addr;
        let Some(session) = self.sessions.get_mut(slot).and_then(Option::as_deref_mut) else {
            return Err(ControlError::UnknownSession);
        };
        let old_ufrag = session.leg.local_credentials().ufrag().to_owned();
        if let Some(local) = new_local {
            session.leg.restart_ice(local, browser.remote_ice.clone());
        }
        session.local.version += 1;
        session.local.direction = browser.direction.reversed();
        session.local.mid = browser.mid.as_str().into();
        session.local.setup = match session.leg.dtls_role() {
            Some(DtlsRole::Client) => Setup::Active,
            _ => Setup::Passive,
        };
        session.leg.set_clock_rate(send_clock_rate(&kept));
        session.browser_codecs = kept;
        let browser_answer_sdp =
            session.browser_sdp(&self.certificate, media_addr, &session.browser_codecs);
        let new_ufrag = session.leg.local_credentials().ufrag().to_owned();
        if new_ufrag != old_ufrag {
            debug!(session = %request.session_id, "ICE restart");
            self.by_ufrag.remove(&old_ufrag);
            self.by_ufrag.insert(new_ufrag, slot);
        }
        self.drive(slot);
        Ok(RenegotiateResponse { browser_answer_sdp })
    }

    /// A new offer from the upstream on an established session (re-INVITE or UPDATE): its
    /// address (a move re-latches: media goes to the new address until RTP comes from there; a
    /// `0.0.0.0` hold address stops it), its codecs (remapped to the browser leg's; none in
    /// common is refused and the session stays as it was), and the answer for it: the node's
    /// address and the session's RTP port, the codecs kept, the direction mirroring the offer's.
    /// The browser leg is not touched.
    pub fn upstream_reoffer(
        &mut self,
        _now: Instant,
        request: &UpstreamReoffer,
    ) -> Result<UpstreamReofferResponse, ControlError> {
        let slot = self.slot_of(&request.session_id)?;
        let rtp_ip = self.config.rtp_ip;
        let offer = negotiate::upstream_inbound_offer(&request.upstream_offer_sdp)?;
        let direction = request
            .upstream_offer_sdp
            .parse::<SessionDescription>()
            .ok()
            .and_then(|sdp| {
                let audio = sdp
                    .media
                    .iter()
                    .find(|m| m.media.media_type == MediaType::Audio && !m.is_rejected())?;
                Some(sdp.direction_for(audio))
            })
            .unwrap_or(SdpDirection::SendRecv);
        let session = self.session_mut(slot).ok_or(ControlError::UnknownSession)?;
        let upstream = session.upstream.as_mut().ok_or_else(|| {
            ControlError::bad_sdp("an echo session has no upstream leg to re-offer")
        })?;
        let map = PayloadTypeMap::between(&session.browser_codecs, &offer.codecs);
        let answered: Vec<PayloadCodec> = offer
            .codecs
            .iter()
            .filter(|c| map.b_to_a(c.payload_type).is_some())
            .cloned()
            .collect();
        if !answered.iter().any(|c| !c.codec.is_auxiliary()) {
            return Err(ControlError::bad_sdp(
                "the upstream's new offer has none of the call's audio codecs",
            ));
        }
        upstream.map(map.pairs());
        if upstream.signalled != offer.remote {
            upstream.signalled = offer.remote;
            upstream.latched = None;
            upstream.rtcp_latched = None;
        }
        upstream.rtcp_signalled = offer.rtcp;
        upstream.rtcp_mux = offer.rtcp_mux;
        upstream.answered = true;
        let session_version: u64 = rand::rng().random_range(1..1 << 40);
        let answer = negotiate::upstream_inbound_answer(
            rtp_ip,
            upstream.rtp_port,
            &answered,
            upstream.rtcp_mux,
            session_version,
        );
        let mut sdp: SessionDescription = answer
            .parse()
            .map_err(|e| ControlError::bad_sdp(format!("cannot re-read the answer: {e}")))?;
        for m in &mut sdp.media {
            m.set_direction(direction.reversed());
        }
        debug!(session = %request.session_id, pairs = ?map.pairs(), ?direction, "upstream re-offer applied");
        Ok(UpstreamReofferResponse {
            upstream_answer_sdp: sdp.to_string(),
        })
    }

    /// Ends a session; its stats are final.
    pub fn release(&mut self, now: Instant, id: &SessionId) -> Result<SessionStats, ControlError> {
        let slot = self.slot_of(id)?;
        Ok(self.end(slot, now, EndReason::Released))
    }

    /// Ends every session (e.g. the node is stopping), each with `reason`; their
    /// [`BridgeEvent::Ended`] events follow as for any other end.
    pub fn end_all(&mut self, now: Instant, reason: EndReason) {
        for slot in 0..self.sessions.len() {
            if self.sessions[slot].is_some() {
                self.end(slot, now, reason);
            }
        }
    }

    /// Current stats of a session.
    pub fn stats(&self, now: Instant, id: &SessionId) -> Result<SessionStats, ControlError> {
        let slot = self.slot_of(id)?;
        self.sessions[slot]
            .as_ref()
            .map(|s| s.stats(now))
            .ok_or(ControlError::UnknownSession)
    }

    fn end(&mut self, slot: usize, now: Instant, reason: EndReason) -> SessionStats {
        let Some(session) = self.sessions.get_mut(slot).and_then(Option::take) else {
            return SessionStats::default();
        };
        self.timers.remove(slot);
        self.free_slots.push(slot);
        self.by_id.remove(&session.id);
        self.by_ufrag
            .remove(session.leg.local_credentials().ufrag());
        for addr in &session.browser_addrs {
            if self.by_browser_addr.get(addr) == Some(&slot) {
                self.by_browser_addr.remove(addr);
            }
        }
        let rtp_port = session.upstream.as_ref().map(|u| u.rtp_port);
        if let Some(port) = rtp_port {
            self.by_port.remove(&port);
            self.by_port.remove(&(port + 1));
            self.ports.give_back(port);
        }
        let stats = session.stats(now);
        self.ended[reason.index()] += 1;
        self.ended_totals.add(&stats);
        info!(
            session = %session.id,
            call_id = %session.call_id,
            ?reason,
            packets_from_browser = stats.packets_from_browser,
            packets_from_upstream = stats.packets_from_upstream,
            dropped = stats.packets_dropped,
            "session ended"
        );
        self.events.push_back(BridgeEvent::Ended {
            session_id: session.id,
            call_id: session.call_id,
            duration: now.saturating_duration_since(session.created),
            reason,
            rtp_port,
            stats: stats.clone(),
        });
        stats
    }

    /// Takes one datagram that arrived from `source` on the node's socket advertised as
    /// `destination`. Anything that is not for a session, or is malformed, is counted and
    /// dropped.
    pub fn handle_receive(
        &mut self,
        now: Instant,
        source: SocketAddr,
        destination: SocketAddr,
        datagram: &[u8],
    ) {
        if destination.port() == self.config.media_addr.port() {
            self.receive_browser(now, source, datagram);
        } else {
            self.receive_upstream(now, source, destination.port(), datagram);
        }
    }

    fn receive_browser(&mut self, now: Instant, source: SocketAddr, datagram: &[u8]) {
        let slot = match demux::classify(datagram) {
            PacketKind::Stun => {
                let Some(slot) = stun::local_ufrag(datagram).and_then(|u| self.by_ufrag.get(u))
                else {
                    self.unroutable += 1;
                    return;
                };
                let slot = *slot;
                if self.by_browser_addr.insert(source, slot) != Some(slot) {
                    if let Some(session) = self.session_mut(slot) {
                        session.browser_addrs.push(source);
                    }
                }
                slot
            }
            PacketKind::Dtls | PacketKind::Rtp => match self.by_browser_addr.get(&source) {
                Some(&slot) => slot,
                None => {
                    self.unroutable += 1;
                    return;
                }
            },
            PacketKind::Other => {
                self.unroutable += 1;
                return;
            }
        };
        let media_addr = self.config.media_addr;
        let Some(session) = self.sessions.get_mut(slot).and_then(Option::as_deref_mut) else {
            return;
        };
        // One copy into a recycled buffer: the leg unprotects in place, and the plain packet
        // is re-headed there and sent on from it. The spare bytes take an echo's SRTP tag.
        let mut buf = self.outbox.buffer();
        buf.extend_from_slice(datagram);
        let len = buf.len();
        buf.resize(len + srtp::MAX_RTP_OVERHEAD, 0);
        match session.leg.handle_datagram(now, source, &mut buf, len) {
            Ok(Received::Rtp { len, view }) => {
                session.last_activity = now;
                session.browser_heard = Some(now);
                buf.truncate(len);
                relay_from_browser(
                    session,
                    &mut self.outbox,
                    buf,
                    view,
                    now,
                    media_addr,
                    self.config.rtp_ip,
                );
            }
            Ok(Received::Rtcp | Received::Handled) => {
                session.last_activity = now;
                session.browser_heard = Some(now);
                self.outbox.recycle(buf);
            }
            Ok(Received::Dropped(reason)) => {
                debug!(session = %session.id, ?reason, "browser datagram dropped");
                session.dropped += 1;
                self.outbox.recycle(buf);
            }
            Err(e) => {
                self.outbox.recycle(buf);
                self.fail(slot, now, &e);
                return;
            }
        }
        self.drive(slot);
    }

    fn receive_upstream(&mut self, now: Instant, source: SocketAddr, port: u16, datagram: &[u8]) {
        let Some(&slot) = self.by_port.get(&port) else {
            self.unroutable += 1;
            return;
        };
        let Some(session) = self.sessions.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        let Some(upstream) = session.upstream.as_mut() else {
            return;
        };
        let from_known_peer = upstream.latched.is_none_or(|l| l == source);
        if port != upstream.rtp_port || rtp::is_rtcp(datagram) {
            // RTCP from the upstream: proof of life, and its reports on our stream.
            let known_ip = upstream.destination().is_none_or(|d| d.ip() == source.ip());
            let Some(report) = rtcp::parse(datagram, upstream.send_ssrc).filter(|_| known_ip)
            else {
                session.dropped += 1;
                return;
            };
            session.last_activity = now;
            upstream.rtcp_received += 1;
            if port != upstream.rtp_port && upstream.rtcp_latched.is_none() {
                upstream.rtcp_latched = Some(source);
            }
            if let Some((_, lsr)) = report.sender_report {
                upstream.last_sr = Some((lsr, now));
            }
            if let Some(block) = report.block {
                upstream.reported_loss = Some(f32::from(block.fraction_lost) / 256.0);
                let arrival = self.ntp(now);
                if let Some(rtt) = self
                    .sessions
                    .get_mut(slot)
                    .and_then(Option::as_mut)
                    .and_then(|s| s.upstream.as_mut())
                {
                    if let Some(ms) = rtcp::rtt_ms(arrival, &block) {
                        rtt.rtt_ms = Some(ms);
                    }
                }
            }
            return;
        }
        let Some(view) = rtp::parse(datagram) else {
            session.dropped += 1;
            return;
        };
        let browser_pt = upstream.to_browser[usize::from(view.payload_type)];
        if browser_pt == UNMAPPED || !from_known_peer {
            session.dropped += 1;
            return;
        }
        if upstream.latched.is_none() {
            debug!(session = %session.id, %source, "upstream RTP source latched");
            upstream.latched = Some(source);
        }
        session.last_activity = now;
        let payload = &datagram[view.payload.0..view.payload.1];
        let arrival_us = now.saturating_duration_since(session.created).as_micros() as u64;
        let clock_rate = session.clock_rate(browser_pt);
        session
            .from_upstream
            .record(&view, payload.len(), arrival_us, clock_rate);
        if !session.sends_to_browser() {
            // On hold by the browser: nothing goes its way, and nothing is wrong.
            return;
        }
        // Written once, with the browser leg's header, into a recycled buffer and protected
        // there.
        let mut buf = self.outbox.buffer();
        rtp::write(
            &mut buf,
            &rtp::RtpView {
                payload_type: browser_pt,
                sequence: session.seq_to_browser,
                ssrc: session.local.ssrc,
                ..view
            },
            payload,
        );
        send_to_browser(session, &mut self.outbox, buf, now, self.config.media_addr);
        self.drive(slot);
    }

    /// Hands what one session's browser leg has queued (ICE responses, DTLS flights, RTCP
    /// reports) to the outbox and sets its timer.
    fn drive(&mut self, slot: usize) {
        let media_addr = self.config.media_addr;
        let Some(session) = self.sessions.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        // Most calls (every relayed packet) find nothing queued: no buffer is taken for them.
        while session.leg.has_transmit() {
            let mut buf = self.outbox.buffer();
            buf.resize(leg::MAX_TRANSMIT_LEN, 0);
            let Some((destination, len)) = session.leg.poll_transmit(&mut buf) else {
                self.outbox.recycle(buf);
                break;
            };
            buf.truncate(len);
            self.outbox.queue.push_back(Pending {
                source: media_addr,
                destination,
                buf,
            });
        }
        self.schedule(slot);
    }

    /// Ends a session whose browser leg failed for good (a DTLS failure, or the browser closed
    /// DTLS during the handshake).
    fn fail(&mut self, slot: usize, now: Instant, error: &LegError) {
        if let Some(session) = self.sessions.get(slot).and_then(Option::as_deref) {
            info!(session = %session.id, %error, "browser leg failed");
        }
        self.end(slot, now, end_reason(error));
    }

    /// Sets the session in `slot` to wake at its deadline (its engine's timeout, its next
    /// upstream RTCP report, its media timeout).
    fn schedule(&mut self, slot: usize) {
        let Some(session) = self.sessions.get(slot).and_then(Option::as_deref) else {
            return;
        };
        let deadline = session.deadline(self.config.media_timeout);
        self.timers.set(slot, deadline);
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit<'_>> {
        if let Some(done) = self.outbox.current.take() {
            self.outbox.recycle(done.buf);
        }
        let next = self.outbox.queue.pop_front()?;
        let current = self.outbox.current.insert(next);
        Some(Transmit {
            source: current.source,
            destination: current.destination,
            contents: &current.buf,
        })
    }

    /// The next thing the shell must act on.
    pub fn poll_event(&mut self) -> Option<BridgeEvent> {
        self.events.pop_front()
    }

    /// When [`Bridge::handle_timeout`] must be called next (`None`: no sessions).
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.peek().map(|(at, _)| at)
    }

    /// Advances time: runs due engine timers, ends sessions silent for the media timeout.
    pub fn handle_timeout(&mut self, now: Instant) {
        // Each due session once: one whose engine asks to be woken again at `now` waits for the
        // next call.
        let mut budget = self.timers.len();
        while let Some((at, slot)) = self.timers.peek() {
            if at > now || budget == 0 {
                break;
            }
            budget -= 1;
            if self.sessions.get(slot).is_none_or(Option::is_none) {
                self.timers.remove(slot);
                continue;
            }
            self.session_timeout(slot, now);
            self.schedule(slot);
        }
    }

    /// Runs what is due of one session's timers.
    fn session_timeout(&mut self, slot: usize, now: Instant) {
        let Some(session) = self.sessions[slot].as_mut() else {
            return;
        };
        if now.saturating_duration_since(session.silent_since()) >= self.config.media_timeout {
            self.end(slot, now, EndReason::MediaTimeout);
            return;
        }
        let rtcp_due = session
            .upstream
            .as_ref()
            .is_some_and(|u| u.next_rtcp <= now);
        if session.leg.poll_timeout().is_some_and(|at| at <= now) {
            if let Err(e) = session.leg.handle_timeout(now) {
                self.fail(slot, now, &e);
                return;
            }
            self.drive(slot);
        }
        if rtcp_due {
            self.send_upstream_rtcp(slot, now);
        }
    }

    /// Queues an SR (once we have sent RTP to the upstream) or an RR to the upstream's RTCP
    /// address, from our RTCP port (the RTP port with rtcp-mux), and schedules the next one.
    fn send_upstream_rtcp(&mut self, slot: usize, now: Instant) {
        let ntp = self.ntp(now);
        let rtp_ip = self.config.rtp_ip;
        let Some(session) = self.sessions.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        let Some(upstream) = session.upstream.as_mut() else {
            return;
        };
        upstream.next_rtcp = now + RTCP_INTERVAL;
        let Some(destination) = upstream.rtcp_destination() else {
            return;
        };
        let sender = upstream.last_sent.map(|(timestamp, clock_rate, at)| {
            let elapsed = now.saturating_duration_since(at);
            let ticks = elapsed.as_micros() * u128::from(clock_rate) / 1_000_000;
            rtcp::SenderInfo {
                ntp,
                rtp_timestamp: timestamp.wrapping_add(ticks as u32),
                packets: upstream.sent_packets as u32,
                octets: upstream.sent_octets as u32,
            }
        });
        let block = session.from_upstream.report_block().map(|mut block| {
            if let Some((lsr, at)) = upstream.last_sr {
                block.lsr = lsr;
                block.dlsr = rtcp::dlsr_of(now.saturating_duration_since(at));
            }
            block
        });
        let mut buf = self.outbox.buffer();
        rtcp::write_report(
            &mut buf,
            upstream.send_ssrc,
            sender.as_ref(),
            block.as_ref(),
        );
        upstream.rtcp_sent += 1;
        let port = if upstream.rtcp_mux {
            upstream.rtp_port
        } else {
            upstream.rtp_port + 1
        };
        self.outbox.queue.push_back(Pending {
            source: SocketAddr::new(rtp_ip, port),
            destination,
            buf,
        });
    }
}

/// A new session id.
fn new_session_id() -> SessionId {
    SessionId::new(format!(
        "s{}",
        Alphanumeric.sample_string(&mut rand::rng(), 20)
    ))
}

/// How a browser leg's failure ends its session.
fn end_reason(error: &LegError) -> EndReason {
    match error {
        LegError::Dtls(DtlsError::ClosedByPeer) => EndReason::BrowserClosed,
        _ => EndReason::Failed,
    }
}

/// The plain RTP packet `buf` from the browser (its header read by the leg into `view`):
/// counted, then echoed (echo mode) or sent to the upstream under the upstream's payload type,
/// from the same buffer.
fn relay_from_browser(
    session: &mut Session,
    outbox: &mut Outbox,
    mut buf: Vec<u8>,
    view: rtp::RtpView,
    now: Instant,
    media_addr: SocketAddr,
    rtp_ip: IpAddr,
) {
    let payload_len = view.payload.1 - view.payload.0;
    let clock_rate = session.clock_rate(view.payload_type);
    let echo_back = session.sends_to_browser();
    match (session.mode, session.upstream.as_mut()) {
        (Mode::Echo, _) if !echo_back => outbox.recycle(buf),
        (Mode::Echo, _) => {
            // The browser's own packet back, as our stream: our SSRC and sequence numbers.
            buf[2..4].copy_from_slice(&session.seq_to_browser.to_be_bytes());
            buf[8..12].copy_from_slice(&session.local.ssrc.to_be_bytes());
            send_to_browser(session, outbox, buf, now, media_addr);
        }
        (Mode::Bridge, Some(upstream)) => {
            let upstream_pt = upstream.to_upstream[usize::from(view.payload_type)];
            let Some(destination) = upstream.destination().filter(|_| upstream_pt != UNMAPPED)
            else {
                session.dropped += 1;
                outbox.recycle(buf);
                return;
            };
            if view.payload == (rtp::HEADER_LEN, buf.len()) {
                rtp::set_payload_type(&mut buf, upstream_pt);
            } else {
                // CSRCs, a header extension or padding: a plain 12-byte header instead.
                let mut plain = outbox.buffer();
                rtp::write(
                    &mut plain,
                    &rtp::RtpView {
                        payload_type: upstream_pt,
                        ..view
                    },
                    &buf[view.payload.0..view.payload.1],
                );
                outbox.recycle(std::mem::replace(&mut buf, plain));
            }
            upstream.send_ssrc = view.ssrc;
            upstream.sent_packets += 1;
            upstream.sent_octets += payload_len as u64;
            upstream.last_sent = Some((view.timestamp, clock_rate, now));
            outbox.queue.push_back(Pending {
                source: SocketAddr::new(rtp_ip, upstream.rtp_port),
                destination,
                buf,
            });
        }
        _ => {
            session.dropped += 1;
            outbox.recycle(buf);
        }
    }
}

/// Protects the plain RTP packet `buf` (our stream toward the browser) in place and queues it
/// to the browser. Before the browser leg can send (no keys or no address yet: early media
/// ahead of the browser's DTLS) the packet is let go without counting; after that, a packet
/// refused (consent expired, SRTP failure) counts as dropped.
fn send_to_browser(
    session: &mut Session,
    outbox: &mut Outbox,
    mut buf: Vec<u8>,
    now: Instant,
    media_addr: SocketAddr,
) {
    let len = buf.len();
    buf.resize(len + srtp::MAX_RTP_OVERHEAD, 0);
    match session.leg.protect_rtp(now, &mut buf, len) {
        Ok((destination, n)) => {
            buf.truncate(n);
            session.seq_to_browser = session.seq_to_browser.wrapping_add(1);
            outbox.queue.push_back(Pending {
                source: media_addr,
                destination,
                buf,
            });
        }
        Err(LegError::NoKeys | LegError::NotSelected) => outbox.recycle(buf),
        Err(_) => {
            session.dropped += 1;
            outbox.recycle(buf);
        }
    }
}

#[cfg(test)]
mod tests;
