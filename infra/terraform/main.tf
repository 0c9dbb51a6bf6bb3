# The stack description, and what is derived from it once for every file.
locals {
  stack   = yamldecode(file("${path.module}/../stack.yaml"))
  project = var.project_id
  region  = coalesce(var.region, local.stack.region)
  number  = data.google_project.this.number

  deployables   = { for d in local.stack.deployables : d.name => d }
  topics        = { for t in local.stack.topics : t.name => t }
  subscriptions = { for s in local.stack.subscriptions : s.name => s }
  buckets       = { for b in local.stack.buckets : b.name => b }
  schedules     = { for s in try(local.stack.schedules, []) : s.name => s }
  cli           = local.stack.cli

  # Functions that receive push subscriptions (each gets its own pushing identity).
  push_functions = toset([for s in local.stack.subscriptions : s.push if try(s.push, "") != ""])
  dead_letters   = { for name, s in local.subscriptions : name => s if try(s.deadLetterTopic, "") != "" }

  # Durations of stack.yaml are whole "Ns", "Nm" or "Nh" (checked by infra.Parse).
  unit_seconds = { s = 1, m = 60, h = 3600 }
  timeout_seconds = {
    for name, d in local.deployables : name => tonumber(regex("^[0-9]+", d.timeout)) * local.unit_seconds[regex("[smh]$", d.timeout)]
  }
  subscription_seconds = {
    for name, s in local.subscriptions : name => {
      for k in ["ackDeadline", "minBackoff", "maxBackoff"] : k => tonumber(regex("^[0-9]+", s[k])) * local.unit_seconds[regex("[smh]$", s[k])] if can(s[k])
    }
  }
  cron = {
    for name, s in local.schedules : name => endswith(s.every, "m") ? "*/${trimsuffix(s.every, "m")} * * * *" : "0 */${trimsuffix(s.every, "h")} * * *"
  }

  # Cloud Run's deterministic URLs: known before the services exist, so a
  # service can be given the address of another without a cycle.
  url = { for name in keys(local.deployables) : name => "https://${name}-${local.number}.${local.region}.run.app" }

  registry = "${local.region}-docker.pkg.dev/${local.project}/${google_artifact_registry_repository.images.repository_id}"
  image = {
    for name in concat(keys(local.deployables), [local.cli.name]) : name => lookup(var.images, name, "${local.registry}/${name}:${var.image_tag}")
  }

  # Who holds the signing key: the token issuer and every deployable that
  # calls internal methods (service credentials are tokens it signs).
  signs = { for name, d in local.deployables : name => try(d.signsTokens, false) || length(try(d.calls, [])) > 0 }

  # Internal ingress admits only VPC traffic: whoever dials an internal
  # deployable (calls it, or uses it with its callers' tokens) sends its
  # egress through the VPC.
  needs_vpc           = { for name, d in local.deployables : name => anytrue([for c in concat(try(d.calls, []), try(d.uses, [])) : local.deployables[c].ingress == "internal"]) }
  scheduler_needs_vpc = anytrue([for s in local.schedules : local.deployables[s.target].ingress == "internal"])

  bucket_name   = { for name in keys(local.buckets) : name => "${local.project}-${name}" }
  database_name = { for name, d in local.deployables : name => "shopfn-${d.database}" if try(d.database, "") != "" }
  # Every Firestore index of every deployable, keyed "deployable-N".
  firestore_indexes = merge([
    for name, d in local.deployables : {
      for i, ix in try(d.firestoreIndexes, []) : "${name}-${i}" => merge(ix, { deployable = name })
    }
  ]...)

  # The environment of each deployable (names as in functions/*/NAME.go
  # and shared/*; the signing key is added from Secret Manager in run.tf).
  env = {
    for name, d in local.deployables : name => merge(
      {
        GOOGLE_CLOUD_PROJECT      = local.project
        SHOPFN_DATA_DIR           = "/tmp/shopfn"
        SHOPFN_JWT_DEV_KEY        = "false"
        SHOPFN_JWT_PUBLIC_KEYS    = var.jwt_public_keys
        SHOPFN_TRUSTED_PROXY_HOPS = "1"
      },
      try(d.database, "") != "" ? { SHOPFN_STORE = "firestore", SHOPFN_FIRESTORE_DATABASE = local.database_name[name] } : {},
      # Cloud Run admits only the push subscription's OIDC identity.
      d.kind == "function" ? { SHOPFN_PUSH_AUTH = "cloudrun" } : {},
      # Calls between services carry a Google ID token for run.invoker.
      length(concat(try(d.calls, []), try(d.uses, []))) > 0 ? { SHOPFN_ID_TOKENS = "true" } : {},
      { for c in concat(try(d.calls, []), try(d.uses, [])) : "SHOPFN_${upper(replace(c, "-", "_"))}_ADDR" => local.url[c] },
      { for b in try(d.buckets, []) : local.buckets[b].env => "gs://${local.bucket_name[b]}" },
      try(d.env, {}),
      lookup(var.env, name, {}),
    )
  }

  pubsub_agent = "serviceAccount:service-${local.number}@gcp-sa-pubsub.iam.gserviceaccount.com"
}

data "google_project" "this" {
  project_id = var.project_id
}

resource "google_project_service" "api" {
  for_each = toset([
    "artifactregistry.googleapis.com",
    "cloudscheduler.googleapis.com",
    "compute.googleapis.com",
    "firestore.googleapis.com",
    "iam.googleapis.com",
    "pubsub.googleapis.com",
    "run.googleapis.com",
    "secretmanager.googleapis.com",
  ])
  service            = each.key
  disable_on_destroy = false
}

resource "google_artifact_registry_repository" "images" {
  repository_id = "shopfn"
  location      = local.region
  format        = "DOCKER"
  description   = "shopfn images, built with ko (make images, skaffold build)."

  depends_on = [google_project_service.api]
}
