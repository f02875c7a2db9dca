//! An export's files: the table at the export time (full), or the window's changes compacted to one
//! record per item (incremental), read as a restore reads them, written in DynamoDB's layout.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use bytes::Bytes;
use serde_json::{json, Value as Json};
use tern_proto::internal::{ImageEntry, RestoreSource, StoredExport, StoredItem};
use tern_proto::value::item_from_wire;
use tern_proto::Item;

use super::format::{self, Change, Format};
use super::layout::{self, DataFile, DataFiles};
use super::ExportProgress;
use crate::backup::restore::{self, Sink};
use crate::backup::store::BackupStore;
use crate::backup::JobError;
use crate::engine::Engine;

/// Changes of an incremental export encoded between two uploads of its closed files.
const CHANGES_PER_STEP: usize = 10_000;

/// What an export wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct Exported {
    pub item_count: u64,
    pub billed_size_bytes: u64,
    pub manifest: String,
}

/// Writes export `id` (as the catalog holds it) to `bucket`: `_started`, the data files, then the
/// manifests. Run again (a new leader), it writes its own data files and manifests over the first's.
pub async fn run(
    engine: &Arc<dyn Engine>,
    backups: &BackupStore,
    bucket: &BackupStore,
    id: &str,
    export: &StoredExport,
    progress: &ExportProgress,
) -> Result<Exported, JobError> {
    let description = export.description.clone().unwrap_or_default();
    let source = export.source.clone().unwrap_or_default();
    let format = Format::named(&description.export_format).unwrap_or(Format::DynamoDbJson);
    let incremental = description.export_type == "INCREMENTAL_EXPORT";
    let folder = layout::export_folder(&description.s3_prefix, id);
    bucket.put(&format!("{folder}_started"), Bytes::new()).await?;
    let mut files = DataFiles::new(layout::data_folder(&description.s3_prefix, id, incremental), id, format);
    let mut uploaded = Vec::new();
    if incremental {
        let view = description.incremental_export_specification.clone().unwrap_or_default().export_view_type;
        let old_images = view != "NEW_IMAGE";
        let changes = changes(engine, backups, &source, export.from_micros, &export.key_attributes).await?;
        for chunk in changes.chunks(CHANGES_PER_STEP) {
            // Encoding and compressing take the CPU: off the runtime's threads; each file is uploaded
            // once it is closed.
            tokio::task::block_in_place(|| {
                for change in chunk {
                    let change =
                        Change { old_image: change.old_image.clone().filter(|_| old_images), ..change.clone() };
                    files.add(&format::change_line(format, &change));
                }
            });
            files.upload(bucket, false, &mut uploaded).await?;
            progress.set(id, files.items, files.bytes);
        }
    } else {
        let mut sink = ExportSink { files: &mut files, bucket, uploaded: &mut uploaded, format, id, progress };
        restore::restore_items(engine, backups, &source, &mut sink).await?;
    }
    files.upload(bucket, true, &mut uploaded).await?;
    let summary = summary(&description, export, &uploaded, files.bytes);
    let manifest = layout::write_manifests(bucket, &folder, &uploaded, summary).await?;
    Ok(Exported { item_count: files.items, billed_size_bytes: files.bytes, manifest })
}

/// `manifest-summary.json`, but for the key of `manifest-files.json`.
fn summary(
    description: &tern_proto::v1::ExportDescription,
    export: &StoredExport,
    files: &[DataFile],
    bytes: u64,
) -> Json {
    let micros = |seconds: f64| (seconds * 1e6).round() as u64;
    let mut summary = json!({
        "version": if description.export_type == "INCREMENTAL_EXPORT" { "2023-08-01" } else { "2020-06-30" },
        "exportArn": description.export_arn,
        "startTime": layout::manifest_time(micros(description.start_time)),
        "endTime": layout::manifest_time(crate::clock::now_micros()),
        "tableArn": description.table_arn,
        "tableId": description.table_id,
        "s3Bucket": description.s3_bucket,
        "s3Prefix": if description.s3_prefix.is_empty() { Json::Null } else { json!(description.s3_prefix) },
        "s3SseAlgorithm": if description.s3_sse_algorithm.is_empty() { "AES256" } else { description.s3_sse_algorithm.as_str() },
        "s3SseKmsKeyId": if description.s3_sse_kms_key_id.is_empty() { Json::Null } else { json!(description.s3_sse_kms_key_id) },
        "billedSizeBytes": bytes,
        "itemCount": files.iter().map(|f| f.item_count).sum::<u64>(),
        "outputFormat": description.export_format,
        "exportType": description.export_type,
    });
    if description.export_type == "INCREMENTAL_EXPORT" {
        let spec = description.incremental_export_specification.clone().unwrap_or_default();
        summary["exportFromTime"] = json!(layout::manifest_time(export.from_micros));
        summary["exportToTime"] = json!(layout::manifest_time(micros(spec.export_to_time.unwrap_or_default())));
        summary["outputView"] = json!(spec.export_view_type);
    } else {
        summary["exportTime"] = json!(layout::manifest_time(micros(description.export_time)));
    }
    summary
}

/// A full export's items into data files, uploading each file as it is closed.
struct ExportSink<'a> {
    files: &'a mut DataFiles,
    bucket: &'a BackupStore,
    uploaded: &'a mut Vec<DataFile>,
    format: Format,
    id: &'a str,
    progress: &'a ExportProgress,
}

impl Sink for ExportSink<'_> {
    async fn write(&mut self, items: Vec<ImageEntry>, _bytes_read: u64) -> Result<(), JobError> {
        let (files, format) = (&mut *self.files, self.format);
        // Encoding and compressing take the CPU: off the runtime's threads.
        tokio::task::block_in_place(|| {
            for entry in items {
                files.add(&format::item_line(format, &item(entry.item)?));
            }
            Ok::<(), JobError>(())
        })?;
        self.files.upload(self.bucket, false, self.uploaded).await?;
        self.progress.set(self.id, self.files.items, self.files.bytes);
        Ok(())
    }
}

fn item(stored: Option<StoredItem>) -> Result<Item, JobError> {
    let attributes = stored.map(|s| s.attributes.into_iter().collect()).unwrap_or_default();
    item_from_wire(attributes)
        .map_err(|e| JobError::Failed(format!("an item of the table cannot be read: {}", e.message)))
}

/// The changes of an incremental export's window (`from` inclusive to the source's time inclusive),
/// one per item: its state before the window (a restore to just before `from`, of the changed keys
/// only) and after it. An item inserted and deleted in the window has none.
async fn changes(
    engine: &Arc<dyn Engine>,
    backups: &BackupStore,
    source: &RestoreSource,
    from: u64,
    key_attributes: &[String],
) -> Result<Vec<Change>, JobError> {
    // The state just before the window; when the window starts at the first base (the earliest
    // restorable time), that base is it (a change at the base's very microsecond counts as before).
    let bases = crate::backup::image::list_bases(backups, &source.pitr_prefix).await?;
    let before = match bases.first() {
        Some(&first) if first >= from => first,
        _ => from.saturating_sub(1),
    };
    let (records, _) = restore::log_between(engine, backups, source, before, source.restore_to_micros).await?;
    let mut last: BTreeMap<Vec<u8>, (u64, Option<StoredItem>)> = BTreeMap::new();
    for record in records {
        last.insert(record.key, (record.at_micros, record.item));
    }
    let mut olds = OldImages { wanted: last.keys().cloned().collect(), found: BTreeMap::new() };
    if !last.is_empty() {
        let at_start = RestoreSource { restore_to_micros: before, ..source.clone() };
        restore::restore_items(engine, backups, &at_start, &mut olds).await?;
    }
    let keys_of = |item: &Item| -> Item {
        item.iter().filter(|(name, _)| key_attributes.contains(name)).map(|(k, v)| (k.clone(), v.clone())).collect()
    };
    let mut changes = Vec::new();
    for (key, (at, new)) in last {
        let old = olds.found.remove(&key).map(|stored| item(Some(stored))).transpose()?;
        let new = new.map(|stored| item(Some(stored))).transpose()?;
        let Some(keys) = new.as_ref().or(old.as_ref()).map(keys_of) else { continue };
        changes.push(Change { keys, new_image: new, old_image: old, write_timestamp_micros: at });
    }
    Ok(changes)
}

/// The items of a restore whose keys are wanted.
struct OldImages {
    wanted: BTreeSet<Vec<u8>>,
    found: BTreeMap<Vec<u8>, StoredItem>,
}

impl Sink for OldImages {
    async fn write(&mut self, items: Vec<ImageEntry>, _bytes_read: u64) -> Result<(), JobError> {
        for entry in items {
            if self.wanted.contains(&entry.key) {
                if let Some(item) = entry.item {
                    self.found.insert(entry.key, item);
                }
            }
        }
        Ok(())
    }
}
