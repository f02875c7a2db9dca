//! Item writes at apply time: PutItem, DeleteItem, UpdateItem and BatchWriteItem, each planned
//! against the state every replica has (conditions included, so all replicas decide alike) and then
//! committed.

use std::collections::BTreeMap;

use tern_expression::{self as expression, ExpressionKind, ExpressionSet, Placeholders};
use tern_proto::internal::StoredItem;
use tern_proto::v1::{
    self, BatchWriteItemRequest, BatchWriteItemResponse, DeleteItemRequest, DeleteItemResponse, ErrorDetails,
    ItemVersion, ItemVersionList, PutItemRequest, PutItemResponse, UpdateItemRequest, UpdateItemResponse,
};
use tern_proto::value::{item_from_wire, item_size_bytes, item_to_wire, Item, MAX_ITEM_BYTES};
use tern_proto::ApiError;

use super::commit::commit;
use super::entry::{stored_item, Applied, Entry, ItemChange, PlannedWrite};
use crate::global::apply::check_writable;
use crate::schema::TableSchema;

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
            ..Default::default()
        })),
        _ => Err(error),
    }
}

/// The item a write targets: the table's schema, the item's storage key and the item as it is, once
/// the table takes writes here, the key fits the schema (exactly the key attributes when `key_only`)
/// and the condition holds.
fn target(
    entry: &Entry,
    table: &str,
    attributes: &BTreeMap<String, v1::AttributeValue>,
    key_only: bool,
    condition: &ConditionInput,
) -> Applied<(TableSchema, Vec<u8>, Option<StoredItem>)> {
    let schema = entry.table(table)?;
    check_writable(entry, table)?;
    if key_only {
        schema.check_key_only(attributes)?;
    }
    let key = schema.storage_key(attributes)?;
    let old = entry.read_item(&key)?;
    check_condition(condition, old.as_ref())?;
    Ok((schema, key, old))
}

/// Plans a PutItem: its condition checked against the item as it is.
pub fn plan_put(entry: &Entry, r: &PutItemRequest, version: &ItemVersion) -> Applied<PlannedWrite> {
    let (_, key, old) = target(entry, &r.table_name, &r.item, false, &r.condition())?;
    let new = stored_item(r.item.clone(), version);
    Ok(PlannedWrite {
        table: r.table_name.clone(),
        key,
        change: ItemChange { old, new: Some(new) },
        version: version.clone(),
    })
}

/// Plans a DeleteItem: its condition checked against the item as it is.
pub fn plan_delete(entry: &Entry, r: &DeleteItemRequest, version: &ItemVersion) -> Applied<PlannedWrite> {
    let (_, key, old) = target(entry, &r.table_name, &r.key, true, &r.condition())?;
    Ok(PlannedWrite {
        table: r.table_name.clone(),
        key,
        change: ItemChange { old, new: None },
        version: version.clone(),
    })
}

/// Plans an update; also returns the paths it touched (for UPDATED_OLD and UPDATED_NEW).
pub fn plan_update(
    entry: &Entry,
    r: &UpdateItemRequest,
    version: &ItemVersion,
) -> Applied<(PlannedWrite, Vec<expression::DocumentPath>)> {
    let (schema, key, old) = target(entry, &r.table_name, &r.key, true, &r.condition())?;
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
        return Err(ApiError::validation("Item size to update has exceeded the maximum allowed size").into());
    }
    let new = stored_item(item_to_wire(&item), version);
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

/// PutItem.
pub fn put_item(entry: &mut Entry, r: PutItemRequest, version: ItemVersion) -> Applied<PutItemResponse> {
    let write = plan_put(entry, &r, &version)?;
    commit(entry, &write)?;
    let attributes = old_if_asked(write.change.old, &r.return_values);
    Ok(PutItemResponse { attributes, item_version: Some(version) })
}

/// DeleteItem.
pub fn delete_item(entry: &mut Entry, r: DeleteItemRequest, version: ItemVersion) -> Applied<DeleteItemResponse> {
    let write = plan_delete(entry, &r, &version)?;
    commit(entry, &write)?;
    let attributes = old_if_asked(write.change.old, &r.return_values);
    Ok(DeleteItemResponse { attributes, item_version: Some(version) })
}

/// UpdateItem, with the ReturnValues it asks for.
pub fn update_item(entry: &mut Entry, r: UpdateItemRequest, version: ItemVersion) -> Applied<UpdateItemResponse> {
    let (write, paths) = plan_update(entry, &r, &version)?;
    commit(entry, &write)?;
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
pub fn batch_write_item(
    entry: &mut Entry,
    r: BatchWriteItemRequest,
    version: ItemVersion,
) -> Applied<BatchWriteItemResponse> {
    let mut planned = Vec::new();
    for (table, list) in &r.request_items {
        for request in &list.requests {
            let write = match &request.request {
                Some(v1::write_request::Request::PutRequest(put)) => plan_put(
                    entry,
                    &PutItemRequest { table_name: table.clone(), item: put.item.clone(), ..Default::default() },
                    &version,
                )?,
                Some(v1::write_request::Request::DeleteRequest(delete)) => plan_delete(
                    entry,
                    &DeleteItemRequest { table_name: table.clone(), key: delete.key.clone(), ..Default::default() },
                    &version,
                )?,
                None => return Err(ApiError::validation("A WriteRequest needs a PutRequest or a DeleteRequest").into()),
            };
            planned.push(write);
        }
    }
    let mut item_versions: BTreeMap<String, ItemVersionList> = BTreeMap::new();
    for write in &planned {
        commit(entry, write)?;
        item_versions.entry(write.table.clone()).or_default().versions.push(version.clone());
    }
    Ok(BatchWriteItemResponse { unprocessed_items: BTreeMap::new(), item_versions })
}
