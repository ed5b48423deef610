//! A quick, deterministic fuzz: random bytes and mutated corpus messages never make the parser,
//! the typed accessors, the edge verdict or the serializer panic, and whatever parses survives a
//! round trip. (The long-running fuzzer is `shared/fuzz`, target `sip_parse`.)

use std::path::Path;

use shared::sip::{edge_verdict, EdgeVerdict, SipMessage};

/// xorshift64*: enough randomness for mutations, reproducible from the seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

const TOKENS: &[&[u8]] = &[
    b":",
    b";",
    b",",
    b"\r\n",
    b"\r\n ",
    b" ",
    b"\t",
    b"<",
    b">",
    b"\"",
    b"\\",
    b"%",
    b"%0",
    b"[",
    b"]",
    b"@",
    b"=",
    b"/",
    b"?",
    b"*",
    b"0",
    b"4294967296",
    b"\xff",
    b"\xc3",
    b"\0",
    b"sip:",
    b"tel:",
    b"SIP/2.0",
    b"Content-Length: 9\r\n",
    b"Via: SIP/2.0/UDP [::1",
    b"\r\n\r\n",
];

fn exercise(data: &[u8]) {
    let v = edge_verdict(data);
    if let EdgeVerdict::Reject { .. } = &v {
        let _ = v.response("tag");
    }
    if let Ok(m) = SipMessage::parse(data) {
        let _ = (
            m.vias(),
            m.from(),
            m.to(),
            m.call_id(),
            m.cseq(),
            m.max_forwards(),
        );
        let _ = (
            m.contacts(),
            m.routes(),
            m.record_routes(),
            m.authorization(),
        );
        let _ = (
            m.www_authenticate(),
            m.content_type(),
            m.expires(),
            m.accept(),
        );
        let again = SipMessage::parse(&m.to_bytes()).expect("serialized message parses");
        assert_eq!(
            again,
            m,
            "round trip of {:?}",
            String::from_utf8_lossy(data)
        );
        let mut e = m.clone();
        let _ = e.remove_top_via();
        let _ = e.remove_top_route();
        let _ = e.decrement_max_forwards();
        let _ = e.response_to(200, "OK", Some("t"));
        let _ = e.to_bytes();
    }
}

fn mutate(rng: &mut Rng, base: &[u8]) -> Vec<u8> {
    let mut d = base.to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(d.len() + 1);
        match rng.below(6) {
            0 if !d.is_empty() => {
                let i = rng.below(d.len());
                d[i] = rng.next() as u8;
            }
            1 => {
                let t = TOKENS[rng.below(TOKENS.len())];
                d.splice(at..at, t.iter().copied());
            }
            2 if at < d.len() => {
                let end = (at + 1 + rng.below(16)).min(d.len());
                d.drain(at..end);
            }
            3 if at < d.len() => {
                let end = (at + 1 + rng.below(32)).min(d.len());
                let chunk = d[at..end].to_vec();
                let to = rng.below(d.len() + 1);
                d.splice(to..to, chunk);
            }
            4 => d.truncate(at),
            _ => {
                let i = rng.below(d.len() + 1);
                let specials = b"\r\n ;,:<>\"\\%[]@";
                d.insert(i, specials[rng.below(specials.len())]);
            }
        }
    }
    d
}

fn corpus() -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/sip");
    let mut out = Vec::new();
    for sub in ["rfc4475", "rfc7118"] {
        for e in std::fs::read_dir(dir.join(sub)).expect("data dir") {
            let p = e.expect("entry").path();
            if p.extension().is_none_or(|x| x != "md") {
                out.push(std::fs::read(p).expect("read"));
            }
        }
    }
    out
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = Rng(0x5151_2024_dead_beef);
    for _ in 0..3000 {
        let len = rng.below(300);
        let data: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        exercise(&data);
        // Random bytes behind a valid-looking start line reach the header parser.
        let mut framed = b"OPTIONS sip:a@b.example SIP/2.0\r\n".to_vec();
        framed.extend_from_slice(&data);
        framed.extend_from_slice(b"\r\n\r\n");
        exercise(&framed);
    }
}

#[test]
fn mutated_corpus_messages_never_panic() {
    let mut rng = Rng(0x0123_4567_89ab_cdef);
    let corpus = corpus();
    for base in &corpus {
        exercise(base);
        for _ in 0..600 {
            exercise(&mutate(&mut rng, base));
        }
    }
}
