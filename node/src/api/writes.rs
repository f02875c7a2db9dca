//! The write operations: checked on the node that receives them, proposed on the leader (forwarded
//! there from a follower), decided at apply time.

use std::collections::BTreeSet;

use tern_proto::v1::*;
use tern_proto::ApiError;
use tonic::{Request, Status};

use super::tern::TernService;
use super::validate::{self, canonical, expression_values, placeholders_need_expressions};
use crate::routing::{Caller, RegionNode};
use crate::schema::TableSchema;
use tern_expression::{self as expression, ExpressionKind, ExpressionSet, Placeholders};

/// Most writes in one BatchWriteItem.
pub const MAX_BATCH_WRITES: usize = 25;
/// Most actions in one transaction.
pub const MAX_TRANSACTION_ACTIONS: usize = 100;

/// A PutItem's checks; returns its storage key.
fn check_put(node: &RegionNode, r: &mut PutItemRequest) -> Result<Vec<u8>, ApiError> {
    r.item = canonical(std::mem::take(&mut r.item))?;
    check_conditional_write(
        &r.return_values,
        &r.return_values_on_condition_check_failure,
        &r.condition_expression,
        &r.expression_attribute_names,
        &mut r.expression_attribute_values,
    )?;
    let (schema, _) = node.reader.table(&r.table_name)?;
    schema.storage_key(&r.item)
}

/// The checks PutItem and DeleteItem share: ReturnValues NONE or ALL_OLD, and the ConditionExpression
/// with its placeholders (values made canonical).
fn check_conditional_write(
    return_values: &str,
    on_failure: &str,
    condition: &str,
    names: &std::collections::BTreeMap<String, String>,
    values: &mut std::collections::BTreeMap<String, AttributeValue>,
) -> Result<(), ApiError> {
    validate::return_values(return_values, &["NONE", "ALL_OLD"])?;
    validate::return_on_failure(on_failure)?;
    placeholders_need_expressions(
        names,
        values,
        &[("ConditionExpression", condition)],
        &[("ConditionExpression", condition)],
    )?;
    check_condition_expression(condition, names, values)
}

/// A DeleteItem's checks; returns its storage key.
fn check_delete(node: &RegionNode, r: &mut DeleteItemRequest) -> Result<Vec<u8>, ApiError> {
    r.key = canonical(std::mem::take(&mut r.key))?;
    check_conditional_write(
        &r.return_values,
        &r.return_values_on_condition_check_failure,
        &r.condition_expression,
        &r.expression_attribute_names,
        &mut r.expression_attribute_values,
    )?;
    let (schema, _) = node.reader.table(&r.table_name)?;
    schema.check_key_only(&r.key)?;
    schema.storage_key(&r.key)
}

/// An UpdateItem's checks; returns its storage key.
fn check_update(node: &RegionNode, r: &mut UpdateItemRequest) -> Result<Vec<u8>, ApiError> {
    validate::return_values(&r.return_values, &["NONE", "ALL_OLD", "UPDATED_OLD", "ALL_NEW", "UPDATED_NEW"])?;
    validate::return_on_failure(&r.return_values_on_condition_check_failure)?;
    placeholders_need_expressions(
        &r.expression_attribute_names,
        &r.expression_attribute_values,
        &[("UpdateExpression", &r.update_expression), ("ConditionExpression", &r.condition_expression)],
        &[("UpdateExpression", &r.update_expression), ("ConditionExpression", &r.condition_expression)],
    )?;
    r.key = canonical(std::mem::take(&mut r.key))?;
    let (wire, values) = expression_values(std::mem::take(&mut r.expression_attribute_values))?;
    r.expression_attribute_values = wire;
    let (schema, _) = node.reader.table(&r.table_name)?;
    schema.check_key_only(&r.key)?;
    let key = schema.storage_key(&r.key)?;
    let mut set = ExpressionSet::new(&r.expression_attribute_names, &values);
    if !r.update_expression.is_empty() {
        let update = set.update(&r.update_expression)?;
        let key_names: Vec<&str> = schema.key_attributes().map(|k| k.name.as_str()).collect();
        expression::update::check(
            &Placeholders { names: &r.expression_attribute_names, values: &values },
            &update,
            &key_names,
        )?;
    }
    if !r.condition_expression.is_empty() {
        set.condition(ExpressionKind::Condition, &r.condition_expression)?;
    }
    set.finish()?;
    Ok(key)
}

/// Parses and checks a ConditionExpression with its placeholders (values made canonical).
fn check_condition_expression(
    expression: &str,
    names: &std::collections::BTreeMap<String, String>,
    values: &mut std::collections::BTreeMap<String, AttributeValue>,
) -> Result<(), ApiError> {
    let (wire, domain) = expression_values(std::mem::take(values))?;
    *values = wire;
    let mut set = ExpressionSet::new(names, &domain);
    if !expression.is_empty() {
        set.condition(ExpressionKind::Condition, expression)?;
    }
    set.finish()
}

fn check_condition_check(node: &RegionNode, c: &mut ConditionCheck) -> Result<Vec<u8>, ApiError> {
    validate::return_on_failure(&c.return_values_on_condition_check_failure)?;
    if c.condition_expression.is_empty() {
        return Err(ApiError::validation("The ConditionCheck's ConditionExpression must be specified"));
    }
    c.key = canonical(std::mem::take(&mut c.key))?;
    check_condition_expression(
        &c.condition_expression,
        &c.expression_attribute_names,
        &mut c.expression_attribute_values,
    )?;
    let (schema, _): (TableSchema, _) = node.reader.table(&c.table_name)?;
    schema.check_key_only(&c.key)?;
    schema.storage_key(&c.key)
}

/// A BatchWriteItem's checks: sizes, each request against its table's schema, no key twice.
fn check_batch_write(node: &RegionNode, request: &mut BatchWriteItemRequest) -> Result<(), ApiError> {
    let total: usize = request.request_items.values().map(|l| l.requests.len()).sum();
    if request.request_items.is_empty() {
        return Err(ApiError::validation("The requestItems parameter is required for BatchWriteItem"));
    }
    if total == 0 || total > MAX_BATCH_WRITES {
        return Err(ApiError::validation(format!(
                "1 validation error detected: Value at 'requestItems' failed to satisfy constraint: Map value must satisfy constraint: [Member must have length less than or equal to {MAX_BATCH_WRITES}, Member must have length greater than or equal to 1]"
            )));
    }
    for (table, list) in request.request_items.iter_mut() {
        let (schema, _) = node.reader.table(table)?;
        let mut keys = BTreeSet::new();
        for write in &mut list.requests {
            let key = match &mut write.request {
                Some(write_request::Request::PutRequest(put)) => {
                    put.item = canonical(std::mem::take(&mut put.item))?;
                    schema.storage_key(&put.item)?
                }
                Some(write_request::Request::DeleteRequest(delete)) => {
                    delete.key = canonical(std::mem::take(&mut delete.key))?;
                    schema.check_key_only(&delete.key)?;
                    schema.storage_key(&delete.key)?
                }
                None => {
                    return Err(ApiError::validation("A WriteRequest needs a PutRequest or a DeleteRequest"));
                }
            };
            if !keys.insert(key) {
                return Err(ApiError::validation("Provided list of item keys contains duplicates"));
            }
        }
    }
    Ok(())
}

/// A TransactWriteItems' checks: sizes, the token, each action against its table, no item twice.
fn check_transact_write(node: &RegionNode, request: &mut TransactWriteItemsRequest) -> Result<(), ApiError> {
    let count = request.transact_items.len();
    if count == 0 {
        return Err(ApiError::validation(
                "1 validation error detected: Value '[]' at 'transactItems' failed to satisfy constraint: Member must have length greater than or equal to 1",
            ));
    }
    if count > MAX_TRANSACTION_ACTIONS {
        return Err(ApiError::validation(format!(
                "1 validation error detected: Value at 'transactItems' failed to satisfy constraint: Member must have length less than or equal to {MAX_TRANSACTION_ACTIONS}"
            )));
    }
    if request.client_request_token.len() > 36 {
        return Err(ApiError::validation(
                "1 validation error detected: Value at 'clientRequestToken' failed to satisfy constraint: Member must have length less than or equal to 36",
            ));
    }
    let mut items = BTreeSet::new();
    for item in &mut request.transact_items {
        let (table, key) = match &mut item.action {
            Some(transact_write_item::Action::ConditionCheck(c)) => {
                (c.table_name.clone(), check_condition_check(node, c)?)
            }
            Some(transact_write_item::Action::Put(p)) => (p.table_name.clone(), check_put(node, p)?),
            Some(transact_write_item::Action::Update(u)) => (u.table_name.clone(), check_update(node, u)?),
            Some(transact_write_item::Action::Delete(d)) => (d.table_name.clone(), check_delete(node, d)?),
            None => {
                return Err(ApiError::validation("TransactItems can only contain one of Check, Put, Update or Delete"));
            }
        };
        if !items.insert((table, key)) {
            return Err(ApiError::validation("Transaction request cannot include multiple operations on one item"));
        }
    }
    Ok(())
}

impl TernService {
    pub async fn put(&self, request: Request<PutItemRequest>) -> Result<PutItemResponse, Status> {
        let caller = Caller::of(&request);
        self.node.write_checked(caller, request.into_inner(), |r| check_put(&self.node, r).map(drop)).await
    }

    pub async fn delete(&self, request: Request<DeleteItemRequest>) -> Result<DeleteItemResponse, Status> {
        let caller = Caller::of(&request);
        self.node.write_checked(caller, request.into_inner(), |r| check_delete(&self.node, r).map(drop)).await
    }

    pub async fn update(&self, request: Request<UpdateItemRequest>) -> Result<UpdateItemResponse, Status> {
        let caller = Caller::of(&request);
        self.node.write_checked(caller, request.into_inner(), |r| check_update(&self.node, r).map(drop)).await
    }

    pub async fn batch_write(&self, request: Request<BatchWriteItemRequest>) -> Result<BatchWriteItemResponse, Status> {
        let caller = Caller::of(&request);
        self.node.write_checked(caller, request.into_inner(), |r| check_batch_write(&self.node, r)).await
    }

    pub async fn transact_write(
        &self,
        request: Request<TransactWriteItemsRequest>,
    ) -> Result<TransactWriteItemsResponse, Status> {
        let caller = Caller::of(&request);
        self.node.write_checked(caller, request.into_inner(), |r| check_transact_write(&self.node, r)).await
    }
}
