//! `update-item`, `batch-get-item`, `batch-write-item`, `transact-write-items`, `transact-get-items`,
//! with the AWS CLI's JSON shapes.

use std::collections::BTreeMap;

use anyhow::{bail, Context};
use clap::Args;
use serde_json::{json, Map, Value as Json};
use tern_client::Client;
use tern_proto::v1::{self, transact_write_item::Action, write_request::Request as WriteKind};

use super::items::Conditional;
use super::{input, output};

#[derive(Debug, Args)]
#[command(
    mut_arg("condition_expression", |a| a.help(
        "A condition that must be satisfied in order for a conditional update to succeed"
    )),
    mut_arg("return_values_on_condition_check_failure", |a| a.help(
        "An optional parameter that returns the item attributes for an UpdateItem operation that failed a \
         condition check: NONE or ALL_OLD"
    )),
)]
pub struct UpdateItem {
    /// The name of the table containing the item to update.
    #[arg(long)]
    pub table_name: String,
    /// The primary key of the item to be updated. Each element consists of an attribute name and a value for
    /// that attribute. In DynamoDB JSON, or file://key.json.
    #[arg(long)]
    pub key: String,
    /// An expression that defines one or more attributes to be updated, the action to be performed on them,
    /// and new values for them.
    #[arg(long)]
    pub update_expression: Option<String>,
    /// Use ReturnValues if you want to get the item attributes as they appear before or after they are
    /// successfully updated: NONE (the default), ALL_OLD, UPDATED_OLD, ALL_NEW or UPDATED_NEW.
    #[arg(long)]
    pub return_values: Option<String>,
    #[command(flatten)]
    pub condition: Conditional,
}

impl UpdateItem {
    pub async fn run(&self, client: &Client) -> anyhow::Result<Json> {
        let request = v1::UpdateItemRequest {
            table_name: self.table_name.clone(),
            key: input::item(&self.key)?,
            update_expression: self.update_expression.clone().unwrap_or_default(),
            condition_expression: self.condition.condition_expression.clone().unwrap_or_default(),
            expression_attribute_names: self.condition.names()?,
            expression_attribute_values: self.condition.values()?,
            return_values: self.return_values.clone().unwrap_or_default(),
            return_values_on_condition_check_failure: self
                .condition
                .return_values_on_condition_check_failure
                .clone()
                .unwrap_or_default(),
        };
        let response = client.update_item(request).await?;
        Ok(output::write_result(response.attributes.as_ref(), response.item_version.as_ref()))
    }
}

fn string(object: &Json, field: &str) -> String {
    object.get(field).and_then(Json::as_str).unwrap_or_default().to_string()
}

fn names(object: &Json) -> anyhow::Result<BTreeMap<String, String>> {
    match object.get("ExpressionAttributeNames") {
        Some(names) => {
            serde_json::from_value(names.clone()).context("ExpressionAttributeNames must be an object of strings")
        }
        None => Ok(BTreeMap::new()),
    }
}

fn dynamo_item(object: &Json, field: &str) -> anyhow::Result<BTreeMap<String, v1::AttributeValue>> {
    match object.get(field) {
        Some(value) => Ok(tern_proto::value::item_to_wire(&tern_proto::json::item_from_json(value)?)),
        None => Ok(BTreeMap::new()),
    }
}

#[derive(Debug, Args)]
pub struct BatchGetItem {
    /// A map of one or more table names and, for each table, a map that describes one or more items to
    /// retrieve from that table: `{"Table":{"Keys":[{...}],"ProjectionExpression":"...","ConsistentRead":true}}`
    /// or file://...
    #[arg(long)]
    pub request_items: String,
}

impl BatchGetItem {
    pub async fn run(&self, client: &Client) -> anyhow::Result<Json> {
        let Json::Object(tables) = input::json(&self.request_items)? else {
            bail!("--request-items must be a JSON object")
        };
        let mut request_items = BTreeMap::new();
        for (table, spec) in tables {
            let keys = spec.get("Keys").and_then(Json::as_array).context("each table needs Keys")?;
            let keys = keys
                .iter()
                .map(|k| {
                    Ok(v1::Item { attributes: tern_proto::value::item_to_wire(&tern_proto::json::item_from_json(k)?) })
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let wanted = v1::KeysAndAttributes {
                keys,
                projection_expression: string(&spec, "ProjectionExpression"),
                expression_attribute_names: names(&spec)?,
                consistent_read: spec.get("ConsistentRead").and_then(Json::as_bool).unwrap_or(false),
            };
            request_items.insert(table, wanted);
        }
        let response = client.batch_get_item(v1::BatchGetItemRequest { request_items }).await?;
        let responses: Map<String, Json> = response
            .responses
            .iter()
            .map(|(t, list)| (t.clone(), json!(list.items.iter().map(output::item).collect::<Vec<_>>())))
            .collect();
        Ok(json!({ "Responses": responses, "UnprocessedKeys": {} }))
    }
}

#[derive(Debug, Args)]
pub struct BatchWriteItem {
    /// A map of one or more table names and, for each table, a list of operations to be performed
    /// (DeleteRequest or PutRequest): `{"Table":[{"PutRequest":{"Item":{...}}},{"DeleteRequest":{"Key":{...}}}]}`
    /// or file://...
    #[arg(long)]
    pub request_items: String,
}

impl BatchWriteItem {
    pub async fn run(&self, client: &Client) -> anyhow::Result<Json> {
        let Json::Object(tables) = input::json(&self.request_items)? else {
            bail!("--request-items must be a JSON object")
        };
        let mut request_items = BTreeMap::new();
        for (table, writes) in tables {
            let writes = writes.as_array().context("each table maps to a list of write requests")?;
            let mut requests = Vec::new();
            for write in writes {
                let request = if let Some(put) = write.get("PutRequest") {
                    WriteKind::PutRequest(v1::PutRequest { item: dynamo_item(put, "Item")? })
                } else if let Some(delete) = write.get("DeleteRequest") {
                    WriteKind::DeleteRequest(v1::DeleteRequest { key: dynamo_item(delete, "Key")? })
                } else {
                    bail!("a write request needs PutRequest or DeleteRequest: {write}");
                };
                requests.push(v1::WriteRequest { request: Some(request) });
            }
            request_items.insert(table, v1::WriteRequestList { requests });
        }
        client.batch_write_item(v1::BatchWriteItemRequest { request_items }).await?;
        Ok(json!({ "UnprocessedItems": {} }))
    }
}

#[derive(Debug, Args)]
pub struct TransactWriteItems {
    /// An ordered array of up to 100 TransactWriteItem objects, each of which contains a ConditionCheck, Put,
    /// Update, or Delete object: `[{"Put":{...}},{"Update":{...}},{"Delete":{...}},{"ConditionCheck":{...}}]`
    /// or file://...
    #[arg(long)]
    pub transact_items: String,
    /// Providing a ClientRequestToken makes the call to TransactWriteItems idempotent, meaning that multiple
    /// identical calls have the same effect as one single call.
    #[arg(long)]
    pub client_request_token: Option<String>,
}

impl TransactWriteItems {
    pub async fn run(&self, client: &Client) -> anyhow::Result<Json> {
        let items = input::json(&self.transact_items)?;
        let items = items.as_array().context("--transact-items must be a JSON array")?;
        let mut transact_items = Vec::new();
        for item in items {
            let on_failure = |o: &Json| string(o, "ReturnValuesOnConditionCheckFailure");
            let action = if let Some(put) = item.get("Put") {
                Action::Put(v1::PutItemRequest {
                    table_name: string(put, "TableName"),
                    item: dynamo_item(put, "Item")?,
                    condition_expression: string(put, "ConditionExpression"),
                    expression_attribute_names: names(put)?,
                    expression_attribute_values: dynamo_item(put, "ExpressionAttributeValues")?,
                    return_values_on_condition_check_failure: on_failure(put),
                    return_values: String::new(),
                })
            } else if let Some(update) = item.get("Update") {
                Action::Update(v1::UpdateItemRequest {
                    table_name: string(update, "TableName"),
                    key: dynamo_item(update, "Key")?,
                    update_expression: string(update, "UpdateExpression"),
                    condition_expression: string(update, "ConditionExpression"),
                    expression_attribute_names: names(update)?,
                    expression_attribute_values: dynamo_item(update, "ExpressionAttributeValues")?,
                    return_values_on_condition_check_failure: on_failure(update),
                    return_values: String::new(),
                })
            } else if let Some(delete) = item.get("Delete") {
                Action::Delete(v1::DeleteItemRequest {
                    table_name: string(delete, "TableName"),
                    key: dynamo_item(delete, "Key")?,
                    condition_expression: string(delete, "ConditionExpression"),
                    expression_attribute_names: names(delete)?,
                    expression_attribute_values: dynamo_item(delete, "ExpressionAttributeValues")?,
                    return_values_on_condition_check_failure: on_failure(delete),
                    return_values: String::new(),
                })
            } else if let Some(check) = item.get("ConditionCheck") {
                Action::ConditionCheck(v1::ConditionCheck {
                    table_name: string(check, "TableName"),
                    key: dynamo_item(check, "Key")?,
                    condition_expression: string(check, "ConditionExpression"),
                    expression_attribute_names: names(check)?,
                    expression_attribute_values: dynamo_item(check, "ExpressionAttributeValues")?,
                    return_values_on_condition_check_failure: on_failure(check),
                })
            } else {
                bail!("each transact item needs one of Put, Update, Delete or ConditionCheck: {item}");
            };
            transact_items.push(v1::TransactWriteItem { action: Some(action) });
        }
        let request = v1::TransactWriteItemsRequest {
            transact_items,
            client_request_token: self.client_request_token.clone().unwrap_or_default(),
        };
        let response = client.transact_write_items(request).await?;
        Ok(match &response.item_version {
            Some(version) => json!({ "ItemVersion": output::version(version) }),
            None => json!({}),
        })
    }
}

#[derive(Debug, Args)]
pub struct TransactGetItems {
    /// An ordered array of up to 100 TransactGetItem objects, each of which contains a Get structure:
    /// `[{"Get":{"TableName":"T","Key":{...},"ProjectionExpression":"..."}}]` or file://...
    #[arg(long)]
    pub transact_items: String,
}

impl TransactGetItems {
    pub async fn run(&self, client: &Client) -> anyhow::Result<Json> {
        let items = input::json(&self.transact_items)?;
        let items = items.as_array().context("--transact-items must be a JSON array")?;
        let mut transact_items = Vec::new();
        for item in items {
            let get = item.get("Get").with_context(|| format!("each transact item needs Get: {item}"))?;
            transact_items.push(v1::TransactGetItem {
                get: Some(v1::GetItemRequest {
                    table_name: string(get, "TableName"),
                    key: dynamo_item(get, "Key")?,
                    projection_expression: string(get, "ProjectionExpression"),
                    expression_attribute_names: names(get)?,
                    ..Default::default()
                }),
            });
        }
        let response = client.transact_get_items(v1::TransactGetItemsRequest { transact_items }).await?;
        let responses: Vec<Json> = response
            .responses
            .iter()
            .map(|r| r.item.as_ref().map_or(json!({}), |i| json!({ "Item": output::item(i) })))
            .collect();
        Ok(json!({ "Responses": responses }))
    }
}
