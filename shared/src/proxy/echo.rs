//! The *43 echo service: the account answers the INVITE itself with the SDP of an echo bridge
//! the shell obtains from a media node.

use super::core::{AccountCore, ALLOW, SUPPORTED};
use super::io::{ConnId, Hop, Output};
use super::routing::{echo_contact, record_route};
use super::transaction::{insert_before_length, TxKind};
use crate::sip::{Header, HeaderName, Method, SipMessage};

/// One echo call of a browser.
#[derive(Debug, Clone)]
pub(crate) struct EchoCall {
    /// The id of the [`Output::Echo`] request.
    pub id: u64,
    /// The browser connection.
    pub conn: ConnId,
    /// The call's Call-ID.
    pub call_id: String,
    /// The INVITE transaction.
    pub tx: u64,
    /// Our To-tag.
    pub to_tag: String,
    /// The 200 OK was sent.
    pub answered: bool,
}

/// How many ended-before-answered echo ids are remembered (to release a late bridge).
const CANCELLED_ECHO_MEMORY: usize = 16;

impl AccountCore {
    pub(super) fn start_echo(&mut self, conn: ConnId, msg: SipMessage) {
        let hop = Hop::Browser(conn.clone());
        if self.echo.len() >= self.config.limits.max_echo_calls {
            self.reply(&hop, &msg, 486, Vec::new());
            return;
        }
        let offer = match std::str::from_utf8(msg.body()) {
            Ok(s) if !s.trim().is_empty() => s.to_owned(),
            _ => {
                self.reply(&hop, &msg, 488, Vec::new());
                return;
            }
        };
        let Ok(call_id) = msg.call_id().map(str::to_owned) else {
            return;
        };
        if let Ok(t) = msg.response_to(100, "Trying", None) {
            self.send(&hop, t);
        }
        let echo_id = self.next_id;
        self.next_id += 1;
        let id = self.new_tx_for(&hop, &msg, TxKind::Echo { id: echo_id });
        let until = self
            .now
            .saturating_add(self.config.limits.pending_timeout_ms);
        let Some(tx) = self.txs.get_mut(&id) else {
            return;
        };
        tx.pending_until = Some(until);
        let to_tag = tx.to_tag.clone();
        self.echo.push(EchoCall {
            id: echo_id,
            conn,
            call_id: call_id.clone(),
            tx: id,
            to_tag,
            answered: false,
        });
        self.out.push_back(Output::Echo {
            id: echo_id,
            call_id,
            offer,
        });
    }

    pub(super) fn on_echo_answer(&mut self, echo_id: u64, answer: Result<String, (u16, String)>) {
        if let Some(pos) = self.cancelled_echo.iter().position(|(i, _)| *i == echo_id) {
            let (_, call_id) = self.cancelled_echo.remove(pos);
            if answer.is_ok() {
                self.out.push_back(Output::EchoEnded { call_id });
            }
            return;
        }
        let Some(pos) = self
            .echo
            .iter()
            .position(|e| e.id == echo_id && !e.answered)
        else {
            return;
        };
        let call = self.echo[pos].clone();
        let Some(tx) = self.txs.get(&call.tx) else {
            self.echo.remove(pos);
            return;
        };
        if tx.final_sent {
            self.echo.remove(pos);
            if answer.is_ok() {
                self.out.push_back(Output::EchoEnded {
                    call_id: call.call_id,
                });
            }
            return;
        }
        match answer {
            Ok(sdp) => {
                let Ok(mut resp) = tx.request.response_to(200, "OK", Some(&call.to_tag)) else {
                    return;
                };
                let edge = &self.config.edge_host;
                for h in [
                    Header::new(
                        HeaderName::RecordRoute,
                        record_route(edge, &self.config.user).to_string(),
                    ),
                    Header::new(HeaderName::Contact, echo_contact(edge).to_string()),
                    Header::new(HeaderName::Allow, ALLOW),
                    Header::new(HeaderName::Supported, SUPPORTED),
                ] {
                    insert_before_length(&mut resp, h);
                }
                resp.set_body(Some("application/sdp"), sdp.into_bytes());
                self.send_back(call.tx, resp);
                self.start_linger(call.tx);
                self.echo[pos].answered = true;
            }
            Err((status, reason)) => {
                let status = if (300..=699).contains(&status) {
                    status
                } else {
                    500
                };
                let safe = !reason.is_empty()
                    && reason.len() <= 64
                    && reason.bytes().all(|b| b.is_ascii_graphic() || b == b' ');
                let reason = if safe { reason } else { "Echo Failed".into() };
                self.answer_tx(call.tx, status, &reason);
                self.start_linger(call.tx);
                self.echo.remove(pos);
            }
        }
    }

    /// In-dialog requests of an answered echo call. Returns whether `msg` was one.
    pub(super) fn echo_in_dialog(&mut self, conn: &ConnId, msg: &SipMessage) -> bool {
        let Ok(call_id) = msg.call_id() else {
            return false;
        };
        let to_tag = msg.to().ok().and_then(|t| t.tag().map(str::to_owned));
        let Some(pos) = self.echo.iter().position(|e| {
            e.answered
                && &e.conn == conn
                && e.call_id == call_id
                && to_tag.as_deref() == Some(&e.to_tag)
        }) else {
            return false;
        };
        let hop = Hop::Browser(conn.clone());
        match msg.method() {
            Some(Method::Ack) => {}
            Some(Method::Bye) => {
                self.reply(&hop, msg, 200, Vec::new());
                let call = self.echo.remove(pos);
                self.out.push_back(Output::EchoEnded {
                    call_id: call.call_id,
                });
            }
            // A new offer (hold, ICE restart) would need a new bridge: refused, the call goes on.
            Some(Method::Invite) => self.reply(&hop, msg, 488, Vec::new()),
            Some(Method::Update) if !msg.body().is_empty() => {
                self.reply(&hop, msg, 488, Vec::new())
            }
            _ => self.reply(&hop, msg, 200, Vec::new()),
        }
        true
    }

    /// The echo transaction `tx` was cancelled (or its browser left) before the answer came.
    pub(super) fn cancel_echo_tx(&mut self, tx: u64) {
        if let Some(pos) = self.echo.iter().position(|e| e.tx == tx) {
            let call = self.echo.remove(pos);
            self.ended_early(call);
        }
    }

    /// The echo bridge answer did not come in time.
    pub(super) fn end_echo_by_id(&mut self, echo_id: u64) {
        if let Some(pos) = self.echo.iter().position(|e| e.id == echo_id) {
            let call = self.echo.remove(pos);
            self.ended_early(call);
        }
    }

    pub(super) fn end_echo_of_conn(&mut self, conn: &ConnId) {
        let (gone, kept): (Vec<EchoCall>, Vec<EchoCall>) = std::mem::take(&mut self.echo)
            .into_iter()
            .partition(|e| &e.conn == conn);
        self.echo = kept;
        for call in gone {
            if call.answered {
                self.out.push_back(Output::EchoEnded {
                    call_id: call.call_id,
                });
            } else {
                self.ended_early(call);
            }
        }
    }

    /// Releases a call's bridge now (the shell may be allocating it) and once more if its
    /// answer still arrives: [`Output::EchoEnded`] is idempotent for the shell.
    fn ended_early(&mut self, call: EchoCall) {
        self.out.push_back(Output::EchoEnded {
            call_id: call.call_id.clone(),
        });
        if !call.answered {
            self.cancelled_echo.push((call.id, call.call_id));
            if self.cancelled_echo.len() > CANCELLED_ECHO_MEMORY {
                self.cancelled_echo.remove(0);
            }
        }
    }
}
