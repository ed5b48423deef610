//! The fleet registry on real workerd: signed node reports, `GET /admin/fleet`, and refusals.

use shared::control::auth::sign_request;
use shared::control::report::{NodeReport, NodeState, REPORT_PATH};
use shared::control::{encode, CONTENT_TYPE};
use tests::edge::{random_hex, Edge, EdgeOptions};
use tests::http::Request;

fn report(id: &str, state: NodeState, calls: u32) -> NodeReport {
    NodeReport {
        node_id: id.into(),
        region: "eu-central".into(),
        control_url: format!("http://{id}.invalid:9090"),
        state,
        active_calls: calls,
        capacity: 200,
        uptime_s: 5,
        finished_calls: Vec::new(),
    }
}

fn signed(secret: &str, body: &[u8], via_h3: bool) -> Request {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let nonce = random_hex(12).expect("nonce");
    let mut req = Request::new("POST", "127.0.0.1", REPORT_PATH).body(CONTENT_TYPE, body.to_vec());
    for (name, value) in sign_request(secret.as_bytes(), "POST", REPORT_PATH, now, &nonce, body) {
        req = req.header(name, &value);
    }
    if via_h3 {
        req = req.header("x-webphone-via", "h3");
    }
    req
}

#[test]
fn signed_reports_show_in_the_fleet_listing_and_forged_ones_are_refused() {
    let edge = Edge::start(&EdgeOptions {
        port: None,
        state_dir: tests::scratch_dir("fleet").expect("scratch"),
        operator_token: "fleet-test-token".into(),
        vars: Vec::new(),
        fleet_secret: None,
    })
    .unwrap_or_else(|e| panic!("edge did not start: {e}"));

    let empty = edge
        .send(&edge.admin("GET", "/admin/fleet"))
        .expect("fleet");
    assert_eq!(empty.status, 200, "{}", empty.text());
    assert_eq!(empty.json()["nodes"], serde_json::json!([]));

    let a = encode(&report("node-a", NodeState::Active, 3));
    let b = encode(&report("node-b", NodeState::Draining, 7));
    assert_eq!(
        edge.send(&signed(&edge.fleet_secret, &a, true))
            .expect("report")
            .status,
        204
    );
    assert_eq!(
        edge.send(&signed(&edge.fleet_secret, &b, false))
            .expect("report")
            .status,
        204
    );

    let fleet = edge
        .send(&edge.admin("GET", "/admin/fleet"))
        .expect("fleet")
        .json();
    let nodes = fleet["nodes"].as_array().cloned().unwrap_or_default();
    assert_eq!(nodes.len(), 2, "{fleet}");
    let a = &nodes[0];
    assert_eq!(a["id"], "node-a");
    assert_eq!(a["region"], "eu-central");
    assert_eq!(a["state"], "active");
    assert_eq!(a["active_calls"], 3);
    assert_eq!(a["capacity"], 200);
    assert_eq!(a["last_report_via"], "h3");
    assert!(
        a["last_report_at"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z')),
        "{a}"
    );
    assert_eq!(nodes[1]["state"], "draining");
    assert_eq!(nodes[1]["last_report_via"], "https");

    // Wrong secret, replayed request, unsigned request, garbage body: refused, nothing recorded.
    let forged = encode(&report("intruder", NodeState::Active, 0));
    assert_eq!(
        edge.send(&signed("not-the-fleet-secret", &forged, false))
            .expect("send")
            .status,
        401
    );
    let replay = signed(&edge.fleet_secret, &forged, false);
    assert_eq!(edge.send(&replay).expect("send").status, 204);
    assert_eq!(
        edge.send(&replay).expect("send").status,
        401,
        "a replayed report must be refused"
    );
    let unsigned =
        Request::new("POST", "127.0.0.1", REPORT_PATH).body(CONTENT_TYPE, forged.clone());
    assert_eq!(edge.send(&unsigned).expect("send").status, 401);
    assert_eq!(
        edge.send(&signed(&edge.fleet_secret, b"\x01garbage", false))
            .expect("send")
            .status,
        400
    );
    let fleet = edge
        .send(&edge.admin("GET", "/admin/fleet"))
        .expect("fleet")
        .json();
    assert_eq!(
        fleet["nodes"].as_array().map(Vec::len),
        Some(3),
        "only the one validly signed report added a node"
    );

    // The listing is the operator's: no token, no fleet.
    assert_eq!(
        edge.send(&Request::new("GET", "127.0.0.1", "/admin/fleet"))
            .expect("send")
            .status,
        401
    );
}
