//! Global tables across stream trims: a replicator whose checkpoint the source trimmed resynchronises
//! (also when it reads a source node restored from a snapshot), and a region away longer than the
//! retention keeps what it receives on its return.

use std::time::Duration;

use tern_client::{Client, StartingPosition};
use tern_tests::dynamo::create_table;
use tern_tests::global::tables::{delete, global_table, put, value};
use tern_tests::global::Deployment;

/// A global table `profiles` of ten items, converged; then eu-west's replicator is stopped and us-east
/// deletes `user-0`, changes `user-1` to v2 and adds `user-10`. Returns us-east's client.
async fn changes_while_eu_west_is_away(deployment: &mut Deployment) -> Client {
    let east = deployment.client("us-east").await.unwrap();
    global_table(deployment, &east, "profiles").await;
    for i in 0..10 {
        put(&east, "profiles", &format!("user-{i}"), "v1").await.unwrap();
    }
    deployment.wait_converged("profiles", Duration::from_secs(30)).await.unwrap();

    deployment.kill_replicator("eu-west").unwrap();
    delete(&east, "profiles", "user-0").await.unwrap();
    put(&east, "profiles", "user-1", "v2").await.unwrap();
    put(&east, "profiles", "user-10", "v1").await.unwrap();
    east
}

/// A replicator whose checkpoint was trimmed from the source stream resynchronises the whole table,
/// deletes included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trimmed_checkpoint_leads_to_a_resync() {
    let mut deployment = Deployment::start(&["eu-west", "us-east"], &["--stream-retention-secs", "2"]).await.unwrap();
    changes_while_eu_west_is_away(&mut deployment).await;
    // Past the two-second retention: those records are trimmed from us-east's stream.
    tokio::time::sleep(Duration::from_secs(5)).await;
    deployment.start_replicator("eu-west").unwrap();
    deployment.wait_converged("profiles", Duration::from_secs(60)).await.unwrap();
    let west = deployment.client("eu-west").await.unwrap();
    assert_eq!(value(&west, "profiles", "user-0").await, None, "the delete made during the gap arrived");
    assert_eq!(value(&west, "profiles", "user-1").await.as_deref(), Some("v2"));
    assert_eq!(value(&west, "profiles", "user-10").await.as_deref(), Some("v1"));
    let log = deployment.replicator_log("eu-west");
    assert!(log.contains("resynchronising the table"), "the replicator did not resync: {log}");
}

/// A source node wiped and restored from its leader's snapshot keeps the leader's trim horizon, so a
/// replicator that can reach only that node, and whose checkpoint the leader trimmed meanwhile, is told
/// so (TrimmedDataAccessException), resynchronises, and the regions end identical; it then keeps
/// tailing the restored node's stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replicator_reading_a_node_restored_from_a_snapshot_resyncs_past_the_trim() {
    let args = ["--stream-retention-secs", "3", "--snapshot-every", "20", "--keep-logs", "5"];
    let mut deployment = Deployment::start(&["eu-west", "us-east"], &args).await.unwrap();
    let east = changes_while_eu_west_is_away(&mut deployment).await;
    // Writes to a table without a stream: they move the log past the snapshot point (the wiped node
    // can only catch up from a snapshot) but make no stream records, so no later trim can bring the
    // horizon to the restored node through the log instead of the snapshot.
    create_table(&east, "filler", "pk:S", None).await.unwrap();
    let source = deployment.regions.get_mut("us-east").unwrap();
    let leader = source.wait_for_leader(Duration::from_secs(10)).await.unwrap();
    let restored = *source.nodes.keys().filter(|id| **id != leader).max().unwrap();
    source.wipe(restored).unwrap();
    // Past the retention (3 s, trimmed every 750 ms) the changes above are trimmed.
    tokio::time::sleep(Duration::from_secs(5)).await;
    for i in 0..40 {
        put(&east, "filler", &format!("f-{i}"), "v1").await.unwrap();
    }
    source.restart(restored).unwrap();
    source.settle().await.unwrap();
    assert!(source.log(restored).contains("installed snapshot"), "the wiped node did not install a snapshot");

    // Stream reads go to the restored node only; calls for the leader (the resync's copy) still reach
    // it, at the address the nodes name.
    deployment.reach_only("eu-west", "us-east", restored);
    let earlier = deployment.replicator_log("eu-west").len();
    deployment.start_replicator("eu-west").unwrap();
    deployment.wait_converged("profiles", Duration::from_secs(90)).await.unwrap();
    let west = deployment.client("eu-west").await.unwrap();
    assert_eq!(value(&west, "profiles", "user-0").await, None, "the delete made before the trim arrived");
    assert_eq!(value(&west, "profiles", "user-1").await.as_deref(), Some("v2"));
    let log = deployment.replicator_log("eu-west");
    assert!(log[earlier..].contains("resynchronising the table"), "the replicator did not resync: {log}");
    // After the resync it tails the restored node's stream.
    put(&east, "profiles", "user-1", "v3").await.unwrap();
    deployment.wait_converged("profiles", Duration::from_secs(30)).await.unwrap();
    assert_eq!(value(&west, "profiles", "user-1").await.as_deref(), Some("v3"));
}

/// A region cut off for longer than the retention keeps every change it receives after the heal in
/// its own stream for the retention: a record's retention counts from when it reached this region's
/// stream, not from the write's (older) version.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_received_after_a_long_absence_stay_in_the_stream_for_the_retention() {
    let deployment = Deployment::start(&["eu-west", "us-east"], &["--stream-retention-secs", "6"]).await.unwrap();
    let east = deployment.client("us-east").await.unwrap();
    global_table(&deployment, &east, "profiles").await;
    deployment.isolate("eu-west");
    for i in 0..5 {
        put(&east, "profiles", &format!("user-{i}"), "v1").await.unwrap();
    }
    // Longer than the retention: those writes are older than it when eu-west receives them.
    tokio::time::sleep(Duration::from_secs(8)).await;
    deployment.heal_all();
    deployment.wait_converged("profiles", Duration::from_secs(60)).await.unwrap();
    // Longer than a trim pass, shorter than the retention.
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let west = deployment.client("eu-west").await.unwrap();
    deployment.regions["eu-west"].settle().await.unwrap();
    let (stream_arn, shard_id) = west.table_stream("profiles").await.unwrap();
    let records: Vec<_> = {
        use futures::StreamExt;
        let poll = Duration::from_millis(50);
        west.consume(stream_arn, shard_id, StartingPosition::TrimHorizon, false, poll).collect::<Vec<_>>().await
    };
    let mut received = Vec::new();
    for record in records {
        let data = record.unwrap().dynamodb.unwrap();
        match data.keys.unwrap().attributes["pk"].value.clone() {
            Some(tern_client::v1::attribute_value::Value::S(pk)) => received.push(pk),
            other => panic!("unexpected key {other:?}"),
        }
    }
    received.sort();
    let expected: Vec<String> = (0..5).map(|i| format!("user-{i}")).collect();
    assert_eq!(received, expected, "eu-west's stream lost changes it received");
}
