//! The SIP-over-WebSocket edge (RFC 7118).
//!
//! # Design
//! Two kinds of Durable Object share the work:
//! - [`connection::SipConnection`], one per browser WebSocket. It holds the socket (with the
//!   hibernation API, so idle phones cost nothing), checks every message ([`shared::sip::edge_verdict`]:
//!   malformed requests are answered, malformed responses dropped, the socket stays open), applies a
//!   per-socket rate limit, and passes what is left to the account object of the user the socket has
//!   registered as. Any RFC 7118 client can connect to `/ws` without saying who it is first; the socket
//!   belongs to an account from its first successful REGISTER on.
//! - `SipAccount`, one per SIP account (tenant domain + username), which runs the sans-IO SIP core for
//!   that account: registrations, digest authentication, proxying and forking, and the TCP/TLS connection
//!   to the tenant's upstream (so the upstream's requests come back over the connection the REGISTER
//!   used). Account objects are named `<tenant domain>/<username>`, so nothing addressed within one
//!   tenant can reach another tenant's account.
//!
//! Objects talk to each other with internal HTTP requests carrying [`wire`] messages.

pub mod account;
pub mod connection;
pub mod wire;

use worker::{Env, Request, Response, Result};

use crate::http;
use shared::tenant::TenantConfig;

/// The WebSocket subprotocol for SIP (RFC 7118 §4).
pub const SUBPROTOCOL: &str = "sip";

/// `GET /ws` on a tenant host: hands the upgrade to a new connection object.
pub async fn upgrade(
    req: Request,
    env: &Env,
    tenant: &TenantConfig,
    host: &str,
) -> Result<Response> {
    if host != tenant.webrtc_host.as_str() {
        return http::error(
            404,
            format!(
                "SIP over WebSocket is served on this tenant's WebRTC host, {}",
                tenant.webrtc_host
            ),
        );
    }
    let headers = req.headers();
    let is_upgrade = headers
        .get("upgrade")?
        .is_some_and(|u| u.eq_ignore_ascii_case("websocket"));
    if !is_upgrade {
        let mut resp = http::error(
            426,
            "connect with a WebSocket (Upgrade: websocket, subprotocol \"sip\")",
        )?;
        resp.headers_mut().set("upgrade", "websocket")?;
        return Ok(resp);
    }
    let offers_sip = headers.get("sec-websocket-protocol")?.is_some_and(|p| {
        p.split(',')
            .any(|p| p.trim().eq_ignore_ascii_case(SUBPROTOCOL))
    });
    if !offers_sip {
        return http::error(
            400,
            "the WebSocket must offer the subprotocol \"sip\" (RFC 7118)",
        );
    }
    let namespace = env.durable_object(connection::BINDING)?;
    let stub = namespace.unique_id()?.get_stub()?;
    let init_headers = worker::Headers::new();
    init_headers.set("upgrade", "websocket")?;
    init_headers.set(wire::TENANT_HEADER, tenant.domain.as_str())?;
    let caller = req
        .cf()
        .map(|cf| wire::CallerLocation {
            country: cf.country(),
            continent: cf.continent(),
        })
        .unwrap_or_default();
    init_headers.set(wire::CALLER_HEADER, &caller.to_header())?;
    let mut init = worker::RequestInit::new();
    init.with_headers(init_headers);
    stub.fetch_with_request(Request::new_with_init("https://connection/accept", &init)?)
        .await
}
