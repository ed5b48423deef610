//! Early media on a bridged call, on real processes: the edge (wrangler dev), one media node, a
//! SIP-over-WebSocket client whose WebRTC media is str0m (ICE, DTLS-SRTP, PCMU), and the upstream
//! of `tests::upstream` ringing like a carrier: `183 Session Progress` with its plain RTP SDP at
//! once, a PCMU ringback tone to the node's offer, the 200 OK (same SDP) only after
//! [`RINGING`].
//!
//! The browser's INVITE gets the 183 with the node's WebRTC answer (ICE credentials, DTLS
//! fingerprint); the browser applies it, connects, and hears the ringback before the 200 arrives.
//! The 200 carries the same answer; after it media flows both ways, and the browser's BYE ends the
//! call at both sides (the upstream's tone stops, nothing reaches the browser any more).

use std::time::{Duration, Instant};

use serde_json::json;
use tests::phone::DemoStack;
use tests::rtp::{ulaw_decode, ToneCheck};
use tests::sip_ws::Dialog;
use tests::upstream::{UpstreamUas, RINGBACK_HZ};
use tests::webrtc::BrowserMedia;

/// How long the upstream rings with early media before it answers.
const RINGING: Duration = Duration::from_millis(2500);
/// Packets the browser must hear before the 200 (the tone is 50 a second; setting up ICE and DTLS
/// takes a part of the ringing).
const MIN_EARLY_PACKETS: u64 = 20;
/// A window in which the answered call must carry packets both ways, and how many.
const WINDOW: Duration = Duration::from_millis(1500);
const MIN_PACKETS: u64 = 20;

/// Named with its file's name so that `cargo xtask test bridge_early_media` (or `early_media`)
/// selects it.
#[test]
fn bridge_early_media_from_the_upstream_reaches_the_browser_before_the_answer() {
    let uas = UpstreamUas::with_early_media(RINGING).expect("upstream SIP server");
    let stack = DemoStack::start(
        "bridge-early-media",
        &["1001"],
        json!({ "registration": "local", "upstream": {
            "host": "127.0.0.1", "port": uas.addr.port(), "transport": "tcp", "media": "bridge" } }),
    );
    let node = stack.media_node(
        "early-node",
        (42620, 42639),
        &[("MEDIA_NODE_CAPACITY", "5")],
    );
    let logs = || {
        format!(
            "--- edge ---\n{}\n--- node ---\n{}\n--- upstream got ---\n{:#?}",
            stack.edge.log_tail(40),
            node.log_tail(15),
            uas.received()
        )
    };
    let mut ws = stack.register("1001");

    // The INVITE; the first response with SDP must be the 183 with the node's WebRTC answer.
    let (browser, offer) = BrowserMedia::offer().expect("the browser's offer");
    let mut d = Dialog::new(&mut ws, "5551234");
    let call_id = d.call_id.clone();
    d.request(&mut ws, "INVITE", 1, Some(&offer))
        .expect("send INVITE");
    let invited = Instant::now();
    let progress = ws
        .wait_for("a 183 with SDP", Duration::from_secs(20), |m| {
            m.call_id().ok() == Some(call_id.as_str())
                && m.status()
                    .is_some_and(|s| s >= 200 || (s > 100 && !m.body().is_empty()))
        })
        .unwrap_or_else(|e| panic!("no 183 with SDP: {e}\n{}", logs()));
    assert_eq!(
        progress.status(),
        Some(183),
        "the early answer comes with the 183, before the final response: {progress:?}\n{}",
        logs()
    );
    let early_sdp = std::str::from_utf8(progress.body())
        .expect("SDP is text")
        .to_owned();
    for webrtc in [
        "a=ice-ufrag:",
        "a=ice-pwd:",
        "a=fingerprint:",
        "a=candidate:",
    ] {
        assert!(
            early_sdp.contains(webrtc),
            "the 183's SDP is the node's WebRTC answer (no {webrtc}):\n{early_sdp}"
        );
    }
    let progress_after = invited.elapsed();
    let media = browser
        .start(&early_sdp)
        .unwrap_or_else(|e| panic!("the 183's answer: {e}\n{early_sdp}"));

    // The 200 comes after the ringing; by then the browser heard the upstream's tone.
    let answer = d
        .final_response(&mut ws, 1, Duration::from_secs(20))
        .unwrap_or_else(|e| panic!("no final response to the INVITE: {e}\n{}", logs()));
    let heard_before_answer = media.received();
    let answered_after = invited.elapsed();
    let ringback = media.last_payload();
    assert_eq!(answer.status(), Some(200), "{answer:?}\n{}", logs());
    assert_eq!(
        std::str::from_utf8(answer.body()).ok(),
        Some(early_sdp.as_str()),
        "the 200 repeats the 183's answer"
    );
    d.confirm(&answer).expect("the 200 has a To and a Contact");
    d.request(&mut ws, "ACK", 1, None).expect("send ACK");
    let upstream = uas
        .media(&call_id)
        .unwrap_or_else(|| panic!("the upstream streamed no early media\n{}", logs()));
    println!(
        "183 after {progress_after:?}, 200 after {answered_after:?}: the browser heard \
         {heard_before_answer} packets before the 200 (the upstream sent {} while ringing)",
        upstream.sent_before_answer
    );
    assert!(
        media.connected(),
        "ICE and DTLS came up on the 183's answer\n{}",
        logs()
    );
    assert!(
        heard_before_answer >= MIN_EARLY_PACKETS,
        "the browser heard {heard_before_answer} packets of early media before the 200 (the \
         upstream sent {} while ringing); at least {MIN_EARLY_PACKETS} expected\n{}",
        upstream.sent_before_answer,
        logs()
    );
    let samples: Vec<i16> = ringback.iter().map(|&b| ulaw_decode(b)).collect();
    let tone = ToneCheck {
        target: RINGBACK_HZ,
        others: vec![1000.0, 2000.0],
        min_ratio_db: 10.0,
        min_level_dbfs: -40.0,
    };
    let report = tone.run([samples.as_slice()]);
    assert_eq!(
        report.frames_with_tone, 1,
        "what the browser heard is the upstream's ringback: {report}"
    );

    // Answered: media both ways.
    let before = (
        media.received(),
        uas.media(&call_id).map_or(0, |m| m.received),
    );
    std::thread::sleep(WINDOW);
    let after = (
        media.received(),
        uas.media(&call_id).map_or(0, |m| m.received),
    );
    assert!(
        after.0 - before.0 >= MIN_PACKETS && after.1 - before.1 >= MIN_PACKETS,
        "after the 200 the call carried {} packets to the browser and {} to the upstream in \
         {WINDOW:?}\n{}",
        after.0 - before.0,
        after.1 - before.1,
        logs()
    );

    // The browser hangs up: both sides end.
    d.request(&mut ws, "BYE", 2, None).expect("send BYE");
    let bye = d
        .final_response(&mut ws, 2, Duration::from_secs(20))
        .unwrap_or_else(|e| panic!("no response to the BYE: {e}\n{}", logs()));
    assert_eq!(bye.status(), Some(200), "{bye:?}\n{}", logs());
    let upstream_bye = uas
        .find("BYE", &call_id)
        .unwrap_or_else(|| panic!("the upstream got no BYE\n{}", logs()));
    assert_eq!(upstream_bye.reason, None, "a normal hang-up");
    assert!(
        uas.media(&call_id).is_some_and(|m| m.stopped),
        "the upstream's stream stopped at the BYE"
    );
    assert_eq!(
        uas.find_all("ACK", &call_id).len(),
        1,
        "one ACK, for the 200"
    );
    // Nothing reaches the browser once the call is over (a packet in flight may still land).
    std::thread::sleep(Duration::from_millis(300));
    let settled = media.received();
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        media.received(),
        settled,
        "media still reached the browser a second after the BYE"
    );
    drop(media);
}
