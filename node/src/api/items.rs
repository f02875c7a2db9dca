//! The public `tern.v1.Tern` service: DynamoDB's table and item operations.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Instant;

use tern_proto::internal::{command, command_outcome};
use tern_proto::v1::tern_server::Tern;
use tern_proto::v1::*;
use tern_proto::value::{item_from_wire, item_to_wire};
use tern_proto::ApiError;
use tonic::{Request, Response, Status};

use super::key_condition;
use super::routing::{RegionNode, Route, FORWARDED_KEY};
use crate::storage::keys;
use crate::storage::reads::{prefix_end, KeyRange, PageRequest};
use crate::storage::schema::{check_create_table, check_table_name};

/// Serves `tern.v1.Tern` on one node.
pub struct TernService {
    node: RegionNode,
}

impl TernService {
    pub fn new(node: RegionNode) -> Self {
        TernService { node }
    }
}

/// Counts a request and records its latency, labelled by operation and outcome.
async fn observe<T>(
    operation: &'static str,
    work: impl Future<Output = Result<T, Status>>,
) -> Result<Response<T>, Status> {
    let started = Instant::now();
    let result = work.await;
    let outcome = match &result {
        Ok(_) => "ok",
        Err(status) => {
            status.metadata().get(tern_proto::error::ERROR_TYPE_KEY).and_then(|v| v.to_str().ok()).unwrap_or("error")
        }
    }
    .to_string();
    metrics::counter!("tern_requests_total", "operation" => operation, "outcome" => outcome).increment(1);
    metrics::histogram!("tern_request_duration_seconds", "operation" => operation)
        .record(started.elapsed().as_secs_f64());
    result.map(Response::new)
}

fn forwarded<T>(request: &Request<T>) -> bool {
    request.metadata().contains_key(FORWARDED_KEY)
}

fn to_leader<T>(message: T) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert(FORWARDED_KEY, tonic::metadata::MetadataValue::from_static("1"));
    request
}

/// Validates attribute values and puts numbers in canonical form.
fn canonical(attributes: BTreeMap<String, AttributeValue>) -> Result<BTreeMap<String, AttributeValue>, ApiError> {
    Ok(item_to_wire(&item_from_wire(attributes)?))
}

fn check_return_values(return_values: &str) -> Result<(), ApiError> {
    match return_values {
        "" | "NONE" | "ALL_OLD" => Ok(()),
        "ALL_NEW" | "UPDATED_OLD" | "UPDATED_NEW" => Err(ApiError::validation("ReturnValues can only be ALL_OLD or NONE")),
        other => Err(ApiError::validation(format!(
            "1 validation error detected: Value '{other}' at 'returnValues' failed to satisfy constraint: Member must satisfy enum value set: [ALL_NEW, UPDATED_OLD, ALL_OLD, NONE, UPDATED_NEW]"
        ))),
    }
}

fn unexpected(outcome: command_outcome::Outcome) -> Status {
    ApiError::internal(format!("unexpected outcome {outcome:?}")).into()
}

/// Proposes a write when this node leads, or forwards the request to the leader. The command and its
/// outcome share the operation's name (`PutItem`, …); `$rpc` is the client method that forwards it.
macro_rules! write_on_leader {
    ($self:ident, $forwarded:expr, $request:expr, $operation:ident, $rpc:ident) => {
        match $self.node.route($forwarded)? {
            Route::Local => match $self.node.propose(command::Op::$operation($request)).await? {
                command_outcome::Outcome::$operation(response) => Ok(response),
                other => Err(unexpected(other)),
            },
            Route::Leader(channel) => {
                Ok(RegionNode::tern_client(channel).$rpc(to_leader($request)).await?.into_inner())
            }
        }
    };
}

impl TernService {
    /// Serves a page read: on this node, or through the leader when it must be strongly consistent.
    async fn read_page(
        &self,
        consistent: bool,
        is_forwarded: bool,
        read: impl FnOnce(&RegionNode) -> Result<ItemPage, ApiError>,
        remote: impl AsyncFnOnce(tern_client::TernClient<tonic::transport::Channel>) -> Result<Response<ItemPage>, Status>,
    ) -> Result<ItemPage, Status> {
        if consistent {
            match self.node.route(is_forwarded)? {
                Route::Local => self.node.linearizable().await?,
                Route::Leader(channel) => return Ok(remote(RegionNode::tern_client(channel)).await?.into_inner()),
            }
        }
        Ok(read(&self.node)?)
    }
}

#[tonic::async_trait]
impl Tern for TernService {
    async fn create_table(
        &self,
        request: Request<CreateTableRequest>,
    ) -> Result<Response<CreateTableResponse>, Status> {
        observe("CreateTable", async {
            let is_forwarded = forwarded(&request);
            let request = request.into_inner();
            check_create_table(&request)?;
            write_on_leader!(self, is_forwarded, request, CreateTable, create_table)
        })
        .await
    }

    async fn describe_table(
        &self,
        request: Request<DescribeTableRequest>,
    ) -> Result<Response<DescribeTableResponse>, Status> {
        observe("DescribeTable", async {
            let request = request.into_inner();
            check_table_name(&request.table_name)?;
            let (_, stored) = self.node.reader.table(&request.table_name)?;
            Ok(DescribeTableResponse { table: stored.description })
        })
        .await
    }

    async fn list_tables(&self, request: Request<ListTablesRequest>) -> Result<Response<ListTablesResponse>, Status> {
        observe("ListTables", async {
            let request = request.into_inner();
            if request.limit > 100 {
                return Err(ApiError::validation(format!(
                    "1 validation error detected: Value '{}' at 'limit' failed to satisfy constraint: Member must have value less than or equal to 100",
                    request.limit
                ))
                .into());
            }
            let limit = if request.limit == 0 { 100 } else { request.limit as usize };
            let (table_names, last) = self.node.reader.list_tables(&request.exclusive_start_table_name, limit)?;
            Ok(ListTablesResponse { table_names, last_evaluated_table_name: last.unwrap_or_default() })
        })
        .await
    }

    async fn delete_table(
        &self,
        request: Request<DeleteTableRequest>,
    ) -> Result<Response<DeleteTableResponse>, Status> {
        observe("DeleteTable", async {
            let is_forwarded = forwarded(&request);
            let request = request.into_inner();
            check_table_name(&request.table_name)?;
            write_on_leader!(self, is_forwarded, request, DeleteTable, delete_table)
        })
        .await
    }

    async fn put_item(&self, request: Request<PutItemRequest>) -> Result<Response<PutItemResponse>, Status> {
        observe("PutItem", async {
            let is_forwarded = forwarded(&request);
            let mut request = request.into_inner();
            check_return_values(&request.return_values)?;
            request.item = canonical(request.item)?;
            let (schema, _) = self.node.reader.table(&request.table_name)?;
            schema.storage_key(&request.item)?;
            write_on_leader!(self, is_forwarded, request, PutItem, put_item)
        })
        .await
    }

    async fn get_item(&self, request: Request<GetItemRequest>) -> Result<Response<GetItemResponse>, Status> {
        observe("GetItem", async {
            let is_forwarded = forwarded(&request);
            let mut request = request.into_inner();
            request.key = canonical(request.key)?;
            let (schema, _) = self.node.reader.table(&request.table_name)?;
            schema.check_key_only(&request.key)?;
            let key = schema.storage_key(&request.key)?;
            if request.consistent_read {
                match self.node.route(is_forwarded)? {
                    Route::Local => self.node.linearizable().await?,
                    Route::Leader(channel) => {
                        return Ok(RegionNode::tern_client(channel).get_item(to_leader(request)).await?.into_inner())
                    }
                }
            }
            let stored = self.node.reader.item(&key)?;
            let item_version = stored.as_ref().filter(|_| request.return_item_version).map(|s| ItemVersion {
                write_timestamp_micros: s.write_timestamp_micros,
                origin_region: s.origin_region.clone(),
            });
            Ok(GetItemResponse { item: stored.map(|s| Item { attributes: s.attributes }), item_version })
        })
        .await
    }

    async fn delete_item(&self, request: Request<DeleteItemRequest>) -> Result<Response<DeleteItemResponse>, Status> {
        observe("DeleteItem", async {
            let is_forwarded = forwarded(&request);
            let mut request = request.into_inner();
            check_return_values(&request.return_values)?;
            request.key = canonical(request.key)?;
            let (schema, _) = self.node.reader.table(&request.table_name)?;
            schema.check_key_only(&request.key)?;
            schema.storage_key(&request.key)?;
            write_on_leader!(self, is_forwarded, request, DeleteItem, delete_item)
        })
        .await
    }

    async fn query(&self, request: Request<QueryRequest>) -> Result<Response<ItemPage>, Status> {
        observe("Query", async {
            let is_forwarded = forwarded(&request);
            let mut request = request.into_inner();
            request.expression_attribute_values = canonical(request.expression_attribute_values)?;
            let (schema, _) = self.node.reader.table(&request.table_name)?;
            let condition = key_condition::parse(
                &request.key_condition_expression,
                &request.expression_attribute_names,
                &request.expression_attribute_values,
                &schema,
            )?;
            let range = condition.range(&schema)?;
            let start_after = match &request.exclusive_start_key {
                Some(key) => {
                    let key = canonical(key.attributes.clone())?;
                    schema.check_key_only(&key)?;
                    let start = schema.storage_key(&key)?;
                    if !start.starts_with(&condition.partition_prefix(&schema)?) {
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
            let forward_request = request.clone();
            self.read_page(
                request.consistent_read,
                is_forwarded,
                |node| node.reader.page(&schema, page),
                async |mut client| client.query(to_leader(forward_request)).await,
            )
            .await
        })
        .await
    }

    async fn scan(&self, request: Request<ScanRequest>) -> Result<Response<ItemPage>, Status> {
        observe("Scan", async {
            let is_forwarded = forwarded(&request);
            let request = request.into_inner();
            let (schema, _) = self.node.reader.table(&request.table_name)?;
            let prefix = keys::table_prefix(schema.table_id);
            let start_after = match &request.exclusive_start_key {
                Some(key) => {
                    let key = canonical(key.attributes.clone())?;
                    schema.check_key_only(&key)?;
                    Some(schema.storage_key(&key)?)
                }
                None => None,
            };
            let page = PageRequest {
                range: KeyRange { upper: prefix_end(&prefix), lower: prefix },
                forward: true,
                start_after,
                limit: request.limit,
                with_versions: request.return_item_versions,
            };
            let forward_request = request.clone();
            self.read_page(
                request.consistent_read,
                is_forwarded,
                |node| node.reader.page(&schema, page),
                async |mut client| client.scan(to_leader(forward_request)).await,
            )
            .await
        })
        .await
    }
}
