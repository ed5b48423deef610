//! The bridge core, sans-IO: sessions with a browser leg (ICE-lite, DTLS-SRTP and rtcp-mux on
//! the one multiplexed media port, through str0m) and an upstream leg (plain RTP/AVP on a port
//! pair of the configured range), fed datagrams and time, returning datagrams to send and when
//! to wake up.
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
//! upstream's RTP/AVP offer and makes str0m offer to the browser (ICE-lite, `setup:actpass`),
//! [`Bridge::apply_browser_answer`] takes the browser's answer and returns the upstream's
//! answer; from then on the session relays exactly like one the browser offered.
//!
//! Per packet the core takes no lock and spawns nothing; relayed packets are written into
//! recycled buffers. str0m itself copies each browser-leg packet once (its RTP-mode payload is
//! an `Arc<[u8]>`), see the crate docs.

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
use shared::sdp::{offered_codecs, Codec, PayloadCodec, PayloadTypeMap, SessionDescription};
use shared::sdp::{Direction as SdpDirection, MediaType};
use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::format::FormatParams;
use str0m::media::{Direction, MediaKind};
use str0m::media::{Frequency, Mid, Pt};
use str0m::net::{Protocol, Receive};
use str0m::rtp::{Extension, RtpWrite};
use str0m::{Candidate, Event, IceCreds, Input, Output, Rtc, RtcConfig};
use tracing::{debug, info};

use crate::demux::{self, PacketKind};
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
/// Seconds from the NTP epoch (1900) to the Unix epoch (1970).
const NTP_UNIX_OFFSET_SECS: u64 = 2_208_988_800;

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
    /// is released.
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

struct Session {
    id: SessionId,
    call_id: String,
    mode: Mode,
    rtc: Rtc,
    ufrag: String,
    mid: Option<Mid>,
    /// Codecs answered to the browser (its PT numbers).
    browser_codecs: Vec<PayloadCodec>,
    /// str0m's last answer, before narrowing: every answer from the upstream (a provisional one
    /// and then the final one) narrows it again. Boxed to its length: it lives as long as the call.
    generated_answer: Box<str>,
    browser_addrs: Vec<SocketAddr>,
    upstream: Option<Upstream>,
    /// Inbound call: the node's offer to the browser, until its answer arrives.
    pending_offer: Option<SdpPendingOffer>,
    /// Inbound call: the upstream made the offer (the node answers it, never the reverse).
    inbound: bool,
    created: Instant,
    last_activity: Instant,
    rtc_timeout: Instant,
    /// Next extended sequence number towards the browser (its ROC starts at 0).
    seq_to_browser: u64,
    from_browser: rtp::ReceiveStats,
    from_upstream: rtp::ReceiveStats,
    dropped: u64,
    rtt_ms: Option<u32>,
    /// Fraction of our stream the browser reports lost (its RTCP RRs, through str0m).
    browser_reported_loss: Option<f32>,
    ended: Option<EndReason>,
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
        let rtcp = self
            .upstream
            .as_ref()
            .map_or(self.rtc_timeout, |u| u.next_rtcp);
        self.rtc_timeout
            .min(rtcp)
            .min(self.last_activity + media_timeout)
    }

    /// A session that has just started: no media yet, every counter at zero. Callers fill in what
    /// their direction knows (answer, codecs, upstream leg, pending offer).
    fn new(
        id: SessionId,
        call_id: String,
        mode: Mode,
        rtc: Rtc,
        ufrag: String,
        now: Instant,
    ) -> Self {
        Session {
            id,
            call_id,
            mode,
            rtc,
            ufrag,
            mid: None,
            browser_codecs: Vec::new(),
            generated_answer: Box::default(),
            browser_addrs: Vec::new(),
            upstream: None,
            pending_offer: None,
            inbound: false,
            created: now,
            last_activity: now,
            rtc_timeout: now,
            seq_to_browser: 1,
            from_browser: rtp::ReceiveStats::default(),
            from_upstream: rtp::ReceiveStats::default(),
            dropped: 0,
            rtt_ms: None,
            browser_reported_loss: None,
            ended: None,
        }
    }

    fn clock_rate(&self, browser_pt: u8) -> u32 {
        self.browser_codecs
            .iter()
            .find(|c| c.payload_type == browser_pt)
            .map_or(0, |c| c.codec.clock_rate)
    }

    fn stats(&self, now: Instant) -> SessionStats {
        let loss_up = self.from_upstream.loss();
        let loss_browser = self.from_browser.loss();
        let jitter = self.from_upstream.jitter_ms();
        let worst_jitter = jitter.max(self.from_browser.jitter_ms());
        let has_media = self.from_browser.packets + self.from_upstream.packets > 0;
        let upstream_rtt = self.upstream.as_ref().and_then(|u| u.rtt_ms);
        // The worst loss either way, measured here or reported by a peer's RTCP.
        let loss = [
            loss_up,
            loss_browser,
            self.browser_reported_loss.unwrap_or(0.0),
            self.upstream
                .as_ref()
                .and_then(|u| u.reported_loss)
                .unwrap_or(0.0),
        ]
        .into_iter()
        .fold(0.0f32, f32::max);
        SessionStats {
            packets_from_browser: self.from_browser.packets,
            bytes_from_browser: self.from_browser.bytes,
            packets_from_upstream: self.from_upstream.packets,
            bytes_from_upstream: self.from_upstream.bytes,
            packets_dropped: self.dropped,
            loss_from_browser: loss_browser,
            loss_from_upstream: loss_up,
            jitter_ms: jitter,
            rtt_ms: self.rtt_ms,
            mos: has_media.then(|| {
                rtp::mos_estimate(
                    rtp::mouth_to_ear_ms(self.rtt_ms, upstream_rtt, worst_jitter),
                    loss,
                    rtp::CodecImpairment::G711,
                )
            }),
            age_secs: now.saturating_duration_since(self.created).as_secs(),
        }
    }
}

/// The bridge: every session of the node and the indexes that route datagrams to them.
#[derive(Debug)]
pub struct Bridge {
    config: BridgeConfig,
    ports: PortPool,
    /// Boxed: a session is several KiB (str0m's `Rtc`), so the slot vector stays small and its
    /// spare capacity costs a pointer a slot, not a session.
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
    ntp_base: Option<(Instant, u64)>,
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
    /// An empty bridge.
    pub fn new(config: BridgeConfig) -> Self {
        let ports = PortPool::new(config.rtp_port_min, config.rtp_port_max);
        Self {
            config,
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
            ntp_base: None,
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

    /// The 64-bit NTP time at `now`: the wall clock read once, then advanced by `now`.
    fn ntp(&mut self, now: Instant) -> u64 {
        let (base, base_ntp) = *self.ntp_base.get_or_insert_with(|| {
            let unix = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            (
                now,
                ntp_of(unix + Duration::from_secs(NTP_UNIX_OFFSET_SECS)),
            )
        });
        base_ntp.wrapping_add(ntp_of(now.saturating_duration_since(base)))
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
        let sdp_offer = SdpOffer::from_sdp_string(&request.browser_offer_sdp)
            .map_err(|e| ControlError::bad_sdp(format!("browser offer: {e}")))?;

        let credentials = self.fresh_credentials();
        let ufrag = credentials.ufrag.clone();
        let mut rtc = webrtc_config(credentials).build(now);
        let candidate = Candidate::host(self.config.media_addr, "udp")
            .map_err(|e| ControlError::bad_sdp(format!("local candidate: {e}")))?;
        rtc.add_local_candidate(candidate);
        let answer = rtc
            .sdp_api()
            .accept_offer(sdp_offer)
            .map_err(|e| ControlError::bad_sdp(format!("browser offer not accepted: {e}")))?;
        let generated_answer = answer.to_sdp_string().into_boxed_str();
        let browser_answer_sdp = negotiate::narrow_answer(&generated_answer, &offer.codecs)?;

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

        let id = SessionId::new(format!(
            "s{}",
            Alphanumeric.sample_string(&mut rand::rng(), 20)
        ));
        let session = Session {
            mid: offer.mid.as_deref().map(Mid::from),
            browser_codecs: offer.codecs,
            generated_answer,
            upstream,
            ..Session::new(
                id.clone(),
                request.call_id.clone(),
                request.mode,
                rtc,
                ufrag.clone(),
                now,
            )
        };
        self.start(session, now);
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
        let ufrag = session.ufrag.clone();
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

    /// Adds a new session, counts it and runs its engine once (its first output is its answer
    /// or offer being ready).
    fn start(&mut self, session: Session, now: Instant) {
        let slot = self.insert(session);
        self.allocated += 1;
        self.drive(slot, now);
    }

    /// A local ICE ufrag no session uses, and a password.
    fn fresh_credentials(&self) -> IceCreds {
        let ufrag = loop {
            let candidate = Alphanumeric.sample_string(&mut rand::rng(), 8);
            if !self.by_ufrag.contains_key(&candidate) {
                break candidate;
            }
        };
        IceCreds {
            ufrag,
            pass: Alphanumeric.sample_string(&mut rand::rng(), 24),
        }
    }

    /// Creates a session for a call from the upstream: binds an upstream port pair through
    /// `binder` (symmetric RTP, latched as for any bridge session) and makes the WebRTC offer
    /// for the browser (str0m as the offerer: ICE-lite, `setup:actpass`, rtcp-mux, one host
    /// candidate on the media port, the upstream's relayable codecs and telephone-event).
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
        let credentials = self.fresh_credentials();
        let ufrag = credentials.ufrag.clone();
        let codecs: Vec<Codec> = offer.codecs.iter().map(|c| c.codec.clone()).collect();
        let mut rtc = webrtc_config_for(credentials, &codecs).build(now);
        let candidate = Candidate::host(self.config.media_addr, "udp")
            .map_err(|e| ControlError::bad_sdp(format!("local candidate: {e}")))?;
        rtc.add_local_candidate(candidate);
        let mut change = rtc.sdp_api();
        let mid = change.add_media(MediaKind::Audio, Direction::SendRecv, None, None, None);
        let (sdp_offer, pending) = change
            .apply()
            .ok_or_else(|| ControlError::bad_sdp("no browser offer could be made"))?;
        let browser_offer_sdp = sdp_offer.to_sdp_string();
        let parsed: SessionDescription = browser_offer_sdp.parse().map_err(|e| {
            ControlError::bad_sdp(format!("cannot re-read the generated offer: {e}"))
        })?;
        let browser_codecs = parsed.media.first().map(offered_codecs).unwrap_or_default();
        let map = PayloadTypeMap::between(&browser_codecs, &offer.codecs);
        if map.is_empty() {
            return Err(ControlError::bad_sdp(
                "the browser offer has none of the upstream's codecs",
            ));
        }

        let rtp_port = self.ports.take(binder).ok_or(ControlError::NoFreePort)?;
        let mut upstream = Upstream::new(rtp_port, offer.codecs, now);
        upstream.signalled = offer.remote;
        upstream.rtcp_signalled = offer.rtcp;
        upstream.rtcp_mux = offer.rtcp_mux;
        upstream.map(map.pairs());

        let id = SessionId::new(format!(
            "s{}",
            Alphanumeric.sample_string(&mut rand::rng(), 20)
        ));
        let session = Session {
            mid: Some(mid),
            browser_codecs,
            upstream: Some(upstream),
            pending_offer: Some(pending),
            inbound: true,
            ..Session::new(
                id.clone(),
                request.call_id.clone(),
                Mode::Bridge,
                rtc,
                ufrag,
                now,
            )
        };
        self.start(session, now);
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
        if session.pending_offer.is_none() {
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
        let sdp_answer = SdpAnswer::from_sdp_string(&request.browser_answer_sdp)
            .map_err(|e| ControlError::bad_sdp(format!("browser answer: {e}")))?;
        let Some(pending) = session.pending_offer.take() else {
            return Err(ControlError::UnknownSession);
        };
        session
            .rtc
            .sdp_api()
            .accept_answer(pending, sdp_answer)
            .map_err(|e| ControlError::bad_sdp(format!("browser answer not accepted: {e}")))?;
        let upstream = session
            .upstream
            .as_mut()
            .ok_or(ControlError::UnknownSession)?;
        let map = PayloadTypeMap::between(&kept, &upstream.offered);
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
        session.browser_codecs = kept;
        debug!(session = %request.session_id, pairs = ?map.pairs(), "browser answer applied");
        self.drive(slot, now);
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
        let session = self.session_mut(slot).ok_or(ControlError::UnknownSession)?;
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
        let browser_answer_sdp = negotiate::narrow_answer(&session.generated_answer, &kept)?;
        debug!(session = %request.session_id, pairs = ?map.pairs(), "upstream answer applied");
        Ok(ApplyAnswerResponse { browser_answer_sdp })
    }

    /// A new offer from the browser on an existing session (hold, resume, ICE restart).
    pub fn renegotiate(
        &mut self,
        now: Instant,
        request: &Renegotiate,
    ) -> Result<RenegotiateResponse, ControlError> {
        let slot = self.slot_of(&request.session_id)?;
        let offer = negotiate::browser_offer(&request.browser_offer_sdp)?;
        let sdp_offer = SdpOffer::from_sdp_string(&request.browser_offer_sdp)
            .map_err(|e| ControlError::bad_sdp(format!("browser offer: {e}")))?;
        let session = self.session_mut(slot).ok_or(ControlError::UnknownSession)?;
        let answer = session
            .rtc
            .sdp_api()
            .accept_offer(sdp_offer)
            .map_err(|e| ControlError::bad_sdp(format!("browser offer not accepted: {e}")))?;
        session.generated_answer = answer.to_sdp_string().into_boxed_str();
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
        let browser_answer_sdp = negotiate::narrow_answer(&session.generated_answer, &kept)?;
        // An ICE restart changes our ufrag: re-index.
        let new_ufrag = browser_answer_sdp
            .parse::<SessionDescription>()
            .ok()
            .and_then(|sdp| {
                let audio = sdp.media.first()?;
                sdp.ice_ufrag_for(audio).map(str::to_owned)
            });
        let old_ufrag = session.ufrag.clone();
        if let Some(new_ufrag) = new_ufrag.filter(|u| *u != old_ufrag) {
            session.ufrag = new_ufrag.clone();
            self.by_ufrag.remove(&old_ufrag);
            self.by_ufrag.insert(new_ufrag, slot);
        }
        self.drive(slot, now);
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
        let Some(mut session) = self.sessions.get_mut(slot).and_then(Option::take) else {
            return SessionStats::default();
        };
        session.rtc.disconnect();
        self.timers.remove(slot);
        self.free_slots.push(slot);
        self.by_id.remove(&session.id);
        self.by_ufrag.remove(&session.ufrag);
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
        let Ok(receive) = Receive::new(Protocol::Udp, source, media_addr, datagram) else {
            self.unroutable += 1;
            return;
        };
        let Some(session) = self.session_mut(slot) else {
            return;
        };
        session.last_activity = now;
        if let Err(e) = session.rtc.handle_input(Input::Receive(now, receive)) {
            debug!(session = %session.id, error = %e, "browser datagram refused");
            session.dropped += 1;
        }
        self.drive(slot, now);
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
        if let Some(mid) = session.mid {
            let seq = session.seq_to_browser;
            if let Some(tx) = session.rtc.direct_api().stream_tx_by_mid(mid, None) {
                tx.write_rtp(
                    RtpWrite::new(
                        Pt::from(browser_pt),
                        seq.into(),
                        view.timestamp,
                        now,
                        payload,
                    )
                    .marker(view.marker),
                );
                session.seq_to_browser += 1;
            } else {
                session.dropped += 1;
            }
        }
        self.drive(slot, now);
    }

    /// Runs one session's WebRTC engine until it waits: queues its datagrams, relays the RTP it
    /// decrypted, notes its next timeout. Ends the session if the engine failed.
    fn drive(&mut self, slot: usize, now: Instant) {
        let Some(session) = self.sessions.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        let outbox = &mut self.outbox;
        let failed = loop {
            match session.rtc.poll_output() {
                Ok(Output::Timeout(at)) => {
                    session.rtc_timeout = at;
                    break false;
                }
                Ok(Output::Transmit(t)) => {
                    let mut buf = outbox.buffer();
                    buf.extend_from_slice(&t.contents);
                    outbox.queue.push_back(Pending {
                        source: t.source,
                        destination: t.destination,
                        buf,
                    });
                }
                Ok(Output::Event(event)) => {
                    on_event(session, outbox, event, now, self.config.rtp_ip)
                }
                Err(e) => {
                    info!(session = %session.id, error = %e, "WebRTC engine failed");
                    break true;
                }
            }
        };
        let reason = if failed {
            EndReason::Failed
        } else if !session.rtc.is_alive() {
            EndReason::BrowserClosed
        } else {
            self.schedule(slot);
            return;
        };
        session.ended = Some(reason);
        self.end(slot, now, reason);
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
        if now.saturating_duration_since(session.last_activity) >= self.config.media_timeout {
            self.end(slot, now, EndReason::MediaTimeout);
            return;
        }
        let rtcp_due = session
            .upstream
            .as_ref()
            .is_some_and(|u| u.next_rtcp <= now);
        if session.rtc_timeout <= now {
            if let Err(e) = session.rtc.handle_input(Input::Timeout(now)) {
                debug!(session = %session.id, error = %e, "engine timeout failed");
            }
            self.drive(slot, now);
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
                block.dlsr = ntp_middle_of(now.saturating_duration_since(at));
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

/// A duration as a 64-bit NTP quantity (32.32 fixed point seconds).
fn ntp_of(d: Duration) -> u64 {
    (d.as_secs() << 32) | ((u64::from(d.subsec_nanos()) << 32) / 1_000_000_000)
}

/// A duration in 1/65536 s (the unit of DLSR), saturating.
fn ntp_middle_of(d: Duration) -> u32 {
    u32::try_from(ntp_of(d) >> 16).unwrap_or(u32::MAX)
}

/// The str0m configuration of a browser leg: ICE-lite, RTP mode (we relay packets, not frames),
/// the bridge's codecs and RFC 4733 telephone-event at 8 and 48 kHz. str0m answers with the
/// browser's payload type numbers.
fn webrtc_config(credentials: IceCreds) -> RtcConfig {
    // str0m answers in its configuration's order: opus first, as the browser prefers.
    webrtc_config_for(
        credentials,
        &[
            Codec::OPUS,
            Codec::G722,
            Codec::PCMU,
            Codec::PCMA,
            Codec::TELEPHONE_EVENT_8000,
            Codec::TELEPHONE_EVENT_48000,
        ],
    )
}

/// [`webrtc_config`] with only `codecs` (of [`Codec::BRIDGE_AUDIO`]), in their order: what the
/// node offers the browser for an inbound call.
fn webrtc_config_for(credentials: IceCreds, codecs: &[Codec]) -> RtcConfig {
    let mut config = Rtc::builder()
        .set_ice_lite(true)
        .set_rtp_mode(true)
        .set_local_ice_credentials(credentials)
        .set_stats_interval(Some(Duration::from_secs(1)))
        // Audio needs only these header extensions. Leaving out transport-wide congestion
        // control (transport-cc) matters: str0m keeps a send record per packet for it (over
        // 20 KiB per call after a few seconds), and audio at a fixed codec rate has no use for
        // bandwidth estimation.
        .clear_extension_map()
        .set_extension(1, Extension::AudioLevel)
        .set_extension(4, Extension::RtpMid)
        .clear_codecs();
    for codec in codecs {
        config = if *codec == Codec::OPUS {
            config.enable_opus(true, false)
        } else if *codec == Codec::G722 {
            config.enable_g722(true, false)
        } else if *codec == Codec::PCMU {
            config.enable_pcmu(true, false)
        } else if *codec == Codec::PCMA {
            config.enable_pcma(true, false)
        } else {
            config
        };
    }
    let events = [
        (101, Frequency::EIGHT_KHZ, Codec::TELEPHONE_EVENT_8000),
        (
            110,
            Frequency::FORTY_EIGHT_KHZ,
            Codec::TELEPHONE_EVENT_48000,
        ),
    ];
    for (pt, rate, _) in events.into_iter().filter(|(_, _, c)| codecs.contains(c)) {
        config.codec_config().add_config(
            Pt::from(pt),
            None,
            str0m::format::Codec::Tele,
            rate,
            None,
            FormatParams {
                telephone_event_max: Some(15),
                ..FormatParams::default()
            },
        );
    }
    config
}

/// Resend cache per browser-bound stream: a few packets, for the rare NACK.
const RTX_CACHE_PACKETS: usize = 8;
const RTX_CACHE_AGE: Duration = Duration::from_millis(200);

/// One str0m event of a session.
fn on_event(
    session: &mut Session,
    outbox: &mut Outbox,
    event: Event,
    now: Instant,
    rtp_ip: IpAddr,
) {
    match event {
        Event::MediaAdded(added) => {
            session.mid = Some(added.mid);
            // Audio toward the browser is not retransmitted (the offers carry no NACK for audio),
            // so str0m's default resend cache (1024 packets over 3 s) would only hold memory.
            if let Some(tx) = session.rtc.direct_api().stream_tx_by_mid(added.mid, None) {
                tx.set_rtx_cache(RTX_CACHE_PACKETS, RTX_CACHE_AGE, None);
            }
        }
        Event::Connected => debug!(session = %session.id, "browser leg connected (ICE + DTLS)"),
        Event::PeerStats(stats) => {
            if let Some(rtt) = stats.rtt {
                session.rtt_ms = u32::try_from(rtt.as_millis()).ok();
            }
        }
        Event::MediaEgressStats(stats) => {
            if let Some(rtt) = stats.rtt {
                session.rtt_ms = u32::try_from(rtt.as_millis()).ok();
            }
            if let Some(loss) = stats.loss {
                session.browser_reported_loss = Some(loss.clamp(0.0, 1.0));
            }
        }
        Event::RtpPacket(packet) => {
            let header = &packet.header;
            let pt = *header.payload_type;
            let view = rtp::RtpView {
                payload_type: pt,
                marker: header.marker,
                sequence: header.sequence_number,
                timestamp: header.timestamp,
                ssrc: *header.ssrc,
                payload: (0, packet.payload.len()),
            };
            let arrival_us = now.saturating_duration_since(session.created).as_micros() as u64;
            let clock_rate = session.clock_rate(pt);
            session
                .from_browser
                .record(&view, packet.payload.len(), arrival_us, clock_rate);
            match (session.mode, session.upstream.as_mut()) {
                (Mode::Echo, _) => {
                    let Some(mid) = session.mid else { return };
                    let seq = session.seq_to_browser;
                    if let Some(tx) = session.rtc.direct_api().stream_tx_by_mid(mid, None) {
                        tx.write_rtp(
                            RtpWrite::new(
                                header.payload_type,
                                seq.into(),
                                header.timestamp,
                                now,
                                packet.payload.clone(),
                            )
                            .marker(header.marker),
                        );
                        session.seq_to_browser += 1;
                    }
                }
                (Mode::Bridge, Some(upstream)) => {
                    let upstream_pt = upstream.to_upstream[usize::from(pt & 0x7f)];
                    let Some(destination) = upstream.destination() else {
                        session.dropped += 1;
                        return;
                    };
                    if upstream_pt == UNMAPPED {
                        session.dropped += 1;
                        return;
                    }
                    let mut buf = outbox.buffer();
                    rtp::write(
                        &mut buf,
                        &rtp::RtpView {
                            payload_type: upstream_pt,
                            ..view
                        },
                        &packet.payload,
                    );
                    upstream.send_ssrc = view.ssrc;
                    upstream.sent_packets += 1;
                    upstream.sent_octets += packet.payload.len() as u64;
                    upstream.last_sent = Some((view.timestamp, clock_rate, now));
                    outbox.queue.push_back(Pending {
                        source: SocketAddr::new(rtp_ip, upstream.rtp_port),
                        destination,
                        buf,
                    });
                }
                (Mode::Bridge, None) => session.dropped += 1,
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests;
