//! Exports and imports in the apply path: the catalog (`export/<id>`, `import/<id>` in sm_meta) and
//! its changes; an import's table is made, filled and ended as a restore's is (backup::apply).

use prost::Message;
use tern_proto::internal::{
    CreateExport, ExportDone, ImportCounts, ImportTable, RestoreDone, StoredExport, StoredImport,
};
use tern_proto::v1::{ExportDescription, ImportTableDescription};
use tern_proto::{ApiError, ErrorKind};

use crate::apply::entry::{Applied, Entry};
use crate::catalog::{catalog, catalog_entry};
use crate::engine::{ReadView, StorageError};
use crate::keyspace::{self, Family};

/// The catalog entry of an export.
pub fn read_export(view: &dyn ReadView, export_id: &str) -> Result<Option<StoredExport>, StorageError> {
    catalog_entry(view, &keyspace::export_key(export_id), "export")
}

/// Every export in the catalog, in id order (creation order).
pub fn list_exports(view: &dyn ReadView) -> Result<Vec<StoredExport>, StorageError> {
    catalog(view, keyspace::EXPORT_PREFIX, "export")
}

/// The catalog entry of an import.
pub fn read_import(view: &dyn ReadView, import_id: &str) -> Result<Option<StoredImport>, StorageError> {
    catalog_entry(view, &keyspace::import_key(import_id), "import")
}

/// Every import in the catalog, in id order.
pub fn list_imports(view: &dyn ReadView) -> Result<Vec<StoredImport>, StorageError> {
    catalog(view, keyspace::IMPORT_PREFIX, "import")
}

/// How long a client token names one export, as in DynamoDB.
const CLIENT_TOKEN_MICROS: u64 = 8 * 3600 * 1_000_000;

/// A new export, IN_PROGRESS; or, for a client token used in the last 8 hours with the same request,
/// that export (with another request, ExportConflictException).
pub fn create_export(entry: &mut Entry, r: CreateExport) -> Applied<ExportDescription> {
    let mut export = r.export.ok_or_else(|| ApiError::internal("an export without its description"))?;
    // Every change at or before the export's time must be in the log before this entry (as for a
    // restore: a leader whose clock stepped back could name a time after it).
    let until = export.source.as_ref().map_or(0, |s| s.restore_to_micros);
    if until > entry.timestamp {
        let why = format!("The export time {} is in the future", until as f64 / 1e6);
        return Err(ApiError::new(ErrorKind::InvalidExportTimeException, why).into());
    }
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
            if earlier.request == export.request {
                return Ok(known);
            }
            let why = format!("Export with client token {} already exists with other parameters", known.client_token);
            return Err(ApiError::new(ErrorKind::ExportConflictException, why).into());
        }
    }
    entry.writes.put(Family::Meta, keyspace::export_key(&r.export_id), export.encode_to_vec());
    Ok(description)
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
        description.bytes_written = r.billed_size_bytes as i64;
    } else {
        description.export_status = "FAILED".into();
        description.failure_code = r.failure_code;
        description.failure_message = r.failure_message;
    }
    let description = description.clone();
    entry.writes.put(Family::Meta, keyspace::export_key(&r.export_id), export.encode_to_vec());
    Ok(description)
}

/// An import's new table (CREATING, like a restore's) and the import, IN_PROGRESS; or, for a client
/// token used in the last 8 hours with the same request, that import (with another request,
/// ImportConflictException).
pub fn import_table(entry: &mut Entry, r: ImportTable) -> Applied<ImportTableDescription> {
    let mut import = r.import.ok_or_else(|| ApiError::internal("an import without its description"))?;
    let restore = r.restore.ok_or_else(|| ApiError::internal("an import without its table"))?;
    let description = import.description.get_or_insert_with(Default::default);
    if !description.client_token.is_empty() {
        let since = entry.timestamp.saturating_sub(CLIENT_TOKEN_MICROS) as f64 / 1e6;
        for earlier in list_imports(entry.view)? {
            let known = earlier.description.clone().unwrap_or_default();
            if known.client_token != description.client_token || known.start_time < since {
                continue;
            }
            if same_import(&known, description) {
                return Ok(known);
            }
            let why = format!("Import with client token {} already exists with other parameters", known.client_token);
            return Err(ApiError::new(ErrorKind::ImportConflictException, why).into());
        }
    }
    let name = restore.table.as_ref().map(|t| t.table_name.clone()).unwrap_or_default();
    if entry.tables.contains_key(&name) {
        return Err(ApiError::in_use(format!("Table already exists: {name}")).into());
    }
    let table = crate::backup::apply::restore_table(entry, restore)?;
    description.import_arn = super::import_arn(&table.table_arn, &r.import_id);
    description.import_status = "IN_PROGRESS".into();
    description.table_arn = table.table_arn.clone();
    description.table_id = table.table_id.clone();
    description.start_time = entry.timestamp as f64 / 1e6;
    let description = description.clone();
    entry.writes.put(Family::Meta, keyspace::import_key(&r.import_id), import.encode_to_vec());
    Ok(description)
}

/// Whether two imports were asked with the same parameters (a retry of one request).
fn same_import(a: &ImportTableDescription, b: &ImportTableDescription) -> bool {
    (&a.s3_bucket_source, &a.input_format, &a.input_format_options, &a.input_compression_type)
        == (&b.s3_bucket_source, &b.input_format, &b.input_format_options, &b.input_compression_type)
        && a.table_creation_parameters == b.table_creation_parameters
}

/// The import whose table `table` (with key prefix `table_id`) is, while it is being imported.
pub fn import_of(entry: &Entry, table: &str, table_id: u64) -> Option<String> {
    let stored = entry.tables.get(table).filter(|t| t.table_id == table_id)?;
    stored.restoring.as_ref().map(|s| s.import_id.clone()).filter(|id| !id.is_empty())
}

fn write_import(entry: &mut Entry, import_id: &str, change: impl FnOnce(&mut ImportTableDescription)) -> Applied<()> {
    let Some(mut import) = read_import(entry.view, import_id)? else { return Ok(()) };
    let description = import.description.get_or_insert_with(Default::default);
    if description.import_status != "IN_PROGRESS" {
        return Ok(());
    }
    change(description);
    entry.writes.put(Family::Meta, keyspace::import_key(import_id), import.encode_to_vec());
    Ok(())
}

fn count(description: &mut ImportTableDescription, counts: &ImportCounts) {
    // Raised only: a batch applied again, or a job that started over, counts once.
    description.processed_item_count = description.processed_item_count.max(counts.processed_items as i64);
    description.processed_size_bytes = description.processed_size_bytes.max(counts.processed_bytes as i64);
    description.error_count = description.error_count.max(counts.errors as i64);
    description.imported_item_count =
        description.imported_item_count.max(counts.processed_items.saturating_sub(counts.errors) as i64);
}

/// An import's counts after a batch of its items.
pub fn import_progress(entry: &mut Entry, table: &str, counts: &ImportCounts) -> Applied<()> {
    let Some(stored) = entry.tables.get(table) else { return Ok(()) };
    let Some(import_id) = import_of(entry, table, stored.table_id) else { return Ok(()) };
    write_import(entry, &import_id, |description| count(description, counts))
}

/// An import's end: COMPLETED; FAILED with ItemValidationError (its table ACTIVE with the valid items);
/// or FAILED for good (its table removed), with why.
pub fn import_done(entry: &mut Entry, import_id: &str, r: &RestoreDone) -> Applied<()> {
    let at = entry.timestamp as f64 / 1e6;
    write_import(entry, import_id, |description| {
        if let Some(counts) = &r.import_counts {
            count(description, counts);
        }
        description.end_time = at;
        match (r.import_failure_code.as_str(), r.error.as_str()) {
            ("", "") => description.import_status = "COMPLETED".into(),
            ("ItemValidationError", _) => {
                description.import_status = "FAILED".into();
                description.failure_code = "ItemValidationError".into();
                description.failure_message = format!(
                    "Some of the items failed validation checks and were not imported. Please check the error log for more details: {}",
                    description.cloud_watch_log_group_arn
                );
            }
            (code, why) => {
                description.import_status = "FAILED".into();
                description.failure_code = if code.is_empty() { "ImportFailed".into() } else { code.into() };
                description.failure_message = why.into();
            }
        }
    })
}
