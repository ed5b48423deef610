//! Which protocol a datagram on the multiplexed media port belongs to (RFC 7983, section 7).
//!
//! Sans-IO: the first byte decides. The bridge will hand STUN to ICE-lite, DTLS to the
//! handshake and RTP/RTCP to SRTP.

/// Protocol of a datagram received on the media port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PacketKind {
    /// First byte 0-3: STUN (ICE connectivity checks).
    Stun,
    /// First byte 20-63: DTLS (the DTLS-SRTP handshake).
    Dtls,
    /// First byte 128-191: RTP or RTCP (SRTP/SRTCP from browsers).
    Rtp,
    /// Anything else (ZRTP, TURN channels, empty datagrams, noise): dropped.
    Other,
}

impl PacketKind {
    /// All kinds, in the order [`PacketKind::index`] numbers them.
    pub const ALL: [PacketKind; 4] = [Self::Stun, Self::Dtls, Self::Rtp, Self::Other];

    /// Stable index 0..4, for per-kind counters.
    pub fn index(self) -> usize {
        match self {
            Self::Stun => 0,
            Self::Dtls => 1,
            Self::Rtp => 2,
            Self::Other => 3,
        }
    }
}

/// Classifies `datagram` by its first byte.
pub fn classify(datagram: &[u8]) -> PacketKind {
    match datagram.first() {
        Some(0..=3) => PacketKind::Stun,
        Some(20..=63) => PacketKind::Dtls,
        Some(128..=191) => PacketKind::Rtp,
        _ => PacketKind::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_byte_ranges_follow_rfc_7983() {
        // STUN binding request, DTLS ClientHello record, RTP v2 PCMU, RTCP SR.
        assert_eq!(classify(&[0x00, 0x01, 0x00, 0x00]), PacketKind::Stun);
        assert_eq!(classify(&[22, 0xfe, 0xfd]), PacketKind::Dtls);
        assert_eq!(classify(&[0x80, 0x00]), PacketKind::Rtp);
        assert_eq!(classify(&[0x80, 200]), PacketKind::Rtp);
        for edge in [3u8, 20, 63, 128, 191] {
            assert_ne!(classify(&[edge]), PacketKind::Other, "{edge}");
        }
        for other in [4u8, 19, 64, 127, 192, 255] {
            assert_eq!(classify(&[other]), PacketKind::Other, "{other}");
        }
        assert_eq!(classify(&[]), PacketKind::Other);
    }

    #[test]
    fn indexes_are_distinct_and_match_all() {
        for (i, kind) in PacketKind::ALL.iter().enumerate() {
            assert_eq!(kind.index(), i);
        }
    }
}
