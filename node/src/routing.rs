//! Where a request is served: writes, proposals and strongly consistent reads on the leader
//! (forwarded there from a follower without the caller noticing), eventually consistent reads
//! anywhere. [`RegionNode::on_leader`] is the one way to reach the leader; [`RegionNode::write`] and
//! [`RegionNode::read`] are built on it. A request names the gRPC method that serves it
//! ([`OnLeader`]), so forwarding is one generic unary call.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use openraft::error::{CheckIsLeaderError, RaftError};
use prost::Message;
use tern_proto::internal::{command, command_outcome, ClientSession, Command};
use tern_proto::session;
use tern_proto::v1::*;
use tern_proto::{ApiError, ErrorKind};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Status};

use crate::clock;
use crate::proposals::Proposer;
use crate::raft::types::{NodeId, Raft};
use crate::reader::Reader;

/// Metadata marking a request a follower forwarded to the leader; it is never forwarded again.
pub const FORWARDED_KEY: &str = "tern-forwarded";
/// Largest public API message: a page of items, a 400 KB item and its overhead.
pub const MAX_API_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// Where to serve a request that needs the leader.
enum Route {
    /// This node is the leader.
    Local,
    /// The leader is another node, reached through this channel.
    Leader(Channel),
}

/// What the API needs of its node: Raft, the local state, and channels to the other nodes.
#[derive(Clone)]
pub struct RegionNode {
    pub id: NodeId,
    pub region: String,
    pub raft: Raft,
    /// Proposes this node's commands when it leads, batching writes that arrive together.
    proposer: Proposer,
    pub reader: Reader,
    /// This node's clock against its region's: a node whose clock is off does not lead.
    pub clock: Arc<clock::Monitor>,
    /// The deployment's regions, when the node was given a topology file.
    pub topology: Option<Arc<crate::topology::Topology>>,
    channels: Arc<Mutex<HashMap<String, Channel>>>,
    /// Clients of the other regions, made on first use.
    regions: Arc<Mutex<HashMap<String, ::tern_client::Client>>>,
}

fn no_leader() -> ApiError {
    ApiError::unavailable("The region has no leader right now; retry")
}

impl RegionNode {
    pub fn new(id: NodeId, region: String, raft: Raft, reader: Reader, clock: Arc<clock::Monitor>) -> Self {
        RegionNode {
            id,
            region,
            proposer: Proposer::start(raft.clone()),
            raft,
            reader,
            clock,
            topology: None,
            channels: Arc::default(),
            regions: Arc::default(),
        }
    }

    /// A channel to a node's address, kept for reuse.
    pub fn channel(&self, address: &str) -> Result<Channel, ApiError> {
        let mut channels = self.channels.lock().expect("channel cache lock");
        if let Some(channel) = channels.get(address) {
            return Ok(channel.clone());
        }
        let endpoint =
            Endpoint::from_shared(format!("http://{address}")).map_err(|e| ApiError::internal(e.to_string()))?;
        let channel = endpoint.connect_timeout(std::time::Duration::from_secs(1)).tcp_nodelay(true).connect_lazy();
        channels.insert(address.to_string(), channel.clone());
        Ok(channel)
    }

    /// A client of another region's nodes, as the topology lists them; made once, then reused.
    pub async fn region_client(&self, region: &str) -> Result<::tern_client::Client, ApiError> {
        if let Some(client) = self.regions.lock().expect("region clients lock").get(region) {
            return Ok(client.clone());
        }
        let topology = self.topology.as_ref().ok_or_else(|| {
            ApiError::validation("This node was started without --topology, so it cannot reach other regions")
        })?;
        let client = topology.connect(region, std::time::Duration::from_secs(10)).await.map_err(|e| match e {
            crate::topology::TopologyError::Connect { .. } => ApiError::internal(e.to_string()),
            other => ApiError::validation(other.to_string()),
        })?;
        self.regions.lock().expect("region clients lock").insert(region.to_string(), client.clone());
        Ok(client)
    }

    /// Serves a request on the leader: `local` runs here when this node leads; otherwise the
    /// request goes to the leader, marked as forwarded (a forwarded request is never forwarded
    /// again: the caller retries).
    pub async fn on_leader<R, F, Fut>(&self, caller: &Caller, request: R, local: F) -> Result<R::Response, Status>
    where
        R: OnLeader,
        F: FnOnce(R) -> Fut + Send,
        Fut: Future<Output = Result<R::Response, Status>> + Send,
    {
        match self.route(caller.forwarded)? {
            Route::Local => local(request).await,
            Route::Leader(channel) => forward(channel, request, caller).await,
        }
    }

    /// Proposes a write as one command on the leader, and answers with its outcome.
    pub async fn write<R: Proposed>(&self, caller: Caller, request: R) -> Result<R::Response, Status> {
        self.write_as(caller, request, None).await
    }

    /// [`RegionNode::write`] for a request whose checks need the table: `check` runs on the leader
    /// (after forwarding, never on a follower that may not have applied the table yet), then the write.
    pub async fn write_checked<R, C>(&self, caller: Caller, request: R, check: C) -> Result<R::Response, Status>
    where
        R: Proposed,
        C: Fn(&mut R) -> Result<(), ApiError> + Send,
    {
        let session = caller.session.clone();
        self.on_leader(&caller, request, |mut request| async move {
            if let Err(error) = check(&mut request) {
                if error.kind != ErrorKind::ResourceNotFoundException {
                    return Err(error.into());
                }
                // A new leader may not have applied its predecessor's last entries yet (a table
                // created just before): after a read barrier it has, and the check (which only makes
                // the request canonical, so runs twice alike) is final.
                self.linearizable().await?;
                check(&mut request)?;
            }
            self.propose_call(request, None, session).await
        })
        .await
    }

    /// [`RegionNode::write`], attributed to `identity` in stream records (a service; none for users).
    pub async fn write_as<R: Proposed>(
        &self,
        caller: Caller,
        request: R,
        identity: Option<Identity>,
    ) -> Result<R::Response, Status> {
        let session = caller.session.clone();
        self.on_leader(&caller, request, |request| self.propose_call(request, identity, session)).await
    }

    /// Proposes a write on this node, the leader, and answers with its outcome.
    pub async fn propose_request<R: Proposed>(
        &self,
        request: R,
        identity: Option<Identity>,
    ) -> Result<R::Response, Status> {
        self.propose_call(request, identity, None).await
    }

    /// Proposes a write as one call of a client's session: a retry of the call is answered with the
    /// outcome of its first application.
    async fn propose_call<R: Proposed>(
        &self,
        request: R,
        identity: Option<Identity>,
        session: Option<ClientSession>,
    ) -> Result<R::Response, Status> {
        let outcome = self.propose_command(request.into_op(), identity, session).await?;
        R::from_outcome(outcome).map_err(|other| ApiError::internal(format!("unexpected outcome {other:?}")).into())
    }

    /// Serves a read: here when eventually consistent; when `consistent`, on the leader after a
    /// read-index barrier, so it sees every write acknowledged before it.
    pub async fn read<R, F>(
        &self,
        caller: Caller,
        consistent: bool,
        request: R,
        local: F,
    ) -> Result<R::Response, Status>
    where
        R: OnLeader,
        F: FnOnce(R) -> Result<R::Response, Status> + Send,
    {
        if !consistent {
            // A node installing a snapshot holds part of it: the caller asks another node. Checked
            // after the read too, since an install that begins meanwhile clears what it read.
            let installing = || -> Result<(), Status> {
                match self.reader.installing_snapshot() {
                    true => Err(ApiError::unavailable("This node is installing a snapshot; retry").into()),
                    false => Ok(()),
                }
            };
            installing()?;
            let response = local(request);
            installing()?;
            return response;
        }
        self.on_leader(&caller, request, |request| async move {
            self.linearizable().await?;
            local(request)
        })
        .await
    }

    /// Whether this node leads its region now (background work that proposes runs only there).
    pub fn leads(&self) -> bool {
        matches!(self.route(false), Ok(Route::Local))
    }

    /// The leader as this node sees it: itself, another node, or none (an election is under way).
    fn route(&self, forwarded: bool) -> Result<Route, ApiError> {
        let metrics = self.raft.metrics().borrow().clone();
        match metrics.current_leader {
            // A leader whose clock is off would stamp versions far from the region's time: it serves
            // nothing while its followers, without its heartbeats, elect another.
            Some(leader) if leader == self.id => match self.clock.refusal() {
                None => Ok(Route::Local),
                Some(reason) => {
                    Err(ApiError::unavailable(format!("This node is giving up leadership ({reason}); retry")))
                }
            },
            _ if forwarded => Err(ApiError::unavailable("This node is no longer the leader; retry")),
            Some(leader) => {
                let node = metrics.membership_config.membership().get_node(&leader).cloned().ok_or_else(no_leader)?;
                Ok(Route::Leader(self.channel(&node.addr)?))
            }
            None => Err(no_leader()),
        }
    }

    /// Proposes a command on this node, the leader, and waits for it to be applied here; the command
    /// is attributed to `identity` in stream records (a service; none for users).
    pub async fn propose_as(
        &self,
        op: command::Op,
        identity: Option<tern_proto::v1::Identity>,
    ) -> Result<command_outcome::Outcome, ApiError> {
        self.propose_command(op, identity, None).await
    }

    /// Proposes a command on this node, the leader, as one call of the caller's session (a retried
    /// call is answered with its first outcome).
    pub async fn propose_in_session(
        &self,
        op: command::Op,
        session: Option<ClientSession>,
    ) -> Result<command_outcome::Outcome, ApiError> {
        self.propose_command(op, None, session).await
    }

    async fn propose_command(
        &self,
        op: command::Op,
        identity: Option<tern_proto::v1::Identity>,
        session: Option<ClientSession>,
    ) -> Result<command_outcome::Outcome, ApiError> {
        let command = Command {
            proposed_at_micros: clock::now_micros(),
            origin_region: self.region.clone(),
            op: Some(op),
            identity,
            session,
        };
        self.proposer.propose(command).await
    }

    /// Waits until this leader's state machine holds every write acknowledged before the call (read index).
    pub async fn linearizable(&self) -> Result<(), ApiError> {
        self.raft.ensure_linearizable().await.map(|_| ()).map_err(|e| match e {
            RaftError::APIError(CheckIsLeaderError::ForwardToLeader(_)) => {
                ApiError::unavailable("Leadership changed while reading; retry")
            }
            other => ApiError::unavailable(format!("Could not confirm leadership: {other}")),
        })
    }
}

/// Who sent a request: whether a follower forwarded it, and the client session call it is, if any.
#[derive(Debug, Clone, Default)]
pub struct Caller {
    pub forwarded: bool,
    pub session: Option<ClientSession>,
}

impl Caller {
    /// The caller of a request, from its metadata.
    pub fn of<T>(request: &Request<T>) -> Caller {
        let metadata = request.metadata();
        let text = |key: &str| metadata.get(key).and_then(|v| v.to_str().ok());
        let number = |key: &str| text(key).and_then(|v| v.parse::<u64>().ok());
        let session = match (text(session::SESSION_KEY), number(session::SEQUENCE_KEY)) {
            (Some(id), Some(sequence)) if valid_session_id(id) => Some(ClientSession {
                id: id.to_string(),
                sequence,
                completed_below: number(session::COMPLETED_BELOW_KEY).unwrap_or(0).min(sequence),
            }),
            _ => None,
        };
        Caller { forwarded: metadata.contains_key(FORWARDED_KEY), session }
    }
}

/// A session id as clients make them: 1 to 64 letters, digits, `-` and `_` (so that one session's keys
/// never fall in another's range).
fn valid_session_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Sends a request to the leader through `channel`, marked as forwarded, with the caller's session.
async fn forward<R: OnLeader>(channel: Channel, request: R, caller: &Caller) -> Result<R::Response, Status> {
    let mut grpc = tonic::client::Grpc::new(channel)
        .max_decoding_message_size(MAX_API_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_API_MESSAGE_BYTES);
    grpc.ready().await.map_err(|e| Status::unknown(format!("Service was not ready: {e}")))?;
    let mut request = Request::new(request);
    request.metadata_mut().insert(FORWARDED_KEY, tonic::metadata::MetadataValue::from_static("1"));
    if let Some(call) = &caller.session {
        let metadata = request.metadata_mut();
        for (key, value) in [
            (session::SESSION_KEY, call.id.clone()),
            (session::SEQUENCE_KEY, call.sequence.to_string()),
            (session::COMPLETED_BELOW_KEY, call.completed_below.to_string()),
        ] {
            if let Ok(value) = value.parse() {
                metadata.insert(key, value);
            }
        }
    }
    let codec = tonic_prost::ProstCodec::<R, R::Response>::default();
    Ok(grpc.unary(request, PathAndQuery::from_static(R::METHOD), codec).await?.into_inner())
}

/// A request the leader serves, and the gRPC method that serves it (where followers forward it).
pub trait OnLeader: Message + Default + Send + Sync + 'static {
    type Response: Message + Default + Send + Sync + 'static;
    const METHOD: &'static str;
}

/// A write proposed as one command; its outcome is its response.
pub trait Proposed: OnLeader {
    fn into_op(self) -> command::Op;
    /// The response an outcome holds, or the outcome itself when it holds another.
    fn from_outcome(outcome: command_outcome::Outcome) -> Result<Self::Response, command_outcome::Outcome>;
}

macro_rules! on_leader {
    ($($request:ty => $response:ty, $method:literal;)*) => {$(
        impl OnLeader for $request {
            type Response = $response;
            const METHOD: &'static str = $method;
        }
    )*};
}

on_leader! {
    CreateTableRequest => CreateTableResponse, "/tern.v1.Tern/CreateTable";
    DeleteTableRequest => DeleteTableResponse, "/tern.v1.Tern/DeleteTable";
    UpdateTableRequest => UpdateTableResponse, "/tern.v1.Tern/UpdateTable";
    UpdateTimeToLiveRequest => UpdateTimeToLiveResponse, "/tern.v1.Tern/UpdateTimeToLive";
    PutItemRequest => PutItemResponse, "/tern.v1.Tern/PutItem";
    GetItemRequest => GetItemResponse, "/tern.v1.Tern/GetItem";
    DeleteItemRequest => DeleteItemResponse, "/tern.v1.Tern/DeleteItem";
    UpdateItemRequest => UpdateItemResponse, "/tern.v1.Tern/UpdateItem";
    BatchGetItemRequest => BatchGetItemResponse, "/tern.v1.Tern/BatchGetItem";
    BatchWriteItemRequest => BatchWriteItemResponse, "/tern.v1.Tern/BatchWriteItem";
    TransactWriteItemsRequest => TransactWriteItemsResponse, "/tern.v1.Tern/TransactWriteItems";
    TransactGetItemsRequest => TransactGetItemsResponse, "/tern.v1.Tern/TransactGetItems";
    QueryRequest => ItemPage, "/tern.v1.Tern/Query";
    ScanRequest => ItemPage, "/tern.v1.Tern/Scan";
    AddNodeRequest => MembershipResponse, "/tern.v1.Cluster/AddNode";
    RemoveNodeRequest => MembershipResponse, "/tern.v1.Cluster/RemoveNode";
    PutConsumerPositionRequest => PutConsumerPositionResponse, "/tern.v1.Streams/PutConsumerPosition";
    ApplyReplicatedRequest => ApplyReplicatedResponse, "/tern.v1.Replication/ApplyReplicated";
    GetReplicationStateRequest => ReplicationState, "/tern.v1.Replication/GetReplicationState";
    ReadTableVersionsRequest => ReadTableVersionsResponse, "/tern.v1.Replication/ReadTableVersions";
    SetReplicasRequest => SetReplicasResponse, "/tern.v1.Replication/SetReplicas";
    SetReplicaStatusRequest => SetReplicasResponse, "/tern.v1.Replication/SetReplicaStatus";
    LockReplicaUpdateRequest => LockReplicaUpdateResponse, "/tern.v1.Replication/LockReplicaUpdate";
    UpdateContinuousBackupsRequest => UpdateContinuousBackupsResponse, "/tern.v1.Backups/UpdateContinuousBackups";
    RestoreTableToPointInTimeRequest => RestoreTableToPointInTimeResponse, "/tern.v1.Backups/RestoreTableToPointInTime";
    RestoreTableFromBackupRequest => RestoreTableFromBackupResponse, "/tern.v1.Backups/RestoreTableFromBackup";
    CreateBackupRequest => CreateBackupResponse, "/tern.v1.Backups/CreateBackup";
    DeleteBackupRequest => DeleteBackupResponse, "/tern.v1.Backups/DeleteBackup";
    DescribeBackupRequest => DescribeBackupResponse, "/tern.v1.Backups/DescribeBackup";
    ListBackupsRequest => ListBackupsResponse, "/tern.v1.Backups/ListBackups";
    DescribeContinuousBackupsRequest => DescribeContinuousBackupsResponse, "/tern.v1.Backups/DescribeContinuousBackups";
    ExportTableToPointInTimeRequest => ExportTableToPointInTimeResponse, "/tern.v1.Transfers/ExportTableToPointInTime";
    DescribeExportRequest => DescribeExportResponse, "/tern.v1.Transfers/DescribeExport";
    ListExportsRequest => ListExportsResponse, "/tern.v1.Transfers/ListExports";
    ImportTableRequest => ImportTableResponse, "/tern.v1.Transfers/ImportTable";
    DescribeImportRequest => DescribeImportResponse, "/tern.v1.Transfers/DescribeImport";
    ListImportsRequest => ListImportsResponse, "/tern.v1.Transfers/ListImports";
}

macro_rules! proposed {
    ($($request:ty => $op:ident, $outcome:ident;)*) => {$(
        impl Proposed for $request {
            fn into_op(self) -> command::Op {
                command::Op::$op(self)
            }

            fn from_outcome(outcome: command_outcome::Outcome) -> Result<Self::Response, command_outcome::Outcome> {
                match outcome {
                    command_outcome::Outcome::$outcome(response) => Ok(response),
                    other => Err(other),
                }
            }
        }
    )*};
}

proposed! {
    CreateTableRequest => CreateTable, CreateTable;
    DeleteTableRequest => DeleteTable, DeleteTable;
    UpdateTableRequest => UpdateTable, UpdateTable;
    UpdateTimeToLiveRequest => UpdateTimeToLive, UpdateTimeToLive;
    PutItemRequest => PutItem, PutItem;
    DeleteItemRequest => DeleteItem, DeleteItem;
    UpdateItemRequest => UpdateItem, UpdateItem;
    BatchWriteItemRequest => BatchWriteItem, BatchWriteItem;
    TransactWriteItemsRequest => TransactWriteItems, TransactWriteItems;
    PutConsumerPositionRequest => PutConsumerPosition, PutConsumerPosition;
    ApplyReplicatedRequest => ApplyReplicated, ApplyReplicated;
    SetReplicasRequest => SetReplicas, SetReplicas;
    SetReplicaStatusRequest => SetReplicaStatus, SetReplicas;
    LockReplicaUpdateRequest => LockReplicaUpdate, LockReplicaUpdate;
    UpdateContinuousBackupsRequest => UpdateContinuousBackups, UpdateContinuousBackups;
}
