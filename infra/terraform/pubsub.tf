resource "google_pubsub_topic" "topic" {
  for_each = local.topics
  name     = each.key
  labels   = { event = replace(try(each.value.event, "dead-letter"), ".", "_") }

  depends_on = [google_project_service.api]
}

# Push subscriptions deliver to the function's URL at the path
# functions-framework-go reads as a raw Pub/Sub push
# (/projects/PROJECT/topics/TOPIC), with an OIDC token for the function;
# after maxDeliveryAttempts a message goes to the dead-letter topic. Pull
# subscriptions (the dead letters) keep messages a week for inspection.
resource "google_pubsub_subscription" "subscription" {
  for_each             = local.subscriptions
  name                 = each.key
  topic                = google_pubsub_topic.topic[each.value.topic].id
  ack_deadline_seconds = local.subscription_seconds[each.key].ackDeadline

  # One ordering key's messages one at a time, where the stack asks.
  enable_message_ordering = try(each.value.ordered, false)

  message_retention_duration = "604800s"

  expiration_policy {
    ttl = ""
  }

  dynamic "push_config" {
    for_each = try(each.value.push, "") != "" ? [each.value.push] : []
    content {
      push_endpoint = "${google_cloud_run_v2_service.deployable[push_config.value].uri}/projects/${local.project}/topics/${each.value.topic}"
      oidc_token {
        service_account_email = google_service_account.push[push_config.value].email
        audience              = google_cloud_run_v2_service.deployable[push_config.value].uri
      }
    }
  }

  dynamic "dead_letter_policy" {
    for_each = try(each.value.deadLetterTopic, "") != "" ? [each.value] : []
    content {
      dead_letter_topic     = google_pubsub_topic.topic[dead_letter_policy.value.deadLetterTopic].id
      max_delivery_attempts = dead_letter_policy.value.maxDeliveryAttempts
    }
  }

  dynamic "retry_policy" {
    for_each = can(local.subscription_seconds[each.key].minBackoff) ? [local.subscription_seconds[each.key]] : []
    content {
      minimum_backoff = "${retry_policy.value.minBackoff}s"
      maximum_backoff = "${retry_policy.value.maxBackoff}s"
    }
  }
}
