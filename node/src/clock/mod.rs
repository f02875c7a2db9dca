//! Wall-clock time in the units Tern's versions use, and whether this node's clock is close enough to
//! its region's for it to lead ([`Monitor`]: the peers' clocks read every half second).

mod watch;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tern_proto::internal::raft_client::RaftClient;
use tern_proto::internal::ClockRequest;
use tonic::transport::{Channel, Endpoint};

use crate::raft::types::{NodeId, Raft};
pub use watch::{ClockWatch, Sample, Verdict};

/// Microseconds since the Unix epoch.
pub fn now_micros() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_micros() as u64).unwrap_or(0)
}

/// How often the peers' clocks are read.
const READ_EVERY: Duration = Duration::from_millis(500);

/// This node's clock against its region's, shared by the reading loop, routing and the status call.
pub struct Monitor {
    watch: Mutex<ClockWatch>,
    verdict: Mutex<Option<(Verdict, Instant)>>,
}

/// A verdict older than this (the reading loop stalled) no longer lets the node lead.
const VERDICT_FOR: Duration = Duration::from_secs(3);

impl Monitor {
    pub fn new(id: NodeId, max_offset: Duration) -> Monitor {
        Monitor { watch: Mutex::new(ClockWatch::new(id, max_offset)), verdict: Mutex::new(None) }
    }

    /// The last verdict; none before the peers' clocks were first read.
    pub fn verdict(&self) -> Option<Verdict> {
        self.verdict.lock().expect("clock verdict lock").as_ref().map(|(verdict, _)| verdict.clone())
    }

    /// Why this node must not lead now, if it must not.
    pub fn refusal(&self) -> Option<String> {
        match self.verdict.lock().expect("clock verdict lock").as_ref() {
            Some((verdict, at)) if at.elapsed() < VERDICT_FOR => verdict.refusal.clone(),
            Some(_) => Some("its clock has not been compared with its region's lately".into()),
            None => Some("its clock has not yet been compared with its region's".into()),
        }
    }

    fn judge(&self, voters: &BTreeSet<NodeId>) -> Verdict {
        let verdict = self.watch.lock().expect("clock watch lock").verdict(voters, Instant::now());
        *self.verdict.lock().expect("clock verdict lock") = Some((verdict.clone(), Instant::now()));
        verdict
    }
}

/// Reads every voter's clock twice a second, judges whether this node may lead, and tells Raft: a node
/// whose clock is off neither starts elections nor, when it leads, sends heartbeats (so its followers
/// elect another), and routing refuses it writes and reads meanwhile. `initial` are the region's nodes
/// before its membership is known.
pub async fn watch_forever(
    monitor: std::sync::Arc<Monitor>,
    raft: Raft,
    id: NodeId,
    initial: BTreeMap<NodeId, String>,
) {
    let mut channels: BTreeMap<String, Channel> = BTreeMap::new();
    let mut may_lead = None;
    loop {
        let metrics = raft.metrics().borrow().clone();
        let membership = metrics.membership_config.membership();
        let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
        let (voters, nodes): (BTreeSet<NodeId>, BTreeMap<NodeId, String>) = if voters.is_empty() {
            (initial.keys().copied().collect(), initial.clone())
        } else {
            (voters, membership.nodes().map(|(id, node)| (*id, node.addr.clone())).collect())
        };
        let mut readings = Vec::new();
        for (peer, address) in nodes.iter().filter(|(peer, _)| **peer != id) {
            let channel = match channels.get(address) {
                Some(channel) => channel.clone(),
                None => {
                    let Ok(endpoint) = Endpoint::from_shared(format!("http://{address}")) else { continue };
                    let channel = endpoint.connect_timeout(Duration::from_secs(1)).tcp_nodelay(true).connect_lazy();
                    channels.insert(address.clone(), channel.clone());
                    channel
                }
            };
            readings.push(read_clock(*peer, channel));
        }
        for (peer, sample) in futures::future::join_all(readings).await {
            if let Some(sample) = sample {
                monitor.watch.lock().expect("clock watch lock").record(peer, sample);
            }
        }
        let verdict = monitor.judge(&voters);
        metrics::gauge!("tern_clock_offset_seconds").set(verdict.offset_micros as f64 / 1e6);
        metrics::gauge!("tern_clock_agreeing_voters").set(verdict.agreeing as f64);
        metrics::gauge!("tern_clock_may_lead").set(if verdict.may_lead() { 1.0 } else { 0.0 });
        if may_lead != Some(verdict.may_lead()) {
            match &verdict.refusal {
                None => {
                    tracing::info!(offset_ms = verdict.offset_micros / 1000, "clock agrees with the region: may lead")
                }
                Some(reason) => tracing::warn!(%reason, "this node does not lead"),
            }
            raft.runtime_config().elect(verdict.may_lead());
            raft.runtime_config().heartbeat(verdict.may_lead());
            may_lead = Some(verdict.may_lead());
        }
        tokio::time::sleep(READ_EVERY).await;
    }
}

/// One reading of a peer's clock, or none when it did not answer within a second.
async fn read_clock(peer: NodeId, channel: Channel) -> (NodeId, Option<Sample>) {
    let (sent, started) = (now_micros(), Instant::now());
    let mut request = tonic::Request::new(ClockRequest {});
    request.set_timeout(Duration::from_secs(1));
    let reading = tokio::time::timeout(Duration::from_secs(1), RaftClient::new(channel).read_clock(request)).await;
    match reading {
        Ok(Ok(reading)) => {
            (peer, Some(Sample::measure(sent, reading.into_inner().now_micros, started.elapsed(), Instant::now())))
        }
        _ => (peer, None),
    }
}
