//! Committing a planned write: the item change itself, then each concern's apply hook (the change
//! feed, the stream record, the global table's tombstone, the TTL index), and the table's item count
//! and size; and a restore's batch of items, which, in a table no concern follows yet, needs none.

use std::collections::HashMap;

use prost::Message;
use tern_proto::internal::{ChangedItem, EncodedImageEntry, StoredItem, StoredTable};
use tern_proto::v1::{Item, ItemVersion};

use super::entry::{stored_item, Applied, Entry, ItemChange, PlannedWrite};
use crate::engine::StorageError;
use crate::keyspace::{self, Family};
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

/// Puts a restore's batch of items (each an encoded `StoredItem` holding the attributes alone) into
/// `table` with `version`. A restored table is new: no stream, replica, PITR log or TTL index follows
/// it, so each item is written as it came, followed by the version (a later field of a message
/// overrides an earlier one), and counted in the table's statistics, without decoding it; the feed
/// hears of the table as changed (a follower drops what it holds of it). Should a concern follow
/// the table (a setting changed while it was restored), each item is committed as any write is.
pub fn commit_restored(
    entry: &mut Entry,
    table: &str,
    items: &[EncodedImageEntry],
    version: &ItemVersion,
) -> Applied<()> {
    let stored = entry.stored_table(table)?;
    let prefix = keyspace::table_prefix(stored.table_id);
    let followed = global::is_global(&stored)
        || stored.stream_id != 0
        || stored.pitr.as_ref().is_some_and(|p| p.enabled)
        || ttl::attribute(&stored).is_some();
    if followed {
        for item in items {
            let key = [prefix.as_slice(), item.key.as_slice()].concat();
            let attributes = crate::engine::decode::<StoredItem>("item", &item.item)?.attributes;
            let change = ItemChange { old: entry.read_item(&key)?, new: Some(stored_item(attributes, version)) };
            commit(entry, &PlannedWrite { table: table.to_string(), key, change, version: version.clone() })?;
        }
        return Ok(());
    }
    let suffix = stored_item(Default::default(), version).encode_to_vec();
    // The sizes of the items this batch wrote so far, by key: a key twice in one batch counts once.
    let mut written: HashMap<&[u8], u64> = HashMap::with_capacity(items.len());
    let (mut added, mut replaced, mut grown, mut shrunk) = (0, 0, 0, 0);
    for item in items {
        let key = [prefix.as_slice(), item.key.as_slice()].concat();
        let value = [item.item.as_slice(), suffix.as_slice()].concat();
        let old = match written.insert(&item.key, value.len() as u64) {
            Some(size) => Some(size),
            None => entry.view.get(Family::Items, &key)?.map(|old| old.len() as u64),
        };
        if let Some(size) = old {
            (replaced, shrunk) = (replaced + 1, shrunk + size);
        }
        (added, grown) = (added + 1, grown + value.len() as u64);
        entry.writes.put(Family::Items, key, value);
    }
    let mut stored = stored;
    if let Some(d) = stored.description.as_mut() {
        d.item_count = (d.item_count + added).saturating_sub(replaced);
        d.table_size_bytes = (d.table_size_bytes + grown).saturating_sub(shrunk);
    }
    entry.save_table(stored);
    Ok(())
}
