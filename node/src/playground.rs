//! `tern playground`: a region of nodes as child processes on loopback, described in `playground.json`.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use serde::{Deserialize, Serialize};
use tokio::process::{Child, Command};

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
    /// The region's name.
    #[arg(long, default_value = "local")]
    pub region: String,
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
    pub endpoint: String,
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
    let ids: Vec<u64> = (1..=args.nodes_per_region).collect();
    let address = |id: u64| format!("127.0.0.1:{}", args.base_port as u64 + id - 1);
    let metrics = |id: u64| format!("127.0.0.1:{}", args.base_port as u64 + 100 + id - 1);
    let peers = ids.iter().map(|id| format!("{id}={}", address(*id))).collect::<Vec<_>>().join(",");

    let mut children: Vec<Child> = Vec::new();
    let mut processes = Vec::new();
    for &id in &ids {
        let data_dir = root.join(format!("{}-node-{id}", args.region));
        let log = std::fs::File::create(root.join(format!("{}-node-{id}.log", args.region)))?;
        let child = Command::new(&binary)
            .args(["node", "--id", &id.to_string(), "--region", &args.region, "--listen", &address(id)])
            .args(["--data-dir", &data_dir.to_string_lossy(), "--peers", &peers, "--metrics-listen", &metrics(id)])
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting node {id}"))?;
        processes.push(ProcessInfo {
            role: "node".into(),
            id,
            region: args.region.clone(),
            address: address(id),
            metrics_address: metrics(id),
            pid: child.id().unwrap_or(0),
            data_dir,
        });
        children.push(child);
    }
    let endpoint = ids.iter().map(|id| address(*id)).collect::<Vec<_>>().join(",");
    let info = PlaygroundInfo { endpoint: endpoint.clone(), processes };
    std::fs::write(root.join("playground.json"), serde_json::to_string_pretty(&info)?)?;

    wait_for_leader(&endpoint).await?;
    println!("Tern playground: region {} with {} nodes is up.", args.region, ids.len());
    println!("  data and logs: {}", root.display());
    println!("  processes:     {}", root.join("playground.json").display());
    let tern = binary.display();
    println!("Try it:");
    println!("  export TERN_ENDPOINT={endpoint}");
    println!("  {tern} create-table --table-name demo --partition-key pk:S --sort-key sk:N");
    println!("  {tern} put-item --table-name demo --item '{{\"pk\":{{\"S\":\"a\"}},\"sk\":{{\"N\":\"1\"}}}}'");
    println!("  {tern} query --table-name demo --key-condition-expression 'pk = :p' --expression-attribute-values '{{\":p\":{{\"S\":\"a\"}}}}'");
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
