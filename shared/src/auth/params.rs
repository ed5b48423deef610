//! The `auth-scheme 1*SP auth-param *(COMMA auth-param)` grammar shared by challenges and
//! credentials (RFC 3261 §25.1, RFC 7235 §2.1), parsed leniently and without panics.

use std::borrow::Cow;

use super::AuthError;

/// Longest header value accepted, in bytes. Real ones are a few hundred bytes.
pub(crate) const MAX_HEADER_LEN: usize = 8 * 1024;

/// One parsed authentication header value: its parameters in order.
#[derive(Debug)]
pub(crate) struct AuthParams<'a> {
    pub params: Vec<(&'a str, Cow<'a, str>)>,
}

impl<'a> AuthParams<'a> {
    /// Parses the first challenge or credentials in `input`, whose scheme must be `scheme`
    /// (case-insensitively; else [`AuthError::UnsupportedScheme`]). A later `, Scheme ...`
    /// (several challenges in one header value) ends the parse and is ignored.
    pub fn parse(input: &'a str, scheme: &str) -> Result<Self, AuthError> {
        if input.len() > MAX_HEADER_LEN {
            return Err(AuthError::Malformed("header value too long"));
        }
        let mut s = Scanner { src: input, pos: 0 };
        s.skip_lws();
        let found = s.token();
        if found.is_empty() {
            return Err(AuthError::Malformed("missing auth scheme"));
        }
        if !found.eq_ignore_ascii_case(scheme) {
            return Err(AuthError::UnsupportedScheme);
        }
        let mut params = Vec::new();
        loop {
            s.skip_lws_and_commas();
            if s.at_end() {
                break;
            }
            let name = s.token();
            if name.is_empty() {
                return Err(AuthError::Malformed("expected a parameter name"));
            }
            s.skip_lws();
            if !s.eat(b'=') {
                // `Digest a=b, Basic ...`: the next challenge starts here.
                if params.is_empty() {
                    return Err(AuthError::Malformed("expected name=value"));
                }
                break;
            }
            s.skip_lws();
            let value = if s.peek() == Some(b'"') {
                s.quoted()?
            } else {
                let v = s.bare_value();
                if v.is_empty() {
                    return Err(AuthError::Malformed("empty parameter value"));
                }
                Cow::Borrowed(v)
            };
            params.push((name, value));
            s.skip_lws();
            match s.peek() {
                None | Some(b',') => {}
                Some(_) => return Err(AuthError::Malformed("expected a comma between parameters")),
            }
        }
        Ok(AuthParams { params })
    }

    /// The value of the parameter named `name` (case-insensitively), refusing a repeated one.
    pub fn get(&self, name: &str) -> Result<Option<&str>, AuthError> {
        let mut found = None;
        for (n, v) in &self.params {
            if n.eq_ignore_ascii_case(name) {
                if found.is_some() {
                    return Err(AuthError::Malformed("repeated parameter"));
                }
                found = Some(v.as_ref());
            }
        }
        Ok(found)
    }
}

struct Scanner<'a> {
    src: &'a str,
    pos: usize,
}

fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b)
}

fn is_lws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

impl<'a> Scanner<'a> {
    fn peek(&self) -> Option<u8> {
        self.src.as_bytes().get(self.pos).copied()
    }

    fn at_end(&self) -> bool {
        self.pos >= self.src.len()
    }

    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn skip_lws(&mut self) {
        while self.peek().is_some_and(is_lws) {
            self.pos += 1;
        }
    }

    fn skip_lws_and_commas(&mut self) {
        while self.peek().is_some_and(|b| is_lws(b) || b == b',') {
            self.pos += 1;
        }
    }

    /// Every delimiter is ASCII, so each slice boundary is a char boundary.
    fn take_while(&mut self, pred: impl Fn(u8) -> bool) -> &'a str {
        let start = self.pos;
        while self.peek().is_some_and(&pred) {
            self.pos += 1;
        }
        self.src.get(start..self.pos).unwrap_or("")
    }

    fn token(&mut self) -> &'a str {
        self.take_while(is_token_byte)
    }

    /// An unquoted value: a token in the grammar, taken leniently up to the next comma or space
    /// (some clients send `uri=sip:...` unquoted).
    fn bare_value(&mut self) -> &'a str {
        self.take_while(|b| b != b',' && !is_lws(b) && b != b'"')
    }

    /// A quoted-string starting at the current `"`, with `\` quoting the next character.
    fn quoted(&mut self) -> Result<Cow<'a, str>, AuthError> {
        let bytes = self.src.as_bytes();
        self.pos += 1;
        let start = self.pos;
        let mut unescaped: Option<Vec<u8>> = None;
        loop {
            let Some(&b) = bytes.get(self.pos) else {
                return Err(AuthError::Malformed("unterminated quoted string"));
            };
            match b {
                b'"' => {
                    let end = self.pos;
                    self.pos += 1;
                    return match unescaped {
                        None => Ok(Cow::Borrowed(self.src.get(start..end).unwrap_or(""))),
                        // Only ASCII backslashes were removed from valid UTF-8.
                        Some(v) => String::from_utf8(v)
                            .map(Cow::Owned)
                            .map_err(|_| AuthError::Malformed("invalid quoted string")),
                    };
                }
                b'\\' => {
                    let buf = unescaped
                        .get_or_insert_with(|| bytes.get(start..self.pos).unwrap_or(&[]).to_vec());
                    let Some(&next) = bytes.get(self.pos + 1) else {
                        return Err(AuthError::Malformed("unterminated quoted string"));
                    };
                    buf.push(next);
                    self.pos += 2;
                }
                _ => {
                    if let Some(buf) = unescaped.as_mut() {
                        buf.push(b);
                    }
                    self.pos += 1;
                }
            }
        }
    }
}

/// Appends `value` as a quoted-string: `"` and `\` escaped, control characters dropped so a
/// value can never break out of its header line.
pub(crate) fn push_quoted(out: &mut String, value: &str) {
    out.push('"');
    for c in value.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_quoted_escapes_and_bare_values() {
        let p = AuthParams::parse(
            r#"Digest  realm="a\"b\\c" ,, nc=00000001,qop=auth"#,
            "digest",
        )
        .unwrap();
        assert_eq!(p.get("REALM").unwrap(), Some(r#"a"b\c"#));
        assert_eq!(p.get("nc").unwrap(), Some("00000001"));
        assert_eq!(p.get("qop").unwrap(), Some("auth"));
        assert_eq!(p.get("opaque").unwrap(), None);
    }

    #[test]
    fn stops_at_a_second_challenge() {
        let p =
            AuthParams::parse(r#"Digest realm="x", nonce="n", Basic realm="y""#, "Digest").unwrap();
        assert_eq!(p.params.len(), 2);
    }

    #[test]
    fn refuses_garbage_without_panicking() {
        for bad in [
            "",
            "   ",
            "Digest realm=\"x",
            "Digest realm=\"x\\",
            "Digest =x",
            "Digest realm",
            "Digest realm=",
            "Digest realm=\"a\" nonce=\"b\"",
            "Digest realm=\"a\", realm=\"b\"",
            "\u{e9}\u{e9}=\"",
        ] {
            let r = AuthParams::parse(bad, "Digest").and_then(|p| p.get("realm").map(|_| ()));
            assert!(r.is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn quoting_escapes_and_drops_controls() {
        let mut s = String::new();
        push_quoted(&mut s, "a\"b\\c\r\nd");
        assert_eq!(s, r#""a\"b\\cd""#);
    }
}
