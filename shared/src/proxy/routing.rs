//! The edge's own URIs (Record-Route, Path, Via sent-by) and recognising them in Route headers.

use crate::sip::{Host, NameAddr, SipUri, Uri, Via};

/// Percent-escapes everything but RFC 3261 `unreserved`, so a user name is safe as a URI
/// user part or parameter value.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Undoes [`escape`] (and any other %-escapes); invalid UTF-8 gives `None`.
pub(crate) fn unescape(s: &str) -> Option<String> {
    String::from_utf8(crate::sip::percent_decode(s)).ok()
}

/// The edge host split into host and optional port (`webrtc_host` is normally a bare host).
pub(crate) fn edge_hostport(edge_host: &str) -> (Host, Option<u16>) {
    if let Some(h) = Host::parse(edge_host) {
        return (h, None);
    }
    if let Some((h, p)) = edge_host.rsplit_once(':') {
        if let (Some(h), Ok(p)) = (Host::parse(h), p.parse::<u16>()) {
            return (h, Some(p));
        }
    }
    (Host::Domain(edge_host.to_owned()), None)
}

/// Whether `host` names `name` (ASCII case-insensitive; a port in `name` is ignored).
pub(crate) fn host_is(host: &Host, name: &str) -> bool {
    let (h, _) = edge_hostport(name);
    host.to_string().eq_ignore_ascii_case(&h.to_string())
}

fn edge_uri(edge_host: &str, user: Option<&str>) -> SipUri {
    let (host, port) = edge_hostport(edge_host);
    let mut uri = SipUri::new(host);
    uri.port = port;
    uri.user = user.map(escape);
    uri
}

/// `<sip:{edge_host};transport=ws;lr;acct={user}>`: the Record-Route this account adds.
pub(crate) fn record_route(edge_host: &str, user: &str) -> NameAddr {
    let mut uri = edge_uri(edge_host, None);
    uri.params.set("transport", Some("ws"));
    uri.params.set("lr", None);
    uri.params.set("acct", Some(&escape(user)));
    NameAddr::new(Uri::Sip(uri))
}

/// `<sip:{user}@{edge_host};lr;acct={user}>`: the Path this account adds to a relayed
/// REGISTER (RFC 3327), so the upstream's requests to the browser come back here.
pub(crate) fn path(edge_host: &str, user: &str) -> NameAddr {
    let mut uri = edge_uri(edge_host, Some(user));
    uri.params.set("lr", None);
    uri.params.set("acct", Some(&escape(user)));
    NameAddr::new(Uri::Sip(uri))
}

/// The Contact of the echo service's answers.
pub(crate) fn echo_contact(edge_host: &str) -> NameAddr {
    let mut uri = edge_uri(edge_host, Some("*43"));
    uri.params.set("transport", Some("ws"));
    NameAddr::new(Uri::Sip(uri))
}

/// What a Route value is to this edge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RouteTarget {
    /// One of ours naming an account (`acct=`).
    Account(String),
    /// The edge itself without an account (a preloaded route such as RFC 7118's
    /// `<sip:proxy.example.com:443;transport=ws;lr>`).
    Edge,
    /// Somewhere else.
    Foreign,
}

pub(crate) fn classify_route(route: &NameAddr, edge_host: &str) -> RouteTarget {
    let Some(uri) = route.uri.as_sip() else {
        return RouteTarget::Foreign;
    };
    if !host_is(&uri.host, edge_host) {
        return RouteTarget::Foreign;
    }
    match uri.params.get("acct").flatten().and_then(unescape) {
        Some(user) => RouteTarget::Account(user),
        None => RouteTarget::Edge,
    }
}

/// A Via of ours with `branch`.
pub(crate) fn our_via(edge_host: &str, transport: &str, branch: &str) -> Via {
    let (host, port) = edge_hostport(edge_host);
    Via::new(transport, host, port, branch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_roundtrip() {
        for s in ["1001", "a b", "x;y=z", "é", "*43"] {
            assert_eq!(unescape(&escape(s)).as_deref(), Some(s));
        }
        assert_eq!(escape("a;b"), "a%3Bb");
    }

    #[test]
    fn our_routes_are_recognised() {
        let rr = record_route("127.0.0.1", "1001");
        assert_eq!(rr.to_string(), "<sip:127.0.0.1;transport=ws;lr;acct=1001>");
        assert_eq!(
            classify_route(&rr, "127.0.0.1"),
            RouteTarget::Account("1001".into())
        );
        let p = path("edge.example", "1001");
        assert_eq!(p.to_string(), "<sip:1001@edge.example;lr;acct=1001>");
        assert_eq!(classify_route(&rr, "edge.example"), RouteTarget::Foreign);
    }
}
