//! The `tern.v1.Replication` service (replicators and other regions call it), and UpdateTable's
//! ReplicaUpdates: creating a replica in another region and keeping every region's replica list.

use std::time::Duration;

use tern_proto::internal::{command, command_outcome};
use tern_proto::v1::replication_client::ReplicationClient;
use tern_proto::v1::replication_server::Replication;
use tern_proto::v1::*;
use tern_proto::ApiError;
use tonic::{Request, Response, Status};

use super::items::{forwarded, to_leader, unexpected};
use super::routing::{RegionNode, Route, MAX_API_MESSAGE_BYTES};
use crate::storage::replication::{self as global, replication_identity};
use crate::storage::schema::check_table_name;

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

    fn client(channel: tonic::transport::Channel) -> ReplicationClient<tonic::transport::Channel> {
        ReplicationClient::new(channel)
            .max_decoding_message_size(MAX_API_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_API_MESSAGE_BYTES)
    }

    /// The leader, once it has applied every acknowledged write; None when the call must be forwarded.
    async fn leader_view<T>(
        &self,
        request: &Request<T>,
    ) -> Result<Option<ReplicationClient<tonic::transport::Channel>>, Status> {
        match self.node.route(forwarded(request))? {
            Route::Local => {
                self.node.linearizable().await?;
                Ok(None)
            }
            Route::Leader(channel) => Ok(Some(Self::client(channel))),
        }
    }
}

/// Proposes a replication command on the leader (forwarding when this node is not it).
macro_rules! propose_on_leader {
    ($self:ident, $request:ident, $operation:ident, $outcome:ident, $rpc:ident, $identity:expr) => {{
        let is_forwarded = forwarded(&$request);
        let message = $request.into_inner();
        match $self.node.route(is_forwarded)? {
            Route::Local => match $self.node.propose_as(command::Op::$operation(message), $identity).await? {
                command_outcome::Outcome::$outcome(response) => Ok(Response::new(response)),
                other => Err(unexpected(other)),
            },
            Route::Leader(channel) => {
                Ok(Response::new(ReplicationService::client(channel).$rpc(to_leader(message)).await?.into_inner()))
            }
        }
    }};
}

#[tonic::async_trait]
impl Replication for ReplicationService {
    async fn apply_replicated(
        &self,
        request: Request<ApplyReplicatedRequest>,
    ) -> Result<Response<ApplyReplicatedResponse>, Status> {
        let identity = Some(replication_identity(&request.get_ref().source_region));
        propose_on_leader!(self, request, ApplyReplicated, ApplyReplicated, apply_replicated, identity)
    }

    async fn set_replicas(
        &self,
        request: Request<SetReplicasRequest>,
    ) -> Result<Response<SetReplicasResponse>, Status> {
        check_table_name(&request.get_ref().table_name)?;
        propose_on_leader!(self, request, SetReplicas, SetReplicas, set_replicas, None)
    }

    async fn set_replica_status(
        &self,
        request: Request<SetReplicaStatusRequest>,
    ) -> Result<Response<SetReplicasResponse>, Status> {
        propose_on_leader!(self, request, SetReplicaStatus, SetReplicas, set_replica_status, None)
    }

    async fn get_replication_state(
        &self,
        request: Request<GetReplicationStateRequest>,
    ) -> Result<Response<ReplicationState>, Status> {
        if let Some(mut leader) = self.leader_view(&request).await? {
            return Ok(Response::new(
                leader.get_replication_state(to_leader(request.into_inner())).await?.into_inner(),
            ));
        }
        let table_name = request.into_inner().table_name;
        let (_, stored) = self.node.reader.table(&table_name)?;
        let db = self.node.reader.db();
        let checkpoints = global::checkpoints(db, stored.table_id)?.into_values().collect();
        Ok(Response::new(ReplicationState {
            table_name,
            region: self.node.region.clone(),
            checkpoints,
            safe_point_micros: global::safe_point(db, &stored, &self.node.region)?,
            tombstones: global::tombstone_count(db, stored.table_id),
            replicas: stored.description.map(|d| d.replicas).unwrap_or_default(),
        }))
    }

    async fn read_table_versions(
        &self,
        request: Request<ReadTableVersionsRequest>,
    ) -> Result<Response<ReadTableVersionsResponse>, Status> {
        if let Some(mut leader) = self.leader_view(&request).await? {
            return Ok(Response::new(leader.read_table_versions(to_leader(request.into_inner())).await?.into_inner()));
        }
        let request = request.into_inner();
        let (schema, stored) = self.node.reader.table(&request.table_name)?;
        let limit = match request.limit as usize {
            0 => MAX_VERSIONS_PAGE,
            n => n.min(MAX_VERSIONS_PAGE),
        };
        Ok(Response::new(self.node.reader.versions_page(&schema, &stored, &request.exclusive_start_key, limit)?))
    }
}

fn remote(region: &str, error: ::tern_client::Error) -> ApiError {
    match error {
        ::tern_client::Error::Api(e) => ApiError::new(e.kind, format!("Region {region}: {}", e.message)),
        other => ApiError::unavailable(format!("Region {region} is unreachable: {other}")),
    }
}

/// UpdateTable's ReplicaUpdates, run on the leader of the region that received them: creates each new
/// replica's table in its region (with the key schema, TTL and the stream on), removes deleted ones,
/// and sets the new replica list in every region of the table, this one last.
pub async fn update_replicas(node: &RegionNode, request: UpdateTableRequest) -> Result<UpdateTableResponse, ApiError> {
    let (_, stored) = node.reader.table(&request.table_name)?;
    let description = stored.description.clone().unwrap_or_default();
    let mut replicas = description.replicas.clone();
    if replicas.is_empty() {
        replicas.push(ReplicaDescription {
            region_name: node.region.clone(),
            replica_status: "ACTIVE".into(),
            ..Default::default()
        });
    }
    let mut created = Vec::new();
    let mut deleted = Vec::new();
    for update in &request.replica_updates {
        match &update.action {
            Some(replication_group_update::Action::Create(create)) => {
                let region = &create.region_name;
                // A replica still CREATING is created again: that repeats a call that did not reach
                // every region (each step below is idempotent).
                if replicas.iter().any(|r| &r.region_name == region && r.replica_status == "CREATING") {
                    created.push(region.clone());
                    continue;
                }
                if replicas.iter().any(|r| &r.region_name == region) {
                    return Err(ApiError::validation(format!(
                        "Failed to create a the new replica of table with name: '{}' because one or more replicas already existed as tables.",
                        request.table_name
                    )));
                }
                replicas.push(ReplicaDescription {
                    region_name: region.clone(),
                    replica_status: "CREATING".into(),
                    replica_status_percent_progress: 0,
                });
                created.push(region.clone());
            }
            Some(replication_group_update::Action::Delete(delete)) => {
                let region = &delete.region_name;
                if region == &node.region {
                    return Err(ApiError::validation(
                        "To delete this region's replica, call UpdateTable in another replica's region",
                    ));
                }
                if !replicas.iter().any(|r| &r.region_name == region) {
                    return Err(ApiError::validation(format!(
                        "Cannot delete the replica in region {region}: table {} has no replica there",
                        request.table_name
                    )));
                }
                replicas.retain(|r| &r.region_name != region);
                deleted.push(region.clone());
            }
            None => return Err(ApiError::validation("A ReplicationGroupUpdate needs Create or Delete")),
        }
    }
    for region in created.iter().chain(&deleted) {
        node.region_client(region).await?;
    }
    for region in &deleted {
        drain(node, &request.table_name, region, &description.replicas).await?;
    }
    let create = CreateTableRequest {
        table_name: request.table_name.clone(),
        attribute_definitions: description.attribute_definitions.clone(),
        key_schema: description.key_schema.clone(),
        billing_mode: description.billing_mode.clone(),
        stream_specification: None,
    };
    let group = if replicas.len() > 1 { replicas.clone() } else { Vec::new() };
    // This region first: it turns the stream on, so every change from now on is in it.
    let local = SetReplicasRequest {
        table_name: request.table_name.clone(),
        replicas: group.clone(),
        create: None,
        time_to_live: None,
    };
    let outcome = node.propose(command::Op::SetReplicas(local)).await?;
    let command_outcome::Outcome::SetReplicas(response) = outcome else {
        return Err(ApiError::internal("unexpected outcome of SetReplicas"));
    };
    for replica in &replicas {
        if replica.region_name == node.region {
            continue;
        }
        let client = node.region_client(&replica.region_name).await?;
        let message = SetReplicasRequest {
            table_name: request.table_name.clone(),
            replicas: group.clone(),
            create: created.contains(&replica.region_name).then(|| create.clone()),
            time_to_live: stored.time_to_live.clone(),
        };
        client.set_replicas(message).await.map_err(|e| remote(&replica.region_name, e))?;
    }
    for region in &deleted {
        let client = node.region_client(region).await?;
        let clear = SetReplicasRequest { table_name: request.table_name.clone(), ..Default::default() };
        client.set_replicas(clear).await.map_err(|e| remote(region, e))?;
        let delete = DeleteTableRequest { table_name: request.table_name.clone() };
        client.delete_table(delete).await.map_err(|e| remote(region, e))?;
    }
    tracing::info!(table = %request.table_name, ?created, ?deleted, "replica list updated");
    Ok(UpdateTableResponse { table_description: response.table_description })
}

/// On the leader, every `every`: purges each global table's tombstones behind its safe point.
pub async fn purge_tombstones_forever(node: RegionNode, every: Duration) {
    let mut ticker = tokio::time::interval(every);
    loop {
        ticker.tick().await;
        if !matches!(node.route(false), Ok(Route::Local)) {
            continue;
        }
        let Ok((names, _)) = node.reader.list_tables("", usize::MAX) else { continue };
        for name in names {
            let Ok((_, stored)) = node.reader.table(&name) else { continue };
            if !global::is_global(&stored) || global::tombstone_count(node.reader.db(), stored.table_id) == 0 {
                continue;
            }
            let Some(others) = other_regions_safe_point(&node, &stored).await else { continue };
            let purge = tern_proto::internal::PurgeTombstones {
                table_name: name.clone(),
                other_regions_safe_point_micros: others,
            };
            match node.propose(command::Op::PurgeTombstones(purge)).await {
                Ok(command_outcome::Outcome::PurgeTombstones(outcome)) if outcome.purged > 0 => {
                    tracing::info!(table = %name, purged = outcome.purged, safe_point = outcome.safe_point_micros, "purged tombstones");
                }
                Ok(_) => {}
                Err(error) => tracing::debug!(table = %name, %error, "purging tombstones"),
            }
        }
    }
}

/// The least safe point of a global table's other regions, when every replica is ACTIVE and every
/// region answers; None otherwise (nothing is purged then).
async fn other_regions_safe_point(node: &RegionNode, stored: &tern_proto::internal::StoredTable) -> Option<u64> {
    let description = stored.description.as_ref()?;
    if description.replicas.iter().any(|r| r.replica_status != "ACTIVE") {
        return None;
    }
    let mut least = u64::MAX;
    for replica in description.replicas.iter().filter(|r| r.region_name != node.region) {
        let client = node.region_client(&replica.region_name).await.ok()?;
        let request = GetReplicationStateRequest { table_name: description.table_name.clone() };
        match client.get_replication_state(request).await {
            Ok(state) => least = least.min(state.safe_point_micros),
            Err(error) => {
                tracing::debug!(region = %replica.region_name, %error, "no safe point: tombstones kept");
                return None;
            }
        }
    }
    Some(least)
}

/// Before a replica is removed: marks it DELETING in every region (its region then refuses users'
/// writes to the table), and waits until every other region has applied its stream up to its last
/// change, so that each of them holds every write the removed region took.
async fn drain(node: &RegionNode, table: &str, removed: &str, replicas: &[ReplicaDescription]) -> Result<(), ApiError> {
    let deleting =
        ReplicaDescription { region_name: removed.into(), replica_status: "DELETING".into(), ..Default::default() };
    for replica in replicas {
        let client = node.region_client(&replica.region_name).await?;
        let request = SetReplicaStatusRequest { table_name: table.into(), replica: Some(deleting.clone()) };
        client.set_replica_status(request).await.map_err(|e| remote(&replica.region_name, e))?;
    }
    // The removed region's stream position after the status change: no user write follows it.
    let source = node.region_client(removed).await?;
    let read = ReadTableVersionsRequest { table_name: table.into(), exclusive_start_key: vec![], limit: 1 };
    let last = source.read_table_versions(read).await.map_err(|e| remote(removed, e))?.last_record_sequence_number;
    let Ok(end) = last.parse::<u64>() else {
        return Ok(()); // Its stream holds no record: nothing to drain.
    };
    let until = std::time::Instant::now() + Duration::from_secs(30);
    for replica in replicas.iter().filter(|r| r.region_name != removed) {
        let client = node.region_client(&replica.region_name).await?;
        loop {
            let request = GetReplicationStateRequest { table_name: table.into() };
            let state = client.get_replication_state(request).await.map_err(|e| remote(&replica.region_name, e))?;
            let applied = state
                .checkpoints
                .iter()
                .find(|c| c.source_region == removed && c.phase == "TAILING")
                .and_then(|c| c.sequence_number.parse::<u64>().ok())
                .unwrap_or(0);
            if applied >= end {
                break;
            }
            if std::time::Instant::now() > until {
                return Err(ApiError::unavailable(format!(
                    "Region {} has not yet applied the last changes of the replica in {removed}; the replica stays DELETING: retry",
                    replica.region_name
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(())
}
