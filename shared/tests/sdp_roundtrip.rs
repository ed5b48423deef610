//! Every conformance sample parses, serializes back to its own lines, and re-parses to an equal value;
//! mutated samples never make the parser panic.

use std::fs;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;

use shared::sdp::SessionDescription;

fn samples() -> Vec<(String, String)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/sdp");
    let mut out: Vec<(String, String)> = fs::read_dir(&dir)
        .expect("tests/data/sdp exists")
        .map(|e| e.expect("readable directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "sdp"))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, fs::read_to_string(&p).expect("sample is UTF-8"))
        })
        .collect();
    out.sort();
    out
}

#[test]
fn every_sample_is_present() {
    let names: Vec<String> = samples().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names.len(), 8, "{names:?}");
}

#[test]
fn every_sample_serializes_back_to_its_own_lines_with_crlf() {
    for (name, text) in samples() {
        let sd = SessionDescription::parse(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        let out = sd.to_string();
        assert!(out.ends_with("\r\n"), "{name}: output must end in CRLF");
        assert!(
            !out.replace("\r\n", "").contains('\n'),
            "{name}: bare LF in output"
        );
        let expected: Vec<&str> = text.lines().collect();
        let actual: Vec<&str> = out.trim_end_matches("\r\n").split("\r\n").collect();
        for (i, (e, a)) in expected.iter().zip(&actual).enumerate() {
            assert_eq!(e, a, "{name}: line {} differs", i + 1);
        }
        assert_eq!(expected.len(), actual.len(), "{name}: line count differs");
    }
}

#[test]
fn every_sample_reparses_to_an_equal_value() {
    for (name, text) in samples() {
        let first = SessionDescription::parse(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        let second = SessionDescription::parse(&first.to_string())
            .unwrap_or_else(|e| panic!("{name} (re-parse): {e}"));
        assert_eq!(first, second, "{name}");
    }
}

#[test]
fn lf_and_crlf_versions_of_a_sample_parse_to_the_same_value() {
    for (name, text) in samples() {
        let lf = text.replace("\r\n", "\n");
        let crlf = lf.replace('\n', "\r\n");
        assert_eq!(
            SessionDescription::parse(&lf).unwrap(),
            SessionDescription::parse(&crlf).unwrap(),
            "{name}"
        );
    }
}

/// xorshift64*: deterministic, so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

const NASTY_BYTES: &[u8] = b" :/=\r\n\t\0*-[]0123456789aAzZ.;\xff\x0b";
const NASTY_LINES: &[&str] = &[
    "a=rtpmap:",
    "a=rtpmap:300 PCMU/8000",
    "a=rtpmap:96 opus/48000/2/9",
    "m=",
    "m=audio 70000 RTP/AVP 0",
    "m=audio 9 RTP/AVP 200",
    "m=audio [port] RTP/AVP 0",
    "c=IN IP6",
    "c=IN IP6 ::1",
    "o=- 1 99999999999999999999999 IN IP4 x",
    "a=candidate:1 1 udp 1 ::1 1 typ",
    "a=candidate:1 1 udp 1 ::1 1 typ host raddr",
    "a=candidate:1 1 udp 1 ::1 1 typ host raddr ::2 rport 70000",
    "a=fingerprint:sha-256 ZZ:00",
    "a=fingerprint:sha-256 ",
    "a=fmtp:",
    "a=fmtp:1",
    "a=ssrc:1",
    "a=ssrc:1 :",
    "a=extmap:1/foo x",
    "a=crypto:1 AES",
    "a=setup:maybe",
    "a=sendrecv:yes",
    "a=ptime:20.5",
    "a=rtcp:9 IN",
    "a=group:",
    "a=mid:",
    "b=AS:",
    "t=1",
    "v=0",
    "s=again",
    "x=unknown",
    "é=accent",
    "a=",
    "a=:x",
    "",
];

fn mutate(rng: &mut Rng, input: &str) -> String {
    let mut bytes = input.as_bytes().to_vec();
    for _ in 0..=rng.below(3) {
        let len = bytes.len();
        match rng.below(7) {
            0 if len > 0 => {
                let at = rng.below(len);
                let end = (at + 1 + rng.below(4)).min(len);
                bytes.drain(at..end);
            }
            1 => {
                let at = rng.below(len + 1);
                bytes.insert(at, NASTY_BYTES[rng.below(NASTY_BYTES.len())]);
            }
            2 if len > 0 => {
                let at = rng.below(len);
                bytes[at] = NASTY_BYTES[rng.below(NASTY_BYTES.len())];
            }
            3 => bytes.truncate(rng.below(len + 1)),
            _ => {
                let text = String::from_utf8_lossy(&bytes).into_owned();
                let mut lines: Vec<String> = text.split('\n').map(str::to_owned).collect();
                let n = lines.len();
                match rng.below(3) {
                    0 => {
                        let line = NASTY_LINES[rng.below(NASTY_LINES.len())].to_owned();
                        lines.insert(rng.below(n + 1), line);
                    }
                    1 => {
                        let line = lines[rng.below(n)].clone();
                        lines.insert(rng.below(n + 1), line);
                    }
                    _ => lines.swap(rng.below(n), rng.below(n)),
                }
                bytes = lines.join("\n").into_bytes();
            }
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

#[test]
fn mutated_samples_never_panic_and_what_parses_round_trips() {
    const PER_SAMPLE: usize = 400;
    let mut rng = Rng(0x5eed_cafe_f00d_d00d);
    let (mut accepted, mut rejected) = (0, 0);
    for (name, text) in samples() {
        for i in 0..PER_SAMPLE {
            let input = mutate(&mut rng, &text);
            let outcome = catch_unwind(AssertUnwindSafe(|| {
                let parsed = SessionDescription::parse(&input);
                if let Ok(sd) = &parsed {
                    let again = SessionDescription::parse(&sd.to_string());
                    assert_eq!(again.as_ref(), Ok(sd), "re-parse differs");
                }
                parsed.is_ok()
            }));
            match outcome {
                Ok(true) => accepted += 1,
                Ok(false) => rejected += 1,
                Err(_) => panic!("{name} mutation {i} panicked on input:\n{input:?}"),
            }
        }
    }
    // Both outcomes must occur, or the mutations are not exercising anything.
    assert!(
        accepted > 100 && rejected > 100,
        "accepted {accepted}, rejected {rejected}"
    );
}

#[test]
fn arbitrary_byte_soup_never_panics() {
    let mut rng = Rng(42);
    for _ in 0..2000 {
        let len = rng.below(64);
        let bytes: Vec<u8> = (0..len)
            .map(|_| NASTY_BYTES[rng.below(NASTY_BYTES.len())])
            .collect();
        let text = format!(
            "v=0\no=- 1 1 IN IP4 x\ns=-\n{}",
            String::from_utf8_lossy(&bytes)
        );
        let _ = SessionDescription::parse(&text);
        let _ = SessionDescription::parse(&String::from_utf8_lossy(&bytes));
    }
}
