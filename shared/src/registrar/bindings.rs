//! The bindings of one address-of-record and the REGISTER processing of RFC 3261 §10.3 with
//! the RFC 5626 (outbound) flow rules.

use serde::{Deserialize, Serialize};

use super::{Binding, ContactInput, Contacts, Register, RegistrarError};

/// Registrar policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistrarConfig {
    /// Shortest non-zero expiry accepted, in seconds; shorter gets 423 (default 60).
    pub min_expires_s: u32,
    /// Longest expiry granted, in seconds; longer is shortened to this (default 3600).
    pub max_expires_s: u32,
    /// Expiry when neither the contact nor the request says, in seconds (default 3600).
    pub default_expires_s: u32,
    /// Most bindings one address-of-record may have (default 10).
    pub max_bindings: usize,
}

impl Default for RegistrarConfig {
    fn default() -> Self {
        RegistrarConfig {
            min_expires_s: 60,
            max_expires_s: 3600,
            default_expires_s: 3600,
            max_bindings: 10,
        }
    }
}

/// One change a REGISTER made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BindingChange {
    /// A new binding.
    Added(Binding),
    /// A binding refreshed or replaced: same contact URI, or (RFC 5626) same `+sip.instance`
    /// and `reg-id` on a new flow (compare `old.flow` and `new.flow`).
    Updated {
        /// The binding before.
        old: Binding,
        /// The binding now.
        new: Binding,
    },
    /// A binding removed (expiry 0, `Contact: *`, or merged into another by an update).
    Removed(Binding),
}

/// What [`Bindings::apply`] did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RegisterOutcome {
    /// The changes, in the order of the request's contacts, then removals.
    pub changes: Vec<BindingChange>,
    /// Bindings found expired (and dropped) while applying the request.
    pub expired: Vec<Binding>,
}

/// The bindings of one address-of-record, driven by REGISTERs and virtual time.
///
/// Sans-IO: every call takes `now_ms`; [`Bindings::poll_timeout`] says when the next binding
/// expires and [`Bindings::handle_timeout`] removes what has.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bindings {
    config: RegistrarConfig,
    list: Vec<Binding>,
}

struct Working {
    binding: Binding,
    /// Index in the live list of the binding this one continues, if any.
    origin: Option<usize>,
    /// Set or replaced by this request.
    touched: bool,
}

impl Bindings {
    /// No bindings yet.
    pub fn new(config: RegistrarConfig) -> Self {
        Bindings {
            config,
            list: Vec::new(),
        }
    }

    /// The policy.
    pub fn config(&self) -> &RegistrarConfig {
        &self.config
    }

    /// The bindings (including any expired but not yet removed by
    /// [`Bindings::handle_timeout`]), oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &Binding> {
        self.list.iter()
    }

    /// The bindings live at `now_ms`, oldest first: the Contact list of a 200 OK.
    pub fn live(&self, now_ms: u64) -> impl Iterator<Item = &Binding> {
        self.list.iter().filter(move |b| b.expires_at_ms > now_ms)
    }

    /// How many bindings are held.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Whether no binding is held.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// When the next binding expires.
    pub fn poll_timeout(&self) -> Option<u64> {
        self.list.iter().map(|b| b.expires_at_ms).min()
    }

    /// Removes and returns the bindings expired at `now_ms` (a binding expires exactly at its
    /// `expires_at_ms`).
    pub fn handle_timeout(&mut self, now_ms: u64) -> Vec<Binding> {
        let (gone, kept) = std::mem::take(&mut self.list)
            .into_iter()
            .partition(|b| b.expires_at_ms <= now_ms);
        self.list = kept;
        gone
    }

    /// Removes and returns the bindings registered over `flow` (e.g. when its connection
    /// closed and the caller decides its registrations go with it).
    pub fn remove_flow(&mut self, flow: &str) -> Vec<Binding> {
        let (gone, kept) = std::mem::take(&mut self.list)
            .into_iter()
            .partition(|b| b.flow.as_deref() == Some(flow));
        self.list = kept;
        gone
    }

    /// Applies a REGISTER at `now_ms` (RFC 3261 §10.3 steps 6–8, RFC 5626 §6): adds, refreshes
    /// and removes bindings, all or nothing.
    ///
    /// - Each contact's expiry is its `expires` parameter, else the request's `Expires`, else
    ///   the default; a non-zero one below the minimum refuses the request with 423, one above
    ///   the maximum is shortened to it.
    /// - A contact matches a binding with the same URI, or with the same `+sip.instance` and
    ///   `reg-id` (a new flow replacing the old one). A matched binding with the same Call-ID
    ///   and a CSeq not below the request's refuses the request (out of order); otherwise it is
    ///   replaced, or removed when the expiry is 0.
    /// - `Contact: *` with `Expires: 0` removes every binding, under the same Call-ID/CSeq rule.
    ///
    /// # Errors
    /// A [`RegistrarError`], saying what to answer; the bindings are then unchanged.
    pub fn apply(
        &mut self,
        now_ms: u64,
        register: &Register,
    ) -> Result<RegisterOutcome, RegistrarError> {
        let (live, expired): (Vec<Binding>, Vec<Binding>) = self
            .list
            .iter()
            .cloned()
            .partition(|b| b.expires_at_ms > now_ms);
        let changes = match &register.contacts {
            Contacts::Fetch => None,
            Contacts::Wildcard => Some(self.wildcard(&live, register)?),
            Contacts::List(list) if list.is_empty() => None,
            Contacts::List(list) if list.iter().any(|c| c.uri.trim() == "*") => {
                if list.len() > 1 {
                    return Err(RegistrarError::InvalidWildcard);
                }
                Some(self.wildcard(&live, register)?)
            }
            Contacts::List(list) => Some(self.update(now_ms, &live, register, list)?),
        };
        let changes = match changes {
            Some((changes, new_list)) => {
                self.list = new_list;
                changes
            }
            None => {
                self.list = live;
                Vec::new()
            }
        };
        Ok(RegisterOutcome { changes, expired })
    }

    fn wildcard(
        &self,
        live: &[Binding],
        register: &Register,
    ) -> Result<(Vec<BindingChange>, Vec<Binding>), RegistrarError> {
        if register.expires != Some(0) {
            return Err(RegistrarError::InvalidWildcard);
        }
        if live.iter().any(|b| out_of_order(b, register)) {
            return Err(RegistrarError::OutOfOrder);
        }
        let changes = live.iter().cloned().map(BindingChange::Removed).collect();
        Ok((changes, Vec::new()))
    }

    fn update(
        &self,
        now_ms: u64,
        live: &[Binding],
        register: &Register,
        list: &[ContactInput],
    ) -> Result<(Vec<BindingChange>, Vec<Binding>), RegistrarError> {
        let cfg = &self.config;
        if list.iter().any(|c| c.uri.trim().is_empty()) {
            return Err(RegistrarError::EmptyContact);
        }
        if list.iter().filter(|c| outbound_key(c).is_some()).count() > 1 {
            return Err(RegistrarError::MultipleRegIds);
        }
        let expiry = |c: &ContactInput| {
            c.expires
                .or(register.expires)
                .unwrap_or(cfg.default_expires_s)
        };
        if list
            .iter()
            .any(|c| expiry(c) != 0 && expiry(c) < cfg.min_expires_s)
        {
            return Err(RegistrarError::IntervalTooBrief {
                min_expires: cfg.min_expires_s,
            });
        }

        let mut working: Vec<Working> = live
            .iter()
            .enumerate()
            .map(|(i, b)| Working {
                binding: b.clone(),
                origin: Some(i),
                touched: false,
            })
            .collect();
        for c in list {
            let key = outbound_key(c);
            let matches = |w: &Working| {
                w.binding.uri == c.uri || (key.is_some() && w.binding.outbound_key() == key)
            };
            if working
                .iter()
                .any(|w| matches(w) && !w.touched && out_of_order(&w.binding, register))
            {
                return Err(RegistrarError::OutOfOrder);
            }
            let origin = working.iter().filter(|w| matches(w)).find_map(|w| w.origin);
            working.retain(|w| !matches(w));
            let expires_s = expiry(c).min(cfg.max_expires_s);
            if expires_s == 0 {
                continue;
            }
            working.push(Working {
                binding: Binding {
                    uri: c.uri.clone(),
                    instance: c.instance.clone(),
                    reg_id: key.map(|(_, id)| id),
                    q: c.q,
                    call_id: register.call_id.clone(),
                    cseq: register.cseq,
                    expires_at_ms: now_ms.saturating_add(u64::from(expires_s) * 1000),
                    path: register.path.clone(),
                    flow: register.flow.clone(),
                },
                origin,
                touched: true,
            });
        }
        if working.len() > cfg.max_bindings && working.len() > live.len() {
            return Err(RegistrarError::TooManyBindings {
                max: cfg.max_bindings,
            });
        }

        let mut changes = Vec::new();
        let mut kept = vec![false; live.len()];
        for w in &working {
            if let Some(i) = w.origin {
                kept[i] = true;
            }
            if !w.touched {
                continue;
            }
            changes.push(match w.origin.and_then(|i| live.get(i)) {
                Some(old) => BindingChange::Updated {
                    old: old.clone(),
                    new: w.binding.clone(),
                },
                None => BindingChange::Added(w.binding.clone()),
            });
        }
        for (b, kept) in live.iter().zip(kept) {
            if !kept {
                changes.push(BindingChange::Removed(b.clone()));
            }
        }
        Ok((changes, working.into_iter().map(|w| w.binding).collect()))
    }
}

/// The RFC 5626 flow key of a contact: `+sip.instance` and `reg-id`, both present.
fn outbound_key(c: &ContactInput) -> Option<(&str, u32)> {
    Some((c.instance.as_deref()?, c.reg_id?))
}

/// Same Call-ID and a CSeq not above the stored one (RFC 3261 §10.3 step 7).
fn out_of_order(b: &Binding, register: &Register) -> bool {
    b.call_id == register.call_id && register.cseq <= b.cseq
}
