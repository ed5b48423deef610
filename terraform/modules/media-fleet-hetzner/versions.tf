terraform {
  required_version = ">= 1.6.0, < 2.0.0"

  required_providers {
    hcloud = {
      source = "hetznercloud/hcloud"
      # 1.58 added `location` to primary IPs and deprecated `datacenter`; servers use `location`.
      version = "~> 1.58"
    }
  }
}
