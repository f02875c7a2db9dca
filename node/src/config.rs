//! A storage node's settings, from flags or a TOML file (`--config`), with defaults in one place.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;
use serde::{Deserialize, Serialize};

/// `tern node` flags; every one may instead come from the `--config` TOML file (flags win).
#[derive(Debug, Clone, Default, Args, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct NodeArgs {
    /// A TOML file with any of these settings (keys as the flags are spelled, e.g. `data-dir`).
    #[arg(long)]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// This node's id within its region. With --topology it may be left out: the node is then the one
    /// whose address in the topology is on this machine's hostname (`tern-node-0.tern-node...` in a
    /// Kubernetes StatefulSet, a container's hostname under compose).
    #[arg(long)]
    pub id: Option<u64>,
    /// The region this node belongs to.
    #[arg(long)]
    pub region: Option<String>,
    /// Address to serve the public and internal gRPC APIs on.
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Address other nodes and clients reach this node at (defaults to --listen).
    #[arg(long)]
    pub advertise: Option<String>,
    /// Directory for the node's RocksDB and snapshots.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// The region's initial nodes: `1=host:port,2=host:port,3=host:port`.
    #[arg(long)]
    pub peers: Option<String>,
    /// A topology file to take the region's nodes from (instead of --peers).
    #[arg(long)]
    pub topology: Option<PathBuf>,
    /// Serve Prometheus metrics at http://ADDR/metrics.
    #[arg(long)]
    pub metrics_listen: Option<SocketAddr>,
    /// Build a snapshot after this many log entries since the last one.
    #[arg(long)]
    pub snapshot_every: Option<u64>,
    /// Log entries kept behind the snapshot before they are purged.
    #[arg(long)]
    pub keep_logs: Option<u64>,
    /// Raft heartbeat interval, in milliseconds.
    #[arg(long)]
    pub heartbeat_ms: Option<u64>,
    /// Minimum election timeout, in milliseconds (the maximum is twice it). A follower that stops
    /// hearing its leader waits the maximum (the leader's lease) plus its own timeout, so with the
    /// default 400 a new leader is elected 1.2 to 1.6 s after the last heartbeat (up to 2.4 s when two
    /// candidates split the vote).
    #[arg(long)]
    pub election_timeout_ms: Option<u64>,
    /// How long 24-hour-mode stream records are kept, in seconds (DynamoDB's 24 hours by default).
    #[arg(long)]
    pub stream_retention_secs: Option<u64>,
    /// How long a shard iterator stays valid, in seconds (DynamoDB's 15 minutes by default).
    #[arg(long)]
    pub stream_iterator_ttl_secs: Option<u64>,
    /// How often the leader looks for expired items, in milliseconds.
    #[arg(long)]
    pub ttl_sweep_interval_ms: Option<u64>,
    /// Largest offset of this node's wall clock from its region's majority, in milliseconds, for it to
    /// lead (a leader stamps every version with its clock). Default 500.
    #[arg(long, alias = "max-clock-offset")]
    pub max_clock_offset_ms: Option<u64>,
    /// Where backups and the PITR log are kept, outside the region: `file:///dir` or
    /// `s3://bucket/prefix` (S3 or any S3-compatible store, set up by the usual `AWS_*` variables). Every
    /// node of a region must reach the same store. Default: `backups` beside the data directory.
    #[arg(long)]
    pub backup_store: Option<String>,
    /// How often the leader uploads each PITR table's new changes to the backup store, in milliseconds
    /// (default 60,000). Changes not yet uploaded are kept in the region, in every node's storage.
    #[arg(long)]
    pub pitr_archive_interval_ms: Option<u64>,
    /// How often the leader uploads a new base (a full image) of each PITR table, in seconds (default
    /// 21,600: a restore replays at most six hours of changes over its base).
    #[arg(long)]
    pub pitr_base_interval_secs: Option<u64>,
    /// Where the buckets that exports write to and imports read from are: `file:///dir` (each bucket a
    /// directory in it; the default is `buckets` beside the data directory) or `s3://` (the buckets of
    /// S3 or an S3-compatible store, reached with the usual `AWS_*` variables).
    #[arg(long)]
    pub buckets: Option<String>,
    /// The shortest window an incremental export may have, in seconds (default 900, DynamoDB's 15
    /// minutes).
    #[arg(long)]
    pub min_incremental_export_secs: Option<u64>,
}

/// A node's complete, validated settings.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    pub id: u64,
    pub region: String,
    pub listen: SocketAddr,
    pub advertise: String,
    pub data_dir: PathBuf,
    pub peers: BTreeMap<u64, String>,
    pub metrics_listen: Option<SocketAddr>,
    pub snapshot_every: u64,
    pub keep_logs: u64,
    pub heartbeat_ms: u64,
    pub election_timeout_ms: u64,
    pub stream_retention_secs: u64,
    pub stream_iterator_ttl_secs: u64,
    pub ttl_sweep_interval_ms: u64,
    pub max_clock_offset_ms: u64,
    /// The backup store's URL.
    pub backup_store: String,
    pub pitr_archive_interval_ms: u64,
    pub pitr_base_interval_secs: u64,
    /// The buckets' URL (see `--buckets`).
    pub buckets: String,
    pub min_incremental_export_secs: u64,
    /// The deployment's regions, when a topology file was given: needed to create replicas.
    pub topology: Option<crate::topology::Topology>,
}

/// Why settings are unusable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("cannot parse {path}: {source}")]
    Parse { path: PathBuf, source: toml::de::Error },
    #[error("missing setting --{0}")]
    Missing(&'static str),
    #[error("bad --peers entry {0:?}: expected ID=HOST:PORT")]
    BadPeer(String),
    #[error("{0}")]
    Invalid(String),
}

/// Parses `1=host:port,2=host:port`.
pub fn parse_peers(text: &str) -> Result<BTreeMap<u64, String>, ConfigError> {
    text.split(',')
        .filter(|p| !p.trim().is_empty())
        .map(|entry| {
            let (id, address) = entry.trim().split_once('=').ok_or_else(|| ConfigError::BadPeer(entry.to_string()))?;
            let id = id.parse().map_err(|_| ConfigError::BadPeer(entry.to_string()))?;
            if address.is_empty() {
                return Err(ConfigError::BadPeer(entry.to_string()));
            }
            Ok((id, address.to_string()))
        })
        .collect()
}

/// The id of the region's node whose address in the topology is on `hostname`: its host is the hostname,
/// or a name under it (`tern-node-0.tern-node.ns.svc` on host `tern-node-0`).
fn id_on_host(topology: &crate::topology::Topology, region: &str, hostname: &str) -> Result<u64, ConfigError> {
    let nodes = &topology.region(region).map_err(|e| ConfigError::Invalid(e.to_string()))?.nodes;
    let on_host: Vec<u64> = nodes
        .iter()
        .filter(|(_, address)| {
            let host = address.rsplit_once(':').map_or(address.as_str(), |(host, _)| host);
            host == hostname || host.split('.').next() == Some(hostname)
        })
        .map(|(id, _)| *id)
        .collect();
    match on_host[..] {
        [id] => Ok(id),
        [] => Err(ConfigError::Invalid(format!(
            "missing setting --id, and no node of region {region} in the topology is on this host ({hostname})"
        ))),
        _ => Err(ConfigError::Invalid(format!(
            "missing setting --id, and nodes {on_host:?} of region {region} are all on this host ({hostname})"
        ))),
    }
}

impl NodeArgs {
    /// Merges the flags over the `--config` file, fills defaults and validates.
    pub fn resolve(self) -> Result<NodeConfig, ConfigError> {
        let file = match &self.config {
            Some(path) => {
                let text =
                    std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.clone(), source })?;
                toml::from_str::<NodeArgs>(&text).map_err(|source| ConfigError::Parse { path: path.clone(), source })?
            }
            None => NodeArgs::default(),
        };
        let listen = self.listen.or(file.listen).ok_or(ConfigError::Missing("listen"))?;
        let region = self.region.or(file.region).unwrap_or_else(|| "local".into());
        let topology = match self.topology.or(file.topology) {
            Some(path) => {
                Some(crate::topology::Topology::load(&path).map_err(|e| ConfigError::Invalid(e.to_string()))?)
            }
            None => None,
        };
        let id = match (self.id.or(file.id), &topology) {
            (Some(id), _) => id,
            (None, Some(topology)) => {
                let hostname = nix::unistd::gethostname()
                    .map_err(|e| ConfigError::Invalid(format!("cannot read this machine's hostname: {e}")))?;
                id_on_host(topology, &region, &hostname.to_string_lossy())?
            }
            (None, None) => return Err(ConfigError::Missing("id")),
        };
        let peers_text = match (self.peers.or(file.peers), &topology) {
            (Some(peers), _) => peers,
            (None, Some(topology)) => topology.peers(&region).map_err(|e| ConfigError::Invalid(e.to_string()))?,
            (None, None) => String::new(),
        };
        let mut peers = parse_peers(&peers_text)?;
        let advertise =
            self.advertise.or(file.advertise).or_else(|| peers.get(&id).cloned()).unwrap_or_else(|| listen.to_string());
        peers.entry(id).or_insert_with(|| advertise.clone());
        let config = NodeConfig {
            id,
            region,
            listen,
            advertise,
            data_dir: self.data_dir.or(file.data_dir).ok_or(ConfigError::Missing("data-dir"))?,
            peers,
            metrics_listen: self.metrics_listen.or(file.metrics_listen),
            snapshot_every: self.snapshot_every.or(file.snapshot_every).unwrap_or(20_000),
            keep_logs: self.keep_logs.or(file.keep_logs).unwrap_or(5_000),
            heartbeat_ms: self.heartbeat_ms.or(file.heartbeat_ms).unwrap_or(100),
            election_timeout_ms: self.election_timeout_ms.or(file.election_timeout_ms).unwrap_or(400),
            stream_retention_secs: self.stream_retention_secs.or(file.stream_retention_secs).unwrap_or(86_400),
            stream_iterator_ttl_secs: self.stream_iterator_ttl_secs.or(file.stream_iterator_ttl_secs).unwrap_or(900),
            ttl_sweep_interval_ms: self.ttl_sweep_interval_ms.or(file.ttl_sweep_interval_ms).unwrap_or(500),
            max_clock_offset_ms: self.max_clock_offset_ms.or(file.max_clock_offset_ms).unwrap_or(500),
            backup_store: self.backup_store.or(file.backup_store).unwrap_or_default(),
            pitr_archive_interval_ms: self.pitr_archive_interval_ms.or(file.pitr_archive_interval_ms).unwrap_or(60_000),
            pitr_base_interval_secs: self.pitr_base_interval_secs.or(file.pitr_base_interval_secs).unwrap_or(21_600),
            buckets: self.buckets.or(file.buckets).unwrap_or_default(),
            min_incremental_export_secs: self
                .min_incremental_export_secs
                .or(file.min_incremental_export_secs)
                .unwrap_or(900),
            topology,
        };
        let mut config = config;
        if config.backup_store.is_empty() {
            config.backup_store = beside_data_dir(&config.data_dir, "backups")?;
        }
        if config.buckets.is_empty() {
            config.buckets = beside_data_dir(&config.data_dir, "buckets")?;
        }
        config.validate()?;
        Ok(config)
    }
}

/// The default backup store and buckets: a directory `name` beside the data directory, so that the
/// nodes of a region on one machine (the playground, tests) share it.
fn beside_data_dir(data_dir: &std::path::Path, name: &str) -> Result<String, ConfigError> {
    let absolute = std::path::absolute(data_dir).map_err(|e| ConfigError::Invalid(format!("--data-dir: {e}")))?;
    let beside = absolute.parent().unwrap_or(&absolute).join(name);
    Ok(format!("file://{}", beside.display()))
}

/// The file in a data directory that names the node whose data it is.
const IDENTITY_FILE: &str = "identity.toml";

#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Identity {
    region: String,
    id: u64,
}

impl NodeConfig {
    /// Makes the data directory this node's, or checks it is: on the first start the node's region and
    /// id are written beside its data (synced before Raft starts), and every later start must be the same
    /// node. A data directory started under another id would bring that node's log and vote to another
    /// member, which could then vote twice in a term; an id taken from the hostname makes that one edit
    /// of the topology away.
    pub fn claim_data_dir(&self) -> Result<(), ConfigError> {
        let path = self.data_dir.join(IDENTITY_FILE);
        let ours = Identity { region: self.region.clone(), id: self.id };
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let found: Identity =
                    toml::from_str(&text).map_err(|source| ConfigError::Parse { path: path.clone(), source })?;
                if found != ours {
                    return Err(ConfigError::Invalid(format!(
                        "{} holds node {} of region {}, not node {} of region {}: start it as that node, or give \
                         this node an empty data directory",
                        self.data_dir.display(),
                        found.id,
                        found.region,
                        ours.id,
                        ours.region
                    )));
                }
                Ok(())
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let write = || -> std::io::Result<()> {
                    let written = path.with_extension("new");
                    let mut file = std::fs::File::create(&written)?;
                    std::io::Write::write_all(
                        &mut file,
                        toml::to_string(&ours).expect("an identity serialises").as_bytes(),
                    )?;
                    file.sync_all()?;
                    std::fs::rename(&written, &path)?;
                    std::fs::File::open(&self.data_dir)?.sync_all()
                };
                write().map_err(|source| ConfigError::Read { path: path.clone(), source })
            }
            Err(source) => Err(ConfigError::Read { path, source }),
        }
    }

    /// Checks the settings make sense together.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.region.is_empty() {
            return Err(ConfigError::Invalid("--region must not be empty".into()));
        }
        if self.election_timeout_ms <= self.heartbeat_ms * 2 {
            return Err(ConfigError::Invalid("--election-timeout-ms must exceed twice --heartbeat-ms".into()));
        }
        if self.snapshot_every == 0 {
            return Err(ConfigError::Invalid("--snapshot-every must be at least 1".into()));
        }
        Ok(())
    }

    /// openraft's settings for this node.
    pub fn raft_config(&self) -> Result<openraft::Config, openraft::ConfigError> {
        openraft::Config {
            cluster_name: self.region.clone(),
            heartbeat_interval: self.heartbeat_ms,
            // A replication message must arrive within one heartbeat interval (openraft's
            // AppendEntries timeout); an entry can be a batch of up to 256 KiB of writes.
            max_payload_entries: 32,
            election_timeout_min: self.election_timeout_ms,
            election_timeout_max: self.election_timeout_ms * 2,
            snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(self.snapshot_every),
            max_in_snapshot_log_to_keep: self.keep_logs,
            snapshot_max_chunk_size: 1024 * 1024,
            install_snapshot_timeout: 10_000,
            // Elections start once the clock watch finds this node's clock agrees with its region's.
            enable_elect: false,
            ..Default::default()
        }
        .validate()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_parse() {
        let peers = parse_peers("1=127.0.0.1:7001, 2=127.0.0.1:7002").unwrap();
        assert_eq!(peers, BTreeMap::from([(1, "127.0.0.1:7001".to_string()), (2, "127.0.0.1:7002".to_string())]));
        assert!(matches!(parse_peers("1:127.0.0.1:7001"), Err(ConfigError::BadPeer(_))));
    }

    #[test]
    fn flags_override_the_file_and_defaults_fill_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.toml");
        std::fs::write(&path, "id = 2\nregion = \"eu-west\"\nlisten = \"127.0.0.1:7002\"\ndata-dir = \"/tmp/x\"\npeers = \"1=a:1,2=127.0.0.1:7002\"\n").unwrap();
        let args = NodeArgs { config: Some(path), region: Some("us-east".into()), ..Default::default() };
        let config = args.resolve().unwrap();
        assert_eq!((config.id, config.region.as_str(), config.advertise.as_str()), (2, "us-east", "127.0.0.1:7002"));
        assert_eq!(config.snapshot_every, 20_000);
    }

    #[test]
    fn without_an_id_a_node_is_the_one_the_topology_puts_on_its_hostname() {
        let topology: crate::topology::Topology = toml::from_str(
            "[regions.us-east.nodes]\n1 = \"tern-node-0.tern-node.tern-us-east.svc.cluster.local:7001\"\n\
             2 = \"tern-node-1.tern-node.tern-us-east.svc.cluster.local:7001\"\n3 = \"us-east-node-3:7001\"\n\
             [regions.eu-west.nodes]\n1 = \"tern-node-1:7001\"\n",
        )
        .unwrap();
        assert_eq!(id_on_host(&topology, "us-east", "tern-node-1").unwrap(), 2);
        assert_eq!(id_on_host(&topology, "us-east", "us-east-node-3").unwrap(), 3);
        assert_eq!(id_on_host(&topology, "eu-west", "tern-node-1").unwrap(), 1);
        let missing = id_on_host(&topology, "us-east", "tern-node").unwrap_err().to_string();
        assert!(missing.contains("no node of region us-east"), "{missing}");
        assert!(id_on_host(&topology, "ap-south", "tern-node-1").is_err());
    }

    #[test]
    fn a_data_directory_serves_only_the_node_that_first_used_it() {
        let dir = tempfile::tempdir().unwrap();
        let node = |id: u64, region: &str| {
            NodeArgs {
                id: Some(id),
                region: Some(region.into()),
                listen: Some("127.0.0.1:7001".parse().unwrap()),
                data_dir: Some(dir.path().to_path_buf()),
                ..Default::default()
            }
            .resolve()
            .unwrap()
        };
        node(1, "us-east").claim_data_dir().unwrap();
        node(1, "us-east").claim_data_dir().unwrap();
        let other = node(2, "us-east").claim_data_dir().unwrap_err().to_string();
        assert!(other.contains("holds node 1 of region us-east, not node 2"), "{other}");
        assert!(node(1, "eu-west").claim_data_dir().is_err());
    }

    #[test]
    fn unknown_file_keys_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.toml");
        std::fs::write(&path, "idd = 2\n").unwrap();
        assert!(matches!(
            NodeArgs { config: Some(path), ..Default::default() }.resolve(),
            Err(ConfigError::Parse { .. })
        ));
    }
}
