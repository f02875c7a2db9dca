//! Item TTL with real processes: expired items deleted within seconds with the service identity in the
//! stream, extended items kept, a leader change during a sweep, and hiding expired items from reads.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ::tern_client::v1::*;
use ::tern_client::{Client, StartingPosition};
use futures::StreamExt;
use tern_tests::dynamo::{error, json, wire};
use tern_tests::Region;

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

async fn table_with_ttl(client: &Client, name: &str, hide: bool) -> anyhow::Result<()> {
    client
        .create_table(CreateTableRequest {
            table_name: name.into(),
            attribute_definitions: vec![AttributeDefinition {
                attribute_name: "pk".into(),
                attribute_type: "S".into(),
            }],
            key_schema: vec![KeySchemaElement { attribute_name: "pk".into(), key_type: "HASH".into() }],
            stream_specification: Some(StreamSpecification {
                stream_enabled: true,
                stream_view_type: "NEW_AND_OLD_IMAGES".into(),
                retention_days: 1,
            }),
            ..Default::default()
        })
        .await?;
    let spec = TimeToLiveSpecification { enabled: true, attribute_name: "exp".into(), hide_expired_items: hide };
    client
        .update_time_to_live(UpdateTimeToLiveRequest {
            table_name: name.into(),
            time_to_live_specification: Some(spec),
        })
        .await?;
    Ok(())
}

async fn put(client: &Client, table: &str, key: &str, exp: &str) -> anyhow::Result<()> {
    client
        .put_item_request(PutItemRequest {
            table_name: table.into(),
            item: wire(&format!(r#"{{"pk":{{"S":"{key}"}},"exp":{exp}}}"#)),
            ..Default::default()
        })
        .await?;
    Ok(())
}

async fn present(client: &Client, table: &str) -> anyhow::Result<Vec<String>> {
    let items =
        client.scan_all(ScanRequest { table_name: table.into(), consistent_read: true, ..Default::default() }).await?;
    let mut keys: Vec<String> = items
        .into_iter()
        .map(|i| match &i["pk"] {
            ::tern_client::AttributeValue::S(s) => s.clone(),
            other => format!("{other:?}"),
        })
        .collect();
    keys.sort();
    Ok(keys)
}

/// The REMOVE records of a table's stream, by key, with their identities.
async fn removals(region: &Region, client: &Client, table: &str) -> anyhow::Result<Vec<(String, Option<Identity>)>> {
    region.settle().await?;
    let (arn, shard) = client.table_stream(table).await?;
    let records: Vec<_> =
        client.consume(arn, shard, StartingPosition::TrimHorizon, false, Duration::from_millis(20)).collect().await;
    let mut out = Vec::new();
    for record in records {
        let record = record?;
        if record.event_name == "REMOVE" {
            let key = json(&record.dynamodb.as_ref().unwrap().keys.as_ref().unwrap().attributes)["pk"]["S"]
                .as_str()
                .unwrap()
                .to_string();
            out.push((key, record.user_identity));
        }
    }
    Ok(out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_items_are_deleted_within_seconds_by_the_service() -> anyhow::Result<()> {
    let region = Region::start(3, &[]).await?;
    let client = region.client().await?;
    table_with_ttl(&client, "sessions", false).await?;
    let t = now();
    put(&client, "sessions", "soon", &format!(r#"{{"N":"{}"}}"#, t + 2)).await?;
    put(&client, "sessions", "extended", &format!(r#"{{"N":"{}"}}"#, t + 2)).await?;
    put(&client, "sessions", "past", &format!(r#"{{"N":"{}"}}"#, t - 10)).await?;
    put(&client, "sessions", "later", &format!(r#"{{"N":"{}"}}"#, t + 3600)).await?;
    put(&client, "sessions", "text", &format!(r#"{{"S":"{}"}}"#, t - 10)).await?;
    put(&client, "sessions", "ancient", &format!(r#"{{"N":"{}"}}"#, t - 6 * 365 * 86_400)).await?;
    // An update that pushes the expiry back wins over the sweeper.
    client
        .update_item(UpdateItemRequest {
            table_name: "sessions".into(),
            key: wire(r#"{"pk":{"S":"extended"}}"#),
            update_expression: "SET exp = :e".into(),
            expression_attribute_values: wire(&format!(r#"{{":e":{{"N":"{}"}}}}"#, t + 3600)),
            ..Default::default()
        })
        .await?;

    let started = Instant::now();
    let expected = vec!["ancient".to_string(), "extended".into(), "later".into(), "text".into()];
    while present(&client, "sessions").await? != expected {
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "expired items were not deleted in time: {:?}",
            present(&client, "sessions").await?
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let service = Some(Identity { r#type: "Service".into(), principal_id: "ttl.tern".into() });
    let mut removed = removals(&region, &client, "sessions").await?;
    removed.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(removed, vec![("past".to_string(), service.clone()), ("soon".to_string(), service)]);

    let described = client
        .describe_time_to_live(DescribeTimeToLiveRequest { table_name: "sessions".into() })
        .await?
        .time_to_live_description
        .unwrap();
    assert_eq!((described.time_to_live_status.as_str(), described.attribute_name.as_str()), ("ENABLED", "exp"));
    let other = TimeToLiveSpecification { enabled: true, attribute_name: "expires".into(), hide_expired_items: false };
    assert_eq!(
        error(
            client
                .update_time_to_live(UpdateTimeToLiveRequest {
                    table_name: "sessions".into(),
                    time_to_live_specification: Some(other)
                })
                .await
        )
        .0,
        "ValidationException"
    );
    let off = TimeToLiveSpecification { enabled: false, attribute_name: "exp".into(), hide_expired_items: false };
    client
        .update_time_to_live(UpdateTimeToLiveRequest {
            table_name: "sessions".into(),
            time_to_live_specification: Some(off.clone()),
        })
        .await?;
    assert_eq!(
        error(
            client
                .update_time_to_live(UpdateTimeToLiveRequest {
                    table_name: "sessions".into(),
                    time_to_live_specification: Some(off)
                })
                .await
        )
        .1,
        "TimeToLive is already disabled"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_leader_change_during_a_sweep_neither_skips_nor_repeats() -> anyhow::Result<()> {
    let mut region = Region::start(3, &[]).await?;
    let client = region.client().await?;
    table_with_ttl(&client, "cache", false).await?;
    let expiry = now() + 3;
    let mut expected = Vec::new();
    for batch in 0..80 {
        let requests = (0..25)
            .map(|i| {
                let key = format!("k{:04}", batch * 25 + i);
                expected.push(key.clone());
                WriteRequest {
                    request: Some(write_request::Request::PutRequest(PutRequest {
                        item: wire(&format!(r#"{{"pk":{{"S":"{key}"}},"exp":{{"N":"{expiry}"}}}}"#)),
                    })),
                }
            })
            .collect();
        client
            .batch_write_item(BatchWriteItemRequest {
                request_items: [("cache".to_string(), WriteRequestList { requests })].into(),
            })
            .await?;
    }
    while now() <= expiry {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let leader = region.wait_for_leader(Duration::from_secs(5)).await?;
    region.kill(leader)?;
    region.wait_for_leader(Duration::from_secs(20)).await?;
    let started = Instant::now();
    while !present(&client, "cache").await?.is_empty() {
        assert!(started.elapsed() < Duration::from_secs(30), "items remain after the leader change");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let removed = removals(&region, &client, "cache").await?;
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for (key, identity) in removed {
        assert_eq!(identity.map(|i| i.principal_id), Some("ttl.tern".to_string()));
        *counts.entry(key).or_default() += 1;
    }
    assert_eq!(counts.len(), expected.len(), "every expired item deleted");
    assert!(counts.values().all(|n| *n == 1), "no item deleted twice");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_items_stay_readable_unless_the_table_hides_them() -> anyhow::Result<()> {
    // A sweep every ten minutes: expired items wait to be deleted for the whole test.
    let region = Region::start(1, &["--ttl-sweep-interval-ms", "600000"]).await?;
    let client = region.client().await?;
    table_with_ttl(&client, "shown", false).await?;
    table_with_ttl(&client, "hidden", true).await?;
    let past = format!(r#"{{"N":"{}"}}"#, now() - 5);
    let future = format!(r#"{{"N":"{}"}}"#, now() + 3600);
    for table in ["shown", "hidden"] {
        put(&client, table, "expired", &past).await?;
        put(&client, table, "live", &future).await?;
    }
    assert_eq!(
        present(&client, "shown").await?,
        ["expired", "live"],
        "DynamoDB keeps expired items readable until deleted"
    );
    assert_eq!(present(&client, "hidden").await?, ["live"]);
    let get = |table: &str| GetItemRequest {
        table_name: table.into(),
        key: wire(r#"{"pk":{"S":"expired"}}"#),
        consistent_read: true,
        ..Default::default()
    };
    assert!(client.get_item_request(get("shown")).await?.item.is_some());
    assert!(client.get_item_request(get("hidden")).await?.item.is_none());
    Ok(())
}
