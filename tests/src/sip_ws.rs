//! A SIP-over-WebSocket client for tests: sends requests built from a few parameters, answers digest
//! challenges with [`shared::auth::respond`], and waits (bounded) for the message it expects.
//! [`Dialog`] is one call the client places: its INVITE, the dialog its answer sets up, and the
//! requests sent in it (ACK, re-INVITE, BYE).

use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use shared::sip::{Contacts, HeaderName, SipMessage};
use tungstenite::client::IntoClientRequest;
use tungstenite::{Message, WebSocket};

/// Errors of the test client.
#[derive(Debug, thiserror::Error)]
pub enum WsError {
    /// The WebSocket failed.
    #[error("websocket: {0}")]
    Ws(#[from] tungstenite::Error),
    /// I/O on the socket.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    /// Nothing matching arrived in time.
    #[error("timed out after {0:?} waiting for {1}; received meanwhile:\n{2}")]
    Timeout(Duration, String, String),
    /// The server closed the socket.
    #[error("the server closed the WebSocket: {0}")]
    Closed(String),
}

/// One browser-like SIP user agent on a WebSocket.
#[derive(Debug)]
pub struct SipWsClient {
    ws: WebSocket<TcpStream>,
    /// The user part, e.g. `1001`.
    pub user: String,
    /// The tenant domain (SIP domain).
    pub domain: String,
    /// This client's Contact URI.
    pub contact: String,
    /// Everything received, in order (for failure messages).
    pub received: Vec<String>,
    counter: u32,
}

impl SipWsClient {
    /// Opens `ws://<addr>/ws` with `Host: host` and the `sip` subprotocol.
    pub fn connect(
        addr: SocketAddr,
        host: &str,
        user: &str,
        domain: &str,
    ) -> Result<Self, WsError> {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(10))?;
        stream.set_read_timeout(Some(Duration::from_millis(200)))?;
        let mut request = format!("ws://{addr}/ws").into_client_request()?;
        let headers = request.headers_mut();
        headers.insert(
            "host",
            host.parse()
                .map_err(|_| WsError::Closed("bad host".into()))?,
        );
        headers.insert(
            "sec-websocket-protocol",
            "sip"
                .parse()
                .map_err(|_| WsError::Closed("bad proto".into()))?,
        );
        let (ws, _resp) = tungstenite::client(request, stream).map_err(|e| match e {
            tungstenite::HandshakeError::Failure(e) => WsError::Ws(e),
            tungstenite::HandshakeError::Interrupted(_) => {
                WsError::Closed("handshake interrupted".into())
            }
        })?;
        let tag = random_token();
        Ok(Self {
            ws,
            user: user.to_owned(),
            domain: domain.to_owned(),
            contact: format!("sip:{tag}@{tag}.invalid;transport=ws"),
            received: Vec::new(),
            counter: 0,
        })
    }

    /// A fresh token (tags, branches, Call-IDs).
    pub fn token(&mut self) -> String {
        self.counter += 1;
        format!("{}{}", random_token(), self.counter)
    }

    /// Sends raw text as one WebSocket message.
    pub fn send_raw(&mut self, text: &str) -> Result<(), WsError> {
        self.ws.send(Message::text(text))?;
        Ok(())
    }

    /// Waits up to `timeout` for a message for which `pred` holds; earlier ones are kept in `received`.
    pub fn wait_for(
        &mut self,
        what: &str,
        timeout: Duration,
        mut pred: impl FnMut(&SipMessage) -> bool,
    ) -> Result<SipMessage, WsError> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            match self.ws.read() {
                Ok(Message::Text(t)) => {
                    let text = t.to_string();
                    self.received.push(text.clone());
                    if let Ok(msg) = SipMessage::parse(text.as_bytes()) {
                        if pred(&msg) {
                            return Ok(msg);
                        }
                    }
                }
                Ok(Message::Close(frame)) => {
                    return Err(WsError::Closed(
                        frame.map(|f| f.reason.to_string()).unwrap_or_default(),
                    ))
                }
                Ok(_) => {}
                Err(tungstenite::Error::Io(e))
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Err(WsError::Timeout(
            timeout,
            what.to_owned(),
            self.received.join("\n----\n"),
        ))
    }

    /// Waits for a response with `status` to the request with this Call-ID and CSeq method.
    pub fn wait_response(
        &mut self,
        call_id: &str,
        method: &str,
        status: u16,
    ) -> Result<SipMessage, WsError> {
        let what = format!("{status} for {method} {call_id}");
        self.wait_for(&what, Duration::from_secs(15), |m| {
            m.status() == Some(status)
                && m.call_id().ok() == Some(call_id)
                && m.cseq().ok().is_some_and(|c| c.method.as_str() == method)
        })
    }

    /// Waits for a request with this method.
    pub fn wait_request(&mut self, method: &str) -> Result<SipMessage, WsError> {
        self.wait_for(
            &format!("a {method} request"),
            Duration::from_secs(15),
            |m| m.method().is_some_and(|x| x.as_str() == method),
        )
    }

    /// Registers (answering the digest challenge); returns the final response.
    pub fn register(&mut self, password: &str, expires: u32) -> Result<SipMessage, WsError> {
        let call_id = self.token();
        let from_tag = self.token();
        let uri = format!("sip:{}", self.domain);
        let build = |client: &mut Self, cseq: u32, auth: Option<String>| {
            let branch = client.token();
            let mut m = format!(
                "REGISTER {uri} SIP/2.0\r\nVia: SIP/2.0/WSS {host}.invalid;branch=z9hG4bK{branch}\r\n\
                 Max-Forwards: 70\r\nTo: <sip:{user}@{domain}>\r\nFrom: <sip:{user}@{domain}>;tag={from_tag}\r\n\
                 Call-ID: {call_id}\r\nCSeq: {cseq} REGISTER\r\nContact: <{contact}>;expires={expires}\r\n\
                 Supported: path, outbound\r\n",
                host = client.user,
                user = client.user,
                domain = client.domain,
                contact = client.contact,
            );
            if let Some(a) = auth {
                m.push_str(&format!("Authorization: {a}\r\n"));
            }
            m.push_str("Content-Length: 0\r\n\r\n");
            m
        };
        let first = build(self, 1, None);
        self.send_raw(&first)?;
        let challenge = self.wait_for("REGISTER challenge", Duration::from_secs(15), |m| {
            m.call_id().ok() == Some(call_id.as_str()) && m.status().is_some_and(|s| s >= 200)
        })?;
        if challenge.status() != Some(401) {
            return Ok(challenge);
        }
        let values: Vec<String> = challenge
            .headers
            .get_all(&shared::sip::HeaderName::parse("WWW-Authenticate"))
            .map(str::to_owned)
            .collect();
        let chosen = shared::auth::Challenge::select(values.iter().map(String::as_str))
            .ok_or_else(|| WsError::Closed(format!("no usable challenge in {values:?}")))?;
        let cnonce = self.token();
        let user = self.user.clone();
        let auth = shared::auth::respond(&chosen, "REGISTER", &uri, &user, password, &cnonce, 1)
            .map_err(|e| WsError::Closed(format!("digest: {e}")))?;
        let second = build(self, 2, Some(auth));
        self.send_raw(&second)?;
        self.wait_for("REGISTER final response", Duration::from_secs(15), |m| {
            m.call_id().ok() == Some(call_id.as_str())
                && m.cseq().ok().is_some_and(|c| c.seq == 2)
                && m.status().is_some_and(|s| s >= 200)
        })
    }
}

/// A call the client places, as the caller sees it: what its requests carry.
#[derive(Debug, Clone)]
pub struct Dialog {
    /// The Call-ID.
    pub call_id: String,
    /// The From header (with the caller's tag).
    pub from: String,
    /// The To header (with the callee's tag once answered).
    pub to: String,
    /// The Request-URI (the callee's Contact once answered).
    pub target: String,
    /// `Route:` lines from the answer's Record-Route, reversed (empty before the answer).
    pub routes: String,
}

impl Dialog {
    /// A new call from `ws` to `number` at its domain: a fresh Call-ID and From tag.
    pub fn new(ws: &mut SipWsClient, number: &str) -> Self {
        let call_id = ws.token();
        let tag = ws.token();
        Self {
            call_id,
            from: format!("<sip:{}@{}>;tag={tag}", ws.user, ws.domain),
            to: format!("<sip:{number}@{}>", ws.domain),
            target: format!("sip:{number}@{}", ws.domain),
            routes: String::new(),
        }
    }

    /// Sends a request of this call (an SDP body when `sdp` is given).
    pub fn request(
        &self,
        ws: &mut SipWsClient,
        method: &str,
        cseq: u32,
        sdp: Option<&str>,
    ) -> Result<(), WsError> {
        let branch = ws.token();
        let body = sdp.unwrap_or("");
        let ctype = if sdp.is_some() {
            "Content-Type: application/sdp\r\n"
        } else {
            ""
        };
        let msg = format!(
            "{method} {target} SIP/2.0\r\nVia: SIP/2.0/WSS a.invalid;branch=z9hG4bK{branch}\r\n\
             Max-Forwards: 70\r\n{routes}To: {to}\r\nFrom: {from}\r\nCall-ID: {call_id}\r\n\
             CSeq: {cseq} {method}\r\nContact: <{contact}>\r\n{ctype}Content-Length: {len}\r\n\r\n{body}",
            target = self.target,
            routes = self.routes,
            to = self.to,
            from = self.from,
            call_id = self.call_id,
            contact = ws.contact,
            len = body.len()
        );
        ws.send_raw(&msg)
    }

    /// Takes the dialog from the INVITE's 2xx: the To tag, the route set and the remote target.
    /// `None` when the answer has no To or no Contact.
    pub fn confirm(&mut self, answer: &SipMessage) -> Option<()> {
        self.to = answer.headers.get(&HeaderName::To)?.to_owned();
        self.routes = answer
            .headers
            .get_all(&HeaderName::RecordRoute)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .map(|r| format!("Route: {r}\r\n"))
            .collect();
        self.target = match answer.contacts() {
            Ok(Contacts::List(list)) => list.first().map(|c| c.uri.to_string()),
            _ => None,
        }?;
        Some(())
    }

    /// Waits up to `timeout` for the final response to this call's request with CSeq `cseq`.
    pub fn final_response(
        &self,
        ws: &mut SipWsClient,
        cseq: u32,
        timeout: Duration,
    ) -> Result<SipMessage, WsError> {
        let call_id = self.call_id.as_str();
        ws.wait_for(
            &format!("the final response to CSeq {cseq} of {call_id}"),
            timeout,
            |m| {
                m.call_id().ok() == Some(call_id)
                    && m.status().is_some_and(|s| s >= 200)
                    && m.cseq().is_ok_and(|c| c.seq == cseq)
            },
        )
    }
}

fn random_token() -> String {
    crate::edge::random_hex(6).unwrap_or_else(|_| "0badc0de".into())
}
