//! Failures with real processes: the leader killed under load, a node catching up by log and by
//! snapshot, and membership changes.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tern_client::v1::{AttributeDefinition, CreateTableRequest, KeySchemaElement, ScanRequest};
use tern_client::{AttributeValue, Client, Item};
use tern_tests::Region;

fn kv_table() -> CreateTableRequest {
    CreateTableRequest {
        table_name: "kvs".into(),
        attribute_definitions: vec![AttributeDefinition { attribute_name: "pk".into(), attribute_type: "S".into() }],
        key_schema: vec![KeySchemaElement { attribute_name: "pk".into(), key_type: "HASH".into() }],
        billing_mode: String::new(),
        stream_specification: None,
    }
}

fn entry(key: &str, value: &str) -> Item {
    [("pk".to_string(), AttributeValue::S(key.into())), ("value".to_string(), AttributeValue::S(value.into()))].into()
}

fn key(key: &str) -> Item {
    [("pk".to_string(), AttributeValue::S(key.into()))].into()
}

/// Every acknowledged write must read back, strongly consistent, with its value: all of them through
/// a consistent Scan, and a sample through consistent GetItem.
async fn check_acknowledged(client: &Client, acknowledged: &BTreeMap<String, String>) -> anyhow::Result<()> {
    let scan = ScanRequest { table_name: "kvs".into(), consistent_read: true, ..Default::default() };
    let stored = as_map(client.scan_all(scan).await?);
    for (k, v) in acknowledged {
        assert_eq!(stored.get(k), Some(v), "acknowledged write {k} lost");
    }
    for (k, v) in acknowledged.iter().step_by((acknowledged.len() / 100).max(1)) {
        let found = client.get_item("kvs", key(k), true).await?;
        assert_eq!(
            found.map(|(item, _)| item["value"].clone()),
            Some(AttributeValue::S(v.clone())),
            "acknowledged write {k} lost"
        );
    }
    Ok(())
}

fn as_map(items: Vec<Item>) -> BTreeMap<String, String> {
    items
        .into_iter()
        .map(|i| match (&i["pk"], &i["value"]) {
            (AttributeValue::S(k), AttributeValue::S(v)) => (k.clone(), v.clone()),
            other => panic!("unexpected item {other:?}"),
        })
        .collect()
}

/// All items as one node holds them locally.
async fn local_items(region: &Region, id: u64) -> anyhow::Result<BTreeMap<String, String>> {
    let items =
        region.node_client(id).await?.scan_all(ScanRequest { table_name: "kvs".into(), ..Default::default() }).await?;
    Ok(as_map(items))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn leader_killed_under_write_load_loses_no_acknowledged_write() -> anyhow::Result<()> {
    let mut region = Region::start(3, &[]).await?;
    let client = region.client().await?;
    client.create_table(kv_table()).await?;

    let acknowledged = Arc::new(Mutex::new(BTreeMap::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for writer in 0..8 {
        let (client, acknowledged, stop) = (client.clone(), acknowledged.clone(), stop.clone());
        writers.push(tokio::spawn(async move {
            let mut seq = 0;
            while !stop.load(Ordering::Relaxed) {
                let (k, v) = (format!("w{writer}-{seq}"), format!("value-{writer}-{seq}"));
                // A write that fails or times out may or may not be applied: only acknowledged ones are checked.
                if client.put_item("kvs", entry(&k, &v)).await.is_ok() {
                    acknowledged.lock().unwrap().insert(k, v);
                }
                seq += 1;
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let leader = region.wait_for_leader(Duration::from_secs(5)).await?;
    let before_kill = acknowledged.lock().unwrap().len();
    region.kill(leader)?;
    let new_leader = region.wait_for_leader(Duration::from_secs(20)).await?;
    assert_ne!(new_leader, leader);
    tokio::time::sleep(Duration::from_millis(2000)).await;
    stop.store(true, Ordering::Relaxed);
    for writer in writers {
        writer.await?;
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(before_kill > 50, "the load ran before the kill ({before_kill} writes)");
    assert!(acknowledged.len() > before_kill, "writes were acknowledged after the kill");

    let survivors = region.client().await?;
    check_acknowledged(&survivors, &acknowledged).await?;

    // The killed node comes back, catches up from the log, and holds exactly what the leader holds.
    region.restart(leader)?;
    let applied = region.status(new_leader).await?.last_applied_index;
    region.wait_applied(leader, applied, Duration::from_secs(30)).await?;
    let restarted = local_items(&region, leader).await?;
    assert_eq!(restarted, local_items(&region, new_leader).await?);
    for (k, v) in &acknowledged {
        assert_eq!(restarted.get(k), Some(v), "restarted node misses {k}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_behind_the_purged_log_catches_up_by_snapshot() -> anyhow::Result<()> {
    let mut region = Region::start(3, &["--snapshot-every", "50", "--keep-logs", "10"]).await?;
    let client = region.client().await?;
    client.create_table(kv_table()).await?;
    let leader = region.wait_for_leader(Duration::from_secs(5)).await?;
    let mut followers = (1..=3).filter(|id| *id != leader);
    let (stopped, other) = (followers.next().unwrap(), followers.next().unwrap());
    region.kill(stopped)?;
    let behind = region.status(leader).await?.last_applied_index;

    let mut written = BTreeMap::new();
    for i in 0..300 {
        let (k, v) = (format!("k{i:03}"), format!("v{i}"));
        client.put_item("kvs", entry(&k, &v)).await?;
        written.insert(k, v);
    }
    let last = region.status(leader).await?.last_applied_index;
    let other_status = region.wait_applied(other, last, Duration::from_secs(10)).await?;
    assert!(
        other_status.purged_index > behind,
        "the other follower purged its log past the stopped node (purged {}, stopped node at {behind})",
        other_status.purged_index
    );

    // Only the follower that purged its log can lead now, so the stopped node can only catch up by snapshot.
    region.kill(leader)?;
    region.restart(stopped)?;
    assert_eq!(region.wait_for_leader(Duration::from_secs(20)).await?, other);
    let status = region.wait_applied(stopped, last, Duration::from_secs(30)).await?;
    assert!(status.snapshot_index > behind, "the node installed a snapshot: {status:?}");
    assert_eq!(local_items(&region, stopped).await?, written);

    region.restart(leader)?;
    let status = region.wait_applied(leader, last, Duration::from_secs(30)).await?;
    assert!(status.last_applied_index >= last);
    assert_eq!(local_items(&region, leader).await?, written);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fourth_node_joins_and_one_leaves() -> anyhow::Result<()> {
    let mut region = Region::start(3, &[]).await?;
    let client = region.client().await?;
    client.create_table(kv_table()).await?;
    for i in 0..50 {
        client.put_item("kvs", entry(&format!("k{i}"), "before")).await?;
    }

    let joining = region.start_new_node()?;
    let members = client.add_node(joining, &region.address(joining)).await?.members;
    let voters: Vec<u64> = members.iter().filter(|m| m.voter).map(|m| m.node_id).collect();
    assert_eq!(voters, [1, 2, 3, 4]);
    let leader = region.wait_for_leader(Duration::from_secs(10)).await?;
    let applied = region.status(leader).await?.last_applied_index;
    region.wait_applied(joining, applied, Duration::from_secs(20)).await?;
    assert_eq!(local_items(&region, joining).await?.len(), 50);

    let leaving = (1..=3).find(|id| *id != leader).unwrap();
    let members = client.remove_node(leaving).await?.members;
    let remaining: Vec<u64> = members.iter().map(|m| m.node_id).collect();
    assert_eq!(remaining, (1..=4).filter(|id| *id != leaving).collect::<Vec<_>>());
    region.kill(leaving)?;

    client.put_item("kvs", entry("after", "removal")).await?;
    let applied = region.status(leader).await?.last_applied_index;
    region.wait_applied(joining, applied, Duration::from_secs(10)).await?;
    assert_eq!(local_items(&region, joining).await?.get("after").map(String::as_str), Some("removal"));
    Ok(())
}

/// A follower that has not applied a table's creation yet (it was paused while the region created the
/// table) takes a write and a strongly consistent read of that table the moment it resumes: both
/// resolve the table on the leader, after the forward or the read barrier, never on the follower.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lagging_follower_serves_a_table_it_has_not_applied_yet() -> anyhow::Result<()> {
    use tern_client::v1::tern_client::TernClient;
    use tern_client::v1::{GetItemRequest, PutItemRequest};
    use tern_client::ApiError;

    let region = Region::start(3, &[]).await?;
    let leader = region.wait_for_leader(Duration::from_secs(10)).await?;
    let follower = *region.nodes.keys().filter(|id| **id != leader).max().unwrap();
    region.pause(follower)?;
    region.node_client(leader).await?.create_table(kv_table()).await?;
    region.resume(follower)?;

    // Straight to the follower, as a client that does not know the leader yet would send them.
    let mut lagging = TernClient::connect(format!("http://{}", region.address(follower))).await?;
    let wire = |pairs: &[(&str, &str)]| -> std::collections::BTreeMap<String, tern_client::v1::AttributeValue> {
        pairs
            .iter()
            .map(|(k, v)| {
                let value = tern_client::v1::AttributeValue {
                    value: Some(tern_client::v1::attribute_value::Value::S(v.to_string())),
                };
                (k.to_string(), value)
            })
            .collect()
    };
    let put =
        PutItemRequest { table_name: "kvs".into(), item: wire(&[("pk", "k"), ("value", "v")]), ..Default::default() };
    // Retried only while the region answers ServiceUnavailable (an election after the pause), as a
    // client retries; any other error fails the test.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let unavailable = |error: &ApiError| {
        error.kind == tern_client::ErrorKind::ServiceUnavailable && std::time::Instant::now() < deadline
    };
    loop {
        match lagging.put_item(put.clone()).await.map_err(|status| ApiError::from(&status)) {
            Err(error) if unavailable(&error) => tokio::time::sleep(Duration::from_millis(100)).await,
            result => {
                result?;
                break;
            }
        };
    }
    let get = GetItemRequest {
        table_name: "kvs".into(),
        key: wire(&[("pk", "k")]),
        consistent_read: true,
        ..Default::default()
    };
    let item = loop {
        match lagging.get_item(get.clone()).await.map_err(|status| ApiError::from(&status)) {
            Err(error) if unavailable(&error) => tokio::time::sleep(Duration::from_millis(100)).await,
            result => break result?.into_inner().item,
        }
    };
    assert_eq!(item.map(|i| i.attributes), Some(wire(&[("pk", "k"), ("value", "v")])));
    Ok(())
}

/// Exactly once under retries: four writers (two clients, two writers each) make 2,000 calls in turn: an
/// `ADD n :1` (table `counters`), a put of a new key conditional on `attribute_not_exists(pk)`, and a transaction (without
/// a token) that adds 1 to `m` and puts a new key on the same condition. Meanwhile the leader is killed
/// with `kill -9` and restarted every 1.5 s, and every node sits behind a proxy that loses one reply in
/// ten of the item API (after the node applied the call; forwarding hops between nodes go through the
/// proxies too). A retried call is answered with its first outcome: `n` and `m` end at the number of
/// their acknowledged calls (plus at most the calls whose outcome the client reports unknown), no
/// conditional put or transaction is refused for the key it wrote itself, and every acknowledged put is
/// there.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn retried_writes_apply_once_while_the_leader_is_killed_and_replies_are_lost() -> anyhow::Result<()> {
    use tern_client::v1::transact_write_item::Action;
    use tern_client::v1::{
        AttributeValue as Wire, GetItemRequest, PutItemRequest, TransactWriteItem, TransactWriteItemsRequest,
        UpdateItemRequest,
    };
    use tern_client::{Error, RetryPolicy};
    use tern_tests::lossy::LossyProxy;

    fn s(text: &str) -> Wire {
        Wire { value: Some(tern_client::v1::attribute_value::Value::S(text.into())) }
    }
    fn add(counter: &str) -> UpdateItemRequest {
        let one = Wire { value: Some(tern_client::v1::attribute_value::Value::N("1".into())) };
        UpdateItemRequest {
            table_name: "counters".into(),
            key: [("pk".to_string(), s(counter))].into(),
            update_expression: "ADD n :one".into(),
            expression_attribute_values: [(":one".to_string(), one)].into(),
            ..Default::default()
        }
    }
    fn new_key(k: &str) -> PutItemRequest {
        PutItemRequest {
            table_name: "kvs".into(),
            item: [("pk".to_string(), s(k)), ("value".to_string(), s(k))].into(),
            condition_expression: "attribute_not_exists(pk)".into(),
            ..Default::default()
        }
    }

    let listen = tern_tests::free_addresses(3);
    let mut proxies = Vec::new();
    for address in listen.values() {
        proxies.push(LossyProxy::start(address, 10).await?);
    }
    let fronts = listen.keys().zip(&proxies).map(|(id, p)| (*id, p.address.clone())).collect();
    let mut region = Region::start_behind(listen, fronts, &[]).await?;
    let admin = region.client().await?;
    admin.create_table(kv_table()).await?;
    admin.create_table(CreateTableRequest { table_name: "counters".into(), ..kv_table() }).await?;

    #[derive(Default, Debug)]
    struct Counts {
        adds: (u64, u64),
        transactions: (u64, u64),
        puts: BTreeMap<String, String>,
        unknown_puts: u64,
        calls: u64,
    }
    let counts = Arc::new(Mutex::new(Counts::default()));
    let mut writers = Vec::new();
    // Two clients, each shared by two writers: calls of one session in flight at once. A lost reply
    // costs an attempt's timeout, so it is short here.
    let policy = RetryPolicy {
        deadline: Duration::from_secs(30),
        attempt_timeout: Duration::from_millis(300),
        ..Default::default()
    };
    let clients = [
        Client::connect_with(region.endpoints(), policy.clone()).await?,
        Client::connect_with(region.endpoints(), policy).await?,
    ];
    for writer in 0..4 {
        let (client, counts) = (clients[writer % 2].clone(), counts.clone());
        writers.push(tokio::spawn(async move {
            for i in 0u64.. {
                let call = {
                    let mut counts = counts.lock().unwrap();
                    if counts.calls == 2_000 {
                        return;
                    }
                    counts.calls += 1;
                    counts.calls
                };
                let k = format!("w{writer}-{i}");
                match call % 3 {
                    0 => match client.update_item(add("n")).await {
                        Ok(_) => counts.lock().unwrap().adds.0 += 1,
                        Err(Error::OutcomeUnknown { .. }) => counts.lock().unwrap().adds.1 += 1,
                        Err(other) => panic!("an ADD failed without saying its outcome is unknown: {other}"),
                    },
                    1 => match client.put_item_request(new_key(&k)).await {
                        Ok(_) => {
                            counts.lock().unwrap().puts.insert(k.clone(), k);
                        }
                        Err(Error::OutcomeUnknown { .. }) => counts.lock().unwrap().unknown_puts += 1,
                        Err(other) => panic!("the conditional put of {k} failed: {other}"),
                    },
                    _ => {
                        let (put, update) = (new_key(&k), add("m"));
                        let transaction = TransactWriteItemsRequest {
                            transact_items: vec![
                                TransactWriteItem { action: Some(Action::Put(put)) },
                                TransactWriteItem { action: Some(Action::Update(update)) },
                            ],
                            client_request_token: String::new(),
                        };
                        match client.transact_write_items(transaction).await {
                            Ok(_) => {
                                let mut counts = counts.lock().unwrap();
                                counts.transactions.0 += 1;
                                counts.puts.insert(k.clone(), k);
                            }
                            Err(Error::OutcomeUnknown { .. }) => counts.lock().unwrap().transactions.1 += 1,
                            Err(other) => panic!("the transaction writing {k} failed: {other}"),
                        }
                    }
                }
            }
        }));
    }
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let leader = region.wait_for_leader(Duration::from_secs(20)).await?;
        region.kill(leader)?;
        tokio::time::sleep(Duration::from_millis(300)).await;
        region.restart(leader)?;
    }
    for writer in writers {
        writer.await?;
    }
    let counts = std::mem::take(&mut *counts.lock().unwrap());
    let lost: u64 = proxies.iter().map(LossyProxy::lost).sum();
    let client = region.client().await?;
    let counter = |name: &str| {
        let get = GetItemRequest {
            table_name: "counters".into(),
            key: [("pk".to_string(), s(name))].into(),
            consistent_read: true,
            ..Default::default()
        };
        let client = client.clone();
        async move {
            let item = client.get_item_request(get).await?.item.expect("the counter");
            anyhow::Ok(match item.attributes["n"].value.clone() {
                Some(tern_client::v1::attribute_value::Value::N(n)) => n.parse::<u64>()?,
                other => panic!("{other:?}"),
            })
        }
    };
    let (n, m) = (counter("n").await?, counter("m").await?);
    eprintln!(
        "{lost} replies lost; n = {n}, m = {m}; ADDs {:?}, transactions {:?}, puts {} (+{} unknown)",
        counts.adds,
        counts.transactions,
        counts.puts.len(),
        counts.unknown_puts
    );
    assert!(lost > 50, "the proxies lost replies ({lost})");
    let ((adds, unknown_adds), (transactions, unknown_transactions)) = (counts.adds, counts.transactions);
    assert!(adds > 300 && transactions > 300, "the load ran through the kills: {counts:?}");
    assert!(adds <= n && n <= adds + unknown_adds, "n is {n}: {adds} ADDs acknowledged, {unknown_adds} unknown");
    assert!(
        transactions <= m && m <= transactions + unknown_transactions,
        "m is {m}: {transactions} transactions acknowledged, {unknown_transactions} unknown"
    );
    check_acknowledged(&client, &counts.puts).await
}

/// A paused leader does not stall clients: under a load of puts and eventually consistent gets from
/// four workers (a client with the default retry policy), the leader is paused with `SIGSTOP` for 20 s,
/// as a VM or GC pause would; the other two nodes elect a leader, and no gap between acknowledged writes,
/// or between acknowledged reads, is longer than 3 s. No call fails, and every acknowledged write reads back.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_leader_paused_for_twenty_seconds_stalls_no_call_for_more_than_three() -> anyhow::Result<()> {
    use std::time::Instant;

    let region = Region::start(3, &[]).await?;
    let client = Client::connect(region.endpoints()).await?;
    client.create_table(kv_table()).await?;
    client.put_item("kvs", entry("seed", "0")).await?;
    // Eventually consistent gets go to every node in turn: each must hold the seed before they start
    // (a follower may apply it just after the put is acknowledged, as in DynamoDB).
    region.settle().await?;
    let stop = Arc::new(AtomicBool::new(false));
    let acknowledged = Arc::new(Mutex::new(BTreeMap::new()));
    let (writes, reads) = (Arc::new(Mutex::new(Vec::new())), Arc::new(Mutex::new(Vec::new())));
    let mut workers = Vec::new();
    for worker in 0..4 {
        let (client, stop, acknowledged) = (client.clone(), stop.clone(), acknowledged.clone());
        let (writes, reads) = (writes.clone(), reads.clone());
        workers.push(tokio::spawn(async move {
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                if worker % 2 == 0 {
                    let (k, v) = (format!("w{worker}-{i}"), i.to_string());
                    client.put_item("kvs", entry(&k, &v)).await.expect("a put fails while two nodes of three run");
                    writes.lock().unwrap().push(Instant::now());
                    acknowledged.lock().unwrap().insert(k, v);
                } else {
                    let found = client.get_item("kvs", key("seed"), false).await.expect("a get fails");
                    assert!(found.is_some(), "the seed item is there");
                    reads.lock().unwrap().push(Instant::now());
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let leader = region.wait_for_leader(Duration::from_secs(10)).await?;
    region.pause(leader)?;
    tokio::time::sleep(Duration::from_secs(20)).await;
    region.resume(leader)?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.await.expect("a worker ran to the end"); // a panic keeps the node logs
    }
    let longest_gap = |acks: &Mutex<Vec<Instant>>| {
        let mut acks = acks.lock().unwrap().clone();
        acks.sort();
        acks.windows(2).map(|w| w[1] - w[0]).max().unwrap_or_default()
    };
    let (write_gap, read_gap) = (longest_gap(&writes), longest_gap(&reads));
    eprintln!("longest gap between acknowledged writes {write_gap:?}, between reads {read_gap:?}");
    assert!(write_gap <= Duration::from_secs(3), "writes stalled for {write_gap:?} while the leader was paused");
    assert!(read_gap <= Duration::from_secs(3), "reads stalled for {read_gap:?} while the leader was paused");
    let acknowledged = acknowledged.lock().unwrap().clone();
    check_acknowledged(&client, &acknowledged).await
}

/// A table that is not there is reported as missing while one node of three is down: the client asks
/// every node before the answer stands, and a node it cannot reach has no say (it used to ask the dead
/// node again until the deadline and report it unreachable instead).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_table_is_reported_as_missing_while_a_node_is_down() -> anyhow::Result<()> {
    use tern_client::v1::DescribeTableRequest;
    use tern_client::ErrorKind;

    let mut region = Region::start(3, &[]).await?;
    let client = region.client().await?;
    client.create_table(kv_table()).await?;
    let leader = region.wait_for_leader(Duration::from_secs(10)).await?;
    let follower = *region.nodes.keys().find(|id| **id != leader).unwrap();
    for down in [follower, leader] {
        region.kill(down)?;
        for _ in 0..3 {
            let missing = client.describe_table(DescribeTableRequest { table_name: "nope".into() }).await.unwrap_err();
            assert_eq!(missing.kind(), Some(ErrorKind::ResourceNotFoundException), "node {down} down: {missing}");
            let got = client.get_item("nope", key("k"), false).await.unwrap_err();
            assert_eq!(got.kind(), Some(ErrorKind::ResourceNotFoundException), "node {down} down: {got}");
        }
        region.restart(down)?;
        region.wait_for_leader(Duration::from_secs(20)).await?;
    }
    Ok(())
}
