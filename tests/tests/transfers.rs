//! Exports to and imports from object storage with real processes: a full export holds the table
//! exactly as it was at the export time, in DynamoDB's layout (manifests, checksums, gzip'd JSON Lines
//! or Ion), and imported back it gives an identical table; an incremental export holds one record per
//! changed item with DynamoDB's images; CSV imports follow DynamoDB's rules; bad items are counted and
//! logged while the valid ones go in; and the calls' errors are DynamoDB's.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ::tern_client::v1::*;
use ::tern_client::Client;
use base64::Engine;
use md5::{Digest, Md5};
use serde_json::{json, Value as Json};
use tern_tests::dynamo::{create_table, error, wire};
use tern_tests::pitr::{enable_pitr, load, scan, State};
use tern_tests::Region;

/// Nodes that upload their PITR log every 300 ms, and take incremental windows of a second.
const FAST: &[&str] = &["--pitr-archive-interval-ms", "300", "--min-incremental-export-secs", "1"];

const EXPORT_TIMEOUT: Duration = Duration::from_secs(120);

fn now_micros() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_micros() as u64
}

fn table_arn(client_table: &TableDescription) -> String {
    client_table.table_arn.clone()
}

async fn describe(client: &Client, table: &str) -> anyhow::Result<TableDescription> {
    Ok(client.describe_table(DescribeTableRequest { table_name: table.into() }).await?.table.unwrap())
}

/// Puts an item given as DynamoDB JSON; returns its commit time.
async fn put(client: &Client, table: &str, text: &str) -> anyhow::Result<u64> {
    let response = client
        .put_item_request(PutItemRequest { table_name: table.into(), item: wire(text), ..Default::default() })
        .await?;
    Ok(response.item_version.unwrap().write_timestamp_micros)
}

async fn delete(client: &Client, table: &str, pk: &str) -> anyhow::Result<u64> {
    let response = client
        .delete_item_request(DeleteItemRequest {
            table_name: table.into(),
            key: wire(&format!(r#"{{"pk":{{"S":"{pk}"}}}}"#)),
            ..Default::default()
        })
        .await?;
    Ok(response.item_version.unwrap().write_timestamp_micros)
}

/// Items of every type DynamoDB has, numbers at its limits, nested maps and lists, sets, binary.
fn every_type_items() -> Vec<String> {
    vec![
        r#"{"pk":{"S":"all"},"s":{"S":"text with \"quotes\" and ünïcode"},"n":{"N":"-12.5"},"b":{"B":"AAEC/w=="},
            "t":{"BOOL":true},"f":{"BOOL":false},"z":{"NULL":true},"ss":{"SS":["a","b"]},"ns":{"NS":["1","2.5"]},
            "bs":{"BS":["AQ==","AgM="]},"l":{"L":[{"S":"x"},{"N":"1"},{"M":{"deep":{"L":[]}}}]},
            "m":{"M":{"inner":{"M":{"n":{"N":"0"}}},"empty":{"M":{}}}}}"#
            .to_string(),
        r#"{"pk":{"S":"limits"},"max":{"N":"9.9999999999999999999999999999999999999E+125"},
            "min":{"N":"-9.9999999999999999999999999999999999999E+125"},"tiny":{"N":"1E-130"},
            "digits":{"N":"12345678901234567890123456789012345678"}}"#
            .to_string(),
        r#"{"pk":{"S":"empty-values"},"s":{"S":""},"b":{"B":""}}"#.to_string(),
    ]
}

/// The lines of an export's data files (gunzipped), with the manifests checked: each data file's
/// MD5 and item count as `manifest-files.json` lists them, and the summary's item count.
fn export_lines(bucket: &Path, description: &ExportDescription) -> anyhow::Result<Vec<String>> {
    let summary: Json = serde_json::from_slice(&std::fs::read(bucket.join(&description.export_manifest))?)?;
    assert_eq!(summary["exportArn"], json!(description.export_arn));
    assert_eq!(summary["tableArn"], json!(description.table_arn));
    assert_eq!(summary["outputFormat"], json!(description.export_format));
    assert_eq!(summary["exportType"], json!(description.export_type));
    let folder = description.export_manifest.trim_end_matches("manifest-summary.json");
    assert!(bucket.join(folder).join("_started").is_file(), "the export wrote _started");
    assert_eq!(summary["manifestFilesS3Key"], json!(format!("{folder}manifest-files.json")));
    let listing = std::fs::read_to_string(bucket.join(format!("{folder}manifest-files.json")))?;
    let checksum = std::fs::read_to_string(bucket.join(format!("{folder}manifest-files.checksum")))?;
    assert_eq!(checksum, hex(&Md5::digest(listing.as_bytes())));
    let mut lines = Vec::new();
    for entry in listing.lines().filter(|l| !l.is_empty()) {
        let entry: Json = serde_json::from_str(entry)?;
        let key = entry["dataFileS3Key"].as_str().unwrap();
        let data = std::fs::read(bucket.join(key))?;
        assert_eq!(entry["md5Checksum"], json!(base64::engine::general_purpose::STANDARD.encode(Md5::digest(&data))));
        assert_eq!(entry["etag"], json!(hex(&Md5::digest(&data))));
        let mut text = String::new();
        flate2::read::GzDecoder::new(&data[..]).read_to_string(&mut text)?;
        let file_lines: Vec<String> = text.lines().map(str::to_string).collect();
        assert_eq!(entry["itemCount"], json!(file_lines.len()), "{key}");
        lines.extend(file_lines);
    }
    assert_eq!(summary["itemCount"], json!(lines.len()));
    assert_eq!(description.item_count, lines.len() as i64);
    Ok(lines)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

async fn export(client: &Client, request: ExportTableToPointInTimeRequest) -> anyhow::Result<ExportDescription> {
    let started = client.export_table_to_point_in_time(request).await?.export_description.unwrap();
    assert_eq!(started.export_status, "IN_PROGRESS");
    let done = client.wait_for_export(&started.export_arn, EXPORT_TIMEOUT, |_| {}).await?;
    assert_eq!(done.export_status, "COMPLETED", "{done:?}");
    Ok(done)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_export_holds_the_table_as_it_was_at_the_export_time() -> anyhow::Result<()> {
    let region = Region::start(3, FAST).await?;
    let client = region.client().await?;
    create_table(&client, "catalog", "pk:S", None).await?;
    for item in every_type_items() {
        put(&client, "catalog", &item).await?;
    }
    for n in 0..500 {
        put(&client, "catalog", &format!(r#"{{"pk":{{"S":"item-{n:03}"}},"n":{{"N":"{n}"}}}}"#)).await?;
    }
    enable_pitr(&client, "catalog").await?;
    let expected = scan(&client, "catalog").await?;
    let at = now_micros();
    tokio::time::sleep(Duration::from_millis(50)).await;
    // After the export time: not in the export.
    put(&client, "catalog", r#"{"pk":{"S":"later"}}"#).await?;
    delete(&client, "catalog", "item-000").await?;
    let arn = table_arn(&describe(&client, "catalog").await?);

    let done = export(
        &client,
        ExportTableToPointInTimeRequest {
            table_arn: arn.clone(),
            export_time: Some(at as f64 / 1e6),
            s3_bucket: "exports".into(),
            s3_prefix: "nightly".into(),
            ..Default::default()
        },
    )
    .await?;
    assert_eq!((done.export_format.as_str(), done.export_type.as_str()), ("DYNAMODB_JSON", "FULL_EXPORT"));
    assert_eq!(done.export_time, at as f64 / 1e6);
    assert!(done.export_manifest.starts_with("nightly/AWSDynamoDB/"), "{}", done.export_manifest);
    let bucket = region.dir().join("buckets/exports");
    let exported: State = export_lines(&bucket, &done)?
        .iter()
        .map(|line| {
            let line: Json = serde_json::from_str(line).unwrap();
            let item = line["Item"].clone();
            (item["pk"]["S"].as_str().unwrap().to_string(), item)
        })
        .collect();
    assert_eq!(exported.len(), expected.len());
    assert_eq!(exported, expected, "the export equals the table at the export time, item for item");

    // The latest state, as Ion.
    let now = scan(&client, "catalog").await?;
    let ion = export(
        &client,
        ExportTableToPointInTimeRequest {
            table_arn: arn.clone(),
            s3_bucket: "exports".into(),
            export_format: "ION".into(),
            ..Default::default()
        },
    )
    .await?;
    let lines = export_lines(&bucket, &ion)?;
    assert_eq!(lines.len(), now.len());
    assert!(lines.iter().all(|l| l.starts_with("$ion_1_0 {Item:{")), "{:?}", &lines[..2]);
    let limits = lines.iter().find(|l| l.contains("pk:\"limits\"")).expect("the limits item");
    assert!(limits.contains("digits:12345678901234567890123456789012345678."), "{limits}");
    assert!(limits.contains("tiny:1d-130"), "{limits}");
    let all = lines.iter().find(|l| l.contains("pk:\"all\"")).expect("the every-type item");
    assert!(all.contains("ss:$dynamodb_SS::[\"a\",\"b\"]") && all.contains("b:{{AAEC/w==}}"), "{all}");

    // Both listed, newest last.
    let listed = client.list_exports(ListExportsRequest { table_arn: arn, ..Default::default() }).await?;
    let arns: Vec<&str> = listed.export_summaries.iter().map(|s| s.export_arn.as_str()).collect();
    assert_eq!(arns, [done.export_arn.as_str(), ion.export_arn.as_str()]);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn an_incremental_export_holds_each_changed_item_once_with_dynamodbs_images() -> anyhow::Result<()> {
    let region = Region::start(3, FAST).await?;
    let client = region.client().await?;
    create_table(&client, "orders", "pk:S", None).await?;
    for pk in ["upd", "del", "same"] {
        put(&client, "orders", &format!(r#"{{"pk":{{"S":"{pk}"}},"v":{{"N":"0"}}}}"#)).await?;
    }
    let earliest = enable_pitr(&client, "orders").await?.earliest_restorable_date_time;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let from = now_micros();
    let inserted = put(&client, "orders", r#"{"pk":{"S":"ins"},"v":{"N":"1"}}"#).await?;
    put(&client, "orders", r#"{"pk":{"S":"upd"},"v":{"N":"1"}}"#).await?;
    put(&client, "orders", r#"{"pk":{"S":"tmp"},"v":{"N":"1"}}"#).await?;
    delete(&client, "orders", "tmp").await?;
    let deleted = delete(&client, "orders", "del").await?;
    let updated = put(&client, "orders", r#"{"pk":{"S":"upd"},"v":{"N":"2"}}"#).await?;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let to = now_micros();
    // After the window: not in the export.
    put(&client, "orders", r#"{"pk":{"S":"same"},"v":{"N":"9"}}"#).await?;
    let arn = table_arn(&describe(&client, "orders").await?);
    let bucket = region.dir().join("buckets/changes");

    let rows = |view: &'static str, from: f64| {
        let request = ExportTableToPointInTimeRequest {
            table_arn: arn.clone(),
            s3_bucket: "changes".into(),
            export_type: "INCREMENTAL_EXPORT".into(),
            incremental_export_specification: Some(IncrementalExportSpecification {
                export_from_time: Some(from),
                export_to_time: Some(to as f64 / 1e6),
                export_view_type: view.into(),
            }),
            ..Default::default()
        };
        let (client, bucket) = (&client, &bucket);
        async move {
            let done = export(client, request).await?;
            assert_eq!(done.incremental_export_specification.as_ref().unwrap().export_view_type, view);
            let lines = export_lines(bucket, &done)?;
            let listing = std::fs::read_to_string(bucket.join(done.export_manifest.replace("summary", "files")))?;
            assert!(listing.contains("\"dataFileS3Key\":\"AWSDynamoDB/data/"), "{listing}");
            anyhow::Ok(
                lines
                    .iter()
                    .map(|l| {
                        let row: Json = serde_json::from_str(l).unwrap();
                        (row["Keys"]["pk"]["S"].as_str().unwrap().to_string(), row)
                    })
                    .collect::<BTreeMap<String, Json>>(),
            )
        }
    };
    let item = |pk: &str, v: u32| json!({"pk": {"S": pk}, "v": {"N": v.to_string()}});
    let keys = |pk: &str| json!({"pk": {"S": pk}});
    let at = |micros: u64| json!({"WriteTimestampMicros": {"N": micros.to_string()}});
    let both = rows("NEW_AND_OLD_IMAGES", from as f64 / 1e6).await?;
    let expected: BTreeMap<String, Json> = [
        ("del", json!({"Metadata": at(deleted), "Keys": keys("del"), "OldImage": item("del", 0)})),
        ("ins", json!({"Metadata": at(inserted), "Keys": keys("ins"), "NewImage": item("ins", 1)})),
        ("upd", json!({"Metadata": at(updated), "Keys": keys("upd"), "NewImage": item("upd", 2), "OldImage": item("upd", 0)})),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    assert_eq!(both, expected);
    // From the earliest restorable time (the first base): nothing changed between it and `from`.
    assert_eq!(rows("NEW_AND_OLD_IMAGES", earliest).await?, expected);
    let new_only = rows("NEW_IMAGE", from as f64 / 1e6).await?;
    let expected: BTreeMap<String, Json> = [
        ("del", json!({"Metadata": at(deleted), "Keys": keys("del")})),
        ("ins", json!({"Metadata": at(inserted), "Keys": keys("ins"), "NewImage": item("ins", 1)})),
        ("upd", json!({"Metadata": at(updated), "Keys": keys("upd"), "NewImage": item("upd", 2)})),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    assert_eq!(new_only, expected);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn export_requests_outside_the_rules_get_dynamodbs_errors() -> anyhow::Result<()> {
    let region = Region::start(1, FAST).await?;
    let client = region.client().await?;
    create_table(&client, "plain", "pk:S", None).await?;
    create_table(&client, "kept", "pk:S", None).await?;
    enable_pitr(&client, "kept").await?;
    let plain = table_arn(&describe(&client, "plain").await?);
    let kept = table_arn(&describe(&client, "kept").await?);
    let request = |arn: &str| ExportTableToPointInTimeRequest {
        table_arn: arn.into(),
        s3_bucket: "exports".into(),
        ..Default::default()
    };
    let call = |request: ExportTableToPointInTimeRequest| {
        let client = &client;
        async move { error(client.export_table_to_point_in_time(request).await) }
    };
    assert_eq!(call(request(&plain)).await.0, "PointInTimeRecoveryUnavailableException");
    assert_eq!(call(request(&kept.replace("/kept", "/nothing"))).await.0, "TableNotFoundException");
    let future =
        ExportTableToPointInTimeRequest { export_time: Some(now_micros() as f64 / 1e6 + 3600.0), ..request(&kept) };
    assert_eq!(call(future).await.0, "InvalidExportTimeException");
    let before = ExportTableToPointInTimeRequest { export_time: Some(1_000_000.0), ..request(&kept) };
    assert_eq!(call(before).await.0, "InvalidExportTimeException");
    let bucket = ExportTableToPointInTimeRequest { s3_bucket: "../../etc".into(), ..request(&kept) };
    assert_eq!(call(bucket).await.0, "ValidationException");
    let format = ExportTableToPointInTimeRequest { export_format: "CSV".into(), ..request(&kept) };
    assert_eq!(call(format).await.0, "ValidationException");
    let now = now_micros() as f64 / 1e6;
    let incremental = |from: f64, to: f64| ExportTableToPointInTimeRequest {
        export_type: "INCREMENTAL_EXPORT".into(),
        incremental_export_specification: Some(IncrementalExportSpecification {
            export_from_time: Some(from),
            export_to_time: Some(to),
            ..Default::default()
        }),
        ..request(&kept)
    };
    let (kind, message) = call(incremental(now - 0.5, now)).await;
    assert_eq!(kind, "ValidationException");
    assert!(message.contains("between"), "{message}");
    assert_eq!(call(incremental(now - 90_000.0, now)).await.0, "ValidationException");
    assert_eq!(call(incremental(now, now - 5.0)).await.0, "ValidationException");
    let (kind, _) = call(incremental(now - 100.0, now - 50.0)).await;
    assert_eq!(kind, "InvalidExportTimeException", "a window before PITR was on");
    // A request repeated with its client token (its export time left out, so now each time) is the same
    // export; other parameters with that token conflict.
    let with_token = ExportTableToPointInTimeRequest { client_token: "nightly-1".into(), ..request(&kept) };
    let first = client.export_table_to_point_in_time(with_token.clone()).await?.export_description.unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let again = client.export_table_to_point_in_time(with_token.clone()).await?.export_description.unwrap();
    assert_eq!(again.export_arn, first.export_arn);
    let other = ExportTableToPointInTimeRequest { s3_prefix: "elsewhere".into(), ..with_token };
    assert_eq!(call(other).await.0, "ExportConflictException");
    let missing = client
        .describe_export(DescribeExportRequest { export_arn: format!("{kept}/export/01693685827463-2d8752fd") })
        .await;
    assert_eq!(error(missing).0, "ExportNotFoundException");
    Ok(())
}

/// A new table's parameters: `name`, keyed by the string `pk`.
fn pk_table(name: &str) -> TableCreationParameters {
    TableCreationParameters {
        table_name: name.into(),
        attribute_definitions: vec![AttributeDefinition { attribute_name: "pk".into(), attribute_type: "S".into() }],
        key_schema: vec![KeySchemaElement { attribute_name: "pk".into(), key_type: "HASH".into() }],
        billing_mode: "PAY_PER_REQUEST".into(),
    }
}

/// Imports `prefix` of `bucket` into a new table `table` keyed by `pk` (a string) and waits for the end.
async fn import(
    client: &Client,
    bucket: &str,
    prefix: &str,
    table: &str,
    format: &str,
    compression: &str,
    csv: Option<CsvOptions>,
) -> anyhow::Result<ImportTableDescription> {
    let request = ImportTableRequest {
        s3_bucket_source: Some(S3BucketSource {
            s3_bucket: bucket.into(),
            s3_key_prefix: prefix.into(),
            ..Default::default()
        }),
        input_format: format.into(),
        input_compression_type: compression.into(),
        input_format_options: csv.map(|csv| InputFormatOptions { csv: Some(csv) }),
        table_creation_parameters: Some(pk_table(table)),
        ..Default::default()
    };
    let started = client.import_table(request).await?.import_table_description.unwrap();
    assert_eq!(started.import_status, "IN_PROGRESS");
    Ok(client.wait_for_import(&started.import_arn, EXPORT_TIMEOUT, |_| {}).await?)
}

#[tokio::test(flavor = "multi_thread")]
async fn an_exported_table_imported_back_is_identical() -> anyhow::Result<()> {
    let region = Region::start(3, FAST).await?;
    let client = region.client().await?;
    create_table(&client, "source", "pk:S", None).await?;
    for item in every_type_items() {
        put(&client, "source", &item).await?;
    }
    for n in 0..300 {
        put(&client, "source", &format!(r#"{{"pk":{{"S":"item-{n:03}"}},"n":{{"N":"{n}.{n}"}},"b":{{"B":"AAE="}}}}"#))
            .await?;
    }
    enable_pitr(&client, "source").await?;
    let expected = scan(&client, "source").await?;
    let arn = table_arn(&describe(&client, "source").await?);
    for (format, table) in [("DYNAMODB_JSON", "copy-json"), ("ION", "copy-ion")] {
        let request = ExportTableToPointInTimeRequest {
            table_arn: arn.clone(),
            s3_bucket: "roundtrip".into(),
            s3_prefix: format.to_lowercase(),
            export_format: format.into(),
            ..Default::default()
        };
        let exported = export(&client, request).await?;
        let data = exported.export_manifest.replace("manifest-summary.json", "data/");
        let imported = import(&client, "roundtrip", &data, table, format, "GZIP", None).await?;
        assert_eq!(imported.import_status, "COMPLETED", "{imported:?}");
        assert_eq!(imported.processed_item_count, expected.len() as i64);
        assert_eq!(imported.imported_item_count, expected.len() as i64);
        assert_eq!(imported.error_count, 0);
        assert!(imported.processed_size_bytes > 0);
        assert_eq!(describe(&client, table).await?.table_status, "ACTIVE");
        assert_eq!(scan(&client, table).await?, expected, "{format}: the imported table equals the exported one");
    }
    Ok(())
}

fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn csv_imports_and_bad_items_follow_dynamodbs_rules() -> anyhow::Result<()> {
    let region = Region::start(1, FAST).await?;
    let client = region.client().await?;
    let bucket = region.dir().join("buckets/incoming");
    let put_object = |key: &str, data: &[u8]| {
        let path = bucket.join(key);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, data).unwrap();
    };
    // A header line, quotes doubled, an empty cell left out; gzip'd.
    put_object("csv-header/part-1.csv.gz", &gzip(b"pk,name,note\na,Ann,\"says \"\"hi\"\"\"\nb,Bob,\n"));
    // S3KeyPrefix is a string prefix, not only a folder.
    let imported = import(&client, "incoming", "csv-header/part-", "people", "CSV", "GZIP", None).await?;
    assert_eq!((imported.import_status.as_str(), imported.imported_item_count), ("COMPLETED", 2), "{imported:?}");
    let people = scan(&client, "people").await?;
    assert_eq!(people["a"], json!({"pk": {"S": "a"}, "name": {"S": "Ann"}, "note": {"S": "says \"hi\""}}));
    assert_eq!(people["b"], json!({"pk": {"S": "b"}, "name": {"S": "Bob"}}));

    // A header list (the first line is data), another delimiter; zstd; numbers stay strings.
    put_object("csv-list/rows", &zstd::stream::encode_all(&b"x|10\ny|20\n"[..], 3)?);
    let options = CsvOptions { delimiter: "|".into(), header_list: vec!["pk".into(), "count".into()] };
    let imported = import(&client, "incoming", "csv-list/", "counts", "CSV", "ZSTD", Some(options)).await?;
    assert_eq!((imported.import_status.as_str(), imported.imported_item_count), ("COMPLETED", 2), "{imported:?}");
    assert_eq!(scan(&client, "counts").await?["x"], json!({"pk": {"S": "x"}, "count": {"S": "10"}}));

    // Bad items are counted and logged; the valid ones go in; the import ends FAILED.
    let big = "x".repeat(400 * 1024);
    let lines = [
        r#"{"Item":{"pk":{"S":"ok-1"}}}"#.to_string(),
        r#"{"Item":{"pk":{"S":"broken"}"#.to_string(),
        r#"{"Item":{"pk":{"N":"1"}}}"#.to_string(),
        format!(r#"{{"Item":{{"pk":{{"S":"big"}},"blob":{{"S":"{big}"}}}}}}"#),
        r#"{"Item":{"other":{"S":"no key"}}}"#.to_string(),
        r#"{"Item":{"pk":{"S":"ok-2"},"n":{"N":"1.5"}}}"#.to_string(),
    ];
    put_object("json-bad/data.json", (lines.join("\n") + "\n").as_bytes());
    let imported = import(&client, "incoming", "json-bad/", "partial", "DYNAMODB_JSON", "NONE", None).await?;
    assert_eq!(imported.import_status, "FAILED");
    assert_eq!(imported.failure_code, "ItemValidationError");
    assert_eq!((imported.processed_item_count, imported.imported_item_count, imported.error_count), (6, 2, 4));
    assert_eq!(describe(&client, "partial").await?.table_status, "ACTIVE");
    assert_eq!(scan(&client, "partial").await?.keys().collect::<Vec<_>>(), ["ok-1", "ok-2"]);
    let log_path = imported.cloud_watch_log_group_arn.strip_prefix("file://").expect("a file URL");
    let log = std::fs::read_to_string(log_path)?;
    let reasons: Vec<(u64, String)> = log
        .lines()
        .map(|l| {
            let l: Json = serde_json::from_str(l).unwrap();
            assert_eq!(l["object"], "json-bad/data.json");
            (l["line"].as_u64().unwrap(), l["reason"].as_str().unwrap().to_string())
        })
        .collect();
    assert_eq!(reasons.iter().map(|(n, _)| *n).collect::<Vec<_>>(), [2, 3, 4, 5]);
    assert!(reasons[0].1.starts_with("Invalid JSON"), "{reasons:?}");
    assert!(reasons[1].1.contains("Type mismatch"), "{reasons:?}");
    assert_eq!(reasons[2].1, "Item size has exceeded the maximum allowed size");
    assert!(reasons[3].1.contains("Missing the key pk"), "{reasons:?}");

    // A missing bucket, or nothing under the prefix: FAILED, and no table left.
    let missing = import(&client, "no-such-bucket", "", "from-nothing", "CSV", "NONE", None).await?;
    assert_eq!((missing.import_status.as_str(), missing.failure_code.as_str()), ("FAILED", "S3NoSuchBucket"));
    let (kind, _) = error(client.describe_table(DescribeTableRequest { table_name: "from-nothing".into() }).await);
    assert_eq!(kind, "ResourceNotFoundException");
    let empty = import(&client, "incoming", "nothing-here/", "from-empty", "CSV", "NONE", None).await?;
    assert_eq!(empty.import_status, "FAILED");
    assert!(empty.failure_message.contains("No objects"), "{empty:?}");

    // Always a new table.
    let again = client
        .import_table(ImportTableRequest {
            s3_bucket_source: Some(S3BucketSource { s3_bucket: "incoming".into(), ..Default::default() }),
            input_format: "CSV".into(),
            table_creation_parameters: Some(pk_table("people")),
            ..Default::default()
        })
        .await;
    assert_eq!(error(again).0, "ResourceInUseException");
    let listed = client.list_imports(ListImportsRequest::default()).await?;
    assert_eq!(listed.import_summary_list.len(), 5);

    // A request repeated with its client token is the same import (not ResourceInUseException for the
    // table it made); other parameters with that token conflict.
    let request = ImportTableRequest {
        client_token: "people-again-1".into(),
        s3_bucket_source: Some(S3BucketSource {
            s3_bucket: "incoming".into(),
            s3_key_prefix: "csv-header/".into(),
            ..Default::default()
        }),
        input_format: "CSV".into(),
        input_compression_type: "GZIP".into(),
        table_creation_parameters: Some(pk_table("people-again")),
        ..Default::default()
    };
    let first = client.import_table(request.clone()).await?.import_table_description.unwrap();
    client.wait_for_import(&first.import_arn, EXPORT_TIMEOUT, |_| {}).await?;
    let again = client.import_table(request.clone()).await?.import_table_description.unwrap();
    assert_eq!(again.import_arn, first.import_arn);
    let other = ImportTableRequest { input_compression_type: "NONE".into(), ..request };
    assert_eq!(error(client.import_table(other).await).0, "ImportConflictException");
    Ok(())
}

/// The leader killed once an export, then an import, is asked for (during it, or just after when it was
/// quicker): the next leader carries each on from the replicated catalog; the export's files are one
/// complete set (a repeated export writes the same file names again), and the import's table holds every
/// item once.
#[tokio::test(flavor = "multi_thread")]
async fn the_leader_killed_during_an_export_and_during_an_import() -> anyhow::Result<()> {
    let mut region = Region::start(3, FAST).await?;
    let client = region.client().await?;
    create_table(&client, "big", "pk:S", None).await?;
    let expected = load(&client, "big", 20_000).await?;
    enable_pitr(&client, "big").await?;
    let arn = table_arn(&describe(&client, "big").await?);

    let started = client
        .export_table_to_point_in_time(ExportTableToPointInTimeRequest {
            table_arn: arn,
            s3_bucket: "killed".into(),
            ..Default::default()
        })
        .await?
        .export_description
        .unwrap();
    let leader = region.wait_for_leader(Duration::from_secs(20)).await?;
    region.kill(leader)?;
    let exported = client.wait_for_export(&started.export_arn, EXPORT_TIMEOUT, |_| {}).await?;
    assert_eq!((exported.export_status.as_str(), exported.item_count), ("COMPLETED", 20_000), "{exported:?}");
    let bucket = region.dir().join("buckets/killed");
    assert_eq!(export_lines(&bucket, &exported)?.len(), 20_000);
    let data = exported.export_manifest.replace("manifest-summary.json", "data/");
    let listing = std::fs::read_to_string(bucket.join(exported.export_manifest.replace("summary", "files")))?;
    let on_disk = std::fs::read_dir(bucket.join(&data))?.count();
    assert_eq!(on_disk, listing.lines().count(), "only the files the manifest lists are in data/");
    region.restart(leader)?;

    let started = client
        .import_table(ImportTableRequest {
            s3_bucket_source: Some(S3BucketSource {
                s3_bucket: "killed".into(),
                s3_key_prefix: data,
                ..Default::default()
            }),
            input_format: "DYNAMODB_JSON".into(),
            input_compression_type: "GZIP".into(),
            table_creation_parameters: Some(pk_table("big-imported")),
            ..Default::default()
        })
        .await?
        .import_table_description
        .unwrap();
    let leader = region.wait_for_leader(Duration::from_secs(20)).await?;
    region.kill(leader)?;
    let imported = client.wait_for_import(&started.import_arn, EXPORT_TIMEOUT, |_| {}).await?;
    assert_eq!(imported.import_status, "COMPLETED", "{imported:?}");
    assert_eq!((imported.imported_item_count, imported.error_count), (20_000, 0));
    client.wait_for_restore("big-imported", EXPORT_TIMEOUT, |_| {}).await?;
    assert_eq!(describe(&client, "big-imported").await?.item_count, 20_000);
    assert_eq!(scan(&client, "big-imported").await?, expected, "every item once");
    region.restart(leader)?;
    Ok(())
}

/// DynamoDB's ProductCatalog sample items (the Developer Guide's sample data, with the export page's
/// item 103, and one item with the types the samples lack), as DynamoDB JSON items, and the same items
/// as lines of an Ion export, written as DynamoDB writes them (`$ion_1_0` on each line, decimals, sets
/// as annotated lists, blobs).
fn product_catalog() -> (Vec<&'static str>, Vec<&'static str>) {
    let json = vec![
        r#"{"Id":{"N":"101"},"Title":{"S":"Book 101 Title"},"ISBN":{"S":"111-1111111111"},"Authors":{"L":[{"S":"Author1"}]},"Price":{"N":"2"},"Dimensions":{"S":"8.5 x 11.0 x 0.5"},"PageCount":{"N":"500"},"InPublication":{"BOOL":true},"ProductCategory":{"S":"Book"}}"#,
        r#"{"Id":{"N":"102"},"Title":{"S":"Book 102 Title"},"ISBN":{"S":"222-2222222222"},"Authors":{"L":[{"S":"Author1"},{"S":"Author2"}]},"Price":{"N":"20"},"Dimensions":{"S":"8.5 x 11.0 x 0.8"},"PageCount":{"N":"600"},"InPublication":{"BOOL":true},"ProductCategory":{"S":"Book"}}"#,
        r#"{"Authors":{"SS":["Author1","Author2"]},"Dimensions":{"S":"8.5 x 11.0 x 1.5"},"ISBN":{"S":"333-3333333333"},"Id":{"N":"103"},"InPublication":{"BOOL":false},"PageCount":{"N":"600"},"Price":{"N":"2000"},"ProductCategory":{"S":"Book"},"Title":{"S":"Book 103 Title"}}"#,
        r#"{"Id":{"N":"201"},"Title":{"S":"18-Bike-201"},"Description":{"S":"201 Description"},"BicycleType":{"S":"Road"},"Brand":{"S":"Mountain A"},"Price":{"N":"100"},"Color":{"L":[{"S":"Red"},{"S":"Black"}]},"ProductCategory":{"S":"Bicycle"}}"#,
        r#"{"Id":{"N":"202"},"Title":{"S":"21-Bike-202"},"Description":{"S":"202 Description"},"BicycleType":{"S":"Road"},"Brand":{"S":"Brand-Company A"},"Price":{"N":"200"},"Color":{"L":[{"S":"Green"},{"S":"Black"}]},"ProductCategory":{"S":"Bicycle"}}"#,
        r#"{"Id":{"N":"205"},"Title":{"S":"18-Bike-204"},"Description":{"S":"205 Description"},"BicycleType":{"S":"Hybrid"},"Brand":{"S":"Brand-Company C"},"Price":{"N":"500"},"Color":{"L":[{"S":"Red"},{"S":"Black"}]},"ProductCategory":{"S":"Bicycle"},"ProductReviews":{"M":{"FiveStar":{"L":[{"S":"Excellent! Can't recommend it highly enough! Buy it!"},{"S":"Do yourself a favor and buy this."}]},"OneStar":{"L":[{"S":"Terrible product! Do not buy this."}]}}}}"#,
        r#"{"Id":{"N":"-1.5E-130"},"Photo":{"B":"AAEC/w=="},"Discontinued":{"NULL":true},"Sizes":{"NS":["1","2.5","99999999999999999999999999999999999999"]},"Thumbnails":{"BS":["AQ==","AgM="]},"Notes":{"M":{"empty":{"M":{}},"none":{"L":[]}}},"Blank":{"S":""}}"#,
    ];
    let ion = vec![
        r#"$ion_1_0 {Item:{Id:101.,Title:"Book 101 Title",ISBN:"111-1111111111",Authors:["Author1"],Price:2.,Dimensions:"8.5 x 11.0 x 0.5",PageCount:5d2,InPublication:true,ProductCategory:"Book"}}"#,
        r#"$ion_1_0 {Item:{Id:102.,Title:"Book 102 Title",ISBN:"222-2222222222",Authors:["Author1","Author2"],Price:20.,Dimensions:"8.5 x 11.0 x 0.8",PageCount:6d2,InPublication:true,ProductCategory:"Book"}}"#,
        r#"$ion_1_0 {Item:{Authors:$dynamodb_SS::["Author1","Author2"],Dimensions:"8.5 x 11.0 x 1.5",ISBN:"333-3333333333",Id:103.,InPublication:false,PageCount:6d2,Price:2d3,ProductCategory:"Book",Title:"Book 103 Title"}}"#,
        r#"$ion_1_0 {Item:{Id:201.,Title:"18-Bike-201",Description:"201 Description",BicycleType:"Road",Brand:"Mountain A",Price:1d2,Color:["Red","Black"],ProductCategory:"Bicycle"}}"#,
        r#"$ion_1_0 {Item:{Id:202.,Title:"21-Bike-202",Description:"202 Description",BicycleType:"Road",Brand:"Brand-Company A",Price:2d2,Color:["Green","Black"],ProductCategory:"Bicycle"}}"#,
        r#"$ion_1_0 {Item:{Id:205.,Title:"18-Bike-204",Description:"205 Description",BicycleType:"Hybrid",Brand:"Brand-Company C",Price:5d2,Color:["Red","Black"],ProductCategory:"Bicycle",ProductReviews:{FiveStar:["Excellent! Can't recommend it highly enough! Buy it!","Do yourself a favor and buy this."],OneStar:["Terrible product! Do not buy this."]}}}"#,
        r#"$ion_1_0 {Item:{Id:-15d-131,Photo:{{AAEC/w==}},Discontinued:null,Sizes:$dynamodb_NS::[1.,2.5,99999999999999999999999999999999999999.],Thumbnails:$dynamodb_BS::[{{AQ==}},{{AgM=}}],Notes:{empty:{},none:[]},Blank:""}}"#,
    ];
    (json, ion)
}

/// Writes a full export as DynamoDB lays one out under `prefix` of `bucket` (`_started`, the manifests
/// and their checksums, data files of a few items each and an empty one for an empty partition),
/// with `lines` as its data; returns the data folder to import from.
fn write_dynamodb_export(bucket: &Path, prefix: &str, format: &str, lines: &[String]) -> anyhow::Result<String> {
    let id = "01234567890123-a1b2c3d4";
    let folder = format!("{prefix}/AWSDynamoDB/{id}");
    let extension = if format == "ION" { "ion.gz" } else { "json.gz" };
    let dir = bucket.join(&folder);
    std::fs::create_dir_all(dir.join("data"))?;
    std::fs::write(dir.join("_started"), b"")?;
    let mut listing = String::new();
    for (name, part) in [("asdl123dasas", &lines[..4]), ("x7gtqlxnbuw3", &lines[4..]), ("m2vrfodbzq5u", &[][..])] {
        let text: String = part.iter().map(|l| format!("{l}\n")).collect();
        let data = gzip(text.as_bytes());
        let key = format!("{folder}/data/{name}.{extension}");
        std::fs::write(bucket.join(&key), &data)?;
        let md5 = Md5::digest(&data);
        listing +=
            &(json!({"itemCount": part.len(), "md5Checksum": base64::engine::general_purpose::STANDARD.encode(md5),
            "etag": format!("{}-1", hex(&md5)), "dataFileS3Key": key})
            .to_string()
                + "\n");
    }
    std::fs::write(dir.join("manifest-files.json"), &listing)?;
    std::fs::write(dir.join("manifest-files.checksum"), hex(&Md5::digest(listing.as_bytes())))?;
    let summary = json!({
        "version": "2020-06-30",
        "exportArn": format!("arn:aws:dynamodb:us-east-1:123456789012:table/ProductCatalog/export/{id}"),
        "startTime": "2020-11-04T07:28:34.028Z", "endTime": "2020-11-04T07:33:43.897Z",
        "tableArn": "arn:aws:dynamodb:us-east-1:123456789012:table/ProductCatalog",
        "tableId": "12345a12-abcd-123a-ab12-1234abc12345", "exportTime": "2020-11-04T07:28:34.028Z",
        "s3Bucket": "ddb-productcatalog-export", "s3Prefix": prefix, "s3SseAlgorithm": "AES256",
        "s3SseKmsKeyId": null, "manifestFilesS3Key": format!("{folder}/manifest-files.json"),
        "billedSizeBytes": 0, "itemCount": lines.len(), "outputFormat": format, "exportType": "FULL_EXPORT",
    })
    .to_string();
    std::fs::write(dir.join("manifest-summary.json"), &summary)?;
    std::fs::write(dir.join("manifest-summary.checksum"), hex(&Md5::digest(summary.as_bytes())))?;
    Ok(format!("{folder}/data/"))
}

/// Every item of `table` as DynamoDB JSON, in one order.
async fn all_items(client: &Client, table: &str) -> anyhow::Result<Vec<String>> {
    let items =
        client.scan_all(ScanRequest { table_name: table.into(), consistent_read: true, ..Default::default() }).await?;
    let mut items: Vec<String> = items.iter().map(|i| ::tern_client::json::item_to_json(i).to_string()).collect();
    items.sort();
    Ok(items)
}

/// Files as DynamoDB writes a full export (DynamoDB JSON and Ion, hand-written from the Developer
/// Guide's samples and layout) import into tables equal, item for item, to the same items put one by one.
#[tokio::test(flavor = "multi_thread")]
async fn files_in_dynamodbs_export_layout_import_as_written() -> anyhow::Result<()> {
    let region = Region::start(1, FAST).await?;
    let client = region.client().await?;
    let bucket = region.dir().join("buckets/ddb-productcatalog-export");
    let (json_items, ion_lines) = product_catalog();
    let catalog = |name: &str| TableCreationParameters {
        table_name: name.into(),
        attribute_definitions: vec![AttributeDefinition { attribute_name: "Id".into(), attribute_type: "N".into() }],
        key_schema: vec![KeySchemaElement { attribute_name: "Id".into(), key_type: "HASH".into() }],
        billing_mode: "PAY_PER_REQUEST".into(),
    };
    client
        .create_table(CreateTableRequest {
            table_name: "put-one-by-one".into(),
            attribute_definitions: catalog("").attribute_definitions,
            key_schema: catalog("").key_schema,
            billing_mode: "PAY_PER_REQUEST".into(),
            ..Default::default()
        })
        .await?;
    for item in &json_items {
        put(&client, "put-one-by-one", item).await?;
    }
    let expected = all_items(&client, "put-one-by-one").await?;
    assert_eq!(expected.len(), 7);

    let json_lines: Vec<String> = json_items.iter().map(|i| format!(r#"{{"Item":{i}}}"#)).collect();
    let ion_lines: Vec<String> = ion_lines.iter().map(|l| l.to_string()).collect();
    for (format, lines, table) in [("DYNAMODB_JSON", json_lines, "from-json"), ("ION", ion_lines, "from-ion")] {
        let data = write_dynamodb_export(&bucket, &format!("2020-Nov-{format}"), format, &lines)?;
        let started = client
            .import_table(ImportTableRequest {
                s3_bucket_source: Some(S3BucketSource {
                    s3_bucket: "ddb-productcatalog-export".into(),
                    s3_key_prefix: data,
                    ..Default::default()
                }),
                input_format: format.into(),
                input_compression_type: "GZIP".into(),
                table_creation_parameters: Some(catalog(table)),
                ..Default::default()
            })
            .await?
            .import_table_description
            .unwrap();
        let imported = client.wait_for_import(&started.import_arn, EXPORT_TIMEOUT, |_| {}).await?;
        assert_eq!(imported.import_status, "COMPLETED", "{format}: {imported:?}");
        assert_eq!((imported.processed_item_count, imported.imported_item_count, imported.error_count), (7, 7, 0));
        assert_eq!(all_items(&client, table).await?, expected, "{format}");
    }
    Ok(())
}

/// Exports to and imports from an S3-protocol server (moto's), reached with the usual `AWS_*`
/// variables: the export's files are in the bucket in DynamoDB's layout, the import of its data gives
/// the same table, and a bucket that does not exist fails either job with S3NoSuchBucket.
#[tokio::test(flavor = "multi_thread")]
async fn exports_and_imports_through_an_s3_protocol_server() -> anyhow::Result<()> {
    let s3 = tern_tests::s3::MotoServer::start()?;
    s3.create_bucket("analytics")?;
    let env = s3.client_env();
    let mut args = FAST.to_vec();
    args.extend(["--buckets", "s3://"]);
    let region = Region::start_with_env(3, &args, move |_| env.clone()).await?;
    let client = region.client().await?;
    create_table(&client, "source", "pk:S", None).await?;
    for item in every_type_items() {
        put(&client, "source", &item).await?;
    }
    for n in 0..200 {
        put(&client, "source", &format!(r#"{{"pk":{{"S":"item-{n:03}"}},"n":{{"N":"{n}"}}}}"#)).await?;
    }
    enable_pitr(&client, "source").await?;
    let expected = scan(&client, "source").await?;
    let arn = table_arn(&describe(&client, "source").await?);
    let request = ExportTableToPointInTimeRequest {
        table_arn: arn.clone(),
        s3_bucket: "analytics".into(),
        s3_prefix: "tern/daily".into(),
        ..Default::default()
    };
    let exported = export(&client, request).await?;
    assert_eq!(exported.item_count, expected.len() as i64);
    let folder = exported.export_manifest.trim_end_matches("manifest-summary.json").to_string();
    assert!(folder.starts_with("tern/daily/AWSDynamoDB/"), "{folder}");
    let keys = s3.list_keys("analytics")?;
    for name in [
        "_started",
        "manifest-summary.json",
        "manifest-summary.checksum",
        "manifest-files.json",
        "manifest-files.checksum",
    ] {
        assert!(keys.contains(&format!("{folder}{name}")), "{name} in {keys:?}");
    }
    assert!(keys.iter().any(|k| k.starts_with(&format!("{folder}data/")) && k.ends_with(".json.gz")), "{keys:?}");

    let imported =
        import(&client, "analytics", &format!("{folder}data/"), "copy", "DYNAMODB_JSON", "GZIP", None).await?;
    assert_eq!(imported.import_status, "COMPLETED", "{imported:?}");
    assert_eq!(imported.imported_item_count, expected.len() as i64);
    assert_eq!(scan(&client, "copy").await?, expected);

    let request =
        ExportTableToPointInTimeRequest { table_arn: arn, s3_bucket: "no-such-bucket".into(), ..Default::default() };
    let started = client.export_table_to_point_in_time(request).await?.export_description.unwrap();
    let failed = client.wait_for_export(&started.export_arn, EXPORT_TIMEOUT, |_| {}).await?;
    assert_eq!(
        (failed.export_status.as_str(), failed.failure_code.as_str()),
        ("FAILED", "S3NoSuchBucket"),
        "{failed:?}"
    );
    let failed = import(&client, "no-such-bucket", "data/", "nothing", "DYNAMODB_JSON", "GZIP", None).await?;
    assert_eq!(
        (failed.import_status.as_str(), failed.failure_code.as_str()),
        ("FAILED", "S3NoSuchBucket"),
        "{failed:?}"
    );
    assert_eq!(
        error(client.describe_table(DescribeTableRequest { table_name: "nothing".into() }).await).0,
        "ResourceNotFoundException"
    );
    let env_text = format!("{exported:?}{imported:?}");
    assert!(!env_text.contains("testing"), "no credentials in the descriptions");
    Ok(())
}
