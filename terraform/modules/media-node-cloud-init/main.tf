# Renders the cloud-init user data of one media node. Cloud-neutral: a cloud module passes its own
# public_ip_command and puts `user_data` on its VM; everything else (binary install with SHA-256 check,
# TOML config, root-only secret file, systemd unit that drains on stop) is the same on every cloud.

locals {
  user_data = templatefile("${path.module}/cloud-init.yaml.tftpl", {
    node_id            = var.node_id
    region             = var.region
    binary_url         = var.binary_url
    binary_sha256      = var.binary_sha256
    control_port       = var.control_port
    media_port         = var.media_port
    rtp_port_min       = var.rtp_port_min
    rtp_port_max       = var.rtp_port_max
    capacity           = var.capacity
    drain_timeout_secs = var.drain_timeout_secs
    stop_margin_secs   = var.stop_margin_secs
    fleet_secret       = var.fleet_secret
    report_url         = var.report_url == null ? "" : var.report_url
    public_ip_command  = var.public_ip_command
    log_format         = var.log_format
    log_filter         = var.log_filter
    control_host       = var.control_host
    # Certificate and key travel base64-encoded (one line each) in write_files.
    control_tls_cert_b64 = base64encode(var.control_tls_cert_pem)
    control_tls_key_b64  = base64encode(var.control_tls_key_pem)
  })
}
