//! A harness for end-to-end tests: a region of real `tern node` processes on loopback, which tests
//! kill (`SIGKILL`), restart, grow and shrink.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use tern_client::v1::NodeStatus;
use tern_client::{Client, RetryPolicy};

/// The `tern` binary under test: `$TERN_BIN`, or `target/<profile>/tern` beside the test executable.
pub fn tern_binary() -> PathBuf {
    if let Ok(path) = std::env::var("TERN_BIN") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("the test executable's path");
    let profile_dir = exe.parent().and_then(Path::parent).expect("target/<profile>/deps/<test>");
    let binary = profile_dir.join("tern");
    assert!(
        binary.exists(),
        "{} is missing: build it first (`cargo build -p tern-node`; scripts/test.sh does)",
        binary.display()
    );
    binary
}

/// libfaketime, which `scripts/setup.sh` installs (Debian's `faketime`): preloaded into a node, it shifts
/// the node's wall clock by what a file says.
pub fn libfaketime() -> PathBuf {
    ["/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib", "/usr/local/lib"]
        .iter()
        .map(|dir| Path::new(dir).join("faketime/libfaketime.so.1"))
        .find(|path| path.exists())
        .expect("libfaketime is missing: install Debian's faketime (scripts/setup.sh does)")
}

/// Loopback addresses on free ports for nodes 1..=count.
pub fn free_addresses(count: u64) -> BTreeMap<u64, String> {
    (1..=count).map(|id| (id, format!("127.0.0.1:{}", free_port()))).collect()
}

/// A free TCP port on loopback, never one this process was given before: a port is free once its probe
/// closes, so two regions asking in turn could otherwise be given the same one (and one region's nodes
/// then talk Raft to the other's).
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<std::collections::BTreeSet<u16>> =
        std::sync::Mutex::new(std::collections::BTreeSet::new());
    loop {
        let port =
            TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port");
        if GIVEN.lock().expect("ports lock").insert(port) {
            return port;
        }
    }
}

/// One node process.
pub struct NodeProcess {
    pub id: u64,
    /// Where the region's nodes and clients reach it.
    pub address: String,
    /// Where it listens: its address, unless a proxy stands in front of it.
    pub listen: String,
    pub data_dir: PathBuf,
    /// Environment variables of its process beyond the test's own.
    pub env: Vec<(String, String)>,
    child: Option<Child>,
}

/// A region of node processes, stopped when dropped.
pub struct Region {
    pub name: String,
    dir: tempfile::TempDir,
    peers: String,
    extra_args: Vec<String>,
    pub nodes: BTreeMap<u64, NodeProcess>,
    /// Whether the test wiped a node's data on purpose (then its log going backwards is expected).
    wiped: bool,
}

impl Region {
    /// Starts `count` nodes (ids 1..=count) with the same `--peers`, plus `extra_args` for each.
    pub async fn start(count: u64, extra_args: &[&str]) -> anyhow::Result<Region> {
        Self::start_named("e2e", free_addresses(count), extra_args).await
    }

    /// Starts a region called `name` whose nodes listen on `addresses`.
    pub async fn start_named(
        name: &str,
        addresses: BTreeMap<u64, String>,
        extra_args: &[&str],
    ) -> anyhow::Result<Region> {
        Self::launch(name, addresses.clone(), addresses, extra_args, |_| Vec::new()).await
    }

    /// Starts nodes that listen on `listen` but are reached (by one another and by clients) at
    /// `fronts`, where proxies forward to them.
    pub async fn start_behind(
        listen: BTreeMap<u64, String>,
        fronts: BTreeMap<u64, String>,
        extra_args: &[&str],
    ) -> anyhow::Result<Region> {
        Self::launch("e2e", listen, fronts, extra_args, |_| Vec::new()).await
    }

    /// Starts `count` nodes like [`Region::start`], each with the environment `env` gives its id.
    pub async fn start_with_env(
        count: u64,
        extra_args: &[&str],
        env: impl Fn(u64) -> Vec<(String, String)>,
    ) -> anyhow::Result<Region> {
        let addresses = free_addresses(count);
        Self::launch("e2e", addresses.clone(), addresses, extra_args, env).await
    }

    async fn launch(
        name: &str,
        listen: BTreeMap<u64, String>,
        addresses: BTreeMap<u64, String>,
        extra_args: &[&str],
        env: impl Fn(u64) -> Vec<(String, String)>,
    ) -> anyhow::Result<Region> {
        let dir = tempfile::Builder::new().prefix("tern-e2e-").tempdir()?;
        let peers = addresses.iter().map(|(id, a)| format!("{id}={a}")).collect::<Vec<_>>().join(",");
        let mut region = Region {
            name: name.into(),
            dir,
            peers,
            extra_args: extra_args.iter().map(|s| s.to_string()).collect(),
            nodes: BTreeMap::new(),
            wiped: false,
        };
        for (id, address) in addresses {
            let data_dir = region.dir.path().join(format!("node-{id}"));
            let listen = listen.get(&id).context("a listen address for every node")?.clone();
            region.nodes.insert(id, NodeProcess { id, address, listen, data_dir, env: env(id), child: None });
            region.spawn(id)?;
        }
        region.wait_for_leader(Duration::from_secs(20)).await?;
        Ok(region)
    }

    fn spawn(&mut self, id: u64) -> anyhow::Result<()> {
        let log_path = self.dir.path().join(format!("node-{id}.log"));
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&log_path)?;
        let node = self.nodes.get_mut(&id).context("no such node")?;
        let child = Command::new(tern_binary())
            .args(["node", "--id", &id.to_string(), "--region", &self.name, "--listen", &node.listen])
            .args(["--data-dir", &node.data_dir.to_string_lossy(), "--peers", &self.peers])
            .args(&self.extra_args)
            .env("TERN_LOG", "info,openraft=info")
            .envs(node.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            .spawn()
            .context("starting tern node")?;
        node.child = Some(child);
        Ok(())
    }

    /// Starts a node that is not yet a member (it waits to be added) with the next id.
    pub fn start_new_node(&mut self) -> anyhow::Result<u64> {
        let id = self.nodes.keys().max().copied().unwrap_or(0) + 1;
        let address = format!("127.0.0.1:{}", free_port());
        let data_dir = self.dir.path().join(format!("node-{id}"));
        self.nodes
            .insert(id, NodeProcess { id, listen: address.clone(), address, data_dir, env: Vec::new(), child: None });
        // It knows the region's nodes and itself; not being the lowest id, it waits to be added.
        self.peers = format!("{},{id}={}", self.peers, self.nodes[&id].address);
        self.spawn(id).map(|_| id)
    }

    /// The addresses of the nodes that are running.
    pub fn endpoints(&self) -> Vec<String> {
        self.nodes.values().filter(|n| n.child.is_some()).map(|n| n.address.clone()).collect()
    }

    pub fn address(&self, id: u64) -> String {
        self.nodes[&id].address.clone()
    }

    /// A client of the running nodes.
    pub async fn client(&self) -> anyhow::Result<Client> {
        Ok(Client::connect_with(
            self.endpoints(),
            RetryPolicy { deadline: Duration::from_secs(30), ..Default::default() },
        )
        .await?)
    }

    /// A client of one node only (its reads are that node's local state).
    pub async fn node_client(&self, id: u64) -> anyhow::Result<Client> {
        Ok(Client::connect([self.address(id)]).await?)
    }

    /// One node's status.
    pub async fn status(&self, id: u64) -> anyhow::Result<NodeStatus> {
        Ok(self.client().await?.node_status(Some(&self.address(id))).await?)
    }

    /// Waits until every running node agrees on one leader; returns its id.
    pub async fn wait_for_leader(&self, timeout: Duration) -> anyhow::Result<u64> {
        let until = Instant::now() + timeout;
        loop {
            let mut leaders = Vec::new();
            for node in self.nodes.values().filter(|n| n.child.is_some()) {
                if let Ok(status) = self.status(node.id).await {
                    leaders.push(status.leader_id);
                }
            }
            let running = self.nodes.values().filter(|n| n.child.is_some()).count();
            if leaders.len() == running {
                if let Some(Some(leader)) = leaders.first() {
                    if leaders.iter().all(|l| *l == Some(*leader))
                        && self.nodes.get(leader).is_some_and(|n| n.child.is_some())
                    {
                        return Ok(*leader);
                    }
                }
            }
            if Instant::now() > until {
                bail!("no agreed leader within {timeout:?}: {leaders:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until node `id` has applied at least `index`.
    pub async fn wait_applied(&self, id: u64, index: u64, timeout: Duration) -> anyhow::Result<NodeStatus> {
        let until = Instant::now() + timeout;
        loop {
            if let Ok(status) = self.status(id).await {
                if status.last_applied_index >= index {
                    return Ok(status);
                }
            }
            if Instant::now() > until {
                bail!("node {id} did not apply index {index} within {timeout:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until every running node has applied all the leader has, so that any node's local reads
    /// (eventually consistent reads, stream records) show every acknowledged write.
    pub async fn settle(&self) -> anyhow::Result<()> {
        let leader = self.wait_for_leader(Duration::from_secs(20)).await?;
        let applied = self.status(leader).await?.last_applied_index;
        for node in self.nodes.values().filter(|n| n.child.is_some()) {
            self.wait_applied(node.id, applied, Duration::from_secs(20)).await?;
        }
        Ok(())
    }

    /// `kill -9` a node.
    pub fn kill(&mut self, id: u64) -> anyhow::Result<()> {
        let node = self.nodes.get_mut(&id).context("no such node")?;
        if let Some(mut child) = node.child.take() {
            child.kill()?;
            child.wait()?;
        }
        Ok(())
    }

    /// `kill -9` a node and delete its data directory, as a lost disk would: restarted, it rejoins
    /// under its id with an empty log, and the leader starts its replication to it over.
    pub fn wipe(&mut self, id: u64) -> anyhow::Result<()> {
        self.kill(id)?;
        std::fs::remove_dir_all(&self.nodes[&id].data_dir)?;
        self.wiped = true;
        Ok(())
    }

    /// Pauses a node (SIGSTOP), as a VM or GC pause would: it holds its sockets and answers nothing.
    pub fn pause(&self, id: u64) -> anyhow::Result<()> {
        self.signal(id, nix::sys::signal::Signal::SIGSTOP)
    }

    /// Resumes a paused node (SIGCONT).
    pub fn resume(&self, id: u64) -> anyhow::Result<()> {
        self.signal(id, nix::sys::signal::Signal::SIGCONT)
    }

    fn signal(&self, id: u64, signal: nix::sys::signal::Signal) -> anyhow::Result<()> {
        let child = self.nodes.get(&id).and_then(|n| n.child.as_ref()).context("no such running node")?;
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), signal)?;
        Ok(())
    }

    /// Starts a stopped node again on its data directory.
    pub fn restart(&mut self, id: u64) -> anyhow::Result<()> {
        self.spawn(id)
    }

    /// A node's log, for failure messages.
    pub fn log(&self, id: u64) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("node-{id}.log"))).unwrap_or_default()
    }

    /// The region's directory: its nodes' data directories, their logs, and (by default) the backup
    /// store, `backups/`.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        for node in self.nodes.values_mut() {
            if let Some(mut child) = node.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        // A node that panicked is a bug whatever the test saw: its logs are kept and its panic shown.
        let node_panics: Vec<String> = self
            .nodes
            .keys()
            .filter_map(|id| {
                let log = std::fs::read_to_string(self.dir.path().join(format!("node-{id}.log"))).ok()?;
                let at = log.find("panicked at")?;
                Some(format!("node {id}: {}", log[at..].lines().take(3).collect::<Vec<_>>().join(" | ")))
            })
            .collect();
        for panic in &node_panics {
            eprintln!("{panic}");
        }
        // A follower's log going backwards when no node was wiped means an acknowledged append was
        // lost (openraft only warns, with loosen-follower-log-revert on): a durability bug.
        let reverted = !self.wiped
            && self.nodes.keys().any(|id| {
                std::fs::read_to_string(self.dir.path().join(format!("node-{id}.log")))
                    .is_ok_and(|log| log.contains("follower log is reverted"))
            });
        // `TERN_KEEP_LOGS=1` keeps them whatever happened (a test that returns an error does not panic).
        let asked = std::env::var_os("TERN_KEEP_LOGS").is_some();
        if std::thread::panicking() || !node_panics.is_empty() || reverted || asked {
            let kept = self.dir.path().to_path_buf();
            eprintln!("node logs: {}", kept.display());
            std::mem::forget(std::mem::replace(&mut self.dir, tempfile::tempdir().expect("tempdir")));
            if reverted && !std::thread::panicking() {
                panic!("a follower's Raft log went backwards though no node was wiped: see {}", kept.display());
            }
        }
    }
}

pub mod cache;
pub mod global;
pub mod lossy;
pub mod pitr;
pub mod proxy;
pub mod s3;

/// Helpers for conformance tests: items written as DynamoDB JSON, tables created in one call.
pub mod dynamo {
    use std::collections::BTreeMap;

    use serde_json::Value as Json;
    use tern_client::v1::{self, AttributeDefinition, CreateTableRequest, KeySchemaElement};
    use tern_client::{Client, Item};

    /// An item from DynamoDB JSON text.
    pub fn item(text: &str) -> Item {
        tern_client::json::item_from_json(&serde_json::from_str(text).expect("valid JSON"))
            .expect("valid DynamoDB JSON")
    }

    /// Wire attributes from DynamoDB JSON text (keys, items, ExpressionAttributeValues).
    pub fn wire(text: &str) -> BTreeMap<String, v1::AttributeValue> {
        tern_client::v1_item(&item(text))
    }

    /// `{"#a":"name",...}` from pairs.
    pub fn names(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    /// The DynamoDB JSON of wire attributes, for comparing with expected JSON.
    pub fn json(attributes: &BTreeMap<String, v1::AttributeValue>) -> Json {
        tern_client::json::item_to_json(&tern_client::item_from(attributes.clone()).expect("valid item"))
    }

    /// Parses expected DynamoDB JSON.
    pub fn expect(text: &str) -> Json {
        serde_json::from_str(text).expect("valid JSON")
    }

    /// Creates a table with a partition key and an optional sort key, given as `name:TYPE`.
    pub async fn create_table(client: &Client, name: &str, partition: &str, sort: Option<&str>) -> anyhow::Result<()> {
        let mut request = CreateTableRequest { table_name: name.into(), ..Default::default() };
        for (spec, key_type) in std::iter::once((partition, "HASH")).chain(sort.map(|s| (s, "RANGE"))) {
            let (attribute, kind) = spec.split_once(':').expect("name:TYPE");
            request
                .attribute_definitions
                .push(AttributeDefinition { attribute_name: attribute.into(), attribute_type: kind.into() });
            request.key_schema.push(KeySchemaElement { attribute_name: attribute.into(), key_type: key_type.into() });
        }
        client.create_table(request).await?;
        Ok(())
    }

    /// The message of a DynamoDB error, with its name.
    pub fn error(result: Result<impl std::fmt::Debug, tern_client::Error>) -> (String, String) {
        match result {
            Err(tern_client::Error::Api(e)) => (e.kind.name().to_string(), e.message),
            other => panic!("expected a DynamoDB error, got {other:?}"),
        }
    }
}
