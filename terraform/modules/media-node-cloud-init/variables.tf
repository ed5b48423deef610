variable "node_id" {
  description = "Node id, unique in the fleet (shown by GET /admin/fleet): 1-64 of A-Z a-z 0-9 . _ -."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9._-]{1,64}$", var.node_id))
    error_message = "node_id must be 1-64 characters of A-Z a-z 0-9 . _ -."
  }
}

variable "region" {
  description = "Fleet region the node serves; the Worker picks nodes by region. Same characters as node_id."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9._-]{1,64}$", var.region))
    error_message = "region must be 1-64 characters of A-Z a-z 0-9 . _ -."
  }
}

variable "binary_url" {
  description = "HTTPS URL of the media-node binary (a static Linux x86_64 executable, not an archive)."
  type        = string

  validation {
    condition     = can(regex("^https://[^\\s\"'`$]+$", var.binary_url))
    error_message = "binary_url must be an https:// URL without spaces, quotes or $."
  }
}

variable "binary_sha256" {
  description = "Lower-case hex SHA-256 of the binary at binary_url; the node refuses to install anything else."
  type        = string

  validation {
    condition     = can(regex("^[0-9a-f]{64}$", var.binary_sha256))
    error_message = "binary_sha256 must be 64 lower-case hex digits (sha256sum output)."
  }
}

variable "control_port" {
  description = "TCP port of the control API (the Worker's allocate/update/release calls, GET /healthz)."
  type        = number
  default     = 9090

  validation {
    condition     = var.control_port >= 1024 && var.control_port <= 65535 && floor(var.control_port) == var.control_port
    error_message = "control_port must be an integer in 1024-65535 (the node runs without privileges)."
  }
}

variable "media_port" {
  description = "UDP port browsers send ICE/DTLS/SRTP to (one multiplexed port). Must lie outside the RTP range."
  type        = number
  default     = 3478

  validation {
    condition     = var.media_port >= 1024 && var.media_port <= 65535 && floor(var.media_port) == var.media_port
    error_message = "media_port must be an integer in 1024-65535 (the node runs without privileges)."
  }
}

variable "rtp_port_min" {
  description = "Lowest UDP port for plain RTP/RTCP with the upstream (inclusive)."
  type        = number
  default     = 40000

  validation {
    condition     = var.rtp_port_min >= 1024 && var.rtp_port_min <= 65535
    error_message = "rtp_port_min must be in 1024-65535."
  }
}

variable "rtp_port_max" {
  description = "Highest UDP port for plain RTP/RTCP with the upstream (inclusive); at least 2 ports per call of capacity."
  type        = number
  default     = 49999

  validation {
    condition     = var.rtp_port_max >= 1024 && var.rtp_port_max <= 65535
    error_message = "rtp_port_max must be in 1024-65535."
  }
}

variable "capacity" {
  description = "Concurrent calls the node accepts (1-100000), reported to the control plane."
  type        = number
  default     = 100

  validation {
    condition     = var.capacity >= 1 && var.capacity <= 100000 && floor(var.capacity) == var.capacity
    error_message = "capacity must be an integer in 1-100000."
  }
}

variable "drain_timeout_secs" {
  description = "Seconds a stopping node (SIGTERM) keeps serving its calls before exiting anyway (0-3600). It exits earlier when its last call ends."
  type        = number
  default     = 600

  validation {
    condition     = var.drain_timeout_secs >= 0 && var.drain_timeout_secs <= 3600 && floor(var.drain_timeout_secs) == var.drain_timeout_secs
    error_message = "drain_timeout_secs must be an integer in 0-3600 (media-node's limit)."
  }
}

variable "stop_margin_secs" {
  description = "Seconds systemd waits beyond drain_timeout_secs before SIGKILL (TimeoutStopSec = drain + margin)."
  type        = number
  default     = 30

  validation {
    condition     = var.stop_margin_secs >= 5 && var.stop_margin_secs <= 600
    error_message = "stop_margin_secs must be in 5-600."
  }
}

variable "fleet_secret" {
  description = "Shared fleet secret authenticating the Worker's control calls and the node's reports (the Worker's FLEET_SECRET). Written to a root-only environment file, never to the TOML config."
  type        = string
  sensitive   = true

  validation {
    condition     = can(regex("^[A-Za-z0-9._~+/=-]{16,256}$", var.fleet_secret))
    error_message = "fleet_secret must be 16-256 characters of A-Z a-z 0-9 . _ ~ + / = - (e.g. openssl rand -hex 32)."
  }
}

variable "report_url" {
  description = "Control-plane https:// URL for health, load and call-quality reports; null sends no reports."
  type        = string
  default     = null

  validation {
    condition     = var.report_url == null || can(regex("^https://[^\\s\"'`$]+$", var.report_url))
    error_message = "report_url must be an https:// URL without spaces, quotes or $, or null."
  }
}

variable "public_ip_command" {
  description = "Shell command printing the node's public IPv4 address at boot (cloud-specific, e.g. a metadata-service query). Its output becomes MEDIA_NODE_PUBLIC_IP, the address put in ICE candidates and SDP."
  type        = string

  validation {
    condition     = length(trimspace(var.public_ip_command)) > 0 && !can(regex("[\\n']", var.public_ip_command))
    error_message = "public_ip_command must be a non-empty single-line command without single quotes."
  }
}

variable "log_format" {
  description = "media-node log format on stderr (journald): \"text\" or \"json\"."
  type        = string
  default     = "json"

  validation {
    condition     = contains(["text", "json"], var.log_format)
    error_message = "log_format must be \"text\" or \"json\"."
  }
}

variable "log_filter" {
  description = "media-node log filter in RUST_LOG syntax, e.g. \"info,media_node=debug\"."
  type        = string
  default     = "info"

  validation {
    condition     = can(regex("^[A-Za-z0-9_=,:.-]+$", var.log_filter))
    error_message = "log_filter must be RUST_LOG syntax (letters, digits, _ = , : . -)."
  }
}

variable "control_host" {
  description = "DNS name of this node's control API, covered by the control TLS certificate (e.g. <node id>.media.example.com); the Worker reaches the node at https://<control_host>:<control_port>."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$", var.control_host))
    error_message = "control_host must be a lower-case DNS name such as node-1.media.example.com."
  }
}

variable "control_tls_cert_pem" {
  description = "PEM certificate (chain) of the control API, valid for control_host and trusted by public CAs (the Worker's fetch checks it). Written to /etc/media-node/control-tls.crt."
  type        = string

  validation {
    condition     = can(regex("-----BEGIN CERTIFICATE-----", var.control_tls_cert_pem))
    error_message = "control_tls_cert_pem must be a PEM certificate."
  }
}

variable "control_tls_key_pem" {
  description = "PEM private key of control_tls_cert_pem. Written root-only and handed to the service as a systemd credential, never to the TOML config."
  type        = string
  sensitive   = true

  validation {
    condition     = can(regex("-----BEGIN [A-Z ]*PRIVATE KEY-----", var.control_tls_key_pem))
    error_message = "control_tls_key_pem must be a PEM private key."
  }
}
