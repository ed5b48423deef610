output "worker_name" {
  description = "Name of the edge Worker."
  value       = module.webphone.worker_name
}

output "d1_database_id" {
  description = "D1 database id (for wrangler d1 migrations apply)."
  value       = module.webphone.d1_database_id
}

output "migration_tag" {
  description = "Pass as applied_migration_tag on the next apply."
  value       = module.webphone.migration_tag
}

output "tenant_hostnames" {
  description = "Each tenant's hostnames and WebSocket URL."
  value       = module.webphone.tenant_hostnames
}

output "media_nodes" {
  description = "Media nodes with their ids, regions and addresses."
  value       = module.webphone.media_nodes
}
