//! SIP request methods.

use std::fmt;

use super::scan::is_token_byte;

/// A SIP method. Methods are case-sensitive (RFC 3261 §7.1): `invite` is [`Method::Other`].
///
/// Known methods have a variant and an upper-case constant (`Method::INVITE`); anything else
/// that is a valid token is kept in [`Method::Other`], which never holds a known method's name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum Method {
    Invite,
    Ack,
    Bye,
    Cancel,
    Register,
    Options,
    Info,
    Update,
    Prack,
    Subscribe,
    Notify,
    Refer,
    Message,
    Publish,
    /// Any other method token, as received.
    Other(String),
}

impl Method {
    /// `INVITE` (RFC 3261).
    pub const INVITE: Method = Method::Invite;
    /// `ACK` (RFC 3261).
    pub const ACK: Method = Method::Ack;
    /// `BYE` (RFC 3261).
    pub const BYE: Method = Method::Bye;
    /// `CANCEL` (RFC 3261).
    pub const CANCEL: Method = Method::Cancel;
    /// `REGISTER` (RFC 3261).
    pub const REGISTER: Method = Method::Register;
    /// `OPTIONS` (RFC 3261).
    pub const OPTIONS: Method = Method::Options;
    /// `INFO` (RFC 6086).
    pub const INFO: Method = Method::Info;
    /// `UPDATE` (RFC 3311).
    pub const UPDATE: Method = Method::Update;
    /// `PRACK` (RFC 3262).
    pub const PRACK: Method = Method::Prack;
    /// `SUBSCRIBE` (RFC 6665).
    pub const SUBSCRIBE: Method = Method::Subscribe;
    /// `NOTIFY` (RFC 6665).
    pub const NOTIFY: Method = Method::Notify;
    /// `REFER` (RFC 3515).
    pub const REFER: Method = Method::Refer;
    /// `MESSAGE` (RFC 3428).
    pub const MESSAGE: Method = Method::Message;
    /// `PUBLISH` (RFC 3903).
    pub const PUBLISH: Method = Method::Publish;

    /// Every known method, in the order used for an `Allow` header.
    pub const KNOWN: [Method; 14] = [
        Method::Invite,
        Method::Ack,
        Method::Bye,
        Method::Cancel,
        Method::Register,
        Method::Options,
        Method::Info,
        Method::Update,
        Method::Prack,
        Method::Subscribe,
        Method::Notify,
        Method::Refer,
        Method::Message,
        Method::Publish,
    ];

    /// Parses a method token; `None` if `s` is empty or not a token.
    pub fn parse(s: &str) -> Option<Method> {
        if s.is_empty() || !s.bytes().all(is_token_byte) {
            return None;
        }
        Some(match s {
            "INVITE" => Method::Invite,
            "ACK" => Method::Ack,
            "BYE" => Method::Bye,
            "CANCEL" => Method::Cancel,
            "REGISTER" => Method::Register,
            "OPTIONS" => Method::Options,
            "INFO" => Method::Info,
            "UPDATE" => Method::Update,
            "PRACK" => Method::Prack,
            "SUBSCRIBE" => Method::Subscribe,
            "NOTIFY" => Method::Notify,
            "REFER" => Method::Refer,
            "MESSAGE" => Method::Message,
            "PUBLISH" => Method::Publish,
            other => Method::Other(other.to_owned()),
        })
    }

    /// The method's name as it appears on the wire.
    pub fn as_str(&self) -> &str {
        match self {
            Method::Invite => "INVITE",
            Method::Ack => "ACK",
            Method::Bye => "BYE",
            Method::Cancel => "CANCEL",
            Method::Register => "REGISTER",
            Method::Options => "OPTIONS",
            Method::Info => "INFO",
            Method::Update => "UPDATE",
            Method::Prack => "PRACK",
            Method::Subscribe => "SUBSCRIBE",
            Method::Notify => "NOTIFY",
            Method::Refer => "REFER",
            Method::Message => "MESSAGE",
            Method::Publish => "PUBLISH",
            Method::Other(s) => s,
        }
    }

    /// True for methods with a variant of their own (not [`Method::Other`]).
    pub fn is_known(&self) -> bool {
        !matches!(self, Method::Other(_))
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
