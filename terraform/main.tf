# The whole platform: the Cloudflare edge (Worker, D1, Durable Objects, secrets, tenant domains) and
# the media fleet on Hetzner Cloud. Providers are configured by the caller (see examples/complete);
# run directly, they read CLOUDFLARE_API_TOKEN and HCLOUD_TOKEN.

locals {
  repo_root = "${path.module}/.."
}

# Where the Worker's outbound requests (control calls to media nodes) come from.
data "cloudflare_ip_ranges" "cloudflare" {}

module "edge" {
  source = "./modules/cloudflare-edge"

  account_id               = var.cloudflare_account_id
  worker_name              = "${var.name_prefix}-edge"
  worker_bundle_dir        = coalesce(var.worker_bundle_dir, "${local.repo_root}/edge-worker/build")
  assets_dir               = coalesce(var.assets_dir, "${local.repo_root}/edge-worker/pwa/dist")
  compatibility_date       = var.compatibility_date
  d1_database_name         = var.name_prefix
  d1_primary_location_hint = var.d1_primary_location_hint
  applied_migration_tag    = var.applied_migration_tag
  tenants                  = var.tenants
  workers_dev              = var.workers_dev

  operator_token   = var.operator_token
  sip_nonce_secret = var.sip_nonce_secret
  fleet_secret     = var.fleet_secret

  media_regions_by_location = var.media_regions_by_location
}

module "media_fleet" {
  source = "./modules/media-fleet-hetzner"

  name_prefix        = var.name_prefix
  regions            = var.media_regions
  binary_url         = var.media_node_binary_url
  binary_sha256      = var.media_node_binary_sha256
  fleet_secret       = var.fleet_secret
  capacity           = var.media_node_capacity
  drain_timeout_secs = var.drain_timeout_secs
  report_url         = var.media_report_url

  control_allowed_cidrs = var.control_allowed_cidrs != null ? var.control_allowed_cidrs : concat(
    data.cloudflare_ip_ranges.cloudflare.ipv4_cidrs,
    data.cloudflare_ip_ranges.cloudflare.ipv6_cidrs,
  )
  rtp_allowed_cidrs = var.rtp_allowed_cidrs
  ssh_allowed_cidrs = var.ssh_allowed_cidrs
  ssh_key_ids       = var.ssh_key_ids
  drain_over_ssh    = var.drain_over_ssh

  control_domain       = var.media_control_domain
  control_tls_cert_pem = var.media_control_tls_cert_pem
  control_tls_key_pem  = var.media_control_tls_key_pem
}

# The name each node's control API answers on (its certificate covers *.media_control_domain). Not
# proxied: the Worker talks to the node directly over HTTPS.
resource "cloudflare_dns_record" "media_control" {
  for_each = module.media_fleet.nodes

  zone_id = var.media_control_zone_id
  name    = each.value.control_host
  type    = "A"
  content = each.value.ipv4
  ttl     = 60
  proxied = false
  comment = "webphone media node ${each.value.id} (control API)"
}
