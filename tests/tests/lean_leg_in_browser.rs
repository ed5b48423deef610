//! The media node's lean browser leg (`media_node::leg::BrowserLeg`: ICE-lite + DTLS-SRTP + RTCP)
//! against real Chromium over real UDP on loopback. This test is the signalling (a tiny HTTP
//! server: the page POSTs its offer, we answer) and the media (one UDP socket, the leg, an echo of
//! the browser's own RTP with our SSRC); `edge-worker/pwa/tests/lean-leg.spec.mjs` is the browser.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use media_node::dtls::NodeCertificate;
use media_node::ice::Credentials;
use media_node::leg::{answer_sdp, BrowserLeg, BrowserSdp, LegStats, LocalSdp, Received};
use media_node::srtp::MAX_RTP_OVERHEAD;
use shared::sdp::{answer_codecs, Codec, MediaType, PayloadCodec, SessionDescription};
use tests::process::{wait_for, ProcessGuard};

const OUR_SSRC: u32 = 0x1ea_41e9;
const PAGE: &str = "<!doctype html><html><head><meta charset=\"utf-8\"><title>lean leg</title>\
</head><body><p>lean leg</p></body></html>";

type SharedLeg = Arc<Mutex<Option<BrowserLeg>>>;

#[test]
fn chromium_gets_its_audio_echoed_through_the_lean_leg() {
    let started = Instant::now();
    let udp = UdpSocket::bind("127.0.0.1:0").expect("bind udp");
    udp.set_read_timeout(Some(Duration::from_millis(10)))
        .expect("read timeout");
    let media_addr = udp.local_addr().expect("udp addr");
    let http = TcpListener::bind("127.0.0.1:0").expect("bind http");
    http.set_nonblocking(true).expect("nonblocking");
    let http_addr = http.local_addr().expect("http addr");

    let leg: SharedLeg = Arc::new(Mutex::new(None));
    let stop = Arc::new(AtomicBool::new(false));
    let echoed = Arc::new(AtomicU64::new(0));
    let certificate = NodeCertificate::generate().expect("certificate");

    let http_thread = {
        let (leg, stop) = (leg.clone(), stop.clone());
        thread::spawn(move || serve_http(http, &leg, &stop, &certificate, media_addr))
    };
    let media_thread = {
        let (leg, stop, echoed) = (leg.clone(), stop.clone(), echoed.clone());
        thread::spawn(move || echo_media(&udp, &leg, &stop, &echoed))
    };

    let dir = tests::scratch_dir("lean-leg-in-browser").expect("scratch dir");
    let script = "lean-leg.spec.mjs";
    let mut cmd = Command::new("node");
    cmd.arg(std::path::Path::new("tests").join(script))
        .current_dir(tests::workspace_root().join("edge-worker/pwa"))
        .env("LEAN_URL", format!("http://{http_addr}"));
    let log = dir.join(format!("{script}.log"));
    let mut browser = ProcessGuard::spawn(script, cmd, &log).expect("start node");
    let status = wait_for(Duration::from_secs(55), || {
        browser.try_wait().ok().flatten()
    });
    let out = browser.log_tail(60);
    drop(browser);

    stop.store(true, Ordering::SeqCst);
    let media_error = media_thread.join().expect("media thread");
    http_thread.join().expect("http thread");
    let stats: Option<LegStats> = leg.lock().expect("leg").as_ref().map(|l| *l.stats());
    let echoed = echoed.load(Ordering::SeqCst);
    println!("{out}");
    println!(
        "echoed {echoed} packets; leg stats {stats:?}; media error {media_error:?}; {:.1?}",
        started.elapsed()
    );

    assert!(
        status.is_some_and(|s| s.success()),
        "the browser script failed ({status:?}):\n{out}\nleg stats {stats:?}, media error {media_error:?}"
    );
    assert!(echoed > 100, "only {echoed} packets echoed");
    let stats = stats.expect("a leg");
    assert!(
        stats.rtcp_received > 0,
        "no RTCP from the browser: {stats:?}"
    );
    assert!(
        stats.reports_sent > 0,
        "no RTCP report to the browser: {stats:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(60));
}

/// `GET /` (the page) and `POST /offer` (the answer, and a new leg) until `stop`.
fn serve_http(
    listener: TcpListener,
    leg: &Mutex<Option<BrowserLeg>>,
    stop: &AtomicBool,
    certificate: &NodeCertificate,
    media_addr: SocketAddr,
) {
    while !stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, _)) => {
                if let Err(e) = handle_http(stream, leg, certificate, media_addr) {
                    eprintln!("http: {e}");
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("accept: {e}"),
        }
    }
}

fn handle_http(
    mut stream: TcpStream,
    leg: &Mutex<Option<BrowserLeg>>,
    certificate: &NodeCertificate,
    media_addr: SocketAddr,
) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let request_line = head.lines().next().unwrap_or_default().to_owned();
    let length: usize = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + length {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = String::from_utf8_lossy(&buf[head_end..]).into_owned();
    let (status, content_type, reply) = if request_line.starts_with("GET / ") {
        ("200 OK", "text/html", PAGE.to_owned())
    } else if request_line.starts_with("POST /offer ") {
        match answer(&body, leg, certificate, media_addr) {
            Ok(answer) => ("200 OK", "application/sdp", answer),
            Err(e) => ("400 Bad Request", "text/plain", e),
        }
    } else {
        ("404 Not Found", "text/plain", "not found".to_owned())
    };
    write!(
        stream,
        "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{reply}",
        reply.len()
    )?;
    stream.flush()
}

/// Our answer to the browser's offer; the leg for it goes into `leg`.
fn answer(
    offer_sdp: &str,
    leg: &Mutex<Option<BrowserLeg>>,
    certificate: &NodeCertificate,
    media_addr: SocketAddr,
) -> Result<String, String> {
    println!("--- offer ---\n{offer_sdp}");
    let offer = BrowserSdp::from_offer(offer_sdp).map_err(|e| e.to_string())?;
    let codecs = offer_codecs(offer_sdp);
    if codecs.is_empty() {
        return Err("no PCMU or Opus in the offer".into());
    }
    let local = Credentials::random();
    let mut params = offer.leg_params(local.clone(), OUR_SSRC, "lean-leg");
    params.clock_rate = codecs[0].codec.clock_rate;
    let new_leg =
        BrowserLeg::new(Instant::now(), certificate, params).map_err(|e| e.to_string())?;
    let answer = answer_sdp(
        &LocalSdp {
            session_id: 1,
            version: 1,
            ip: media_addr.ip(),
            port: media_addr.port(),
            mid: &offer.mid,
            ice: &local,
            certificate,
            direction: offer.direction.reversed(),
            codecs: &codecs,
            ssrc: OUR_SSRC,
            cname: "lean-leg",
        },
        offer.answer_setup(),
    );
    println!("--- answer ---\n{answer}");
    *leg.lock().expect("leg") = Some(new_leg);
    Ok(answer)
}

/// The offer's Opus and PCMU (its payload type numbers, its Opus fmtp), in its order.
fn offer_codecs(sdp: &str) -> Vec<PayloadCodec> {
    let Ok(parsed) = sdp.parse::<SessionDescription>() else {
        return Vec::new();
    };
    parsed
        .media
        .iter()
        .find(|m| m.media.media_type == MediaType::Audio)
        .map(|audio| answer_codecs(audio, &[Codec::OPUS, Codec::PCMU]))
        .unwrap_or_default()
}

/// The media loop: the leg's datagrams in and out, the browser's RTP echoed with our SSRC.
/// Returns the leg's first error, if any.
fn echo_media(
    udp: &UdpSocket,
    leg: &Mutex<Option<BrowserLeg>>,
    stop: &AtomicBool,
    echoed: &AtomicU64,
) -> Option<String> {
    let mut buf = vec![0u8; 2048];
    let mut out = vec![0u8; 2048];
    let mut first_error = None;
    let mut drops = 0u64;
    let mut unsent = 0u64;
    while !stop.load(Ordering::SeqCst) {
        let received = udp.recv_from(&mut buf[..1500]);
        let now = Instant::now();
        let mut guard = leg.lock().expect("leg");
        let Some(leg) = guard.as_mut() else {
            continue;
        };
        if let Ok((len, source)) = received {
            match leg.handle_datagram(now, source, &mut buf, len) {
                Ok(Received::Rtp { len, .. }) => {
                    buf[8..12].copy_from_slice(&OUR_SSRC.to_be_bytes());
                    debug_assert!(buf.len() >= len + MAX_RTP_OVERHEAD);
                    match leg.protect_rtp(now, &mut buf, len) {
                        Ok((to, n)) => {
                            if udp.send_to(&buf[..n], to).is_ok() {
                                echoed.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        Err(e) => {
                            // Chromium's first RTP can come before its nominating check.
                            unsent += 1;
                            eprintln!("media: not echoed ({unsent} so far): {e}");
                            first_error.get_or_insert_with(|| format!("protect: {e}"));
                        }
                    }
                }
                Ok(Received::Dropped(reason)) => {
                    drops += 1;
                    if drops <= 10 {
                        eprintln!("media: dropped a datagram from {source}: {reason:?}");
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    eprintln!("media: leg error {e}");
                    first_error.get_or_insert_with(|| format!("datagram: {e}"));
                }
            }
        }
        if leg.poll_timeout().is_some_and(|due| due <= now) {
            if let Err(e) = leg.handle_timeout(now) {
                eprintln!("media: leg timeout error {e}");
                first_error.get_or_insert_with(|| format!("timeout: {e}"));
            }
        }
        while let Some((to, n)) = leg.poll_transmit(&mut out) {
            let _ = udp.send_to(&out[..n], to);
        }
    }
    first_error
}
