//! A minimal upstream SIP server over TCP for tests that need to see every request the edge sends
//! it (sipp cannot easily check headers of requests it did not expect): it answers each new INVITE
//! at once with 200 OK and a plain RTP answer naming one RTP address, a re-INVITE with the same
//! answer, its direction mirroring the offer's, answers BYE and CANCEL, and records what arrived.
//! Each account object of the edge opens its own connection; each gets a thread.
//!
//! With [`UpstreamUas::with_early_media`] it plays a carrier that rings with early media: each new
//! INVITE gets `183 Session Progress` with the answer SDP at once, and a port pair of its own from
//! which a PCMU ringback tone ([`RINGBACK_HZ`], 20 ms packets) goes to the address of the INVITE's
//! offer; the 200 OK with the same SDP follows after the ringing time, and the tone goes on until
//! BYE or CANCEL. [`UpstreamUas::media`] tells what each call's stream sent and received.

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use shared::sip::{Framed, Header, HeaderName, SipMessage, StreamFramer};

use crate::rtp::{ulaw_encode, RtpPacket, FRAME_SAMPLES, PT_PCMU, SAMPLE_RATE};

/// The early media's tone (Hz): the European ringback frequency.
pub const RINGBACK_HZ: f64 = 425.0;
/// Its level (RMS, dBFS).
const RINGBACK_DBFS: f64 = -20.0;
/// The early media's SSRC.
const RINGBACK_SSRC: u32 = 0x0183_0183;

/// A request the upstream received.
#[derive(Debug, Clone)]
pub struct Received {
    /// When it arrived.
    pub at: Instant,
    /// The method.
    pub method: String,
    /// The Call-ID.
    pub call_id: String,
    /// The RTP port of the SDP offer (an INVITE's `m=audio` port).
    pub offer_port: Option<u16>,
    /// The `Reason` header, if any (RFC 3326).
    pub reason: Option<String>,
    /// Whether it was in a dialog (its To has a tag).
    pub in_dialog: bool,
    /// The direction attribute of its SDP (`sendonly` ...), if it had one.
    pub direction: Option<String>,
}

/// What one call's early-media stream did so far ([`UpstreamUas::with_early_media`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallMedia {
    /// The call's RTP address (in its 183 and 200).
    pub local: SocketAddr,
    /// Where the tone goes: the INVITE's offer.
    pub remote: SocketAddr,
    /// RTP packets sent.
    pub sent: u64,
    /// RTP packets sent before the 200 OK went out (all of them while still ringing).
    pub sent_before_answer: u64,
    /// RTP packets received (from anywhere).
    pub received: u64,
    /// Whether the 200 OK went out.
    pub answered: bool,
    /// Whether the stream stopped (BYE, CANCEL).
    pub stopped: bool,
}

/// How the upstream answers new INVITEs.
#[derive(Debug, Clone, Copy)]
enum Answering {
    /// 200 OK at once, media at this address (owned by the test).
    AtOnce(SocketAddr),
    /// 183 with early media it streams itself, 200 OK after this long.
    EarlyMedia(Duration),
}

/// The running upstream, stopped when dropped.
#[derive(Debug)]
pub struct UpstreamUas {
    /// Where it listens (TCP).
    pub addr: SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
    streams: Arc<Mutex<HashMap<String, Stream>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl UpstreamUas {
    /// Listens on a free loopback port; every call it answers has its media at `rtp`.
    pub fn start(rtp: SocketAddr) -> std::io::Result<Self> {
        Self::listen(Answering::AtOnce(rtp))
    }

    /// Listens on a free loopback port and rings with early media: each new INVITE gets a 183
    /// with SDP at once, a PCMU ringback tone from a port pair of its own to the INVITE's offer,
    /// and the 200 OK (same SDP) after `ringing`; the tone goes on until BYE or CANCEL.
    pub fn with_early_media(ringing: Duration) -> std::io::Result<Self> {
        Self::listen(Answering::EarlyMedia(ringing))
    }

    fn listen(answering: Answering) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let received = Arc::new(Mutex::new(Vec::new()));
        let streams = Arc::new(Mutex::new(HashMap::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (rec, media, halt) = (received.clone(), streams.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut conns = Vec::new();
            while !halt.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let (rec, media, halt) = (rec.clone(), media.clone(), halt.clone());
                        conns.push(std::thread::spawn(move || {
                            let mut conn = Conn {
                                local: addr,
                                answering,
                                received: &rec,
                                streams: &media,
                                stop: &halt,
                                tag: 0,
                                rtp_of: HashMap::new(),
                                ringing: Vec::new(),
                            };
                            conn.serve(stream);
                        }));
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    Err(_) => break,
                }
            }
            for c in conns {
                let _ = c.join();
            }
        });
        Ok(Self {
            addr,
            received,
            streams,
            stop,
            thread: Some(thread),
        })
    }

    /// What the early-media stream of the call with this Call-ID did so far, if it has one.
    pub fn media(&self, call_id: &str) -> Option<CallMedia> {
        let streams = self.streams.lock().ok()?;
        streams.get(call_id).map(Stream::snapshot)
    }

    /// Everything received so far.
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// Every request with this method and Call-ID, in order.
    pub fn find_all(&self, method: &str, call_id: &str) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| r.method == method && r.call_id == call_id)
            .collect()
    }

    /// The first request with this method and Call-ID, if it came.
    pub fn find(&self, method: &str, call_id: &str) -> Option<Received> {
        self.received()
            .into_iter()
            .find(|r| r.method == method && r.call_id == call_id)
    }
}

impl Drop for UpstreamUas {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let streams: Vec<Stream> = self
            .streams
            .lock()
            .map(|mut s| s.drain().map(|(_, v)| v).collect())
            .unwrap_or_default();
        for mut s in streams {
            s.finish();
        }
    }
}

/// One call's early-media stream: a thread with the call's RTP socket.
#[derive(Debug)]
struct Stream {
    local: SocketAddr,
    remote: SocketAddr,
    counters: Arc<StreamCounters>,
    thread: Option<JoinHandle<()>>,
}

#[derive(Debug, Default)]
struct StreamCounters {
    sent: AtomicU64,
    sent_before_answer: AtomicU64,
    received: AtomicU64,
    answered: AtomicBool,
    stop: AtomicBool,
}

impl Stream {
    /// Binds an even RTP port on the offer's IP family (loopback) and its RTCP successor, and
    /// starts sending the tone to `remote`.
    fn start(remote: SocketAddr, halt: Arc<AtomicBool>) -> std::io::Result<Self> {
        let ip: IpAddr = if remote.is_ipv4() {
            IpAddr::from([127, 0, 0, 1])
        } else {
            IpAddr::from([0u16, 0, 0, 0, 0, 0, 0, 1])
        };
        let (rtp, rtcp) = (0..100)
            .find_map(|_| {
                let rtp = UdpSocket::bind((ip, 0)).ok()?;
                let port = rtp.local_addr().ok()?.port();
                if port % 2 != 0 || port == u16::MAX {
                    return None;
                }
                let rtcp = UdpSocket::bind((ip, port + 1)).ok()?;
                Some((rtp, rtcp))
            })
            .ok_or_else(|| std::io::Error::other("no free even RTP port pair"))?;
        rtp.set_read_timeout(Some(Duration::from_millis(5)))?;
        let local = rtp.local_addr()?;
        let counters = Arc::new(StreamCounters::default());
        let c = counters.clone();
        let thread = std::thread::spawn(move || {
            let _rtcp = rtcp;
            stream_tone(&rtp, remote, &c, &halt);
        });
        Ok(Self {
            local,
            remote,
            counters,
            thread: Some(thread),
        })
    }

    fn answered(&self) {
        let c = &self.counters;
        c.sent_before_answer
            .store(c.sent.load(Ordering::Relaxed), Ordering::Relaxed);
        c.answered.store(true, Ordering::Relaxed);
    }

    fn finish(&mut self) {
        self.counters.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }

    fn snapshot(&self) -> CallMedia {
        let c = &self.counters;
        CallMedia {
            local: self.local,
            remote: self.remote,
            sent: c.sent.load(Ordering::Relaxed),
            sent_before_answer: c.sent_before_answer.load(Ordering::Relaxed),
            received: c.received.load(Ordering::Relaxed),
            answered: c.answered.load(Ordering::Relaxed),
            stopped: c.stop.load(Ordering::Relaxed),
        }
    }
}

/// Sends the ringback tone every 20 ms (a steady clock) and counts the RTP that arrives.
fn stream_tone(rtp: &UdpSocket, remote: SocketAddr, c: &StreamCounters, halt: &AtomicBool) {
    let amplitude =
        (32767.0 * 10f64.powf(RINGBACK_DBFS / 20.0) * std::f64::consts::SQRT_2).min(32767.0);
    let (mut seq, mut ts, mut phase) = (1u16, 0u32, 0u64);
    let mut next = Instant::now();
    let mut buf = [0u8; 2048];
    while !c.stop.load(Ordering::Relaxed) && !halt.load(Ordering::Relaxed) {
        let now = Instant::now();
        if now >= next {
            let payload: Vec<u8> = (0..FRAME_SAMPLES as u64)
                .map(|i| {
                    let t = (phase + i) as f64 / f64::from(SAMPLE_RATE);
                    let s = amplitude * (2.0 * std::f64::consts::PI * RINGBACK_HZ * t).sin();
                    ulaw_encode(s as i16)
                })
                .collect();
            let packet = RtpPacket::write(seq == 1, PT_PCMU, seq, ts, RINGBACK_SSRC, &payload);
            if rtp.send_to(&packet, remote).is_ok() {
                c.sent.fetch_add(1, Ordering::Relaxed);
            }
            seq = seq.wrapping_add(1);
            ts = ts.wrapping_add(FRAME_SAMPLES as u32);
            phase += FRAME_SAMPLES as u64;
            next += Duration::from_millis(20);
            if next < now {
                next = now;
            }
            continue;
        }
        if let Ok((len, _)) = rtp.recv_from(&mut buf) {
            if RtpPacket::parse(&buf[..len]).is_ok() {
                c.received.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// A 200 OK waiting for the end of the ringing.
struct Ringing {
    due: Instant,
    invite: SipMessage,
    ok: SipMessage,
}

/// One connection from the edge.
struct Conn<'a> {
    local: SocketAddr,
    answering: Answering,
    received: &'a Mutex<Vec<Received>>,
    streams: &'a Mutex<HashMap<String, Stream>>,
    stop: &'a Arc<AtomicBool>,
    tag: u32,
    /// Each call's RTP address (its own with early media), for re-INVITEs.
    rtp_of: HashMap<String, (u32, SocketAddr)>,
    ringing: Vec<Ringing>,
}

impl Conn<'_> {
    fn serve(&mut self, mut stream: TcpStream) {
        if stream
            .set_read_timeout(Some(Duration::from_millis(20)))
            .is_err()
        {
            return;
        }
        let mut framer = StreamFramer::new();
        let mut buf = vec![0u8; 16 * 1024];
        while !self.stop.load(Ordering::Relaxed) {
            for r in self.due() {
                if stream.write_all(&r.to_bytes()).is_err() {
                    return;
                }
            }
            let n = match stream.read(&mut buf) {
                Ok(0) => return,
                Ok(n) => n,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    continue
                }
                Err(_) => return,
            };
            framer.push(&buf[..n]);
            loop {
                let msg = match framer.next_item() {
                    Ok(Some(Framed::Message(m))) => *m,
                    Ok(Some(Framed::Ping)) => {
                        let _ = stream.write_all(b"\r\n");
                        continue;
                    }
                    Ok(Some(_)) => continue,
                    Ok(None) => break,
                    Err(_) => return,
                };
                for r in self.handle(&msg) {
                    if stream.write_all(&r.to_bytes()).is_err() {
                        return;
                    }
                }
            }
        }
    }

    /// The 200 OKs whose ringing is over.
    fn due(&mut self) -> Vec<SipMessage> {
        let now = Instant::now();
        let (due, waiting): (Vec<Ringing>, Vec<Ringing>) =
            self.ringing.drain(..).partition(|r| r.due <= now);
        self.ringing = waiting;
        due.into_iter()
            .map(|r| {
                let call_id = r.invite.call_id().unwrap_or_default();
                if let Ok(streams) = self.streams.lock() {
                    if let Some(s) = streams.get(call_id) {
                        s.answered();
                    }
                }
                r.ok
            })
            .collect()
    }

    /// Records a request and returns the responses to send.
    fn handle(&mut self, msg: &SipMessage) -> Vec<SipMessage> {
        let Some(method) = msg.method().map(|m| m.as_str().to_owned()) else {
            return Vec::new(); // responses to our nothing
        };
        let call_id = msg.call_id().unwrap_or_default().to_owned();
        let reason = msg
            .headers
            .get(&HeaderName::Other("Reason".into()))
            .map(str::to_owned);
        let in_dialog = msg
            .to()
            .ok()
            .and_then(|t| t.tag().map(str::to_owned))
            .is_some();
        let direction = direction_of(msg);
        if let Ok(mut r) = self.received.lock() {
            r.push(Received {
                at: Instant::now(),
                method: method.clone(),
                call_id: call_id.clone(),
                offer_port: offer_port(msg),
                reason,
                in_dialog,
                direction: direction.clone(),
            });
        }
        match method.as_str() {
            "INVITE" if !in_dialog => self.new_invite(msg, &call_id),
            "INVITE" => {
                let mirrored = match direction.as_deref() {
                    Some("sendonly") => "recvonly",
                    Some("recvonly") => "sendonly",
                    Some("inactive") => "inactive",
                    _ => "sendrecv",
                };
                let (tag, rtp) = self.call_rtp(&call_id);
                answer_invite(msg, 200, "OK", self.local, rtp, tag, mirrored)
                    .into_iter()
                    .collect()
            }
            "BYE" | "CANCEL" => {
                self.stop_stream(&call_id);
                let mut out: Vec<SipMessage> =
                    msg.response_to(200, "OK", None).ok().into_iter().collect();
                if method == "CANCEL" {
                    if let Some(pos) = self
                        .ringing
                        .iter()
                        .position(|r| r.invite.call_id().ok() == Some(call_id.as_str()))
                    {
                        let r = self.ringing.remove(pos);
                        let tag = tag_of(&r.ok);
                        out.extend(
                            r.invite
                                .response_to(487, "Request Terminated", tag.as_deref())
                                .ok(),
                        );
                    }
                }
                out
            }
            "OPTIONS" => msg.response_to(200, "OK", None).ok().into_iter().collect(),
            _ => Vec::new(),
        }
    }

    fn new_invite(&mut self, msg: &SipMessage, call_id: &str) -> Vec<SipMessage> {
        self.tag += 1;
        let tag = self.tag;
        match self.answering {
            Answering::AtOnce(rtp) => {
                self.rtp_of.insert(call_id.to_owned(), (tag, rtp));
                answer_invite(msg, 200, "OK", self.local, rtp, tag, "sendrecv")
                    .into_iter()
                    .collect()
            }
            Answering::EarlyMedia(ringing) => {
                let Some(remote) = offer_addr(msg) else {
                    return msg
                        .response_to(488, "Not Acceptable Here", None)
                        .ok()
                        .into_iter()
                        .collect();
                };
                let stream = match Stream::start(remote, self.stop.clone()) {
                    Ok(s) => s,
                    Err(_) => {
                        return msg
                            .response_to(503, "Service Unavailable", None)
                            .ok()
                            .into_iter()
                            .collect()
                    }
                };
                let rtp = stream.local;
                if let Ok(mut streams) = self.streams.lock() {
                    if let Some(mut old) = streams.insert(call_id.to_owned(), stream) {
                        old.finish();
                    }
                }
                self.rtp_of.insert(call_id.to_owned(), (tag, rtp));
                let progress = answer_invite(
                    msg,
                    183,
                    "Session Progress",
                    self.local,
                    rtp,
                    tag,
                    "sendrecv",
                );
                let ok = answer_invite(msg, 200, "OK", self.local, rtp, tag, "sendrecv");
                if let Some(ok) = ok {
                    self.ringing.push(Ringing {
                        due: Instant::now() + ringing,
                        invite: msg.clone(),
                        ok,
                    });
                }
                progress.into_iter().collect()
            }
        }
    }

    fn call_rtp(&self, call_id: &str) -> (u32, SocketAddr) {
        match (self.rtp_of.get(call_id), self.answering) {
            (Some(known), _) => *known,
            (None, Answering::AtOnce(rtp)) => (self.tag, rtp),
            (None, Answering::EarlyMedia(_)) => (self.tag, self.local),
        }
    }

    fn stop_stream(&self, call_id: &str) {
        if let Ok(streams) = self.streams.lock() {
            if let Some(s) = streams.get(call_id) {
                s.counters.stop.store(true, Ordering::Relaxed);
            }
        }
    }
}

fn tag_of(resp: &SipMessage) -> Option<String> {
    resp.to().ok().and_then(|t| t.tag().map(str::to_owned))
}

/// A response with the answer SDP (the same text for the same call, RTP address and direction).
fn answer_invite(
    invite: &SipMessage,
    status: u16,
    reason: &str,
    local: SocketAddr,
    rtp: SocketAddr,
    n: u32,
    direction: &str,
) -> Option<SipMessage> {
    let mut ok = invite
        .response_to(status, reason, Some(&format!("uas{n}")))
        .ok()?;
    let pos = ok.headers.position(&HeaderName::ContentLength)?;
    ok.headers.insert(
        pos,
        Header::new(
            HeaderName::Contact,
            format!("<sip:uas@{local};transport=tcp>"),
        ),
    );
    for (i, rr) in invite.headers.get_all(&HeaderName::RecordRoute).enumerate() {
        ok.headers
            .insert(pos + 1 + i, Header::new(HeaderName::RecordRoute, rr));
    }
    let sdp = format!(
        "v=0\r\no=uas {n} 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n\
         a=rtpmap:101 telephone-event/8000\r\na=ptime:20\r\na={direction}\r\n",
        ip = rtp.ip(),
        port = rtp.port()
    );
    ok.set_body(Some("application/sdp"), sdp.into_bytes());
    Some(ok)
}

fn direction_of(msg: &SipMessage) -> Option<String> {
    let body = std::str::from_utf8(msg.body()).ok()?;
    body.lines()
        .map(str::trim_end)
        .find(|l| {
            matches!(
                *l,
                "a=sendrecv" | "a=sendonly" | "a=recvonly" | "a=inactive"
            )
        })
        .and_then(|l| l.strip_prefix("a="))
        .map(str::to_owned)
}

fn offer_port(msg: &SipMessage) -> Option<u16> {
    let body = std::str::from_utf8(msg.body()).ok()?;
    let line = body.lines().find(|l| l.starts_with("m=audio "))?;
    line.split(' ').nth(1)?.parse().ok()
}

/// Where the offer wants its RTP: the `c=` address (media level, else session level) and the
/// `m=audio` port.
fn offer_addr(msg: &SipMessage) -> Option<SocketAddr> {
    let body = std::str::from_utf8(msg.body()).ok()?;
    let port = offer_port(msg)?;
    let mut session_ip = None;
    let mut media_ip = None;
    let mut in_audio = false;
    for line in body.lines().map(str::trim_end) {
        if line.starts_with("m=") {
            in_audio = line.starts_with("m=audio ");
        } else if let Some(c) = line.strip_prefix("c=IN ") {
            let ip = c
                .split(' ')
                .nth(1)
                .and_then(|a| a.split('/').next()?.parse::<IpAddr>().ok());
            if in_audio {
                media_ip = media_ip.or(ip);
            } else if media_ip.is_none() {
                session_ip = session_ip.or(ip);
            }
        }
    }
    Some(SocketAddr::new(media_ip.or(session_ip)?, port))
}
