# A Cloud Run service per deployable: scale to zero, HTTP/2 end to end for
# gRPC (h2c to the container), gRPC health probes (HTTP GET /healthz for
# the HTTP server, the gateway), internal ingress where stack.yaml says
# internal.
resource "google_cloud_run_v2_service" "deployable" {
  for_each            = local.deployables
  name                = each.key
  location            = local.region
  ingress             = each.value.ingress == "internal" ? "INGRESS_TRAFFIC_INTERNAL_ONLY" : "INGRESS_TRAFFIC_ALL"
  deletion_protection = var.deletion_protection

  template {
    service_account                  = google_service_account.deployable[each.key].email
    timeout                          = "${local.timeout_seconds[each.key]}s"
    max_instance_request_concurrency = each.value.concurrency

    scaling {
      min_instance_count = 0
      max_instance_count = each.value.maxInstances
    }

    dynamic "vpc_access" {
      for_each = local.needs_vpc[each.key] ? [1] : []
      content {
        egress = "ALL_TRAFFIC"
        network_interfaces {
          network    = var.vpc_network
          subnetwork = var.vpc_subnetwork
        }
      }
    }

    containers {
      name  = each.key
      image = local.image[each.key]

      # "h2c" makes Cloud Run speak HTTP/2 cleartext to the container, which
      # gRPC (streams included) needs; functions and the gateway (kind
      # http) get HTTP/1.1, over which the gateway streams NDJSON chunked.
      ports {
        name           = each.value.kind == "grpc" ? "h2c" : "http1"
        container_port = 8080
      }

      resources {
        limits            = { cpu = each.value.cpu, memory = each.value.memory }
        cpu_idle          = true
        startup_cpu_boost = true
      }

      dynamic "env" {
        for_each = local.env[each.key]
        content {
          name  = env.key
          value = env.value
        }
      }

      dynamic "env" {
        for_each = local.signs[each.key] ? [1] : []
        content {
          name = "SHOPFN_JWT_SIGNING_KEY"
          value_source {
            secret_key_ref {
              secret  = google_secret_manager_secret.jwt_signing_key.secret_id
              version = "latest"
            }
          }
        }
      }

      # Ready as soon as grpc.health.v1 answers SERVING (gRPC services),
      # GET /healthz answers 200 (kind http), or the port accepts
      # (functions, which have no health endpoint).
      startup_probe {
        period_seconds    = 1
        timeout_seconds   = 1
        failure_threshold = 30

        dynamic "grpc" {
          for_each = each.value.kind == "grpc" ? [1] : []
          content {
            service = ""
          }
        }

        dynamic "http_get" {
          for_each = each.value.kind == "http" ? [1] : []
          content {
            path = "/healthz"
          }
        }

        dynamic "tcp_socket" {
          for_each = each.value.kind == "function" ? [1] : []
          content {
            port = 8080
          }
        }
      }

      dynamic "liveness_probe" {
        for_each = contains(["grpc", "http"], each.value.kind) ? [1] : []
        content {
          period_seconds    = 30
          timeout_seconds   = 2
          failure_threshold = 3

          dynamic "grpc" {
            for_each = each.value.kind == "grpc" ? [1] : []
            content {
              service = ""
            }
          }

          dynamic "http_get" {
            for_each = each.value.kind == "http" ? [1] : []
            content {
              path = "/healthz"
            }
          }
        }
      }
    }
  }

  # Canary: the latest revision gets var.canary[name].percent (tag
  # "canary"), the stable revision the rest; otherwise the latest gets all.
  dynamic "traffic" {
    for_each = concat(
      [for c in [try(var.canary[each.key], null)] : { type = "TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION", revision = c.stable_revision, percent = 100 - c.percent, tag = "stable" } if c != null],
      [{ type = "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST", percent = try(var.canary[each.key].percent, 100), tag = contains(keys(var.canary), each.key) ? "canary" : null }],
    )
    content {
      type     = traffic.value.type
      revision = try(traffic.value.revision, null)
      percent  = traffic.value.percent
      tag      = traffic.value.tag
    }
  }

  depends_on = [
    google_project_service.api,
    google_secret_manager_secret_iam_member.jwt_signing_key,
    google_secret_manager_secret_version.jwt_signing_key,
  ]
}
