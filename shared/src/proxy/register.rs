//! REGISTER: the local registrar with digest authentication, or the relay to the upstream.

use super::bindings::{uri_key, BindingError, ContactUpdate};
use super::config::RegistrationMode;
use super::core::AccountCore;
use super::io::{ConnId, Hop, Output};
use super::routing::path;
use super::transaction::{insert_before_length, TxKind};
use crate::auth::{Algorithm, AuthError, Credentials, Rechallenge, Secret};
use crate::sip::{Contacts, Header, HeaderName, SipMessage};

/// What a REGISTER asks for.
enum RegisterOp {
    /// `Contact: *` with `Expires: 0`.
    RemoveAll,
    /// Add, refresh or remove these (an empty list only fetches).
    Update(Vec<ContactUpdate>),
}

impl AccountCore {
    pub(super) fn on_register(&mut self, hop: Hop, msg: SipMessage) {
        let Hop::Browser(conn) = hop.clone() else {
            self.reply(&hop, &msg, 403, Vec::new());
            return;
        };
        if !self.register_addresses_ok(&msg) {
            self.reply(&hop, &msg, 403, Vec::new());
            return;
        }
        match self.config.registration {
            RegistrationMode::Local => self.local_register(conn, msg),
            RegistrationMode::Relay => self.relay_register(conn, msg),
        }
    }

    /// The To (the AOR) must be this account at the tenant domain, and From and the
    /// Request-URI must be the tenant's (or the edge's) too.
    fn register_addresses_ok(&self, msg: &SipMessage) -> bool {
        let ours = |uri: &crate::sip::Uri| {
            uri.as_sip().is_some_and(|u| {
                super::routing::host_is(&u.host, &self.config.tenant_domain)
                    || super::routing::host_is(&u.host, &self.config.edge_host)
            })
        };
        let Ok(to) = msg.to() else { return false };
        let Ok(from) = msg.from() else { return false };
        let to_user = to
            .uri
            .as_sip()
            .and_then(|u| u.user.as_deref())
            .and_then(super::routing::unescape);
        to_user.as_deref() == Some(self.config.user.as_str())
            && ours(&to.uri)
            && ours(&from.uri)
            && msg.request_uri().is_some_and(ours)
    }

    fn local_register(&mut self, conn: ConnId, msg: SipMessage) {
        let hop = Hop::Browser(conn.clone());
        let tenant = self.config.tenant_domain.clone();
        let auths = msg.authorization().unwrap_or_default();
        let mine = auths.iter().find(|a| {
            a.is_digest()
                && a.param("realm")
                    .is_some_and(|r| r.eq_ignore_ascii_case(&tenant))
        });
        let Some(auth) = mine else {
            self.challenge(&hop, &msg, false);
            return;
        };
        let stored = self.config.credentials.clone();
        let user = self.config.user.clone();
        let now = self.now;
        let result = Credentials::parse(&auth.to_string()).and_then(|c| {
            self.verifier
                .verify_credentials(now, &tenant, "REGISTER", b"", &c, |l| {
                    let s = stored.as_ref().filter(|_| l.username == user)?;
                    Some(Secret::Ha1(match l.algorithm {
                        Algorithm::Sha256 => s.ha1_sha256.clone(),
                        _ => s.ha1_md5.clone(),
                    }))
                })
        });
        let verified = match result {
            Ok(v) if self.epoch_ms.is_some_and(|e| v.nonce_issued_ms < e) => Err(AuthError::Stale),
            other => other,
        };
        match verified {
            Ok(_) => {}
            Err(e) => {
                match e.rechallenge() {
                    Some(kind) => self.challenge(&hop, &msg, kind == Rechallenge::Stale),
                    None => self.reply(&hop, &msg, e.status(), Vec::new()),
                }
                return;
            }
        }
        let op = match self.register_op(&msg) {
            Ok(op) => op,
            Err((status, headers)) => {
                self.reply(&hop, &msg, status, headers);
                return;
            }
        };
        match self.apply_register(&conn, &msg, op) {
            Ok(changed) => {
                let headers = self.binding_contacts();
                self.reply(&hop, &msg, 200, headers);
                self.out.push_back(Output::Registered { conn });
                if changed {
                    self.persist();
                }
            }
            Err(status) => self.reply(&hop, &msg, status, Vec::new()),
        }
    }

    /// 401 with one WWW-Authenticate per algorithm (SHA-256 then MD5), sharing a fresh nonce.
    fn challenge(&mut self, hop: &Hop, msg: &SipMessage, stale: bool) {
        let random = self.rng.bytes16();
        let tenant = self.config.tenant_domain.clone();
        let mut challenges = self.verifier.challenge(self.now, &tenant, &tenant, &random);
        for c in &mut challenges {
            c.stale = stale;
        }
        let headers = challenges
            .iter()
            .map(|c| Header::new(HeaderName::WwwAuthenticate, c.to_header_value()))
            .collect();
        self.reply(hop, msg, 401, headers);
    }

    /// The contacts of a REGISTER with their granted expiry, or the status refusing it.
    fn register_op(&self, msg: &SipMessage) -> Result<RegisterOp, (u16, Vec<Header>)> {
        let limits = &self.config.limits;
        let default = msg
            .expires()
            .map_err(|_| (400, Vec::new()))?
            .unwrap_or(limits.default_expires);
        match msg.contacts().map_err(|_| (400, Vec::new()))? {
            Contacts::Any => {
                if msg.expires().ok().flatten() == Some(0) {
                    Ok(RegisterOp::RemoveAll)
                } else {
                    Err((400, Vec::new()))
                }
            }
            Contacts::List(list) => {
                let mut out = Vec::with_capacity(list.len());
                for contact in list {
                    if contact.uri.as_sip().is_none() {
                        return Err((400, Vec::new()));
                    }
                    let mut e = contact.expires().unwrap_or(default);
                    if e != 0 && e < limits.min_expires {
                        let min = Header::new(
                            HeaderName::Other("Min-Expires".into()),
                            limits.min_expires.to_string(),
                        );
                        return Err((423, vec![min]));
                    }
                    e = e.min(limits.max_expires);
                    out.push(ContactUpdate {
                        contact,
                        expires_s: e,
                    });
                }
                Ok(RegisterOp::Update(out))
            }
        }
    }

    /// Applies a REGISTER to the bindings; `Ok(changed)` or the status refusing it.
    fn apply_register(
        &mut self,
        conn: &ConnId,
        msg: &SipMessage,
        op: RegisterOp,
    ) -> Result<bool, u16> {
        match op {
            RegisterOp::RemoveAll => Ok(self.bindings.clear()),
            RegisterOp::Update(updates) => {
                let call_id = msg.call_id().map_err(|_| 400u16)?.to_owned();
                let cseq = msg.cseq().map_err(|_| 400u16)?.seq;
                let max = self.config.limits.max_bindings;
                self.bindings
                    .update(self.now, conn, &call_id, cseq, &updates, max)
                    .map_err(|e| match e {
                        BindingError::OutOfOrder => 500,
                    })
            }
        }
    }

    /// One Contact header per binding, with the seconds left (RFC 3261 §10.3 step 8).
    fn binding_contacts(&self) -> Vec<Header> {
        self.bindings
            .all()
            .iter()
            .map(|b| {
                let left = b.expires_at_ms.saturating_sub(self.now).div_ceil(1000);
                Header::new(HeaderName::Contact, format!("{};expires={left}", b.contact))
            })
            .collect()
    }

    fn relay_register(&mut self, conn: ConnId, msg: SipMessage) {
        let hop = Hop::Browser(conn);
        if !self.config.has_upstream {
            self.reply(&hop, &msg, 503, Vec::new());
            return;
        }
        if self.txs.len() >= self.config.limits.max_transactions {
            let retry = self.config.limits.retry_after_s.to_string();
            let h = Header::new(HeaderName::Other("Retry-After".into()), retry);
            self.reply(&hop, &msg, 503, vec![h]);
            return;
        }
        let mut fwd = msg.clone();
        if fwd.decrement_max_forwards().is_err() {
            self.reply(&hop, &msg, 483, Vec::new());
            return;
        }
        let p = Header::new(
            HeaderName::Path,
            path(&self.config.edge_host, &self.config.user).to_string(),
        );
        match fwd.headers.position(&HeaderName::Path) {
            Some(i) => fwd.headers.insert(i, p),
            None => insert_before_length(&mut fwd, p),
        }
        let has_path = fwd
            .supported()
            .is_ok_and(|t| t.iter().any(|t| t.eq_ignore_ascii_case("path")));
        if !has_path {
            match fwd.headers.get(&HeaderName::Supported) {
                Some(v) => {
                    let v = format!("{v}, path");
                    fwd.headers.set(HeaderName::Supported, v);
                }
                None => insert_before_length(&mut fwd, Header::new(HeaderName::Supported, "path")),
            }
        }
        let id = self.new_tx_for(&hop, &msg, TxKind::RelayRegister);
        self.add_branch(id, Hop::Upstream, fwd, None);
    }

    /// The upstream accepted a relayed REGISTER: mirror the bindings here (expiry as granted
    /// by the upstream) so its INVITEs find the browser, and mark the connection.
    pub(super) fn relay_register_ok(&mut self, id: u64, resp: &SipMessage) {
        let Some(tx) = self.txs.get(&id) else { return };
        let Hop::Browser(conn) = tx.source.clone() else {
            return;
        };
        let req = tx.request.clone();
        let granted: Vec<(String, Option<u32>)> = match resp.contacts() {
            Ok(Contacts::List(l)) => l
                .iter()
                .filter_map(|c| c.uri.as_sip().map(|u| (uri_key(u), c.expires())))
                .collect(),
            _ => Vec::new(),
        };
        let header_expires = resp.expires().ok().flatten();
        let op = match self.register_op(&req) {
            Ok(RegisterOp::Update(mut updates)) => {
                for u in &mut updates {
                    let key = u.contact.uri.as_sip().map(uri_key);
                    let from_resp = granted
                        .iter()
                        .find(|(k, _)| Some(k) == key.as_ref())
                        .map(|(_, e)| e.or(header_expires).unwrap_or(0));
                    if let Some(e) = from_resp {
                        u.expires_s = e;
                    } else if u.expires_s != 0 {
                        // Not in the upstream's list: it kept no binding for it.
                        u.expires_s = header_expires.unwrap_or(u.expires_s);
                    }
                    u.expires_s = u.expires_s.min(self.config.limits.max_expires.max(1));
                }
                RegisterOp::Update(updates)
            }
            Ok(op) => op,
            Err(_) => RegisterOp::Update(Vec::new()),
        };
        let changed = self.apply_register(&conn, &req, op).unwrap_or(false);
        self.out.push_back(Output::Registered { conn });
        if changed {
            self.persist();
        }
    }
}
