//! The real phone (the PWA, JsSIP) in headless Chromium against the real edge (wrangler dev) and a
//! real media node. The browser parts are `edge-worker/pwa/tests/*.spec.mjs`; these tests start the
//! stack they run against.

use std::time::Duration;

use serde_json::Value;
use tests::phone::DemoStack;

#[test]
fn two_phones_register_call_hold_and_hang_up_through_the_edge() {
    let stack = DemoStack::start("phone-in-browser", &["1001", "1002"], Value::Null);
    let (status, out) = stack.browser_script(
        "stack.spec.mjs",
        &[("PHONE_USERS", "1001:demo-1001,1002:demo-1002")],
        Duration::from_secs(170),
    );
    assert!(
        status.is_some_and(|s| s.success()),
        "the browser test failed ({status:?}):\n{out}\n--- edge ---\n{}",
        stack.edge.log_tail(40)
    );
}

#[test]
fn echo_test_sends_the_callers_audio_back_through_a_media_node() {
    let stack = DemoStack::start("echo-in-browser", &["1001"], Value::Null);
    let node = stack.media_node("echo-node", (42000, 42099), &[]);
    let (status, out) = stack.browser_script(
        "echo.spec.mjs",
        &[("PHONE_USERS", "1001:demo-1001")],
        Duration::from_secs(100),
    );
    assert!(
        status.is_some_and(|s| s.success()),
        "the echo test failed ({status:?}):\n{out}\n--- media node ---\n{}\n--- edge ---\n{}",
        node.log_tail(30),
        stack.edge.log_tail(30)
    );
}

#[test]
fn operator_changes_to_flags_and_menu_show_in_the_phone_after_reload() {
    let stack = DemoStack::start("config-in-browser", &["1001"], Value::Null);
    let admin = format!("http://127.0.0.1:{}", stack.edge.addr.port());
    let (status, out) = stack.browser_script(
        "config.spec.mjs",
        &[
            ("ADMIN_URL", &admin),
            ("OPERATOR_TOKEN", &stack.edge.operator_token),
            ("TENANT", "localhost"),
        ],
        Duration::from_secs(100),
    );
    println!("{out}");
    assert!(
        status.is_some_and(|s| s.success()),
        "the config test failed ({status:?}):\n{out}\n--- edge ---\n{}",
        stack.edge.log_tail(30)
    );
}
