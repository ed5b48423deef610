//! Bencode, as rtpengine's ng control protocol uses it: integers `i42e`, byte strings `4:spam`,
//! lists `l...e` and dictionaries `d...e` (keys are byte strings, written sorted).
//!
//! A pure codec: [`encode`] never fails, [`decode`] returns an error for any malformed, truncated
//! or too deeply nested input (never a panic).

use std::collections::BTreeMap;

/// Deepest nesting [`decode`] accepts (ng replies are two or three levels deep).
pub const MAX_DEPTH: usize = 32;

/// A bencoded value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// `i<decimal>e`
    Int(i64),
    /// `<length>:<bytes>`
    Bytes(Vec<u8>),
    /// `l<values>e`
    List(Vec<Value>),
    /// `d<key value pairs>e`, keys sorted as raw bytes.
    Dict(BTreeMap<Vec<u8>, Value>),
}

impl Value {
    /// A byte string from text.
    pub fn str(text: &str) -> Self {
        Self::Bytes(text.as_bytes().to_vec())
    }

    /// A list of byte strings from text.
    pub fn str_list(items: &[&str]) -> Self {
        Self::List(items.iter().map(|s| Self::str(s)).collect())
    }

    /// A dictionary from `(key, value)` pairs.
    pub fn dict<'a>(pairs: impl IntoIterator<Item = (&'a str, Value)>) -> Self {
        Self::Dict(
            pairs
                .into_iter()
                .map(|(k, v)| (k.as_bytes().to_vec(), v))
                .collect(),
        )
    }

    /// The entry `key` of a dictionary.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Self::Dict(map) => map.get(key.as_bytes()),
            _ => None,
        }
    }

    /// The value as UTF-8 text, if it is a byte string holding UTF-8.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::Bytes(bytes) => std::str::from_utf8(bytes).ok(),
            _ => None,
        }
    }
}

/// Why bytes are not one bencoded value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The input ended inside a value.
    #[error("input ends inside a value")]
    Truncated,
    /// A byte that cannot start or continue a value at `offset`.
    #[error("unexpected byte {byte:#04x} at offset {offset}")]
    Unexpected {
        /// The byte.
        byte: u8,
        /// Where it is.
        offset: usize,
    },
    /// An integer or length that is not a canonical decimal number, or out of range.
    #[error("bad number at offset {0}")]
    BadNumber(usize),
    /// Nesting deeper than [`MAX_DEPTH`].
    #[error("nested deeper than {MAX_DEPTH}")]
    TooDeep,
    /// A dictionary key that is not a byte string.
    #[error("dictionary key at offset {0} is not a byte string")]
    BadKey(usize),
    /// Bytes after the value.
    #[error("{0} bytes after the value")]
    TrailingBytes(usize),
}

/// Encodes `value`.
pub fn encode(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    encode_into(value, &mut out);
    out
}

fn encode_into(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Int(i) => {
            out.push(b'i');
            out.extend_from_slice(i.to_string().as_bytes());
            out.push(b'e');
        }
        Value::Bytes(bytes) => encode_bytes(bytes, out),
        Value::List(items) => {
            out.push(b'l');
            for item in items {
                encode_into(item, out);
            }
            out.push(b'e');
        }
        Value::Dict(map) => {
            out.push(b'd');
            for (key, item) in map {
                encode_bytes(key, out);
                encode_into(item, out);
            }
            out.push(b'e');
        }
    }
}

fn encode_bytes(bytes: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(bytes.len().to_string().as_bytes());
    out.push(b':');
    out.extend_from_slice(bytes);
}

/// Decodes exactly one value filling all of `input`.
pub fn decode(input: &[u8]) -> Result<Value, DecodeError> {
    let mut parser = Parser { input, pos: 0 };
    let value = parser.value(0)?;
    match input.len() - parser.pos {
        0 => Ok(value),
        extra => Err(DecodeError::TrailingBytes(extra)),
    }
}

struct Parser<'a> {
    input: &'a [u8],
    pos: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Result<u8, DecodeError> {
        self.input
            .get(self.pos)
            .copied()
            .ok_or(DecodeError::Truncated)
    }

    fn value(&mut self, depth: usize) -> Result<Value, DecodeError> {
        if depth > MAX_DEPTH {
            return Err(DecodeError::TooDeep);
        }
        match self.peek()? {
            b'i' => {
                self.pos += 1;
                let start = self.pos;
                let text = self.until(b'e')?;
                // Canonical: no leading zeros, no "-0", no empty number.
                let digits = text.strip_prefix(b"-").unwrap_or(text);
                let canonical =
                    !digits.is_empty() && (digits == b"0" || digits[0] != b'0') && text != b"-0";
                let number = std::str::from_utf8(text)
                    .ok()
                    .filter(|_| canonical)
                    .and_then(|t| t.parse::<i64>().ok())
                    .ok_or(DecodeError::BadNumber(start))?;
                Ok(Value::Int(number))
            }
            b'0'..=b'9' => self.bytes().map(Value::Bytes),
            b'l' => {
                self.pos += 1;
                let mut items = Vec::new();
                while self.peek()? != b'e' {
                    items.push(self.value(depth + 1)?);
                }
                self.pos += 1;
                Ok(Value::List(items))
            }
            b'd' => {
                self.pos += 1;
                let mut map = BTreeMap::new();
                while self.peek()? != b'e' {
                    let at = self.pos;
                    if !self.peek()?.is_ascii_digit() {
                        return Err(DecodeError::BadKey(at));
                    }
                    let key = self.bytes()?;
                    let item = self.value(depth + 1)?;
                    map.insert(key, item);
                }
                self.pos += 1;
                Ok(Value::Dict(map))
            }
            byte => Err(DecodeError::Unexpected {
                byte,
                offset: self.pos,
            }),
        }
    }

    /// The bytes up to `end` (exclusive); the position moves past `end`.
    fn until(&mut self, end: u8) -> Result<&[u8], DecodeError> {
        let rest = &self.input[self.pos..];
        let len = rest
            .iter()
            .position(|&b| b == end)
            .ok_or(DecodeError::Truncated)?;
        self.pos += len + 1;
        Ok(&rest[..len])
    }

    fn bytes(&mut self) -> Result<Vec<u8>, DecodeError> {
        let start = self.pos;
        let text = self.until(b':')?;
        let canonical = !text.is_empty()
            && text.iter().all(u8::is_ascii_digit)
            && (text == b"0" || text[0] != b'0');
        let len = std::str::from_utf8(text)
            .ok()
            .filter(|_| canonical)
            .and_then(|t| t.parse::<usize>().ok())
            .ok_or(DecodeError::BadNumber(start))?;
        let end = self
            .pos
            .checked_add(len)
            .filter(|&end| end <= self.input.len())
            .ok_or(DecodeError::Truncated)?;
        let bytes = self.input[self.pos..end].to_vec();
        self.pos = end;
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dictionary_keys_are_written_sorted() {
        let value = Value::dict([
            ("sdp", Value::str("v=0")),
            ("command", Value::str("offer")),
            ("ICE", Value::str("remove")),
            ("rtcp-mux", Value::str_list(&["demux"])),
            ("n", Value::Int(-7)),
        ]);
        assert_eq!(
            encode(&value),
            b"d3:ICE6:remove7:command5:offer1:ni-7e8:rtcp-muxl5:demuxe3:sdp3:v=0e".to_vec()
        );
    }

    #[test]
    fn an_ng_reply_decodes_to_its_fields() {
        let reply = decode(b"d6:result2:ok3:sdp13:v=0\r\nc=IN IP4e").expect("decodes");
        assert_eq!(reply.get("result").and_then(Value::as_str), Some("ok"));
        assert_eq!(
            reply.get("sdp").and_then(Value::as_str),
            Some("v=0\r\nc=IN IP4")
        );
        assert_eq!(reply.get("missing"), None);
    }

    #[test]
    fn every_value_round_trips() {
        let value = Value::List(vec![
            Value::Int(0),
            Value::Int(i64::MAX),
            Value::Int(i64::MIN),
            Value::Bytes(Vec::new()),
            Value::Bytes(vec![0, 255, b':', b'e']),
            Value::dict([("nested", Value::List(vec![Value::dict([])]))]),
        ]);
        assert_eq!(decode(&encode(&value)), Ok(value));
    }

    #[test]
    fn truncated_input_is_an_error_at_every_length() {
        let full = encode(&Value::dict([
            ("result", Value::str("ok")),
            ("list", Value::List(vec![Value::Int(12), Value::str("x")])),
        ]));
        for len in 0..full.len() {
            assert!(decode(&full[..len]).is_err(), "prefix of {len} bytes");
        }
    }

    #[test]
    fn malformed_input_is_refused_not_misread() {
        for bad in [
            &b"i01e"[..],
            b"i-0e",
            b"ie",
            b"i12",
            b"05:abcde",
            b"99999999999999999999999:x",
            b"d i1e1:ae",
            b"di1e1:ae",
            b"x",
            b"4:spamextra",
            b"-1:a",
        ] {
            assert!(decode(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn deep_nesting_is_refused_without_overflowing_the_stack() {
        let mut deep = vec![b'l'; 100_000];
        deep.extend(vec![b'e'; 100_000]);
        assert_eq!(decode(&deep), Err(DecodeError::TooDeep));
    }
}
