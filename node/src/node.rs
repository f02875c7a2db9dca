//! `tern node`: one storage node of a region — Raft over RocksDB, serving the public and internal APIs.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use openraft::BasicNode;
use tern_proto::internal::change_feed_server::ChangeFeedServer;
use tern_proto::internal::raft_server::RaftServer;
use tern_proto::v1::backups_server::BackupsServer;
use tern_proto::v1::cluster_server::ClusterServer;
use tern_proto::v1::streams_server::StreamsServer;
use tern_proto::v1::tern_server::TernServer;
use tern_proto::v1::transfers_server::TransfersServer;

use tern_proto::v1::replication_server::ReplicationServer;

use crate::api::{ClusterService, TernService};
use crate::changes::service::ChangeFeedService;
use crate::config::NodeConfig;
use crate::engine::{Engine, Rocks};
use crate::global::service::ReplicationService;
use crate::raft::network::{Network, MAX_RAFT_MESSAGE_BYTES};
use crate::raft::service::RaftService;
use crate::raft::types::Raft;
use crate::raft::{LogStore, StateMachine};
use crate::reader::Reader;
use crate::routing::{RegionNode, MAX_API_MESSAGE_BYTES};
use crate::stream::reader::StreamReader;
use crate::stream::service::StreamsService;
use crate::stream::trim::{trim_forever, StreamSettings};

/// Runs a node until SIGTERM or Ctrl-C, then shuts down cleanly.
pub async fn run(config: NodeConfig) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.data_dir).with_context(|| format!("creating {}", config.data_dir.display()))?;
    config.claim_data_dir()?;
    let engine: Arc<dyn Engine> = Arc::new(Rocks::open(&config.data_dir.join("db")).context("opening RocksDB")?);
    let log_store = LogStore::open(engine.clone(), config.id)?;
    let log = log_store.log_sync();
    let state_machine =
        StateMachine::open(engine.clone(), config.data_dir.join("snapshots"), &config.region, log.clone())?;
    let changes = state_machine.change_feed();
    let raft_config = Arc::new(config.raft_config()?);
    let raft = Raft::new(config.id, raft_config, Network::new(log), log_store, state_machine).await?;

    if let Some(address) = config.metrics_listen {
        crate::metrics::serve(address).context("serving metrics")?;
    }
    tokio::spawn(crate::metrics::publish_raft(raft.clone()));
    let stopping = Arc::new(std::sync::atomic::AtomicBool::new(false));
    tokio::spawn(exit_if_raft_stops(raft.clone(), stopping.clone()));

    let clock = Arc::new(crate::clock::Monitor::new(config.id, Duration::from_millis(config.max_clock_offset_ms)));
    tokio::spawn(crate::clock::watch_forever(clock.clone(), raft.clone(), config.id, config.peers.clone()));
    let mut node = RegionNode::new(
        config.id,
        config.region.clone(),
        raft.clone(),
        Reader::new(engine.clone(), changes.clone()),
        clock.clone(),
    );
    node.topology = config.topology.clone().map(Arc::new);
    let stream_settings = StreamSettings {
        retention: Duration::from_secs(config.stream_retention_secs),
        iterator_ttl: Duration::from_secs(config.stream_iterator_ttl_secs),
    };
    let streams = StreamReader::new(engine.clone());
    let trim_every = Duration::from_secs(1).min(stream_settings.retention / 4).max(Duration::from_millis(100));
    tokio::spawn(trim_forever(node.clone(), streams.clone(), stream_settings.clone(), trim_every));
    tokio::spawn(crate::ttl::sweeper::sweep_forever(node.clone(), Duration::from_millis(config.ttl_sweep_interval_ms)));
    tokio::spawn(crate::global::purge::purge_tombstones_forever(node.clone(), Duration::from_secs(2)));
    tokio::spawn(crate::sessions::forget_idle_forever(node.clone(), Duration::from_secs(60)));
    let backup_store =
        crate::backup::store::BackupStore::open(&config.backup_store).context("opening the backup store")?;
    tracing::info!(store = %backup_store.url(), "backup store");
    let backup_settings = crate::backup::runner::RunnerSettings {
        archive_every: Duration::from_millis(config.pitr_archive_interval_ms.max(10)),
        base_every: Duration::from_secs(config.pitr_base_interval_secs.max(1)),
    };
    let buckets = crate::transfer::Buckets::new(&config.buckets).context("--buckets")?;
    let export_progress = crate::transfer::ExportProgress::default();
    tokio::spawn(crate::backup::runner::run_forever(
        node.clone(),
        engine.clone(),
        backup_store.clone(),
        buckets.clone(),
        export_progress.clone(),
        backup_settings,
    ));
    let listener =
        tokio::net::TcpListener::bind(config.listen).await.with_context(|| format!("binding {}", config.listen))?;
    tracing::info!(id = config.id, region = %config.region, listen = %config.listen, "node started");
    initialize_if_first(&raft, &config).await?;
    let incoming = accepted_without_delay(listener);
    let server = tonic::transport::Server::builder()
        .add_service(
            RaftServer::new(RaftService::new(raft.clone()))
                .max_decoding_message_size(MAX_RAFT_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_RAFT_MESSAGE_BYTES),
        )
        .add_service(
            TernServer::new(TernService::new(node.clone()))
                .max_decoding_message_size(MAX_API_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_API_MESSAGE_BYTES),
        )
        .add_service(
            StreamsServer::new(StreamsService::new(node.clone(), streams, stream_settings))
                .max_encoding_message_size(MAX_API_MESSAGE_BYTES),
        )
        .add_service(
            ReplicationServer::new(ReplicationService::new(node.clone()))
                .max_decoding_message_size(MAX_API_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_API_MESSAGE_BYTES),
        )
        .add_service(
            BackupsServer::new(crate::backup::service::BackupsService::new(node.clone(), backup_store.clone()))
                .max_decoding_message_size(MAX_API_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_API_MESSAGE_BYTES),
        )
        .add_service(
            TransfersServer::new(crate::transfer::service::TransfersService::new(
                node.clone(),
                buckets,
                export_progress,
                config.min_incremental_export_secs,
                backup_store.url().to_string(),
            ))
            .max_decoding_message_size(MAX_API_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_API_MESSAGE_BYTES),
        )
        .add_service(ClusterServer::new(ClusterService::new(node)))
        .add_service(
            ChangeFeedServer::new(ChangeFeedService::new(changes)).max_encoding_message_size(MAX_API_MESSAGE_BYTES),
        )
        .serve_with_incoming_shutdown(incoming, shutdown_signal());
    server.await.context("serving gRPC")?;

    tracing::info!("shutting down");
    stopping.store(true, std::sync::atomic::Ordering::SeqCst);
    raft.shutdown().await.map_err(|e| anyhow::anyhow!("stopping raft: {e}"))?;
    engine.flush().context("flushing the write-ahead log")?;
    Ok(())
}

/// The node with the lowest id initialises the region, once, when no state exists yet. Initialising
/// elects it at once, whatever its clock: if its clock is off, it serves nothing and, without its
/// heartbeats, the others elect another within about two seconds.
async fn initialize_if_first(raft: &Raft, config: &NodeConfig) -> anyhow::Result<()> {
    let lowest = config.peers.keys().next().copied();
    if lowest != Some(config.id) || raft.is_initialized().await? {
        return Ok(());
    }
    let members = config
        .peers
        .iter()
        .map(|(id, addr)| (*id, BasicNode { addr: addr.clone() }))
        .collect::<std::collections::BTreeMap<_, _>>();
    tracing::info!(?members, "initialising the region");
    match raft.initialize(members).await {
        Ok(()) => Ok(()),
        Err(openraft::error::RaftError::APIError(e)) => {
            tracing::info!(error = %e, "region already initialised");
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

/// Fails fast: a node whose Raft core stopped (a panic, a storage error) would go on answering with
/// the last state it knew (a leader it no longer is) and refusing every write. It exits instead, so
/// that clients go to the other nodes and its supervisor restarts it from its intact state on disk.
async fn exit_if_raft_stops(raft: Raft, stopping: Arc<std::sync::atomic::AtomicBool>) {
    let mut metrics = raft.metrics();
    loop {
        let stopped = metrics.changed().await.is_err();
        let fatal = metrics.borrow().running_state.clone().err();
        if stopping.load(std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        if stopped || fatal.is_some() {
            let reason = fatal.map_or_else(|| "its core task ended".to_string(), |f| f.to_string());
            tracing::error!(%reason, "Raft stopped: exiting");
            std::process::exit(70);
        }
    }
}

async fn shutdown_signal() {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing a SIGTERM handler");
    tokio::select! {
        _ = terminate.recv() => {},
        _ = tokio::signal::ctrl_c() => {},
    }
}

/// The connections `listener` accepts, each with TCP_NODELAY: set here, since tonic's
/// `Server::tcp_nodelay` applies only to listeners tonic binds itself. Without it a reply written in
/// more than one piece waits for the peer's delayed ACK (Nagle's algorithm): a 40 ms tail on loopback.
fn accepted_without_delay(listener: tokio::net::TcpListener) -> tonic::transport::server::TcpIncoming {
    tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true))
}

#[cfg(test)]
mod tests {
    use futures::StreamExt;

    /// Every connection the node accepts has Nagle's algorithm off.
    #[tokio::test]
    async fn accepted_connections_have_tcp_nodelay() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let mut incoming = super::accepted_without_delay(listener);
        let _client = tokio::net::TcpStream::connect(address).await.unwrap();
        let accepted = incoming.next().await.unwrap().unwrap();
        assert!(accepted.nodelay().unwrap(), "an accepted connection has Nagle's algorithm on");
    }
}
