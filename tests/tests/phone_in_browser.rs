//! The real phone (the PWA, JsSIP) in headless Chromium against the real edge (wrangler dev): two
//! accounts sign in, call each other, hold, and hang up. The browser part is
//! `edge-worker/pwa/tests/stack.spec.mjs`; this test starts the stack it runs against.

use std::process::Command;
use std::time::Duration;

use serde_json::json;
use tests::edge::{Edge, EdgeOptions};
use tests::process::ProcessGuard;

#[test]
fn two_phones_register_call_hold_and_hang_up_through_the_edge() {
    let dir = tests::scratch_dir("phone-in-browser").expect("scratch dir");
    let edge = Edge::start(&EdgeOptions {
        port: None,
        state_dir: dir.join("edge"),
        operator_token: "browser-test-token".into(),
        vars: Vec::new(),
        fleet_secret: None,
    })
    .unwrap_or_else(|e| panic!("edge did not start: {e}"));
    // The demo tenant's shape: the phone on localhost, the WebSocket on 127.0.0.1.
    let tenant =
        json!({ "domain": "localhost", "brand_name": "Demo Phone", "webrtc_host": "127.0.0.1" });
    let resp = edge
        .send(&edge.admin("POST", "/admin/tenants").json(&tenant))
        .expect("tenant");
    assert_eq!(resp.status, 201, "{}", resp.text());
    for user in ["1001", "1002"] {
        let body = json!({ "password": format!("demo-{user}") });
        let resp = edge
            .send(
                &edge
                    .admin("PUT", &format!("/admin/tenants/localhost/accounts/{user}"))
                    .json(&body),
            )
            .expect("account");
        assert_eq!(resp.status, 201, "{}", resp.text());
    }

    let pwa = tests::workspace_root().join("edge-worker/pwa");
    let mut cmd = Command::new("node");
    cmd.arg("tests/stack.spec.mjs")
        .current_dir(&pwa)
        .env(
            "PHONE_URL",
            format!("http://localhost:{}", edge.addr.port()),
        )
        .env("PHONE_USERS", "1001:demo-1001,1002:demo-1002");
    let log = dir.join("browser.log");
    let mut browser = ProcessGuard::spawn("stack.spec.mjs", cmd, &log).expect("start node");
    let deadline = std::time::Instant::now() + Duration::from_secs(170);
    let status = loop {
        if let Ok(Some(status)) = browser.try_wait() {
            break Some(status);
        }
        if std::time::Instant::now() > deadline {
            break None;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        status.is_some_and(|s| s.success()),
        "the browser test failed ({status:?}):\n{}\n--- edge ---\n{}",
        browser.log_tail(60),
        edge.log_tail(40)
    );
}

#[test]
fn echo_test_sends_the_callers_audio_back_through_a_media_node() {
    let dir = tests::scratch_dir("echo-in-browser").expect("scratch dir");
    let edge = Edge::start(&EdgeOptions {
        port: None,
        state_dir: dir.join("edge"),
        operator_token: "echo-test-token".into(),
        vars: Vec::new(),
        fleet_secret: None,
    })
    .unwrap_or_else(|e| panic!("edge did not start: {e}"));
    let tenant =
        json!({ "domain": "localhost", "brand_name": "Demo Phone", "webrtc_host": "127.0.0.1" });
    assert_eq!(
        edge.send(&edge.admin("POST", "/admin/tenants").json(&tenant))
            .expect("tenant")
            .status,
        201
    );
    let body = json!({ "password": "demo-1001" });
    let resp = edge
        .send(
            &edge
                .admin("PUT", "/admin/tenants/localhost/accounts/1001")
                .json(&body),
        )
        .expect("account");
    assert_eq!(resp.status, 201);

    let report_url = format!("http://127.0.0.1:{}/fleet/report", edge.addr.port());
    let node = tests::media::MediaNode::start(
        "echo-node",
        &edge.fleet_secret,
        Some(&report_url),
        (42000, 42099),
        &dir,
        &[],
    )
    .unwrap_or_else(|e| panic!("media node: {e}"));
    let listed = tests::process::wait_for(Duration::from_secs(20), || {
        let fleet = edge.send(&edge.admin("GET", "/admin/fleet")).ok()?.json();
        (fleet["nodes"][0]["state"] == "active").then_some(())
    });
    assert!(
        listed.is_some(),
        "the node never reported as active:\n{}",
        node.log_tail(20)
    );

    let mut cmd = Command::new("node");
    cmd.arg("tests/echo.spec.mjs")
        .current_dir(tests::workspace_root().join("edge-worker/pwa"))
        .env(
            "PHONE_URL",
            format!("http://localhost:{}", edge.addr.port()),
        )
        .env("PHONE_USERS", "1001:demo-1001");
    let mut browser =
        ProcessGuard::spawn("echo.spec.mjs", cmd, &dir.join("browser.log")).expect("start node");
    let status = wait_exit(&mut browser, Duration::from_secs(100));
    assert!(
        status.is_some_and(|s| s.success()),
        "the echo test failed ({status:?}):\n{}\n--- media node ---\n{}\n--- edge ---\n{}",
        browser.log_tail(30),
        node.log_tail(30),
        edge.log_tail(30)
    );
}

fn wait_exit(process: &mut ProcessGuard, timeout: Duration) -> Option<std::process::ExitStatus> {
    tests::process::wait_for(timeout, || process.try_wait().ok().flatten())
}

#[test]
fn operator_changes_to_flags_and_menu_show_in_the_phone_after_reload() {
    let dir = tests::scratch_dir("config-in-browser").expect("scratch dir");
    let edge = Edge::start(&EdgeOptions {
        port: None,
        state_dir: dir.join("edge"),
        operator_token: "config-test-token".into(),
        vars: Vec::new(),
        fleet_secret: None,
    })
    .unwrap_or_else(|e| panic!("edge did not start: {e}"));
    let tenant =
        json!({ "domain": "localhost", "brand_name": "Demo Phone", "webrtc_host": "127.0.0.1" });
    assert_eq!(
        edge.send(&edge.admin("POST", "/admin/tenants").json(&tenant))
            .expect("tenant")
            .status,
        201
    );
    let body = json!({ "password": "demo-1001" });
    let resp = edge
        .send(
            &edge
                .admin("PUT", "/admin/tenants/localhost/accounts/1001")
                .json(&body),
        )
        .expect("account");
    assert_eq!(resp.status, 201);

    let mut cmd = Command::new("node");
    cmd.arg("tests/config.spec.mjs")
        .current_dir(tests::workspace_root().join("edge-worker/pwa"))
        .env(
            "PHONE_URL",
            format!("http://localhost:{}", edge.addr.port()),
        )
        .env(
            "ADMIN_URL",
            format!("http://127.0.0.1:{}", edge.addr.port()),
        )
        .env("OPERATOR_TOKEN", &edge.operator_token)
        .env("TENANT", "localhost");
    let mut browser =
        ProcessGuard::spawn("config.spec.mjs", cmd, &dir.join("browser.log")).expect("start node");
    let status = wait_exit(&mut browser, Duration::from_secs(100));
    let out = browser.log_tail(30);
    println!("{out}");
    assert!(
        status.is_some_and(|s| s.success()),
        "the config test failed ({status:?}):\n{out}\n--- edge ---\n{}",
        edge.log_tail(30)
    );
}
