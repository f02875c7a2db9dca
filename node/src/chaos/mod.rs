//! `tern chaos`: a workload in every region of a deployment at once, a nemesis that cuts, kills,
//! pauses and skews it cycle after cycle with a heal after each, the time each heal took to leave the
//! regions identical, and after the final heal a checker of the history against every region's copy.
//! Writes a JSON report, a short summary and a timeline picture (see `report`). `scripts/chaos.sh`
//! runs it against the compose deployment; docs/chaos.md has the long run.

pub mod checker;
pub mod history;
pub mod nemesis;
pub mod report;
pub mod workload;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Args;
use rand::rngs::StdRng;
use rand::SeedableRng;
use tern_client::v1::{
    replication_group_update::Action, AttributeDefinition, CreateReplicationGroupMemberAction, CreateTableRequest,
    DescribeTableRequest, KeySchemaElement, ReplicationGroupUpdate, UpdateTableRequest,
};
use tern_client::{Client, RetryPolicy};

use crate::global::replicator::verify::{read_copy, Held as VersionedItem};
use crate::topology::Topology;
use checker::{Copy, Held};
use history::{History, Version};
use nemesis::{Deployment, Event, Fault, Nemesis};
use workload::{Gate, Workload};

#[derive(Debug, Clone, Args)]
pub struct ChaosArgs {
    /// The deployment's topology as this machine reaches it (deploy/compose/*/topology.host.toml).
    #[arg(long)]
    pub topology: PathBuf,
    /// Fault and heal cycles.
    #[arg(long, default_value_t = 10)]
    pub cycles: u32,
    /// How long each fault lasts, in seconds.
    #[arg(long, default_value_t = 8.0)]
    pub fault_secs: f64,
    /// Calm between a cycle's convergence and the next fault, in seconds (also before the first).
    #[arg(long, default_value_t = 2.0)]
    pub calm_secs: f64,
    /// The faults to draw from.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [
        Fault::Isolate, Fault::Split, Fault::OneWay, Fault::Kill, Fault::KillLeader, Fault::Pause,
        Fault::PauseReplicator, Fault::Restart, Fault::ClockSkew])]
    pub faults: Vec<Fault>,
    /// Seed of the nemesis's schedule and the workload's keys (default: from the clock).
    #[arg(long)]
    pub seed: Option<u64>,
    /// The docker network that joins the regions.
    #[arg(long, default_value = "tern_wan")]
    pub wan_network: String,
    /// The directory of the nodes' libfaketime offset files (`<dir>/<container>/offset`).
    #[arg(long, env = "TERN_CLOCKS")]
    pub clocks: Option<PathBuf>,
    /// Writers per region.
    #[arg(long, default_value_t = 2)]
    pub writers: u32,
    /// Keys every region writes.
    #[arg(long, default_value_t = 16)]
    pub shared_keys: u32,
    /// Keys only one region writes, per region.
    #[arg(long, default_value_t = 32)]
    pub private_keys: u32,
    /// Pause between one writer's operations, in milliseconds.
    #[arg(long, default_value_t = 20)]
    pub pace_ms: u64,
    /// How long regions may take to become identical after a heal, in seconds.
    #[arg(long, default_value_t = 120)]
    pub converge_timeout_secs: u64,
    /// The table to write, made anew as a global table (default: chaos-<seed>-<unix time>).
    #[arg(long)]
    pub table: Option<String>,
    /// Where the report, summary and timeline go.
    #[arg(long, default_value = "chaos-report")]
    pub out: PathBuf,
}

/// The workload's client: short deadlines, so a writer stuck behind a fault gives up (outcome
/// unknown) and the run can quiesce the writers after a heal.
async fn workload_client(topology: &Topology, region: &str) -> anyhow::Result<Client> {
    let retry = RetryPolicy {
        deadline: Duration::from_secs(5),
        attempt_timeout: Duration::from_secs(1),
        ..RetryPolicy::default()
    };
    Ok(topology.connect_with(region, retry).await?)
}

/// Makes `table` a global table with a replica in every region, and waits until all are ACTIVE.
async fn create_global_table(clients: &BTreeMap<String, Client>, table: &str) -> anyhow::Result<()> {
    let (first, client) = clients.iter().next().context("no region")?;
    let request = CreateTableRequest {
        table_name: table.into(),
        attribute_definitions: vec![AttributeDefinition { attribute_name: "pk".into(), attribute_type: "S".into() }],
        key_schema: vec![KeySchemaElement { attribute_name: "pk".into(), key_type: "HASH".into() }],
        ..Default::default()
    };
    client.create_table(request).await.with_context(|| format!("cannot create {table} in {first}"))?;
    let others: Vec<ReplicationGroupUpdate> = clients
        .keys()
        .filter(|r| *r != first)
        .map(|r| ReplicationGroupUpdate {
            action: Some(Action::Create(CreateReplicationGroupMemberAction { region_name: r.clone() })),
        })
        .collect();
    if !others.is_empty() {
        let request = UpdateTableRequest { table_name: table.into(), replica_updates: others, ..Default::default() };
        client.update_table(request).await.with_context(|| format!("cannot add replicas to {table}"))?;
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let mut active = true;
        for client in clients.values() {
            let described = client.describe_table(DescribeTableRequest { table_name: table.into() }).await;
            active &= described.ok().and_then(|d| d.table).is_some_and(|t| {
                t.table_status == "ACTIVE"
                    && t.replicas.len() == clients.len()
                    && t.replicas.iter().all(|r| r.replica_status == "ACTIVE")
            });
        }
        if active {
            return Ok(());
        }
        anyhow::ensure!(Instant::now() < deadline, "{table} is not ACTIVE in every region after 120 s");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn text(item: &tern_client::v1::Item, name: &str) -> Option<String> {
    match item.attributes.get(name)?.value.as_ref()? {
        tern_client::v1::attribute_value::Value::S(s) => Some(s.clone()),
        _ => None,
    }
}

/// Every region's copy of the table, tombstones included.
async fn read_copies(clients: &BTreeMap<String, Client>, table: &str) -> anyhow::Result<BTreeMap<String, Copy>> {
    let mut copies = BTreeMap::new();
    for (region, client) in clients {
        let copy = read_copy(client, table).await.with_context(|| format!("cannot read {table} in {region}"))?;
        let held = copy
            .into_values()
            .filter_map(|(key, item, version): VersionedItem| {
                let pk = text(&key, "pk")?;
                let value = item.as_ref().map(|i| text(i, "val").unwrap_or_default());
                Some((pk, Held { value, version: Version::from(&version) }))
            })
            .collect();
        copies.insert(region.clone(), held);
    }
    Ok(copies)
}

/// Live items (not tombstones) of every copy are the same.
fn identical(copies: &BTreeMap<String, Copy>) -> bool {
    let live = |copy: &Copy| -> Vec<(String, Held)> {
        copy.iter().filter(|(_, h)| h.value.is_some()).map(|(k, h)| (k.clone(), h.clone())).collect()
    };
    let mut views = copies.values().map(live);
    let first = views.next();
    views.all(|v| Some(&v) == first.as_ref())
}

/// Waits until every region holds the same items; how long that took, or None by the timeout.
async fn converge(
    clients: &BTreeMap<String, Client>,
    table: &str,
    since: Instant,
    timeout: Duration,
) -> Option<Duration> {
    loop {
        if let Ok(copies) = read_copies(clients, table).await {
            if identical(&copies) {
                return Some(since.elapsed());
            }
        }
        if since.elapsed() > timeout {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Runs the chaos test; true when it ran to the end, every fault was injected and healed, every heal
/// converged and the checker found no anomaly.
pub async fn run(args: ChaosArgs) -> anyhow::Result<bool> {
    let topology = Topology::load(&args.topology)?;
    let seed = args.seed.unwrap_or_else(|| rand::random::<u32>().into());
    let table = args
        .table
        .clone()
        .unwrap_or_else(|| format!("chaos-{seed}-{}", time::OffsetDateTime::now_utc().unix_timestamp()));
    let mut clients = BTreeMap::new();
    for region in topology.regions.keys() {
        clients.insert(region.clone(), workload_client(&topology, region).await?);
    }
    let regions: BTreeMap<String, Vec<u64>> =
        topology.regions.iter().map(|(name, r)| (name.clone(), r.nodes.keys().copied().collect())).collect();
    let deployment =
        Deployment { regions, clients: clients.clone(), wan: args.wan_network.clone(), clocks: args.clocks.clone() };
    let mut nemesis = Nemesis::new(args.faults.clone(), deployment, StdRng::seed_from_u64(seed));
    nemesis.prepare().await?;
    create_global_table(&clients, &table).await?;
    tracing::info!(%table, seed, cycles = args.cycles, "chaos run starting");

    let history = History::new(Instant::now());
    let started_at = time::OffsetDateTime::now_utc();
    let workload = Workload {
        table: table.clone(),
        writers_per_region: args.writers,
        shared_keys: args.shared_keys,
        private_keys: args.private_keys,
        pace: Duration::from_millis(args.pace_ms),
        seed,
    };
    let gate: Gate = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for (region, client) in &clients {
        for writer in 0..args.writers {
            writers.push(tokio::spawn(workload::writer(
                region.clone(),
                writer,
                client.clone(),
                workload.clone(),
                history.clone(),
                gate.clone(),
                stop.clone(),
            )));
        }
    }

    let mut events: Vec<Event> = Vec::new();
    let mut convergence: Vec<Option<Duration>> = Vec::new();
    let timeout = Duration::from_secs(args.converge_timeout_secs);
    let cycles = async {
        tokio::time::sleep(Duration::from_secs_f64(args.calm_secs)).await;
        for cycle in 1..=args.cycles {
            let start_micros = history.now();
            let (fault, injected) = nemesis.inject().await;
            let mut error = injected.as_ref().err().map(|e| format!("{e:#}"));
            let target = injected.unwrap_or_default();
            tracing::info!(cycle, fault = fault.name(), %target, error = ?error, "fault");
            tokio::time::sleep(Duration::from_secs_f64(args.fault_secs)).await;
            if let Err(e) = nemesis.heal().await {
                error.get_or_insert(format!("heal: {e:#}"));
            }
            let healed = Instant::now();
            events.push(Event { cycle, fault, target, start_micros, end_micros: history.now(), error });
            // The writers stop while the regions converge: the time measured is the heal's.
            let quiet = gate.write().await;
            let took = converge(&clients, &table, healed, timeout).await;
            drop(quiet);
            tracing::info!(cycle, converged_ms = ?took.map(|d| d.as_millis()), "healed");
            convergence.push(took);
            tokio::time::sleep(Duration::from_secs_f64(args.calm_secs)).await;
        }
    };
    // Ctrl-C ends the cycles early: the faults are still healed and what ran is still checked.
    let interrupted = tokio::select! {
        () = cycles => false,
        _ = tokio::signal::ctrl_c() => {
            tracing::warn!("interrupted: healing, then checking what ran");
            true
        }
    };
    stop.store(true, Ordering::SeqCst);
    let final_heal_error = nemesis.heal().await.err().map(|e| format!("{e:#}"));
    for writer in writers {
        writer.await?;
    }
    let finished = Instant::now();
    let final_convergence = converge(&clients, &table, finished, timeout).await;
    let copies = read_copies(&clients, &table).await?;
    let ops = history.ops();
    let anomalies = checker::check(&ops, &copies);
    let report = report::Report::new(report::Inputs {
        table,
        seed,
        started_at,
        duration: history.started().elapsed(),
        ops,
        events,
        convergence,
        final_convergence,
        anomalies,
        copies: &copies,
        timeout,
        final_heal_error,
        interrupted,
    });
    std::fs::create_dir_all(&args.out).with_context(|| format!("cannot create {}", args.out.display()))?;
    report.write(&args.out)?;
    print!("{}", report.summary());
    println!("report: {}", args.out.display());
    Ok(report.clean())
}
