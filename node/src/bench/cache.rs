//! The cache tier's workloads: Query of one partition (for the query cache), and the delay from a write
//! made on the nodes until a cache serves it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::json;
use tern_client::{AttributeValue, Client, Item};
use tern_proto::v1::{GetItemRequest, QueryRequest};

use super::{add_delays, emit, histogram, item, key, BenchArgs};

/// A Query of the partition of preloaded key `k`.
pub(super) fn query(table: &str, k: u64, consistent_read: bool) -> QueryRequest {
    let values: Item = [(":k".to_string(), AttributeValue::S(format!("key-{k}")))].into();
    QueryRequest {
        table_name: table.into(),
        key_condition_expression: "pk = :k".into(),
        expression_attribute_values: tern_client::v1_item(&values),
        consistent_read,
        ..Default::default()
    }
}

/// Each worker owns a key: it puts a new value through the nodes, then reads the key through the cache
/// until the cache serves that value, and records the time from the put's acknowledgement.
pub(super) async fn cache_delay(args: BenchArgs, client: Client) -> anyhow::Result<()> {
    let cache = args.cache.clone().context("--cache names the cache node to read through")?;
    let through = Client::connect([cache.as_str()]).await?;
    eprintln!(
        "writing for {}s with concurrency {} while reading through the cache at {cache} ...",
        args.duration, args.concurrency
    );
    let started = Instant::now();
    let until = started + Duration::from_secs(args.duration);
    let stale = Arc::new(AtomicU64::new(0));
    let mut workers = Vec::new();
    for worker in 0..args.concurrency as u64 {
        let (client, through, args, stale) = (client.clone(), through.clone(), args.clone(), stale.clone());
        workers.push(tokio::spawn(async move {
            let k = 1_000_000 + worker;
            let mut delays = Vec::new();
            let mut version = 0u64;
            // Cached first, so that each write has an entry to refresh.
            through.get_item(&args.table_name, key(k), false).await?;
            while Instant::now() < until {
                version += 1;
                let mut written = item(k, args.item_size);
                written.insert("version".into(), AttributeValue::N(version.into()));
                client.put_item(&args.table_name, written).await?;
                let acknowledged = Instant::now();
                loop {
                    let request = GetItemRequest {
                        table_name: args.table_name.clone(),
                        key: tern_client::v1_item(&key(k)),
                        ..Default::default()
                    };
                    let response = through.get_item_request(request).await?;
                    let seen = response.item.and_then(|i| tern_client::item_from(i.attributes).ok());
                    if seen.and_then(|i| i.get("version").cloned()) == Some(AttributeValue::N(version.into())) {
                        break;
                    }
                    stale.fetch_add(1, Ordering::Relaxed);
                    anyhow::ensure!(
                        acknowledged.elapsed() < Duration::from_secs(10),
                        "the cache never served key-{k} v{version}"
                    );
                }
                delays.push(acknowledged.elapsed());
            }
            anyhow::Ok(delays)
        }));
    }
    let mut delays = histogram();
    for worker in workers {
        for delay in worker.await?? {
            delays.saturating_record(delay.as_micros().max(1) as u64);
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let mut report = json!({
        "workload": "CacheDelay",
        "duration_secs": elapsed,
        "concurrency": args.concurrency,
        "writes_per_sec": (delays.len() as f64 / elapsed).round(),
        "stale_reads": stale.load(Ordering::Relaxed),
    });
    add_delays(&mut report, &delays);
    let line = format!(
        "{} writes/s; acknowledgement on the nodes to served by the cache: p50 {} ms, p99 {} ms, max {} ms",
        report["writes_per_sec"], report["delay_p50_ms"], report["delay_p99_ms"], report["delay_max_ms"]
    );
    emit(args.json, &report, line)?;
    Ok(())
}
