//! The one STUN detail the bridge needs before a browser leg sees a packet: which session a
//! binding request is for, from the local half of its USERNAME (RFC 8445 §7.2.2:
//! `local:remote`).

const HEADER_LEN: usize = 20;
const MAGIC_COOKIE: [u8; 4] = [0x21, 0x12, 0xa4, 0x42];
const ATTR_USERNAME: u16 = 0x0006;

/// The local ICE ufrag a STUN message's USERNAME names (the part before `:`), or `None` if the
/// datagram is not a well-formed STUN message with a USERNAME.
pub fn local_ufrag(datagram: &[u8]) -> Option<&str> {
    if datagram.len() < HEADER_LEN || datagram[0] & 0xc0 != 0 || datagram[4..8] != MAGIC_COOKIE {
        return None;
    }
    let declared = usize::from(u16::from_be_bytes([datagram[2], datagram[3]]));
    let body = datagram.get(HEADER_LEN..HEADER_LEN + declared)?;
    let mut at = 0;
    while at + 4 <= body.len() {
        let kind = u16::from_be_bytes([body[at], body[at + 1]]);
        let len = usize::from(u16::from_be_bytes([body[at + 2], body[at + 3]]));
        let value = body.get(at + 4..at + 4 + len)?;
        if kind == ATTR_USERNAME {
            let username = std::str::from_utf8(value).ok()?;
            return username.split(':').next();
        }
        at += 4 + len.div_ceil(4) * 4;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding_request(username: &[u8]) -> Vec<u8> {
        let padded = username.len().div_ceil(4) * 4;
        let mut m = vec![0x00, 0x01];
        m.extend_from_slice(&((4 + padded) as u16).to_be_bytes());
        m.extend_from_slice(&MAGIC_COOKIE);
        m.extend_from_slice(&[7; 12]);
        m.extend_from_slice(&ATTR_USERNAME.to_be_bytes());
        m.extend_from_slice(&(username.len() as u16).to_be_bytes());
        m.extend_from_slice(username);
        m.resize(HEADER_LEN + 4 + padded, 0);
        m
    }

    #[test]
    fn finds_the_local_half_of_the_username() {
        assert_eq!(
            local_ufrag(&binding_request(b"abcd1234:RB0r")),
            Some("abcd1234")
        );
        assert_eq!(local_ufrag(&binding_request(b"solo")), Some("solo"));
    }

    #[test]
    fn garbage_and_truncation_give_none() {
        let good = binding_request(b"abcd1234:RB0r");
        for len in 0..good.len() {
            assert_eq!(local_ufrag(&good[..len]), None, "{len}");
        }
        let mut no_cookie = good.clone();
        no_cookie[4] = 0;
        assert_eq!(local_ufrag(&no_cookie), None);
        assert_eq!(local_ufrag(&[0x80; 40]), None);
        let mut bad_utf8 = binding_request(b"\xff\xfe:x");
        assert_eq!(local_ufrag(&bad_utf8), None);
        bad_utf8[2] = 0xff; // declared length beyond the datagram
        assert_eq!(local_ufrag(&bad_utf8), None);
    }
}
