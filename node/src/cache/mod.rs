//! `tern cache`: a region's cache tier, as DAX is DynamoDB's. It serves the same public gRPC API as a
//! node, so an application points its client at it and changes nothing else. Eventually consistent
//! GetItem and BatchGetItem are answered from the item cache ([`items`]), Query and Scan from the query
//! cache ([`queries`]); writes go to the region and their results into the item cache
//! (write-through); strongly consistent reads, transactions' reads, table operations and streams pass
//! through ([`service`]).
//!
//! Beyond DAX, it is never stale past the region's change feed ([`crate::changes`]): it follows a node's
//! feed ([`follow`]) and replaces or drops what every change touches, whoever made it (a client of a
//! node, the TTL sweeper, another region's replicator). The guarantee: **a cache hit is never older
//! than the cache's position in the feed**. Fills and changes are ordered by position ([`items`]), and
//! when the cache loses its place in the feed it drops everything it holds.

pub mod follow;
pub mod items;
pub mod passthrough;
pub mod queries;
pub mod service;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};
use tern_client::{Client, Relay};
use tern_proto::internal::{CacheStatus, StoredTable};
use tern_proto::v1::tern_client::TernClient;
use tern_proto::v1::{DescribeTableRequest, DescribeTimeToLiveRequest, TimeToLiveSpecification};
use tern_proto::ApiError;

use self::items::ItemCache;
use self::queries::{Generations, QueryCache};
use crate::schema::TableSchema;
use crate::topology::Topology;

#[derive(Debug, Clone, Args)]
pub struct CacheArgs {
    /// The region this cache serves.
    #[arg(long)]
    pub region: Option<String>,
    /// The deployment's topology file.
    #[arg(long)]
    pub topology: Option<PathBuf>,
    /// Serve the API on this address.
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Serve Prometheus metrics on this address.
    #[arg(long)]
    pub metrics_listen: Option<SocketAddr>,
    /// How long an item stays cached, in seconds (DAX's record TTL; 0: until evicted or changed).
    #[arg(long, default_value_t = 300)]
    pub item_ttl: u64,
    /// How long a Query or Scan page stays cached, in seconds (DAX's query TTL; 0: not cached).
    #[arg(long, default_value_t = 300)]
    pub query_ttl: u64,
    /// Most memory the item cache takes, in bytes.
    #[arg(long, default_value_t = 256 << 20)]
    pub item_cache_bytes: u64,
    /// Most memory the query cache takes, in bytes.
    #[arg(long, default_value_t = 64 << 20)]
    pub query_cache_bytes: u64,
    /// How long the cache may go without hearing from any node's change feed before it drops what it
    /// holds (it could no longer say how fresh it is), in seconds.
    #[arg(long, default_value_t = 10)]
    pub max_feed_silence: u64,
    #[command(subcommand)]
    pub command: Option<CacheCommand>,
}

#[derive(Debug, Clone, Subcommand)]
pub enum CacheCommand {
    /// A cache node's hits, misses, size, evictions, invalidations and lag, as JSON (`--endpoint` names
    /// the cache).
    Status,
}

/// What the cache knows of a table: its key schema and TTL settings.
pub struct TableInfo {
    pub schema: TableSchema,
    /// The description and TTL, in the form the node's read rules take.
    pub stored: StoredTable,
}

/// One table as the cache holds it. A table that is created, deleted or changed gets a new state
/// with a new epoch, and entries of an older epoch are never served.
pub struct TableState {
    pub epoch: u64,
    pub generations: Generations,
    /// The cache's fill floor when the state was made: what describes the table must be at least as new.
    pub made_at: u64,
    /// The latest write to the table through this cache: a page read before it is not cached.
    pub written_at: AtomicU64,
    info: RwLock<Option<Arc<TableInfo>>>,
}

impl TableState {
    pub fn info(&self) -> Option<Arc<TableInfo>> {
        self.info.read().expect("table info lock").clone()
    }
}

/// The tables the cache has seen.
#[derive(Default)]
pub struct Tables {
    states: Mutex<HashMap<String, Arc<TableState>>>,
    epochs: AtomicU64,
}

impl Tables {
    /// The table's state, made on first use (at fill floor `floor`).
    pub fn state(&self, name: &str, floor: u64) -> Arc<TableState> {
        let mut states = self.states.lock().expect("tables lock");
        states
            .entry(name.to_string())
            .or_insert_with(|| {
                Arc::new(TableState {
                    epoch: self.epochs.fetch_add(1, Ordering::SeqCst) + 1,
                    generations: Generations::default(),
                    made_at: floor,
                    written_at: AtomicU64::new(0),
                    info: RwLock::new(None),
                })
            })
            .clone()
    }

    /// Forgets `state` if it is still the table's (its description could not be had).
    fn forget(&self, name: &str, state: &Arc<TableState>) {
        let mut states = self.states.lock().expect("tables lock");
        if states.get(name).is_some_and(|s| Arc::ptr_eq(s, state)) {
            states.remove(name);
        }
    }

    /// The table's state, when the cache has one.
    pub fn existing(&self, name: &str) -> Option<Arc<TableState>> {
        self.states.lock().expect("tables lock").get(name).cloned()
    }

    /// Forgets a table: it was created, deleted or changed.
    pub fn dropped(&self, name: &str) {
        self.states.lock().expect("tables lock").remove(name);
    }

    /// Forgets every table.
    pub fn clear(&self) {
        self.states.lock().expect("tables lock").clear();
    }
}

/// Counters `tern cache status` shows.
#[derive(Default)]
pub struct Counters {
    pub item_hits: AtomicU64,
    pub item_misses: AtomicU64,
    pub query_hits: AtomicU64,
    pub query_misses: AtomicU64,
    pub invalidations: AtomicU64,
    pub resets: AtomicU64,
    pub lag_records: AtomicU64,
    /// Microseconds.
    pub lag_micros: AtomicU64,
}

/// Everything a cache node shares between its service and its feed follower.
pub struct CacheState {
    pub region: String,
    /// The region's nodes.
    pub client: Client,
    pub items: ItemCache,
    pub queries: QueryCache,
    pub tables: Tables,
    /// Every change at or before this position has been applied to what the cache holds.
    pub position: AtomicU64,
    /// The newest position reads and writes through the cache have shown.
    pub newest_seen: AtomicU64,
    pub counters: Counters,
    /// The node whose feed the cache follows.
    pub following: Mutex<String>,
    pub query_caching: bool,
    pub item_capacity: u64,
    pub query_capacity: u64,
}

impl CacheState {
    pub fn new(region: &str, client: Client, args: &CacheArgs) -> CacheState {
        let item_ttl = (args.item_ttl > 0).then(|| Duration::from_secs(args.item_ttl));
        let evictions = Arc::new(AtomicU64::new(0));
        CacheState {
            region: region.to_string(),
            client,
            items: ItemCache::new(args.item_cache_bytes, item_ttl, evictions.clone()),
            queries: QueryCache::new(args.query_cache_bytes, Duration::from_secs(args.query_ttl.max(1)), evictions),
            tables: Tables::default(),
            position: AtomicU64::new(0),
            newest_seen: AtomicU64::new(0),
            counters: Counters::default(),
            following: Mutex::new(String::new()),
            query_caching: args.query_ttl > 0,
            item_capacity: args.item_cache_bytes,
            query_capacity: args.query_cache_bytes,
        }
    }

    /// The table's state and what the cache knows of it, asking the region the first time.
    pub async fn table(&self, name: &str) -> Result<(Arc<TableState>, Arc<TableInfo>), ApiError> {
        let state = self.tables.state(name, self.items.floor());
        if let Some(info) = state.info() {
            return Ok((state, info));
        }
        let info = match self.describe(name, state.made_at).await {
            Ok(info) => Arc::new(info),
            Err(e) => {
                self.tables.forget(name, &state);
                return Err(e);
            }
        };
        *state.info.write().expect("table info lock") = Some(info.clone());
        Ok((state, info))
    }

    /// The table's key schema and TTL settings, from nodes that have applied at least `at_least` (the
    /// cache's floor when it last dropped the table): any node first, the leader if that one lags.
    async fn describe(&self, name: &str, at_least: u64) -> Result<TableInfo, ApiError> {
        let at_least = if at_least == u64::MAX { 0 } else { at_least };
        for relay in [Relay::AnyNode, Relay::Leader, Relay::Leader] {
            let table_name = name.to_string();
            let described = self
                .client
                .relay(relay, |channel, timeout| {
                    let request = tonic::Request::new(DescribeTableRequest { table_name: table_name.clone() });
                    let mut request = request;
                    request.set_timeout(timeout);
                    async move { TernClient::new(channel).describe_table(request).await }
                })
                .await
                .map_err(api_error)?;
            let ttl = self
                .client
                .relay(relay, |channel, timeout| {
                    let mut request = tonic::Request::new(DescribeTimeToLiveRequest { table_name: table_name.clone() });
                    request.set_timeout(timeout);
                    async move { TernClient::new(channel).describe_time_to_live(request).await }
                })
                .await
                .map_err(api_error)?;
            if described.applied_through_micros.min(ttl.applied_through_micros) < at_least {
                // That node has not yet applied a change of the table the cache has seen.
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
            let description =
                described.table.ok_or_else(|| ApiError::internal("DescribeTable answered without a table"))?;
            let ttl = ttl.time_to_live_description.unwrap_or_default();
            let schema = TableSchema::from_description(0, &description)?;
            // While ENABLING (the table's items being indexed) the node already hides expired items.
            let time_to_live = TimeToLiveSpecification {
                enabled: matches!(ttl.time_to_live_status.as_str(), "ENABLED" | "ENABLING"),
                attribute_name: ttl.attribute_name,
                hide_expired_items: ttl.hide_expired_items,
            };
            let stored =
                StoredTable { description: Some(description), time_to_live: Some(time_to_live), ..Default::default() };
            return Ok(TableInfo { schema, stored });
        }
        Err(ApiError::unavailable(format!("No node has applied the latest change of table {name} yet; retry")))
    }

    /// Notes a position the region has reached, as a read or a write through the cache showed it: a
    /// followed node that stays behind it is left for another.
    pub fn saw(&self, position: u64) {
        self.newest_seen.fetch_max(position, Ordering::Relaxed);
    }

    /// Drops everything the cache holds, and fills nothing until the feed starts again ([`Self::reset`]):
    /// it lost its place in the feed.
    pub fn suspend(&self) {
        self.items.reset_floor(u64::MAX);
        self.tables.clear();
        self.items.clear();
        self.queries.clear();
        self.counters.resets.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("tern_cache_resets_total").increment(1);
    }

    /// The feed starts (again) at `position`: fills read at or after it may install.
    pub fn reset(&self, position: u64) {
        self.tables.clear();
        self.items.clear();
        self.queries.clear();
        self.position.store(position, Ordering::SeqCst);
        self.items.reset_floor(position);
    }

    /// The status `tern cache status` prints.
    pub async fn status(&self) -> CacheStatus {
        self.items.settle().await;
        self.queries.settle().await;
        let c = &self.counters;
        CacheStatus {
            region: self.region.clone(),
            item_hits: c.item_hits.load(Ordering::Relaxed),
            item_misses: c.item_misses.load(Ordering::Relaxed),
            query_hits: c.query_hits.load(Ordering::Relaxed),
            query_misses: c.query_misses.load(Ordering::Relaxed),
            item_entries: self.items.entry_count(),
            item_bytes: self.items.weighted_size(),
            query_entries: self.queries.entry_count(),
            query_bytes: self.queries.weighted_size(),
            evictions: self.items.evictions(),
            invalidations: c.invalidations.load(Ordering::Relaxed),
            position: self.position.load(Ordering::SeqCst),
            lag_records: c.lag_records.load(Ordering::Relaxed),
            lag_seconds: c.lag_micros.load(Ordering::Relaxed) as f64 / 1e6,
            following: self.following.lock().expect("following lock").clone(),
            resets: c.resets.load(Ordering::Relaxed),
            item_capacity_bytes: self.item_capacity,
            query_capacity_bytes: self.query_capacity,
        }
    }
}

/// The region's error from a client error.
pub fn api_error(error: tern_client::Error) -> ApiError {
    match error {
        tern_client::Error::Api(e) => e,
        tern_client::Error::DeadlineExceeded { last, .. } | tern_client::Error::OutcomeUnknown { last, .. } => last,
        other => ApiError::internal(other.to_string()),
    }
}

/// Runs a cache node until SIGTERM or Ctrl-C.
pub async fn run(args: CacheArgs) -> anyhow::Result<()> {
    let region = args.region.clone().context("--region is required")?;
    let topology_path = args.topology.clone().context("--topology is required")?;
    let listen = args.listen.context("--listen is required")?;
    let topology = Topology::load(&topology_path)?;
    let nodes: Vec<String> = topology.region(&region)?.nodes.values().cloned().collect();
    // Each relayed attempt is short: the cache's own caller retries too.
    let client = topology.connect(&region, Duration::from_secs(10)).await?;
    if let Some(address) = args.metrics_listen {
        crate::metrics::serve(address).context("serving metrics")?;
    }
    let state = Arc::new(CacheState::new(&region, client, &args));
    tokio::spawn(follow::follow_forever(state.clone(), nodes, Duration::from_secs(args.max_feed_silence.max(1))));
    tokio::spawn(service::publish_gauges(state.clone()));
    let listener = tokio::net::TcpListener::bind(listen).await.with_context(|| format!("binding {listen}"))?;
    tracing::info!(%region, %listen, "cache started");
    service::serve(state, listener).await
}

/// `tern cache status`: the cache's counters as JSON.
pub async fn print_status(endpoint: &str) -> anyhow::Result<()> {
    let address = if endpoint.starts_with("http") { endpoint.to_string() } else { format!("http://{endpoint}") };
    let mut admin = tern_proto::internal::cache_admin_client::CacheAdminClient::connect(address.clone())
        .await
        .with_context(|| format!("connecting to the cache at {address}"))?;
    let s = admin.status(tern_proto::internal::CacheStatusRequest {}).await?.into_inner();
    let json = serde_json::json!({
        "region": s.region,
        "item_cache": {
            "hits": s.item_hits, "misses": s.item_misses, "entries": s.item_entries,
            "bytes": s.item_bytes, "capacity_bytes": s.item_capacity_bytes,
        },
        "query_cache": {
            "hits": s.query_hits, "misses": s.query_misses, "entries": s.query_entries,
            "bytes": s.query_bytes, "capacity_bytes": s.query_capacity_bytes,
        },
        "evictions": s.evictions,
        "feed": {
            "following": s.following, "position": s.position, "invalidations": s.invalidations,
            "lag_records": s.lag_records, "lag_seconds": s.lag_seconds, "resets": s.resets,
        },
    });
    println!("{}", serde_json::to_string_pretty(&json)?);
    Ok(())
}
