//! The cache tier with real processes: a region of three nodes and `tern cache` in front of it.
//! Hits after the first read, write-through, freshness after writes that bypass the cache (a client of
//! a node, the TTL sweeper), the memory bound, consistent reads passed through, a restarted cache, the
//! leader killed while the cache serves, the node's own errors, and a checker that compares every
//! cached item with the region's consistent value after concurrent writers and readers.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use ::tern_client::v1::*;
use ::tern_client::Client;
use serde_json::Value as Json;
use tern_tests::cache::CacheProcess;
use tern_tests::dynamo::{create_table, error, json, wire};
use tern_tests::Region;

fn key(pk: &str) -> BTreeMap<String, AttributeValue> {
    wire(&format!(r#"{{"pk":{{"S":"{pk}"}}}}"#))
}

fn item(pk: &str, value: &str) -> BTreeMap<String, AttributeValue> {
    wire(&format!(r#"{{"pk":{{"S":"{pk}"}},"v":{{"S":"{value}"}}}}"#))
}

async fn put(client: &Client, table: &str, pk: &str, value: &str) -> anyhow::Result<()> {
    client
        .put_item_request(PutItemRequest { table_name: table.into(), item: item(pk, value), ..Default::default() })
        .await?;
    Ok(())
}

/// The `v` of an item read eventually consistently (None: no item).
async fn read(client: &Client, table: &str, pk: &str) -> anyhow::Result<Option<String>> {
    read_with(client, table, pk, false).await
}

async fn read_with(client: &Client, table: &str, pk: &str, consistent: bool) -> anyhow::Result<Option<String>> {
    let request =
        GetItemRequest { table_name: table.into(), key: key(pk), consistent_read: consistent, ..Default::default() };
    let response = client.get_item_request(request).await?;
    Ok(response.item.map(|i| json(&i.attributes)["v"]["S"].as_str().unwrap_or_default().to_string()))
}

/// Waits until the cache's feed has brought everything the region's leader has applied (a table just
/// created included: until then its first reads may be filled twice).
async fn caught_up(cache: &CacheProcess, client: &Client, table: &str) -> anyhow::Result<()> {
    let probe =
        GetItemRequest { table_name: table.into(), key: key("probe"), consistent_read: true, ..Default::default() };
    let latest = client.get_item_request(probe).await?.applied_through_micros;
    let started = Instant::now();
    while cache.status()?["feed"]["position"].as_u64().unwrap_or(0) < latest {
        anyhow::ensure!(started.elapsed() < Duration::from_secs(5), "the cache's feed did not reach {latest}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(())
}

fn counter(status: &Json, cache: &str, name: &str) -> u64 {
    status[cache][name].as_u64().unwrap_or_else(|| panic!("no {cache}.{name} in {status}"))
}

/// Waits until the cache serves `expected` for `pk`; the time it took.
async fn served_within(
    client: &Client,
    table: &str,
    pk: &str,
    expected: Option<&str>,
    timeout: Duration,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    loop {
        let seen = read(client, table, pk).await?;
        if seen.as_deref() == expected {
            return Ok(started.elapsed());
        }
        anyhow::ensure!(started.elapsed() < timeout, "the cache still serves {seen:?} for {pk}, not {expected:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn reads_hit_after_the_first_and_writes_through_the_cache_are_seen_at_once() -> anyhow::Result<()> {
    let region = Region::start(3, &[]).await?;
    let cache = CacheProcess::start(&region, &[]).await?;
    let client = cache.client().await?;
    create_table(&client, "tbl", "pk:S", None).await?;
    caught_up(&cache, &client, "tbl").await?;

    assert_eq!(read(&client, "tbl", "a").await?, None, "absent at first");
    assert_eq!(read(&client, "tbl", "a").await?, None, "and cached as absent");
    let status = cache.status()?;
    assert_eq!((counter(&status, "item_cache", "misses"), counter(&status, "item_cache", "hits")), (1, 1));

    for round in 0..20 {
        let value = format!("v{round}");
        put(&client, "tbl", "a", &value).await?;
        assert_eq!(read(&client, "tbl", "a").await?.as_deref(), Some(value.as_str()), "round {round}");
    }
    client
        .delete_item_request(DeleteItemRequest { table_name: "tbl".into(), key: key("a"), ..Default::default() })
        .await?;
    assert_eq!(read(&client, "tbl", "a").await?, None, "a delete through the cache is seen at once");
    // UpdateItem's new item is learned from the region, whatever ReturnValues the caller asked for.
    let update = UpdateItemRequest {
        table_name: "tbl".into(),
        key: key("a"),
        update_expression: "SET v = :v".into(),
        expression_attribute_values: wire(r#"{":v":{"S":"updated"}}"#),
        ..Default::default()
    };
    let response = client.update_item(update).await?;
    assert_eq!(response.attributes, None, "ReturnValues NONE returns no attributes");
    assert_eq!(read(&client, "tbl", "a").await?.as_deref(), Some("updated"));
    let status = cache.status()?;
    assert_eq!(counter(&status, "item_cache", "misses"), 1, "every read after the first was a hit: {status}");
    assert_eq!(counter(&status, "item_cache", "hits"), 23);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn writes_that_bypass_the_cache_are_served_fresh_within_the_feeds_delay() -> anyhow::Result<()> {
    let region = Region::start(3, &["--ttl-sweep-interval-ms", "200"]).await?;
    let cache = CacheProcess::start(&region, &[]).await?;
    let (through_cache, direct) = (cache.client().await?, region.client().await?);
    create_table(&direct, "tbl", "pk:S", None).await?;
    put(&direct, "tbl", "a", "v0").await?;
    served_within(&through_cache, "tbl", "a", Some("v0"), Duration::from_secs(5)).await?;

    let mut delays = Vec::new();
    for round in 1..=20 {
        let value = format!("v{round}");
        put(&direct, "tbl", "a", &value).await?;
        delays.push(served_within(&through_cache, "tbl", "a", Some(&value), Duration::from_secs(5)).await?);
    }
    direct
        .delete_item_request(DeleteItemRequest { table_name: "tbl".into(), key: key("a"), ..Default::default() })
        .await?;
    delays.push(served_within(&through_cache, "tbl", "a", None, Duration::from_secs(5)).await?);
    delays.sort();
    eprintln!("direct write to cache served: p50 {:?}, max {:?}", delays[delays.len() / 2], delays.last().unwrap());

    // A page of the query cache is refreshed by a write to its partition.
    create_table(&direct, "qry", "pk:S", Some("sk:N")).await?;
    // Probed on tbl: the position is the region's.
    caught_up(&cache, &direct, "tbl").await?;
    let query = QueryRequest {
        table_name: "qry".into(),
        key_condition_expression: "pk = :p".into(),
        expression_attribute_values: wire(r#"{":p":{"S":"p"}}"#),
        ..Default::default()
    };
    assert_eq!(through_cache.query(query.clone()).await?.count, 0);
    assert_eq!(through_cache.query(query.clone()).await?.count, 0, "an empty page is cached too");
    direct
        .put_item_request(PutItemRequest {
            table_name: "qry".into(),
            item: wire(r#"{"pk":{"S":"p"},"sk":{"N":"1"}}"#),
            ..Default::default()
        })
        .await?;
    let started = Instant::now();
    while through_cache.query(query.clone()).await?.count != 1 {
        anyhow::ensure!(started.elapsed() < Duration::from_secs(5), "the cached page was not refreshed");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let status = cache.status()?;
    assert!(counter(&status, "query_cache", "hits") >= 1, "the empty page was served from the cache: {status}");

    // A TTL delete, made by the region's sweeper, reaches the cache too.
    direct
        .update_time_to_live(UpdateTimeToLiveRequest {
            table_name: "tbl".into(),
            time_to_live_specification: Some(TimeToLiveSpecification {
                enabled: true,
                attribute_name: "exp".into(),
                hide_expired_items: false,
            }),
        })
        .await?;
    // Expiring in two seconds: cached first, then deleted by the sweeper.
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs();
    let expired = wire(&format!(r#"{{"pk":{{"S":"e"}},"v":{{"S":"x"}},"exp":{{"N":"{}"}}}}"#, now + 2));
    direct.put_item_request(PutItemRequest { table_name: "tbl".into(), item: expired, ..Default::default() }).await?;
    served_within(&through_cache, "tbl", "e", Some("x"), Duration::from_secs(1)).await?;
    let hits = counter(&cache.status()?, "item_cache", "hits");
    assert_eq!(read(&through_cache, "tbl", "e").await?.as_deref(), Some("x"));
    assert_eq!(counter(&cache.status()?, "item_cache", "hits"), hits + 1, "the item is cached");
    served_within(&through_cache, "tbl", "e", None, Duration::from_secs(20)).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn consistent_reads_pass_through_and_bad_input_gets_the_nodes_errors() -> anyhow::Result<()> {
    let region = Region::start(3, &[]).await?;
    let cache = CacheProcess::start(&region, &[]).await?;
    let (through_cache, direct) = (cache.client().await?, region.client().await?);
    create_table(&direct, "tbl", "pk:S", None).await?;
    put(&direct, "tbl", "a", "v0").await?;
    served_within(&through_cache, "tbl", "a", Some("v0"), Duration::from_secs(5)).await?;
    let hits = counter(&cache.status()?, "item_cache", "hits");
    for round in 1..=10 {
        let value = format!("v{round}");
        put(&direct, "tbl", "a", &value).await?;
        assert_eq!(read_with(&through_cache, "tbl", "a", true).await?.as_deref(), Some(value.as_str()));
    }
    assert_eq!(counter(&cache.status()?, "item_cache", "hits"), hits, "consistent reads never hit");

    let bad = [
        GetItemRequest { table_name: "missing".into(), key: key("a"), ..Default::default() },
        GetItemRequest { table_name: "tbl".into(), key: wire(r#"{"pk":{"N":"1"}}"#), ..Default::default() },
        GetItemRequest {
            table_name: "tbl".into(),
            key: wire(r#"{"pk":{"S":"a"},"x":{"S":"b"}}"#),
            ..Default::default()
        },
        GetItemRequest {
            table_name: "tbl".into(),
            key: key("a"),
            projection_expression: "#missing".into(),
            ..Default::default()
        },
    ];
    for request in bad {
        let from_node = error(direct.get_item_request(request.clone()).await);
        let from_cache = error(through_cache.get_item_request(request.clone()).await);
        assert_eq!(from_cache, from_node, "{request:?}");
    }
    let batch = BatchGetItemRequest {
        request_items: [(
            "tbl".to_string(),
            KeysAndAttributes {
                keys: vec![Item { attributes: key("a") }, Item { attributes: key("a") }],
                ..Default::default()
            },
        )]
        .into(),
    };
    assert_eq!(error(through_cache.batch_get_item(batch.clone()).await), error(direct.batch_get_item(batch).await));
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cache_stays_within_its_memory_bound() -> anyhow::Result<()> {
    let region = Region::start(3, &[]).await?;
    let bound = 200_000u64;
    let cache = CacheProcess::start(&region, &["--item-cache-bytes", &bound.to_string()]).await?;
    let (through_cache, direct) = (cache.client().await?, region.client().await?);
    create_table(&direct, "tbl", "pk:S", None).await?;
    let value = "x".repeat(1000);
    for i in 0..600 {
        put(&direct, "tbl", &format!("k{i}"), &value).await?;
    }
    for i in 0..600 {
        assert_eq!(read(&through_cache, "tbl", &format!("k{i}")).await?.as_deref(), Some(value.as_str()));
    }
    let status = cache.status()?;
    let bytes = counter(&status, "item_cache", "bytes");
    assert!(bytes <= bound, "the item cache holds {bytes} bytes, over its bound of {bound}: {status}");
    assert!(status["evictions"].as_u64().unwrap() > 0, "{status}");
    assert!(counter(&status, "item_cache", "entries") < 600, "{status}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restarted_cache_is_cold_and_correct_and_a_dead_leader_does_not_stop_its_hits() -> anyhow::Result<()> {
    let mut region = Region::start(3, &[]).await?;
    let mut cache = CacheProcess::start(&region, &[]).await?;
    let (through_cache, direct) = (cache.client().await?, region.client().await?);
    create_table(&direct, "tbl", "pk:S", None).await?;
    put(&through_cache, "tbl", "a", "v1").await?;
    assert_eq!(read(&through_cache, "tbl", "a").await?.as_deref(), Some("v1"));

    cache.kill()?;
    put(&direct, "tbl", "a", "v2").await?;
    cache.restart().await?;
    let status = cache.status()?;
    assert_eq!(counter(&status, "item_cache", "entries"), 0, "{status}");
    assert_eq!(read(&through_cache, "tbl", "a").await?.as_deref(), Some("v2"));

    // The leader dies: cached items are still served, and writes through the cache go on once a new
    // leader is elected (the client and the cache retry).
    let leader = region.wait_for_leader(Duration::from_secs(10)).await?;
    region.kill(leader)?;
    for _ in 0..20 {
        assert_eq!(read(&through_cache, "tbl", "a").await?.as_deref(), Some("v2"));
    }
    put(&through_cache, "tbl", "a", "v3").await?;
    assert_eq!(read(&through_cache, "tbl", "a").await?.as_deref(), Some("v3"));
    assert_eq!(read_with(&direct, "tbl", "a", true).await?.as_deref(), Some("v3"));
    Ok(())
}

/// Writers through the cache and directly to the nodes, readers through the cache, at once; then every
/// item the cache serves must equal the region's consistent value once the feed has caught up (a
/// checker in the manner of Meta's Polaris).
#[tokio::test(flavor = "multi_thread")]
async fn after_concurrent_writers_and_readers_every_cached_item_equals_the_region() -> anyhow::Result<()> {
    let region = Region::start(3, &[]).await?;
    let cache = CacheProcess::start(&region, &[]).await?;
    let (through_cache, direct) = (cache.client().await?, region.client().await?);
    create_table(&direct, "tbl", "pk:S", None).await?;
    let keys: Vec<String> = (0..20).map(|i| format!("k{i}")).collect();
    let mut tasks = Vec::new();
    for worker in 0..6 {
        let client = if worker % 2 == 0 { through_cache.clone() } else { direct.clone() };
        let reader = through_cache.clone();
        let keys = keys.clone();
        tasks.push(tokio::spawn(async move {
            for round in 0..60 {
                let key = &keys[(worker * 7 + round * 3) % keys.len()];
                if round % 5 == 4 {
                    let request =
                        DeleteItemRequest { table_name: "tbl".into(), key: self::key(key), ..Default::default() };
                    client.delete_item_request(request).await?;
                } else {
                    put(&client, "tbl", key, &format!("w{worker}r{round}")).await?;
                }
                read(&reader, "tbl", &keys[(worker + round) % keys.len()]).await?;
            }
            anyhow::Ok(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    // Once the cache's position has passed every write, every item it serves equals the consistent value.
    let probe =
        GetItemRequest { table_name: "tbl".into(), key: key("k0"), consistent_read: true, ..Default::default() };
    let latest = direct.get_item_request(probe).await?.applied_through_micros;
    let started = Instant::now();
    while cache.status()?["feed"]["position"].as_u64().unwrap_or(0) < latest {
        anyhow::ensure!(started.elapsed() < Duration::from_secs(5), "the cache's feed did not reach {latest}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for key in &keys {
        let truth = read_with(&direct, "tbl", key, true).await?;
        assert_eq!(read(&through_cache, "tbl", key).await?, truth, "{key}");
    }
    let status = cache.status()?;
    assert!(counter(&status, "item_cache", "hits") > 0, "{status}");
    Ok(())
}

/// A write made in another region reaches the cache through its own region's feed, as the replicator
/// applies it (DAX stays stale until its TTL).
#[tokio::test(flavor = "multi_thread")]
async fn a_write_replicated_from_another_region_is_served_fresh() -> anyhow::Result<()> {
    let deployment = tern_tests::global::Deployment::start(&["eu-west", "us-east"], &[]).await?;
    let cache = CacheProcess::start(&deployment.regions["eu-west"], &[]).await?;
    let (east, west_cache) = (deployment.client("us-east").await?, cache.client().await?);
    create_table(&east, "tbl", "pk:S", None).await?;
    let replica = ReplicationGroupUpdate {
        action: Some(replication_group_update::Action::Create(CreateReplicationGroupMemberAction {
            region_name: "eu-west".into(),
        })),
    };
    east.update_table(UpdateTableRequest {
        table_name: "tbl".into(),
        replica_updates: vec![replica],
        ..Default::default()
    })
    .await?;
    deployment.wait_active("tbl", Duration::from_secs(30)).await?;
    assert_eq!(read(&west_cache, "tbl", "a").await?, None);
    for round in 1..=5 {
        let value = format!("east{round}");
        put(&east, "tbl", "a", &value).await?;
        let delay = served_within(&west_cache, "tbl", "a", Some(&value), Duration::from_secs(10)).await?;
        eprintln!("replicated write served by the other region's cache after {delay:?}");
    }
    let status = cache.status()?;
    assert!(counter(&status, "item_cache", "hits") > 0, "{status}");
    Ok(())
}

/// The node whose feed the cache follows is killed: the cache resumes on another node from its
/// position, keeps what it holds (no reset), and still sees every later write.
#[tokio::test(flavor = "multi_thread")]
async fn the_cache_resumes_on_another_node_when_the_one_it_follows_dies() -> anyhow::Result<()> {
    let mut region = Region::start(3, &[]).await?;
    let cache = CacheProcess::start(&region, &[]).await?;
    let (through_cache, direct) = (cache.client().await?, region.client().await?);
    create_table(&direct, "tbl", "pk:S", None).await?;
    put(&direct, "tbl", "a", "v1").await?;
    served_within(&through_cache, "tbl", "a", Some("v1"), Duration::from_secs(5)).await?;
    let status = cache.status()?;
    let following = status["feed"]["following"].as_str().unwrap().to_string();
    let followed = region.nodes.values().find(|n| n.address == following).map(|n| n.id).expect("a node of the region");
    region.kill(followed)?;
    for round in 2..=6 {
        let value = format!("v{round}");
        put(&direct, "tbl", "a", &value).await?;
        served_within(&through_cache, "tbl", "a", Some(&value), Duration::from_secs(10)).await?;
    }
    let status = cache.status()?;
    assert_ne!(status["feed"]["following"].as_str().unwrap(), following, "{status}");
    assert_eq!(status["feed"]["resets"], 0, "it resumed where it was: {status}");
    assert!(counter(&status, "item_cache", "entries") >= 1, "it kept what it held: {status}");
    region.restart(followed)?;
    Ok(())
}

/// `--item-ttl` expires entries (the next read is a miss again); a query TTL of 0 caches no pages, as
/// DAX defines it.
#[tokio::test(flavor = "multi_thread")]
async fn entries_expire_after_the_item_ttl_and_a_query_ttl_of_zero_caches_nothing() -> anyhow::Result<()> {
    let region = Region::start(3, &[]).await?;
    let cache = CacheProcess::start(&region, &["--item-ttl", "1", "--query-ttl", "0"]).await?;
    let through_cache = cache.client().await?;
    create_table(&through_cache, "tbl", "pk:S", None).await?;
    put(&region.client().await?, "tbl", "a", "v1").await?;
    caught_up(&cache, &through_cache, "tbl").await?;
    served_within(&through_cache, "tbl", "a", Some("v1"), Duration::from_secs(5)).await?;
    let misses = counter(&cache.status()?, "item_cache", "misses");
    assert_eq!(read(&through_cache, "tbl", "a").await?.as_deref(), Some("v1"));
    assert_eq!(counter(&cache.status()?, "item_cache", "misses"), misses, "a hit within the TTL");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(read(&through_cache, "tbl", "a").await?.as_deref(), Some("v1"));
    assert_eq!(counter(&cache.status()?, "item_cache", "misses"), misses + 1, "a miss once the TTL passed");

    let query = QueryRequest {
        table_name: "tbl".into(),
        key_condition_expression: "pk = :p".into(),
        expression_attribute_values: wire(r#"{":p":{"S":"a"}}"#),
        ..Default::default()
    };
    for _ in 0..3 {
        assert_eq!(through_cache.query(query.clone()).await?.count, 1);
    }
    let status = cache.status()?;
    assert_eq!(
        (counter(&status, "query_cache", "hits"), counter(&status, "query_cache", "entries")),
        (0, 0),
        "{status}"
    );
    Ok(())
}

/// Two cache nodes serve the same region: each follows the feed itself, so a write through one is
/// served by the other within the feed's delay, and a client given both spreads its reads over them.
#[tokio::test(flavor = "multi_thread")]
async fn several_caches_serve_one_region_and_a_client_spreads_reads_over_them() -> anyhow::Result<()> {
    let region = Region::start(3, &[]).await?;
    let (first, second) = (CacheProcess::start(&region, &[]).await?, CacheProcess::start(&region, &[]).await?);
    let (through_first, through_second) = (first.client().await?, second.client().await?);
    create_table(&through_first, "tbl", "pk:S", None).await?;
    assert_eq!(read(&through_second, "tbl", "a").await?, None);
    for round in 1..=5 {
        let value = format!("v{round}");
        put(&through_first, "tbl", "a", &value).await?;
        served_within(&through_second, "tbl", "a", Some(&value), Duration::from_secs(5)).await?;
    }
    let both = Client::connect([first.address.as_str(), second.address.as_str()]).await?;
    for _ in 0..40 {
        assert_eq!(read(&both, "tbl", "a").await?.as_deref(), Some("v5"));
    }
    let reads = |status: Json| counter(&status, "item_cache", "hits") + counter(&status, "item_cache", "misses");
    let (before_first, before_second) = (reads(first.status()?), reads(second.status()?));
    for _ in 0..40 {
        read(&both, "tbl", "a").await?;
    }
    let (after_first, after_second) = (reads(first.status()?), reads(second.status()?));
    assert_eq!(after_first - before_first + after_second - before_second, 40);
    assert!(after_first > before_first && after_second > before_second, "reads went to both caches");
    Ok(())
}
