terraform {
  required_version = ">= 1.6.0, < 2.0.0"

  required_providers {
    cloudflare = {
      source  = "cloudflare/cloudflare"
      version = "~> 5.11"
    }
    hcloud = {
      source  = "hetznercloud/hcloud"
      version = "~> 1.58"
    }
  }
}

# Tokens come from the environment: CLOUDFLARE_API_TOKEN (Workers Scripts, D1, Workers Routes /
# custom domains and DNS edit on the tenants' zones) and HCLOUD_TOKEN (read/write project token).
provider "cloudflare" {}

provider "hcloud" {}
