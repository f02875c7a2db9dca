//! `tern playground`: regions of nodes, with their replicators and caches, as child processes on
//! loopback, described in `playground.json`.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use serde::{Deserialize, Serialize};
use tokio::process::{Child, Command};

use crate::topology::{RegionTopology, Topology};

#[derive(Debug, Clone, Args)]
pub struct PlaygroundArgs {
    /// Where the nodes keep their data (a temporary directory, removed on exit, when not given).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Nodes in the region.
    #[arg(long, default_value_t = 3)]
    pub nodes_per_region: u64,
    /// First port: node N serves on BASE+N-1 and its metrics on BASE+100+N-1.
    #[arg(long, default_value_t = 7001)]
    pub base_port: u16,
    /// The region's name (one region).
    #[arg(long, default_value = "local", conflicts_with = "regions")]
    pub region: String,
    /// Several regions, each with its own nodes and replicator: `us-east,eu-west`.
    #[arg(long, value_delimiter = ',')]
    pub regions: Vec<String>,
    /// Cache nodes per region (`tern cache`): cache C of region R serves on BASE+200+10·R+C-1 and its
    /// metrics on BASE+300+10·R+C-1.
    #[arg(long, default_value_t = 1)]
    pub caches_per_region: u64,
}

/// One process of the playground, as `playground.json` lists it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProcessInfo {
    pub role: String,
    pub id: u64,
    pub region: String,
    pub address: String,
    pub metrics_address: String,
    pub pid: u32,
    pub data_dir: PathBuf,
}

/// The contents of `playground.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PlaygroundInfo {
    /// The first region's nodes, as `--endpoint` takes them.
    pub endpoint: String,
    /// Each region's nodes, as `--endpoint` takes them.
    pub endpoints: std::collections::BTreeMap<String, String>,
    /// Each region's cache nodes, as `--endpoint` takes them (none when started without caches).
    #[serde(default)]
    pub caches: std::collections::BTreeMap<String, String>,
    /// The topology file the nodes read.
    pub topology: PathBuf,
    pub processes: Vec<ProcessInfo>,
}

/// Starts the region, waits for a leader, prints how to connect, and stops everything on Ctrl-C or SIGTERM.
pub async fn run(args: PlaygroundArgs) -> anyhow::Result<()> {
    let temporary = match &args.data_dir {
        Some(_) => None,
        None => Some(tempfile::Builder::new().prefix("tern-playground-").tempdir()?),
    };
    let root =
        args.data_dir.clone().unwrap_or_else(|| temporary.as_ref().expect("a temporary dir").path().to_path_buf());
    std::fs::create_dir_all(&root)?;
    let binary = std::env::current_exe().context("finding the tern binary")?;
    let regions: Vec<String> = if args.regions.is_empty() { vec![args.region.clone()] } else { args.regions.clone() };
    let ids: Vec<u64> = (1..=args.nodes_per_region).collect();
    // Region r's node n serves on BASE + 10·r + n - 1 and its metrics on BASE + 100 + 10·r + n - 1.
    let port = |r: usize, id: u64, offset: u64| args.base_port as u64 + offset + 10 * r as u64 + id - 1;
    let mut topology = Topology::default();
    // With several regions, each has a replicator; it serves its metrics on BASE + 100 + 10·r + 9.
    let replicated = regions.len() > 1;
    let replicator_metrics = |r: usize| format!("127.0.0.1:{}", args.base_port as u64 + 100 + 10 * r as u64 + 9);
    let caches: Vec<u64> = (1..=args.caches_per_region).collect();
    for (r, region) in regions.iter().enumerate() {
        let nodes = ids.iter().map(|id| (*id, format!("127.0.0.1:{}", port(r, *id, 0)))).collect();
        let replicator = replicated.then(|| replicator_metrics(r));
        let caches = caches.iter().map(|c| format!("127.0.0.1:{}", port(r, *c, 200))).collect();
        topology.regions.insert(region.clone(), RegionTopology { nodes, replicator, caches });
    }
    let topology_path = root.join("topology.toml");
    std::fs::write(&topology_path, topology.to_toml())?;

    let mut children: Vec<Child> = Vec::new();
    let mut processes = Vec::new();
    for (r, region) in regions.iter().enumerate() {
        for &id in &ids {
            let address = format!("127.0.0.1:{}", port(r, id, 0));
            let metrics = format!("127.0.0.1:{}", port(r, id, 100));
            let data_dir = root.join(format!("{region}-node-{id}"));
            let log = std::fs::File::create(root.join(format!("{region}-node-{id}.log")))?;
            let child = Command::new(&binary)
                .args(["node", "--id", &id.to_string(), "--region", region, "--listen", &address])
                .args([
                    "--data-dir",
                    &data_dir.to_string_lossy(),
                    "--topology",
                    &topology_path.to_string_lossy(),
                    "--metrics-listen",
                    &metrics,
                ])
                .stdout(Stdio::from(log.try_clone()?))
                .stderr(Stdio::from(log))
                .kill_on_drop(true)
                .spawn()
                .with_context(|| format!("starting node {id} of {region}"))?;
            processes.push(ProcessInfo {
                role: "node".into(),
                id,
                region: region.clone(),
                address,
                metrics_address: metrics,
                pid: child.id().unwrap_or(0),
                data_dir,
            });
            children.push(child);
        }
    }
    for (r, region) in regions.iter().enumerate().filter(|_| replicated) {
        let metrics = replicator_metrics(r);
        let log = std::fs::File::create(root.join(format!("{region}-replicator.log")))?;
        let child = Command::new(&binary)
            .args(["replicator", "--region", region, "--topology", &topology_path.to_string_lossy()])
            .args(["--metrics-listen", &metrics])
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting the replicator of {region}"))?;
        processes.push(ProcessInfo {
            role: "replicator".into(),
            id: 0,
            region: region.clone(),
            address: metrics.clone(),
            metrics_address: metrics,
            pid: child.id().unwrap_or(0),
            data_dir: root.clone(),
        });
        children.push(child);
    }
    for (r, region) in regions.iter().enumerate() {
        for &c in &caches {
            let address = format!("127.0.0.1:{}", port(r, c, 200));
            let metrics = format!("127.0.0.1:{}", port(r, c, 300));
            let log = std::fs::File::create(root.join(format!("{region}-cache-{c}.log")))?;
            let child = Command::new(&binary)
                .args(["cache", "--region", region, "--topology", &topology_path.to_string_lossy()])
                .args(["--listen", &address, "--metrics-listen", &metrics])
                .stdout(Stdio::from(log.try_clone()?))
                .stderr(Stdio::from(log))
                .kill_on_drop(true)
                .spawn()
                .with_context(|| format!("starting cache {c} of {region}"))?;
            processes.push(ProcessInfo {
                role: "cache".into(),
                id: c,
                region: region.clone(),
                address,
                metrics_address: metrics,
                pid: child.id().unwrap_or(0),
                data_dir: root.clone(),
            });
            children.push(child);
        }
    }
    let cache_endpoints: std::collections::BTreeMap<String, String> = topology
        .regions
        .iter()
        .filter(|(_, r)| !r.caches.is_empty())
        .map(|(name, r)| (name.clone(), r.caches.join(",")))
        .collect();
    let endpoints: std::collections::BTreeMap<String, String> = topology
        .regions
        .iter()
        .map(|(name, r)| (name.clone(), r.nodes.values().cloned().collect::<Vec<_>>().join(",")))
        .collect();
    let endpoint = endpoints[&regions[0]].clone();
    let info = PlaygroundInfo {
        endpoint: endpoint.clone(),
        endpoints: endpoints.clone(),
        caches: cache_endpoints.clone(),
        topology: topology_path.clone(),
        processes,
    };
    std::fs::write(root.join("playground.json"), serde_json::to_string_pretty(&info)?)?;

    for endpoints in endpoints.values() {
        wait_for_leader(endpoints).await?;
    }
    for cache in cache_endpoints.values().flat_map(|c| c.split(',')) {
        wait_for_cache(cache).await?;
    }
    println!(
        "Tern playground: {} region(s) with {} nodes and {} cache(s) each are up.",
        regions.len(),
        ids.len(),
        caches.len()
    );
    for (name, endpoints) in &endpoints {
        println!("  {name}: {endpoints}");
        if let Some(caches) = cache_endpoints.get(name) {
            println!("  {name} cache: {caches}");
        }
    }
    println!("  data and logs: {}", root.display());
    println!("  processes:     {}", root.join("playground.json").display());
    println!("  topology:      {}", topology_path.display());
    println!("  backup store:  {}", root.join("backups").display());
    println!("  buckets:       {} (a directory per bucket, for exports and imports)", root.join("buckets").display());
    let tern = binary.display();
    println!("Try it:");
    println!("  export TERN_ENDPOINT={endpoint}");
    println!("  {tern} create-table --table-name demo --partition-key pk:S --sort-key sk:N");
    println!("  {tern} put-item --table-name demo --item '{{\"pk\":{{\"S\":\"a\"}},\"sk\":{{\"N\":\"1\"}}}}'");
    println!("  {tern} query --table-name demo --key-condition-expression 'pk = :p' --expression-attribute-values '{{\":p\":{{\"S\":\"a\"}}}}'");
    if let Some(cache) = cache_endpoints.get(&regions[0]) {
        println!(
            "Read through the cache (the same API, answered from memory, kept fresh from the region's change feed):"
        );
        println!("  {tern} --endpoint {cache} get-item --table-name demo --key '{{\"pk\":{{\"S\":\"a\"}},\"sk\":{{\"N\":\"1\"}}}}'");
        println!("  {tern} --endpoint {cache} cache status");
    }
    if replicated {
        let others: Vec<&String> = regions.iter().skip(1).collect();
        let updates: Vec<String> =
            others.iter().map(|r| format!("{{\"Create\":{{\"RegionName\":\"{r}\"}}}}")).collect();
        println!("Make demo a global table, then read in {} what you wrote in {}:", others[0], regions[0]);
        println!("  {tern} update-table --table-name demo --replica-updates '[{}]'", updates.join(","));
        println!("  {tern} --endpoint {} get-item --table-name demo --key '{{\"pk\":{{\"S\":\"a\"}},\"sk\":{{\"N\":\"1\"}}}}'", endpoints[others[0].as_str()]);
        println!("  {tern} replication status --topology {}", topology_path.display());
    }
    println!("Press Ctrl-C to stop.");

    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = terminate.recv() => {},
    }
    stop(&mut children).await;
    match temporary {
        Some(dir) => println!("Stopped; removed {}", dir.path().display()),
        None => println!("Stopped; data kept in {}", root.display()),
    }
    Ok(())
}

async fn wait_for_leader(endpoint: &str) -> anyhow::Result<()> {
    let client = tern_client::Client::connect([endpoint]).await?;
    for _ in 0..100 {
        if let Ok(status) = client.node_status(None).await {
            if status.leader_id.is_some() {
                return Ok(());
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::bail!("no leader was elected within 10 seconds; see the node logs")
}

/// Waits until a cache node follows its region's change feed.
async fn wait_for_cache(address: &str) -> anyhow::Result<()> {
    for _ in 0..100 {
        let connected =
            tern_proto::internal::cache_admin_client::CacheAdminClient::connect(format!("http://{address}")).await;
        if let Ok(mut admin) = connected {
            if let Ok(status) = admin.status(tern_proto::internal::CacheStatusRequest {}).await {
                if !status.into_inner().following.is_empty() {
                    return Ok(());
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::bail!("the cache at {address} did not start following its region within 10 seconds; see its log")
}

/// Sends SIGTERM to every node and waits for them to exit.
async fn stop(children: &mut [Child]) {
    for child in children.iter() {
        if let Some(pid) = child.id() {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGTERM);
        }
    }
    for child in children.iter_mut() {
        if tokio::time::timeout(Duration::from_secs(10), child.wait()).await.is_err() {
            let _ = child.kill().await;
        }
    }
}
