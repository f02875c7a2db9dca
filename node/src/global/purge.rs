//! The leader's tombstone purge: every few seconds, each global table's tombstones older than every
//! region's safe point are dropped through Raft (a purge behind only this region's safe point could
//! let a copy from a region that has not applied a delete bring the item back).

use std::collections::HashMap;
use std::time::Duration;

use tern_proto::internal::{command, command_outcome, PurgeTombstones, StoredTable};
use tern_proto::v1::GetReplicationStateRequest;

use super::{is_global, state, ReplicaStatus};
use crate::routing::RegionNode;

/// Tombstones looked at per purge entry, and purge entries per table per tick: the rest waits for the
/// next tick, from where the last entry stopped.
const PURGE_BATCH: u32 = 5_000;
const ENTRIES_PER_TICK: usize = 4;

/// On the leader, every `every`: purges each global table's tombstones behind its safe point, in entries
/// of at most `PURGE_BATCH` tombstones, going on from a cursor per table.
pub async fn purge_tombstones_forever(node: RegionNode, every: Duration) {
    let mut ticker = tokio::time::interval(every);
    // By table id: a table deleted and created again under its name starts over.
    let mut cursors: HashMap<u64, Vec<u8>> = HashMap::new();
    loop {
        ticker.tick().await;
        if !node.leads() {
            cursors.clear();
            continue;
        }
        let Ok((names, _)) = node.reader.list_tables("", usize::MAX) else { continue };
        for name in names {
            let Ok((_, stored)) = node.reader.table(&name) else { continue };
            if !is_global(&stored) || state::tombstone_count(node.reader.latest(), stored.table_id, 1) == 0 {
                continue;
            }
            let Some(others) = other_regions_safe_point(&node, &stored).await else { continue };
            for _ in 0..ENTRIES_PER_TICK {
                let purge = PurgeTombstones {
                    table_name: name.clone(),
                    other_regions_safe_point_micros: others,
                    start_after: cursors.remove(&stored.table_id).unwrap_or_default(),
                    limit: PURGE_BATCH,
                };
                match node.propose_as(command::Op::PurgeTombstones(purge), None).await {
                    Ok(command_outcome::Outcome::PurgeTombstones(outcome)) => {
                        if outcome.purged > 0 {
                            tracing::info!(table = %name, purged = outcome.purged, safe_point = outcome.safe_point_micros, "purged tombstones");
                        }
                        if outcome.next_start_after.is_empty() {
                            break;
                        }
                        cursors.insert(stored.table_id, outcome.next_start_after);
                    }
                    Ok(_) => break,
                    Err(error) => {
                        tracing::debug!(table = %name, %error, "purging tombstones");
                        break;
                    }
                }
            }
        }
    }
}

/// The least safe point of a global table's other regions, when every replica is ACTIVE and every
/// region answers; None otherwise (nothing is purged then).
async fn other_regions_safe_point(node: &RegionNode, stored: &StoredTable) -> Option<u64> {
    let description = stored.description.as_ref()?;
    if description.replicas.iter().any(|r| !ReplicaStatus::Active.of(r)) {
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
