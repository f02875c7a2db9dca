//! One table, one source region: copy the source's items when there is no usable checkpoint (a new
//! replica, or a checkpoint trimmed from the source's stream), then follow the source's stream,
//! applying the changes that originated there in batches, each with its new checkpoint.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use futures::TryStreamExt;
use prost::Message;
use tern_client::Client;
use tern_proto::v1::{
    ApplyReplicatedRequest, DescribeStreamRequest, DescribeTableRequest, GetRecordsRequest, GetReplicationStateRequest,
    GetShardIteratorRequest, Item, ItemVersion, ReplicaDescription, ReplicatedChange, ReplicationCheckpoint,
    SetReplicaStatusRequest, StreamRecord,
};
use tern_proto::ErrorKind;

use super::Context;
use crate::clock;
use crate::global::{Phase, ReplicaStatus};

/// How long a read of the source stream waits for a record when there is none (the source long-polls).
const LONG_POLL_MILLIS: u32 = 500;

/// Why following a stream stopped.
#[derive(Debug, thiserror::Error)]
enum Interrupted {
    #[error("the checkpoint has been trimmed from the source stream")]
    Trimmed,
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

impl From<tern_client::Error> for Interrupted {
    fn from(error: tern_client::Error) -> Self {
        Interrupted::Failed(error.into())
    }
}

/// Replicates `table` from `source` into the context's region until aborted; errors back off and retry.
pub async fn replicate(context: Arc<Context>, table: String, source: String) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let started = std::time::Instant::now();
        let result = run_once(&context, &table, &source).await;
        if started.elapsed() > Duration::from_secs(10) {
            // It was replicating for a while: the next failure starts a fresh backoff.
            backoff = Duration::from_millis(100);
        }
        match result {
            Ok(()) => backoff = Duration::from_millis(100),
            Err(error) => {
                metrics::counter!("tern_replication_errors_total", "table" => table.clone(), "source" => source.clone())
                    .increment(1);
                tracing::warn!(%table, %source, error = format!("{error:#}"), retry_in = ?backoff, "replication interrupted");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
        }
    }
}

/// Resumes from the stored checkpoint (copying first when there is none), then follows the stream.
async fn run_once(context: &Context, table: &str, source: &str) -> anyhow::Result<()> {
    let local = context.client(&context.region)?;
    let remote = context.client(source)?;
    let state = local.get_replication_state(GetReplicationStateRequest { table_name: table.into() }).await?;
    let source_table = remote
        .describe_table(DescribeTableRequest { table_name: table.into() })
        .await?
        .table
        .context("the source region describes no table")?;
    let stream_arn = source_table.latest_stream_arn.clone();
    anyhow::ensure!(!stream_arn.is_empty(), "the table has no stream in {source} yet");
    let stored = state.checkpoints.into_iter().find(|c| c.source_region == source);
    let checkpoint = match stored {
        Some(c) if Phase::Tailing.of(&c) && c.stream_arn == stream_arn => c,
        other => {
            let resync = other.is_some();
            copy(context, table, source, resync).await?
        }
    };
    match follow(context, table, source, checkpoint).await {
        Err(Interrupted::Trimmed) => {
            tracing::warn!(%table, %source, "checkpoint trimmed from the source stream: resynchronising the table");
            copy(context, table, source, true).await?;
            Ok(())
        }
        Err(Interrupted::Failed(error)) => Err(error),
        Ok(()) => Ok(()),
    }
}

fn labels(table: &str, source: &str, region: &str) -> [(&'static str, String); 3] {
    [("table", table.to_string()), ("source", source.to_string()), ("region", region.to_string())]
}

/// Copies every item (and tombstone) of the source's table, read page by page on its leader, then
/// returns the checkpoint to follow the stream from: the stream position of the first page. A resync
/// also deletes the items here that came from the source and that the source no longer has.
async fn copy(context: &Context, table: &str, source: &str, resync: bool) -> anyhow::Result<ReplicationCheckpoint> {
    let local = context.client(&context.region)?;
    let remote = context.client(source)?;
    tracing::info!(%table, %source, resync, "copying the source's items");
    let mut first: Option<(String, String, u64, u64)> = None;
    let mut seen: HashSet<Vec<u8>> = HashSet::new();
    let mut copied = 0u64;
    let mut last_percent = 0;
    let mut pages = std::pin::pin!(remote.table_version_pages(table));
    while let Some(page) = pages.try_next().await? {
        let (stream_arn, _, _, total) = first
            .get_or_insert((
                page.stream_arn.clone(),
                page.stream_sequence_number.clone(),
                page.watermark_micros,
                page.item_count,
            ))
            .clone();
        let changes: Vec<ReplicatedChange> = page
            .items
            .into_iter()
            .map(|v| ReplicatedChange { key: v.key, new_image: v.item, version: v.version })
            .collect();
        if resync {
            seen.extend(changes.iter().map(key_bytes));
        }
        copied += changes.iter().filter(|c| c.new_image.is_some()).count() as u64;
        let checkpoint = ReplicationCheckpoint {
            stream_arn: stream_arn.clone(),
            phase: Phase::Copying.as_str().into(),
            items_copied: copied,
            items_total: total,
            ..Default::default()
        };
        let count = changes.len() as u64;
        apply(local, table, source, changes, checkpoint, "", true).await?;
        metrics::counter!("tern_replication_items_resynchronised_total", &labels(table, source, &context.region))
            .increment(count);
        let percent = (copied * 100).checked_div(total).map_or(100, |p| p.min(99) as u32);
        if percent >= last_percent + 10 {
            last_percent = percent;
            let _ = report_status(context, table, ReplicaStatus::Creating, percent).await;
        }
    }
    let (stream_arn, position, watermark, _) = first.context("no page was read")?;
    if resync {
        delete_vanished(context, table, source, &seen, watermark).await?;
    }
    let checkpoint = ReplicationCheckpoint {
        stream_arn,
        sequence_number: position,
        source_watermark_micros: watermark,
        phase: Phase::Tailing.as_str().into(),
        items_copied: copied,
        items_total: copied,
        ..Default::default()
    };
    apply(local, table, source, Vec::new(), checkpoint.clone(), "", true).await?;
    tracing::info!(%table, %source, copied, "copy finished; following the stream");
    Ok(checkpoint)
}

/// After a resync: items here that originated in the source, that the source had when the copy
/// began (their timestamps are not after its watermark), and that it no longer has, were deleted
/// there while this region was not following; they are deleted here too, each with a version derived
/// from the item it deletes (never one made up, which could beat a newer write).
async fn delete_vanished(
    context: &Context,
    table: &str,
    source: &str,
    seen: &HashSet<Vec<u8>>,
    watermark: u64,
) -> anyhow::Result<()> {
    let local = context.client(&context.region)?;
    let mut vanished = Vec::new();
    let mut pages = std::pin::pin!(local.table_version_pages(table));
    while let Some(page) = pages.try_next().await? {
        for entry in page.items {
            let Some(version) = &entry.version else { continue };
            let from_source = version.origin_region == source && version.write_timestamp_micros <= watermark;
            let change = ReplicatedChange { key: entry.key, new_image: None, version: None };
            if entry.item.is_some() && from_source && !seen.contains(&key_bytes(&change)) {
                // The source's delete came after the item we hold, at a time we do not know: the delete
                // here is stamped just after that item's version, so it replaces that item and nothing
                // newer (a write from a third region that arrives meanwhile wins over it).
                let version = ItemVersion {
                    write_timestamp_micros: version.write_timestamp_micros + 1,
                    origin_region: source.into(),
                };
                vanished.push(ReplicatedChange { version: Some(version), ..change });
            }
        }
    }
    tracing::info!(%table, %source, deleted = vanished.len(), "deleting items the source no longer has");
    for chunk in vanished.chunks(1000) {
        let checkpoint = ReplicationCheckpoint { phase: Phase::Copying.as_str().into(), ..Default::default() };
        apply(local, table, source, chunk.to_vec(), checkpoint, "", true).await?;
    }
    Ok(())
}

fn key_bytes(change: &ReplicatedChange) -> Vec<u8> {
    Item { attributes: change.key.clone() }.encode_to_vec()
}

/// Sets this region's replica status in every region of the table (the list read on this region's
/// leader); true when every region took it. A region keeps the furthest state it was told
/// (CREATING, then ACTIVE, then DELETING), so repeating a report is harmless.
async fn report_status(context: &Context, table: &str, status: ReplicaStatus, percent: u32) -> bool {
    let Ok(local) = context.client(&context.region) else { return false };
    let Ok(state) = local.get_replication_state(GetReplicationStateRequest { table_name: table.into() }).await else {
        return false;
    };
    let replica = ReplicaDescription {
        region_name: context.region.clone(),
        replica_status: status.as_str().into(),
        replica_status_percent_progress: percent,
    };
    let mut reported = true;
    for region in state.replicas.iter().map(|r| &r.region_name) {
        let Ok(client) = context.client(region) else { continue };
        let request = SetReplicaStatusRequest { table_name: table.into(), replica: Some(replica.clone()) };
        if let Err(error) = client.set_replica_status(request).await {
            tracing::debug!(%table, %region, %error, "reporting replica status");
            reported = false;
        }
    }
    reported
}

/// Applies one batch with its checkpoint; counts what won and what lost.
async fn apply(
    local: &Client,
    table: &str,
    source: &str,
    changes: Vec<ReplicatedChange>,
    checkpoint: ReplicationCheckpoint,
    expected: &str,
    copy: bool,
) -> anyhow::Result<()> {
    let request = ApplyReplicatedRequest {
        table_name: table.into(),
        source_region: source.into(),
        changes,
        checkpoint: Some(checkpoint),
        expected_sequence_number: expected.into(),
        copy,
    };
    let response = local.apply_replicated(request).await?;
    let labels = [("table", table.to_string()), ("source", source.to_string())];
    metrics::counter!("tern_replication_changes_applied_total", &labels).increment(response.applied as u64);
    metrics::counter!("tern_replication_changes_skipped_total", &labels).increment(response.skipped as u64);
    Ok(())
}

/// The change a stream record describes, when it originated in `source`.
fn change_of(record: &StreamRecord, source: &str) -> Option<ReplicatedChange> {
    let data = record.dynamodb.as_ref()?;
    let version = data.item_version.clone()?;
    if version.origin_region != source {
        return None;
    }
    let new_image = if record.event_name == "REMOVE" { None } else { data.new_image.clone() };
    Some(ReplicatedChange { key: data.keys.clone()?.attributes, new_image, version: Some(version) })
}

/// Follows the source's stream from `checkpoint`; returns only on an error.
async fn follow(
    context: &Context,
    table: &str,
    source: &str,
    mut checkpoint: ReplicationCheckpoint,
) -> Result<(), Interrupted> {
    let local = context.client(&context.region)?;
    let remote = context.client(source)?;
    let labels = labels(table, source, &context.region);
    let described = remote
        .describe_stream(DescribeStreamRequest { stream_arn: checkpoint.stream_arn.clone(), ..Default::default() })
        .await?
        .stream_description
        .context("no stream description")?;
    let shard_id = described.shards.first().map(|s| s.shard_id.clone()).context("the stream has no shard")?;
    let mut iterator = None;
    let mut last_report = clock::now_micros();
    // Following the source means this region's copy of it is done: ACTIVE, once every region has it.
    let mut active_pending = !report_status(context, table, ReplicaStatus::Active, 100).await;
    loop {
        let current = match iterator.take() {
            Some(iterator) => iterator,
            None => {
                let (kind, sequence) = match checkpoint.sequence_number.as_str() {
                    "" => ("TRIM_HORIZON", String::new()),
                    sequence => ("AFTER_SEQUENCE_NUMBER", sequence.to_string()),
                };
                let request = GetShardIteratorRequest {
                    stream_arn: checkpoint.stream_arn.clone(),
                    shard_id: shard_id.clone(),
                    shard_iterator_type: kind.into(),
                    sequence_number: sequence,
                    replication: true,
                };
                match remote.get_shard_iterator(request).await {
                    Ok(response) => response.shard_iterator,
                    Err(e) if e.kind() == Some(ErrorKind::TrimmedDataAccessException) => {
                        return Err(Interrupted::Trimmed)
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        };
        let asked = Instant::now();
        let request =
            GetRecordsRequest { shard_iterator: current, limit: context.batch, wait_millis: LONG_POLL_MILLIS };
        let page = match remote.get_records(request).await {
            Ok(page) => page,
            Err(e) if e.kind() == Some(ErrorKind::TrimmedDataAccessException) => return Err(Interrupted::Trimmed),
            Err(e) if e.kind() == Some(ErrorKind::ExpiredIteratorException) => continue,
            Err(e) => return Err(e.into()),
        };
        let now = clock::now_micros();
        let changes: Vec<ReplicatedChange> = page.records.iter().filter_map(|r| change_of(r, source)).collect();
        let newest = changes.iter().filter_map(|c| c.version.as_ref()).map(|v| v.write_timestamp_micros).max();
        let caught_up = page.records_behind == 0;
        // Report the watermark now and then even when nothing changes: it moves the safe point.
        let heartbeat = caught_up && now.saturating_sub(last_report) > 1_000_000 && page.watermark_micros > 0;
        if heartbeat && active_pending {
            active_pending = !report_status(context, table, ReplicaStatus::Active, 100).await;
        }
        if !page.records.is_empty() || heartbeat {
            let mut next = checkpoint.clone();
            if let Some(last) = page.records.last().and_then(|r| r.dynamodb.as_ref()) {
                next.sequence_number = last.sequence_number.clone();
            }
            next.source_watermark_micros = checkpoint.source_watermark_micros.max(page.watermark_micros);
            next.last_change_micros =
                newest.unwrap_or(checkpoint.last_change_micros).max(checkpoint.last_change_micros);
            next.records_behind = page.records_behind;
            next.lag_millis = match (caught_up, newest) {
                (true, _) => 0,
                (false, Some(newest)) => now.saturating_sub(newest) / 1000,
                (false, None) => checkpoint.lag_millis,
            };
            let count = changes.len();
            let times: Vec<u64> =
                changes.iter().filter_map(|c| c.version.as_ref()).map(|v| v.write_timestamp_micros).collect();
            match apply(local, table, source, changes, next.clone(), &checkpoint.sequence_number, false).await {
                Ok(()) => {}
                Err(error) => return Err(Interrupted::Failed(error)),
            }
            let applied_at = clock::now_micros();
            for time in times {
                metrics::histogram!("tern_replication_latency_seconds", &labels)
                    .record(applied_at.saturating_sub(time) as f64 / 1e6);
            }
            tracing::debug!(%table, %source, count, behind = page.records_behind, "applied a batch");
            checkpoint = next;
            last_report = now;
        }
        metrics::gauge!("tern_replication_lag_records", &labels).set(page.records_behind as f64);
        let lag_seconds = if caught_up { 0.0 } else { now.saturating_sub(checkpoint.last_change_micros) as f64 / 1e6 };
        metrics::gauge!("tern_replication_lag_seconds", &labels).set(lag_seconds);
        if page.next_shard_iterator.is_empty() {
            return Err(Interrupted::Failed(anyhow::anyhow!("the source stream was closed")));
        }
        iterator = Some(page.next_shard_iterator);
        if page.records.is_empty()
            && Instant::now().duration_since(asked) < Duration::from_millis(LONG_POLL_MILLIS as u64 / 2)
        {
            // The source answered at once with nothing (it does not long-poll): wait before asking again.
            tokio::time::sleep(context.poll).await;
        }
    }
}
