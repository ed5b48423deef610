# A complete deployment: two tenants (each with its Domain A and Domain B as custom domains) and
# media nodes in Europe and the US east coast. Example values: replace the zone ids and URLs.

module "webphone" {
  source = "../.."

  cloudflare_account_id = var.cloudflare_account_id
  name_prefix           = "webphone"
  applied_migration_tag = var.applied_migration_tag

  tenants = {
    example = {
      domain      = "phone.example.com"
      webrtc_host = "sip.example.com"
      zone_id     = "0123456789abcdef0123456789abcdef"
    }
    acme = {
      domain         = "phone.acme-voip.net"
      webrtc_host    = "webrtc.acme-voip.io"
      zone_id        = "fedcba9876543210fedcba9876543210"
      webrtc_zone_id = "00112233445566778899aabbccddeeff"
    }
  }

  operator_token   = var.operator_token
  sip_nonce_secret = var.sip_nonce_secret
  fleet_secret     = var.fleet_secret

  media_regions = {
    eu-central = { location = "fsn1", node_count = 2, instance_type = "cpx31" }
    eu-north   = { location = "hel1", node_count = 1, instance_type = "cpx31" }
    us-east    = { location = "ash", node_count = 1, instance_type = "cpx31", capacity = 150 }
  }
  # Callers are sent to the nearest of these regions first (Cloudflare's country/continent codes).
  media_regions_by_location = {
    DE = ["eu-central"]
    FI = ["eu-north", "eu-central"]
    EU = ["eu-central", "eu-north"]
    NA = ["us-east"]
  }
  media_node_binary_url    = "https://downloads.example.com/webphone/media-node-0.1.0-x86_64-linux"
  media_node_binary_sha256 = var.media_node_binary_sha256
  media_node_capacity      = 200
  drain_timeout_secs       = 900

  # The nodes' control API: <node id>.media.example.com over HTTPS with a wildcard certificate.
  media_control_domain       = "media.example.com"
  media_control_zone_id      = "0123456789abcdef0123456789abcdef"
  media_control_tls_cert_pem = file(var.media_control_tls_cert_file)
  media_control_tls_key_pem  = file(var.media_control_tls_key_file)

  # Operators' office range: SSH for debugging and for draining nodes before Terraform removes them.
  ssh_allowed_cidrs = ["198.51.100.0/24"]
  ssh_key_ids       = ["ops"]
  drain_over_ssh    = true
}
