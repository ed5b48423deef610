//! The edge's verdict on every message of the RFC 4475 torture corpus and the RFC 7118 examples
//! (copied into `tests/data/sip/`), as a table. `EXPECTED.md` there gives the RFC's view of each
//! torture message; where the RFC leaves a choice, the choice is the one documented in
//! `shared::sip` ("Edge policy").

use std::path::{Path, PathBuf};

use shared::sip::{edge_verdict, EdgeVerdict};

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/sip")
}

/// (file, expected lint output after `FILE: `).
const EXPECTED: &[(&str, &str)] = &[
    // RFC 4475 §3.1.1: valid messages.
    ("rfc4475/wsinv.dat", "accept"),
    ("rfc4475/intmeth.dat", "reject 501 Not Implemented"),
    ("rfc4475/esc01.dat", "accept"),
    ("rfc4475/escnull.dat", "accept"),
    // One WS message = one datagram: bytes past Content-Length are ignored (RFC 3261 §18.3).
    ("rfc4475/dblreq.dat", "accept"),
    ("rfc4475/transports.dat", "accept"),
    ("rfc4475/noreason.dat", "accept"),
    // §3.1.2: invalid messages.
    ("rfc4475/badinv01.dat", "reject 400 Invalid Via Header"),
    (
        "rfc4475/clerr.dat",
        "reject 400 Content-Length Larger Than Body",
    ),
    ("rfc4475/scalarlg.dat", "drop Invalid CSeq Header"),
    ("rfc4475/lwsstart.dat", "reject 400 Malformed Request-Line"),
    ("rfc4475/trws.dat", "reject 400 Malformed Request-Line"),
    ("rfc4475/escruri.dat", "reject 400 Invalid Request-URI"),
    // The edge never reads Date, so a bad time zone does not matter.
    ("rfc4475/baddate.dat", "accept"),
    ("rfc4475/regbadct.dat", "reject 400 Invalid Contact Header"),
    ("rfc4475/badaspec.dat", "reject 400 Invalid To Header"),
    // The archive's baddn has no empty line after the headers: a framing error over WS
    // (with one, the display name is what fails: see sip_edge.rs).
    (
        "rfc4475/baddn.dat",
        "reject 400 Missing Empty Line After Headers",
    ),
    ("rfc4475/mismatch02.dat", "reject 501 Not Implemented"),
    // §3.2, §3.3: transaction and application layer.
    (
        "rfc4475/badbranch.dat",
        "reject 400 Via Branch Has No Transaction Id",
    ),
    ("rfc4475/insuf.dat", "reject 400 Missing From Header"),
    ("rfc4475/unkscm.dat", "reject 416 Unsupported URI Scheme"),
    ("rfc4475/novelsc.dat", "reject 416 Unsupported URI Scheme"),
    (
        "rfc4475/unksm2.dat",
        "reject 400 Address-Of-Record Must Be A SIP URI",
    ),
    ("rfc4475/bext01.dat", "reject 420 Bad Extension"),
    ("rfc4475/invut.dat", "reject 415 Unsupported Media Type"),
    ("rfc4475/regaut01.dat", "accept"),
    ("rfc4475/multi01.dat", "reject 400 Multiple From Headers"),
    (
        "rfc4475/mcl01.dat",
        "reject 400 Multiple Content-Length Headers",
    ),
    (
        "rfc4475/bcast.dat",
        "drop Via Sent-By Is A Broadcast Address",
    ),
    ("rfc4475/zeromf.dat", "reject 483 Too Many Hops"),
    ("rfc4475/cparam01.dat", "accept"),
    ("rfc4475/cparam02.dat", "accept"),
    ("rfc4475/regescrt.dat", "accept"),
    ("rfc4475/sdp01.dat", "reject 406 Not Acceptable"),
    ("rfc4475/inv2543.dat", "accept"),
    // RFC 7118 §8: every example message is accepted (F6's trailing comma in Route included).
    ("rfc7118/8.1-F3-REGISTER.sip", "accept"),
    ("rfc7118/8.1-F4-200-OK.sip", "accept"),
    ("rfc7118/8.2-F1-INVITE-alice-to-proxy.sip", "accept"),
    ("rfc7118/8.2-F2-100-Trying.sip", "accept"),
    ("rfc7118/8.2-F3-INVITE-proxy-to-bob.sip", "accept"),
    ("rfc7118/8.2-F4-200-OK-bob-to-proxy.sip", "accept"),
    ("rfc7118/8.2-F5-200-OK-proxy-to-alice.sip", "accept"),
    ("rfc7118/8.2-F6-ACK-alice-to-proxy.sip", "accept"),
    ("rfc7118/8.2-F7-ACK-proxy-to-bob.sip", "accept"),
    ("rfc7118/8.2-F8-BYE-bob-to-proxy.sip", "accept"),
    ("rfc7118/8.2-F9-BYE-proxy-to-alice.sip", "accept"),
    ("rfc7118/8.2-F10-200-OK-alice-to-proxy.sip", "accept"),
    ("rfc7118/8.2-F11-200-OK-proxy-to-bob.sip", "accept"),
    // The WebSocket handshakes are HTTP, not SIP: sent as a WS message they are rejected.
    (
        "rfc7118/4.1-handshake-request.http",
        "reject 400 Malformed Request-Line",
    ),
    (
        "rfc7118/4.1-handshake-response.http",
        "reject 400 Malformed Request-Line",
    ),
    (
        "rfc7118/8.1-F1-ws-handshake-GET.http",
        "reject 400 Malformed Request-Line",
    ),
    (
        "rfc7118/8.1-F2-ws-handshake-101.http",
        "reject 400 Malformed Request-Line",
    ),
];

fn lint(bytes: &[u8]) -> String {
    match edge_verdict(bytes) {
        EdgeVerdict::Accept(_) => "accept".to_owned(),
        EdgeVerdict::Reject { status, reason, .. } => format!("reject {status} {reason}"),
        EdgeVerdict::Drop { reason, .. } => format!("drop {reason}"),
    }
}

#[test]
fn every_corpus_message_gets_the_expected_verdict() {
    let mut wrong = Vec::new();
    for (file, expected) in EXPECTED {
        let bytes = std::fs::read(data_dir().join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        let got = lint(&bytes);
        if got != *expected {
            wrong.push(format!("{file}: expected `{expected}`, got `{got}`"));
        }
    }
    assert!(wrong.is_empty(), "wrong verdicts:\n{}", wrong.join("\n"));
}

#[test]
fn every_corpus_file_is_in_the_table() {
    for sub in ["rfc4475", "rfc7118"] {
        for entry in std::fs::read_dir(data_dir().join(sub)).expect("data dir") {
            let name = entry
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .into_owned();
            if name.ends_with(".md") {
                continue;
            }
            let key = format!("{sub}/{name}");
            assert!(
                EXPECTED.iter().any(|(f, _)| *f == key),
                "{key} has no expected verdict in the table"
            );
        }
    }
}

#[test]
fn the_torture_corpus_copy_matches_the_rfc_verdict_classes() {
    // EXPECTED.md marks every message VALID / INVALID / ...; a VALID message with no application
    // twist must be accepted. This guards the table above against drifting from the RFC.
    let md = std::fs::read_to_string(data_dir().join("rfc4475/EXPECTED.md")).expect("EXPECTED.md");
    for line in md
        .lines()
        .filter(|l| l.starts_with("| ") && l.contains(".dat"))
    {
        let cols: Vec<&str> = line.split('|').map(str::trim).collect();
        let (file, verdict) = (cols[1], cols[4]);
        let ours = EXPECTED
            .iter()
            .find(|(f, _)| *f == format!("rfc4475/{file}"))
            .map(|(_, v)| *v)
            .unwrap_or_else(|| panic!("{file} missing from the table"));
        // baddate: RFC 4475 §3.1.2.12 allows ignoring a Date the element does not use.
        if verdict.starts_with("INVALID") && file != "baddate.dat" {
            assert_ne!(
                ours, "accept",
                "{file} is invalid per RFC 4475 but accepted"
            );
        }
        // intmeth: an endpoint answers the unknown method with 501; unksm2: a registrar answers
        // a non-SIP address-of-record with 400 (both per the RFC's own notes).
        if verdict == "VALID" && !matches!(file, "intmeth.dat" | "unksm2.dat") {
            assert_eq!(ours, "accept", "{file} is valid per RFC 4475");
        }
    }
}
