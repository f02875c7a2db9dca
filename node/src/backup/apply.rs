//! Backups in the apply path: the PITR log kept in step with every committed change, PITR turned on
//! and off, the archiver's progress, the backup catalog, and a restore's new table and its items.

use prost::Message;
use tern_proto::internal::{
    BackupDone, CreateBackup, DeleteBackup, PitrProgress, PitrState, RestoreDone, RestoreItems, RestoreTable,
    StoredBackup, StoredTable,
};
use tern_proto::v1::{
    BackupDescription, BackupDetails, DeleteTableRequest, ItemVersion, SourceTableDetails, TableDescription,
    UpdateContinuousBackupsRequest, UpdateContinuousBackupsResponse,
};
use tern_proto::{ApiError, ErrorKind};

use crate::apply::entry::{Applied, Entry, PlannedWrite};
use crate::apply::tables;
use crate::keyspace::{self, Family};

use super::view::{backup_status, list_backups, read_backup};

/// Keeps a PITR table's log in step with a committed change: the item after it (`encoded`, its
/// stored form; empty for a delete) at the entry's commit time.
pub fn record_change(entry: &mut Entry, stored: &StoredTable, write: &PlannedWrite, encoded: &[u8]) {
    if !stored.pitr.as_ref().is_some_and(|p| p.enabled) {
        return;
    }
    let item_key = write.key.get(8..).unwrap_or_default();
    entry.writes.put(Family::PitrLog, keyspace::pitr_key(stored.table_id, entry.timestamp, item_key), encoded);
}

/// Drops a table's PITR log below (and at) `through`; everything when `through` is `u64::MAX`.
fn drop_log(entry: &mut Entry, table_id: u64, through: u64) {
    let end = if through == u64::MAX { keyspace::table_end(table_id) } else { keyspace::pitr_after(table_id, through) };
    entry.writes.delete_range(Family::PitrLog, keyspace::table_prefix(table_id), end);
}

/// UpdateContinuousBackups: PITR on (a new log and store folder: the window starts now), its period
/// changed (lowering it narrows the window at once), or off (the log is dropped).
pub fn update_continuous_backups(
    entry: &mut Entry,
    r: UpdateContinuousBackupsRequest,
) -> Applied<UpdateContinuousBackupsResponse> {
    entry.table(&r.table_name)?;
    let mut stored = entry.stored_table(&r.table_name)?;
    let spec = r
        .point_in_time_recovery_specification
        .ok_or_else(|| ApiError::validation("PointInTimeRecoverySpecification is required"))?;
    let period = match spec.recovery_period_in_days {
        0 => super::MAX_RECOVERY_PERIOD_DAYS,
        days @ 1..=super::MAX_RECOVERY_PERIOD_DAYS => days,
        days => {
            return Err(ApiError::validation(format!(
                "1 validation error detected: Value '{days}' at 'pointInTimeRecoverySpecification.recoveryPeriodInDays' failed to satisfy constraint: Member must have value between 1 and 35"
            ))
            .into())
        }
    };
    let enabled_now = stored.pitr.as_ref().is_some_and(|p| p.enabled);
    match (spec.point_in_time_recovery_enabled, enabled_now) {
        (true, true) => {
            if let Some(pitr) = stored.pitr.as_mut() {
                pitr.recovery_period_days = period;
            }
        }
        (true, false) => {
            let description = stored.description.clone().unwrap_or_default();
            stored.pitr = Some(PitrState {
                enabled: true,
                recovery_period_days: period,
                enabled_at_micros: entry.timestamp,
                store_prefix: format!(
                    "pitr/{}/{}/{}-{:016x}",
                    entry.region, r.table_name, description.table_id, entry.timestamp
                ),
                archived_through_micros: entry.timestamp,
                ..Default::default()
            });
        }
        (false, _) => {
            if enabled_now {
                drop_log(entry, stored.table_id, u64::MAX);
            }
            stored.pitr = None;
        }
    }
    let description = super::describe(stored.pitr.as_ref(), entry.timestamp);
    entry.save_table(stored);
    Ok(UpdateContinuousBackupsResponse { continuous_backups_description: Some(description) })
}

/// The archiver's progress: segments uploaded (the log below them dropped), bases uploaded or
/// removed, a deleted table's last segment uploaded (its system backup becomes AVAILABLE).
pub fn pitr_progress(entry: &mut Entry, r: PitrProgress) -> Applied<()> {
    if !r.system_backup_id.is_empty() {
        let Some(mut backup) = read_backup(entry.view, &r.system_backup_id)? else { return Ok(()) };
        let details = backup.description.as_mut().and_then(|d| d.backup_details.as_mut());
        if let Some(details) = details.filter(|d| d.backup_status == "CREATING") {
            details.backup_status = "AVAILABLE".into();
            if let Some(pitr) = backup.pitr.as_mut() {
                pitr.archived_through_micros = pitr.archived_through_micros.max(r.archived_through_micros);
            }
            drop_log(entry, backup.source_table_id, u64::MAX);
            entry.writes.put(Family::Meta, keyspace::backup_key(&r.system_backup_id), backup.encode_to_vec());
        }
        return Ok(());
    }
    let Some(mut stored) = entry.tables.get(&r.table_name).cloned() else { return Ok(()) };
    let table_id = stored.table_id;
    let Some(pitr) = stored.pitr.as_mut().filter(|p| p.enabled && p.store_prefix == r.store_prefix) else {
        return Ok(());
    };
    if r.archived_through_micros > pitr.archived_through_micros {
        pitr.archived_through_micros = r.archived_through_micros;
        drop_log(entry, table_id, r.archived_through_micros);
    }
    if r.earliest_base_micros != 0 {
        pitr.earliest_base_micros = r.earliest_base_micros;
    }
    pitr.latest_base_micros = pitr.latest_base_micros.max(r.latest_base_micros);
    entry.save_table(stored);
    Ok(())
}

/// What a backup says of its source table.
pub fn source_details(description: &TableDescription) -> SourceTableDetails {
    SourceTableDetails {
        table_name: description.table_name.clone(),
        table_id: description.table_id.clone(),
        table_arn: description.table_arn.clone(),
        table_size_bytes: description.table_size_bytes,
        key_schema: description.key_schema.clone(),
        table_creation_date_time: description.creation_date_time,
        item_count: description.item_count,
        billing_mode: description.billing_mode.clone(),
        attribute_definitions: description.attribute_definitions.clone(),
    }
}

/// DeleteTable of a table whose on-demand backup is being made is refused, as in DynamoDB: the backup
/// would be lost.
pub fn refuse_if_backing_up(entry: &Entry, table: &str) -> Applied<()> {
    let Some(stored) = entry.tables.get(table) else { return Ok(()) };
    let creating = list_backups(entry.view)?
        .iter()
        .any(|b| b.pitr.is_none() && b.source_table_id == stored.table_id && backup_status(b) == "CREATING");
    if creating {
        let why = format!("Table {table} is being backed up: it can be deleted once its backup is AVAILABLE");
        return Err(ApiError::in_use(why).into());
    }
    Ok(())
}

/// A backup name as DynamoDB allows them: 3 to 255 of `A-Z a-z 0-9 _ - .`.
pub fn check_backup_name(name: &str) -> Result<(), ApiError> {
    let valid = (3..=255).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if valid {
        return Ok(());
    }
    Err(ApiError::validation(format!(
        "1 validation error detected: Value '{name}' at 'backupName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+ and have length between 3 and 255"
    )))
}

/// CreateBackup: the backup enters the catalog CREATING; the leader's runner writes its image.
pub fn create_backup(entry: &mut Entry, r: CreateBackup) -> Applied<BackupDescription> {
    entry.table(&r.table_name)?;
    check_backup_name(&r.backup_name)?;
    if read_backup(entry.view, &r.backup_id)?.is_some() {
        return Err(ApiError::in_use(format!("Backup {} already exists", r.backup_id)).into());
    }
    let stored = entry.stored_table(&r.table_name)?;
    let table = stored.description.clone().unwrap_or_default();
    let description = BackupDescription {
        backup_details: Some(BackupDetails {
            backup_arn: super::backup_arn(&table.table_arn, &r.backup_id),
            backup_name: r.backup_name,
            backup_status: "CREATING".into(),
            backup_type: "USER".into(),
            backup_creation_date_time: super::seconds(entry.timestamp),
            ..Default::default()
        }),
        source_table_details: Some(source_details(&table)),
    };
    let backup =
        StoredBackup { description: Some(description.clone()), source_table_id: stored.table_id, ..Default::default() };
    entry.writes.put(Family::Meta, keyspace::backup_key(&r.backup_id), backup.encode_to_vec());
    Ok(description)
}

/// A deleted table with PITR on leaves a SYSTEM backup: its PITR log up to the delete, kept for the
/// recovery period. Its log not yet archived stays in `pitr_log` until the runner archives it.
pub fn keep_deleted_table(entry: &mut Entry, stored: &StoredTable) {
    let Some(pitr) = stored.pitr.as_ref().filter(|p| p.enabled) else { return };
    let table = stored.description.clone().unwrap_or_default();
    let backup_id = super::backup_id(entry.timestamp, entry.index);
    let expires_at = entry.timestamp + u64::from(pitr.recovery_period_days) * super::DAY_MICROS;
    let description = BackupDescription {
        backup_details: Some(BackupDetails {
            backup_arn: super::backup_arn(&table.table_arn, &backup_id),
            backup_name: super::deleted_table_backup_name(&table.table_name),
            backup_size_bytes: table.table_size_bytes,
            backup_status: "CREATING".into(),
            backup_type: "SYSTEM".into(),
            backup_creation_date_time: super::seconds(entry.timestamp),
            backup_expiry_date_time: super::seconds(expires_at),
            item_count: table.item_count,
        }),
        source_table_details: Some(source_details(&table)),
    };
    let backup = StoredBackup {
        description: Some(description),
        source_table_id: stored.table_id,
        pitr: Some(pitr.clone()),
        deleted_at_micros: entry.timestamp,
        expires_at_micros: expires_at,
    };
    entry.writes.put(Family::Meta, keyspace::backup_key(&backup_id), backup.encode_to_vec());
}

/// The runner finished a backup's image (AVAILABLE), or could not make it (it leaves the catalog).
pub fn backup_done(entry: &mut Entry, r: BackupDone) -> Applied<BackupDescription> {
    let mut backup = read_backup(entry.view, &r.backup_id)?.ok_or_else(|| backup_not_found(&r.backup_id))?;
    let mut description = backup.description.clone().unwrap_or_default();
    let details = description.backup_details.get_or_insert_with(Default::default);
    if !r.error.is_empty() {
        tracing::warn!(backup = %r.backup_id, error = %r.error, "backup failed: removed from the catalog");
        details.backup_status = "DELETED".into();
        entry.writes.delete(Family::Meta, keyspace::backup_key(&r.backup_id));
        return Ok(description);
    }
    if details.backup_status == "CREATING" {
        details.backup_status = "AVAILABLE".into();
        details.backup_size_bytes = r.size_bytes;
        details.item_count = r.item_count;
        backup.description = Some(description.clone());
        entry.writes.put(Family::Meta, keyspace::backup_key(&r.backup_id), backup.encode_to_vec());
    }
    Ok(description)
}

/// DeleteBackup: out of the catalog (the leader deleted its files first). A backup still being made,
/// or being restored from, is in use.
pub fn delete_backup(entry: &mut Entry, r: DeleteBackup) -> Applied<BackupDescription> {
    let backup = read_backup(entry.view, &r.backup_id)?.ok_or_else(|| backup_not_found(&r.backup_id))?;
    let mut description = backup.description.unwrap_or_default();
    let details = description.backup_details.get_or_insert_with(Default::default);
    if details.backup_status == "CREATING" {
        return Err(in_use(&details.backup_arn, "is being created").into());
    }
    let restoring = entry.tables.values().any(|t| t.restoring.as_ref().is_some_and(|s| s.backup_id == r.backup_id));
    if restoring {
        return Err(in_use(&details.backup_arn, "is being restored from").into());
    }
    details.backup_status = "DELETED".into();
    entry.writes.delete(Family::Meta, keyspace::backup_key(&r.backup_id));
    Ok(description)
}

fn in_use(arn: &str, why: &str) -> ApiError {
    ApiError::new(ErrorKind::BackupInUseException, format!("Backup {arn} {why}"))
}

/// BackupNotFoundException.
pub fn backup_not_found(backup: &str) -> ApiError {
    ApiError::new(ErrorKind::BackupNotFoundException, format!("Backup not found: {backup}"))
}

/// A restore's new table: created CREATING, with where it comes from.
pub fn restore_table(entry: &mut Entry, r: RestoreTable) -> Applied<TableDescription> {
    let mut request = r.table.ok_or_else(|| ApiError::internal("a restore without its table"))?;
    let name = request.table_name.clone();
    if entry.tables.contains_key(&name) {
        return Err(
            ApiError::new(ErrorKind::TableAlreadyExistsException, format!("Table already exists: {name}")).into()
        );
    }
    let source = r.source.unwrap_or_default();
    // Every change at or before the restore time must be in the log before this entry.
    if source.backup_id.is_empty() && source.restore_to_micros > entry.timestamp {
        let why = format!("RestoreDateTime {} is in the future", super::seconds(source.restore_to_micros));
        return Err(ApiError::new(ErrorKind::InvalidRestoreTimeException, why).into());
    }
    request.stream_specification = None;
    tables::create_table(entry, request)?;
    let mut stored = entry.stored_table(&name)?;
    let description = stored.description.get_or_insert_with(Default::default);
    description.table_status = "CREATING".into();
    // An import's table is made the same way, without a restore summary.
    description.restore_summary =
        r.summary.map(|summary| tern_proto::v1::RestoreSummary { restore_in_progress: true, ..summary });
    let description = description.clone();
    stored.restoring = Some(source);
    entry.save_table(stored);
    Ok(description)
}

/// A batch of a restore's items: refused unless its table is being restored (by this restore: the
/// table id); else the version its items are written with (this entry's), by
/// [`commit_restored`](crate::apply::commit::commit_restored).
pub fn restore_items(entry: &mut Entry, r: &RestoreItems) -> Applied<ItemVersion> {
    let stored = entry.tables.get(&r.table_name).ok_or_else(|| ApiError::table_not_found(&r.table_name))?;
    if stored.restoring.is_none() || stored.table_id != r.table_id {
        return Err(ApiError::validation(format!("Table {} is not being restored", r.table_name)).into());
    }
    Ok(ItemVersion { write_timestamp_micros: entry.timestamp, origin_region: entry.region.to_string() })
}

/// After a batch of restored items: the table's progress, and its description.
pub fn restored(entry: &mut Entry, table: &str, bytes_read: u64) -> Applied<TableDescription> {
    let mut stored = entry.stored_table(table)?;
    let description = stored.description.get_or_insert_with(Default::default);
    let count = description.item_count;
    if let Some(summary) = description.restore_summary.as_mut() {
        summary.items_restored = count;
        summary.bytes_read = summary.bytes_read.max(bytes_read);
    }
    let description = description.clone();
    entry.save_table(stored);
    Ok(description)
}

/// The restore's end: ACTIVE, or, when it failed, the table removed and the reason kept.
pub fn restore_done(entry: &mut Entry, r: RestoreDone) -> Applied<Option<TableDescription>> {
    let mut stored = entry.stored_table(&r.table_name)?;
    if stored.restoring.is_none() || stored.table_id != r.table_id {
        return Ok(stored.description);
    }
    stored.restoring = None;
    if !r.error.is_empty() {
        entry.save_table(stored);
        tables::delete_table(entry, DeleteTableRequest { table_name: r.table_name.clone() })?;
        entry.writes.put(Family::Meta, keyspace::restore_failure_key(&r.table_name), r.error.as_bytes());
        return Ok(None);
    }
    let description = stored.description.get_or_insert_with(Default::default);
    description.table_status = "ACTIVE".into();
    if let Some(summary) = description.restore_summary.as_mut() {
        summary.restore_in_progress = false;
        summary.items_restored = description.item_count;
    }
    let description = description.clone();
    entry.save_table(stored);
    Ok(Some(description))
}
