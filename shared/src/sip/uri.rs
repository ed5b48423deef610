//! URIs: `sip:`/`sips:` URIs (RFC 3261 §19.1) with IPv6 references (RFC 5118), and any other
//! absolute URI (`tel:`, `urn:`, ...) kept as scheme + opaque text.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use super::scan::{is_unreserved, unquote, valid_escaped, Scanner};

/// One `;name[=value]` parameter. Names compare case-insensitively through [`Params`]; the value
/// is kept exactly as received (a quoted string keeps its quotes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    /// The parameter name as received.
    pub name: String,
    /// The value as received, `None` for a flag such as `lr`.
    pub value: Option<String>,
}

/// An ordered list of parameters (URI parameters or header parameters).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params(pub Vec<Param>);

impl Params {
    /// The first parameter named `name` (ASCII case-insensitive): `Some(None)` for a flag,
    /// `Some(Some(value))` with the raw value, `None` if absent.
    pub fn get(&self, name: &str) -> Option<Option<&str>> {
        self.0
            .iter()
            .find(|p| p.name.eq_ignore_ascii_case(name))
            .map(|p| p.value.as_deref())
    }

    /// The value of `name` with quotes and escapes removed (`None` if absent or a flag).
    pub fn get_unquoted(&self, name: &str) -> Option<std::borrow::Cow<'_, str>> {
        self.get(name).flatten().map(unquote)
    }

    /// True if a parameter `name` is present (flag or with a value).
    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Sets `name` to `value`, replacing the first parameter of that name or appending.
    pub fn set(&mut self, name: &str, value: Option<&str>) {
        let value = value.map(str::to_owned);
        match self
            .0
            .iter_mut()
            .find(|p| p.name.eq_ignore_ascii_case(name))
        {
            Some(p) => p.value = value,
            None => self.0.push(Param {
                name: name.to_owned(),
                value,
            }),
        }
    }

    /// Removes every parameter named `name`.
    pub fn remove(&mut self, name: &str) {
        self.0.retain(|p| !p.name.eq_ignore_ascii_case(name));
    }

    /// True if there are no parameters.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for Params {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for p in &self.0 {
            f.write_str(";")?;
            f.write_str(&p.name)?;
            if let Some(v) = &p.value {
                f.write_str("=")?;
                f.write_str(v)?;
            }
        }
        Ok(())
    }
}

/// Parses `*( SEMI generic-param )` header parameters (token [EQUAL (token / host / quoted)]).
pub(crate) fn parse_header_params(sc: &mut Scanner<'_>) -> Option<Params> {
    let mut params = Vec::new();
    while sc.eat_sep(b';') {
        let name = sc.token()?;
        let value = if sc.eat_sep(b'=') {
            Some(sc.param_value()?.to_owned())
        } else {
            None
        };
        params.push(Param {
            name: name.to_owned(),
            value,
        });
    }
    Some(Params(params))
}

/// A host: a domain name, an IPv4 address or an IPv6 reference (written `[...]`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host {
    /// A domain name as received (compare case-insensitively).
    Domain(String),
    /// An IPv4 address.
    Ipv4(Ipv4Addr),
    /// An IPv6 address (written as a reference `[...]`).
    Ipv6(Ipv6Addr),
}

impl Host {
    /// Parses a host: `[IPv6]`, dotted IPv4 or a hostname.
    pub fn parse(s: &str) -> Option<Host> {
        if let Some(inner) = s.strip_prefix('[') {
            let inner = inner.strip_suffix(']')?;
            return inner.parse().ok().map(Host::Ipv6);
        }
        if let Ok(v4) = s.parse::<Ipv4Addr>() {
            return Some(Host::Ipv4(v4));
        }
        valid_hostname(s).then(|| Host::Domain(s.to_owned()))
    }

    /// True for 255.255.255.255, IPv4 multicast and IPv6 multicast addresses.
    pub fn is_broadcast_or_multicast(&self) -> bool {
        match self {
            Host::Ipv4(a) => a.is_broadcast() || a.is_multicast(),
            Host::Ipv6(a) => a.is_multicast(),
            Host::Domain(_) => false,
        }
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Domain(d) => f.write_str(d),
            Host::Ipv4(a) => write!(f, "{a}"),
            Host::Ipv6(a) => write!(f, "[{a}]"),
        }
    }
}

fn valid_hostname(s: &str) -> bool {
    let trimmed = s.strip_suffix('.').unwrap_or(s);
    if trimmed.is_empty() {
        return false;
    }
    let mut last = "";
    for label in trimmed.split('.') {
        let b = label.as_bytes();
        if b.is_empty()
            || b[0] == b'-'
            || b[b.len() - 1] == b'-'
            || !b
                .iter()
                .all(|c| c.is_ascii_alphanumeric() || *c == b'-' || *c == b'_')
        {
            return false;
        }
        last = label;
    }
    // toplabel = ALPHA ... : an all-numeric name that is not an IPv4 address is invalid.
    last.as_bytes().first().is_some_and(|c| !c.is_ascii_digit())
}

/// Parses `host [ ":" port ]` where the host ends at the first byte not valid in a host.
/// Used for Via sent-by; the port may be surrounded by SWS as COLON allows.
pub(crate) fn parse_hostport(sc: &mut Scanner<'_>) -> Option<(Host, Option<u16>)> {
    let start = sc.pos();
    let host = if sc.peek() == Some(b'[') {
        sc.take_while(|b| b != b']')?;
        if !sc.eat(b']') {
            return None;
        }
        sc.slice(start, sc.pos())?
    } else {
        sc.take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))?
    };
    let host = Host::parse(host)?;
    let port = if sc.eat_sep(b':') {
        Some(parse_port(sc.take_while(|b| b.is_ascii_digit())?)?)
    } else {
        None
    };
    Some((host, port))
}

fn parse_port(s: &str) -> Option<u16> {
    if s.is_empty() || s.len() > 5 {
        return None;
    }
    s.parse().ok()
}

/// A `sip:` or `sips:` URI. The user, password, parameters and headers keep their %-escapes
/// exactly as received, so writing the URI back gives the same text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipUri {
    /// `sips:` rather than `sip:`.
    pub secure: bool,
    /// The user part, %-escapes preserved.
    pub user: Option<String>,
    /// The password part, %-escapes preserved (deprecated by RFC 3261 but grammatical).
    pub password: Option<String>,
    /// The host.
    pub host: Host,
    /// The port, if given.
    pub port: Option<u16>,
    /// URI parameters (`;transport=ws;lr`).
    pub params: Params,
    /// URI headers (`?Route=%3Csip:x%3E`), name and value as received.
    pub headers: Vec<(String, String)>,
}

impl SipUri {
    /// A plain `sip:host` URI.
    pub fn new(host: Host) -> Self {
        SipUri {
            secure: false,
            user: None,
            password: None,
            host,
            port: None,
            params: Params::default(),
            headers: Vec::new(),
        }
    }

    /// The user part with %-escapes decoded to bytes (`%00` stays a NUL byte; nothing is cut).
    pub fn user_unescaped(&self) -> Option<Vec<u8>> {
        self.user.as_deref().map(percent_decode)
    }

    /// The `transport` URI parameter, if any.
    pub fn transport(&self) -> Option<&str> {
        self.params.get("transport").flatten()
    }

    /// Parses the part after `sip:`/`sips:`.
    fn parse_rest(secure: bool, rest: &str) -> Option<SipUri> {
        let mut rest = rest;
        let mut user = None;
        let mut password = None;
        if let Some(at) = rest.find('@') {
            let userinfo = &rest[..at];
            let (u, p) = match userinfo.find(':') {
                Some(c) => (&userinfo[..c], Some(&userinfo[c + 1..])),
                None => (userinfo, None),
            };
            let user_ok = |b: u8| {
                is_unreserved(b)
                    || matches!(b, b'&' | b'=' | b'+' | b'$' | b',' | b';' | b'?' | b'/')
            };
            let pass_ok = |b: u8| is_unreserved(b) || matches!(b, b'&' | b'=' | b'+' | b'$' | b',');
            if !u.is_empty()
                && valid_escaped(u, user_ok)
                && p.is_none_or(|p| valid_escaped(p, pass_ok))
            {
                user = Some(u.to_owned());
                password = p.map(str::to_owned);
                rest = &rest[at + 1..];
            }
        }
        let mut sc = Scanner::new(rest);
        let start = sc.pos();
        if sc.peek() == Some(b'[') {
            sc.take_while(|b| b != b']')?;
            if !sc.eat(b']') {
                return None;
            }
        } else {
            sc.take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))?;
        }
        let host = Host::parse(sc.slice(start, sc.pos())?)?;
        let port = if sc.eat(b':') {
            Some(parse_port(sc.take_while(|b| b.is_ascii_digit())?)?)
        } else {
            None
        };
        let param_ok =
            |b: u8| is_unreserved(b) || matches!(b, b'[' | b']' | b'/' | b':' | b'&' | b'+' | b'$');
        let mut params = Vec::new();
        while sc.eat(b';') {
            let name = sc.take_while(|b| b != b'=' && b != b';' && b != b'?')?;
            if name.is_empty() || !valid_escaped(name, param_ok) {
                return None;
            }
            let value = if sc.eat(b'=') {
                let v = sc.take_while(|b| b != b';' && b != b'?')?;
                if v.is_empty() || !valid_escaped(v, param_ok) {
                    return None;
                }
                Some(v.to_owned())
            } else {
                None
            };
            params.push(Param {
                name: name.to_owned(),
                value,
            });
        }
        let mut headers = Vec::new();
        if sc.eat(b'?') {
            let hnv_ok = |b: u8| {
                is_unreserved(b) || matches!(b, b'[' | b']' | b'/' | b'?' | b':' | b'+' | b'$')
            };
            loop {
                let name = sc.take_while(|b| b != b'=' && b != b'&')?;
                if name.is_empty() || !valid_escaped(name, hnv_ok) || !sc.eat(b'=') {
                    return None;
                }
                let value = sc.take_while(|b| b != b'&')?;
                if !valid_escaped(value, hnv_ok) {
                    return None;
                }
                headers.push((name.to_owned(), value.to_owned()));
                if !sc.eat(b'&') {
                    break;
                }
            }
        }
        if !sc.at_end() {
            return None;
        }
        Some(SipUri {
            secure,
            user,
            password,
            host,
            port,
            params: Params(params),
            headers,
        })
    }
}

impl fmt::Display for SipUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.secure { "sips:" } else { "sip:" })?;
        if let Some(u) = &self.user {
            f.write_str(u)?;
            if let Some(p) = &self.password {
                write!(f, ":{p}")?;
            }
            f.write_str("@")?;
        }
        write!(f, "{}", self.host)?;
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        write!(f, "{}", self.params)?;
        for (i, (n, v)) in self.headers.iter().enumerate() {
            f.write_str(if i == 0 { "?" } else { "&" })?;
            write!(f, "{n}={v}")?;
        }
        Ok(())
    }
}

/// Any absolute URI that is not `sip:`/`sips:` (`tel:+1...`, `urn:...`), kept as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AbsoluteUri {
    /// The scheme as received (compare case-insensitively).
    pub scheme: String,
    /// Everything after the first `:`.
    pub rest: String,
}

/// A URI: SIP/SIPS, parsed, or another scheme, kept as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Uri {
    /// `sip:` or `sips:`.
    Sip(SipUri),
    /// Any other absolute URI.
    Other(AbsoluteUri),
}

impl Uri {
    /// Parses a complete URI (no surrounding whitespace or brackets).
    pub fn parse(s: &str) -> Option<Uri> {
        let colon = s.find(':')?;
        let scheme = &s[..colon];
        let rest = &s[colon + 1..];
        let sb = scheme.as_bytes();
        if sb.is_empty()
            || !sb[0].is_ascii_alphabetic()
            || !sb
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
        {
            return None;
        }
        if scheme.eq_ignore_ascii_case("sip") {
            return SipUri::parse_rest(false, rest).map(Uri::Sip);
        }
        if scheme.eq_ignore_ascii_case("sips") {
            return SipUri::parse_rest(true, rest).map(Uri::Sip);
        }
        let uric = |b: u8| {
            is_unreserved(b)
                || matches!(
                    b,
                    b';' | b'/'
                        | b'?'
                        | b':'
                        | b'@'
                        | b'&'
                        | b'='
                        | b'+'
                        | b'$'
                        | b','
                        | b'['
                        | b']'
                        | b'#'
                )
        };
        if rest.is_empty() || !valid_escaped(rest, uric) {
            return None;
        }
        Some(Uri::Other(AbsoluteUri {
            scheme: scheme.to_owned(),
            rest: rest.to_owned(),
        }))
    }

    /// The SIP URI, if this is one.
    pub fn as_sip(&self) -> Option<&SipUri> {
        match self {
            Uri::Sip(u) => Some(u),
            Uri::Other(_) => None,
        }
    }

    /// True for `sip:` and `sips:` URIs.
    pub fn is_sip(&self) -> bool {
        matches!(self, Uri::Sip(_))
    }
}

impl fmt::Display for Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Uri::Sip(u) => write!(f, "{u}"),
            Uri::Other(o) => write!(f, "{}:{}", o.scheme, o.rest),
        }
    }
}

impl std::str::FromStr for Uri {
    type Err = super::SipError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uri::parse(s).ok_or(super::SipError::BadRequestUri)
    }
}

/// Undoes `%HH` escapes; a `%` not followed by two hex digits stays as it is.
pub(crate) fn percent_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = |c: u8| (c as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}
