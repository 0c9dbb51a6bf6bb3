# shopfn on Google Cloud. Everything that varies by deployable, topic,
# subscription, bucket or schedule comes from ../stack.yaml (see main.tf);
# this directory only says how each kind of thing is deployed.
terraform {
  # 1.11: write-only arguments, so the signing key never enters the state.
  required_version = ">= 1.11"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "~> 7.45"
    }
  }
}

provider "google" {
  project = var.project_id
  region  = local.region
}
