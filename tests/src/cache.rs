//! A `tern cache` process in front of a test region, and its status as `tern cache status` prints it.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::Value as Json;

use crate::{free_port, tern_binary, Region};

/// A cache node of a region, killed when dropped.
pub struct CacheProcess {
    pub address: String,
    topology: PathBuf,
    region: String,
    args: Vec<String>,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl CacheProcess {
    /// Starts a cache in front of `region` with `args` (`--item-ttl 1`, ...), and waits until it
    /// follows the region's change feed.
    pub async fn start(region: &Region, args: &[&str]) -> anyhow::Result<CacheProcess> {
        let dir = tempfile::Builder::new().prefix("tern-cache-").tempdir()?;
        let address = format!("127.0.0.1:{}", free_port());
        let nodes: Vec<String> = region.nodes.values().map(|n| format!("{} = \"{}\"", n.id, n.address)).collect();
        let topology = dir.path().join("topology.toml");
        let text = format!(
            "[regions.{name}]\ncaches = [\"{address}\"]\n\n[regions.{name}.nodes]\n{nodes}\n",
            name = region.name,
            nodes = nodes.join("\n")
        );
        std::fs::write(&topology, text)?;
        let mut cache = CacheProcess {
            address,
            topology,
            region: region.name.clone(),
            args: args.iter().map(|a| a.to_string()).collect(),
            dir,
            child: None,
        };
        cache.spawn()?;
        cache.wait_following(Duration::from_secs(20)).await?;
        Ok(cache)
    }

    fn spawn(&mut self) -> anyhow::Result<()> {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.dir.path().join("cache.log"))?;
        let child = Command::new(tern_binary())
            .args(["cache", "--region", &self.region, "--topology", &self.topology.to_string_lossy()])
            .args(["--listen", &self.address])
            .args(&self.args)
            .env("TERN_LOG", "info")
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            .spawn()
            .context("starting tern cache")?;
        self.child = Some(child);
        Ok(())
    }

    /// Waits until the cache follows a node's change feed.
    pub async fn wait_following(&self, timeout: Duration) -> anyhow::Result<Json> {
        let until = Instant::now() + timeout;
        loop {
            if let Ok(status) = self.status() {
                if status["feed"]["following"].as_str().is_some_and(|f| !f.is_empty()) {
                    return Ok(status);
                }
            }
            anyhow::ensure!(Instant::now() < until, "the cache did not follow its region's feed:\n{}", self.log());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `tern cache status` of this cache.
    pub fn status(&self) -> anyhow::Result<Json> {
        let output = Command::new(tern_binary()).args(["--endpoint", &self.address, "cache", "status"]).output()?;
        anyhow::ensure!(output.status.success(), "cache status: {}", String::from_utf8_lossy(&output.stderr));
        Ok(serde_json::from_slice(&output.stdout)?)
    }

    /// A client of the region through this cache.
    pub async fn client(&self) -> anyhow::Result<tern_client::Client> {
        Ok(tern_client::Client::connect([self.address.as_str()]).await?)
    }

    /// `kill -9` the cache.
    pub fn kill(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill()?;
            child.wait()?;
        }
        Ok(())
    }

    /// Starts a killed cache again.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.spawn()?;
        self.wait_following(Duration::from_secs(20)).await?;
        Ok(())
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("cache.log")).unwrap_or_default()
    }
}

impl Drop for CacheProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let log = self.log();
        if std::thread::panicking() || log.contains("panicked at") {
            eprintln!(
                "cache log:\n{}",
                log.lines().rev().take(40).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
    }
}
