//! `tern playground --regions`: several regions, each its own Raft group of three processes, described
//! by a topology file and playground.json, all stopped by Ctrl-C.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ::tern_client::v1::replication_group_update::Action;
use ::tern_client::v1::{
    CreateReplicationGroupMemberAction, DescribeTableRequest, ListTablesRequest, ReplicationGroupUpdate,
    UpdateTableRequest,
};
use ::tern_client::Client;
use tern_tests::dynamo::create_table;
use tern_tests::tern_binary;

/// A base port whose node and metrics ports for two regions of three nodes are all free.
fn free_base() -> u16 {
    for base in (21_000..40_000).step_by(137) {
        let ports = (0..2)
            .flat_map(|r| (0..3).flat_map(move |n| [base + 10 * r + n, base + 100 + 10 * r + n]))
            .chain([base + 109, base + 119])
            // Each region's cache and its metrics.
            .chain([base + 200, base + 210, base + 300, base + 310]);
        let listeners: Vec<_> = ports.map(|p| TcpListener::bind(("127.0.0.1", p))).collect();
        if listeners.iter().all(Result::is_ok) {
            return base;
        }
    }
    panic!("no free port range");
}

/// The playground process, stopped (SIGTERM, which stops its nodes and replicators) if the test ends early.
struct Stopped(Option<std::process::Child>);

impl Drop for Stopped {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let pid = nix::unistd::Pid::from_raw(child.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            let _ = child.wait();
        }
    }
}

fn alive(pid: u32) -> bool {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), None).is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_playground_of_two_regions() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let base = free_base();
    let playground = Command::new(tern_binary())
        .args([
            "playground",
            "--data-dir",
            &dir.path().to_string_lossy(),
            "--regions",
            "us-east,eu-west",
            "--base-port",
            &base.to_string(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let mut playground = Stopped(Some(playground));
    let playground_pid = playground.0.as_ref().map_or(0, |p| p.id());
    let mut lines = BufReader::new(playground.0.as_mut().unwrap().stdout.take().unwrap()).lines();
    let started = Instant::now();
    while !lines.next().transpose()?.is_some_and(|l| l.starts_with("Press Ctrl-C")) {
        anyhow::ensure!(started.elapsed() < Duration::from_secs(60), "the playground did not come up");
    }

    let info: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.path().join("playground.json"))?)?;
    let processes = info["processes"].as_array().unwrap();
    // Per region: three nodes, a replicator and a cache.
    assert_eq!(processes.len(), 10);
    assert_eq!(processes.iter().filter(|p| p["region"] == "eu-west").count(), 5);
    let caches: Vec<&str> =
        processes.iter().filter(|p| p["role"] == "cache").map(|p| p["region"].as_str().unwrap()).collect();
    assert_eq!(caches, ["us-east", "eu-west"]);
    let replicators: Vec<&str> =
        processes.iter().filter(|p| p["role"] == "replicator").map(|p| p["region"].as_str().unwrap()).collect();
    assert_eq!(replicators, ["us-east", "eu-west"]);
    let topology = std::fs::read_to_string(dir.path().join("topology.toml"))?;
    assert!(topology.contains("[regions.us-east.nodes]") && topology.contains("[regions.eu-west.nodes]"), "{topology}");
    assert!(topology.contains(&format!("caches = [\"127.0.0.1:{}\"]", base + 200)), "{topology}");

    // Each region is its own Raft group: a table made in one is not in the other (until replication).
    let us = Client::connect([info["endpoints"]["us-east"].as_str().unwrap()]).await?;
    let eu = Client::connect([info["endpoints"]["eu-west"].as_str().unwrap()]).await?;
    create_table(&us, "only_us", "pk:S", None).await?;
    // ListTables is eventually consistent: wait until every us-east node has the table.
    for _ in 0..3 {
        let waited = Instant::now();
        while us.list_tables(ListTablesRequest::default()).await?.table_names != ["only_us"] {
            anyhow::ensure!(waited.elapsed() < Duration::from_secs(10), "us-east never listed its table");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    assert!(eu.list_tables(ListTablesRequest::default()).await?.table_names.is_empty());
    assert_eq!(eu.node_status(None).await?.region, "eu-west");

    // A global table: a write in us-east is read in eu-west.
    let replica = ReplicationGroupUpdate {
        action: Some(Action::Create(CreateReplicationGroupMemberAction { region_name: "eu-west".into() })),
    };
    let request =
        UpdateTableRequest { table_name: "only_us".into(), replica_updates: vec![replica], ..Default::default() };
    us.update_table(request).await?;
    // Ready when both regions list both replicas as ACTIVE (eu-west's copy of the items is done).
    let waited = Instant::now();
    loop {
        let mut active = 0;
        for client in [&us, &eu] {
            let request = DescribeTableRequest { table_name: "only_us".into() };
            if let Ok(Some(table)) = client.describe_table(request).await.map(|r| r.table) {
                active += table.replicas.iter().filter(|r| r.replica_status == "ACTIVE").count();
            }
        }
        if active == 4 {
            break;
        }
        anyhow::ensure!(waited.elapsed() < Duration::from_secs(20), "the eu-west replica never became ACTIVE");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let item = tern_client::Item::from([("pk".to_string(), tern_client::AttributeValue::S("hello".into()))]);
    us.put_item("only_us", item).await?;
    let written = Instant::now();
    loop {
        let key = tern_client::Item::from([("pk".to_string(), tern_client::AttributeValue::S("hello".into()))]);
        // An eventually consistent read on any eu-west node: one that has not yet applied the replica's
        // creation answers ResourceNotFoundException, which here only means "not yet".
        match eu.get_item("only_us", key, false).await {
            Ok(Some(_)) => break,
            Ok(None) => {}
            Err(e) if e.kind() == Some(::tern_client::ErrorKind::ResourceNotFoundException) => {}
            Err(e) => return Err(e.into()),
        }
        anyhow::ensure!(written.elapsed() < Duration::from_secs(10), "the write never reached eu-west");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    println!("a us-east write was readable in eu-west {:?} after its acknowledgement", written.elapsed());
    // And through eu-west's cache, which the playground lists.
    let eu_cache = Client::connect([info["caches"]["eu-west"].as_str().unwrap()]).await?;
    let key = tern_client::Item::from([("pk".to_string(), tern_client::AttributeValue::S("hello".into()))]);
    assert!(eu_cache.get_item("only_us", key, false).await?.is_some());

    nix::sys::signal::kill(nix::unistd::Pid::from_raw(playground_pid as i32), nix::sys::signal::Signal::SIGINT)?;
    playground.0.take().unwrap().wait()?;
    let pids: Vec<u32> = processes.iter().map(|p| p["pid"].as_u64().unwrap() as u32).collect();
    let stopped = Instant::now();
    while pids.iter().any(|p| alive(*p)) && stopped.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(pids.iter().all(|p| !alive(*p)), "Ctrl-C stops every node");
    Ok(())
}
