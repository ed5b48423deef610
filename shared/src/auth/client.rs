//! Client side: answering a challenge (the edge relaying to an upstream that challenges it).

use super::{AuthError, Challenge, Credentials, NonceCount, Qop, Secret};

/// The request a client signs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientRequest<'a> {
    /// The method, e.g. `REGISTER`.
    pub method: &'a str,
    /// The digest URI: the Request-URI as sent.
    pub uri: &'a str,
    /// The body (hashed only for `auth-int`).
    pub body: &'a [u8],
}

/// Answers `challenge` for a bodiless request: the `Authorization` (or `Proxy-Authorization`)
/// header value. `cnonce` is a fresh random string (see [`cnonce_from_bytes`]); `nc` counts the
/// requests sent with this nonce, from 1.
///
/// Chooses `qop=auth` when offered, else `auth-int`, else RFC 2069 (no qop).
///
/// # Errors
/// [`AuthError::InvalidInput`] when a value cannot be sent (see [`answer`]).
pub fn respond(
    challenge: &Challenge,
    method: &str,
    uri: &str,
    username: &str,
    password: &str,
    cnonce: &str,
    nc: u32,
) -> Result<String, AuthError> {
    let request = ClientRequest {
        method,
        uri,
        body: b"",
    };
    let secret = Secret::Password(password.to_owned());
    answer(challenge, &request, username, &secret, cnonce, nc).map(|c| c.to_header_value())
}

/// Answers `challenge` for `request` with a password or a stored HA1, as [`Credentials`].
///
/// # Errors
/// [`AuthError::InvalidInput`] when the user name, URI or cnonce holds a control character,
/// when a qop or `-sess` challenge is answered with an empty cnonce or `nc` is 0;
/// [`AuthError::BadStoredSecret`] when an HA1 secret is not hex of the right length.
pub fn answer(
    challenge: &Challenge,
    request: &ClientRequest<'_>,
    username: &str,
    secret: &Secret,
    cnonce: &str,
    nc: u32,
) -> Result<Credentials, AuthError> {
    let has_control = |s: &str| s.chars().any(char::is_control);
    if has_control(username) || has_control(request.uri) || has_control(cnonce) {
        return Err(AuthError::InvalidInput("control character in a value"));
    }
    let qop = if challenge.qop.contains(&Qop::Auth) {
        Some(Qop::Auth)
    } else {
        challenge.qop.first().copied()
    };
    let needs_cnonce = qop.is_some() || challenge.algorithm.is_session();
    if needs_cnonce && cnonce.is_empty() {
        return Err(AuthError::InvalidInput("empty cnonce"));
    }
    if qop.is_some() && nc == 0 {
        return Err(AuthError::InvalidInput("nonce count 0"));
    }
    let mut credentials = Credentials {
        username: username.to_owned(),
        realm: challenge.realm.clone(),
        nonce: challenge.nonce.clone(),
        uri: request.uri.to_owned(),
        response: String::new(),
        algorithm: challenge.algorithm,
        qop,
        nc: qop.map(|_| NonceCount::new(nc)),
        cnonce: needs_cnonce.then(|| cnonce.to_owned()),
        opaque: challenge.opaque.clone(),
    };
    credentials.response = credentials.expected_response(secret, request.method, request.body)?;
    Ok(credentials)
}

/// A cnonce from random bytes (base64url, no padding); 12 or more bytes are plenty.
pub fn cnonce_from_bytes(random: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random)
}
