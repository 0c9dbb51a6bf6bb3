# One identity per deployable, granted only what stack.yaml says it uses.

resource "google_service_account" "deployable" {
  for_each     = local.deployables
  account_id   = "shopfn-${each.key}"
  display_name = "shopfn ${each.key} (${each.value.kind})"

  depends_on = [google_project_service.api]
}

# Pub/Sub's identity for pushing to one function (its OIDC tokens).
resource "google_service_account" "push" {
  for_each     = local.push_functions
  account_id   = "shopfn-push-${each.key}"
  display_name = "Pub/Sub push to shopfn ${each.key}"

  depends_on = [google_project_service.api]
}

# Firestore: datastore.user on the deployable's own database only.
resource "google_project_iam_member" "firestore" {
  for_each = local.database_name
  project  = local.project
  role     = "roles/datastore.user"
  member   = google_service_account.deployable[each.key].member

  condition {
    title       = "only-${each.value}"
    description = "Only the ${each.key} database."
    expression  = "resource.name == \"projects/${local.project}/databases/${google_firestore_database.db[each.key].name}\""
  }
}

# Publishing: only to the topics it publishes to.
resource "google_pubsub_topic_iam_member" "publisher" {
  for_each = {
    for p in flatten([for name, d in local.deployables : [for t in try(d.publishes, []) : { deployable = name, topic = t }]]) :
    "${p.deployable}/${p.topic}" => p
  }
  topic  = google_pubsub_topic.topic[each.value.topic].id
  role   = "roles/pubsub.publisher"
  member = google_service_account.deployable[each.value.deployable].member
}

# Objects: read and write in its own buckets.
resource "google_storage_bucket_iam_member" "object_user" {
  for_each = {
    for p in flatten([for name, d in local.deployables : [for b in try(d.buckets, []) : { deployable = name, bucket = b }]]) :
    "${p.deployable}/${p.bucket}" => p
  }
  bucket = google_storage_bucket.bucket[each.value.bucket].name
  role   = "roles/storage.objectUser"
  member = google_service_account.deployable[each.value.deployable].member
}

# run.invoker: public deployables for everyone (their methods check tokens
# themselves); otherwise only the callers stack.yaml lists, the scheduler,
# the deployables that use it and the Pub/Sub push identity of a function.
resource "google_cloud_run_v2_service_iam_member" "public" {
  for_each = { for name, d in local.deployables : name => d if d.ingress == "public" }
  name     = google_cloud_run_v2_service.deployable[each.key].name
  location = local.region
  role     = "roles/run.invoker"
  member   = "allUsers"
}

resource "google_cloud_run_v2_service_iam_member" "caller" {
  for_each = {
    for p in flatten([for name, d in local.deployables : [for c in try(d.callers, []) : { callee = name, caller = c }]]) :
    "${p.callee}/${p.caller}" => p
  }
  name     = google_cloud_run_v2_service.deployable[each.value.callee].name
  location = local.region
  role     = "roles/run.invoker"
  member   = each.value.caller == "scheduler" ? google_service_account.scheduler.member : google_service_account.deployable[each.value.caller].member
}

# A deployable that uses an internal one (the gateway) only forwards its
# callers' own tokens: it gets the way in (run.invoker here, VPC egress in
# run.tf), never the signing key.
resource "google_cloud_run_v2_service_iam_member" "user" {
  for_each = {
    for p in flatten([for name, d in local.deployables : [for u in try(d.uses, []) : { callee = u, user = name } if local.deployables[u].ingress == "internal"]]) :
    "${p.callee}/${p.user}" => p
  }
  name     = google_cloud_run_v2_service.deployable[each.value.callee].name
  location = local.region
  role     = "roles/run.invoker"
  member   = google_service_account.deployable[each.value.user].member
}

resource "google_cloud_run_v2_service_iam_member" "push" {
  for_each = local.push_functions
  name     = google_cloud_run_v2_service.deployable[each.key].name
  location = local.region
  role     = "roles/run.invoker"
  member   = google_service_account.push[each.key].member
}

# The Pub/Sub service agent mints the push OIDC tokens (needed in projects
# created before April 2021, harmless after) and moves dead letters: it
# publishes to the dead-letter topics and acknowledges on the source
# subscriptions.
resource "google_service_account_iam_member" "push_token_creator" {
  for_each           = local.push_functions
  service_account_id = google_service_account.push[each.key].name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = local.pubsub_agent
}

resource "google_pubsub_topic_iam_member" "dead_letter_publisher" {
  for_each = toset([for s in local.dead_letters : s.deadLetterTopic])
  topic    = google_pubsub_topic.topic[each.key].id
  role     = "roles/pubsub.publisher"
  member   = local.pubsub_agent
}

resource "google_pubsub_subscription_iam_member" "dead_letter_subscriber" {
  for_each     = local.dead_letters
  subscription = google_pubsub_subscription.subscription[each.key].id
  role         = "roles/pubsub.subscriber"
  member       = local.pubsub_agent
}

# The signing key: only the deployables that sign tokens, and the scheduler.
resource "google_secret_manager_secret_iam_member" "jwt_signing_key" {
  for_each = merge(
    { for name, signs in local.signs : name => google_service_account.deployable[name].member if signs },
    { scheduler = google_service_account.scheduler.member },
  )
  secret_id = google_secret_manager_secret.jwt_signing_key.id
  role      = "roles/secretmanager.secretAccessor"
  member    = each.value
}
