//! Byte classes of the RFC 3261 grammar and a small cursor over an (unfolded) header value.
//!
//! Header values reach this module unfolded: every `CRLF 1*WSP` became one space, so the only
//! whitespace left is SP and HTAB. Every slice is taken with `str::get`, so a position inside a
//! multi-byte character gives an error, never a panic.

/// `token` characters (RFC 3261 §25.1).
pub(crate) fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
        )
}

/// `unreserved` = alphanum / mark.
pub(crate) fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'_' | b'.' | b'!' | b'~' | b'*' | b'\'' | b'(' | b')'
        )
}

/// `word` characters of Call-ID (RFC 3261 §25.1).
pub(crate) fn is_word_byte(b: u8) -> bool {
    is_token_byte(b)
        || matches!(
            b,
            b'(' | b')'
                | b'<'
                | b'>'
                | b':'
                | b'\\'
                | b'"'
                | b'/'
                | b'['
                | b']'
                | b'?'
                | b'{'
                | b'}'
        )
}

/// SP or HTAB.
pub(crate) fn is_ws(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// True if every `%` in `s` is followed by two hex digits and every other byte satisfies `ok`.
pub(crate) fn valid_escaped(s: &str, ok: impl Fn(u8) -> bool) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            if i + 2 >= b.len() {
                return false;
            }
            if !(b[i + 1].is_ascii_hexdigit() && b[i + 2].is_ascii_hexdigit()) {
                return false;
            }
            i += 3;
        } else if ok(b[i]) {
            i += 1;
        } else {
            return false;
        }
    }
    true
}

/// Splits a header value at top-level commas (outside quoted strings and `<...>`), trimming
/// each element and skipping empty ones (`a,,b` and a trailing comma are tolerated, as
/// RFC 9110 §5.6.1 asks of HTTP recipients).
pub(crate) fn split_commas(value: &str) -> Vec<&str> {
    let b = value.as_bytes();
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    let mut in_quotes = false;
    let mut in_angle = false;
    while i < b.len() {
        match b[i] {
            b'\\' if in_quotes => i += 1,
            b'"' if !in_angle => in_quotes = !in_quotes,
            b'<' if !in_quotes => in_angle = true,
            b'>' if !in_quotes => in_angle = false,
            b',' if !in_quotes && !in_angle => {
                if let Some(part) = value.get(start..i) {
                    let part = part.trim_matches(|c| c == ' ' || c == '\t');
                    if !part.is_empty() {
                        out.push(part);
                    }
                }
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    if let Some(part) = value.get(start..) {
        let part = part.trim_matches(|c| c == ' ' || c == '\t');
        if !part.is_empty() {
            out.push(part);
        }
    }
    out
}

/// A cursor over one header value.
#[derive(Debug, Clone)]
pub(crate) struct Scanner<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Scanner<'a> {
    pub(crate) fn new(s: &'a str) -> Self {
        Scanner { s, pos: 0 }
    }

    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    pub(crate) fn set_pos(&mut self, pos: usize) {
        self.pos = pos;
    }

    pub(crate) fn at_end(&self) -> bool {
        self.pos >= self.s.len()
    }

    pub(crate) fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.pos).copied()
    }

    pub(crate) fn rest(&self) -> &'a str {
        self.s.get(self.pos..).unwrap_or("")
    }

    pub(crate) fn slice(&self, from: usize, to: usize) -> Option<&'a str> {
        self.s.get(from..to)
    }

    /// Skips SP/HTAB; returns whether any was skipped.
    pub(crate) fn skip_ws(&mut self) -> bool {
        let start = self.pos;
        while self.peek().is_some_and(is_ws) {
            self.pos += 1;
        }
        self.pos > start
    }

    /// Consumes `c` exactly.
    pub(crate) fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// Consumes `SWS c SWS` (the RFC's SEMI, COMMA, EQUAL, SLASH, COLON), or nothing.
    pub(crate) fn eat_sep(&mut self, c: u8) -> bool {
        let save = self.pos;
        self.skip_ws();
        if self.eat(c) {
            self.skip_ws();
            true
        } else {
            self.pos = save;
            false
        }
    }

    /// Consumes a maximal run of bytes satisfying `f` (possibly empty).
    pub(crate) fn take_while(&mut self, f: impl Fn(u8) -> bool) -> Option<&'a str> {
        let start = self.pos;
        while self.peek().is_some_and(&f) {
            self.pos += 1;
        }
        self.s.get(start..self.pos)
    }

    /// Consumes a non-empty token.
    pub(crate) fn token(&mut self) -> Option<&'a str> {
        let t = self.take_while(is_token_byte)?;
        (!t.is_empty()).then_some(t)
    }

    /// Consumes a quoted string; returns it raw, quotes included.
    pub(crate) fn quoted(&mut self) -> Option<&'a str> {
        let start = self.pos;
        if !self.eat(b'"') {
            return None;
        }
        let b = self.s.as_bytes();
        while self.pos < b.len() {
            match b[self.pos] {
                b'"' => {
                    self.pos += 1;
                    return self.s.get(start..self.pos);
                }
                b'\\' => {
                    // quoted-pair: any byte but CR and LF (already unfolded away).
                    if self.pos + 1 >= b.len() {
                        break;
                    }
                    let next = b[self.pos + 1];
                    if next >= 0x80 {
                        break;
                    }
                    self.pos += 2;
                }
                // qdtext: LWS / %x21 / %x23-5B / %x5D-7E / UTF8-NONASCII
                c if c == b' ' || c == b'\t' || c >= 0x21 => self.pos += 1,
                _ => break,
            }
        }
        self.pos = start;
        None
    }

    /// Consumes a generic parameter value: a quoted string, or a run of token / host characters
    /// (so IPv6 references and bare IPv6 addresses in `received` work, RFC 5118).
    pub(crate) fn param_value(&mut self) -> Option<&'a str> {
        if self.peek() == Some(b'"') {
            return self.quoted();
        }
        let v = self.take_while(|b| is_token_byte(b) || matches!(b, b':' | b'[' | b']'))?;
        (!v.is_empty()).then_some(v)
    }
}

/// Removes the quotes and quoted-pair backslashes of a quoted string; other text is returned as is.
pub(crate) fn unquote(raw: &str) -> std::borrow::Cow<'_, str> {
    let Some(inner) = raw.strip_prefix('"').and_then(|r| r.strip_suffix('"')) else {
        return std::borrow::Cow::Borrowed(raw);
    };
    if !inner.contains('\\') {
        return std::borrow::Cow::Borrowed(inner);
    }
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Writes `s` as a quoted string, escaping `"` and `\`.
pub(crate) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        if c != '\r' && c != '\n' {
            out.push(c);
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_need_two_hex_digits() {
        assert!(valid_escaped("a%20b", is_unreserved));
        assert!(!valid_escaped("a%2", is_unreserved));
        assert!(!valid_escaped("a%", is_unreserved));
        assert!(!valid_escaped("a%zz", is_unreserved));
    }

    #[test]
    fn commas_inside_quotes_and_angles_do_not_split() {
        assert_eq!(
            split_commas(r#""a,b" <sip:x;p=1,2>, c,, d,"#),
            vec![r#""a,b" <sip:x;p=1,2>"#, "c", "d"]
        );
    }

    #[test]
    fn quoted_strings_unquote_and_requote() {
        assert_eq!(unquote(r#""J \"R\" \\""#), r#"J "R" \"#);
        assert_eq!(quote(r#"J "R" \"#), r#""J \"R\" \\""#);
        let mut sc = Scanner::new("\"open");
        assert_eq!(sc.quoted(), None);
        assert_eq!(sc.pos(), 0);
    }
}
