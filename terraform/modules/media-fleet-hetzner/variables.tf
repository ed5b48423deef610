variable "name_prefix" {
  description = "Prefix of every resource name (servers, firewall) and of node ids, e.g. \"webphone\"."
  type        = string
  default     = "webphone"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,19}$", var.name_prefix))
    error_message = "name_prefix must be 1-20 characters of a-z 0-9 -, starting with a letter."
  }
}

variable "regions" {
  description = <<-EOT
    Fleet regions: key = the region name nodes report (the Worker picks nodes by it), value =
    { node_count, instance_type (Hetzner server type, e.g. "cpx31"), location (Hetzner location,
    e.g. "fsn1"; default: the key), capacity (calls per node; default: var.capacity) }.
    Scale a region by changing node_count; scale-down removes the highest-numbered nodes.
  EOT
  type = map(object({
    node_count    = number
    instance_type = string
    location      = optional(string)
    capacity      = optional(number)
  }))

  validation {
    condition     = alltrue([for k in keys(var.regions) : can(regex("^[a-z][a-z0-9-]{0,19}$", k))])
    error_message = "Region names must be 1-20 characters of a-z 0-9 -, starting with a letter (they become host names)."
  }
  validation {
    condition     = alltrue([for r in values(var.regions) : r.node_count >= 0 && r.node_count <= 50 && floor(r.node_count) == r.node_count])
    error_message = "node_count must be an integer in 0-50 per region."
  }
  validation {
    condition     = alltrue([for r in values(var.regions) : can(regex("^[a-z0-9-]+$", r.instance_type))])
    error_message = "instance_type must be a Hetzner server type name such as \"cpx31\"."
  }
  validation {
    condition     = alltrue([for r in values(var.regions) : r.location == null || can(regex("^[a-z]+[0-9]*$", r.location))])
    error_message = "location must be a Hetzner location name such as \"fsn1\", \"nbg1\", \"hel1\", \"ash\", \"hil\" or \"sin\"."
  }
}

variable "image" {
  description = "Hetzner image name or id the nodes boot (a Debian or Ubuntu image with cloud-init and systemd)."
  type        = string
  default     = "debian-12"
}

variable "binary_url" {
  description = "HTTPS URL of the media-node binary (static Linux executable for the servers' architecture)."
  type        = string
}

variable "binary_sha256" {
  description = "Lower-case hex SHA-256 of the binary at binary_url. Changing it (a new release) replaces every node, new before old."
  type        = string
}

variable "fleet_secret" {
  description = "Shared fleet secret (the Worker's FLEET_SECRET): authenticates the Worker's control calls to nodes and the nodes' reports."
  type        = string
  sensitive   = true
}

variable "capacity" {
  description = "Concurrent calls per node, unless a region sets its own."
  type        = number
  default     = 200

  validation {
    condition     = var.capacity >= 1 && var.capacity <= 100000
    error_message = "capacity must be in 1-100000."
  }
}

variable "control_port" {
  description = "TCP port of each node's control API."
  type        = number
  default     = 9090

  validation {
    condition     = var.control_port >= 1024 && var.control_port <= 65535
    error_message = "control_port must be in 1024-65535."
  }
}

variable "media_port" {
  description = "UDP port of each node's multiplexed WebRTC (ICE/DTLS/SRTP) port."
  type        = number
  default     = 3478

  validation {
    condition     = var.media_port >= 1024 && var.media_port <= 65535
    error_message = "media_port must be in 1024-65535."
  }
}

variable "rtp_port_min" {
  description = "Lowest UDP port of the plain RTP range toward upstream SIP servers."
  type        = number
  default     = 40000

  validation {
    condition     = var.rtp_port_min >= 1024 && var.rtp_port_min <= 65535
    error_message = "rtp_port_min must be in 1024-65535."
  }
}

variable "rtp_port_max" {
  description = "Highest UDP port of the plain RTP range toward upstream SIP servers."
  type        = number
  default     = 49999

  validation {
    condition     = var.rtp_port_max >= 1024 && var.rtp_port_max <= 65535
    error_message = "rtp_port_max must be in 1024-65535."
  }
}

variable "drain_timeout_secs" {
  description = "Seconds a stopping node keeps serving its calls before it exits anyway (0-3600)."
  type        = number
  default     = 600

  validation {
    condition     = var.drain_timeout_secs >= 0 && var.drain_timeout_secs <= 3600
    error_message = "drain_timeout_secs must be in 0-3600."
  }
}

variable "report_url" {
  description = "Control-plane https:// URL the nodes report health, load and call quality to; null for none."
  type        = string
  default     = null
}

variable "control_allowed_cidrs" {
  description = "CIDRs allowed to reach the control port (TCP): the Worker's egress, i.e. Cloudflare's ranges. Never 0.0.0.0/0 in production."
  type        = list(string)

  validation {
    condition     = length(var.control_allowed_cidrs) > 0 && alltrue([for c in var.control_allowed_cidrs : can(cidrhost(c, 0))])
    error_message = "control_allowed_cidrs must be a non-empty list of CIDRs."
  }
}

variable "media_allowed_cidrs" {
  description = "CIDRs allowed to send to the WebRTC media port (UDP): browsers, so normally everyone."
  type        = list(string)
  default     = ["0.0.0.0/0", "::/0"]

  validation {
    condition     = length(var.media_allowed_cidrs) > 0 && alltrue([for c in var.media_allowed_cidrs : can(cidrhost(c, 0))])
    error_message = "media_allowed_cidrs must be a non-empty list of CIDRs."
  }
}

variable "rtp_allowed_cidrs" {
  description = "CIDRs allowed to send to the RTP range (UDP): the upstream SIP servers' media addresses; everyone by default."
  type        = list(string)
  default     = ["0.0.0.0/0", "::/0"]

  validation {
    condition     = length(var.rtp_allowed_cidrs) > 0 && alltrue([for c in var.rtp_allowed_cidrs : can(cidrhost(c, 0))])
    error_message = "rtp_allowed_cidrs must be a non-empty list of CIDRs."
  }
}

variable "ssh_allowed_cidrs" {
  description = "CIDRs allowed to reach SSH (TCP 22); empty closes SSH in the firewall."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for c in var.ssh_allowed_cidrs : can(cidrhost(c, 0))])
    error_message = "ssh_allowed_cidrs must be CIDRs."
  }
}

variable "ssh_key_ids" {
  description = "Hetzner SSH key ids or names installed for root on new nodes (needed for drain_over_ssh)."
  type        = list(string)
  default     = []
}

variable "drain_over_ssh" {
  description = "When a node is removed (scale-down, replacement), first run `systemctl stop media-node` on it over SSH, which returns once its calls have drained (at most drain timeout + margin). Needs ssh_key_ids, ssh_allowed_cidrs covering the Terraform host, and the key in ssh-agent. Without it a removed node only gets Hetzner's short graceful shutdown."
  type        = bool
  default     = false
}

variable "ssh_user" {
  description = "User Terraform connects as for drain_over_ssh (root on Hetzner images)."
  type        = string
  default     = "root"
}

variable "labels" {
  description = "Extra Hetzner labels on every server and the firewall."
  type        = map(string)
  default     = {}
}

variable "log_format" {
  description = "media-node log format in the journal: \"text\" or \"json\"."
  type        = string
  default     = "json"

  validation {
    condition     = contains(["text", "json"], var.log_format)
    error_message = "log_format must be \"text\" or \"json\"."
  }
}

variable "control_domain" {
  description = "DNS domain of the nodes' control API names: node <id> answers at <id>.<control_domain> (create the records from the `nodes` output, e.g. in Cloudflare)."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$", var.control_domain))
    error_message = "control_domain must be a lower-case DNS name such as media.example.com."
  }
}

variable "control_tls_cert_pem" {
  description = "PEM certificate (chain) for *.<control_domain>, trusted by public CAs: the Worker calls the nodes' control API over HTTPS."
  type        = string
}

variable "control_tls_key_pem" {
  description = "PEM private key of control_tls_cert_pem."
  type        = string
  sensitive   = true
}
