terraform {
  required_version = ">= 1.6.0, < 2.0.0"

  required_providers {
    cloudflare = {
      source = "cloudflare/cloudflare"
      # 5.11 added assets.directory (uploads the PWA) to cloudflare_worker_version.
      version = "~> 5.11"
    }
  }
}
