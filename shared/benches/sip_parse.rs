//! Parse + serialize time of a typical browser INVITE with an SDP offer (JsSIP-style headers,
//! Chromium audio offer with candidates). Plain `Instant` loop; prints one line per figure.
//! Run: `cargo bench -p shared --bench sip_parse`. Target: parse+serialize < 5 us natively.

use std::hint::black_box;
use std::time::Instant;

use shared::sip::{edge_verdict, Host, SipMessage, Via};

const SDP: &str = "v=0\r\n\
o=- 2181110626450811207 2 IN IP4 127.0.0.1\r\n\
s=-\r\n\
t=0 0\r\n\
a=group:BUNDLE 0\r\n\
a=extmap-allow-mixed\r\n\
a=msid-semantic: WMS 8d4af4a3-d19b-48c1-842c-88c23ef0370b\r\n\
m=audio 58477 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126\r\n\
c=IN IP4 192.0.2.2\r\n\
a=rtcp:9 IN IP4 0.0.0.0\r\n\
a=candidate:1398130025 1 udp 2122194687 192.0.2.2 58477 typ host generation 0 network-id 1\r\n\
a=candidate:1411885529 1 udp 2122265343 fd00::2 50651 typ host generation 0 network-id 2\r\n\
a=candidate:765077489 1 tcp 1518214911 192.0.2.2 9 typ host tcptype active generation 0 network-id 1\r\n\
a=candidate:719866689 1 tcp 1518285567 fd00::2 9 typ host tcptype active generation 0 network-id 2\r\n\
a=ice-ufrag:RB0r\r\n\
a=ice-pwd:1/7HG9YVGamMWji2SqiVSfoc\r\n\
a=ice-options:trickle\r\n\
a=fingerprint:sha-256 BA:59:60:6A:39:A0:8F:12:DA:F5:AA:2F:57:E7:66:59:88:E7:2F:0E:56:21:98:7D:78:64:1C:97:83:5E:51:9C\r\n\
a=setup:actpass\r\n\
a=mid:0\r\n\
a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n\
a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time\r\n\
a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01\r\n\
a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\r\n\
a=sendrecv\r\n\
a=msid:8d4af4a3-d19b-48c1-842c-88c23ef0370b 7058acc1-3248-468f-830c-d917dc021ab8\r\n\
a=rtcp-mux\r\n\
a=rtcp-rsize\r\n\
a=rtcp-xr:rcvr-rtt=all\r\n\
a=rtpmap:111 opus/48000/2\r\n\
a=rtcp-fb:111 transport-cc\r\n\
a=fmtp:111 minptime=10;useinbandfec=1\r\n\
a=rtpmap:63 red/48000/2\r\n\
a=fmtp:63 111/111\r\n\
a=rtpmap:9 G722/8000\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:13 CN/8000\r\n\
a=rtpmap:110 telephone-event/48000\r\n\
a=rtpmap:126 telephone-event/8000\r\n\
a=ssrc:3521897454 cname:YLgZ7XvipFL2kFyB\r\n\
a=ssrc:3521897454 msid:8d4af4a3-d19b-48c1-842c-88c23ef0370b 7058acc1-3248-468f-830c-d917dc021ab8\r\n";

fn invite() -> Vec<u8> {
    let head = "INVITE sip:1002@localhost SIP/2.0\r\n\
Via: SIP/2.0/WSS df7jal23ls0d.invalid;branch=z9hG4bK3344556\r\n\
Max-Forwards: 69\r\n\
To: <sip:1002@localhost>\r\n\
From: \"1001\" <sip:1001@localhost>;tag=u6uo3nmc8b\r\n\
Call-ID: 6mksfr2d4qjvf9b4q6c5\r\n\
CSeq: 7412 INVITE\r\n\
Contact: <sip:n1kjdg4h@df7jal23ls0d.invalid;transport=ws;ob>\r\n\
Content-Type: application/sdp\r\n\
Session-Expires: 90\r\n\
Allow: INVITE,ACK,CANCEL,BYE,UPDATE,MESSAGE,OPTIONS,REFER,INFO,NOTIFY\r\n\
Supported: timer,ice,replaces,outbound\r\n\
User-Agent: JsSIP 3.10.1\r\n";
    let mut m = format!("{head}Content-Length: {}\r\n\r\n", SDP.len()).into_bytes();
    m.extend_from_slice(SDP.as_bytes());
    m
}

fn measure(label: &str, bytes: usize, mut f: impl FnMut()) {
    for _ in 0..2_000 {
        f();
    }
    let iters = 200_000u32;
    let start = Instant::now();
    for _ in 0..iters {
        f();
    }
    let per = start.elapsed().as_secs_f64() * 1e6 / f64::from(iters);
    println!("sip_parse: {label} ({bytes} B INVITE with SDP): {per:.2} us/iter ({iters} iters)");
}

fn main() {
    let raw = invite();
    let n = raw.len();
    assert!(SipMessage::parse(&raw).is_ok());
    measure("parse", n, || {
        black_box(SipMessage::parse(black_box(&raw)).ok());
    });
    let mut out = Vec::with_capacity(4096);
    measure("parse+serialize", n, || {
        let m = SipMessage::parse(black_box(&raw)).expect("parses");
        out.clear();
        m.write_to(&mut out);
        black_box(&out);
    });
    measure("edge_verdict (parse + every typed check)", n, || {
        black_box(edge_verdict(black_box(&raw)));
    });
    let via = Via::new(
        "TCP",
        Host::Domain("edge.example.com".into()),
        Some(5060),
        "z9hG4bKedge",
    );
    measure("parse+proxy edits+serialize", n, || {
        let mut m = SipMessage::parse(black_box(&raw)).expect("parses");
        m.push_via(&via);
        let _ = m.decrement_max_forwards();
        out.clear();
        m.write_to(&mut out);
        black_box(&out);
    });
}
