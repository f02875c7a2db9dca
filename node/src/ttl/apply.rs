//! TTL in the apply path: the expiry index kept in step with every committed write, turning TTL on
//! or off, and the sweeper's deletes, each decided at apply time.

use tern_proto::internal::{ExpireItems, ExpireItemsOutcome, StoredTable};
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

/// Turns TTL on (indexing the table's items) or off (dropping the index).
pub fn update_time_to_live(entry: &mut Entry, r: v1::UpdateTimeToLiveRequest) -> Applied<v1::UpdateTimeToLiveResponse> {
    let mut stored = entry.stored_table(&r.table_name)?;
    let wanted =
        r.time_to_live_specification.ok_or_else(|| ApiError::validation("TimeToLiveSpecification is required"))?;
    super::check_change(stored.time_to_live.as_ref(), &wanted)?;
    drop_index(entry, stored.table_id);
    if wanted.enabled {
        let now = entry.now_secs();
        let (start, end) = keyspace::table_range(stored.table_id);
        for item in entry.view.scan(Family::Items, &start, Some(&end), Direction::Forward) {
            let (key, value) = item?;
            let item: tern_proto::internal::StoredItem = engine::decode("item", &value)?;
            if let Some(expiry) = super::expiry(&item.attributes, &wanted.attribute_name, now) {
                entry.writes.put(Family::TtlIndex, keyspace::ttl_key(stored.table_id, expiry, &key), []);
            }
        }
    }
    stored.time_to_live = Some(wanted.clone());
    entry.save_table(stored);
    Ok(v1::UpdateTimeToLiveResponse { time_to_live_specification: Some(wanted) })
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
