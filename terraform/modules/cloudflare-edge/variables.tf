variable "account_id" {
  description = "Cloudflare account id (32 hex digits) that owns the Worker, the D1 database and the tenants' zones."
  type        = string

  validation {
    condition     = can(regex("^[0-9a-f]{32}$", var.account_id))
    error_message = "account_id must be 32 lower-case hex digits."
  }
}

variable "worker_name" {
  description = "Name of the Worker (script name)."
  type        = string
  default     = "webphone-edge"

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9-]{0,62}$", var.worker_name))
    error_message = "worker_name must be 1-63 characters of a-z 0-9 -, not starting with -."
  }
}

variable "worker_bundle_dir" {
  description = "Directory of the built Worker (`cargo xtask build` writes edge-worker/build): index.js (main module) and index_bg.wasm."
  type        = string

  validation {
    condition     = fileexists("${var.worker_bundle_dir}/index.js") && fileexists("${var.worker_bundle_dir}/index_bg.wasm")
    error_message = "worker_bundle_dir must hold index.js and index_bg.wasm: run `cargo xtask build` first."
  }
}

variable "assets_dir" {
  description = "Directory of the phone's static files (the PWA), uploaded as the Worker's assets and bound as ASSETS."
  type        = string

  validation {
    condition     = fileexists("${var.assets_dir}/index.html")
    error_message = "assets_dir must hold the PWA (index.html at least)."
  }
}

variable "compatibility_date" {
  description = "Workers runtime compatibility date (keep it equal to wrangler.toml's)."
  type        = string
  default     = "2026-04-01"

  validation {
    condition     = can(regex("^[0-9]{4}-[0-9]{2}-[0-9]{2}$", var.compatibility_date))
    error_message = "compatibility_date must be YYYY-MM-DD."
  }
}

variable "compatibility_flags" {
  description = "Workers runtime compatibility flags."
  type        = list(string)
  default     = []
}

variable "d1_database_name" {
  description = "Name of the D1 database holding tenants and SIP accounts (bound as DB)."
  type        = string
  default     = "webphone"

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9_-]{0,63}$", var.d1_database_name))
    error_message = "d1_database_name must be 1-64 characters of a-z 0-9 _ -."
  }
}

variable "d1_primary_location_hint" {
  description = "Where D1 puts the primary database: wnam, enam, weur, eeur, apac or oc; null lets Cloudflare choose. Changing it replaces the database (data loss): set it once."
  type        = string
  default     = null

  validation {
    condition     = var.d1_primary_location_hint == null || contains(["wnam", "enam", "weur", "eeur", "apac", "oc"], coalesce(var.d1_primary_location_hint, "-"))
    error_message = "d1_primary_location_hint must be one of wnam, enam, weur, eeur, apac, oc, or null."
  }
}

variable "durable_objects" {
  description = "Durable Object bindings of the Worker: binding name => exported class name (as wrangler.toml's [durable_objects])."
  type        = map(string)
  default = {
    SIP_CONNECTION = "SipConnection"
    SIP_ACCOUNT    = "SipAccount"
    FLEET          = "FleetRegistry"
  }

  validation {
    condition     = alltrue([for b, c in var.durable_objects : can(regex("^[A-Z][A-Z0-9_]*$", b)) && can(regex("^[A-Za-z_][A-Za-z0-9_]*$", c))])
    error_message = "Binding names must be UPPER_SNAKE_CASE and class names JavaScript identifiers."
  }
}

variable "durable_object_migrations" {
  description = "Durable Object migrations, oldest first, as wrangler.toml's [[migrations]]. Append, never edit: Cloudflare applies each tag once."
  type = list(object({
    tag                = string
    new_sqlite_classes = optional(list(string), [])
    deleted_classes    = optional(list(string), [])
    renamed_classes = optional(list(object({
      from = string
      to   = string
    })), [])
  }))
  default = [
    { tag = "v1", new_sqlite_classes = ["SipConnection", "SipAccount"] },
    { tag = "v2", new_sqlite_classes = ["FleetRegistry"] },
  ]

  validation {
    condition     = length(var.durable_object_migrations) > 0 && length(distinct([for m in var.durable_object_migrations : m.tag])) == length(var.durable_object_migrations)
    error_message = "durable_object_migrations needs at least one entry, with distinct tags."
  }
}

variable "applied_migration_tag" {
  description = "The Durable Object migration tag the deployed Worker already has (output `migration_tag` of the last apply); null for a Worker that has none yet. Only the migrations after it are sent."
  type        = string
  default     = null
}

variable "operator_token" {
  description = "Bearer token of the operator API (/admin/*), the Worker secret OPERATOR_TOKEN."
  type        = string
  sensitive   = true

  validation {
    condition     = length(var.operator_token) >= 32 && !can(regex("\\s", var.operator_token))
    error_message = "operator_token must be at least 32 characters without whitespace (e.g. openssl rand -hex 32)."
  }
}

variable "sip_nonce_secret" {
  description = "Key of the stateless SIP digest nonces, the Worker secret SIP_NONCE_SECRET. Rotating it makes outstanding nonces stale (clients re-authenticate once)."
  type        = string
  sensitive   = true

  validation {
    condition     = length(var.sip_nonce_secret) >= 32 && !can(regex("\\s", var.sip_nonce_secret))
    error_message = "sip_nonce_secret must be at least 32 characters without whitespace."
  }
}

variable "fleet_secret" {
  description = "Shared secret between the Worker and the media nodes, the Worker secret FLEET_SECRET (the same value goes to the fleet)."
  type        = string
  sensitive   = true

  validation {
    condition     = can(regex("^[A-Za-z0-9._~+/=-]{16,256}$", var.fleet_secret))
    error_message = "fleet_secret must be 16-256 characters of A-Z a-z 0-9 . _ ~ + / = - (e.g. openssl rand -hex 32)."
  }
}

variable "tenants" {
  description = <<-EOT
    Tenants whose two hostnames are served by the Worker, keyed by a short name: { domain (Domain A,
    the phone), webrtc_host (Domain B, wss://<webrtc_host>/ws), zone_id (Cloudflare zone of domain),
    webrtc_zone_id (zone of webrtc_host; default zone_id) }. Each hostname becomes a Workers custom
    domain (DNS record and certificate included). The tenant's configuration itself is created through
    the operator API, not here.
  EOT
  type = map(object({
    domain         = string
    webrtc_host    = string
    zone_id        = string
    webrtc_zone_id = optional(string)
  }))
  default = {}

  validation {
    condition = alltrue(flatten([
      for t in values(var.tenants) : [
        for h in [t.domain, t.webrtc_host] : can(regex("^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\\.)+[a-z][a-z0-9-]{0,61}[a-z0-9]$", h))
      ]
    ]))
    error_message = "domain and webrtc_host must be lower-case DNS hostnames (no scheme, port or trailing dot)."
  }
  validation {
    condition = length(flatten([for t in values(var.tenants) : [t.domain, t.webrtc_host]])) == length(distinct(flatten([
      for t in values(var.tenants) : [t.domain, t.webrtc_host]
    ])))
    error_message = "A hostname may belong to one tenant only, as either its domain or its webrtc_host."
  }
  validation {
    condition     = alltrue([for t in values(var.tenants) : can(regex("^[0-9a-f]{32}$", t.zone_id)) && (t.webrtc_zone_id == null || can(regex("^[0-9a-f]{32}$", coalesce(t.webrtc_zone_id, "-"))))])
    error_message = "zone_id and webrtc_zone_id must be 32 lower-case hex digits."
  }
}

variable "workers_dev" {
  description = "Also serve the Worker on its *.workers.dev subdomain (tenants are chosen by hostname, so that host only answers /admin/)."
  type        = bool
  default     = false
}

variable "deploy_message" {
  description = "Message recorded with the Worker version and deployment (shown in the dashboard)."
  type        = string
  default     = "Deployed by Terraform"

  validation {
    condition     = length(var.deploy_message) <= 100
    error_message = "deploy_message must be at most 100 characters."
  }
}

variable "media_regions_by_location" {
  description = "Media node regions nearest to callers, by the ISO country code or continent code Cloudflare's edge gives a caller (country wins over continent), nearest first, e.g. { DE = [\"eu-central\"], EU = [\"eu-central\", \"eu-north\"], NA = [\"us-east\"] }. Callers elsewhere get the least loaded node anywhere. The Worker variable MEDIA_REGIONS."
  type        = map(list(string))
  default     = {}

  validation {
    condition     = alltrue([for k in keys(var.media_regions_by_location) : can(regex("^[A-Z]{2}$", k))])
    error_message = "Keys of media_regions_by_location are two-letter upper-case country or continent codes (DE, US, EU, NA, ...)."
  }
}
