//! The typed non-attribute lines: `o=`, `c=`, `m=`, `b=`, `t=`, and the [`Line`] that holds any of them.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use super::attribute::Attribute;
use super::error::{excerpt, SdpError};

/// Parses an unsigned decimal number made of ASCII digits only (no sign, no spaces).
pub(crate) fn number<T: FromStr>(field: &'static str, what: &str, s: &str) -> Result<T, SdpError> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SdpError::invalid(
            field,
            format!("{what} {:?} is not a number", excerpt(s)),
        ));
    }
    s.parse()
        .map_err(|_| SdpError::invalid(field, format!("{what} {:?} is out of range", excerpt(s))))
}

/// Parses an RTP payload type: a number from 0 to 127.
pub(crate) fn payload_type(field: &'static str, s: &str) -> Result<u8, SdpError> {
    let pt: u64 = number(field, "payload type", s)?;
    match u8::try_from(pt) {
        Ok(pt) if pt <= 127 => Ok(pt),
        _ => Err(SdpError::invalid(
            field,
            format!("payload type {pt} is above 127"),
        )),
    }
}

/// `IP4`, `IP6`, or another address type token (kept verbatim).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AddrType {
    /// `IP4`.
    Ip4,
    /// `IP6`.
    Ip6,
    /// Any other token, e.g. a SIPp template's `IP[media_ip_type]`.
    Other(String),
}

impl AddrType {
    /// The address type for an IP address.
    pub fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(_) => AddrType::Ip4,
            IpAddr::V6(_) => AddrType::Ip6,
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            "IP4" => AddrType::Ip4,
            "IP6" => AddrType::Ip6,
            other => AddrType::Other(other.to_owned()),
        }
    }
}

impl fmt::Display for AddrType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AddrType::Ip4 => "IP4",
            AddrType::Ip6 => "IP6",
            AddrType::Other(s) => s,
        })
    }
}

/// `o=<username> <sess-id> <sess-version> <nettype> <addrtype> <unicast-address>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// `-` when the user has no name.
    pub username: String,
    /// Kept as text: browsers use 19-digit ids and RFC 8866 sets no upper bound.
    pub session_id: String,
    /// Bumped by one whenever a party changes its description.
    pub session_version: u64,
    /// Always `IN` in practice.
    pub nettype: String,
    /// Address type of `address`.
    pub addrtype: AddrType,
    /// An IP address or a host name.
    pub address: String,
}

impl Origin {
    /// An origin with username `-`, network type `IN` and the given id, version and address.
    pub fn new(session_id: impl Into<String>, session_version: u64, address: IpAddr) -> Self {
        Origin {
            username: "-".into(),
            session_id: session_id.into(),
            session_version,
            nettype: "IN".into(),
            addrtype: AddrType::of(address),
            address: address.to_string(),
        }
    }

    pub(crate) fn parse(value: &str) -> Result<Self, SdpError> {
        const F: &str = "o=";
        let f: Vec<&str> = value.split_ascii_whitespace().collect();
        let [username, id, version, nettype, addrtype, address] = f[..] else {
            return Err(SdpError::invalid(
                F,
                format!("expected 6 fields, found {}", f.len()),
            ));
        };
        Ok(Origin {
            username: username.to_owned(),
            session_id: id.to_owned(),
            session_version: number(F, "session version", version)?,
            nettype: nettype.to_owned(),
            addrtype: AddrType::parse(addrtype),
            address: address.to_owned(),
        })
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {} {} {} {}",
            self.username,
            self.session_id,
            self.session_version,
            self.nettype,
            self.addrtype,
            self.address
        )
    }
}

/// `c=<nettype> <addrtype> <connection-address>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    /// Always `IN` in practice.
    pub nettype: String,
    /// Address type of `address`.
    pub addrtype: AddrType,
    /// The address, with any multicast `/ttl/count` suffix kept as written.
    pub address: String,
}

impl Connection {
    /// `IN IP4 <ip>` or `IN IP6 <ip>`.
    pub fn from_ip(ip: IpAddr) -> Self {
        Connection {
            nettype: "IN".into(),
            addrtype: AddrType::of(ip),
            address: ip.to_string(),
        }
    }

    /// The address as an IP address, when it is one (a host name or template gives `None`).
    pub fn ip(&self) -> Option<IpAddr> {
        let addr = self.address.split('/').next().unwrap_or_default();
        addr.parse().ok()
    }

    pub(crate) fn parse_fields(field: &'static str, f: &[&str]) -> Result<Self, SdpError> {
        let [nettype, addrtype, address] = f[..] else {
            return Err(SdpError::invalid(
                field,
                format!(
                    "expected `<nettype> <addrtype> <address>`, found {} fields",
                    f.len()
                ),
            ));
        };
        Ok(Connection {
            nettype: nettype.to_owned(),
            addrtype: AddrType::parse(addrtype),
            address: address.to_owned(),
        })
    }

    pub(crate) fn parse(value: &str) -> Result<Self, SdpError> {
        let f: Vec<&str> = value.split_ascii_whitespace().collect();
        Self::parse_fields("c=", &f)
    }
}

impl fmt::Display for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.nettype, self.addrtype, self.address)
    }
}

/// The media type of an `m=` line.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum MediaType {
    /// `audio`.
    Audio,
    /// `video`.
    Video,
    /// `text`.
    Text,
    /// `application` (e.g. WebRTC data channels).
    Application,
    /// `message`.
    Message,
    /// `image` (e.g. T.38).
    Image,
    /// Any other token, kept verbatim.
    Other(String),
}

impl MediaType {
    fn parse(s: &str) -> Self {
        match s {
            "audio" => MediaType::Audio,
            "video" => MediaType::Video,
            "text" => MediaType::Text,
            "application" => MediaType::Application,
            "message" => MediaType::Message,
            "image" => MediaType::Image,
            other => MediaType::Other(other.to_owned()),
        }
    }
}

impl fmt::Display for MediaType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MediaType::Audio => "audio",
            MediaType::Video => "video",
            MediaType::Text => "text",
            MediaType::Application => "application",
            MediaType::Message => "message",
            MediaType::Image => "image",
            MediaType::Other(s) => s,
        })
    }
}

/// The transport protocol of an `m=` line.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Proto {
    /// `RTP/AVP`: plain RTP, what SIP phones and carriers use.
    RtpAvp,
    /// `RTP/AVPF`.
    RtpAvpf,
    /// `RTP/SAVP`: SRTP, keys by SDES `a=crypto`.
    RtpSavp,
    /// `RTP/SAVPF`.
    RtpSavpf,
    /// `UDP/TLS/RTP/SAVP`.
    UdpTlsRtpSavp,
    /// `UDP/TLS/RTP/SAVPF`: DTLS-SRTP, what browsers use.
    UdpTlsRtpSavpf,
    /// `TCP/TLS/RTP/SAVPF`.
    TcpTlsRtpSavpf,
    /// `UDP/DTLS/SCTP`: WebRTC data channels.
    UdpDtlsSctp,
    /// Any other protocol, kept verbatim.
    Other(String),
}

impl Proto {
    fn parse(s: &str) -> Self {
        match s {
            "RTP/AVP" => Proto::RtpAvp,
            "RTP/AVPF" => Proto::RtpAvpf,
            "RTP/SAVP" => Proto::RtpSavp,
            "RTP/SAVPF" => Proto::RtpSavpf,
            "UDP/TLS/RTP/SAVP" => Proto::UdpTlsRtpSavp,
            "UDP/TLS/RTP/SAVPF" => Proto::UdpTlsRtpSavpf,
            "TCP/TLS/RTP/SAVPF" => Proto::TcpTlsRtpSavpf,
            "UDP/DTLS/SCTP" => Proto::UdpDtlsSctp,
            other => Proto::Other(other.to_owned()),
        }
    }

    /// Whether the formats of this protocol are RTP payload types.
    pub fn is_rtp(&self) -> bool {
        match self {
            Proto::UdpDtlsSctp => false,
            Proto::Other(s) => s.split('/').any(|p| p == "RTP"),
            _ => true,
        }
    }

    /// Whether media is protected by DTLS-SRTP (keys from a DTLS handshake, `a=fingerprint`).
    pub fn is_dtls_srtp(&self) -> bool {
        matches!(
            self,
            Proto::UdpTlsRtpSavp | Proto::UdpTlsRtpSavpf | Proto::TcpTlsRtpSavpf
        )
    }
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Proto::RtpAvp => "RTP/AVP",
            Proto::RtpAvpf => "RTP/AVPF",
            Proto::RtpSavp => "RTP/SAVP",
            Proto::RtpSavpf => "RTP/SAVPF",
            Proto::UdpTlsRtpSavp => "UDP/TLS/RTP/SAVP",
            Proto::UdpTlsRtpSavpf => "UDP/TLS/RTP/SAVPF",
            Proto::TcpTlsRtpSavpf => "TCP/TLS/RTP/SAVPF",
            Proto::UdpDtlsSctp => "UDP/DTLS/SCTP",
            Proto::Other(s) => s,
        })
    }
}

/// The port of an `m=` line.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Port {
    /// A port number; 0 rejects or disables the stream.
    Number(u16),
    /// A bracketed template placeholder such as SIPp's `[media_port]`, kept verbatim so that
    /// templates round-trip. It is not a usable port.
    Template(String),
}

impl Port {
    /// The port number, unless this is a template placeholder.
    pub fn number(&self) -> Option<u16> {
        match self {
            Port::Number(n) => Some(*n),
            Port::Template(_) => None,
        }
    }
}

impl fmt::Display for Port {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Port::Number(n) => write!(f, "{n}"),
            Port::Template(s) => f.write_str(s),
        }
    }
}

/// `m=<media> <port>[/<number of ports>] <proto> <fmt> ...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Media {
    /// `audio`, `video`, ...
    pub media_type: MediaType,
    /// The port media is received on.
    pub port: Port,
    /// The `/<number of ports>` suffix, if present.
    pub port_count: Option<u16>,
    /// The transport protocol.
    pub proto: Proto,
    /// The formats: for RTP protocols these are payload types (0-127, checked when parsing), in the
    /// sender's order of preference.
    pub formats: Vec<String>,
}

impl Media {
    /// An `m=` line for RTP with the given payload types.
    pub fn rtp(media_type: MediaType, port: u16, proto: Proto, payload_types: &[u8]) -> Self {
        Media {
            media_type,
            port: Port::Number(port),
            port_count: None,
            proto,
            formats: payload_types.iter().map(u8::to_string).collect(),
        }
    }

    pub(crate) fn parse(value: &str) -> Result<Self, SdpError> {
        const F: &str = "m=";
        let mut f = value.split_ascii_whitespace();
        let (Some(media), Some(port), Some(proto)) = (f.next(), f.next(), f.next()) else {
            return Err(SdpError::invalid(
                F,
                "expected `<media> <port> <proto> <fmt> ...`",
            ));
        };
        let (port, count) = match port.split_once('/') {
            Some((p, c)) => (p, Some(number(F, "port count", c)?)),
            None => (port, None),
        };
        let port = if port.len() > 2 && port.starts_with('[') && port.ends_with(']') {
            Port::Template(port.to_owned())
        } else {
            Port::Number(number(F, "port", port)?)
        };
        let proto = Proto::parse(proto);
        let formats: Vec<String> = f.map(str::to_owned).collect();
        if proto.is_rtp() {
            for fmt in &formats {
                payload_type(F, fmt)?;
            }
        }
        Ok(Media {
            media_type: MediaType::parse(media),
            port,
            port_count: count,
            proto,
            formats,
        })
    }

    /// The payload types, in order of preference (empty for non-RTP protocols).
    pub fn payload_types(&self) -> impl Iterator<Item = u8> + '_ {
        let rtp = self.proto.is_rtp();
        self.formats
            .iter()
            .filter(move |_| rtp)
            .filter_map(|f| f.parse::<u8>().ok())
            .filter(|pt| *pt <= 127)
    }
}

impl fmt::Display for Media {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.media_type, self.port)?;
        if let Some(c) = self.port_count {
            write!(f, "/{c}")?;
        }
        write!(f, " {}", self.proto)?;
        for fmt in &self.formats {
            write!(f, " {fmt}")?;
        }
        Ok(())
    }
}

/// `b=<bwtype>:<bandwidth>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bandwidth {
    /// `AS`, `CT`, `TIAS`, ...
    pub bwtype: String,
    /// In kbit/s for `AS` and `CT`, bit/s for `TIAS`.
    pub bandwidth: u64,
}

impl Bandwidth {
    pub(crate) fn parse(value: &str) -> Result<Self, SdpError> {
        const F: &str = "b=";
        let Some((t, bw)) = value.split_once(':') else {
            return Err(SdpError::invalid(F, "expected `<bwtype>:<bandwidth>`"));
        };
        if t.is_empty() || t.contains(|c: char| c.is_ascii_whitespace()) {
            return Err(SdpError::invalid(F, "the bandwidth type is not a token"));
        }
        Ok(Bandwidth {
            bwtype: t.to_owned(),
            bandwidth: number(F, "bandwidth", bw.trim())?,
        })
    }
}

impl fmt::Display for Bandwidth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.bwtype, self.bandwidth)
    }
}

/// `t=<start-time> <stop-time>` (NTP seconds; `0 0` means unbounded).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// Start time.
    pub start: u64,
    /// Stop time.
    pub stop: u64,
}

impl Timing {
    pub(crate) fn parse(value: &str) -> Result<Self, SdpError> {
        const F: &str = "t=";
        let f: Vec<&str> = value.split_ascii_whitespace().collect();
        let [start, stop] = f[..] else {
            return Err(SdpError::invalid(F, "expected `<start-time> <stop-time>`"));
        };
        Ok(Timing {
            start: number(F, "start time", start)?,
            stop: number(F, "stop time", stop)?,
        })
    }
}

impl fmt::Display for Timing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.start, self.stop)
    }
}

/// One line of a session or media section other than `v=`, `o=`, `s=` and `m=`, in the order received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// `c=`.
    Connection(Connection),
    /// `b=`.
    Bandwidth(Bandwidth),
    /// `t=`.
    Timing(Timing),
    /// `a=`.
    Attribute(Attribute),
    /// `i=`, `u=`, `e=`, `p=`, `r=`, `z=`, `k=` and unknown letters, kept verbatim.
    Other {
        /// The type letter.
        kind: char,
        /// Everything after `=`.
        value: String,
    },
}

impl Line {
    /// The line's type letter.
    pub fn kind(&self) -> char {
        match self {
            Line::Connection(_) => 'c',
            Line::Bandwidth(_) => 'b',
            Line::Timing(_) => 't',
            Line::Attribute(_) => 'a',
            Line::Other { kind, .. } => *kind,
        }
    }

    pub(crate) fn parse(kind: char, value: &str) -> Result<Self, SdpError> {
        Ok(match kind {
            'c' => Line::Connection(Connection::parse(value)?),
            'b' => Line::Bandwidth(Bandwidth::parse(value)?),
            't' => Line::Timing(Timing::parse(value)?),
            'a' => Line::Attribute(Attribute::parse(value)?),
            _ => Line::Other {
                kind,
                value: value.to_owned(),
            },
        })
    }
}

impl fmt::Display for Line {
    /// The whole line, `<letter>=<value>`, without a line ending.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Line::Connection(c) => write!(f, "c={c}"),
            Line::Bandwidth(b) => write!(f, "b={b}"),
            Line::Timing(t) => write!(f, "t={t}"),
            Line::Attribute(a) => write!(f, "a={a}"),
            Line::Other { kind, value } => write!(f, "{kind}={value}"),
        }
    }
}
