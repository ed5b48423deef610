//! What a tenant's hosts serve to browsers: the public config, the web app manifest and icon.
//! The app itself comes from the static assets.

use shared::tenant::{PublicConfig, TenantConfig};
use worker::{Env, Request, Response, Result, Url, WorkerVersionMetadata};

use crate::http;

/// `GET /api/config`.
pub fn config(tenant: &TenantConfig, url: &Url, env: &Env) -> Result<Response> {
    let mut public = PublicConfig::of(tenant, url.scheme() == "https", url.port());
    public.version_id = env
        .get_binding::<WorkerVersionMetadata>("CF_VERSION_METADATA")
        .ok()
        .map(|v| v.id())
        .filter(|id| !id.is_empty());
    let mut resp = http::json(200, &public, "application/json")?;
    // The phone re-reads its config on every load, so operator changes show after a reload.
    resp.headers_mut().set("cache-control", "no-cache")?;
    Ok(resp)
}

/// `GET /manifest.webmanifest`: installable app named after the tenant's brand.
pub fn manifest(tenant: &TenantConfig) -> Result<Response> {
    let manifest = serde_json::json!({
        "name": tenant.brand_name,
        "short_name": short_name(&tenant.brand_name),
        "id": "/",
        "start_url": "/",
        "scope": "/",
        "display": "standalone",
        "background_color": "#ffffff",
        "theme_color": "#1565c0",
        "description": format!("{} phone", tenant.brand_name),
        "icons": [
            { "src": "/icon.svg", "sizes": "any", "type": "image/svg+xml", "purpose": "any" },
            { "src": "/icon.svg", "sizes": "any", "type": "image/svg+xml", "purpose": "maskable" }
        ]
    });
    let mut resp = http::json(200, &manifest, "application/manifest+json")?;
    resp.headers_mut().set("cache-control", "no-cache")?;
    Ok(resp)
}

/// `GET /icon.svg`: the brand's initial on a coloured square.
pub fn icon(tenant: &TenantConfig) -> Result<Response> {
    let initial: String = tenant
        .brand_name
        .chars()
        .find(|c| c.is_alphanumeric())
        .map(|c| c.to_uppercase().collect())
        .unwrap_or_else(|| "☎".to_owned());
    let svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 512 512\">\
         <rect width=\"512\" height=\"512\" fill=\"#1565c0\"/>\
         <text x=\"256\" y=\"340\" font-family=\"sans-serif\" font-size=\"260\" text-anchor=\"middle\" \
         fill=\"#ffffff\">{}</text></svg>",
        escape_xml(&initial)
    );
    let mut resp = Response::ok(svg)?;
    resp.headers_mut().set("content-type", "image/svg+xml")?;
    resp.headers_mut()
        .set("cache-control", "public, max-age=3600")?;
    Ok(resp)
}

/// The static app shell for every other path.
pub async fn asset(req: Request, env: &Env) -> Result<Response> {
    env.assets("ASSETS")?.fetch_request(req).await
}

fn short_name(brand: &str) -> String {
    if brand.chars().count() <= 12 {
        brand.to_owned()
    } else {
        brand
            .split_whitespace()
            .next()
            .unwrap_or(brand)
            .chars()
            .take(12)
            .collect()
    }
}

fn escape_xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
