//! The leader's backup work, in the background: archiving each PITR table's log to the store in
//! segments, uploading bases, making on-demand backups' images, finishing deleted tables' system
//! backups, running restores, and trimming what the recovery window no longer needs; and the jobs of
//! exports and imports (`crate::transfer`), which read and write the same way. Each step is recorded
//! in replicated state when done, so a new leader carries on from there; work a new leader repeats (a
//! backup's image, a restore's or an import's items, an export's files) gives the same result again.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prost::Message;
use tern_proto::internal::{
    command, command_outcome, BackupDone, DeleteBackup, EncodedImageEntry, ExportDone, ImageEntry, ImportCounts,
    LogRecord, PitrProgress, PitrState, RestoreDone, RestoreItems, StoredBackup, StoredExport, StoredItem, StoredTable,
};
use tern_proto::v1::{BackupDescription, TableDescription};
use tern_proto::ApiError;

use super::image::{self, ImageWriter};
use super::restore::{self, Sink};
use super::store::BackupStore;
use super::view::{backup_status, list_backups, log_records, table_with_id, tables, RecordLimit};
use super::JobError;
use crate::engine::{self, Direction, Engine};
use crate::keyspace::{self, Family};
use crate::routing::RegionNode;
use crate::transfer::apply::{list_exports, read_import};
use crate::transfer::import::{Compression, ImportSink, InputFormat};
use crate::transfer::{self, Buckets, ExportProgress};

/// How often the runner archives, and how often it takes a base.
#[derive(Debug, Clone)]
pub struct RunnerSettings {
    /// How often each PITR table's new changes are uploaded as a segment.
    pub archive_every: Duration,
    /// How often a PITR table gets a new base (a restore replays at most this much log).
    pub base_every: Duration,
}

/// Most changes in one segment, and most bytes of items (a segment is read whole by a restore).
const SEGMENT_RECORDS: usize = 100_000;
const SEGMENT_BYTES: usize = 64 << 20;
const SEGMENT: RecordLimit = RecordLimit { records: SEGMENT_RECORDS, bytes: SEGMENT_BYTES };

/// Restore batches proposed at once.
const RESTORE_BATCHES_IN_FLIGHT: usize = 4;

/// Runs the backup work (and exports, which read what restores read) while the node runs; only the
/// leader does any.
pub async fn run_forever(
    node: RegionNode,
    engine: Arc<dyn Engine>,
    store: BackupStore,
    buckets: Buckets,
    exports: ExportProgress,
    settings: RunnerSettings,
) {
    let busy = Arc::new(Mutex::new(BTreeSet::new()));
    let runner = Runner { node, engine, store, buckets, exports, settings, busy };
    let tick = runner.settings.archive_every.min(Duration::from_millis(500));
    let mut last_archive = tokio::time::Instant::now();
    let mut last_trim = tokio::time::Instant::now();
    loop {
        tokio::time::sleep(tick).await;
        if !runner.node.leads() {
            continue;
        }
        runner.start_jobs();
        if last_archive.elapsed() >= runner.settings.archive_every {
            last_archive = tokio::time::Instant::now();
            if let Err(e) = runner.archive_all() {
                tracing::warn!(error = %e, "could not read the PITR tables to archive");
            }
        }
        if last_trim.elapsed() >= Duration::from_secs(60) {
            last_trim = tokio::time::Instant::now();
            runner.spawn("trim".into(), |runner| async move { runner.trim_all().await });
        }
    }
}

#[derive(Clone)]
struct Runner {
    node: RegionNode,
    engine: Arc<dyn Engine>,
    store: BackupStore,
    /// Where exports write.
    buckets: Buckets,
    /// What the exports running here have written so far.
    exports: ExportProgress,
    settings: RunnerSettings,
    /// Jobs running here (`restore/<table>` — restores and imports —, `backup/<id>`, `export/<id>`,
    /// `archive/<table id>`, `base/<table id>`, `trim`): each runs once at a time.
    busy: Arc<Mutex<BTreeSet<String>>>,
}

impl Runner {
    /// Starts the jobs that are not running here yet: first bases, restores and imports, backups, exports.
    fn start_jobs(&self) {
        let (tables, backups, exports) = {
            let view = self.engine.view();
            (tables(&*view), list_backups(&*view), list_exports(&*view))
        };
        let (Ok(tables), Ok(backups), Ok(exports)) = (tables, backups, exports) else {
            tracing::warn!("could not read the tables, backups and exports to run");
            return;
        };
        let restoring = tables.iter().filter(|t| t.restoring.is_some()).count();
        let creating = backups.iter().filter(|b| backup_status(b) == "CREATING").count();
        metrics::gauge!("tern_restores_in_progress").set(restoring as f64);
        metrics::gauge!("tern_backups_in_progress").set(creating as f64);
        // A table whose PITR was just turned on gets its first base at once, not at the next archive
        // tick (its window opens with it).
        for table in tables.iter().filter(|t| t.pitr.as_ref().is_some_and(|p| p.enabled && p.latest_base_micros == 0)) {
            self.spawn_base(table.clone());
        }
        for table in tables.into_iter().filter(|t| t.restoring.is_some()) {
            let name = table.description.as_ref().map(|d| d.table_name.clone()).unwrap_or_default();
            self.spawn(format!("restore/{name}"), move |runner| async move { runner.restore(name).await });
        }
        for backup in backups.into_iter().filter(|b| backup_status(b) == "CREATING") {
            let id = backup_id(&backup);
            self.spawn(format!("backup/{id}"), move |runner| async move {
                match backup.pitr.is_some() {
                    true => runner.finish_system_backup(id, backup).await,
                    false => runner.make_backup(id, backup).await,
                }
            });
        }
        for export in exports {
            let Some(description) = export.description.as_ref().filter(|d| d.export_status == "IN_PROGRESS") else {
                continue;
            };
            let id = crate::transfer::id_of(&description.export_arn, "export").unwrap_or_default().to_string();
            self.spawn(format!("export/{id}"), move |runner| async move { runner.export(id, export).await });
        }
    }

    /// Writes an export's files to its bucket, then records it COMPLETED (or FAILED, with why).
    async fn export(&self, id: String, export: StoredExport) -> Result<(), ApiError> {
        let description = export.description.clone().unwrap_or_default();
        let failed = |code: &str, why: String| ExportDone {
            export_id: id.clone(),
            failure_code: code.into(),
            failure_message: why,
            ..Default::default()
        };
        let done = match self.buckets.open_existing(&description.s3_bucket, true).await {
            Err(transfer::BucketError::Store(e)) => match JobError::from(e) {
                JobError::Failed(why) => failed("ExportFailed", why),
                JobError::Interrupted(why) => return Err(ApiError::unavailable(why)),
            },
            Err(e) => failed("S3NoSuchBucket", e.to_string()),
            Ok(bucket) => {
                match transfer::export::run(&self.engine, &self.store, &bucket, &id, &export, &self.exports).await {
                    Ok(exported) => ExportDone {
                        export_id: id.clone(),
                        item_count: exported.item_count,
                        billed_size_bytes: exported.billed_size_bytes,
                        export_manifest: exported.manifest,
                        ..Default::default()
                    },
                    Err(JobError::Failed(why)) => failed("ExportFailed", why),
                    Err(JobError::Interrupted(why)) => return Err(ApiError::unavailable(why)),
                }
            }
        };
        match done.failure_code.is_empty() {
            true => tracing::info!(export = %id, items = done.item_count, "export completed"),
            false => tracing::warn!(export = %id, why = %done.failure_message, "export failed"),
        }
        let recorded = self.propose(command::Op::ExportDone(done)).await;
        self.exports.forget(&id);
        recorded?;
        Ok(())
    }

    /// Runs `job` unless it is running here already.
    fn spawn<F, Fut>(&self, name: String, job: F)
    where
        F: FnOnce(Runner) -> Fut,
        Fut: std::future::Future<Output = Result<(), ApiError>> + Send + 'static,
    {
        if !self.busy.lock().expect("busy lock").insert(name.clone()) {
            return;
        }
        let busy = self.busy.clone();
        let work = job(self.clone());
        tokio::spawn(async move {
            if let Err(e) = work.await {
                tracing::warn!(job = %name, error = %e, "backup job stopped; the leader tries it again");
            }
            busy.lock().expect("busy lock").remove(&name);
        });
    }

    async fn propose(&self, op: command::Op) -> Result<command_outcome::Outcome, ApiError> {
        if !self.node.leads() {
            return Err(ApiError::unavailable("no longer the leader"));
        }
        self.node.propose_as(op, None).await
    }

    /// Restores a table: its items, then ACTIVE; or, when it cannot succeed, the table removed with why.
    async fn restore(&self, table: String) -> Result<(), ApiError> {
        let stored = self.node.reader.described_table(&table)?;
        let Some(source) = stored.restoring.clone() else { return Ok(()) };
        if !source.import_id.is_empty() {
            return self.import(table, &stored, source.import_id).await;
        }
        tracing::info!(%table, ?source, "restoring");
        let table_id = stored.table_id;
        let mut sink = Proposals { runner: self.clone(), table: table.clone(), table_id, in_flight: Vec::new() };
        let result = match restore::restore_items(&self.engine, &self.store, &source, &mut sink).await {
            Ok(count) => sink.drain().await.map(|()| count),
            Err(e) => Err(e),
        };
        let error = match result {
            Ok(count) => {
                tracing::info!(%table, items = count, "restore done");
                metrics::counter!("tern_restored_items_total").increment(count);
                String::new()
            }
            Err(JobError::Failed(why)) => {
                tracing::warn!(%table, %why, "restore failed");
                why
            }
            Err(JobError::Interrupted(why)) => return Err(ApiError::unavailable(why)),
        };
        let done = RestoreDone { table_name: table, error, table_id, ..Default::default() };
        self.propose(command::Op::RestoreDone(done)).await?;
        Ok(())
    }

    /// Imports a table's items from its import's bucket; then ACTIVE (the import COMPLETED, or FAILED
    /// with ItemValidationError when some items were rejected: they are listed with why in the error
    /// log, in the backup store), or, when the source cannot be read, the table removed with why.
    async fn import(&self, table: String, stored: &StoredTable, import_id: String) -> Result<(), ApiError> {
        let Some(import) = read_import(&*self.engine.view(), &import_id)? else { return Ok(()) };
        let description = import.description.unwrap_or_default();
        let source = description.s3_bucket_source.clone().unwrap_or_default();
        let format = match description.input_format.as_str() {
            "CSV" => {
                let csv = description.input_format_options.clone().and_then(|o| o.csv).unwrap_or_default();
                let delimiter = transfer::import::csv_delimiter(&csv.delimiter).unwrap_or(b',');
                InputFormat::Csv { delimiter, header_list: csv.header_list }
            }
            "ION" => InputFormat::Ion,
            _ => InputFormat::DynamoDbJson,
        };
        let compression = Compression::named(&description.input_compression_type).unwrap_or(Compression::None);
        let schema = crate::schema::TableSchema::of(stored)?;
        tracing::info!(%table, import = %import_id, "importing");
        let mut sink =
            Proposals { runner: self.clone(), table: table.clone(), table_id: stored.table_id, in_flight: Vec::new() };
        let mut done = RestoreDone { table_name: table.clone(), table_id: stored.table_id, ..Default::default() };
        let read = match self.buckets.open_existing(&source.s3_bucket, false).await {
            Ok(bucket) => {
                match transfer::import::run(&bucket, &source.s3_key_prefix, &format, compression, &schema, &mut sink)
                    .await
                {
                    Ok(read) => sink.drain().await.map(|()| read),
                    Err(e) => Err(e),
                }
            }
            Err(transfer::BucketError::Store(e)) => Err(JobError::from(e)),
            Err(e) => {
                done.import_failure_code = "S3NoSuchBucket".into();
                Err(JobError::Failed(e.to_string()))
            }
        };
        // The error log is written before the import is recorded as ended; a store that refuses it for
        // good fails the import rather than starting it over and over.
        let read = match read {
            Ok((counts, rejected)) if counts.errors > 0 => {
                let log = transfer::import::error_log(&rejected, counts.errors);
                match self.store.put(&transfer::error_log(&import_id), log.into_bytes().into()).await {
                    Ok(()) => Ok((counts, true)),
                    Err(e) => Err(JobError::from(e)),
                }
            }
            Ok((counts, _)) => Ok((counts, false)),
            Err(e) => Err(e),
        };
        match read {
            Ok((counts, rejected)) => {
                if rejected {
                    done.import_failure_code = "ItemValidationError".into();
                }
                tracing::info!(%table, import = %import_id, ?counts, "import done");
                done.import_counts = Some(counts);
            }
            Err(JobError::Failed(why)) => {
                tracing::warn!(%table, import = %import_id, %why, "import failed");
                if done.import_failure_code.is_empty() {
                    done.import_failure_code = "InvalidImportSource".into();
                }
                done.error = why;
            }
            Err(JobError::Interrupted(why)) => return Err(ApiError::unavailable(why)),
        }
        self.propose(command::Op::RestoreDone(done)).await?;
        Ok(())
    }

    /// Writes a USER backup's image: the table as one consistent view holds it.
    async fn make_backup(&self, id: String, backup: StoredBackup) -> Result<(), ApiError> {
        let folder = super::backup_folder(&id);
        let outcome = match self.write_image(|_| folder.clone(), backup.source_table_id, Some(&backup)).await {
            Ok(Some(manifest)) => BackupDone {
                backup_id: id.clone(),
                item_count: manifest.item_count,
                size_bytes: manifest.bytes,
                error: String::new(),
            },
            Ok(None) => BackupDone {
                backup_id: id.clone(),
                error: "its table was deleted before the backup was taken".into(),
                ..Default::default()
            },
            // The store refuses it for good (no access, a bad path): the backup fails and is removed.
            Err(JobError::Failed(why)) => BackupDone { backup_id: id.clone(), error: why, ..Default::default() },
            Err(JobError::Interrupted(why)) => return Err(ApiError::unavailable(why)),
        };
        let failed = !outcome.error.is_empty();
        self.propose(command::Op::BackupDone(outcome)).await?;
        if !failed {
            tracing::info!(backup = %id, "backup available");
        }
        Ok(())
    }

    /// Uploads an image of the table whose key prefix is `table_id`, as of one view of this node, to
    /// the folder `folder` names for the view's time; none when the table is not there. A backup's
    /// image also records its description.
    async fn write_image(
        &self,
        folder: impl FnOnce(u64) -> String,
        table_id: u64,
        backup: Option<&StoredBackup>,
    ) -> Result<Option<image::Manifest>, JobError> {
        let (sender, mut receiver) = tokio::sync::mpsc::channel::<Scanned>(4);
        let engine = self.engine.clone();
        let scan = tokio::task::spawn_blocking(move || scan_table(&*engine, table_id, &sender));
        let Some(Scanned::Start { description, as_of }) = receiver.recv().await else {
            return match scan.await {
                Ok(Ok(())) => Ok(None),
                Ok(Err(e)) => Err(e.into()),
                Err(e) => Err(JobError::Interrupted(e.to_string())),
            };
        };
        let folder = folder(as_of);
        let mut writer = ImageWriter::new(&self.store, &folder, &description, as_of);
        if let Some(backup) = backup {
            writer.set_backup(available(backup));
        }
        while let Some(Scanned::Items { encoded, count }) = receiver.recv().await {
            writer.add_encoded(&encoded, count).await?;
        }
        scan.await.map_err(|e| JobError::Interrupted(e.to_string()))??;
        let manifest = writer.finish().await?;
        metrics::counter!("tern_backup_bytes_written_total").increment(manifest.bytes);
        Ok(Some(manifest))
    }

    /// A deleted table's system backup: its log's last changes archived, then AVAILABLE.
    async fn finish_system_backup(&self, id: String, backup: StoredBackup) -> Result<(), ApiError> {
        let pitr = backup.pitr.clone().unwrap_or_default();
        let through = backup.deleted_at_micros;
        let mut from = pitr.archived_through_micros;
        while from < through {
            let (records, to) = {
                let view = self.engine.view();
                sealed(log_records(&*view, backup.source_table_id, from, through, SEGMENT)?, through)
            };
            image::write_segment(&self.store, &pitr.store_prefix, from, to, &records).await?;
            from = to;
        }
        let progress = PitrProgress { system_backup_id: id, archived_through_micros: through, ..Default::default() };
        self.propose(command::Op::PitrProgress(progress)).await?;
        Ok(())
    }

    /// Starts archiving every PITR table's new changes, and the bases that are due: each table's own
    /// jobs, so that a long base of one table holds up no other table's archiving, and no backup.
    fn archive_all(&self) -> Result<(), ApiError> {
        let tables = tables(&*self.engine.view())?;
        for table in tables {
            let Some(pitr) = table.pitr.clone().filter(|p| p.enabled) else { continue };
            let name = table.description.as_ref().map(|d| d.table_name.clone()).unwrap_or_default();
            let (id, prefix) = (table.table_id, pitr.store_prefix.clone());
            self.spawn(format!("archive/{id}"), {
                let name = name.clone();
                move |runner| async move { runner.archive(&name, id, &prefix).await }
            });
            let now = crate::clock::now_micros();
            if now.saturating_sub(pitr.latest_base_micros) >= self.settings.base_every.as_micros() as u64 {
                self.spawn_base(table);
            }
        }
        Ok(())
    }

    /// Starts uploading a base of a PITR table, unless one is being uploaded here already.
    fn spawn_base(&self, table: StoredTable) {
        let Some(pitr) = table.pitr.clone() else { return };
        let name = table.description.as_ref().map(|d| d.table_name.clone()).unwrap_or_default();
        self.spawn(format!("base/{}", table.table_id), move |runner| async move {
            runner.take_base(&name, &table, &pitr).await
        });
    }

    /// Uploads a table's changes after its archived point, in segments, then drops them here. The
    /// archived point and the records come from one view, so a segment holds exactly its range.
    async fn archive(&self, name: &str, table_id: u64, prefix: &str) -> Result<(), ApiError> {
        loop {
            let (from, records, through, full) = {
                let view = self.engine.view();
                let table = table_with_id(&*view, table_id)?;
                let Some(pitr) = table.and_then(|t| t.pitr).filter(|p| p.enabled && p.store_prefix == prefix) else {
                    return Ok(());
                };
                let clock = crate::apply::clock(&*view)?;
                let from = pitr.archived_through_micros;
                let found = log_records(&*view, table_id, from, clock, SEGMENT)?;
                let full = found.len() >= SEGMENT_RECORDS;
                let (records, through) = sealed(found, clock);
                (from, records, through, full)
            };
            if records.is_empty() {
                break;
            }
            let segment = image::write_segment(&self.store, prefix, from, through, &records).await?;
            metrics::counter!("tern_pitr_archived_records_total").increment(records.len() as u64);
            tracing::debug!(table = %name, path = %segment.path, records = records.len(), "PITR segment archived");
            let progress = PitrProgress {
                table_name: name.to_string(),
                store_prefix: prefix.to_string(),
                archived_through_micros: through,
                ..Default::default()
            };
            self.propose(command::Op::PitrProgress(progress)).await?;
            if !full {
                break;
            }
        }
        if let Some(table) = table_with_id(&*self.engine.view(), table_id)? {
            if let Some((earliest, latest)) = table
                .pitr
                .as_ref()
                .and_then(|p| super::window(p, super::restorable_now(self.node.reader.applied_through())))
            {
                metrics::gauge!("tern_pitr_earliest_restorable_seconds", "table" => name.to_string())
                    .set(super::seconds(earliest));
                metrics::gauge!("tern_pitr_latest_restorable_seconds", "table" => name.to_string())
                    .set(super::seconds(latest));
            }
        }
        Ok(())
    }

    /// Uploads a base of a PITR table: its items as of one view.
    async fn take_base(&self, name: &str, table: &StoredTable, pitr: &PitrState) -> Result<(), ApiError> {
        let folder = |as_of| image::base_folder(&pitr.store_prefix, as_of);
        let written = self.write_image(folder, table.table_id, None).await;
        let Some(manifest) = written.map_err(|e| ApiError::unavailable(e.to_string()))? else { return Ok(()) };
        tracing::info!(table = %name, as_of = manifest.as_of_micros, items = manifest.item_count, "PITR base uploaded");
        let progress = PitrProgress {
            table_name: name.to_string(),
            store_prefix: pitr.store_prefix.clone(),
            earliest_base_micros: if pitr.earliest_base_micros == 0 { manifest.as_of_micros } else { 0 },
            latest_base_micros: manifest.as_of_micros,
            ..Default::default()
        };
        self.propose(command::Op::PitrProgress(progress)).await?;
        Ok(())
    }

    /// Drops what no restore point in a window needs any more: bases older than the newest base at or
    /// before the window's start, and the segments before it; and expired system backups.
    async fn trim_all(&self) -> Result<(), ApiError> {
        let now = super::restorable_now(self.node.reader.applied_through());
        let (tables, backups, exports) = {
            let view = self.engine.view();
            (tables(&*view)?, list_backups(&*view)?, list_exports(&*view)?)
        };
        // A restore or an export under way reads its base and the segments after it: kept until it is
        // done (an incremental export reads from just before its window).
        let restoring: Vec<(String, u64)> = tables
            .iter()
            .filter_map(|t| t.restoring.as_ref())
            .filter(|s| s.backup_id.is_empty() && s.import_id.is_empty())
            .map(|s| (s.pitr_prefix.clone(), s.restore_to_micros))
            .chain(
                exports
                    .iter()
                    .filter(|e| e.description.as_ref().is_some_and(|d| d.export_status == "IN_PROGRESS"))
                    .filter_map(|e| {
                        let source = e.source.as_ref()?;
                        let from = if e.from_micros == 0 { u64::MAX } else { e.from_micros - 1 };
                        Some((source.pitr_prefix.clone(), source.restore_to_micros.min(from)))
                    }),
            )
            .collect();
        for table in tables {
            let Some(pitr) = table.pitr.clone().filter(|p| p.enabled && p.earliest_base_micros != 0) else { continue };
            let window_start = now.saturating_sub(u64::from(pitr.recovery_period_days) * super::DAY_MICROS);
            let start = restoring
                .iter()
                .filter(|(prefix, _)| *prefix == pitr.store_prefix)
                .map(|(_, at)| *at)
                .fold(window_start, u64::min);
            let bases = image::list_bases(&self.store, &pitr.store_prefix).await?;
            let Some(&keep) = bases.iter().rev().find(|&&b| b <= start) else { continue };
            for &base in bases.iter().filter(|&&b| b < keep) {
                self.store.delete_all(&image::base_folder(&pitr.store_prefix, base)).await?;
            }
            for segment in image::list_segments(&self.store, &pitr.store_prefix).await? {
                if segment.to_micros <= keep {
                    self.store.delete(&segment.path).await?;
                }
            }
            if keep != pitr.earliest_base_micros {
                let name = table.description.as_ref().map(|d| d.table_name.clone()).unwrap_or_default();
                let progress = PitrProgress {
                    table_name: name,
                    store_prefix: pitr.store_prefix.clone(),
                    earliest_base_micros: keep,
                    ..Default::default()
                };
                self.propose(command::Op::PitrProgress(progress)).await?;
            }
        }
        for backup in backups.iter().filter(|b| b.expires_at_micros != 0 && b.expires_at_micros <= now) {
            let id = backup_id(backup);
            self.propose(command::Op::DeleteBackup(DeleteBackup { backup_id: id.clone() })).await?;
            if let Some(pitr) = &backup.pitr {
                self.store.delete_all(&pitr.store_prefix).await?;
            }
            tracing::info!(backup = %id, "expired system backup deleted");
        }
        Ok(())
    }
}

/// A backup's id, from its ARN.
pub fn backup_id(backup: &StoredBackup) -> String {
    let arn = backup.description.as_ref().and_then(|d| d.backup_details.as_ref()).map_or("", |d| d.backup_arn.as_str());
    super::backup_id_of(arn).unwrap_or_default().to_string()
}

/// A backup's description once AVAILABLE (as its image records it, for other regions).
fn available(backup: &StoredBackup) -> BackupDescription {
    let mut description = backup.description.clone().unwrap_or_default();
    if let Some(details) = description.backup_details.as_mut() {
        details.backup_status = "AVAILABLE".into();
    }
    description
}

/// What a table scan sends: the table and the view's time first, then its items encoded.
enum Scanned {
    Start { description: Box<TableDescription>, as_of: u64 },
    Items { encoded: Vec<u8>, count: u64 },
}

/// Scans the table whose key prefix is `table_id` in one view, sending it in chunks.
fn scan_table(
    engine: &dyn Engine,
    table_id: u64,
    sender: &tokio::sync::mpsc::Sender<Scanned>,
) -> Result<(), engine::StorageError> {
    let view = engine.view();
    let Some(table) = table_with_id(&*view, table_id)? else { return Ok(()) };
    let as_of = crate::apply::clock(&*view)?;
    let description = table.description.unwrap_or_default();
    if sender.blocking_send(Scanned::Start { description: Box::new(description), as_of }).is_err() {
        return Ok(());
    }
    let (start, end) = keyspace::table_range(table_id);
    let mut encoded = Vec::new();
    let mut count = 0;
    for entry in view.scan(Family::Items, &start, Some(&end), Direction::Forward) {
        let (key, value) = entry?;
        let item: StoredItem = engine::decode("item", &value)?;
        ImageEntry { key: key[8..].to_vec(), item: Some(item) }
            .encode_length_delimited(&mut encoded)
            .expect("a Vec grows");
        count += 1;
        if encoded.len() >= 1 << 20 {
            let chunk = Scanned::Items { encoded: std::mem::take(&mut encoded), count: std::mem::take(&mut count) };
            if sender.blocking_send(chunk).is_err() {
                return Ok(());
            }
        }
    }
    if count > 0 {
        let _ = sender.blocking_send(Scanned::Items { encoded, count });
    }
    Ok(())
}

/// The records of a segment and where it ends: at `through` when `records` are all there is up to
/// it, else before the last record's time (a full segment), so that no entry's changes are split
/// between two segments (unless one entry's alone fill a segment: then it ends at that entry).
fn sealed(records: Vec<LogRecord>, through: u64) -> (Vec<LogRecord>, u64) {
    let full = records.len() >= SEGMENT_RECORDS
        || records.iter().map(|r| r.item.as_ref().map_or(0, |i| i.encoded_len())).sum::<usize>() >= SEGMENT_BYTES;
    if !full {
        return (records, through);
    }
    let (first, last) = match (records.first(), records.last()) {
        (Some(first), Some(last)) => (first.at_micros, last.at_micros),
        _ => return (records, through),
    };
    let end = if first == last { last } else { last - 1 };
    (records.into_iter().filter(|r| r.at_micros <= end).collect(), end)
}

/// A restore's items, proposed a batch per entry, a few at once.
struct Proposals {
    runner: Runner,
    table: String,
    /// The table's key prefix: a batch for an older table of the name is refused.
    table_id: u64,
    in_flight: Vec<tokio::task::JoinHandle<Result<(), ApiError>>>,
}

impl Drop for Proposals {
    /// A restore that stopped leaves no batch behind to commit after it.
    fn drop(&mut self) {
        for handle in &self.in_flight {
            handle.abort();
        }
    }
}

impl Proposals {
    /// Waits for every batch in flight; on a failure, those after it are aborted (on drop).
    async fn drain(&mut self) -> Result<(), JobError> {
        while !self.in_flight.is_empty() {
            let oldest = self.in_flight.remove(0);
            finish(oldest).await?;
        }
        Ok(())
    }
}

/// A batch's outcome.
async fn finish(handle: tokio::task::JoinHandle<Result<(), ApiError>>) -> Result<(), JobError> {
    let answer = handle.await.map_err(|e| JobError::Interrupted(e.to_string()))?;
    answer.map_err(|e| match e.kind {
        tern_proto::ErrorKind::ServiceUnavailable | tern_proto::ErrorKind::InternalServerError => {
            JobError::Interrupted(e.to_string())
        }
        _ => JobError::Failed(e.to_string()),
    })
}

impl Sink for Proposals {
    async fn write(&mut self, items: Vec<ImageEntry>, bytes_read: u64) -> Result<(), JobError> {
        self.send(items, bytes_read, None).await
    }
}

impl ImportSink for Proposals {
    async fn write(&mut self, items: Vec<ImageEntry>, counts: &ImportCounts) -> Result<(), JobError> {
        self.send(items, counts.processed_bytes, Some(*counts)).await
    }
}

impl Proposals {
    /// Proposes a batch, once fewer than [`RESTORE_BATCHES_IN_FLIGHT`] are in flight.
    async fn send(
        &mut self,
        items: Vec<ImageEntry>,
        bytes_read: u64,
        import_counts: Option<ImportCounts>,
    ) -> Result<(), JobError> {
        if self.in_flight.len() >= RESTORE_BATCHES_IN_FLIGHT {
            let oldest = self.in_flight.remove(0);
            finish(oldest).await?;
        }
        let runner = self.runner.clone();
        // The items' attributes alone: the apply path gives each its version.
        let items = items
            .into_iter()
            .map(|entry| {
                let attributes = entry.item.map(|item| item.attributes).unwrap_or_default();
                let item = StoredItem { attributes, ..Default::default() }.encode_to_vec();
                EncodedImageEntry { key: entry.key, item }
            })
            .collect();
        let op = command::Op::RestoreItems(RestoreItems {
            table_name: self.table.clone(),
            items,
            bytes_read,
            table_id: self.table_id,
            import_counts,
        });
        self.in_flight.push(tokio::spawn(async move { runner.propose(op).await.map(|_| ()) }));
        Ok(())
    }
}
