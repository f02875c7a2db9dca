//! Prometheus metrics: request counts and latencies (recorded where requests are served) and the
//! node's Raft state, published from openraft's metrics.

use std::net::SocketAddr;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};

use crate::raft::types::Raft;

/// Serves `/metrics` on `address`.
pub fn serve(address: SocketAddr) -> anyhow::Result<()> {
    let buckets =
        [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];
    PrometheusBuilder::new()
        .with_http_listener(address)
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &buckets)?
        .install()?;
    Ok(())
}

/// Publishes the Raft gauges whenever openraft's metrics change, until Raft stops.
pub async fn publish_raft(raft: Raft) {
    let mut watch = raft.metrics();
    loop {
        {
            let m = watch.borrow_and_update();
            metrics::gauge!("tern_raft_term").set(m.current_term as f64);
            metrics::gauge!("tern_raft_leader_id").set(m.current_leader.map_or(-1.0, |id| id as f64));
            metrics::gauge!("tern_raft_is_leader").set(if m.current_leader == Some(m.id) { 1.0 } else { 0.0 });
            metrics::gauge!("tern_raft_last_log_index").set(m.last_log_index.unwrap_or(0) as f64);
            metrics::gauge!("tern_raft_applied_index").set(m.last_applied.map_or(0, |id| id.index) as f64);
            metrics::gauge!("tern_raft_snapshot_index").set(m.snapshot.map_or(0, |id| id.index) as f64);
            metrics::gauge!("tern_raft_purged_index").set(m.purged.map_or(0, |id| id.index) as f64);
            metrics::gauge!("tern_raft_members").set(m.membership_config.membership().nodes().count() as f64);
        }
        if watch.changed().await.is_err() {
            return;
        }
    }
}
