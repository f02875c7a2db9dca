//! The cache node's public API (`Tern`): reads from the caches, write-through, everything else relayed
//! to the region; and serving it with the services of [`super::passthrough`].

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use ::tern_client::Relay;
use prost::Message;
use tern_proto::internal::cache_admin_server::CacheAdminServer;
use tern_proto::session::{COMPLETED_BELOW_KEY, SEQUENCE_KEY, SESSION_KEY};
use tern_proto::v1::cluster_server::ClusterServer;
use tern_proto::v1::streams_server::StreamsServer;
use tern_proto::v1::tern_client::TernClient;
use tern_proto::v1::tern_server::{Tern, TernServer};
use tern_proto::v1::*;
use tern_proto::ApiError;
use tonic::metadata::MetadataMap;
use tonic::transport::Channel;
use tonic::{Request, Response, Status};

use super::items::{Entry, Fill, ItemKey, Known};
use super::queries::{Generations, Page, Scope};
use super::{api_error, CacheState, TableInfo, TableState};
use crate::api::reads::{self, check_batch_get, check_get, projected};
use crate::api::tern::observe;
use crate::api::validate::canonical;
use crate::routing::MAX_API_MESSAGE_BYTES;

/// Serves a cache node's services on `listener` until SIGTERM or Ctrl-C.
pub async fn serve(state: Arc<CacheState>, listener: tokio::net::TcpListener) -> anyhow::Result<()> {
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    let service = CacheService { state };
    tonic::transport::Server::builder()
        .add_service(
            TernServer::new(service.clone())
                .max_decoding_message_size(MAX_API_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_API_MESSAGE_BYTES),
        )
        .add_service(StreamsServer::new(service.clone()).max_encoding_message_size(MAX_API_MESSAGE_BYTES))
        .add_service(ClusterServer::new(service.clone()))
        .add_service(CacheAdminServer::new(service))
        .serve_with_incoming_shutdown(incoming, async {
            let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .expect("installing a SIGTERM handler");
            tokio::select! {
                _ = terminate.recv() => {},
                _ = tokio::signal::ctrl_c() => {},
            }
        })
        .await?;
    Ok(())
}

/// Publishes the caches' sizes and the feed's lag as gauges, every second.
pub async fn publish_gauges(state: Arc<CacheState>) {
    loop {
        let status = state.status().await;
        metrics::gauge!("tern_cache_entries", "cache" => "item").set(status.item_entries as f64);
        metrics::gauge!("tern_cache_bytes", "cache" => "item").set(status.item_bytes as f64);
        metrics::gauge!("tern_cache_entries", "cache" => "query").set(status.query_entries as f64);
        metrics::gauge!("tern_cache_bytes", "cache" => "query").set(status.query_bytes as f64);
        metrics::gauge!("tern_cache_feed_lag_records").set(status.lag_records as f64);
        metrics::gauge!("tern_cache_feed_lag_seconds").set(status.lag_seconds);
        metrics::gauge!("tern_cache_feed_position").set(status.position as f64);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// A Query or a Scan, for the query cache.
#[derive(Clone)]
enum PageRequest {
    Query(QueryRequest),
    Scan(ScanRequest),
}

#[derive(Clone)]
pub(super) struct CacheService {
    pub(super) state: Arc<CacheState>,
}

/// The caller's session, which a relayed write carries so that the region applies it once however
/// often the caller retries it (through this cache or another).
fn session_of(metadata: &MetadataMap) -> MetadataMap {
    let mut session = MetadataMap::new();
    for key in [SESSION_KEY, SEQUENCE_KEY, COMPLETED_BELOW_KEY] {
        if let Some(value) = metadata.get(key) {
            session.insert(key, value.clone());
        }
    }
    session
}

pub(super) fn relayed<T>(message: T, metadata: &MetadataMap, timeout: Duration) -> Request<T> {
    let mut request = Request::new(message);
    *request.metadata_mut() = metadata.clone();
    request.set_timeout(timeout.max(Duration::from_millis(1)));
    request
}

fn tern(channel: Channel) -> TernClient<Channel> {
    TernClient::new(channel)
        .max_decoding_message_size(MAX_API_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_API_MESSAGE_BYTES)
}

/// Relays a `Tern` call to the region, with `metadata`.
macro_rules! relay {
    ($self:expr, $relay:expr, $rpc:ident, $message:expr, $metadata:expr) => {{
        let (message, metadata) = ($message, $metadata);
        $self
            .state
            .client
            .relay($relay, |channel, timeout| {
                let request = relayed(message.clone(), &metadata, timeout);
                async move { tern(channel).$rpc(request).await }
            })
            .await
            .map_err(|e| Status::from(api_error(e)))
    }};
}

/// Relays a `Tern` write to the leader, under the caller's session (or the cache's, when it has none).
macro_rules! relay_write {
    ($self:expr, $rpc:ident, $message:expr, $metadata:expr) => {{
        let message = $message;
        $self
            .state
            .client
            .relay_write($metadata, |channel, timeout, metadata| {
                let request = relayed(message.clone(), &metadata, timeout);
                async move { tern(channel).$rpc(request).await }
            })
            .await
            .map_err(|e| Status::from(api_error(e)))
    }};
}

fn hit(state: &CacheState, cache: &'static str, hit: bool) {
    let c = &state.counters;
    let counter = match (cache, hit) {
        ("item", true) => &c.item_hits,
        ("item", false) => &c.item_misses,
        (_, true) => &c.query_hits,
        (_, false) => &c.query_misses,
    };
    counter.fetch_add(1, Ordering::Relaxed);
    let name = if hit { "tern_cache_hits_total" } else { "tern_cache_misses_total" };
    metrics::counter!(name, "cache" => cache).increment(1);
}

fn now_secs() -> u64 {
    crate::clock::now_micros() / 1_000_000
}

impl CacheService {
    /// The item cache's key for an item key of a table.
    fn item_key(table: &str, info: &TableInfo, key: &BTreeMap<String, AttributeValue>) -> Result<ItemKey, ApiError> {
        Ok(ItemKey { table: table.to_string(), key: info.schema.storage_key(key)? })
    }

    /// What the region holds for `key`, read at any node (at the leader when `consistent`), installed in
    /// the item cache unless the cache knows of something newer; then read again at the leader.
    async fn fill_item(
        &self,
        table: &TableState,
        name: &str,
        key: ItemKey,
        wire_key: &BTreeMap<String, AttributeValue>,
    ) -> Result<Entry, Status> {
        let mut consistent = false;
        loop {
            let read = GetItemRequest {
                table_name: name.to_string(),
                key: wire_key.clone(),
                consistent_read: consistent,
                return_item_version: true,
                ..Default::default()
            };
            let relay = if consistent { Relay::Leader } else { Relay::AnyNode };
            let response = relay!(self, relay, get_item, read, MetadataMap::new())?;
            let known = match response.item {
                Some(item) => Known::Item(Arc::new(item), response.item_version.unwrap_or_default()),
                None => Known::Absent,
            };
            let position = response.applied_through_micros;
            self.state.saw(position);
            let entry = Entry { position, known: known.clone(), epoch: table.epoch };
            match self.state.items.fill(key.clone(), table.epoch, known, position).await {
                Fill::Installed => return Ok(entry),
                // The leader's read is the newest there is: answered, whatever the cache holds.
                Fill::Stale if consistent => return Ok(entry),
                Fill::Stale => consistent = true,
            }
        }
    }

    /// The item for a cached or filled entry, as the caller sees it (TTL-hidden items are absent).
    fn shown(info: &TableInfo, entry: &Entry) -> Option<(Arc<Item>, ItemVersion)> {
        match &entry.known {
            Known::Item(item, version) if !crate::ttl::hidden(&info.stored, &item.attributes, now_secs()) => {
                Some((item.clone(), version.clone()))
            }
            _ => None,
        }
    }

    /// The position a hit on `entry` is current at, given the cache's position before the lookup.
    fn current_at(position: u64, entry: &Entry) -> u64 {
        position.max(entry.position)
    }

    async fn get(&self, request: Request<GetItemRequest>) -> Result<GetItemResponse, Status> {
        let mut message = request.into_inner();
        if message.consistent_read {
            return relay!(self, Relay::Leader, get_item, message, MetadataMap::new());
        }
        // The node's own checks, in its order.
        let paths = check_get(&mut message)?;
        let (table, info) = self.state.table(&message.table_name).await?;
        info.schema.check_key_only(&message.key)?;
        let key = Self::item_key(&message.table_name, &info, &message.key)?;
        let position = self.state.position.load(Ordering::SeqCst);
        let (entry, through) = match self.state.items.get(&key, table.epoch).await {
            Some(entry) => {
                hit(&self.state, "item", true);
                (entry.clone(), Self::current_at(position, &entry))
            }
            None => {
                hit(&self.state, "item", false);
                let entry = self.fill_item(&table, &message.table_name, key, &message.key).await?;
                let read_at = entry.position;
                (entry, read_at)
            }
        };
        let shown = Self::shown(&info, &entry);
        Ok(GetItemResponse {
            item_version: shown.as_ref().filter(|_| message.return_item_version).map(|(_, v)| v.clone()),
            item: shown.map(|(item, _)| projected((*item).clone(), &paths)).transpose()?,
            applied_through_micros: through,
        })
    }

    async fn batch_get(&self, request: Request<BatchGetItemRequest>) -> Result<BatchGetItemResponse, Status> {
        let mut message = request.into_inner();
        if message.request_items.values().any(|k| k.consistent_read) {
            return relay!(self, Relay::Leader, batch_get_item, message, MetadataMap::new());
        }
        let mut tables = BTreeMap::new();
        for name in message.request_items.keys() {
            tables.insert(name.clone(), self.state.table(name).await);
        }
        let reads = check_batch_get(&mut message, |name| match &tables[name] {
            Ok((state, info)) => Ok((info.schema.clone(), (state.clone(), info.clone()))),
            Err(e) => Err(e.clone()),
        })?;
        let wire_keys: Vec<BTreeMap<String, AttributeValue>> =
            message.request_items.values().flat_map(|k| k.keys.iter().map(|key| key.attributes.clone())).collect();
        let mut responses: BTreeMap<String, ItemList> = BTreeMap::new();
        let mut through = u64::MAX;
        let position = self.state.position.load(Ordering::SeqCst);
        for (read, wire_key) in reads.into_iter().zip(wire_keys) {
            let (state, info) = &read.table_info;
            let key = ItemKey { table: read.table.clone(), key: read.key };
            let entry = match self.state.items.get(&key, state.epoch).await {
                Some(entry) => {
                    hit(&self.state, "item", true);
                    through = through.min(Self::current_at(position, &entry));
                    entry
                }
                None => {
                    hit(&self.state, "item", false);
                    let entry = self.fill_item(state, &read.table, key, &wire_key).await?;
                    through = through.min(entry.position);
                    entry
                }
            };
            let list = responses.entry(read.table.clone()).or_default();
            if let Some((item, _)) = Self::shown(info, &entry) {
                list.items.push(projected((*item).clone(), &read.paths)?);
            }
        }
        Ok(BatchGetItemResponse { responses, unprocessed_keys: BTreeMap::new(), applied_through_micros: through })
    }

    /// One page of `request` from the region: from any node, or the leader's when `consistent`.
    async fn read_page(&self, request: &PageRequest, consistent: bool) -> Result<ItemPage, Status> {
        let relay = if consistent { Relay::Leader } else { Relay::AnyNode };
        match request.clone() {
            PageRequest::Query(mut m) => {
                m.consistent_read = consistent;
                relay!(self, relay, query, m, MetadataMap::new())
            }
            PageRequest::Scan(mut m) => {
                m.consistent_read = consistent;
                relay!(self, relay, scan, m, MetadataMap::new())
            }
        }
    }

    /// A Query or Scan page: cached under `scope`, or read from the region and cached.
    async fn page(&self, table: &TableState, scope: Scope, request: PageRequest) -> Result<ItemPage, Status> {
        let key = match &request {
            PageRequest::Query(m) => [b"Q".as_slice(), &m.encode_to_vec()].concat(),
            PageRequest::Scan(m) => [b"S".as_slice(), &m.encode_to_vec()].concat(),
        };
        let position = self.state.position.load(Ordering::SeqCst);
        if let Some(page) = self.state.queries.get(&key, table.epoch, &table.generations).await {
            hit(&self.state, "query", true);
            let mut shown = (*page.page).clone();
            shown.applied_through_micros = position.max(page.position);
            return Ok(shown);
        }
        hit(&self.state, "query", false);
        // The generation before the floor: see `queries`. A page must also hold the table's writes made
        // through this cache, which the feed may not have brought yet.
        let generation = table.generations.current(scope);
        let floor = self.state.items.floor().max(table.written_at.load(Ordering::SeqCst));
        let mut page = self.read_page(&request, false).await?;
        self.state.saw(page.applied_through_micros);
        if page.applied_through_micros < floor {
            // Older than changes the cache has seen: the leader's page instead.
            page = self.read_page(&request, true).await?;
        }
        if page.applied_through_micros >= floor {
            let position = page.applied_through_micros;
            let cached = Page { page: Arc::new(page.clone()), epoch: table.epoch, scope, generation, position };
            self.state.queries.insert(key, cached).await;
        }
        Ok(page)
    }

    async fn query_page(&self, request: Request<QueryRequest>) -> Result<ItemPage, Status> {
        let message = request.into_inner();
        if message.consistent_read || !self.state.query_caching {
            let relay = if message.consistent_read { Relay::Leader } else { Relay::AnyNode };
            return relay!(self, relay, query, message, MetadataMap::new());
        }
        // A request the node would refuse goes to it, for its error.
        let Ok((table, info)) = self.state.table(&message.table_name).await else {
            return relay!(self, Relay::AnyNode, query, message, MetadataMap::new());
        };
        let partition = reads::query_partition(&info.schema, &message).and_then(|v| info.schema.partition_prefix(&v));
        let Ok(prefix) = partition else {
            return relay!(self, Relay::AnyNode, query, message, MetadataMap::new());
        };
        self.page(&table, Scope::Partition(Generations::slot(&prefix)), PageRequest::Query(message)).await
    }

    async fn scan_page(&self, request: Request<ScanRequest>) -> Result<ItemPage, Status> {
        let message = request.into_inner();
        if message.consistent_read || !self.state.query_caching {
            let relay = if message.consistent_read { Relay::Leader } else { Relay::AnyNode };
            return relay!(self, relay, scan, message, MetadataMap::new());
        }
        let Ok((table, _)) = self.state.table(&message.table_name).await else {
            return relay!(self, Relay::AnyNode, scan, message, MetadataMap::new());
        };
        self.page(&table, Scope::Table, PageRequest::Scan(message)).await
    }

    /// Write-through: the cache now knows `known` of `key` in `table` as of `position`, and pages of its
    /// partition are no longer served.
    async fn written(&self, table: &str, key: &BTreeMap<String, AttributeValue>, known: Option<Known>, position: u64) {
        let Ok((state, info)) = self.state.table(table).await else { return };
        let Ok(key) = canonical(key.clone()) else { return };
        let key = info.schema.key_of(&key);
        let Some(partition) = key.get(&info.schema.partition_key.name) else { return };
        let (Ok(item_key), Ok(prefix)) = (Self::item_key(table, &info, &key), info.schema.partition_prefix(partition))
        else {
            return;
        };
        state.written_at.fetch_max(position, Ordering::SeqCst);
        self.state.saw(position);
        state.generations.changed(Generations::slot(&prefix));
        match known {
            Some(known) => {
                self.state.items.fill(item_key, state.epoch, known, position).await;
            }
            None => self.state.items.unknown(item_key, state.epoch, position).await,
        }
    }

    async fn put(&self, request: Request<PutItemRequest>) -> Result<PutItemResponse, Status> {
        let session = session_of(request.metadata());
        let message = request.into_inner();
        let response = relay_write!(self, put_item, message.clone(), session)?;
        if let (Some(version), Ok(item)) = (&response.item_version, canonical(message.item.clone())) {
            let known = Known::Item(Arc::new(Item { attributes: item.clone() }), version.clone());
            self.written(&message.table_name, &item, Some(known), version.write_timestamp_micros).await;
        }
        Ok(response)
    }

    async fn delete(&self, request: Request<DeleteItemRequest>) -> Result<DeleteItemResponse, Status> {
        let session = session_of(request.metadata());
        let message = request.into_inner();
        let response = relay_write!(self, delete_item, message.clone(), session)?;
        if let Some(version) = &response.item_version {
            self.written(&message.table_name, &message.key, Some(Known::Absent), version.write_timestamp_micros).await;
        }
        Ok(response)
    }

    async fn update(&self, request: Request<UpdateItemRequest>) -> Result<UpdateItemResponse, Status> {
        let session = session_of(request.metadata());
        let mut message = request.into_inner();
        // Asked for the whole new item when the caller wants it or nothing, the cache learns it.
        let asked = message.return_values.clone();
        let whole = matches!(asked.as_str(), "" | "NONE" | "ALL_NEW");
        if whole {
            message.return_values = "ALL_NEW".into();
        }
        let mut response = relay_write!(self, update_item, message.clone(), session)?;
        if let Some(version) = response.item_version.clone() {
            let known = match (&response.attributes, whole) {
                (Some(item), true) => Some(Known::Item(Arc::new(item.clone()), version.clone())),
                _ => None,
            };
            self.written(&message.table_name, &message.key, known, version.write_timestamp_micros).await;
        }
        if whole && asked != "ALL_NEW" {
            response.attributes = None;
        }
        Ok(response)
    }

    async fn batch_write(&self, request: Request<BatchWriteItemRequest>) -> Result<BatchWriteItemResponse, Status> {
        let session = session_of(request.metadata());
        let message = request.into_inner();
        let response = relay_write!(self, batch_write_item, message.clone(), session)?;
        for (table, writes) in &message.request_items {
            let versions = response.item_versions.get(table).map(|v| v.versions.as_slice()).unwrap_or_default();
            let last = versions.iter().map(|v| v.write_timestamp_micros).max().unwrap_or(0);
            let exact = versions.len() == writes.requests.len() && !response.unprocessed_items.contains_key(table);
            for (i, write) in writes.requests.iter().enumerate() {
                let (key, known) = match &write.request {
                    Some(write_request::Request::PutRequest(put)) => {
                        let Ok(item) = canonical(put.item.clone()) else { continue };
                        let version = versions.get(i).cloned().unwrap_or_default();
                        (put.item.clone(), Known::Item(Arc::new(Item { attributes: item }), version))
                    }
                    Some(write_request::Request::DeleteRequest(delete)) => (delete.key.clone(), Known::Absent),
                    None => continue,
                };
                match exact {
                    true => self.written(table, &key, Some(known), versions[i].write_timestamp_micros).await,
                    false => self.written(table, &key, None, last).await,
                }
            }
        }
        Ok(response)
    }

    async fn transact_write(
        &self,
        request: Request<TransactWriteItemsRequest>,
    ) -> Result<TransactWriteItemsResponse, Status> {
        let session = session_of(request.metadata());
        let message = request.into_inner();
        let response = relay_write!(self, transact_write_items, message.clone(), session)?;
        let Some(version) = response.item_version.clone() else { return Ok(response) };
        let position = version.write_timestamp_micros;
        for action in &message.transact_items {
            match &action.action {
                Some(transact_write_item::Action::Put(put)) => {
                    let Ok(item) = canonical(put.item.clone()) else { continue };
                    let known = Known::Item(Arc::new(Item { attributes: item }), version.clone());
                    self.written(&put.table_name, &put.item, Some(known), position).await;
                }
                Some(transact_write_item::Action::Delete(delete)) => {
                    self.written(&delete.table_name, &delete.key, Some(Known::Absent), position).await;
                }
                Some(transact_write_item::Action::Update(update)) => {
                    self.written(&update.table_name, &update.key, None, position).await;
                }
                _ => {}
            }
        }
        Ok(response)
    }

    /// A table operation, relayed to the leader; the cache forgets the table once it succeeds.
    async fn table_operation<T>(
        &self,
        table: &str,
        operation: impl std::future::Future<Output = Result<T, Status>>,
    ) -> Result<T, Status> {
        let result = operation.await;
        self.state.tables.dropped(table);
        result
    }
}

#[tonic::async_trait]
impl Tern for CacheService {
    async fn create_table(
        &self,
        request: Request<CreateTableRequest>,
    ) -> Result<Response<CreateTableResponse>, Status> {
        let message = request.into_inner();
        let name = message.table_name.clone();
        observe(
            "CreateTable",
            self.table_operation(&name, async {
                relay!(self, Relay::LeaderUntilDeadline, create_table, message, MetadataMap::new())
            }),
        )
        .await
    }

    async fn describe_table(
        &self,
        request: Request<DescribeTableRequest>,
    ) -> Result<Response<DescribeTableResponse>, Status> {
        observe("DescribeTable", async {
            relay!(self, Relay::AnyNode, describe_table, request.into_inner(), MetadataMap::new())
        })
        .await
    }

    async fn list_tables(&self, request: Request<ListTablesRequest>) -> Result<Response<ListTablesResponse>, Status> {
        observe("ListTables", async {
            relay!(self, Relay::AnyNode, list_tables, request.into_inner(), MetadataMap::new())
        })
        .await
    }

    async fn delete_table(
        &self,
        request: Request<DeleteTableRequest>,
    ) -> Result<Response<DeleteTableResponse>, Status> {
        let message = request.into_inner();
        let name = message.table_name.clone();
        observe(
            "DeleteTable",
            self.table_operation(&name, async {
                relay!(self, Relay::LeaderUntilDeadline, delete_table, message, MetadataMap::new())
            }),
        )
        .await
    }

    async fn update_table(
        &self,
        request: Request<UpdateTableRequest>,
    ) -> Result<Response<UpdateTableResponse>, Status> {
        let message = request.into_inner();
        let name = message.table_name.clone();
        observe(
            "UpdateTable",
            self.table_operation(&name, async {
                relay!(self, Relay::LeaderUntilDeadline, update_table, message, MetadataMap::new())
            }),
        )
        .await
    }

    async fn update_time_to_live(
        &self,
        request: Request<UpdateTimeToLiveRequest>,
    ) -> Result<Response<UpdateTimeToLiveResponse>, Status> {
        let message = request.into_inner();
        let name = message.table_name.clone();
        observe(
            "UpdateTimeToLive",
            self.table_operation(&name, async {
                relay!(self, Relay::LeaderUntilDeadline, update_time_to_live, message, MetadataMap::new())
            }),
        )
        .await
    }

    async fn describe_time_to_live(
        &self,
        request: Request<DescribeTimeToLiveRequest>,
    ) -> Result<Response<DescribeTimeToLiveResponse>, Status> {
        observe("DescribeTimeToLive", async {
            relay!(self, Relay::AnyNode, describe_time_to_live, request.into_inner(), MetadataMap::new())
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
        observe("TransactGetItems", async {
            relay!(self, Relay::Leader, transact_get_items, request.into_inner(), MetadataMap::new())
        })
        .await
    }

    async fn query(&self, request: Request<QueryRequest>) -> Result<Response<ItemPage>, Status> {
        observe("Query", self.query_page(request)).await
    }

    async fn scan(&self, request: Request<ScanRequest>) -> Result<Response<ItemPage>, Status> {
        observe("Scan", self.scan_page(request)).await
    }
}
