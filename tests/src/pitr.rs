//! Point-in-time recovery in end-to-end tests: turning it on and waiting for its window, reading a
//! table whole, and finding the files a backup store or bucket holds.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ::tern_client::v1::*;
use ::tern_client::Client;

use crate::dynamo::wire;
use serde_json::Value as Json;

/// Items by partition key (a string attribute `pk`), as DynamoDB JSON.
pub type State = BTreeMap<String, Json>;

/// Every item of `table` (a strongly consistent scan), by its `pk`.
pub async fn scan(client: &Client, table: &str) -> anyhow::Result<State> {
    let items =
        client.scan_all(ScanRequest { table_name: table.into(), consistent_read: true, ..Default::default() }).await?;
    Ok(items
        .iter()
        .map(|item| {
            let item = ::tern_client::json::item_to_json(item);
            (item["pk"]["S"].as_str().expect("a string key").to_string(), item)
        })
        .collect())
}

/// Turns point-in-time recovery on (35 days) and waits until its window is open (its first base uploaded).
pub async fn enable_pitr(client: &Client, table: &str) -> anyhow::Result<PointInTimeRecoveryDescription> {
    let spec = PointInTimeRecoverySpecification { point_in_time_recovery_enabled: true, recovery_period_in_days: 0 };
    let updated = client
        .update_continuous_backups(UpdateContinuousBackupsRequest {
            table_name: table.into(),
            point_in_time_recovery_specification: Some(spec),
        })
        .await?;
    let status = updated.continuous_backups_description.unwrap().point_in_time_recovery_description.unwrap();
    assert_eq!((status.point_in_time_recovery_status.as_str(), status.recovery_period_in_days), ("ENABLED", 35));
    // The first base is uploaded within a moment: from then on the window is open.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let pitr = describe_pitr(client, table).await?;
        if pitr.earliest_restorable_date_time > 0.0 {
            return Ok(pitr);
        }
        anyhow::ensure!(Instant::now() < deadline, "no restore point 30 s after PITR was enabled: {pitr:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The table's DescribeContinuousBackups answer (continuous backups are always on).
pub async fn describe_pitr(client: &Client, table: &str) -> anyhow::Result<PointInTimeRecoveryDescription> {
    let described =
        client.describe_continuous_backups(DescribeContinuousBackupsRequest { table_name: table.into() }).await?;
    let description = described.continuous_backups_description.unwrap();
    assert_eq!(description.continuous_backups_status, "ENABLED");
    Ok(description.point_in_time_recovery_description.unwrap())
}

/// The objects under `dir` whose names end with `suffix`.
pub fn files(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.to_string_lossy().ends_with(suffix) {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

/// Writes `count` items of about 130 bytes (`item-000000` ...) with BatchWriteItem; returns them.
pub async fn load(client: &Client, table: &str, count: u64) -> anyhow::Result<State> {
    let mut expected = State::new();
    for chunk in (0..count).collect::<Vec<_>>().chunks(25) {
        let mut requests = Vec::new();
        for n in chunk {
            let text =
                format!(r#"{{"pk":{{"S":"item-{n:06}"}},"n":{{"N":"{n}"}},"body":{{"S":"{}"}}}}"#, "b".repeat(100));
            expected.insert(format!("item-{n:06}"), serde_json::from_str(&text)?);
            requests.push(WriteRequest {
                request: Some(write_request::Request::PutRequest(PutRequest { item: wire(&text) })),
            });
        }
        let mut request_items = BTreeMap::new();
        request_items.insert(table.to_string(), WriteRequestList { requests });
        let response = client.batch_write_item(BatchWriteItemRequest { request_items }).await?;
        anyhow::ensure!(response.unprocessed_items.is_empty(), "unprocessed items");
    }
    Ok(expected)
}
