//! A minimal upstream SIP server over TCP for tests that need to see every request the edge sends
//! it (sipp cannot easily check headers of requests it did not expect): it answers each new INVITE
//! at once with 200 OK and a plain RTP answer naming one RTP address, a re-INVITE with the same
//! answer, its direction mirroring the offer's, answers BYE and CANCEL, and records what arrived.
//! Each account object of the edge opens its own connection; each gets a thread.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use shared::sip::{Framed, Header, HeaderName, SipMessage, StreamFramer};

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

/// The running upstream, stopped when dropped.
#[derive(Debug)]
pub struct UpstreamUas {
    /// Where it listens (TCP).
    pub addr: SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl UpstreamUas {
    /// Listens on a free loopback port; every call it answers has its media at `rtp`.
    pub fn start(rtp: SocketAddr) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let received = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (rec, halt) = (received.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut conns = Vec::new();
            while !halt.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let (rec, halt) = (rec.clone(), halt.clone());
                        conns.push(std::thread::spawn(move || {
                            serve(stream, addr, rtp, &rec, &halt);
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
            stop,
            thread: Some(thread),
        })
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
    }
}

fn serve(
    mut stream: TcpStream,
    local: SocketAddr,
    rtp: SocketAddr,
    received: &Mutex<Vec<Received>>,
    stop: &AtomicBool,
) {
    if stream
        .set_read_timeout(Some(Duration::from_millis(100)))
        .is_err()
    {
        return;
    }
    let mut framer = StreamFramer::new();
    let mut buf = vec![0u8; 16 * 1024];
    let mut tag = 0u32;
    while !stop.load(Ordering::Relaxed) {
        let n = match stream.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => continue,
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
            let Some(method) = msg.method().map(|m| m.as_str().to_owned()) else {
                continue; // responses to our nothing
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
            let direction = direction_of(&msg);
            if let Ok(mut r) = received.lock() {
                r.push(Received {
                    at: Instant::now(),
                    method: method.clone(),
                    call_id,
                    offer_port: offer_port(&msg),
                    reason,
                    in_dialog,
                    direction: direction.clone(),
                });
            }
            let reply = match method.as_str() {
                "INVITE" if !in_dialog => {
                    tag += 1;
                    answer_invite(&msg, local, rtp, tag, "sendrecv")
                }
                "INVITE" => {
                    let mirrored = match direction.as_deref() {
                        Some("sendonly") => "recvonly",
                        Some("recvonly") => "sendonly",
                        Some("inactive") => "inactive",
                        _ => "sendrecv",
                    };
                    answer_invite(&msg, local, rtp, tag, mirrored)
                }
                "BYE" | "CANCEL" | "OPTIONS" => msg.response_to(200, "OK", None).ok(),
                _ => None,
            };
            if let Some(r) = reply {
                if stream.write_all(&r.to_bytes()).is_err() {
                    return;
                }
            }
        }
    }
}

fn answer_invite(
    invite: &SipMessage,
    local: SocketAddr,
    rtp: SocketAddr,
    n: u32,
    direction: &str,
) -> Option<SipMessage> {
    let mut ok = invite
        .response_to(200, "OK", Some(&format!("uas{n}")))
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
