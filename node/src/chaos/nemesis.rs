//! The nemesis: the faults a WAN, a machine and an operator inflict on a compose deployment
//! (deploy/compose), one per cycle, each undone by the heal that ends the cycle. It drives Docker:
//! `docker network disconnect` cuts a region off the WAN; iptables rules in Docker's DOCKER-USER chain
//! split the regions into groups or drop one direction only; `docker kill -s KILL`, `pause` and
//! `restart` act on nodes and replicators; a node's libfaketime offset file skews its clock.
//! Containers are named as the compose files name them: `<region>-node-<id>`, `<region>-replicator`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{bail, Context as _};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::Rng;
use serde::Serialize;
use tern_client::Client;

/// One kind of fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Fault {
    /// One region cut off the WAN (`docker network disconnect` of its nodes and replicator).
    Isolate,
    /// The regions split into two groups that cannot reach each other (iptables).
    Split,
    /// Packets from one region to another dropped, the other direction left alone (iptables).
    OneWay,
    /// A node killed with SIGKILL, started again at the heal.
    Kill,
    /// A region's leader killed with SIGKILL, started again at the heal.
    KillLeader,
    /// A node paused (`docker pause`: SIGSTOP to every process), resumed at the heal.
    Pause,
    /// A region's replicator paused, resumed at the heal.
    PauseReplicator,
    /// A node or replicator restarted (`docker restart`: SIGTERM, then started again).
    Restart,
    /// A node's wall clock moved by 2 to 30 seconds either way (libfaketime), put back at the heal.
    ClockSkew,
}

impl Fault {
    pub fn name(self) -> &'static str {
        match self {
            Fault::Isolate => "isolate",
            Fault::Split => "split",
            Fault::OneWay => "one-way",
            Fault::Kill => "kill",
            Fault::KillLeader => "kill-leader",
            Fault::Pause => "pause",
            Fault::PauseReplicator => "pause-replicator",
            Fault::Restart => "restart",
            Fault::ClockSkew => "clock-skew",
        }
    }
}

/// A fault as it happened.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    pub cycle: u32,
    pub fault: Fault,
    /// What it hit: a region, a container, or the groups of a split.
    pub target: String,
    /// Microseconds since the run started: the fault, and its heal.
    pub start_micros: u64,
    pub end_micros: u64,
    /// What injecting or healing it failed at, if anything did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What a heal undoes.
#[derive(Debug, Clone)]
enum Undo {
    Reconnect {
        container: String,
        ip: String,
    },
    Start(String),
    Unpause(String),
    /// An iptables rule in DOCKER-USER, as the arguments after `-I DOCKER-USER`/`-D DOCKER-USER`.
    Rule(Vec<String>),
    Clock(PathBuf),
}

const RULE_COMMENT: &str = "tern-chaos";
const HEAL_ATTEMPTS: u32 = 5;

/// Sets a node's clock offset (libfaketime's syntax, `+12` or `-3` seconds): written beside the file and
/// renamed over it, so the node never reads it half written.
fn set_offset(file: &std::path::Path, offset: &str) -> anyhow::Result<()> {
    let written = file.with_extension("new");
    std::fs::write(&written, format!("{offset}\n")).with_context(|| format!("cannot write {}", written.display()))?;
    std::fs::rename(&written, file).with_context(|| format!("cannot replace {}", file.display()))
}

async fn run(program: &str, args: &[String]) -> anyhow::Result<String> {
    let output = tokio::process::Command::new(program)
        .args(args)
        .output()
        .await
        .with_context(|| format!("cannot run {program}"))?;
    if !output.status.success() {
        bail!("{program} {}: {}", args.join(" "), String::from_utf8_lossy(&output.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
}

/// `iptables -w ACTION DOCKER-USER RULE...` (waiting for the xtables lock rather than failing).
async fn iptables(action: &str, rule: &[String]) -> anyhow::Result<()> {
    let mut args = vec!["-w".to_string(), action.to_string(), "DOCKER-USER".to_string()];
    args.extend(rule.iter().cloned());
    run("iptables", &args).await.map(drop)
}

async fn docker(args: &[&str]) -> anyhow::Result<String> {
    run("docker", &args.iter().map(|a| a.to_string()).collect::<Vec<_>>()).await
}

/// The compose deployment a nemesis acts on.
pub struct Deployment {
    /// Region name to its node ids.
    pub regions: BTreeMap<String, Vec<u64>>,
    /// A client of each region (to find its leader).
    pub clients: BTreeMap<String, Client>,
    /// The docker network that joins the regions.
    pub wan: String,
    /// The directory of the nodes' libfaketime offset files, when clocks may be skewed.
    pub clocks: Option<PathBuf>,
}

/// Injects faults into a compose deployment and heals them.
pub struct Nemesis {
    faults: Vec<Fault>,
    at: Deployment,
    rng: StdRng,
    undo: Vec<Undo>,
}

impl Nemesis {
    pub fn new(faults: Vec<Fault>, at: Deployment, rng: StdRng) -> Nemesis {
        Nemesis { faults, at, rng, undo: Vec::new() }
    }

    /// Checks the deployment can take every fault asked for, and undoes what a run that was stopped
    /// half way left: paused or stopped containers, skewed clocks, iptables rules.
    pub async fn prepare(&self) -> anyhow::Result<()> {
        for region in self.at.regions.keys() {
            for container in self.wan_members(region) {
                let status = docker(&["inspect", "--format", "{{.State.Status}}", &container])
                    .await
                    .with_context(|| format!("container {container} of region {region} (is the cluster up?)"))?;
                match status.as_str() {
                    "paused" => drop(docker(&["unpause", &container]).await?),
                    "exited" | "created" => drop(docker(&["start", &container]).await?),
                    _ => {}
                }
                self.wan_ip(&container).await.with_context(|| {
                    format!("{container} is off the WAN: take the cluster down and up again (scripts/cluster.sh)")
                })?;
            }
            if let Some(clocks) = &self.at.clocks {
                for id in &self.at.regions[region] {
                    let file = clocks.join(format!("{region}-node-{id}")).join("offset");
                    if file.exists() {
                        set_offset(&file, "+0")?;
                    }
                }
            }
        }
        let cuts = self.faults.iter().any(|f| matches!(f, Fault::Split | Fault::OneWay));
        if cuts {
            // Containers on one bridge reach iptables only through the bridge's netfilter hook.
            let hook = std::fs::read_to_string("/proc/sys/net/bridge/bridge-nf-call-iptables").unwrap_or_default();
            anyhow::ensure!(
                hook.trim() == "1",
                "split and one-way faults need net.bridge.bridge-nf-call-iptables = 1 (modprobe br_netfilter)"
            );
        }
        // Rules an interrupted run left, whatever this run's faults.
        match run("iptables", &["-w".into(), "-S".into(), "DOCKER-USER".into()]).await {
            Ok(rules) => {
                for rule in rules.lines().filter(|r| r.contains(RULE_COMMENT)) {
                    let mut args: Vec<String> = rule.split_whitespace().map(str::to_string).collect();
                    args[0] = "-D".into();
                    args.insert(0, "-w".into());
                    run("iptables", &args).await?;
                }
            }
            Err(e) if cuts => {
                return Err(e.context("split and one-way faults need iptables and Docker's DOCKER-USER chain (as root)"))
            }
            Err(_) => {}
        }
        if self.faults.contains(&Fault::ClockSkew) {
            let Some(clocks) = &self.at.clocks else { bail!("clock skew needs --clocks (the nodes' offset files)") };
            let node = format!("{}-node-1", self.at.regions.keys().next().expect("a region"));
            let env = docker(&["inspect", "--format", "{{range .Config.Env}}{{println .}}{{end}}", &node]).await?;
            if !env.lines().any(|l| l.starts_with("LD_PRELOAD=") && l.contains("faketime")) {
                bail!("clock skew needs libfaketime preloaded: bring the cluster up with TERN_PRELOAD set (scripts/chaos.sh does)");
            }
            anyhow::ensure!(
                clocks.join(&node).join("offset").exists(),
                "no offset file for {node} under {}",
                clocks.display()
            );
        }
        Ok(())
    }

    fn wan_members(&self, region: &str) -> Vec<String> {
        let mut members: Vec<String> = self.at.regions[region].iter().map(|id| format!("{region}-node-{id}")).collect();
        members.push(format!("{region}-replicator"));
        members
    }

    async fn wan_ip(&self, container: &str) -> anyhow::Result<String> {
        let format = format!("{{{{(index .NetworkSettings.Networks \"{}\").IPAddress}}}}", self.at.wan);
        let ip = docker(&["inspect", "--format", &format, container]).await?;
        anyhow::ensure!(!ip.is_empty() && ip != "<no value>", "{container} is not on network {}", self.at.wan);
        Ok(ip)
    }

    fn region(&mut self) -> String {
        let names: Vec<&String> = self.at.regions.keys().collect();
        (*names.choose(&mut self.rng).expect("a region")).clone()
    }

    fn node(&mut self, region: &str) -> String {
        let id = *self.at.regions[region].choose(&mut self.rng).expect("a node");
        format!("{region}-node-{id}")
    }

    async fn leader(&self, region: &str) -> anyhow::Result<String> {
        let status = self.at.clients[region].node_status(None).await?;
        let id = status.leader_id.with_context(|| format!("{region} has no leader"))?;
        Ok(format!("{region}-node-{id}"))
    }

    /// Drops packets from every WAN address of `from` to every WAN address of `to`.
    async fn drop_rules(&self, from: &[String], to: &[String]) -> anyhow::Result<Vec<Vec<String>>> {
        let (mut sources, mut destinations) = (Vec::new(), Vec::new());
        for region in from {
            for container in self.wan_members(region) {
                sources.push(self.wan_ip(&container).await?);
            }
        }
        for region in to {
            for container in self.wan_members(region) {
                destinations.push(self.wan_ip(&container).await?);
            }
        }
        let mut rules = Vec::new();
        for source in &sources {
            for destination in &destinations {
                rules.push(
                    ["-s", source, "-d", destination, "-m", "comment", "--comment", RULE_COMMENT, "-j", "DROP"]
                        .map(str::to_string)
                        .to_vec(),
                );
            }
        }
        Ok(rules)
    }

    /// Inserts the rules, each recorded for the heal before it is in force.
    async fn insert_rules(&mut self, rules: Vec<Vec<String>>) -> anyhow::Result<()> {
        for rule in rules {
            self.undo.push(Undo::Rule(rule.clone()));
            iptables("-I", &rule).await?;
        }
        Ok(())
    }

    /// Injects one fault of the kinds asked for, chosen by the seed; returns what it hit.
    pub async fn inject(&mut self) -> (Fault, anyhow::Result<String>) {
        let fault = *self.faults.choose(&mut self.rng).expect("at least one fault");
        let result = self.inject_fault(fault).await;
        (fault, result)
    }

    async fn inject_fault(&mut self, fault: Fault) -> anyhow::Result<String> {
        match fault {
            Fault::Isolate => {
                let region = self.region();
                for container in self.wan_members(&region) {
                    let ip = self.wan_ip(&container).await?;
                    docker(&["network", "disconnect", "--force", &self.at.wan, &container]).await?;
                    self.undo.push(Undo::Reconnect { container, ip });
                }
                Ok(region)
            }
            Fault::Split => {
                let names: Vec<String> = self.at.regions.keys().cloned().collect();
                // A random proper, non-empty subset against the rest.
                let mut left: Vec<String> = names.iter().filter(|_| self.rng.random_bool(0.5)).cloned().collect();
                if left.is_empty() || left.len() == names.len() {
                    left = vec![names[self.rng.random_range(0..names.len())].clone()];
                }
                let right: Vec<String> = names.iter().filter(|n| !left.contains(n)).cloned().collect();
                let mut rules = self.drop_rules(&left, &right).await?;
                rules.extend(self.drop_rules(&right, &left).await?);
                self.insert_rules(rules).await?;
                Ok(format!("{} | {}", left.join(","), right.join(",")))
            }
            Fault::OneWay => {
                let from = self.region();
                let others: Vec<String> = self.at.regions.keys().filter(|r| **r != from).cloned().collect();
                let to = others.choose(&mut self.rng).context("one-way needs two regions")?.clone();
                let rules = self.drop_rules(std::slice::from_ref(&from), std::slice::from_ref(&to)).await?;
                self.insert_rules(rules).await?;
                Ok(format!("{from} -> {to}"))
            }
            Fault::Kill | Fault::KillLeader => {
                let region = self.region();
                let container = if fault == Fault::Kill { self.node(&region) } else { self.leader(&region).await? };
                self.undo.push(Undo::Start(container.clone()));
                docker(&["kill", "--signal", "KILL", &container]).await?;
                Ok(container)
            }
            Fault::Pause | Fault::PauseReplicator => {
                let region = self.region();
                let container = if fault == Fault::Pause { self.node(&region) } else { format!("{region}-replicator") };
                self.undo.push(Undo::Unpause(container.clone()));
                docker(&["pause", &container]).await?;
                Ok(container)
            }
            Fault::Restart => {
                let region = self.region();
                let container =
                    if self.rng.random_bool(0.75) { self.node(&region) } else { format!("{region}-replicator") };
                // Started again at the heal should `restart` have stopped it and failed to start it.
                self.undo.push(Undo::Start(container.clone()));
                docker(&["restart", "--time", "5", &container]).await?;
                Ok(container)
            }
            Fault::ClockSkew => {
                let region = self.region();
                let container = self.node(&region);
                let seconds = self.rng.random_range(2..=30) * if self.rng.random_bool(0.5) { 1 } else { -1 };
                let clocks = self.at.clocks.as_ref().context("clock skew needs --clocks")?;
                let file = clocks.join(&container).join("offset");
                self.undo.push(Undo::Clock(file.clone()));
                set_offset(&file, &format!("{seconds:+}"))?;
                Ok(format!("{container} {seconds:+} s"))
            }
        }
    }

    /// Undoes every fault still in force, trying a failed step again a few times; what could not be
    /// undone stays for the next heal, and the last error is returned.
    pub async fn heal(&mut self) -> anyhow::Result<()> {
        let mut result = Ok(());
        for attempt in 0..HEAL_ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
            result = self.heal_once().await;
            if result.is_ok() {
                break;
            }
        }
        result
    }

    /// One pass over what is to be undone, last fault first. A step leaves the list only once it is
    /// done (a Ctrl-C half way loses nothing), and each step is safe to take again: it looks first
    /// whether its fault is still there.
    async fn heal_once(&mut self) -> anyhow::Result<()> {
        let mut first_error = None;
        for index in (0..self.undo.len()).rev() {
            let undo = self.undo[index].clone();
            let result = match &undo {
                Undo::Reconnect { container, ip } => match self.wan_ip(container).await {
                    Ok(_) => Ok(()),
                    Err(_) => docker(&["network", "connect", "--ip", ip, &self.at.wan, container]).await.map(drop),
                },
                Undo::Start(container) => docker(&["start", container]).await.map(drop),
                Undo::Unpause(container) => {
                    match docker(&["inspect", "--format", "{{.State.Status}}", container]).await {
                        Ok(status) if status == "paused" => docker(&["unpause", container]).await.map(drop),
                        Ok(_) => Ok(()),
                        Err(e) => Err(e),
                    }
                }
                Undo::Rule(rule) => match iptables("-C", rule).await {
                    Ok(()) => iptables("-D", rule).await,
                    // Not there (any more): nothing to undo.
                    Err(_) => Ok(()),
                },
                Undo::Clock(file) => set_offset(file, "+0"),
            };
            match result {
                Ok(()) => {
                    self.undo.remove(index);
                }
                Err(e) => {
                    tracing::warn!(error = %e, ?undo, "heal step failed");
                    first_error.get_or_insert(e);
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}
