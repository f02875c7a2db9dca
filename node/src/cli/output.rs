//! JSON output shaped like the AWS CLI's.

use serde_json::{json, Map, Value as Json};
use tern_proto::v1::{Item, ItemVersion, KeySchemaElement, RestoreSummary, TableDescription};
use tern_proto::value::item_from_wire;

/// The DynamoDB JSON of a wire item.
pub fn item(item: &Item) -> Json {
    match item_from_wire(item.attributes.clone()) {
        Ok(item) => tern_proto::json::item_to_json(&item),
        Err(e) => json!({ "error": e.to_string() }),
    }
}

/// An item version as Tern prints it.
pub fn version(version: &ItemVersion) -> Json {
    json!({ "WriteTimestampMicros": version.write_timestamp_micros.to_string(), "OriginRegion": version.origin_region })
}

/// What a single-item write prints: its ReturnValues attributes, if any, and the version it gave.
pub fn write_result(attributes: Option<&Item>, item_version: Option<&ItemVersion>) -> Json {
    let mut out = Map::new();
    if let Some(attributes) = attributes {
        out.insert("Attributes".into(), item(attributes));
    }
    if let Some(item_version) = item_version {
        out.insert("ItemVersion".into(), version(item_version));
    }
    Json::Object(out)
}

/// A time in seconds since the Unix epoch as the AWS CLI prints one: ISO 8601 in UTC with its offset, and
/// microseconds when it has any (`2026-11-30T14:02:00.123000+00:00`). None for 0, the API's "not set".
pub fn date_time(seconds: f64) -> Option<Json> {
    if seconds == 0.0 || !seconds.is_finite() {
        return None;
    }
    let whole = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second][offset_hour sign:mandatory]:[offset_minute]"
    );
    let fraction = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6][offset_hour sign:mandatory]:[offset_minute]"
    );
    let micros = (seconds * 1e6).round() as i128;
    let text = time::OffsetDateTime::from_unix_timestamp_nanos(micros * 1000).ok().and_then(|at| {
        let format = if at.microsecond() == 0 { whole } else { fraction };
        at.format(format).ok()
    });
    // A time the calendar cannot hold is printed as it came.
    Some(text.map_or_else(|| json!(seconds), Json::String))
}

/// Sets `key` of a JSON object to a time (see [`date_time`]), unless it is 0.
pub fn insert_date_time(object: &mut Json, key: &str, seconds: f64) {
    if let Some(time) = date_time(seconds) {
        object[key] = time;
    }
}

/// A key schema with DynamoDB's field names.
pub fn key_schema(key_schema: &[KeySchemaElement]) -> Json {
    key_schema.iter().map(|k| json!({"AttributeName": k.attribute_name, "KeyType": k.key_type})).collect()
}

/// A restored table's RestoreSummary; while its items are being restored, Tern's progress too.
pub fn restore_summary(summary: &RestoreSummary) -> Json {
    let mut out = json!({ "RestoreInProgress": summary.restore_in_progress });
    if !summary.source_backup_arn.is_empty() {
        out["SourceBackupArn"] = json!(summary.source_backup_arn);
    }
    if !summary.source_table_arn.is_empty() {
        out["SourceTableArn"] = json!(summary.source_table_arn);
    }
    insert_date_time(&mut out, "RestoreDateTime", summary.restore_date_time);
    if summary.restore_in_progress {
        out["ItemsRestored"] = json!(summary.items_restored);
        out["BytesRead"] = json!(summary.bytes_read);
    }
    out
}

/// A table description with DynamoDB's field names.
pub fn table(table: &TableDescription) -> Json {
    let mut out = json!({
        "TableName": table.table_name,
        "AttributeDefinitions": table.attribute_definitions.iter().map(|d| json!({"AttributeName": d.attribute_name, "AttributeType": d.attribute_type})).collect::<Vec<_>>(),
        "KeySchema": key_schema(&table.key_schema),
        "TableStatus": table.table_status,
        "CreationDateTime": table.creation_date_time,
        "ItemCount": table.item_count,
        "TableSizeBytes": table.table_size_bytes,
        "TableArn": table.table_arn,
        "TableId": table.table_id,
        "BillingModeSummary": { "BillingMode": table.billing_mode },
        "StreamSpecification": table.stream_specification.as_ref().map(|s| {
            let mut spec = json!({ "StreamEnabled": s.stream_enabled });
            if s.stream_enabled {
                spec["StreamViewType"] = json!(s.stream_view_type);
            }
            if s.retention_days > 0 {
                spec["RetentionDays"] = json!(s.retention_days);
            }
            spec
        }),
        "LatestStreamLabel": (!table.latest_stream_label.is_empty()).then_some(&table.latest_stream_label),
        "LatestStreamArn": (!table.latest_stream_arn.is_empty()).then_some(&table.latest_stream_arn),
        "GlobalTableVersion": (!table.global_table_version.is_empty()).then_some(&table.global_table_version),
        "Replicas": (!table.replicas.is_empty()).then(|| table.replicas.iter().map(|r| {
            let mut replica = json!({ "RegionName": r.region_name, "ReplicaStatus": r.replica_status });
            if crate::global::ReplicaStatus::Creating.of(r) {
                replica["ReplicaStatusPercentProgress"] = json!(r.replica_status_percent_progress.to_string());
            }
            replica
        }).collect::<Vec<_>>()),
    });
    if let Some(summary) = &table.restore_summary {
        out["RestoreSummary"] = restore_summary(summary);
    }
    out
}

/// A stream record in DynamoDB Streams' JSON shape.
pub fn record(record: &tern_proto::v1::StreamRecord) -> Json {
    let mut out = json!({
        "eventID": record.event_id,
        "eventName": record.event_name,
        "eventVersion": record.event_version,
        "eventSource": record.event_source,
        "awsRegion": record.aws_region,
    });
    if let Some(identity) = &record.user_identity {
        out["userIdentity"] = json!({ "type": identity.r#type, "principalId": identity.principal_id });
    }
    if let Some(data) = &record.dynamodb {
        let mut dynamodb = json!({
            "ApproximateCreationDateTime": data.approximate_creation_date_time,
            "SequenceNumber": data.sequence_number,
            "SizeBytes": data.size_bytes,
            "StreamViewType": data.stream_view_type,
        });
        for (name, image) in [("Keys", &data.keys), ("NewImage", &data.new_image), ("OldImage", &data.old_image)] {
            if let Some(image) = image {
                dynamodb[name] = item(image);
            }
        }
        if let Some(v) = &data.item_version {
            dynamodb["ItemVersion"] = version(v);
        }
        out["dynamodb"] = dynamodb;
    }
    out
}

/// Prints a JSON document (nothing for an empty object, as the AWS CLI does).
pub fn print(document: Json) {
    if document == Json::Object(Map::new()) {
        return;
    }
    println!("{}", serde_json::to_string_pretty(&document).expect("JSON values serialise"));
}

/// Sets `key` to a string unless it is empty.
pub fn insert_text(object: &mut Json, key: &str, text: &str) {
    if !text.is_empty() {
        object[key] = json!(text);
    }
}
