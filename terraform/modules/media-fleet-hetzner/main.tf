# The media fleet on Hetzner Cloud: per region N servers, each booted with the cloud-neutral
# media-node cloud-init, one firewall for the fleet. The Hetzner-specific part is this file only;
# another cloud is another small module calling ../media-node-cloud-init the same way.

locals {
  # One entry per node, keyed "<region>-<n>" so scale-down removes the highest numbers.
  nodes = merge([
    for region, r in var.regions : {
      for i in range(r.node_count) : "${region}-${i + 1}" => {
        region        = region
        location      = coalesce(r.location, region)
        instance_type = r.instance_type
        capacity      = coalesce(r.capacity, var.capacity)
      }
    }
  ]...)

  # Everything that ends up in a node's user data except its id. Hetzner replaces a server whose
  # user data changes; the generation suffix gives the replacement a new name and node id so it can
  # come up before the old node drains (create_before_destroy). The hash reveals nothing of the secret.
  generations = {
    for key, n in local.nodes : key => substr(nonsensitive(sha256(jsonencode({
      region        = n.region
      capacity      = n.capacity
      image         = var.image
      binary_url    = var.binary_url
      binary_sha256 = var.binary_sha256
      fleet_secret  = sha256(var.fleet_secret)
      ports         = [var.control_port, var.media_port, var.rtp_port_min, var.rtp_port_max]
      drain         = var.drain_timeout_secs
      report_url    = var.report_url
      log_format    = var.log_format
      control_tls   = [var.control_domain, sha256(var.control_tls_cert_pem), sha256(var.control_tls_key_pem)]
    }))), 0, 6)
  }

  node_ids = { for key, n in local.nodes : key => "${var.name_prefix}-${key}-${local.generations[key]}" }

  labels = merge(var.labels, { app = "webphone", role = "media-node" })
}

module "cloud_init" {
  source   = "../media-node-cloud-init"
  for_each = local.nodes

  node_id            = local.node_ids[each.key]
  region             = each.value.region
  binary_url         = var.binary_url
  binary_sha256      = var.binary_sha256
  fleet_secret       = var.fleet_secret
  capacity           = each.value.capacity
  control_port       = var.control_port
  media_port         = var.media_port
  rtp_port_min       = var.rtp_port_min
  rtp_port_max       = var.rtp_port_max
  drain_timeout_secs = var.drain_timeout_secs
  report_url         = var.report_url
  log_format         = var.log_format
  control_host         = "${local.node_ids[each.key]}.${var.control_domain}"
  control_tls_cert_pem = var.control_tls_cert_pem
  control_tls_key_pem  = var.control_tls_key_pem
  # The public IPv4 sits on the server's interface; the metadata service names it.
  public_ip_command = "curl -fsS --max-time 5 http://169.254.169.254/hetzner/v1/metadata/public-ipv4"
}

resource "hcloud_firewall" "media" {
  name   = "${var.name_prefix}-media"
  labels = local.labels

  rule {
    description = "WebRTC media (ICE/DTLS/SRTP) from browsers"
    direction   = "in"
    protocol    = "udp"
    port        = tostring(var.media_port)
    source_ips  = var.media_allowed_cidrs
  }

  rule {
    description = "Plain RTP/RTCP from upstream SIP servers"
    direction   = "in"
    protocol    = "udp"
    port        = "${var.rtp_port_min}-${var.rtp_port_max}"
    source_ips  = var.rtp_allowed_cidrs
  }

  rule {
    description = "Control API from the edge Worker"
    direction   = "in"
    protocol    = "tcp"
    port        = tostring(var.control_port)
    source_ips  = var.control_allowed_cidrs
  }

  rule {
    description = "ICMP (path MTU discovery, ping)"
    direction   = "in"
    protocol    = "icmp"
    source_ips  = ["0.0.0.0/0", "::/0"]
  }

  dynamic "rule" {
    for_each = length(var.ssh_allowed_cidrs) > 0 ? [var.ssh_allowed_cidrs] : []
    content {
      description = "SSH for operators (and drain_over_ssh)"
      direction   = "in"
      protocol    = "tcp"
      port        = "22"
      source_ips  = rule.value
    }
  }
}

resource "hcloud_server" "node" {
  for_each = local.nodes

  name         = local.node_ids[each.key]
  server_type  = each.value.instance_type
  image        = var.image
  location     = each.value.location
  user_data    = module.cloud_init[each.key].user_data
  ssh_keys     = var.ssh_key_ids
  firewall_ids = [hcloud_firewall.media.id]
  labels       = merge(local.labels, { region = each.value.region, generation = local.generations[each.key] })

  # ACPI shutdown before delete: systemd stops media-node with SIGTERM (a short drain; Hetzner
  # does not wait for long ones: use drain_over_ssh or drain first, see README).
  shutdown_before_deletion = true

  public_net {
    ipv4_enabled = true
    ipv6_enabled = true
  }

  lifecycle {
    # A replaced node (new binary, new config) comes up before the old one drains and goes.
    create_before_destroy = true
    # Keys are only read at creation; changing them must not replace live nodes.
    ignore_changes = [ssh_keys]
  }
}

# Scale-down and replacement drain: destroying this runs `systemctl stop media-node` on the node
# before the server is deleted. systemctl returns when the unit has stopped, i.e. when the node's
# calls have ended or TimeoutStopSec (drain timeout + margin) has passed.
resource "terraform_data" "drain" {
  for_each = { for key, server in hcloud_server.node : key => server.ipv4_address if var.drain_over_ssh }

  input = {
    host = each.value
    user = var.ssh_user
  }

  provisioner "remote-exec" {
    when       = destroy
    on_failure = continue
    inline     = ["systemctl stop media-node.service"]

    connection {
      type    = "ssh"
      host    = self.input.host
      user    = self.input.user
      timeout = "30s"
    }
  }
}
