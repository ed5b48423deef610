//! Two legs handshaking in memory on a virtual clock (keys, loss, retransmission of the final
//! flight, the grace, failures), hostile input, the fingerprint format, a str0m peer as the
//! browser, and the cost measurements (ignored tests).

use super::*;
use crate::test_util::Noise as Rng;

use crate::srtp::{MAX_RTCP_OVERHEAD, MAX_RTP_OVERHEAD};
use shared::sdp::{Attribute, SessionDescription};

#[derive(Debug, Default)]
struct Drained {
    datagrams: Vec<Vec<u8>>,
    keys: Option<SrtpKeys>,
    timeout: Option<Instant>,
}

/// Polls until the leg says `Timeout`.
fn drain(leg: &mut DtlsLeg) -> Result<Drained, DtlsError> {
    let mut buf = [0u8; POLL_BUFFER_LEN];
    let mut drained = Drained::default();
    loop {
        match leg.poll_output(&mut buf)? {
            DtlsOutput::Transmit(d) => {
                assert!(!d.is_empty() && d.len() <= 1150, "datagram of {}", d.len());
                drained.datagrams.push(d.to_vec());
            }
            DtlsOutput::Keys(keys) => {
                assert!(drained.keys.is_none(), "keys handed out twice");
                drained.keys = Some(keys);
            }
            DtlsOutput::BufferTooSmall(n) => panic!("buffer too small: {n}"),
            DtlsOutput::Timeout(at) => {
                drained.timeout = at;
                return Ok(drained);
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Client,
    Server,
}

/// What the network sees of a datagram, for the delivery rule of [`Harness::run`].
#[derive(Debug, Clone, Copy)]
struct Sent {
    from: Side,
    /// Index among the sender's datagrams.
    index: usize,
    /// Virtual time it was sent.
    at: Instant,
    /// The sender had handed out its keys when it sent it.
    sender_connected: bool,
}

struct Endpoint {
    leg: DtlsLeg,
    keys: Option<SrtpKeys>,
    keys_at: Option<Instant>,
    error: Option<DtlsError>,
    sent: usize,
    timeout: Option<Instant>,
}

impl Endpoint {
    fn new(leg: DtlsLeg) -> Self {
        Endpoint {
            leg,
            keys: None,
            keys_at: None,
            error: None,
            sent: 0,
            timeout: None,
        }
    }

    fn drain(&mut self, now: Instant) -> Vec<Vec<u8>> {
        if self.error.is_some() {
            return Vec::new();
        }
        match drain(&mut self.leg) {
            Ok(d) => {
                if let Some(keys) = d.keys {
                    assert!(self.keys.is_none(), "keys handed out twice");
                    self.keys = Some(keys);
                    self.keys_at = Some(now);
                }
                self.timeout = d.timeout;
                d.datagrams
            }
            Err(e) => {
                self.error = Some(e);
                self.timeout = None;
                Vec::new()
            }
        }
    }

    fn receive(&mut self, now: Instant, datagram: &[u8]) {
        if self.error.is_none() {
            if let Err(e) = self.leg.handle_datagram(now, datagram) {
                self.error = Some(e);
            }
        }
    }

    fn tick(&mut self, now: Instant) {
        if self.error.is_none() {
            if let Err(e) = self.leg.handle_timeout(now) {
                self.error = Some(e);
            }
        }
    }
}

struct Certs {
    server: NodeCertificate,
    client: NodeCertificate,
    other: NodeCertificate,
}

fn certs() -> Certs {
    Certs {
        server: NodeCertificate::generate().unwrap(),
        client: NodeCertificate::generate().unwrap(),
        other: NodeCertificate::generate().unwrap(),
    }
}

struct Harness {
    client: Endpoint,
    server: Endpoint,
    t0: Instant,
    now: Instant,
    /// Extra datagrams delivered before each real one (hostile network), by recipient.
    noise: Option<Rng>,
}

impl Harness {
    /// Server and client with their own certificates, each expecting the other's.
    fn new(certs: &Certs) -> Self {
        Self::expecting(
            certs,
            certs.client.peer_fingerprint(),
            certs.server.peer_fingerprint(),
        )
    }

    fn expecting(
        certs: &Certs,
        server_expects: PeerFingerprint,
        client_expects: PeerFingerprint,
    ) -> Self {
        let t0 = Instant::now();
        let server = DtlsLeg::new(&certs.server, DtlsRole::Server, &[server_expects], t0).unwrap();
        let client = DtlsLeg::new(&certs.client, DtlsRole::Client, &[client_expects], t0).unwrap();
        Harness {
            client: Endpoint::new(client),
            server: Endpoint::new(server),
            t0,
            now: t0,
            noise: None,
        }
    }

    fn done(&self) -> bool {
        let finished = |e: &Endpoint| e.keys.is_some() || e.error.is_some();
        finished(&self.client) && finished(&self.server)
    }

    /// Exchanges datagrams on the virtual clock until both sides have keys or failed, or
    /// `limit` passed. `deliver` decides which datagrams arrive.
    fn run(&mut self, limit: Duration, mut deliver: impl FnMut(Sent) -> bool) {
        let end = self.t0 + limit;
        loop {
            loop {
                let mut quiet = true;
                for from in [Side::Client, Side::Server] {
                    let (sender, receiver) = match from {
                        Side::Client => (&mut self.client, &mut self.server),
                        Side::Server => (&mut self.server, &mut self.client),
                    };
                    let connected = sender.keys.is_some();
                    for datagram in sender.drain(self.now) {
                        quiet = false;
                        let sent = Sent {
                            from,
                            index: sender.sent,
                            at: self.now,
                            sender_connected: connected || sender.keys.is_some(),
                        };
                        sender.sent += 1;
                        if !deliver(sent) {
                            continue;
                        }
                        if let Some(rng) = self.noise.as_mut() {
                            // A truncated copy first, and some garbage of the DTLS range.
                            let cut = rng.below(datagram.len());
                            receiver.receive(self.now, &datagram[..cut]);
                            let mut junk = rng.some_bytes(200);
                            junk[0] = 20 + (junk[0] % 44);
                            receiver.receive(self.now, &junk);
                        }
                        receiver.receive(self.now, &datagram);
                    }
                }
                if quiet {
                    break;
                }
            }
            if self.done() {
                return;
            }
            let next = [self.client.timeout, self.server.timeout]
                .into_iter()
                .flatten()
                .min();
            let Some(next) = next else { return };
            if next > end {
                return;
            }
            self.now = self.now.max(next);
            self.client.tick(self.now);
            self.server.tick(self.now);
        }
    }

    fn run_clean(&mut self) {
        self.run(Duration::from_secs(5), |_| true);
    }
}

/// An RTP packet (version 2, PCMU) with room after it for any SRTP tag.
fn rtp(seq: u16, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x80, 0x00];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

/// Protects with `tx`, unprotects with `rx`, and checks the packet came through.
fn roundtrip_rtp(tx: &mut Context, rx: &mut Context, seq: u16) {
    let plain = rtp(seq, 0x1234_5678, &[0xd5; 160]);
    let mut buf = plain.clone();
    buf.resize(plain.len() + MAX_RTP_OVERHEAD, 0);
    let len = tx.protect_rtp(&mut buf, plain.len()).unwrap();
    buf.truncate(len);
    assert_ne!(&buf[12..plain.len()], &plain[12..], "payload not encrypted");
    let n = rx.unprotect_rtp(&mut buf).unwrap();
    assert_eq!(&buf[..n], &plain[..]);
}

fn roundtrip_rtcp(tx: &mut Context, rx: &mut Context) {
    // A receiver report with no blocks: V=2, PT=201, length 1, SSRC.
    let plain = vec![0x80, 201, 0, 1, 0xca, 0xfe, 0xba, 0xbe];
    let mut buf = plain.clone();
    buf.resize(plain.len() + MAX_RTCP_OVERHEAD, 0);
    let len = tx.protect_rtcp(&mut buf, plain.len()).unwrap();
    buf.truncate(len);
    let n = rx.unprotect_rtcp(&mut buf).unwrap();
    assert_eq!(&buf[..n], &plain[..]);
}

#[test]
fn two_legs_handshake_in_memory_and_get_mirrored_keys_that_protect_srtp_both_ways() {
    let certs = certs();
    let mut h = Harness::new(&certs);
    h.run_clean();
    assert_eq!(h.server.error, None);
    assert_eq!(h.client.error, None);
    let server = h.server.keys.clone().expect("server keys");
    let client = h.client.keys.clone().expect("client keys");
    assert!(h.server.leg.is_connected() && h.client.leg.is_connected());

    // Mirror images: what one protects with, the other unprotects with.
    assert_eq!(server.profile, client.profile);
    assert_eq!(server.local, client.remote);
    assert_eq!(server.remote, client.local);
    assert_ne!(server.local, server.remote);
    // dimpl offers all three profiles as client and prefers AES-256-GCM as server.
    assert_eq!(server.profile, Profile::AeadAes256Gcm);

    let (mut server_out, mut server_in) = server.contexts().unwrap();
    let (mut client_out, mut client_in) = client.contexts().unwrap();
    for seq in 1..=3 {
        roundtrip_rtp(&mut server_out, &mut client_in, seq);
        roundtrip_rtp(&mut client_out, &mut server_in, seq);
    }
    roundtrip_rtcp(&mut server_out, &mut client_in);
    roundtrip_rtcp(&mut client_out, &mut server_in);

    // A clean handshake takes no retransmission: no virtual time passed.
    assert_eq!(h.now, h.t0);
}

#[test]
fn keys_split_by_role_follow_rfc5764_client_half_first() {
    // The client's local key is the first half of the exporter output (client_write_key), so
    // a client leg must hand out `local_is_client == true`: check against a direct split.
    let certs = certs();
    let mut h = Harness::new(&certs);
    h.run_clean();
    let client = h.client.keys.clone().unwrap();
    let server = h.server.keys.clone().unwrap();
    let profile = client.profile;
    let mut material = Vec::new();
    material.extend_from_slice(client.local.key());
    material.extend_from_slice(server.local.key());
    material.extend_from_slice(client.local.salt());
    material.extend_from_slice(server.local.salt());
    let (local, remote) = srtp::split_keying_material(profile, &material, true).unwrap();
    assert_eq!((local, remote), (client.local, client.remote));
}

#[test]
fn fingerprint_mismatch_on_the_server_fails_without_keys() {
    let certs = certs();
    // The server expects a certificate the client does not have.
    let mut h = Harness::expecting(
        &certs,
        certs.other.peer_fingerprint(),
        certs.server.peer_fingerprint(),
    );
    h.run(Duration::from_secs(30), |_| true);
    assert_eq!(h.server.error, Some(DtlsError::FingerprintMismatch));
    assert!(h.server.keys.is_none());
    assert!(!h.server.leg.is_connected());
    assert!(!h.server.leg.has_handshake_state());
    // The server never sent its Finished: the client cannot complete and times out.
    assert!(h.client.keys.is_none());
    assert_eq!(
        h.client.error,
        Some(DtlsError::Timeout(DEFAULT_HANDSHAKE_TIMEOUT))
    );
    // The failure is final and repeated.
    let mut buf = [0u8; POLL_BUFFER_LEN];
    assert_eq!(
        h.server.leg.poll_output(&mut buf).unwrap_err(),
        DtlsError::FingerprintMismatch
    );
    assert_eq!(
        h.server.leg.handle_timeout(h.now).unwrap_err(),
        DtlsError::FingerprintMismatch
    );
}

#[test]
fn fingerprint_mismatch_on_the_client_fails_before_it_sends_its_certificate() {
    let certs = certs();
    let mut h = Harness::expecting(
        &certs,
        certs.client.peer_fingerprint(),
        certs.other.peer_fingerprint(),
    );
    h.run(Duration::from_secs(30), |_| true);
    assert_eq!(h.client.error, Some(DtlsError::FingerprintMismatch));
    assert!(h.client.keys.is_none());
    // Only the ClientHello left the client.
    assert_eq!(h.client.sent, 1);
    assert!(h.server.keys.is_none());
    assert!(matches!(h.server.error, Some(DtlsError::Timeout(_))));
}

#[test]
fn lost_first_flights_are_retransmitted_and_the_handshake_completes() {
    let certs = certs();
    let mut h = Harness::new(&certs);
    let t0 = h.t0;
    // The first ClientHello and everything the server sends in the first 1.5 s are lost.
    h.run(Duration::from_secs(9), |s| match s.from {
        Side::Client => s.index != 0,
        Side::Server => s.at >= t0 + Duration::from_millis(1500),
    });
    assert_eq!(h.server.error, None);
    assert_eq!(h.client.error, None);
    let server = h.server.keys.clone().expect("server keys");
    let client = h.client.keys.clone().expect("client keys");
    assert_eq!(server.local, client.remote);
    assert_eq!(server.remote, client.local);
    assert!(
        h.now >= t0 + Duration::from_millis(1500),
        "no retransmission?"
    );
}

#[test]
fn server_answers_a_repeated_final_flight_after_it_handed_out_its_keys() {
    let certs = certs();
    let mut h = Harness::new(&certs);
    // The server's final flight (ChangeCipherSpec + Finished), the first time it goes out, is
    // lost: the server has its keys, the client does not.
    let mut first_final: Option<Instant> = None;
    let mut final_sent = 0;
    h.run(Duration::from_secs(9), |s| {
        if s.from == Side::Server && s.sender_connected {
            final_sent += 1;
            if first_final.is_none_or(|at| at == s.at) {
                first_final = Some(s.at);
                return false;
            }
        }
        true
    });
    assert_eq!(h.server.error, None);
    assert_eq!(h.client.error, None);
    let server = h.server.keys.clone().expect("server keys");
    let client = h
        .client
        .keys
        .clone()
        .expect("client keys (after the resend)");
    assert_eq!(server.local, client.remote);
    assert!(h.server.keys_at.unwrap() < h.client.keys_at.unwrap());
    assert!(final_sent >= 2, "final flight sent {final_sent} times");
    // The server was in its grace, still holding the handshake state.
    assert!(h.server.leg.has_handshake_state());
}

#[test]
fn handshake_state_is_dropped_on_peer_confirmation() {
    let certs = certs();
    let mut h = Harness::new(&certs);
    h.run_clean();
    let now = h.now;
    let leg = &mut h.server.leg;
    assert!(leg.has_handshake_state());
    assert!(!leg.is_done_with_handshake_state(now));
    leg.confirm_peer();
    assert!(leg.is_done_with_handshake_state(now));
    assert!(!leg.has_handshake_state());
    let d = drain(leg).unwrap();
    assert!(d.datagrams.is_empty() && d.keys.is_none());
    assert_eq!(d.timeout, None);
    // DTLS from the peer is ignored from now on, and the leg stays connected.
    leg.handle_datagram(now, &[22, 254, 253, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0])
        .unwrap();
    assert!(drain(leg).unwrap().datagrams.is_empty());
    assert!(leg.is_connected());
}

#[test]
fn handshake_state_is_dropped_at_the_end_of_the_grace_and_the_timeout_says_when() {
    let certs = certs();
    let mut h = Harness::new(&certs);
    h.run_clean();
    let connected = h.server.keys_at.unwrap();
    let grace_end = connected + DEFAULT_HANDSHAKE_STATE_GRACE;
    let leg = &mut h.server.leg;
    assert_eq!(drain(leg).unwrap().timeout, Some(grace_end));
    let before = grace_end - Duration::from_millis(1);
    assert!(!leg.is_done_with_handshake_state(before));
    leg.handle_timeout(before).unwrap();
    assert!(leg.has_handshake_state());
    assert!(leg.is_done_with_handshake_state(grace_end));
    leg.handle_timeout(grace_end).unwrap();
    assert!(!leg.has_handshake_state());
    assert!(leg.is_connected());
    assert_eq!(drain(leg).unwrap().timeout, None);
    // Confirming a peer before the handshake completed does nothing.
    let mut fresh = DtlsLeg::new(
        &certs.server,
        DtlsRole::Server,
        &[certs.client.peer_fingerprint()],
        h.now,
    )
    .unwrap();
    fresh.confirm_peer();
    assert!(fresh.has_handshake_state());
    assert!(!fresh.is_done_with_handshake_state(h.now + Duration::from_secs(3600)));
}

#[test]
fn handshake_not_done_in_time_fails_with_timeout() {
    let certs = certs();
    let t0 = Instant::now();
    let config = DtlsLegConfig {
        handshake_timeout: Duration::from_secs(3),
        ..DtlsLegConfig::default()
    };
    let mut leg = DtlsLeg::with_config(
        &certs.server,
        DtlsRole::Server,
        &[certs.client.peer_fingerprint()],
        config,
        t0,
    )
    .unwrap();
    // Nobody ever calls: the only timer is the deadline.
    assert_eq!(
        drain(&mut leg).unwrap().timeout,
        Some(t0 + Duration::from_secs(3))
    );
    leg.handle_timeout(t0 + Duration::from_secs(2)).unwrap();
    let err = leg.handle_timeout(t0 + Duration::from_secs(3)).unwrap_err();
    assert_eq!(err, DtlsError::Timeout(Duration::from_secs(3)));
    assert_eq!(leg.failure(), Some(&err));
    assert!(leg.is_done_with_handshake_state(t0));
    assert_eq!(
        leg.handle_datagram(t0 + Duration::from_secs(4), &[22; 40]),
        Err(err.clone())
    );
    // A client whose server never answers gives up the same way (it retransmits meanwhile).
    let mut client = DtlsLeg::with_config(
        &certs.client,
        DtlsRole::Client,
        &[certs.server.peer_fingerprint()],
        config,
        t0,
    )
    .unwrap();
    let mut hellos = 0;
    let err = loop {
        let now = match drain(&mut client) {
            Ok(d) => {
                hellos += d.datagrams.len();
                d.timeout.unwrap()
            }
            Err(e) => break e,
        };
        if let Err(e) = client.handle_timeout(now) {
            break e;
        }
    };
    assert_eq!(err, DtlsError::Timeout(Duration::from_secs(3)));
    assert!(hellos >= 2, "ClientHello sent {hellos} times");
}

#[test]
fn huge_configured_durations_do_not_overflow() {
    let certs = certs();
    let t0 = Instant::now();
    let config = DtlsLegConfig {
        handshake_timeout: Duration::MAX,
        handshake_state_grace: Duration::MAX,
    };
    let mut leg = DtlsLeg::with_config(
        &certs.server,
        DtlsRole::Server,
        &[certs.client.peer_fingerprint()],
        config,
        t0,
    )
    .unwrap();
    assert!(drain(&mut leg).unwrap().timeout.unwrap() > t0);
    assert!(!leg.is_done_with_handshake_state(t0));
}

#[test]
fn peer_close_notify_ends_the_leg_with_closed_by_peer() {
    let certs = certs();
    let mut h = Harness::new(&certs);
    h.run_clean();
    // The client (as a browser would) closes: dimpl sends close_notify.
    h.client
        .leg
        .dtls
        .as_deref_mut()
        .expect("client handshake state")
        .close()
        .unwrap();
    let d = drain(&mut h.client.leg).unwrap();
    assert_eq!(d.datagrams.len(), 1);
    h.server
        .leg
        .handle_datagram(h.now, &d.datagrams[0])
        .unwrap();
    assert_eq!(
        drain(&mut h.server.leg).unwrap_err(),
        DtlsError::ClosedByPeer
    );
    assert!(!h.server.leg.has_handshake_state());
}

#[test]
fn garbage_and_truncated_datagrams_are_ignored_and_the_handshake_survives() {
    let certs = certs();
    let mut h = Harness::new(&certs);
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let now = h.now;
    // Before anything: empty, one byte, a bare record header, a record claiming more than it
    // has, RTP, STUN, and random bytes with DTLS-range first bytes.
    let mut junk: Vec<Vec<u8>> = vec![
        vec![],
        vec![22],
        vec![22, 254, 253],
        vec![22, 254, 253, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 1, 2, 3],
        vec![22, 254, 253, 0, 0, 0, 0, 0, 0, 0, 0, 0, 12, 1, 0, 0, 0xff],
        rtp(1, 1, &[0; 20]),
        vec![
            0, 1, 0, 0, 0x21, 0x12, 0xa4, 0x42, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
        ],
    ];
    for _ in 0..50 {
        let mut j = rng.some_bytes(300);
        j[0] = 20 + (j[0] % 44);
        junk.push(j);
    }
    for j in &junk {
        h.server.leg.handle_datagram(now, j).unwrap();
        h.client.leg.handle_datagram(now, j).unwrap();
    }
    // During: every real datagram is preceded by a truncated copy and some garbage.
    h.noise = Some(Rng(7));
    h.run(Duration::from_secs(9), |_| true);
    assert_eq!(h.server.error, None);
    assert_eq!(h.client.error, None);
    let server = h.server.keys.clone().expect("server keys");
    let client = h.client.keys.clone().expect("client keys");
    assert_eq!(server.local, client.remote);
    // After, within the grace: still connected, nothing to say.
    for j in &junk {
        h.server.leg.handle_datagram(h.now, j).unwrap();
    }
    assert!(drain(&mut h.server.leg).unwrap().datagrams.is_empty());
    assert!(h.server.leg.is_connected());
    // Time going backwards is no panic either.
    h.server.leg.handle_timeout(h.t0).unwrap();
}

#[test]
fn mutated_handshake_flights_never_panic() {
    let certs = certs();
    // Real flights to mutate: the ClientHello and the server's first flight.
    let mut h = Harness::new(&certs);
    let mut client_flights = Vec::new();
    let mut server_flights = Vec::new();
    {
        let t0 = h.t0;
        let client_hello = drain(&mut h.client.leg).unwrap().datagrams;
        for d in &client_hello {
            h.server.leg.handle_datagram(t0, d).unwrap();
        }
        let server_flight = drain(&mut h.server.leg).unwrap().datagrams;
        client_flights.extend(client_hello);
        server_flights.extend(server_flight);
    }
    assert!(!client_flights.is_empty() && !server_flights.is_empty());
    let mut rng = Rng(0xdead_beef_0bad_cafe);
    let mut mutate = |original: &[u8]| {
        let mut m = original.to_vec();
        match rng.below(4) {
            0 => {
                for _ in 0..1 + rng.below(4) {
                    let i = rng.below(m.len());
                    m[i] ^= 1 << rng.below(8);
                }
            }
            1 => m.truncate(rng.below(m.len())),
            2 => {
                let extra = rng.some_bytes(64);
                m.extend_from_slice(&extra);
            }
            _ => {
                // Rewrite a length field of the record or handshake header.
                let i = [11, 12, 14, 15, 16, 22, 23, 24][rng.below(8)];
                if i < m.len() {
                    m[i] = rng.next() as u8;
                }
            }
        }
        m
    };
    let t0 = Instant::now();
    let mut outcomes = [0usize; 2];
    for round in 0..150 {
        // A fresh server gets a mutated ClientHello, a fresh client a mutated server flight.
        let mut server = DtlsLeg::new(
            &certs.server,
            DtlsRole::Server,
            &[certs.client.peer_fingerprint()],
            t0,
        )
        .unwrap();
        let hello = mutate(&client_flights[round % client_flights.len()]);
        let r = server
            .handle_datagram(t0, &hello)
            .and_then(|()| drain(&mut server).map(|_| ()));
        outcomes[usize::from(r.is_err())] += 1;

        let mut client = DtlsLeg::new(
            &certs.client,
            DtlsRole::Client,
            &[certs.server.peer_fingerprint()],
            t0,
        )
        .unwrap();
        drain(&mut client).unwrap();
        for (i, d) in server_flights.iter().enumerate() {
            let d = if i == round % server_flights.len() {
                mutate(d)
            } else {
                d.clone()
            };
            if client.handle_datagram(t0, &d).is_err() {
                break;
            }
        }
        let r = drain(&mut client)
            .and_then(|_| client.handle_timeout(t0 + Duration::from_secs(2)))
            .and_then(|()| drain(&mut client).map(|_| ()));
        outcomes[usize::from(r.is_err())] += 1;
    }
    // Whatever the outcome (ignored or a final error), nothing panicked.
    assert_eq!(outcomes[0] + outcomes[1], 300);
}

#[test]
fn node_fingerprint_is_rfc8122_upper_case_hex_and_parses_with_shared_sdp() {
    let cert = NodeCertificate::generate().unwrap();
    let value = cert.sdp_fingerprint_value();
    let (name, hex) = value.split_once(' ').unwrap();
    assert_eq!(name, "sha-256");
    let pairs: Vec<&str> = hex.split(':').collect();
    assert_eq!(pairs.len(), 32);
    assert!(pairs
        .iter()
        .all(|p| p.len() == 2 && p.bytes().all(|b| matches!(b, b'0'..=b'9' | b'A'..=b'F'))));
    // The digest is SHA-256 of the DER certificate.
    let digest = digest::digest(&digest::SHA256, cert.der());
    assert_eq!(cert.sha256().as_slice(), digest.as_ref());
    // Same text as the shared SDP type's, and our parser reads it back.
    assert_eq!(cert.sdp_fingerprint().to_string(), value);
    let line = format!("fingerprint:{value}");
    let Attribute::Fingerprint(parsed) = Attribute::parse(&line).unwrap() else {
        panic!("not a fingerprint attribute");
    };
    assert_eq!(parsed, cert.sdp_fingerprint());
    assert_eq!(parsed.to_string(), value);
    let peer = PeerFingerprint::from_sdp(&parsed).unwrap();
    assert_eq!(peer, cert.peer_fingerprint());
    assert!(peer.matches(cert.der()));
    assert_eq!(format!("{peer:?}"), format!("PeerFingerprint({value})"));
    // Clones share the certificate.
    let clone = cert.clone();
    assert!(Arc::ptr_eq(&cert.0, &clone.0));
    assert!(format!("{cert:?}").contains(&value));
}

#[test]
fn peer_fingerprints_from_sdp_skip_unknown_hash_functions_and_use_the_strongest() {
    let certs = certs();
    let der = certs.client.der();
    let fp = |name: &str, alg: &'static digest::Algorithm| {
        Fingerprint::new(name, digest::digest(alg, der).as_ref().to_vec())
    };
    let sha1 = fp("SHA-1", &digest::SHA1_FOR_LEGACY_USE_ONLY);
    let sha256 = fp("sha-256", &digest::SHA256);
    let sha384 = fp("sha-384", &digest::SHA384);
    let sha512 = fp("sha-512", &digest::SHA512);
    let md5 = Fingerprint::new("md5", vec![0; 16]);

    for f in [&sha1, &sha256, &sha384, &sha512] {
        let p = PeerFingerprint::from_sdp(f).unwrap();
        assert!(p.matches(der), "{f}");
        assert!(!p.matches(certs.other.der()), "{f}");
    }
    let selected = PeerFingerprint::select_from_sdp([&md5, &sha256]).unwrap();
    assert_eq!(selected.len(), 1);
    assert_eq!(selected[0].algorithm(), FingerprintAlgorithm::Sha256);
    assert_eq!(
        PeerFingerprint::select_from_sdp([&md5]),
        Err(DtlsError::UnsupportedFingerprintAlgorithm("md5".into()))
    );
    assert_eq!(
        PeerFingerprint::select_from_sdp(std::iter::empty()),
        Err(DtlsError::NoFingerprint)
    );
    assert_eq!(
        PeerFingerprint::select_from_sdp([&Fingerprint::new("sha-256", vec![1; 20])]),
        Err(DtlsError::InvalidFingerprint {
            algorithm: "sha-256",
            len: 20
        })
    );
    assert_eq!(
        DtlsLeg::new(&certs.server, DtlsRole::Server, &[], Instant::now()).unwrap_err(),
        DtlsError::NoFingerprint
    );

    // The strongest hash function listed is the one checked.
    let wrong = |alg: FingerprintAlgorithm| {
        PeerFingerprint::new(alg, &vec![0xab; alg.digest_len()]).unwrap()
    };
    let handshake = |server_expects: Vec<PeerFingerprint>| {
        let t0 = Instant::now();
        let mut h = Harness {
            server: Endpoint::new(
                DtlsLeg::new(&certs.server, DtlsRole::Server, &server_expects, t0).unwrap(),
            ),
            client: Endpoint::new(
                DtlsLeg::new(
                    &certs.client,
                    DtlsRole::Client,
                    &[certs.server.peer_fingerprint()],
                    t0,
                )
                .unwrap(),
            ),
            t0,
            now: t0,
            noise: None,
        };
        h.run(Duration::from_secs(1), |_| true);
        h.server.error.clone()
    };
    let ok = |f: &Fingerprint| PeerFingerprint::from_sdp(f).unwrap();
    assert_eq!(handshake(vec![ok(&sha1)]), None);
    assert_eq!(
        handshake(vec![wrong(FingerprintAlgorithm::Sha256), ok(&sha512)]),
        None
    );
    assert_eq!(
        handshake(vec![ok(&sha256), wrong(FingerprintAlgorithm::Sha384)]),
        Some(DtlsError::FingerprintMismatch)
    );
    // Several of the same function: one is enough (the peer has several certificates).
    assert_eq!(
        handshake(vec![wrong(FingerprintAlgorithm::Sha256), ok(&sha256)]),
        None
    );
}

#[test]
fn role_follows_our_own_setup_attribute() {
    assert_eq!(
        DtlsRole::from_local_setup(Setup::Passive),
        Some(DtlsRole::Server)
    );
    assert_eq!(
        DtlsRole::from_local_setup(Setup::Active),
        Some(DtlsRole::Client)
    );
    assert_eq!(DtlsRole::from_local_setup(Setup::Actpass), None);
    assert_eq!(DtlsRole::from_local_setup(Setup::Holdconn), None);
}

/// A str0m `Rtc` plays the browser (full ICE, controlling, DTLS client, SRTP) against a server
/// leg; str0m's ICE agent in lite mode plays our ICE (ours is being written elsewhere). The
/// browser's SRTP must unprotect with our remote key, and its SRTP stack must accept what we
/// protect with our local key.
#[test]
fn str0m_browser_handshakes_with_a_server_leg_and_srtp_flows_both_ways() {
    use std::net::SocketAddr;
    use str0m::change::SdpAnswer;
    use str0m::ice::{IceAgent, IceCreds, StunMessage, StunPacket};
    use str0m::media::{Direction, MediaKind, Pt};
    use str0m::net::{Protocol, Receive};
    use str0m::rtp::RtpWrite;
    use str0m::{Candidate, Event, Input, Output, Rtc};

    let node_cert = NodeCertificate::generate().unwrap();
    let browser_addr: SocketAddr = "192.0.2.10:50000".parse().unwrap();
    let node_addr: SocketAddr = "198.51.100.1:3478".parse().unwrap();
    let t0 = Instant::now();
    let mut now = t0;

    // The browser's offer (actpass), parsed with our SDP parser.
    let mut rtc = Rtc::builder()
        .set_rtp_mode(true)
        .clear_codecs()
        .enable_pcmu(true, false)
        .build(now);
    rtc.add_local_candidate(Candidate::host(browser_addr, "udp").unwrap());
    let mut change = rtc.sdp_api();
    let mid = change.add_media(MediaKind::Audio, Direction::SendRecv, None, None, None);
    let (offer, pending) = change.apply().unwrap();
    let offer = SessionDescription::parse(&offer.to_sdp_string()).unwrap();
    let media = &offer.media[0];
    assert_eq!(offer.setup_for(media), Some(Setup::Actpass));
    let expected = PeerFingerprint::select_from_sdp(offer.fingerprints_for(media)).unwrap();
    let browser_creds = IceCreds {
        ufrag: offer.ice_ufrag_for(media).unwrap().to_owned(),
        pass: offer.ice_pwd_for(media).unwrap().expose().to_owned(),
    };

    // Our side: ICE-lite agent, server leg, and the answer (passive).
    let our_creds = IceCreds::new();
    let sha1_hmac = str0m::crypto::from_feature_flags().sha1_hmac_provider;
    let mut ice = IceAgent::with_hmac(our_creds.clone(), sha1_hmac);
    ice.set_ice_lite(true);
    ice.set_controlling(false);
    ice.add_local_candidate(Candidate::host(node_addr, "udp").unwrap());
    ice.set_remote_credentials(browser_creds);
    let our_role = DtlsRole::from_local_setup(Setup::Passive).unwrap();
    let mut leg = DtlsLeg::new(&node_cert, our_role, &expected, now).unwrap();
    let our_ssrc: u32 = 0x0bad_f00d;
    let answer = format!(
        "v=0\r\no=- 1 1 IN IP4 {ip}\r\ns=-\r\nt=0 0\r\na=group:BUNDLE {mid}\r\na=ice-lite\r\n\
         m=audio {port} UDP/TLS/RTP/SAVPF 0\r\nc=IN IP4 {ip}\r\na=mid:{mid}\r\n\
         a=ice-ufrag:{ufrag}\r\na=ice-pwd:{pwd}\r\na=fingerprint:{fp}\r\na=setup:passive\r\n\
         a=sendrecv\r\na=rtcp-mux\r\na=rtpmap:0 PCMU/8000\r\na=ssrc:{our_ssrc} cname:node\r\n\
         a=candidate:1 1 udp 2130706431 {ip} {port} typ host\r\na=end-of-candidates\r\n",
        ip = node_addr.ip(),
        port = node_addr.port(),
        mid = media.mid().unwrap(),
        ufrag = our_creds.ufrag,
        pwd = our_creds.pass,
        fp = node_cert.sdp_fingerprint_value(),
    );
    assert!(SessionDescription::parse(&answer).is_ok());
    rtc.sdp_api()
        .accept_answer(pending, SdpAnswer::from_sdp_string(&answer).unwrap())
        .unwrap();

    let mut keys: Option<SrtpKeys> = None;
    let mut contexts: Option<(Context, Context)> = None;
    let mut from_browser: Vec<Vec<u8>> = Vec::new();
    let mut to_browser: Vec<Vec<u8>> = Vec::new();
    let mut browser_connected = false;
    let mut browser_got_rtp: Vec<Vec<u8>> = Vec::new();
    let mut sent_rtp = false;
    let mut buf = [0u8; POLL_BUFFER_LEN];
    while now < t0 + Duration::from_secs(5) {
        // The browser speaks.
        rtc.handle_input(Input::Timeout(now)).unwrap();
        loop {
            match rtc.poll_output().unwrap() {
                Output::Timeout(_) => break,
                Output::Transmit(t) => {
                    assert_eq!(t.destination, node_addr);
                    from_browser.push(t.contents.to_vec());
                }
                Output::Event(Event::Connected) => browser_connected = true,
                Output::Event(Event::RtpPacket(p)) => browser_got_rtp.push(p.payload.to_vec()),
                Output::Event(_) => {}
            }
        }
        // We answer: STUN to the ICE agent, DTLS to the leg, SRTP to our inbound context.
        ice.handle_timeout(now);
        for d in from_browser.drain(..) {
            match d[0] {
                0..=3 => {
                    let message = StunMessage::parse(&d).unwrap();
                    let packet = StunPacket {
                        proto: Protocol::Udp,
                        source: browser_addr,
                        destination: node_addr,
                        message,
                    };
                    assert!(ice.handle_packet(now, packet));
                }
                20..=63 => leg.handle_datagram(now, &d).unwrap(),
                128..=191 => {
                    let (_, inbound) = contexts.as_mut().expect("SRTP before our keys");
                    let mut p = d.clone();
                    if d[1] & 0x7f == 0 {
                        // PCMU RTP (RTCP has packet types 200..=206 there).
                        let n = inbound.unprotect_rtp(&mut p).expect("browser SRTP");
                        // str0m adds a header extension block: the payload ends the packet.
                        assert!(p[..n].ends_with(&[0xd5; 160]), "browser RTP payload");
                        leg.confirm_peer();
                    }
                }
                other => panic!("unexpected datagram starting with {other}"),
            }
        }
        while let Some(t) = ice.poll_transmit() {
            to_browser.push(t.contents.to_vec());
        }
        loop {
            match leg.poll_output(&mut buf).unwrap() {
                DtlsOutput::Transmit(d) => to_browser.push(d.to_vec()),
                DtlsOutput::Keys(k) => {
                    contexts = Some(k.contexts().unwrap());
                    keys = Some(k);
                }
                DtlsOutput::BufferTooSmall(n) => panic!("buffer too small: {n}"),
                DtlsOutput::Timeout(_) => break,
            }
        }
        // Once both sides are up: one RTP packet each way.
        if let (true, false, Some((outbound, _))) = (browser_connected, sent_rtp, &mut contexts) {
            sent_rtp = true;
            let mut api = rtc.direct_api();
            let tx = api.stream_tx_by_mid(mid, None).expect("tx stream");
            tx.write_rtp(RtpWrite::new(
                Pt::from(0),
                1.into(),
                160,
                now,
                vec![0xd5; 160],
            ));
            let plain = rtp(7, our_ssrc, &[0x42; 160]);
            let mut p = plain.clone();
            p.resize(plain.len() + MAX_RTP_OVERHEAD, 0);
            let n = outbound.protect_rtp(&mut p, plain.len()).unwrap();
            p.truncate(n);
            to_browser.push(p);
        }
        for d in to_browser.drain(..) {
            let receive = Receive::new(Protocol::Udp, node_addr, browser_addr, &d).unwrap();
            rtc.handle_input(Input::Receive(now, receive)).unwrap();
        }
        if !leg.has_handshake_state() && !browser_got_rtp.is_empty() {
            break;
        }
        now += Duration::from_millis(10);
    }
    let keys = keys.expect("our keys");
    assert!(browser_connected, "str0m never connected");
    // str0m's dimpl client offers GCM: we chose AES-256-GCM.
    assert_eq!(keys.profile, Profile::AeadAes256Gcm);
    assert!(
        !leg.has_handshake_state(),
        "the browser's SRTP never authenticated"
    );
    assert_eq!(browser_got_rtp, vec![vec![0x42; 160]], "str0m got our SRTP");
}

/// CPU cost of a handshake (both sides in one thread, in memory). Run in release:
/// `cargo test --release -p media-node --lib dtls::tests::cost_handshake -- --ignored
/// --nocapture`.
#[test]
#[ignore]
fn cost_handshake_cpu() {
    let certs = certs();
    let rounds = 200;
    let start = cpu_time::ThreadTime::now();
    for _ in 0..rounds {
        let mut h = Harness::new(&certs);
        h.run_clean();
        assert!(h.server.keys.is_some() && h.client.keys.is_some());
    }
    let per = start.elapsed() / rounds;
    println!("handshake (client + server) CPU: {per:?} per handshake");
}

/// Heap held per server leg in one phase, for heaptrack: `DTLS_HEAP_PHASE` is `none` (the
/// baseline), `fresh` (created), `handshaking` (ClientHello in, first flight out), `grace`
/// (keys out, dimpl kept) or `released` (dimpl dropped); `DTLS_HEAP_LEGS` legs (500) are kept
/// alive. Run the test binary under `heaptrack` for each phase; the difference of the peaks
/// over the count is the heap per leg.
#[test]
#[ignore]
fn cost_heap_per_leg() {
    let phase = std::env::var("DTLS_HEAP_PHASE").unwrap_or_else(|_| "grace".into());
    let legs: usize = std::env::var("DTLS_HEAP_LEGS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(500);
    let certs = certs();
    println!(
        "size_of: DtlsLeg {} B, dimpl::Dtls {} B (boxed), DtlsError {} B, SrtpKeys {} B",
        std::mem::size_of::<DtlsLeg>(),
        std::mem::size_of::<Dtls>(),
        std::mem::size_of::<DtlsError>(),
        std::mem::size_of::<SrtpKeys>(),
    );
    let mut kept = Vec::with_capacity(legs);
    for _ in 0..legs {
        let server = match phase.as_str() {
            "none" => continue,
            "fresh" => DtlsLeg::new(
                &certs.server,
                DtlsRole::Server,
                &[certs.client.peer_fingerprint()],
                Instant::now(),
            )
            .unwrap(),
            "handshaking" => {
                let mut h = Harness::new(&certs);
                let hello = drain(&mut h.client.leg).unwrap().datagrams;
                for d in &hello {
                    h.server.leg.handle_datagram(h.now, d).unwrap();
                }
                drain(&mut h.server.leg).unwrap();
                h.server.leg
            }
            "grace" | "released" => {
                let mut h = Harness::new(&certs);
                h.run_clean();
                assert!(h.server.keys.is_some());
                if phase == "released" {
                    h.server.leg.confirm_peer();
                }
                h.server.leg
            }
            other => panic!("unknown phase {other}"),
        };
        kept.push(server);
    }
    println!("phase {phase}: {} legs kept", kept.len());
    std::hint::black_box(&kept);
}
