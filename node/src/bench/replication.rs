//! The replication benchmark: replication lag between two regions under a steady write load in both,
//! against the local stream delivery of the same writes, and the catch-up rate after a backlog.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::json;
use tern_client::{AttributeValue, Client, Item};
use tern_proto::v1::{
    replication_group_update::Action, CreateReplicationGroupMemberAction, DescribeTableRequest, ReplicationGroupUpdate,
    SubscribeRequest, UpdateTableRequest,
};

use super::{add_delays, emit, histogram, record_key, BenchArgs};
use crate::global::replicator::region_clients;
use crate::global::ReplicaStatus;
use crate::playground::PlaygroundInfo;
use crate::topology::Topology;

/// When each key's record reached each region's stream.
type Deliveries = Arc<Mutex<HashMap<(String, String), Instant>>>;

/// Follows a region's stream from now on (Subscribe on its first node), noting each key's arrival.
async fn subscribe(
    topology: &Topology,
    region: &str,
    stream_arn: String,
    deliveries: Deliveries,
) -> anyhow::Result<()> {
    let node = topology.region(region)?.nodes.values().next().context("a region without nodes")?.clone();
    let mut client = tern_proto::v1::streams_client::StreamsClient::connect(format!("http://{node}")).await?;
    let request = SubscribeRequest { stream_arn, shard_iterator_type: "LATEST".into(), sequence_number: String::new() };
    let mut records = client.subscribe(request).await?.into_inner();
    let region = region.to_string();
    tokio::spawn(async move {
        while let Ok(Some(record)) = records.message().await {
            if let Some(key) = record_key(&record) {
                deliveries.lock().expect("deliveries").entry((region.clone(), key)).or_insert_with(Instant::now);
            }
        }
    });
    Ok(())
}

/// Puts `rate` new items per second into `region` for `duration`; returns each key and its ack time.
async fn write(
    client: &Client,
    args: &BenchArgs,
    region: &str,
    prefix: &str,
    duration: Duration,
) -> Vec<(String, Instant)> {
    let writers = args.concurrency.max(1);
    let every = Duration::from_secs_f64(writers as f64 / args.rate.max(1) as f64);
    let until = Instant::now() + duration;
    let mut tasks = Vec::new();
    for w in 0..writers {
        let (client, table, size) = (client.clone(), args.table_name.clone(), args.item_size);
        let prefix = format!("{region}-{prefix}-{w}");
        tasks.push(tokio::spawn(async move {
            let mut ticker = tokio::time::interval(every);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut acknowledged = Vec::new();
            let mut n = 0u64;
            while Instant::now() < until {
                ticker.tick().await;
                n += 1;
                let key = format!("{prefix}-{n}");
                let item = Item::from([
                    ("pk".to_string(), AttributeValue::S(key.clone())),
                    ("payload".to_string(), AttributeValue::S("x".repeat(size))),
                ]);
                if client.put_item(&table, item).await.is_ok() {
                    acknowledged.push((key, Instant::now()));
                }
            }
            acknowledged
        }));
    }
    let mut acknowledged = Vec::new();
    for task in tasks {
        acknowledged.extend(task.await.unwrap_or_default());
    }
    acknowledged
}

async fn make_global(clients: &HashMap<String, Client>, args: &BenchArgs, a: &str, b: &str) -> anyhow::Result<()> {
    let (first, second) = (&clients[a], &clients[b]);
    let describe = |client: &Client| {
        let request = DescribeTableRequest { table_name: args.table_name.clone() };
        let client = client.clone();
        async move { client.describe_table(request).await.ok().and_then(|r| r.table) }
    };
    if describe(first).await.is_none() {
        let request = tern_proto::v1::CreateTableRequest {
            table_name: args.table_name.clone(),
            attribute_definitions: vec![tern_proto::v1::AttributeDefinition {
                attribute_name: "pk".into(),
                attribute_type: "S".into(),
            }],
            key_schema: vec![tern_proto::v1::KeySchemaElement { attribute_name: "pk".into(), key_type: "HASH".into() }],
            ..Default::default()
        };
        first.create_table(request).await?;
    }
    if describe(first).await.is_some_and(|t| t.replicas.is_empty()) {
        let create = ReplicationGroupUpdate {
            action: Some(Action::Create(CreateReplicationGroupMemberAction { region_name: b.into() })),
        };
        let request = UpdateTableRequest {
            table_name: args.table_name.clone(),
            replica_updates: vec![create],
            ..Default::default()
        };
        first.update_table(request).await?;
    }
    for _ in 0..300 {
        let active = |t: Option<tern_proto::v1::TableDescription>| {
            t.is_some_and(|t| !t.replicas.is_empty() && t.replicas.iter().all(|r| ReplicaStatus::Active.of(r)))
        };
        if active(describe(first).await) && active(describe(second).await) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::bail!("the replica in {b} did not become ACTIVE within 30 s")
}

fn signal(pid: u32, signal: nix::sys::signal::Signal) -> anyhow::Result<()> {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), signal).with_context(|| format!("signalling {pid}"))
}

pub async fn run(args: &BenchArgs) -> anyhow::Result<()> {
    let path = args.playground.as_ref().context("the replication workload needs --playground FILE")?;
    let playground: PlaygroundInfo = serde_json::from_str(&std::fs::read_to_string(path)?)?;
    let topology = Topology::load(&playground.topology)?;
    let regions: Vec<String> = topology.regions.keys().cloned().collect();
    anyhow::ensure!(regions.len() >= 2, "the replication workload needs a playground of two regions");
    let (a, b) = (regions[0].clone(), regions[1].clone());
    let clients: HashMap<String, Client> =
        region_clients(&topology, Duration::from_secs(15)).await?.into_iter().collect();
    make_global(&clients, args, &a, &b).await?;
    let deliveries: Deliveries = Arc::default();
    for region in [&a, &b] {
        let (arn, _) = clients[region].table_stream(&args.table_name).await?;
        subscribe(&topology, region, arn, deliveries.clone()).await?;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    eprintln!("both regions write {} puts/s each for {} s ...", args.rate, args.duration);
    let duration = Duration::from_secs(args.duration);
    let started = Instant::now();
    let (in_a, in_b) = tokio::join!(
        write(&clients[&a], args, &a, "steady", duration),
        write(&clients[&b], args, &b, "steady", duration)
    );
    let elapsed = started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (mut lag, mut local) = (histogram(), histogram());
    let mut missing = 0u64;
    {
        let delivered = deliveries.lock().expect("deliveries");
        for (origin, other, writes) in [(&a, &b, &in_a), (&b, &a, &in_b)] {
            for (key, acked) in writes {
                let delay = |region: &String| {
                    delivered
                        .get(&(region.clone(), key.clone()))
                        .map(|at| at.saturating_duration_since(*acked).as_micros().max(1) as u64)
                };
                match delay(other) {
                    Some(micros) => lag.saturating_record(micros),
                    None => missing += 1,
                }
                if let Some(micros) = delay(origin) {
                    local.saturating_record(micros);
                }
            }
        }
    }
    let mut report = json!({
        "workload": "Replication",
        "regions": [a, b],
        "duration_secs": elapsed,
        "puts_per_sec_per_region": ((in_a.len() + in_b.len()) as f64 / 2.0 / elapsed).round(),
        "replicated": lag.len(),
        "missing": missing,
    });
    add_delays(&mut report, &lag);
    report["local_stream_p50_ms"] = json!(local.value_at_quantile(0.5) as f64 / 1000.0);
    report["local_stream_p99_ms"] = json!(local.value_at_quantile(0.99) as f64 / 1000.0);
    let mut line = format!(
        "{} puts/s per region; acknowledgement to the other region's stream: p50 {} ms, p99 {} ms (own region's stream: p50 {} ms, p99 {} ms); {missing} never arrived",
        report["puts_per_sec_per_region"],
        report["delay_p50_ms"],
        report["delay_p99_ms"],
        report["local_stream_p50_ms"],
        report["local_stream_p99_ms"]
    );

    let replicator = playground.processes.iter().find(|p| p.role == "replicator" && p.region == b).map(|p| p.pid);
    if let (Some(pid), true) = (replicator, args.pause_secs > 0) {
        eprintln!("pausing {b}'s replicator for {} s while {a} writes {} puts/s ...", args.pause_secs, args.rate);
        signal(pid, nix::sys::signal::Signal::SIGSTOP)?;
        let backlog = write(&clients[&a], args, &a, "backlog", Duration::from_secs(args.pause_secs)).await;
        let resumed = Instant::now();
        signal(pid, nix::sys::signal::Signal::SIGCONT)?;
        let deadline = resumed + Duration::from_secs(600);
        let caught_up = loop {
            let last = {
                let delivered = deliveries.lock().expect("deliveries");
                let arrivals: Option<Vec<Instant>> =
                    backlog.iter().map(|(key, _)| delivered.get(&(b.clone(), key.clone())).copied()).collect();
                arrivals.map(|all| all.into_iter().max().unwrap_or(resumed))
            };
            if let Some(last) = last {
                break last.saturating_duration_since(resumed);
            }
            anyhow::ensure!(Instant::now() < deadline, "{b} did not catch up within 10 minutes");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let rate = backlog.len() as f64 / caught_up.as_secs_f64().max(1e-3);
        report["backlog_changes"] = json!(backlog.len());
        report["catch_up_secs"] = json!(caught_up.as_secs_f64());
        report["catch_up_changes_per_sec"] = json!(rate.round());
        line.push_str(&format!(
            "; after a {} s pause: {} changes caught up in {:.2} s ({:.0} changes/s)",
            args.pause_secs,
            backlog.len(),
            caught_up.as_secs_f64(),
            rate
        ));
    }
    emit(args.json, &report, line)
}
