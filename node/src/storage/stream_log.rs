//! Change streams in the apply path: stream definitions, and one record per item change, written in
//! the same write batch as the change. A record's sequence number is `log index << 16 | n`, the n-th
//! record of that entry, so records are ordered and gap-free in log order on every node.

use prost::Message;
use rocksdb::{WriteBatch, DB};
use tern_proto::internal::{StoredItem, StoredStream};
use tern_proto::v1::{Identity, Item, ItemVersion, StreamRecord, StreamRecordData, StreamSpecification};
use tern_proto::ApiError;

use super::db::{cf, CF_STREAMS, CF_STREAM_RECORDS};
use super::schema::TableSchema;

/// Most records one entry can write (a sequence number's low 16 bits).
pub const RECORDS_PER_ENTRY: u64 = 1 << 16;
/// The view types a stream can have.
pub const VIEW_TYPES: [&str; 4] = ["KEYS_ONLY", "NEW_IMAGE", "OLD_IMAGE", "NEW_AND_OLD_IMAGES"];
/// Longest retention of a long-retention stream, in days.
pub const MAX_RETENTION_DAYS: u32 = 365;

/// A sequence number as DynamoDB Streams writes it: a decimal string of 21 digits.
pub fn sequence_text(sequence: u64) -> String {
    format!("{sequence:021}")
}

/// The shard of a stream (one per stream today).
pub fn shard_id(stream_id: u64) -> String {
    format!("shardId-{stream_id:020}")
}

/// The key of a stream's record.
pub fn record_key(stream_id: u64, sequence: u64) -> [u8; 16] {
    let mut key = [0u8; 16];
    key[..8].copy_from_slice(&stream_id.to_be_bytes());
    key[8..].copy_from_slice(&sequence.to_be_bytes());
    key
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
pub fn new_stream(
    region: &str,
    table_name: &str,
    spec: &StreamSpecification,
    schema_keys: Vec<tern_proto::v1::KeySchemaElement>,
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
        stream_status: "ENABLED".into(),
        created_at_micros: timestamp,
        disabled_at_micros: 0,
        retention_days: spec.retention_days,
        key_schema: schema_keys,
        last_sequence: 0,
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

/// The key of a named consumer's position: the stream id, `/`, the name.
pub fn consumer_key(stream_id: u64, name: &str) -> Vec<u8> {
    [stream_id.to_be_bytes().as_slice(), b"/", name.as_bytes()].concat()
}

pub fn read_stream(db: &DB, stream_id: u64) -> Result<Option<StoredStream>, ApiError> {
    let bytes =
        db.get_cf(cf(db, CF_STREAMS), stream_id.to_be_bytes()).map_err(|e| ApiError::internal(e.to_string()))?;
    bytes.map(|b| StoredStream::decode(b.as_slice()).map_err(|e| ApiError::internal(e.to_string()))).transpose()
}

pub fn save_stream(db: &DB, stream: &StoredStream, batch: &mut WriteBatch) {
    batch.put_cf(cf(db, CF_STREAMS), stream.stream_id.to_be_bytes(), stream.encode_to_vec());
}

fn version_changed(old: &StoredItem, new: &StoredItem) -> bool {
    (old.write_timestamp_micros, &old.origin_region) != (new.write_timestamp_micros, &new.origin_region)
}

/// Builds the record of one item change, or none when the change changed nothing.
#[allow(clippy::too_many_arguments)]
pub fn record(
    stream: &StoredStream,
    schema: &TableSchema,
    sequence: u64,
    region: &str,
    old: Option<&StoredItem>,
    new: Option<&StoredItem>,
    version: &ItemVersion,
    identity: Option<Identity>,
    global: bool,
) -> Option<StreamRecord> {
    let event_name = match (old, new) {
        (None, Some(_)) => "INSERT",
        // A write that changes nothing writes no record, unless the table is global and the write gave
        // the item a new version: the other regions must learn the version, or they would decide later
        // conflicts differently.
        (Some(o), Some(n)) if o.attributes == n.attributes && !(global && version_changed(o, n)) => return None,
        (Some(_), Some(_)) => "MODIFY",
        (Some(_), None) => "REMOVE",
        (None, None) => return None,
    };
    let any = new.or(old).expect("one side exists");
    let keys = Item { attributes: schema.key_of(&any.attributes) };
    let view = stream.stream_view_type.as_str();
    let new_image = new
        .filter(|_| matches!(view, "NEW_IMAGE" | "NEW_AND_OLD_IMAGES"))
        .map(|n| Item { attributes: n.attributes.clone() });
    let old_image = old
        .filter(|_| matches!(view, "OLD_IMAGE" | "NEW_AND_OLD_IMAGES"))
        .map(|o| Item { attributes: o.attributes.clone() });
    let size_bytes = (keys.encoded_len()
        + new_image.as_ref().map_or(0, |i| i.encoded_len())
        + old_image.as_ref().map_or(0, |i| i.encoded_len())) as u64;
    Some(StreamRecord {
        event_id: format!("{:016x}{:016x}", stream.stream_id, sequence),
        event_name: event_name.into(),
        event_version: "1.1".into(),
        event_source: "aws:dynamodb".into(),
        aws_region: region.into(),
        user_identity: identity,
        table_name: stream.table_name.clone(),
        dynamodb: Some(StreamRecordData {
            approximate_creation_date_time: (version.write_timestamp_micros / 1_000_000) as f64,
            keys: Some(keys),
            new_image,
            old_image,
            sequence_number: sequence_text(sequence),
            size_bytes,
            stream_view_type: stream.stream_view_type.clone(),
            item_version: Some(version.clone()),
        }),
    })
}

pub fn write_record(db: &DB, stream_id: u64, sequence: u64, record: &StreamRecord, batch: &mut WriteBatch) {
    batch.put_cf(cf(db, CF_STREAM_RECORDS), record_key(stream_id, sequence), record.encode_to_vec());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_utc_timestamps() {
        assert_eq!(label(1_431_379_293_291_000), "2015-05-11T21:21:33.291");
        assert_eq!(label(0), "1970-01-01T00:00:00.000");
    }

    #[test]
    fn sequence_numbers_are_21_digits_and_ordered() {
        assert_eq!(sequence_text(5), "000000000000000000005");
        assert!(sequence_text(9) < sequence_text(10));
    }
}
