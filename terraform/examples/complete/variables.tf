variable "cloudflare_account_id" {
  description = "Cloudflare account id (32 hex digits)."
  type        = string
}

variable "operator_token" {
  description = "Operator API token (Worker secret OPERATOR_TOKEN); export TF_VAR_operator_token=$(openssl rand -hex 32)."
  type        = string
  sensitive   = true
}

variable "sip_nonce_secret" {
  description = "SIP digest nonce key (Worker secret SIP_NONCE_SECRET); export TF_VAR_sip_nonce_secret=$(openssl rand -hex 32)."
  type        = string
  sensitive   = true
}

variable "fleet_secret" {
  description = "Worker <-> media node secret; export TF_VAR_fleet_secret=$(openssl rand -hex 32)."
  type        = string
  sensitive   = true
}

variable "applied_migration_tag" {
  description = "Durable Object migration tag already applied (output migration_tag of the previous apply); null the first time."
  type        = string
  default     = null
}

variable "media_node_binary_sha256" {
  description = "SHA-256 of the media-node release binary (sha256sum media-node)."
  type        = string
}

variable "media_control_tls_cert_file" {
  description = "Path of the PEM certificate (chain) for *.media.example.com, e.g. from an ACME client."
  type        = string
}

variable "media_control_tls_key_file" {
  description = "Path of the PEM private key of that certificate."
  type        = string
}
