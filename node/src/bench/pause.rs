//! `tern bench --pause-leader-secs`: the region's leader is paused (`SIGSTOP`, as a VM or GC pause
//! would) for part of the run, to measure what clients see meanwhile: the longest gap between
//! acknowledged requests and the latencies of the requests answered during the pause.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tern_client::Client;

use crate::playground::PlaygroundInfo;

/// When the leader was paused, and which node it was.
#[derive(Debug, Clone, Copy)]
pub struct Pause {
    pub node_id: u64,
    pub from: Instant,
    pub until: Instant,
}

impl Pause {
    pub fn contains(&self, at: Instant) -> bool {
        self.from <= at && at < self.until
    }
}

/// After `after`, pauses the leader of the playground's first region for `length`, then resumes it.
pub async fn pause_leader(
    client: Client,
    playground: &Path,
    after: Duration,
    length: Duration,
) -> anyhow::Result<Pause> {
    let info: PlaygroundInfo = serde_json::from_str(
        &std::fs::read_to_string(playground).with_context(|| format!("reading {}", playground.display()))?,
    )?;
    tokio::time::sleep(after).await;
    let status = client.node_status(None).await?;
    let node_id = status.leader_id.context("the region has no leader to pause")?;
    let process = info
        .processes
        .iter()
        .find(|p| p.role == "node" && p.id == node_id && p.region == status.region)
        .with_context(|| format!("node {node_id} is not a process of {}", playground.display()))?;
    let pid = Pid::from_raw(process.pid as i32);
    eprintln!("pausing the leader, node {node_id} (pid {pid}), for {}s ...", length.as_secs());
    kill(pid, Signal::SIGSTOP)?;
    let from = Instant::now();
    tokio::time::sleep(length).await;
    kill(pid, Signal::SIGCONT)?;
    let until = Instant::now();
    eprintln!("resumed node {node_id}");
    Ok(Pause { node_id, from, until })
}
