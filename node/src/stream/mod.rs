//! Change streams: one record per item change, written in the same write set as the change, at a
//! position ([`Seq`]) derived from the entry's log index, so a stream is ordered, gap-free and the
//! same on every node. This module owns stream definitions (enable, disable, named consumers);
//! [`record`] is the apply hook, [`reader`] reads, [`trim`] trims, [`service`] serves the API.

pub mod reader;
pub mod record;
pub mod service;
pub mod trim;

use prost::Message;
use tern_proto::internal::{StoredStream, StoredTable, TrimStreams, TrimStreamsOutcome};
use tern_proto::v1::{self, KeySchemaElement, StreamSpecification};
use tern_proto::ApiError;

use crate::apply::entry::{Applied, Entry};
use crate::engine::{self, Direction, ReadView, StorageError};
use crate::keyspace::{self, Family, Seq};

/// The view types a stream can have.
pub const VIEW_TYPES: [&str; 4] = ["KEYS_ONLY", "NEW_IMAGE", "OLD_IMAGE", "NEW_AND_OLD_IMAGES"];
/// Longest retention of a long-retention stream, in days.
pub const MAX_RETENTION_DAYS: u32 = 365;

/// A stream's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamStatus {
    Enabled,
    Disabled,
}

impl StreamStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            StreamStatus::Enabled => "ENABLED",
            StreamStatus::Disabled => "DISABLED",
        }
    }

    /// The status a stored stream has.
    pub fn of(stream: &StoredStream) -> StreamStatus {
        if stream.stream_status == StreamStatus::Disabled.as_str() {
            StreamStatus::Disabled
        } else {
            StreamStatus::Enabled
        }
    }
}

/// The shard of a stream (one per stream today).
pub fn shard_id(stream_id: u64) -> String {
    format!("shardId-{stream_id:020}")
}

/// TrimmedDataAccessException when `position` lies at or before the stream's trim horizon (the same on
/// every node: the horizon is replicated).
pub fn check_not_trimmed(stream: &StoredStream, position: Seq) -> Result<(), ApiError> {
    if stream.trimmed_through != 0 && position.number() <= stream.trimmed_through {
        return Err(ApiError::new(
            tern_proto::ErrorKind::TrimmedDataAccessException,
            format!(
                "The operation attempted to read past the oldest stream record in a shard: {} has been trimmed",
                position.text()
            ),
        ));
    }
    Ok(())
}

/// The first position a stream's records can take: the entry that enabled it.
pub fn first_position(stream: &StoredStream) -> Seq {
    Seq::first_of(stream.stream_id)
}

/// Checks a StreamSpecification as DynamoDB does.
pub fn check_specification(spec: &StreamSpecification) -> Result<(), ApiError> {
    if spec.stream_enabled && !VIEW_TYPES.contains(&spec.stream_view_type.as_str()) {
        return Err(ApiError::validation(format!(
            "1 validation error detected: Value '{}' at 'streamSpecification.streamViewType' failed to satisfy constraint: Member must satisfy enum value set: [NEW_IMAGE, OLD_IMAGE, NEW_AND_OLD_IMAGES, KEYS_ONLY]",
            spec.stream_view_type
        )));
    }
    if !spec.stream_enabled && !spec.stream_view_type.is_empty() {
        return Err(ApiError::validation("One or more parameter values were invalid: StreamViewType may only be specified when StreamEnabled is true"));
    }
    if spec.retention_days > MAX_RETENTION_DAYS {
        return Err(ApiError::validation(format!("Stream retention can be at most {MAX_RETENTION_DAYS} days")));
    }
    Ok(())
}

/// A new stream's definition, enabled by the entry at `index`.
fn new_stream(
    region: &str,
    table_name: &str,
    spec: &StreamSpecification,
    key_schema: Vec<KeySchemaElement>,
    index: u64,
    timestamp: u64,
) -> StoredStream {
    let label = label(timestamp);
    StoredStream {
        stream_id: index,
        stream_arn: format!("arn:tern:dynamodb:{region}:table/{table_name}/stream/{label}"),
        stream_label: label,
        table_name: table_name.into(),
        stream_view_type: spec.stream_view_type.clone(),
        stream_status: StreamStatus::Enabled.as_str().into(),
        created_at_micros: timestamp,
        disabled_at_micros: 0,
        retention_days: spec.retention_days,
        key_schema,
        last_sequence: 0,
        trimmed_through: 0,
    }
}

/// DynamoDB's stream label: the enabling time in UTC, `2015-05-11T21:21:33.291`.
fn label(micros: u64) -> String {
    let format =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]");
    time::OffsetDateTime::from_unix_timestamp_nanos(micros as i128 * 1000)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_else(|| micros.to_string())
}

/// A stream's definition.
pub fn read_stream(view: &dyn ReadView, stream_id: u64) -> Result<Option<StoredStream>, StorageError> {
    view.get(Family::Streams, &keyspace::stream_key(stream_id))?.map(|b| engine::decode("stream", &b)).transpose()
}

/// Every stream definition, oldest first.
pub fn definitions(view: &dyn ReadView) -> Result<Vec<StoredStream>, StorageError> {
    let mut streams = Vec::new();
    for entry in view.scan(Family::Streams, &[], None, Direction::Forward) {
        let (key, value) = entry?;
        if keyspace::is_stream_key(&key) {
            streams.push(engine::decode("stream", &value)?);
        }
    }
    Ok(streams)
}

/// The last record a stream holds in `view`, if any.
pub fn last_record(view: &dyn ReadView, stream_id: u64) -> Result<Option<Seq>, StorageError> {
    let lower = keyspace::record_key(stream_id, Seq::first_of(0));
    let last =
        view.first(Family::StreamRecords, &lower, Some(&keyspace::records_end(stream_id)), Direction::Reverse)?;
    Ok(last.and_then(|(key, _)| keyspace::parse_record_key(&key)).map(|(_, seq)| seq))
}

fn save_stream(entry: &mut Entry, stream: &StoredStream) {
    entry.writes.put(Family::Streams, keyspace::stream_key(stream.stream_id), stream.encode_to_vec());
}

/// Enables a stream on a table (a new stream, with a new label), or disables its stream.
pub fn set_stream(entry: &mut Entry, stored: &mut StoredTable, spec: &StreamSpecification) -> Applied<()> {
    check_specification(spec)?;
    let description = stored.description.as_mut().ok_or_else(|| ApiError::internal("table without description"))?;
    if spec.stream_enabled {
        if stored.stream_id != 0 {
            return Err(ApiError::validation(format!(
                "Table already has an enabled stream: {}",
                description.latest_stream_arn
            ))
            .into());
        }
        let stream = new_stream(
            entry.region,
            &description.table_name,
            spec,
            description.key_schema.clone(),
            entry.index,
            entry.timestamp,
        );
        description.latest_stream_arn = stream.stream_arn.clone();
        description.latest_stream_label = stream.stream_label.clone();
        description.stream_specification = Some(spec.clone());
        stored.stream_id = stream.stream_id;
        save_stream(entry, &stream);
    } else {
        if stored.stream_id == 0 {
            return Err(ApiError::validation("Table already has no enabled stream").into());
        }
        if !description.replicas.is_empty() {
            return Err(ApiError::validation(format!(
                "Table {} is a global table: its stream cannot be disabled while it has replicas",
                description.table_name
            ))
            .into());
        }
        disable(entry, stored.stream_id)?;
        stored.stream_id = 0;
        if let Some(description) = stored.description.as_mut() {
            description.stream_specification =
                Some(v1::StreamSpecification { stream_enabled: false, ..Default::default() });
        }
    }
    Ok(())
}

/// Closes a stream: its records stay readable for its retention.
pub fn disable(entry: &mut Entry, stream_id: u64) -> Applied<()> {
    let Some(mut stream) = read_stream(entry.view, stream_id)? else { return Ok(()) };
    stream.stream_status = StreamStatus::Disabled.as_str().into();
    stream.disabled_at_micros = entry.timestamp;
    // From replicated state only: the records every node holds, or the horizon when all were trimmed.
    stream.last_sequence = last_record(entry.view, stream_id)?.map_or(0, Seq::number).max(stream.trimmed_through);
    save_stream(entry, &stream);
    Ok(())
}

/// Trims streams, on every node alike: each stream's records up to `through` go and `through` becomes
/// its horizon. A position at or after this entry is never trimmed (nothing is there yet).
pub fn trim(entry: &mut Entry, r: TrimStreams) -> Applied<TrimStreamsOutcome> {
    let mut outcome = TrimStreamsOutcome::default();
    let latest = Seq::last_of(entry.index.saturating_sub(1)).number();
    for trim in r.trims {
        let Some(mut stream) = read_stream(entry.view, trim.stream_id)? else { continue };
        let through = trim.through.min(latest);
        if through <= stream.trimmed_through {
            continue;
        }
        // From the old horizon on: earlier records are gone already.
        let first = keyspace::record_key(stream.stream_id, Seq::from_number(stream.trimmed_through).next());
        let past = keyspace::record_key(stream.stream_id, Seq::from_number(through).next());
        entry.writes.delete_range(Family::StreamRecords, first, past);
        stream.trimmed_through = through;
        save_stream(entry, &stream);
        outcome.trimmed += 1;
    }
    Ok(outcome)
}

/// Saves a named consumer's position in a long-retention stream.
pub fn put_consumer_position(
    entry: &mut Entry,
    r: v1::PutConsumerPositionRequest,
) -> Applied<v1::PutConsumerPositionResponse> {
    let stream = definitions(entry.view)?.into_iter().find(|s| s.stream_arn == r.stream_arn).ok_or_else(|| {
        ApiError::not_found(format!("Requested resource not found: Stream: {} not found", r.stream_arn))
    })?;
    if stream.retention_days == 0 {
        return Err(ApiError::validation(
            "Named consumers need a long-retention stream (StreamSpecification RetentionDays 1 to 365)",
        )
        .into());
    }
    if r.consumer_name.is_empty() || r.consumer_name.len() > 128 {
        return Err(ApiError::validation("ConsumerName must have 1 to 128 characters").into());
    }
    r.sequence_number
        .parse::<u64>()
        .map_err(|_| ApiError::validation(format!("Invalid SequenceNumber: {}", r.sequence_number)))?;
    let consumer = v1::Consumer {
        consumer_name: r.consumer_name.clone(),
        sequence_number: r.sequence_number,
        updated_at: entry.timestamp as f64 / 1e6,
    };
    entry.writes.put(
        Family::Streams,
        keyspace::consumer_key(stream.stream_id, &r.consumer_name),
        consumer.encode_to_vec(),
    );
    Ok(v1::PutConsumerPositionResponse {})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_utc_timestamps() {
        assert_eq!(label(1_431_379_293_291_000), "2015-05-11T21:21:33.291");
        assert_eq!(label(0), "1970-01-01T00:00:00.000");
    }
}
