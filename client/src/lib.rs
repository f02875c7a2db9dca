//! Rust client for Tern: connect to a region with some of its nodes' addresses, and call DynamoDB's
//! operations. The client finds the leader, sends writes and strongly consistent reads to it, spreads
//! other reads over the nodes, and retries through leader changes and unavailability until a deadline,
//! each attempt with a timeout of its own, so a paused node holds a call up for one attempt only.
//!
//! ```no_run
//! # async fn example() -> Result<(), tern_client::Error> {
//! use tern_client::{Client, Item};
//! let client = Client::connect(["127.0.0.1:7001", "127.0.0.1:7002"]).await?;
//! let item: Item = [("pk".to_string(), "user#1".into()), ("visits".to_string(), 3.into())].into();
//! let version = client.put_item("users", item).await?;
//! println!("written at {}", version.write_timestamp_micros);
//! # Ok(()) }
//! ```

/// A call of one of the services besides `tern.v1.Tern` (`$service(channel)` makes its client) that the
/// leader answers (any node forwards it there): it sees every change acknowledged before it.
macro_rules! leader_call {
    ($service:ident, $(#[$doc:meta])* $name:ident, $request:ty, $response:ty) => {
        $(#[$doc])*
        pub async fn $name(&self, message: $request) -> Result<$response, Error> {
            self.call_on(Target::Leader, Patience::Attempt, |channel, timeout| {
                let message = message.clone();
                async move { $service(channel).$name(request(message, timeout)).await }
            })
            .await
        }
    };
}

/// A call that makes something (a table, a backup, an export or import job) on one of those services:
/// one call of the client's session, so that a retry after a lost answer is answered with the first
/// attempt's outcome, never made twice.
macro_rules! session_call {
    ($service:ident, $(#[$doc:meta])* $name:ident, $request:ty, $response:ty) => {
        $(#[$doc])*
        pub async fn $name(&self, message: $request) -> Result<$response, Error> {
            let call = self.inner.session.begin();
            let result = self
                .call_on(Target::Leader, Patience::Deadline, |channel, timeout| {
                    let request = call.request(message.clone(), timeout);
                    async move { $service(channel).$name(request).await }
                })
                .await;
            call.finish(result)
        }
    };
}

mod backups;
mod error;
mod nodes;
mod replication;
mod retry;
mod serde_items;
mod session;
mod streams;
mod transfers;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tern_proto::v1::cluster_client::ClusterClient;
use tern_proto::v1::streams_client::StreamsClient;
use tern_proto::v1::tern_client::TernClient;
use tern_proto::v1::*;
use tern_proto::value::{item_from_wire, item_to_wire};
use tonic::transport::Channel;
use tonic::{Response, Status};

pub use error::Error;

use nodes::{Node, Nodes};
pub use retry::RetryPolicy;
pub use serde_items::{from_item, to_item};
pub use streams::StartingPosition;
pub use tern_proto::json;
pub use tern_proto::v1;
pub use tern_proto::{ApiError, AttributeValue, ErrorKind, Item, Number};

pub(crate) const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// How long a node asked who leads may take to answer.
const PROBE_TIMEOUT: Duration = Duration::from_millis(500);
/// The same for a node that let an attempt time out lately.
const SUSPECT_PROBE_TIMEOUT: Duration = Duration::from_millis(100);
/// How often the nodes are asked who leads while the leader they name is doubted.
const ELECTION_POLL: Duration = Duration::from_millis(100);
/// How long a node that let an attempt time out is asked last, as a multiple of the attempt timeout.
const SUSPICION_ATTEMPTS: u32 = 5;

/// A connection to one region.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    nodes: Nodes,
    retry: RetryPolicy,
    /// This client's session: its writes are applied once however often they are retried.
    session: session::Session,
}

fn retryable(error: &ApiError) -> bool {
    error.kind == ErrorKind::ServiceUnavailable
}

/// A ResourceNotFoundException from too few nodes to stand, as the error a deadline reports.
fn unavailable_for_now(error: &ApiError) -> ApiError {
    ApiError::unavailable(format!("Only a minority of the nodes could be asked; one answered: {error}"))
}

/// Which nodes may serve a call.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    Leader,
    /// Any node; one that answers ResourceNotFoundException may not have applied the table or stream
    /// yet, so the others are asked too before the answer stands.
    AnyNode,
}

/// How long one attempt of a call may take.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Patience {
    /// The policy's attempt timeout: item and stream calls, answered in milliseconds.
    Attempt,
    /// The attempt timeout and the time the node may wait on purpose (a GetRecords long poll).
    AttemptAnd(Duration),
    /// Up to the deadline: control-plane calls, which may wait for work in the region (a replica
    /// drained) and are not all safe to send twice.
    Deadline,
}

/// Where [`Client::relay`] sends a call, and how long each attempt may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relay {
    /// Any node, each attempt within the attempt timeout (eventually consistent reads).
    AnyNode,
    /// The leader, each attempt within the attempt timeout (writes, strongly consistent reads).
    Leader,
    /// The leader, an attempt taking up to the deadline (table operations, which may wait for work).
    LeaderUntilDeadline,
    /// Any node, an attempt taking up to the deadline (a long poll).
    AnyNodeUntilDeadline,
}

/// Who leads the region, as its nodes say.
enum Leader {
    Known(Node),
    /// No node knows (an election is under way, or none answered).
    Unknown,
    /// The nodes name a leader that just let an attempt time out: wait for them to elect another.
    Doubted,
}

impl Client {
    /// Connects to a region through some of its nodes (`host:port` or `http://host:port`).
    pub async fn connect<I, S>(endpoints: I) -> Result<Client, Error>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Self::connect_with(endpoints, RetryPolicy::default()).await
    }

    /// Connects with a retry policy of the caller's.
    pub async fn connect_with<I, S>(endpoints: I, retry: RetryPolicy) -> Result<Client, Error>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let endpoints = endpoints
            .into_iter()
            .flat_map(|e| e.as_ref().split(',').map(|s| s.trim().to_string()).collect::<Vec<_>>())
            .filter(|e| !e.is_empty())
            .map(|address| Node::at(&address))
            .collect::<Result<Vec<_>, Error>>()?;
        if endpoints.is_empty() {
            return Err(Error::NoEndpoints);
        }
        let suspicion = retry.attempt_timeout * SUSPICION_ATTEMPTS;
        Ok(Client {
            inner: Arc::new(Inner { nodes: Nodes::new(endpoints, suspicion), retry, session: session::Session::new() }),
        })
    }

    /// The addresses this client was given.
    pub fn endpoints(&self) -> Vec<String> {
        self.inner.nodes.endpoints().iter().map(|n| n.address.clone()).collect()
    }

    /// Who leads, asking the nodes (the unsuspected first) when it is not known; within `remaining`.
    async fn leader(&self, remaining: Duration) -> Leader {
        let nodes = &self.inner.nodes;
        if let Some(leader) = nodes.leader() {
            return Leader::Known(leader);
        }
        let until = std::time::Instant::now() + remaining;
        let mut doubted = false;
        let mut elsewhere = None;
        for node in nodes.by_trust() {
            // A suspected node is asked last, and briefly: a live one answers its status at once. Its
            // silence does not renew the suspicion (only an attempt's timeout does), so a leader slow to
            // answer is still tried once the doubt has passed.
            let suspected = nodes.suspected(&node.address, nodes.suspicion());
            let timeout = if suspected { SUSPECT_PROBE_TIMEOUT } else { PROBE_TIMEOUT }
                .min(until.saturating_duration_since(std::time::Instant::now()));
            if timeout.is_zero() {
                break;
            }
            let mut client = ClusterClient::new(node.channel.clone());
            let status =
                match tokio::time::timeout(timeout, client.get_node_status(request(NodeStatusRequest {}, timeout)))
                    .await
                {
                    Ok(Ok(status)) => status.into_inner(),
                    Ok(Err(_)) => continue,
                    Err(_) => {
                        if !suspected {
                            nodes.suspect(&node.address);
                        }
                        continue;
                    }
                };
            nodes.learn(status.node_id, &node.address);
            let Some(leader_id) = status.leader_id else { continue };
            if status.leader_address.is_empty() {
                continue;
            }
            // The leader as one of the endpoints; when it is known only by an address that is none of
            // them (its name inside a container network), the other endpoints are asked who they are.
            let Some(leader) = nodes.endpoint_of(leader_id, &status.leader_address) else {
                elsewhere.get_or_insert((leader_id, status.leader_address.clone(), leader_id == status.node_id));
                continue;
            };
            // A leader that let an attempt time out may be paused while its followers have not yet
            // noticed: doubted for one attempt's time, unless it answers itself that it leads (then
            // only a reply was lost, or the call was slow).
            if nodes.suspected(&leader.address, self.inner.retry.attempt_timeout) {
                if leader_id != status.node_id {
                    doubted = true;
                    continue;
                }
                nodes.absolve(&leader.address);
            }
            nodes.set_leader(leader.clone());
            return Leader::Known(leader);
        }
        // The leader is none of the endpoints (the client was given some of the region's nodes): asked
        // at its own address, unless it let an attempt time out and did not itself say it leads.
        if let Some((leader_id, address, said_by_leader)) = elsewhere {
            let leader = match nodes.endpoint_of(leader_id, &address) {
                Some(leader) => Some(leader),
                None => nodes.node(&address).ok(),
            };
            if let Some(leader) = leader {
                if !nodes.suspected(&leader.address, self.inner.retry.attempt_timeout) || said_by_leader {
                    nodes.absolve(&leader.address);
                    nodes.set_leader(leader.clone());
                    return Leader::Known(leader);
                }
                doubted = true;
            }
        }
        if doubted {
            Leader::Doubted
        } else {
            Leader::Unknown
        }
    }

    /// Runs one call with the retry policy: leader calls go to the leader (any node forwards to it
    /// when it is unknown), others to the nodes in turn; retryable failures back off and try again.
    async fn call<T, F, Fut>(&self, target: Target, patience: Patience, mut call: F) -> Result<T, Error>
    where
        F: FnMut(TernClient<Channel>, Duration) -> Fut,
        Fut: Future<Output = Result<Response<T>, Status>>,
    {
        self.call_on(target, patience, |channel, timeout| {
            let client = TernClient::new(channel)
                .max_decoding_message_size(MAX_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_MESSAGE_BYTES);
            call(client, timeout)
        })
        .await
    }

    /// Like `call`, for any service: `call` gets the channel of the node to ask and the attempt's timeout.
    pub(crate) async fn call_on<T, F, Fut>(&self, target: Target, patience: Patience, mut call: F) -> Result<T, Error>
    where
        F: FnMut(Channel, Duration) -> Fut,
        Fut: Future<Output = Result<Response<T>, Status>>,
    {
        let mut attempts = self.inner.retry.attempts();
        let mut count = 0;
        // Once a node answered ResourceNotFoundException (it may lag), the others are asked too. The
        // answer stands once a majority of the nodes gave it and every node was asked (a node that could
        // not be reached has no say); with fewer, the unreached nodes are asked again after a pause.
        let mut asked: Vec<String> = Vec::new();
        let mut missing_on: Vec<String> = Vec::new();
        let mut not_found: Option<ApiError> = None;
        let mut last = ApiError::unavailable("no attempt was made before the deadline");
        loop {
            if attempts.remaining().is_zero() {
                break;
            }
            count += 1;
            let node = match target {
                Target::AnyNode => Some(self.inner.nodes.any_except(&asked)),
                Target::Leader => match self.leader(attempts.remaining()).await {
                    Leader::Known(leader) => Some(leader),
                    Leader::Unknown => Some(self.inner.nodes.any()),
                    Leader::Doubted => None,
                },
            };
            let error = match node {
                Some(node) => {
                    let timeout = match patience {
                        Patience::Attempt => self.inner.retry.attempt_timeout,
                        Patience::AttemptAnd(wait) => self.inner.retry.attempt_timeout + wait,
                        Patience::Deadline => attempts.remaining(),
                    }
                    .min(attempts.remaining());
                    let error = match self.attempt(&node, timeout, call(node.channel.clone(), timeout)).await {
                        Ok(response) => return Ok(response),
                        Err(error) => error,
                    };
                    let missing = error.kind == ErrorKind::ResourceNotFoundException;
                    if target == Target::AnyNode && (missing || (not_found.is_some() && retryable(&error))) {
                        if !asked.contains(&node.address) {
                            asked.push(node.address.clone());
                        }
                        if missing {
                            if !missing_on.contains(&node.address) {
                                missing_on.push(node.address.clone());
                            }
                            // The answer that says why (a failed restore's reason) is the one kept.
                            if not_found.as_ref().is_none_or(|kept| kept.details.is_none()) {
                                not_found = Some(error.clone());
                            }
                        }
                        let nodes = self.inner.nodes.endpoints().len();
                        if asked.len() >= nodes {
                            if missing_on.len() > nodes / 2 {
                                return Err(Error::Api(not_found.expect("a node answered ResourceNotFoundException")));
                            }
                            asked.retain(|address| missing_on.contains(address));
                        } else if missing {
                            continue;
                        }
                        if missing {
                            // Too few have answered: a pause, then the unreached nodes again.
                            last = unavailable_for_now(&error);
                            if !attempts.wait().await {
                                break;
                            }
                            continue;
                        }
                    }
                    error
                }
                None => {
                    // The region elects a new leader within about two seconds: ask again soon, without
                    // growing the backoff.
                    if attempts.remaining() > ELECTION_POLL {
                        tokio::time::sleep(ELECTION_POLL).await;
                        continue;
                    }
                    ApiError::unavailable("The leader did not answer in time and no other is elected yet")
                }
            };
            if !retryable(&error) {
                return Err(Error::Api(error));
            }
            tracing::debug!(%error, attempt = count, "retrying");
            if target == Target::Leader {
                self.inner.nodes.forget_leader();
            }
            last = error;
            if !attempts.wait().await {
                break;
            }
        }
        Err(Error::DeadlineExceeded { deadline: self.inner.retry.deadline, attempts: count, last })
    }

    /// One attempt on one node, cut off at `timeout` on this side: a paused node never answers, and
    /// never enforces the timeout it was sent. A node that lets it pass is suspected.
    async fn attempt<T>(
        &self,
        node: &Node,
        timeout: Duration,
        call: impl Future<Output = Result<Response<T>, Status>>,
    ) -> Result<T, ApiError> {
        let started = std::time::Instant::now();
        match tokio::time::timeout(timeout, call).await {
            Ok(Ok(response)) => Ok(response.into_inner()),
            // tonic may end the call itself at the timeout it sends along ("Timeout expired").
            Ok(Err(status)) if started.elapsed() < timeout => Err(ApiError::from(&status)),
            _ => {
                self.inner.nodes.suspect(&node.address);
                Err(ApiError::unavailable(format!("{} did not answer within {timeout:?}", node.address)))
            }
        }
    }
}

pub(crate) fn request<T>(message: T, timeout: Duration) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.set_timeout(timeout.max(Duration::from_millis(1)));
    request
}

/// The wire form of an item (for the `tern.v1` request messages).
pub fn v1_item(item: &Item) -> std::collections::BTreeMap<String, v1::AttributeValue> {
    item_to_wire(item)
}

/// A domain item from its wire form.
pub fn item_from(attributes: std::collections::BTreeMap<String, v1::AttributeValue>) -> Result<Item, Error> {
    Ok(item_from_wire(attributes)?)
}

macro_rules! operation {
    ($(#[$doc:meta])* $name:ident => $rpc:ident, $request:ty, $response:ty, $target:expr, $patience:expr) => {
        $(#[$doc])*
        pub async fn $name(&self, message: $request) -> Result<$response, Error> {
            let target: fn(&$request) -> Target = $target;
            self.call(target(&message), $patience, |mut client, timeout| {
                let message = message.clone();
                async move { client.$rpc(request(message, timeout)).await }
            })
            .await
        }
    };
}

/// A write call of the client's session: every attempt carries the call's sequence number.
macro_rules! write_operation {
    ($(#[$doc:meta])* $name:ident => $rpc:ident, $request:ty, $response:ty) => {
        $(#[$doc])*
        pub async fn $name(&self, message: $request) -> Result<$response, Error> {
            let call = self.inner.session.begin();
            let result = self
                .call(Target::Leader, Patience::Attempt, |mut client, timeout| {
                    let request = call.request(message.clone(), timeout);
                    async move { client.$rpc(request).await }
                })
                .await;
            call.finish(result)
        }
    };
}

/// Strongly consistent reads go to the leader; others to any node.
macro_rules! read_target {
    () => {
        |message| if message.consistent_read { Target::Leader } else { Target::AnyNode }
    };
}

/// The operations in their wire form, as the API defines them.
impl Client {
    operation!(/// CreateTable.
        create_table => create_table, CreateTableRequest, CreateTableResponse, |_| Target::Leader, Patience::Deadline);
    operation!(/// DescribeTable.
        describe_table => describe_table, DescribeTableRequest, DescribeTableResponse, |_| Target::AnyNode, Patience::Attempt);
    operation!(/// ListTables (one page).
        list_tables => list_tables, ListTablesRequest, ListTablesResponse, |_| Target::AnyNode, Patience::Attempt);
    operation!(/// UpdateTable (its StreamSpecification, its replicas).
        update_table => update_table, UpdateTableRequest, UpdateTableResponse, |_| Target::Leader, Patience::Deadline);
    operation!(/// UpdateTimeToLive.
        update_time_to_live => update_time_to_live, UpdateTimeToLiveRequest, UpdateTimeToLiveResponse, |_| Target::Leader, Patience::Deadline);
    operation!(/// DescribeTimeToLive.
        describe_time_to_live => describe_time_to_live, DescribeTimeToLiveRequest, DescribeTimeToLiveResponse, |_| Target::AnyNode, Patience::Attempt);
    operation!(/// DeleteTable.
        delete_table => delete_table, DeleteTableRequest, DeleteTableResponse, |_| Target::Leader, Patience::Deadline);
    write_operation!(/// PutItem, applied once however often it is retried.
        put_item_request => put_item, PutItemRequest, PutItemResponse);
    write_operation!(/// DeleteItem, applied once however often it is retried.
        delete_item_request => delete_item, DeleteItemRequest, DeleteItemResponse);
    write_operation!(/// UpdateItem, applied once however often it is retried.
        update_item => update_item, UpdateItemRequest, UpdateItemResponse);
    operation!(/// BatchGetItem; strongly consistent when any table asks for it.
        batch_get_item => batch_get_item, BatchGetItemRequest, BatchGetItemResponse,
        |m| if m.request_items.values().any(|k| k.consistent_read) { Target::Leader } else { Target::AnyNode },
        Patience::Attempt);
    write_operation!(/// BatchWriteItem, applied once however often it is retried.
        batch_write_item => batch_write_item, BatchWriteItemRequest, BatchWriteItemResponse);
    write_operation!(/// TransactWriteItems, applied once however often it is retried (see also `transact_write_items`).
        transact_write_items_request => transact_write_items, TransactWriteItemsRequest, TransactWriteItemsResponse);
    operation!(/// TransactGetItems (all items from one point of the log).
        transact_get_items => transact_get_items, TransactGetItemsRequest, TransactGetItemsResponse, |_| Target::Leader, Patience::Attempt);
    operation!(/// GetItem.
        get_item_request => get_item, GetItemRequest, GetItemResponse, read_target!(), Patience::Attempt);
    operation!(/// One page of a Query.
        query => query, QueryRequest, ItemPage, read_target!(), Patience::Attempt);
    operation!(/// One page of a Scan.
        scan => scan, ScanRequest, ItemPage, read_target!(), Patience::Attempt);

    /// Runs a Streams call on any node with the retry policy (records are the same on every node).
    pub(crate) async fn streams_call<T, F, Fut>(&self, patience: Patience, mut call: F) -> Result<T, Error>
    where
        F: FnMut(StreamsClient<Channel>, Duration) -> Fut,
        Fut: Future<Output = Result<Response<T>, Status>>,
    {
        self.call_on(Target::AnyNode, patience, |channel, timeout| {
            call(StreamsClient::new(channel).max_decoding_message_size(MAX_MESSAGE_BYTES), timeout)
        })
        .await
    }

    /// Relays one call of another caller's, as the cache tier does: `call` gets the channel of the
    /// node to ask and the attempt's timeout, and builds the request itself (with the caller's session
    /// metadata, so that the region still applies a retried write once). Retried as this client's own
    /// calls are, on the nodes `relay` names.
    pub async fn relay<T, F, Fut>(&self, relay: Relay, call: F) -> Result<T, Error>
    where
        F: FnMut(Channel, Duration) -> Fut,
        Fut: Future<Output = Result<Response<T>, Status>>,
    {
        let (target, patience) = match relay {
            Relay::AnyNode => (Target::AnyNode, Patience::Attempt),
            Relay::Leader => (Target::Leader, Patience::Attempt),
            Relay::LeaderUntilDeadline => (Target::Leader, Patience::Deadline),
            Relay::AnyNodeUntilDeadline => (Target::AnyNode, Patience::Deadline),
        };
        self.call_on(target, patience, call).await
    }

    /// [`Client::relay`] for a write. `metadata` is the caller's; when it carries no session, the write
    /// goes under this client's session, so that the relay's own retries are applied once too. `call`
    /// gets the metadata to send with each attempt.
    pub async fn relay_write<T, F, Fut>(&self, metadata: tonic::metadata::MetadataMap, mut call: F) -> Result<T, Error>
    where
        F: FnMut(Channel, Duration, tonic::metadata::MetadataMap) -> Fut,
        Fut: Future<Output = Result<Response<T>, Status>>,
    {
        if metadata.contains_key(tern_proto::session::SESSION_KEY) {
            return self.relay(Relay::Leader, |channel, timeout| call(channel, timeout, metadata.clone())).await;
        }
        let session = self.inner.session.begin();
        let result = self
            .relay(Relay::Leader, |channel, timeout| {
                let mut metadata = metadata.clone();
                session.insert_into(&mut metadata);
                call(channel, timeout, metadata)
            })
            .await;
        session.finish(result)
    }

    /// A node's own status (the first of this client's endpoints to answer, or `address`).
    pub async fn node_status(&self, address: Option<&str>) -> Result<NodeStatus, Error> {
        let nodes = match address {
            Some(address) => vec![Node::at(address)?],
            None => self.inner.nodes.by_trust(),
        };
        let timeout = self.inner.retry.attempt_timeout;
        let mut last = ApiError::unavailable("no endpoint answered");
        for node in nodes {
            let mut client = ClusterClient::new(node.channel.clone());
            match self.attempt(&node, timeout, client.get_node_status(request(NodeStatusRequest {}, timeout))).await {
                Ok(status) => return Ok(status),
                Err(error) => last = error,
            }
        }
        Err(Error::Api(last))
    }

    /// Adds a node to the region: it joins as a learner, catches up, then becomes a voter.
    pub async fn add_node(&self, node_id: u64, address: &str) -> Result<MembershipResponse, Error> {
        let message = AddNodeRequest { node_id, address: address.to_string() };
        self.call_on(Target::Leader, Patience::Deadline, |channel, timeout| {
            let message = message.clone();
            async move { ClusterClient::new(channel).add_node(request(message, timeout)).await }
        })
        .await
    }

    /// Removes a node from the region.
    pub async fn remove_node(&self, node_id: u64) -> Result<MembershipResponse, Error> {
        self.call_on(Target::Leader, Patience::Deadline, |channel, timeout| async move {
            ClusterClient::new(channel).remove_node(request(RemoveNodeRequest { node_id }, timeout)).await
        })
        .await
    }
}

/// Typed conveniences over the wire operations.
impl Client {
    /// TransactWriteItems. A transaction without a ClientRequestToken gets one, as AWS SDKs give it,
    /// so that it is idempotent for ten minutes.
    pub async fn transact_write_items(
        &self,
        mut message: TransactWriteItemsRequest,
    ) -> Result<TransactWriteItemsResponse, Error> {
        if message.client_request_token.is_empty() {
            message.client_request_token = format!("{:032x}", rand::random::<u128>());
        }
        self.transact_write_items_request(message).await
    }

    /// Puts an item; returns the version it was given.
    pub async fn put_item(&self, table: &str, item: Item) -> Result<ItemVersion, Error> {
        let response = self
            .put_item_request(PutItemRequest { table_name: table.into(), item: v1_item(&item), ..Default::default() })
            .await?;
        response.item_version.ok_or_else(|| Error::Api(ApiError::internal("write without a version")))
    }

    /// Gets an item by its key, with its version.
    pub async fn get_item(
        &self,
        table: &str,
        key: Item,
        consistent_read: bool,
    ) -> Result<Option<(Item, ItemVersion)>, Error> {
        let response = self
            .get_item_request(GetItemRequest {
                table_name: table.into(),
                key: v1_item(&key),
                consistent_read,
                return_item_version: true,
                ..Default::default()
            })
            .await?;
        match (response.item, response.item_version) {
            (Some(item), Some(version)) => Ok(Some((item_from(item.attributes)?, version))),
            _ => Ok(None),
        }
    }

    /// Deletes an item by its key; returns the version the delete was given.
    pub async fn delete_item(&self, table: &str, key: Item) -> Result<ItemVersion, Error> {
        let response = self
            .delete_item_request(DeleteItemRequest {
                table_name: table.into(),
                key: v1_item(&key),
                ..Default::default()
            })
            .await?;
        response.item_version.ok_or_else(|| Error::Api(ApiError::internal("write without a version")))
    }

    /// Puts a Rust value (serialised with serde) as an item.
    pub async fn put<T: serde::Serialize>(&self, table: &str, value: &T) -> Result<ItemVersion, Error> {
        self.put_item(table, to_item(value)?).await
    }

    /// Gets an item by a key (any serialisable value holding the key attributes) as a Rust value.
    pub async fn get<K: serde::Serialize, T: serde::de::DeserializeOwned>(
        &self,
        table: &str,
        key: &K,
        consistent_read: bool,
    ) -> Result<Option<T>, Error> {
        match self.get_item(table, to_item(key)?, consistent_read).await? {
            Some((item, _)) => Ok(Some(from_item(item)?)),
            None => Ok(None),
        }
    }

    /// Every item a Query selects, following LastEvaluatedKey across pages.
    pub async fn query_all(&self, mut message: QueryRequest) -> Result<Vec<Item>, Error> {
        let mut items = Vec::new();
        loop {
            let page = self.query(message.clone()).await?;
            for item in page.items {
                items.push(item_from(item.attributes)?);
            }
            match page.last_evaluated_key {
                Some(key) => message.exclusive_start_key = Some(key),
                None => return Ok(items),
            }
        }
    }

    /// Every item of a table, following LastEvaluatedKey across pages.
    pub async fn scan_all(&self, mut message: ScanRequest) -> Result<Vec<Item>, Error> {
        let mut items = Vec::new();
        loop {
            let page = self.scan(message.clone()).await?;
            for item in page.items {
                items.push(item_from(item.attributes)?);
            }
            match page.last_evaluated_key {
                Some(key) => message.exclusive_start_key = Some(key),
                None => return Ok(items),
            }
        }
    }
}
