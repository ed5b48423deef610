//! Hostnames as the platform routes on them.
//!
//! A request's `Host` may carry a port, upper case letters or a trailing dot; tenants are stored under
//! the bare lower-case name. [`normalize_host`] turns the first into the second, and [`Hostname`]
//! checks that a configured name is a real hostname (RFC 1123 labels, or an IP literal, which the
//! local stack uses for its `webrtc_host`).

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

/// Strips the port, a trailing dot and IPv6 brackets from a `Host` header value and lower-cases it.
///
/// ```
/// assert_eq!(shared::host::normalize_host("LocalHost:8787"), "localhost");
/// assert_eq!(shared::host::normalize_host("[::1]:8787"), "::1");
/// assert_eq!(shared::host::normalize_host("phone.example.com."), "phone.example.com");
/// ```
pub fn normalize_host(host: &str) -> String {
    let host = host.trim();
    let bare = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or(rest)
    } else {
        match host.rsplit_once(':') {
            // Exactly one colon: `name:port`. More than one without brackets: a bare IPv6 address.
            Some((name, port))
                if !name.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) =>
            {
                name
            }
            _ => host,
        }
    };
    bare.trim_end_matches('.').to_ascii_lowercase()
}

/// Why a string is not a usable hostname.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostnameError {
    /// The string is empty.
    #[error("must not be empty")]
    Empty,
    /// Longer than the 253 characters DNS allows.
    #[error("must be at most 253 characters")]
    TooLong,
    /// Contains a scheme, path, port or other characters that are not part of a hostname.
    #[error("must be a bare hostname such as `phone.example.com` (no scheme, port or path); found {0:?}")]
    InvalidCharacter(char),
    /// A dot-separated label is empty, longer than 63 characters, or starts or ends with `-`.
    #[error(
        "label {0:?} must be 1-63 letters, digits or hyphens, not starting or ending with a hyphen"
    )]
    InvalidLabel(String),
}

/// A validated, lower-case hostname or IP literal.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Hostname(String);

impl Hostname {
    /// Checks `s` and lower-cases it.
    pub fn parse(s: &str) -> Result<Self, HostnameError> {
        if s.is_empty() {
            return Err(HostnameError::Empty);
        }
        if s.len() > 253 {
            return Err(HostnameError::TooLong);
        }
        let lower = s.to_ascii_lowercase();
        if lower.parse::<Ipv4Addr>().is_ok() || lower.parse::<Ipv6Addr>().is_ok() {
            return Ok(Self(lower));
        }
        if let Some(c) = lower
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '.'))
        {
            return Err(HostnameError::InvalidCharacter(c));
        }
        for label in lower.split('.') {
            if label.is_empty()
                || label.len() > 63
                || label.starts_with('-')
                || label.ends_with('-')
            {
                return Err(HostnameError::InvalidLabel(label.to_owned()));
            }
        }
        Ok(Self(lower))
    }

    /// The hostname as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Hostname {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Hostname {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hostname({})", self.0)
    }
}

impl serde::Serialize for Hostname {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for Hostname {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Hostname::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_header_with_port_and_case_normalizes_to_bare_name() {
        assert_eq!(normalize_host("Phone.Example.COM:443"), "phone.example.com");
        assert_eq!(normalize_host("127.0.0.1:8787"), "127.0.0.1");
        assert_eq!(normalize_host("::1"), "::1");
    }

    #[test]
    fn hostnames_with_scheme_port_or_path_are_refused() {
        assert_eq!(
            Hostname::parse("https://a.example"),
            Err(HostnameError::InvalidCharacter(':'))
        );
        assert_eq!(
            Hostname::parse("a.example/x"),
            Err(HostnameError::InvalidCharacter('/'))
        );
        assert!(matches!(
            Hostname::parse("-a.example"),
            Err(HostnameError::InvalidLabel(_))
        ));
        assert!(matches!(
            Hostname::parse("a..example"),
            Err(HostnameError::InvalidLabel(_))
        ));
        assert_eq!(Hostname::parse(""), Err(HostnameError::Empty));
    }

    #[test]
    fn ip_literals_and_mixed_case_names_are_accepted_lower_cased() {
        assert_eq!(
            Hostname::parse("127.0.0.1").map(|h| h.0),
            Ok("127.0.0.1".into())
        );
        assert_eq!(
            Hostname::parse("Phone.Example").map(|h| h.0),
            Ok("phone.example".into())
        );
        assert_eq!(Hostname::parse("::1").map(|h| h.0), Ok("::1".into()));
    }
}
