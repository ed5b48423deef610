//! The bridges under test, behind one shape: the caller's WebRTC offer in, a plain RTP/AVP offer
//! for the far end out; the far end's answer in, the WebRTC answer for the caller out; release.
//!
//! - [`Ours`]: the media node's control API (`POST /v1/sessions`, `POST /v1/sessions/{id}/answer`,
//!   `DELETE /v1/sessions/{id}`), postcard bodies signed with the fleet secret.
//! - [`Rtpengine`]: rtpengine's ng protocol (`offer`, `answer`, `delete`; bencoded over UDP).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context, Result};
use shared::control::{
    self, auth::sign_request, AllocateRequest, AllocateResponse, ApplyAnswer, ApplyAnswerResponse,
    ControlError, Mode, SessionStats, CONTENT_TYPE,
};

use crate::bencode::{self, Value};

/// What the generator asks of a bridge, per call.
pub trait Target {
    /// Opens call `call` with the caller's WebRTC offer; returns a handle for the later steps
    /// and the plain RTP/AVP offer for the far end.
    fn offer(&mut self, call: u32, webrtc_offer: &str) -> Result<(String, String)>;
    /// Gives the far end's plain answer; returns the WebRTC answer for the caller.
    fn answer(&mut self, call: u32, handle: &str, plain_answer: &str) -> Result<String>;
    /// Ends the call.
    fn release(&mut self, call: u32, handle: &str) -> Result<()>;
    /// How the caller side is secured, for the report.
    fn caller_crypto(&self) -> &'static str {
        "DTLS-SRTP"
    }
}

const IO_TIMEOUT: Duration = Duration::from_secs(10);

static NONCES: AtomicU64 = AtomicU64::new(0);

/// Our media node's control API over plain HTTP (loopback), signed with the fleet secret.
#[derive(Debug)]
pub struct Ours {
    control: SocketAddr,
    secret: Vec<u8>,
}

impl Ours {
    /// The node whose control API listens on `control`, with the fleet secret `secret`.
    pub fn new(control: SocketAddr, secret: &str) -> Self {
        Self {
            control,
            secret: secret.as_bytes().to_vec(),
        }
    }

    fn call(&self, method: &str, path: &str, body: &[u8]) -> Result<Vec<u8>> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let nonce = format!(
            "mb-{:08x}-{:016x}",
            std::process::id(),
            NONCES.fetch_add(1, Ordering::Relaxed)
        );
        let headers = sign_request(&self.secret, method, path, now, &nonce, body);
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nhost: {}\r\nconnection: close\r\n\
             content-type: {CONTENT_TYPE}\r\ncontent-length: {}\r\n",
            self.control,
            body.len()
        );
        for (name, value) in &headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        let mut stream = TcpStream::connect_timeout(&self.control, IO_TIMEOUT)
            .with_context(|| format!("connecting to the media node at {}", self.control))?;
        stream.set_read_timeout(Some(IO_TIMEOUT))?;
        stream.set_write_timeout(Some(IO_TIMEOUT))?;
        stream.write_all(head.as_bytes())?;
        stream.write_all(body)?;
        let (status, body) = read_http_response(&mut stream)?;
        if status != 200 {
            let reason = control::decode::<ControlError>(&body)
                .map(|e| e.to_string())
                .unwrap_or_else(|_| String::from_utf8_lossy(&body).into_owned());
            bail!("{method} {path}: HTTP {status}: {reason}");
        }
        Ok(body)
    }
}

/// Reads one HTTP/1.1 response framed by `content-length` (or by the end of the stream).
fn read_http_response(stream: &mut TcpStream) -> Result<(u16, Vec<u8>)> {
    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        if let Some(split) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
            let status = head
                .split(' ')
                .nth(1)
                .and_then(|s| s.parse::<u16>().ok())
                .ok_or_else(|| anyhow!("malformed HTTP status line"))?;
            let length = head.lines().find_map(|l| {
                let (name, value) = l.split_once(':')?;
                (name.trim() == "content-length").then(|| value.trim().parse::<usize>().ok())?
            });
            let start = split + 4;
            match length {
                Some(len) if raw.len() >= start + len => {
                    return Ok((status, raw[start..start + len].to_vec()))
                }
                _ => {}
            }
            if length.is_none() && status == 204 {
                return Ok((status, Vec::new()));
            }
        }
        let n = stream.read(&mut buf)?;
        if n == 0 {
            let split = raw
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
                .ok_or_else(|| anyhow!("connection closed before the response headers"))?;
            let status = String::from_utf8_lossy(&raw[..split])
                .split(' ')
                .nth(1)
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| anyhow!("malformed HTTP status line"))?;
            return Ok((status, raw[split + 4..].to_vec()));
        }
        raw.extend_from_slice(&buf[..n]);
    }
}

impl Target for Ours {
    fn offer(&mut self, call: u32, webrtc_offer: &str) -> Result<(String, String)> {
        let request = AllocateRequest {
            call_id: format!("bench-{call}"),
            browser_offer_sdp: webrtc_offer.to_owned(),
            mode: Mode::Bridge,
        };
        let reply: AllocateResponse =
            control::decode(&self.call("POST", "/v1/sessions", &control::encode(&request))?)?;
        let upstream = reply
            .upstream_offer_sdp
            .ok_or_else(|| anyhow!("bridge allocation returned no upstream offer"))?;
        Ok((reply.session_id.as_str().to_owned(), upstream))
    }

    fn answer(&mut self, _call: u32, handle: &str, plain_answer: &str) -> Result<String> {
        let request = ApplyAnswer {
            session_id: control::SessionId::new(handle),
            upstream_answer_sdp: plain_answer.to_owned(),
        };
        let path = format!("/v1/sessions/{handle}/answer");
        let reply: ApplyAnswerResponse =
            control::decode(&self.call("POST", &path, &control::encode(&request))?)?;
        Ok(reply.browser_answer_sdp)
    }

    fn release(&mut self, _call: u32, handle: &str) -> Result<()> {
        let body = self.call("DELETE", &format!("/v1/sessions/{handle}"), &[])?;
        control::decode::<SessionStats>(&body)?;
        Ok(())
    }
}

/// rtpengine's ng protocol: `cookie SP bencoded-dict` over UDP.
#[derive(Debug)]
pub struct Rtpengine {
    socket: UdpSocket,
    run: String,
    cookies: u64,
}

impl Rtpengine {
    /// rtpengine listening for ng commands on `ng`. `run` makes call ids unique per run.
    pub fn new(ng: SocketAddr, run: &str) -> Result<Self> {
        let socket = UdpSocket::bind(if ng.is_ipv4() {
            "127.0.0.1:0"
        } else {
            "[::1]:0"
        })?;
        socket.connect(ng)?;
        socket.set_read_timeout(Some(Duration::from_secs(2)))?;
        Ok(Self {
            socket,
            run: run.to_owned(),
            cookies: 0,
        })
    }

    fn call_id(&self, call: u32) -> String {
        format!("bench-{}-{call}", self.run)
    }

    /// Sends `command` and waits for its reply (three tries); fails unless `result` is `ok`.
    pub fn command(&mut self, command: Value) -> Result<Value> {
        self.cookies += 1;
        let cookie = format!("{}_{}", std::process::id(), self.cookies);
        let mut datagram = format!("{cookie} ").into_bytes();
        datagram.extend(bencode::encode(&command));
        let mut buf = vec![0u8; 65_536];
        for _ in 0..3 {
            self.socket
                .send(&datagram)
                .context("sending an ng command")?;
            loop {
                let n = match self.socket.recv(&mut buf) {
                    Ok(n) => n,
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        ) =>
                    {
                        break
                    }
                    Err(e) => return Err(e).context("receiving an ng reply"),
                };
                let reply = &buf[..n];
                let Some(body) = reply
                    .strip_prefix(cookie.as_bytes())
                    .and_then(|r| r.strip_prefix(b" "))
                else {
                    continue; // a late reply to an earlier try
                };
                let value = bencode::decode(body).context("ng reply is not bencode")?;
                return match value.get("result").and_then(Value::as_str) {
                    Some("ok") => Ok(value),
                    other => bail!(
                        "rtpengine answered {}: {}",
                        other.unwrap_or("?"),
                        value
                            .get("error-reason")
                            .and_then(Value::as_str)
                            .unwrap_or("no reason given")
                    ),
                };
            }
        }
        bail!("rtpengine did not answer an ng command (3 tries)")
    }
}

impl Target for Rtpengine {
    fn offer(&mut self, call: u32, webrtc_offer: &str) -> Result<(String, String)> {
        let call_id = self.call_id(call);
        let reply = self.command(Value::dict([
            ("command", Value::str("offer")),
            ("call-id", Value::str(&call_id)),
            ("from-tag", Value::str(&format!("caller-{call}"))),
            ("sdp", Value::str(webrtc_offer)),
            // Toward the far end: plain RTP/AVP, no ICE, RTCP on its own port. (No `DTLS: off`:
            // in 10.5 it also turns DTLS off on the caller's side, whose answer then comes back
            // without a fingerprint. RTP/AVP alone keeps the far end plain.)
            ("transport-protocol", Value::str("RTP/AVP")),
            ("ICE", Value::str("remove")),
            ("rtcp-mux", Value::str_list(&["demux"])),
            (
                "replace",
                Value::str_list(&["origin", "session-connection"]),
            ),
        ]))?;
        let sdp = reply
            .get("sdp")
            .and_then(Value::as_str)
            .ok_or_else(|| anyhow!("rtpengine's offer reply has no sdp"))?;
        Ok((call_id, sdp.to_owned()))
    }

    fn answer(&mut self, call: u32, handle: &str, plain_answer: &str) -> Result<String> {
        let reply = self.command(Value::dict([
            ("command", Value::str("answer")),
            ("call-id", Value::str(handle)),
            ("from-tag", Value::str(&format!("caller-{call}"))),
            ("to-tag", Value::str(&format!("far-end-{call}"))),
            ("sdp", Value::str(plain_answer)),
            // Toward the caller: WebRTC again (ICE, DTLS-SRTP with rtpengine passive, rtcp-mux).
            ("transport-protocol", Value::str("UDP/TLS/RTP/SAVPF")),
            ("ICE", Value::str("force")),
            ("DTLS", Value::str("passive")),
            ("rtcp-mux", Value::str_list(&["require"])),
            (
                "replace",
                Value::str_list(&["origin", "session-connection"]),
            ),
        ]))?;
        reply
            .get("sdp")
            .and_then(Value::as_str)
            .map(crate::sdp::with_bundle_group)
            .ok_or_else(|| anyhow!("rtpengine's answer reply has no sdp"))
    }

    fn release(&mut self, call: u32, handle: &str) -> Result<()> {
        self.command(Value::dict([
            ("command", Value::str("delete")),
            ("call-id", Value::str(handle)),
            ("from-tag", Value::str(&format!("caller-{call}"))),
        ]))?;
        Ok(())
    }
}
