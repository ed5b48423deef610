output "user_data" {
  description = "The rendered #cloud-config document for the node (contains the fleet secret)."
  value       = local.user_data
  sensitive   = true

  # Cross-variable checks that media-node would otherwise only report at boot (exit 2).
  precondition {
    condition     = var.rtp_port_min <= var.rtp_port_max
    error_message = "rtp_port_min must not be above rtp_port_max."
  }
  precondition {
    condition     = var.media_port < var.rtp_port_min || var.media_port > var.rtp_port_max
    error_message = "media_port must lie outside the RTP range rtp_port_min-rtp_port_max."
  }
  precondition {
    condition     = (var.rtp_port_max - var.rtp_port_min + 1) >= 2 * var.capacity
    error_message = "The RTP range needs at least 2 ports per call of capacity: widen it or lower capacity."
  }
}

output "timeout_stop_secs" {
  description = "systemd TimeoutStopSec of media-node.service: how long a stop may take (drain timeout plus margin)."
  value       = var.drain_timeout_secs + var.stop_margin_secs
}
