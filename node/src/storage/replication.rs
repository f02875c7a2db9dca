//! Global tables in the apply path: replicated writes decided by last writer wins on
//! `(write timestamp, origin region)`, tombstones for deleted items, the replication checkpoints
//! (written in the same entry as the changes they cover), replica lists, and tombstone purging
//! behind the safe point.

use std::collections::BTreeMap;

use prost::Message;
use rocksdb::{WriteBatch, DB};
use tern_proto::internal::{PurgeTombstones, PurgeTombstonesOutcome, StoredItem, StoredTable};
use tern_proto::v1::{
    self, ApplyReplicatedRequest, ApplyReplicatedResponse, Identity, ItemVersion, ReplicationCheckpoint,
    SetReplicaStatusRequest, SetReplicasRequest, SetReplicasResponse, StreamSpecification,
};
use tern_proto::{ApiError, ErrorKind};

use super::apply::{ItemChange, PlannedWrite, Tables};
use super::db::{cf, CF_REPLICATION, CF_TOMBSTONES};
use super::keys;

/// DynamoDB's version string of a global table.
pub const GLOBAL_TABLE_VERSION: &str = "2019.11.21";
/// The stream view type a global table's stream must have.
pub const REPLICATION_VIEW_TYPE: &str = "NEW_AND_OLD_IMAGES";
/// A replicated timestamp this far ahead of the local clock is applied, but counted and logged.
pub const FUTURE_TOLERANCE_MICROS: u64 = 60_000_000;

/// The identity replicated changes carry in stream records.
pub fn replication_identity(source_region: &str) -> Identity {
    Identity { r#type: "Service".into(), principal_id: format!("replication.tern/{source_region}") }
}

/// Whether `incoming` wins over `stored` under last writer wins: the greater timestamp, ties broken
/// by the greater origin region name, the same way in every region.
pub fn wins(incoming: &ItemVersion, stored: Option<&ItemVersion>) -> bool {
    match stored {
        None => true,
        Some(stored) => {
            (incoming.write_timestamp_micros, incoming.origin_region.as_str())
                > (stored.write_timestamp_micros, stored.origin_region.as_str())
        }
    }
}

/// The version an item or a tombstone carries.
pub fn version_of(stored: &StoredItem) -> ItemVersion {
    ItemVersion { write_timestamp_micros: stored.write_timestamp_micros, origin_region: stored.origin_region.clone() }
}

/// Whether a table is a global table (it has replicas in other regions).
pub fn is_global(table: &StoredTable) -> bool {
    table.description.as_ref().is_some_and(|d| !d.replicas.is_empty())
}

/// The key of a table's checkpoint for one source region.
pub fn checkpoint_key(table_id: u64, source_region: &str) -> Vec<u8> {
    [&table_id.to_be_bytes()[..], source_region.as_bytes()].concat()
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::internal(e.to_string())
}

/// A table's checkpoints, by source region.
pub fn checkpoints(db: &DB, table_id: u64) -> Result<BTreeMap<String, ReplicationCheckpoint>, ApiError> {
    let (start, end) = (keys::table_prefix(table_id), keys::table_end(table_id));
    let mode = rocksdb::IteratorMode::From(&start, rocksdb::Direction::Forward);
    let mut found = BTreeMap::new();
    for entry in db.iterator_cf(cf(db, CF_REPLICATION), mode) {
        let (key, value) = entry.map_err(internal)?;
        if key.as_ref() >= end.as_slice() {
            break;
        }
        let checkpoint = ReplicationCheckpoint::decode(value.as_ref()).map_err(internal)?;
        found.insert(checkpoint.source_region.clone(), checkpoint);
    }
    Ok(found)
}

/// The safe point of a table in `region`: every other replica's changes up to this time have been
/// applied here, so no write older than it can still arrive. 0 while any replica has none.
pub fn safe_point(db: &DB, table: &StoredTable, region: &str) -> Result<u64, ApiError> {
    let checkpoints = checkpoints(db, table.table_id)?;
    let sources = table.description.iter().flat_map(|d| &d.replicas).filter(|r| r.region_name != region);
    let mut point = u64::MAX;
    for source in sources {
        let watermark = checkpoints
            .get(&source.region_name)
            .filter(|c| c.phase == "TAILING")
            .map_or(0, |c| c.source_watermark_micros);
        point = point.min(watermark);
    }
    Ok(if point == u64::MAX { 0 } else { point })
}

/// The number of tombstones a table holds.
pub fn tombstone_count(db: &DB, table_id: u64) -> u64 {
    let (start, end) = (keys::table_prefix(table_id), keys::table_end(table_id));
    let mode = rocksdb::IteratorMode::From(&start, rocksdb::Direction::Forward);
    db.iterator_cf(cf(db, CF_TOMBSTONES), mode).map_while(Result::ok).take_while(|(k, _)| k.as_ref() < &end[..]).count()
        as u64
}

impl Tables<'_> {
    /// Refuses a user's write to a table whose replica in this region is being deleted: its last
    /// changes are being drained to the other regions.
    pub fn check_writable(&self, table: &str) -> Result<(), ApiError> {
        let deleting =
            self.tables.get(table).and_then(|t| t.description.as_ref()).is_some_and(|d| {
                d.replicas.iter().any(|r| r.region_name == self.region && r.replica_status == "DELETING")
            });
        if deleting {
            return Err(ApiError::validation(format!(
                "Table {table}'s replica in region {} is being deleted: write to another region",
                self.region
            )));
        }
        Ok(())
    }

    pub fn read_tombstone(&self, key: &[u8]) -> Result<Option<StoredItem>, ApiError> {
        let bytes = self.db.get_cf(cf(self.db, CF_TOMBSTONES), key).map_err(internal)?;
        bytes.map(|b| StoredItem::decode(b.as_slice()).map_err(internal)).transpose()
    }

    /// Keeps a global table's tombstones in step with a committed write: a delete leaves one, a put
    /// removes it.
    pub(super) fn track_tombstone(&self, write: &PlannedWrite, key_attributes: StoredItem, batch: &mut WriteBatch) {
        match &write.change.new {
            Some(_) => batch.delete_cf(cf(self.db, CF_TOMBSTONES), &write.key),
            None => batch.put_cf(cf(self.db, CF_TOMBSTONES), &write.key, key_attributes.encode_to_vec()),
        }
    }

    /// Applies a page of another region's changes, each only if its version wins, and saves the
    /// checkpoint in the same batch.
    pub(super) fn apply_replicated(
        &mut self,
        r: ApplyReplicatedRequest,
        batch: &mut WriteBatch,
    ) -> Result<ApplyReplicatedResponse, ApiError> {
        let stored = self.stored_table(&r.table_name)?;
        let replicas = stored.description.as_ref().map(|d| d.replicas.clone()).unwrap_or_default();
        if !replicas.iter().any(|replica| replica.region_name == r.source_region) {
            return Err(ApiError::validation(format!(
                "Table {} has no replica in region {}; its changes are not applied here",
                r.table_name, r.source_region
            )));
        }
        let key = checkpoint_key(stored.table_id, &r.source_region);
        let current = match self.db.get_cf(cf(self.db, CF_REPLICATION), &key).map_err(internal)? {
            Some(bytes) => ReplicationCheckpoint::decode(bytes.as_slice()).map_err(internal)?,
            None => ReplicationCheckpoint::default(),
        };
        if !r.copy && current.sequence_number != r.expected_sequence_number {
            return Err(ApiError::new(
                ErrorKind::ConditionalCheckFailedException,
                format!(
                    "The replication checkpoint of {} from {} is at {:?}, not {:?}: read it again",
                    r.table_name, r.source_region, current.sequence_number, r.expected_sequence_number
                ),
            ));
        }
        let schema = self.table(&r.table_name)?;
        // Several changes of one item in a page: only the greatest version matters. Every change is
        // checked before any is applied, so a bad one leaves nothing half done.
        let mut latest: BTreeMap<Vec<u8>, v1::ReplicatedChange> = BTreeMap::new();
        for change in r.changes {
            let storage_key = schema.storage_key(&change.key)?;
            if let Some(image) = &change.new_image {
                if schema.storage_key(&image.attributes)? != storage_key {
                    return Err(ApiError::validation("A replicated item's key does not match its change's key"));
                }
            }
            let version = change.version.as_ref().ok_or_else(|| ApiError::validation("A change needs its version"))?;
            if latest.get(&storage_key).is_none_or(|kept| wins(version, kept.version.as_ref())) {
                latest.insert(storage_key, change);
            }
        }
        let mut outcome = ApplyReplicatedResponse::default();
        for (storage_key, change) in latest {
            let version = change.version.expect("checked above");
            if version.write_timestamp_micros > self.timestamp + FUTURE_TOLERANCE_MICROS {
                metrics::counter!("tern_replication_future_timestamps_total").increment(1);
                tracing::warn!(
                    table = %r.table_name, origin = %version.origin_region,
                    ahead_ms = (version.write_timestamp_micros - self.timestamp) / 1000,
                    "applying a replicated write stamped far ahead of this region's clock"
                );
            }
            let old = self.read_item(&storage_key)?;
            let stored_version = match &old {
                Some(item) => Some(version_of(item)),
                None => self.read_tombstone(&storage_key)?.map(|t| version_of(&t)),
            };
            if !wins(&version, stored_version.as_ref()) {
                outcome.skipped += 1;
                continue;
            }
            outcome.applied += 1;
            let new = change.new_image.map(|image| StoredItem {
                attributes: image.attributes,
                write_timestamp_micros: version.write_timestamp_micros,
                origin_region: version.origin_region.clone(),
            });
            if old.is_none() && new.is_none() {
                // Nothing to delete here (yet): remember the delete so an older write cannot land.
                let tombstone = StoredItem {
                    attributes: change.key,
                    write_timestamp_micros: version.write_timestamp_micros,
                    origin_region: version.origin_region.clone(),
                };
                batch.put_cf(cf(self.db, CF_TOMBSTONES), &storage_key, tombstone.encode_to_vec());
                continue;
            }
            let write = PlannedWrite {
                table: r.table_name.clone(),
                key: storage_key,
                change: ItemChange { old, new },
                version,
            };
            self.commit(&write, batch);
        }
        let mut checkpoint = r.checkpoint.unwrap_or_default();
        checkpoint.source_region = r.source_region.clone();
        checkpoint.updated_at = self.timestamp as f64 / 1e6;
        batch.put_cf(cf(self.db, CF_REPLICATION), key, checkpoint.encode_to_vec());
        metrics::counter!("tern_replication_changes_applied_total", "source" => r.source_region.clone())
            .increment(outcome.applied as u64);
        metrics::counter!("tern_replication_changes_skipped_total", "source" => r.source_region)
            .increment(outcome.skipped as u64);
        Ok(outcome)
    }

    /// Sets a table's replica list in this region, creating the table first when asked; a global
    /// table's stream is turned on with new and old images.
    pub(super) fn set_replicas(
        &mut self,
        r: SetReplicasRequest,
        batch: &mut WriteBatch,
    ) -> Result<SetReplicasResponse, ApiError> {
        let global = r.replicas.len() > 1;
        match (self.tables.get(&r.table_name), r.create) {
            (None, Some(mut create)) => {
                create.stream_specification = Some(StreamSpecification {
                    stream_enabled: true,
                    stream_view_type: REPLICATION_VIEW_TYPE.into(),
                    retention_days: 0,
                });
                self.create_table(create, self.index, self.timestamp, batch)?;
            }
            (None, None) => return Err(ApiError::table_not_found(&r.table_name)),
            (Some(existing), Some(_)) if !is_global(existing) => {
                return Err(ApiError::in_use(format!(
                    "Table {} already exists in region {}: a replica can only be created where the table does not exist",
                    r.table_name, self.region
                )));
            }
            (Some(_), _) => {}
        }
        let mut stored = self.tables.get(&r.table_name).cloned().expect("created or found above");
        if global {
            if stored.stream_id == 0 {
                let spec = StreamSpecification {
                    stream_enabled: true,
                    stream_view_type: REPLICATION_VIEW_TYPE.into(),
                    retention_days: 0,
                };
                self.set_stream(&mut stored, &spec, self.timestamp, batch)?;
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
                    )));
                }
            }
        }
        let mut replicas = if global { r.replicas } else { Vec::new() };
        replicas.sort_by(|a, b| a.region_name.cmp(&b.region_name));
        let kept: Vec<String> = replicas.iter().map(|r| r.region_name.clone()).collect();
        for source in checkpoints(self.db, stored.table_id)?.keys().filter(|s| !kept.contains(s)) {
            batch.delete_cf(cf(self.db, CF_REPLICATION), checkpoint_key(stored.table_id, source));
        }
        if !global {
            let (start, end) = (keys::table_prefix(stored.table_id), keys::table_end(stored.table_id));
            batch.delete_range_cf(cf(self.db, CF_TOMBSTONES), start, end);
        }
        let description = stored.description.as_mut().ok_or_else(|| internal("table without description"))?;
        description.global_table_version = if global { GLOBAL_TABLE_VERSION.into() } else { String::new() };
        description.replicas = replicas;
        let ttl_wanted = r.time_to_live.filter(|wanted| stored.time_to_live.as_ref() != Some(wanted));
        self.save_table(stored, batch);
        if let Some(wanted) = ttl_wanted {
            let request = v1::UpdateTimeToLiveRequest {
                table_name: r.table_name.clone(),
                time_to_live_specification: Some(wanted),
            };
            // A replica takes the table's TTL; "already disabled" and the like change nothing.
            let _ = self.update_time_to_live(request, batch);
        }
        let description = self.tables.get(&r.table_name).and_then(|t| t.description.clone());
        Ok(SetReplicasResponse { table_description: description })
    }

    /// Updates one replica's status (and copy progress) in this region's replica list.
    pub(super) fn set_replica_status(
        &mut self,
        r: SetReplicaStatusRequest,
        batch: &mut WriteBatch,
    ) -> Result<SetReplicasResponse, ApiError> {
        let mut stored = self.stored_table(&r.table_name)?;
        let update = r.replica.ok_or_else(|| ApiError::validation("SetReplicaStatus needs a replica"))?;
        if let Some(description) = stored.description.as_mut() {
            if let Some(replica) = description.replicas.iter_mut().find(|x| x.region_name == update.region_name) {
                // CREATING (progress) -> ACTIVE -> DELETING, never back: a late report of a copy's
                // progress or end does not undo a later state.
                let rank = |status: &str| match status {
                    "CREATING" => 0,
                    "ACTIVE" => 1,
                    _ => 2,
                };
                if rank(&update.replica_status) >= rank(&replica.replica_status) {
                    *replica = update;
                }
            }
        }
        let description = stored.description.clone();
        self.save_table(stored, batch);
        Ok(SetReplicasResponse { table_description: description })
    }

    /// Drops the tombstones older than the table's safe point.
    pub(super) fn purge_tombstones(
        &mut self,
        r: PurgeTombstones,
        batch: &mut WriteBatch,
    ) -> Result<PurgeTombstonesOutcome, ApiError> {
        let stored = self.stored_table(&r.table_name)?;
        // Behind every region's safe point: every region has applied every delete before it, so no copy
        // from any region can bring back an item such a tombstone deleted.
        let safe_point = safe_point(self.db, &stored, self.region)?.min(r.other_regions_safe_point_micros);
        let (start, end) = (keys::table_prefix(stored.table_id), keys::table_end(stored.table_id));
        let mode = rocksdb::IteratorMode::From(&start, rocksdb::Direction::Forward);
        let mut purged = 0;
        for entry in self.db.iterator_cf(cf(self.db, CF_TOMBSTONES), mode) {
            let (key, value) = entry.map_err(internal)?;
            if key.as_ref() >= end.as_slice() {
                break;
            }
            let tombstone = StoredItem::decode(value.as_ref()).map_err(internal)?;
            if tombstone.write_timestamp_micros < safe_point {
                batch.delete_cf(cf(self.db, CF_TOMBSTONES), key);
                purged += 1;
            }
        }
        metrics::counter!("tern_replication_tombstones_purged_total").increment(purged as u64);
        Ok(PurgeTombstonesOutcome { purged, safe_point_micros: safe_point })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(ts: u64, origin: &str) -> ItemVersion {
        ItemVersion { write_timestamp_micros: ts, origin_region: origin.into() }
    }

    #[test]
    fn the_greater_timestamp_wins_and_ties_break_on_the_origin() {
        assert!(wins(&version(2, "a"), Some(&version(1, "z"))));
        assert!(!wins(&version(1, "z"), Some(&version(2, "a"))));
        assert!(wins(&version(5, "eu-west"), Some(&version(5, "ap-south"))));
        assert!(!wins(&version(5, "ap-south"), Some(&version(5, "eu-west"))));
        assert!(!wins(&version(5, "eu-west"), Some(&version(5, "eu-west"))), "the same version again changes nothing");
        assert!(wins(&version(0, "a"), None));
    }

    /// Applies replicated writes, one entry each, to a real RocksDB; returns the live items as
    /// key -> (value, timestamp, origin).
    fn apply_all(changes: &[(u8, u64, u8, Option<u8>)]) -> BTreeMap<String, (String, u64, String)> {
        use tern_proto::internal::{command, Command};
        use tern_proto::v1::attribute_value::Value;
        let dir = tempfile::tempdir().unwrap();
        let db = super::super::db::open(&dir.path().join("db")).unwrap();
        let mut tables = BTreeMap::new();
        let s = |text: String| v1::AttributeValue { value: Some(Value::S(text)) };
        let regions = ["a", "b", "c"];
        let mut run = |index: u64, op: command::Op| {
            let mut batch = WriteBatch::default();
            let mut state = Tables {
                db: &db,
                tables: &mut tables,
                region: "here",
                index,
                timestamp: 1_000_000 + index,
                records: 0,
                identity: None,
            };
            let command = Command { op: Some(op), ..Default::default() };
            let outcome = state.execute(command, index, 1_000_000 + index, &mut batch);
            db.write(batch).unwrap();
            assert!(!matches!(outcome, tern_proto::internal::command_outcome::Outcome::Error(_)), "{outcome:?}");
        };
        let create = v1::CreateTableRequest {
            table_name: "things".into(),
            attribute_definitions: vec![v1::AttributeDefinition {
                attribute_name: "pk".into(),
                attribute_type: "S".into(),
            }],
            key_schema: vec![v1::KeySchemaElement { attribute_name: "pk".into(), key_type: "HASH".into() }],
            ..Default::default()
        };
        run(1, command::Op::CreateTable(create));
        let replicas = ["here", "a", "b", "c"]
            .iter()
            .map(|r| v1::ReplicaDescription {
                region_name: r.to_string(),
                replica_status: "ACTIVE".into(),
                ..Default::default()
            })
            .collect();
        run(
            2,
            command::Op::SetReplicas(SetReplicasRequest {
                table_name: "things".into(),
                replicas,
                ..Default::default()
            }),
        );
        for (n, (key, timestamp, origin, value)) in changes.iter().enumerate() {
            let key_attributes = BTreeMap::from([("pk".to_string(), s(format!("k{key}")))]);
            let new_image = value.map(|v| {
                let mut attributes = key_attributes.clone();
                attributes.insert("val".into(), s(format!("v{v}")));
                v1::Item { attributes }
            });
            let origin = regions[*origin as usize].to_string();
            let change = v1::ReplicatedChange {
                key: key_attributes,
                new_image,
                version: Some(ItemVersion { write_timestamp_micros: *timestamp, origin_region: origin.clone() }),
            };
            let request = ApplyReplicatedRequest {
                table_name: "things".into(),
                source_region: origin,
                changes: vec![change],
                copy: true,
                ..Default::default()
            };
            run(3 + n as u64, command::Op::ApplyReplicated(request));
        }
        let mut live = BTreeMap::new();
        for entry in db.iterator_cf(cf(&db, super::super::db::CF_ITEMS), rocksdb::IteratorMode::Start) {
            let (_, value) = entry.unwrap();
            let item = StoredItem::decode(value.as_ref()).unwrap();
            let text = |name: &str| match item.attributes.get(name).and_then(|v| v.value.clone()) {
                Some(Value::S(text)) => text,
                other => panic!("unexpected {other:?}"),
            };
            live.insert(text("pk"), (text("val"), item.write_timestamp_micros, item.origin_region.clone()));
        }
        live
    }

    /// What last writer wins must give: per key, the change with the greatest version, when a put.
    fn model(changes: &[(u8, u64, u8, Option<u8>)]) -> BTreeMap<String, (String, u64, String)> {
        let regions = ["a", "b", "c"];
        let mut winners: BTreeMap<u8, &(u8, u64, u8, Option<u8>)> = BTreeMap::new();
        for change in changes {
            let version = |c: &(u8, u64, u8, Option<u8>)| (c.1, regions[c.2 as usize]);
            if winners.get(&change.0).is_none_or(|w| version(change) > version(w)) {
                winners.insert(change.0, change);
            }
        }
        winners
            .into_iter()
            .filter_map(|(key, (_, ts, origin, value))| {
                value.map(|v| (format!("k{key}"), (format!("v{v}"), *ts, regions[*origin as usize].to_string())))
            })
            .collect()
    }

    fn unique_versions(mut changes: Vec<(u8, u64, u8, Option<u8>)>) -> Vec<(u8, u64, u8, Option<u8>)> {
        let mut seen = std::collections::HashSet::new();
        changes.retain(|c| seen.insert((c.1, c.2)));
        changes
    }

    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(40))]
        /// Replicated writes (puts and deletes, several regions, ties on the timestamp) applied in any
        /// order give the same table, and it is the last-writer-wins one.
        #[test]
        fn any_order_of_replicated_writes_gives_the_same_table(
            (changes, shuffled) in proptest::collection::vec(
                (0u8..4, 1u64..12, 0u8..3, proptest::option::of(0u8..5)), 1..14,
            )
            .prop_map(unique_versions)
            .prop_flat_map(|v| (Just(v.clone()), Just(v).prop_shuffle()))
        ) {
            let in_order = apply_all(&changes);
            prop_assert_eq!(&in_order, &apply_all(&shuffled));
            prop_assert_eq!(&in_order, &model(&changes));
        }
    }
}
