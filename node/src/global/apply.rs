//! Global tables in the apply path: replicated writes decided by last writer wins, tombstones kept in
//! step with every committed write, the replication checkpoints (written in the same entry as the
//! changes they cover), replica lists and statuses, and tombstone purging behind the safe point.

use std::collections::BTreeMap;

use prost::Message;
use tern_proto::internal::{PurgeTombstones, PurgeTombstonesOutcome, ReplicaUpdateLock, StoredTable};
use tern_proto::v1::{
    self, ApplyReplicatedRequest, ApplyReplicatedResponse, LockReplicaUpdateRequest, LockReplicaUpdateResponse,
    SetReplicaStatusRequest, SetReplicasRequest, SetReplicasResponse, StreamSpecification,
};
use tern_proto::{ApiError, ErrorKind};

use super::{
    is_global, state, wins, ReplicaStatus, FUTURE_TOLERANCE_MICROS, GLOBAL_TABLE_VERSION, REPLICATION_VIEW_TYPE,
};
use crate::apply::entry::{stored_item, version_of, Applied, Entry, ItemChange, PlannedWrite};
use crate::keyspace::{self, Family, Seq};

/// Refuses a user's write to a table whose replica in this region is being deleted: its last
/// changes are being drained to the other regions.
pub fn check_writable(entry: &Entry, table: &str) -> Result<(), ApiError> {
    let deleting = entry
        .tables
        .get(table)
        .and_then(|t| t.description.as_ref())
        .is_some_and(|d| d.replicas.iter().any(|r| r.region_name == entry.region && ReplicaStatus::Deleting.of(r)));
    if deleting {
        return Err(ApiError::validation(format!(
            "Table {table}'s replica in region {} is being deleted: write to another region",
            entry.region
        )));
    }
    Ok(())
}

/// Keeps a global table's tombstones in step with a committed write: a delete leaves one (the key
/// attributes with the delete's version), even of an item this region does not hold, so that an older
/// write from another region cannot bring it back; a put removes it.
pub fn track_tombstone(entry: &mut Entry, write: &PlannedWrite, key_attributes: &BTreeMap<String, v1::AttributeValue>) {
    match &write.change.new {
        // Only an item that was absent can have a tombstone.
        Some(_) if write.change.old.is_none() => entry.writes.delete(Family::Tombstones, &write.key),
        Some(_) => {}
        None => {
            let tombstone = stored_item(key_attributes.clone(), &write.version);
            entry.writes.put(Family::Tombstones, &write.key, tombstone.encode_to_vec());
        }
    }
}

/// Decides a page of another region's changes, each only if its version wins, and saves the
/// checkpoint in the entry. Returns the writes to commit.
pub fn apply_replicated(
    entry: &mut Entry,
    r: ApplyReplicatedRequest,
) -> Applied<(ApplyReplicatedResponse, Vec<PlannedWrite>)> {
    // Each change writes at most one stream record, and an entry has room for Seq::PER_ENTRY.
    if r.changes.len() as u64 >= Seq::PER_ENTRY {
        return Err(ApiError::validation(format!(
            "A page of replicated changes holds at most {} changes",
            Seq::PER_ENTRY - 1
        ))
        .into());
    }
    let stored = entry.stored_table(&r.table_name)?;
    let replicas = stored.description.as_ref().map(|d| d.replicas.clone()).unwrap_or_default();
    if !replicas.iter().any(|replica| replica.region_name == r.source_region) {
        return Err(ApiError::validation(format!(
            "Table {} has no replica in region {}; its changes are not applied here",
            r.table_name, r.source_region
        ))
        .into());
    }
    let current = state::checkpoint(entry.view, stored.table_id, &r.source_region)?;
    if !r.copy && current.sequence_number != r.expected_sequence_number {
        return Err(ApiError::new(
            ErrorKind::ConditionalCheckFailedException,
            format!(
                "The replication checkpoint of {} from {} is at {:?}, not {:?}: read it again",
                r.table_name, r.source_region, current.sequence_number, r.expected_sequence_number
            ),
        )
        .into());
    }
    let schema = entry.table(&r.table_name)?;
    // Several changes of one item in a page: only the greatest version matters. Every change is
    // checked before any is applied, so a bad one leaves nothing half done.
    let mut latest: BTreeMap<Vec<u8>, v1::ReplicatedChange> = BTreeMap::new();
    for change in r.changes {
        let storage_key = schema.storage_key(&change.key)?;
        if let Some(image) = &change.new_image {
            if schema.storage_key(&image.attributes)? != storage_key {
                return Err(ApiError::validation("A replicated item's key does not match its change's key").into());
            }
        }
        let version = change.version.as_ref().ok_or_else(|| ApiError::validation("A change needs its version"))?;
        if latest.get(&storage_key).is_none_or(|kept| wins(version, kept.version.as_ref())) {
            latest.insert(storage_key, change);
        }
    }
    let mut outcome = ApplyReplicatedResponse::default();
    let mut writes = Vec::new();
    for (storage_key, change) in latest {
        let version = change.version.expect("checked above");
        if version.write_timestamp_micros > entry.timestamp + FUTURE_TOLERANCE_MICROS {
            metrics::counter!("tern_replication_future_timestamps_total").increment(1);
            tracing::warn!(
                table = %r.table_name, origin = %version.origin_region,
                ahead_ms = (version.write_timestamp_micros - entry.timestamp) / 1000,
                "applying a replicated write stamped far ahead of this region's clock"
            );
        }
        let old = entry.read_item(&storage_key)?;
        let stored_version = match &old {
            Some(item) => Some(version_of(item)),
            None => state::tombstone(entry.view, &storage_key)?.map(|t| version_of(&t)),
        };
        if !wins(&version, stored_version.as_ref()) {
            outcome.skipped += 1;
            continue;
        }
        outcome.applied += 1;
        let new = change.new_image.map(|image| stored_item(image.attributes, &version));
        if old.is_none() && new.is_none() {
            // Nothing to delete here (yet): remember the delete so an older write cannot land.
            let tombstone = stored_item(change.key, &version);
            entry.writes.put(Family::Tombstones, &storage_key, tombstone.encode_to_vec());
            continue;
        }
        writes.push(PlannedWrite {
            table: r.table_name.clone(),
            key: storage_key,
            change: ItemChange { old, new },
            version,
        });
    }
    let mut checkpoint = r.checkpoint.unwrap_or_default();
    checkpoint.source_region = r.source_region.clone();
    checkpoint.updated_at = entry.timestamp as f64 / 1e6;
    let key = keyspace::checkpoint_key(stored.table_id, &r.source_region);
    entry.writes.put(Family::Replication, key, checkpoint.encode_to_vec());
    metrics::counter!("tern_replication_changes_applied_total", "source" => r.source_region.clone())
        .increment(outcome.applied as u64);
    metrics::counter!("tern_replication_changes_skipped_total", "source" => r.source_region)
        .increment(outcome.skipped as u64);
    Ok((outcome, writes))
}

/// The stream specification a global table's stream must have.
fn replication_stream() -> StreamSpecification {
    StreamSpecification { stream_enabled: true, stream_view_type: REPLICATION_VIEW_TYPE.into(), retention_days: 0 }
}

/// Sets a table's replica list in this region, creating the table first when asked; a global
/// table's stream is turned on with new and old images.
pub fn set_replicas(entry: &mut Entry, r: SetReplicasRequest) -> Applied<SetReplicasResponse> {
    let global = r.replicas.len() > 1;
    match (entry.tables.get(&r.table_name), r.create) {
        (None, Some(mut create)) => {
            create.stream_specification = Some(replication_stream());
            crate::apply::tables::create_table(entry, create)?;
        }
        (None, None) => return Err(ApiError::table_not_found(&r.table_name).into()),
        (Some(existing), Some(_)) if !is_global(existing) => {
            return Err(ApiError::in_use(format!(
                "Table {} already exists in region {}: a replica can only be created where the table does not exist",
                r.table_name, entry.region
            ))
            .into());
        }
        (Some(_), _) => {}
    }
    let mut stored = entry.tables.get(&r.table_name).cloned().expect("created or found above");
    if global {
        if stored.stream_id == 0 {
            crate::stream::set_stream(entry, &mut stored, &replication_stream())?;
        } else {
            let view = stored
                .description
                .as_ref()
                .and_then(|d| d.stream_specification.as_ref())
                .map(|s| s.stream_view_type.clone())
                .unwrap_or_default();
            if view != REPLICATION_VIEW_TYPE {
                return Err(ApiError::validation(format!(
                    "A global table's stream must have StreamViewType {REPLICATION_VIEW_TYPE}; table {} has {view}: disable its stream first",
                    r.table_name
                ))
                .into());
            }
        }
    }
    let mut replicas = if global { r.replicas } else { Vec::new() };
    replicas.sort_by(|a, b| a.region_name.cmp(&b.region_name));
    let kept: Vec<String> = replicas.iter().map(|r| r.region_name.clone()).collect();
    for source in state::checkpoints(entry.view, stored.table_id)?.keys().filter(|s| !kept.contains(s)) {
        entry.writes.delete(Family::Replication, keyspace::checkpoint_key(stored.table_id, source));
    }
    if !global {
        let (start, end) = keyspace::table_range(stored.table_id);
        entry.writes.delete_range(Family::Tombstones, start, end);
    }
    let description = stored.description.as_mut().ok_or_else(|| ApiError::internal("table without description"))?;
    description.global_table_version = if global { GLOBAL_TABLE_VERSION.into() } else { String::new() };
    description.replicas = replicas;
    let ttl_wanted = r.time_to_live.filter(|wanted| stored.time_to_live.as_ref() != Some(wanted));
    entry.save_table(stored);
    if let Some(wanted) = ttl_wanted {
        let request =
            v1::UpdateTimeToLiveRequest { table_name: r.table_name.clone(), time_to_live_specification: Some(wanted) };
        // A replica takes the table's TTL; "already disabled" and the like change nothing.
        match crate::ttl::apply::update_time_to_live(entry, request) {
            Ok(_) | Err(crate::apply::entry::ApplyError::Refused(_)) => {}
            Err(storage) => return Err(storage),
        }
    }
    let description = entry.tables.get(&r.table_name).and_then(|t| t.description.clone());
    Ok(SetReplicasResponse { table_description: description })
}

/// Updates one replica's status (and copy progress) in this region's replica list.
pub fn set_replica_status(entry: &mut Entry, r: SetReplicaStatusRequest) -> Applied<SetReplicasResponse> {
    let mut stored = entry.stored_table(&r.table_name)?;
    let update = r.replica.ok_or_else(|| ApiError::validation("SetReplicaStatus needs a replica"))?;
    if let Some(description) = stored.description.as_mut() {
        if let Some(replica) = description.replicas.iter_mut().find(|x| x.region_name == update.region_name) {
            // CREATING (progress) -> ACTIVE -> DELETING, never back: a late report of a copy's
            // progress or end does not undo a later state.
            if ReplicaStatus::parse(&update.replica_status) >= ReplicaStatus::parse(&replica.replica_status) {
                *replica = update;
            }
        }
    }
    let description = stored.description.clone();
    entry.save_table(stored);
    Ok(SetReplicasResponse { table_description: description })
}

/// Drops the tombstones older than the table's safe point.
pub fn purge_tombstones(entry: &mut Entry, r: PurgeTombstones) -> Applied<PurgeTombstonesOutcome> {
    let stored: StoredTable = entry.stored_table(&r.table_name)?;
    // Behind every region's safe point: every region has applied every delete before it, so no copy
    // from any region can bring back an item such a tombstone deleted.
    let safe_point = state::safe_point(entry.view, &stored, entry.region)?.min(r.other_regions_safe_point_micros);
    let (mut purged, mut examined) = (0, 0);
    let mut next_start_after = Vec::new();
    let view = entry.view;
    for tombstone in state::tombstones_after(view, stored.table_id, &r.start_after) {
        let (key, tombstone) = tombstone?;
        if r.limit > 0 && examined == r.limit {
            break;
        }
        examined += 1;
        if tombstone.write_timestamp_micros < safe_point {
            entry.writes.delete(Family::Tombstones, &key);
            purged += 1;
        }
        next_start_after = key;
    }
    // Looked at fewer than the limit: it reached the table's last tombstone.
    if r.limit == 0 || examined < r.limit {
        next_start_after.clear();
    }
    metrics::counter!("tern_replication_tombstones_purged_total").increment(purged as u64);
    Ok(PurgeTombstonesOutcome { purged, safe_point_micros: safe_point, next_start_after })
}

/// A table's replica-update lock in this region (see `replicas.rs`): taken when it is free, lapsed or
/// the caller's own; released only by its holder. It lapses in log time, alike on every node.
pub fn lock_replica_update(entry: &mut Entry, r: LockReplicaUpdateRequest) -> Applied<LockReplicaUpdateResponse> {
    let mut stored = entry.stored_table(&r.table_name)?;
    let held = stored.replica_update_lock.as_ref().filter(|l| l.expires_at_micros > entry.timestamp);
    if let Some(lock) = held.filter(|l| l.token != r.token) {
        if r.release {
            return Ok(LockReplicaUpdateResponse {});
        }
        return Err(ApiError::in_use(format!(
            "Table {}: a replica update sent to region {} is in progress; retry when it has finished",
            r.table_name, lock.owner_region
        ))
        .into());
    }
    stored.replica_update_lock = (!r.release).then(|| ReplicaUpdateLock {
        owner_region: r.owner_region,
        token: r.token,
        expires_at_micros: entry.timestamp + r.lease_millis * 1000,
    });
    entry.save_table(stored);
    Ok(LockReplicaUpdateResponse {})
}
