//! Digest challenges: the value of `WWW-Authenticate` / `Proxy-Authenticate`.

use std::fmt;

use super::params::{push_quoted, AuthParams};
use super::{Algorithm, AuthError, Qop};

/// One `Digest` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// The protection space, shown to users; the tenant's domain on this platform.
    pub realm: String,
    /// The server nonce, opaque to clients.
    pub nonce: String,
    /// The algorithm; `MD5` when the header names none.
    pub algorithm: Algorithm,
    /// The qop values offered, known ones only; empty for an RFC 2069 challenge with no `qop`.
    pub qop: Vec<Qop>,
    /// Echoed back by the client unchanged.
    pub opaque: Option<String>,
    /// The previous nonce was only too old: retry with this one without asking the user.
    pub stale: bool,
    /// The `domain` parameter, kept as received.
    pub domain: Option<String>,
}

impl Challenge {
    /// Parses a `WWW-Authenticate` or `Proxy-Authenticate` header value. Parameter names are
    /// case-insensitive and unknown parameters are ignored.
    ///
    /// # Errors
    /// [`AuthError::UnsupportedScheme`] when it is not `Digest`,
    /// [`AuthError::UnsupportedAlgorithm`] / [`AuthError::UnsupportedQop`] when nothing offered
    /// can be answered, and [`AuthError::Malformed`] otherwise.
    pub fn parse(value: &str) -> Result<Self, AuthError> {
        let p = AuthParams::parse(value, "Digest")?;
        let realm = p
            .get("realm")?
            .ok_or(AuthError::Malformed("challenge without realm"))?;
        let nonce = p
            .get("nonce")?
            .ok_or(AuthError::Malformed("challenge without nonce"))?;
        let algorithm = match p.get("algorithm")? {
            None => Algorithm::Md5,
            Some(a) => Algorithm::parse(a).ok_or(AuthError::UnsupportedAlgorithm)?,
        };
        let qop = match p.get("qop")? {
            None => Vec::new(),
            Some(list) => {
                let mut qop = Vec::new();
                for q in list.split(',').filter_map(|t| Qop::parse(t.trim())) {
                    if !qop.contains(&q) {
                        qop.push(q);
                    }
                }
                if qop.is_empty() {
                    return Err(AuthError::UnsupportedQop);
                }
                qop
            }
        };
        let stale = p
            .get("stale")?
            .is_some_and(|s| s.eq_ignore_ascii_case("true"));
        Ok(Challenge {
            realm: realm.to_owned(),
            nonce: nonce.to_owned(),
            algorithm,
            qop,
            opaque: p.get("opaque")?.map(str::to_owned),
            stale,
            domain: p.get("domain")?.map(str::to_owned),
        })
    }

    /// Picks the challenge to answer from several header values: the first SHA-256 one if any
    /// (RFC 8760 §2.4), else the first one that parses. Unparsable values are skipped.
    pub fn select<'a>(values: impl IntoIterator<Item = &'a str>) -> Option<Challenge> {
        let mut fallback = None;
        for c in values.into_iter().filter_map(|v| Challenge::parse(v).ok()) {
            if c.algorithm.base() == Algorithm::Sha256 {
                return Some(c);
            }
            fallback.get_or_insert(c);
        }
        fallback
    }

    /// The header value, e.g.
    /// `Digest realm="example.com", nonce="...", algorithm=SHA-256, qop="auth"`.
    pub fn to_header_value(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for Challenge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = String::from("Digest realm=");
        push_quoted(&mut s, &self.realm);
        if let Some(domain) = &self.domain {
            s.push_str(", domain=");
            push_quoted(&mut s, domain);
        }
        s.push_str(", nonce=");
        push_quoted(&mut s, &self.nonce);
        if let Some(opaque) = &self.opaque {
            s.push_str(", opaque=");
            push_quoted(&mut s, opaque);
        }
        if self.stale {
            s.push_str(", stale=true");
        }
        s.push_str(", algorithm=");
        s.push_str(self.algorithm.as_str());
        if !self.qop.is_empty() {
            let list: Vec<&str> = self.qop.iter().map(|q| q.as_str()).collect();
            s.push_str(", qop=");
            push_quoted(&mut s, &list.join(","));
        }
        f.write_str(&s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rfc_2617_challenge() {
        let c = Challenge::parse(
            "Digest\r\n realm=\"testrealm@host.com\",\r\n qop=\"auth,auth-int\",\r\n \
             nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\",\r\n \
             opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"",
        )
        .unwrap();
        assert_eq!(c.realm, "testrealm@host.com");
        assert_eq!(c.algorithm, Algorithm::Md5);
        assert_eq!(c.qop, vec![Qop::Auth, Qop::AuthInt]);
        assert_eq!(
            c.opaque.as_deref(),
            Some("5ccc069c403ebaf9f0171e9517f40e41")
        );
        assert!(!c.stale);
    }

    #[test]
    fn serializes_and_reparses() {
        let c = Challenge {
            realm: "ex\"ample".into(),
            nonce: "abc".into(),
            algorithm: Algorithm::Sha256,
            qop: vec![Qop::Auth],
            opaque: None,
            stale: true,
            domain: None,
        };
        let v = c.to_header_value();
        assert_eq!(
            v,
            r#"Digest realm="ex\"ample", nonce="abc", stale=true, algorithm=SHA-256, qop="auth""#
        );
        assert_eq!(Challenge::parse(&v).unwrap(), c);
    }

    #[test]
    fn unknown_params_ignored_and_names_case_insensitive() {
        let c = Challenge::parse(r#"digest REALM="r", Nonce=n, foo="bar", STALE=TRUE"#).unwrap();
        assert_eq!(c.realm, "r");
        assert_eq!(c.nonce, "n");
        assert!(c.stale);
    }

    #[test]
    fn select_prefers_sha256() {
        let md5 = r#"Digest realm="r", nonce="n", algorithm=MD5, qop="auth""#;
        let sha = r#"Digest realm="r", nonce="n", algorithm=SHA-256, qop="auth""#;
        let bad = r#"Digest realm="r", nonce="n", algorithm=SHA-512-256"#;
        let c = Challenge::select([bad, md5, sha]).unwrap();
        assert_eq!(c.algorithm, Algorithm::Sha256);
        assert_eq!(
            Challenge::select([bad, md5]).unwrap().algorithm,
            Algorithm::Md5
        );
        assert!(Challenge::select([bad]).is_none());
    }
}
