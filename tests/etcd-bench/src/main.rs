//! `etcd-bench`: the load `tern bench` runs (closed-loop writers or readers of 100-byte values over a
//! preloaded key space, HDR latency histograms), against an etcd cluster, with the same JSON report, so
//! that `scripts/bench-peers.sh` compares the two on one machine in one run. The histogram helpers
//! repeat `tern bench`'s on purpose: this crate keeps etcd-client out of the `tern` binary.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use etcd_client::{Client, GetOptions};
use hdrhistogram::Histogram;
use rand::Rng;
use serde_json::json;

#[derive(Debug, Clone, Parser)]
#[command(about = "Closed-loop puts or gets against etcd, reported as `tern bench --json` reports")]
struct Args {
    /// The cluster's client URLs, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "http://127.0.0.1:2379")]
    endpoints: Vec<String>,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// How long to run, in seconds.
    #[arg(long, default_value_t = 20)]
    duration: u64,
    /// Distinct keys; written once before the run so that reads find values.
    #[arg(long, default_value_t = 10_000)]
    keys: u64,
    /// Bytes per value.
    #[arg(long, default_value_t = 100)]
    value_size: usize,
    /// Fraction of requests that are reads (0.0 = only puts, 1.0 = only gets).
    #[arg(long, default_value_t = 0.0)]
    read_ratio: f64,
    /// Linearizable reads (through the leader's read index) instead of serializable ones (any member's
    /// local state, as Tern's eventually consistent reads).
    #[arg(long)]
    linearizable: bool,
}

/// The client URL of the cluster's leader, as its members report it.
async fn leader(endpoints: &[String]) -> anyhow::Result<String> {
    for endpoint in endpoints {
        let Ok(mut member) = Client::connect([endpoint], None).await else { continue };
        let Ok(status) = member.status().await else { continue };
        if status.header().is_some_and(|h| h.member_id() == status.leader()) {
            return Ok(endpoint.clone());
        }
    }
    anyhow::bail!("no member of {endpoints:?} says it leads")
}

fn key(k: u64) -> String {
    format!("key-{k}")
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds")
}

fn summary(h: &Histogram<u64>, elapsed: f64) -> serde_json::Value {
    json!({
        "ops": h.len(),
        "ops_per_sec": (h.len() as f64 / elapsed).round(),
        "p50_ms": h.value_at_quantile(0.5) as f64 / 1000.0,
        "p99_ms": h.value_at_quantile(0.99) as f64 / 1000.0,
        "p999_ms": h.value_at_quantile(0.999) as f64 / 1000.0,
        "max_ms": h.max() as f64 / 1000.0,
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!((0.0..=1.0).contains(&args.read_ratio), "--read-ratio must be between 0 and 1");
    anyhow::ensure!(args.concurrency > 0 && args.keys > 0, "--concurrency and --keys must be positive");
    // Puts go to the leader, as Tern's client sends its writes to its region's leader; gets go to
    // every member in turn (etcd-client balances a client over its endpoints).
    let readers = Client::connect(&args.endpoints, None).await?;
    let writer = Client::connect([leader(&args.endpoints).await?], None).await?;
    let value = vec![b'x'; args.value_size];

    eprintln!("preloading {} keys ...", args.keys);
    let next = Arc::new(AtomicU64::new(0));
    let mut loaders = Vec::new();
    for _ in 0..args.concurrency.min(64) {
        let (mut client, next, value, keys) = (writer.clone(), next.clone(), value.clone(), args.keys);
        loaders.push(tokio::spawn(async move {
            loop {
                let k = next.fetch_add(1, Ordering::Relaxed);
                if k >= keys {
                    return Ok::<_, etcd_client::Error>(());
                }
                client.put(key(k), value.clone(), None).await?;
            }
        }));
    }
    for loader in loaders {
        loader.await??;
    }

    eprintln!("running {}s: concurrency {}, read ratio {} ...", args.duration, args.concurrency, args.read_ratio);
    let errors = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let until = started + Duration::from_secs(args.duration);
    let mut workers = Vec::new();
    for _ in 0..args.concurrency {
        let (mut writer, mut readers) = (writer.clone(), readers.clone());
        let (args, value, errors) = (args.clone(), value.clone(), errors.clone());
        workers.push(tokio::spawn(async move {
            let (mut gets, mut puts) = (histogram(), histogram());
            while Instant::now() < until {
                let (k, is_read) = {
                    let mut rng = rand::rng();
                    (rng.random_range(0..args.keys), rng.random_bool(args.read_ratio))
                };
                let at = Instant::now();
                let ok = if is_read {
                    let options = (!args.linearizable).then(|| GetOptions::new().with_serializable());
                    readers.get(key(k), options).await.is_ok_and(|r| r.kvs().len() == 1)
                } else {
                    writer.put(key(k), value.clone(), None).await.is_ok()
                };
                if ok {
                    let h = if is_read { &mut gets } else { &mut puts };
                    h.saturating_record((at.elapsed().as_micros() as u64).max(1));
                } else {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
            }
            (gets, puts)
        }));
    }
    let (mut gets, mut puts) = (histogram(), histogram());
    for worker in workers {
        let (g, p) = worker.await?;
        gets.add(&g)?;
        puts.add(&p)?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let report = json!({
        "system": "etcd",
        "duration_secs": elapsed,
        "concurrency": args.concurrency,
        "item_size": args.value_size,
        "read_ratio": args.read_ratio,
        "total_ops_per_sec": ((gets.len() + puts.len()) as f64 / elapsed).round(),
        "errors": errors.load(Ordering::Relaxed),
        "get": summary(&gets, elapsed),
        "put": summary(&puts, elapsed),
    });
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}
