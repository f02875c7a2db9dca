//! What the workload did: every operation with its key, the value it wrote, when it ran and how it
//! ended (acknowledged with the version the region gave it, failed for certain, or unknown).

use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde::{Deserialize, Serialize};

/// An item's version: last writer wins by (write timestamp, origin region).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Version {
    pub micros: u64,
    pub origin: String,
}

impl From<&tern_proto::v1::ItemVersion> for Version {
    fn from(v: &tern_proto::v1::ItemVersion) -> Version {
        Version { micros: v.write_timestamp_micros, origin: v.origin_region.clone() }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OpKind {
    /// PutItem of a new value.
    Put,
    /// UpdateItem setting a new value, on condition that the item exists.
    Update,
    /// DeleteItem.
    Delete,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum Outcome {
    /// Acknowledged: applied with this version.
    Ok { version: Version },
    /// Not applied, for certain (a condition that did not hold, a rejected request).
    Failed { error: String },
    /// May or may not have been applied (a timeout, a node gone mid-call).
    Unknown { error: String },
}

/// One operation of the workload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Op {
    pub id: u64,
    /// The region whose nodes the client called.
    pub region: String,
    pub writer: u32,
    pub kind: OpKind,
    pub key: String,
    /// The value written (unique to this operation); none for a delete.
    pub value: Option<String>,
    /// Microseconds since the run started.
    pub start_micros: u64,
    pub end_micros: u64,
    #[serde(flatten)]
    pub outcome: Outcome,
}

impl Op {
    pub fn version(&self) -> Option<&Version> {
        match &self.outcome {
            Outcome::Ok { version } => Some(version),
            _ => None,
        }
    }

    /// Acknowledged, or unknown: it may be in the final state.
    pub fn may_have_applied(&self) -> bool {
        !matches!(self.outcome, Outcome::Failed { .. })
    }
}

/// Every operation of a run, shared by the writers.
#[derive(Clone)]
pub struct History {
    started: Instant,
    ops: Arc<Mutex<Vec<Op>>>,
}

impl History {
    pub fn new(started: Instant) -> History {
        History { started, ops: Arc::default() }
    }

    /// Microseconds since the run started.
    pub fn now(&self) -> u64 {
        self.started.elapsed().as_micros() as u64
    }

    pub fn started(&self) -> Instant {
        self.started
    }

    pub fn record(&self, mut op: Op) {
        let mut ops = self.ops.lock().expect("history lock");
        op.id = ops.len() as u64;
        ops.push(op);
    }

    pub fn ops(&self) -> Vec<Op> {
        self.ops.lock().expect("history lock").clone()
    }
}
