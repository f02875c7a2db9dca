//! JSON output shaped like the AWS CLI's.

use serde_json::{json, Map, Value as Json};
use tern_proto::v1::{Item, ItemVersion, TableDescription};
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

/// A table description with DynamoDB's field names.
pub fn table(table: &TableDescription) -> Json {
    json!({
        "TableName": table.table_name,
        "AttributeDefinitions": table.attribute_definitions.iter().map(|d| json!({"AttributeName": d.attribute_name, "AttributeType": d.attribute_type})).collect::<Vec<_>>(),
        "KeySchema": table.key_schema.iter().map(|k| json!({"AttributeName": k.attribute_name, "KeyType": k.key_type})).collect::<Vec<_>>(),
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
    })
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
