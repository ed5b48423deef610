output "worker_name" {
  description = "Name of the edge Worker."
  value       = module.edge.worker_name
}

output "worker_version_id" {
  description = "Id of the Worker version deployed at 100%."
  value       = module.edge.version_id
}

output "d1_database_id" {
  description = "D1 database id: wrangler.toml's database_id, for `npx wrangler d1 migrations apply DB --remote`."
  value       = module.edge.d1_database_id
}

output "migration_tag" {
  description = "Durable Object migration tag after this apply; pass it as applied_migration_tag next time."
  value       = module.edge.migration_tag
}

output "tenant_hostnames" {
  description = "Each tenant's Domain A, Domain B and WebSocket URL as served by the Worker."
  value       = module.edge.tenant_hostnames
}

output "media_nodes" {
  description = "Media nodes by key: fleet id, region, location, capacity, public addresses, control URL."
  value       = module.media_fleet.nodes
}

output "media_node_count_by_region" {
  description = "Number of media nodes per region."
  value       = module.media_fleet.node_count_by_region
}
