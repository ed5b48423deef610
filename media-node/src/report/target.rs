//! Where reports go: `report_url` split into what each transport needs.
//!
//! Both transports use the URL's host and port: HTTP/3 over UDP, HTTP/1.1 over TCP (as a
//! browser would with `Alt-Svc: h3=":443"`). QUIC always runs TLS, so the HTTP/3 attempt uses
//! TLS even for an `http://` URL (local development: the h3-gateway on UDP, wrangler dev on
//! TCP, same port number); the TCP path follows the scheme.

use std::net::SocketAddr;

use shared::control::report::REPORT_PATH;

use super::{ReportError, ReportSetupError};

/// The scheme of `report_url`: TLS or not on the TCP path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// Plain HTTP/1.1 on the TCP path (development only).
    Http,
    /// HTTPS on the TCP path.
    Https,
}

/// A parsed `report_url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `http` or `https`.
    pub scheme: Scheme,
    /// Host name or IP literal, without IPv6 brackets (for DNS and the TLS server name).
    pub host: String,
    /// Port, explicit or the scheme's default.
    pub port: u16,
    /// `host[:port]` as written in the URL (the `Host` header / `:authority`).
    pub authority: String,
    /// Path and query; [`REPORT_PATH`] when the URL has no path.
    pub path: String,
}

impl Target {
    /// Parses an absolute `http://` or `https://` URL.
    pub fn parse(url: &str) -> Result<Self, ReportSetupError> {
        let bad = |reason: String| ReportSetupError::Url { reason };
        let uri: http::Uri = url
            .parse()
            .map_err(|e| bad(format!("{url:?} is not a URL ({e})")))?;
        let scheme = match uri.scheme_str() {
            Some("https") => Scheme::Https,
            Some("http") => Scheme::Http,
            _ => return Err(bad(format!("{url:?} must start with https:// or http://"))),
        };
        let authority = uri
            .authority()
            .filter(|a| !a.host().is_empty())
            .ok_or_else(|| bad(format!("{url:?} has no host")))?;
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = authority.port_u16().unwrap_or(match scheme {
            Scheme::Https => 443,
            Scheme::Http => 80,
        });
        let path = match uri.path_and_query().map(|p| p.as_str()) {
            None | Some("" | "/") => REPORT_PATH.to_owned(),
            Some(p) => p.to_owned(),
        };
        Ok(Self {
            scheme,
            host,
            port,
            authority: authority.as_str().to_owned(),
            path,
        })
    }

    /// The absolute URL of the HTTP/3 request (`https://`, whatever the configured scheme).
    pub fn h3_uri(&self) -> String {
        format!("https://{}{}", self.authority, self.path)
    }

    /// The path that is signed: the path without the query.
    pub fn signed_path(&self) -> &str {
        self.path.split('?').next().unwrap_or(&self.path)
    }

    /// Resolves the host (IP literals need no lookup); the first address wins.
    pub async fn resolve(&self) -> Result<SocketAddr, ReportError> {
        let resolve_error = |reason: String| ReportError::Resolve {
            host: self.host.clone(),
            reason,
        };
        if let Ok(ip) = self.host.parse() {
            return Ok(SocketAddr::new(ip, self.port));
        }
        tokio::net::lookup_host((self.host.as_str(), self.port))
            .await
            .map_err(|e| resolve_error(e.to_string()))?
            .next()
            .ok_or_else(|| resolve_error("no address".to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_url_with_path_and_default_port() {
        let t = Target::parse("https://fleet.example.com/fleet/report").unwrap();
        assert_eq!(t.scheme, Scheme::Https);
        assert_eq!(t.host, "fleet.example.com");
        assert_eq!(t.port, 443);
        assert_eq!(t.authority, "fleet.example.com");
        assert_eq!(t.path, "/fleet/report");
        assert_eq!(t.h3_uri(), "https://fleet.example.com/fleet/report");
    }

    #[test]
    fn http_url_without_path_gets_the_report_path_and_h3_still_uses_https() {
        let t = Target::parse("http://127.0.0.1:8787").unwrap();
        assert_eq!(t.scheme, Scheme::Http);
        assert_eq!(t.port, 8787);
        assert_eq!(t.path, REPORT_PATH);
        assert_eq!(t.h3_uri(), "https://127.0.0.1:8787/fleet/report");
    }

    #[test]
    fn ipv6_host_loses_its_brackets_but_keeps_them_in_the_authority() {
        let t = Target::parse("https://[::1]:8443/fleet/report?x=1").unwrap();
        assert_eq!(t.host, "::1");
        assert_eq!(t.authority, "[::1]:8443");
        assert_eq!(t.signed_path(), "/fleet/report");
    }

    #[test]
    fn other_schemes_and_relative_urls_are_refused() {
        for url in ["ftp://x/", "/fleet/report", "fleet.example.com"] {
            assert!(Target::parse(url).is_err(), "{url}");
        }
    }
}
