//! A deployment of several regions for global-table tests: each region's nodes, each region's
//! `tern replicator`, and a user-space proxy on every link a replicator uses to reach another region,
//! so that a test can cut and heal the traffic between regions.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::Value as Json;
use tern_client::v1::{DescribeTableRequest, TableDescription};
use tern_client::Client;

use crate::proxy::Proxy;
use crate::{free_addresses, tern_binary, Region};

/// One region's replicator process.
pub struct Replicator {
    pub region: String,
    topology: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

impl Replicator {
    fn spawn(&mut self) -> anyhow::Result<()> {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log)?;
        let child = Command::new(tern_binary())
            .args(["replicator", "--region", &self.region, "--topology", &self.topology.to_string_lossy()])
            .args(["--poll-ms", "20"])
            .env("TERN_LOG", "info")
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            .spawn()
            .context("starting tern replicator")?;
        self.child = Some(child);
        Ok(())
    }

    /// `kill -9` the replicator.
    pub fn kill(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill()?;
            child.wait()?;
        }
        Ok(())
    }
}

/// Several regions, their replicators, and the proxies between them; stopped when dropped.
pub struct Deployment {
    dir: tempfile::TempDir,
    pub regions: BTreeMap<String, Region>,
    /// The topology with every node's real address (what nodes and operators read).
    pub topology: PathBuf,
    /// (reading region, source region) to one proxy per node of the source region, by node id.
    proxies: BTreeMap<(String, String), BTreeMap<u64, Proxy>>,
    pub replicators: BTreeMap<String, Replicator>,
}

fn topology_toml(regions: &BTreeMap<String, BTreeMap<u64, String>>) -> String {
    let mut text = String::new();
    for (name, nodes) in regions {
        text.push_str(&format!("[regions.\"{name}\".nodes]\n"));
        for (id, address) in nodes {
            text.push_str(&format!("{id} = \"{address}\"\n"));
        }
        text.push('\n');
    }
    text
}

impl Deployment {
    /// Starts three nodes per region (with `node_args`), a replicator per region, and the proxies.
    pub async fn start(names: &[&str], node_args: &[&str]) -> anyhow::Result<Deployment> {
        let dir = tempfile::Builder::new().prefix("tern-global-").tempdir()?;
        let addresses: BTreeMap<String, BTreeMap<u64, String>> =
            names.iter().map(|name| (name.to_string(), free_addresses(3))).collect();
        let topology = dir.path().join("topology.toml");
        std::fs::write(&topology, topology_toml(&addresses))?;
        let mut regions = BTreeMap::new();
        for (name, nodes) in &addresses {
            let mut args: Vec<&str> = node_args.to_vec();
            let path = topology.to_string_lossy().to_string();
            args.extend(["--topology", &path]);
            regions.insert(name.clone(), Region::start_named(name, nodes.clone(), &args).await?);
        }
        let mut proxies = BTreeMap::new();
        let mut replicators = BTreeMap::new();
        for reader in addresses.keys() {
            let mut seen = addresses.clone();
            for (source, nodes) in addresses.iter().filter(|(s, _)| *s != reader) {
                let mut links = BTreeMap::new();
                let mut through = BTreeMap::new();
                for (id, address) in nodes {
                    let proxy = Proxy::start(address).await?;
                    through.insert(*id, proxy.address.clone());
                    links.insert(*id, proxy);
                }
                seen.insert(source.clone(), through);
                proxies.insert((reader.clone(), source.clone()), links);
            }
            let path = dir.path().join(format!("topology-{reader}.toml"));
            std::fs::write(&path, topology_toml(&seen))?;
            let log = dir.path().join(format!("replicator-{reader}.log"));
            let mut replicator = Replicator { region: reader.clone(), topology: path, log, child: None };
            replicator.spawn()?;
            replicators.insert(reader.clone(), replicator);
        }
        Ok(Deployment { dir, regions, topology, proxies, replicators })
    }

    /// A client of a region's nodes.
    pub async fn client(&self, region: &str) -> anyhow::Result<Client> {
        self.regions[region].client().await
    }

    fn links(&self, a: &str, b: &str) -> impl Iterator<Item = &Proxy> {
        let key = |x: &str, y: &str| (x.to_string(), y.to_string());
        self.proxies.get(&key(a, b)).into_iter().chain(self.proxies.get(&key(b, a))).flat_map(BTreeMap::values)
    }

    /// Cuts the traffic between two regions, both ways.
    pub fn cut(&self, a: &str, b: &str) {
        self.links(a, b).for_each(Proxy::cut);
    }

    /// Heals the traffic between two regions.
    pub fn heal(&self, a: &str, b: &str) {
        self.links(a, b).for_each(Proxy::heal);
    }

    /// Cuts a region off from every other region.
    pub fn isolate(&self, region: &str) {
        for other in self.regions.keys().filter(|r| *r != region) {
            self.cut(region, other);
        }
    }

    /// Heals every link.
    pub fn heal_all(&self) {
        self.proxies.values().flat_map(BTreeMap::values).for_each(Proxy::heal);
    }

    /// Cuts `reader`'s replicator off from every node of `source` but `node`, so that it reads that
    /// node's stream. Calls for the leader still reach it: the client learns the leader's address from
    /// the nodes, not through these proxies (as with [`Deployment::cut`]).
    pub fn reach_only(&self, reader: &str, source: &str, node: u64) {
        let links = &self.proxies[&(reader.to_string(), source.to_string())];
        for (id, proxy) in links {
            if *id == node {
                proxy.heal();
            } else {
                proxy.cut();
            }
        }
    }

    /// `kill -9` a region's replicator.
    pub fn kill_replicator(&mut self, region: &str) -> anyhow::Result<()> {
        self.replicators.get_mut(region).context("no such replicator")?.kill()
    }

    /// Starts a region's replicator again.
    pub fn start_replicator(&mut self, region: &str) -> anyhow::Result<()> {
        self.replicators.get_mut(region).context("no such replicator")?.spawn()
    }

    /// A replicator's log, for failure messages.
    pub fn replicator_log(&self, region: &str) -> String {
        std::fs::read_to_string(&self.replicators[region].log).unwrap_or_default()
    }

    /// The data directory (topologies, replicator logs).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Runs `tern` with the deployment's topology; returns its parsed JSON output and exit status.
    pub fn tern(&self, args: &[&str]) -> anyhow::Result<(Json, i32)> {
        let output = Command::new(tern_binary())
            .args(args)
            .args(["--topology", &self.topology.to_string_lossy()])
            .output()
            .context("running tern")?;
        let code = output.status.code().unwrap_or(-1);
        let json = serde_json::from_slice(&output.stdout).with_context(|| {
            format!(
                "tern {args:?} printed no JSON (exit {code}): {}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            )
        })?;
        Ok((json, code))
    }

    /// `tern verify` of a table: its report, and whether every region holds the same items.
    pub fn verify(&self, table: &str) -> anyhow::Result<(Json, bool)> {
        let (report, code) = self.tern(&["verify", "--table-name", table])?;
        Ok((report, code == 0))
    }

    /// Waits until `tern verify` finds the table identical in every region; returns how long it took.
    pub async fn wait_converged(&self, table: &str, timeout: Duration) -> anyhow::Result<Duration> {
        let started = Instant::now();
        loop {
            let (report, same) = self.verify(table)?;
            if same {
                return Ok(started.elapsed());
            }
            if started.elapsed() > timeout {
                bail!("{table} did not converge within {timeout:?}: {report:#}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// A table as a region describes it.
    pub async fn describe(&self, region: &str, table: &str) -> anyhow::Result<TableDescription> {
        let client = self.client(region).await?;
        client.describe_table(DescribeTableRequest { table_name: table.into() }).await?.table.context("no description")
    }

    /// Waits until every region of the table's replica list lists every replica as ACTIVE (a region
    /// that holds no replica is left out).
    pub async fn wait_active(&self, table: &str, timeout: Duration) -> anyhow::Result<()> {
        let started = Instant::now();
        loop {
            let mut named = std::collections::BTreeSet::new();
            let mut described = BTreeMap::new();
            for region in self.regions.keys() {
                if let Ok(d) = self.describe(region, table).await {
                    named.extend(d.replicas.iter().map(|r| r.region_name.clone()));
                    described.insert(region.clone(), d);
                }
            }
            let active = !named.is_empty()
                && named.iter().all(|region| {
                    described.get(region).is_some_and(|d| {
                        !d.replicas.is_empty() && d.replicas.iter().all(|r| r.replica_status == "ACTIVE")
                    })
                });
            if active {
                return Ok(());
            }
            if started.elapsed() > timeout {
                bail!("{table} has replicas that are not ACTIVE after {timeout:?}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

impl Drop for Deployment {
    fn drop(&mut self) {
        for replicator in self.replicators.values_mut() {
            let _ = replicator.kill();
        }
        if std::thread::panicking() {
            eprintln!("deployment files (topologies, replicator logs): {}", self.dir.path().display());
            std::mem::forget(std::mem::replace(&mut self.dir, tempfile::tempdir().expect("tempdir")));
        }
    }
}

/// Items and tables of the global-table tests: tables keyed by `pk` (a string) with a string `val`.
pub mod tables {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use tern_client::v1::{
        replication_group_update::Action, AttributeValue, CreateReplicationGroupMemberAction, DeleteItemRequest,
        GetItemRequest, ItemVersion, PutItemRequest, ReplicationGroupUpdate, UpdateTableRequest,
    };
    use tern_client::Client;

    use super::Deployment;
    use crate::dynamo::create_table;

    pub fn s(text: &str) -> AttributeValue {
        AttributeValue { value: Some(tern_client::v1::attribute_value::Value::S(text.into())) }
    }

    pub fn key(pk: &str) -> BTreeMap<String, AttributeValue> {
        BTreeMap::from([("pk".to_string(), s(pk))])
    }

    pub fn item(pk: &str, value: &str) -> BTreeMap<String, AttributeValue> {
        BTreeMap::from([("pk".to_string(), s(pk)), ("val".to_string(), s(value))])
    }

    pub fn create(regions: &[&str]) -> Vec<ReplicationGroupUpdate> {
        regions
            .iter()
            .map(|r| ReplicationGroupUpdate {
                action: Some(Action::Create(CreateReplicationGroupMemberAction { region_name: r.to_string() })),
            })
            .collect()
    }

    pub async fn put(client: &Client, table: &str, pk: &str, value: &str) -> Result<ItemVersion, tern_client::Error> {
        let request = PutItemRequest { table_name: table.into(), item: item(pk, value), ..Default::default() };
        Ok(client.put_item_request(request).await?.item_version.expect("a put returns its version"))
    }

    pub async fn delete(client: &Client, table: &str, pk: &str) -> Result<ItemVersion, tern_client::Error> {
        let request = DeleteItemRequest { table_name: table.into(), key: key(pk), ..Default::default() };
        Ok(client.delete_item_request(request).await?.item_version.expect("a delete returns its version"))
    }

    /// Creates `table` (key `pk:S`) in us-east with a replica in eu-west, and waits until it is ACTIVE.
    pub async fn global_table(deployment: &Deployment, east: &Client, table: &str) {
        create_table(east, table, "pk:S", None).await.unwrap();
        let request = UpdateTableRequest {
            table_name: table.into(),
            replica_updates: create(&["eu-west"]),
            ..Default::default()
        };
        east.update_table(request).await.unwrap();
        deployment.wait_active(table, Duration::from_secs(30)).await.unwrap();
    }

    /// The value of `val` in a region, read on its leader.
    pub async fn value(client: &Client, table: &str, pk: &str) -> Option<String> {
        let request =
            GetItemRequest { table_name: table.into(), key: key(pk), consistent_read: true, ..Default::default() };
        let response = client.get_item_request(request).await.expect("a consistent read");
        response.item.map(|i| match i.attributes.get("val").and_then(|v| v.value.clone()) {
            Some(tern_client::v1::attribute_value::Value::S(text)) => text,
            other => panic!("unexpected val {other:?}"),
        })
    }
}
