//! Change streams with real processes: records equal the changes for every view type and on every node,
//! a consumer follows through a leader kill, trimming, iterator expiry, the reader limit, and a stream
//! turned off and on again.

use std::collections::BTreeMap;
use std::time::Duration;

use ::tern_client::v1::*;
use ::tern_client::{Client, StartingPosition};
use futures::StreamExt;
use tern_tests::dynamo::{create_table, error, expect, json, wire};
use tern_tests::Region;

fn stream_table(name: &str, view: &str, retention_days: u32) -> CreateTableRequest {
    CreateTableRequest {
        table_name: name.into(),
        attribute_definitions: vec![AttributeDefinition { attribute_name: "pk".into(), attribute_type: "S".into() }],
        key_schema: vec![KeySchemaElement { attribute_name: "pk".into(), key_type: "HASH".into() }],
        stream_specification: Some(StreamSpecification {
            stream_enabled: true,
            stream_view_type: view.into(),
            retention_days,
        }),
        ..Default::default()
    }
}

/// A GetShardIterator request of a user's reader (not a replicator's).
fn shard_iterator(arn: &str, shard: &str, kind: &str, sequence: &str) -> GetShardIteratorRequest {
    GetShardIteratorRequest {
        stream_arn: arn.into(),
        shard_id: shard.into(),
        shard_iterator_type: kind.into(),
        sequence_number: sequence.into(),
        replication: false,
    }
}

async fn all_records(client: &Client, table: &str) -> anyhow::Result<Vec<StreamRecord>> {
    let (arn, shard) = client.table_stream(table).await?;
    let records: Vec<_> =
        client.consume(arn, shard, StartingPosition::TrimHorizon, false, Duration::from_millis(50)).collect().await;
    Ok(records.into_iter().collect::<Result<_, _>>()?)
}

/// What a record says, compactly: event, keys, and the images present.
fn summary(record: &StreamRecord) -> (String, serde_json::Value, Option<serde_json::Value>, Option<serde_json::Value>) {
    let data = record.dynamodb.as_ref().expect("dynamodb part");
    (
        record.event_name.clone(),
        json(&data.keys.as_ref().expect("keys").attributes),
        data.new_image.as_ref().map(|i| json(&i.attributes)),
        data.old_image.as_ref().map(|i| json(&i.attributes)),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_equal_the_changes_for_every_view_type_on_every_node() -> anyhow::Result<()> {
    let region = Region::start(3, &[]).await?;
    let client = region.client().await?;
    let a1 = r#"{"pk":{"S":"a"},"v":{"N":"1"}}"#;
    let a2 = r#"{"pk":{"S":"a"},"v":{"N":"2"}}"#;
    for view in ["KEYS_ONLY", "NEW_IMAGE", "OLD_IMAGE", "NEW_AND_OLD_IMAGES"] {
        let table = format!("t_{}", view.to_lowercase());
        client.create_table(stream_table(&table, view, 0)).await?;
        let put = |item: &str| PutItemRequest { table_name: table.clone(), item: wire(item), ..Default::default() };
        client.put_item_request(put(a1)).await?; // INSERT
        client.put_item_request(put(a1)).await?; // changes nothing: no record
        let update = UpdateItemRequest {
            table_name: table.clone(),
            key: wire(r#"{"pk":{"S":"a"}}"#),
            update_expression: "SET v = :v".into(),
            expression_attribute_values: wire(r#"{":v":{"N":"2"}}"#),
            ..Default::default()
        };
        client.update_item(update.clone()).await?; // MODIFY
        client.update_item(update).await?; // no change
        let delete =
            DeleteItemRequest { table_name: table.clone(), key: wire(r#"{"pk":{"S":"a"}}"#), ..Default::default() };
        client.delete_item_request(delete.clone()).await?; // REMOVE
        client.delete_item_request(delete).await?; // nothing to delete
        let writes = vec![
            WriteRequest {
                request: Some(write_request::Request::PutRequest(PutRequest { item: wire(r#"{"pk":{"S":"b"}}"#) })),
            },
            WriteRequest {
                request: Some(write_request::Request::PutRequest(PutRequest { item: wire(r#"{"pk":{"S":"c"}}"#) })),
            },
        ];
        client
            .batch_write_item(BatchWriteItemRequest {
                request_items: [(table.clone(), WriteRequestList { requests: writes })].into(),
            })
            .await?;

        let keys = |k: &str| expect(&format!(r#"{{"pk":{{"S":"{k}"}}}}"#));
        let (new, old) =
            (matches!(view, "NEW_IMAGE" | "NEW_AND_OLD_IMAGES"), matches!(view, "OLD_IMAGE" | "NEW_AND_OLD_IMAGES"));
        let image = |shown: bool, text: &str| shown.then(|| expect(text));
        let expected = vec![
            ("INSERT".to_string(), keys("a"), image(new, a1), None),
            ("MODIFY".to_string(), keys("a"), image(new, a2), image(old, a1)),
            ("REMOVE".to_string(), keys("a"), None, image(old, a2)),
            ("INSERT".to_string(), keys("b"), image(new, r#"{"pk":{"S":"b"}}"#), None),
            ("INSERT".to_string(), keys("c"), image(new, r#"{"pk":{"S":"c"}}"#), None),
        ];
        let leader = region.wait_for_leader(Duration::from_secs(5)).await?;
        let applied = region.status(leader).await?.last_applied_index;
        let mut per_node = Vec::new();
        for id in [1, 2, 3] {
            region.wait_applied(id, applied, Duration::from_secs(10)).await?;
            let records = all_records(&region.node_client(id).await?, &table).await?;
            assert_eq!(records.iter().map(summary).collect::<Vec<_>>(), expected, "{view} on node {id}");
            let sequences: Vec<String> =
                records.iter().map(|r| r.dynamodb.as_ref().unwrap().sequence_number.clone()).collect();
            assert!(sequences.windows(2).all(|w| w[0] < w[1]), "sequence numbers rise: {sequences:?}");
            assert!(records.iter().all(|r| r.user_identity.is_none() && r.event_source == "aws:dynamodb"));
            per_node.push(records);
        }
        assert!(per_node.windows(2).all(|w| w[0] == w[1]), "every node serves the same records");
    }

    // Subscribe pushes records as they are applied.
    let (arn, _) = client.table_stream("t_keys_only").await?;
    let mut subscriber =
        ::tern_client::v1::streams_client::StreamsClient::connect(format!("http://{}", region.address(2))).await?;
    let mut pushed = subscriber
        .subscribe(SubscribeRequest { stream_arn: arn, shard_iterator_type: "LATEST".into(), ..Default::default() })
        .await?
        .into_inner();
    client
        .put_item_request(PutItemRequest {
            table_name: "t_keys_only".into(),
            item: wire(r#"{"pk":{"S":"live"}}"#),
            ..Default::default()
        })
        .await?;
    let record = tokio::time::timeout(Duration::from_secs(10), pushed.message()).await??.expect("a pushed record");
    assert_eq!(summary(&record), ("INSERT".to_string(), expect(r#"{"pk":{"S":"live"}}"#), None, None));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_consumer_sees_every_record_once_in_order_across_a_leader_kill() -> anyhow::Result<()> {
    let mut region = Region::start(3, &[]).await?;
    let client = region.client().await?;
    client.create_table(stream_table("orders", "NEW_IMAGE", 1)).await?;
    let (arn, shard) = client.table_stream("orders").await?;

    let consumer_client = region.client().await?;
    let consumer = tokio::spawn(async move {
        let records =
            consumer_client.consume(arn, shard, StartingPosition::TrimHorizon, true, Duration::from_millis(20));
        futures::pin_mut!(records);
        let mut seen = Vec::new();
        while let Ok(Some(record)) = tokio::time::timeout(Duration::from_secs(20), records.next()).await {
            let record = record.expect("the consumer resumes across failures");
            let data = record.dynamodb.unwrap();
            let key = match &json(&data.keys.unwrap().attributes)["pk"]["S"] {
                serde_json::Value::String(s) => s.clone(),
                other => panic!("unexpected key {other}"),
            };
            let done = key == "done";
            seen.push((data.sequence_number, key));
            if done {
                break;
            }
        }
        seen
    });

    let mut acknowledged = Vec::new();
    for i in 0..400 {
        if i == 150 {
            let leader = region.wait_for_leader(Duration::from_secs(5)).await?;
            region.kill(leader)?;
        }
        let key = format!("k{i:04}");
        if client
            .put_item_request(PutItemRequest {
                table_name: "orders".into(),
                item: wire(&format!(r#"{{"pk":{{"S":"{key}"}}}}"#)),
                ..Default::default()
            })
            .await
            .is_ok()
        {
            acknowledged.push(key);
        }
    }
    client
        .put_item_request(PutItemRequest {
            table_name: "orders".into(),
            item: wire(r#"{"pk":{"S":"done"}}"#),
            ..Default::default()
        })
        .await?;
    let seen = consumer.await?;
    let sequences: Vec<&String> = seen.iter().map(|(s, _)| s).collect();
    assert!(sequences.windows(2).all(|w| w[0] < w[1]), "in order, none repeated");
    let keys: BTreeMap<&String, usize> = seen.iter().fold(BTreeMap::new(), |mut m, (_, k)| {
        *m.entry(k).or_default() += 1;
        m
    });
    for key in &acknowledged {
        assert_eq!(keys.get(key), Some(&1), "acknowledged write {key} seen exactly once");
    }
    assert!(
        acknowledged.len() >= 390,
        "the writes went on through the leader change ({} acknowledged)",
        acknowledged.len()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trimming_expiry_reader_limit_and_a_stream_turned_off_and_on() -> anyhow::Result<()> {
    let region = Region::start(1, &["--stream-retention-secs", "2", "--stream-iterator-ttl-secs", "2"]).await?;
    let client = region.client().await?;
    client.create_table(stream_table("events", "KEYS_ONLY", 0)).await?;
    for i in 0..3 {
        client
            .put_item_request(PutItemRequest {
                table_name: "events".into(),
                item: wire(&format!(r#"{{"pk":{{"S":"{i}"}}}}"#)),
                ..Default::default()
            })
            .await?;
    }
    let (arn, shard) = client.table_stream("events").await?;
    let iterator = |kind: &str, sequence: &str| shard_iterator(&arn, &shard, kind, sequence);

    // Two readers at once are fine; a third is refused.
    let first = client.get_shard_iterator(iterator("TRIM_HORIZON", "")).await?.shard_iterator;
    let page = client.get_records(GetRecordsRequest { shard_iterator: first.clone(), ..Default::default() }).await?;
    let oldest = page.records[0].dynamodb.as_ref().unwrap().sequence_number.clone();
    assert_eq!(page.records.len(), 3);
    client.get_shard_iterator(iterator("LATEST", "")).await?;
    let (name, _) = error(client.get_shard_iterator(iterator("LATEST", "")).await);
    assert_eq!(name, "LimitExceededException");

    // After the retention the records are trimmed, and an old iterator has expired.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let (name, _) = error(client.get_records(GetRecordsRequest { shard_iterator: first, ..Default::default() }).await);
    assert_eq!(name, "ExpiredIteratorException");
    let (name, _) = error(client.get_shard_iterator(iterator("AT_SEQUENCE_NUMBER", &oldest)).await);
    assert_eq!(name, "TrimmedDataAccessException");
    let fresh = client.get_shard_iterator(iterator("TRIM_HORIZON", "")).await?.shard_iterator;
    assert!(client
        .get_records(GetRecordsRequest { shard_iterator: fresh, ..Default::default() })
        .await?
        .records
        .is_empty());

    // Turned off: the stream is closed and read to its end; turned on: a new stream with a new label.
    client
        .put_item_request(PutItemRequest {
            table_name: "events".into(),
            item: wire(r#"{"pk":{"S":"last"}}"#),
            ..Default::default()
        })
        .await?;
    let off = UpdateTableRequest {
        table_name: "events".into(),
        stream_specification: Some(StreamSpecification { stream_enabled: false, ..Default::default() }),
        ..Default::default()
    };
    client.update_table(off.clone()).await?;
    let described = client
        .describe_stream(DescribeStreamRequest { stream_arn: arn.clone(), ..Default::default() })
        .await?
        .stream_description
        .unwrap();
    assert_eq!(described.stream_status, "DISABLED");
    assert!(!described.shards[0].sequence_number_range.as_ref().unwrap().ending_sequence_number.is_empty());
    let closed = client.get_shard_iterator(iterator("TRIM_HORIZON", "")).await?.shard_iterator;
    let page = client.get_records(GetRecordsRequest { shard_iterator: closed, ..Default::default() }).await?;
    assert_eq!(page.records.len(), 1);
    assert!(page.next_shard_iterator.is_empty(), "a closed shard read to its end has no next iterator");
    assert_eq!(error(client.update_table(off).await).0, "ValidationException");

    let on = UpdateTableRequest {
        table_name: "events".into(),
        stream_specification: Some(StreamSpecification {
            stream_enabled: true,
            stream_view_type: "NEW_IMAGE".into(),
            retention_days: 0,
        }),
        ..Default::default()
    };
    let table = client.update_table(on.clone()).await?.table_description.unwrap();
    assert_ne!(table.latest_stream_arn, arn);
    assert_eq!(error(client.update_table(on).await).0, "ValidationException");
    let listed = client.list_streams(ListStreamsRequest { table_name: "events".into(), ..Default::default() }).await?;
    assert_eq!(listed.streams.len(), 2);
    let bad = CreateTableRequest {
        stream_specification: Some(StreamSpecification {
            stream_enabled: true,
            stream_view_type: "EVERYTHING".into(),
            retention_days: 0,
        }),
        ..stream_table("other", "", 0)
    };
    let (name, message) = error(client.create_table(bad).await);
    assert_eq!(name, "ValidationException");
    assert!(message.contains("streamViewType"), "{message}");
    Ok(())
}

/// Puts items `e0`, `e1`, ... of a range into the ledger table.
async fn put_entries(client: &Client, range: std::ops::Range<u32>) -> anyhow::Result<()> {
    for i in range {
        let item = wire(&format!(r#"{{"pk":{{"S":"e{i}"}}}}"#));
        client.put_item_request(PutItemRequest { table_name: "ledger".into(), item, ..Default::default() }).await?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn named_consumers_resume_from_their_saved_position() -> anyhow::Result<()> {
    let region = Region::start(3, &[]).await?;
    let client = region.client().await?;
    client.create_table(stream_table("ledger", "KEYS_ONLY", 7)).await?;
    put_entries(&client, 0..10).await?;
    region.settle().await?;
    let (arn, shard) = client.table_stream("ledger").await?;
    let key = |r: &StreamRecord| {
        json(&r.dynamodb.as_ref().unwrap().keys.as_ref().unwrap().attributes)["pk"]["S"].as_str().unwrap().to_string()
    };

    // A consumer reads to the end and stops; it saved its position before each new fetch, so a
    // restart (here on another node) resumes right after what it took.
    {
        let records =
            client.consume_as(arn.clone(), shard.clone(), "billing".into(), false, Duration::from_millis(20)).await?;
        futures::pin_mut!(records);
        let mut taken = Vec::new();
        while let Some(record) = records.next().await {
            taken.push(key(&record?));
        }
        assert_eq!(taken.len(), 10);
    }
    put_entries(&client, 10..15).await?;
    let leader = region.wait_for_leader(Duration::from_secs(5)).await?;
    let applied = region.status(leader).await?.last_applied_index;
    let elsewhere = (1..=3).find(|id| *id != leader).unwrap();
    region.wait_applied(elsewhere, applied, Duration::from_secs(10)).await?;
    let other = region.node_client(elsewhere).await?;
    let resumed: Vec<String> = other
        .consume_as(arn.clone(), shard.clone(), "billing".into(), false, Duration::from_millis(20))
        .await?
        .map(|r| key(&r.unwrap()))
        .collect()
        .await;
    assert_eq!(
        resumed,
        (10..15).map(|i| format!("e{i}")).collect::<Vec<_>>(),
        "a restarted consumer resumes after its saved position, on any node"
    );
    let consumers = client.list_consumers(ListConsumersRequest { stream_arn: arn.clone() }).await?.consumers;
    assert_eq!(consumers.len(), 1);
    assert_eq!(consumers[0].consumer_name, "billing");

    // Long-retention streams take any number of readers.
    for _ in 0..4 {
        client
            .get_shard_iterator(GetShardIteratorRequest {
                stream_arn: arn.clone(),
                shard_id: shard.clone(),
                shard_iterator_type: "TRIM_HORIZON".into(),
                ..Default::default()
            })
            .await?;
    }
    // A 24-hour stream has no named consumers.
    client.create_table(stream_table("short", "KEYS_ONLY", 0)).await?;
    let (short_arn, _) = client.table_stream("short").await?;
    let save =
        PutConsumerPositionRequest { stream_arn: short_arn, consumer_name: "x".into(), sequence_number: "1".into() };
    assert_eq!(error(client.put_consumer_position(save).await).0, "ValidationException");
    Ok(())
}

/// The trim horizon is replicated state: a follower wiped and re-added, which catches up from the
/// leader's snapshot, refuses a position the leader trimmed (TrimmedDataAccessException) instead of
/// serving the records after the gap, and starts TRIM_HORIZON where the leader does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_restored_from_a_snapshot_keeps_the_trim_horizon() -> anyhow::Result<()> {
    let args = ["--stream-retention-secs", "4", "--snapshot-every", "20", "--keep-logs", "5"];
    let mut region = Region::start(3, &args).await?;
    let client = region.client().await?;
    client.create_table(stream_table("events", "KEYS_ONLY", 0)).await?;
    let put = |i: usize| PutItemRequest {
        table_name: "events".into(),
        item: wire(&format!(r#"{{"pk":{{"S":"{i}"}}}}"#)),
        ..Default::default()
    };
    for i in 0..3 {
        client.put_item_request(put(i)).await?;
    }
    region.settle().await?;
    let oldest = all_records(&client, "events").await?[0].dynamodb.as_ref().unwrap().sequence_number.clone();
    let leader = region.wait_for_leader(Duration::from_secs(10)).await?;
    let follower = *region.nodes.keys().filter(|id| **id != leader).max().unwrap();
    region.wipe(follower)?;

    // Past the retention the first records are trimmed. Then enough writes that the log behind the
    // leader's snapshot is purged, so the wiped node can only catch up from a snapshot: to a table
    // without a stream, so that no later trim can reach the wiped node through the log instead; and
    // last a few records after the gap.
    tokio::time::sleep(Duration::from_secs(6)).await;
    create_table(&client, "filler", "pk:S", None).await?;
    for i in 0..50 {
        let filler = PutItemRequest { table_name: "filler".into(), item: put(i).item, ..Default::default() };
        client.put_item_request(filler).await?;
    }
    for i in 3..6 {
        client.put_item_request(put(i)).await?;
    }
    region.restart(follower)?;
    region.settle().await?;
    assert!(region.log(follower).contains("installed snapshot"), "the wiped node did not install a snapshot");

    let (arn, shard) = client.table_stream("events").await?;
    let iterator = |kind: &str, sequence: &str| shard_iterator(&arn, &shard, kind, sequence);
    let restored = region.node_client(follower).await?;
    let (name, _) = error(restored.get_shard_iterator(iterator("AT_SEQUENCE_NUMBER", &oldest)).await);
    assert_eq!(name, "TrimmedDataAccessException", "the restored node served records after a gap");
    // Its TRIM_HORIZON starts after the gap.
    let shard_iterator = restored.get_shard_iterator(iterator("TRIM_HORIZON", "")).await?.shard_iterator;
    let page = restored.get_records(GetRecordsRequest { shard_iterator, ..Default::default() }).await?;
    let first = page.records.first().and_then(|r| r.dynamodb.as_ref()).map(|d| d.sequence_number.clone());
    assert!(
        first.as_ref().is_some_and(|first| *first > oldest),
        "TRIM_HORIZON after the gap: {first:?}, oldest {oldest}"
    );
    Ok(())
}
