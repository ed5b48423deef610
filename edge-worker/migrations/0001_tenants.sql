-- Tenants and the hostnames they answer on.
-- `tenant_hosts` makes every hostname (a tenant's domain and its webrtc_host) unique across the
-- whole deployment, so one request host can only ever resolve to one tenant.
CREATE TABLE tenants (
    domain     TEXT PRIMARY KEY NOT NULL,
    config     TEXT NOT NULL,               -- shared::tenant::TenantConfig as JSON
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

CREATE TABLE tenant_hosts (
    host   TEXT PRIMARY KEY NOT NULL,
    domain TEXT NOT NULL REFERENCES tenants (domain) ON DELETE CASCADE
);

CREATE INDEX tenant_hosts_by_domain ON tenant_hosts (domain);
