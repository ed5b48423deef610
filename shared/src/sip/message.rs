//! The SIP message: parsing from one WebSocket message, typed access, edits, serialization.

use std::fmt::Write as _;

use super::error::SipError;
use super::header::{Header, HeaderName, Headers};
use super::method::Method;
use super::scan::Scanner;
use super::typed::{
    parse_delta, parse_list, valid_call_id, Auth, CSeq, Challenge, Contacts, Credentials,
    MediaType, NameAddr, Via,
};
use super::uri::Uri;

/// The largest message the edge accepts, in bytes (start line, headers and body). Larger
/// requests are answered with 513 "Message Too Large". A browser's INVITE with a full set of
/// ICE candidates is around 5-10 KB.
pub const MAX_MESSAGE_LEN: usize = 65_535;

/// The first line of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartLine {
    /// `Method SP Request-URI SP SIP/2.0`.
    Request {
        /// The method.
        method: Method,
        /// The Request-URI.
        uri: Uri,
    },
    /// `SIP/2.0 SP Status-Code SP Reason-Phrase`.
    Response {
        /// The status code, 100..=699.
        status: u16,
        /// The reason phrase as received (may be empty).
        reason: String,
    },
}

/// A SIP request or response.
///
/// Headers keep their received text (unfolded and trimmed) and order; typed views are parsed on
/// demand by the accessors. The body is raw bytes. Every parsed message carries exactly one
/// Content-Length equal to its body length (one is added at the end if the message had none, as
/// is normal over WebSocket), and [`SipMessage::to_bytes`] always writes the true length, so
/// the output is valid on a stream transport (TCP/TLS to the upstream) too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipMessage {
    /// The request or status line.
    pub start_line: StartLine,
    /// The headers, in order.
    pub headers: Headers,
    body: Vec<u8>,
}

fn eq_version(v: &str) -> Result<(), SipError> {
    if v.eq_ignore_ascii_case("SIP/2.0") {
        return Ok(());
    }
    // SIP-Version = "SIP" "/" 1*DIGIT "." 1*DIGIT
    let digits = v
        .get(..4)
        .filter(|p| p.eq_ignore_ascii_case("SIP/"))
        .and_then(|_| v.get(4..));
    let well_formed = digits.is_some_and(|d| {
        d.split_once('.').is_some_and(|(a, b)| {
            !a.is_empty()
                && !b.is_empty()
                && a.bytes().all(|c| c.is_ascii_digit())
                && b.bytes().all(|c| c.is_ascii_digit())
        })
    });
    Err(if well_formed {
        SipError::VersionNotSupported
    } else {
        SipError::BadRequestLine
    })
}

/// True if the bytes start like a response (`SIP/`), so the caller knows not to answer them.
pub(crate) fn looks_like_response(bytes: &[u8]) -> bool {
    let mut b = bytes;
    while let Some(rest) = b.strip_prefix(b"\r\n") {
        b = rest;
    }
    b.len() >= 4 && b[..4].eq_ignore_ascii_case(b"SIP/")
}

fn find_head_end(b: &[u8]) -> Option<usize> {
    b.windows(4).position(|w| w == b"\r\n\r\n")
}

fn parse_start_line(line: &str) -> Result<StartLine, SipError> {
    if line.len() >= 4 && line.as_bytes()[..4].eq_ignore_ascii_case(b"SIP/") {
        let (version, rest) = line.split_once(' ').ok_or(SipError::BadStatusLine)?;
        eq_version(version).map_err(|e| match e {
            SipError::VersionNotSupported => e,
            _ => SipError::BadStatusLine,
        })?;
        let (code, reason) = match rest.split_once(' ') {
            Some((c, r)) => (c, r),
            None => (rest, ""),
        };
        if code.len() != 3 || !code.bytes().all(|c| c.is_ascii_digit()) {
            return Err(SipError::BadStatusLine);
        }
        let status: u16 = code.parse().map_err(|_| SipError::BadStatusLine)?;
        if !(100..=699).contains(&status) {
            return Err(SipError::BadStatusLine);
        }
        return Ok(StartLine::Response {
            status,
            reason: reason.to_owned(),
        });
    }
    let mut parts = line.split(' ');
    let (Some(m), Some(u), Some(v), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(SipError::BadRequestLine);
    };
    let method = Method::parse(m).ok_or(SipError::BadRequestLine)?;
    eq_version(v)?;
    let uri = Uri::parse(u).ok_or(SipError::BadRequestUri)?;
    if let Uri::Sip(s) = &uri {
        if !s.headers.is_empty() {
            return Err(SipError::BadRequestUri);
        }
    }
    Ok(StartLine::Request { method, uri })
}

fn is_header_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(super::scan::is_token_byte)
}

impl SipMessage {
    /// Parses one whole SIP message (one WebSocket message, RFC 7118 §5).
    ///
    /// Leading CRLFs are skipped (RFC 3261 §7.5). The header section must be UTF-8 with CRLF line
    /// ends and end with an empty line. Bytes beyond Content-Length are ignored (datagram rule,
    /// RFC 3261 §18.3; RFC 4475 §3.1.1.8); a Content-Length larger than what is there is an error,
    /// since over WebSocket nothing more will come. Header values are not checked here beyond
    /// Content-Length: the typed accessors and [`edge_verdict`](super::edge_verdict) do that.
    pub fn parse(bytes: &[u8]) -> Result<SipMessage, SipError> {
        if bytes.len() > MAX_MESSAGE_LEN {
            return Err(SipError::TooLarge { len: bytes.len() });
        }
        let mut start = 0;
        while bytes.get(start..start + 2) == Some(b"\r\n") {
            start += 2;
        }
        let b = &bytes[start..];
        if b.is_empty() {
            return Err(SipError::Empty);
        }
        let head_len = find_head_end(b).ok_or(SipError::MissingHeaderEnd)?;
        let head = std::str::from_utf8(&b[..head_len]).map_err(|_| SipError::NotUtf8)?;
        let rest = &b[head_len + 4..];

        let mut lines = head.split("\r\n");
        let first = lines.next().unwrap_or("");
        if first.contains(['\r', '\n']) {
            return Err(SipError::BadLineEnding);
        }
        let start_line = parse_start_line(first)?;

        let mut headers: Vec<Header> = Vec::with_capacity(16);
        let mut saw_header = false;
        for line in lines {
            if line.contains(['\r', '\n']) {
                return Err(SipError::BadLineEnding);
            }
            let bytes = line.as_bytes();
            if bytes.first().is_some_and(|c| *c == b' ' || *c == b'\t') {
                // Folded continuation (LWS): joins the previous header with one space.
                let Some(h) = headers.last_mut().filter(|_| saw_header) else {
                    return Err(SipError::BadHeaderLine);
                };
                let cont = line.trim_matches(|c| c == ' ' || c == '\t');
                if !cont.is_empty() {
                    let trimmed = h.value.trim_end_matches([' ', '\t']).len();
                    h.value.truncate(trimmed);
                    if !h.value.is_empty() {
                        h.value.push(' ');
                    }
                    h.value.push_str(cont);
                }
                continue;
            }
            let (name, value) = line.split_once(':').ok_or(SipError::BadHeaderLine)?;
            let name = name.trim_end_matches([' ', '\t']);
            if !is_header_name(name) {
                return Err(SipError::BadHeaderLine);
            }
            headers.push(Header {
                name: HeaderName::parse(name),
                value: value.trim_matches([' ', '\t']).to_owned(),
            });
            saw_header = true;
        }

        let mut headers = Headers(headers);
        let body = match headers.count(&HeaderName::ContentLength) {
            0 => {
                headers.push(Header::new(
                    HeaderName::ContentLength,
                    rest.len().to_string(),
                ));
                rest.to_vec()
            }
            1 => {
                let v = headers.get(&HeaderName::ContentLength).unwrap_or("");
                let declared = parse_delta(v, false).ok_or(SipError::BadHeader {
                    name: "Content-Length",
                })?;
                if declared as usize > rest.len() {
                    return Err(SipError::ContentLengthTooLarge {
                        declared,
                        actual: rest.len(),
                    });
                }
                // Held as the canonical decimal so that a re-parse gives an equal message.
                headers.set(HeaderName::ContentLength, declared.to_string());
                rest[..declared as usize].to_vec()
            }
            _ => {
                return Err(SipError::DuplicateHeader {
                    name: "Content-Length",
                })
            }
        };
        Ok(SipMessage {
            start_line,
            headers,
            body,
        })
    }

    /// An empty request (no headers, no body) to fill in.
    pub fn new_request(method: Method, uri: Uri) -> Self {
        SipMessage {
            start_line: StartLine::Request { method, uri },
            headers: Headers::default(),
            body: Vec::new(),
        }
    }

    /// An empty response (no headers, no body) to fill in. CR/LF in `reason` become spaces.
    pub fn new_response(status: u16, reason: &str) -> Self {
        SipMessage {
            start_line: StartLine::Response {
                status,
                reason: reason.replace(['\r', '\n'], " "),
            },
            headers: Headers::default(),
            body: Vec::new(),
        }
    }

    /// True for a request.
    pub fn is_request(&self) -> bool {
        matches!(self.start_line, StartLine::Request { .. })
    }

    /// The request's method (`None` for a response).
    pub fn method(&self) -> Option<&Method> {
        match &self.start_line {
            StartLine::Request { method, .. } => Some(method),
            StartLine::Response { .. } => None,
        }
    }

    /// The Request-URI (`None` for a response).
    pub fn request_uri(&self) -> Option<&Uri> {
        match &self.start_line {
            StartLine::Request { uri, .. } => Some(uri),
            StartLine::Response { .. } => None,
        }
    }

    /// The response's status code (`None` for a request).
    pub fn status(&self) -> Option<u16> {
        match &self.start_line {
            StartLine::Response { status, .. } => Some(*status),
            StartLine::Request { .. } => None,
        }
    }

    /// The body bytes (exactly Content-Length of them).
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    // ----- typed access -----

    fn single(&self, name: HeaderName) -> Result<Option<&str>, SipError> {
        let mut it = self.headers.get_all(&name);
        let first = it.next();
        if it.next().is_some() {
            return Err(SipError::DuplicateHeader {
                name: name.static_name(),
            });
        }
        Ok(first)
    }

    fn required(&self, name: HeaderName) -> Result<&str, SipError> {
        let n = name.static_name();
        self.single(name)?
            .ok_or(SipError::MissingHeader { name: n })
    }

    /// Every Via value, top first (across repeated and comma-separated headers).
    pub fn vias(&self) -> Result<Vec<Via>, SipError> {
        let mut out = Vec::new();
        for v in self.headers.get_all(&HeaderName::Via) {
            out.extend(parse_list(v, Via::parse).ok_or(SipError::BadHeader { name: "Via" })?);
        }
        Ok(out)
    }

    /// The top Via (error if there is none).
    pub fn top_via(&self) -> Result<Via, SipError> {
        let v = self
            .headers
            .get(&HeaderName::Via)
            .ok_or(SipError::MissingHeader { name: "Via" })?;
        let mut sc = Scanner::new(v);
        sc.skip_ws();
        Via::parse(&mut sc).ok_or(SipError::BadHeader { name: "Via" })
    }

    fn name_addr(&self, name: HeaderName) -> Result<NameAddr, SipError> {
        let n = name.static_name();
        let v = self.required(name)?;
        NameAddr::parse_single(v).ok_or(SipError::BadHeader { name: n })
    }

    /// The From header (exactly one required).
    pub fn from(&self) -> Result<NameAddr, SipError> {
        self.name_addr(HeaderName::From)
    }

    /// The To header (exactly one required).
    pub fn to(&self) -> Result<NameAddr, SipError> {
        self.name_addr(HeaderName::To)
    }

    /// The Call-ID (exactly one required, `word ["@" word]`).
    pub fn call_id(&self) -> Result<&str, SipError> {
        let v = self.required(HeaderName::CallId)?;
        if valid_call_id(v) {
            Ok(v)
        } else {
            Err(SipError::BadHeader { name: "Call-ID" })
        }
    }

    /// The CSeq (exactly one required; numbers above 2^32-1 are an error).
    pub fn cseq(&self) -> Result<CSeq, SipError> {
        let v = self.required(HeaderName::CSeq)?;
        CSeq::parse(v).ok_or(SipError::BadHeader { name: "CSeq" })
    }

    /// Max-Forwards (0..=255), `None` if absent.
    pub fn max_forwards(&self) -> Result<Option<u8>, SipError> {
        match self.single(HeaderName::MaxForwards)? {
            None => Ok(None),
            Some(v) => parse_delta(v, false)
                .and_then(|n| u8::try_from(n).ok())
                .map(Some)
                .ok_or(SipError::BadHeader {
                    name: "Max-Forwards",
                }),
        }
    }

    /// The Contact headers: `*`, or every contact in order (an empty list if none).
    pub fn contacts(&self) -> Result<Contacts, SipError> {
        let err = SipError::BadHeader { name: "Contact" };
        let values: Vec<&str> = self.headers.get_all(&HeaderName::Contact).collect();
        if values.iter().any(|v| v.trim() == "*") {
            return if values.len() == 1 {
                Ok(Contacts::Any)
            } else {
                Err(err)
            };
        }
        let mut out = Vec::new();
        for v in values {
            out.extend(parse_list(v, |sc| NameAddr::parse(sc, false)).ok_or(err.clone())?);
        }
        Ok(Contacts::List(out))
    }

    fn route_list(&self, name: HeaderName) -> Result<Vec<NameAddr>, SipError> {
        let n = name.static_name();
        let mut out = Vec::new();
        for v in self.headers.get_all(&name) {
            out.extend(
                parse_list(v, |sc| NameAddr::parse(sc, true))
                    .ok_or(SipError::BadHeader { name: n })?,
            );
        }
        Ok(out)
    }

    /// Every Route value, in order.
    pub fn routes(&self) -> Result<Vec<NameAddr>, SipError> {
        self.route_list(HeaderName::Route)
    }

    /// Every Record-Route value, in order.
    pub fn record_routes(&self) -> Result<Vec<NameAddr>, SipError> {
        self.route_list(HeaderName::RecordRoute)
    }

    fn auth_list(&self, name: HeaderName) -> Result<Vec<Auth>, SipError> {
        let n = name.static_name();
        let mut out = Vec::new();
        for v in self.headers.get_all(&name) {
            out.extend(Auth::parse_all(v).ok_or(SipError::BadHeader { name: n })?);
        }
        Ok(out)
    }

    /// Credentials from every Authorization header.
    pub fn authorization(&self) -> Result<Vec<Credentials>, SipError> {
        self.auth_list(HeaderName::Authorization)
    }

    /// Credentials from every Proxy-Authorization header.
    pub fn proxy_authorization(&self) -> Result<Vec<Credentials>, SipError> {
        self.auth_list(HeaderName::ProxyAuthorization)
    }

    /// Challenges from every WWW-Authenticate header.
    pub fn www_authenticate(&self) -> Result<Vec<Challenge>, SipError> {
        self.auth_list(HeaderName::WwwAuthenticate)
    }

    /// Challenges from every Proxy-Authenticate header.
    pub fn proxy_authenticate(&self) -> Result<Vec<Challenge>, SipError> {
        self.auth_list(HeaderName::ProxyAuthenticate)
    }

    /// Content-Type, `None` if absent.
    pub fn content_type(&self) -> Result<Option<MediaType>, SipError> {
        match self.single(HeaderName::ContentType)? {
            None => Ok(None),
            Some(v) => MediaType::parse(v).map(Some).ok_or(SipError::BadHeader {
                name: "Content-Type",
            }),
        }
    }

    /// Content-Length as received (always equal to the body length on a parsed message).
    pub fn content_length(&self) -> Result<Option<u32>, SipError> {
        match self.single(HeaderName::ContentLength)? {
            None => Ok(None),
            Some(v) => parse_delta(v, false).map(Some).ok_or(SipError::BadHeader {
                name: "Content-Length",
            }),
        }
    }

    /// Expires in seconds (values above 2^32-1 saturate), `None` if absent.
    pub fn expires(&self) -> Result<Option<u32>, SipError> {
        match self.single(HeaderName::Expires)? {
            None => Ok(None),
            Some(v) => parse_delta(v, true)
                .map(Some)
                .ok_or(SipError::BadHeader { name: "Expires" }),
        }
    }

    fn option_tags(&self, name: HeaderName) -> Result<Vec<&str>, SipError> {
        let n = name.static_name();
        let tags = self.headers.values(&name);
        if tags.iter().all(|t| super::typed::is_option_tag(t)) {
            Ok(tags)
        } else {
            Err(SipError::BadHeader { name: n })
        }
    }

    /// Option tags of every Supported header.
    pub fn supported(&self) -> Result<Vec<&str>, SipError> {
        self.option_tags(HeaderName::Supported)
    }

    /// Option tags of every Require header.
    pub fn require(&self) -> Result<Vec<&str>, SipError> {
        self.option_tags(HeaderName::Require)
    }

    /// Option tags of every Proxy-Require header.
    pub fn proxy_require(&self) -> Result<Vec<&str>, SipError> {
        self.option_tags(HeaderName::ProxyRequire)
    }

    /// Media ranges of every Accept header (`None` if there is no Accept header at all).
    pub fn accept(&self) -> Result<Option<Vec<MediaType>>, SipError> {
        if self.headers.count(&HeaderName::Accept) == 0 {
            return Ok(None);
        }
        let mut out = Vec::new();
        for v in self.headers.values(&HeaderName::Accept) {
            out.push(MediaType::parse(v).ok_or(SipError::BadHeader { name: "Accept" })?);
        }
        Ok(Some(out))
    }

    // ----- edits -----

    /// Replaces the Request-URI (error on a response).
    pub fn set_request_uri(&mut self, new: Uri) -> Result<(), SipError> {
        match &mut self.start_line {
            StartLine::Request { uri, .. } => {
                *uri = new;
                Ok(())
            }
            StartLine::Response { .. } => Err(SipError::WrongKind),
        }
    }

    /// Adds `via` as the new top Via.
    pub fn push_via(&mut self, via: &Via) {
        let pos = self.headers.position(&HeaderName::Via).unwrap_or(0);
        self.headers
            .insert(pos, Header::new(HeaderName::Via, via.to_string()));
    }

    /// Removes and returns the top Via (the first value of the first Via header).
    pub fn remove_top_via(&mut self) -> Result<Via, SipError> {
        self.remove_first_value(HeaderName::Via, Via::parse)
    }

    /// Removes and returns the first Route value (for loose routing, RFC 3261 §16.4).
    pub fn remove_top_route(&mut self) -> Result<NameAddr, SipError> {
        self.remove_first_value(HeaderName::Route, |sc| NameAddr::parse(sc, true))
    }

    fn remove_first_value<T>(
        &mut self,
        name: HeaderName,
        parse: impl Fn(&mut Scanner<'_>) -> Option<T>,
    ) -> Result<T, SipError> {
        let n = name.static_name();
        let idx = self
            .headers
            .position(&name)
            .ok_or(SipError::MissingHeader { name: n })?;
        let value = &self.headers.0[idx].value;
        let mut sc = Scanner::new(value);
        sc.skip_ws();
        while sc.eat(b',') {
            sc.skip_ws();
        }
        let first = parse(&mut sc).ok_or(SipError::BadHeader { name: n })?;
        sc.skip_ws();
        if !sc.at_end() && !sc.eat(b',') {
            return Err(SipError::BadHeader { name: n });
        }
        let rest = sc.rest().trim_matches([' ', '\t', ',']).to_owned();
        if rest.is_empty() {
            self.headers.0.remove(idx);
        } else {
            self.headers.0[idx].value = rest;
        }
        Ok(first)
    }

    fn route_insert_pos(&self, name: &HeaderName) -> usize {
        self.headers.position(name).unwrap_or_else(|| {
            // Right after the Via block, so the routing headers read top-down.
            self.headers
                .0
                .iter()
                .rposition(|h| h.name == HeaderName::Via)
                .map_or(0, |i| i + 1)
        })
    }

    /// Adds `route` as the first Record-Route value (what a proxy does, RFC 3261 §16.6 step 4).
    pub fn push_record_route(&mut self, route: &NameAddr) {
        let pos = self.route_insert_pos(&HeaderName::RecordRoute);
        self.headers
            .insert(pos, Header::new(HeaderName::RecordRoute, route.to_string()));
    }

    /// Replaces every Record-Route with `routes` (one header; none if empty).
    pub fn set_record_route(&mut self, routes: &[NameAddr]) {
        self.set_route_list(HeaderName::RecordRoute, routes);
    }

    /// Replaces every Route with `routes` (one header; none if empty).
    pub fn set_route(&mut self, routes: &[NameAddr]) {
        self.set_route_list(HeaderName::Route, routes);
    }

    fn set_route_list(&mut self, name: HeaderName, routes: &[NameAddr]) {
        let pos = self.route_insert_pos(&name);
        self.headers.remove_all(&name);
        if routes.is_empty() {
            return;
        }
        let mut value = String::new();
        for (i, r) in routes.iter().enumerate() {
            if i > 0 {
                value.push_str(", ");
            }
            let _ = write!(value, "{r}");
        }
        self.headers.insert(pos, Header::new(name, value));
    }

    /// Decrements Max-Forwards before forwarding (RFC 3261 §16.6 step 3): adds `Max-Forwards: 70`
    /// if absent, returns the new value, and fails with [`SipError::TooManyHops`] if it is 0.
    pub fn decrement_max_forwards(&mut self) -> Result<u8, SipError> {
        match self.max_forwards()? {
            None => {
                let pos = self.route_insert_pos(&HeaderName::MaxForwards);
                self.headers
                    .insert(pos, Header::new(HeaderName::MaxForwards, "70"));
                Ok(70)
            }
            Some(0) => Err(SipError::TooManyHops),
            Some(n) => {
                self.headers
                    .set(HeaderName::MaxForwards, (n - 1).to_string());
                Ok(n - 1)
            }
        }
    }

    /// Replaces the body and its Content-Type (`None` removes Content-Type); Content-Length is
    /// updated.
    pub fn set_body(&mut self, content_type: Option<&str>, body: Vec<u8>) {
        match content_type {
            Some(ct) => self.headers.set(HeaderName::ContentType, ct),
            None => {
                self.headers.remove_all(&HeaderName::ContentType);
            }
        }
        self.headers
            .set(HeaderName::ContentLength, body.len().to_string());
        self.body = body;
    }

    /// Builds a response to this request (RFC 3261 §8.2.6): copies every Via, From, To, Call-ID
    /// and CSeq; adds `to_tag` to To unless it already has a tag or the status is 100.
    /// The Worker supplies the tag (this module has no randomness).
    pub fn response_to(
        &self,
        status: u16,
        reason: &str,
        to_tag: Option<&str>,
    ) -> Result<SipMessage, SipError> {
        if !self.is_request() {
            return Err(SipError::WrongKind);
        }
        let mut resp = SipMessage::new_response(status, reason);
        for h in self.headers.iter() {
            match h.name {
                HeaderName::Via | HeaderName::From | HeaderName::CallId | HeaderName::CSeq => {
                    resp.headers.push(h.clone())
                }
                HeaderName::To => {
                    let mut to = h.clone();
                    if let Some(tag) = to_tag.filter(|_| status != 100) {
                        let has_tag =
                            NameAddr::parse_single(&to.value).is_some_and(|t| t.tag().is_some());
                        if !has_tag {
                            to.value.push_str(";tag=");
                            to.value.push_str(tag);
                        }
                    }
                    resp.headers.push(to);
                }
                _ => {}
            }
        }
        resp.headers
            .push(Header::new(HeaderName::ContentLength, "0"));
        Ok(resp)
    }

    // ----- serialization -----

    /// Appends the wire form to `out`: canonical long header names, values as held, one
    /// Content-Length with the true body length, then the body.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        out.reserve(512 + self.body.len());
        match &self.start_line {
            StartLine::Request { method, uri } => {
                out.extend_from_slice(method.as_str().as_bytes());
                out.push(b' ');
                let mut s = String::with_capacity(64);
                let _ = write!(s, "{uri}");
                push_line_safe(out, &s);
                out.extend_from_slice(b" SIP/2.0\r\n");
            }
            StartLine::Response { status, reason } => {
                out.extend_from_slice(b"SIP/2.0 ");
                push_u32(out, u32::from(*status));
                out.push(b' ');
                push_line_safe(out, reason);
                out.extend_from_slice(b"\r\n");
            }
        }
        let mut wrote_length = false;
        for h in self.headers.iter() {
            if h.name == HeaderName::ContentLength {
                if !wrote_length {
                    out.extend_from_slice(b"Content-Length: ");
                    push_u32(out, self.body.len() as u32);
                    out.extend_from_slice(b"\r\n");
                    wrote_length = true;
                }
                continue;
            }
            push_line_safe(out, h.name.as_str());
            out.extend_from_slice(b": ");
            push_line_safe(out, &h.value);
            out.extend_from_slice(b"\r\n");
        }
        if !wrote_length {
            out.extend_from_slice(b"Content-Length: ");
            push_u32(out, self.body.len() as u32);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&self.body);
    }

    /// The wire form (see [`SipMessage::write_to`]).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write_to(&mut out);
        out
    }
}

/// Appends `s` with any CR or LF replaced by a space, so that values set through the public
/// fields can never inject a header line or end the header section early.
fn push_line_safe(out: &mut Vec<u8>, s: &str) {
    let b = s.as_bytes();
    if !b.iter().any(|c| *c == b'\r' || *c == b'\n') {
        out.extend_from_slice(b);
        return;
    }
    out.extend(
        b.iter()
            .map(|c| if *c == b'\r' || *c == b'\n' { b' ' } else { *c }),
    );
}

fn push_u32(out: &mut Vec<u8>, mut n: u32) {
    let mut buf = [0u8; 10];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}
