//! What the backup work reads from one view of a node's storage: the tables, the backup catalog, and
//! a table's PITR log records.

use tern_proto::internal::{LogRecord, StoredBackup, StoredItem, StoredTable};

use crate::catalog::{catalog, catalog_entry};
use crate::engine::{self, Direction, ReadView, StorageError};
use crate::keyspace::{self, Family};

/// Every table definition.
pub fn tables(view: &dyn ReadView) -> Result<Vec<StoredTable>, StorageError> {
    view.scan(Family::Tables, &[], None, Direction::Forward)
        .map(|entry| entry.and_then(|(_, value)| engine::decode("table", &value)))
        .collect()
}

/// The table whose key prefix is `table_id`, if it is still there.
pub fn table_with_id(view: &dyn ReadView, table_id: u64) -> Result<Option<StoredTable>, StorageError> {
    Ok(tables(view)?.into_iter().find(|t| t.table_id == table_id))
}

/// The catalog entry of a backup.
pub fn read_backup(view: &dyn ReadView, backup_id: &str) -> Result<Option<StoredBackup>, StorageError> {
    catalog_entry(view, &keyspace::backup_key(backup_id), "backup")
}

/// Every backup in the catalog, in id order (creation order).
pub fn list_backups(view: &dyn ReadView) -> Result<Vec<StoredBackup>, StorageError> {
    catalog(view, keyspace::BACKUP_PREFIX, "backup")
}

/// A backup's status (`CREATING`, `AVAILABLE`).
pub fn backup_status(backup: &StoredBackup) -> &str {
    backup.description.as_ref().and_then(|d| d.backup_details.as_ref()).map_or("", |d| d.backup_status.as_str())
}

/// How many PITR log records one read returns at most: by count, and by bytes of items.
#[derive(Debug, Clone, Copy)]
pub struct RecordLimit {
    pub records: usize,
    pub bytes: usize,
}

impl RecordLimit {
    pub const NONE: RecordLimit = RecordLimit { records: usize::MAX, bytes: usize::MAX };
}

/// A table's PITR log records with `after < time <= through`, in time order, up to `limit`.
pub fn log_records(
    view: &dyn ReadView,
    table_id: u64,
    after: u64,
    through: u64,
    limit: RecordLimit,
) -> Result<Vec<LogRecord>, StorageError> {
    let start = keyspace::pitr_after(table_id, after);
    let end = keyspace::pitr_after(table_id, through);
    let (mut records, mut bytes) = (Vec::new(), 0);
    for entry in view.scan(Family::PitrLog, &start, Some(&end), Direction::Forward) {
        if records.len() >= limit.records || bytes >= limit.bytes {
            break;
        }
        let (key, value) = entry?;
        let Some((at, item_key)) = keyspace::parse_pitr_key(&key) else { continue };
        bytes += value.len();
        let item = if value.is_empty() { None } else { Some(engine::decode::<StoredItem>("PITR record", &value)?) };
        records.push(LogRecord { at_micros: at, key: item_key.to_vec(), item });
    }
    Ok(records)
}
