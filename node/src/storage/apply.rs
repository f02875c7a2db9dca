//! Executing one command against the state machine's tables: the deterministic part of the apply path.
//! Every replica runs this for every entry, so it reads only replicated state and the entry itself.
//! Conditions are evaluated here, against the state every replica has, so all replicas decide alike.

use std::collections::BTreeMap;

use prost::Message;
use rocksdb::{WriteBatch, DB};
use tern_proto::internal::{command, command_outcome, Command, CommandError, StoredItem, StoredTable};
use tern_proto::v1::{
    self, BatchWriteItemRequest, BatchWriteItemResponse, DeleteItemRequest, DeleteItemResponse, ErrorDetails,
    ItemVersion, ItemVersionList, PutItemRequest, PutItemResponse, UpdateItemRequest, UpdateItemResponse,
};
use tern_proto::value::{item_from_wire, item_size_bytes, item_to_wire, Item, MAX_ITEM_BYTES};
use tern_proto::ApiError;

use super::db::{cf, CF_ITEMS, CF_TABLES, CF_TTL};
use super::replication;
use super::schema::TableSchema;
use super::stream_log;
use super::ttl;
use tern_expression::{self as expression, ExpressionKind, ExpressionSet, Placeholders};

/// The state a command is applied against: the tables (cached in memory) and the database.
pub struct Tables<'a> {
    pub db: &'a DB,
    pub tables: &'a mut BTreeMap<String, StoredTable>,
    pub region: &'a str,
    /// The log index of the entry being applied.
    pub index: u64,
    /// The entry's write timestamp (hybrid logical clock, microseconds).
    pub timestamp: u64,
    /// Stream records this entry has written so far.
    pub records: u64,
    /// Who the entry's writes are attributed to in stream records (none for users).
    pub identity: Option<v1::Identity>,
}

/// What a write does to an item: the item before and after.
pub struct ItemChange {
    pub old: Option<StoredItem>,
    pub new: Option<StoredItem>,
}

/// A write decided against the current state, not yet in the batch.
pub struct PlannedWrite {
    pub table: String,
    pub key: Vec<u8>,
    pub change: ItemChange,
    /// The version the write is given (a delete's too).
    pub version: ItemVersion,
}

/// The expressions of a conditional write.
pub struct ConditionInput<'r> {
    pub expression: &'r str,
    pub names: &'r BTreeMap<String, String>,
    pub values: &'r BTreeMap<String, v1::AttributeValue>,
    pub return_on_failure: &'r str,
}

/// A request that carries a ConditionExpression.
pub trait Conditional {
    fn condition(&self) -> ConditionInput<'_>;
}

macro_rules! conditional {
    ($($request:ty),*) => {$(
        impl Conditional for $request {
            fn condition(&self) -> ConditionInput<'_> {
                ConditionInput {
                    expression: &self.condition_expression,
                    names: &self.expression_attribute_names,
                    values: &self.expression_attribute_values,
                    return_on_failure: &self.return_values_on_condition_check_failure,
                }
            }
        }
    )*};
}
conditional!(PutItemRequest, DeleteItemRequest, UpdateItemRequest, v1::ConditionCheck);

/// The old item, when ReturnValues asked for ALL_OLD.
fn old_if_asked(old: Option<StoredItem>, return_values: &str) -> Option<v1::Item> {
    old.filter(|_| return_values == "ALL_OLD").map(|old| v1::Item { attributes: old.attributes })
}

fn domain(item: Option<&StoredItem>) -> Result<Item, ApiError> {
    item.map(|i| item_from_wire(i.attributes.clone())).transpose().map(Option::unwrap_or_default)
}

fn wire_item(item: &Item) -> v1::Item {
    v1::Item { attributes: item_to_wire(item) }
}

/// The error for a command, as its outcome.
pub fn error_outcome(e: ApiError) -> command_outcome::Outcome {
    command_outcome::Outcome::Error(CommandError {
        error_type: e.kind.name().to_string(),
        message: e.message,
        details: e.details.map(|d| *d),
    })
}

/// Checks a condition against the item as it is; the failure carries the old item when asked for.
pub fn check_condition(input: &ConditionInput, old: Option<&StoredItem>) -> Result<(), ApiError> {
    if input.expression.is_empty() {
        return Ok(());
    }
    let values = item_from_wire(input.values.clone())?;
    let mut set = ExpressionSet::new(input.names, &values);
    let condition = set.condition(ExpressionKind::Condition, input.expression)?;
    let item = domain(old)?;
    if expression::condition::evaluate(&Placeholders { names: input.names, values: &values }, &condition, &item)? {
        return Ok(());
    }
    let error = ApiError::condition_failed();
    match old {
        Some(old) if input.return_on_failure == "ALL_OLD" => Err(error.with_details(ErrorDetails {
            item: Some(v1::Item { attributes: old.attributes.clone() }),
            cancellation_reasons: vec![],
        })),
        _ => Err(error),
    }
}

impl Tables<'_> {
    /// Applies `command`, stamped with `timestamp` at log index `index`, adding its writes to `batch`.
    pub fn execute(
        &mut self,
        command: Command,
        index: u64,
        timestamp: u64,
        batch: &mut WriteBatch,
    ) -> command_outcome::Outcome {
        use command_outcome::Outcome;
        let origin = if command.origin_region.is_empty() { self.region.to_string() } else { command.origin_region };
        let version = ItemVersion { write_timestamp_micros: timestamp, origin_region: origin };
        let result = match command.op {
            Some(command::Op::CreateTable(r)) => {
                self.create_table(r, index, timestamp, batch).map(Outcome::CreateTable)
            }
            Some(command::Op::DeleteTable(r)) => self.delete_table(r, timestamp, batch).map(Outcome::DeleteTable),
            Some(command::Op::UpdateTable(r)) => self.update_table(r, timestamp, batch).map(Outcome::UpdateTable),
            Some(command::Op::UpdateTimeToLive(r)) => self.update_time_to_live(r, batch).map(Outcome::UpdateTimeToLive),
            Some(command::Op::ExpireItems(r)) => self.expire_items(r, version, batch).map(Outcome::ExpireItems),
            Some(command::Op::PutConsumerPosition(r)) => {
                self.put_consumer_position(r, timestamp, batch).map(Outcome::PutConsumerPosition)
            }
            Some(command::Op::PutItem(r)) => self.put_item(r, version, batch).map(Outcome::PutItem),
            Some(command::Op::DeleteItem(r)) => self.delete_item(r, version, batch).map(Outcome::DeleteItem),
            Some(command::Op::UpdateItem(r)) => self.update_item(r, version, batch).map(Outcome::UpdateItem),
            Some(command::Op::BatchWriteItem(r)) => {
                self.batch_write_item(r, version, batch).map(Outcome::BatchWriteItem)
            }
            Some(command::Op::TransactWriteItems(r)) => return self.transact_write_items(r, version, batch),
            Some(command::Op::ApplyReplicated(r)) => self.apply_replicated(r, batch).map(Outcome::ApplyReplicated),
            Some(command::Op::SetReplicas(r)) => self.set_replicas(r, batch).map(Outcome::SetReplicas),
            Some(command::Op::SetReplicaStatus(r)) => self.set_replica_status(r, batch).map(Outcome::SetReplicas),
            Some(command::Op::PurgeTombstones(r)) => self.purge_tombstones(r, batch).map(Outcome::PurgeTombstones),
            None => Err(ApiError::internal("empty command")),
        };
        result.unwrap_or_else(error_outcome)
    }

    /// A table's stored definition, to change and save.
    pub(super) fn stored_table(&self, name: &str) -> Result<StoredTable, ApiError> {
        self.tables.get(name).cloned().ok_or_else(|| ApiError::table_not_found(name))
    }

    pub fn table(&self, name: &str) -> Result<TableSchema, ApiError> {
        let stored = self.tables.get(name).ok_or_else(|| ApiError::table_not_found(name))?;
        let description = stored.description.as_ref().ok_or_else(|| ApiError::internal("table without description"))?;
        TableSchema::from_description(stored.table_id, description)
    }

    pub(super) fn save_table(&mut self, stored: StoredTable, batch: &mut WriteBatch) {
        let name = stored.description.as_ref().map(|d| d.table_name.clone()).unwrap_or_default();
        batch.put_cf(cf(self.db, CF_TABLES), name.as_bytes(), stored.encode_to_vec());
        self.tables.insert(name, stored);
    }

    pub fn read_item(&self, key: &[u8]) -> Result<Option<StoredItem>, ApiError> {
        let bytes = self.db.get_cf(cf(self.db, CF_ITEMS), key).map_err(|e| ApiError::internal(e.to_string()))?;
        bytes.map(|b| StoredItem::decode(b.as_slice()).map_err(|e| ApiError::internal(e.to_string()))).transpose()
    }

    /// Adds a planned write to the batch, with its stream record when the table has a stream, and
    /// keeps the table's item count and size.
    pub fn commit(&mut self, write: &PlannedWrite, batch: &mut WriteBatch) {
        let Some(any) = write.change.new.as_ref().or(write.change.old.as_ref()) else {
            return; // A delete of an item that is not there changes nothing.
        };
        match &write.change.new {
            Some(item) => batch.put_cf(cf(self.db, CF_ITEMS), &write.key, item.encode_to_vec()),
            None => batch.delete_cf(cf(self.db, CF_ITEMS), &write.key),
        }
        let Some(mut stored) = self.tables.get(&write.table).cloned() else { return };
        let global = replication::is_global(&stored);
        if global || stored.stream_id != 0 {
            match self.table(&write.table) {
                Ok(schema) => {
                    if global {
                        let key_attributes = StoredItem {
                            attributes: schema.key_of(&any.attributes),
                            write_timestamp_micros: write.version.write_timestamp_micros,
                            origin_region: write.version.origin_region.clone(),
                        };
                        self.track_tombstone(write, key_attributes, batch);
                    }
                    if stored.stream_id != 0 {
                        self.record_change(&stored, &schema, write, batch);
                    }
                }
                Err(error) => tracing::error!(table = %write.table, %error, "a table without a usable schema"),
            }
        }
        if let Some(attribute) = ttl::attribute(&stored) {
            let now = self.timestamp / 1_000_000;
            let storage_key = &write.key;
            if let Some(expiry) = write.change.old.as_ref().and_then(|o| ttl::expiry(&o.attributes, attribute, now)) {
                batch.delete_cf(cf(self.db, CF_TTL), ttl::index_key(stored.table_id, expiry, storage_key));
            }
            if let Some(expiry) = write.change.new.as_ref().and_then(|n| ttl::expiry(&n.attributes, attribute, now)) {
                batch.put_cf(cf(self.db, CF_TTL), ttl::index_key(stored.table_id, expiry, storage_key), []);
            }
        }
        let size = |item: &Option<StoredItem>| item.as_ref().map_or(0, |i| i.encoded_len() as u64);
        if let Some(d) = stored.description.as_mut() {
            d.item_count = d.item_count + write.change.new.is_some() as u64 - write.change.old.is_some() as u64;
            d.table_size_bytes = (d.table_size_bytes + size(&write.change.new)).saturating_sub(size(&write.change.old));
        }
        self.save_table(stored, batch);
    }

    fn record_change(
        &mut self,
        stored: &StoredTable,
        schema: &TableSchema,
        write: &PlannedWrite,
        batch: &mut WriteBatch,
    ) {
        let Ok(Some(stream)) = stream_log::read_stream(self.db, stored.stream_id) else {
            tracing::error!(table = %write.table, stream = stored.stream_id, "table names a stream that cannot be read");
            return;
        };
        let sequence = (self.index << 16) | self.records;
        let (old, new) = (write.change.old.as_ref(), write.change.new.as_ref());
        if let Some(record) = stream_log::record(
            &stream,
            schema,
            sequence,
            self.region,
            old,
            new,
            &write.version,
            self.identity.clone(),
            replication::is_global(stored),
        ) {
            stream_log::write_record(self.db, stream.stream_id, sequence, &record, batch);
            self.records += 1;
            metrics::counter!("tern_stream_records_written_total").increment(1);
        }
    }

    pub fn plan_put(&self, r: &PutItemRequest, version: &ItemVersion) -> Result<PlannedWrite, ApiError> {
        let schema = self.table(&r.table_name)?;
        self.check_writable(&r.table_name)?;
        let key = schema.storage_key(&r.item)?;
        let old = self.read_item(&key)?;
        check_condition(&r.condition(), old.as_ref())?;
        let new = StoredItem {
            attributes: r.item.clone(),
            write_timestamp_micros: version.write_timestamp_micros,
            origin_region: version.origin_region.clone(),
        };
        Ok(PlannedWrite {
            table: r.table_name.clone(),
            key,
            change: ItemChange { old, new: Some(new) },
            version: version.clone(),
        })
    }

    pub fn plan_delete(&self, r: &DeleteItemRequest, version: &ItemVersion) -> Result<PlannedWrite, ApiError> {
        let schema = self.table(&r.table_name)?;
        self.check_writable(&r.table_name)?;
        schema.check_key_only(&r.key)?;
        let key = schema.storage_key(&r.key)?;
        let old = self.read_item(&key)?;
        check_condition(&r.condition(), old.as_ref())?;
        Ok(PlannedWrite {
            table: r.table_name.clone(),
            key,
            change: ItemChange { old, new: None },
            version: version.clone(),
        })
    }

    /// Plans an update; also returns the paths it touched (for UPDATED_OLD and UPDATED_NEW).
    pub fn plan_update(
        &self,
        r: &UpdateItemRequest,
        version: &ItemVersion,
    ) -> Result<(PlannedWrite, Vec<expression::DocumentPath>), ApiError> {
        let schema = self.table(&r.table_name)?;
        self.check_writable(&r.table_name)?;
        schema.check_key_only(&r.key)?;
        let key = schema.storage_key(&r.key)?;
        let old = self.read_item(&key)?;
        check_condition(&r.condition(), old.as_ref())?;
        let values = item_from_wire(r.expression_attribute_values.clone())?;
        let mut item = match &old {
            Some(old) => domain(Some(old))?,
            None => item_from_wire(r.key.clone())?,
        };
        let mut paths = Vec::new();
        if !r.update_expression.is_empty() {
            let update = ExpressionSet::new(&r.expression_attribute_names, &values).update(&r.update_expression)?;
            let ctx = Placeholders { names: &r.expression_attribute_names, values: &values };
            let key_names: Vec<&str> = schema.key_attributes().map(|k| k.name.as_str()).collect();
            expression::update::check(&ctx, &update, &key_names)?;
            expression::update::apply(&ctx, &update, &mut item)?;
            paths = expression::update::updated_paths(&ctx, &update);
        }
        if item_size_bytes(&item) > MAX_ITEM_BYTES {
            return Err(ApiError::validation("Item size to update has exceeded the maximum allowed size"));
        }
        let new = StoredItem {
            attributes: item_to_wire(&item),
            write_timestamp_micros: version.write_timestamp_micros,
            origin_region: version.origin_region.clone(),
        };
        Ok((
            PlannedWrite {
                table: r.table_name.clone(),
                key,
                change: ItemChange { old, new: Some(new) },
                version: version.clone(),
            },
            paths,
        ))
    }

    fn put_item(
        &mut self,
        r: PutItemRequest,
        version: ItemVersion,
        batch: &mut WriteBatch,
    ) -> Result<PutItemResponse, ApiError> {
        let write = self.plan_put(&r, &version)?;
        self.commit(&write, batch);
        let attributes = old_if_asked(write.change.old, &r.return_values);
        Ok(PutItemResponse { attributes, item_version: Some(version) })
    }

    fn delete_item(
        &mut self,
        r: DeleteItemRequest,
        version: ItemVersion,
        batch: &mut WriteBatch,
    ) -> Result<DeleteItemResponse, ApiError> {
        let write = self.plan_delete(&r, &version)?;
        self.commit(&write, batch);
        let attributes = old_if_asked(write.change.old, &r.return_values);
        Ok(DeleteItemResponse { attributes, item_version: Some(version) })
    }

    fn update_item(
        &mut self,
        r: UpdateItemRequest,
        version: ItemVersion,
        batch: &mut WriteBatch,
    ) -> Result<UpdateItemResponse, ApiError> {
        let (write, paths) = self.plan_update(&r, &version)?;
        self.commit(&write, batch);
        let old = domain(write.change.old.as_ref())?;
        let new = domain(write.change.new.as_ref())?;
        let attributes = match r.return_values.as_str() {
            "ALL_OLD" => write.change.old.as_ref().map(|_| wire_item(&old)),
            "ALL_NEW" => Some(wire_item(&new)),
            "UPDATED_OLD" => {
                Some(wire_item(&expression::projection::project(&old, &paths))).filter(|i| !i.attributes.is_empty())
            }
            "UPDATED_NEW" => {
                Some(wire_item(&expression::projection::project(&new, &paths))).filter(|i| !i.attributes.is_empty())
            }
            _ => None,
        };
        Ok(UpdateItemResponse { attributes, item_version: Some(version) })
    }

    /// BatchWriteItem: every put and delete in one entry; each write stands alone (no conditions).
    fn batch_write_item(
        &mut self,
        r: BatchWriteItemRequest,
        version: ItemVersion,
        batch: &mut WriteBatch,
    ) -> Result<BatchWriteItemResponse, ApiError> {
        let mut planned = Vec::new();
        for (table, list) in &r.request_items {
            for request in &list.requests {
                let write = match &request.request {
                    Some(v1::write_request::Request::PutRequest(put)) => self.plan_put(
                        &PutItemRequest { table_name: table.clone(), item: put.item.clone(), ..Default::default() },
                        &version,
                    )?,
                    Some(v1::write_request::Request::DeleteRequest(delete)) => self.plan_delete(
                        &DeleteItemRequest { table_name: table.clone(), key: delete.key.clone(), ..Default::default() },
                        &version,
                    )?,
                    None => return Err(ApiError::validation("A WriteRequest needs a PutRequest or a DeleteRequest")),
                };
                planned.push(write);
            }
        }
        let mut item_versions: BTreeMap<String, ItemVersionList> = BTreeMap::new();
        for write in &planned {
            self.commit(write, batch);
            item_versions.entry(write.table.clone()).or_default().versions.push(version.clone());
        }
        Ok(BatchWriteItemResponse { unprocessed_items: BTreeMap::new(), item_versions })
    }
}
