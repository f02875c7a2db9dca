//! Table-level commands at apply time: creating, updating and deleting tables. Each concern keeps
//! its own part: the stream is enabled or disabled by `stream`, and a deleted table's TTL index,
//! tombstones and checkpoints are dropped by `ttl` and `global`.

use tern_proto::internal::StoredTable;
use tern_proto::v1::{
    self, CreateTableRequest, CreateTableResponse, DeleteTableRequest, DeleteTableResponse, TableDescription,
};
use tern_proto::ApiError;

use super::entry::{Applied, Entry};
use crate::keyspace::{self, Family};
use crate::{global, stream, ttl};

/// CreateTable (and a replica's table, created by its global table).
pub fn create_table(entry: &mut Entry, request: CreateTableRequest) -> Applied<CreateTableResponse> {
    crate::schema::check_create_table(&request)?;
    if entry.tables.contains_key(&request.table_name) {
        return Err(ApiError::in_use(format!("Table already exists: {}", request.table_name)).into());
    }
    let (index, timestamp) = (entry.index, entry.timestamp);
    let description = TableDescription {
        table_arn: format!("arn:tern:dynamodb:{}:table/{}", entry.region, request.table_name),
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
    let mut stored = StoredTable { description: Some(description), table_id: index, ..Default::default() };
    if let Some(spec) = request.stream_specification.as_ref().filter(|s| s.stream_enabled) {
        stream::set_stream(entry, &mut stored, spec)?;
    }
    let description = stored.description.clone();
    entry.save_table(stored);
    // An earlier restore's failure under this name no longer describes it.
    entry.writes.delete(Family::Meta, keyspace::restore_failure_key(&request.table_name));
    Ok(CreateTableResponse { table_description: description })
}

/// DeleteTable: the table and everything every concern keeps for it. A global table must lose
/// its replicas first.
pub fn delete_table(entry: &mut Entry, request: DeleteTableRequest) -> Applied<DeleteTableResponse> {
    if entry.tables.get(&request.table_name).is_some_and(|t| t.restoring.is_some()) {
        let why = format!("Table {} is being restored (CREATING): it can be deleted once ACTIVE", request.table_name);
        return Err(ApiError::in_use(why).into());
    }
    let schema = entry.table(&request.table_name)?;
    if entry.tables.get(&request.table_name).is_some_and(global::is_global) {
        return Err(ApiError::validation(format!(
            "Table {} is a global table: remove its replicas first (UpdateTable with ReplicaUpdates Delete)",
            request.table_name
        ))
        .into());
    }
    let stream_id = entry.tables.get(&request.table_name).map_or(0, |t| t.stream_id);
    ttl::apply::drop_index(entry, schema.table_id);
    if stream_id != 0 {
        stream::disable(entry, stream_id)?;
    }
    let (start, end) = keyspace::table_range(schema.table_id);
    entry.writes.delete_range(Family::Items, &start, &end);
    global::state::drop_state(entry, schema.table_id);
    entry.writes.delete(Family::Tables, keyspace::table_key(&request.table_name));
    let stored: StoredTable = entry.tables.remove(&request.table_name).unwrap_or_default();
    let mut description = stored.description.unwrap_or_default();
    description.table_status = "DELETING".into();
    Ok(DeleteTableResponse { table_description: Some(description) })
}

/// UpdateTable's stream specification (its replica updates are the global table's).
pub fn update_table(entry: &mut Entry, r: v1::UpdateTableRequest) -> Applied<v1::UpdateTableResponse> {
    let mut stored = entry.stored_table(&r.table_name)?;
    if let Some(spec) = &r.stream_specification {
        stream::set_stream(entry, &mut stored, spec)?;
    }
    let description = stored.description.clone();
    entry.save_table(stored);
    Ok(v1::UpdateTableResponse { table_description: description })
}
