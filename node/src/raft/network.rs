//! openraft's network over tonic: each RPC is bincode in a `RaftPayload`, sent to the peer's internal
//! `tern.internal.v1.Raft` service.

use openraft::error::{InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest,
    VoteResponse,
};
use openraft::BasicNode;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tern_proto::internal::raft_client::RaftClient;
use tern_proto::internal::RaftPayload;
use tonic::transport::{Channel, Endpoint};

use super::log_sync::LogSync;
use super::types::{NodeId, TypeConfig};

/// Largest Raft message: a batch of entries, each up to an item of 400 KB.
pub const MAX_RAFT_MESSAGE_BYTES: usize = 512 * 1024 * 1024;

/// Creates a client per peer.
#[derive(Clone)]
pub struct Network {
    log: LogSync,
}

impl Network {
    /// The network of a node whose log is `log`.
    pub fn new(log: LogSync) -> Self {
        Network { log }
    }
}

/// The connection to one peer.
pub struct PeerClient {
    target: NodeId,
    client: Option<RaftClient<Channel>>,
    address: String,
    /// Commits sent are clamped to the last entry on this node's disk.
    log: LogSync,
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = PeerClient;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> PeerClient {
        let client = Endpoint::from_shared(format!("http://{}", node.addr)).ok().map(|endpoint| {
            let channel = endpoint.connect_timeout(std::time::Duration::from_secs(1)).tcp_nodelay(true).connect_lazy();
            RaftClient::new(channel)
                .max_decoding_message_size(MAX_RAFT_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_RAFT_MESSAGE_BYTES)
        });
        PeerClient { target, client, address: node.addr.clone(), log: self.log.clone() }
    }
}

#[derive(Clone, Copy)]
enum Rpc {
    AppendEntries,
    Vote,
    InstallSnapshot,
}

impl PeerClient {
    async fn call<Req, Resp, E>(
        &mut self,
        rpc: Rpc,
        request: &Req,
        option: &RPCOption,
    ) -> Result<Resp, RPCError<NodeId, BasicNode, RaftError<NodeId, E>>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let Some(client) = self.client.as_mut() else {
            let error =
                std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("bad peer address {}", self.address));
            return Err(RPCError::Unreachable(Unreachable::new(&error)));
        };
        let data = bincode::serialize(request).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        let mut message = tonic::Request::new(RaftPayload { data });
        message.set_timeout(option.hard_ttl());
        let response = match rpc {
            Rpc::AppendEntries => client.append_entries(message).await,
            Rpc::Vote => client.vote(message).await,
            Rpc::InstallSnapshot => client.install_snapshot(message).await,
        };
        let payload = response.map_err(|status| match status.code() {
            tonic::Code::Unavailable => RPCError::Unreachable(Unreachable::new(&status)),
            _ => RPCError::Network(NetworkError::new(&status)),
        })?;
        let result: Result<Resp, RaftError<NodeId, E>> =
            bincode::deserialize(&payload.into_inner().data).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        result.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

impl RaftNetwork<TypeConfig> for PeerClient {
    async fn append_entries(
        &mut self,
        mut rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        rpc.leader_commit = self.log.clamp_commit(rpc.leader_commit);
        self.call(Rpc::AppendEntries, &rpc, &option).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<InstallSnapshotResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId, InstallSnapshotError>>>
    {
        self.call(Rpc::InstallSnapshot, &rpc, &option).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        self.call(Rpc::Vote, &rpc, &option).await
    }
}
