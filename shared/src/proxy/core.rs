//! The account core: dispatch of events, proxying of requests and responses, timers.

use std::collections::{BTreeMap, HashMap, VecDeque};

use super::bindings::{uri_key, Bindings, StoredBinding};
use super::bridge::{BridgeCall, Dir};
use super::config::AccountConfig;
use super::echo::EchoCall;
use super::io::{ConnId, Event, Hop, Output};
use super::rng::Rng;
use super::routing::{classify_route, host_is, our_via, record_route, unescape, RouteTarget};
use super::transaction::{
    best_branch, build_ack, build_cancel, insert_before_length, merge_challenges, Branch, Tx,
    TxKind,
};
use crate::auth::{Verifier, VerifierConfig};
use crate::sip::{Contacts, Header, HeaderName, Method, SipMessage, SipUri, StartLine};

/// The methods the edge lists in `Allow`.
pub(crate) const ALLOW: &str =
    "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE, PRACK, REFER, MESSAGE, NOTIFY, SUBSCRIBE";
/// The option tags the edge lists in `Supported`.
pub(crate) const SUPPORTED: &str = "path, outbound, gruu, replaces, timer";

/// Where a request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Decision {
    /// To that hop, Request-URI unchanged.
    Forward(Hop),
    /// To every binding of this account (Request-URI = each binding's contact).
    Local,
    /// Ask the shell whether the user is an account of the tenant.
    Lookup(String),
    /// The *43 echo service.
    Echo,
    /// OPTIONS to the edge itself.
    EdgeOptions,
    /// Answer with this status.
    Reject(u16, &'static str),
}

/// The SIP logic of one account at the edge: registrar (or registration relay) and
/// record-routing proxy for its browsers, sans-IO. See the [module docs](super).
#[derive(Debug)]
pub struct AccountCore {
    pub(super) config: AccountConfig,
    pub(super) rng: Rng,
    pub(super) verifier: Verifier,
    pub(super) bindings: Bindings,
    /// Contacts seen from browsers (contact key → connection), most recent first.
    flows: Vec<(String, ConnId)>,
    pub(super) txs: BTreeMap<u64, Tx>,
    by_key: HashMap<(Hop, String), u64>,
    by_branch: HashMap<String, (u64, usize)>,
    lookups: HashMap<u64, u64>,
    pub(super) echo: Vec<EchoCall>,
    /// Echo calls ended before their answer came: (echo id, Call-ID).
    pub(super) cancelled_echo: Vec<(u64, String)>,
    /// Calls through a media bridge (being set up or established).
    pub(super) bridges: Vec<BridgeCall>,
    /// Allocation ids of bridged calls that ended before their session came.
    pub(super) aborted_bridges: Vec<u64>,
    /// When the bridge sessions are next checked ([`Output::CheckMedia`]); only counts while
    /// there are sessions.
    pub(super) next_media_check: Option<u64>,
    pub(super) next_id: u64,
    pub(super) out: VecDeque<Output>,
    pub(super) now: u64,
    /// Nonces issued before this core first ran are refused as stale: the replay tracker of a
    /// previous instance (before an eviction) is gone.
    pub(super) epoch_ms: Option<u64>,
}

fn reason_of(status: u16) -> &'static str {
    match status {
        100 => "Trying",
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        416 => "Unsupported URI Scheme",
        423 => "Interval Too Brief",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        483 => "Too Many Hops",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        420 => "Bad Extension",
        500 => "Server Internal Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Server Time-out",
        603 => "Decline",
        _ => "Error",
    }
}

/// The key matching a request to its transaction: the top Via branch (RFC 3261 §17.2.3), or
/// for an RFC 2543 peer Call-ID, CSeq number and From-tag.
fn tx_key(msg: &SipMessage) -> String {
    if let Some(b) = msg
        .top_via()
        .ok()
        .and_then(|v| v.branch().map(str::to_owned))
        .filter(|b| b.starts_with("z9hG4bK"))
    {
        return b;
    }
    format!(
        "{}|{}|{}",
        msg.call_id().unwrap_or(""),
        msg.cseq().map(|c| c.seq).unwrap_or(0),
        msg.from()
            .ok()
            .and_then(|f| f.tag().map(str::to_owned))
            .unwrap_or_default()
    )
}

fn is_dialog_creating(method: &Method) -> bool {
    matches!(method, Method::Invite | Method::Subscribe | Method::Refer)
}

impl AccountCore {
    /// A core with no bindings.
    pub fn new(config: AccountConfig) -> Self {
        // SHA-256 first, MD5 last (RFC 8760 order). JsSIP, the phone's SIP stack, keeps only the
        // *last* WWW-Authenticate it parses and accepts only MD5, so this order suits it too.
        let verifier = Verifier::new(&config.nonce_secret, VerifierConfig::default());
        AccountCore {
            rng: Rng::new(config.seed),
            verifier,
            bindings: Bindings::default(),
            flows: Vec::new(),
            txs: BTreeMap::new(),
            by_key: HashMap::new(),
            by_branch: HashMap::new(),
            lookups: HashMap::new(),
            echo: Vec::new(),
            cancelled_echo: Vec::new(),
            bridges: Vec::new(),
            aborted_bridges: Vec::new(),
            next_media_check: None,
            next_id: 1,
            out: VecDeque::new(),
            now: 0,
            epoch_ms: None,
            config,
        }
    }

    /// A core reloaded after an eviction with the bindings last persisted. Expired ones are
    /// dropped (and a [`Output::PersistBindings`] queued if any were).
    pub fn restore(config: AccountConfig, bindings: Vec<StoredBinding>, now_ms: u64) -> Self {
        let seed = config.seed ^ now_ms.rotate_left(32);
        let mut core = AccountCore::new(config);
        core.rng = Rng::new(seed);
        core.now = now_ms;
        core.epoch_ms = Some(now_ms);
        let count = bindings.len();
        core.bindings = Bindings::from_stored(bindings, now_ms);
        if core.bindings.all().len() != count {
            core.persist();
        }
        core
    }

    /// The configuration.
    pub fn config(&self) -> &AccountConfig {
        &self.config
    }

    /// The current bindings.
    pub fn bindings(&self) -> &[StoredBinding] {
        self.bindings.all()
    }

    /// How many transactions are held (bounded by `limits.max_transactions`).
    pub fn transaction_count(&self) -> usize {
        self.txs.len()
    }

    /// Feeds one event at `now_ms`.
    pub fn handle(&mut self, now_ms: u64, event: Event) {
        self.advance(now_ms);
        match event {
            Event::FromBrowser { conn, msg } => self.on_message(Hop::Browser(conn), msg),
            Event::FromAccount { user, msg } => self.on_message(Hop::Account(user), msg),
            Event::FromUpstream { msg } => self.on_message(Hop::Upstream, msg),
            Event::ConnectionClosed { conn } => self.on_connection_closed(&conn),
            Event::UpstreamLost => self.on_upstream_lost(),
            Event::LookupResult { id, is_account } => self.on_lookup_result(id, is_account),
            Event::EchoAnswer { id, answer } => self.on_echo_answer(id, answer),
            Event::BridgeReady { id, result } => {
                self.on_bridge_allocated(id, result.map(|o| (o.session, o.upstream_offer)))
            }
            Event::BridgeReadyFromUpstream { id, result } => {
                self.on_bridge_allocated(id, result.map(|o| (o.session, o.browser_offer)))
            }
            Event::BridgeAnswered { id, result }
            | Event::BridgeAnsweredForUpstream { id, result } => {
                self.on_bridge_answered(id, result)
            }
            Event::BridgeRenegotiated { id, result } => self.on_bridge_renegotiated(id, result),
            Event::BridgeUpstreamReoffered { id, result } => {
                self.on_bridge_upstream_reoffered(id, result)
            }
            Event::MediaChecked { session, health } => self.on_media_checked(&session, health),
        }
    }

    /// The next thing to do, if any.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// When [`AccountCore::handle_timeout`] should be called next.
    pub fn poll_timeout(&self) -> Option<u64> {
        let mut next = self.bindings.next_expiry();
        let mut take = |t: Option<u64>| {
            if let Some(t) = t {
                next = Some(next.map_or(t, |n: u64| n.min(t)));
            }
        };
        for d in self.bridge_deadlines() {
            take(Some(d));
        }
        for d in self.bridge_dialog_timers() {
            take(Some(d));
        }
        take(self.media_check_due());
        for tx in self.txs.values() {
            take(tx.pending_until);
            take(tx.linger_until);
            for b in &tx.branches {
                if b.is_pending() {
                    take(b.timer);
                }
            }
        }
        next
    }

    /// Runs the timers due at `now_ms`.
    pub fn handle_timeout(&mut self, now_ms: u64) {
        self.advance(now_ms);
        let now = self.now;
        if self.bindings.expire(now) {
            self.persist();
        }
        self.bridge_timeouts(now);
        self.bridge_dialog_timeouts(now);
        self.media_checks(now);
        let ids: Vec<u64> = self.txs.keys().copied().collect();
        for id in ids {
            let Some(tx) = self.txs.get(&id) else {
                continue;
            };
            if tx.linger_until.is_some_and(|t| t <= now) {
                self.remove_tx(id);
                continue;
            }
            if tx.pending_until.is_some_and(|t| t <= now) {
                self.pending_expired(id);
                continue;
            }
            let due: Vec<usize> = tx
                .branches
                .iter()
                .enumerate()
                .filter(|(_, b)| b.is_pending() && b.timer.is_some_and(|t| t <= now))
                .map(|(i, _)| i)
                .collect();
            for idx in due {
                self.branch_timer_fired(id, idx);
            }
            self.check_complete(id);
        }
    }

    fn advance(&mut self, now_ms: u64) {
        self.now = self.now.max(now_ms);
        if self.epoch_ms.is_none() {
            self.epoch_ms = Some(self.now);
        }
    }

    // ----- small helpers -----

    pub(super) fn persist(&mut self) {
        self.out
            .push_back(Output::PersistBindings(self.bindings.all().to_vec()));
    }

    pub(super) fn send(&mut self, hop: &Hop, msg: SipMessage) {
        self.out.push_back(hop.output(msg));
    }

    /// Answers `req` statelessly (a new To-tag) with `status` and extra headers.
    pub(super) fn reply(&mut self, hop: &Hop, req: &SipMessage, status: u16, headers: Vec<Header>) {
        let tag = self.rng.token();
        self.reply_tagged(hop, req, status, reason_of(status), &tag, headers);
    }

    pub(super) fn reply_tagged(
        &mut self,
        hop: &Hop,
        req: &SipMessage,
        status: u16,
        reason: &str,
        tag: &str,
        headers: Vec<Header>,
    ) {
        if req.method() == Some(&Method::ACK) {
            return;
        }
        if let Ok(mut resp) = req.response_to(status, reason, Some(tag)) {
            for h in headers {
                insert_before_length(&mut resp, h);
            }
            self.send(hop, resp);
        }
    }

    pub(super) fn transport_for(&self, hop: &Hop) -> &str {
        match hop {
            Hop::Upstream if !self.config.upstream_transport.is_empty() => {
                &self.config.upstream_transport
            }
            Hop::Upstream => "TCP",
            _ => "WSS",
        }
    }

    fn is_our_host(&self, uri: &SipUri) -> bool {
        host_is(&uri.host, &self.config.tenant_domain) || host_is(&uri.host, &self.config.edge_host)
    }

    /// The From of a browser's out-of-dialog request is this account at the tenant (or the
    /// edge host), or RFC 3323's anonymous URI.
    fn sender_is_this_account(&self, msg: &SipMessage) -> bool {
        let Ok(from) = msg.from() else { return false };
        let Some(uri) = from.uri.as_sip() else {
            return false;
        };
        let user = uri.user.as_deref().and_then(unescape);
        if user.as_deref() == Some("anonymous") && host_is(&uri.host, "anonymous.invalid") {
            return true;
        }
        user.as_deref() == Some(self.config.user.as_str()) && self.is_our_host(uri)
    }

    fn learn_contact(&mut self, conn: &ConnId, msg: &SipMessage) {
        let Ok(Contacts::List(list)) = msg.contacts() else {
            return;
        };
        for c in list {
            let Some(uri) = c.uri.as_sip() else { continue };
            let key = uri_key(uri);
            self.flows.retain(|(k, _)| k != &key);
            self.flows.insert(0, (key, conn.clone()));
        }
        self.flows
            .truncate(self.config.limits.max_contact_flows.max(1));
    }

    /// The browser connection a contact URI belongs to: a binding's, or one seen in a dialog.
    pub(super) fn conn_for_contact(&self, uri: &SipUri) -> Option<ConnId> {
        if let Some(c) = self.bindings.conn_for(uri) {
            return Some(c.clone());
        }
        let key = uri_key(uri);
        self.flows
            .iter()
            .find(|(k, _)| k == &key)
            .map(|(_, c)| c.clone())
    }

    // ----- transactions -----

    fn new_tx(&mut self, source: &Hop, key: String, request: SipMessage, kind: TxKind) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        let method = request.method().cloned().unwrap_or(Method::OPTIONS);
        let to_tag = self.rng.token();
        let tx = Tx {
            source: source.clone(),
            key: (source.clone(), key.clone()),
            method,
            request,
            fwd: None,
            to_tag,
            kind,
            bridged: false,
            branches: Vec::new(),
            last_response: None,
            final_sent: false,
            got_2xx: false,
            cancelled: false,
            source_gone: false,
            pending_until: None,
            linger_until: None,
        };
        self.by_key.insert((source.clone(), key), id);
        self.txs.insert(id, tx);
        id
    }

    pub(super) fn new_tx_for(&mut self, source: &Hop, request: &SipMessage, kind: TxKind) -> u64 {
        let key = tx_key(request);
        self.new_tx(source, key, request.clone(), kind)
    }

    fn remove_tx(&mut self, id: u64) {
        if let Some(tx) = self.txs.remove(&id) {
            if self.by_key.get(&tx.key) == Some(&id) {
                self.by_key.remove(&tx.key);
            }
            for b in &tx.branches {
                self.by_branch.remove(&b.branch);
            }
            if let TxKind::Lookup { id: l, .. } = tx.kind {
                self.lookups.remove(&l);
            }
        }
    }

    /// Sends `req` (Request-URI replaced by `ruri` if given) to `target` as a new branch of
    /// transaction `id`.
    pub(super) fn add_branch(
        &mut self,
        id: u64,
        target: Hop,
        mut req: SipMessage,
        ruri: Option<crate::sip::Uri>,
    ) {
        if let Some(u) = ruri {
            let _ = req.set_request_uri(u);
        }
        let branch = self.rng.branch();
        let via = our_via(&self.config.edge_host, self.transport_for(&target), &branch);
        req.push_via(&via);
        let now = self.now;
        let limits = &self.config.limits;
        let Some(tx) = self.txs.get_mut(&id) else {
            return;
        };
        // Towards another account, whose own Timer C decides, wait a little longer.
        let margin = if matches!(target, Hop::Account(_)) {
            5_000
        } else {
            0
        };
        let timer = now.saturating_add(if tx.is_invite() {
            limits.timer_c_ms + margin
        } else {
            limits.non_invite_timeout_ms
        });
        tx.branches.push(Branch {
            branch: branch.clone(),
            target: target.clone(),
            request: req.clone(),
            answered: false,
            final_status: None,
            final_response: None,
            timer: Some(timer),
            cancel_sent: false,
            acked: false,
        });
        let idx = tx.branches.len() - 1;
        self.by_branch.insert(branch, (id, idx));
        self.send(&target, req);
    }

    /// Sends a response back to the transaction's source (unless it is gone) and remembers it;
    /// that of a bridged call goes through the bridge (held, its SDP rewritten).
    pub(super) fn send_back(&mut self, id: u64, resp: SipMessage) {
        if self.txs.get(&id).is_some_and(|t| t.bridged) {
            self.bridge_send_back(id, resp);
        } else {
            self.send_back_now(id, resp);
        }
    }

    /// [`AccountCore::send_back`] as it is.
    pub(super) fn send_back_now(&mut self, id: u64, resp: SipMessage) {
        let Some(tx) = self.txs.get_mut(&id) else {
            return;
        };
        let status = resp.status().unwrap_or(0);
        tx.last_response = Some(resp.clone());
        if status >= 200 {
            tx.final_sent = true;
            tx.pending_until = None;
            if (200..300).contains(&status) {
                tx.got_2xx = true;
            }
        }
        if tx.source_gone {
            return;
        }
        let hop = tx.source.clone();
        self.send(&hop, resp);
    }

    /// Builds and sends back a response generated here (the transaction's To-tag).
    pub(super) fn answer_tx(&mut self, id: u64, status: u16, reason: &str) {
        let Some(tx) = self.txs.get(&id) else { return };
        let tag = tx.to_tag.clone();
        if let Ok(resp) = tx.request.response_to(status, reason, Some(&tag)) {
            self.send_back(id, resp);
        }
    }

    pub(super) fn start_linger(&mut self, id: u64) {
        let until = self.now.saturating_add(self.config.limits.linger_ms);
        if let Some(tx) = self.txs.get_mut(&id) {
            tx.pending_until = None;
            tx.linger_until.get_or_insert(until);
        }
    }

    /// Cancels branch `idx` (RFC 3261 §16.10). A branch that never answered counts as 487 at
    /// once when `synthesize` is set; one that did is given `cancel_timeout_ms` to answer.
    fn cancel_branch(&mut self, id: u64, idx: usize, synthesize: bool, extra: Option<&Header>) {
        let now = self.now;
        let grace = self.config.limits.cancel_timeout_ms;
        let Some(tx) = self.txs.get_mut(&id) else {
            return;
        };
        let invite = tx.is_invite();
        let Some(b) = tx.branches.get_mut(idx) else {
            return;
        };
        if !b.is_pending() || b.cancel_sent {
            return;
        }
        if !invite {
            // Only INVITE can be cancelled (RFC 3261 §9.1); the branch just stops mattering.
            b.final_status = Some(487);
            b.timer = None;
            return;
        }
        b.cancel_sent = true;
        if synthesize && !b.answered {
            b.final_status = Some(487);
            b.timer = None;
        } else {
            b.timer = Some(now.saturating_add(grace));
        }
        let target = b.target.clone();
        if let Some(mut cancel) = build_cancel(&b.request) {
            if let Some(h) = extra {
                insert_before_length(&mut cancel, h.clone());
            }
            self.send(&target, cancel);
        }
    }

    pub(super) fn cancel_pending(&mut self, id: u64, synthesize: bool) {
        self.cancel_pending_with(id, synthesize, None);
    }

    /// [`AccountCore::cancel_pending`] with an extra header (a `Reason`) in each CANCEL.
    pub(super) fn cancel_pending_with(
        &mut self,
        id: u64,
        synthesize: bool,
        extra: Option<&Header>,
    ) {
        let n = self.txs.get(&id).map_or(0, |t| t.branches.len());
        for idx in 0..n {
            self.cancel_branch(id, idx, synthesize, extra);
        }
    }

    fn branch_timer_fired(&mut self, id: u64, idx: usize) {
        let Some(tx) = self.txs.get_mut(&id) else {
            return;
        };
        let invite = tx.is_invite();
        let Some(b) = tx.branches.get_mut(idx) else {
            return;
        };
        b.timer = None;
        if !invite {
            b.final_status = Some(408);
            return;
        }
        if b.cancel_sent {
            b.final_status = Some(487);
            return;
        }
        // Timer C (RFC 3261 §16.8): cancel the branch and count it as 408.
        b.cancel_sent = true;
        b.final_status = Some(408);
        let target = b.target.clone();
        if let Some(cancel) = build_cancel(&b.request) {
            self.send(&target, cancel);
        }
    }

    fn pending_expired(&mut self, id: u64) {
        let Some(tx) = self.txs.get(&id) else { return };
        match tx.kind {
            TxKind::Echo { id: echo_id } => self.end_echo_by_id(echo_id),
            TxKind::BridgeAlloc { .. } => self.abort_bridge_alloc(id),
            TxKind::BridgeReoffer { .. } => self.drop_reoffer(id),
            _ => {}
        }
        self.answer_tx(id, 503, "Service Unavailable");
        self.start_linger(id);
    }

    /// Sends the best final response once every branch has one (RFC 3261 §16.7 step 6).
    pub(super) fn check_complete(&mut self, id: u64) {
        let Some(tx) = self.txs.get_mut(&id) else {
            return;
        };
        if tx.pending_until.is_some() || (tx.branches.is_empty() && !tx.final_sent) {
            return;
        }
        if !tx.all_done() {
            return;
        }
        if !tx.final_sent {
            let resp = match best_branch(&tx.branches) {
                Some(i) => match &tx.branches[i].final_response {
                    Some(r) => {
                        let mut r = r.clone();
                        if matches!(r.status(), Some(401 | 407)) {
                            merge_challenges(&mut r, &tx.branches, i);
                        }
                        if r.status() == Some(503) {
                            r.start_line = StartLine::Response {
                                status: 500,
                                reason: "Server Internal Error".into(),
                            };
                        }
                        Some(r)
                    }
                    None => {
                        let s = tx.branches[i].final_status.unwrap_or(408);
                        tx.request
                            .response_to(s, reason_of(s), Some(&tx.to_tag))
                            .ok()
                    }
                },
                None => tx
                    .request
                    .response_to(408, reason_of(408), Some(&tx.to_tag))
                    .ok(),
            };
            if let Some(r) = resp {
                self.send_back(id, r);
            }
        }
        self.start_linger(id);
    }

    // ----- messages -----

    fn on_message(&mut self, hop: Hop, msg: SipMessage) {
        if msg.is_request() {
            self.on_request(hop, msg);
        } else {
            self.on_response(hop, msg);
        }
    }

    fn on_request(&mut self, hop: Hop, mut msg: SipMessage) {
        let Some(method) = msg.method().cloned() else {
            return;
        };
        let is_ack = method == Method::ACK;
        if msg.top_via().is_err() {
            return;
        }
        if msg.from().is_err() || msg.to().is_err() || msg.call_id().is_err() || msg.cseq().is_err()
        {
            self.reply(&hop, &msg, 400, Vec::new());
            return;
        }
        // Contacts of a REGISTER are not learnt here: it may not authenticate.
        if let (Hop::Browser(conn), false) = (&hop, method == Method::REGISTER) {
            let conn = conn.clone();
            self.learn_contact(&conn, &msg);
        }
        if method == Method::CANCEL {
            self.on_cancel(hop, msg);
            return;
        }
        let key = (hop.clone(), tx_key(&msg));
        if let Some(&id) = self.by_key.get(&key) {
            // The ACK of a non-2xx final we sent (absorbed: ACKs are hop-by-hop then), or a
            // retransmission (answered again with the last response).
            if !is_ack {
                if let Some(r) = self.txs.get(&id).and_then(|t| t.last_response.clone()) {
                    self.send(&hop, r);
                }
            }
            return;
        }
        if method == Method::REGISTER {
            self.on_register(hop, msg);
            return;
        }
        if let Hop::Browser(conn) = &hop {
            let conn = conn.clone();
            if self.echo_in_dialog(&conn, &msg) {
                return;
            }
        }
        if self.bridge_in_dialog(&hop, &msg) {
            return;
        }
        if msg.decrement_max_forwards().is_err() {
            self.reply(&hop, &msg, 483, Vec::new());
            return;
        }
        if !is_ack && self.txs.len() >= self.config.limits.max_transactions {
            let retry = self.config.limits.retry_after_s.to_string();
            self.reply(
                &hop,
                &msg,
                503,
                vec![Header::new(HeaderName::Other("Retry-After".into()), retry)],
            );
            return;
        }
        let in_dialog = msg
            .to()
            .ok()
            .and_then(|t| t.tag().map(str::to_owned))
            .is_some();
        if matches!(hop, Hop::Browser(_)) && !in_dialog && !self.sender_is_this_account(&msg) {
            // A browser speaks for its own account only: no caller-ID spoofing upstream.
            self.reply(&hop, &msg, 403, Vec::new());
            return;
        }
        let decision = self.decide(&hop, &mut msg, in_dialog);
        if is_ack {
            self.forward_ack(decision, msg);
            return;
        }
        if matches!(
            decision,
            Decision::Forward(_) | Decision::Local | Decision::Lookup(_)
        ) && !in_dialog
            && is_dialog_creating(&method)
        {
            msg.push_record_route(&record_route(&self.config.edge_host, &self.config.user));
        }
        let trying = |core: &mut Self, msg: &SipMessage| {
            if method == Method::INVITE {
                if let Ok(t) = msg.response_to(100, "Trying", None) {
                    core.send(&hop, t);
                }
            }
        };
        match decision {
            Decision::Reject(status, _) => self.reply(&hop, &msg, status, Vec::new()),
            Decision::EdgeOptions => self.reply(
                &hop,
                &msg,
                200,
                vec![
                    Header::new(HeaderName::Allow, ALLOW),
                    Header::new(HeaderName::Supported, SUPPORTED),
                    Header::new(HeaderName::Accept, "application/sdp"),
                ],
            ),
            Decision::Echo => {
                let Hop::Browser(conn) = hop.clone() else {
                    self.reply(&hop, &msg, 404, Vec::new());
                    return;
                };
                self.start_echo(conn, msg);
            }
            Decision::Lookup(user) => {
                trying(self, &msg);
                let lookup = self.next_id;
                self.next_id += 1;
                let id = self.new_tx_for(
                    &hop,
                    &msg,
                    TxKind::Lookup {
                        id: lookup,
                        user: user.clone(),
                    },
                );
                let until = self
                    .now
                    .saturating_add(self.config.limits.pending_timeout_ms);
                if let Some(tx) = self.txs.get_mut(&id) {
                    tx.fwd = Some(msg);
                    tx.pending_until = Some(until);
                }
                self.lookups.insert(lookup, id);
                self.out.push_back(Output::Lookup { id: lookup, user });
            }
            Decision::Forward(target) => {
                trying(self, &msg);
                let id = self.new_tx_for(&hop, &msg, TxKind::Proxy);
                if self.bridges_media(&hop, &target, &msg) {
                    let dir = if hop == Hop::Upstream {
                        Dir::In
                    } else {
                        Dir::Out
                    };
                    self.start_bridge(id, dir, Some(target), msg);
                } else {
                    self.add_branch(id, target, msg, None);
                }
            }
            Decision::Local => {
                let targets: Vec<(ConnId, String)> = self
                    .bindings
                    .all()
                    .iter()
                    .filter(|b| hop != Hop::Browser(b.conn.clone()))
                    .map(|b| (b.conn.clone(), b.uri.clone()))
                    .collect();
                if targets.is_empty() {
                    self.reply(&hop, &msg, 480, Vec::new());
                    return;
                }
                trying(self, &msg);
                let id = self.new_tx_for(&hop, &msg, TxKind::Proxy);
                if self.bridges_media(&hop, &Hop::Browser(targets[0].0.clone()), &msg) {
                    self.start_bridge(id, Dir::In, None, msg);
                    return;
                }
                for (conn, uri) in targets {
                    let uri = crate::sip::Uri::parse(&uri);
                    self.add_branch(id, Hop::Browser(conn), msg.clone(), uri);
                }
            }
        }
    }

    /// Where a request goes (RFC 3261 §16.4 loose routing, then the Request-URI). Pops the
    /// Route values that name this account or the bare edge.
    fn decide(&self, hop: &Hop, msg: &mut SipMessage, in_dialog: bool) -> Decision {
        loop {
            let Ok(routes) = msg.routes() else {
                return Decision::Reject(400, "Bad Request");
            };
            let Some(top) = routes.first() else { break };
            match classify_route(top, &self.config.edge_host) {
                RouteTarget::Account(a) if a == self.config.user => {
                    let _ = msg.remove_top_route();
                }
                RouteTarget::Account(a) => return Decision::Forward(Hop::Account(a)),
                RouteTarget::Edge => {
                    let _ = msg.remove_top_route();
                }
                RouteTarget::Foreign => {
                    return if self.config.has_upstream && *hop != Hop::Upstream {
                        Decision::Forward(Hop::Upstream)
                    } else {
                        Decision::Reject(404, "Not Found")
                    };
                }
            }
        }
        let Some(ruri) = msg.request_uri().and_then(|u| u.as_sip()).cloned() else {
            return Decision::Reject(416, "Unsupported URI Scheme");
        };
        if let Some(conn) = self.conn_for_contact(&ruri) {
            return Decision::Forward(Hop::Browser(conn));
        }
        if in_dialog {
            return if matches!(hop, Hop::Browser(_)) && self.config.has_upstream {
                Decision::Forward(Hop::Upstream)
            } else {
                Decision::Reject(481, "Call/Transaction Does Not Exist")
            };
        }
        let ours = self.is_our_host(&ruri);
        let user = ruri.user.as_deref().and_then(unescape);
        match hop {
            Hop::Browser(_) => {
                if !ours {
                    return if self.config.has_upstream {
                        Decision::Forward(Hop::Upstream)
                    } else {
                        Decision::Reject(404, "Not Found")
                    };
                }
                let Some(user) = user else {
                    return if msg.method() == Some(&Method::OPTIONS) {
                        Decision::EdgeOptions
                    } else {
                        Decision::Reject(404, "Not Found")
                    };
                };
                if user == "*43" {
                    return match msg.method() {
                        Some(Method::Invite) => Decision::Echo,
                        Some(Method::Options) => Decision::EdgeOptions,
                        _ => Decision::Reject(405, "Method Not Allowed"),
                    };
                }
                if user == self.config.user {
                    Decision::Local
                } else {
                    Decision::Lookup(user)
                }
            }
            Hop::Account(_) => Decision::Local,
            Hop::Upstream => {
                if user.as_deref() == Some(self.config.user.as_str()) || !ours {
                    Decision::Local
                } else {
                    Decision::Reject(404, "Not Found")
                }
            }
        }
    }

    /// ACK for a 2xx: forwarded statelessly along its route (RFC 3261 §16.11).
    fn forward_ack(&mut self, decision: Decision, mut msg: SipMessage) {
        if let Decision::Forward(target) = decision {
            let branch = self.rng.branch();
            let via = our_via(&self.config.edge_host, self.transport_for(&target), &branch);
            msg.push_via(&via);
            self.send(&target, msg);
        }
    }

    fn on_cancel(&mut self, hop: Hop, msg: SipMessage) {
        let key = (hop.clone(), tx_key(&msg));
        let Some(&id) = self.by_key.get(&key) else {
            self.reply(&hop, &msg, 481, Vec::new());
            return;
        };
        let Some(tx) = self.txs.get(&id) else { return };
        let tag = tx.to_tag.clone();
        self.reply_tagged(&hop, &msg, 200, "OK", &tag, Vec::new());
        let Some(tx) = self.txs.get_mut(&id) else {
            return;
        };
        if !tx.is_invite() || tx.final_sent || tx.cancelled {
            return;
        }
        tx.cancelled = true;
        match tx.kind.clone() {
            TxKind::Lookup { .. } => {
                self.answer_tx(id, 487, "Request Terminated");
                self.start_linger(id);
            }
            TxKind::Echo { .. } => {
                self.answer_tx(id, 487, "Request Terminated");
                self.start_linger(id);
                self.cancel_echo_tx(id);
            }
            TxKind::BridgeAlloc { .. } => {
                self.abort_bridge_alloc(id);
                self.answer_tx(id, 487, "Request Terminated");
                self.start_linger(id);
            }
            TxKind::BridgeReoffer { .. } => {
                self.drop_reoffer(id);
                self.answer_tx(id, 487, "Request Terminated");
                self.start_linger(id);
            }
            _ => {
                self.cancel_pending(id, true);
                self.check_complete(id);
            }
        }
    }

    fn on_response(&mut self, hop: Hop, mut msg: SipMessage) {
        // Only responses to branches we sent, from where we sent them: a browser cannot inject
        // a response into another transaction.
        let Ok(via) = msg.top_via() else { return };
        if !host_is(&via.host, &self.config.edge_host) {
            return;
        }
        let Some(&(id, idx)) = via.branch().and_then(|b| self.by_branch.get(b)) else {
            // Perhaps the answer to a re-INVITE of our own in a bridged dialog.
            self.bridge_own_response(&hop, &msg);
            return;
        };
        let (Some(status), Ok(cseq)) = (msg.status(), msg.cseq()) else {
            return;
        };
        let Some(tx) = self.txs.get(&id) else { return };
        let Some(b) = tx.branches.get(idx) else {
            return;
        };
        if b.target != hop {
            return;
        }
        if cseq.method == Method::CANCEL {
            return; // the answer to our CANCEL
        }
        if cseq.method != tx.method {
            return;
        }
        if msg.remove_top_via().is_err() {
            return;
        }
        if let Hop::Browser(conn) = &hop {
            let conn = conn.clone();
            self.learn_contact(&conn, &msg);
        }
        let now = self.now;
        let timer_c = self.config.limits.timer_c_ms;
        let Some(tx) = self.txs.get_mut(&id) else {
            return;
        };
        let invite = tx.is_invite();
        let kind = tx.kind.clone();
        let final_sent = tx.final_sent;
        let b = &mut tx.branches[idx];
        b.answered = true;
        let pending = b.is_pending();
        if status < 200 {
            if status == 100 || !pending {
                return;
            }
            if invite && !b.cancel_sent {
                b.timer = Some(now.saturating_add(timer_c));
            }
            if !final_sent {
                self.send_back(id, msg);
            }
            return;
        }
        let success = (200..300).contains(&status);
        if !pending {
            // A late final on a branch already decided (cancelled, timed out, or a 2xx
            // retransmission): 2xx always go back (§16.7 step 5), non-2xx are only ACKed.
            if success {
                if invite {
                    self.send_back(id, msg);
                }
            } else if invite && !b.acked {
                b.acked = true;
                let (request, target) = (b.request.clone(), b.target.clone());
                if let Some(ack) = build_ack(&request, &msg) {
                    self.send(&target, ack);
                }
            }
            return;
        }
        b.final_status = Some(status);
        b.timer = None;
        if success {
            if kind == TxKind::RelayRegister {
                self.relay_register_ok(id, &msg);
            }
            // Every 2xx to an INVITE goes back; for other methods only the first final.
            if invite || !final_sent {
                self.send_back(id, msg);
            }
            if invite {
                self.cancel_pending(id, false);
            }
            self.start_linger(id);
            return;
        }
        if invite {
            b.acked = true;
            let (request, target) = (b.request.clone(), b.target.clone());
            if let Some(ack) = build_ack(&request, &msg) {
                self.send(&target, ack);
            }
        }
        let Some(tx) = self.txs.get_mut(&id) else {
            return;
        };
        tx.branches[idx].final_response = Some(msg);
        if invite && status >= 600 {
            self.cancel_pending(id, false);
            // The 6xx decides: the other branches no longer matter.
            if let Some(tx) = self.txs.get_mut(&id) {
                for (i, b) in tx.branches.iter_mut().enumerate() {
                    if i != idx && b.is_pending() {
                        b.final_status = Some(487);
                        b.timer = None;
                    }
                }
            }
        }
        self.check_complete(id);
    }

    fn on_lookup_result(&mut self, lookup: u64, is_account: bool) {
        let Some(id) = self.lookups.remove(&lookup) else {
            return;
        };
        let Some(tx) = self.txs.get_mut(&id) else {
            return;
        };
        let TxKind::Lookup { user, .. } = tx.kind.clone() else {
            return;
        };
        tx.pending_until = None;
        let fwd = tx.fwd.take();
        if tx.final_sent {
            return;
        }
        tx.kind = TxKind::Proxy;
        let Some(fwd) = fwd else { return };
        let source = tx.source.clone();
        let target = if is_account {
            Hop::Account(user)
        } else if self.config.has_upstream {
            Hop::Upstream
        } else {
            self.answer_tx(id, 404, "Not Found");
            self.start_linger(id);
            return;
        };
        if self.bridges_media(&source, &target, &fwd) {
            self.start_bridge(id, Dir::Out, Some(target), fwd);
        } else {
            self.add_branch(id, target, fwd, None);
        }
    }

    fn on_connection_closed(&mut self, conn: &ConnId) {
        if self.bindings.remove_conn(conn) {
            self.persist();
        }
        self.flows.retain(|(_, c)| c != conn);
        self.end_echo_of_conn(conn);
        let hop = Hop::Browser(conn.clone());
        self.fail_hop(&hop, 480);
        self.bridge_hop_lost(&hop);
    }

    fn on_upstream_lost(&mut self) {
        self.fail_hop(&Hop::Upstream, 503);
        self.bridge_hop_lost(&Hop::Upstream);
        if self.config.registration == super::config::RegistrationMode::Relay
            && self.bindings.clear()
        {
            self.persist();
        }
    }

    /// A hop is gone: transactions from it lose their source (and their branches are
    /// cancelled), branches to it count as `status`.
    fn fail_hop(&mut self, hop: &Hop, status: u16) {
        let ids: Vec<u64> = self.txs.keys().copied().collect();
        for id in ids {
            let Some(tx) = self.txs.get_mut(&id) else {
                continue;
            };
            if &tx.source == hop {
                tx.source_gone = true;
                if !tx.final_sent {
                    tx.cancelled = true;
                    match tx.kind {
                        TxKind::Echo { .. } => self.cancel_echo_tx(id),
                        TxKind::BridgeAlloc { .. } => self.abort_bridge_alloc(id),
                        TxKind::BridgeReoffer { .. } => self.drop_reoffer(id),
                        _ => {}
                    }
                    self.cancel_pending(id, true);
                    if let Some(tx) = self.txs.get_mut(&id) {
                        tx.final_sent = true;
                    }
                }
                self.start_linger(id);
                continue;
            }
            for b in tx.branches.iter_mut() {
                if &b.target == hop && b.is_pending() {
                    b.final_status = Some(status);
                    b.timer = None;
                }
            }
            self.check_complete(id);
        }
    }
}
