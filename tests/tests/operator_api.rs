//! The operator API and per-hostname tenant routing against real workerd (`wrangler dev`).

use serde_json::{json, Value};
use tests::edge::{Edge, EdgeOptions};
use tests::http::{Request, Response};

const TOKEN: &str = "test-operator-token-0123456789";

fn start(name: &str) -> Edge {
    let opts = EdgeOptions {
        port: None,
        state_dir: tests::scratch_dir(name).expect("scratch dir"),
        operator_token: TOKEN.to_owned(),
        vars: Vec::new(),
        fleet_secret: None,
    };
    Edge::start(&opts).unwrap_or_else(|e| panic!("edge did not start: {e}"))
}

fn tenant(domain: &str, brand: &str, webrtc_host: &str) -> Value {
    json!({ "domain": domain, "brand_name": brand, "webrtc_host": webrtc_host })
}

fn send(edge: &Edge, req: Request) -> Response {
    edge.send(&req)
        .unwrap_or_else(|e| panic!("request failed: {e}\nwrangler log:\n{}", edge.log_tail(40)))
}

fn assert_problem(resp: &Response, status: u16) -> Value {
    assert_eq!(resp.status, status, "body: {}", resp.text());
    assert_eq!(
        resp.header("content-type"),
        Some("application/problem+json"),
        "body: {}",
        resp.text()
    );
    let body = resp.json();
    assert_eq!(body["status"], status);
    assert!(
        body["detail"].as_str().is_some_and(|d| !d.is_empty()),
        "problem without detail: {body}"
    );
    body
}

#[test]
fn each_tenant_hostname_gets_its_own_config_and_manifest() {
    let edge = start("tenant-routing");
    for (domain, brand, host) in [
        ("phone.alpha.example", "Alpha Phone", "sip.alpha.example"),
        ("phone.beta.example", "Beta Calls", "ws.beta.example"),
    ] {
        let mut body = tenant(domain, brand, host);
        body["template_customer"] = json!({"routes": [format!("{brand} secret route")]});
        let resp = send(&edge, edge.admin("POST", "/admin/tenants").json(&body));
        assert_eq!(resp.status, 201, "{}", resp.text());
        assert_eq!(
            resp.header("location"),
            Some(format!("/admin/tenants/{domain}").as_str())
        );
    }

    for (host, brand, domain, ws) in [
        (
            "phone.alpha.example",
            "Alpha Phone",
            "phone.alpha.example",
            "sip.alpha.example",
        ),
        (
            "SIP.alpha.example:8787",
            "Alpha Phone",
            "phone.alpha.example",
            "sip.alpha.example",
        ),
        (
            "phone.beta.example",
            "Beta Calls",
            "phone.beta.example",
            "ws.beta.example",
        ),
        (
            "ws.beta.example",
            "Beta Calls",
            "phone.beta.example",
            "ws.beta.example",
        ),
    ] {
        let config = send(&edge, Request::new("GET", host, "/api/config"));
        assert_eq!(config.status, 200, "{host}: {}", config.text());
        let c = config.json();
        assert_eq!(c["brand_name"], brand, "{host}");
        assert_eq!(c["domain"], domain, "{host}");
        assert_eq!(c["webrtc_host"], ws, "{host}");
        assert!(
            c["websocket_url"]
                .as_str()
                .is_some_and(|u| u.starts_with(&format!("ws://{ws}"))),
            "{c}"
        );
        assert!(
            !config.text().contains("secret route"),
            "public config leaks the template customer: {c}"
        );

        let manifest = send(&edge, Request::new("GET", host, "/manifest.webmanifest"));
        assert_eq!(manifest.status, 200);
        assert_eq!(
            manifest.header("content-type"),
            Some("application/manifest+json")
        );
        assert_eq!(manifest.json()["name"], brand, "{host}");
    }

    for host in ["unknown.example", "alpha.example", "127.0.0.1"] {
        for path in ["/api/config", "/manifest.webmanifest", "/"] {
            let resp = send(&edge, Request::new("GET", host, path));
            let problem = assert_problem(&resp, 404);
            assert!(
                problem["detail"].as_str().is_some_and(|d| d.contains(host)),
                "{problem}"
            );
        }
    }

    // A flag changed through the operator API shows on the next load.
    let patched = send(
        &edge,
        edge.admin("PATCH", "/admin/tenants/phone.beta.example")
            .body(
                "application/merge-patch+json",
                r#"{"flags":{"auto_answer":true}}"#,
            ),
    );
    assert_eq!(patched.status, 200, "{}", patched.text());
    let config = send(&edge, Request::new("GET", "ws.beta.example", "/api/config")).json();
    assert_eq!(config["flags"]["auto_answer"], true, "{config}");
    let alpha = send(
        &edge,
        Request::new("GET", "phone.alpha.example", "/api/config"),
    )
    .json();
    assert_eq!(
        alpha["flags"]["auto_answer"], false,
        "a change to one tenant reached another: {alpha}"
    );

    let list = send(&edge, edge.admin("GET", "/admin/tenants")).json();
    let domains: Vec<&str> = list["tenants"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["domain"].as_str())
        .collect();
    assert_eq!(domains, ["phone.alpha.example", "phone.beta.example"]);

    let deleted = send(
        &edge,
        edge.admin("DELETE", "/admin/tenants/phone.alpha.example"),
    );
    assert_eq!(deleted.status, 204);
    assert_problem(
        &send(
            &edge,
            Request::new("GET", "sip.alpha.example", "/api/config"),
        ),
        404,
    );
    assert_problem(
        &send(
            &edge,
            edge.admin("GET", "/admin/tenants/phone.alpha.example"),
        ),
        404,
    );
}

#[test]
fn operator_api_refuses_bad_tokens_bad_json_and_taken_hosts() {
    let edge = start("operator-refusals");
    let created = send(
        &edge,
        edge.admin("POST", "/admin/tenants")
            .json(&tenant("a.example", "A", "ws.a.example")),
    );
    assert_eq!(created.status, 201, "{}", created.text());

    // No token, a wrong token, a wrong scheme: 401, and nothing about tenants in the answer.
    for req in [
        Request::new("GET", "127.0.0.1", "/admin/tenants"),
        Request::new("GET", "127.0.0.1", "/admin/tenants").bearer("wrong-token"),
        Request::new("GET", "127.0.0.1", "/admin/tenants/a.example").bearer(&format!("{TOKEN}x")),
        Request::new("GET", "127.0.0.1", "/admin/tenants/a.example")
            .header("authorization", &format!("Basic {TOKEN}")),
        Request::new("DELETE", "a.example", "/admin/tenants/a.example"),
        Request::new("GET", "127.0.0.1", "/admin/no-such-path"),
    ] {
        let resp = send(&edge, req);
        assert_problem(&resp, 401);
        assert!(resp
            .header("www-authenticate")
            .is_some_and(|v| v.starts_with("Bearer")));
        assert!(
            !resp.text().contains("a.example"),
            "401 leaks tenant data: {}",
            resp.text()
        );
    }
    assert_eq!(
        send(&edge, Request::new("GET", "a.example", "/api/config")).status,
        200,
        "tenant was deleted without a token"
    );

    // Not JSON, and JSON that fails validation: 400 naming the problem.
    let resp = send(
        &edge,
        edge.admin("POST", "/admin/tenants")
            .body("application/json", "{\"domain\": \"b.example\","),
    );
    let p = assert_problem(&resp, 400);
    assert!(p["detail"].as_str().unwrap_or("").contains("JSON"), "{p}");
    let mut bad = tenant("b.example", "B", "ws.b.example");
    bad["menu"] =
        json!([{ "title": "Shop", "icon": "Not An Icon", "position": 1, "template": "<p>hi</p>" }]);
    let p = assert_problem(
        &send(&edge, edge.admin("POST", "/admin/tenants").json(&bad)),
        400,
    );
    assert_eq!(p["field"], "menu[0].icon", "{p}");
    let p = assert_problem(
        &send(
            &edge,
            edge.admin("POST", "/admin/tenants")
                .json(&json!({"domain": "b.example", "brand_name": "B"})),
        ),
        400,
    );
    assert!(
        p["detail"].as_str().unwrap_or("").contains("webrtc_host"),
        "{p}"
    );
    let p = assert_problem(
        &send(
            &edge,
            edge.admin("POST", "/admin/tenants").json(&tenant(
                "https://b.example/",
                "B",
                "ws.b.example",
            )),
        ),
        400,
    );
    assert_eq!(p["field"], "domain", "{p}");
    assert_problem(
        &send(
            &edge,
            edge.admin("POST", "/admin/tenants")
                .body("text/plain", "hello"),
        ),
        415,
    );

    // Hosts already used by another tenant, as either of its two hostnames: 409.
    for (domain, host, field) in [
        ("a.example", "ws.other.example", "domain"),
        ("c.example", "ws.a.example", "webrtc_host"),
        ("ws.a.example", "ws.c.example", "domain"),
        ("c.example", "a.example", "webrtc_host"),
    ] {
        let p = assert_problem(
            &send(
                &edge,
                edge.admin("POST", "/admin/tenants")
                    .json(&tenant(domain, "C", host)),
            ),
            409,
        );
        assert_eq!(p["field"], field, "{domain}/{host}: {p}");
    }
    // Replacing a tenant with its own hosts is not a conflict.
    let resp = send(
        &edge,
        edge.admin("PUT", "/admin/tenants/a.example").json(&tenant(
            "a.example",
            "A2",
            "ws.a.example",
        )),
    );
    assert_eq!(resp.status, 200, "{}", resp.text());
    // Nothing was half-written by the refused requests.
    let list = send(&edge, edge.admin("GET", "/admin/tenants")).json();
    assert_eq!(list["tenants"].as_array().map(Vec::len), Some(1), "{list}");
    assert_problem(
        &send(&edge, Request::new("GET", "ws.c.example", "/api/config")),
        404,
    );
}

#[test]
fn local_accounts_keep_no_password_and_belong_to_one_tenant() {
    let edge = start("accounts");
    for (domain, host) in [("a.example", "ws.a.example"), ("b.example", "ws.b.example")] {
        let resp = send(
            &edge,
            edge.admin("POST", "/admin/tenants")
                .json(&tenant(domain, "T", host)),
        );
        assert_eq!(resp.status, 201, "{}", resp.text());
    }
    let password = "correct-horse-battery";
    let put = |domain: &str, user: &str, body: Value| {
        send(
            &edge,
            edge.admin("PUT", &format!("/admin/tenants/{domain}/accounts/{user}"))
                .json(&body),
        )
    };
    let created = put(
        "a.example",
        "1001",
        json!({ "password": password, "display_name": "Alice" }),
    );
    assert_eq!(created.status, 201, "{}", created.text());
    assert!(
        !created.text().contains(password),
        "response echoes the password: {}",
        created.text()
    );
    assert_eq!(
        put(
            "a.example",
            "1001",
            json!({ "password": "another-password" })
        )
        .status,
        200
    );

    let p = assert_problem(
        &put("a.example", "*43", json!({ "password": password })),
        400,
    );
    assert_eq!(p["field"], "username", "{p}");
    let p = assert_problem(
        &put("a.example", "1002", json!({ "password": "short" })),
        400,
    );
    assert_eq!(p["field"], "password", "{p}");
    assert_problem(
        &put("nope.example", "1002", json!({ "password": password })),
        404,
    );

    let list = send(
        &edge,
        edge.admin("GET", "/admin/tenants/a.example/accounts"),
    );
    assert_eq!(list.status, 200, "{}", list.text());
    let listed = list.json();
    let users: Vec<&str> = listed["accounts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a["username"].as_str())
        .collect();
    assert_eq!(users, ["1001"]);
    for secret in [password, "another-password", "ha1", "hash"] {
        assert!(
            !list.text().contains(secret),
            "account list shows {secret:?}: {}",
            list.text()
        );
    }
    let other = send(
        &edge,
        edge.admin("GET", "/admin/tenants/b.example/accounts"),
    )
    .json();
    assert_eq!(
        other["accounts"],
        json!([]),
        "tenant b sees tenant a's accounts: {other}"
    );

    assert_problem(
        &send(
            &edge,
            Request::new("GET", "127.0.0.1", "/admin/tenants/a.example/accounts"),
        ),
        401,
    );
    assert_eq!(
        send(
            &edge,
            edge.admin("DELETE", "/admin/tenants/a.example/accounts/1001")
        )
        .status,
        204
    );
    assert_problem(
        &send(
            &edge,
            edge.admin("DELETE", "/admin/tenants/a.example/accounts/1001"),
        ),
        404,
    );
}
