//! SIP messages (RFC 3261): parsing, typed headers and serialization, and what the
//! SIP-over-WebSocket edge (RFC 7118) does with a message arriving from a browser.
//!
//! # Design
//! - **One WebSocket message is one SIP message** (RFC 7118 §5), so [`SipMessage::parse`] takes a
//!   whole message and never answers "incomplete": a missing empty line or a Content-Length
//!   larger than the body is an error the edge answers (400), not a reason to wait. Bytes after
//!   Content-Length are ignored, as for a UDP datagram (RFC 3261 §18.3).
//! - **Keep what was received, parse on demand.** A [`SipMessage`] holds the start line, the
//!   headers as ordered `(name, value text)` pairs (folding undone, names matched
//!   case-insensitively with compact forms, values otherwise untouched) and the body bytes.
//!   Typed views ([`Via`], [`NameAddr`], [`CSeq`], [`Auth`], [`MediaType`], ...) are parsed by
//!   accessors such as [`SipMessage::vias`] when asked for, in the spirit of ezk-sip-types'
//!   `get_named::<Via>()`. Edits (push/remove Via, Request-URI, Record-Route, Max-Forwards, body)
//!   touch only the headers concerned, so everything else is forwarded byte for byte.
//! - **Serialization** writes canonical long header names, the held values, and always exactly
//!   one Content-Length with the true body length, so the output is valid on the stream
//!   transport (TCP/TLS) towards the upstream. Parsing adds a Content-Length when the message had
//!   none, which makes parse -> serialize -> parse give an equal message.
//! - **The header section must be UTF-8** (RFC 3261 §7.3.1 has only UTF-8 text there); the body
//!   is bytes. Over WebSocket a browser sends text frames, which are UTF-8 anyway.
//! - **Sans-IO and wasm32-clean:** no clock, no randomness (the caller supplies To-tags), no
//!   threads, no IO; only `std` collections, `core::net` address parsing and `thiserror`.
//! - **Errors:** one [`SipError`] enum; each variant says which status answers it
//!   ([`SipError::status`], [`SipError::reason`]). Reason phrases are fixed texts, never echoes
//!   of received bytes. Nothing here panics on any input (fuzzed: `shared/fuzz`).
//! - **Secrets:** the `Debug` output of Authorization/Proxy-Authorization headers and of [`Auth`]
//!   hides credential values.
//!
//! ## Why not ezk-sip-types (or another crate)
//! ezk-sip-types 0.6.5 (kbalt/ezk, MIT) was read first: its design (raw message kept, typed
//! headers on demand, `Method::INVITE` constants) is the model followed here, but the crate itself
//! does not fit the edge:
//! - its Request-URI and every name-addr (From/To/Contact/Route) are `SipUri` only, so
//!   `tel:`/unknown-scheme Request-URIs cannot be represented and told apart from garbage (the
//!   edge must answer those with 416, RFC 4475 §3.3.2/3.3.3), and To/From/Contact with other
//!   schemes (RFC 4475 §3.3.4) fail to parse;
//! - it parses `&str` with nom 7 and classifies token characters with `char::is_alphanumeric`
//!   (any Unicode letter passes as a token), which is more lenient than the grammar where the
//!   edge has to reject;
//! - it is a streaming (TCP) parser (`PullParser` returning `Incomplete`), where over WebSocket
//!   incompleteness is an error;
//! - it brings `anyhow`, `lazy_static`, `nom`, `bytes`/`bytesstr` and `ezk-internal` into a library
//!   that ends up in a size-sensitive wasm Worker, has a single maintainer, and a breaking
//!   release line (0.x) we would have to track.
//!
//! `rsip` 0.4 (unmaintained since 2022, nom-based, no licence field on crates.io) and
//! `rvoip-sip-core` 0.4 (a large stack with SDP and more, edition 2021 with rust-version 1.91)
//! were set aside for the same reasons. Owning ~1500 lines of grammar-driven parser is cheaper
//! here than adapting any of them to the torture tests; the RFC 4475 and RFC 7118 corpora are
//! run in `shared/tests/sip_conformance.rs`.
//!
//! ## Edge policy
//! [`edge_verdict`] decides per message; its documentation lists the order of checks. Choices
//! made where the RFCs leave room:
//! - Max-Forwards 0 gets 483 on every request (the edge forwards all it accepts); a missing
//!   Max-Forwards is accepted (RFC 2543 peers) and added on forwarding.
//! - Require/Proxy-Require accept [`SUPPORTED_OPTION_TAGS`], anything else gets 420.
//! - A top Via branch that is only `z9hG4bK` gets 400; a branch without the cookie (RFC 2543) is
//!   accepted.
//! - A Request-URI with `?headers`, multiple SP or trailing SP in the Request-Line get 400.
//! - Empty elements in comma lists (`a,,b`, a trailing comma as printed in RFC 7118 §8.2 F6)
//!   are tolerated; empty parameters (`;;`) are not.
//! - INVITE/ACK/PRACK/UPDATE with a non-empty body must be `application/sdp` (415); an INVITE
//!   whose Accept excludes SDP gets 406. The Date header is not read, so a bad Date is ignored.
//! - Responses and ACKs are never answered: failures drop them, as do responses whose Via names
//!   a broadcast or multicast address. An empty/CRLF-only message is dropped (a keep-alive; the
//!   Worker may answer CRLF as RFC 5626 §3.5.1 does).
//!
//! ## Example
//! ```
//! use shared::sip::{edge_verdict, EdgeVerdict, Method};
//!
//! let raw = b"OPTIONS sip:alice@example.com SIP/2.0\r\n\
//! Via: SIP/2.0/WSS df7jal23ls0d.invalid;branch=z9hG4bK7\r\n\
//! From: <sip:bob@example.com>;tag=1\r\nTo: <sip:alice@example.com>\r\n\
//! Call-ID: a1\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n\r\n";
//! let EdgeVerdict::Accept(mut msg) = edge_verdict(raw) else { panic!() };
//! assert_eq!(msg.method(), Some(&Method::OPTIONS));
//! assert_eq!(msg.top_via().unwrap().branch(), Some("z9hG4bK7"));
//! assert_eq!(msg.decrement_max_forwards().unwrap(), 69);
//! let ok = msg.response_to(200, "OK", Some("edge1")).unwrap();
//! assert_eq!(ok.to().unwrap().tag(), Some("edge1"));
//! ```

mod edge;
mod error;
mod header;
mod message;
mod method;
mod scan;
mod stream;
mod typed;
mod uri;

pub use edge::{edge_verdict, EdgeVerdict, SUPPORTED_OPTION_TAGS};
pub use error::SipError;
pub use header::{Header, HeaderName, Headers};
pub use message::{SipMessage, StartLine, MAX_MESSAGE_LEN};
pub use method::Method;
pub use stream::{Framed, StreamError, StreamFramer};
pub use typed::{Auth, CSeq, Challenge, Contacts, Credentials, MediaType, NameAddr, Via};
pub(crate) use uri::percent_decode;
pub use uri::{AbsoluteUri, Host, Param, Params, SipUri, Uri};
