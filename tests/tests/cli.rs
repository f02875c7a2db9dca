//! The `tern` command line against a real region: the item verbs with the AWS CLI's flags and JSON.

use std::process::Command;

use serde_json::{json, Value as Json};
use tern_tests::{tern_binary, Region};

/// Runs `tern` against the region; returns its exit status, its JSON output (null when none) and stderr.
fn tern(region: &Region, args: &[&str]) -> (i32, Json, String) {
    let output = Command::new(tern_binary())
        .args(args)
        .env("TERN_ENDPOINT", region.endpoints().join(","))
        .output()
        .expect("running tern");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let json = if stdout.trim().is_empty() { Json::Null } else { serde_json::from_str(&stdout).expect("JSON output") };
    (output.status.code().unwrap_or(-1), json, String::from_utf8_lossy(&output.stderr).into_owned())
}

fn ok(region: &Region, args: &[&str]) -> Json {
    let (status, json, stderr) = tern(region, args);
    assert_eq!(status, 0, "tern {args:?}: {stderr}");
    json
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn item_verbs_through_the_cli() -> anyhow::Result<()> {
    let region = Region::start(1, &[]).await?;
    ok(
        &region,
        &[
            "create-table",
            "--table-name",
            "orders",
            "--attribute-definitions",
            "AttributeName=c,AttributeType=S",
            "AttributeName=o,AttributeType=N",
            "--key-schema",
            "AttributeName=c,KeyType=HASH",
            "AttributeName=o,KeyType=RANGE",
        ],
    );

    ok(
        &region,
        &[
            "batch-write-item",
            "--request-items",
            r#"{"orders":[{"PutRequest":{"Item":{"c":{"S":"c1"},"o":{"N":"1"},"amount":{"N":"10"}}}},{"PutRequest":{"Item":{"c":{"S":"c1"},"o":{"N":"2"},"amount":{"N":"25"}}}}]}"#,
        ],
    );
    let updated = ok(
        &region,
        &[
            "update-item",
            "--table-name",
            "orders",
            "--key",
            r#"{"c":{"S":"c1"},"o":{"N":"1"}}"#,
            "--update-expression",
            "SET amount = amount + :t, #s = :s",
            "--expression-attribute-names",
            r##"{"#s":"status"}"##,
            "--expression-attribute-values",
            r#"{":t":{"N":"5"},":s":{"S":"paid"}}"#,
            "--return-values",
            "UPDATED_NEW",
        ],
    );
    assert_eq!(updated["Attributes"], json!({"amount": {"N": "15"}, "status": {"S": "paid"}}));

    let (status, _, stderr) = tern(
        &region,
        &[
            "put-item",
            "--table-name",
            "orders",
            "--item",
            r#"{"c":{"S":"c1"},"o":{"N":"1"}}"#,
            "--condition-expression",
            "attribute_not_exists(c)",
        ],
    );
    assert_eq!(status, 254);
    assert_eq!(stderr.trim(), "An error occurred (ConditionalCheckFailedException) when calling the PutItem operation: The conditional request failed");

    let query = ok(
        &region,
        &[
            "query",
            "--table-name",
            "orders",
            "--key-condition-expression",
            "c = :c",
            "--filter-expression",
            "amount > :min",
            "--expression-attribute-values",
            r#"{":c":{"S":"c1"},":min":{"N":"20"}}"#,
            "--projection-expression",
            "o",
            "--consistent-read",
        ],
    );
    assert_eq!(query, json!({"Items": [{"o": {"N": "2"}}], "Count": 1, "ScannedCount": 2}));
    let counted = ok(&region, &["scan", "--table-name", "orders", "--select", "COUNT", "--consistent-read"]);
    assert_eq!((counted["Count"].clone(), counted["Items"].clone()), (json!(2), json!([])));

    ok(
        &region,
        &[
            "transact-write-items",
            "--client-request-token",
            "t1",
            "--transact-items",
            r##"[{"Update":{"TableName":"orders","Key":{"c":{"S":"c1"},"o":{"N":"2"}},"UpdateExpression":"SET amount = :z","ExpressionAttributeValues":{":z":{"N":"0"}}}},{"ConditionCheck":{"TableName":"orders","Key":{"c":{"S":"c1"},"o":{"N":"1"}},"ConditionExpression":"#s = :p","ExpressionAttributeNames":{"#s":"status"},"ExpressionAttributeValues":{":p":{"S":"paid"}}}}]"##,
        ],
    );
    let got = ok(
        &region,
        &[
            "transact-get-items",
            "--transact-items",
            r#"[{"Get":{"TableName":"orders","Key":{"c":{"S":"c1"},"o":{"N":"2"}},"ProjectionExpression":"amount"}},{"Get":{"TableName":"orders","Key":{"c":{"S":"c9"},"o":{"N":"9"}}}}]"#,
        ],
    );
    assert_eq!(got, json!({"Responses": [{"Item": {"amount": {"N": "0"}}}, {}]}));
    let batch = ok(
        &region,
        &[
            "batch-get-item",
            "--request-items",
            r##"{"orders":{"Keys":[{"c":{"S":"c1"},"o":{"N":"1"}}],"ProjectionExpression":"#s","ExpressionAttributeNames":{"#s":"status"},"ConsistentRead":true}}"##,
        ],
    );
    assert_eq!(batch, json!({"Responses": {"orders": [{"status": {"S": "paid"}}]}, "UnprocessedKeys": {}}));
    let item = ok(
        &region,
        &[
            "get-item",
            "--table-name",
            "orders",
            "--key",
            r#"{"c":{"S":"c1"},"o":{"N":"1"}}"#,
            "--projection-expression",
            "amount",
            "--consistent-read",
        ],
    );
    assert_eq!(item, json!({"Item": {"amount": {"N": "15"}}}));

    // The table's stream, followed with `streams tail`: one JSON record per line.
    ok(
        &region,
        &[
            "update-table",
            "--table-name",
            "orders",
            "--stream-specification",
            "StreamEnabled=true,StreamViewType=NEW_AND_OLD_IMAGES",
        ],
    );
    ok(&region, &["put-item", "--table-name", "orders", "--item", r#"{"c":{"S":"c2"},"o":{"N":"1"}}"#]);
    ok(
        &region,
        &[
            "update-item",
            "--table-name",
            "orders",
            "--key",
            r#"{"c":{"S":"c2"},"o":{"N":"1"}}"#,
            "--update-expression",
            "SET amount = :a",
            "--expression-attribute-values",
            r#"{":a":{"N":"3"}}"#,
        ],
    );
    let deleted = ok(&region, &["delete-item", "--table-name", "orders", "--key", r#"{"c":{"S":"c2"},"o":{"N":"1"}}"#]);
    assert_eq!(deleted["ItemVersion"]["OriginRegion"], "e2e", "a delete prints its version: {deleted}");
    assert!(deleted["ItemVersion"]["WriteTimestampMicros"].as_str().is_some_and(|t| t.parse::<u64>().is_ok()));
    let output = Command::new(tern_binary())
        .args(["streams", "tail", "--table-name", "orders", "--from", "trim-horizon"])
        .env("TERN_ENDPOINT", region.endpoints().join(","))
        .output()?;
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let records: Vec<Json> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON record per line"))
        .collect();
    let events: Vec<&str> = records.iter().map(|r| r["eventName"].as_str().unwrap()).collect();
    assert_eq!(events, ["INSERT", "MODIFY", "REMOVE"]);
    assert_eq!(records[1]["dynamodb"]["NewImage"], json!({"c": {"S": "c2"}, "o": {"N": "1"}, "amount": {"N": "3"}}));
    assert_eq!(records[2]["dynamodb"]["OldImage"]["amount"], json!({"N": "3"}));
    Ok(())
}

/// The README's worked example: PITR on, an item deleted by mistake, the table restored as it was just
/// before into a new table; and an on-demand backup made, listed, restored and deleted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_and_restore_verbs_through_the_cli() -> anyhow::Result<()> {
    let region = Region::start(1, &["--pitr-archive-interval-ms", "200"]).await?;
    ok(&region, &["create-table", "--table-name", "orders", "--partition-key", "pk:S"]);
    for pk in ["a", "b", "c"] {
        ok(&region, &["put-item", "--table-name", "orders", "--item", &format!(r#"{{"pk":{{"S":"{pk}"}}}}"#)]);
    }
    let enabled = ok(
        &region,
        &[
            "update-continuous-backups",
            "--table-name",
            "orders",
            "--point-in-time-recovery-specification",
            "PointInTimeRecoveryEnabled=true,RecoveryPeriodInDays=7",
        ],
    );
    let recovery = &enabled["ContinuousBackupsDescription"]["PointInTimeRecoveryDescription"];
    assert_eq!(
        (recovery["PointInTimeRecoveryStatus"].as_str(), recovery["RecoveryPeriodInDays"].as_u64()),
        (Some("ENABLED"), Some(7))
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let described = ok(&region, &["describe-continuous-backups", "--table-name", "orders"]);
        let recovery = &described["ContinuousBackupsDescription"]["PointInTimeRecoveryDescription"];
        if recovery["EarliestRestorableDateTime"].is_string() {
            assert!(
                recovery["LatestRestorableDateTime"].as_str().is_some_and(|t| t.ends_with("+00:00")),
                "{described}"
            );
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no restore point: {described}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let before_mistake = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs_f64();
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    ok(&region, &["delete-item", "--table-name", "orders", "--key", r#"{"pk":{"S":"b"}}"#]);
    let restored = ok(
        &region,
        &[
            "restore-table-to-point-in-time",
            "--source-table-name",
            "orders",
            "--target-table-name",
            "orders-before",
            "--restore-date-time",
            &format!("{before_mistake:.6}"),
            "--wait",
        ],
    );
    let table = &restored["TableDescription"];
    assert_eq!(table["TableStatus"], "ACTIVE", "{restored}");
    assert_eq!(table["RestoreSummary"]["RestoreInProgress"], false, "{restored}");
    assert!(
        table["RestoreSummary"]["SourceTableArn"].as_str().is_some_and(|a| a.ends_with(":table/orders")),
        "{restored}"
    );
    let scanned = ok(&region, &["scan", "--table-name", "orders-before"]);
    assert_eq!(scanned["Count"], 3, "the deleted item is back in the restored table: {scanned}");

    let (status, _, stderr) = tern(
        &region,
        &[
            "restore-table-to-point-in-time",
            "--source-table-name",
            "orders",
            "--target-table-name",
            "orders-never",
            "--restore-date-time",
            "2001-01-01T00:00:00Z",
        ],
    );
    assert!(status != 0 && stderr.contains("InvalidRestoreTimeException"), "{stderr}");
    let (status, _, stderr) = tern(
        &region,
        &[
            "restore-table-to-point-in-time",
            "--source-table-name",
            "orders",
            "--target-table-name",
            "x",
            "--restore-date-time",
            "yesterday",
        ],
    );
    assert!(status != 0 && stderr.contains("yesterday"), "{stderr}");

    let created = ok(&region, &["create-backup", "--table-name", "orders", "--backup-name", "nightly", "--wait"]);
    assert_eq!(created["BackupDetails"]["BackupStatus"], "AVAILABLE", "{created}");
    let arn = created["BackupDetails"]["BackupArn"].as_str().unwrap().to_string();
    let listed = ok(&region, &["list-backups", "--table-name", "orders"]);
    assert_eq!(listed["BackupSummaries"][0]["BackupArn"], json!(arn), "{listed}");
    let described = ok(&region, &["describe-backup", "--backup-arn", &arn]);
    assert_eq!(described["BackupDescription"]["SourceTableDetails"]["ItemCount"], 2, "{described}");
    let copied = ok(
        &region,
        &["restore-table-from-backup", "--backup-arn", &arn, "--target-table-name", "orders-copy", "--wait"],
    );
    assert_eq!(copied["TableDescription"]["TableStatus"], "ACTIVE", "{copied}");
    assert_eq!(ok(&region, &["scan", "--table-name", "orders-copy"])["Count"], 2);
    let deleted = ok(&region, &["delete-backup", "--backup-arn", &arn]);
    assert_eq!(deleted["BackupDescription"]["BackupDetails"]["BackupStatus"], "DELETED", "{deleted}");
    let (status, _, stderr) = tern(&region, &["delete-backup", "--backup-arn", &arn]);
    assert!(status != 0 && stderr.contains("BackupNotFoundException"), "{stderr}");
    Ok(())
}

/// README's export example: a table exported to a bucket directory with `--wait`, and imported back
/// as a new table with `import-table --wait`, item for item.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_and_import_verbs_through_the_cli() -> anyhow::Result<()> {
    let region = Region::start(1, &["--pitr-archive-interval-ms", "200"]).await?;
    let orders = ["create-table", "--table-name", "orders", "--partition-key", "customer:S", "--sort-key", "order:N"];
    ok(&region, &orders);
    for (customer, order) in [("c1", 1), ("c1", 2), ("c2", 7)] {
        let item = format!(r#"{{"customer":{{"S":"{customer}"}},"order":{{"N":"{order}"}},"total":{{"N":"12.50"}}}}"#);
        ok(&region, &["put-item", "--table-name", "orders", "--item", &item]);
    }
    let pitr = "PointInTimeRecoveryEnabled=true";
    ok(
        &region,
        &["update-continuous-backups", "--table-name", "orders", "--point-in-time-recovery-specification", pitr],
    );
    let arn =
        ok(&region, &["describe-table", "--table-name", "orders"])["Table"]["TableArn"].as_str().unwrap().to_string();
    // The window opens once the first base is uploaded.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let exported = loop {
        let args = [
            "export-table-to-point-in-time",
            "--table-arn",
            &arn,
            "--s3-bucket",
            "exports",
            "--s3-prefix",
            "nightly",
            "--wait",
        ];
        let (status, json, stderr) = tern(&region, &args);
        if status == 0 {
            break json;
        }
        assert!(stderr.contains("no restore point yet") && std::time::Instant::now() < deadline, "{stderr}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    let export = &exported["ExportDescription"];
    assert_eq!(
        (export["ExportStatus"].as_str(), export["ItemCount"].as_u64()),
        (Some("COMPLETED"), Some(3)),
        "{exported}"
    );
    let manifest = export["ExportManifest"].as_str().unwrap();
    let folder = region.dir().join("buckets/exports").join(manifest.trim_end_matches("manifest-summary.json"));
    for file in [
        "_started",
        "manifest-summary.json",
        "manifest-files.json",
        "manifest-summary.checksum",
        "manifest-files.checksum",
    ] {
        assert!(folder.join(file).is_file(), "{file} in {}", folder.display());
    }
    let data = manifest.replace("manifest-summary.json", "data/");
    let parameters = r#"{"TableName":"orders-copy","AttributeDefinitions":[{"AttributeName":"customer","AttributeType":"S"},{"AttributeName":"order","AttributeType":"N"}],"KeySchema":[{"AttributeName":"customer","KeyType":"HASH"},{"AttributeName":"order","KeyType":"RANGE"}],"BillingMode":"PAY_PER_REQUEST"}"#;
    let source = format!("S3Bucket=exports,S3KeyPrefix={data}");
    let imported = ok(
        &region,
        &[
            "import-table",
            "--input-format",
            "DYNAMODB_JSON",
            "--input-compression-type",
            "GZIP",
            "--s3-bucket-source",
            &source,
            "--table-creation-parameters",
            parameters,
            "--wait",
        ],
    );
    let import = &imported["ImportTableDescription"];
    assert_eq!(
        (import["ImportStatus"].as_str(), import["ImportedItemCount"].as_u64()),
        (Some("COMPLETED"), Some(3)),
        "{imported}"
    );
    let original = ok(&region, &["scan", "--table-name", "orders"]);
    let copy = ok(&region, &["scan", "--table-name", "orders-copy"]);
    assert_eq!(copy["Items"], original["Items"], "the copy holds every item as the original does");
    let listed = ok(&region, &["list-exports", "--table-arn", &arn]);
    assert_eq!(listed["ExportSummaries"][0]["ExportArn"], export["ExportArn"], "{listed}");
    let described = ok(&region, &["describe-import", "--import-arn", import["ImportArn"].as_str().unwrap()]);
    assert_eq!(described["ImportTableDescription"]["ImportStatus"], "COMPLETED", "{described}");
    Ok(())
}
