//! Exports and imports in the apply path: the catalog (`export/<id>`, `import/<id>` in sm_meta) and
//! its changes.

use prost::Message;
use tern_proto::internal::{CreateExport, ExportDone, StoredExport, StoredImport};
use tern_proto::v1::ExportDescription;
use tern_proto::{ApiError, ErrorKind};

use crate::apply::entry::{Applied, Entry};
use crate::engine::{self, Direction, ReadView, StorageError};
use crate::keyspace::{self, Family};

/// The catalog entry of an export.
pub fn read_export(view: &dyn ReadView, export_id: &str) -> Result<Option<StoredExport>, StorageError> {
    view.get(Family::Meta, &keyspace::export_key(export_id))?.map(|b| engine::decode("export", &b)).transpose()
}

/// Every export in the catalog, in id order (creation order).
pub fn list_exports(view: &dyn ReadView) -> Result<Vec<StoredExport>, StorageError> {
    let end = keyspace::prefix_end(keyspace::EXPORT_PREFIX);
    view.scan(Family::Meta, keyspace::EXPORT_PREFIX, Some(&end), Direction::Forward)
        .map(|entry| entry.and_then(|(_, value)| engine::decode("export", &value)))
        .collect()
}

/// The catalog entry of an import.
pub fn read_import(view: &dyn ReadView, import_id: &str) -> Result<Option<StoredImport>, StorageError> {
    view.get(Family::Meta, &keyspace::import_key(import_id))?.map(|b| engine::decode("import", &b)).transpose()
}

/// Every import in the catalog, in id order.
pub fn list_imports(view: &dyn ReadView) -> Result<Vec<StoredImport>, StorageError> {
    let end = keyspace::prefix_end(keyspace::IMPORT_PREFIX);
    view.scan(Family::Meta, keyspace::IMPORT_PREFIX, Some(&end), Direction::Forward)
        .map(|entry| entry.and_then(|(_, value)| engine::decode("import", &value)))
        .collect()
}

/// How long a client token names one export, as in DynamoDB.
const CLIENT_TOKEN_MICROS: u64 = 8 * 3600 * 1_000_000;

/// A new export, IN_PROGRESS; or, for a client token used in the last 8 hours with the same request,
/// that export (with another request, ExportConflictException).
pub fn create_export(entry: &mut Entry, r: CreateExport) -> Applied<ExportDescription> {
    let mut export = r.export.ok_or_else(|| ApiError::internal("an export without its description"))?;
    let description = export.description.get_or_insert_with(Default::default);
    description.start_time = entry.timestamp as f64 / 1e6;
    description.export_status = "IN_PROGRESS".into();
    let description = description.clone();
    if !description.client_token.is_empty() {
        let since = entry.timestamp.saturating_sub(CLIENT_TOKEN_MICROS) as f64 / 1e6;
        for earlier in list_exports(entry.view)? {
            let known = earlier.description.clone().unwrap_or_default();
            if known.client_token != description.client_token || known.start_time < since {
                continue;
            }
            if same_request(&known, &description) {
                return Ok(known);
            }
            let why = format!("Export with client token {} already exists with other parameters", known.client_token);
            return Err(ApiError::new(ErrorKind::ExportConflictException, why).into());
        }
    }
    entry.writes.put(Family::Meta, keyspace::export_key(&r.export_id), export.encode_to_vec());
    Ok(description)
}

/// Whether two exports were asked with the same parameters (a retry of one request).
fn same_request(a: &ExportDescription, b: &ExportDescription) -> bool {
    let strip = |d: &ExportDescription| ExportDescription {
        table_arn: d.table_arn.clone(),
        export_time: d.export_time,
        s3_bucket: d.s3_bucket.clone(),
        s3_bucket_owner: d.s3_bucket_owner.clone(),
        s3_prefix: d.s3_prefix.clone(),
        s3_sse_algorithm: d.s3_sse_algorithm.clone(),
        s3_sse_kms_key_id: d.s3_sse_kms_key_id.clone(),
        export_format: d.export_format.clone(),
        export_type: d.export_type.clone(),
        incremental_export_specification: d.incremental_export_specification.clone(),
        ..Default::default()
    };
    strip(a) == strip(b)
}

/// An export's end: COMPLETED with its counts, or FAILED with why. Once only: a second (a repeated
/// job's) leaves the first.
pub fn export_done(entry: &mut Entry, r: ExportDone) -> Applied<ExportDescription> {
    let mut export = read_export(entry.view, &r.export_id)?.ok_or_else(|| {
        ApiError::new(ErrorKind::ExportNotFoundException, format!("Export not found: {}", r.export_id))
    })?;
    let description = export.description.get_or_insert_with(Default::default);
    if description.export_status != "IN_PROGRESS" {
        return Ok(description.clone());
    }
    description.end_time = entry.timestamp as f64 / 1e6;
    if r.failure_code.is_empty() {
        description.export_status = "COMPLETED".into();
        description.item_count = r.item_count as i64;
        description.billed_size_bytes = r.billed_size_bytes as i64;
        description.export_manifest = r.export_manifest;
        description.items_exported = r.item_count as i64;
    } else {
        description.export_status = "FAILED".into();
        description.failure_code = r.failure_code;
        description.failure_message = r.failure_message;
    }
    let description = description.clone();
    entry.writes.put(Family::Meta, keyspace::export_key(&r.export_id), export.encode_to_vec());
    Ok(description)
}
