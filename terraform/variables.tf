# --- Cloudflare: the edge Worker ---------------------------------------------------------------

variable "cloudflare_account_id" {
  description = "Cloudflare account id (32 hex digits) for the Worker, D1 and the tenants' zones. The API token comes from CLOUDFLARE_API_TOKEN."
  type        = string

  validation {
    condition     = can(regex("^[0-9a-f]{32}$", var.cloudflare_account_id))
    error_message = "cloudflare_account_id must be 32 lower-case hex digits."
  }
}

variable "name_prefix" {
  description = "Prefix of resource names: the Worker is \"<prefix>-edge\", the D1 database \"<prefix>\", media nodes \"<prefix>-<region>-<n>-<generation>\"."
  type        = string
  default     = "webphone"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,19}$", var.name_prefix))
    error_message = "name_prefix must be 1-20 characters of a-z 0-9 -, starting with a letter."
  }
}

variable "worker_bundle_dir" {
  description = "Built Worker directory (index.js, index_bg.wasm); null means edge-worker/build of this repository. Build it with `cargo xtask build`."
  type        = string
  default     = null
}

variable "assets_dir" {
  description = "Directory of the PWA's static files uploaded as Worker assets; null means edge-worker/public of this repository."
  type        = string
  default     = null
}

variable "compatibility_date" {
  description = "Workers compatibility date; keep it equal to wrangler.toml's."
  type        = string
  default     = "2026-04-01"

  validation {
    condition     = can(regex("^[0-9]{4}-[0-9]{2}-[0-9]{2}$", var.compatibility_date))
    error_message = "compatibility_date must be YYYY-MM-DD."
  }
}

variable "d1_primary_location_hint" {
  description = "Region of the D1 primary (wnam, enam, weur, eeur, apac, oc), or null for Cloudflare's choice. Set once: changing it replaces the database."
  type        = string
  default     = null
}

variable "applied_migration_tag" {
  description = "Durable Object migration tag the deployed Worker already has (output migration_tag of the last apply); null on the first apply."
  type        = string
  default     = null
}

variable "tenants" {
  description = "Tenants' hostnames served by the Worker: name => { domain, webrtc_host, zone_id, webrtc_zone_id (optional) }. Their configuration is created through the operator API."
  type = map(object({
    domain         = string
    webrtc_host    = string
    zone_id        = string
    webrtc_zone_id = optional(string)
  }))
  default = {}
}

variable "workers_dev" {
  description = "Also serve the Worker on *.workers.dev (answers only the operator API there)."
  type        = bool
  default     = false
}

# --- Secrets (pass with TF_VAR_operator_token etc.; never commit them) --------------------------

variable "operator_token" {
  description = "Operator API bearer token (Worker secret OPERATOR_TOKEN), at least 32 characters."
  type        = string
  sensitive   = true
}

variable "sip_nonce_secret" {
  description = "SIP digest nonce key (Worker secret SIP_NONCE_SECRET), at least 32 characters."
  type        = string
  sensitive   = true
}

variable "fleet_secret" {
  description = "Worker <-> media node secret (Worker secret FLEET_SECRET and every node's MEDIA_NODE_FLEET_SECRET), 16-256 characters."
  type        = string
  sensitive   = true
}

# --- Media fleet (Hetzner Cloud; the API token comes from HCLOUD_TOKEN) --------------------------

variable "media_regions" {
  description = "Media regions: region name => { node_count, instance_type, location (Hetzner location; default the name), capacity (optional) }. Change node_count to scale."
  type = map(object({
    node_count    = number
    instance_type = string
    location      = optional(string)
    capacity      = optional(number)
  }))
  default = {}
}

variable "media_node_binary_url" {
  description = "HTTPS URL of the media-node release binary the nodes install."
  type        = string
}

variable "media_node_binary_sha256" {
  description = "SHA-256 of that binary; nodes refuse anything else. Changing it rolls every node (new before old)."
  type        = string
}

variable "media_node_capacity" {
  description = "Concurrent calls per media node, unless its region sets capacity."
  type        = number
  default     = 200
}

variable "drain_timeout_secs" {
  description = "How long a stopping media node keeps its calls (0-3600 s) before exiting anyway."
  type        = number
  default     = 600
}

variable "media_report_url" {
  description = "Control-plane https:// URL media nodes report to; null for none."
  type        = string
  default     = null
}

variable "control_allowed_cidrs" {
  description = "CIDRs allowed to the media nodes' control port; null means Cloudflare's published IP ranges (where the Worker's requests come from)."
  type        = list(string)
  default     = null
}

variable "rtp_allowed_cidrs" {
  description = "CIDRs allowed to the RTP port range (the upstream SIP servers' media); everyone by default."
  type        = list(string)
  default     = ["0.0.0.0/0", "::/0"]
}

variable "ssh_allowed_cidrs" {
  description = "CIDRs allowed to SSH into media nodes; empty closes SSH."
  type        = list(string)
  default     = []
}

variable "ssh_key_ids" {
  description = "Hetzner SSH key ids or names installed on new media nodes."
  type        = list(string)
  default     = []
}

variable "drain_over_ssh" {
  description = "Drain a media node over SSH (systemctl stop, waits for its calls) before Terraform deletes it. Needs ssh_key_ids, ssh_allowed_cidrs and ssh-agent."
  type        = bool
  default     = false
}

variable "media_control_domain" {
  description = "DNS domain for the media nodes' control API names (<node id>.<domain>), e.g. media.example.com; records are created in media_control_zone_id."
  type        = string
}

variable "media_control_zone_id" {
  description = "Cloudflare zone id holding media_control_domain, where the nodes' A records are created."
  type        = string

  validation {
    condition     = can(regex("^[0-9a-f]{32}$", var.media_control_zone_id))
    error_message = "media_control_zone_id must be a 32-character hex Cloudflare zone id."
  }
}

variable "media_control_tls_cert_pem" {
  description = "PEM certificate (chain) for *.<media_control_domain> from a public CA (the Worker's fetch verifies it); the nodes serve their control API with it."
  type        = string
}

variable "media_control_tls_key_pem" {
  description = "PEM private key of media_control_tls_cert_pem."
  type        = string
  sensitive   = true
}

variable "media_regions_by_location" {
  description = "Media regions (keys of media_regions) nearest to callers, by Cloudflare's country or continent code for the caller, nearest first; see modules/cloudflare-edge."
  type        = map(list(string))
  default     = {}
}
