//! The operator API under `/admin/`: tenants as JSON, described by `/admin/openapi.json`.
//!
//! Every route but the OpenAPI document needs `Authorization: Bearer <OPERATOR_TOKEN>`. Authentication
//! is checked before anything else is looked at, so a caller without the token learns nothing: not
//! whether a tenant exists, nor even which paths exist.

use shared::host::normalize_host;
use shared::problem::Problem;
use shared::tenant::{validate_username, AccountInput, ConfigError, TenantConfig};
use worker::{Env, Method, Request, Response, Result};

use crate::accounts::AccountStore;
use crate::http;
use crate::tenants::{StoreError, TenantStore};

const OPENAPI: &str = include_str!("openapi.json");
/// Largest request body accepted (a tenant with its templates fits easily).
const MAX_BODY: usize = 1024 * 1024;

/// Handles a request whose path starts with `/admin/`.
pub async fn handle(mut req: Request, env: &Env, path: &str) -> Result<Response> {
    if path == "/admin/openapi.json" && req.method() == Method::Get {
        let mut resp = Response::ok(OPENAPI)?;
        resp.headers_mut().set("content-type", "application/json")?;
        return Ok(resp);
    }
    if let Err(resp) = authenticate(&req, env) {
        return resp;
    }
    let store = TenantStore::new(env.d1("DB")?);
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').skip(2).collect();
    let result = match (segments.as_slice(), req.method()) {
        (["fleet"], Method::Get) => return crate::fleet::list(env).await,
        (["fleet"], _) => return method_not_allowed("GET"),
        (["tenants"], Method::Get) => list(&store).await,
        (["tenants"], Method::Post) => create(&store, &mut req).await,
        (["tenants"], _) => return method_not_allowed("GET, POST"),
        (["tenants", domain, "accounts"], Method::Get) => {
            list_accounts(&store, env, &normalize_host(&percent_decode(domain))).await
        }
        (["tenants", _, "accounts"], _) => return method_not_allowed("GET"),
        (["tenants", domain, "accounts", username], method) => {
            let domain = normalize_host(&percent_decode(domain));
            let username = percent_decode(username);
            match method {
                Method::Put => put_account(&store, env, &domain, &username, &mut req).await,
                Method::Delete => delete_account(&store, env, &domain, &username).await,
                _ => return method_not_allowed("PUT, DELETE"),
            }
        }
        (["tenants", domain], method) => {
            let domain = normalize_host(&percent_decode(domain));
            match method {
                Method::Get => get(&store, &domain).await,
                Method::Put => put(&store, &domain, &mut req).await,
                Method::Patch => patch(&store, &domain, &mut req).await,
                Method::Delete => delete(&store, &domain).await,
                _ => return method_not_allowed("GET, PUT, PATCH, DELETE"),
            }
        }
        _ => {
            return http::error(
                404,
                format!("no operator API at {path}; see /admin/openapi.json"),
            )
        }
    };
    match result {
        Ok(resp) => Ok(resp),
        Err(ApiError::Response(resp)) => resp,
        Err(ApiError::Store(e)) => store_error(e),
    }
}

enum ApiError {
    Response(Result<Response>),
    Store(StoreError),
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

impl From<worker::Error> for ApiError {
    fn from(e: worker::Error) -> Self {
        Self::Store(StoreError::from(e))
    }
}

type ApiResult = std::result::Result<Response, ApiError>;

fn authenticate(req: &Request, env: &Env) -> std::result::Result<(), Result<Response>> {
    let Ok(expected) = env.secret("OPERATOR_TOKEN").map(|s| s.to_string()) else {
        return Err(http::error(
            503,
            "the operator API is not configured: set the OPERATOR_TOKEN secret",
        ));
    };
    let given = req
        .headers()
        .get("authorization")
        .ok()
        .flatten()
        .unwrap_or_default();
    let token = given
        .split_once(' ')
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim());
    match token {
        Some(t) if !expected.is_empty() && constant_time_eq(t.as_bytes(), expected.as_bytes()) => {
            Ok(())
        }
        _ => Err(unauthorized()),
    }
}

fn unauthorized() -> Result<Response> {
    let mut resp = http::error(
        401,
        "send the operator token as `Authorization: Bearer <token>`",
    )?;
    resp.headers_mut()
        .set("www-authenticate", "Bearer realm=\"operator\"")?;
    Ok(resp)
}

/// Compares without an early exit, so timing does not tell how much of a guess was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0xff);
        diff |= usize::from(x ^ y);
    }
    diff == 0
}

fn method_not_allowed(allow: &str) -> Result<Response> {
    let mut resp = http::error(405, format!("allowed methods: {allow}"))?;
    resp.headers_mut().set("allow", allow)?;
    Ok(resp)
}

async fn list(store: &TenantStore) -> ApiResult {
    let tenants = store.list().await?;
    Ok(http::json(
        200,
        &serde_json::json!({ "tenants": tenants }),
        "application/json",
    )?)
}

async fn get(store: &TenantStore, domain: &str) -> ApiResult {
    match store.get(domain).await? {
        Some(t) => Ok(http::json(200, &t, "application/json")?),
        None => Err(not_found(domain)),
    }
}

async fn create(store: &TenantStore, req: &mut Request) -> ApiResult {
    let tenant = read_tenant(req).await?;
    store.create(&tenant).await?;
    let mut resp = http::json(201, &tenant, "application/json")?;
    resp.headers_mut()
        .set("location", &format!("/admin/tenants/{}", tenant.domain))?;
    Ok(resp)
}

/// Creates or replaces the tenant at `domain`.
async fn put(store: &TenantStore, domain: &str, req: &mut Request) -> ApiResult {
    let tenant = read_tenant(req).await?;
    if store.get(domain).await?.is_some() {
        store.replace(domain, &tenant).await?;
        Ok(http::json(200, &tenant, "application/json")?)
    } else if tenant.domain.as_str() == domain {
        store.create(&tenant).await?;
        Ok(http::json(201, &tenant, "application/json")?)
    } else {
        Err(not_found(domain))
    }
}

/// Applies a JSON merge patch (RFC 7396) to the stored tenant.
async fn patch(store: &TenantStore, domain: &str, req: &mut Request) -> ApiResult {
    let patch = read_body(req, &["application/merge-patch+json", "application/json"]).await?;
    let patch: serde_json::Value = serde_json::from_slice(&patch)
        .map_err(|e| bad_request(ConfigError::Syntax(e.to_string())))?;
    let Some(current) = store.get(domain).await? else {
        return Err(not_found(domain));
    };
    let mut doc = serde_json::to_value(&current)
        .map_err(|e| ApiError::Store(StoreError::Backend(e.to_string())))?;
    merge_patch(&mut doc, &patch);
    let tenant = TenantConfig::from_json(doc.to_string().as_bytes()).map_err(bad_request)?;
    store.replace(domain, &tenant).await?;
    Ok(http::json(200, &tenant, "application/json")?)
}

async fn delete(store: &TenantStore, domain: &str) -> ApiResult {
    if store.delete(domain).await? {
        Ok(Response::empty()?.with_status(204))
    } else {
        Err(not_found(domain))
    }
}

async fn read_tenant(req: &mut Request) -> std::result::Result<TenantConfig, ApiError> {
    let body = read_body(req, &["application/json"]).await?;
    TenantConfig::from_json(&body).map_err(bad_request)
}

async fn read_body(req: &mut Request, types: &[&str]) -> std::result::Result<Vec<u8>, ApiError> {
    let content_type = req.headers().get("content-type")?;
    if !http::content_type_is(content_type.as_deref(), types) {
        return Err(ApiError::Response(http::error(
            415,
            format!("send the body as {}", types.join(" or ")),
        )));
    }
    let body = req.bytes().await?;
    if body.len() > MAX_BODY {
        return Err(ApiError::Response(http::error(
            413,
            "the body must be at most 1 MiB",
        )));
    }
    Ok(body)
}

/// RFC 7396: objects merge recursively, `null` removes a member, anything else replaces.
fn merge_patch(target: &mut serde_json::Value, patch: &serde_json::Value) {
    let serde_json::Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = serde_json::Value::Object(serde_json::Map::new());
    }
    if let serde_json::Value::Object(map) = target {
        for (key, value) in patch {
            if value.is_null() {
                map.remove(key);
            } else {
                merge_patch(
                    map.entry(key.clone()).or_insert(serde_json::Value::Null),
                    value,
                );
            }
        }
    }
}

async fn list_accounts(store: &TenantStore, env: &Env, domain: &str) -> ApiResult {
    if store.get(domain).await?.is_none() {
        return Err(not_found(domain));
    }
    let accounts = AccountStore::new(env.d1("DB")?).list(domain).await?;
    Ok(http::json(
        200,
        &serde_json::json!({ "accounts": accounts }),
        "application/json",
    )?)
}

/// Creates or replaces a local account; the password becomes digest hashes and is not kept.
async fn put_account(
    store: &TenantStore,
    env: &Env,
    domain: &str,
    username: &str,
    req: &mut Request,
) -> ApiResult {
    validate_username(username).map_err(bad_request)?;
    let body = read_body(req, &["application/json"]).await?;
    let input = AccountInput::from_json(&body).map_err(bad_request)?;
    if store.get(domain).await?.is_none() {
        return Err(not_found(domain));
    }
    let created = AccountStore::new(env.d1("DB")?)
        .put(domain, username, &input)
        .await?;
    let view = serde_json::json!({ "username": username, "display_name": input.display_name });
    Ok(http::json(
        if created { 201 } else { 200 },
        &view,
        "application/json",
    )?)
}

async fn delete_account(store: &TenantStore, env: &Env, domain: &str, username: &str) -> ApiResult {
    if store.get(domain).await?.is_none() {
        return Err(not_found(domain));
    }
    if AccountStore::new(env.d1("DB")?)
        .delete(domain, username)
        .await?
    {
        Ok(Response::empty()?.with_status(204))
    } else {
        Err(ApiError::Response(http::error(
            404,
            format!("tenant {domain:?} has no account {username:?}"),
        )))
    }
}

fn bad_request(e: ConfigError) -> ApiError {
    let mut problem = Problem::new(400, e.to_string());
    if let Some(field) = e.field_path() {
        problem = problem.with_field(field);
    }
    ApiError::Response(http::problem(&problem))
}

fn not_found(domain: &str) -> ApiError {
    ApiError::Response(http::error(
        404,
        format!("no tenant with domain {domain:?}"),
    ))
}

fn store_error(e: StoreError) -> Result<Response> {
    match &e {
        StoreError::HostTaken { field, .. } => {
            http::problem(&Problem::new(409, e.to_string()).with_field(*field))
        }
        StoreError::Exists(_) => {
            http::problem(&Problem::new(409, e.to_string()).with_field("domain"))
        }
        StoreError::Conflict => http::error(409, e.to_string()),
        StoreError::Backend(detail) => {
            worker::console_error!("tenant storage failed: {detail}");
            http::error(
                500,
                "tenant storage failed; the operator can find the cause in the Worker logs",
            )
        }
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (
            bytes[i],
            bytes.get(i + 1).and_then(|b| hex(*b)),
            bytes.get(i + 2).and_then(|b| hex(*b)),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
