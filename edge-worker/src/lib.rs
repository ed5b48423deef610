//! The edge Worker: one deployment serving every tenant.
//!
//! # Design
//! Each request is routed by its host. `/admin/*` is the operator API and answers on any host. Every
//! other path belongs to the tenant whose `domain` or `webrtc_host` matches the request's host
//! ([`tenants::TenantStore::by_host`]); an unknown host gets 404 problem+json and nothing else.
//! The Worker is a thin shell: tenant schema, validation and the public view live in the `shared` crate.

// Durable Object structs hold runtime handles (State, Env, Storage) that have no Debug.
#![allow(missing_debug_implementations)]

mod accounts;
mod admin;
mod fleet;
mod http;
mod media;
mod phone;
mod sip;
mod tenants;

use shared::host::normalize_host;
use worker::{event, Context, Env, Method, Request, Response, Result};

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> Result<Response> {
    let url = req.url()?;
    let path = url.path().to_owned();
    if path == shared::control::report::REPORT_PATH {
        return fleet::report(req, &env).await;
    }
    if path == "/admin" || path.starts_with("/admin/") {
        return admin::handle(req, &env, &path).await;
    }
    let host = url.host_str().map(normalize_host).unwrap_or_default();
    let store = tenants::TenantStore::new(env.d1("DB")?);
    let tenant = match store.by_host(&host).await {
        Ok(Some(t)) => t,
        Ok(None) => return http::error(404, format!("no phone is configured for host {host:?}")),
        Err(e) => {
            worker::console_error!("tenant lookup failed: {e}");
            return http::error(
                503,
                "the phone's configuration could not be loaded; try again shortly",
            );
        }
    };
    match (req.method(), path.as_str()) {
        (Method::Get | Method::Head, "/api/config") => phone::config(&tenant, &url, &env),
        (Method::Get | Method::Head, "/manifest.webmanifest") => phone::manifest(&tenant),
        (Method::Get | Method::Head, "/icon.svg") => phone::icon(&tenant),
        (Method::Get, "/ws") => sip::upgrade(req, &env, &tenant, &host).await,
        (_, p) if p.starts_with("/api/") => http::error(404, format!("no API at {p}")),
        (Method::Get | Method::Head, _) => phone::asset(req, &env).await,
        _ => http::error(405, "only GET and HEAD are served here"),
    }
}

/// `n` bytes from the runtime's CSPRNG (`crypto.getRandomValues`).
pub(crate) fn random_bytes(n: usize) -> Result<Vec<u8>> {
    use wasm_bindgen::JsCast;
    let global = js_sys::global();
    let crypto = js_sys::Reflect::get(&global, &"crypto".into())?;
    let get_random: js_sys::Function =
        js_sys::Reflect::get(&crypto, &"getRandomValues".into())?.dyn_into()?;
    let array = js_sys::Uint8Array::new_with_length(n as u32);
    get_random.call1(&crypto, &array)?;
    Ok(array.to_vec())
}

/// `n` random bytes as lower-case hex.
pub(crate) fn random_hex(n: usize) -> Result<String> {
    Ok(random_bytes(n)?
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}
