//! The read operations: GetItem, BatchGetItem, TransactGetItems, Query and Scan, with filters,
//! projections and Select applied after the page is read (so Limit and the 1 MB page count items
//! before the filter, as in DynamoDB).

use std::collections::{BTreeMap, BTreeSet};

use tern_proto::v1::*;
use tern_proto::value::{item_from_wire, item_to_wire, Item as DomainItem};
use tern_proto::ApiError;
use tonic::{Request, Status};

use super::key_condition;
use super::tern::TernService;
use super::validate::{self, canonical, expression_values, placeholders_need_expressions, Select};
use crate::keyspace::item_key;
use crate::reader::{KeyRange, PageRequest};
use crate::routing::Caller;
use crate::schema::TableSchema;
use crate::ttl;
use tern_expression::ast::Condition;
use tern_expression::{self as expression, DocumentPath, ExpressionKind, ExpressionSet, Placeholders};

/// Most keys in one BatchGetItem, and actions in one TransactGetItems.
pub const MAX_BATCH_GETS: usize = 100;

/// What to do with the items a page read: filter, project, or only count them.
struct Shape {
    filter: Option<Condition>,
    projection: Option<Vec<DocumentPath>>,
    names: BTreeMap<String, String>,
    values: DomainItem,
    select: Select,
}

impl Shape {
    /// Parses and checks the expressions of a Query or Scan.
    fn new(
        names: &BTreeMap<String, String>,
        values: DomainItem,
        key_condition: Option<&str>,
        filter: &str,
        projection: &str,
        select: &str,
    ) -> Result<(Shape, Option<Condition>), ApiError> {
        let select = validate::select(select, !projection.is_empty())?;
        let mut set = ExpressionSet::new(names, &values);
        let key_condition = key_condition.map(|text| set.condition(ExpressionKind::KeyCondition, text)).transpose()?;
        let filter = (!filter.is_empty()).then(|| set.condition(ExpressionKind::Filter, filter)).transpose()?;
        let projection = (!projection.is_empty()).then(|| set.projection(projection)).transpose()?;
        set.finish()?;
        let ctx = Placeholders { names, values: &values };
        let projection = projection.map(|p| resolve_projection(&ctx, &p)).transpose()?;
        Ok((Shape { filter, projection, names: names.clone(), values, select }, key_condition))
    }

    fn apply(&self, mut page: ItemPage) -> Result<ItemPage, ApiError> {
        if self.filter.is_none() && self.projection.is_none() && self.select == Select::AllAttributes {
            return Ok(page);
        }
        let ctx = Placeholders { names: &self.names, values: &self.values };
        let versions = std::mem::take(&mut page.item_versions);
        let mut items = Vec::new();
        let mut kept_versions = Vec::new();
        let mut count = 0;
        for (i, item) in std::mem::take(&mut page.items).into_iter().enumerate() {
            let domain = item_from_wire(item.attributes)?;
            if let Some(filter) = &self.filter {
                if !expression::condition::evaluate(&ctx, filter, &domain)? {
                    continue;
                }
            }
            count += 1;
            if self.select == Select::Count {
                continue;
            }
            let shown = match &self.projection {
                Some(paths) => expression::projection::project(&domain, paths),
                None => domain,
            };
            items.push(Item { attributes: item_to_wire(&shown) });
            kept_versions.extend(versions.get(i).cloned());
        }
        page.items = items;
        page.item_versions = kept_versions;
        page.count = count;
        Ok(page)
    }
}

fn now_secs() -> u64 {
    crate::clock::now_micros() / 1_000_000
}

/// Resolves a projection's paths, rejecting overlapping ones.
fn resolve_projection(
    ctx: &Placeholders,
    projection: &expression::ast::Projection,
) -> Result<Vec<DocumentPath>, ApiError> {
    let paths: Vec<DocumentPath> = projection.0.iter().map(|p| ctx.resolve(p)).collect();
    let refs: Vec<&DocumentPath> = paths.iter().collect();
    if let Some((a, b)) = expression::document::overlapping(&refs) {
        return Err(ExpressionKind::Projection.invalid(format!(
            "Two document paths overlap with each other; must remove or rewrite one of these paths; path one: {}, path two: {}",
            expression::document::describe(a),
            expression::document::describe(b)
        )));
    }
    Ok(paths)
}

/// Parses a ProjectionExpression that uses only names (GetItem, BatchGetItem, TransactGetItems).
fn projection_only(names: &BTreeMap<String, String>, projection: &str) -> Result<Option<Vec<DocumentPath>>, ApiError> {
    placeholders_need_expressions(names, &BTreeMap::new(), &[("ProjectionExpression", projection)], &[])?;
    let values = DomainItem::new();
    let mut set = ExpressionSet::new(names, &values);
    let parsed = (!projection.is_empty()).then(|| set.projection(projection)).transpose()?;
    set.finish()?;
    parsed.map(|p| resolve_projection(&Placeholders { names, values: &values }, &p)).transpose()
}

/// A GetItem's checks that need no table: its key made canonical, and its projection's paths.
pub fn check_get(request: &mut GetItemRequest) -> Result<Option<Vec<DocumentPath>>, ApiError> {
    request.key = canonical(std::mem::take(&mut request.key))?;
    projection_only(&request.expression_attribute_names, &request.projection_expression)
}

/// One key a BatchGetItem reads: its table, storage key and projection, and what `table` gave for
/// its table.
pub struct BatchRead<T> {
    pub table: String,
    pub key: Vec<u8>,
    pub paths: Option<Vec<DocumentPath>>,
    pub table_info: T,
}

/// A BatchGetItem's checks, in DynamoDB's order, with `table` resolving each table's schema: its keys
/// made canonical, in the order they are read.
pub fn check_batch_get<T: Clone>(
    request: &mut BatchGetItemRequest,
    mut table: impl FnMut(&str) -> Result<(TableSchema, T), ApiError>,
) -> Result<Vec<BatchRead<T>>, ApiError> {
    if request.request_items.is_empty() {
        return Err(ApiError::validation("The requestItems parameter is required for BatchGetItem"));
    }
    let total: usize = request.request_items.values().map(|k| k.keys.len()).sum();
    if total > MAX_BATCH_GETS {
        return Err(ApiError::validation("Too many items requested for the BatchGetItem call"));
    }
    let mut reads = Vec::new();
    for (name, wanted) in request.request_items.iter_mut() {
        if wanted.keys.len() > MAX_BATCH_GETS {
            return Err(ApiError::validation(format!(
                "1 validation error detected: Value at 'RequestItems.{name}.member.Keys' failed to satisfy constraint: Member must have length less than or equal to {MAX_BATCH_GETS}"
            )));
        }
        let (schema, table_info) = table(name)?;
        let paths = projection_only(&wanted.expression_attribute_names, &wanted.projection_expression)?;
        let mut seen = BTreeSet::new();
        for key in &mut wanted.keys {
            key.attributes = canonical(std::mem::take(&mut key.attributes))?;
            schema.check_key_only(&key.attributes)?;
            let storage_key = schema.storage_key(&key.attributes)?;
            if !seen.insert(storage_key.clone()) {
                return Err(ApiError::validation("Provided list of item keys contains duplicates"));
            }
            reads.push(BatchRead {
                table: name.clone(),
                key: storage_key,
                paths: paths.clone(),
                table_info: table_info.clone(),
            });
        }
    }
    Ok(reads)
}

/// The partition a Query reads (the cache tier files the pages it caches under it).
pub fn query_partition(schema: &TableSchema, request: &QueryRequest) -> Result<AttributeValue, ApiError> {
    let (_, values) = expression_values(request.expression_attribute_values.clone())?;
    let (shape, condition) = Shape::new(
        &request.expression_attribute_names,
        values,
        Some(&request.key_condition_expression),
        &request.filter_expression,
        &request.projection_expression,
        &request.select,
    )?;
    let condition = condition.ok_or_else(|| ApiError::validation("A Query needs a KeyConditionExpression"))?;
    let ctx = Placeholders { names: &shape.names, values: &shape.values };
    Ok(key_condition::from_condition(&ctx, &condition, schema)?.partition_value)
}

/// An item as a read shows it, projected to `paths`.
pub fn projected(item: Item, paths: &Option<Vec<DocumentPath>>) -> Result<Item, ApiError> {
    match paths {
        Some(paths) => Ok(Item {
            attributes: item_to_wire(&expression::projection::project(&item_from_wire(item.attributes)?, paths)),
        }),
        None => Ok(item),
    }
}

impl TernService {
    pub async fn get(&self, request: Request<GetItemRequest>) -> Result<GetItemResponse, Status> {
        let caller = Caller::of(&request);
        let request = request.into_inner();
        let consistent = request.consistent_read;
        // A strongly consistent read resolves the table on the leader, after the read barrier.
        self.node.read(caller, consistent, request, |request| self.get_here(request)).await
    }

    fn get_here(&self, mut request: GetItemRequest) -> Result<GetItemResponse, Status> {
        let applied_through_micros = self.node.reader.applied_through();
        let paths = check_get(&mut request)?;
        let (schema, table) = self.node.reader.table(&request.table_name)?;
        schema.check_key_only(&request.key)?;
        let key = schema.storage_key(&request.key)?;
        let reader = &self.node.reader;
        let stored = reader.item(&key)?.filter(|s| !ttl::hidden(&table, &s.attributes, now_secs()));
        let item_version = stored.as_ref().filter(|_| request.return_item_version).map(|s| ItemVersion {
            write_timestamp_micros: s.write_timestamp_micros,
            origin_region: s.origin_region.clone(),
        });
        let item = stored.map(|s| projected(Item { attributes: s.attributes }, &paths)).transpose()?;
        Ok(GetItemResponse { item, item_version, applied_through_micros })
    }

    pub async fn batch_get(&self, request: Request<BatchGetItemRequest>) -> Result<BatchGetItemResponse, Status> {
        let caller = Caller::of(&request);
        let request = request.into_inner();
        let consistent = request.request_items.values().any(|k| k.consistent_read);
        // A strongly consistent read resolves the table on the leader, after the read barrier.
        self.node.read(caller, consistent, request, |request| self.batch_get_here(request)).await
    }

    fn batch_get_here(&self, mut request: BatchGetItemRequest) -> Result<BatchGetItemResponse, Status> {
        let applied_through_micros = self.node.reader.applied_through();
        let reads = check_batch_get(&mut request, |table| self.node.reader.table(table))?;
        let reads: Vec<_> = reads.into_iter().map(|r| (r.table, r.key, r.paths, r.table_info)).collect();
        let reader = &self.node.reader;
        let keys: Vec<Vec<u8>> = reads.iter().map(|(_, k, _, _)| k.clone()).collect();
        let mut responses: BTreeMap<String, ItemList> = BTreeMap::new();
        let now = now_secs();
        for ((table, _, paths, stored_table), stored) in reads.iter().zip(reader.items_at_one_point(&keys)?) {
            let list = responses.entry(table.clone()).or_default();
            if let Some(stored) = stored.filter(|s| !ttl::hidden(stored_table, &s.attributes, now)) {
                list.items.push(projected(Item { attributes: stored.attributes }, paths)?);
            }
        }
        Ok(BatchGetItemResponse { responses, unprocessed_keys: BTreeMap::new(), applied_through_micros })
    }

    pub async fn transact_get(
        &self,
        request: Request<TransactGetItemsRequest>,
    ) -> Result<TransactGetItemsResponse, Status> {
        let caller = Caller::of(&request);
        let request = request.into_inner();
        let consistent = true;
        // A strongly consistent read resolves the table on the leader, after the read barrier.
        self.node.read(caller, consistent, request, |request| self.transact_get_here(request)).await
    }

    fn transact_get_here(&self, mut request: TransactGetItemsRequest) -> Result<TransactGetItemsResponse, Status> {
        let count = request.transact_items.len();
        if count == 0 || count > MAX_BATCH_GETS {
            return Err(ApiError::validation(format!(
                "1 validation error detected: Value at 'transactItems' failed to satisfy constraint: Member must have length less than or equal to {MAX_BATCH_GETS} and greater than or equal to 1"
            ))
            .into());
        }
        let mut reads = Vec::new();
        let mut seen = BTreeSet::new();
        for item in &mut request.transact_items {
            let get = item.get.as_mut().ok_or_else(|| ApiError::validation("TransactGetItem needs a Get"))?;
            get.key = canonical(std::mem::take(&mut get.key))?;
            let paths = projection_only(&get.expression_attribute_names, &get.projection_expression)?;
            let (schema, stored_table) = self.node.reader.table(&get.table_name)?;
            schema.check_key_only(&get.key)?;
            let key = schema.storage_key(&get.key)?;
            if !seen.insert((get.table_name.clone(), key.clone())) {
                return Err(
                    ApiError::validation("Transaction request cannot include multiple operations on one item").into()
                );
            }
            reads.push((key, paths, stored_table));
        }
        // All items from one point of the log: a read-index barrier, then one consistent view.
        let reader = &self.node.reader;
        let keys: Vec<Vec<u8>> = reads.iter().map(|(k, _, _)| k.clone()).collect();
        let mut responses = Vec::new();
        let now = now_secs();
        for ((_, paths, stored_table), stored) in reads.iter().zip(reader.items_at_one_point(&keys)?) {
            let stored = stored.filter(|s| !ttl::hidden(stored_table, &s.attributes, now));
            let item = stored.map(|s| projected(Item { attributes: s.attributes }, paths)).transpose()?;
            responses.push(ItemResponse { item });
        }
        Ok(TransactGetItemsResponse { responses })
    }

    pub async fn query_page(&self, request: Request<QueryRequest>) -> Result<ItemPage, Status> {
        let caller = Caller::of(&request);
        let request = request.into_inner();
        let consistent = request.consistent_read;
        // A strongly consistent read resolves the table on the leader, after the read barrier.
        self.node.read(caller, consistent, request, |request| self.query_page_here(request)).await
    }

    fn query_page_here(&self, mut request: QueryRequest) -> Result<ItemPage, Status> {
        if request.key_condition_expression.is_empty() {
            return Err(ApiError::validation(
                "Either the KeyConditions or KeyConditionExpression parameter must be specified in the request.",
            )
            .into());
        }
        let (wire, values) = expression_values(std::mem::take(&mut request.expression_attribute_values))?;
        request.expression_attribute_values = wire;
        let (schema, table) = self.node.reader.table(&request.table_name)?;
        let (shape, condition) = Shape::new(
            &request.expression_attribute_names,
            values,
            Some(&request.key_condition_expression),
            &request.filter_expression,
            &request.projection_expression,
            &request.select,
        )?;
        let ctx = Placeholders { names: &shape.names, values: &shape.values };
        let condition = key_condition::from_condition(&ctx, &condition.expect("a key condition was parsed"), &schema)?;
        let range = condition.range(&schema)?;
        let start_after = match &request.exclusive_start_key {
            Some(key) => {
                let key = canonical(key.attributes.clone())?;
                schema.check_key_only(&key)?;
                let start = schema.storage_key(&key)?;
                if !start.starts_with(&schema.partition_prefix(&condition.partition_value)?) {
                    return Err(ApiError::validation(
                        "The provided starting key does not match the range key predicate",
                    )
                    .into());
                }
                Some(start)
            }
            None => None,
        };
        let page = PageRequest {
            range,
            forward: request.scan_index_forward.unwrap_or(true),
            start_after,
            limit: request.limit,
            with_versions: request.return_item_versions,
        };
        let reader = &self.node.reader;
        let applied_through_micros = reader.applied_through();
        let mut page = shape.apply(ttl::hide_expired(&table, reader.page(&schema, page)?, now_secs()))?;
        page.applied_through_micros = applied_through_micros;
        Ok(page)
    }

    pub async fn scan_page(&self, request: Request<ScanRequest>) -> Result<ItemPage, Status> {
        let caller = Caller::of(&request);
        let request = request.into_inner();
        let consistent = request.consistent_read;
        // A strongly consistent read resolves the table on the leader, after the read barrier.
        self.node.read(caller, consistent, request, |request| self.scan_page_here(request)).await
    }

    fn scan_page_here(&self, mut request: ScanRequest) -> Result<ItemPage, Status> {
        placeholders_need_expressions(
            &request.expression_attribute_names,
            &request.expression_attribute_values,
            &[
                ("FilterExpression", &request.filter_expression),
                ("ProjectionExpression", &request.projection_expression),
            ],
            &[("FilterExpression", &request.filter_expression)],
        )?;
        let segments = validate::segments(request.segment, request.total_segments)?;
        let (wire, values) = expression_values(std::mem::take(&mut request.expression_attribute_values))?;
        request.expression_attribute_values = wire;
        let (schema, table) = self.node.reader.table(&request.table_name)?;
        let (shape, _) = Shape::new(
            &request.expression_attribute_names,
            values,
            None,
            &request.filter_expression,
            &request.projection_expression,
            &request.select,
        )?;
        // A segment is a contiguous range of partition buckets.
        let (first, end) = match segments {
            Some((segment, total)) => {
                let bucket = |s: u32| (s as u64 * item_key::BUCKETS as u64 / total as u64) as u32;
                (bucket(segment), bucket(segment + 1))
            }
            None => (0, item_key::BUCKETS),
        };
        let range = KeyRange {
            lower: item_key::bucket_start(schema.table_id, first),
            upper: item_key::bucket_start(schema.table_id, end),
        };
        let start_after = match &request.exclusive_start_key {
            Some(key) => {
                let key = canonical(key.attributes.clone())?;
                schema.check_key_only(&key)?;
                Some(schema.storage_key(&key)?)
            }
            None => None,
        };
        let page = PageRequest {
            range,
            forward: true,
            start_after,
            limit: request.limit,
            with_versions: request.return_item_versions,
        };
        let reader = &self.node.reader;
        let applied_through_micros = reader.applied_through();
        let mut page = shape.apply(ttl::hide_expired(&table, reader.page(&schema, page)?, now_secs()))?;
        page.applied_through_micros = applied_through_micros;
        Ok(page)
    }
}
