//! One SIP account: drives the sans-IO [`AccountCore`] and carries out what it asks for.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use futures_channel::mpsc::{unbounded, UnboundedSender};
use futures_util::StreamExt;
use shared::proxy::{
    AccountConfig, AccountCore, BridgeBrowserOffer, BridgeOffer, Event, MediaHealth, Output,
    RegistrationMode, StoredBinding, StoredCredentials,
};
use shared::sip::{Framed, SipMessage, StreamFramer};
use shared::tenant::{TenantConfig, Transport};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use worker::{
    durable_object, DurableObject, Env, Method as HttpMethod, Request, Response, Result,
    SecureTransport, Socket, State, Storage,
};

use super::connection::{send_to_account, send_to_connection};
use super::wire::{AccountEvent, CallerLocation, ToAccount, ToConnection};
use crate::accounts::AccountStore;
use crate::media::{self, MediaError};
use crate::tenants::TenantStore;
use shared::control::{
    AllocateInbound, AllocateInboundResponse, AllocateRequest, AllocateResponse, ApplyAnswer,
    ApplyAnswerResponse, ApplyBrowserAnswer, ApplyBrowserAnswerResponse, Mode, Renegotiate,
    RenegotiateResponse, SessionId, SessionStats, UpstreamReoffer, UpstreamReofferResponse,
};

/// Key of the persisted bindings in the object's storage.
const BINDINGS_KEY: &str = "bindings";
/// RFC 5626 §4.4.1: CRLF keep-alives on the upstream connection about every 30 s (we use 25).
const KEEPALIVE_MS: u64 = 25_000;
/// How long a media check ([`Output::CheckMedia`]) waits for the node before it counts as
/// unreachable: well under the core's 5 s check interval, well over a healthy node's answer.
const MEDIA_CHECK_TIMEOUT: Duration = Duration::from_secs(2);
/// How long an allocation waits for a node before it tries another: a healthy node answers in
/// milliseconds; a dead host may never answer.
const ALLOCATE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long releasing a session waits for its node (which may be the one that died).
const RELEASE_TIMEOUT: Duration = Duration::from_secs(5);

/// One SIP account of one tenant.
#[durable_object]
pub struct SipAccount {
    inner: Rc<Inner>,
}

struct Inner {
    env: Env,
    storage: Storage,
    loaded: RefCell<Option<Loaded>>,
    upstream: RefCell<Option<UnboundedSender<Vec<u8>>>>,
    last_keepalive: RefCell<u64>,
    /// When the alarm is set for (ms), so it is only rewritten when it must move earlier or has fired.
    alarm_at: RefCell<Option<u64>>,
    /// Media sessions: session id -> the control URL of its node.
    sessions: RefCell<HashMap<String, String>>,
    /// Echo (*43) calls: Call-ID -> session id.
    echo_calls: RefCell<HashMap<String, String>>,
    /// Where this account's browser last was (for picking media nodes near it).
    caller: RefCell<CallerLocation>,
}

struct Loaded {
    core: AccountCore,
    tenant: TenantConfig,
    user: String,
}

impl DurableObject for SipAccount {
    fn new(state: State, env: Env) -> Self {
        let storage = state.storage();
        Self {
            inner: Rc::new(Inner {
                env,
                storage,
                loaded: RefCell::new(None),
                upstream: RefCell::new(None),
                last_keepalive: RefCell::new(0),
                alarm_at: RefCell::new(None),
                sessions: RefCell::new(HashMap::new()),
                echo_calls: RefCell::new(HashMap::new()),
                caller: RefCell::new(CallerLocation::default()),
            }),
        }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        if req.method() != HttpMethod::Post || req.path() != "/event" {
            return Response::error("not found", 404);
        }
        let msg: ToAccount = req.json().await?;
        if let Err(e) = self.inner.ensure_loaded(&msg.tenant, &msg.user).await {
            worker::console_error!("account object could not load: {e}");
            return Response::error("account unavailable", 503);
        }
        // What goes back to the connection that sent this event travels in the answer to this
        // request instead of a separate request back to it.
        let reply_to = match &msg.event {
            AccountEvent::Browser { conn, .. } => Some(conn.clone()),
            _ => None,
        };
        let event = match msg.event {
            AccountEvent::Browser {
                conn,
                message,
                caller,
            } => {
                // Media for this account's calls goes to nodes near where its browser is.
                *self.inner.caller.borrow_mut() = caller;
                match SipMessage::parse(message.as_bytes()) {
                    Ok(msg) => Event::FromBrowser { conn, msg },
                    Err(_) => return Response::error("bad SIP message", 400),
                }
            }
            AccountEvent::Account { from_user, message } => {
                match SipMessage::parse(message.as_bytes()) {
                    Ok(msg) => Event::FromAccount {
                        user: from_user,
                        msg,
                    },
                    Err(_) => return Response::error("bad SIP message", 400),
                }
            }
            AccountEvent::Closed { conn } => Event::ConnectionClosed { conn },
        };
        let replies = Inner::feed(&self.inner, event, reply_to.as_deref()).await;
        Response::from_json(&replies)
    }

    async fn alarm(&self) -> Result<Response> {
        let now = now_ms();
        self.inner.alarm_at.borrow_mut().take();
        let loaded = self.inner.loaded.borrow().is_some();
        if loaded {
            if let Some(core) = self.inner.loaded.borrow_mut().as_mut().map(|l| &mut l.core) {
                core.handle_timeout(now);
            }
            Inner::drive(&self.inner, None).await;
        }
        Response::empty()
    }
}

impl Inner {
    async fn ensure_loaded(&self, tenant_domain: &str, user: &str) -> Result<()> {
        if let Some(l) = self.loaded.borrow().as_ref() {
            if l.tenant.domain.as_str() != tenant_domain || l.user != user {
                return Err(worker::Error::RustError("event for another account".into()));
            }
            return Ok(());
        }
        let db = self.env.d1("DB")?;
        let tenant = TenantStore::new(db)
            .get(tenant_domain)
            .await
            .map_err(|e| worker::Error::RustError(e.to_string()))?
            .ok_or_else(|| worker::Error::RustError(format!("no tenant {tenant_domain}")))?;
        let stored = AccountStore::new(self.env.d1("DB")?)
            .get(tenant_domain, user)
            .await
            .map_err(|e| worker::Error::RustError(e.to_string()))?;
        let nonce_secret = self
            .env
            .secret("SIP_NONCE_SECRET")
            .map(|s| s.to_string())
            .map_err(|_| worker::Error::RustError("set the SIP_NONCE_SECRET secret".into()))?;
        let bindings: Vec<StoredBinding> = self
            .storage
            .get(BINDINGS_KEY)
            .await
            .ok()
            .flatten()
            .unwrap_or_default();
        let config = AccountConfig {
            tenant_domain: tenant.domain.to_string(),
            user: user.to_owned(),
            edge_host: tenant.webrtc_host.to_string(),
            registration: match tenant.sip.registration {
                shared::tenant::Registration::Local => RegistrationMode::Local,
                shared::tenant::Registration::Relay => RegistrationMode::Relay,
            },
            has_upstream: tenant.sip.upstream.is_some(),
            upstream_transport: match tenant.sip.upstream.as_ref().map(|u| u.transport) {
                Some(Transport::Tls) => "TLS".into(),
                _ => "TCP".into(),
            },
            credentials: stored.map(|a| StoredCredentials {
                ha1_md5: a.ha1_md5,
                ha1_sha256: a.ha1_sha256,
            }),
            nonce_secret: nonce_secret.into_bytes(),
            seed: random_u64()?,
            limits: Default::default(),
            bridge_upstream_media: tenant
                .sip
                .upstream
                .as_ref()
                .is_none_or(|u| u.media == shared::tenant::UpstreamMedia::Bridge),
        };
        let core = AccountCore::restore(config, bindings, now_ms());
        // Another event may have loaded it while this one awaited D1: keep the first.
        let mut slot = self.loaded.borrow_mut();
        if slot.is_none() {
            *slot = Some(Loaded {
                core,
                tenant,
                user: user.to_owned(),
            });
        }
        Ok(())
    }

    /// Feeds one event and carries out everything that follows from it; what is for `reply_to` is
    /// returned instead of sent.
    async fn feed(this: &Rc<Self>, event: Event, reply_to: Option<&str>) -> Vec<ToConnection> {
        if let Some(l) = this.loaded.borrow_mut().as_mut() {
            l.core.handle(now_ms(), event);
        }
        Self::drive(this, reply_to).await
    }

    /// Carries out the core's outputs until there are none, then sets the alarm. Outputs for the
    /// connection `reply_to` are collected and returned, in order.
    async fn drive(this: &Rc<Self>, reply_to: Option<&str>) -> Vec<ToConnection> {
        let mut replies = Vec::new();
        loop {
            let next = this
                .loaded
                .borrow_mut()
                .as_mut()
                .and_then(|l| l.core.poll_output());
            let Some(output) = next else { break };
            let output = match output {
                Output::ToBrowser { conn, msg } if Some(conn.as_str()) == reply_to => {
                    let text = String::from_utf8_lossy(&msg.to_bytes()).into_owned();
                    replies.push(ToConnection {
                        message: Some(text),
                        ..Default::default()
                    });
                    continue;
                }
                Output::Registered { conn } if Some(conn.as_str()) == reply_to => {
                    let user = this.loaded.borrow().as_ref().map(|l| l.user.clone());
                    replies.push(ToConnection {
                        registered_as: user,
                        ..Default::default()
                    });
                    continue;
                }
                other => other,
            };
            if let Err(e) = Self::execute(this, output).await {
                worker::console_error!("SIP account output failed: {e}");
            }
        }
        if let Err(e) = this.schedule().await {
            worker::console_error!("setting the account alarm failed: {e}");
        }
        replies
    }

    async fn execute(this: &Rc<Self>, output: Output) -> Result<()> {
        let (tenant, user) = match this.loaded.borrow().as_ref() {
            Some(l) => (l.tenant.domain.to_string(), l.user.clone()),
            None => return Ok(()),
        };
        match output {
            Output::ToBrowser { conn, msg } => {
                let text = String::from_utf8_lossy(&msg.to_bytes()).into_owned();
                send_to_connection(
                    &this.env,
                    &conn,
                    &ToConnection {
                        message: Some(text),
                        ..Default::default()
                    },
                )
                .await
            }
            Output::Registered { conn } => {
                send_to_connection(
                    &this.env,
                    &conn,
                    &ToConnection {
                        registered_as: Some(user),
                        ..Default::default()
                    },
                )
                .await
            }
            Output::ToAccount { user: to, msg } => {
                let message = String::from_utf8_lossy(&msg.to_bytes()).into_owned();
                send_to_account(
                    &this.env,
                    &tenant,
                    &to,
                    AccountEvent::Account {
                        from_user: user,
                        message,
                    },
                )
                .await
                .map(|_no_replies| ())
            }
            Output::ToUpstream { msg } => Self::send_upstream(this, msg.to_bytes()).await,
            Output::Lookup { id, user: asked } => {
                let is_account = AccountStore::new(this.env.d1("DB")?)
                    .get(&tenant, &asked)
                    .await
                    .map_err(|e| worker::Error::RustError(e.to_string()))?
                    .is_some();
                if let Some(l) = this.loaded.borrow_mut().as_mut() {
                    l.core
                        .handle(now_ms(), Event::LookupResult { id, is_account });
                }
                Ok(())
            }
            Output::Echo { id, call_id, offer } => {
                let answer = match Self::allocate(this, &call_id, offer, Mode::Echo).await {
                    Ok(resp) => {
                        this.echo_calls
                            .borrow_mut()
                            .insert(call_id, resp.session_id.to_string());
                        Ok(resp.browser_answer_sdp)
                    }
                    Err(e) => {
                        worker::console_warn!("echo test without media: {e}");
                        Err(e.sip_status())
                    }
                };
                Self::answer(this, Event::EchoAnswer { id, answer });
                Ok(())
            }
            Output::EchoEnded { call_id } => {
                let session = this.echo_calls.borrow_mut().remove(&call_id);
                if let Some(session) = session {
                    Self::release(this, &session).await;
                }
                Ok(())
            }
            Output::BridgeOffer {
                id,
                call_id,
                browser_offer,
            } => {
                let result = match Self::allocate(this, &call_id, browser_offer, Mode::Bridge).await
                {
                    Ok(resp) => match resp.upstream_offer_sdp {
                        Some(upstream_offer) => Ok(BridgeOffer {
                            session: resp.session_id.to_string(),
                            upstream_offer,
                        }),
                        None => Err((500, "Media Node Gave No Upstream Offer".to_owned())),
                    },
                    Err(e) => {
                        worker::console_warn!("no media bridge for a call: {e}");
                        Err(e.sip_status())
                    }
                };
                Self::answer(this, Event::BridgeReady { id, result });
                Ok(())
            }
            Output::BridgeAnswer {
                id,
                session,
                upstream_answer,
            } => {
                let body = ApplyAnswer {
                    session_id: SessionId::new(session.clone()),
                    upstream_answer_sdp: upstream_answer,
                };
                let result: std::result::Result<ApplyAnswerResponse, MediaError> =
                    Self::session_call(this, &session, HttpMethod::Post, "/answer", Some(&body))
                        .await;
                let result = result
                    .map(|r| r.browser_answer_sdp)
                    .map_err(|e| e.sip_status());
                Self::answer(this, Event::BridgeAnswered { id, result });
                Ok(())
            }
            Output::BridgeRenegotiate {
                id,
                session,
                browser_offer,
            } => {
                let body = Renegotiate {
                    session_id: SessionId::new(session.clone()),
                    browser_offer_sdp: browser_offer,
                };
                let (result, health) =
                    Self::mid_call::<_, RenegotiateResponse>(this, &session, "/renegotiate", &body)
                        .await;
                let result = result.map(|r| r.browser_answer_sdp);
                Self::answer(this, Event::BridgeRenegotiated { id, result });
                Self::report_health(this, session, health);
                Ok(())
            }
            Output::BridgeUpstreamReoffer {
                id,
                session,
                upstream_offer,
            } => {
                let body = UpstreamReoffer {
                    session_id: SessionId::new(session.clone()),
                    upstream_offer_sdp: upstream_offer,
                };
                let (result, health) = Self::mid_call::<_, UpstreamReofferResponse>(
                    this,
                    &session,
                    "/upstream-offer",
                    &body,
                )
                .await;
                let result = result.map(|r| r.upstream_answer_sdp);
                Self::answer(this, Event::BridgeUpstreamReoffered { id, result });
                Self::report_health(this, session, health);
                Ok(())
            }
            Output::BridgeOfferFromUpstream {
                id,
                call_id,
                upstream_offer,
            } => {
                let result = match Self::allocate_inbound(this, &call_id, upstream_offer).await {
                    Ok(resp) => Ok(BridgeBrowserOffer {
                        session: resp.session_id.to_string(),
                        browser_offer: resp.browser_offer_sdp,
                    }),
                    Err(e) => {
                        worker::console_warn!("no media bridge for an incoming call: {e}");
                        Err(e.sip_status())
                    }
                };
                Self::answer(this, Event::BridgeReadyFromUpstream { id, result });
                Ok(())
            }
            Output::BridgeAnswerFromBrowser {
                id,
                session,
                browser_answer,
            } => {
                let body = ApplyBrowserAnswer {
                    session_id: SessionId::new(session.clone()),
                    browser_answer_sdp: browser_answer,
                };
                let result: std::result::Result<ApplyBrowserAnswerResponse, MediaError> =
                    Self::session_call(
                        this,
                        &session,
                        HttpMethod::Post,
                        "/browser-answer",
                        Some(&body),
                    )
                    .await;
                let result = result
                    .map(|r| r.upstream_answer_sdp)
                    .map_err(|e| e.sip_status());
                Self::answer(this, Event::BridgeAnsweredForUpstream { id, result });
                Ok(())
            }
            Output::CheckMedia { session } => {
                let health = Self::check_media(this, &session).await;
                if health != MediaHealth::Alive {
                    worker::console_warn!("media session {session}: {health:?}");
                }
                Self::answer(this, Event::MediaChecked { session, health });
                Ok(())
            }
            Output::BridgeRelease { session } => {
                Self::release(this, &session).await;
                Ok(())
            }
            Output::PersistBindings(bindings) => this.storage.put(BINDINGS_KEY, bindings).await,
        }
    }

    /// Allocates a media session for `call_id` from the browser's offer, on the least loaded
    /// healthy node.
    async fn allocate(
        this: &Rc<Self>,
        call_id: &str,
        offer: String,
        mode: Mode,
    ) -> std::result::Result<AllocateResponse, MediaError> {
        let request = AllocateRequest {
            call_id: call_id.to_owned(),
            browser_offer_sdp: offer,
            mode,
        };
        Self::allocate_at(this, "/v1/sessions", &request, |r: &AllocateResponse| {
            &r.session_id
        })
        .await
    }

    /// Allocates a session for a call from the upstream (its plain RTP offer first).
    async fn allocate_inbound(
        this: &Rc<Self>,
        call_id: &str,
        upstream_offer: String,
    ) -> std::result::Result<AllocateInboundResponse, MediaError> {
        let request = AllocateInbound {
            call_id: call_id.to_owned(),
            upstream_offer_sdp: upstream_offer,
        };
        Self::allocate_at(
            this,
            "/v1/sessions/inbound",
            &request,
            |r: &AllocateInboundResponse| &r.session_id,
        )
        .await
    }

    /// Picks a node, POSTs `request` to `path` there and remembers which node holds the session.
    ///
    /// Fails over: when the node cannot be reached, does not answer within [`ALLOCATE_TIMEOUT`],
    /// or answers 503 (full, draining), the registry is told (the node is suspect for a while,
    /// for every account) and another node is picked, excluding the ones that failed, up to
    /// [`MAX_ALLOCATION_ATTEMPTS`](shared::fleet::MAX_ALLOCATION_ATTEMPTS) nodes.
    async fn allocate_at<Req: serde::Serialize, Resp: serde::de::DeserializeOwned>(
        this: &Rc<Self>,
        path: &str,
        request: &Req,
        session_of: impl Fn(&Resp) -> &SessionId,
    ) -> std::result::Result<Resp, MediaError> {
        let preferred = this.preferred_regions();
        let mut failed: Vec<String> = Vec::new();
        let mut last_error = MediaError::Transport("no media node is available".into());
        while failed.len() < shared::fleet::MAX_ALLOCATION_ATTEMPTS {
            let Some(node) = crate::fleet::pick(&this.env, &preferred, &failed).await? else {
                break;
            };
            let call = media::call(
                &this.env,
                &node.control_url,
                HttpMethod::Post,
                path,
                Some(request),
            );
            let result = within(ALLOCATE_TIMEOUT, call)
                .await
                .unwrap_or_else(|| Err(MediaError::Transport("no answer in time".into())));
            match result {
                Ok(resp) => {
                    this.sessions
                        .borrow_mut()
                        .insert(session_of(&resp).to_string(), node.control_url);
                    return Ok(resp);
                }
                Err(e) if try_another_node(&e) => {
                    worker::console_warn!(
                        "allocating on media node {} failed ({e}); trying another",
                        node.id
                    );
                    if let Err(e) = crate::fleet::suspect(&this.env, &node.id).await {
                        worker::console_error!("marking media node {} suspect: {e}", node.id);
                    }
                    failed.push(node.id);
                    last_error = e;
                }
                Err(e) => return Err(e),
            }
        }
        Err(last_error)
    }

    /// Node regions nearest the account's browser, from the `MEDIA_REGIONS` setting.
    fn preferred_regions(&self) -> Vec<String> {
        let Ok(setting) = self.env.var("MEDIA_REGIONS").map(|v| v.to_string()) else {
            return Vec::new();
        };
        match shared::fleet::RegionPreferences::from_json(&setting) {
            Ok(prefs) => {
                let caller = self.caller.borrow();
                prefs.for_caller(caller.country.as_deref(), caller.continent.as_deref())
            }
            Err(e) => {
                worker::console_error!("{e}");
                Vec::new()
            }
        }
    }

    /// A re-negotiation on an existing session (`POST /v1/sessions/{id}{suffix}`): its result as
    /// the core takes it (a SIP status on failure), and what it says about the node. A node that
    /// cannot be reached or has forgotten the session (the browser's ICE restart after the node
    /// died, typically) counts as a failed media check too.
    async fn mid_call<Req: serde::Serialize, Resp: serde::de::DeserializeOwned>(
        this: &Rc<Self>,
        session: &str,
        suffix: &str,
        body: &Req,
    ) -> (std::result::Result<Resp, (u16, String)>, MediaHealth) {
        let result: std::result::Result<Resp, MediaError> =
            Self::session_call(this, session, HttpMethod::Post, suffix, Some(body)).await;
        let health = match &result {
            Err(e) => media_health(e),
            Ok(_) => MediaHealth::Alive,
        };
        (result.map_err(|e| e.sip_status()), health)
    }

    /// Tells the core about a failed media check that a mid-call request revealed.
    fn report_health(this: &Rc<Self>, session: String, health: MediaHealth) {
        if health != MediaHealth::Alive {
            Self::answer(this, Event::MediaChecked { session, health });
        }
    }

    /// A control request about an existing session.
    async fn session_call<Req: serde::Serialize, Resp: serde::de::DeserializeOwned>(
        this: &Rc<Self>,
        session: &str,
        method: HttpMethod,
        suffix: &str,
        body: Option<&Req>,
    ) -> std::result::Result<Resp, MediaError> {
        let url = this.sessions.borrow().get(session).cloned();
        let url = url.ok_or(MediaError::Refused(
            shared::control::ControlError::UnknownSession,
        ))?;
        media::call(
            &this.env,
            &url,
            method,
            &format!("/v1/sessions/{session}{suffix}"),
            body,
        )
        .await
    }

    /// Whether a media session is still there: its node's `GET /v1/sessions/{id}/stats`, bounded
    /// by [`MEDIA_CHECK_TIMEOUT`].
    ///
    /// The node is asked about the session itself rather than the fleet registry about the node:
    /// the registry drops a silent node only after 15 s, and cannot tell that a node which came
    /// straight back (a restart) has forgotten its sessions; the stats request is one small signed
    /// GET per call every 5 s, and none while the account has no bridged call.
    async fn check_media(this: &Rc<Self>, session: &str) -> MediaHealth {
        let check =
            Self::session_call::<(), SessionStats>(this, session, HttpMethod::Get, "/stats", None);
        match within(MEDIA_CHECK_TIMEOUT, check).await {
            Some(Ok(_)) => MediaHealth::Alive,
            Some(Err(e)) => media_health(&e),
            None => MediaHealth::Unreachable,
        }
    }

    /// Releases a media session (once; unknown sessions are ignored).
    async fn release(this: &Rc<Self>, session: &str) {
        if !this.sessions.borrow().contains_key(session) {
            return;
        }
        // Bounded: the session's node may be the one that died (a blackholed host never answers).
        let release =
            Self::session_call::<(), SessionStats>(this, session, HttpMethod::Delete, "", None);
        let result = within(RELEASE_TIMEOUT, release)
            .await
            .unwrap_or_else(|| Err(MediaError::Transport("no answer in time".into())));
        this.sessions.borrow_mut().remove(session);
        match result {
            // The node ended it already (the browser closed its side first, or it timed out).
            Ok(_) | Err(MediaError::Refused(shared::control::ControlError::UnknownSession)) => {}
            Err(e) => worker::console_warn!("releasing media session {session} failed: {e}"),
        }
    }

    /// Answers a bridge request of the core.
    fn answer(this: &Rc<Self>, event: Event) {
        if let Some(l) = this.loaded.borrow_mut().as_mut() {
            l.core.handle(now_ms(), event);
        }
    }

    /// Sends bytes to the upstream, connecting first when there is no connection.
    async fn send_upstream(this: &Rc<Self>, bytes: Vec<u8>) -> Result<()> {
        let existing = this.upstream.borrow().clone();
        let sender = match existing {
            Some(s) if !s.is_closed() => s,
            _ => Self::connect_upstream(this)?,
        };
        sender
            .unbounded_send(bytes)
            .map_err(|_| worker::Error::RustError("upstream connection closed".into()))
    }

    fn connect_upstream(this: &Rc<Self>) -> Result<UnboundedSender<Vec<u8>>> {
        let upstream = this
            .loaded
            .borrow()
            .as_ref()
            .and_then(|l| l.tenant.sip.upstream.clone())
            .ok_or_else(|| worker::Error::RustError("the tenant has no upstream".into()))?;
        let transport = match upstream.transport {
            Transport::Tcp => SecureTransport::Off,
            Transport::Tls => SecureTransport::On,
        };
        let socket: Socket = Socket::builder()
            .secure_transport(transport)
            .connect(upstream.host.to_string(), upstream.port())?;
        let (mut reader, mut writer) = tokio::io::split(socket);
        let (tx, mut rx) = unbounded::<Vec<u8>>();
        *this.upstream.borrow_mut() = Some(tx.clone());
        *this.last_keepalive.borrow_mut() = now_ms();
        wasm_bindgen_futures::spawn_local(async move {
            while let Some(bytes) = rx.next().await {
                if writer.write_all(&bytes).await.is_err() {
                    break;
                }
            }
            let _ = writer.shutdown().await;
        });
        let this = this.clone();
        let pong = tx.clone();
        wasm_bindgen_futures::spawn_local(async move {
            let mut framer = StreamFramer::new();
            let mut buf = vec![0u8; 16 * 1024];
            'read: loop {
                let n = match reader.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                framer.push(&buf[..n]);
                loop {
                    match framer.next_item() {
                        Ok(None) => break,
                        Ok(Some(Framed::Message(msg))) => {
                            Self::feed(&this, Event::FromUpstream { msg: *msg }, None).await;
                        }
                        Ok(Some(Framed::Ping)) => {
                            let _ = pong.unbounded_send(b"\r\n".to_vec());
                        }
                        Ok(Some(Framed::Pong)) => {}
                        Ok(Some(Framed::Malformed(e))) => {
                            worker::console_warn!(
                                "dropped a malformed message from the upstream: {e}"
                            );
                        }
                        Err(e) => {
                            worker::console_warn!("closing the upstream connection: {e}");
                            break 'read;
                        }
                    }
                }
            }
            this.upstream.borrow_mut().take();
            Self::feed(&this, Event::UpstreamLost, None).await;
        });
        Ok(tx)
    }

    /// Sets the alarm at the core's next timer, or the next upstream keep-alive.
    async fn schedule(&self) -> Result<()> {
        let now = now_ms();
        let connected = self
            .upstream
            .borrow()
            .as_ref()
            .is_some_and(|s| !s.is_closed());
        if connected && now.saturating_sub(*self.last_keepalive.borrow()) >= KEEPALIVE_MS {
            if let Some(s) = self.upstream.borrow().as_ref() {
                let _ = s.unbounded_send(b"\r\n\r\n".to_vec());
            }
            *self.last_keepalive.borrow_mut() = now;
        }
        let core_wake = self
            .loaded
            .borrow()
            .as_ref()
            .and_then(|l| l.core.poll_timeout());
        let keepalive_wake = connected.then(|| *self.last_keepalive.borrow() + KEEPALIVE_MS);
        let wake = match (core_wake, keepalive_wake) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        match wake {
            Some(at) => {
                // An alarm still to come, no later than `at`, wakes us in time to reschedule.
                let pending = *self.alarm_at.borrow();
                if pending.is_some_and(|p| p > now && p <= at) {
                    return Ok(());
                }
                *self.alarm_at.borrow_mut() = Some(at);
                let delay = at.saturating_sub(now).max(1);
                self.storage
                    .set_alarm(std::time::Duration::from_millis(delay))
                    .await
            }
            None => Ok(()),
        }
    }
}

/// `fut`'s output, or `None` when it takes longer than `limit`.
async fn within<T>(limit: Duration, fut: impl std::future::Future<Output = T>) -> Option<T> {
    let fut = std::pin::pin!(fut);
    let timeout = std::pin::pin!(worker::Delay::from(limit));
    match futures_util::future::select(fut, timeout).await {
        futures_util::future::Either::Left((out, _)) => Some(out),
        futures_util::future::Either::Right(_) => None,
    }
}

/// Whether an allocation that failed this way may succeed on another node: the node could not be
/// reached or answered in time, or refused for want of room or because it drains (503).
fn try_another_node(e: &MediaError) -> bool {
    match e {
        MediaError::Transport(_) => true,
        MediaError::Refused(c) => c.http_status() == 503,
        MediaError::NoSecret => false,
    }
}

/// What a failed control request says about its session's media.
fn media_health(e: &MediaError) -> MediaHealth {
    match e {
        MediaError::Refused(shared::control::ControlError::UnknownSession) => MediaHealth::Gone,
        MediaError::Transport(_) => MediaHealth::Unreachable,
        // The node answered (a refusal, e.g. a clock too far off to verify the signature): it is
        // there, and this is no reason to end a call. Nor is a missing secret here.
        MediaError::Refused(_) | MediaError::NoSecret => MediaHealth::Alive,
    }
}

fn now_ms() -> u64 {
    worker::Date::now().as_millis()
}

/// 64 random bits from the runtime's CSPRNG.
fn random_u64() -> Result<u64> {
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&crate::random_bytes(8)?);
    Ok(u64::from_le_bytes(bytes))
}
