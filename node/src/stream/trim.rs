//! Trimming: the leader proposes the trims of records past their retention (a record's retention counts
//! from when it was appended to this region's stream), so every node trims the same records at the
//! same point of the log and holds the same horizon; every node publishes the streams' gauges.

use std::time::Duration;

use tern_proto::internal::{command, StoredStream, StreamTrim, TrimStreams};

use super::reader::StreamReader;
use crate::clock;
use crate::keyspace::Seq;
use crate::routing::RegionNode;

/// Stream settings of a node.
#[derive(Debug, Clone)]
pub struct StreamSettings {
    /// Retention of 24-hour-mode streams (DynamoDB's 24 hours unless a test shortens it).
    pub retention: Duration,
    /// How long a shard iterator stays valid (DynamoDB's 15 minutes).
    pub iterator_ttl: Duration,
}

impl StreamSettings {
    /// How long a stream's records are kept.
    pub fn retention_of(&self, stream: &StoredStream) -> Duration {
        match stream.retention_days {
            0 => self.retention,
            days => Duration::from_secs(days as u64 * 86_400),
        }
    }
}

/// Until the node stops, every `every`: on the leader, proposes the trims of every stream's records
/// past their retention (applied alike on every node); on every node, publishes the streams' gauges.
pub async fn trim_forever(node: RegionNode, streams: StreamReader, settings: StreamSettings, every: Duration) {
    loop {
        tokio::time::sleep(every).await;
        let Ok(all) = streams.streams() else { continue };
        if node.leads() {
            propose_trims(&node, &streams, &settings, &all).await;
        }
        publish_gauges(&streams, &all);
    }
}

/// Proposes one entry that trims every stream with records appended longer ago than its retention.
async fn propose_trims(node: &RegionNode, streams: &StreamReader, settings: &StreamSettings, all: &[StoredStream]) {
    let (trims, records) = trims_due(streams, settings, all);
    if trims.is_empty() {
        return;
    }
    match node.propose_as(command::Op::TrimStreams(TrimStreams { trims }), None).await {
        Ok(_) => metrics::counter!("tern_stream_records_trimmed_total").increment(records as u64),
        Err(e) => tracing::debug!(error = %e, "trimming streams"),
    }
}

/// The trims due now, and how many records they drop.
fn trims_due(streams: &StreamReader, settings: &StreamSettings, all: &[StoredStream]) -> (Vec<StreamTrim>, usize) {
    let now = clock::now_micros() as f64 / 1e6;
    let Ok(view) = streams.at_one_point() else { return (Vec::new(), 0) };
    let mut trims = Vec::new();
    let mut records = 0;
    for stream in all {
        let cutoff = now - settings.retention_of(stream).as_secs_f64();
        match view.trim_point(stream.stream_id, cutoff) {
            Ok(Some((through, count))) => {
                trims.push(StreamTrim { stream_id: stream.stream_id, through: through.number() });
                records += count;
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(stream = %stream.stream_arn, error = %e, "finding what to trim"),
        }
    }
    (trims, records)
}

/// The streams' gauges: streams holding records, the oldest record's age, named consumers' lag.
fn publish_gauges(streams: &StreamReader, all: &[StoredStream]) {
    let now = clock::now_micros() as f64 / 1e6;
    let Ok(view) = streams.at_one_point() else { return };
    let mut total = 0u64;
    for stream in all {
        let Ok(Some((first, last))) = view.bounds(stream.stream_id) else { continue };
        total += 1;
        for consumer in streams.consumers(stream.stream_id).unwrap_or_default() {
            let position = Seq::parse(&consumer.sequence_number).unwrap_or(Seq::first_of(0));
            let behind = last.index.saturating_sub(position.index);
            metrics::gauge!("tern_stream_consumer_lag_entries", "stream" => stream.stream_label.clone(), "consumer" => consumer.consumer_name).set(behind as f64);
        }
        if let Ok(oldest) = view.records(stream.stream_id, first, 1) {
            let appended =
                oldest.first().and_then(|(_, r)| r.dynamodb.as_ref()).map_or(now, |d| d.approximate_creation_date_time);
            metrics::gauge!("tern_stream_oldest_record_age_seconds", "stream" => stream.stream_label.clone())
                .set(now - appended);
        }
    }
    metrics::gauge!("tern_streams_with_records").set(total as f64);
    metrics::gauge!("tern_stream_records_estimate").set(streams.estimated_records() as f64);
}
