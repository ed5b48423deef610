//! Digest credentials: the value of `Authorization` / `Proxy-Authorization`.

use std::fmt;

use super::algorithm::{response_matches, ResponseInput};
use super::params::{push_quoted, AuthParams};
use super::{Algorithm, AuthError, NonceCount, Qop, Secret};

/// `Digest` credentials as sent by a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user name (the SIP account's user part on this platform).
    pub username: String,
    /// The realm of the challenge answered.
    pub realm: String,
    /// The server nonce answered.
    pub nonce: String,
    /// The digest URI (normally the Request-URI) the response covers.
    pub uri: String,
    /// The response, hex of [`Algorithm::hex_len`] digits.
    pub response: String,
    /// The algorithm; `MD5` when none is named.
    pub algorithm: Algorithm,
    /// The qop chosen; `None` for RFC 2069 credentials.
    pub qop: Option<Qop>,
    /// The nonce count; present exactly when `qop` is.
    pub nc: Option<NonceCount>,
    /// The client nonce; present when `qop` is.
    pub cnonce: Option<String>,
    /// The challenge's `opaque`, echoed.
    pub opaque: Option<String>,
}

impl Credentials {
    /// Parses an `Authorization` or `Proxy-Authorization` header value. Parameter names are
    /// case-insensitive and unknown parameters are ignored.
    ///
    /// # Errors
    /// [`AuthError::UnsupportedScheme`] when it is not `Digest`,
    /// [`AuthError::UnsupportedAlgorithm`], [`AuthError::UnsupportedQop`], and
    /// [`AuthError::Malformed`] for anything else wrong (missing parameters, `qop` without
    /// `nc`/`cnonce`, a bad `nc`, a response of the wrong length).
    pub fn parse(value: &str) -> Result<Self, AuthError> {
        let p = AuthParams::parse(value, "Digest")?;
        let required = |name: &'static str, what: &'static str| -> Result<String, AuthError> {
            p.get(name)?
                .map(str::to_owned)
                .ok_or(AuthError::Malformed(what))
        };
        let username = required("username", "missing username")?;
        let realm = required("realm", "missing realm")?;
        let nonce = required("nonce", "missing nonce")?;
        let uri = required("uri", "missing uri")?;
        let response = required("response", "missing response")?;
        let algorithm = match p.get("algorithm")? {
            None => Algorithm::Md5,
            Some(a) => Algorithm::parse(a).ok_or(AuthError::UnsupportedAlgorithm)?,
        };
        if response.len() != algorithm.hex_len() || !response.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return Err(AuthError::Malformed(
                "response is not a digest of the algorithm",
            ));
        }
        let qop = match p.get("qop")? {
            None => None,
            Some(q) => Some(Qop::parse(q).ok_or(AuthError::UnsupportedQop)?),
        };
        let (nc, cnonce) = match qop {
            None => (None, p.get("cnonce")?.map(str::to_owned)),
            Some(_) => {
                let nc = p.get("nc")?.ok_or(AuthError::Malformed("qop without nc"))?;
                let nc =
                    NonceCount::parse(nc).ok_or(AuthError::Malformed("nc is not 8 hex digits"))?;
                if nc.value() == 0 {
                    return Err(AuthError::Malformed("nc is zero"));
                }
                let cnonce = required("cnonce", "qop without cnonce")?;
                (Some(nc), Some(cnonce))
            }
        };
        if algorithm.is_session() && cnonce.is_none() {
            return Err(AuthError::Malformed("-sess algorithm without cnonce"));
        }
        Ok(Credentials {
            username,
            realm,
            nonce,
            uri,
            response,
            algorithm,
            qop,
            nc,
            cnonce,
            opaque: p.get("opaque")?.map(str::to_owned),
        })
    }

    /// The response these credentials should carry for `method` (and `body`, for `auth-int`)
    /// given the account's secret, in lowercase hex.
    ///
    /// # Errors
    /// [`AuthError::BadStoredSecret`] when `secret` is an HA1 that is not hex of the right length.
    pub fn expected_response(
        &self,
        secret: &Secret,
        method: &str,
        body: &[u8],
    ) -> Result<String, AuthError> {
        self.input(method, body).response(secret)
    }

    /// Whether the response is right for `secret`, compared in constant time. Checks nothing
    /// about the nonce: [`Verifier::verify`](super::Verifier::verify) does that.
    ///
    /// # Errors
    /// [`AuthError::BadStoredSecret`] as for [`Credentials::expected_response`].
    pub fn check(&self, secret: &Secret, method: &str, body: &[u8]) -> Result<bool, AuthError> {
        let expected = self.expected_response(secret, method, body)?;
        Ok(response_matches(&self.response, &expected))
    }

    pub(crate) fn input<'a>(&'a self, method: &'a str, body: &'a [u8]) -> ResponseInput<'a> {
        ResponseInput {
            algorithm: self.algorithm,
            username: &self.username,
            realm: &self.realm,
            nonce: &self.nonce,
            cnonce: self.cnonce.as_deref(),
            nc: self.nc,
            qop: self.qop,
            method,
            uri: &self.uri,
            body,
        }
    }

    /// The header value (`Digest username="...", ...`).
    pub fn to_header_value(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = String::from("Digest username=");
        push_quoted(&mut s, &self.username);
        s.push_str(", realm=");
        push_quoted(&mut s, &self.realm);
        s.push_str(", nonce=");
        push_quoted(&mut s, &self.nonce);
        s.push_str(", uri=");
        push_quoted(&mut s, &self.uri);
        s.push_str(", response=");
        push_quoted(&mut s, &self.response);
        s.push_str(", algorithm=");
        s.push_str(self.algorithm.as_str());
        if let Some(cnonce) = &self.cnonce {
            s.push_str(", cnonce=");
            push_quoted(&mut s, cnonce);
        }
        if let Some(opaque) = &self.opaque {
            s.push_str(", opaque=");
            push_quoted(&mut s, opaque);
        }
        if let (Some(qop), Some(nc)) = (self.qop, self.nc) {
            s.push_str(", qop=");
            s.push_str(qop.as_str());
            s.push_str(", nc=");
            s.push_str(&nc.to_string());
        }
        f.write_str(&s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RFC2617: &str = "Digest username=\"Mufasa\",\r\n realm=\"testrealm@host.com\",\r\n \
        nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\",\r\n uri=\"/dir/index.html\",\r\n \
        qop=auth,\r\n nc=00000001,\r\n cnonce=\"0a4f113b\",\r\n \
        response=\"6629fae49393a05397450978507c4ef1\",\r\n \
        opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"";

    #[test]
    fn parses_rfc_2617_credentials_and_checks_the_password() {
        let c = Credentials::parse(RFC2617).unwrap();
        assert_eq!(c.username, "Mufasa");
        assert_eq!(c.nc.unwrap().value(), 1);
        assert_eq!(c.qop, Some(Qop::Auth));
        let right = Secret::Password("Circle Of Life".into());
        assert!(c.check(&right, "GET", b"").unwrap());
        assert!(!c
            .check(&Secret::Password("circle of life".into()), "GET", b"")
            .unwrap());
        assert!(!c.check(&right, "POST", b"").unwrap());
    }

    #[test]
    fn serialized_credentials_reparse() {
        let c = Credentials::parse(RFC2617).unwrap();
        assert_eq!(Credentials::parse(&c.to_header_value()).unwrap(), c);
    }

    #[test]
    fn refuses_incomplete_credentials() {
        let missing_nc = RFC2617.replace("nc=00000001,", "");
        assert!(matches!(
            Credentials::parse(&missing_nc),
            Err(AuthError::Malformed(_))
        ));
        let short = RFC2617.replace("6629fae4", "");
        assert!(matches!(
            Credentials::parse(&short),
            Err(AuthError::Malformed(_))
        ));
        let basic = "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==";
        assert_eq!(Credentials::parse(basic), Err(AuthError::UnsupportedScheme));
        let sha512 = RFC2617.replace("qop=auth", "algorithm=SHA-512-256, qop=auth");
        assert_eq!(
            Credentials::parse(&sha512),
            Err(AuthError::UnsupportedAlgorithm)
        );
    }
}
