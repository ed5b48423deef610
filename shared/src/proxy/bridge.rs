//! Calls between a browser and the upstream through a media bridge: the core asks the shell
//! (which talks to a media node) to turn one side's SDP into the other's, and holds the SIP
//! message meanwhile. See the module docs' "Media bridge" item.

use std::collections::VecDeque;

use super::core::AccountCore;
use super::io::{ConnId, Hop, Output};
use super::routing::{classify_route, our_via, RouteTarget};
use super::sdp_edit;
use super::transaction::{build_ack, insert_before_length, TxKind};
use crate::sdp::Direction;
use crate::sip::{Contacts, Header, HeaderName, Method, SipMessage, Uri};

/// How many allocation ids of calls ended before their bridge came are remembered (a late
/// session is released).
const ABORTED_MEMORY: usize = 32;
/// How many ACKs of re-INVITEs answered here are awaited per dialog.
const LOCAL_ACK_MEMORY: usize = 8;
/// How long a re-INVITE of our own waits for its final response before it is given up (RFC 3261
/// Timer B; the call goes on).
const OWN_REINVITE_TIMEOUT_MS: u64 = 32_000;
/// After a 491 to our re-INVITE, it is sent again after 2.1-4 s (RFC 3261 §14.1).
const GLARE_RETRY_MIN_MS: u64 = 2_100;
const GLARE_RETRY_SPREAD_MS: u64 = 1_900;

/// Which way the call goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dir {
    /// A browser calls the upstream.
    Out,
    /// The upstream calls the browsers.
    In,
}

/// What the call waits for from the shell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stage {
    /// A session for the offer ([`Output::BridgeOffer`] / [`Output::BridgeOfferFromUpstream`]);
    /// the transaction's `pending_until` times it.
    Allocate,
    /// The other side's answer for the held response ([`Output::BridgeAnswer`] /
    /// [`Output::BridgeAnswerFromBrowser`]); timed by the call's `deadline`.
    Answer,
}

/// How to send a request of our own into one side of an established bridged dialog.
#[derive(Debug, Clone)]
pub(crate) struct Leg {
    pub target: String,
    pub routes: Vec<String>,
    pub from: String,
    pub to: String,
    /// The highest CSeq number used by the side we speak for.
    pub cseq: u32,
}

/// An established bridged dialog.
#[derive(Debug, Clone)]
pub(crate) struct BridgedDialog {
    pub browser_tag: String,
    pub upstream_tag: String,
    /// The upstream UA's Contact URI (the Contact of our local answers to the browser).
    pub upstream_contact: String,
    /// The browser's Contact URI (the Contact of our local answers to the upstream).
    pub browser_contact: String,
    /// Requests towards the upstream, as the browser.
    pub to_upstream: Leg,
    /// Requests towards the browser, as the upstream.
    pub to_browser: Leg,
    /// ACKs to absorb: (sent by the browser, CSeq number) of re-INVITEs answered here.
    pub local_acks: Vec<(bool, u32)>,
    /// A re-offer being renegotiated through the shell, from the browser or the upstream:
    /// (request id, transaction).
    pub reoffer: Option<(u64, u64)>,
    /// A re-INVITE of our own (a direction change signalled to the other side).
    pub own: Option<OwnReinvite>,
    /// A direction change to signal once `own` is done: (towards the upstream, direction).
    pub queued: Option<(bool, Direction)>,
}

/// A re-INVITE the core sends itself into one leg of a bridged dialog: a hold or resume of one
/// side told to the other (RFC 3264 §8.4).
#[derive(Debug, Clone)]
pub(crate) struct OwnReinvite {
    /// Towards the upstream (else towards the call's browser).
    pub to_upstream: bool,
    /// The direction it offers.
    pub direction: Direction,
    /// The SDP it offers (our last SDP on that leg, version bumped, direction set).
    pub sdp: String,
    /// Its Via branch and the request as sent, once sent (`None`: waiting to retry after 491).
    pub sent: Option<(String, SipMessage)>,
    /// When it is given up (sent), or sent again (after a 491).
    pub due: u64,
}

/// One call through a media bridge.
#[derive(Debug, Clone)]
pub(crate) struct BridgeCall {
    pub dir: Dir,
    pub call_id: String,
    /// The initial INVITE transaction (its key here).
    pub tx: u64,
    /// The media node's session, once allocated.
    pub session: Option<String>,
    /// The browser connection: the caller's (out) or the answering one's (in).
    pub conn: Option<ConnId>,
    /// The outstanding request to the shell.
    pub waiting: Option<(u64, Stage)>,
    /// When an [`Stage::Answer`] wait gives up.
    pub deadline: Option<u64>,
    /// Responses to the transaction's source held behind the one being rewritten, in order.
    pub held: VecDeque<SipMessage>,
    /// The last rewrite of a response's SDP: (as received, as sent), reused when the same SDP
    /// comes again (the 2xx repeating an 18x's answer).
    pub cache: Option<(String, String)>,
    /// Our SDP towards the upstream (offer out, answer in): the answer to its re-offers.
    pub upstream_sdp: String,
    /// The upstream's last SDP (its answer out, its offer in): a re-offer equal to it is a
    /// session refresh.
    pub upstream_remote_sdp: String,
    /// Our last SDP towards the browser (the node's answer out, its offer in).
    pub browser_sdp: String,
    /// The direction the browser last offered (its hold state).
    pub browser_wants: Direction,
    /// The direction the upstream last offered (its hold state).
    pub upstream_wants: Direction,
    /// Where the INVITE goes once bridged: `None` for an incoming call forked to every binding.
    pub target: Option<Hop>,
    pub dialog: Option<BridgedDialog>,
    /// Media checks in a row that found the node unreachable.
    pub media_misses: u32,
}

fn sdp_of(msg: &SipMessage) -> Option<String> {
    std::str::from_utf8(msg.body())
        .ok()
        .filter(|s| !s.trim().is_empty())
        .map(str::to_owned)
}

fn first_contact(msg: &SipMessage) -> Option<String> {
    match msg.contacts().ok()? {
        Contacts::List(l) => l.first().map(|c| c.uri.to_string()),
        Contacts::Any => None,
    }
}

fn tag_of(value: Result<crate::sip::NameAddr, crate::sip::SipError>) -> Option<String> {
    value.ok().and_then(|n| n.tag().map(str::to_owned))
}

/// A status and reason phrase from the shell made safe to send.
pub(crate) fn safe_status(status: u16, reason: String, default: &str) -> (u16, String) {
    let status = if (300..=699).contains(&status) {
        status
    } else {
        500
    };
    let safe = !reason.is_empty()
        && reason.len() <= 64
        && reason.bytes().all(|b| b.is_ascii_graphic() || b == b' ');
    (status, if safe { reason } else { default.into() })
}

impl AccountCore {
    /// Whether a new INVITE from `source` to `target` must go through a bridge.
    pub(super) fn bridges_media(&self, source: &Hop, target: &Hop, msg: &SipMessage) -> bool {
        let bridged_pair = matches!(
            (source, target),
            (Hop::Browser(_), Hop::Upstream) | (Hop::Upstream, Hop::Browser(_))
        );
        self.config.bridge_upstream_media
            && bridged_pair
            && msg.method() == Some(&Method::INVITE)
            && tag_of(msg.to()).is_none()
    }

    fn bridge_pos(&self, tx: u64) -> Option<usize> {
        self.bridges.iter().position(|c| c.tx == tx)
    }

    pub(super) fn release(&mut self, session: Option<String>) {
        if let Some(session) = session {
            self.out.push_back(Output::BridgeRelease { session });
        }
    }

    /// Starts a bridged call on transaction `tx` (a new INVITE, `msg` to forward to `target`,
    /// or to every binding, once the bridge is there): asks the shell for a session, or answers
    /// 488 (no offer) or 503 (too many bridged calls).
    pub(super) fn start_bridge(&mut self, tx: u64, dir: Dir, target: Option<Hop>, msg: SipMessage) {
        let refuse = |core: &mut Self, status: u16, reason: &str, headers: Vec<Header>| {
            if let Some(t) = core.txs.get(&tx) {
                let tag = t.to_tag.clone();
                if let Ok(mut resp) = t.request.response_to(status, reason, Some(&tag)) {
                    for h in headers {
                        insert_before_length(&mut resp, h);
                    }
                    core.send_back(tx, resp);
                }
            }
            core.start_linger(tx);
        };
        let Some(offer) = sdp_of(&msg) else {
            // The node is offer-first: an INVITE without an offer cannot be bridged.
            refuse(self, 488, "Not Acceptable Here", Vec::new());
            return;
        };
        if self.bridges.len() >= self.config.limits.max_bridge_calls {
            let retry = self.config.limits.retry_after_s.to_string();
            let h = Header::new(HeaderName::Other("Retry-After".into()), retry);
            refuse(self, 503, "Service Unavailable", vec![h]);
            return;
        }
        let call_id = msg.call_id().unwrap_or_default().to_owned();
        let id = self.next_id;
        self.next_id += 1;
        let until = self
            .now
            .saturating_add(self.config.limits.pending_timeout_ms);
        let Some(t) = self.txs.get_mut(&tx) else {
            return;
        };
        t.kind = TxKind::BridgeAlloc { id };
        t.bridged = true;
        t.fwd = Some(msg);
        t.pending_until = Some(until);
        let conn = match &t.source {
            Hop::Browser(c) => Some(c.clone()),
            _ => None,
        };
        self.bridges.push(BridgeCall {
            dir,
            call_id: call_id.clone(),
            tx,
            session: None,
            conn,
            waiting: Some((id, Stage::Allocate)),
            deadline: None,
            held: VecDeque::new(),
            cache: None,
            upstream_sdp: String::new(),
            upstream_remote_sdp: match dir {
                Dir::In => offer.clone(),
                Dir::Out => String::new(),
            },
            browser_sdp: String::new(),
            browser_wants: match dir {
                Dir::Out => sdp_edit::direction(&offer).unwrap_or(Direction::SendRecv),
                Dir::In => Direction::SendRecv,
            },
            upstream_wants: match dir {
                Dir::In => sdp_edit::direction(&offer).unwrap_or(Direction::SendRecv),
                Dir::Out => Direction::SendRecv,
            },
            target,
            dialog: None,
            media_misses: 0,
        });
        self.out.push_back(match dir {
            Dir::Out => Output::BridgeOffer {
                id,
                call_id,
                browser_offer: offer,
            },
            Dir::In => Output::BridgeOfferFromUpstream {
                id,
                call_id,
                upstream_offer: offer,
            },
        });
    }

    /// [`Event::BridgeReady`](super::Event::BridgeReady) and
    /// [`Event::BridgeReadyFromUpstream`](super::Event::BridgeReadyFromUpstream): `Ok((session,
    /// sdp to forward))`.
    pub(super) fn on_bridge_allocated(
        &mut self,
        id: u64,
        result: Result<(String, String), (u16, String)>,
    ) {
        if let Some(p) = self.aborted_bridges.iter().position(|i| *i == id) {
            self.aborted_bridges.remove(p);
            self.release(result.ok().map(|r| r.0));
            return;
        }
        let Some(pos) = self
            .bridges
            .iter()
            .position(|c| c.waiting == Some((id, Stage::Allocate)))
        else {
            return;
        };
        let tx = self.bridges[pos].tx;
        let fwd = match self.txs.get_mut(&tx) {
            Some(t) if t.kind == (TxKind::BridgeAlloc { id }) && !t.final_sent => {
                t.kind = TxKind::Proxy;
                t.pending_until = None;
                t.fwd.take()
            }
            _ => None,
        };
        let Some(mut fwd) = fwd else {
            let call = self.bridges.remove(pos);
            self.release(call.session.or(result.ok().map(|r| r.0)));
            return;
        };
        match result {
            Ok((session, sdp)) => {
                self.arm_media_check();
                let call = &mut self.bridges[pos];
                call.session = Some(session);
                call.waiting = None;
                let dir = call.dir;
                let target = call.target.clone();
                match dir {
                    Dir::Out => call.upstream_sdp = sdp.clone(),
                    Dir::In => call.browser_sdp = sdp.clone(),
                }
                fwd.set_body(Some("application/sdp"), sdp.into_bytes());
                match dir {
                    Dir::Out => self.add_branch(tx, Hop::Upstream, fwd, None),
                    Dir::In if target.is_some() => {
                        if let Some(t) = target {
                            self.add_branch(tx, t, fwd, None);
                        }
                    }
                    Dir::In => {
                        let targets: Vec<(ConnId, String)> = self
                            .bindings
                            .all()
                            .iter()
                            .map(|b| (b.conn.clone(), b.uri.clone()))
                            .collect();
                        if targets.is_empty() {
                            self.bridge_fail(tx, 480, "Temporarily Unavailable", None);
                            return;
                        }
                        for (conn, uri) in targets {
                            let uri = Uri::parse(&uri);
                            self.add_branch(tx, Hop::Browser(conn), fwd.clone(), uri);
                        }
                    }
                }
            }
            Err((status, reason)) => {
                self.bridges.remove(pos);
                let (status, reason) = safe_status(status, reason, "Media Bridge Failed");
                self.answer_tx(tx, status, &reason);
                self.start_linger(tx);
            }
        }
    }

    /// The allocation of transaction `tx` is no longer wanted (cancelled, timed out, source
    /// gone): the call goes, and a session that still comes is released.
    pub(super) fn abort_bridge_alloc(&mut self, tx: u64) {
        let Some(pos) = self.bridge_pos(tx) else {
            return;
        };
        let call = self.bridges.remove(pos);
        if let Some((id, Stage::Allocate)) = call.waiting {
            self.aborted_bridges.push(id);
            if self.aborted_bridges.len() > ABORTED_MEMORY {
                self.aborted_bridges.remove(0);
            }
        }
        self.release(call.session);
    }

    /// A response going back to the source of bridged transaction `tx`: held in order, its SDP
    /// rewritten through the shell.
    pub(super) fn bridge_send_back(&mut self, tx: u64, resp: SipMessage) {
        match self.bridge_pos(tx) {
            Some(pos) => {
                let status = resp.status().unwrap_or(0);
                let Some(t) = self.txs.get_mut(&tx) else {
                    return;
                };
                if status >= 200 {
                    // Decided, though held: the proxy logic must not pick another final (a CANCEL
                    // now only gets its 200; nothing follows a 2xx but more 2xx).
                    t.final_sent = true;
                    t.pending_until = None;
                } else if t.final_sent {
                    return;
                }
                self.bridges[pos].held.push_back(resp);
                self.bridge_flush(tx);
            }
            None => {
                // The call is over (failed, released): a late 2xx is hung up here rather than
                // reaching the other side with SDP nobody bridges.
                if resp.status().is_some_and(|s| (200..300).contains(&s)) {
                    let far = self.far_hop(tx, &resp);
                    self.hang_up_2xx(far, &resp);
                } else {
                    self.send_back_now(tx, resp);
                }
            }
        }
    }

    /// The hop a 2xx to bridged transaction `tx` came from.
    fn far_hop(&self, tx: u64, resp: &SipMessage) -> Option<Hop> {
        match self.txs.get(&tx).map(|t| &t.source) {
            Some(Hop::Browser(_)) => Some(Hop::Upstream),
            Some(Hop::Upstream) => {
                let uri = first_contact(resp).and_then(|u| Uri::parse(&u))?;
                self.conn_for_contact(uri.as_sip()?).map(Hop::Browser)
            }
            _ => None,
        }
    }

    fn bridge_flush(&mut self, tx: u64) {
        loop {
            let Some(pos) = self.bridge_pos(tx) else {
                return;
            };
            let call = &mut self.bridges[pos];
            if call.waiting.is_some() {
                return;
            }
            let Some(front) = call.held.front() else {
                return;
            };
            let status = front.status().unwrap_or(0);
            let success = (200..300).contains(&status);
            if success {
                if let Some(d) = &call.dialog {
                    let same = tag_of(front.to()).as_deref()
                        == Some(match call.dir {
                            Dir::Out => d.upstream_tag.as_str(),
                            Dir::In => d.browser_tag.as_str(),
                        });
                    let Some(mut resp) = call.held.pop_front() else {
                        return;
                    };
                    if same {
                        // A retransmission: the same rewrite again.
                        if let Some((_, out)) = call.cache.clone() {
                            resp.set_body(Some("application/sdp"), out.into_bytes());
                        }
                        self.send_back_now(tx, resp);
                    } else {
                        // Another fork's 2xx: the session is taken; hang it up.
                        let far = self.far_hop(tx, &resp);
                        self.hang_up_2xx(far, &resp);
                    }
                    continue;
                }
            }
            let sdp = sdp_of(front);
            let needs_answer = match call.dir {
                Dir::Out => (status > 100 && status < 300) && sdp.is_some(),
                Dir::In => success,
            };
            if !needs_answer {
                let Some(mut resp) = call.held.pop_front() else {
                    return;
                };
                if call.dir == Dir::In && sdp.is_some() {
                    // A browser's early SDP is not for the upstream (a WebRTC answer).
                    resp.set_body(None, Vec::new());
                }
                self.bridge_deliver(tx, resp);
                continue;
            }
            let Some(sdp) = sdp else {
                // A 2xx without the answer its INVITE's offer needs: nothing to bridge.
                let resp = call.held.pop_front();
                let far = resp.as_ref().and_then(|r| self.far_hop(tx, r));
                if let Some(r) = resp {
                    self.hang_up_2xx(far, &r);
                }
                self.bridge_fail(tx, 502, "Bad Gateway", None);
                return;
            };
            if let Some((seen, out)) = call.cache.clone() {
                if seen == sdp {
                    let Some(mut resp) = call.held.pop_front() else {
                        return;
                    };
                    resp.set_body(Some("application/sdp"), out.into_bytes());
                    self.bridge_deliver(tx, resp);
                    continue;
                }
            }
            let Some(session) = call.session.clone() else {
                return;
            };
            let id = self.next_id;
            self.next_id += 1;
            let deadline = self
                .now
                .saturating_add(self.config.limits.pending_timeout_ms);
            let dir = call.dir;
            call.waiting = Some((id, Stage::Answer));
            call.deadline = Some(deadline);
            let front = call.held.front().cloned();
            if dir == Dir::In {
                if let Some(f) = front {
                    let conn = match self.far_hop(tx, &f) {
                        Some(Hop::Browser(c)) => Some(c),
                        _ => None,
                    };
                    if let Some(call) = self.bridges.get_mut(pos) {
                        call.conn = conn;
                    }
                }
            }
            self.out.push_back(match dir {
                Dir::Out => Output::BridgeAnswer {
                    id,
                    session,
                    upstream_answer: sdp,
                },
                Dir::In => Output::BridgeAnswerFromBrowser {
                    id,
                    session,
                    browser_answer: sdp,
                },
            });
            return;
        }
    }

    /// Sends a (rewritten) response back; a 2xx establishes the bridged dialog, a non-2xx final
    /// ends the call.
    fn bridge_deliver(&mut self, tx: u64, resp: SipMessage) {
        let status = resp.status().unwrap_or(0);
        if (200..300).contains(&status) {
            self.establish(tx, &resp);
            self.send_back_now(tx, resp);
        } else if status >= 300 {
            self.send_back_now(tx, resp);
            if let Some(pos) = self.bridge_pos(tx) {
                let call = self.bridges.remove(pos);
                self.release(call.session);
            }
        } else {
            self.send_back_now(tx, resp);
        }
    }

    fn establish(&mut self, tx: u64, ok: &SipMessage) {
        let Some(pos) = self.bridge_pos(tx) else {
            return;
        };
        let Some(t) = self.txs.get(&tx) else { return };
        let req = &t.request;
        let ours = |routes: Vec<crate::sip::NameAddr>, edge: &str| -> Vec<String> {
            routes
                .into_iter()
                .filter(|r| classify_route(r, edge) == RouteTarget::Foreign)
                .map(|r| r.to_string())
                .collect()
        };
        let edge = self.config.edge_host.clone();
        let (Some(req_contact), Some(ok_contact)) = (first_contact(req), first_contact(ok)) else {
            return;
        };
        let (Ok(req_from), Ok(ok_to)) = (
            req.headers
                .get(&HeaderName::From)
                .map(str::to_owned)
                .ok_or(()),
            ok.headers.get(&HeaderName::To).map(str::to_owned).ok_or(()),
        ) else {
            return;
        };
        let (Some(from_tag), Some(to_tag)) = (tag_of(req.from()), tag_of(ok.to())) else {
            return;
        };
        let seq = req.cseq().map(|c| c.seq).unwrap_or(1);
        let dir = self.bridges[pos].dir;
        let dialog = match dir {
            Dir::Out => {
                let mut rr = ours(ok.record_routes().unwrap_or_default(), &edge);
                rr.reverse();
                BridgedDialog {
                    browser_tag: from_tag,
                    upstream_tag: to_tag,
                    upstream_contact: ok_contact.clone(),
                    browser_contact: req_contact.clone(),
                    to_upstream: Leg {
                        target: ok_contact,
                        routes: rr,
                        from: req_from.clone(),
                        to: ok_to.clone(),
                        cseq: seq,
                    },
                    to_browser: Leg {
                        target: req_contact,
                        routes: Vec::new(),
                        from: ok_to,
                        to: req_from,
                        cseq: 0,
                    },
                    local_acks: Vec::new(),
                    reoffer: None,
                    own: None,
                    queued: None,
                }
            }
            Dir::In => BridgedDialog {
                browser_tag: to_tag,
                upstream_tag: from_tag,
                upstream_contact: req_contact.clone(),
                browser_contact: ok_contact.clone(),
                to_upstream: Leg {
                    target: req_contact,
                    routes: ours(req.record_routes().unwrap_or_default(), &edge),
                    from: ok_to.clone(),
                    to: req_from.clone(),
                    cseq: 0,
                },
                to_browser: Leg {
                    target: ok_contact,
                    routes: Vec::new(),
                    from: req_from,
                    to: ok_to,
                    cseq: seq,
                },
                local_acks: Vec::new(),
                reoffer: None,
                own: None,
                queued: None,
            },
        };
        self.bridges[pos].dialog = Some(dialog);
    }

    /// [`Event::BridgeAnswered`](super::Event::BridgeAnswered) and
    /// [`Event::BridgeAnsweredForUpstream`](super::Event::BridgeAnsweredForUpstream).
    pub(super) fn on_bridge_answered(&mut self, id: u64, result: Result<String, (u16, String)>) {
        let Some(pos) = self
            .bridges
            .iter()
            .position(|c| c.waiting == Some((id, Stage::Answer)))
        else {
            return;
        };
        let tx = self.bridges[pos].tx;
        match result {
            Ok(sdp) => {
                let call = &mut self.bridges[pos];
                call.waiting = None;
                call.deadline = None;
                let Some(mut resp) = call.held.pop_front() else {
                    return;
                };
                let seen = sdp_of(&resp).unwrap_or_default();
                match call.dir {
                    Dir::In => call.upstream_sdp = sdp.clone(),
                    Dir::Out => {
                        call.upstream_remote_sdp = seen.clone();
                        call.browser_sdp = sdp.clone();
                    }
                }
                call.cache = Some((seen, sdp.clone()));
                resp.set_body(Some("application/sdp"), sdp.into_bytes());
                self.bridge_deliver(tx, resp);
                self.bridge_flush(tx);
            }
            Err((status, reason)) => {
                let (status, reason) = safe_status(status, reason, "Media Bridge Failed");
                self.bridge_fail(tx, status, &reason, None);
            }
        }
    }

    /// Ends a call not yet established: releases its session, hangs up any held 2xx (unless
    /// it came from `lost`), cancels the pending branches and answers the source `status`.
    pub(super) fn bridge_fail(&mut self, tx: u64, status: u16, reason: &str, lost: Option<&Hop>) {
        self.bridge_fail_with(tx, status, reason, lost, None);
    }

    /// [`AccountCore::bridge_fail`] with an extra header (a `Reason`) in the CANCELs and BYEs.
    pub(super) fn bridge_fail_with(
        &mut self,
        tx: u64,
        status: u16,
        reason: &str,
        lost: Option<&Hop>,
        extra: Option<&Header>,
    ) {
        let Some(pos) = self.bridge_pos(tx) else {
            return;
        };
        let call = self.bridges.remove(pos);
        self.release(call.session);
        for r in &call.held {
            if r.status().is_some_and(|s| (200..300).contains(&s)) {
                let far = self.far_hop(tx, r).filter(|h| Some(h) != lost);
                self.hang_up_2xx_with(far, r, extra);
            }
        }
        self.cancel_pending_with(tx, true, extra);
        // Unless a final response already went out (a held one does not count).
        let delivered = self.txs.get(&tx).is_none_or(|t| {
            t.last_response
                .as_ref()
                .and_then(SipMessage::status)
                .is_some_and(|s| s >= 200)
        });
        if !delivered {
            self.answer_tx(tx, status, reason);
        }
        self.start_linger(tx);
    }

    /// Deadlines of the answers asked for.
    pub(super) fn bridge_deadlines(&self) -> impl Iterator<Item = u64> + '_ {
        self.bridges.iter().filter_map(|c| c.deadline)
    }

    pub(super) fn bridge_timeouts(&mut self, now: u64) {
        let due: Vec<u64> = self
            .bridges
            .iter()
            .filter(|c| c.deadline.is_some_and(|d| d <= now))
            .map(|c| c.tx)
            .collect();
        for tx in due {
            self.bridge_fail(tx, 503, "Service Unavailable", None);
        }
    }

    /// A hop is gone: bridged calls through it end (after `fail_hop` has run).
    pub(super) fn bridge_hop_lost(&mut self, hop: &Hop) {
        let txs: Vec<u64> = self.bridges.iter().map(|c| c.tx).collect();
        for tx in txs {
            let Some(pos) = self.bridge_pos(tx) else {
                continue;
            };
            let call = &self.bridges[pos];
            let affected = match hop {
                Hop::Browser(c) => call.conn.as_ref() == Some(c),
                Hop::Upstream => true,
                Hop::Account(_) => false,
            };
            if !affected {
                continue;
            }
            if let Some(d) = &call.dialog {
                // Hang up the other side, as the side that left.
                let (leg, to) = match hop {
                    Hop::Upstream => (d.to_browser.clone(), call.conn.clone().map(Hop::Browser)),
                    _ => (d.to_upstream.clone(), Some(Hop::Upstream)),
                };
                let call = self.bridges.remove(pos);
                self.release(call.session.clone());
                if let Some(to) = to {
                    if let Some(bye) = self.leg_request(&leg, Method::BYE, &call.call_id, &to) {
                        self.send(&to, bye);
                    }
                }
                continue;
            }
            match (call.waiting, call.dir, hop) {
                // Nothing is sent yet: the allocation goes on, the upstream is reconnected.
                (Some((_, Stage::Allocate)), Dir::Out, Hop::Upstream) => {}
                // The transaction's source left: `fail_hop` aborts it.
                (Some((_, Stage::Allocate)), _, _) => {}
                _ => {
                    let status = if *hop == Hop::Upstream { 503 } else { 480 };
                    let reason = if status == 503 {
                        "Service Unavailable"
                    } else {
                        "Temporarily Unavailable"
                    };
                    self.bridge_fail(tx, status, reason, Some(hop));
                }
            }
        }
    }

    /// A request of our own in one side of a bridged dialog.
    pub(super) fn leg_request(
        &mut self,
        leg: &Leg,
        method: Method,
        call_id: &str,
        to: &Hop,
    ) -> Option<SipMessage> {
        let uri = Uri::parse(&leg.target)?;
        let seq = if method == Method::ACK {
            leg.cseq
        } else {
            leg.cseq.saturating_add(1)
        };
        Some(self.own_request(
            method,
            uri,
            &leg.routes,
            &leg.from,
            &leg.to,
            call_id,
            seq,
            to,
        ))
    }

    #[allow(clippy::too_many_arguments)]
    fn own_request(
        &mut self,
        method: Method,
        uri: Uri,
        routes: &[String],
        from: &str,
        to_header: &str,
        call_id: &str,
        seq: u32,
        to: &Hop,
    ) -> SipMessage {
        let mut m = SipMessage::new_request(method.clone(), uri);
        let branch = self.rng.branch();
        let via = our_via(&self.config.edge_host, self.transport_for(to), &branch);
        m.headers
            .push(Header::new(HeaderName::Via, via.to_string()));
        if !routes.is_empty() {
            m.headers
                .push(Header::new(HeaderName::Route, routes.join(", ")));
        }
        m.headers.push(Header::new(HeaderName::MaxForwards, "70"));
        m.headers.push(Header::new(HeaderName::From, from));
        m.headers.push(Header::new(HeaderName::To, to_header));
        m.headers.push(Header::new(HeaderName::CallId, call_id));
        m.headers
            .push(Header::new(HeaderName::CSeq, format!("{seq} {method}")));
        m.headers.push(Header::new(HeaderName::ContentLength, "0"));
        m
    }

    /// ACKs and BYEs a 2xx (our Via popped) that no one will take, towards `far`.
    fn hang_up_2xx(&mut self, far: Option<Hop>, resp: &SipMessage) {
        self.hang_up_2xx_with(far, resp, None);
    }

    /// [`AccountCore::hang_up_2xx`] with an extra header (a `Reason`) in the BYE.
    fn hang_up_2xx_with(&mut self, far: Option<Hop>, resp: &SipMessage, extra: Option<&Header>) {
        let Some(far) = far else { return };
        let Some(uri) = first_contact(resp).and_then(|u| Uri::parse(&u)) else {
            return;
        };
        let (Some(from), Some(to), Ok(call_id), Ok(cseq)) = (
            resp.headers.get(&HeaderName::From).map(str::to_owned),
            resp.headers.get(&HeaderName::To).map(str::to_owned),
            resp.call_id().map(str::to_owned),
            resp.cseq(),
        ) else {
            return;
        };
        let routes: Vec<String> = if far == Hop::Upstream {
            let edge = self.config.edge_host.clone();
            let mut rr: Vec<String> = resp
                .record_routes()
                .unwrap_or_default()
                .into_iter()
                .filter(|r| classify_route(r, &edge) == RouteTarget::Foreign)
                .map(|r| r.to_string())
                .collect();
            rr.reverse();
            rr
        } else {
            Vec::new()
        };
        for (method, seq) in [
            (Method::ACK, cseq.seq),
            (Method::BYE, cseq.seq.saturating_add(1)),
        ] {
            let mut m = self.own_request(
                method,
                uri.clone(),
                &routes,
                &from,
                &to,
                &call_id,
                seq,
                &far,
            );
            if let (Some(h), true) = (extra, m.method() == Some(&Method::BYE)) {
                insert_before_length(&mut m, h.clone());
            }
            self.send(&far, m);
        }
    }

    /// In-dialog requests of an established bridged call. Returns whether `msg` was handled
    /// here (otherwise it is proxied as usual).
    pub(super) fn bridge_in_dialog(&mut self, hop: &Hop, msg: &SipMessage) -> bool {
        if self.bridges.is_empty() {
            return false;
        }
        let (Ok(call_id), Some(from_tag), Some(to_tag), Ok(cseq), Some(method)) = (
            msg.call_id(),
            tag_of(msg.from()),
            tag_of(msg.to()),
            msg.cseq(),
            msg.method().cloned(),
        ) else {
            return false;
        };
        let from_browser = matches!(hop, Hop::Browser(_));
        if !from_browser && *hop != Hop::Upstream {
            return false;
        }
        let Some(pos) = self.bridges.iter().position(|c| {
            c.call_id == call_id
                && c.dialog.as_ref().is_some_and(|d| {
                    if from_browser {
                        d.browser_tag == from_tag && d.upstream_tag == to_tag
                    } else {
                        d.upstream_tag == from_tag && d.browser_tag == to_tag
                    }
                })
        }) else {
            return false;
        };
        let call = &mut self.bridges[pos];
        let Some(d) = call.dialog.as_mut() else {
            return false;
        };
        if method != Method::ACK {
            let leg = if from_browser {
                &mut d.to_upstream
            } else {
                &mut d.to_browser
            };
            leg.cseq = leg.cseq.max(cseq.seq);
        }
        let offer = sdp_of(msg);
        match method {
            Method::Ack => {
                if let Some(p) = d
                    .local_acks
                    .iter()
                    .position(|a| *a == (from_browser, cseq.seq))
                {
                    d.local_acks.remove(p);
                    return true;
                }
                false
            }
            Method::Bye => {
                let call = self.bridges.remove(pos);
                self.release(call.session);
                false
            }
            Method::Invite | Method::Update if from_browser => {
                let Some(offer) = offer else {
                    if method == Method::INVITE {
                        // An offerless re-INVITE would need the node to offer: refused, the
                        // call goes on.
                        self.reply(hop, msg, 488, Vec::new());
                        return true;
                    }
                    return false;
                };
                let glare = d
                    .own
                    .as_ref()
                    .is_some_and(|o| !o.to_upstream && o.sent.is_some());
                if d.reoffer.is_some() || glare {
                    self.reply(hop, msg, 491, Vec::new());
                    return true;
                }
                let Some(session) = call.session.clone() else {
                    return false;
                };
                let id = self.start_reoffer(pos, hop, msg, method == Method::INVITE);
                self.out.push_back(Output::BridgeRenegotiate {
                    id,
                    session,
                    browser_offer: offer,
                });
                true
            }
            Method::Invite | Method::Update if method == Method::INVITE || offer.is_some() => {
                let changed = offer
                    .as_deref()
                    .filter(|o| !sdp_edit::same_session(o, &call.upstream_remote_sdp));
                if let (Some(offer), Some(session)) = (changed, call.session.clone()) {
                    // A real change (new address or codecs, hold, resume): the node applies it
                    // and answers.
                    let glare = d
                        .own
                        .as_ref()
                        .is_some_and(|o| o.to_upstream && o.sent.is_some());
                    if d.reoffer.is_some() || glare {
                        self.reply(hop, msg, 491, Vec::new());
                        return true;
                    }
                    let offer = offer.to_owned();
                    let id = self.start_reoffer(pos, hop, msg, method == Method::INVITE);
                    self.out.push_back(Output::BridgeUpstreamReoffer {
                        id,
                        session,
                        upstream_offer: offer,
                    });
                    return true;
                }
                // A session refresh (the same SDP again, or none): answered here at once with
                // the SDP it already has from the node, unchanged (version and all); the
                // browser leg is not touched.
                let sdp = call.upstream_sdp.clone();
                let contact = format!("<{}>", d.browser_contact);
                if method == Method::INVITE {
                    d.local_acks.push((false, cseq.seq));
                    if d.local_acks.len() > LOCAL_ACK_MEMORY {
                        d.local_acks.remove(0);
                    }
                }
                if let Ok(mut resp) = msg.response_to(200, "OK", None) {
                    insert_before_length(&mut resp, Header::new(HeaderName::Contact, contact));
                    resp.set_body(Some("application/sdp"), sdp.into_bytes());
                    self.send(hop, resp);
                }
                true
            }
            _ => false,
        }
    }

    /// The bridged call whose pending re-offer is `id`, and that re-offer's transaction; the
    /// re-offer is no longer pending afterwards.
    fn take_reoffer(&mut self, id: u64) -> Option<(usize, u64)> {
        let (pos, tx) = self.bridges.iter().enumerate().find_map(|(i, c)| {
            c.dialog
                .as_ref()
                .and_then(|d| d.reoffer)
                .filter(|r| r.0 == id)
                .map(|r| (i, r.1))
        })?;
        if let Some(d) = self.bridges[pos].dialog.as_mut() {
            d.reoffer = None;
        }
        Some((pos, tx))
    }

    /// [`Event::BridgeRenegotiated`](super::Event::BridgeRenegotiated).
    pub(super) fn on_bridge_renegotiated(
        &mut self,
        id: u64,
        result: Result<String, (u16, String)>,
    ) {
        let Some((pos, tx)) = self.take_reoffer(id) else {
            return;
        };
        let Some(t) = self.txs.get(&tx).filter(|t| !t.final_sent) else {
            return;
        };
        let Some(d) = self.bridges[pos].dialog.as_mut() else {
            return;
        };
        if t.is_invite() {
            // Its ACK (a new branch for a 2xx; the same one for a failure, absorbed anyway).
            let seq = t.request.cseq().map(|c| c.seq).unwrap_or(0);
            d.local_acks.push((true, seq));
            if d.local_acks.len() > LOCAL_ACK_MEMORY {
                d.local_acks.remove(0);
            }
        }
        match result {
            Ok(sdp) => {
                let contact = format!("<{}>", d.upstream_contact);
                let Ok(mut resp) = t.request.response_to(200, "OK", Some(&t.to_tag)) else {
                    return;
                };
                let offered = sdp_of(&t.request).and_then(|o| sdp_edit::direction(&o));
                insert_before_length(&mut resp, Header::new(HeaderName::Contact, contact));
                resp.set_body(Some("application/sdp"), sdp.clone().into_bytes());
                self.bridges[pos].browser_sdp = sdp;
                self.send_back_now(tx, resp);
                // A hold or resume (not an ICE restart alone) is told to the upstream.
                if let Some(direction) = offered {
                    self.bridges[pos].browser_wants = direction;
                    self.signal_direction(pos, true, direction);
                }
            }
            Err((status, reason)) => {
                let (status, reason) = safe_status(status, reason, "Renegotiation Failed");
                self.answer_tx(tx, status, &reason);
            }
        }
        self.start_linger(tx);
    }

    /// Opens the server transaction of a re-offer answered through the shell (100 Trying for an
    /// INVITE) and marks the dialog busy with it; returns the request id.
    fn start_reoffer(&mut self, pos: usize, hop: &Hop, msg: &SipMessage, invite: bool) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        let t = self.new_tx_for(hop, msg, TxKind::BridgeReoffer { id });
        let until = self
            .now
            .saturating_add(self.config.limits.pending_timeout_ms);
        if let Some(tx) = self.txs.get_mut(&t) {
            tx.pending_until = Some(until);
        }
        if let Some(d) = self.bridges[pos].dialog.as_mut() {
            d.reoffer = Some((id, t));
        }
        if invite {
            if let Ok(trying) = msg.response_to(100, "Trying", None) {
                self.send(hop, trying);
            }
        }
        id
    }

    /// [`Event::BridgeUpstreamReoffered`](super::Event::BridgeUpstreamReoffered): the upstream's
    /// re-INVITE/UPDATE gets the node's answer, its direction mirroring the offer's and its
    /// `o=` our previous one's, version bumped; a changed direction (hold, resume) is then
    /// offered to the browser.
    pub(super) fn on_bridge_upstream_reoffered(
        &mut self,
        id: u64,
        result: Result<String, (u16, String)>,
    ) {
        let Some((pos, tx)) = self.take_reoffer(id) else {
            return;
        };
        let Some(t) = self.txs.get(&tx).filter(|t| !t.final_sent) else {
            return;
        };
        let offer = sdp_of(&t.request).unwrap_or_default();
        let offered = sdp_edit::direction(&offer).unwrap_or(Direction::SendRecv);
        let call = &mut self.bridges[pos];
        let Some(d) = call.dialog.as_mut() else {
            return;
        };
        if t.is_invite() {
            let seq = t.request.cseq().map(|c| c.seq).unwrap_or(0);
            d.local_acks.push((false, seq));
            if d.local_acks.len() > LOCAL_ACK_MEMORY {
                d.local_acks.remove(0);
            }
        }
        // Mirrored (sendonly -> recvonly ...), and never more than the browser's own hold allows.
        let direction = sdp_edit::intersect(offered.reversed(), call.browser_wants);
        let answer = result.and_then(|a| {
            sdp_edit::next_version(&a, &call.upstream_sdp, Some(direction))
                .ok_or((500, "Media Node Gave Bad SDP".to_owned()))
        });
        match answer {
            Ok(sdp) => {
                let contact = format!("<{}>", d.browser_contact);
                let Ok(mut resp) = t.request.response_to(200, "OK", Some(&t.to_tag)) else {
                    return;
                };
                insert_before_length(&mut resp, Header::new(HeaderName::Contact, contact));
                resp.set_body(Some("application/sdp"), sdp.clone().into_bytes());
                let before = call.upstream_wants;
                call.upstream_wants = offered;
                call.upstream_sdp = sdp;
                call.upstream_remote_sdp = offer;
                self.send_back_now(tx, resp);
                if before != offered {
                    self.signal_direction(pos, false, offered);
                }
            }
            Err((status, reason)) => {
                let (status, reason) = safe_status(status, reason, "Renegotiation Failed");
                self.answer_tx(tx, status, &reason);
            }
        }
        self.start_linger(tx);
    }

    /// One side of call `pos` now offers `direction`: unless the other side already has it
    /// (our last SDP to it says so, or a re-INVITE carrying it is under way), a re-INVITE of
    /// our own offers it there (`to_upstream`: to the upstream, as the browser; else to the
    /// browser, as the upstream), or queues behind the one under way.
    fn signal_direction(&mut self, pos: usize, to_upstream: bool, direction: Direction) {
        let Some(call) = self.bridges.get_mut(pos) else {
            return;
        };
        let current = if to_upstream {
            &call.upstream_sdp
        } else {
            &call.browser_sdp
        };
        let told = sdp_edit::direction(current).unwrap_or(Direction::SendRecv);
        let Some(d) = call.dialog.as_mut() else {
            return;
        };
        if let Some(own) = &mut d.own {
            if own.to_upstream == to_upstream && own.sent.is_none() {
                // Waiting to retry after a 491: it goes with the newest direction.
                own.direction = direction;
                return;
            }
            if own.to_upstream == to_upstream && own.direction == direction {
                d.queued = None;
                return;
            }
            d.queued = Some((to_upstream, direction));
            return;
        }
        if told == direction {
            return;
        }
        d.own = Some(OwnReinvite {
            to_upstream,
            direction,
            sdp: String::new(),
            sent: None,
            due: self.now,
        });
        self.send_own_reinvite(pos);
    }

    /// Sends (or sends again after a 491) the re-INVITE of our own of call `pos`.
    fn send_own_reinvite(&mut self, pos: usize) {
        let Some(call) = self.bridges.get(pos) else {
            return;
        };
        let Some(d) = call.dialog.as_ref() else {
            return;
        };
        let Some(own) = d.own.clone() else { return };
        let (leg, base, contact, hop) = if own.to_upstream {
            (
                d.to_upstream.clone(),
                call.upstream_sdp.clone(),
                d.browser_contact.clone(),
                Some(Hop::Upstream),
            )
        } else {
            (
                d.to_browser.clone(),
                call.browser_sdp.clone(),
                d.upstream_contact.clone(),
                call.conn.clone().map(Hop::Browser),
            )
        };
        let call_id = call.call_id.clone();
        let sdp = hop
            .as_ref()
            .and_then(|_| sdp_edit::next_version(&base, &base, Some(own.direction)));
        let (Some(hop), Some(sdp)) = (hop, sdp) else {
            if let Some(d) = self.bridges[pos].dialog.as_mut() {
                d.own = None;
            }
            return;
        };
        let Some(mut req) = self.leg_request(&leg, Method::INVITE, &call_id, &hop) else {
            if let Some(d) = self.bridges[pos].dialog.as_mut() {
                d.own = None;
            }
            return;
        };
        insert_before_length(
            &mut req,
            Header::new(HeaderName::Contact, format!("<{contact}>")),
        );
        req.set_body(Some("application/sdp"), sdp.clone().into_bytes());
        let branch = req
            .top_via()
            .ok()
            .and_then(|v| v.branch().map(str::to_owned))
            .unwrap_or_default();
        let due = self.now.saturating_add(OWN_REINVITE_TIMEOUT_MS);
        if let Some(d) = self.bridges[pos].dialog.as_mut() {
            let leg = if own.to_upstream {
                &mut d.to_upstream
            } else {
                &mut d.to_browser
            };
            leg.cseq = leg.cseq.saturating_add(1);
            d.own = Some(OwnReinvite {
                sdp,
                sent: Some((branch, req.clone())),
                due,
                ..own
            });
        }
        self.send(&hop, req);
    }

    /// A response to a re-INVITE of our own (matched by its Via branch and the hop it went
    /// to): a 2xx is ACKed and its offer becomes our SDP on that leg; a 491 is ACKed and the
    /// re-INVITE goes again after 2.1-4 s; any other failure is ACKed and the call goes on
    /// unchanged. Provisionals are absorbed; anything else is not ours and is dropped.
    pub(super) fn bridge_own_response(&mut self, hop: &Hop, resp: &SipMessage) {
        let Some(branch) = resp
            .top_via()
            .ok()
            .and_then(|v| v.branch().map(str::to_owned))
        else {
            return;
        };
        let Some(pos) = self.bridges.iter().position(|c| {
            c.dialog
                .as_ref()
                .and_then(|d| d.own.as_ref())
                .and_then(|o| o.sent.as_ref())
                .is_some_and(|(b, _)| *b == branch)
        }) else {
            return;
        };
        let (Some(status), Ok(cseq)) = (resp.status(), resp.cseq()) else {
            return;
        };
        let call = &self.bridges[pos];
        let Some(own) = call.dialog.as_ref().and_then(|d| d.own.clone()) else {
            return;
        };
        let Some((_, request)) = own.sent.clone() else {
            return;
        };
        let expected_hop = if own.to_upstream {
            Some(Hop::Upstream)
        } else {
            call.conn.clone().map(Hop::Browser)
        };
        if expected_hop.as_ref() != Some(hop) || cseq.method != Method::INVITE || status < 200 {
            return;
        }
        let call_id = call.call_id.clone();
        let mut resp = resp.clone();
        if resp.remove_top_via().is_err() {
            return;
        }
        if (200..300).contains(&status) {
            // The ACK of a 2xx is a new request along the dialog's route (RFC 3261 §13.2.2.4).
            let Some(d) = self.bridges[pos].dialog.as_ref() else {
                return;
            };
            let mut leg = if own.to_upstream {
                d.to_upstream.clone()
            } else {
                d.to_browser.clone()
            };
            leg.cseq = cseq.seq;
            if let Some(ack) = self.leg_request(&leg, Method::ACK, &call_id, hop) {
                self.send(hop, ack);
            }
            let answer = sdp_of(&resp);
            let call = &mut self.bridges[pos];
            if own.to_upstream {
                call.upstream_sdp = own.sdp.clone();
                if let Some(a) = answer {
                    call.upstream_remote_sdp = a;
                }
            } else {
                // The browser's answer needs nothing from the node: the offer kept its ICE
                // credentials and DTLS fingerprint, so its transport is unchanged.
                call.browser_sdp = own.sdp.clone();
            }
        } else if let Some(ack) = build_ack(&request, &resp) {
            self.send(hop, ack);
        }
        let Some(d) = self.bridges[pos].dialog.as_mut() else {
            return;
        };
        if status == 491 {
            let spread = self.rng.next_u64() % GLARE_RETRY_SPREAD_MS;
            d.own = Some(OwnReinvite {
                sent: None,
                due: self
                    .now
                    .saturating_add(GLARE_RETRY_MIN_MS)
                    .saturating_add(spread),
                ..own
            });
            return;
        }
        d.own = None;
        if let Some((to_upstream, direction)) = d.queued.take() {
            self.signal_direction(pos, to_upstream, direction);
        }
    }

    /// When re-INVITEs of our own are due to be retried or given up.
    pub(super) fn bridge_dialog_timers(&self) -> impl Iterator<Item = u64> + '_ {
        self.bridges
            .iter()
            .filter_map(|c| c.dialog.as_ref()?.own.as_ref().map(|o| o.due))
    }

    /// Retries re-INVITEs of our own after their 491 wait; gives up those unanswered (the call
    /// goes on).
    pub(super) fn bridge_dialog_timeouts(&mut self, now: u64) {
        for pos in 0..self.bridges.len() {
            let Some(d) = self.bridges[pos].dialog.as_mut() else {
                continue;
            };
            let Some(own) = d.own.as_ref().filter(|o| o.due <= now) else {
                continue;
            };
            if own.sent.is_none() {
                self.send_own_reinvite(pos);
            } else {
                d.own = None;
                if let Some((to_upstream, direction)) = d.queued.take() {
                    self.signal_direction(pos, to_upstream, direction);
                }
            }
        }
    }

    /// The re-offer transaction `tx` ended without its answer (cancelled, timed out).
    pub(super) fn drop_reoffer(&mut self, tx: u64) {
        for c in &mut self.bridges {
            if let Some(d) = c.dialog.as_mut() {
                if d.reoffer.is_some_and(|r| r.1 == tx) {
                    d.reoffer = None;
                }
            }
        }
    }
}
