//! `a=` lines: the typed attributes a bridge needs, and everything else kept verbatim.

use std::fmt;

use super::candidate::Candidate;
use super::error::{excerpt, SdpError};
use super::lines::{number, payload_type, Connection};

/// A secret value (an ICE password, an SDES key) whose `Debug` output is redacted, so that logging a
/// [`SessionDescription`](super::SessionDescription) with `{:?}` never leaks it.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }

    /// The secret itself; use it on the wire, never in logs.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// `a=sendrecv`, `a=sendonly`, `a=recvonly`, `a=inactive`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Send and receive (the default when no direction is given).
    SendRecv,
    /// Send only.
    SendOnly,
    /// Receive only.
    RecvOnly,
    /// Neither (e.g. a call on hold by both sides).
    Inactive,
}

impl Direction {
    /// The direction the answerer uses for an offer with this direction, when it can both send and
    /// receive (RFC 3264 §6.1).
    pub fn reversed(self) -> Self {
        match self {
            Direction::SendOnly => Direction::RecvOnly,
            Direction::RecvOnly => Direction::SendOnly,
            d => d,
        }
    }

    /// The attribute name.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "sendrecv" => Direction::SendRecv,
            "sendonly" => Direction::SendOnly,
            "recvonly" => Direction::RecvOnly,
            "inactive" => Direction::Inactive,
            _ => return None,
        })
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `a=rtpmap:<payload type> <encoding name>/<clock rate>[/<channels>]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rtpmap {
    /// 0-127.
    pub payload_type: u8,
    /// e.g. `opus`, `PCMU`, `telephone-event`; compare case-insensitively.
    pub encoding: String,
    /// Hz.
    pub clock_rate: u32,
    /// The channel count when written (`opus/48000/2`); `None` means one.
    pub channels: Option<u16>,
}

impl Rtpmap {
    fn parse(v: &str) -> Result<Self, SdpError> {
        const F: &str = "a=rtpmap";
        let f: Vec<&str> = v.split_ascii_whitespace().collect();
        let [pt, enc] = f[..] else {
            return Err(SdpError::invalid(
                F,
                "expected `<payload type> <encoding>/<clock rate>[/<channels>]`",
            ));
        };
        let mut parts = enc.split('/');
        let name = parts.next().unwrap_or_default();
        if name.is_empty() {
            return Err(SdpError::invalid(F, "the encoding name is empty"));
        }
        let Some(rate) = parts.next() else {
            return Err(SdpError::invalid(F, "the clock rate is missing"));
        };
        let clock_rate = number(F, "clock rate", rate)?;
        let channels = parts
            .next()
            .map(|c| number(F, "channel count", c))
            .transpose()?;
        if parts.next().is_some() {
            return Err(SdpError::invalid(F, "too many `/` parts"));
        }
        Ok(Rtpmap {
            payload_type: payload_type(F, pt)?,
            encoding: name.to_owned(),
            clock_rate,
            channels,
        })
    }
}

impl fmt::Display for Rtpmap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}/{}",
            self.payload_type, self.encoding, self.clock_rate
        )?;
        if let Some(c) = self.channels {
            write!(f, "/{c}")?;
        }
        Ok(())
    }
}

/// `a=fmtp:<payload type> <parameters>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fmtp {
    /// 0-127.
    pub payload_type: u8,
    /// The format parameters as written, e.g. `minptime=10;useinbandfec=1` or `0-15`.
    pub params: String,
}

impl Fmtp {
    fn parse(v: &str) -> Result<Self, SdpError> {
        const F: &str = "a=fmtp";
        let (pt, params) = v.split_once([' ', '\t']).unwrap_or((v, ""));
        Ok(Fmtp {
            payload_type: payload_type(F, pt)?,
            params: params.trim_start().to_owned(),
        })
    }

    /// The `;`-separated parameters as `(name, value)` pairs, trimmed; a parameter without `=` (like
    /// telephone-event's `0-15`) has an empty name.
    pub fn parameters(&self) -> impl Iterator<Item = (&str, &str)> {
        self.params
            .split(';')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| match p.split_once('=') {
                Some((k, v)) => (k.trim(), v.trim()),
                None => ("", p),
            })
    }

    /// The value of one parameter (names compared case-insensitively).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.parameters()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }
}

impl fmt::Display for Fmtp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.params.is_empty() {
            write!(f, "{}", self.payload_type)
        } else {
            write!(f, "{} {}", self.payload_type, self.params)
        }
    }
}

/// `a=rtcp-fb:<payload type or *> <type> [<parameters>]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtcpFb {
    /// `None` for `*` (all payload types).
    pub payload_type: Option<u8>,
    /// e.g. `nack`, `ccm`, `transport-cc`.
    pub feedback: String,
    /// e.g. `pli` in `nack pli`.
    pub param: Option<String>,
}

impl RtcpFb {
    fn parse(v: &str) -> Result<Self, SdpError> {
        const F: &str = "a=rtcp-fb";
        let mut f = v.split_ascii_whitespace();
        let (Some(pt), Some(feedback)) = (f.next(), f.next()) else {
            return Err(SdpError::invalid(F, "expected `<payload type> <type>`"));
        };
        let rest: Vec<&str> = f.collect();
        Ok(RtcpFb {
            payload_type: if pt == "*" {
                None
            } else {
                Some(payload_type(F, pt)?)
            },
            feedback: feedback.to_owned(),
            param: (!rest.is_empty()).then(|| rest.join(" ")),
        })
    }

    /// Whether this feedback applies to a payload type.
    pub fn applies_to(&self, pt: u8) -> bool {
        self.payload_type.is_none_or(|p| p == pt)
    }
}

impl fmt::Display for RtcpFb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.payload_type {
            Some(pt) => write!(f, "{pt} {}", self.feedback)?,
            None => write!(f, "* {}", self.feedback)?,
        }
        if let Some(p) = &self.param {
            write!(f, " {p}")?;
        }
        Ok(())
    }
}

/// `a=group:<semantics> <mid> ...`, e.g. `BUNDLE 0 1`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// e.g. `BUNDLE`, `LS`.
    pub semantics: String,
    /// The media ids in the group.
    pub mids: Vec<String>,
}

impl fmt::Display for Group {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.semantics)?;
        for m in &self.mids {
            write!(f, " {m}")?;
        }
        Ok(())
    }
}

/// `a=fingerprint:<hash function> <hex bytes>` (RFC 8122).
#[derive(Debug, Clone, Eq)]
pub struct Fingerprint {
    /// e.g. `sha-256`, as written; compare case-insensitively.
    pub hash_function: String,
    /// The certificate digest.
    pub bytes: Vec<u8>,
    /// Whether the hex was written in lower case (RFC 8122 asks for upper case); kept so that a
    /// parsed fingerprint serializes as received. Ignored by `==`.
    lowercase: bool,
}

impl PartialEq for Fingerprint {
    fn eq(&self, other: &Self) -> bool {
        self.hash_function
            .eq_ignore_ascii_case(&other.hash_function)
            && self.bytes == other.bytes
    }
}

impl Fingerprint {
    /// A fingerprint written in upper-case hex, e.g. `Fingerprint::new("sha-256", digest)`.
    pub fn new(hash_function: impl Into<String>, bytes: impl Into<Vec<u8>>) -> Self {
        Fingerprint {
            hash_function: hash_function.into(),
            bytes: bytes.into(),
            lowercase: false,
        }
    }

    fn parse(v: &str) -> Result<Self, SdpError> {
        const F: &str = "a=fingerprint";
        let f: Vec<&str> = v.split_ascii_whitespace().collect();
        let [hash, hex] = f[..] else {
            return Err(SdpError::invalid(
                F,
                "expected `<hash function> <hex:hex:...>`",
            ));
        };
        let mut bytes = Vec::with_capacity(hex.len() / 3 + 1);
        for pair in hex.split(':') {
            let ok = pair.len() == 2 && pair.bytes().all(|b| b.is_ascii_hexdigit());
            let byte = ok.then(|| u8::from_str_radix(pair, 16).ok()).flatten();
            let Some(byte) = byte else {
                return Err(SdpError::invalid(
                    F,
                    format!("{:?} is not a hex byte", excerpt(pair)),
                ));
            };
            bytes.push(byte);
        }
        let has_lower = hex.bytes().any(|b| b.is_ascii_lowercase());
        let has_upper = hex.bytes().any(|b| b.is_ascii_uppercase());
        Ok(Fingerprint {
            hash_function: hash.to_owned(),
            bytes,
            lowercase: has_lower && !has_upper,
        })
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.hash_function)?;
        for (i, b) in self.bytes.iter().enumerate() {
            let sep = if i == 0 { " " } else { ":" };
            if self.lowercase {
                write!(f, "{sep}{b:02x}")?;
            } else {
                write!(f, "{sep}{b:02X}")?;
            }
        }
        Ok(())
    }
}

/// `a=setup:` (RFC 4145): which side opens the DTLS connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Setup {
    /// The offerer can be either; the answerer picks.
    Actpass,
    /// This side is the DTLS client.
    Active,
    /// This side is the DTLS server.
    Passive,
    /// No connection now.
    Holdconn,
}

impl Setup {
    /// The value as written.
    pub fn as_str(self) -> &'static str {
        match self {
            Setup::Actpass => "actpass",
            Setup::Active => "active",
            Setup::Passive => "passive",
            Setup::Holdconn => "holdconn",
        }
    }

    /// The role an answerer takes for an offer with this role (RFC 5763: `actpass` is answered with
    /// `active`).
    pub fn answer(self) -> Self {
        match self {
            Setup::Actpass | Setup::Passive => Setup::Active,
            Setup::Active => Setup::Passive,
            Setup::Holdconn => Setup::Holdconn,
        }
    }

    fn parse(v: &str) -> Result<Self, SdpError> {
        Ok(match v.trim() {
            "actpass" => Setup::Actpass,
            "active" => Setup::Active,
            "passive" => Setup::Passive,
            "holdconn" => Setup::Holdconn,
            other => {
                return Err(SdpError::invalid(
                    "a=setup",
                    format!(
                        "{:?} is not actpass, active, passive or holdconn",
                        excerpt(other)
                    ),
                ))
            }
        })
    }
}

impl fmt::Display for Setup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `a=rtcp:<port> [<nettype> <addrtype> <address>]` (RFC 3605).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rtcp {
    /// The RTCP port.
    pub port: u16,
    /// The RTCP address, when it differs from the media's.
    pub connection: Option<Connection>,
}

impl Rtcp {
    fn parse(v: &str) -> Result<Self, SdpError> {
        const F: &str = "a=rtcp";
        let f: Vec<&str> = v.split_ascii_whitespace().collect();
        let Some((port, rest)) = f.split_first() else {
            return Err(SdpError::invalid(F, "the port is missing"));
        };
        Ok(Rtcp {
            port: number(F, "port", port)?,
            connection: if rest.is_empty() {
                None
            } else {
                Some(Connection::parse_fields(F, rest)?)
            },
        })
    }
}

impl fmt::Display for Rtcp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.port)?;
        if let Some(c) = &self.connection {
            write!(f, " {c}")?;
        }
        Ok(())
    }
}

/// `a=ssrc:<ssrc> <attribute>[:<value>]` (RFC 5576).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ssrc {
    /// The synchronization source.
    pub ssrc: u32,
    /// e.g. `cname`, `msid`.
    pub attribute: String,
    /// Everything after the attribute's `:`, as written.
    pub value: Option<String>,
}

impl Ssrc {
    fn parse(v: &str) -> Result<Self, SdpError> {
        const F: &str = "a=ssrc";
        let (id, rest) = v.split_once([' ', '\t']).unwrap_or((v, ""));
        let rest = rest.trim_start();
        let (attribute, value) = match rest.split_once(':') {
            Some((a, v)) => (a, Some(v.to_owned())),
            None => (rest, None),
        };
        if attribute.is_empty() {
            return Err(SdpError::invalid(F, "the source attribute is missing"));
        }
        Ok(Ssrc {
            ssrc: number(F, "ssrc", id)?,
            attribute: attribute.to_owned(),
            value,
        })
    }
}

impl fmt::Display for Ssrc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.ssrc, self.attribute)?;
        if let Some(v) = &self.value {
            write!(f, ":{v}")?;
        }
        Ok(())
    }
}

/// `a=crypto:<tag> <crypto-suite> <key-params> [<session-params>]` (SDES, RFC 4568).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Crypto {
    /// Identifies this line in the answer.
    pub tag: u32,
    /// e.g. `AES_CM_128_HMAC_SHA1_80`.
    pub suite: String,
    /// e.g. `inline:<base64 key>|2^20|1:32`: the master key, hence secret.
    pub key_params: Secret,
    /// Session parameters as written, e.g. `UNENCRYPTED_SRTCP`.
    pub session_params: Option<String>,
}

impl Crypto {
    fn parse(v: &str) -> Result<Self, SdpError> {
        const F: &str = "a=crypto";
        let mut f = v.split_ascii_whitespace();
        let (Some(tag), Some(suite), Some(key)) = (f.next(), f.next(), f.next()) else {
            return Err(SdpError::invalid(
                F,
                "expected `<tag> <crypto-suite> <key-params>`",
            ));
        };
        let rest: Vec<&str> = f.collect();
        Ok(Crypto {
            tag: number(F, "tag", tag)?,
            suite: suite.to_owned(),
            key_params: Secret::new(key),
            session_params: (!rest.is_empty()).then(|| rest.join(" ")),
        })
    }
}

impl fmt::Display for Crypto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {}",
            self.tag,
            self.suite,
            self.key_params.expose()
        )?;
        if let Some(p) = &self.session_params {
            write!(f, " {p}")?;
        }
        Ok(())
    }
}

/// `a=extmap:<id>[/<direction>] <uri> [<extension attributes>]` (RFC 8285).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extmap {
    /// The header extension id.
    pub id: u16,
    /// A direction restriction such as `/recvonly`.
    pub direction: Option<Direction>,
    /// The extension's URI.
    pub uri: String,
    /// Extension attributes as written.
    pub attributes: Option<String>,
}

impl Extmap {
    fn parse(v: &str) -> Result<Self, SdpError> {
        const F: &str = "a=extmap";
        let mut f = v.split_ascii_whitespace();
        let (Some(id), Some(uri)) = (f.next(), f.next()) else {
            return Err(SdpError::invalid(F, "expected `<id>[/<direction>] <uri>`"));
        };
        let (id, direction) = match id.split_once('/') {
            Some((id, d)) => {
                let Some(d) = Direction::parse(d) else {
                    return Err(SdpError::invalid(
                        F,
                        format!("{:?} is not a direction", excerpt(d)),
                    ));
                };
                (id, Some(d))
            }
            None => (id, None),
        };
        let rest: Vec<&str> = f.collect();
        Ok(Extmap {
            id: number(F, "id", id)?,
            direction,
            uri: uri.to_owned(),
            attributes: (!rest.is_empty()).then(|| rest.join(" ")),
        })
    }
}

impl fmt::Display for Extmap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.id)?;
        if let Some(d) = self.direction {
            write!(f, "/{d}")?;
        }
        write!(f, " {}", self.uri)?;
        if let Some(a) = &self.attributes {
            write!(f, " {a}")?;
        }
        Ok(())
    }
}

/// One `a=` line.
///
/// Known attributes are typed; a known attribute whose value does not fit its grammar is a parse
/// error. Everything else is kept verbatim, in order, as [`Attribute::Other`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attribute {
    /// `a=rtpmap`.
    Rtpmap(Rtpmap),
    /// `a=fmtp`.
    Fmtp(Fmtp),
    /// `a=rtcp-fb`.
    RtcpFb(RtcpFb),
    /// `a=sendrecv`, `a=sendonly`, `a=recvonly`, `a=inactive`.
    Direction(Direction),
    /// `a=mid`.
    Mid(String),
    /// `a=group`.
    Group(Group),
    /// `a=ice-ufrag`.
    IceUfrag(String),
    /// `a=ice-pwd`.
    IcePwd(Secret),
    /// `a=ice-lite`.
    IceLite,
    /// `a=ice-options`, as written (tokens are space-separated; some stacks use commas).
    IceOptions(String),
    /// `a=candidate`.
    Candidate(Candidate),
    /// `a=end-of-candidates`.
    EndOfCandidates,
    /// `a=fingerprint`.
    Fingerprint(Fingerprint),
    /// `a=setup`.
    Setup(Setup),
    /// `a=rtcp-mux`.
    RtcpMux,
    /// `a=rtcp`.
    Rtcp(Rtcp),
    /// `a=ptime` in milliseconds.
    Ptime(u32),
    /// `a=maxptime` in milliseconds.
    Maxptime(u32),
    /// `a=ssrc`.
    Ssrc(Ssrc),
    /// `a=crypto`.
    Crypto(Crypto),
    /// `a=extmap`.
    Extmap(Extmap),
    /// Any other attribute, kept verbatim.
    Other {
        /// The text before the first `:`.
        name: String,
        /// The text after the first `:`, if there is one.
        value: Option<String>,
    },
}

impl Attribute {
    /// The attribute's name, e.g. `rtpmap` or `sendrecv`.
    pub fn name(&self) -> &str {
        match self {
            Attribute::Rtpmap(_) => "rtpmap",
            Attribute::Fmtp(_) => "fmtp",
            Attribute::RtcpFb(_) => "rtcp-fb",
            Attribute::Direction(d) => d.as_str(),
            Attribute::Mid(_) => "mid",
            Attribute::Group(_) => "group",
            Attribute::IceUfrag(_) => "ice-ufrag",
            Attribute::IcePwd(_) => "ice-pwd",
            Attribute::IceLite => "ice-lite",
            Attribute::IceOptions(_) => "ice-options",
            Attribute::Candidate(_) => "candidate",
            Attribute::EndOfCandidates => "end-of-candidates",
            Attribute::Fingerprint(_) => "fingerprint",
            Attribute::Setup(_) => "setup",
            Attribute::RtcpMux => "rtcp-mux",
            Attribute::Rtcp(_) => "rtcp",
            Attribute::Ptime(_) => "ptime",
            Attribute::Maxptime(_) => "maxptime",
            Attribute::Ssrc(_) => "ssrc",
            Attribute::Crypto(_) => "crypto",
            Attribute::Extmap(_) => "extmap",
            Attribute::Other { name, .. } => name,
        }
    }

    /// The payload type this attribute describes (`rtpmap`, `fmtp`, and `rtcp-fb` other than `*`).
    pub fn payload_type(&self) -> Option<u8> {
        match self {
            Attribute::Rtpmap(r) => Some(r.payload_type),
            Attribute::Fmtp(f) => Some(f.payload_type),
            Attribute::RtcpFb(r) => r.payload_type,
            _ => None,
        }
    }

    /// Parses the text after `a=`.
    pub fn parse(v: &str) -> Result<Self, SdpError> {
        let (name, value) = match v.split_once(':') {
            Some((n, v)) => (n, Some(v)),
            None => (v, None),
        };
        if name.is_empty() {
            return Err(SdpError::invalid("a=", "the attribute has no name"));
        }
        let text = |field: &'static str| match value.map(str::trim) {
            Some(v) if !v.is_empty() => Ok(v.to_owned()),
            _ => Err(SdpError::invalid(field, "the value is empty")),
        };
        let Some(value) = value else {
            return match name {
                "ice-lite" => Ok(Attribute::IceLite),
                "end-of-candidates" => Ok(Attribute::EndOfCandidates),
                "rtcp-mux" => Ok(Attribute::RtcpMux),
                _ => match Direction::parse(name) {
                    Some(d) => Ok(Attribute::Direction(d)),
                    None if is_valued(name) => Err(SdpError::invalid(
                        valued_field(name),
                        "the value is missing",
                    )),
                    None => Ok(Attribute::Other {
                        name: name.to_owned(),
                        value: None,
                    }),
                },
            };
        };
        Ok(match name {
            "rtpmap" => Attribute::Rtpmap(Rtpmap::parse(value)?),
            "fmtp" => Attribute::Fmtp(Fmtp::parse(value)?),
            "rtcp-fb" => Attribute::RtcpFb(RtcpFb::parse(value)?),
            "mid" => Attribute::Mid(text("a=mid")?),
            "group" => {
                let mut f = value.split_ascii_whitespace();
                let Some(semantics) = f.next() else {
                    return Err(SdpError::invalid("a=group", "the semantics are missing"));
                };
                Attribute::Group(Group {
                    semantics: semantics.to_owned(),
                    mids: f.map(str::to_owned).collect(),
                })
            }
            "ice-ufrag" => Attribute::IceUfrag(text("a=ice-ufrag")?),
            "ice-pwd" => Attribute::IcePwd(Secret::new(text("a=ice-pwd")?)),
            "ice-options" => Attribute::IceOptions(text("a=ice-options")?),
            "candidate" => Attribute::Candidate(Candidate::parse_value(value)?),
            "fingerprint" => Attribute::Fingerprint(Fingerprint::parse(value)?),
            "setup" => Attribute::Setup(Setup::parse(value)?),
            "rtcp" => Attribute::Rtcp(Rtcp::parse(value)?),
            "ptime" => Attribute::Ptime(number("a=ptime", "ptime", value.trim())?),
            "maxptime" => Attribute::Maxptime(number("a=maxptime", "maxptime", value.trim())?),
            "ssrc" => Attribute::Ssrc(Ssrc::parse(value)?),
            "crypto" => Attribute::Crypto(Crypto::parse(value)?),
            "extmap" => Attribute::Extmap(Extmap::parse(value)?),
            n if flag_field(n) != "a=" => {
                return Err(SdpError::invalid(
                    flag_field(n),
                    "this attribute takes no value",
                ))
            }
            _ => Attribute::Other {
                name: name.to_owned(),
                value: Some(value.to_owned()),
            },
        })
    }
}

fn is_valued(name: &str) -> bool {
    valued_field(name) != "a="
}

fn valued_field(name: &str) -> &'static str {
    match name {
        "rtpmap" => "a=rtpmap",
        "fmtp" => "a=fmtp",
        "rtcp-fb" => "a=rtcp-fb",
        "mid" => "a=mid",
        "group" => "a=group",
        "ice-ufrag" => "a=ice-ufrag",
        "ice-pwd" => "a=ice-pwd",
        "ice-options" => "a=ice-options",
        "candidate" => "a=candidate",
        "fingerprint" => "a=fingerprint",
        "setup" => "a=setup",
        "rtcp" => "a=rtcp",
        "ptime" => "a=ptime",
        "maxptime" => "a=maxptime",
        "ssrc" => "a=ssrc",
        "crypto" => "a=crypto",
        "extmap" => "a=extmap",
        _ => "a=",
    }
}

fn flag_field(name: &str) -> &'static str {
    match name {
        "ice-lite" => "a=ice-lite",
        "end-of-candidates" => "a=end-of-candidates",
        "rtcp-mux" => "a=rtcp-mux",
        "sendrecv" => "a=sendrecv",
        "sendonly" => "a=sendonly",
        "recvonly" => "a=recvonly",
        "inactive" => "a=inactive",
        _ => "a=",
    }
}

impl fmt::Display for Attribute {
    /// The text after `a=`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self.name();
        match self {
            Attribute::Rtpmap(v) => write!(f, "{name}:{v}"),
            Attribute::Fmtp(v) => write!(f, "{name}:{v}"),
            Attribute::RtcpFb(v) => write!(f, "{name}:{v}"),
            Attribute::Mid(v) | Attribute::IceUfrag(v) | Attribute::IceOptions(v) => {
                write!(f, "{name}:{v}")
            }
            Attribute::Group(v) => write!(f, "{name}:{v}"),
            Attribute::IcePwd(v) => write!(f, "{name}:{}", v.expose()),
            Attribute::Candidate(v) => write!(f, "{name}:{v}"),
            Attribute::Fingerprint(v) => write!(f, "{name}:{v}"),
            Attribute::Setup(v) => write!(f, "{name}:{v}"),
            Attribute::Rtcp(v) => write!(f, "{name}:{v}"),
            Attribute::Ptime(v) | Attribute::Maxptime(v) => write!(f, "{name}:{v}"),
            Attribute::Ssrc(v) => write!(f, "{name}:{v}"),
            Attribute::Crypto(v) => write!(f, "{name}:{v}"),
            Attribute::Extmap(v) => write!(f, "{name}:{v}"),
            Attribute::Direction(_)
            | Attribute::IceLite
            | Attribute::EndOfCandidates
            | Attribute::RtcpMux => f.write_str(name),
            Attribute::Other { value: None, .. } => f.write_str(name),
            Attribute::Other { value: Some(v), .. } => write!(f, "{name}:{v}"),
        }
    }
}
