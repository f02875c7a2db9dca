//! Trimming: every node deletes its stream records past their retention, and publishes the
//! streams' gauges (records held, oldest record's age, named consumers' lag).

use std::time::Duration;

use tern_proto::internal::StoredStream;

use super::reader::StreamReader;
use crate::clock;
use crate::keyspace::Seq;

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

/// Trims every stream's records past their retention, on this node, until the node stops.
pub async fn trim_forever(streams: StreamReader, settings: StreamSettings, every: Duration) {
    loop {
        tokio::time::sleep(every).await;
        let Ok(all) = streams.streams() else { continue };
        let now = clock::now_micros() as f64 / 1e6;
        let mut total = 0u64;
        for stream in all {
            let cutoff = now - settings.retention_of(&stream).as_secs_f64();
            match streams.trim(stream.stream_id, cutoff) {
                Ok(n) => metrics::counter!("tern_stream_records_trimmed_total").increment(n as u64),
                Err(e) => tracing::warn!(stream = %stream.stream_arn, error = %e, "trimming failed"),
            }
            if let Ok(Some((first, last))) = streams.bounds(stream.stream_id) {
                total += 1;
                for consumer in streams.consumers(stream.stream_id).unwrap_or_default() {
                    let position = Seq::parse(&consumer.sequence_number).unwrap_or(Seq::first_of(0));
                    let behind = last.index.saturating_sub(position.index);
                    metrics::gauge!("tern_stream_consumer_lag_entries", "stream" => stream.stream_label.clone(), "consumer" => consumer.consumer_name).set(behind as f64);
                }
                if let Ok(oldest) = streams.records(stream.stream_id, first, 1) {
                    let created = oldest
                        .first()
                        .and_then(|(_, r)| r.dynamodb.as_ref())
                        .map_or(now, |d| d.approximate_creation_date_time);
                    metrics::gauge!("tern_stream_oldest_record_age_seconds", "stream" => stream.stream_label.clone())
                        .set(now - created);
                }
            }
        }
        metrics::gauge!("tern_streams_with_records").set(total as f64);
        metrics::gauge!("tern_stream_records_estimate").set(streams.estimated_records() as f64);
    }
}
