//! Types and protocol code used by every part of the webphone platform.
//!
//! # Design
//! Everything here is plain data and sans-IO logic: no sockets, no clocks, no storage. The edge Worker
//! (wasm32) and the media node (native) are thin shells that feed bytes and time in and carry out what
//! comes back, so the same code runs in both and is tested deterministically.
//!
//! - [`tenant`]: the tenant configuration schema, its validation and the public view served to browsers.
//! - [`problem`]: RFC 9457 problem details, the body of every HTTP error the platform returns.
//! - [`ratelimit`]: a token bucket on caller-supplied time (per-socket message limits).
//! - [`fleet`]: the fleet registry: media nodes' latest reports and the node picked per call.
//! - [`host`]: hostname normalisation used for routing requests to tenants.
//! - [`sip`]: SIP messages: parsing, typed headers, serialization, and what the edge does with them.
//! - [`sdp`]: SDP session descriptions: parsing and serialization.
//! - [`auth`]: SIP digest authentication: challenges, stateless nonces, verification, answering.
//! - [`proxy`]: the sans-IO SIP core of one account at the edge: registrar or relay, and proxy.
//! - [`control`]: worker <-> media node control messages (postcard, versioned) and their HMAC authentication.

pub mod auth;
pub mod control;
pub mod fleet;
pub mod host;
pub mod problem;
pub mod proxy;
pub mod ratelimit;
pub mod sdp;
pub mod sip;
pub mod tenant;
