//! The TTL sweeper: on the leader, walks each TTL table's expiry index up to now and proposes the
//! expired items' deletes in batches, each delete conditional (at apply time) on the item still being
//! expired. The index is replicated state, so a new leader carries on where the old one stopped; a
//! delete proposed twice finds the item gone and does nothing.

use std::time::Duration;

use tern_proto::internal::{command, command_outcome, ExpireItems, IndexExpiries};

use crate::clock;
use crate::engine::Direction;
use crate::keyspace::{self, Family};
use crate::routing::RegionNode;

/// Most batches proposed per table per sweep, so one table cannot starve the others.
const BATCHES_PER_SWEEP: usize = 20;

/// Sweeps every `every` while the node runs; only the leader proposes.
pub async fn sweep_forever(node: RegionNode, every: Duration) {
    loop {
        tokio::time::sleep(every).await;
        if !node.leads() {
            continue;
        }
        if let Err(e) = sweep(&node).await {
            tracing::warn!(error = %e, "TTL sweep stopped early");
        }
    }
}

/// Goes on indexing a table whose TTL is being turned on, a batch per entry, up to `BATCHES_PER_SWEEP`
/// entries per sweep.
async fn index(node: &RegionNode, table: &str) -> Result<(), tern_proto::ApiError> {
    for _ in 0..BATCHES_PER_SWEEP {
        let op = command::Op::IndexExpiries(IndexExpiries { table_name: table.to_string(), limit: super::INDEX_BATCH });
        match node.propose_as(op, Some(super::service_identity())).await? {
            command_outcome::Outcome::IndexExpiries(outcome) if !outcome.done => continue,
            _ => break,
        }
    }
    Ok(())
}

/// One sweep over every table with TTL on.
async fn sweep(node: &RegionNode) -> Result<(), tern_proto::ApiError> {
    let (names, _) = node.reader.list_tables("", usize::MAX)?;
    let mut backlog = 0usize;
    for name in names {
        let Ok((_, table)) = node.reader.table(&name) else { continue };
        if super::attribute(&table).is_none() {
            continue;
        }
        if table.ttl_indexing {
            index(node, &name).await?;
        }
        for _ in 0..BATCHES_PER_SWEEP {
            let now = clock::now_micros() / 1_000_000;
            let start = keyspace::table_prefix(table.table_id);
            // Everything with an expiry at or before now: index keys below (table, now + 1).
            let end = keyspace::ttl_key(table.table_id, now + 1, &[]);
            let index_keys: Vec<Vec<u8>> = node
                .reader
                .latest()
                .scan(Family::TtlIndex, &start, Some(&end), Direction::Forward)
                .map_while(|entry| entry.ok())
                .map(|(key, _)| key)
                .take(super::MAX_EXPIRIES_PER_ENTRY)
                .collect();
            if index_keys.is_empty() {
                break;
            }
            backlog += index_keys.len();
            let full = index_keys.len() == super::MAX_EXPIRIES_PER_ENTRY;
            let op = command::Op::ExpireItems(ExpireItems { table_name: name.clone(), index_keys });
            match node.propose_as(op, Some(super::service_identity())).await? {
                command_outcome::Outcome::ExpireItems(outcome) => {
                    tracing::debug!(table = %name, deleted = outcome.deleted, kept = outcome.kept, "TTL deletes applied");
                }
                other => tracing::warn!(?other, "unexpected TTL outcome"),
            }
            if !full {
                break;
            }
        }
    }
    metrics::gauge!("tern_ttl_backlog_items").set(backlog as f64);
    Ok(())
}
