//! The registration bindings of the account (RFC 3261 §10.3, RFC 5626 flows), on virtual time.

use serde::{Deserialize, Serialize};

use super::io::ConnId;
use crate::sip::{NameAddr, SipUri, Uri};

/// One registered contact, as persisted by the shell.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredBinding {
    /// The contact URI as registered (where requests are sent: the Request-URI).
    pub uri: String,
    /// The whole Contact value as registered, without `expires` (echoed in 200 OK).
    pub contact: String,
    /// `+sip.instance` (RFC 5626), if any.
    pub instance: Option<String>,
    /// `reg-id` (RFC 5626), if any.
    pub reg_id: Option<u32>,
    /// The browser connection (flow) it was registered over.
    pub conn: ConnId,
    /// When it expires, in the shell's milliseconds.
    pub expires_at_ms: u64,
    /// The Call-ID of the REGISTER that made it.
    pub call_id: String,
    /// The CSeq number of that REGISTER.
    pub cseq: u32,
}

/// A contact to add, refresh (expires > 0) or remove (0).
#[derive(Debug, Clone)]
pub(crate) struct ContactUpdate {
    pub contact: NameAddr,
    pub expires_s: u32,
}

/// Why an update was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum BindingError {
    /// Same Call-ID with a CSeq not above the stored one (RFC 3261 §10.3 step 7).
    OutOfOrder,
}

/// A comparable key for a SIP URI: user, lowercase host and port (parameters ignored).
pub(crate) fn uri_key(uri: &SipUri) -> String {
    format!(
        "{}@{}:{}",
        uri.user.as_deref().unwrap_or(""),
        uri.host.to_string().to_ascii_lowercase(),
        uri.port.unwrap_or(0)
    )
}

fn stored_key(b: &StoredBinding) -> Option<String> {
    Uri::parse(&b.uri).and_then(|u| u.as_sip().map(uri_key))
}

/// The bindings of the account.
#[derive(Debug, Clone, Default)]
pub(crate) struct Bindings {
    list: Vec<StoredBinding>,
}

impl Bindings {
    pub fn from_stored(list: Vec<StoredBinding>, now_ms: u64) -> Self {
        let mut b = Bindings { list };
        b.expire(now_ms);
        b
    }

    pub fn all(&self) -> &[StoredBinding] {
        &self.list
    }

    fn find(&self, contact: &NameAddr) -> Option<usize> {
        let instance = contact.sip_instance();
        let reg_id = contact.reg_id();
        if let (Some(i), Some(r)) = (instance.as_deref(), reg_id) {
            return self
                .list
                .iter()
                .position(|b| b.instance.as_deref() == Some(i) && b.reg_id == Some(r));
        }
        let key = contact.uri.as_sip().map(uri_key)?;
        self.list
            .iter()
            .position(|b| b.reg_id.is_none() && stored_key(b).as_deref() == Some(key.as_str()))
    }

    /// Applies one REGISTER's contacts over `conn`. Returns whether anything changed.
    #[allow(clippy::too_many_arguments)]
    pub fn update(
        &mut self,
        now_ms: u64,
        conn: &ConnId,
        call_id: &str,
        cseq: u32,
        updates: &[ContactUpdate],
        max_bindings: usize,
    ) -> Result<bool, BindingError> {
        // Check every contact first, so a refused REGISTER changes nothing.
        for u in updates {
            if let Some(i) = self.find(&u.contact) {
                let b = &self.list[i];
                if b.call_id == call_id && cseq <= b.cseq {
                    return Err(BindingError::OutOfOrder);
                }
            }
        }
        let mut changed = false;
        for u in updates {
            let existing = self.find(&u.contact);
            if u.expires_s == 0 {
                if let Some(i) = existing {
                    self.list.remove(i);
                    changed = true;
                }
                continue;
            }
            let mut contact = u.contact.clone();
            contact.params.remove("expires");
            let binding = StoredBinding {
                uri: contact.uri.to_string(),
                contact: contact.to_string(),
                instance: u.contact.sip_instance().map(|s| s.into_owned()),
                reg_id: u.contact.reg_id(),
                conn: conn.clone(),
                expires_at_ms: now_ms.saturating_add(u64::from(u.expires_s) * 1000),
                call_id: call_id.to_owned(),
                cseq,
            };
            match existing {
                Some(i) => self.list[i] = binding,
                None => {
                    if self.list.len() >= max_bindings.max(1) {
                        // Make room: the binding closest to expiry goes.
                        if let Some(i) = self
                            .list
                            .iter()
                            .enumerate()
                            .min_by_key(|(_, b)| b.expires_at_ms)
                            .map(|(i, _)| i)
                        {
                            self.list.remove(i);
                        }
                    }
                    self.list.push(binding);
                }
            }
            changed = true;
        }
        Ok(changed)
    }

    /// Removes every binding (`Contact: *`).
    pub fn clear(&mut self) -> bool {
        let changed = !self.list.is_empty();
        self.list.clear();
        changed
    }

    /// Removes the bindings of a closed flow.
    pub fn remove_conn(&mut self, conn: &ConnId) -> bool {
        let before = self.list.len();
        self.list.retain(|b| &b.conn != conn);
        before != self.list.len()
    }

    /// Removes expired bindings.
    pub fn expire(&mut self, now_ms: u64) -> bool {
        let before = self.list.len();
        self.list.retain(|b| b.expires_at_ms > now_ms);
        before != self.list.len()
    }

    /// When the next binding expires.
    pub fn next_expiry(&self) -> Option<u64> {
        self.list.iter().map(|b| b.expires_at_ms).min()
    }

    /// The connection of the binding whose contact is `uri`.
    pub fn conn_for(&self, uri: &SipUri) -> Option<&ConnId> {
        let key = uri_key(uri);
        self.list
            .iter()
            .find(|b| stored_key(b).as_deref() == Some(key.as_str()))
            .map(|b| &b.conn)
    }
}
