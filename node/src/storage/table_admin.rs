//! Table-level commands at apply time: creating, updating and deleting tables, their streams, their
//! TTL (and the sweeper's conditional deletes), and named consumers' positions.

use prost::Message;
use rocksdb::WriteBatch;
use tern_proto::internal::{StoredItem, StoredTable};
use tern_proto::v1::{
    self, CreateTableRequest, CreateTableResponse, DeleteTableRequest, DeleteTableResponse, ItemVersion,
    TableDescription,
};
use tern_proto::ApiError;

use super::apply::{ItemChange, PlannedWrite, Tables};
use super::db::{cf, CF_ITEMS, CF_REPLICATION, CF_TABLES, CF_TOMBSTONES, CF_TTL};
use super::{keys, stream_log, ttl};

impl Tables<'_> {
    pub(super) fn create_table(
        &mut self,
        request: CreateTableRequest,
        index: u64,
        timestamp: u64,
        batch: &mut WriteBatch,
    ) -> Result<CreateTableResponse, ApiError> {
        super::schema::check_create_table(&request)?;
        if self.tables.contains_key(&request.table_name) {
            return Err(ApiError::in_use(format!("Table already exists: {}", request.table_name)));
        }
        let description = TableDescription {
            table_arn: format!("arn:tern:dynamodb:{}:table/{}", self.region, request.table_name),
            table_id: format!("{index:016x}-{timestamp:016x}"),
            table_name: request.table_name.clone(),
            attribute_definitions: request.attribute_definitions.clone(),
            key_schema: request.key_schema.clone(),
            table_status: "ACTIVE".into(),
            creation_date_time: timestamp as f64 / 1e6,
            item_count: 0,
            table_size_bytes: 0,
            billing_mode: "PAY_PER_REQUEST".into(),
            ..Default::default()
        };
        let mut stored =
            StoredTable { description: Some(description), table_id: index, stream_id: 0, time_to_live: None };
        if let Some(spec) = request.stream_specification.as_ref().filter(|s| s.stream_enabled) {
            self.set_stream(&mut stored, spec, timestamp, batch)?;
        }
        let description = stored.description.clone();
        self.save_table(stored, batch);
        Ok(CreateTableResponse { table_description: description })
    }

    pub(super) fn delete_table(
        &mut self,
        request: DeleteTableRequest,
        timestamp: u64,
        batch: &mut WriteBatch,
    ) -> Result<DeleteTableResponse, ApiError> {
        let schema = self.table(&request.table_name)?;
        if self.tables.get(&request.table_name).is_some_and(super::replication::is_global) {
            return Err(ApiError::validation(format!(
                "Table {} is a global table: remove its replicas first (UpdateTable with ReplicaUpdates Delete)",
                request.table_name
            )));
        }
        let stream_id = self.tables.get(&request.table_name).map_or(0, |t| t.stream_id);
        batch.delete_range_cf(
            cf(self.db, CF_TTL),
            keys::table_prefix(schema.table_id),
            keys::table_end(schema.table_id),
        );
        if stream_id != 0 {
            self.disable_stream(stream_id, timestamp, batch)?;
        }
        for family in [CF_ITEMS, CF_TOMBSTONES, CF_REPLICATION] {
            batch.delete_range_cf(
                cf(self.db, family),
                keys::table_prefix(schema.table_id),
                keys::table_end(schema.table_id),
            );
        }
        batch.delete_cf(cf(self.db, CF_TABLES), request.table_name.as_bytes());
        let stored = self.tables.remove(&request.table_name).unwrap_or_default();
        let mut description = stored.description.unwrap_or_default();
        description.table_status = "DELETING".into();
        Ok(DeleteTableResponse { table_description: Some(description) })
    }

    /// Enables a stream on a table (a new stream, with a new label), or disables its stream.
    pub(super) fn set_stream(
        &mut self,
        stored: &mut StoredTable,
        spec: &v1::StreamSpecification,
        timestamp: u64,
        batch: &mut WriteBatch,
    ) -> Result<(), ApiError> {
        stream_log::check_specification(spec)?;
        let description = stored.description.as_mut().ok_or_else(|| ApiError::internal("table without description"))?;
        if spec.stream_enabled {
            if stored.stream_id != 0 {
                return Err(ApiError::validation(format!(
                    "Table already has an enabled stream: {}",
                    description.latest_stream_arn
                )));
            }
            let stream = stream_log::new_stream(
                self.region,
                &description.table_name,
                spec,
                description.key_schema.clone(),
                self.index,
                timestamp,
            );
            description.latest_stream_arn = stream.stream_arn.clone();
            description.latest_stream_label = stream.stream_label.clone();
            description.stream_specification = Some(spec.clone());
            stored.stream_id = stream.stream_id;
            stream_log::save_stream(self.db, &stream, batch);
        } else {
            if stored.stream_id == 0 {
                return Err(ApiError::validation("Table already has no enabled stream"));
            }
            if !description.replicas.is_empty() {
                return Err(ApiError::validation(format!(
                    "Table {} is a global table: its stream cannot be disabled while it has replicas",
                    description.table_name
                )));
            }
            self.disable_stream(stored.stream_id, timestamp, batch)?;
            stored.stream_id = 0;
            if let Some(description) = stored.description.as_mut() {
                description.stream_specification =
                    Some(v1::StreamSpecification { stream_enabled: false, ..Default::default() });
            }
        }
        Ok(())
    }

    /// Closes a stream: its records stay readable for its retention.
    fn disable_stream(&mut self, stream_id: u64, timestamp: u64, batch: &mut WriteBatch) -> Result<(), ApiError> {
        let Some(mut stream) = stream_log::read_stream(self.db, stream_id)? else { return Ok(()) };
        stream.stream_status = "DISABLED".into();
        stream.disabled_at_micros = timestamp;
        let prefix = stream_id.to_be_bytes();
        let mut iter = self.db.raw_iterator_cf(cf(self.db, super::db::CF_STREAM_RECORDS));
        iter.seek_for_prev(stream_log::record_key(stream_id, u64::MAX));
        stream.last_sequence = match iter.key() {
            Some(key) if key.starts_with(&prefix) && key.len() == 16 => {
                u64::from_be_bytes(key[8..].try_into().expect("8 bytes"))
            }
            _ => 0,
        };
        stream_log::save_stream(self.db, &stream, batch);
        Ok(())
    }

    /// Turns TTL on (indexing the table's items) or off (dropping the index).
    pub(super) fn update_time_to_live(
        &mut self,
        r: v1::UpdateTimeToLiveRequest,
        batch: &mut WriteBatch,
    ) -> Result<v1::UpdateTimeToLiveResponse, ApiError> {
        let mut stored = self.stored_table(&r.table_name)?;
        let wanted =
            r.time_to_live_specification.ok_or_else(|| ApiError::validation("TimeToLiveSpecification is required"))?;
        ttl::check_change(stored.time_to_live.as_ref(), &wanted)?;
        let (start, end) = (keys::table_prefix(stored.table_id), keys::table_end(stored.table_id));
        batch.delete_range_cf(cf(self.db, CF_TTL), &start, &end);
        if wanted.enabled {
            let now = self.timestamp / 1_000_000;
            let mode = rocksdb::IteratorMode::From(&start, rocksdb::Direction::Forward);
            for entry in self.db.iterator_cf(cf(self.db, CF_ITEMS), mode) {
                let (key, value) = entry.map_err(|e| ApiError::internal(e.to_string()))?;
                if key.as_ref() >= end.as_slice() {
                    break;
                }
                let item = StoredItem::decode(value.as_ref()).map_err(|e| ApiError::internal(e.to_string()))?;
                if let Some(expiry) = ttl::expiry(&item.attributes, &wanted.attribute_name, now) {
                    batch.put_cf(cf(self.db, CF_TTL), ttl::index_key(stored.table_id, expiry, &key), []);
                }
            }
        }
        stored.time_to_live = Some(wanted.clone());
        self.save_table(stored, batch);
        Ok(v1::UpdateTimeToLiveResponse { time_to_live_specification: Some(wanted) })
    }

    /// The TTL sweeper's deletes: each item goes only if it is still expired now, at apply time.
    pub(super) fn expire_items(
        &mut self,
        r: tern_proto::internal::ExpireItems,
        version: ItemVersion,
        batch: &mut WriteBatch,
    ) -> Result<tern_proto::internal::ExpireItemsOutcome, ApiError> {
        let stored = self.stored_table(&r.table_name)?;
        let Some(attribute) = ttl::attribute(&stored).map(str::to_string) else {
            return Ok(tern_proto::internal::ExpireItemsOutcome { deleted: 0, kept: r.index_keys.len() as u32 });
        };
        let now = self.timestamp / 1_000_000;
        let mut outcome = tern_proto::internal::ExpireItemsOutcome::default();
        for index_key in r.index_keys.iter().take(ttl::MAX_EXPIRIES_PER_ENTRY) {
            let Some((indexed_expiry, storage_key)) = ttl::parse_index_key(index_key) else { continue };
            let old = self.read_item(storage_key)?;
            let expiry = old.as_ref().and_then(|o| ttl::expiry(&o.attributes, &attribute, now));
            match expiry {
                Some(expiry) if expiry <= now => {
                    let write = PlannedWrite {
                        table: r.table_name.clone(),
                        key: storage_key.to_vec(),
                        change: ItemChange { old, new: None },
                        version: version.clone(),
                    };
                    self.commit(&write, batch);
                    outcome.deleted += 1;
                    metrics::counter!("tern_ttl_items_deleted_total").increment(1);
                    metrics::histogram!("tern_ttl_deletion_delay_seconds")
                        .record(self.timestamp.saturating_sub(expiry * 1_000_000) as f64 / 1e6);
                }
                _ => {
                    // Extended, removed or no longer a valid expiry: the item stays; drop a stale entry.
                    if expiry != Some(indexed_expiry) {
                        batch.delete_cf(cf(self.db, CF_TTL), index_key);
                    }
                    outcome.kept += 1;
                }
            }
        }
        Ok(outcome)
    }

    /// Saves a named consumer's position in a long-retention stream.
    pub(super) fn put_consumer_position(
        &mut self,
        r: v1::PutConsumerPositionRequest,
        timestamp: u64,
        batch: &mut WriteBatch,
    ) -> Result<v1::PutConsumerPositionResponse, ApiError> {
        let streams = super::streams::StreamReader::definitions(self.db);
        let stream = streams.into_iter().find(|s| s.stream_arn == r.stream_arn).ok_or_else(|| {
            ApiError::not_found(format!("Requested resource not found: Stream: {} not found", r.stream_arn))
        })?;
        if stream.retention_days == 0 {
            return Err(ApiError::validation(
                "Named consumers need a long-retention stream (StreamSpecification RetentionDays 1 to 365)",
            ));
        }
        if r.consumer_name.is_empty() || r.consumer_name.len() > 128 {
            return Err(ApiError::validation("ConsumerName must have 1 to 128 characters"));
        }
        r.sequence_number
            .parse::<u64>()
            .map_err(|_| ApiError::validation(format!("Invalid SequenceNumber: {}", r.sequence_number)))?;
        let consumer = v1::Consumer {
            consumer_name: r.consumer_name.clone(),
            sequence_number: r.sequence_number,
            updated_at: timestamp as f64 / 1e6,
        };
        batch.put_cf(
            cf(self.db, super::db::CF_STREAMS),
            stream_log::consumer_key(stream.stream_id, &r.consumer_name),
            consumer.encode_to_vec(),
        );
        Ok(v1::PutConsumerPositionResponse {})
    }

    pub(super) fn update_table(
        &mut self,
        r: v1::UpdateTableRequest,
        timestamp: u64,
        batch: &mut WriteBatch,
    ) -> Result<v1::UpdateTableResponse, ApiError> {
        let mut stored = self.stored_table(&r.table_name)?;
        if let Some(spec) = &r.stream_specification {
            self.set_stream(&mut stored, spec, timestamp, batch)?;
        }
        let description = stored.description.clone();
        self.save_table(stored, batch);
        Ok(v1::UpdateTableResponse { table_description: description })
    }
}
