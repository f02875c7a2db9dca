//! Where a request is served: writes and strongly consistent reads on the leader (forwarded there
//! from a follower without the caller noticing), eventually consistent reads anywhere.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use openraft::error::{CheckIsLeaderError, ClientWriteError, RaftError};
use prost::Message;
use tern_proto::internal::{command, command_outcome, Command, CommandOutcome};
use tern_proto::v1::cluster_client::ClusterClient;
use tern_proto::v1::tern_client::TernClient;
use tern_proto::{ApiError, ErrorKind};
use tonic::transport::{Channel, Endpoint};

use crate::clock;
use crate::raft::types::{NodeId, Proposal, Raft};
use crate::storage::Reader;

/// Metadata marking a request a follower forwarded to the leader; it is never forwarded again.
pub const FORWARDED_KEY: &str = "tern-forwarded";
/// Largest public API message: a page of items, a 400 KB item and its overhead.
pub const MAX_API_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// Where to serve a request that needs the leader.
pub enum Route {
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
    pub reader: Reader,
    /// The deployment's regions, when the node was given a topology file.
    pub topology: Option<Arc<crate::topology::Topology>>,
    channels: Arc<Mutex<HashMap<String, Channel>>>,
    /// Clients of the other regions, made on first use.
    regions: Arc<Mutex<HashMap<String, tern_client::Client>>>,
}

fn no_leader() -> ApiError {
    ApiError::unavailable("The region has no leader right now; retry")
}

impl RegionNode {
    pub fn new(id: NodeId, region: String, raft: Raft, reader: Reader) -> Self {
        RegionNode { id, region, raft, reader, topology: None, channels: Arc::default(), regions: Arc::default() }
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
    pub async fn region_client(&self, region: &str) -> Result<tern_client::Client, ApiError> {
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

    pub fn tern_client(channel: Channel) -> TernClient<Channel> {
        TernClient::new(channel)
            .max_decoding_message_size(MAX_API_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_API_MESSAGE_BYTES)
    }

    pub fn cluster_client(channel: Channel) -> ClusterClient<Channel> {
        ClusterClient::new(channel)
    }

    /// The leader as this node sees it: itself, another node, or none (an election is under way).
    pub fn route(&self, forwarded: bool) -> Result<Route, ApiError> {
        let metrics = self.raft.metrics().borrow().clone();
        match metrics.current_leader {
            Some(leader) if leader == self.id => Ok(Route::Local),
            _ if forwarded => Err(ApiError::unavailable("This node is no longer the leader; retry")),
            Some(leader) => {
                let node = metrics.membership_config.membership().get_node(&leader).cloned().ok_or_else(no_leader)?;
                Ok(Route::Leader(self.channel(&node.addr)?))
            }
            None => Err(no_leader()),
        }
    }

    /// Proposes a write on this node, the leader, and waits for it to be applied here.
    pub async fn propose(&self, op: command::Op) -> Result<command_outcome::Outcome, ApiError> {
        self.propose_as(op, None).await
    }

    /// Proposes a write attributed to `identity` in stream records (a service; none for users).
    pub async fn propose_as(
        &self,
        op: command::Op,
        identity: Option<tern_proto::v1::Identity>,
    ) -> Result<command_outcome::Outcome, ApiError> {
        let command = Command {
            proposed_at_micros: clock::now_micros(),
            origin_region: self.region.clone(),
            op: Some(op),
            identity,
        };
        let response = self.raft.client_write(Proposal(command.encode_to_vec())).await.map_err(|e| match e {
            RaftError::APIError(ClientWriteError::ForwardToLeader(_)) => {
                ApiError::unavailable("Leadership changed while writing; retry")
            }
            other => ApiError::unavailable(format!("Write not committed: {other}")),
        })?;
        let outcome =
            CommandOutcome::decode(response.data.0.as_slice()).map_err(|e| ApiError::internal(e.to_string()))?;
        match outcome.outcome {
            Some(command_outcome::Outcome::Error(error)) => {
                let kind = ErrorKind::from_name(&error.error_type).unwrap_or(ErrorKind::InternalServerError);
                let api_error = ApiError::new(kind, error.message);
                Err(match error.details {
                    Some(details) => api_error.with_details(details),
                    None => api_error,
                })
            }
            Some(outcome) => Ok(outcome),
            None => Err(ApiError::internal("empty outcome")),
        }
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
