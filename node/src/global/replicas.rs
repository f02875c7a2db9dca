//! UpdateTable's ReplicaUpdates, run on the leader of the region that received them: creating a
//! replica in another region, draining and removing one, and keeping every region's replica list.

use std::time::Duration;

use tern_proto::internal::StoredTable;
use tern_proto::v1::*;
use tern_proto::ApiError;

use super::{Phase, ReplicaStatus};
use crate::routing::RegionNode;

fn remote(region: &str, error: ::tern_client::Error) -> ApiError {
    match error {
        ::tern_client::Error::Api(e) => ApiError::new(e.kind, format!("Region {region}: {}", e.message)),
        other => ApiError::unavailable(format!("Region {region} is unreachable: {other}")),
    }
}

/// How long a replica-update lock holds without its release (an update whose region crashed): well
/// past the longest update (a drain of up to 30 s and a few calls per region, each up to its deadline).
const LOCK_LEASE: Duration = Duration::from_secs(600);

/// UpdateTable's ReplicaUpdates, run on the leader of the region that received them. First the
/// table's replica-update lock is taken in every region that holds the table, in region-name order
/// (two updates sent to two regions at once meet in the first region they share, where the second is
/// refused with ResourceInUseException and changes nothing); then the update runs on the replica list
/// as it stands under the lock; then the locks are released (they lapse by themselves if this region
/// fails meanwhile).
pub async fn update_replicas(node: &RegionNode, request: UpdateTableRequest) -> Result<UpdateTableResponse, ApiError> {
    let table = request.table_name.clone();
    let (_, stored) = node.reader.table(&table)?;
    let regions = replica_regions(&stored, &node.region);
    let token = format!("{:032x}", rand::random::<u128>());
    let mut locked = Vec::new();
    for region in &regions {
        // Released whatever the answer: a take whose reply was lost may have been applied.
        locked.push(region.clone());
        if let Err(error) = lock(node, &table, region, &token, false).await {
            release(node, &table, &locked, &token).await;
            return Err(error);
        }
    }
    let result = async {
        let (_, stored) = node.reader.table(&table)?;
        if replica_regions(&stored, &node.region) != regions {
            return Err(ApiError::in_use(format!("Table {table}'s replicas changed as the update began; retry")));
        }
        update_locked(node, request, stored).await
    }
    .await;
    release(node, &table, &locked, &token).await;
    result
}

/// The regions that hold a table, sorted: its replicas, or this region alone for a regional table.
fn replica_regions(stored: &StoredTable, here: &str) -> Vec<String> {
    let mut regions: Vec<String> =
        stored.description.iter().flat_map(|d| &d.replicas).map(|r| r.region_name.clone()).collect();
    if regions.is_empty() {
        regions.push(here.to_string());
    }
    regions.sort();
    regions
}

/// Takes (or releases) the table's replica-update lock in one region.
async fn lock(node: &RegionNode, table: &str, region: &str, token: &str, release: bool) -> Result<(), ApiError> {
    let request = LockReplicaUpdateRequest {
        table_name: table.into(),
        owner_region: node.region.clone(),
        token: token.into(),
        release,
        lease_millis: LOCK_LEASE.as_millis() as u64,
    };
    if region == node.region {
        node.propose_request(request, None).await.map(|_| ()).map_err(|status| ApiError::from(&status))
    } else {
        let client = node.region_client(region).await?;
        match client.lock_replica_update(request).await {
            Ok(_) => Ok(()),
            // Listed as a replica, yet without the table: a replica still being created (by an update
            // that did not finish, or by one running now, which the regions both hold keep apart).
            // There is nothing to lock there.
            Err(::tern_client::Error::Api(e)) if e.kind == tern_proto::ErrorKind::ResourceNotFoundException => Ok(()),
            Err(e) => Err(remote(region, e)),
        }
    }
}

/// Releases the locks taken, as far as the regions answer (a region's table may be gone: removed).
async fn release(node: &RegionNode, table: &str, regions: &[String], token: &str) {
    for region in regions {
        if let Err(error) = lock(node, table, region, token, true).await {
            tracing::debug!(%table, %region, %error, "replica-update lock not released: it lapses");
        }
    }
}

/// The update itself, under the locks: creates each new replica's table in its region (with the key
/// schema, TTL and the stream on), removes deleted ones, and sets the new replica list in every region
/// of the table, this one first.
async fn update_locked(
    node: &RegionNode,
    request: UpdateTableRequest,
    stored: StoredTable,
) -> Result<UpdateTableResponse, ApiError> {
    let description = stored.description.clone().unwrap_or_default();
    let mut replicas = description.replicas.clone();
    if replicas.is_empty() {
        replicas.push(ReplicaDescription {
            region_name: node.region.clone(),
            replica_status: ReplicaStatus::Active.as_str().into(),
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
                if replicas.iter().any(|r| &r.region_name == region && ReplicaStatus::Creating.of(r)) {
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
                    replica_status: ReplicaStatus::Creating.as_str().into(),
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
    let response = node.propose_request(local, None).await.map_err(|status| ApiError::from(&status))?;
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

/// Before a replica is removed: marks it DELETING in every region (its region then refuses users'
/// writes to the table), and waits until every other region has applied its stream up to its last
/// change, so that each of them holds every write the removed region took.
async fn drain(node: &RegionNode, table: &str, removed: &str, replicas: &[ReplicaDescription]) -> Result<(), ApiError> {
    let deleting = ReplicaDescription {
        region_name: removed.into(),
        replica_status: ReplicaStatus::Deleting.as_str().into(),
        ..Default::default()
    };
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
                .find(|c| c.source_region == removed && Phase::Tailing.of(c))
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

/// A global table's TTL is the same in every region: the leader that took a change passes it on to
/// the other regions of the table.
pub async fn share_time_to_live(
    node: &RegionNode,
    table: &str,
    replicas: &[ReplicaDescription],
    wanted: &TimeToLiveSpecification,
) -> Result<(), ApiError> {
    for replica in replicas.iter().filter(|r| r.region_name != node.region) {
        let client = node.region_client(&replica.region_name).await?;
        let message = SetReplicasRequest {
            table_name: table.to_string(),
            replicas: replicas.to_vec(),
            create: None,
            time_to_live: Some(wanted.clone()),
        };
        client
            .set_replicas(message)
            .await
            .map_err(|e| ApiError::unavailable(format!("Region {}: {e}", replica.region_name)))?;
    }
    Ok(())
}
