//! The stream's apply hook: the record of each committed item change, written in the entry's write
//! set at the entry's next position, so records are ordered and gap-free in log order on every node.

use std::collections::BTreeMap;

use prost::Message;
use tern_proto::internal::{StoredItem, StoredStream, StoredTable};
use tern_proto::v1::{AttributeValue, Identity, Item, ItemVersion, StreamRecord, StreamRecordData};

use crate::apply::entry::{Applied, Entry, PlannedWrite};
use crate::engine::StorageError;
use crate::keyspace::{self, Family, Seq};

/// Writes the record of a committed change to the table's stream (none when it changed nothing).
pub fn record_change(
    entry: &mut Entry,
    stored: &StoredTable,
    keys: BTreeMap<String, AttributeValue>,
    write: &PlannedWrite,
    global: bool,
) -> Applied<()> {
    // A table naming a stream that does not exist is damaged state: stop rather than skip a record.
    let stream = super::read_stream(entry.view, stored.stream_id)?.ok_or_else(|| StorageError::Corrupt {
        what: "table",
        why: format!("table {} names stream {}, which does not exist", write.table, stored.stream_id),
    })?;
    let seq = Seq { index: entry.index, n: entry.records };
    let (old, new) = (write.change.old.as_ref(), write.change.new.as_ref());
    let identity = entry.identity.clone();
    let appended_at = entry.timestamp;
    if let Some(record) =
        record(&stream, keys, seq, entry.region, old, new, &write.version, appended_at, identity, global)
    {
        entry.writes.put(Family::StreamRecords, keyspace::record_key(stream.stream_id, seq), record.encode_to_vec());
        // Commands that commit many changes are capped below Seq::PER_ENTRY records.
        entry.records = entry.records.checked_add(1).expect("an entry writes fewer than 65,536 stream records");
        metrics::counter!("tern_stream_records_written_total").increment(1);
    }
    Ok(())
}

fn version_changed(old: &StoredItem, new: &StoredItem) -> bool {
    (old.write_timestamp_micros, &old.origin_region) != (new.write_timestamp_micros, &new.origin_region)
}

/// Builds the record of one item change, or none when the change changed nothing.
#[allow(clippy::too_many_arguments)]
fn record(
    stream: &StoredStream,
    keys: BTreeMap<String, AttributeValue>,
    seq: Seq,
    region: &str,
    old: Option<&StoredItem>,
    new: Option<&StoredItem>,
    version: &ItemVersion,
    appended_at_micros: u64,
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
        // A global table's delete of an item this region does not hold still replicates.
        (None, None) if global => "REMOVE",
        (None, None) => return None,
    };
    let keys = Item { attributes: keys };
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
        event_id: format!("{:016x}{:016x}", stream.stream_id, seq.number()),
        event_name: event_name.into(),
        event_version: "1.1".into(),
        event_source: "aws:dynamodb".into(),
        aws_region: region.into(),
        user_identity: identity,
        table_name: stream.table_name.clone(),
        dynamodb: Some(StreamRecordData {
            // When the change reached this region's stream (a replicated change too): retention counts from it.
            approximate_creation_date_time: (appended_at_micros / 1_000_000) as f64,
            keys: Some(keys),
            new_image,
            old_image,
            sequence_number: seq.text(),
            size_bytes,
            stream_view_type: stream.stream_view_type.clone(),
            item_version: Some(version.clone()),
        }),
    })
}
