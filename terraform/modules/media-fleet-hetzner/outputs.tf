output "nodes" {
  description = "Every media node by key (\"<region>-<n>\"): its fleet id, region, Hetzner location, addresses and control URL."
  value = {
    for key, server in hcloud_server.node : key => {
      id          = local.node_ids[key]
      region      = local.nodes[key].region
      location    = server.location
      capacity    = local.nodes[key].capacity
      ipv4        = server.ipv4_address
      ipv6        = server.ipv6_address
      control_host = "${local.node_ids[key]}.${var.control_domain}"
      control_url  = "https://${local.node_ids[key]}.${var.control_domain}:${var.control_port}"
      server_id   = server.id
    }
  }
}

output "node_count_by_region" {
  description = "How many nodes each region has."
  value       = { for region, r in var.regions : region => r.node_count }
}

output "firewall_id" {
  description = "Id of the Hetzner firewall attached to every node."
  value       = hcloud_firewall.media.id
}
