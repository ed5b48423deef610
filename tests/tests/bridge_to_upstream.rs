//! A call from the real phone (the PWA with JsSIP in headless Chromium) through the edge (wrangler dev)
//! to a number on the tenant's upstream (sipp over TCP), with the media bridged by a media node: the
//! browser talks WebRTC to the node, the upstream gets plain RTP/AVP at a socket this test owns.
//!
//! Audio is proven by decoding it, not by counting packets: the browser's fake microphone plays a
//! steady 1 kHz sine, which must arrive at the upstream's socket as PCMU with 1 kHz dominant (Goertzel);
//! the upstream answers with a 440 Hz PCMU tone, which the browser must receive with audio energy
//! (and, through an AnalyserNode, with its spectrum peaking at 440 Hz). DTMF pressed on the phone's
//! in-call "Keypad" must reach the upstream as RFC 4733 telephone-events with the right codes and end
//! bits. The browser part is `edge-worker/pwa/tests/bridge.spec.mjs`; the upstream's SIP part is
//! `tests/scenarios/uas_media_to_port.xml`.

use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};
use tests::edge::{Edge, EdgeOptions};
use tests::media::MediaNode;
use tests::process::{wait_for, ProcessGuard};
use tests::rtp::{digits, RtpPeer};
use tests::sipp::{Scenario, Sipp};

/// The number dialled: not an account, so it goes to the upstream.
const NUMBER: &str = "5551234";
/// The keys pressed, and the RFC 4733 event codes they must arrive as.
const KEYS: &str = "15#";
const EVENTS: [u8; 3] = [1, 5, 11];
/// The telephone-event payload type the upstream answers with.
const EVENT_PT: u8 = 101;

#[test]
fn call_to_the_upstream_carries_tones_both_ways_and_dtmf_as_rfc4733() {
    let dir = tests::scratch_dir("bridge-to-upstream").expect("scratch dir");
    let edge = Edge::start(&EdgeOptions {
        port: None,
        state_dir: dir.join("edge"),
        operator_token: "bridge-test-token".into(),
        vars: Vec::new(),
        fleet_secret: None,
    })
    .unwrap_or_else(|e| panic!("edge did not start: {e}"));

    // One media node, reporting to the edge.
    let report_url = format!("http://127.0.0.1:{}/fleet/report", edge.addr.port());
    let node = MediaNode::start(
        "bridge-node",
        &edge.fleet_secret,
        Some(&report_url),
        (42200, 42299),
        &dir,
        &[("RUST_LOG", "info,media_node=debug")],
    )
    .unwrap_or_else(|e| panic!("media node: {e}"));
    let listed = wait_for(Duration::from_secs(20), || {
        let fleet = edge.send(&edge.admin("GET", "/admin/fleet")).ok()?.json();
        (fleet["nodes"][0]["state"] == "active").then_some(())
    });
    assert!(
        listed.is_some(),
        "the node never reported as active:\n{}",
        node.log_tail(20)
    );

    // The upstream's media: a socket of ours, named in sipp's 200 OK.
    let peer = RtpPeer::bind().expect("RTP socket");
    let rtp_port = peer.port();
    let template = std::fs::read_to_string(
        tests::workspace_root().join("tests/scenarios/uas_media_to_port.xml"),
    )
    .expect("scenario");
    let scenario = dir.join("uas_media_to_port.xml");
    std::fs::write(
        &scenario,
        template.replace("__RTP_PORT__", &rtp_port.to_string()),
    )
    .expect("write scenario");
    let sipp_dir = dir.join("sipp");
    std::fs::create_dir_all(&sipp_dir).expect("sipp dir");
    let mut sipp = Sipp::server(Scenario::File(&scenario), 1, &sipp_dir).expect("start sipp");

    // The demo tenant's shape, with sipp as its upstream and bridged media.
    let tenant = json!({
        "domain": "localhost",
        "brand_name": "Demo Phone",
        "webrtc_host": "127.0.0.1",
        "sip": { "registration": "local", "upstream": {
            "host": "127.0.0.1", "port": sipp.addr.port(), "transport": "tcp", "media": "bridge" } },
    });
    let resp = edge
        .send(&edge.admin("POST", "/admin/tenants").json(&tenant))
        .expect("tenant");
    assert_eq!(resp.status, 201, "{}", resp.text());
    let resp = edge
        .send(
            &edge
                .admin("PUT", "/admin/tenants/localhost/accounts/1001")
                .json(&json!({ "password": "demo-1001" })),
        )
        .expect("account");
    assert_eq!(resp.status, 201, "{}", resp.text());

    // The browser's microphone: a steady 1 kHz sine at -9 dBFS.
    let wav = dir.join("mic-1khz.wav");
    tests::rtp::write_sine_wav(&wav, 1000.0, -9.0, 48_000, 10).expect("write WAV");
    let far_end = peer.start(EVENT_PT, 440.0, -12.0);

    let mut cmd = Command::new("node");
    cmd.arg("tests/bridge.spec.mjs")
        .current_dir(tests::workspace_root().join("edge-worker/pwa"))
        .env(
            "PHONE_URL",
            format!("http://localhost:{}", edge.addr.port()),
        )
        .env("PHONE_USERS", "1001:demo-1001")
        .env("DIAL", NUMBER)
        .env("DTMF", KEYS)
        .env("FAKE_AUDIO", &wav)
        .env("SIP_LOG", dir.join("browser-sip.log"));
    let mut browser =
        ProcessGuard::spawn("bridge.spec.mjs", cmd, &dir.join("browser.log")).expect("start node");
    let status = wait_for(Duration::from_secs(110), || {
        browser.try_wait().ok().flatten()
    });
    let sipp_status = sipp.wait(Duration::from_secs(15));
    let got = far_end.stop();
    let logs = || {
        format!(
            "--- browser ---\n{}\n--- sipp ---\n{}\n--- media node ---\n{}\n--- edge ---\n{}\n(all logs in {})",
            browser.log_tail(30),
            sipp.log_tail(40),
            node.log_tail(30),
            edge.log_tail(30),
            dir.display()
        )
    };
    assert!(
        status.is_some_and(|s| s.success()),
        "the browser part failed ({status:?}):\n{}",
        logs()
    );
    let browser_out = std::fs::read_to_string(browser.log_path()).unwrap_or_default();
    let stats: Value = browser_out
        .lines()
        .find_map(|l| l.strip_prefix("STATS "))
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| panic!("the browser printed no STATS line:\n{}", logs()));

    // Upstream side: the node sent the browser's audio from the port it offered (symmetric RTP).
    let offered_port = sipp_offer_port(&sipp_dir);
    tests::rtp::assert_tones_crossed(&got, rtp_port, offered_port, &stats, logs);

    // DTMF: one RFC 4733 event per key, with the right code and an end packet.
    let pressed = digits(&got.events);
    println!("RFC 4733 events at the upstream: {pressed:?}");
    let codes: Vec<u8> = pressed.iter().map(|d| d.event).collect();
    assert_eq!(
        codes, EVENTS,
        "telephone-events {pressed:?} are not the keys {KEYS}"
    );
    for d in &pressed {
        assert!(d.ended, "event {} never ended (no E bit): {d:?}", d.event);
        assert!(
            d.marker,
            "event {} started without the marker bit: {d:?}",
            d.event
        );
        // 120 ms tones: 960 timestamp units at 8 kHz; allow for packetisation.
        assert!(
            (640..=2400).contains(&d.duration),
            "event {} lasted {} units",
            d.event,
            d.duration
        );
    }

    // The browser hung up: sipp got the BYE and finished its call.
    assert!(
        sipp_status.is_some_and(|s| s.success()),
        "sipp did not complete its call ({sipp_status:?}):\n{}",
        logs()
    );
}

/// The RTP port of the offer sipp received (`m=audio PORT RTP/AVP ...` in its message trace).
fn sipp_offer_port(dir: &std::path::Path) -> Option<u16> {
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
        let line = text
            .lines()
            .find(|l| l.starts_with("m=audio ") && l.contains("RTP/AVP") && !l.contains("SAVP"))?;
        return line.split(' ').nth(1)?.parse().ok();
    }
    None
}
