//! Typed header values: Via, name-addr (From/To/Contact/Route), CSeq, media types, auth.

use std::borrow::Cow;
use std::fmt;
use std::net::IpAddr;

use super::method::Method;
use super::scan::{is_token_byte, is_ws, quote, unquote, Scanner};
use super::uri::{parse_header_params, parse_hostport, Host, Params, Uri};

/// Parses a comma-separated list with `f`, tolerating empty elements (`a,,b`, a trailing comma).
pub(crate) fn parse_list<'a, T>(
    value: &'a str,
    mut f: impl FnMut(&mut Scanner<'a>) -> Option<T>,
) -> Option<Vec<T>> {
    let mut sc = Scanner::new(value);
    let mut out = Vec::new();
    loop {
        sc.skip_ws();
        while sc.eat(b',') {
            sc.skip_ws();
        }
        if sc.at_end() {
            break;
        }
        out.push(f(&mut sc)?);
        sc.skip_ws();
        if sc.at_end() {
            break;
        }
        if !sc.eat(b',') {
            return None;
        }
    }
    (!out.is_empty()).then_some(out)
}

/// One Via value (RFC 3261 §20.42): `SIP/2.0/transport sent-by *(;param)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via {
    /// The transport token as received (`UDP`, `TCP`, `TLS`, `WS`, `WSS`, or anything else).
    pub transport: String,
    /// The sent-by host (IPv6 as a reference, RFC 5118).
    pub host: Host,
    /// The sent-by port.
    pub port: Option<u16>,
    /// Via parameters (`branch`, `received`, `rport`, ...), values as received.
    pub params: Params,
}

impl Via {
    /// A Via with a `branch` parameter.
    pub fn new(transport: &str, host: Host, port: Option<u16>, branch: &str) -> Self {
        let mut params = Params::default();
        params.set("branch", Some(branch));
        Via {
            transport: transport.to_owned(),
            host,
            port,
            params,
        }
    }

    /// The `branch` parameter.
    pub fn branch(&self) -> Option<&str> {
        self.params.get("branch").flatten()
    }

    /// The `received` parameter as received (IPv4, IPv6 with or without brackets).
    pub fn received(&self) -> Option<&str> {
        self.params.get("received").flatten()
    }

    /// The `received` parameter as an address, if it parses.
    pub fn received_ip(&self) -> Option<IpAddr> {
        let r = self.received()?;
        let r = r
            .strip_prefix('[')
            .and_then(|r| r.strip_suffix(']'))
            .unwrap_or(r);
        r.parse().ok()
    }

    /// `rport` (RFC 3581): `None` if absent, `Some(None)` if a bare flag, `Some(Some(port))`
    /// if filled in. A non-numeric value reads as the flag.
    pub fn rport(&self) -> Option<Option<u16>> {
        self.params
            .get("rport")
            .map(|v| v.and_then(|v| v.parse().ok()))
    }

    /// The `maddr` parameter.
    pub fn maddr(&self) -> Option<&str> {
        self.params.get("maddr").flatten()
    }

    /// Parses a single Via value from the scanner (stops before `,` or the end).
    pub(crate) fn parse(sc: &mut Scanner<'_>) -> Option<Via> {
        let name = sc.token()?;
        if !sc.eat_sep(b'/') {
            return None;
        }
        let version = sc.token()?;
        if !sc.eat_sep(b'/') {
            return None;
        }
        let transport = sc.token()?;
        if !name.eq_ignore_ascii_case("SIP") || version != "2.0" {
            return None;
        }
        if !sc.skip_ws() {
            return None;
        }
        let (host, port) = parse_hostport(sc)?;
        let params = parse_header_params(sc)?;
        for p in &params.0 {
            if p.name.eq_ignore_ascii_case("branch") && p.value.is_none() {
                return None;
            }
        }
        Some(Via {
            transport: transport.to_owned(),
            host,
            port,
            params,
        })
    }
}

impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SIP/2.0/{} {}", self.transport, self.host)?;
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        write!(f, "{}", self.params)
    }
}

/// A name-addr or addr-spec with header parameters: the value of From, To, Contact, Route,
/// Record-Route (RFC 3261 §20.10, §20.20, §20.39).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameAddr {
    /// The display name, unquoted and unescaped (a token sequence is kept as written).
    pub display_name: Option<String>,
    /// The URI.
    pub uri: Uri,
    /// Header parameters after the URI (`tag`, `expires`, `+sip.instance`, `reg-id`, `q`, ...).
    pub params: Params,
}

impl NameAddr {
    /// A name-addr with just a URI.
    pub fn new(uri: Uri) -> Self {
        NameAddr {
            display_name: None,
            uri,
            params: Params::default(),
        }
    }

    /// The `tag` parameter (From/To).
    pub fn tag(&self) -> Option<&str> {
        self.params.get("tag").flatten()
    }

    /// The `expires` parameter (Contact), if numeric.
    pub fn expires(&self) -> Option<u32> {
        self.params
            .get("expires")
            .flatten()
            .and_then(|v| v.parse().ok())
    }

    /// The `+sip.instance` parameter (RFC 5626), unquoted, e.g. `<urn:uuid:...>`.
    pub fn sip_instance(&self) -> Option<Cow<'_, str>> {
        self.params.get_unquoted("+sip.instance")
    }

    /// The `reg-id` parameter (RFC 5626), if numeric.
    pub fn reg_id(&self) -> Option<u32> {
        self.params
            .get("reg-id")
            .flatten()
            .and_then(|v| v.parse().ok())
    }

    /// Parses one name-addr or addr-spec (`angle_required` for Route/Record-Route).
    pub(crate) fn parse(sc: &mut Scanner<'_>, angle_required: bool) -> Option<NameAddr> {
        sc.skip_ws();
        let mut display_name = None;
        let angle;
        match sc.peek()? {
            b'"' => {
                let q = sc.quoted()?;
                display_name = Some(unquote(q).into_owned());
                sc.skip_ws();
                angle = true;
            }
            b'<' => angle = true,
            _ => {
                let start = sc.pos();
                let mut end = start;
                let mut found = false;
                while sc.token().is_some() {
                    end = sc.pos();
                    sc.skip_ws();
                    if sc.peek() == Some(b'<') {
                        found = true;
                        break;
                    }
                }
                if found {
                    display_name = Some(sc.slice(start, end)?.to_owned());
                    angle = true;
                } else {
                    sc.set_pos(start);
                    angle = false;
                }
            }
        }
        if angle_required && !angle {
            return None;
        }
        let uri = if angle {
            if !sc.eat(b'<') {
                return None;
            }
            let text = sc.take_while(|b| b != b'>')?;
            if !sc.eat(b'>') {
                return None;
            }
            Uri::parse(text)?
        } else {
            let text = sc.take_while(|b| !matches!(b, b';' | b',' | b' ' | b'\t'))?;
            // RFC 3261 §20.10: a URI with `,`, `;` or `?` must be in angle brackets.
            if text.contains('?') {
                return None;
            }
            Uri::parse(text)?
        };
        let params = parse_header_params(sc)?;
        Some(NameAddr {
            display_name,
            uri,
            params,
        })
    }

    /// Parses a complete header value holding exactly one name-addr.
    pub(crate) fn parse_single(value: &str) -> Option<NameAddr> {
        let mut sc = Scanner::new(value);
        let na = NameAddr::parse(&mut sc, false)?;
        sc.skip_ws();
        sc.at_end().then_some(na)
    }
}

impl fmt::Display for NameAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(d) = &self.display_name {
            write!(f, "{} ", quote(d))?;
        }
        write!(f, "<{}>{}", self.uri, self.params)
    }
}

/// The Contact header(s) of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Contacts {
    /// `Contact: *` (REGISTER: remove all bindings).
    Any,
    /// Zero or more contacts.
    List(Vec<NameAddr>),
}

/// A CSeq value: sequence number and method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CSeq {
    /// The sequence number (below 2^31 when sent, up to 2^32-1 accepted).
    pub seq: u32,
    /// The method.
    pub method: Method,
}

impl CSeq {
    pub(crate) fn parse(value: &str) -> Option<CSeq> {
        let mut sc = Scanner::new(value);
        let digits = sc.take_while(|b| b.is_ascii_digit())?;
        if digits.is_empty() {
            return None;
        }
        let seq = digits.parse::<u32>().ok()?;
        if !sc.skip_ws() {
            return None;
        }
        let method = Method::parse(sc.token()?)?;
        sc.skip_ws();
        sc.at_end().then_some(CSeq { seq, method })
    }
}

impl fmt::Display for CSeq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.seq, self.method)
    }
}

/// A media type such as `application/sdp` with parameters (Content-Type, Accept).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaType {
    /// The type (`application`), as received.
    pub ty: String,
    /// The subtype (`sdp`), as received.
    pub subtype: String,
    /// Parameters (`charset=...`).
    pub params: Params,
}

impl MediaType {
    /// True if this is `ty/subtype` (ASCII case-insensitive).
    pub fn is(&self, ty: &str, subtype: &str) -> bool {
        self.ty.eq_ignore_ascii_case(ty) && self.subtype.eq_ignore_ascii_case(subtype)
    }

    pub(crate) fn parse_sc(sc: &mut Scanner<'_>) -> Option<MediaType> {
        let ty = sc.token()?;
        if !sc.eat_sep(b'/') {
            return None;
        }
        let subtype = sc.token()?;
        let params = parse_header_params(sc)?;
        Some(MediaType {
            ty: ty.to_owned(),
            subtype: subtype.to_owned(),
            params,
        })
    }

    pub(crate) fn parse(value: &str) -> Option<MediaType> {
        let mut sc = Scanner::new(value);
        let m = MediaType::parse_sc(&mut sc)?;
        sc.skip_ws();
        sc.at_end().then_some(m)
    }
}

impl fmt::Display for MediaType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}{}", self.ty, self.subtype, self.params)
    }
}

/// One challenge (WWW-/Proxy-Authenticate) or credentials (Authorization/Proxy-Authorization):
/// a scheme and its `name=value` parameters (RFC 3261 §20.7, §20.27, §20.44; RFC 8760).
///
/// `Debug` shows only the scheme and parameter names: credentials never reach a log.
#[derive(Clone, PartialEq, Eq)]
pub struct Auth {
    /// The scheme (`Digest`, or any other token).
    pub scheme: String,
    /// Parameters in order, values as received (quoted strings keep their quotes).
    pub params: Vec<(String, String)>,
    /// A bare token68 (`Basic dXNlcg==`) instead of parameters.
    pub token68: Option<String>,
}

/// Credentials from Authorization / Proxy-Authorization.
pub type Credentials = Auth;
/// A challenge from WWW-Authenticate / Proxy-Authenticate.
pub type Challenge = Auth;

impl Auth {
    /// True for the Digest scheme.
    pub fn is_digest(&self) -> bool {
        self.scheme.eq_ignore_ascii_case("Digest")
    }

    /// A parameter's value, unquoted (`realm`, `nonce`, `username`, `uri`, `response`,
    /// `algorithm`, `qop`, `nc`, `cnonce`, `opaque`, `stale`, ...).
    pub fn param(&self, name: &str) -> Option<Cow<'_, str>> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| unquote(v))
    }

    /// Parses every challenge/credential in one header value.
    pub(crate) fn parse_all(value: &str) -> Option<Vec<Auth>> {
        let mut sc = Scanner::new(value);
        let mut out = Vec::new();
        loop {
            sc.skip_ws();
            while sc.eat(b',') {
                sc.skip_ws();
            }
            if sc.at_end() {
                break;
            }
            let scheme = sc.token()?;
            let mut auth = Auth {
                scheme: scheme.to_owned(),
                params: Vec::new(),
                token68: None,
            };
            if !sc.skip_ws() {
                if sc.at_end() {
                    out.push(auth);
                    break;
                }
                if !sc.eat(b',') {
                    return None;
                }
                out.push(auth);
                continue;
            }
            // token68 (e.g. Basic credentials): a run of base64 chars, '=' padding, then end or ','.
            let save = sc.pos();
            let t = sc.take_while(|b| {
                b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
            })?;
            sc.take_while(|b| b == b'=')?;
            let after = sc.pos();
            sc.skip_ws();
            if !t.is_empty() && (sc.at_end() || sc.peek() == Some(b',')) {
                auth.token68 = Some(sc.slice(save, after)?.to_owned());
                out.push(auth);
                continue;
            }
            sc.set_pos(save);
            loop {
                let name = sc.token()?;
                if !sc.eat_sep(b'=') {
                    return None;
                }
                let value = sc.param_value()?;
                auth.params.push((name.to_owned(), value.to_owned()));
                sc.skip_ws();
                if sc.at_end() {
                    break;
                }
                if !sc.eat(b',') {
                    return None;
                }
                sc.skip_ws();
                while sc.eat(b',') {
                    sc.skip_ws();
                }
                if sc.at_end() {
                    break;
                }
                // `token =` continues this one; `token SP token` starts a new one.
                let look = sc.pos();
                sc.token()?;
                let is_param = sc.eat_sep(b'=');
                sc.set_pos(look);
                if !is_param {
                    break;
                }
            }
            out.push(auth);
        }
        (!out.is_empty()).then_some(out)
    }
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.params.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("Auth")
            .field("scheme", &self.scheme)
            .field("params", &names)
            .field("token68", &self.token68.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl fmt::Display for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.scheme)?;
        if let Some(t) = &self.token68 {
            return write!(f, " {t}");
        }
        for (i, (n, v)) in self.params.iter().enumerate() {
            write!(f, "{}{n}={v}", if i == 0 { " " } else { ", " })?;
        }
        Ok(())
    }
}

/// True if `value` is a valid Call-ID (`word ["@" word]`).
pub(crate) fn valid_call_id(value: &str) -> bool {
    let mut parts = value.splitn(2, '@');
    let ok = |w: &str| !w.is_empty() && w.bytes().all(super::scan::is_word_byte);
    parts.next().is_some_and(ok) && parts.next().is_none_or(ok)
}

/// Parses a whole-number header (`1*DIGIT`, LWS around allowed), saturating at `u32::MAX`.
pub(crate) fn parse_delta(value: &str, saturate: bool) -> Option<u32> {
    let v = value.trim_matches(|c: char| c == ' ' || c == '\t');
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    match v.parse::<u32>() {
        Ok(n) => Some(n),
        Err(_) if saturate => Some(u32::MAX),
        Err(_) => None,
    }
}

/// True if `s` is a token with no whitespace.
pub(crate) fn is_option_tag(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_token_byte) && !s.bytes().any(is_ws)
}
