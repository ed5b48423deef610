//! One browser WebSocket: checks, rate-limits and passes on its SIP messages.

use std::cell::RefCell;

use serde::{Deserialize, Serialize};
use shared::ratelimit::{Admit, TokenBucket};
use shared::sip::{edge_verdict, EdgeVerdict, Method, SipMessage};
use worker::{
    durable_object, DurableObject, Env, Method as HttpMethod, Request, RequestInit, Response,
    Result, State, WebSocket, WebSocketIncomingMessage, WebSocketPair,
};

use super::wire::{
    account_object_name, AccountEvent, CallerLocation, ToAccount, ToConnection, CALLER_HEADER,
    TENANT_HEADER,
};
use super::SUBPROTOCOL;

/// The Durable Object binding of connection objects.
pub const BINDING: &str = "SIP_CONNECTION";
/// The Durable Object binding of account objects.
pub const ACCOUNT_BINDING: &str = "SIP_ACCOUNT";

/// Messages per second a socket may send on average (Worker variable `SIP_RATE_PER_S` overrides it),
/// the burst it may send at once (three seconds' worth), and how many refusals in a row (without
/// slowing down) close it.
const RATE_PER_S: u32 = 20;
const STRIKES_TO_DISCONNECT: u32 = 200;

/// What survives hibernation with the socket.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Attachment {
    /// The tenant's domain.
    tenant: String,
    /// Set once a REGISTER from this socket succeeded.
    user: Option<String>,
    /// Where Cloudflare saw the browser.
    #[serde(default)]
    caller: CallerLocation,
}

/// One browser's SIP WebSocket.
#[durable_object]
pub struct SipConnection {
    state: State,
    env: Env,
    limiter: RefCell<Option<TokenBucket>>,
}

impl DurableObject for SipConnection {
    fn new(state: State, env: Env) -> Self {
        Self {
            state,
            env,
            limiter: RefCell::new(None),
        }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        match (req.method(), req.path().as_str()) {
            (HttpMethod::Get, "/accept") => self.accept(&req),
            (HttpMethod::Post, "/deliver") => {
                let msg: ToConnection = req.json().await?;
                self.deliver(msg)?;
                Response::empty()
            }
            _ => Response::error("not found", 404),
        }
    }

    async fn websocket_message(
        &self,
        ws: WebSocket,
        message: WebSocketIncomingMessage,
    ) -> Result<()> {
        let bytes = match message {
            WebSocketIncomingMessage::String(s) => s.into_bytes(),
            WebSocketIncomingMessage::Binary(b) => b,
        };
        self.on_message(&ws, &bytes).await
    }

    async fn websocket_close(
        &self,
        ws: WebSocket,
        _code: usize,
        _reason: String,
        _clean: bool,
    ) -> Result<()> {
        self.on_closed(&ws).await
    }

    async fn websocket_error(&self, ws: WebSocket, _error: worker::Error) -> Result<()> {
        self.on_closed(&ws).await
    }
}

impl SipConnection {
    fn conn_id(&self) -> String {
        self.state.id().to_string()
    }

    fn accept(&self, req: &Request) -> Result<Response> {
        let tenant = req.headers().get(TENANT_HEADER)?.unwrap_or_default();
        let caller =
            CallerLocation::from_header(&req.headers().get(CALLER_HEADER)?.unwrap_or_default());
        let pair = WebSocketPair::new()?;
        self.state.accept_web_socket(&pair.server);
        pair.server.serialize_attachment(Attachment {
            tenant,
            user: None,
            caller,
        })?;
        let mut resp = Response::from_websocket(pair.client)?;
        resp.headers_mut()
            .set("sec-websocket-protocol", SUBPROTOCOL)?;
        Ok(resp)
    }

    fn socket(&self) -> Option<WebSocket> {
        self.state.get_websockets().into_iter().next()
    }

    fn deliver(&self, msg: ToConnection) -> Result<()> {
        let Some(ws) = self.socket() else {
            return Ok(()); // the browser is gone; the account learns from the close event
        };
        if let Some(user) = msg.registered_as {
            let mut att: Attachment = ws.deserialize_attachment()?.unwrap_or_default();
            att.user = Some(user);
            ws.serialize_attachment(att)?;
        }
        if let Some(text) = msg.message {
            ws.send_with_str(text)?;
        }
        if let Some(reason) = msg.close {
            ws.close(Some(1008), Some(reason))?;
        }
        Ok(())
    }

    async fn on_message(&self, ws: &WebSocket, bytes: &[u8]) -> Result<()> {
        let now = worker::Date::now().as_millis();
        let admit = self
            .limiter
            .borrow_mut()
            .get_or_insert_with(|| {
                let rate = self
                    .env
                    .var("SIP_RATE_PER_S")
                    .ok()
                    .and_then(|v| v.to_string().parse().ok())
                    .unwrap_or(RATE_PER_S);
                TokenBucket::new(rate, rate.saturating_mul(3), STRIKES_TO_DISCONNECT, now)
            })
            .admit(now);
        match admit {
            Admit::Yes => {}
            Admit::Refuse => {
                let retry = self
                    .limiter
                    .borrow()
                    .as_ref()
                    .map_or(1, |l| l.retry_after_s().max(1));
                if let Ok(req) = SipMessage::parse(bytes) {
                    if req.is_request() && req.method() != Some(&Method::ACK) {
                        let resp = reply(&req, 503, "Rate Limit Exceeded", &self.conn_id()).map(
                            |mut r| {
                                r.headers.set(
                                    shared::sip::HeaderName::parse("Retry-After"),
                                    retry.to_string(),
                                );
                                r
                            },
                        );
                        if let Some(resp) = resp {
                            ws.send_with_str(String::from_utf8_lossy(&resp.to_bytes()))?;
                        }
                    }
                }
                return Ok(());
            }
            Admit::Disconnect => {
                worker::console_warn!("closing a SIP socket that kept sending over its rate limit");
                ws.close(Some(1008), Some("rate limit exceeded"))?;
                return self.on_closed(ws).await;
            }
        }
        let att: Attachment = ws.deserialize_attachment()?.unwrap_or_default();
        let verdict = edge_verdict(bytes);
        let msg = match verdict {
            EdgeVerdict::Accept(msg) => *msg,
            EdgeVerdict::Drop { .. } => return Ok(()),
            reject @ EdgeVerdict::Reject { .. } => {
                if let Some(resp) = reject.response(&tag_for(&self.conn_id())) {
                    ws.send_with_str(String::from_utf8_lossy(&resp.to_bytes()))?;
                }
                return Ok(());
            }
        };
        let user = match self.account_for(&att, &msg) {
            Ok(Some(user)) => user,
            Ok(None) => return Ok(()),
            Err((status, reason)) => {
                if let Some(resp) = reply(&msg, status, reason, &self.conn_id()) {
                    ws.send_with_str(String::from_utf8_lossy(&resp.to_bytes()))?;
                }
                return Ok(());
            }
        };
        let event = AccountEvent::Browser {
            conn: self.conn_id(),
            message: String::from_utf8_lossy(&msg.to_bytes()).into_owned(),
            caller: att.caller.clone(),
        };
        match send_to_account(&self.env, &att.tenant, &user, event).await {
            Ok(replies) => {
                for r in replies {
                    self.deliver(r)?;
                }
            }
            Err(e) => {
                worker::console_error!("passing a SIP message to its account failed: {e}");
                if let Some(resp) = reply(&msg, 503, "Service Unavailable", &self.conn_id()) {
                    ws.send_with_str(String::from_utf8_lossy(&resp.to_bytes()))?;
                }
            }
        }
        Ok(())
    }

    /// Which account handles `msg`: `Ok(None)` drops it, `Err` answers it.
    fn account_for(
        &self,
        att: &Attachment,
        msg: &SipMessage,
    ) -> std::result::Result<Option<String>, (u16, &'static str)> {
        if !msg.is_request() {
            // Responses belong to transactions the socket's own account started.
            return Ok(att.user.clone());
        }
        if msg.method() == Some(&Method::REGISTER) {
            let to = msg.to().map_err(|_| (400, "Bad To Header"))?;
            let uri = to.uri.as_sip().ok_or((400, "Bad To Header"))?;
            if !uri.host.to_string().eq_ignore_ascii_case(&att.tenant) {
                return Err((403, "Not This Domain"));
            }
            let user = uri
                .user
                .clone()
                .filter(|u| !u.is_empty())
                .ok_or((400, "No User In To"))?;
            return match &att.user {
                Some(registered) if *registered != user => {
                    Err((403, "Socket Registered As Another Account"))
                }
                _ => Ok(Some(user)),
            };
        }
        let Some(registered) = att.user.clone() else {
            return if msg.method() == Some(&Method::ACK) {
                Ok(None)
            } else {
                Err((403, "Register First"))
            };
        };
        let from_user = msg
            .from()
            .ok()
            .and_then(|f| f.uri.as_sip().and_then(|u| u.user.clone()));
        if from_user.as_deref() != Some(registered.as_str()) {
            return Err((403, "From Is Not The Registered Account"));
        }
        Ok(Some(registered))
    }

    async fn on_closed(&self, ws: &WebSocket) -> Result<()> {
        let att: Attachment = ws.deserialize_attachment()?.unwrap_or_default();
        if let Some(user) = att.user {
            let event = AccountEvent::Closed {
                conn: self.conn_id(),
            };
            if let Err(e) = send_to_account(&self.env, &att.tenant, &user, event).await {
                worker::console_error!("telling the account a socket closed failed: {e}");
            }
        }
        Ok(())
    }
}

/// Posts `event` to the account object of `user` in `tenant`; returns what the account has for the
/// connection that sent it.
pub async fn send_to_account(
    env: &Env,
    tenant: &str,
    user: &str,
    event: AccountEvent,
) -> Result<Vec<ToConnection>> {
    let body = ToAccount {
        tenant: tenant.to_owned(),
        user: user.to_owned(),
        event,
    };
    let stub = env
        .durable_object(ACCOUNT_BINDING)?
        .get_by_name(&account_object_name(tenant, user))?;
    let mut init = RequestInit::new();
    init.with_method(HttpMethod::Post)
        .with_body(Some(serde_json::to_string(&body)?.into()));
    let mut resp = stub
        .fetch_with_request(Request::new_with_init("https://account/event", &init)?)
        .await?;
    if resp.status_code() >= 300 {
        return Err(worker::Error::RustError(format!(
            "account object answered {}",
            resp.status_code()
        )));
    }
    resp.json().await
}

/// Posts `msg` to the connection object `conn`.
pub async fn send_to_connection(env: &Env, conn: &str, msg: &ToConnection) -> Result<()> {
    let stub = env
        .durable_object(BINDING)?
        .id_from_string(conn)?
        .get_stub()?;
    let mut init = RequestInit::new();
    init.with_method(HttpMethod::Post)
        .with_body(Some(serde_json::to_string(msg)?.into()));
    stub.fetch_with_request(Request::new_with_init("https://connection/deliver", &init)?)
        .await?;
    Ok(())
}

/// A To-tag derived from the connection, so answers the edge gives itself match on retransmission.
fn tag_for(conn: &str) -> String {
    conn.chars().take(16).collect()
}

fn reply(req: &SipMessage, status: u16, reason: &str, conn: &str) -> Option<SipMessage> {
    req.response_to(status, reason, Some(&tag_for(conn))).ok()
}
