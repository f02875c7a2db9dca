//! Executing one command against the state machine's tables: the deterministic part of the apply path.
//! Every replica runs this for every entry, so it reads only replicated state and the entry itself.

use std::collections::BTreeMap;

use prost::Message;
use rocksdb::{WriteBatch, DB};
use tern_proto::internal::{command, command_outcome, Command, CommandError, StoredItem, StoredTable};
use tern_proto::v1::{
    CreateTableRequest, CreateTableResponse, DeleteItemRequest, DeleteItemResponse, DeleteTableRequest,
    DeleteTableResponse, Item, ItemVersion, PutItemRequest, PutItemResponse, TableDescription,
};
use tern_proto::ApiError;

use super::db::{cf, CF_ITEMS, CF_TABLES};
use super::keys;
use super::schema::TableSchema;

/// The state a command is applied against: the tables (cached in memory) and the database.
pub struct Tables<'a> {
    pub db: &'a DB,
    pub tables: &'a mut BTreeMap<String, StoredTable>,
    pub region: &'a str,
}

/// What a write did to an item: its key, the item before and after.
pub struct ItemChange {
    pub old: Option<StoredItem>,
    pub new: Option<StoredItem>,
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
        let origin = if command.origin_region.is_empty() { self.region.to_string() } else { command.origin_region };
        let version = ItemVersion { write_timestamp_micros: timestamp, origin_region: origin };
        let result = match command.op {
            Some(command::Op::CreateTable(request)) => {
                self.create_table(request, index, timestamp, batch).map(command_outcome::Outcome::CreateTable)
            }
            Some(command::Op::DeleteTable(request)) => {
                self.delete_table(request, batch).map(command_outcome::Outcome::DeleteTable)
            }
            Some(command::Op::PutItem(request)) => {
                self.put_item(request, version, batch).map(command_outcome::Outcome::PutItem)
            }
            Some(command::Op::DeleteItem(request)) => {
                self.delete_item(request, version, batch).map(command_outcome::Outcome::DeleteItem)
            }
            None => Err(ApiError::internal("empty command")),
        };
        result.unwrap_or_else(|e| {
            command_outcome::Outcome::Error(CommandError { error_type: e.kind.name().to_string(), message: e.message })
        })
    }

    fn table(&self, name: &str) -> Result<(TableSchema, StoredTable), ApiError> {
        let stored = self.tables.get(name).ok_or_else(|| ApiError::table_not_found(name))?;
        let description = stored.description.as_ref().ok_or_else(|| ApiError::internal("table without description"))?;
        Ok((TableSchema::from_description(stored.table_id, description)?, stored.clone()))
    }

    fn save_table(&mut self, stored: StoredTable, batch: &mut WriteBatch) {
        let name = stored.description.as_ref().map(|d| d.table_name.clone()).unwrap_or_default();
        batch.put_cf(cf(self.db, CF_TABLES), name.as_bytes(), stored.encode_to_vec());
        self.tables.insert(name, stored);
    }

    fn create_table(
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
            table_name: request.table_name,
            attribute_definitions: request.attribute_definitions,
            key_schema: request.key_schema,
            table_status: "ACTIVE".into(),
            creation_date_time: timestamp as f64 / 1e6,
            item_count: 0,
            table_size_bytes: 0,
            billing_mode: "PAY_PER_REQUEST".into(),
        };
        self.save_table(StoredTable { description: Some(description.clone()), table_id: index }, batch);
        Ok(CreateTableResponse { table_description: Some(description) })
    }

    fn delete_table(
        &mut self,
        request: DeleteTableRequest,
        batch: &mut WriteBatch,
    ) -> Result<DeleteTableResponse, ApiError> {
        let (_, stored) = self.table(&request.table_name)?;
        batch.delete_range_cf(
            cf(self.db, CF_ITEMS),
            keys::table_prefix(stored.table_id),
            keys::table_end(stored.table_id),
        );
        batch.delete_cf(cf(self.db, CF_TABLES), request.table_name.as_bytes());
        self.tables.remove(&request.table_name);
        let mut description = stored.description.unwrap_or_default();
        description.table_status = "DELETING".into();
        Ok(DeleteTableResponse { table_description: Some(description) })
    }

    fn read_item(&self, key: &[u8]) -> Result<Option<StoredItem>, ApiError> {
        let bytes = self.db.get_cf(cf(self.db, CF_ITEMS), key).map_err(|e| ApiError::internal(e.to_string()))?;
        bytes.map(|b| StoredItem::decode(b.as_slice()).map_err(|e| ApiError::internal(e.to_string()))).transpose()
    }

    /// Writes an item change and keeps the table's item count and size.
    fn write_item(&mut self, mut stored: StoredTable, key: &[u8], change: &ItemChange, batch: &mut WriteBatch) {
        match &change.new {
            Some(item) => batch.put_cf(cf(self.db, CF_ITEMS), key, item.encode_to_vec()),
            None => batch.delete_cf(cf(self.db, CF_ITEMS), key),
        }
        let size = |item: &Option<StoredItem>| item.as_ref().map_or(0, |i| i.encoded_len() as u64);
        if let Some(description) = stored.description.as_mut() {
            description.item_count = description.item_count + change.new.is_some() as u64 - change.old.is_some() as u64;
            description.table_size_bytes =
                (description.table_size_bytes + size(&change.new)).saturating_sub(size(&change.old));
        }
        self.save_table(stored, batch);
    }

    fn put_item(
        &mut self,
        request: PutItemRequest,
        version: ItemVersion,
        batch: &mut WriteBatch,
    ) -> Result<PutItemResponse, ApiError> {
        let (schema, stored) = self.table(&request.table_name)?;
        let key = schema.storage_key(&request.item)?;
        let old = self.read_item(&key)?;
        let new = StoredItem {
            attributes: request.item,
            write_timestamp_micros: version.write_timestamp_micros,
            origin_region: version.origin_region.clone(),
        };
        let change = ItemChange { old, new: Some(new) };
        self.write_item(stored, &key, &change, batch);
        Ok(PutItemResponse {
            attributes: returned_old(&request.return_values, change.old),
            item_version: Some(version),
        })
    }

    fn delete_item(
        &mut self,
        request: DeleteItemRequest,
        version: ItemVersion,
        batch: &mut WriteBatch,
    ) -> Result<DeleteItemResponse, ApiError> {
        let (schema, stored) = self.table(&request.table_name)?;
        schema.check_key_only(&request.key)?;
        let key = schema.storage_key(&request.key)?;
        let old = self.read_item(&key)?;
        if old.is_some() {
            let change = ItemChange { old, new: None };
            self.write_item(stored, &key, &change, batch);
            return Ok(DeleteItemResponse {
                attributes: returned_old(&request.return_values, change.old),
                item_version: Some(version),
            });
        }
        Ok(DeleteItemResponse { attributes: None, item_version: Some(version) })
    }
}

fn returned_old(return_values: &str, old: Option<StoredItem>) -> Option<Item> {
    (return_values == "ALL_OLD").then_some(old).flatten().map(|old| Item { attributes: old.attributes })
}
