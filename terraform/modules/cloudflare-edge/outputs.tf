output "worker_name" {
  description = "Name of the deployed Worker (the script name wrangler and the dashboard use)."
  value       = cloudflare_worker.this.name
}

output "worker_id" {
  description = "Immutable id of the Worker."
  value       = cloudflare_worker.this.id
}

output "version_id" {
  description = "Id of the Worker version now deployed at 100%."
  value       = cloudflare_worker_version.this.id
}

output "bundle_sha256" {
  description = "SHA-256 over index.js and index_bg.wasm of the deployed bundle (its first 12 digits tag the version)."
  value       = local.bundle_sha256
}

output "d1_database_id" {
  description = "Id of the D1 database: put it in wrangler.toml's database_id to run `wrangler d1 migrations apply DB --remote`."
  value       = cloudflare_d1_database.this.id
}

output "migration_tag" {
  description = "Durable Object migration tag the Worker has after this apply: set applied_migration_tag to it for the next apply."
  value       = local.latest_tag
}

output "tenant_hostnames" {
  description = "Each tenant's hostnames served by the Worker: { domain, webrtc_host, ws_url }."
  value = {
    for tenant, t in var.tenants : tenant => {
      domain      = t.domain
      webrtc_host = t.webrtc_host
      ws_url      = "wss://${t.webrtc_host}/ws"
    }
  }
}

output "custom_domain_ids" {
  description = "Workers custom domain id by hostname."
  value       = { for host, d in cloudflare_workers_custom_domain.tenant : host => d.id }
}
