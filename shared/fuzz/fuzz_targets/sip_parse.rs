//! Fuzzes the SIP parser, every typed accessor, the edge verdict and the serializer:
//! nothing may panic, and a parsed message must survive serialize -> parse unchanged.
//!
//! Run from `shared/fuzz` (stable toolchain, nightly flags unlocked):
//! ```sh
//! mkdir -p corpus/sip_parse && cp ../tests/data/sip/*/*.dat ../tests/data/sip/*/*.sip corpus/sip_parse/
//! RUSTC_BOOTSTRAP=1 cargo fuzz run sip_parse corpus/sip_parse -- -max_total_time=600 -max_len=4096
//! ```
#![no_main]

use libfuzzer_sys::fuzz_target;
use shared::sip::{edge_verdict, EdgeVerdict, SipMessage};

fuzz_target!(|data: &[u8]| {
    let verdict = edge_verdict(data);
    if let EdgeVerdict::Reject { .. } = &verdict {
        let _ = verdict.response("fuzz");
    }
    if let Ok(msg) = SipMessage::parse(data) {
        let _ = msg.vias();
        let _ = msg.from();
        let _ = msg.to();
        let _ = msg.call_id();
        let _ = msg.cseq();
        let _ = msg.max_forwards();
        let _ = msg.contacts();
        let _ = msg.routes();
        let _ = msg.record_routes();
        let _ = msg.authorization();
        let _ = msg.www_authenticate();
        let _ = msg.content_type();
        let _ = msg.expires();
        let _ = msg.accept();
        let bytes = msg.to_bytes();
        let again = SipMessage::parse(&bytes).expect("serialized message must parse");
        assert_eq!(again, msg, "round trip changed the message");
        let mut edited = msg.clone();
        let _ = edited.remove_top_via();
        let _ = edited.decrement_max_forwards();
        let _ = edited.to_bytes();
    }
});
