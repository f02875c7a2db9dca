//! Following the region's change feed: the cache reads one node's feed from its position, and moves
//! to another node when that one fails, resuming where it was if the new node still holds the
//! position. For each batch it first raises the fill floor (so that no fill that read before the batch
//! can install), then replaces or drops what each change touches, then moves its position. When no
//! node can resume its position, or no feed has been heard from for too long, it drops everything it
//! holds and starts again.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tern_proto::internal::change_feed_client::ChangeFeedClient;
use tern_proto::internal::{ChangeBatch, FollowChangesRequest};
use tern_proto::v1::AttributeValue;
use tern_proto::ApiError;
use tonic::Code;

use super::items::ItemKey;
use super::queries::Generations;
use super::{CacheState, TableInfo};
use crate::changes::service::PROGRESS_EVERY;

/// How the cache's following of one node ended.
enum Ended {
    /// The node no longer holds the cache's position.
    Lost,
    /// The connection failed or went quiet.
    Failed,
}

/// Follows the feed of `nodes` (in turn) for as long as the cache runs.
pub async fn follow_forever(state: Arc<CacheState>, nodes: Vec<String>, max_silence: Duration) {
    // Nothing is cached before the feed starts, so the first connection starts wherever its node is.
    let mut resume = false;
    // When the position last moved, or the followed node was known to be up to date.
    let mut heard = Instant::now();
    let mut lost = 0usize;
    let mut next = 0usize;
    loop {
        let node = &nodes[next % nodes.len()];
        next += 1;
        match follow(&state, node, &mut resume, &mut heard, max_silence).await {
            // Another node may still hold the position (this one restarted or installed a snapshot).
            Ended::Lost if lost + 1 < nodes.len() => lost += 1,
            Ended::Lost => {
                tracing::warn!("no node holds the cache's place in the change feed: dropping what it holds");
                state.suspend();
                (resume, lost) = (false, 0);
                continue;
            }
            Ended::Failed => lost = 0,
        }
        if resume && heard.elapsed() > max_silence {
            tracing::warn!(silent = ?heard.elapsed(), "the change feed did not move for too long: dropping what the cache holds");
            state.suspend();
            resume = false;
        }
        *state.following.lock().expect("following lock") = String::new();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Follows one node until it fails, or lags what reads and writes have shown for longer than
/// `max_silence`. With `resume` it asks for the cache's position; otherwise the cache starts over at
/// the node's, and `resume` is set once it has.
async fn follow(
    state: &CacheState,
    node: &str,
    resume: &mut bool,
    heard: &mut Instant,
    max_silence: Duration,
) -> Ended {
    let resuming = *resume;
    let address = if node.starts_with("http") { node.to_string() } else { format!("http://{node}") };
    let Ok(endpoint) = tonic::transport::Endpoint::from_shared(address) else { return Ended::Failed };
    let endpoint = endpoint.connect_timeout(Duration::from_secs(1)).tcp_nodelay(true);
    let Ok(channel) = endpoint.connect().await else { return Ended::Failed };
    let mut client = ChangeFeedClient::new(channel).max_decoding_message_size(64 << 20);
    let after_position = resuming.then(|| state.position.load(Ordering::SeqCst));
    let call = tokio::time::timeout(Duration::from_secs(2), client.follow(FollowChangesRequest { after_position }));
    let mut batches = match call.await {
        Ok(Ok(response)) => response.into_inner(),
        Ok(Err(status)) if status.code() == Code::FailedPrecondition => return Ended::Lost,
        _ => return Ended::Failed,
    };
    *state.following.lock().expect("following lock") = node.to_string();
    let mut first = true;
    loop {
        let message = match tokio::time::timeout(PROGRESS_EVERY * 4, batches.message()).await {
            Ok(Ok(Some(batch))) => batch,
            Ok(Err(status)) if status.code() == Code::FailedPrecondition => return Ended::Lost,
            _ => return Ended::Failed,
        };
        if first && !resuming {
            // A fresh start: the position is the node's, and fills may install again.
            state.reset(message.through_position);
            *resume = true;
        }
        first = false;
        let before = state.position.load(Ordering::SeqCst);
        apply(state, message).await;
        let now = state.position.load(Ordering::SeqCst);
        // A node that answers but does not move while the region has (a read or a write through the
        // cache saw a newer position) is left for another.
        if now > before || state.newest_seen.load(Ordering::Relaxed) <= now {
            *heard = Instant::now();
        } else if heard.elapsed() > max_silence {
            tracing::warn!(%node, position = now, "the followed node lags the region: following another");
            return Ended::Failed;
        }
    }
}

/// Applies one batch of changes to what the cache holds.
async fn apply(state: &CacheState, batch: ChangeBatch) {
    state.items.raise_floor(batch.through_position);
    for table in &batch.tables {
        state.tables.dropped(table);
    }
    for change in batch.items {
        let Some(table) = state.tables.existing(&change.table_name) else { continue };
        let Some(info) = table.info() else {
            table.generations.table.fetch_add(1, Ordering::SeqCst);
            continue;
        };
        let (Ok(key), Ok(prefix)) = (info.schema.storage_key(&change.key), partition_prefix(&info, &change.key)) else {
            // A change the cache cannot place: nothing of the table can be trusted.
            state.tables.dropped(&change.table_name);
            continue;
        };
        table.generations.changed(Generations::slot(&prefix));
        let after = change.new_image.map(|item| (item, change.version.unwrap_or_default()));
        let key = ItemKey { table: change.table_name, key };
        if state.items.changed(key, change.position, after).await {
            state.counters.invalidations.fetch_add(1, Ordering::Relaxed);
            metrics::counter!("tern_cache_invalidations_total").increment(1);
        }
    }
    let position = state.position.fetch_max(batch.through_position, Ordering::SeqCst).max(batch.through_position);
    let lag_micros = batch.latest_position.saturating_sub(position);
    state.counters.lag_records.store(batch.records_behind, Ordering::Relaxed);
    state.counters.lag_micros.store(lag_micros, Ordering::Relaxed);
}

/// The storage prefix of the partition a key belongs to.
fn partition_prefix(info: &TableInfo, key: &BTreeMap<String, AttributeValue>) -> Result<Vec<u8>, ApiError> {
    let name = &info.schema.partition_key.name;
    let value = key.get(name).ok_or_else(|| ApiError::internal(format!("a change without {name}")))?;
    info.schema.partition_prefix(value)
}
