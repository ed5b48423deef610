//! SDP (RFC 8866, RFC 4566): parsing, serialization, and the offer/answer pieces a WebRTC <-> plain RTP
//! bridge needs.
//!
//! ```
//! use shared::sdp::{answer_codecs, Codec, Connection, SessionDescription};
//!
//! let offer: SessionDescription = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nt=0 0\r\n\
//!     m=audio 49170 RTP/AVP 0 8 101\r\nc=IN IP4 192.0.2.1\r\n\
//!     a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\n".parse()?;
//! let audio = &offer.media[0];
//! let answer = answer_codecs(audio, &Codec::BRIDGE_AUDIO);
//! let pts: Vec<u8> = answer.iter().map(|c| c.payload_type).collect();
//! assert_eq!(pts, [0, 8, 101]); // PCMU and PCMA recognised from their static payload types
//! assert_eq!(offer.connection_for(audio).and_then(Connection::ip), Some([192, 0, 2, 1].into()));
//! # Ok::<(), shared::sdp::SdpError>(())
//! ```
//!
//! # Design
//! - **Own parser, no crate.** `sdp-types` 0.3 (untyped attributes; fixed field order, so `t=` before `c=`
//!   is reordered; `port: u16` rejects SIPp templates), `webrtc-sdp` 0.3 (Mozilla; JSEP subset that drops
//!   or rejects attributes it does not support, normalises what it keeps, MPL-2.0, pulls `url`) and
//!   `sdp` (webrtc-rs; untyped key/value attributes, a strict RFC-order state machine, writes fields in a
//!   fixed order, pulls `rand`, `url`, thiserror 1) were evaluated. None round-trips the conformance
//!   samples and none gives typed candidates, fingerprints or codecs together with verbatim unknown
//!   attributes. The format is small (about 2,500 lines here with docs) and this is pure `std`, so it
//!   builds for wasm32 too.
//! - **Lines in order.** A description is `v=`, `o=`, `s=`, then the other session lines in the order
//!   received ([`Line`]), then media sections, each an `m=` line ([`Media`]) and its lines. Nothing is
//!   reordered, unknown lines and attributes are kept verbatim, and typed values remember the lexical
//!   choices real stacks make (lower-case fingerprint hex, `OPUS`, `UDP`, `G722/8000/1`), so serializing an
//!   unmodified parse gives back the input lines with CRLF endings. Mutators replace lines in place.
//! - **Strict where the bridge relies on it.** `v=0` first, then `o=` and `s=`; known attributes must fit
//!   their grammar (payload types 0-127, numeric ports, hex fingerprints ...), otherwise parsing fails
//!   with an [`SdpError`] naming the line and the reason. LF or CRLF line endings, trailing blank lines
//!   and extra spaces between fields are accepted. The one tolerance beyond RFC 8866 is a bracketed
//!   template placeholder as `m=` port ([`Port::Template`]), so SIPp scenario templates round-trip.
//! - **Pure functions for offer/answer.** [`answer_codecs`] and [`PayloadTypeMap`] hold no state;
//!   the caller decides what to put in the answer with the mutators. Parsing never panics (a test
//!   feeds it mutated samples) and ICE passwords and SDES keys are [`Secret`]s, redacted in `Debug`.

mod attribute;
mod candidate;
mod codec;
mod error;
mod lines;

use std::fmt;
use std::str::FromStr;

pub use attribute::{
    Attribute, Crypto, Direction, Extmap, Fingerprint, Fmtp, Group, Rtcp, RtcpFb, Rtpmap, Secret,
    Setup, Ssrc,
};
pub use candidate::{Candidate, CandidateType};
pub use codec::{answer_codecs, offered_codecs, Codec, PayloadCodec, PayloadTypeMap};
pub use error::SdpError;
pub use lines::{
    AddrType, Bandwidth, Connection, Line, Media, MediaType, Origin, Port, Proto, Timing,
};

use error::excerpt;

/// A parsed session description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionDescription {
    /// `o=`.
    pub origin: Origin,
    /// `s=` (`-` when there is none to give; may be empty as received).
    pub session_name: String,
    /// The session-level lines after `s=`, in order (`c=`, `t=`, `a=` ...).
    pub lines: Vec<Line>,
    /// The media sections, in order.
    pub media: Vec<MediaDescription>,
}

/// One media section: its `m=` line and the lines that follow it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaDescription {
    /// `m=`.
    pub media: Media,
    /// The lines after `m=`, in order (`c=`, `b=`, `a=` ...).
    pub lines: Vec<Line>,
}

/// Methods shared by the session level and media sections, which both hold an ordered `lines` list.
macro_rules! section_methods {
    ($ty:ty, $connection_before:expr) => {
        impl $ty {
            /// The `a=` lines, in order.
            pub fn attributes(&self) -> impl Iterator<Item = &Attribute> {
                self.lines.iter().filter_map(|l| match l {
                    Line::Attribute(a) => Some(a),
                    _ => None,
                })
            }

            /// The first attribute with this name.
            pub fn attribute(&self, name: &str) -> Option<&Attribute> {
                self.attributes().find(|a| a.name() == name)
            }

            /// Whether an attribute with this name is present (e.g. `rtcp-rsize`).
            pub fn has_attribute(&self, name: &str) -> bool {
                self.attribute(name).is_some()
            }

            /// Appends an attribute after the existing lines.
            pub fn push_attribute(&mut self, attribute: Attribute) {
                self.lines.push(Line::Attribute(attribute));
            }

            /// Keeps only the attributes for which `keep` returns true.
            pub fn retain_attributes(&mut self, mut keep: impl FnMut(&Attribute) -> bool) {
                self.lines.retain(|l| match l {
                    Line::Attribute(a) => keep(a),
                    _ => true,
                });
            }

            /// Removes every attribute matching `matches` and puts `new` where the first of them was
            /// (or after the existing lines when none matched).
            pub fn replace_attributes(
                &mut self,
                mut matches: impl FnMut(&Attribute) -> bool,
                new: impl IntoIterator<Item = Attribute>,
            ) {
                let first = self
                    .lines
                    .iter()
                    .position(|l| matches!(l, Line::Attribute(a) if matches(a)));
                self.lines
                    .retain(|l| !matches!(l, Line::Attribute(a) if matches(a)));
                let at = first.unwrap_or(self.lines.len());
                self.lines
                    .splice(at..at, new.into_iter().map(Line::Attribute));
            }

            /// The `c=` line.
            pub fn connection(&self) -> Option<&Connection> {
                self.lines.iter().find_map(|l| match l {
                    Line::Connection(c) => Some(c),
                    _ => None,
                })
            }

            /// Sets the `c=` line: replaces the existing one(s) in place, or inserts one where RFC 8866
            /// puts it.
            pub fn set_connection(&mut self, connection: Connection) {
                let first = self
                    .lines
                    .iter()
                    .position(|l| matches!(l, Line::Connection(_)));
                self.lines.retain(|l| !matches!(l, Line::Connection(_)));
                let before: &[char] = $connection_before;
                let at = first.unwrap_or_else(|| {
                    self.lines
                        .iter()
                        .position(|l| before.contains(&l.kind()))
                        .unwrap_or(self.lines.len())
                });
                self.lines.insert(at, Line::Connection(connection));
            }

            /// The direction attribute, if any (see also [`SessionDescription::direction_for`]).
            pub fn direction(&self) -> Option<Direction> {
                self.attributes().find_map(|a| match a {
                    Attribute::Direction(d) => Some(*d),
                    _ => None,
                })
            }

            /// Sets the direction attribute.
            pub fn set_direction(&mut self, direction: Direction) {
                self.replace_attributes(
                    |a| matches!(a, Attribute::Direction(_)),
                    [Attribute::Direction(direction)],
                );
            }

            /// `a=ice-ufrag`.
            pub fn ice_ufrag(&self) -> Option<&str> {
                self.attributes().find_map(|a| match a {
                    Attribute::IceUfrag(u) => Some(u.as_str()),
                    _ => None,
                })
            }

            /// `a=ice-pwd`.
            pub fn ice_pwd(&self) -> Option<&Secret> {
                self.attributes().find_map(|a| match a {
                    Attribute::IcePwd(p) => Some(p),
                    _ => None,
                })
            }

            /// `a=ice-options`, as written.
            pub fn ice_options(&self) -> Option<&str> {
                self.attributes().find_map(|a| match a {
                    Attribute::IceOptions(o) => Some(o.as_str()),
                    _ => None,
                })
            }

            /// Whether `a=ice-lite` is present.
            pub fn ice_lite(&self) -> bool {
                self.attributes().any(|a| matches!(a, Attribute::IceLite))
            }

            /// Adds or removes `a=ice-lite`.
            pub fn set_ice_lite(&mut self, lite: bool) {
                let new = lite.then_some(Attribute::IceLite);
                self.replace_attributes(|a| matches!(a, Attribute::IceLite), new);
            }

            /// Replaces `a=ice-ufrag` and `a=ice-pwd` in place (or appends them).
            pub fn set_ice_credentials(&mut self, ufrag: impl Into<String>, pwd: Secret) {
                self.replace_attributes(
                    |a| matches!(a, Attribute::IceUfrag(_)),
                    [Attribute::IceUfrag(ufrag.into())],
                );
                self.replace_attributes(
                    |a| matches!(a, Attribute::IcePwd(_)),
                    [Attribute::IcePwd(pwd)],
                );
            }

            /// The `a=candidate` lines, in order.
            pub fn candidates(&self) -> impl Iterator<Item = &Candidate> {
                self.attributes().filter_map(|a| match a {
                    Attribute::Candidate(c) => Some(c),
                    _ => None,
                })
            }

            /// Whether `a=end-of-candidates` is present.
            pub fn end_of_candidates(&self) -> bool {
                self.attributes()
                    .any(|a| matches!(a, Attribute::EndOfCandidates))
            }

            /// Replaces every `a=candidate` and `a=end-of-candidates` with `candidates`, followed by
            /// `a=end-of-candidates` when `complete` (gathering finished, as for an ICE-lite node).
            pub fn set_candidates(
                &mut self,
                candidates: impl IntoIterator<Item = Candidate>,
                complete: bool,
            ) {
                let new = candidates
                    .into_iter()
                    .map(Attribute::Candidate)
                    .chain(complete.then_some(Attribute::EndOfCandidates));
                self.replace_attributes(
                    |a| matches!(a, Attribute::Candidate(_) | Attribute::EndOfCandidates),
                    new,
                );
            }

            /// The `a=fingerprint` lines, in order.
            pub fn fingerprints(&self) -> impl Iterator<Item = &Fingerprint> {
                self.attributes().filter_map(|a| match a {
                    Attribute::Fingerprint(f) => Some(f),
                    _ => None,
                })
            }

            /// Replaces every `a=fingerprint` with this one.
            pub fn set_fingerprint(&mut self, fingerprint: Fingerprint) {
                self.replace_attributes(
                    |a| matches!(a, Attribute::Fingerprint(_)),
                    [Attribute::Fingerprint(fingerprint)],
                );
            }

            /// `a=setup`.
            pub fn setup(&self) -> Option<Setup> {
                self.attributes().find_map(|a| match a {
                    Attribute::Setup(s) => Some(*s),
                    _ => None,
                })
            }

            /// Sets `a=setup`.
            pub fn set_setup(&mut self, setup: Setup) {
                self.replace_attributes(
                    |a| matches!(a, Attribute::Setup(_)),
                    [Attribute::Setup(setup)],
                );
            }
        }
    };
}

section_methods!(SessionDescription, &['b', 't', 'r', 'z', 'k', 'a']);
section_methods!(MediaDescription, &['b', 'k', 'a']);

impl SessionDescription {
    /// A description with `s=-` and `t=0 0`, ready for media sections and attributes.
    pub fn new(origin: Origin) -> Self {
        SessionDescription {
            origin,
            session_name: "-".into(),
            lines: vec![Line::Timing(Timing { start: 0, stop: 0 })],
            media: Vec::new(),
        }
    }

    /// Parses a description; LF and CRLF line endings are both accepted.
    pub fn parse(input: &str) -> Result<Self, SdpError> {
        let mut raw: Vec<&str> = input
            .split('\n')
            .map(|l| l.strip_suffix('\r').unwrap_or(l))
            .collect();
        while raw.last().is_some_and(|l| l.trim().is_empty()) {
            raw.pop();
        }
        if raw.is_empty() {
            return Err(SdpError::Empty);
        }
        let mut origin = None;
        let mut session_name = None;
        let mut lines = Vec::new();
        let mut media: Vec<MediaDescription> = Vec::new();
        for (i, text) in raw.iter().enumerate() {
            let n = i + 1;
            if let Some(b) = text.bytes().find(|b| *b == 0 || *b == b'\r') {
                return Err(SdpError::ControlCharacter { line: n, byte: b });
            }
            let bytes = text.as_bytes();
            if bytes.len() < 2 || !bytes[0].is_ascii_lowercase() || bytes[1] != b'=' {
                return Err(SdpError::MalformedLine {
                    line: n,
                    found: excerpt(text),
                });
            }
            let kind = char::from(bytes[0]);
            let value = &text[2..];
            let misplaced = |reason: &'static str| SdpError::Misplaced {
                line: n,
                kind,
                reason,
            };
            match (n, kind) {
                (1, 'v') if value.trim() == "0" => {}
                (1, _) => return Err(SdpError::BadVersion { line: n }),
                (2, 'o') => origin = Some(Origin::parse(value).map_err(|e| e.at(n))?),
                (2, _) => return Err(misplaced("comes where `o=` must follow `v=`")),
                (3, 's') => session_name = Some(value.to_owned()),
                (3, _) => return Err(misplaced("comes where `s=` must follow `o=`")),
                (_, 'v' | 'o' | 's') => {
                    return Err(misplaced("may appear only once, at the start"))
                }
                (_, 'm') => media.push(MediaDescription {
                    media: Media::parse(value).map_err(|e| e.at(n))?,
                    lines: Vec::new(),
                }),
                (_, 't' | 'r' | 'z' | 'u' | 'e' | 'p') if !media.is_empty() => {
                    return Err(misplaced("is only allowed before the first `m=`"))
                }
                _ => {
                    let line = Line::parse(kind, value).map_err(|e| e.at(n))?;
                    match media.last_mut() {
                        Some(m) => m.lines.push(line),
                        None => lines.push(line),
                    }
                }
            }
        }
        Ok(SessionDescription {
            origin: origin.ok_or(SdpError::Missing { kind: 'o' })?,
            session_name: session_name.ok_or(SdpError::Missing { kind: 's' })?,
            lines,
            media,
        })
    }

    /// Parses a description from bytes, e.g. a SIP message body.
    pub fn parse_bytes(input: &[u8]) -> Result<Self, SdpError> {
        match std::str::from_utf8(input) {
            Ok(s) => Self::parse(s),
            Err(e) => {
                let valid = input.get(..e.valid_up_to()).unwrap_or_default();
                let line = 1 + valid.iter().filter(|b| **b == b'\n').count();
                Err(SdpError::NotUtf8 { line })
            }
        }
    }

    /// The `a=group` lines.
    pub fn groups(&self) -> impl Iterator<Item = &Group> {
        self.attributes().filter_map(|a| match a {
            Attribute::Group(g) => Some(g),
            _ => None,
        })
    }

    /// The first `a=group:BUNDLE`.
    pub fn bundle_group(&self) -> Option<&Group> {
        self.groups().find(|g| g.semantics == "BUNDLE")
    }

    /// The media section with this `a=mid`.
    pub fn media_by_mid(&self, mid: &str) -> Option<&MediaDescription> {
        self.media.iter().find(|m| m.mid() == Some(mid))
    }

    /// The media section with this `a=mid`, mutably.
    pub fn media_by_mid_mut(&mut self, mid: &str) -> Option<&mut MediaDescription> {
        self.media.iter_mut().find(|m| m.mid() == Some(mid))
    }

    /// The connection a media section uses: its own `c=`, else the session's.
    pub fn connection_for<'a>(&'a self, media: &'a MediaDescription) -> Option<&'a Connection> {
        media.connection().or_else(|| self.connection())
    }

    /// The direction of a media section: its own, else the session's, else `sendrecv`.
    pub fn direction_for(&self, media: &MediaDescription) -> Direction {
        media
            .direction()
            .or_else(|| self.direction())
            .unwrap_or(Direction::SendRecv)
    }

    /// The ICE username fragment of a media section: its own, else the session's.
    pub fn ice_ufrag_for<'a>(&'a self, media: &'a MediaDescription) -> Option<&'a str> {
        media.ice_ufrag().or_else(|| self.ice_ufrag())
    }

    /// The ICE password of a media section: its own, else the session's.
    pub fn ice_pwd_for<'a>(&'a self, media: &'a MediaDescription) -> Option<&'a Secret> {
        media.ice_pwd().or_else(|| self.ice_pwd())
    }

    /// The fingerprints of a media section: its own if it has any, else the session's.
    pub fn fingerprints_for<'a>(&'a self, media: &'a MediaDescription) -> Vec<&'a Fingerprint> {
        let own: Vec<_> = media.fingerprints().collect();
        if own.is_empty() {
            self.fingerprints().collect()
        } else {
            own
        }
    }

    /// The DTLS role of a media section: its own `a=setup`, else the session's.
    pub fn setup_for(&self, media: &MediaDescription) -> Option<Setup> {
        media.setup().or_else(|| self.setup())
    }
}

impl FromStr for SessionDescription {
    type Err = SdpError;

    fn from_str(s: &str) -> Result<Self, SdpError> {
        SessionDescription::parse(s)
    }
}

impl fmt::Display for SessionDescription {
    /// The description on the wire: every line ends in CRLF.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v=0\r\no={}\r\ns={}\r\n", self.origin, self.session_name)?;
        for l in &self.lines {
            write!(f, "{l}\r\n")?;
        }
        for m in &self.media {
            write!(f, "{m}")?;
        }
        Ok(())
    }
}

impl MediaDescription {
    /// A media section with just its `m=` line.
    pub fn new(media: Media) -> Self {
        MediaDescription {
            media,
            lines: Vec::new(),
        }
    }

    /// `a=mid`.
    pub fn mid(&self) -> Option<&str> {
        self.attributes().find_map(|a| match a {
            Attribute::Mid(m) => Some(m.as_str()),
            _ => None,
        })
    }

    /// The port number of the `m=` line (`None` for a template placeholder).
    pub fn port(&self) -> Option<u16> {
        self.media.port.number()
    }

    /// Sets the `m=` port.
    pub fn set_port(&mut self, port: u16) {
        self.media.port = Port::Number(port);
    }

    /// Whether the section is rejected or disabled (port 0).
    pub fn is_rejected(&self) -> bool {
        self.port() == Some(0)
    }

    /// The payload types of the `m=` line, in order of preference.
    pub fn payload_types(&self) -> impl Iterator<Item = u8> + '_ {
        self.media.payload_types()
    }

    /// `a=rtpmap` for a payload type.
    pub fn rtpmap(&self, pt: u8) -> Option<&Rtpmap> {
        self.attributes().find_map(|a| match a {
            Attribute::Rtpmap(r) if r.payload_type == pt => Some(r),
            _ => None,
        })
    }

    /// `a=fmtp` for a payload type.
    pub fn fmtp(&self, pt: u8) -> Option<&Fmtp> {
        self.attributes().find_map(|a| match a {
            Attribute::Fmtp(f) if f.payload_type == pt => Some(f),
            _ => None,
        })
    }

    /// `a=rtcp-fb` lines for a payload type, including `*` ones.
    pub fn rtcp_feedback(&self, pt: u8) -> impl Iterator<Item = &RtcpFb> {
        self.attributes().filter_map(move |a| match a {
            Attribute::RtcpFb(r) if r.applies_to(pt) => Some(r),
            _ => None,
        })
    }

    /// The codec a payload type stands for: from `a=rtpmap`, or RFC 3551 for static payload types.
    pub fn codec(&self, pt: u8) -> Option<Codec> {
        match self.rtpmap(pt) {
            Some(r) => Some(Codec::new(
                r.encoding.clone(),
                r.clock_rate,
                r.channels.unwrap_or(1),
            )),
            None => Codec::from_static_payload_type(pt),
        }
    }

    /// Whether `a=rtcp-mux` is present.
    pub fn rtcp_mux(&self) -> bool {
        self.attributes().any(|a| matches!(a, Attribute::RtcpMux))
    }

    /// `a=rtcp`.
    pub fn rtcp(&self) -> Option<&Rtcp> {
        self.attributes().find_map(|a| match a {
            Attribute::Rtcp(r) => Some(r),
            _ => None,
        })
    }

    /// `a=ptime` in milliseconds.
    pub fn ptime(&self) -> Option<u32> {
        self.attributes().find_map(|a| match a {
            Attribute::Ptime(p) => Some(*p),
            _ => None,
        })
    }

    /// `a=maxptime` in milliseconds.
    pub fn maxptime(&self) -> Option<u32> {
        self.attributes().find_map(|a| match a {
            Attribute::Maxptime(p) => Some(*p),
            _ => None,
        })
    }

    /// `a=ssrc` lines, in order.
    pub fn ssrcs(&self) -> impl Iterator<Item = &Ssrc> {
        self.attributes().filter_map(|a| match a {
            Attribute::Ssrc(s) => Some(s),
            _ => None,
        })
    }

    /// `a=crypto` lines, in order.
    pub fn crypto(&self) -> impl Iterator<Item = &Crypto> {
        self.attributes().filter_map(|a| match a {
            Attribute::Crypto(c) => Some(c),
            _ => None,
        })
    }

    /// `a=extmap` lines, in order.
    pub fn extmaps(&self) -> impl Iterator<Item = &Extmap> {
        self.attributes().filter_map(|a| match a {
            Attribute::Extmap(e) => Some(e),
            _ => None,
        })
    }

    /// Keeps only the payload types for which `keep` returns true: removes them from the `m=` line
    /// and drops their `a=rtpmap`, `a=fmtp` and `a=rtcp-fb` lines (`a=rtcp-fb:*` stays).
    pub fn retain_payload_types(&mut self, mut keep: impl FnMut(u8) -> bool) {
        if !self.media.proto.is_rtp() {
            return;
        }
        let mut removed = Vec::new();
        self.media.formats.retain(|f| match f.parse::<u8>() {
            Ok(pt) if !keep(pt) => {
                removed.push(pt);
                false
            }
            _ => true,
        });
        self.retain_attributes(|a| a.payload_type().is_none_or(|pt| !removed.contains(&pt)));
    }

    /// Makes `codecs` the section's codecs, in that order: rewrites the `m=` formats and the
    /// `a=rtpmap`/`a=fmtp` lines (written where the first of the old ones was), and drops `a=rtcp-fb`
    /// for payload types no longer listed. Use it with [`answer_codecs`] to build an answer.
    pub fn set_codecs(&mut self, codecs: &[PayloadCodec]) {
        self.media.formats = codecs.iter().map(|c| c.payload_type.to_string()).collect();
        let new = codecs.iter().flat_map(|c| {
            let rtpmap = Attribute::Rtpmap(Rtpmap {
                payload_type: c.payload_type,
                encoding: c.codec.name.to_string(),
                clock_rate: c.codec.clock_rate,
                channels: (c.codec.channels != 1).then_some(c.codec.channels),
            });
            let fmtp = c.fmtp.as_ref().map(|p| {
                Attribute::Fmtp(Fmtp {
                    payload_type: c.payload_type,
                    params: p.clone(),
                })
            });
            std::iter::once(rtpmap).chain(fmtp)
        });
        let new: Vec<Attribute> = new.collect();
        self.replace_attributes(
            |a| matches!(a, Attribute::Rtpmap(_) | Attribute::Fmtp(_)),
            new,
        );
        self.retain_attributes(|a| match a {
            Attribute::RtcpFb(RtcpFb {
                payload_type: Some(pt),
                ..
            }) => codecs.iter().any(|c| c.payload_type == *pt),
            _ => true,
        });
    }
}

impl fmt::Display for MediaDescription {
    /// The section on the wire: every line ends in CRLF.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "m={}\r\n", self.media)?;
        for l in &self.lines {
            write!(f, "{l}\r\n")?;
        }
        Ok(())
    }
}
