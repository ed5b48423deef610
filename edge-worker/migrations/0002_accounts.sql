-- Local SIP accounts (tenants whose sip.registration is "local").
-- Passwords are never stored: only the digest HA1 hashes (RFC 7616/8760) for the tenant's realm
-- (its domain), one per algorithm the edge offers.
CREATE TABLE accounts (
    tenant_domain TEXT NOT NULL REFERENCES tenants (domain) ON DELETE CASCADE ON UPDATE CASCADE,
    username      TEXT NOT NULL,
    display_name  TEXT NOT NULL DEFAULT '',
    ha1_md5       TEXT NOT NULL,
    ha1_sha256    TEXT NOT NULL,
    created_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (tenant_domain, username)
);
