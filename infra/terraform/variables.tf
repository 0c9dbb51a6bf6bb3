variable "project_id" {
  description = "Google Cloud project to deploy into (an empty project works: the APIs are enabled here)."
  type        = string
}

variable "region" {
  description = "Region of Cloud Run, Firestore, buckets, Artifact Registry and Cloud Scheduler. Null: the region in stack.yaml."
  type        = string
  default     = null
}

variable "image_tag" {
  description = "Tag of the images in the Artifact Registry repository (make images / skaffold build push them)."
  type        = string
  default     = "latest"
}

variable "images" {
  description = "Full image references by deployable (or the cli name), e.g. digests from `skaffold build --file-output`; they win over image_tag."
  type        = map(string)
  default     = {}
}

variable "jwt_public_keys" {
  description = "SHOPFN_JWT_PUBLIC_KEYS for every deployable: the base64 public key(s) printed by `shopfn keys`, comma-separated during a rotation."
  type        = string
}

variable "jwt_signing_key" {
  description = "SHOPFN_JWT_SIGNING_KEY printed by `shopfn keys`. Write-only: stored in Secret Manager, never in the Terraform state. Needed once per jwt_signing_key_version."
  type        = string
  sensitive   = true
  ephemeral   = true
  default     = null
}

variable "jwt_signing_key_version" {
  description = "Bump (\"1\", \"2\", ...) together with jwt_signing_key to add a new secret version; empty leaves the secret's versions alone."
  type        = string
  default     = ""
}

variable "env" {
  description = "Extra environment by deployable, e.g. { user = { SHOPFN_ADMIN_EMAILS = \"me@example.com\" } }; wins over stack.yaml."
  type        = map(map(string))
  default     = {}
}

variable "vpc_network" {
  description = "VPC network for Direct VPC egress of the deployables that call internal-only services (internal ingress admits only VPC traffic)."
  type        = string
  default     = "default"
}

variable "vpc_subnetwork" {
  description = "Subnetwork (in region, with Private Google Access on) for that egress."
  type        = string
  default     = "default"
}

variable "canary" {
  description = <<-EOT
    Canary releases by deployable: the latest revision (tagged "canary", also at
    https://canary---SERVICE-...run.app) gets percent of the traffic, stable_revision
    (tagged "stable") the rest. Remove the entry to promote the latest to 100%.
  EOT
  type = map(object({
    stable_revision = string
    percent         = number
  }))
  default = {}

  validation {
    condition     = alltrue([for name, c in var.canary : contains(keys(local.deployables), name) && c.percent >= 0 && c.percent <= 100])
    error_message = "canary: keys must be deployables of stack.yaml and percent 0 to 100."
  }
}

variable "deletion_protection" {
  description = "Protect the Cloud Run services, Firestore databases, buckets and secret from terraform destroy."
  type        = bool
  default     = true
}
