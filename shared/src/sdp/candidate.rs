//! ICE candidates (`a=candidate`, RFC 8839 §5.1).

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use super::error::{excerpt, SdpError};
use super::lines::number;

const F: &str = "a=candidate";

/// `host`, `srflx`, `prflx`, `relay`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CandidateType {
    /// An address on the host itself.
    Host,
    /// Server reflexive (seen by a STUN server).
    Srflx,
    /// Peer reflexive (learned from a connectivity check).
    Prflx,
    /// Relayed through a TURN server.
    Relay,
    /// Any other token, kept verbatim.
    Other(String),
}

impl CandidateType {
    fn parse(s: &str) -> Self {
        match s {
            "host" => CandidateType::Host,
            "srflx" => CandidateType::Srflx,
            "prflx" => CandidateType::Prflx,
            "relay" => CandidateType::Relay,
            other => CandidateType::Other(other.to_owned()),
        }
    }

    /// RFC 8445 §5.1.2.2 recommended type preference.
    pub fn preference(&self) -> u32 {
        match self {
            CandidateType::Host => 126,
            CandidateType::Prflx => 110,
            CandidateType::Srflx => 100,
            CandidateType::Relay | CandidateType::Other(_) => 0,
        }
    }
}

impl fmt::Display for CandidateType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CandidateType::Host => "host",
            CandidateType::Srflx => "srflx",
            CandidateType::Prflx => "prflx",
            CandidateType::Relay => "relay",
            CandidateType::Other(s) => s,
        })
    }
}

/// One ICE candidate: `<foundation> <component> <transport> <priority> <address> <port>
/// typ <type> [raddr <a>] [rport <p>] *(<name> <value>)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// Groups candidates from the same base and server.
    pub foundation: String,
    /// 1 for RTP, 2 for RTCP (without rtcp-mux).
    pub component: u32,
    /// `udp` or `tcp`, as written (browsers send lower case, libdatachannel upper case).
    pub transport: String,
    /// Higher is preferred.
    pub priority: u32,
    /// An IP address, or a host name such as an mDNS `*.local` name.
    pub address: String,
    /// The port.
    pub port: u16,
    /// The candidate type.
    pub kind: CandidateType,
    /// `raddr`: the related address of a reflexive or relayed candidate.
    pub related_address: Option<String>,
    /// `rport`: the related port.
    pub related_port: Option<u16>,
    /// Further `name value` pairs in order, e.g. `generation 0`, `tcptype active`, `network-id 1`.
    pub extensions: Vec<(String, String)>,
}

impl Candidate {
    /// A UDP host candidate for component 1 at `addr`, with the RFC 8445 recommended priority.
    pub fn host(foundation: impl Into<String>, addr: SocketAddr) -> Self {
        Candidate {
            foundation: foundation.into(),
            component: 1,
            transport: "udp".into(),
            priority: Self::recommended_priority(&CandidateType::Host, 65535, 1),
            address: addr.ip().to_string(),
            port: addr.port(),
            kind: CandidateType::Host,
            related_address: None,
            related_port: None,
            extensions: Vec::new(),
        }
    }

    /// RFC 8445 §5.1.2.1: `2^24 * type preference + 2^8 * local preference + (256 - component)`.
    pub fn recommended_priority(kind: &CandidateType, local_preference: u16, component: u8) -> u32 {
        (kind.preference() << 24)
            + (u32::from(local_preference) << 8)
            + (256 - u32::from(component))
    }

    /// The address as an IP address (`None` for host names such as mDNS `.local` names).
    pub fn ip(&self) -> Option<IpAddr> {
        self.address.parse().ok()
    }

    /// The address and port as a socket address, when the address is an IP address.
    pub fn socket_addr(&self) -> Option<SocketAddr> {
        self.ip().map(|ip| SocketAddr::new(ip, self.port))
    }

    /// Whether the transport is UDP (case-insensitive).
    pub fn is_udp(&self) -> bool {
        self.transport.eq_ignore_ascii_case("udp")
    }

    /// The value of an extension such as `tcptype` or `generation`.
    pub fn extension(&self, name: &str) -> Option<&str> {
        self.extensions
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Parses the text after `a=candidate:`.
    pub(crate) fn parse_value(v: &str) -> Result<Self, SdpError> {
        let t: Vec<&str> = v.split_ascii_whitespace().collect();
        if t.len() < 8 {
            return Err(SdpError::invalid(
                F,
                format!("expected at least 8 fields, found {}", t.len()),
            ));
        }
        if t[6] != "typ" {
            return Err(SdpError::invalid(
                F,
                format!("expected `typ` as the 7th field, found {:?}", excerpt(t[6])),
            ));
        }
        let mut c = Candidate {
            foundation: t[0].to_owned(),
            component: number(F, "component", t[1])?,
            transport: t[2].to_owned(),
            priority: number(F, "priority", t[3])?,
            address: t[4].to_owned(),
            port: number(F, "port", t[5])?,
            kind: CandidateType::parse(t[7]),
            related_address: None,
            related_port: None,
            extensions: Vec::new(),
        };
        let mut rest = &t[8..];
        if let ["raddr", addr, tail @ ..] = rest {
            c.related_address = Some((*addr).to_owned());
            rest = tail;
        }
        if let ["rport", port, tail @ ..] = rest {
            c.related_port = Some(number(F, "rport", port)?);
            rest = tail;
        }
        let pairs = rest.chunks_exact(2);
        if let [name] = pairs.remainder() {
            return Err(SdpError::invalid(
                F,
                format!("extension {:?} has no value", excerpt(name)),
            ));
        }
        c.extensions = pairs.map(|p| (p[0].to_owned(), p[1].to_owned())).collect();
        Ok(c)
    }
}

impl FromStr for Candidate {
    type Err = SdpError;

    /// Parses a candidate as trickled in signalling: with or without a leading `a=` and `candidate:`.
    fn from_str(s: &str) -> Result<Self, SdpError> {
        let s = s.trim();
        let s = s.strip_prefix("a=").unwrap_or(s);
        let s = s.strip_prefix("candidate:").unwrap_or(s);
        Self::parse_value(s)
    }
}

impl fmt::Display for Candidate {
    /// The text after `a=candidate:`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {} {} {} {} typ {}",
            self.foundation,
            self.component,
            self.transport,
            self.priority,
            self.address,
            self.port,
            self.kind
        )?;
        if let Some(a) = &self.related_address {
            write!(f, " raddr {a}")?;
        }
        if let Some(p) = self.related_port {
            write!(f, " rport {p}")?;
        }
        for (n, v) in &self.extensions {
            write!(f, " {n} {v}")?;
        }
        Ok(())
    }
}
