//! Committing a planned write: the item change itself, then each concern's apply hook (the change
//! feed, the stream record, the global table's tombstone, the TTL index), and the table's item count
//! and size.

use prost::Message;
use tern_proto::internal::{ChangedItem, StoredItem, StoredTable};
use tern_proto::v1::Item;

use super::entry::{Applied, Entry, PlannedWrite};
use crate::engine::StorageError;
use crate::keyspace::Family;
use crate::schema::TableSchema;
use crate::{backup, global, stream, ttl};

/// Adds a planned write to the entry's writes, with what it implies for the table's stream,
/// tombstones, TTL index and statistics. A delete of an item that is not there changes nothing, except
/// on a global table: there it still leaves a tombstone and a REMOVE record with its version, so that
/// the delete replicates and wins over any older write of the item from another region.
pub fn commit(entry: &mut Entry, write: &PlannedWrite) -> Applied<()> {
    // Taken out of the map while the hooks, which need the entry, read it; put back whatever happens.
    let Some((name, mut stored)) = entry.tables.remove_entry(&write.table) else {
        // Every write is planned against its table: a missing one is damaged state.
        let why = format!("a write to table {}, which is not there", write.table);
        return Err(StorageError::Corrupt { what: "table", why }.into());
    };
    let committed = commit_to(entry, &mut stored, write);
    entry.tables.insert(name, stored);
    committed
}

/// [`commit`] to `stored`, the write's table.
fn commit_to(entry: &mut Entry, stored: &mut StoredTable, write: &PlannedWrite) -> Applied<()> {
    let global = global::is_global(stored);
    let changed = write.change.new.is_some() || write.change.old.is_some();
    if !changed && !global {
        return Ok(());
    }
    let encoded = write.change.new.as_ref().map(|item| item.encode_to_vec()).unwrap_or_default();
    match &write.change.new {
        Some(_) => entry.writes.put(Family::Items, &write.key, &encoded),
        None if changed => entry.writes.delete(Family::Items, &write.key),
        None => {}
    }
    // A stored table without a usable key schema is damaged state, not a refusal.
    let schema = TableSchema::of(stored)
        .map_err(|e| StorageError::Corrupt { what: "table", why: format!("{}: {}", write.table, e.message) })?;
    let key_attributes = match write.change.new.as_ref().or(write.change.old.as_ref()) {
        Some(item) => schema.key_of(&item.attributes),
        None => schema
            .key_of_storage_key(&write.key)
            .ok_or(StorageError::Corrupt { what: "storage key", why: format!("{:?} does not decode", write.key) })?,
    };
    if changed {
        entry.changes.items.push(ChangedItem {
            table_name: write.table.clone(),
            key: key_attributes.clone(),
            new_image: write.change.new.as_ref().map(|item| Item { attributes: item.attributes.clone() }),
            position: entry.timestamp,
            version: Some(write.version.clone()),
        });
    }
    if global {
        global::apply::track_tombstone(entry, write, &key_attributes);
    }
    if stored.stream_id != 0 {
        stream::record::record_change(entry, stored, key_attributes, write, global)?;
    }
    if !changed {
        return Ok(());
    }
    backup::apply::record_change(entry, stored, write, &encoded);
    ttl::apply::index_change(entry, stored, write);
    let size = |item: &Option<StoredItem>| item.as_ref().map_or(0, |i| i.encoded_len() as u64);
    if let Some(d) = stored.description.as_mut() {
        d.item_count = d.item_count + write.change.new.is_some() as u64 - write.change.old.is_some() as u64;
        d.table_size_bytes = (d.table_size_bytes + size(&write.change.new)).saturating_sub(size(&write.change.old));
    }
    entry.table_changed(&write.table);
    Ok(())
}
