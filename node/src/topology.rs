//! The topology file: a deployment's regions and, for each, its nodes' addresses, its replicator and
//! its cache nodes.
//! Nodes, replicators and operators read it; `tern playground` writes one. Regions find each other only
//! through it.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// One region of a deployment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegionTopology {
    /// Node id to address (host:port).
    pub nodes: BTreeMap<u64, String>,
    /// The region's replicator, when it has one (host:port of its status endpoint).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicator: Option<String>,
    /// The region's cache nodes (host:port of their API), which a client may use instead of the nodes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub caches: Vec<String>,
}

/// A whole deployment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Topology {
    pub regions: BTreeMap<String, RegionTopology>,
}

/// Why a topology file is unusable.
#[derive(Debug, thiserror::Error)]
pub enum TopologyError {
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("cannot parse {path}: {source}")]
    Parse { path: String, source: toml::de::Error },
    #[error("region {0} is not in the topology")]
    UnknownRegion(String),
    #[error("region {0} has no nodes")]
    EmptyRegion(String),
    #[error("cannot connect to region {region}: {source}")]
    Connect { region: String, source: tern_client::Error },
}

impl Topology {
    /// Reads and checks a topology file.
    pub fn load(path: &Path) -> Result<Topology, TopologyError> {
        let shown = path.display().to_string();
        let text =
            std::fs::read_to_string(path).map_err(|source| TopologyError::Read { path: shown.clone(), source })?;
        let topology: Topology =
            toml::from_str(&text).map_err(|source| TopologyError::Parse { path: shown, source })?;
        if let Some((name, _)) = topology.regions.iter().find(|(_, r)| r.nodes.is_empty()) {
            return Err(TopologyError::EmptyRegion(name.clone()));
        }
        Ok(topology)
    }

    /// The topology as TOML.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("a topology serialises")
    }

    /// One region.
    pub fn region(&self, name: &str) -> Result<&RegionTopology, TopologyError> {
        self.regions.get(name).ok_or_else(|| TopologyError::UnknownRegion(name.to_string()))
    }

    /// A client of a region's nodes, whose calls retry until `deadline`.
    pub async fn connect(
        &self,
        region: &str,
        deadline: std::time::Duration,
    ) -> Result<tern_client::Client, TopologyError> {
        self.connect_with(region, tern_client::RetryPolicy { deadline, ..Default::default() }).await
    }

    /// A client of a region's nodes with its own retry policy.
    pub async fn connect_with(
        &self,
        region: &str,
        retry: tern_client::RetryPolicy,
    ) -> Result<tern_client::Client, TopologyError> {
        tern_client::Client::connect_with(self.region(region)?.nodes.values(), retry)
            .await
            .map_err(|source| TopologyError::Connect { region: region.into(), source })
    }

    /// A region's nodes as `--peers` takes them.
    pub fn peers(&self, region: &str) -> Result<String, TopologyError> {
        Ok(self
            .region(region)?
            .nodes
            .iter()
            .map(|(id, address)| format!("{id}={address}"))
            .collect::<Vec<_>>()
            .join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_topology_survives_a_trip_through_toml() {
        let mut topology = Topology::default();
        topology.regions.insert(
            "us-east".into(),
            RegionTopology {
                nodes: [(1, "10.0.0.1:7001".into()), (2, "10.0.0.2:7001".into())].into(),
                replicator: Some("10.0.0.9:7100".into()),
                caches: vec!["10.0.0.8:8111".into()],
            },
        );
        topology.regions.insert(
            "eu-west".into(),
            RegionTopology { nodes: [(1, "10.1.0.1:7001".into())].into(), replicator: None, caches: vec![] },
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("topology.toml");
        std::fs::write(&path, topology.to_toml()).unwrap();
        let loaded = Topology::load(&path).unwrap();
        assert_eq!(loaded, topology);
        assert_eq!(loaded.peers("us-east").unwrap(), "1=10.0.0.1:7001,2=10.0.0.2:7001");
        assert!(matches!(loaded.peers("ap-south"), Err(TopologyError::UnknownRegion(_))));
    }

    #[test]
    fn the_example_topology_parses() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/topology.example.toml");
        let topology = Topology::load(&path).unwrap();
        assert_eq!(topology.regions.keys().collect::<Vec<_>>(), ["eu-west", "us-east"]);
    }
}
