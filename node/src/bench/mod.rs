//! `tern bench`: a closed-loop load of puts and gets against a running region, reporting throughput
//! and latency percentiles from HDR histograms.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod cache;
mod load;
mod pause;
mod replication;

use clap::Args;
use hdrhistogram::Histogram;
use rand::Rng;
use serde_json::json;
use tern_client::{AttributeValue, Client, ErrorKind, Item};
use tern_proto::v1::transact_write_item::Action;
use tern_proto::v1::{
    AttributeDefinition, CreateTableRequest, KeySchemaElement, TransactWriteItem, TransactWriteItemsRequest,
    UpdateItemRequest,
};

/// What each request of the benchmark does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Workload {
    /// PutItem and GetItem, mixed by --read-ratio.
    Kv,
    /// UpdateItem `SET v = if_not_exists(v, :zero) + :one` with `attribute_exists(pk)` as its condition.
    ConditionalUpdate,
    /// TransactWriteItems of ten conditional updates on ten distinct keys.
    Transaction,
    /// PutItem of new keys while a Subscribe follows the table's stream: the delay from each write's
    /// acknowledgement to its record's delivery.
    StreamDelay,
    /// Items written (BatchWriteItem) to expire `--expiring-per-second` each second for `--duration`
    /// seconds: the delay from each item's expiry to its TTL delete.
    Ttl,
    /// Query of one partition (`pk = :k`, a random preloaded key) per request; `--consistent-read` asks
    /// for strongly consistent pages. Against a cache, its query cache.
    Query,
    /// PutItem through the nodes (`--endpoint`) while reading the same key through a cache (`--cache`):
    /// the delay from each write's acknowledgement until the cache serves it.
    CacheDelay,
    /// Global tables, on a `tern playground --regions A,B` (`--playground FILE`): both regions take
    /// `--rate` puts per second each; the delay from each put's acknowledgement to its record in the
    /// other region's stream (replication lag), against its own region's (the baseline). Then the
    /// replicator of B is paused for `--pause-secs` while A writes, and the catch-up rate is measured.
    Replication,
    /// BatchWriteItem of `--keys` new items (`--item-size` bytes each, 25 per request), then stop: loads
    /// a table, e.g. for `scripts/bench-pitr.sh`'s restores. Reports the items written per second.
    Load,
}

#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// What each request does.
    #[arg(long, value_enum, default_value = "kv")]
    pub workload: Workload,
    /// Table to use (created with partition key `pk` of type S when missing).
    #[arg(long, default_value = "bench")]
    pub table_name: String,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// Bytes of payload per item.
    #[arg(long, default_value_t = 100)]
    pub item_size: usize,
    /// Fraction of requests that are reads (0.0 = only puts, 1.0 = only gets).
    #[arg(long, default_value_t = 0.5)]
    pub read_ratio: f64,
    /// How long to run, in seconds.
    #[arg(long, default_value_t = 30)]
    pub duration: u64,
    /// Stop after this many requests (all workers together, failed ones included) instead of after
    /// --duration: a fixed workload, as the instruction count of `scripts/bench-instructions.sh` needs.
    /// Kv, conditional-update and transaction workloads only.
    #[arg(long)]
    pub requests: Option<u64>,
    /// Distinct keys; they are written once before the run so reads find items.
    #[arg(long, default_value_t = 10_000)]
    pub keys: u64,
    /// Strongly consistent reads (through the leader).
    #[arg(long)]
    pub consistent_read: bool,
    /// Baseline: every request is a node-status call (a gRPC round trip through the same client, no storage).
    #[arg(long)]
    pub ping: bool,
    /// Items expiring each second in the TTL workload.
    #[arg(long, default_value_t = 10_000)]
    pub expiring_per_second: u64,
    /// Create the table with a stream (NEW_AND_OLD_IMAGES) on.
    #[arg(long)]
    pub stream: bool,
    /// The playground's `playground.json` (replication workload: its topology and replicators).
    #[arg(long)]
    pub playground: Option<std::path::PathBuf>,
    /// Puts per second in each region (replication workload).
    #[arg(long, default_value_t = 500)]
    pub rate: u64,
    /// How long the replicator is paused to build a backlog (replication workload); 0 skips it.
    #[arg(long, default_value_t = 60)]
    pub pause_secs: u64,
    /// Pause the region's leader (`SIGSTOP`) for this many seconds during the run, `--pause-after-secs`
    /// into it (needs `--playground`), and report what the clients saw meanwhile.
    #[arg(long, requires = "playground")]
    pub pause_leader_secs: Option<u64>,
    /// When the leader is paused, in seconds from the start of the run.
    #[arg(long, default_value_t = 5)]
    pub pause_after_secs: u64,
    /// The cache node the cache-delay workload reads through.
    #[arg(long)]
    pub cache: Option<String>,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

fn item(key: u64, size: usize) -> Item {
    let payload: String = std::iter::repeat_n('x', size).collect();
    Item::from([
        ("pk".to_string(), AttributeValue::S(format!("key-{key}"))),
        ("payload".to_string(), AttributeValue::S(payload)),
    ])
}

fn key(key: u64) -> Item {
    Item::from([("pk".to_string(), AttributeValue::S(format!("key-{key}")))])
}

fn conditional_update(table: &str, k: u64) -> UpdateItemRequest {
    let values: Item =
        [(":zero".to_string(), AttributeValue::N(0.into())), (":one".to_string(), AttributeValue::N(1.into()))].into();
    UpdateItemRequest {
        table_name: table.into(),
        key: tern_client::v1_item(&key(k)),
        update_expression: "SET v = if_not_exists(v, :zero) + :one".into(),
        condition_expression: "attribute_exists(pk)".into(),
        expression_attribute_values: tern_client::v1_item(&values),
        ..Default::default()
    }
}

pub(crate) fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds")
}

/// Runs the benchmark and prints its report.
pub async fn run(args: BenchArgs, client: Client) -> anyhow::Result<()> {
    if args.workload == Workload::Replication {
        return replication::run(&args).await;
    }
    anyhow::ensure!((0.0..=1.0).contains(&args.read_ratio), "--read-ratio must be between 0 and 1");
    anyhow::ensure!(args.concurrency > 0 && args.keys > 0, "--concurrency and --keys must be positive");
    let create = CreateTableRequest {
        table_name: args.table_name.clone(),
        attribute_definitions: vec![AttributeDefinition { attribute_name: "pk".into(), attribute_type: "S".into() }],
        key_schema: vec![KeySchemaElement { attribute_name: "pk".into(), key_type: "HASH".into() }],
        billing_mode: String::new(),
        stream_specification: (args.stream || matches!(args.workload, Workload::StreamDelay | Workload::Ttl)).then(
            || tern_proto::v1::StreamSpecification {
                stream_enabled: true,
                stream_view_type: "NEW_AND_OLD_IMAGES".into(),
                retention_days: 0,
            },
        ),
    };
    let preload = if args.ping { 0 } else { args.keys };
    match client.create_table(create).await {
        Ok(_) => {}
        Err(e) if e.kind() == Some(ErrorKind::ResourceInUseException) => {}
        Err(e) => return Err(e.into()),
    }

    anyhow::ensure!(
        args.requests.is_none()
            || !matches!(args.workload, Workload::StreamDelay | Workload::Ttl | Workload::CacheDelay | Workload::Load),
        "--requests is for the kv, query, conditional-update and transaction workloads"
    );
    if args.workload == Workload::StreamDelay {
        return stream_delay(args, client).await;
    }
    if args.workload == Workload::Ttl {
        return ttl_delay(args, client).await;
    }
    if args.workload == Workload::CacheDelay {
        return cache::cache_delay(args, client).await;
    }
    if args.workload == Workload::Load {
        return load::load(args, client).await;
    }
    eprintln!("preloading {preload} keys ...");
    let next = Arc::new(AtomicU64::new(0));
    let mut loaders = Vec::new();
    for _ in 0..args.concurrency {
        let (client, next, args) = (client.clone(), next.clone(), args.clone());
        loaders.push(tokio::spawn(async move {
            loop {
                let k = next.fetch_add(1, Ordering::Relaxed);
                if k >= preload {
                    return Ok::<_, tern_client::Error>(());
                }
                client.put_item(&args.table_name, item(k, args.item_size)).await?;
            }
        }));
    }
    for loader in loaders {
        loader.await??;
    }

    eprintln!(
        "running {}s: concurrency {}, item size {} B, read ratio {} ...",
        args.duration, args.concurrency, args.item_size, args.read_ratio
    );
    let done = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let pause = args.pause_leader_secs.map(|secs| {
        let (client, playground) = (client.clone(), args.playground.clone().unwrap_or_default());
        let (after, length) = (Duration::from_secs(args.pause_after_secs), Duration::from_secs(secs));
        tokio::spawn(async move { pause::pause_leader(client, &playground, after, length).await })
    });
    let started = Instant::now();
    let until = started
        + if args.requests.is_some() { Duration::from_secs(86_400) } else { Duration::from_secs(args.duration) };
    let issued = Arc::new(AtomicU64::new(0));
    let mut workers = Vec::new();
    for _ in 0..args.concurrency {
        let (client, args, done, errors) = (client.clone(), args.clone(), done.clone(), errors.clone());
        let issued = issued.clone();
        workers.push(tokio::spawn(async move {
            let (mut reads, mut writes) = (Acks::default(), Acks::default());
            while Instant::now() < until && args.requests.is_none_or(|n| issued.fetch_add(1, Ordering::Relaxed) < n) {
                let (k, is_read) = {
                    let mut rng = rand::rng();
                    let writes_only = args.workload != Workload::Kv;
                    (rng.random_range(0..args.keys), !writes_only && (args.ping || rng.random_bool(args.read_ratio)))
                };
                let at = Instant::now();
                let ok = if args.ping {
                    client.node_status(None).await.is_ok()
                } else if args.workload == Workload::Query {
                    client.query(cache::query(&args.table_name, k, args.consistent_read)).await.is_ok()
                } else if args.workload == Workload::ConditionalUpdate {
                    client.update_item(conditional_update(&args.table_name, k)).await.is_ok()
                } else if args.workload == Workload::Transaction {
                    let keys =
                        rand::seq::index::sample(&mut rand::rng(), args.keys as usize, 10.min(args.keys as usize));
                    let items = keys
                        .iter()
                        .map(|k| TransactWriteItem {
                            action: Some(Action::Update(conditional_update(&args.table_name, k as u64))),
                        })
                        .collect();
                    client
                        .transact_write_items(TransactWriteItemsRequest {
                            transact_items: items,
                            client_request_token: String::new(),
                        })
                        .await
                        .is_ok()
                } else if is_read {
                    client.get_item(&args.table_name, key(k), args.consistent_read).await.is_ok()
                } else {
                    client.put_item(&args.table_name, item(k, args.item_size)).await.is_ok()
                };
                if ok {
                    let acks = if is_read { &mut reads } else { &mut writes };
                    acks.0.push((Instant::now(), at.elapsed().as_micros() as u64));
                    done.fetch_add(1, Ordering::Relaxed);
                } else {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
            }
            (reads, writes)
        }));
    }
    let progress = {
        let done = done.clone();
        tokio::spawn(async move {
            let mut last = 0;
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let now = done.load(Ordering::Relaxed);
                eprintln!("  {:>4}s  {:>8} ops/s  ({} total)", started.elapsed().as_secs(), now - last, now);
                last = now;
            }
        })
    };
    let (mut read_acks, mut write_acks) = (Acks::default(), Acks::default());
    for worker in workers {
        let (r, w) = worker.await?;
        read_acks.0.extend(r.0);
        write_acks.0.extend(w.0);
    }
    progress.abort();
    let pause = match pause {
        Some(pause) => Some(pause.await??),
        None => None,
    };
    let elapsed = started.elapsed().as_secs_f64();
    let (reads, writes) = (read_acks.histogram(|_| true), write_acks.histogram(|_| true));
    let summary = |h: &Histogram<u64>| {
        json!({
            "ops": h.len(),
            "ops_per_sec": (h.len() as f64 / elapsed).round(),
            "p50_ms": h.value_at_quantile(0.5) as f64 / 1000.0,
            "p99_ms": h.value_at_quantile(0.99) as f64 / 1000.0,
            "p999_ms": h.value_at_quantile(0.999) as f64 / 1000.0,
            "max_ms": h.max() as f64 / 1000.0,
        })
    };
    // What the clients saw while the leader was paused.
    let paused = pause.map(|pause| {
        let during = |acks: &Acks| {
            let h = acks.histogram(|at| pause.contains(at));
            json!({
                "ops": h.len(),
                "p99_ms": h.value_at_quantile(0.99) as f64 / 1000.0,
                "max_ms": h.max() as f64 / 1000.0,
            })
        };
        json!({
            "node_id": pause.node_id,
            "secs": (pause.until - pause.from).as_secs_f64(),
            "longest_write_gap_ms": write_acks.longest_gap().as_secs_f64() * 1000.0,
            "longest_read_gap_ms": read_acks.longest_gap().as_secs_f64() * 1000.0,
            "writes": during(&write_acks),
            "reads": during(&read_acks),
        })
    });
    let report = json!({
        "workload": format!("{:?}", args.workload),
        "duration_secs": elapsed,
        "concurrency": args.concurrency,
        "item_size": args.item_size,
        "read_ratio": args.read_ratio,
        "total_ops_per_sec": ((reads.len() + writes.len()) as f64 / elapsed).round(),
        "errors": errors.load(Ordering::Relaxed),
        "get": summary(&reads),
        "put": summary(&writes),
        "longest_write_gap_ms": write_acks.longest_gap().as_secs_f64() * 1000.0,
        "paused_leader": paused.clone(),
    });
    let report = if args.workload != Workload::Kv {
        json!({
            "workload": format!("{:?}", args.workload),
            "duration_secs": elapsed,
            "concurrency": args.concurrency,
            "errors": errors.load(Ordering::Relaxed),
            "requests": summary(&writes),
            "longest_write_gap_ms": write_acks.longest_gap().as_secs_f64() * 1000.0,
            "paused_leader": paused,
        })
    } else {
        report
    };
    let report = if args.ping {
        json!({ "duration_secs": elapsed, "concurrency": args.concurrency, "ping": summary(&reads) })
    } else {
        report
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "throughput: {} ops/s over {:.1}s ({} errors)",
            report["total_ops_per_sec"], elapsed, report["errors"]
        );
        let read_name = if args.ping { "ping" } else { "get" };
        let write_name = match args.workload {
            Workload::Kv => "put",
            Workload::ConditionalUpdate => "conditional update",
            Workload::Transaction => "10-item transaction",
            Workload::Query => "query",
            Workload::StreamDelay | Workload::Ttl | Workload::Replication | Workload::CacheDelay | Workload::Load => {
                "put"
            }
        };
        for (name, h) in [(write_name, &writes), (read_name, &reads)] {
            if h.is_empty() {
                continue;
            }
            println!(
                "{name}: {:>7} ops/s  p50 {:.2} ms  p99 {:.2} ms  p99.9 {:.2} ms  max {:.2} ms",
                (h.len() as f64 / elapsed).round(),
                h.value_at_quantile(0.5) as f64 / 1000.0,
                h.value_at_quantile(0.99) as f64 / 1000.0,
                h.value_at_quantile(0.999) as f64 / 1000.0,
                h.max() as f64 / 1000.0
            );
        }
        println!("longest gap between acknowledged writes: {:.0} ms", report["longest_write_gap_ms"]);
        if let Some(paused) = &report["paused_leader"].as_object() {
            println!(
                "while the leader (node {}) was paused for {:.1}s: {} writes, p99 {} ms, max {} ms; {} reads, p99 {} ms, max {} ms",
                paused["node_id"],
                paused["secs"].as_f64().unwrap_or_default(),
                paused["writes"]["ops"],
                paused["writes"]["p99_ms"],
                paused["writes"]["max_ms"],
                paused["reads"]["ops"],
                paused["reads"]["p99_ms"],
                paused["reads"]["max_ms"],
            );
        }
    }
    Ok(())
}

/// When each request of a run was acknowledged, and its latency in microseconds.
#[derive(Default)]
struct Acks(Vec<(Instant, u64)>);

impl Acks {
    /// The latencies of the requests acknowledged at instants `when` accepts.
    fn histogram(&self, when: impl Fn(Instant) -> bool) -> Histogram<u64> {
        let mut h = histogram();
        for (at, micros) in &self.0 {
            if when(*at) {
                h.saturating_record((*micros).max(1));
            }
        }
        h
    }

    /// The longest time between two acknowledgements.
    fn longest_gap(&self) -> Duration {
        let mut at: Vec<Instant> = self.0.iter().map(|(at, _)| *at).collect();
        at.sort();
        at.windows(2).map(|w| w[1] - w[0]).max().unwrap_or_default()
    }
}

/// Writes new keys for the duration while a Subscribe from LATEST follows the stream on one node, and
/// reports the delay from each write's acknowledgement to its record's delivery.
async fn stream_delay(args: BenchArgs, client: Client) -> anyhow::Result<()> {
    use std::collections::HashMap;
    use std::sync::Mutex;

    let (arn, _) = client.table_stream(&args.table_name).await?;
    let endpoint = client.endpoints().first().cloned().unwrap_or_default();
    let mut subscriber = tern_proto::v1::streams_client::StreamsClient::connect(format!("http://{endpoint}")).await?;
    let request = tern_proto::v1::SubscribeRequest {
        stream_arn: arn,
        shard_iterator_type: "LATEST".into(),
        sequence_number: String::new(),
    };
    let mut records = subscriber.subscribe(request).await?.into_inner();
    let delivered: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let receiver = {
        let delivered = delivered.clone();
        tokio::spawn(async move {
            while let Ok(Some(record)) = records.message().await {
                if let Some(key) = record_key(&record) {
                    delivered.lock().expect("delivery map").insert(key, Instant::now());
                }
            }
        })
    };
    eprintln!(
        "writing for {}s with concurrency {} while a subscriber follows the stream ...",
        args.duration, args.concurrency
    );
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let until = started + Duration::from_secs(args.duration);
    let mut writers = Vec::new();
    for _ in 0..args.concurrency {
        let (client, args, next) = (client.clone(), args.clone(), next.clone());
        writers.push(tokio::spawn(async move {
            let mut acknowledged = Vec::new();
            while Instant::now() < until {
                let n = next.fetch_add(1, Ordering::Relaxed);
                let item = Item::from([
                    ("pk".to_string(), AttributeValue::S(format!("delay-{n}"))),
                    ("payload".to_string(), AttributeValue::S("x".repeat(args.item_size))),
                ]);
                if client.put_item(&args.table_name, item).await.is_ok() {
                    acknowledged.push((format!("delay-{n}"), Instant::now()));
                }
            }
            acknowledged
        }));
    }
    let mut acknowledged = Vec::new();
    for writer in writers {
        acknowledged.extend(writer.await?);
    }
    let elapsed = started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(2)).await;
    receiver.abort();
    let delivered = delivered.lock().expect("delivery map");
    let mut delays = histogram();
    let mut missing = 0u64;
    for (key, acked) in &acknowledged {
        match delivered.get(key) {
            // A record can arrive before the acknowledgement reaches the writer: count it as no delay.
            Some(at) => delays.saturating_record(at.saturating_duration_since(*acked).as_micros().max(1) as u64),
            None => missing += 1,
        }
    }
    let report = json!({
        "workload": "StreamDelay",
        "duration_secs": elapsed,
        "concurrency": args.concurrency,
        "writes_per_sec": (acknowledged.len() as f64 / elapsed).round(),
        "delivered": delays.len(),
        "missing": missing,
    });
    let mut report = report;
    add_delays(&mut report, &delays);
    let line = format!(
        "{} writes/s; acknowledgement to Subscribe delivery: p50 {} ms, p99 {} ms, max {} ms ({missing} never delivered)",
        report["writes_per_sec"], report["delay_p50_ms"], report["delay_p99_ms"], report["delay_max_ms"]
    );
    emit(args.json, &report, line)?;
    Ok(())
}

/// Writes `expiring_per_second` items due to expire in each of `duration` seconds (starting a little
/// after the writes finish), then follows the stream's TTL deletes and reports expiry-to-delete delays
/// (the delete's write timestamp minus the expiry second).
async fn ttl_delay(args: BenchArgs, client: Client) -> anyhow::Result<()> {
    use futures::StreamExt;
    use tern_proto::v1::{
        write_request, BatchWriteItemRequest, PutRequest, TimeToLiveSpecification, UpdateTimeToLiveRequest,
        WriteRequest, WriteRequestList,
    };

    let spec = TimeToLiveSpecification { enabled: true, attribute_name: "exp".into(), hide_expired_items: false };
    if let Err(e) = client
        .update_time_to_live(UpdateTimeToLiveRequest {
            table_name: args.table_name.clone(),
            time_to_live_specification: Some(spec),
        })
        .await
    {
        eprintln!("TTL already on ({e})");
    }
    let total = args.expiring_per_second * args.duration;
    // Writing takes a while; the first items expire once it is surely done.
    let first_expiry = crate::clock::now_micros() / 1_000_000 + 10 + total / 20_000;
    eprintln!("writing {total} items expiring {}/s from {first_expiry} ...", args.expiring_per_second);
    let next = Arc::new(AtomicU64::new(0));
    let mut writers = Vec::new();
    for _ in 0..args.concurrency {
        let (client, args, next) = (client.clone(), args.clone(), next.clone());
        writers.push(tokio::spawn(async move {
            loop {
                let start = next.fetch_add(25, Ordering::Relaxed);
                if start >= total {
                    return Ok::<_, tern_client::Error>(());
                }
                let requests = (start..(start + 25).min(total))
                    .map(|n| {
                        let expiry = first_expiry + n / args.expiring_per_second;
                        let item = Item::from([
                            ("pk".to_string(), AttributeValue::S(format!("ttl-{n}"))),
                            ("exp".to_string(), AttributeValue::N(expiry.into())),
                        ]);
                        WriteRequest {
                            request: Some(write_request::Request::PutRequest(PutRequest {
                                item: tern_client::v1_item(&item),
                            })),
                        }
                    })
                    .collect();
                let request = BatchWriteItemRequest {
                    request_items: [(args.table_name.clone(), WriteRequestList { requests })].into(),
                };
                client.batch_write_item(request).await?;
            }
        }));
    }
    for writer in writers {
        writer.await??;
    }
    let written_at = crate::clock::now_micros() / 1_000_000;
    anyhow::ensure!(written_at < first_expiry, "writing took too long: lower --expiring-per-second or --duration");
    let (arn, shard) = client.table_stream(&args.table_name).await?;
    let records = client.consume(arn, shard, tern_client::StartingPosition::Latest, true, Duration::from_millis(50));
    futures::pin_mut!(records);
    let mut delays = histogram();
    let deadline = Instant::now() + Duration::from_secs(first_expiry - written_at + args.duration + 60);
    while delays.len() < total && Instant::now() < deadline {
        let Ok(Some(record)) = tokio::time::timeout(Duration::from_secs(5), records.next()).await else { continue };
        let record = record?;
        if record.event_name != "REMOVE" {
            continue;
        }
        let Some(data) = record.dynamodb else { continue };
        let expiry = data.old_image.as_ref().and_then(|i| i.attributes.get("exp")).and_then(|v| match &v.value {
            Some(tern_proto::v1::attribute_value::Value::N(n)) => n.parse::<u64>().ok(),
            _ => None,
        });
        let deleted_at = data.item_version.map(|v| v.write_timestamp_micros).unwrap_or(0);
        if let Some(expiry) = expiry {
            delays.saturating_record(deleted_at.saturating_sub(expiry * 1_000_000).max(1));
        }
    }
    let report = json!({
        "workload": "Ttl",
        "expiring_per_second": args.expiring_per_second,
        "seconds": args.duration,
        "items": total,
        "deleted": delays.len(),
    });
    let mut report = report;
    add_delays(&mut report, &delays);
    let line = format!(
        "{} of {total} items deleted; expiry to delete: p50 {} ms, p99 {} ms, max {} ms",
        delays.len(),
        report["delay_p50_ms"],
        report["delay_p99_ms"],
        report["delay_max_ms"]
    );
    emit(args.json, &report, line)?;
    Ok(())
}

/// The partition key (`pk`, a string) of the item a stream record is about.
pub(crate) fn record_key(record: &tern_proto::v1::StreamRecord) -> Option<String> {
    match record.dynamodb.as_ref()?.keys.as_ref()?.attributes.get("pk")?.value.as_ref()? {
        tern_proto::v1::attribute_value::Value::S(key) => Some(key.clone()),
        _ => None,
    }
}

/// Adds a delay histogram's p50, p99 and maximum (milliseconds) to a report.
pub(crate) fn add_delays(report: &mut serde_json::Value, delays: &Histogram<u64>) {
    report["delay_p50_ms"] = json!(delays.value_at_quantile(0.5) as f64 / 1000.0);
    report["delay_p99_ms"] = json!(delays.value_at_quantile(0.99) as f64 / 1000.0);
    report["delay_max_ms"] = json!(delays.max() as f64 / 1000.0);
}

/// Prints a report as JSON, or its one-line summary.
pub(crate) fn emit(as_json: bool, report: &serde_json::Value, line: String) -> anyhow::Result<()> {
    if as_json {
        println!("{}", serde_json::to_string_pretty(report)?);
    } else {
        println!("{line}");
    }
    Ok(())
}
