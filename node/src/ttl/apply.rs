//! TTL in the apply path: the expiry index kept in step with every committed write, turning TTL on
//! or off, and the sweeper's deletes, each decided at apply time.

use tern_proto::internal::{ExpireItems, ExpireItemsOutcome, IndexExpiries, IndexExpiriesOutcome, StoredTable};
use tern_proto::v1::{self, ItemVersion};
use tern_proto::ApiError;

use crate::apply::entry::{Applied, Entry, ItemChange, PlannedWrite};
use crate::engine::{self, Direction};
use crate::keyspace::{self, Family};

/// Keeps the expiry index in step with a committed write.
pub fn index_change(entry: &mut Entry, stored: &StoredTable, write: &PlannedWrite) {
    let Some(attribute) = super::attribute(stored) else { return };
    let now = entry.now_secs();
    if let Some(expiry) = write.change.old.as_ref().and_then(|o| super::expiry(&o.attributes, attribute, now)) {
        entry.writes.delete(Family::TtlIndex, keyspace::ttl_key(stored.table_id, expiry, &write.key));
    }
    if let Some(expiry) = write.change.new.as_ref().and_then(|n| super::expiry(&n.attributes, attribute, now)) {
        entry.writes.put(Family::TtlIndex, keyspace::ttl_key(stored.table_id, expiry, &write.key), []);
    }
}

/// Drops a table's expiry index.
pub fn drop_index(entry: &mut Entry, table_id: u64) {
    let (start, end) = keyspace::table_range(table_id);
    entry.writes.delete_range(Family::TtlIndex, start, end);
}

/// Turns TTL on or off. Off drops the index; on indexes the table's items a batch per entry, the first
/// batch in this one (a table of fewer items is ENABLED at once), the rest in the sweeper's
/// `IndexExpiries` entries (ENABLING meanwhile): no entry scans a whole table.
pub fn update_time_to_live(entry: &mut Entry, r: v1::UpdateTimeToLiveRequest) -> Applied<v1::UpdateTimeToLiveResponse> {
    let mut stored = entry.stored_table(&r.table_name)?;
    let wanted =
        r.time_to_live_specification.ok_or_else(|| ApiError::validation("TimeToLiveSpecification is required"))?;
    super::check_change(stored.time_to_live.as_ref(), &wanted)?;
    // The same attribute, still on (HideExpiredItems changed): the index stands as it is.
    if stored
        .time_to_live
        .as_ref()
        .is_some_and(|t| t.enabled && wanted.enabled && t.attribute_name == wanted.attribute_name)
    {
        stored.time_to_live = Some(wanted.clone());
        entry.save_table(stored);
        return Ok(v1::UpdateTimeToLiveResponse { time_to_live_specification: Some(wanted) });
    }
    drop_index(entry, stored.table_id);
    stored.time_to_live = Some(wanted.clone());
    stored.ttl_indexing = wanted.enabled;
    stored.ttl_index_cursor.clear();
    if wanted.enabled {
        index_batch(entry, &mut stored, super::INDEX_BATCH)?;
    }
    entry.save_table(stored);
    Ok(v1::UpdateTimeToLiveResponse { time_to_live_specification: Some(wanted) })
}

/// The sweeper's next batch of a table's indexing.
pub fn index_expiries(entry: &mut Entry, r: IndexExpiries) -> Applied<IndexExpiriesOutcome> {
    let mut stored = entry.stored_table(&r.table_name)?;
    if !stored.ttl_indexing {
        return Ok(IndexExpiriesOutcome { items: 0, done: true });
    }
    let items = index_batch(entry, &mut stored, r.limit.max(1))?;
    let done = !stored.ttl_indexing;
    entry.save_table(stored);
    Ok(IndexExpiriesOutcome { items, done })
}

/// Indexes the expiries of up to `limit` items after the table's cursor and moves the cursor on; the
/// last batch ends the indexing. Items written meanwhile are indexed by their writes.
fn index_batch(
    entry: &mut Entry,
    stored: &mut StoredTable,
    limit: u32,
) -> Result<u32, crate::apply::entry::ApplyError> {
    let Some(attribute) = super::attribute(stored).map(str::to_string) else {
        stored.ttl_indexing = false;
        return Ok(0);
    };
    let now = entry.now_secs();
    let (start, end) = keyspace::table_range(stored.table_id);
    let start = if stored.ttl_index_cursor.is_empty() { start } else { keyspace::key_after(&stored.ttl_index_cursor) };
    let mut items = 0;
    for item in entry.view.scan(Family::Items, &start, Some(&end), Direction::Forward) {
        if items == limit {
            return Ok(items);
        }
        let (key, value) = item?;
        let item: tern_proto::internal::StoredItem = engine::decode("item", &value)?;
        if let Some(expiry) = super::expiry(&item.attributes, &attribute, now) {
            entry.writes.put(Family::TtlIndex, keyspace::ttl_key(stored.table_id, expiry, &key), []);
        }
        stored.ttl_index_cursor = key;
        items += 1;
    }
    stored.ttl_indexing = false;
    stored.ttl_index_cursor.clear();
    Ok(items)
}

/// The sweeper's deletes: each item goes only if it is still expired now, at apply time. Returns the
/// deletes to commit.
pub fn expire_items(
    entry: &mut Entry,
    r: ExpireItems,
    version: &ItemVersion,
) -> Applied<(ExpireItemsOutcome, Vec<PlannedWrite>)> {
    let stored = entry.stored_table(&r.table_name)?;
    let Some(attribute) = super::attribute(&stored).map(str::to_string) else {
        return Ok((ExpireItemsOutcome { deleted: 0, kept: r.index_keys.len() as u32 }, Vec::new()));
    };
    let now = entry.now_secs();
    let mut outcome = ExpireItemsOutcome::default();
    let mut deletes = Vec::new();
    for index_key in r.index_keys.iter().take(super::MAX_EXPIRIES_PER_ENTRY) {
        let Some((indexed_expiry, storage_key)) = keyspace::parse_ttl_key(index_key) else { continue };
        let old = entry.read_item(storage_key)?;
        let expiry = old.as_ref().and_then(|o| super::expiry(&o.attributes, &attribute, now));
        match expiry {
            Some(expiry) if expiry <= now => {
                deletes.push(PlannedWrite {
                    table: r.table_name.clone(),
                    key: storage_key.to_vec(),
                    change: ItemChange { old, new: None },
                    version: version.clone(),
                });
                outcome.deleted += 1;
                metrics::counter!("tern_ttl_items_deleted_total").increment(1);
                metrics::histogram!("tern_ttl_deletion_delay_seconds")
                    .record(entry.timestamp.saturating_sub(expiry * 1_000_000) as f64 / 1e6);
            }
            _ => {
                // Extended, removed or no longer a valid expiry: the item stays; drop a stale entry.
                if expiry != Some(indexed_expiry) {
                    entry.writes.delete(Family::TtlIndex, index_key);
                }
                outcome.kept += 1;
            }
        }
    }
    Ok((outcome, deletes))
}
