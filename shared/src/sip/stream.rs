//! Framing SIP messages on a stream transport (TCP/TLS toward the upstream, RFC 3261 §18.3).
//!
//! Over a stream, a message ends after its header section and `Content-Length` bytes of body.
//! [`StreamFramer`] collects bytes as they arrive and hands out whole messages; CRLF keep-alives
//! between messages (RFC 5626 §3.5.1) are reported separately so the caller can answer a ping.

use super::{SipError, SipMessage, MAX_MESSAGE_LEN};

/// What came off the stream.
#[derive(Debug)]
pub enum Framed {
    /// A whole message, parsed.
    Message(Box<SipMessage>),
    /// A message that framed but did not parse: log and go on (the stream stays in sync).
    Malformed(SipError),
    /// A double-CRLF keep-alive ping: answer with a single CRLF pong.
    Ping,
    /// A single-CRLF pong.
    Pong,
}

/// Why the stream cannot go on: close the connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StreamError {
    /// A header section or message grew beyond the limit without ending.
    #[error("a message on the stream is longer than {MAX_MESSAGE_LEN} bytes")]
    TooLarge,
    /// The Content-Length is missing, repeated or not a number, so the message's end is unknown.
    #[error("a message on the stream has no usable Content-Length")]
    BadContentLength,
}

/// Reassembles messages from stream bytes.
#[derive(Debug, Default)]
pub struct StreamFramer {
    buf: Vec<u8>,
}

impl StreamFramer {
    /// An empty framer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds bytes read from the stream.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete item, `Ok(None)` when more bytes are needed.
    pub fn next_item(&mut self) -> Result<Option<Framed>, StreamError> {
        if self.buf.starts_with(b"\r\n\r\n") {
            self.buf.drain(..4);
            return Ok(Some(Framed::Ping));
        }
        if self.buf.starts_with(b"\r\n") && self.buf.len() >= 3 && self.buf[2] != b'\r' {
            self.buf.drain(..2);
            return Ok(Some(Framed::Pong));
        }
        if self.buf == b"\r\n" {
            // Could be a pong or the start of a ping: wait.
            return Ok(None);
        }
        let Some(head_end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") else {
            return if self.buf.len() > MAX_MESSAGE_LEN {
                Err(StreamError::TooLarge)
            } else {
                Ok(None)
            };
        };
        let body_len = content_length(&self.buf[..head_end])?;
        let total = head_end + 4 + body_len;
        if total > MAX_MESSAGE_LEN {
            return Err(StreamError::TooLarge);
        }
        if self.buf.len() < total {
            return Ok(None);
        }
        let bytes: Vec<u8> = self.buf.drain(..total).collect();
        Ok(Some(match SipMessage::parse(&bytes) {
            Ok(msg) => Framed::Message(Box::new(msg)),
            Err(e) => Framed::Malformed(e),
        }))
    }
}

/// The Content-Length of a header section (`l` is its compact form); required on streams.
fn content_length(head: &[u8]) -> Result<usize, StreamError> {
    let text = String::from_utf8_lossy(head);
    let mut found = None;
    for line in text.split("\r\n").skip(1) {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let name = name.trim();
        if name.eq_ignore_ascii_case("content-length") || name.eq_ignore_ascii_case("l") {
            let n: usize = value
                .trim()
                .parse()
                .map_err(|_| StreamError::BadContentLength)?;
            if found.is_some_and(|f| f != n) {
                return Err(StreamError::BadContentLength);
            }
            found = Some(n);
        }
    }
    found.ok_or(StreamError::BadContentLength)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPTIONS: &str =
        "OPTIONS sip:a.example SIP/2.0\r\nVia: SIP/2.0/TCP h.example;branch=z9hG4bK1\r\n\
        From: <sip:b@a.example>;tag=1\r\nTo: <sip:a.example>\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\n\
        Max-Forwards: 70\r\nContent-Length: 4\r\n\r\nabcd";

    #[test]
    fn message_split_across_reads_comes_out_whole_once() {
        let mut f = StreamFramer::new();
        let bytes = OPTIONS.as_bytes();
        f.push(&bytes[..20]);
        assert!(f.next_item().unwrap().is_none());
        f.push(&bytes[20..]);
        f.push(b"\r\n\r\n");
        f.push(bytes);
        match f.next_item().unwrap() {
            Some(Framed::Message(m)) => assert_eq!(m.body(), b"abcd"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(f.next_item().unwrap(), Some(Framed::Ping)));
        assert!(matches!(f.next_item().unwrap(), Some(Framed::Message(_))));
        assert!(f.next_item().unwrap().is_none());
    }

    #[test]
    fn missing_content_length_on_a_stream_is_fatal() {
        let mut f = StreamFramer::new();
        f.push(b"OPTIONS sip:a SIP/2.0\r\nCall-ID: x\r\n\r\n");
        assert_eq!(f.next_item().unwrap_err(), StreamError::BadContentLength);
    }

    #[test]
    fn endless_header_section_is_refused() {
        let mut f = StreamFramer::new();
        f.push(&vec![b'a'; MAX_MESSAGE_LEN + 1]);
        assert_eq!(f.next_item().unwrap_err(), StreamError::TooLarge);
    }
}
