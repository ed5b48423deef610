//! Codecs, RFC 3264 offer/answer codec intersection, and payload type mapping between two call legs.

use std::borrow::Cow;
use std::fmt;

use super::MediaDescription;

/// An RTP codec: encoding name, clock rate and channel count.
///
/// Names compare case-insensitively (`OPUS` is `opus`), and an absent channel count is one.
#[derive(Debug, Clone, Eq)]
pub struct Codec {
    /// e.g. `PCMU`, `opus`, `telephone-event`.
    pub name: Cow<'static, str>,
    /// Hz, as in `a=rtpmap` (G.722 says 8000 although it samples at 16000).
    pub clock_rate: u32,
    /// Audio channels.
    pub channels: u16,
}

impl PartialEq for Codec {
    fn eq(&self, other: &Self) -> bool {
        self.name.eq_ignore_ascii_case(&other.name)
            && self.clock_rate == other.clock_rate
            && self.channels == other.channels
    }
}

impl fmt::Display for Codec {
    /// `name/rate` or `name/rate/channels`, as in `a=rtpmap`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.name, self.clock_rate)?;
        if self.channels != 1 {
            write!(f, "/{}", self.channels)?;
        }
        Ok(())
    }
}

const fn codec(name: &'static str, clock_rate: u32, channels: u16) -> Codec {
    Codec {
        name: Cow::Borrowed(name),
        clock_rate,
        channels,
    }
}

impl Codec {
    /// G.711 µ-law, static payload type 0.
    pub const PCMU: Codec = codec("PCMU", 8000, 1);
    /// G.711 A-law, static payload type 8.
    pub const PCMA: Codec = codec("PCMA", 8000, 1);
    /// G.722, static payload type 9.
    pub const G722: Codec = codec("G722", 8000, 1);
    /// Opus (always advertised as two channels, RFC 7587).
    pub const OPUS: Codec = codec("opus", 48000, 2);
    /// RFC 4733 DTMF events for 8 kHz codecs.
    pub const TELEPHONE_EVENT_8000: Codec = codec("telephone-event", 8000, 1);
    /// RFC 4733 DTMF events for Opus.
    pub const TELEPHONE_EVENT_48000: Codec = codec("telephone-event", 48000, 1);

    /// What the media node bridges without transcoding: PCMU, PCMA, G.722, Opus and DTMF events.
    pub const BRIDGE_AUDIO: [Codec; 6] = [
        Codec::PCMU,
        Codec::PCMA,
        Codec::G722,
        Codec::OPUS,
        Codec::TELEPHONE_EVENT_8000,
        Codec::TELEPHONE_EVENT_48000,
    ];

    /// A codec with the given name, clock rate and channel count.
    pub fn new(name: impl Into<Cow<'static, str>>, clock_rate: u32, channels: u16) -> Self {
        Codec {
            name: name.into(),
            clock_rate,
            channels,
        }
    }

    /// The codec of a static payload type of RFC 3551 §6 (used when an offer omits `a=rtpmap`).
    pub fn from_static_payload_type(pt: u8) -> Option<Codec> {
        Some(match pt {
            0 => Codec::PCMU,
            3 => codec("GSM", 8000, 1),
            4 => codec("G723", 8000, 1),
            5 => codec("DVI4", 8000, 1),
            6 => codec("DVI4", 16000, 1),
            7 => codec("LPC", 8000, 1),
            8 => Codec::PCMA,
            9 => Codec::G722,
            10 => codec("L16", 44100, 2),
            11 => codec("L16", 44100, 1),
            12 => codec("QCELP", 8000, 1),
            13 => codec("CN", 8000, 1),
            14 => codec("MPA", 90000, 1),
            15 => codec("G728", 8000, 1),
            16 => codec("DVI4", 11025, 1),
            17 => codec("DVI4", 22050, 1),
            18 => codec("G729", 8000, 1),
            25 => codec("CelB", 90000, 1),
            26 => codec("JPEG", 90000, 1),
            28 => codec("nv", 90000, 1),
            31 => codec("H261", 90000, 1),
            32 => codec("MPV", 90000, 1),
            33 => codec("MP2T", 90000, 1),
            34 => codec("H263", 90000, 1),
            _ => return None,
        })
    }

    /// Whether this is RFC 4733 `telephone-event`.
    pub fn is_telephone_event(&self) -> bool {
        self.name.eq_ignore_ascii_case("telephone-event")
    }

    /// Whether this is comfort noise, FEC or redundancy rather than a codec that carries audio itself.
    pub fn is_auxiliary(&self) -> bool {
        self.is_telephone_event()
            || ["CN", "red", "ulpfec", "flexfec", "rtx"]
                .iter()
                .any(|n| self.name.eq_ignore_ascii_case(n))
    }
}

/// A codec as a media section uses it: payload type, codec and its `a=fmtp` parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayloadCodec {
    /// 0-127.
    pub payload_type: u8,
    /// The codec the payload type stands for.
    pub codec: Codec,
    /// The `a=fmtp` parameters for this payload type, if any.
    pub fmtp: Option<String>,
}

/// The codecs a media section offers, in its order of preference.
///
/// A payload type is described by its `a=rtpmap`, or for static payload types without one (0, 8, 9
/// ...) by RFC 3551. Dynamic payload types without `a=rtpmap` are skipped: they cannot be matched.
pub fn offered_codecs(media: &MediaDescription) -> Vec<PayloadCodec> {
    media
        .media
        .payload_types()
        .filter_map(|pt| {
            let codec = media.codec(pt)?;
            Some(PayloadCodec {
                payload_type: pt,
                codec,
                fmtp: media.fmtp(pt).map(|f| f.params.clone()),
            })
        })
        .collect()
}

/// RFC 3264 §6.1: the codecs an answer to `offer` lists, given the codecs the answerer supports.
///
/// The result keeps the offerer's order of preference and the offerer's payload type numbers (an
/// answerer must use them), and each codec's fmtp from the offer. `telephone-event` is kept only at a
/// clock rate that a kept audio codec also uses (RFC 4733 §2.5.1.2), and not at all when no audio codec
/// matched. A codec offered twice (same name, rate, channels) is answered once, with its first payload
/// type. An empty result means the media section must be rejected (port 0) or the call refused
/// with 488.
pub fn answer_codecs(offer: &MediaDescription, supported: &[Codec]) -> Vec<PayloadCodec> {
    let mut kept: Vec<PayloadCodec> = Vec::new();
    for pc in offered_codecs(offer) {
        let is_supported = supported.contains(&pc.codec);
        let duplicate = kept.iter().any(|k| k.codec == pc.codec);
        if is_supported && !duplicate {
            kept.push(pc);
        }
    }
    let primary_rates: Vec<u32> = kept
        .iter()
        .filter(|pc| !pc.codec.is_auxiliary())
        .map(|pc| pc.codec.clock_rate)
        .collect();
    kept.retain(|pc| !pc.codec.is_auxiliary() || primary_rates.contains(&pc.codec.clock_rate));
    kept
}

/// How payload types of one call leg (`a`) translate to the other (`b`), e.g. telephone-event 101 on
/// the upstream side and 126 on the browser side. Codecs are matched by [`Codec`] equality.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PayloadTypeMap {
    pairs: Vec<(u8, u8)>,
}

impl PayloadTypeMap {
    /// Pairs every codec of `a` with the first codec of `b` that is the same codec.
    pub fn between(a: &[PayloadCodec], b: &[PayloadCodec]) -> Self {
        let pairs = a
            .iter()
            .filter_map(|x| {
                b.iter()
                    .find(|y| y.codec == x.codec)
                    .map(|y| (x.payload_type, y.payload_type))
            })
            .collect();
        PayloadTypeMap { pairs }
    }

    /// The payload type on side `b` for one on side `a`.
    pub fn a_to_b(&self, pt: u8) -> Option<u8> {
        self.pairs.iter().find(|(a, _)| *a == pt).map(|(_, b)| *b)
    }

    /// The payload type on side `a` for one on side `b`.
    pub fn b_to_a(&self, pt: u8) -> Option<u8> {
        self.pairs.iter().find(|(_, b)| *b == pt).map(|(a, _)| *a)
    }

    /// The `(a, b)` pairs, in side `a`'s order.
    pub fn pairs(&self) -> &[(u8, u8)] {
        &self.pairs
    }

    /// Whether no codec is common to both sides.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }
}
