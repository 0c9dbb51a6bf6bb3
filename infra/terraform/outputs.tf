output "endpoints" {
  description = "HTTPS endpoints of the public deployables: gRPC over TLS, and the gateway's HTTP/JSON API (GET /openapi.json)."
  value       = { for name, s in google_cloud_run_v2_service.deployable : name => s.uri if local.deployables[name].ingress == "public" }
}

output "internal_endpoints" {
  description = "URLs of the internal-only deployables (reachable from the VPC, by their callers)."
  value       = { for name, s in google_cloud_run_v2_service.deployable : name => s.uri if local.deployables[name].ingress == "internal" }
}

output "cli_env" {
  description = "Shell lines that point the shopfn command (a gRPC client) at this deployment's public gRPC services."
  value       = join("\n", [for name, s in google_cloud_run_v2_service.deployable : "export SHOPFN_${upper(replace(name, "-", "_"))}_ADDR=${s.uri}" if local.deployables[name].ingress == "public" && local.deployables[name].kind == "grpc"])
}

output "image_repository" {
  description = "Where to push the images (KO_DOCKER_REPO, skaffold --default-repo)."
  value       = local.registry
}

output "demo_target" {
  description = "The --target of shopfn demo: Cloud Run's deterministic service URLs are https://NAME-PROJECT_NUMBER.REGION.run.app."
  value       = "https://${local.number}.${local.region}.run.app"
}
