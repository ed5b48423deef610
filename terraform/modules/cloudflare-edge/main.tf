# The Cloudflare side: the edge Worker (a version of the built bundle plus the PWA assets, deployed at
# 100%), its D1 database, Durable Object namespaces, secrets, and a custom domain for each tenant
# hostname. Uses the Worker / Version / Deployment resources because the bundle is two modules
# (index.js imports ./index_bg.wasm), which cloudflare_workers_script cannot upload.

locals {
  main_module = "index.js"
  wasm_module = "index_bg.wasm"

  # Changes whenever the bundle changes: a new version is created and deployed.
  bundle_sha256 = sha256(join("", [
    filesha256("${var.worker_bundle_dir}/${local.main_module}"),
    filesha256("${var.worker_bundle_dir}/${local.wasm_module}"),
  ]))

  # Durable Object migrations not yet applied to the deployed Worker, as wrangler computes them.
  migration_tags  = [for m in var.durable_object_migrations : m.tag]
  applied_index   = var.applied_migration_tag == null ? -1 : index(local.migration_tags, var.applied_migration_tag)
  pending         = slice(var.durable_object_migrations, local.applied_index + 1, length(var.durable_object_migrations))
  latest_tag      = local.migration_tags[length(local.migration_tags) - 1]
  migrations = length(local.pending) == 0 ? null : {
    old_tag = var.applied_migration_tag
    new_tag = local.latest_tag
    steps = [for m in local.pending : {
      new_sqlite_classes = m.new_sqlite_classes
      deleted_classes    = m.deleted_classes
      renamed_classes    = m.renamed_classes
    }]
  }

  bindings = concat(
    [
      { type = "d1", name = "DB", id = cloudflare_d1_database.this.id },
      { type = "assets", name = "ASSETS" },
      { type = "version_metadata", name = "CF_VERSION_METADATA" },
      { type = "secret_text", name = "OPERATOR_TOKEN", text = var.operator_token },
      { type = "secret_text", name = "SIP_NONCE_SECRET", text = var.sip_nonce_secret },
      { type = "secret_text", name = "FLEET_SECRET", text = var.fleet_secret },
      { type = "plain_text", name = "MEDIA_REGIONS", text = jsonencode(var.media_regions_by_location) },
    ],
    [for binding, class in var.durable_objects : { type = "durable_object_namespace", name = binding, class_name = class }],
  )

  # Every tenant hostname (Domain A and Domain B) => the zone it lives in.
  hostnames = merge([
    for tenant, t in var.tenants : {
      (t.domain)      = { tenant = tenant, role = "domain", zone_id = t.zone_id }
      (t.webrtc_host) = { tenant = tenant, role = "webrtc_host", zone_id = coalesce(t.webrtc_zone_id, t.zone_id) }
    }
  ]...)
}

resource "cloudflare_d1_database" "this" {
  account_id            = var.account_id
  name                  = var.d1_database_name
  primary_location_hint = var.d1_primary_location_hint

  lifecycle {
    # Replacing a D1 database loses every tenant and account. Remove this line deliberately to delete it.
    prevent_destroy = true
  }
}

resource "cloudflare_worker" "this" {
  account_id = var.account_id
  name       = var.worker_name

  observability = {
    enabled = true
    logs = {
      enabled         = true
      invocation_logs = true
    }
  }

  subdomain = {
    enabled          = var.workers_dev
    previews_enabled = false
  }
}

resource "cloudflare_worker_version" "this" {
  account_id          = var.account_id
  worker_id           = cloudflare_worker.this.id
  compatibility_date  = var.compatibility_date
  compatibility_flags = var.compatibility_flags
  main_module         = local.main_module

  modules = [
    {
      name         = local.main_module
      content_file = "${var.worker_bundle_dir}/${local.main_module}"
      content_type = "application/javascript+module"
    },
    {
      name         = local.wasm_module
      content_file = "${var.worker_bundle_dir}/${local.wasm_module}"
      content_type = "application/wasm"
    },
  ]

  # The phone (PWA). The Worker runs first on every request: it picks the tenant by host and serves
  # config, manifest and APIs itself, then hands other paths to ASSETS (as wrangler.toml's [assets]).
  assets = {
    directory = var.assets_dir
    config = {
      run_worker_first   = true
      html_handling      = "auto-trailing-slash"
      not_found_handling = "none"
    }
  }

  bindings   = local.bindings
  migrations = local.migrations

  annotations = {
    workers_message = var.deploy_message
    workers_tag     = substr(local.bundle_sha256, 0, 12)
  }

  lifecycle {
    # Versions are immutable: a change makes a new one, deployed before the old one is dropped.
    create_before_destroy = true

    precondition {
      condition     = var.applied_migration_tag == null || contains(local.migration_tags, coalesce(var.applied_migration_tag, "-"))
      error_message = "applied_migration_tag must be one of the tags in durable_object_migrations (or null for a new Worker)."
    }
    precondition {
      condition     = alltrue([for c in values(var.durable_objects) : contains(flatten([for m in var.durable_object_migrations : m.new_sqlite_classes]), c)])
      error_message = "Every Durable Object class bound in durable_objects must be created by a migration (new_sqlite_classes)."
    }
  }
}

resource "cloudflare_workers_deployment" "this" {
  account_id  = var.account_id
  script_name = cloudflare_worker.this.name
  strategy    = "percentage"

  versions = [{
    version_id = cloudflare_worker_version.this.id
    percentage = 100
  }]

  annotations = {
    workers_message = var.deploy_message
  }
}

# Domain A and Domain B of every tenant. A custom domain creates the DNS record and the certificate;
# the hostname's zone must be in this account.
resource "cloudflare_workers_custom_domain" "tenant" {
  for_each = local.hostnames

  account_id = var.account_id
  hostname   = each.key
  service    = cloudflare_worker.this.name
  zone_id    = each.value.zone_id

  # Route traffic only once a version is deployed.
  depends_on = [cloudflare_workers_deployment.this]
}
