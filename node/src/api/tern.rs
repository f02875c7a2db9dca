//! The public `tern.v1.Tern` service: DynamoDB's table and item operations. Each operation is
//! counted and timed here; item writes are in `writes`, reads in `reads`.

use std::future::Future;
use std::time::Instant;

use tern_proto::v1::tern_server::Tern;
use tern_proto::v1::*;
use tern_proto::ApiError;
use tonic::{Request, Response, Status};

use crate::routing::{Caller, RegionNode};
use crate::schema::{check_create_table, check_table_name};
use crate::{global, stream, ttl};

/// Serves `tern.v1.Tern` on one node.
pub struct TernService {
    pub(crate) node: RegionNode,
}

impl TernService {
    pub fn new(node: RegionNode) -> Self {
        TernService { node }
    }
}

/// Counts a request and records its latency, labelled by operation and outcome.
pub async fn observe<T>(
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

#[tonic::async_trait]
impl Tern for TernService {
    async fn create_table(
        &self,
        request: Request<CreateTableRequest>,
    ) -> Result<Response<CreateTableResponse>, Status> {
        observe("CreateTable", async {
            let caller = Caller::of(&request);
            let request = request.into_inner();
            check_create_table(&request)?;
            if let Some(spec) = &request.stream_specification {
                stream::check_specification(spec)?;
            }
            self.node.write(caller, request).await
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
            let applied_through_micros = self.node.reader.applied_through();
            let stored = self.node.reader.described_table(&request.table_name)?;
            Ok(DescribeTableResponse { table: stored.description, applied_through_micros })
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

    async fn update_table(
        &self,
        request: Request<UpdateTableRequest>,
    ) -> Result<Response<UpdateTableResponse>, Status> {
        observe("UpdateTable", async {
            let caller = Caller::of(&request);
            let request = request.into_inner();
            check_table_name(&request.table_name)?;
            if let Some(spec) = &request.stream_specification {
                stream::check_specification(spec)?;
            }
            if request.replica_updates.is_empty() {
                return self.node.write(caller, request).await;
            }
            self.node
                .on_leader(&caller, request, |request| async move {
                    if request.stream_specification.is_some() {
                        let stream_only = UpdateTableRequest { replica_updates: vec![], ..request.clone() };
                        self.node.propose_request(stream_only, None).await?;
                    }
                    Ok(global::replicas::update_replicas(&self.node, request).await?)
                })
                .await
        })
        .await
    }

    async fn update_time_to_live(
        &self,
        request: Request<UpdateTimeToLiveRequest>,
    ) -> Result<Response<UpdateTimeToLiveResponse>, Status> {
        observe("UpdateTimeToLive", async {
            let caller = Caller::of(&request);
            let request = request.into_inner();
            check_table_name(&request.table_name)?;
            let wanted = request
                .time_to_live_specification
                .clone()
                .ok_or_else(|| ApiError::validation("TimeToLiveSpecification is required"))?;
            self.node
                .on_leader(&caller, request, |request| async move {
                    // On the leader: the table as the region has it.
                    let (_, stored) = self.node.reader.table(&request.table_name)?;
                    ttl::check_change(stored.time_to_live.as_ref(), &wanted)?;
                    let stored_name = request.table_name.clone();
                    let response = self.node.propose_request(request, None).await?;
                    let replicas = stored.description.map(|d| d.replicas).unwrap_or_default();
                    global::replicas::share_time_to_live(&self.node, &stored_name, &replicas, &wanted).await?;
                    Ok(response)
                })
                .await
        })
        .await
    }

    async fn describe_time_to_live(
        &self,
        request: Request<DescribeTimeToLiveRequest>,
    ) -> Result<Response<DescribeTimeToLiveResponse>, Status> {
        observe("DescribeTimeToLive", async {
            let request = request.into_inner();
            check_table_name(&request.table_name)?;
            let applied_through_micros = self.node.reader.applied_through();
            let (_, stored) = self.node.reader.table(&request.table_name)?;
            let indexing = stored.ttl_indexing;
            let description = match stored.time_to_live.filter(|t| t.enabled) {
                // ENABLING while the table's items are being indexed (a large table), as DynamoDB.
                Some(spec) => TimeToLiveDescription {
                    time_to_live_status: if indexing { "ENABLING" } else { "ENABLED" }.into(),
                    attribute_name: spec.attribute_name,
                    hide_expired_items: spec.hide_expired_items,
                },
                None => TimeToLiveDescription { time_to_live_status: "DISABLED".into(), ..Default::default() },
            };
            Ok(DescribeTimeToLiveResponse { time_to_live_description: Some(description), applied_through_micros })
        })
        .await
    }

    async fn delete_table(
        &self,
        request: Request<DeleteTableRequest>,
    ) -> Result<Response<DeleteTableResponse>, Status> {
        observe("DeleteTable", async {
            let caller = Caller::of(&request);
            let request = request.into_inner();
            check_table_name(&request.table_name)?;
            self.node.write(caller, request).await
        })
        .await
    }

    async fn put_item(&self, request: Request<PutItemRequest>) -> Result<Response<PutItemResponse>, Status> {
        observe("PutItem", self.put(request)).await
    }

    async fn get_item(&self, request: Request<GetItemRequest>) -> Result<Response<GetItemResponse>, Status> {
        observe("GetItem", self.get(request)).await
    }

    async fn delete_item(&self, request: Request<DeleteItemRequest>) -> Result<Response<DeleteItemResponse>, Status> {
        observe("DeleteItem", self.delete(request)).await
    }

    async fn update_item(&self, request: Request<UpdateItemRequest>) -> Result<Response<UpdateItemResponse>, Status> {
        observe("UpdateItem", self.update(request)).await
    }

    async fn query(&self, request: Request<QueryRequest>) -> Result<Response<ItemPage>, Status> {
        observe("Query", self.query_page(request)).await
    }

    async fn scan(&self, request: Request<ScanRequest>) -> Result<Response<ItemPage>, Status> {
        observe("Scan", self.scan_page(request)).await
    }

    async fn batch_get_item(
        &self,
        request: Request<BatchGetItemRequest>,
    ) -> Result<Response<BatchGetItemResponse>, Status> {
        observe("BatchGetItem", self.batch_get(request)).await
    }

    async fn batch_write_item(
        &self,
        request: Request<BatchWriteItemRequest>,
    ) -> Result<Response<BatchWriteItemResponse>, Status> {
        observe("BatchWriteItem", self.batch_write(request)).await
    }

    async fn transact_write_items(
        &self,
        request: Request<TransactWriteItemsRequest>,
    ) -> Result<Response<TransactWriteItemsResponse>, Status> {
        observe("TransactWriteItems", self.transact_write(request)).await
    }

    async fn transact_get_items(
        &self,
        request: Request<TransactGetItemsRequest>,
    ) -> Result<Response<TransactGetItemsResponse>, Status> {
        observe("TransactGetItems", self.transact_get(request)).await
    }
}
