# One Firestore (native mode) database per deployable that owns a store.
resource "google_firestore_database" "db" {
  for_each                = local.database_name
  name                    = each.value
  location_id             = local.region
  type                    = "FIRESTORE_NATIVE"
  delete_protection_state = var.deletion_protection ? "DELETE_PROTECTION_ENABLED" : "DELETE_PROTECTION_DISABLED"

  depends_on = [google_project_service.api]
}

# The composite indexes each deployable's Firestore queries need
# (firestoreIndexes in stack.yaml; single-field indexes are automatic).
resource "google_firestore_index" "index" {
  for_each   = local.firestore_indexes
  project    = local.project
  database   = google_firestore_database.db[each.value.deployable].name
  collection = each.value.collection

  dynamic "fields" {
    for_each = each.value.fields
    content {
      field_path   = split(" ", fields.value)[0]
      order        = endswith(fields.value, " contains") ? null : (endswith(fields.value, " desc") ? "DESCENDING" : "ASCENDING")
      array_config = endswith(fields.value, " contains") ? "CONTAINS" : null
    }
  }
}

resource "google_storage_bucket" "bucket" {
  for_each                    = local.bucket_name
  name                        = each.value
  location                    = local.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = !var.deletion_protection
}
