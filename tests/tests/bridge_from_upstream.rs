//! A call from the tenant's upstream (sipp over TCP, relay mode) to the real phone (the PWA with JsSIP
//! in headless Chromium) through the edge (wrangler dev), with the media bridged by a media node: the
//! upstream's INVITE carries a plain RTP/AVP offer pointing at a socket this test owns; the edge asks a
//! node for a WebRTC offer for the browser, the browser answers, and the upstream gets the node's plain
//! RTP answer in its 200 OK.
//!
//! Audio is proven by decoding it, not by counting packets: the browser's fake microphone plays a
//! steady 1 kHz sine, which must arrive at the upstream's socket as PCMU with 1 kHz dominant (Goertzel);
//! the upstream's socket answers with a 440 Hz PCMU tone once it learned the node's address, which the
//! browser must receive with audio energy (and, through an AnalyserNode, with its spectrum peaking at
//! 440 Hz). The upstream hangs up and the phone must return to its dialpad. The browser part is
//! `edge-worker/pwa/tests/bridge.spec.mjs` (incoming mode); the upstream's SIP part is
//! `tests/scenarios/relay_registrar_then_caller_with_media.xml`.

use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};
use tests::phone::DemoStack;
use tests::rtp::RtpPeer;
use tests::sipp::{Scenario, Sipp};

/// The telephone-event payload type the upstream offers.
const EVENT_PT: u8 = 101;

#[test]
fn incoming_call_from_the_upstream_is_bridged_and_carries_tones_both_ways() {
    // The demo tenant in relay mode (the upstream is the registrar and calls the phone), media
    // bridged, and one media node. The upstream's port is filled in once sipp runs, so that sipp's own
    // 60 s bound covers only the call and not the edge's start.
    let stack = DemoStack::start(
        "bridge-from-upstream",
        &["1001"],
        json!({ "registration": "relay", "upstream": {
            "host": "127.0.0.1", "port": 9, "transport": "tcp", "media": "bridge" } }),
    );
    let node = stack.media_node(
        "inbound-node",
        (42300, 42399),
        &[("RUST_LOG", "info,media_node=debug")],
    );

    // The upstream's media: a socket of ours, named in sipp's INVITE.
    let peer = RtpPeer::bind().expect("RTP socket");
    let rtp_port = peer.port();
    let template = std::fs::read_to_string(
        tests::workspace_root().join("tests/scenarios/relay_registrar_then_caller_with_media.xml"),
    )
    .expect("scenario");
    let sipp_dir = stack.dir.join("sipp");
    std::fs::create_dir_all(&sipp_dir).expect("sipp dir");
    let scenario = stack.dir.join("relay_registrar_then_caller_with_media.xml");
    std::fs::write(
        &scenario,
        template.replace("__RTP_PORT__", &rtp_port.to_string()),
    )
    .expect("write scenario");
    let mut sipp = Sipp::server(Scenario::File(&scenario), 1, &sipp_dir).expect("start sipp");
    let patch = json!({ "sip": { "upstream": { "port": sipp.addr.port() } } });
    let resp = stack
        .edge
        .send(
            &stack
                .edge
                .admin("PATCH", "/admin/tenants/localhost")
                .json(&patch),
        )
        .expect("point the tenant at sipp");
    assert_eq!(resp.status, 200, "{}", resp.text());
    let dir = &stack.dir;

    // The browser's microphone: a steady 1 kHz sine at -9 dBFS.
    let wav = dir.join("mic-1khz.wav");
    tests::rtp::write_sine_wav(&wav, 1000.0, -9.0, 48_000, 10).expect("write WAV");
    let far_end = peer.start(EVENT_PT, 440.0, -12.0);

    let sip_log = dir.join("browser-sip.log");
    let sip_log_str = sip_log.to_string_lossy().into_owned();
    let wav_str = wav.to_string_lossy().into_owned();
    let (status, browser_tail) = stack.browser_script(
        "bridge.spec.mjs",
        &[
            // Relay mode: the upstream checks the password, and this one takes any.
            ("PHONE_USERS", "1001:demo-1001"),
            ("FAKE_AUDIO", &wav_str),
            ("SIP_LOG", &sip_log_str),
        ],
        Duration::from_secs(110),
    );
    let sipp_status = sipp.wait(Duration::from_secs(15));
    let got = far_end.stop();
    let logs = || {
        format!(
            "--- browser ---\n{browser_tail}\n--- sipp ---\n{}\n--- media node ---\n{}\n--- edge ---\n{}\n\
             (all logs in {})",
            sipp.log_tail(40),
            node.log_tail(30),
            stack.edge.log_tail(30),
            dir.display()
        )
    };
    assert!(
        status.is_some_and(|s| s.success()),
        "the browser part failed ({status:?}):\n{}",
        logs()
    );
    let browser_out = std::fs::read_to_string(dir.join("bridge.spec.mjs.log")).unwrap_or_default();
    let stats: Value = browser_out
        .lines()
        .find_map(|l| l.strip_prefix("STATS "))
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| panic!("the browser printed no STATS line:\n{}", logs()));

    // Upstream side: the node sent the browser's audio from the port of its answer (symmetric RTP).
    let answered_port = sipp_answer_port(&sipp_dir, rtp_port);
    tests::rtp::assert_tones_crossed(&got, rtp_port, answered_port, &stats, logs);

    // The upstream got a plain RTP answer (its regexp check), hung up, and its BYE was answered.
    assert!(
        sipp_status.is_some_and(|s| s.success()),
        "sipp did not complete its call ({sipp_status:?}):\n{}",
        logs()
    );
}

/// The RTP port of the answer sipp received: the `m=audio PORT RTP/AVP ...` line in its message trace
/// that is not its own offer's (`own_port`).
fn sipp_answer_port(dir: &Path, own_port: u16) -> Option<u16> {
    let entries = std::fs::read_dir(dir).ok()?;
    for entry in entries.flatten() {
        if !entry
            .file_name()
            .to_string_lossy()
            .ends_with("_messages.log")
        {
            continue;
        }
        let text = std::fs::read_to_string(entry.path()).ok()?;
        return text
            .lines()
            .filter(|l| l.starts_with("m=audio ") && l.contains("RTP/AVP") && !l.contains("SAVP"))
            .filter_map(|l| l.split(' ').nth(1)?.trim().parse::<u16>().ok())
            .find(|&port| port != own_port);
    }
    None
}
