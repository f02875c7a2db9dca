//! openraft's type configuration for a Tern region.

use serde::{Deserialize, Serialize};

/// A proposed write: a prost-encoded `tern.internal.v1.Command`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposal(#[serde(with = "serde_bytes")] pub Vec<u8>);

/// What applying an entry produced: a prost-encoded `tern.internal.v1.CommandOutcome`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome(#[serde(with = "serde_bytes")] pub Vec<u8>);

impl std::fmt::Debug for Proposal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Proposal({} bytes)", self.0.len())
    }
}

impl std::fmt::Debug for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Outcome({} bytes)", self.0.len())
    }
}

openraft::declare_raft_types!(
    /// The Raft types of a Tern region.
    pub TypeConfig:
        D = Proposal,
        R = Outcome,
        NodeId = u64,
        Node = openraft::BasicNode,
        SnapshotData = tokio::fs::File,
);

/// A node id within a region.
pub type NodeId = u64;
pub type Entry = openraft::Entry<TypeConfig>;
pub type LogId = openraft::LogId<NodeId>;
pub type StorageError = openraft::StorageError<NodeId>;
pub type StoredMembership = openraft::StoredMembership<NodeId, openraft::BasicNode>;
pub type SnapshotMeta = openraft::SnapshotMeta<NodeId, openraft::BasicNode>;
pub type Raft = openraft::Raft<TypeConfig>;
