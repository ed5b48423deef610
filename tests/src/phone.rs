//! The demo tenant's shape on a fresh edge, media nodes reporting to it, and the phone's browser
//! scripts (`edge-worker/pwa/tests/*.spec.mjs`) run against it: the pieces every browser test needs.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::time::Duration;

use serde_json::{json, Value};

use crate::edge::{Edge, EdgeOptions};
use crate::media::MediaNode;
use crate::process::{wait_for, ProcessGuard};
use crate::sip_ws::SipWsClient;

/// An edge with the demo tenant (`localhost` / `127.0.0.1`) and its accounts.
#[derive(Debug)]
pub struct DemoStack {
    /// The edge.
    pub edge: Edge,
    /// This test's scratch folder.
    pub dir: PathBuf,
}

impl DemoStack {
    /// Starts an edge and creates the tenant with `sip` settings (`Value::Null` for none) and the
    /// accounts `users`, each with password `demo-<user>`.
    pub fn start(name: &str, users: &[&str], sip: Value) -> Self {
        let dir = crate::scratch_dir(name).expect("scratch dir");
        let edge = Edge::start(&EdgeOptions {
            port: None,
            state_dir: dir.join("edge"),
            operator_token: format!("{name}-operator-token"),
            vars: Vec::new(),
            fleet_secret: None,
        })
        .unwrap_or_else(|e| panic!("edge did not start: {e}"));
        let mut tenant = json!({ "domain": "localhost", "brand_name": "Demo Phone", "webrtc_host": "127.0.0.1" });
        if !sip.is_null() {
            tenant["sip"] = sip;
        }
        let resp = edge
            .send(&edge.admin("POST", "/admin/tenants").json(&tenant))
            .expect("create tenant");
        assert_eq!(resp.status, 201, "{}", resp.text());
        for user in users {
            let body = json!({ "password": format!("demo-{user}") });
            let path = format!("/admin/tenants/localhost/accounts/{user}");
            let resp = edge
                .send(&edge.admin("PUT", &path).json(&body))
                .expect("create account");
            assert_eq!(resp.status, 201, "{}", resp.text());
        }
        Self { edge, dir }
    }

    /// The phone's URL (Domain A).
    pub fn phone_url(&self) -> String {
        format!("http://localhost:{}", self.edge.addr.port())
    }

    /// A SIP-over-WebSocket client (`Host: 127.0.0.1`) registered as `user` with its demo password.
    pub fn register(&self, user: &str) -> SipWsClient {
        let mut ws = SipWsClient::connect(self.edge.addr, "127.0.0.1", user, "localhost")
            .unwrap_or_else(|e| panic!("WebSocket for {user}: {e}"));
        let ok = ws
            .register(&format!("demo-{user}"), 600)
            .unwrap_or_else(|e| panic!("registration of {user}: {e}"));
        assert_eq!(ok.status(), Some(200), "registration of {user}: {ok:?}");
        ws
    }

    /// Starts a media node reporting to this edge and waits until the fleet lists it as active.
    pub fn media_node(&self, id: &str, rtp: (u16, u16), extra_env: &[(&str, &str)]) -> MediaNode {
        let report_url = format!("http://127.0.0.1:{}/fleet/report", self.edge.addr.port());
        let node = MediaNode::start(
            id,
            &self.edge.fleet_secret,
            Some(&report_url),
            rtp,
            &self.dir,
            extra_env,
        )
        .unwrap_or_else(|e| panic!("media node {id}: {e}"));
        let listed = wait_for(Duration::from_secs(20), || {
            let fleet = self
                .edge
                .send(&self.edge.admin("GET", "/admin/fleet"))
                .ok()?
                .json();
            let nodes = fleet["nodes"].as_array()?.clone();
            nodes
                .iter()
                .any(|n| n["id"] == id && n["state"] == "active")
                .then_some(())
        });
        assert!(
            listed.is_some(),
            "media node {id} never reported as active:\n{}",
            node.log_tail(20)
        );
        node
    }

    /// Runs `edge-worker/pwa/tests/<script>` with `env` (plus `PHONE_URL`), bounded by `timeout`;
    /// returns how it exited and its output.
    pub fn browser_script(
        &self,
        script: &str,
        env: &[(&str, &str)],
        timeout: Duration,
    ) -> (Option<ExitStatus>, String) {
        let mut cmd = Command::new("node");
        cmd.arg(Path::new("tests").join(script))
            .current_dir(crate::workspace_root().join("edge-worker/pwa"))
            .env("PHONE_URL", self.phone_url());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let log = self.dir.join(format!("{script}.log"));
        let mut browser = ProcessGuard::spawn(script, cmd, &log).expect("start node");
        let status = wait_for(timeout, || browser.try_wait().ok().flatten());
        let output = browser.log_tail(60);
        (status, output)
    }
}
