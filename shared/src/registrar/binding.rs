//! The plain data going in (a REGISTER's contacts) and kept (bindings).

use std::fmt;

use serde::{Deserialize, Serialize};

/// A q-value (RFC 3261 §20.10): a preference from 0 to 1 in thousandths.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u16", into = "u16")]
pub struct Q(u16);

impl Q {
    /// The highest preference, 1.0.
    pub const MAX: Q = Q(1000);

    /// `thousandths` / 1000, if at most 1000.
    pub fn from_thousandths(thousandths: u16) -> Option<Q> {
        (thousandths <= 1000).then_some(Q(thousandths))
    }

    /// The value in thousandths.
    pub fn thousandths(self) -> u16 {
        self.0
    }

    /// Parses `qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )`.
    pub fn parse(s: &str) -> Option<Q> {
        let (int, frac) = match s.split_once('.') {
            Some((i, f)) => (i, f),
            None => (s, ""),
        };
        if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let mut thousandths: u16 = 0;
        for (i, b) in frac.bytes().enumerate() {
            thousandths += u16::from(b - b'0') * [100, 10, 1][i];
        }
        match int {
            "0" => Some(Q(thousandths)),
            "1" if thousandths == 0 => Some(Q(1000)),
            _ => None,
        }
    }
}

impl TryFrom<u16> for Q {
    type Error = &'static str;

    fn try_from(thousandths: u16) -> Result<Self, Self::Error> {
        Q::from_thousandths(thousandths).ok_or("q above 1000 thousandths")
    }
}

impl From<Q> for u16 {
    fn from(q: Q) -> u16 {
        q.0
    }
}

impl fmt::Display for Q {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 >= 1000 {
            return f.write_str("1");
        }
        let s = format!("0.{:03}", self.0);
        f.write_str(s.trim_end_matches('0').trim_end_matches('.'))
    }
}

/// One contact of a REGISTER, as the SIP core parsed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactInput {
    /// The contact URI, compared as an exact string (the SIP core normalizes it if it wants
    /// RFC 3261 §19.1.4 equivalence).
    pub uri: String,
    /// The `expires` contact parameter, in seconds.
    pub expires: Option<u32>,
    /// The `q` contact parameter.
    pub q: Option<Q>,
    /// The `+sip.instance` contact parameter (RFC 5626), as received.
    pub instance: Option<String>,
    /// The `reg-id` contact parameter (RFC 5626); ignored without `instance`.
    pub reg_id: Option<u32>,
}

impl ContactInput {
    /// A contact with only a URI.
    pub fn new(uri: impl Into<String>) -> Self {
        ContactInput {
            uri: uri.into(),
            expires: None,
            q: None,
            instance: None,
            reg_id: None,
        }
    }
}

/// What a REGISTER asks for, by its Contact headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Contacts {
    /// No Contact header: a query; nothing changes.
    Fetch,
    /// `Contact: *`: remove every binding (only valid with `Expires: 0`).
    Wildcard,
    /// These contacts, to add, refresh or (with expiry 0) remove. A `*` among them is refused.
    List(Vec<ContactInput>),
}

/// A REGISTER for one address-of-record, as the SIP core parsed it (after authentication).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Register {
    /// The Call-ID.
    pub call_id: String,
    /// The CSeq number.
    pub cseq: u32,
    /// The `Expires` header, in seconds: the default for contacts without an `expires`.
    pub expires: Option<u32>,
    /// The contacts.
    pub contacts: Contacts,
    /// The `Path` header values (RFC 3327), kept with the new bindings, opaque here.
    pub path: Vec<String>,
    /// The flow (connection) the request arrived on, kept with the new bindings, opaque here:
    /// e.g. the WebSocket's id, so requests for the AOR go back over the same connection.
    pub flow: Option<String>,
}

/// A registered contact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Binding {
    /// The contact URI.
    pub uri: String,
    /// `+sip.instance`, if given.
    pub instance: Option<String>,
    /// `reg-id`, if given together with `instance`.
    pub reg_id: Option<u32>,
    /// `q`, if given.
    pub q: Option<Q>,
    /// The Call-ID of the REGISTER that last set this binding.
    pub call_id: String,
    /// Its CSeq.
    pub cseq: u32,
    /// When the binding expires, in the caller's milliseconds: it is gone at that instant.
    pub expires_at_ms: u64,
    /// The `Path` of the REGISTER that last set it.
    pub path: Vec<String>,
    /// The flow of the REGISTER that last set it.
    pub flow: Option<String>,
}

impl Binding {
    /// Seconds left at `now_ms`, rounded up: the `expires` contact parameter of a 200 OK.
    pub fn expires_in_s(&self, now_ms: u64) -> u32 {
        let left = self.expires_at_ms.saturating_sub(now_ms);
        u32::try_from(left.div_ceil(1000)).unwrap_or(u32::MAX)
    }

    /// The RFC 5626 flow key, when both `+sip.instance` and `reg-id` are present.
    pub(crate) fn outbound_key(&self) -> Option<(&str, u32)> {
        Some((self.instance.as_deref()?, self.reg_id?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn q_values_parse_and_print() {
        for (s, t, back) in [
            ("0", 0, "0"),
            ("0.5", 500, "0.5"),
            ("0.25", 250, "0.25"),
            ("0.001", 1, "0.001"),
            ("1", 1000, "1"),
            ("1.000", 1000, "1"),
        ] {
            let q = Q::parse(s).unwrap();
            assert_eq!(q.thousandths(), t, "{s}");
            assert_eq!(q.to_string(), back);
        }
        for bad in ["", "2", "1.5", "0.1234", "-0", "0.a", "00.5", ".5"] {
            assert_eq!(Q::parse(bad), None, "{bad}");
        }
        assert_eq!(Q::from_thousandths(1001), None);
    }
}
