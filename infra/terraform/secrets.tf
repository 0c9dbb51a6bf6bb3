# The access-token signing key (SHOPFN_JWT_SIGNING_KEY). Its value is given
# once through the write-only jwt_signing_key variable (or added with
# `gcloud secrets versions add`), so it never appears in the state.
resource "google_secret_manager_secret" "jwt_signing_key" {
  secret_id           = "shopfn-jwt-signing-key"
  deletion_protection = var.deletion_protection

  replication {
    auto {}
  }

  depends_on = [google_project_service.api]
}

resource "google_secret_manager_secret_version" "jwt_signing_key" {
  count                  = var.jwt_signing_key_version == "" ? 0 : 1
  secret                 = google_secret_manager_secret.jwt_signing_key.id
  secret_data_wo         = var.jwt_signing_key
  secret_data_wo_version = var.jwt_signing_key_version
}
