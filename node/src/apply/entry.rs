//! The entry being applied: what every concern's apply step reads and writes. Reads see the state
//! before the entry; writes go to the entry's write set, which the state machine applies in one
//! atomic write together with the applied log id.

use std::collections::{BTreeMap, BTreeSet};

use tern_proto::internal::{StoredItem, StoredTable};
use tern_proto::v1::{Identity, ItemVersion};
use tern_proto::ApiError;

use crate::changes::Changes;
use crate::engine::{self, ReadView, StorageError, WriteSet};
use crate::keyspace::{self, Family, Meta};
use crate::schema::TableSchema;

/// Why a command did not apply.
///
/// The policy: a refusal is decided from replicated state, so every replica decides it alike, and it
/// is the entry's outcome (its writes so far still apply, as they always have: every refusal is
/// decided before the write it refuses). Anything that fails in storage, a read error or data that
/// does not decode, stops this node applying: a node that cannot read its state, or finds it damaged,
/// must not carry on deciding unlike its peers. A stream record is never skipped for such a reason.
/// After a storage failure the applier's clock and table definitions may be ahead of the engine;
/// openraft stops the node on it, and a restart loads both from the engine again.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The command is refused, the same way on every replica: the refusal is the entry's outcome.
    #[error(transparent)]
    Refused(#[from] ApiError),
    /// This node could not read its state: it stops applying rather than decide unlike its peers.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Most commands in one batch entry: each user's item write makes at most 100 stream records (a
/// transaction's actions), so a batch stays far below an entry's 65,536 positions.
pub const MAX_BATCH_COMMANDS: usize = 256;

/// The region's clock as `view` holds it: the last write timestamp assigned (microseconds).
pub fn clock(view: &dyn ReadView) -> Result<u64, StorageError> {
    Ok(keyspace::decode_u64(view.get(Family::Meta, Meta::Clock.key())?.as_deref()))
}

/// The outcome of an apply step.
pub type Applied<T> = Result<T, ApplyError>;

/// The state one entry is applied against, and where its writes go.
pub struct Entry<'a> {
    /// The state before this entry.
    pub view: &'a dyn ReadView,
    /// This entry's writes.
    pub writes: &'a mut WriteSet,
    /// The table definitions, kept in memory and saved through [`Entry::save_table`].
    pub tables: &'a mut BTreeMap<String, StoredTable>,
    /// The tables this entry changed: the applier writes each once, after the entry.
    pub changed_tables: &'a mut BTreeSet<String>,
    /// The region this node belongs to.
    pub region: &'a str,
    /// The entry's log index.
    pub index: u64,
    /// The entry's write timestamp (hybrid logical clock, microseconds).
    pub timestamp: u64,
    /// Who the entry's writes are attributed to in stream records (none for users).
    pub identity: Option<Identity>,
    /// Stream records this entry has written so far.
    pub records: u16,
    /// What the entries applied so far changed, for the change feed.
    pub changes: &'a mut Changes,
}

/// What a write does to an item: the item before and after.
#[derive(Debug, Clone)]
pub struct ItemChange {
    pub old: Option<StoredItem>,
    pub new: Option<StoredItem>,
}

/// A write decided against the current state, not yet committed.
#[derive(Debug, Clone)]
pub struct PlannedWrite {
    pub table: String,
    pub key: Vec<u8>,
    pub change: ItemChange,
    /// The version the write is given (a delete's too).
    pub version: ItemVersion,
}

/// An item (or tombstone) as stored with `version`.
pub fn stored_item(attributes: BTreeMap<String, tern_proto::v1::AttributeValue>, version: &ItemVersion) -> StoredItem {
    StoredItem {
        attributes,
        write_timestamp_micros: version.write_timestamp_micros,
        origin_region: version.origin_region.clone(),
    }
}

/// The version an item or a tombstone carries.
pub fn version_of(stored: &StoredItem) -> ItemVersion {
    ItemVersion { write_timestamp_micros: stored.write_timestamp_micros, origin_region: stored.origin_region.clone() }
}

impl Entry<'_> {
    /// A table's stored definition, to change and save.
    pub fn stored_table(&self, name: &str) -> Result<StoredTable, ApiError> {
        self.tables.get(name).cloned().ok_or_else(|| ApiError::table_not_found(name))
    }

    /// A table's key schema.
    pub fn table(&self, name: &str) -> Result<TableSchema, ApiError> {
        let stored = self.tables.get(name).ok_or_else(|| ApiError::table_not_found(name))?;
        if stored.restoring.is_some() {
            return Err(crate::schema::being_restored(name));
        }
        TableSchema::of(stored)
    }

    /// Saves a table's definition: in memory now, in the entry's writes once it is applied.
    pub fn save_table(&mut self, stored: StoredTable) {
        let name = stored.description.as_ref().map(|d| d.table_name.clone()).unwrap_or_default();
        self.table_changed(&name);
        self.tables.insert(name, stored);
    }

    /// Notes that a table's definition in memory changed, to be written after the entry.
    pub fn table_changed(&mut self, name: &str) {
        if !self.changed_tables.contains(name) {
            self.changed_tables.insert(name.to_string());
        }
    }

    /// The item stored under a storage key.
    pub fn read_item(&self, key: &[u8]) -> Result<Option<StoredItem>, StorageError> {
        self.view.get(Family::Items, key)?.map(|bytes| engine::decode("item", &bytes)).transpose()
    }

    /// The seconds of the entry's timestamp (TTL compares expiries with it).
    pub fn now_secs(&self) -> u64 {
        self.timestamp / 1_000_000
    }
}
