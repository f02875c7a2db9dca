//! Global tables end to end: regions of real `tern node` processes, a `tern replicator` per region,
//! and user-space proxies between regions that the tests cut and heal.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tern_client::v1::{
    replication_group_update::Action, ApplyReplicatedRequest, AttributeValue, BatchWriteItemRequest,
    DeleteReplicationGroupMemberAction, GetReplicationStateRequest, ItemVersion, PutItemRequest, PutRequest,
    ReplicatedChange, ReplicationGroupUpdate, ScanRequest, StreamSpecification, TimeToLiveSpecification,
    UpdateItemRequest, UpdateTableRequest, UpdateTimeToLiveRequest, WriteRequest, WriteRequestList,
};
use tern_client::StartingPosition;
use tern_tests::dynamo::{create_table, error};
use tern_tests::global::tables::{create, delete, global_table, item, key, put, s, value};
use tern_tests::global::Deployment;

fn greater(a: &ItemVersion, b: &ItemVersion) -> bool {
    (a.write_timestamp_micros, &a.origin_region) > (b.write_timestamp_micros, &b.origin_region)
}

/// One write a client made: the key, the value written (None for a delete), and the version the store
/// acknowledged (None when the call failed: it may or may not have been applied).
struct Write {
    pk: String,
    value: Option<String>,
    version: Option<ItemVersion>,
}

/// What one key must hold after convergence.
#[derive(Default)]
struct Expected {
    /// The value of the acknowledged write with the greatest version (None: a delete).
    winner: Option<String>,
    version: ItemVersion,
    /// Every value written to the key.
    written: Vec<Option<String>>,
    /// A write to the key may or may not have been applied.
    uncertain: bool,
}

/// Every write the clients made.
#[derive(Default, Clone)]
struct History(Arc<Mutex<Vec<Write>>>);

impl History {
    fn record(&self, pk: &str, value: Option<&str>, version: Option<ItemVersion>) {
        self.0.lock().unwrap().push(Write { pk: pk.into(), value: value.map(str::to_string), version });
    }

    fn expected(&self) -> BTreeMap<String, Expected> {
        let mut expected: BTreeMap<String, Expected> = BTreeMap::new();
        for write in self.0.lock().unwrap().iter() {
            let entry = expected.entry(write.pk.clone()).or_default();
            entry.written.push(write.value.clone());
            match &write.version {
                Some(version) if greater(version, &entry.version) => {
                    entry.winner = write.value.clone();
                    entry.version = version.clone();
                }
                Some(_) => {}
                None => entry.uncertain = true,
            }
        }
        expected
    }
}

/// After convergence: in every region, each key holds the acknowledged write with the greatest
/// `(timestamp, origin)` (absent when that was a delete); a key with a write that may or may not
/// have been applied holds one of the values written to it.
async fn check_last_writer_wins(deployment: &Deployment, table: &str, history: &History) {
    for region in deployment.regions.keys() {
        let client = deployment.client(region).await.unwrap();
        let scan = ScanRequest { table_name: table.into(), consistent_read: true, ..Default::default() };
        let held: BTreeMap<String, String> = client
            .scan_all(scan)
            .await
            .unwrap()
            .into_iter()
            .map(|item| match (&item["pk"], &item["val"]) {
                (tern_client::AttributeValue::S(pk), tern_client::AttributeValue::S(val)) => (pk.clone(), val.clone()),
                other => panic!("unexpected item {other:?}"),
            })
            .collect();
        for (pk, expected) in history.expected() {
            let found = held.get(&pk).cloned();
            if expected.uncertain {
                assert!(expected.written.contains(&found), "{region}: {pk} holds {found:?}, which no client wrote");
            } else {
                assert_eq!(found, expected.winner, "{region}: {pk} must hold the write with the greatest version");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_regions_replicate_both_ways_and_converge_on_the_last_writer() {
    let deployment = Deployment::start(&["eu-west", "us-east"], &[]).await.unwrap();
    let east = deployment.client("us-east").await.unwrap();
    let west = deployment.client("eu-west").await.unwrap();
    create_table(&east, "orders", "pk:S", None).await.unwrap();
    for i in 0..20 {
        put(&east, "orders", &format!("before-{i}"), "old").await.unwrap();
    }

    let request =
        UpdateTableRequest { table_name: "orders".into(), replica_updates: create(&["eu-west"]), ..Default::default() };
    let described = east.update_table(request).await.unwrap().table_description.unwrap();
    assert_eq!(described.global_table_version, "2019.11.21");
    let replicas: Vec<(String, String)> =
        described.replicas.iter().map(|r| (r.region_name.clone(), r.replica_status.clone())).collect();
    assert_eq!(
        replicas,
        [("eu-west".to_string(), "CREATING".to_string()), ("us-east".to_string(), "ACTIVE".to_string())]
    );
    assert_eq!(
        described.stream_specification.as_ref().map(|s| s.stream_view_type.as_str()),
        Some("NEW_AND_OLD_IMAGES")
    );
    deployment.wait_active("orders", Duration::from_secs(30)).await.unwrap();
    let west_table = deployment.describe("eu-west", "orders").await.unwrap();
    assert_eq!(west_table.key_schema, described.key_schema);
    assert_eq!(west_table.replicas.len(), 2);

    // The stream of a global table stays on; a replica cannot be created twice.
    let off = UpdateTableRequest {
        table_name: "orders".into(),
        stream_specification: Some(StreamSpecification { stream_enabled: false, ..Default::default() }),
        ..Default::default()
    };
    assert_eq!(
        error(east.update_table(off).await),
        (
            "ValidationException".to_string(),
            "Table orders is a global table: its stream cannot be disabled while it has replicas".to_string()
        )
    );
    let again =
        UpdateTableRequest { table_name: "orders".into(), replica_updates: create(&["eu-west"]), ..Default::default() };
    assert_eq!(error(east.update_table(again).await).0, "ValidationException");

    // A write in one region shows in the other.
    let started = Instant::now();
    put(&east, "orders", "hello", "from-east").await.unwrap();
    while value(&west, "orders", "hello").await.is_none() {
        assert!(started.elapsed() < Duration::from_secs(10), "the write never reached eu-west");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    println!("us-east write visible in eu-west after {:?}", started.elapsed());
    // The same item written again changes only its version; the new version must reach eu-west too
    // (tern verify compares versions), or later conflicts would be decided differently there.
    let history = History::default();
    history.record("hello", Some("from-east"), Some(put(&east, "orders", "hello", "from-east").await.unwrap()));

    // Disjoint keys in both regions.
    for i in 0..50 {
        let pk = format!("east-{i}");
        history.record(&pk, Some("e"), Some(put(&east, "orders", &pk, "e").await.unwrap()));
        let pk = format!("west-{i}");
        history.record(&pk, Some("w"), Some(put(&west, "orders", &pk, "w").await.unwrap()));
    }
    // The same keys written in both regions at once.
    for i in 0..20 {
        let pk = format!("both-{i}");
        let (a, b) = tokio::join!(put(&east, "orders", &pk, "east"), put(&west, "orders", &pk, "west"));
        history.record(&pk, Some("east"), Some(a.unwrap()));
        history.record(&pk, Some("west"), Some(b.unwrap()));
    }
    // A delete in one region against a concurrent update in the other.
    for i in 0..10 {
        let pk = format!("contested-{i}");
        history.record(&pk, Some("first"), Some(put(&east, "orders", &pk, "first").await.unwrap()));
    }
    deployment.wait_converged("orders", Duration::from_secs(30)).await.unwrap();
    for i in 0..10 {
        let pk = format!("contested-{i}");
        let update = UpdateItemRequest {
            table_name: "orders".into(),
            key: key(&pk),
            update_expression: "SET val = :v".into(),
            expression_attribute_values: BTreeMap::from([(":v".to_string(), s("updated"))]),
            ..Default::default()
        };
        let (deleted, updated) = tokio::join!(delete(&east, "orders", &pk), west.update_item(update));
        history.record(&pk, None, Some(deleted.unwrap()));
        history.record(&pk, Some("updated"), Some(updated.unwrap().item_version.unwrap()));
    }
    let took = deployment.wait_converged("orders", Duration::from_secs(30)).await.unwrap();
    println!("converged {took:?} after the last write");
    check_last_writer_wins(&deployment, "orders", &history).await;

    let (status, code) = deployment.tern(&["replication", "status", "--table-name", "orders"]).unwrap();
    assert_eq!(code, 0);
    for region in status["Regions"].as_array().unwrap() {
        let table = &region["Tables"][0];
        assert_eq!(table["TableName"], "orders");
        let sources = table["Sources"].as_array().unwrap();
        assert_eq!(sources.len(), 1, "{status:#}");
        assert_eq!(sources[0]["Phase"], "TAILING", "{status:#}");
    }

    // The deletes left tombstones; once every region has applied past them (the safe point), they go.
    let started = Instant::now();
    loop {
        let (status, _) = deployment.tern(&["replication", "status", "--table-name", "orders"]).unwrap();
        let tables: Vec<&serde_json::Value> =
            status["Regions"].as_array().unwrap().iter().map(|r| &r["Tables"][0]).collect();
        let purged = tables.iter().all(|t| t["Tombstones"] == 0);
        let safe = tables.iter().all(|t| t["SafePointMicros"].as_str().unwrap().parse::<u64>().unwrap() > 0);
        if purged && safe {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "tombstones were not purged: {status:#}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    check_last_writer_wins(&deployment, "orders", &history).await;

    // A replicated write stamped an hour ahead is applied; the region's clock follows it, so a local
    // write made after it still wins.
    let ahead = east.put_item_request(PutItemRequest {
        table_name: "orders".into(),
        item: item("probe", "now"),
        ..Default::default()
    });
    let now = ahead.await.unwrap().item_version.unwrap().write_timestamp_micros;
    let future = ItemVersion { write_timestamp_micros: now + 3_600_000_000, origin_region: "us-east".into() };
    let change = ReplicatedChange {
        key: key("skewed"),
        new_image: Some(tern_client::v1::Item { attributes: item("skewed", "from the future") }),
        version: Some(future.clone()),
    };
    // Sent as the replicator would, after the checkpoint it read; the live replicator may move the
    // checkpoint in between, which the apply refuses (ConditionalCheckFailedException): read it again.
    let applied = loop {
        let state =
            west.get_replication_state(GetReplicationStateRequest { table_name: "orders".into() }).await.unwrap();
        let checkpoint = state.checkpoints.into_iter().find(|c| c.source_region == "us-east").unwrap();
        let request = ApplyReplicatedRequest {
            table_name: "orders".into(),
            source_region: "us-east".into(),
            changes: vec![change.clone()],
            expected_sequence_number: checkpoint.sequence_number.clone(),
            checkpoint: Some(checkpoint),
            copy: false,
        };
        match west.apply_replicated(request).await {
            Ok(response) => break response.applied,
            Err(e) if e.kind() == Some(tern_client::ErrorKind::ConditionalCheckFailedException) => continue,
            Err(e) => panic!("{e}"),
        }
    };
    assert_eq!(applied, 1);
    assert_eq!(value(&west, "orders", "skewed").await.as_deref(), Some("from the future"));
    let after = put(&west, "orders", "after-skew", "local").await.unwrap();
    assert!(after.write_timestamp_micros > future.write_timestamp_micros, "the clock was raised: {after:?}");

    // A global table is not deleted while it has replicas.
    let (name, message) =
        error(east.delete_table(tern_client::v1::DeleteTableRequest { table_name: "orders".into() }).await);
    assert_eq!(name, "ValidationException");
    assert_eq!(
        message,
        "Table orders is a global table: remove its replicas first (UpdateTable with ReplicaUpdates Delete)"
    );

    // Removing the replica deletes the table there; the table is regional again and its stream can go.
    let delete = ReplicationGroupUpdate {
        action: Some(Action::Delete(DeleteReplicationGroupMemberAction { region_name: "eu-west".into() })),
    };
    // eu-west keeps taking writes while it is removed: every write it acknowledged reaches us-east.
    let late_writer = {
        let west = west.clone();
        tokio::spawn(async move {
            let mut acknowledged = Vec::new();
            for i in 0.. {
                let pk = format!("late-{i}");
                match put(&west, "orders", &pk, "late").await {
                    Ok(_) => acknowledged.push(pk),
                    Err(tern_client::Error::Api(e)) if e.kind.name() == "ValidationException" => break,
                    Err(tern_client::Error::Api(e)) if e.kind.name() == "ResourceNotFoundException" => break,
                    Err(e) => panic!("{e}"),
                }
            }
            acknowledged
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let request =
        UpdateTableRequest { table_name: "orders".into(), replica_updates: vec![delete], ..Default::default() };
    let described = east.update_table(request).await.unwrap().table_description.unwrap();
    let late = late_writer.await.unwrap();
    assert!(!late.is_empty());
    for pk in &late {
        assert_eq!(value(&east, "orders", pk).await.as_deref(), Some("late"), "{pk} was acknowledged in eu-west");
    }
    println!("{} writes acknowledged in eu-west during its removal all reached us-east", late.len());
    assert!(described.replicas.is_empty() && described.global_table_version.is_empty(), "{described:?}");
    deployment.regions["eu-west"].settle().await.unwrap();
    let gone = west.describe_table(tern_client::v1::DescribeTableRequest { table_name: "orders".into() }).await;
    assert_eq!(error(gone).0, "ResourceNotFoundException");
    let off = UpdateTableRequest {
        table_name: "orders".into(),
        stream_specification: Some(StreamSpecification { stream_enabled: false, ..Default::default() }),
        ..Default::default()
    };
    east.update_table(off).await.unwrap();
}

/// Three regions take writes while one of them is cut off from the others, then the cut heals.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_regions_converge_after_a_partition_heals() {
    let deployment = Deployment::start(&["ap-south", "eu-west", "us-east"], &[]).await.unwrap();
    let east = deployment.client("us-east").await.unwrap();
    create_table(&east, "events", "pk:S", None).await.unwrap();
    let request = UpdateTableRequest {
        table_name: "events".into(),
        replica_updates: create(&["eu-west", "ap-south"]),
        ..Default::default()
    };
    east.update_table(request).await.unwrap();
    deployment.wait_active("events", Duration::from_secs(30)).await.unwrap();

    let history = History::default();
    let stop = Instant::now() + Duration::from_secs(9);
    let mut writers = Vec::new();
    for region in deployment.regions.keys() {
        let (client, history, region) = (deployment.client(region).await.unwrap(), history.clone(), region.clone());
        writers.push(tokio::spawn(async move {
            let mut n = 0u64;
            while Instant::now() < stop {
                n += 1;
                let own = format!("{region}-{n}");
                let result = put(&client, "events", &own, &format!("{region}:{n}")).await.ok();
                history.record(&own, Some(&format!("{region}:{n}")), result);
                let shared = format!("shared-{}", n % 25);
                if n.is_multiple_of(5) {
                    let result = delete(&client, "events", &shared).await.ok();
                    history.record(&shared, None, result);
                } else {
                    let written = format!("{region}:{n}");
                    let result = put(&client, "events", &shared, &written).await.ok();
                    history.record(&shared, Some(&written), result);
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    deployment.isolate("eu-west");
    tokio::time::sleep(Duration::from_secs(4)).await;
    let (_, identical) = deployment.verify("events").unwrap();
    assert!(!identical, "while cut off, eu-west must miss the other regions' writes");
    deployment.heal_all();
    for writer in writers {
        writer.await.unwrap();
    }
    let took = deployment.wait_converged("events", Duration::from_secs(60)).await.unwrap();
    println!("converged {took:?} after the heal and the last write");
    check_last_writer_wins(&deployment, "events", &history).await;
    // Disjoint keys are never deleted: every acknowledged one is everywhere.
    let acknowledged =
        history.0.lock().unwrap().iter().filter(|w| !w.pk.starts_with("shared") && w.version.is_some()).count();
    let (report, _) = deployment.verify("events").unwrap();
    for region in deployment.regions.keys() {
        let count = report["ItemCounts"][region].as_u64().unwrap() as usize;
        assert!(count >= acknowledged, "{region} holds {count} items, fewer than the {acknowledged} disjoint writes");
    }
}

/// The replicator is killed with `kill -9` again and again while the other region takes writes, and
/// each region's leader is killed once: nothing is lost, and nothing is applied twice (one INSERT per
/// item in the receiving stream).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replicator_killed_mid_batch_loses_and_duplicates_nothing() {
    let mut deployment = Deployment::start(&["eu-west", "us-east"], &[]).await.unwrap();
    let east = deployment.client("us-east").await.unwrap();
    let west = deployment.client("eu-west").await.unwrap();
    create_table(&east, "ledger", "pk:S", None).await.unwrap();
    let request =
        UpdateTableRequest { table_name: "ledger".into(), replica_updates: create(&["eu-west"]), ..Default::default() };
    east.update_table(request).await.unwrap();
    deployment.wait_active("ledger", Duration::from_secs(30)).await.unwrap();

    let writer = {
        let east = east.clone();
        tokio::spawn(async move {
            let mut retried = Vec::new();
            for batch in 0..120 {
                let requests = (0..25)
                    .map(|i| WriteRequest {
                        request: Some(tern_client::v1::write_request::Request::PutRequest(PutRequest {
                            item: item(&format!("entry-{batch}-{i}"), "x"),
                        })),
                    })
                    .collect();
                let request = BatchWriteItemRequest {
                    request_items: BTreeMap::from([("ledger".to_string(), WriteRequestList { requests })]),
                };
                // As an application would: a batch that failed (it may have been applied) is sent again.
                let mut attempts = 0;
                while let Err(e) = east.batch_write_item(request.clone()).await {
                    attempts += 1;
                    assert!(attempts < 5, "batch {batch} keeps failing: {e}");
                    retried.push(batch);
                }
            }
            retried
        })
    };
    // The replicator is killed five times; in between, the leaders of both regions are killed too.
    for round in 0..5 {
        tokio::time::sleep(Duration::from_millis(400)).await;
        deployment.kill_replicator("eu-west").unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        deployment.start_replicator("eu-west").unwrap();
        if round == 1 || round == 3 {
            let region = if round == 1 { "eu-west" } else { "us-east" };
            let nodes = deployment.regions.get_mut(region).unwrap();
            let leader = nodes.wait_for_leader(Duration::from_secs(20)).await.unwrap();
            nodes.kill(leader).unwrap();
            tokio::time::sleep(Duration::from_millis(300)).await;
            nodes.restart(leader).unwrap();
        }
    }
    let retried = writer.await.unwrap();
    deployment.wait_converged("ledger", Duration::from_secs(60)).await.unwrap();

    deployment.regions["eu-west"].settle().await.unwrap();
    let (stream_arn, shard_id) = west.table_stream("ledger").await.unwrap();
    let records: Vec<_> = {
        use futures::StreamExt;
        let poll = Duration::from_millis(50);
        west.consume(stream_arn, shard_id, StartingPosition::TrimHorizon, false, poll).collect::<Vec<_>>().await
    };
    let mut inserts: BTreeMap<String, usize> = BTreeMap::new();
    for record in records {
        let record = record.unwrap();
        let data = record.dynamodb.unwrap();
        let pk = match data.keys.unwrap().attributes["pk"].value.clone() {
            Some(tern_client::v1::attribute_value::Value::S(pk)) => pk,
            other => panic!("unexpected key {other:?}"),
        };
        assert_eq!(record.user_identity.unwrap().principal_id, "replication.tern/us-east");
        match record.event_name.as_str() {
            "INSERT" => *inserts.entry(pk).or_default() += 1,
            // The same item written again by a retried batch: a new version of the same attributes.
            "MODIFY" => {
                let batch: usize = pk.split('-').nth(1).unwrap().parse().unwrap();
                assert!(retried.contains(&batch), "{pk} was modified, but its batch was written once");
            }
            other => panic!("{pk}: unexpected {other}"),
        }
    }
    println!("{} batches were retried by the writer", retried.len());
    assert_eq!(inserts.len(), 3000, "every item arrived in eu-west's stream");
    assert!(
        inserts.values().all(|n| *n == 1),
        "an item was applied twice: {:?}",
        inserts.iter().find(|(_, n)| **n > 1)
    );
}

/// A replica added to a table that already holds 100,000 items gets all of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_added_to_a_table_of_100k_items_gets_them_all() {
    let deployment = Deployment::start(&["eu-west", "us-east"], &[]).await.unwrap();
    let east = deployment.client("us-east").await.unwrap();
    create_table(&east, "catalog", "pk:S", None).await.unwrap();
    let mut loaders = Vec::new();
    for worker in 0..8 {
        let east = east.clone();
        loaders.push(tokio::spawn(async move {
            for batch in (worker..4000).step_by(8) {
                let requests = (0..25)
                    .map(|i| WriteRequest {
                        request: Some(tern_client::v1::write_request::Request::PutRequest(PutRequest {
                            item: item(&format!("sku-{batch}-{i}"), "in stock"),
                        })),
                    })
                    .collect();
                let request = BatchWriteItemRequest {
                    request_items: BTreeMap::from([("catalog".to_string(), WriteRequestList { requests })]),
                };
                east.batch_write_item(request).await.unwrap();
            }
        }));
    }
    for loader in loaders {
        loader.await.unwrap();
    }
    let started = Instant::now();
    let request = UpdateTableRequest {
        table_name: "catalog".into(),
        replica_updates: create(&["eu-west"]),
        ..Default::default()
    };
    east.update_table(request).await.unwrap();
    deployment.wait_active("catalog", Duration::from_secs(300)).await.unwrap();
    println!("replica of 100,000 items active after {:?}", started.elapsed());
    deployment.wait_converged("catalog", Duration::from_secs(60)).await.unwrap();
    let west = deployment.describe("eu-west", "catalog").await.unwrap();
    assert_eq!(west.item_count, 100_000);
}

/// A delete in one region of an item that region does not hold yet (it was put in another region during
/// a cut) still wins by its version: after the heal the item is absent everywhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delete_of_an_item_not_yet_replicated_wins_after_the_heal() {
    let mut deployment = Deployment::start(&["eu-west", "us-east"], &[]).await.unwrap();
    let east = deployment.client("us-east").await.unwrap();
    let west = deployment.client("eu-west").await.unwrap();
    global_table(&deployment, &east, "profiles").await;
    deployment.kill_replicator("eu-west").unwrap();
    deployment.kill_replicator("us-east").unwrap();
    let put_version = put(&east, "profiles", "k", "written in us-east").await.unwrap();
    let deleted = delete(&west, "profiles", "k").await.unwrap();
    assert!(
        (deleted.write_timestamp_micros, &deleted.origin_region)
            > (put_version.write_timestamp_micros, &put_version.origin_region),
        "the later delete has the greater version"
    );
    deployment.start_replicator("eu-west").unwrap();
    deployment.start_replicator("us-east").unwrap();
    deployment.wait_converged("profiles", Duration::from_secs(30)).await.unwrap();
    assert_eq!(value(&east, "profiles", "k").await, None, "the delete reached us-east");
    assert_eq!(value(&west, "profiles", "k").await, None, "the older put did not bring it back");
}

/// TTL on a global table: the setting reaches every region, the item expires everywhere, its REMOVE
/// record carries the TTL identity where it was deleted, and no region deletes it twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_global_table_replicates_the_ttl_delete() {
    let deployment = Deployment::start(&["eu-west", "us-east"], &[]).await.unwrap();
    let east = deployment.client("us-east").await.unwrap();
    let west = deployment.client("eu-west").await.unwrap();
    global_table(&deployment, &east, "sessions").await;
    let ttl = UpdateTimeToLiveRequest {
        table_name: "sessions".into(),
        time_to_live_specification: Some(TimeToLiveSpecification {
            enabled: true,
            attribute_name: "expires_at".into(),
            ..Default::default()
        }),
    };
    east.update_time_to_live(ttl).await.unwrap();
    let described = west
        .describe_time_to_live(tern_client::v1::DescribeTimeToLiveRequest { table_name: "sessions".into() })
        .await
        .unwrap()
        .time_to_live_description
        .unwrap();
    assert_eq!((described.time_to_live_status.as_str(), described.attribute_name.as_str()), ("ENABLED", "expires_at"));

    let expires = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() + 2;
    let mut session = item("session-1", "token");
    session.insert(
        "expires_at".into(),
        AttributeValue { value: Some(tern_client::v1::attribute_value::Value::N(expires.to_string())) },
    );
    east.put_item_request(PutItemRequest { table_name: "sessions".into(), item: session, ..Default::default() })
        .await
        .unwrap();
    let started = Instant::now();
    while value(&east, "sessions", "session-1").await.is_some() || value(&west, "sessions", "session-1").await.is_some()
    {
        assert!(started.elapsed() < Duration::from_secs(20), "the item did not expire in every region");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    deployment.wait_converged("sessions", Duration::from_secs(30)).await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;

    let mut removes = BTreeMap::new();
    for (region, client) in [("us-east", &east), ("eu-west", &west)] {
        deployment.regions[region].settle().await.unwrap();
        let (stream_arn, shard_id) = client.table_stream("sessions").await.unwrap();
        use futures::StreamExt;
        let poll = Duration::from_millis(50);
        let records: Vec<_> =
            client.consume(stream_arn, shard_id, StartingPosition::TrimHorizon, false, poll).collect::<Vec<_>>().await;
        let region_removes: Vec<String> = records
            .into_iter()
            .map(Result::unwrap)
            .filter(|r| r.event_name == "REMOVE")
            .map(|r| r.user_identity.map(|i| i.principal_id).unwrap_or_default())
            .collect();
        removes.insert(region, region_removes);
    }
    for (region, list) in &removes {
        assert_eq!(list.len(), 1, "{region} must remove the item exactly once: {removes:?}");
    }
    // At least one region deleted it by TTL; the other either did too or received that delete.
    assert!(removes.values().flatten().any(|p| p == "ttl.tern"), "{removes:?}");
    assert!(removes.values().flatten().all(|p| p == "ttl.tern" || p.starts_with("replication.tern/")), "{removes:?}");
}

/// Two ReplicaUpdates sent to two regions at once: us-east removes eu-west (draining it first) while
/// eu-west adds ap-south.
/// One of them runs and the other is refused with ResourceInUseException (as DynamoDB refuses a second
/// replica update while one is in progress), or they run one after the other; either way every region
/// that keeps the table ends with the same replica list.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replica_updates_sent_to_two_regions_at_once_leave_one_replica_list() {
    let deployment = Deployment::start(&["us-east", "eu-west", "ap-south"], &[]).await.unwrap();
    let (east, west) = (deployment.client("us-east").await.unwrap(), deployment.client("eu-west").await.unwrap());
    global_table(&deployment, &east, "orders").await;
    put(&east, "orders", "a", "1").await.unwrap();
    let add = UpdateTableRequest {
        table_name: "orders".into(),
        replica_updates: create(&["ap-south"]),
        ..Default::default()
    };
    let remove = UpdateTableRequest {
        table_name: "orders".into(),
        replica_updates: vec![ReplicationGroupUpdate {
            action: Some(Action::Delete(DeleteReplicationGroupMemberAction { region_name: "us-east".into() })),
        }],
        ..Default::default()
    };
    let (added, removed) = tokio::join!(east.update_table(add), west.update_table(remove));
    let outcome = |result: &Result<_, tern_client::Error>| match result {
        Ok(_) => "ok".to_string(),
        Err(e) => e.kind().map(|k| k.name().to_string()).unwrap_or_else(|| e.to_string()),
    };
    let (added, removed) = (outcome(&added), outcome(&removed));
    println!("removing eu-west in us-east: {removed}; adding ap-south in eu-west: {added}");
    for result in [&added, &removed] {
        assert!(result == "ok" || result == "ResourceInUseException", "{added} / {removed}");
    }
    assert!(added == "ok" || removed == "ok", "one of the two updates runs: {added} / {removed}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut lists = BTreeMap::new();
    for region in ["us-east", "eu-west", "ap-south"] {
        deployment.regions[region].settle().await.unwrap();
        let client = deployment.client(region).await.unwrap();
        let described =
            client.describe_table(tern_client::v1::DescribeTableRequest { table_name: "orders".into() }).await;
        if let Ok(described) = described {
            let mut replicas: Vec<String> =
                described.table.unwrap_or_default().replicas.into_iter().map(|r| r.region_name).collect();
            replicas.sort();
            lists.insert(region, replicas);
        }
    }
    println!("replica lists: {lists:?}");
    // Every region a replica list names holds the table with that same list.
    for (region, list) in &lists {
        for named in list {
            assert_eq!(lists.get(named.as_str()), Some(list), "{region} names {named} a replica: {lists:?}");
        }
    }
}
