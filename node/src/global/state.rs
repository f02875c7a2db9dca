//! A global table's replication state in a region: checkpoints (one per source region), the safe
//! point behind which tombstones may go, and the tombstones themselves.

use std::collections::BTreeMap;

use prost::Message;
use tern_proto::internal::{StoredItem, StoredTable};
use tern_proto::v1::{Item, ReadTableVersionsResponse, ReplicationCheckpoint, VersionedItem};
use tern_proto::ApiError;

use super::Phase;
use crate::apply::entry::{version_of, Entry};
use crate::engine::{self, Direction, ReadView, StorageError};
use crate::keyspace::{self, Family, Seq};
use crate::reader::MAX_PAGE_BYTES;
use crate::schema::TableSchema;
use crate::stream;

/// A table's checkpoints, by source region.
pub fn checkpoints(
    view: &dyn ReadView,
    table_id: u64,
) -> Result<BTreeMap<String, ReplicationCheckpoint>, StorageError> {
    let (start, end) = keyspace::table_range(table_id);
    let mut found = BTreeMap::new();
    for entry in view.scan(Family::Replication, &start, Some(&end), Direction::Forward) {
        let checkpoint: ReplicationCheckpoint = engine::decode("checkpoint", &entry?.1)?;
        found.insert(checkpoint.source_region.clone(), checkpoint);
    }
    Ok(found)
}

/// A table's checkpoint for one source region (the default when there is none yet).
pub fn checkpoint(view: &dyn ReadView, table_id: u64, source: &str) -> Result<ReplicationCheckpoint, StorageError> {
    let bytes = view.get(Family::Replication, &keyspace::checkpoint_key(table_id, source))?;
    Ok(bytes.map(|b| engine::decode("checkpoint", &b)).transpose()?.unwrap_or_default())
}

/// The safe point of a table in `region`: every other replica's changes up to this time have been
/// applied here, so no write older than it can still arrive. 0 while any replica has none.
pub fn safe_point(view: &dyn ReadView, table: &StoredTable, region: &str) -> Result<u64, StorageError> {
    let checkpoints = checkpoints(view, table.table_id)?;
    let sources = table.description.iter().flat_map(|d| &d.replicas).filter(|r| r.region_name != region);
    let mut point = u64::MAX;
    for source in sources {
        let watermark = checkpoints
            .get(&source.region_name)
            .filter(|c| Phase::Tailing.of(c))
            .map_or(0, |c| c.source_watermark_micros);
        point = point.min(watermark);
    }
    Ok(if point == u64::MAX { 0 } else { point })
}

/// The tombstone under a storage key.
pub fn tombstone(view: &dyn ReadView, key: &[u8]) -> Result<Option<StoredItem>, StorageError> {
    view.get(Family::Tombstones, key)?.map(|b| engine::decode("tombstone", &b)).transpose()
}

/// A table's tombstones with their storage keys.
pub fn tombstones<'a>(
    view: &'a dyn ReadView,
    table_id: u64,
) -> impl Iterator<Item = Result<(Vec<u8>, StoredItem), StorageError>> + 'a {
    tombstones_after(view, table_id, &[])
}

/// A table's tombstones after the storage key `after` (all of them when it is empty), in key order.
pub fn tombstones_after<'a>(
    view: &'a dyn ReadView,
    table_id: u64,
    after: &[u8],
) -> impl Iterator<Item = Result<(Vec<u8>, StoredItem), StorageError>> + 'a {
    let (start, end) = keyspace::table_range(table_id);
    // A cursor from another table (this name's table was deleted and created again) starts over.
    let start = if after.is_empty() || !after.starts_with(&start) { start } else { keyspace::key_after(after) };
    view.scan(Family::Tombstones, &start, Some(&end), Direction::Forward)
        .map(|entry| entry.and_then(|(key, value)| Ok((key, engine::decode("tombstone", &value)?))))
}

/// Tombstones counted at most, for a table's replication state.
pub const TOMBSTONES_COUNTED: usize = 10_000;

/// How many tombstones a table holds, counted up to `cap` (a scan of a bounded length).
pub fn tombstone_count(view: &dyn ReadView, table_id: u64, cap: usize) -> u64 {
    let (start, end) = keyspace::table_range(table_id);
    view.scan(Family::Tombstones, &start, Some(&end), Direction::Forward).map_while(Result::ok).take(cap).count() as u64
}

/// Drops a table's tombstones and checkpoints (the table is deleted, or no longer global).
pub fn drop_state(entry: &mut Entry, table_id: u64) {
    let (start, end) = keyspace::table_range(table_id);
    entry.writes.delete_range(Family::Tombstones, &start, &end);
    entry.writes.delete_range(Family::Replication, &start, &end);
}

/// A page of a table's items and tombstones with their versions, in storage-key order, all read from
/// one consistent view (`view`) together with the stream position they stand at and the clock: a copy
/// that applies the page and then follows the stream from that position misses nothing.
pub fn versions_page(
    view: &dyn ReadView,
    schema: &TableSchema,
    stored: &StoredTable,
    start_after: &[u8],
    limit: usize,
) -> Result<ReadTableVersionsResponse, ApiError> {
    let (table_start, table_end) = keyspace::table_range(stored.table_id);
    let lower = if start_after.is_empty() { table_start } else { keyspace::key_after(start_after) };
    let read_family = |family: Family, what: &'static str| -> Result<Vec<(Vec<u8>, StoredItem)>, StorageError> {
        view.scan(family, &lower, Some(&table_end), Direction::Forward)
            .take(limit + 1)
            .map(|entry| entry.and_then(|(key, value)| Ok((key, engine::decode(what, &value)?))))
            .collect()
    };
    let (items, tombstones) = (read_family(Family::Items, "item")?, read_family(Family::Tombstones, "tombstone")?);
    let mut merged: Vec<(Vec<u8>, StoredItem, bool)> = items
        .into_iter()
        .map(|(k, i)| (k, i, true))
        .chain(tombstones.into_iter().map(|(k, t)| (k, t, false)))
        .collect();
    merged.sort_by(|a, b| a.0.cmp(&b.0));
    // At most `limit` entries and about 1 MB, so a page always fits one message and one log entry.
    let mut bytes = 0;
    let fitting = merged
        .iter()
        .take(limit)
        .take_while(|(_, item, _)| {
            let fits = bytes == 0 || bytes + item.encoded_len() <= MAX_PAGE_BYTES;
            bytes += item.encoded_len();
            fits
        })
        .count();
    let more = merged.len() > fitting;
    merged.truncate(fitting);
    let last_evaluated_key = if more { merged.last().map(|(k, _, _)| k.clone()).unwrap_or_default() } else { vec![] };
    let items = merged
        .into_iter()
        .map(|(_, stored_item, live)| VersionedItem {
            key: schema.key_of(&stored_item.attributes),
            version: Some(version_of(&stored_item)),
            item: live.then_some(Item { attributes: stored_item.attributes }),
        })
        .collect();
    let clock = crate::apply::entry::clock(view)?;
    let mut stream_arn = String::new();
    let mut stream_sequence_number = String::new();
    let mut last_record_sequence_number = String::new();
    if stored.stream_id != 0 {
        let last = stream::last_record(view, stored.stream_id)?;
        // With no record left (none yet, or all trimmed), the position is the last one the applied log
        // could have written: following from it still notices a later trim.
        let applied = crate::raft::meta::applied_index(view)?;
        stream_sequence_number = last.unwrap_or(Seq::last_of(applied)).text();
        last_record_sequence_number = last.map(Seq::text).unwrap_or_default();
        stream_arn = stored.description.as_ref().map(|d| d.latest_stream_arn.clone()).unwrap_or_default();
    }
    Ok(ReadTableVersionsResponse {
        items,
        last_evaluated_key,
        stream_arn,
        stream_sequence_number,
        watermark_micros: clock,
        item_count: stored.description.as_ref().map_or(0, |d| d.item_count),
        last_record_sequence_number,
    })
}
