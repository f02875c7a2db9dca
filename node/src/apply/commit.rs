//! Committing a planned write: the item change itself, then each concern's apply hook (the stream
//! record, the global table's tombstone, the TTL index), and the table's item count and size.

use prost::Message;
use tern_proto::internal::StoredItem;

use super::entry::{Applied, Entry, PlannedWrite};
use crate::keyspace::Family;
use crate::schema::TableSchema;
use crate::{global, stream, ttl};

/// Adds a planned write to the entry's writes, with what it implies for the table's stream,
/// tombstones, TTL index and statistics. A delete of an item that is not there changes nothing.
pub fn commit(entry: &mut Entry, write: &PlannedWrite) -> Applied<()> {
    let Some(any) = write.change.new.as_ref().or(write.change.old.as_ref()) else { return Ok(()) };
    match &write.change.new {
        Some(item) => entry.writes.put(Family::Items, &write.key, item.encode_to_vec()),
        None => entry.writes.delete(Family::Items, &write.key),
    }
    let Some(mut stored) = entry.tables.get(&write.table).cloned() else { return Ok(()) };
    let global = global::is_global(&stored);
    if global || stored.stream_id != 0 {
        match TableSchema::of(&stored) {
            Ok(schema) => {
                if global {
                    global::apply::track_tombstone(entry, &schema, write, any);
                }
                if stored.stream_id != 0 {
                    stream::record::record_change(entry, &stored, &schema, write, global)?;
                }
            }
            Err(error) => tracing::error!(table = %write.table, %error, "a table without a usable schema"),
        }
    }
    ttl::apply::index_change(entry, &stored, write);
    let size = |item: &Option<StoredItem>| item.as_ref().map_or(0, |i| i.encoded_len() as u64);
    if let Some(d) = stored.description.as_mut() {
        d.item_count = d.item_count + write.change.new.is_some() as u64 - write.change.old.is_some() as u64;
        d.table_size_bytes = (d.table_size_bytes + size(&write.change.new)).saturating_sub(size(&write.change.old));
    }
    entry.save_table(stored);
    Ok(())
}
