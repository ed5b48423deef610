//! The fleet registry object: media nodes report to it (`POST /fleet/report`), the operator lists
//! them (`GET /admin/fleet`) and account objects ask it for a node per call (`/pick`) and tell it
//! which node failed them (`/suspect`). The logic is [`shared::fleet::Registry`]; this is its
//! storage and HTTP shell. Only `/report` is reachable from outside (through [`report`], signed);
//! the other paths are reached only by this worker's own Durable Object calls.

use std::cell::RefCell;

use shared::control::auth::{
    RequestAuth, Verifier, HEADER_NONCE, HEADER_SIGNATURE, HEADER_TIMESTAMP,
};
use shared::control::report::{NodeReport, REPORT_PATH};
use shared::fleet::{Pick, PickRequest, Registry, SuspectRequest, Via};
use worker::{
    durable_object, DurableObject, Env, Method, Request, RequestInit, Response, Result, State,
};

use crate::http;

/// The Durable Object binding.
pub const BINDING: &str = "FLEET";
/// The one registry object's name.
const OBJECT_NAME: &str = "fleet";
/// Storage key of the registry.
const KEY: &str = "registry";
/// Header the local HTTP/3 gateway (and nothing else we trust) sets on reports it carried.
pub const VIA_HEADER: &str = "x-webphone-via";

/// The fleet registry.
#[durable_object]
pub struct FleetRegistry {
    state: State,
    env: Env,
    registry: RefCell<Option<Registry>>,
    verifier: RefCell<Option<Verifier>>,
}

impl DurableObject for FleetRegistry {
    fn new(state: State, env: Env) -> Self {
        Self {
            state,
            env,
            registry: RefCell::new(None),
            verifier: RefCell::new(None),
        }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        self.load().await?;
        let now_ms = worker::Date::now().as_millis();
        match (req.method(), req.path().as_str()) {
            (Method::Post, "/report") => {
                let body = req.bytes().await?;
                let Ok(secret) = self.env.secret("FLEET_SECRET").map(|s| s.to_string()) else {
                    return http::error(
                        503,
                        "the fleet secret is not configured: set the FLEET_SECRET secret",
                    );
                };
                let headers = req.headers();
                let (ts, nonce, sig) = (
                    headers.get(HEADER_TIMESTAMP)?,
                    headers.get(HEADER_NONCE)?,
                    headers.get(HEADER_SIGNATURE)?,
                );
                let auth = RequestAuth::from_pairs(
                    [
                        (HEADER_TIMESTAMP, ts.as_deref()),
                        (HEADER_NONCE, nonce.as_deref()),
                        (HEADER_SIGNATURE, sig.as_deref()),
                    ]
                    .into_iter()
                    .filter_map(|(k, v)| v.map(|v| (k, v))),
                );
                let verified = self
                    .verifier
                    .borrow_mut()
                    .get_or_insert_with(|| Verifier::new(secret.into_bytes()))
                    .verify(now_ms / 1000, "POST", REPORT_PATH, &auth, &body);
                if let Err(e) = verified {
                    return http::error(e.http_status(), e.to_string());
                }
                let report: NodeReport = match shared::control::decode(&body) {
                    Ok(r) => r,
                    Err(e) => return http::error(400, e.to_string()),
                };
                let via = if headers.get(VIA_HEADER)?.as_deref() == Some("h3") {
                    Via::H3
                } else {
                    Via::Https
                };
                self.with(|r| r.apply(now_ms, report, via));
                self.save().await?;
                Ok(Response::empty()?.with_status(204))
            }
            (Method::Get, "/nodes") => {
                let nodes = self.with(|r| r.list(now_ms));
                let nodes: Vec<serde_json::Value> = nodes
                    .into_iter()
                    .map(|n| {
                        let mut v = serde_json::to_value(&n).unwrap_or_default();
                        v["last_report_at"] = iso8601(n.last_report_at).into();
                        v
                    })
                    .collect();
                http::json(
                    200,
                    &serde_json::json!({ "nodes": nodes }),
                    "application/json",
                )
            }
            (Method::Post, "/pick") => {
                let ask: PickRequest = req.json().await.unwrap_or_default();
                let pick = self.with(|r| {
                    let pick = r.pick_excluding(now_ms, &ask.preferred, &ask.exclude);
                    if let Some(p) = &pick {
                        r.note_call(&p.id);
                    }
                    pick
                });
                Response::from_json(&pick)
            }
            (Method::Post, "/suspect") => {
                let Ok(ask) = req.json::<SuspectRequest>().await else {
                    return http::error(400, "expected {\"node_id\": ...}");
                };
                self.with(|r| r.suspect(now_ms, &ask.node_id));
                self.save().await?;
                Ok(Response::empty()?.with_status(204))
            }
            _ => Response::error("not found", 404),
        }
    }
}

impl FleetRegistry {
    async fn load(&self) -> Result<()> {
        if self.registry.borrow().is_none() {
            let stored: Option<Registry> = self.state.storage().get(KEY).await.ok().flatten();
            let mut slot = self.registry.borrow_mut();
            if slot.is_none() {
                *slot = Some(stored.unwrap_or_default());
            }
        }
        Ok(())
    }

    fn with<T>(&self, f: impl FnOnce(&mut Registry) -> T) -> T {
        f(self
            .registry
            .borrow_mut()
            .get_or_insert_with(Registry::default))
    }

    async fn save(&self) -> Result<()> {
        let snapshot = self.registry.borrow().clone();
        if let Some(r) = snapshot {
            self.state.storage().put(KEY, r).await?;
        }
        Ok(())
    }
}

fn stub(env: &Env) -> Result<worker::Stub> {
    env.durable_object(BINDING)?.get_by_name(OBJECT_NAME)
}

/// `POST /fleet/report` (any host): passes the signed report to the registry.
pub async fn report(mut req: Request, env: &Env) -> Result<Response> {
    if req.method() != Method::Post {
        return http::error(405, "reports are POSTed");
    }
    let body = req.bytes().await?;
    if body.len() > shared::control::MAX_BODY {
        return http::error(413, "a report must be at most 64 KiB");
    }
    let headers = worker::Headers::new();
    for name in [HEADER_TIMESTAMP, HEADER_NONCE, HEADER_SIGNATURE, VIA_HEADER] {
        if let Some(v) = req.headers().get(name)? {
            headers.set(name, &v)?;
        }
    }
    // Cloudflare's edge terminates HTTP/3 itself and says so in the request's cf properties.
    if req
        .cf()
        .is_some_and(|cf| cf.http_protocol().eq_ignore_ascii_case("HTTP/3"))
    {
        headers.set(VIA_HEADER, "h3")?;
    }
    let mut init = RequestInit::new();
    init.with_method(Method::Post)
        .with_headers(headers)
        .with_body(Some(js_sys::Uint8Array::from(body.as_slice()).into()));
    stub(env)?
        .fetch_with_request(Request::new_with_init("https://fleet/report", &init)?)
        .await
}

/// `GET /admin/fleet`: every known media node.
pub async fn list(env: &Env) -> Result<Response> {
    stub(env)?.fetch_with_str("https://fleet/nodes").await
}

/// A healthy, active, least loaded node that is not suspect nor in `exclude`, in the first of
/// the `preferred` regions that has one.
pub async fn pick(env: &Env, preferred: &[String], exclude: &[String]) -> Result<Option<Pick>> {
    let ask = PickRequest {
        preferred: preferred.to_vec(),
        exclude: exclude.to_vec(),
    };
    let mut init = RequestInit::new();
    init.with_method(Method::Post)
        .with_body(Some(serde_json::to_string(&ask)?.into()));
    let mut resp = stub(env)?
        .fetch_with_request(Request::new_with_init("https://fleet/pick", &init)?)
        .await?;
    resp.json().await
}

/// Allocating on `node_id` failed: every account skips it for a while.
pub async fn suspect(env: &Env, node_id: &str) -> Result<()> {
    let ask = SuspectRequest {
        node_id: node_id.to_owned(),
    };
    let mut init = RequestInit::new();
    init.with_method(Method::Post)
        .with_body(Some(serde_json::to_string(&ask)?.into()));
    stub(env)?
        .fetch_with_request(Request::new_with_init("https://fleet/suspect", &init)?)
        .await?;
    Ok(())
}

fn iso8601(ms: u64) -> String {
    js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(ms as f64))
        .to_iso_string()
        .into()
}
