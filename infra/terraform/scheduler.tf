# Schedules call internal gRPC methods, and Cloud Scheduler cannot speak
# gRPC. So each schedule starts one Cloud Run job, the shopfn command's
# image, with `shopfn call --addr URL METHOD`: a real gRPC call with the
# scheduler's service credentials, deadlines and retries, whose failure
# fails the job execution. Cloud Scheduler authenticates to the Cloud Run
# Admin API with an OAuth token (OIDC tokens are for non-Google targets).

# Identity of the job: the "scheduler" caller in stack.yaml.
resource "google_service_account" "scheduler" {
  account_id   = "shopfn-scheduler"
  display_name = "shopfn schedules (runs shopfn call)"

  depends_on = [google_project_service.api]
}

# Identity of Cloud Scheduler: may only start jobs with overrides.
resource "google_service_account" "scheduler_trigger" {
  account_id   = "shopfn-scheduler-trigger"
  display_name = "Cloud Scheduler: starts the shopfn schedules job"

  depends_on = [google_project_service.api]
}

resource "google_project_iam_member" "scheduler_trigger" {
  project = local.project
  role    = "roles/run.jobsExecutorWithOverrides"
  member  = google_service_account.scheduler_trigger.member
}

resource "google_cloud_run_v2_job" "scheduler" {
  name                = local.cli.name
  location            = local.region
  deletion_protection = var.deletion_protection

  template {
    task_count = 1

    template {
      service_account = google_service_account.scheduler.email
      timeout         = "120s"
      max_retries     = 0 # the next tick is the retry

      dynamic "vpc_access" {
        for_each = local.scheduler_needs_vpc ? [1] : []
        content {
          egress = "ALL_TRAFFIC"
          network_interfaces {
            network    = var.vpc_network
            subnetwork = var.vpc_subnetwork
          }
        }
      }

      containers {
        image = local.image[local.cli.name]
        args  = ["--help"] # each run overrides them

        env {
          name  = "SHOPFN_JWT_DEV_KEY"
          value = "false"
        }
        env {
          name = "SHOPFN_JWT_SIGNING_KEY"
          value_source {
            secret_key_ref {
              secret  = google_secret_manager_secret.jwt_signing_key.secret_id
              version = "latest"
            }
          }
        }
      }
    }
  }

  depends_on = [
    google_secret_manager_secret_iam_member.jwt_signing_key,
    google_secret_manager_secret_version.jwt_signing_key,
  ]
}

resource "google_cloud_scheduler_job" "schedule" {
  for_each         = local.schedules
  name             = "shopfn-${each.key}"
  region           = local.region
  schedule         = local.cron[each.key]
  time_zone        = "Etc/UTC"
  attempt_deadline = "60s"

  retry_config {
    retry_count = 0
  }

  http_target {
    http_method = "POST"
    uri         = "https://run.googleapis.com/v2/projects/${local.project}/locations/${local.region}/jobs/${google_cloud_run_v2_job.scheduler.name}:run"
    headers     = { "Content-Type" = "application/json" }
    body = base64encode(jsonencode({
      overrides = {
        containerOverrides = [{ args = ["call", "--addr", local.url[each.value.target], each.value.method] }]
      }
    }))

    oauth_token {
      service_account_email = google_service_account.scheduler_trigger.email
      scope                 = "https://www.googleapis.com/auth/cloud-platform"
    }
  }

  depends_on = [google_project_iam_member.scheduler_trigger]
}
