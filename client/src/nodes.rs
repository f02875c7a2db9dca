//! Which node of the region a call asks: the leader as last seen, the others in turn, and the nodes
//! that let an attempt time out (paused, overloaded, cut off) asked last while the suspicion lasts.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tonic::transport::{Channel, Endpoint};

use crate::Error;

/// One node: its address and a channel to it.
#[derive(Clone)]
pub(crate) struct Node {
    pub(crate) address: String,
    pub(crate) channel: Channel,
}

impl Node {
    /// A node at `address` (`host:port` or `http://host:port`), connected on first use.
    pub(crate) fn at(address: &str) -> Result<Node, Error> {
        let address = address.trim();
        let uri = if address.contains("://") { address.to_string() } else { format!("http://{address}") };
        let endpoint = Endpoint::from_shared(uri).map_err(|_| Error::InvalidEndpoint(address.to_string()))?;
        let channel = endpoint.connect_timeout(Duration::from_secs(1)).tcp_nodelay(true).connect_lazy();
        Ok(Node { address: address.trim_start_matches("http://").to_string(), channel })
    }
}

/// Which endpoint answered as which node.
#[derive(Default)]
struct Learned {
    /// Node id to the endpoint's index.
    by_id: HashMap<u64, usize>,
    /// Endpoints that answered as more than one node (a load balancer in front of several): no node's.
    shared: HashSet<usize>,
}

/// A region's nodes as one client sees them.
pub(crate) struct Nodes {
    endpoints: Vec<Node>,
    leader: Mutex<Option<Node>>,
    next: AtomicUsize,
    /// When each suspected node last let an attempt time out.
    suspects: Mutex<HashMap<String, Instant>>,
    /// The node id each endpoint answered with, so that a leader named by an address the client cannot
    /// reach (a container's name, an address behind NAT or a port mapping) is found among the endpoints.
    ids: Mutex<Learned>,
    /// How long a node that timed out is asked last (its leadership is doubted for less: see
    /// [`Nodes::doubted`]).
    suspicion: Duration,
}

impl Nodes {
    pub(crate) fn new(endpoints: Vec<Node>, suspicion: Duration) -> Nodes {
        Nodes {
            endpoints,
            leader: Mutex::new(None),
            next: AtomicUsize::new(0),
            ids: Mutex::default(),
            suspects: Mutex::default(),
            suspicion,
        }
    }

    pub(crate) fn endpoints(&self) -> &[Node] {
        &self.endpoints
    }

    /// The next node in turn, passing over suspected ones while any other is left.
    pub(crate) fn any(&self) -> Node {
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let count = self.endpoints.len();
        (0..count)
            .map(|i| &self.endpoints[(start + i) % count])
            .find(|node| !self.suspected(&node.address, self.suspicion))
            .unwrap_or(&self.endpoints[start % count])
            .clone()
    }

    /// The next node in turn that is not in `asked`, passing over suspected ones while any other is left.
    pub(crate) fn any_except(&self, asked: &[String]) -> Node {
        if asked.is_empty() {
            return self.any();
        }
        let mut left: Vec<Node> = self.by_trust().into_iter().filter(|n| !asked.contains(&n.address)).collect();
        if left.is_empty() {
            return self.any();
        }
        left.swap_remove(0)
    }

    /// A node at `address`: the endpoint's own channel when it is one of them, else a new one.
    pub(crate) fn node(&self, address: &str) -> Result<Node, Error> {
        match self.endpoints.iter().find(|n| n.address == address.trim_start_matches("http://")) {
            Some(node) => Ok(node.clone()),
            None => Node::at(address),
        }
    }

    /// Remembers that the endpoint at `address` answered as node `id`.
    pub(crate) fn learn(&self, id: u64, address: &str) {
        let Some(index) = self.endpoints.iter().position(|n| n.address == address) else { return };
        let mut learned = self.ids.lock().expect("ids lock");
        if learned.shared.contains(&index) {
            return;
        }
        if learned.by_id.iter().any(|(other, at)| *at == index && *other != id) {
            learned.by_id.retain(|_, at| *at != index);
            learned.shared.insert(index);
            return;
        }
        learned.by_id.insert(id, index);
    }

    /// The endpoint that is node `id` of the region, known at `address` to the other nodes: the endpoint
    /// with that address, else the endpoint that answered as that node (the client reaches the region at
    /// other addresses than its nodes know each other by), else none.
    pub(crate) fn endpoint_of(&self, id: u64, address: &str) -> Option<Node> {
        let address = address.trim_start_matches("http://");
        if let Some(node) = self.endpoints.iter().find(|n| n.address == address) {
            return Some(node.clone());
        }
        let index = *self.ids.lock().expect("ids lock").by_id.get(&id)?;
        Some(self.endpoints[index].clone())
    }

    /// Every endpoint, the unsuspected first.
    pub(crate) fn by_trust(&self) -> Vec<Node> {
        let mut nodes = self.endpoints.clone();
        nodes.sort_by_key(|node| self.suspected(&node.address, self.suspicion));
        nodes
    }

    pub(crate) fn leader(&self) -> Option<Node> {
        self.leader.lock().expect("leader lock").clone()
    }

    pub(crate) fn set_leader(&self, leader: Node) {
        *self.leader.lock().expect("leader lock") = Some(leader);
    }

    pub(crate) fn forget_leader(&self) {
        *self.leader.lock().expect("leader lock") = None;
    }

    /// Notes that `address` let an attempt time out; if it was the leader, the leader is asked anew.
    pub(crate) fn suspect(&self, address: &str) {
        tracing::debug!(address, "node suspected: an attempt timed out");
        self.suspects.lock().expect("suspects lock").insert(address.to_string(), Instant::now());
        let mut leader = self.leader.lock().expect("leader lock");
        if leader.as_ref().is_some_and(|l| l.address == address) {
            *leader = None;
        }
    }

    /// How long a node that timed out is asked last.
    pub(crate) fn suspicion(&self) -> Duration {
        self.suspicion
    }

    /// Clears the suspicion of `address`: it answered.
    pub(crate) fn absolve(&self, address: &str) {
        self.suspects.lock().expect("suspects lock").remove(address);
    }

    /// Whether `address` let an attempt time out less than `within` ago.
    pub(crate) fn suspected(&self, address: &str, within: Duration) -> bool {
        let mut suspects = self.suspects.lock().expect("suspects lock");
        match suspects.get(address) {
            Some(at) if at.elapsed() < within => true,
            Some(at) if at.elapsed() >= self.suspicion => {
                suspects.remove(address);
                false
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nodes() -> Nodes {
        let endpoints = ["127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"].map(|a| Node::at(a).unwrap()).to_vec();
        Nodes::new(endpoints, Duration::from_secs(60))
    }

    #[tokio::test]
    async fn a_leader_known_by_another_address_is_found_among_the_endpoints() {
        let nodes = nodes();
        assert_eq!(nodes.endpoint_of(7, "http://127.0.0.1:3").map(|n| n.address).as_deref(), Some("127.0.0.1:3"));
        assert!(nodes.endpoint_of(2, "us-east-node-2:7001").is_none(), "no endpoint has answered as node 2 yet");
        nodes.learn(2, "127.0.0.1:2");
        nodes.learn(9, "10.0.0.9:1");
        assert_eq!(nodes.endpoint_of(2, "us-east-node-2:7001").map(|n| n.address).as_deref(), Some("127.0.0.1:2"));
        assert!(nodes.endpoint_of(9, "us-east-node-9:7001").is_none(), "not an endpoint: nothing learned");
        // An endpoint that answers as two nodes balances over several: it stands for none of them.
        nodes.learn(3, "127.0.0.1:2");
        assert!(nodes.endpoint_of(2, "us-east-node-2:7001").is_none());
        assert!(nodes.endpoint_of(3, "us-east-node-3:7001").is_none());
        nodes.learn(2, "127.0.0.1:2");
        assert!(nodes.endpoint_of(2, "us-east-node-2:7001").is_none(), "a shared endpoint stays shared");
    }

    #[tokio::test]
    async fn a_suspected_node_is_passed_over_and_asked_last() {
        let nodes = nodes();
        let turns: Vec<String> = (0..6).map(|_| nodes.any().address).collect();
        assert_eq!(turns, ["127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"].repeat(2));
        nodes.set_leader(Node::at("127.0.0.1:2").unwrap());
        nodes.suspect("127.0.0.1:2");
        assert!(nodes.leader().is_none(), "a suspected leader is forgotten");
        let turns: Vec<String> = (0..4).map(|_| nodes.any().address).collect();
        assert_eq!(turns, ["127.0.0.1:1", "127.0.0.1:3", "127.0.0.1:3", "127.0.0.1:1"]);
        let order: Vec<String> = nodes.by_trust().into_iter().map(|n| n.address).collect();
        assert_eq!(order, ["127.0.0.1:1", "127.0.0.1:3", "127.0.0.1:2"]);
        assert!(nodes.suspected("127.0.0.1:2", Duration::from_secs(1)));
        assert!(!nodes.suspected("127.0.0.1:2", Duration::ZERO), "doubt shorter than the suspicion has passed");
        nodes.absolve("127.0.0.1:2");
        assert!(!nodes.suspected("127.0.0.1:2", Duration::from_secs(1)));
        assert_eq!(nodes.any().address, "127.0.0.1:2", "an absolved node takes its turn again");
        nodes.suspect("127.0.0.1:1");
        nodes.suspect("127.0.0.1:3");
        let asked = ["127.0.0.1:2".to_string()];
        let next = nodes.any_except(&asked).address;
        assert_ne!(next, "127.0.0.1:2", "a node already asked is not asked again while others are left");
    }

    #[tokio::test]
    async fn with_every_node_suspected_they_are_still_asked_in_turn() {
        let nodes = nodes();
        for address in ["127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"] {
            nodes.suspect(address);
        }
        let turns: Vec<String> = (0..3).map(|_| nodes.any().address).collect();
        assert_eq!(turns, ["127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"]);
    }
}
