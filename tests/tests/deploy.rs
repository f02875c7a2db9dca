//! The deployment as a user runs it: the Kubernetes manifests, the compose files and the dashboard
//! validate offline (scripts/validate-deploy.py); and a compose cluster of two regions, started from an
//! image of the binary under test by scripts/cluster.sh, comes through a short `tern chaos` run
//! (scripts/chaos.sh) with no anomaly. The long run is in docs/chaos.md.

use std::path::{Path, PathBuf};
use std::process::Command;

use tern_tests::tern_binary;

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the repository").to_path_buf()
}

fn run(command: &mut Command) -> std::process::Output {
    let output = command.current_dir(repository()).output().expect("the command runs");
    if !output.status.success() {
        panic!(
            "{command:?} failed ({}):\n{}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    output
}

#[test]
fn the_kubernetes_manifests_compose_files_and_dashboard_validate() {
    run(&mut Command::new("scripts/deploy-tools.sh"));
    let venv = std::env::var("TERN_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(std::env::var("HOME").expect("HOME")).join(".cache/tern/venv"));
    let output = run(Command::new(venv.join("bin/python")).arg("scripts/validate-deploy.py"));
    let said = String::from_utf8_lossy(&output.stdout);
    assert!(said.contains("checked 2 Kubernetes overlays"), "{said}");
    assert!(said.contains("2 compose files, 1 dashboards"), "{said}");
}

/// Takes the compose cluster down, whatever the test did.
struct Down;

impl Drop for Down {
    fn drop(&mut self) {
        let _ = Command::new("scripts/cluster.sh")
            .args(["down", "--volumes"])
            .current_dir(repository())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
}

#[test]
fn a_compose_cluster_of_two_regions_comes_through_a_short_chaos_run() {
    // The compose deployment's containers have fixed names: one runs at a time on a machine. A cluster
    // someone brought up is left alone.
    let state = std::env::var("TERN_CLUSTER_STATE")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(std::env::var("HOME").expect("HOME")).join(".cache/tern/cluster"));
    assert!(
        !state.join("variant").exists(),
        "a compose cluster is up ({}): take it down first (scripts/cluster.sh down)",
        state.display()
    );
    let _down = Down;
    let out = tempfile::tempdir().unwrap();
    let binary = tern_binary();
    let output = Command::new("scripts/chaos.sh")
        .args(["--binary", binary.to_str().unwrap(), "--cycles", "4", "--fault-secs", "4", "--calm-secs", "1"])
        .args(["--seed", "7", "--faults", "isolate,split,kill-leader,pause,clock-skew", "--writers", "1"])
        .arg("--out")
        .arg(out.path())
        .current_dir(repository())
        .output()
        .expect("scripts/chaos.sh runs");
    let said = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "chaos run failed ({}):\n{said}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.path().join("report.json")).unwrap()).unwrap();
    assert_eq!(report["cycles"], 4, "{said}");
    assert_eq!(report["anomalies_by_kind"], serde_json::json!({}), "{said}");
    assert_eq!(report["fault_errors"], 0, "every fault was injected and healed: {said}");
    for region in ["us-east", "eu-west"] {
        let acknowledged = report["operations_by_region"][region]["ok"].as_u64().unwrap();
        assert!(acknowledged > 50, "{region} acknowledged only {acknowledged} operations: {said}");
    }
    let items = &report["items_by_region"];
    assert_eq!(items["us-east"], items["eu-west"], "{said}");
    let timeline = std::fs::read_to_string(out.path().join("timeline.svg")).unwrap();
    assert!(timeline.starts_with("<svg") && timeline.contains("us-east: operations per second"), "{timeline:.200}");
}
