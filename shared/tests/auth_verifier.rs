//! The server side on virtual time: a browser answers the edge's challenge, and every way the
//! answer can go wrong maps to the right error and SIP status.

use shared::auth::{
    ha1_hex, respond, Algorithm, AuthError, Challenge, Credentials, Lookup, Rechallenge, Secret,
    Verifier, VerifierConfig,
};

const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";
const TENANT: &str = "a.example";
const T0: u64 = 1_700_000_000_000;
const TTL: u64 = 5 * 60 * 1000;

fn verifier() -> Verifier {
    Verifier::new(SECRET, VerifierConfig::default())
}

fn accounts(l: &Lookup<'_>) -> Option<Secret> {
    (l.username == "1001").then(|| Secret::Password("demo-1001".into()))
}

/// The browser's answer to the first (SHA-256) challenge the edge issued at `at`.
fn answer_at(v: &Verifier, at: u64, password: &str, nc: u32) -> (Challenge, String) {
    let challenges = v.challenge(at, TENANT, TENANT, &[9; 16]);
    let c = Challenge::parse(&challenges[0].to_header_value()).unwrap();
    let h = respond(
        &c,
        "REGISTER",
        "sip:a.example",
        "1001",
        password,
        "cn0nce",
        nc,
    )
    .unwrap();
    (c, h)
}

#[test]
fn challenges_offer_sha256_then_md5_with_one_nonce() {
    let v = verifier();
    let cs = v.challenge(T0, TENANT, TENANT, &[1; 16]);
    let algs: Vec<_> = cs.iter().map(|c| c.algorithm).collect();
    assert_eq!(algs, [Algorithm::Sha256, Algorithm::Md5]);
    assert_eq!(cs[0].nonce, cs[1].nonce);
    assert!(cs[0]
        .to_header_value()
        .starts_with("Digest realm=\"a.example\", nonce=\""));
    assert!(cs[0]
        .to_header_value()
        .ends_with("algorithm=SHA-256, qop=\"auth\""));
    assert_ne!(
        cs[0].nonce,
        v.challenge(T0, TENANT, TENANT, &[2; 16])[0].nonce
    );
}

#[test]
fn default_order_puts_md5_last_where_jssip_reads_it() {
    let v = Verifier::new(SECRET, VerifierConfig::default());
    let cs = v.challenge(T0, TENANT, TENANT, &[1; 16]);
    let algs: Vec<_> = cs.iter().map(|c| c.algorithm).collect();
    // JsSIP keeps the last WWW-Authenticate and answers only MD5.
    assert_eq!(algs.last(), Some(&Algorithm::Md5));
    let headers: Vec<String> = cs.iter().map(Challenge::to_header_value).collect();
    // A client that looks at every challenge picks SHA-256.
    let picked = Challenge::select(headers.iter().map(String::as_str)).unwrap();
    assert_eq!(picked.algorithm, Algorithm::Sha256);
}

#[test]
fn right_password_verifies_with_either_algorithm() {
    let mut v = verifier();
    let cs = v.challenge(T0, TENANT, TENANT, &[1; 16]);
    // Both challenges share the nonce, so counts go on across them.
    for (nc, c) in (1..).zip(&cs) {
        let h = respond(c, "REGISTER", "sip:a.example", "1001", "demo-1001", "x", nc).unwrap();
        let ok = v.verify(T0 + 10, TENANT, "REGISTER", &h, accounts).unwrap();
        assert_eq!(ok.username, "1001");
        assert_eq!(ok.algorithm, c.algorithm);
        assert_eq!(ok.nc, nc);
        assert_eq!(ok.uri, "sip:a.example");
        assert_eq!(ok.nonce_issued_ms, T0);
    }
}

#[test]
fn stored_ha1_per_algorithm_verifies() {
    let mut v = verifier();
    let cs = v.challenge(T0, TENANT, TENANT, &[1; 16]);
    let md5 = ha1_hex(Algorithm::Md5, "1001", TENANT, "demo-1001");
    let sha = ha1_hex(Algorithm::Sha256, "1001", TENANT, "demo-1001");
    for (nc, c) in (1..).zip(&cs) {
        let h = respond(c, "REGISTER", "sip:a.example", "1001", "demo-1001", "x", nc).unwrap();
        let ok = v.verify(T0 + 1, TENANT, "REGISTER", &h, |l| {
            Some(Secret::Ha1(match l.algorithm {
                Algorithm::Sha256 => sha.clone(),
                _ => md5.clone(),
            }))
        });
        assert_eq!(ok.unwrap().algorithm, c.algorithm);
    }
}

#[test]
fn expired_nonce_with_right_password_gets_a_stale_challenge() {
    let mut v = verifier();
    let (_, h) = answer_at(&v, T0, "demo-1001", 1);
    let err = v
        .verify(T0 + TTL, TENANT, "REGISTER", &h, accounts)
        .unwrap_err();
    assert_eq!(err, AuthError::Stale);
    assert_eq!(err.status(), 401);
    assert_eq!(err.rechallenge(), Some(Rechallenge::Stale));
    let again = v
        .rechallenge(T0 + TTL, TENANT, TENANT, &[3; 16], &err)
        .unwrap();
    assert!(again.iter().all(|c| c.stale));
    assert!(again[0].to_header_value().contains("stale=true"));
    // One millisecond earlier it was still good.
    let mut v = verifier();
    v.verify(T0 + TTL - 1, TENANT, "REGISTER", &h, accounts)
        .unwrap();
}

#[test]
fn expired_nonce_with_wrong_password_is_forbidden_not_stale() {
    let mut v = verifier();
    let (_, h) = answer_at(&v, T0, "guess", 1);
    let err = v
        .verify(T0 + TTL, TENANT, "REGISTER", &h, accounts)
        .unwrap_err();
    assert_eq!(err, AuthError::WrongPassword);
}

#[test]
fn nonce_from_another_tenant_is_refused() {
    let mut v = verifier();
    let cs = v.challenge(T0, "b.example", TENANT, &[1; 16]);
    let h = respond(
        &cs[0],
        "REGISTER",
        "sip:a.example",
        "1001",
        "demo-1001",
        "x",
        1,
    )
    .unwrap();
    let err = v
        .verify(T0 + 1, TENANT, "REGISTER", &h, accounts)
        .unwrap_err();
    assert_eq!(err, AuthError::InvalidNonce);
    assert_eq!(err.status(), 401);
    assert_eq!(err.rechallenge(), Some(Rechallenge::Fresh));
    // The same answer is fine at the tenant it was issued for.
    v.verify(T0 + 1, "b.example", "REGISTER", &h, accounts)
        .unwrap();
}

#[test]
fn realm_swapped_in_the_credentials_is_refused() {
    let mut v = verifier();
    let mut c = v.challenge(T0, TENANT, TENANT, &[1; 16]).remove(0);
    c.realm = "other-realm".into();
    let h = respond(&c, "REGISTER", "sip:a.example", "1001", "demo-1001", "x", 1).unwrap();
    let err = v
        .verify(T0 + 1, TENANT, "REGISTER", &h, accounts)
        .unwrap_err();
    assert_eq!(err, AuthError::InvalidNonce);
}

#[test]
fn replayed_or_lower_nonce_count_is_refused() {
    let mut v = verifier();
    let (c, h1) = answer_at(&v, T0, "demo-1001", 1);
    v.verify(T0 + 1, TENANT, "REGISTER", &h1, accounts).unwrap();
    let err = v
        .verify(T0 + 2, TENANT, "REGISTER", &h1, accounts)
        .unwrap_err();
    assert_eq!(err, AuthError::Replay);
    assert_eq!(err.rechallenge(), Some(Rechallenge::Stale));
    let h3 = respond(&c, "REGISTER", "sip:a.example", "1001", "demo-1001", "y", 3).unwrap();
    v.verify(T0 + 3, TENANT, "REGISTER", &h3, accounts).unwrap();
    let h2 = respond(&c, "REGISTER", "sip:a.example", "1001", "demo-1001", "z", 2).unwrap();
    let err = v
        .verify(T0 + 4, TENANT, "REGISTER", &h2, accounts)
        .unwrap_err();
    assert_eq!(err, AuthError::Replay);
}

#[test]
fn failed_attempts_do_not_advance_the_nonce_count() {
    let mut v = verifier();
    let (c, _) = answer_at(&v, T0, "demo-1001", 1);
    let bad = respond(&c, "REGISTER", "sip:a.example", "1001", "guess", "x", 7).unwrap();
    assert_eq!(
        v.verify(T0 + 1, TENANT, "REGISTER", &bad, accounts),
        Err(AuthError::WrongPassword)
    );
    let good = respond(&c, "REGISTER", "sip:a.example", "1001", "demo-1001", "x", 1).unwrap();
    v.verify(T0 + 2, TENANT, "REGISTER", &good, accounts)
        .unwrap();
}

#[test]
fn wrong_password_and_unknown_user_are_both_forbidden() {
    let mut v = verifier();
    let (c, h) = answer_at(&v, T0, "demo-1002", 1);
    let err = v
        .verify(T0 + 1, TENANT, "REGISTER", &h, accounts)
        .unwrap_err();
    assert_eq!(err, AuthError::WrongPassword);
    let h = respond(&c, "REGISTER", "sip:a.example", "9999", "demo-1001", "x", 1).unwrap();
    let err2 = v
        .verify(T0 + 1, TENANT, "REGISTER", &h, accounts)
        .unwrap_err();
    assert_eq!(err2, AuthError::UnknownUser);
    assert_eq!((err.status(), err.reason()), (403, "Forbidden"));
    assert_eq!((err2.status(), err2.reason()), (403, "Forbidden"));
    assert!(v.rechallenge(T0, TENANT, TENANT, &[0; 16], &err).is_none());
}

#[test]
fn response_for_another_method_is_refused() {
    let mut v = verifier();
    let (_, h) = answer_at(&v, T0, "demo-1001", 1);
    let err = v
        .verify(T0 + 1, TENANT, "INVITE", &h, accounts)
        .unwrap_err();
    assert_eq!(err, AuthError::WrongPassword);
}

#[test]
fn tampered_nonce_is_refused() {
    let mut v = verifier();
    let (c, _) = answer_at(&v, T0, "demo-1001", 1);
    let mut bytes = c.nonce.into_bytes();
    for i in [0, 12, 30, 53] {
        let mut forged = bytes.clone();
        forged[i] = if forged[i] == b'A' { b'B' } else { b'A' };
        let mut c2 =
            Challenge::parse(&v.challenge(T0, TENANT, TENANT, &[9; 16])[0].to_string()).unwrap();
        c2.nonce = String::from_utf8(forged).unwrap();
        let h = respond(
            &c2,
            "REGISTER",
            "sip:a.example",
            "1001",
            "demo-1001",
            "x",
            1,
        )
        .unwrap();
        let err = v
            .verify(T0 + 1, TENANT, "REGISTER", &h, accounts)
            .unwrap_err();
        assert_eq!(err, AuthError::InvalidNonce, "byte {i}");
    }
    bytes.truncate(20);
    let h = format!(
        "Digest username=\"1001\", realm=\"a.example\", nonce=\"{}\", uri=\"sip:a.example\", \
         response=\"{}\", algorithm=SHA-256, qop=auth, nc=00000001, cnonce=\"x\"",
        String::from_utf8(bytes).unwrap(),
        "0".repeat(64)
    );
    assert_eq!(
        v.verify(T0 + 1, TENANT, "REGISTER", &h, accounts),
        Err(AuthError::InvalidNonce)
    );
}

#[test]
fn nonce_from_the_far_future_is_stale() {
    let mut v = verifier();
    let (_, h) = answer_at(&v, T0 + 60_000, "demo-1001", 1);
    assert_eq!(
        v.verify(T0, TENANT, "REGISTER", &h, accounts),
        Err(AuthError::Stale)
    );
    let (_, h) = answer_at(&v, T0 + 10_000, "demo-1001", 1);
    v.verify(T0, TENANT, "REGISTER", &h, accounts).unwrap();
}

#[test]
fn rotated_secret_still_verifies_and_unknown_secret_does_not() {
    let old = Verifier::new(b"old secret", VerifierConfig::default());
    let (_, h) = answer_at(&old, T0, "demo-1001", 1);
    let mut v = verifier();
    assert_eq!(
        v.verify(T0 + 1, TENANT, "REGISTER", &h, accounts),
        Err(AuthError::InvalidNonce)
    );
    let mut v = verifier().with_previous_secret(b"old secret");
    v.verify(T0 + 1, TENANT, "REGISTER", &h, accounts).unwrap();
    // New nonces come from the current secret.
    let (_, h2) = answer_at(&v, T0, "demo-1001", 1);
    verifier()
        .verify(T0 + 1, TENANT, "REGISTER", &h2, accounts)
        .unwrap();
}

#[test]
fn md5_refused_when_not_configured() {
    let config = VerifierConfig {
        algorithms: vec![Algorithm::Sha256],
        ..VerifierConfig::default()
    };
    let mut v = Verifier::new(SECRET, config);
    let cs = v.challenge(T0, TENANT, TENANT, &[1; 16]);
    assert_eq!(cs.len(), 1);
    let mut md5 = cs[0].clone();
    md5.algorithm = Algorithm::Md5;
    let h = respond(
        &md5,
        "REGISTER",
        "sip:a.example",
        "1001",
        "demo-1001",
        "x",
        1,
    )
    .unwrap();
    let err = v
        .verify(T0 + 1, TENANT, "REGISTER", &h, accounts)
        .unwrap_err();
    assert_eq!(err, AuthError::UnsupportedAlgorithm);
    assert_eq!(err.rechallenge(), Some(Rechallenge::Fresh));
}

#[test]
fn credentials_without_qop_are_malformed() {
    let mut v = verifier();
    let mut c = v.challenge(T0, TENANT, TENANT, &[1; 16]).remove(0);
    c.qop.clear();
    let h = respond(&c, "REGISTER", "sip:a.example", "1001", "demo-1001", "x", 1).unwrap();
    let err = v
        .verify(T0 + 1, TENANT, "REGISTER", &h, accounts)
        .unwrap_err();
    assert!(matches!(err, AuthError::Malformed(_)));
    assert_eq!(err.status(), 400);
}

#[test]
fn bad_stored_ha1_is_a_server_error() {
    let mut v = verifier();
    let (_, h) = answer_at(&v, T0, "demo-1001", 1);
    let err = v
        .verify(T0 + 1, TENANT, "REGISTER", &h, |_| {
            Some(Secret::Ha1("abc".into()))
        })
        .unwrap_err();
    assert_eq!(err, AuthError::BadStoredSecret);
    assert_eq!(err.status(), 500);
}

#[test]
fn garbage_never_panics_and_is_refused() {
    let mut v = verifier();
    let (_, good) = answer_at(&v, T0, "demo-1001", 1);
    let mut inputs: Vec<String> = vec![
        String::new(),
        "Digest".into(),
        "Basic Zm9vOmJhcg==".into(),
        "Digest username=\"1001\"".into(),
        "Digest \u{0}\u{1}\"\\".into(),
        "Digest username=\"\u{1F600}\", realm=\"\u{e9}\"".into(),
        "Digest ".to_string() + &"a=b,".repeat(5000),
    ];
    // Every prefix and every single-byte deletion of a valid header.
    for i in 0..good.len() {
        // Deleting whitespace leaves the same header.
        if good.is_char_boundary(i) && !good[i..].starts_with(' ') {
            inputs.push(good[..i].to_string());
            let mut s = good.clone();
            s.remove(i);
            inputs.push(s);
        }
    }
    for input in &inputs {
        let r = v.verify(T0 + 1, TENANT, "REGISTER", input, accounts);
        assert!(r.is_err(), "{input:?} accepted");
        let _ = Challenge::parse(input);
        let _ = Credentials::parse(input);
    }
    // Garbage did not burn the real answer's nonce count.
    v.verify(T0 + 2, TENANT, "REGISTER", &good, accounts)
        .unwrap();
}

#[test]
fn tracker_stays_bounded() {
    let config = VerifierConfig {
        tracker_capacity: 3,
        ..VerifierConfig::default()
    };
    let mut v = Verifier::new(SECRET, config);
    for i in 0..10u8 {
        let cs = v.challenge(T0 + u64::from(i), TENANT, TENANT, &[i; 16]);
        let h = respond(
            &cs[0],
            "REGISTER",
            "sip:a.example",
            "1001",
            "demo-1001",
            "x",
            1,
        )
        .unwrap();
        v.verify(T0 + 20, TENANT, "REGISTER", &h, accounts).unwrap();
        assert!(v.tracker().len() <= 3);
    }
    assert_eq!(v.poll_timeout(), Some(T0 + 7 + TTL));
    v.handle_timeout(T0 + 10 + TTL);
    assert!(v.tracker().is_empty());
}
