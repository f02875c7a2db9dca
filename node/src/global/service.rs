//! The `tern.v1.Replication` service, which replicators and other regions call: replicated writes,
//! replica lists and statuses (proposed on the leader), and the replication state and versioned
//! pages of a table (read on the leader).

use tern_proto::v1::replication_server::Replication;
use tern_proto::v1::*;
use tonic::{Request, Response, Status};

use super::{replication_identity, state};
use crate::routing::{Caller, RegionNode};
use crate::schema::check_table_name;

/// Most items (and tombstones) in one page of ReadTableVersions.
pub const MAX_VERSIONS_PAGE: usize = 1000;

/// Serves `tern.v1.Replication` on one node.
pub struct ReplicationService {
    node: RegionNode,
}

impl ReplicationService {
    pub fn new(node: RegionNode) -> Self {
        ReplicationService { node }
    }
}

#[tonic::async_trait]
impl Replication for ReplicationService {
    async fn apply_replicated(
        &self,
        request: Request<ApplyReplicatedRequest>,
    ) -> Result<Response<ApplyReplicatedResponse>, Status> {
        let identity = Some(replication_identity(&request.get_ref().source_region));
        let caller = Caller::of(&request);
        self.node.write_as(caller, request.into_inner(), identity).await.map(Response::new)
    }

    async fn set_replicas(
        &self,
        request: Request<SetReplicasRequest>,
    ) -> Result<Response<SetReplicasResponse>, Status> {
        check_table_name(&request.get_ref().table_name)?;
        self.node.write(Caller::of(&request), request.into_inner()).await.map(Response::new)
    }

    async fn set_replica_status(
        &self,
        request: Request<SetReplicaStatusRequest>,
    ) -> Result<Response<SetReplicasResponse>, Status> {
        self.node.write(Caller::of(&request), request.into_inner()).await.map(Response::new)
    }

    async fn lock_replica_update(
        &self,
        request: Request<LockReplicaUpdateRequest>,
    ) -> Result<Response<LockReplicaUpdateResponse>, Status> {
        check_table_name(&request.get_ref().table_name)?;
        self.node.write(Caller::of(&request), request.into_inner()).await.map(Response::new)
    }

    async fn get_replication_state(
        &self,
        request: Request<GetReplicationStateRequest>,
    ) -> Result<Response<ReplicationState>, Status> {
        let node = &self.node;
        let read = |request: GetReplicationStateRequest| {
            let table_name = request.table_name;
            let (_, stored) = node.reader.table(&table_name)?;
            let state = node.reader.latest();
            let checkpoints = state::checkpoints(state, stored.table_id)?.into_values().collect();
            Ok(ReplicationState {
                table_name,
                region: node.region.clone(),
                checkpoints,
                safe_point_micros: state::safe_point(state, &stored, &node.region)?,
                tombstones: state::tombstone_count(state, stored.table_id, state::TOMBSTONES_COUNTED),
                replicas: stored.description.map(|d| d.replicas).unwrap_or_default(),
            })
        };
        node.read(Caller::of(&request), true, request.into_inner(), read).await.map(Response::new)
    }

    async fn read_table_versions(
        &self,
        request: Request<ReadTableVersionsRequest>,
    ) -> Result<Response<ReadTableVersionsResponse>, Status> {
        let node = &self.node;
        let read = |request: ReadTableVersionsRequest| {
            let (schema, stored) = node.reader.table(&request.table_name)?;
            let limit = match request.limit as usize {
                0 => MAX_VERSIONS_PAGE,
                n => n.min(MAX_VERSIONS_PAGE),
            };
            let view = node.reader.view();
            Ok(state::versions_page(view.as_ref(), &schema, &stored, &request.exclusive_start_key, limit)?)
        };
        node.read(Caller::of(&request), true, request.into_inner(), read).await.map(Response::new)
    }
}
