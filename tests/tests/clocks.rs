//! Clocks: a node whose wall clock is far from its region's does not lead (a leader stamps every
//! version with its clock), and the region goes on writing without it as leader. The node's clock is
//! shifted with libfaketime, through a file it rereads every second.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tern_client::v1::{AttributeDefinition, CreateTableRequest, KeySchemaElement, ScanRequest};
use tern_client::{AttributeValue, Item};
use tern_tests::{libfaketime, Region};

fn table() -> CreateTableRequest {
    CreateTableRequest {
        table_name: "clocks".into(),
        attribute_definitions: vec![AttributeDefinition { attribute_name: "pk".into(), attribute_type: "S".into() }],
        key_schema: vec![KeySchemaElement { attribute_name: "pk".into(), key_type: "HASH".into() }],
        ..Default::default()
    }
}

/// The leader as every running node that answers sees it, when they agree.
async fn agreed_leader(region: &Region) -> Option<u64> {
    let mut seen = Vec::new();
    for id in region.nodes.keys() {
        if let Ok(status) = region.status(*id).await {
            seen.push(status.leader_id);
        }
    }
    match seen.first() {
        Some(Some(leader)) if seen.len() >= 2 && seen.iter().all(|l| *l == Some(*leader)) => Some(*leader),
        _ => None,
    }
}

/// Watches `node` for `period`: it is never the leader.
async fn never_leads(region: &Region, node: u64, period: Duration) {
    let until = Instant::now() + period;
    while Instant::now() < until {
        if let Ok(status) = region.status(node).await {
            assert_ne!(status.state, "Leader", "node {node} led with its clock 2 s ahead");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_whose_clock_runs_two_seconds_ahead_gives_up_leadership_and_never_takes_it_back() -> anyhow::Result<()> {
    let clocks = tempfile::tempdir()?;
    let clock = |id: u64| -> PathBuf { clocks.path().join(format!("clock-{id}")) };
    for id in 1..=3 {
        std::fs::write(clock(id), "+0\n")?;
    }
    let mut region = Region::start_with_env(3, &[], |id| {
        vec![
            ("LD_PRELOAD".into(), libfaketime().display().to_string()),
            ("FAKETIME_TIMESTAMP_FILE".into(), clock(id).display().to_string()),
            ("FAKETIME_CACHE_DURATION".into(), "1".into()),
            ("FAKETIME_DONT_FAKE_MONOTONIC".into(), "1".into()),
        ]
    })
    .await?;
    let client = region.client().await?;
    client.create_table(table()).await?;

    // Writes run throughout; none may fail.
    let stop = Arc::new(AtomicBool::new(false));
    let acknowledged = Arc::new(Mutex::new(BTreeMap::new()));
    let writer = {
        let (client, stop, acknowledged) = (client.clone(), stop.clone(), acknowledged.clone());
        tokio::spawn(async move {
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let item: Item = [
                    ("pk".to_string(), AttributeValue::S(format!("k{i}"))),
                    ("n".to_string(), AttributeValue::N(i.into())),
                ]
                .into();
                client.put_item("clocks", item).await.expect("a write fails while two nodes of three agree");
                acknowledged.lock().unwrap().insert(format!("k{i}"), i);
            }
        })
    };

    // The leader's clock jumps 2 s ahead: it gives up leadership, and says why.
    let skewed = region.wait_for_leader(Duration::from_secs(10)).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    std::fs::write(clock(skewed), "+2\n")?;
    let until = Instant::now() + Duration::from_secs(15);
    let successor = loop {
        match agreed_leader(&region).await {
            Some(leader) if leader != skewed => break leader,
            _ if Instant::now() > until => anyhow::bail!("node {skewed}, 2 s ahead, still leads"),
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    };
    let status = region.status(skewed).await?;
    assert!(
        status.leadership_refused.starts_with("clock off by"),
        "node {skewed} says why it does not lead: {:?}",
        status.leadership_refused
    );
    assert!(
        (1_700_000..=2_300_000).contains(&status.clock_offset_micros),
        "node {skewed} measured its offset as {} µs",
        status.clock_offset_micros
    );

    // With the new leader down too, the third node agrees with no one else: it does not lead either,
    // rather than risk that its own clock is the one that is off. The skewed node never leads.
    let third = *region.nodes.keys().find(|id| **id != skewed && **id != successor).expect("three nodes");
    region.kill(successor)?;
    never_leads(&region, skewed, Duration::from_secs(3)).await;
    let status = region.status(third).await?;
    assert!(
        status.leadership_refused.contains("1 of 3 voters agree"),
        "node {third}, alone with a skewed node, does not lead: {:?}",
        status.leadership_refused
    );
    region.restart(successor)?;
    // For ten seconds more, it never leads.
    never_leads(&region, skewed, Duration::from_secs(10)).await;

    // Its clock set right, it may lead again.
    std::fs::write(clock(skewed), "+0\n")?;
    let until = Instant::now() + Duration::from_secs(10);
    while !region.status(skewed).await?.leadership_refused.is_empty() {
        anyhow::ensure!(Instant::now() < until, "node {skewed} still refuses to lead with its clock set right");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    stop.store(true, Ordering::Relaxed);
    writer.await?;
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(acknowledged.len() > 100, "writes went on ({} acknowledged)", acknowledged.len());
    let scan = ScanRequest { table_name: "clocks".into(), consistent_read: true, ..Default::default() };
    let stored: BTreeMap<String, u64> = client
        .scan_all(scan)
        .await?
        .into_iter()
        .map(|item| match (&item["pk"], &item["n"]) {
            (AttributeValue::S(k), AttributeValue::N(n)) => (k.clone(), n.to_string().parse().unwrap()),
            other => panic!("unexpected item {other:?}"),
        })
        .collect();
    assert_eq!(stored, acknowledged, "every acknowledged write is stored");
    Ok(())
}
