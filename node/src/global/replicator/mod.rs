//! `tern replicator`: one region's replicator. For every global table with a replica in its region,
//! and every other region of that table, it reads that region's stream from the checkpoint kept in
//! its own region and applies the changes through its region's Raft, the new checkpoint in the same
//! entry (see `pair`). It finds global tables by listing its region's tables every second.

pub mod pair;
pub mod status;
pub mod verify;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use tern_client::Client;
use tern_proto::v1::{DescribeTableRequest, ListTablesRequest, TableDescription};
use tokio::task::JoinHandle;

use crate::topology::Topology;

#[derive(Debug, Clone, Args)]
pub struct ReplicatorArgs {
    /// The region this replicator applies changes to.
    #[arg(long)]
    pub region: String,
    /// The deployment's topology file.
    #[arg(long)]
    pub topology: PathBuf,
    /// Serve Prometheus metrics on this address (default: the region's `replicator` in the topology).
    #[arg(long)]
    pub metrics_listen: Option<SocketAddr>,
    /// Once caught up, a read of the source stream waits there for new records (a long poll); a source
    /// that answers at once with nothing is asked again after this many milliseconds.
    #[arg(long, default_value_t = 50)]
    pub poll_ms: u64,
    /// Most records per GetRecords (and per applied batch).
    #[arg(long, default_value_t = 1000)]
    pub batch: u32,
}

/// What the pair workers share: clients of every region.
pub struct Context {
    pub region: String,
    pub clients: BTreeMap<String, Client>,
    pub poll: Duration,
    pub batch: u32,
}

impl Context {
    pub fn client(&self, region: &str) -> anyhow::Result<&Client> {
        self.clients.get(region).with_context(|| format!("region {region} is not in the topology"))
    }
}

/// Clients of every region of a topology; calls give up after `deadline` (the caller retries).
pub async fn region_clients(topology: &Topology, deadline: Duration) -> anyhow::Result<BTreeMap<String, Client>> {
    let mut clients = BTreeMap::new();
    for name in topology.regions.keys() {
        clients.insert(name.clone(), topology.connect(name, deadline).await?);
    }
    Ok(clients)
}

/// Every table of a region, described.
pub async fn describe_tables(client: &Client) -> anyhow::Result<Vec<TableDescription>> {
    let mut tables = Vec::new();
    let mut start = String::new();
    loop {
        let page = client.list_tables(ListTablesRequest { exclusive_start_table_name: start, limit: 100 }).await?;
        for name in page.table_names {
            match client.describe_table(DescribeTableRequest { table_name: name }).await {
                Ok(response) => tables.extend(response.table),
                Err(e) if e.kind() == Some(tern_proto::ErrorKind::ResourceNotFoundException) => {}
                Err(e) => return Err(e.into()),
            }
        }
        if page.last_evaluated_table_name.is_empty() {
            return Ok(tables);
        }
        start = page.last_evaluated_table_name;
    }
}

/// Runs the replicator until SIGTERM or Ctrl-C.
pub async fn run(args: ReplicatorArgs) -> anyhow::Result<()> {
    let topology = Topology::load(&args.topology)?;
    let own = topology.region(&args.region)?;
    // The topology names the replicator's status endpoint; --metrics-listen overrides it.
    let metrics_listen = args.metrics_listen.or_else(|| own.replicator.as_ref().and_then(|a| a.parse().ok()));
    if let Some(address) = metrics_listen {
        crate::metrics::serve(address).context("serving metrics")?;
    }
    let context = Arc::new(Context {
        region: args.region.clone(),
        clients: region_clients(&topology, Duration::from_secs(5)).await?,
        poll: Duration::from_millis(args.poll_ms),
        batch: args.batch.clamp(1, 1000),
    });
    tracing::info!(region = %args.region, regions = ?topology.regions.keys().collect::<Vec<_>>(), "replicator started");
    let mut workers: HashMap<(String, String), JoinHandle<()>> = HashMap::new();
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        match describe_tables(context.client(&context.region)?).await {
            Ok(tables) => {
                let wanted: Vec<(String, String)> = tables
                    .iter()
                    .filter(|t| t.replicas.iter().any(|r| r.region_name == context.region))
                    .flat_map(|t| {
                        t.replicas
                            .iter()
                            .filter(|r| r.region_name != context.region)
                            .map(|r| (t.table_name.clone(), r.region_name.clone()))
                    })
                    .collect();
                workers.retain(|pair, worker| {
                    let keep = wanted.contains(pair) && !worker.is_finished();
                    if !keep {
                        tracing::info!(table = %pair.0, source = %pair.1, "stopping replication");
                        worker.abort();
                    }
                    keep
                });
                for (table, source) in wanted {
                    workers.entry((table.clone(), source.clone())).or_insert_with(|| {
                        tracing::info!(%table, %source, "replicating");
                        tokio::spawn(pair::replicate(context.clone(), table, source))
                    });
                }
            }
            Err(error) => tracing::warn!(%error, "listing this region's tables"),
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = tokio::signal::ctrl_c() => break,
            _ = terminate.recv() => break,
        }
    }
    tracing::info!("replicator stopping");
    Ok(())
}
