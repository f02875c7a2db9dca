//! The public `tern.v1.Cluster` service: a node's status and the region's membership.

use std::collections::BTreeSet;

use openraft::{BasicNode, ChangeMembers};
use tern_proto::v1::cluster_server::Cluster;
use tern_proto::v1::{AddNodeRequest, Member, MembershipResponse, NodeStatus, NodeStatusRequest, RemoveNodeRequest};
use tern_proto::ApiError;
use tonic::{Request, Response, Status};

use crate::routing::{Caller, RegionNode};

/// Serves `tern.v1.Cluster` on one node.
pub struct ClusterService {
    node: RegionNode,
}

impl ClusterService {
    pub fn new(node: RegionNode) -> Self {
        ClusterService { node }
    }

    fn members(&self) -> Vec<Member> {
        let metrics = self.node.raft.metrics().borrow().clone();
        let membership = metrics.membership_config.membership();
        let voters: BTreeSet<u64> = membership.voter_ids().collect();
        membership
            .nodes()
            .map(|(id, node)| Member { node_id: *id, address: node.addr.clone(), voter: voters.contains(id) })
            .collect()
    }
}

fn membership_error(e: impl std::fmt::Display) -> Status {
    ApiError::unavailable(format!("Membership change failed: {e}")).into()
}

#[tonic::async_trait]
impl Cluster for ClusterService {
    async fn get_node_status(&self, _: Request<NodeStatusRequest>) -> Result<Response<NodeStatus>, Status> {
        let metrics = self.node.raft.metrics().borrow().clone();
        let leader_address = metrics
            .current_leader
            .and_then(|id| metrics.membership_config.membership().get_node(&id).map(|n| n.addr.clone()))
            .unwrap_or_default();
        Ok(Response::new(NodeStatus {
            node_id: self.node.id,
            region: self.node.region.clone(),
            state: format!("{:?}", metrics.state),
            current_term: metrics.current_term,
            leader_id: metrics.current_leader,
            leader_address,
            last_log_index: metrics.last_log_index.unwrap_or(0),
            last_applied_index: metrics.last_applied.map_or(0, |id| id.index),
            snapshot_index: metrics.snapshot.map_or(0, |id| id.index),
            purged_index: metrics.purged.map_or(0, |id| id.index),
            members: self.members(),
            clock_offset_micros: self.node.clock.verdict().map_or(0, |v| v.offset_micros),
            leadership_refused: self.node.clock.refusal().unwrap_or_default(),
        }))
    }

    async fn add_node(&self, request: Request<AddNodeRequest>) -> Result<Response<MembershipResponse>, Status> {
        let caller = Caller::of(&request);
        let request = request.into_inner();
        if request.address.is_empty() {
            return Err(ApiError::validation("AddNode needs the new node's address").into());
        }
        self.node.on_leader(&caller, request, |request| self.add_here(request)).await.map(Response::new)
    }

    async fn remove_node(&self, request: Request<RemoveNodeRequest>) -> Result<Response<MembershipResponse>, Status> {
        let caller = Caller::of(&request);
        self.node.on_leader(&caller, request.into_inner(), |request| self.remove_here(request)).await.map(Response::new)
    }
}

impl ClusterService {
    /// Adds a node, on the leader.
    async fn add_here(&self, request: AddNodeRequest) -> Result<MembershipResponse, Status> {
        let node = BasicNode { addr: request.address.clone() };
        // Joins as a learner and catches up (blocking until it has), then becomes a voter.
        self.node.raft.add_learner(request.node_id, node, true).await.map_err(membership_error)?;
        let adding = ChangeMembers::AddVoterIds(BTreeSet::from([request.node_id]));
        self.node.raft.change_membership(adding, false).await.map_err(membership_error)?;
        tracing::info!(node = request.node_id, address = %request.address, "added node");
        Ok(MembershipResponse { members: self.members() })
    }

    /// Removes a node, on the leader.
    async fn remove_here(&self, request: RemoveNodeRequest) -> Result<MembershipResponse, Status> {
        let metrics = self.node.raft.metrics().borrow().clone();
        let membership = metrics.membership_config.membership();
        if membership.get_node(&request.node_id).is_none() {
            return Err(ApiError::not_found(format!("Node {} is not a member of the region", request.node_id)).into());
        }
        let voters: BTreeSet<u64> = membership.voter_ids().filter(|id| *id != request.node_id).collect();
        if voters.is_empty() {
            return Err(ApiError::validation("Cannot remove the last voter of a region").into());
        }
        if membership.voter_ids().any(|id| id == request.node_id) {
            self.node
                .raft
                .change_membership(ChangeMembers::RemoveVoters(BTreeSet::from([request.node_id])), false)
                .await
                .map_err(membership_error)?;
        }
        let remaining =
            self.node.raft.metrics().borrow().membership_config.membership().get_node(&request.node_id).is_some();
        if remaining {
            self.node
                .raft
                .change_membership(ChangeMembers::RemoveNodes(BTreeSet::from([request.node_id])), false)
                .await
                .map_err(membership_error)?;
        }
        tracing::info!(node = request.node_id, "removed node");
        Ok(MembershipResponse { members: self.members() })
    }
}
