//! Global tables: a table replicated between regions both ways, last writer wins on
//! `(write timestamp, origin region)`. This module owns the rule, the replica statuses and
//! replication phases, tombstones and checkpoints ([`state`]); [`apply`] is the apply path of
//! replicated writes and replica lists; [`service`] and [`replicas`] serve the API; [`purge`] is
//! the leader's tombstone purge; [`replicator`] is the `tern replicator` process.

pub mod apply;
pub mod purge;
pub mod replicas;
pub mod replicator;
pub mod service;
pub mod state;

use tern_proto::internal::StoredTable;
use tern_proto::v1::{Identity, ItemVersion};

/// DynamoDB's version string of a global table.
pub const GLOBAL_TABLE_VERSION: &str = "2019.11.21";
/// The stream view type a global table's stream must have.
pub const REPLICATION_VIEW_TYPE: &str = "NEW_AND_OLD_IMAGES";
/// A replicated timestamp this far ahead of the local clock is applied, but counted and logged: the
/// default largest clock offset a leader may have (`--max-clock-offset-ms`), so such a version comes from
/// a region whose clock is off.
pub const FUTURE_TOLERANCE_MICROS: u64 = 500_000;

/// A replica's status, as DynamoDB names it. It only moves forward: CREATING, ACTIVE, DELETING.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ReplicaStatus {
    Creating,
    Active,
    Deleting,
}

impl ReplicaStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            ReplicaStatus::Creating => "CREATING",
            ReplicaStatus::Active => "ACTIVE",
            ReplicaStatus::Deleting => "DELETING",
        }
    }

    /// The status a replica description holds; anything unknown counts as the last state.
    pub fn parse(text: &str) -> ReplicaStatus {
        match text {
            "CREATING" => ReplicaStatus::Creating,
            "ACTIVE" => ReplicaStatus::Active,
            _ => ReplicaStatus::Deleting,
        }
    }

    /// Whether a replica description has this status.
    pub fn of(self, replica: &tern_proto::v1::ReplicaDescription) -> bool {
        replica.replica_status == self.as_str()
    }
}

/// Where a replication checkpoint stands: copying the source's items, or following its stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Copying,
    Tailing,
}

impl Phase {
    pub const fn as_str(self) -> &'static str {
        match self {
            Phase::Copying => "COPYING",
            Phase::Tailing => "TAILING",
        }
    }

    /// Whether a checkpoint is in this phase.
    pub fn of(self, checkpoint: &tern_proto::v1::ReplicationCheckpoint) -> bool {
        checkpoint.phase == self.as_str()
    }
}

/// The identity replicated changes carry in stream records.
pub fn replication_identity(source_region: &str) -> Identity {
    Identity { r#type: "Service".into(), principal_id: format!("replication.tern/{source_region}") }
}

/// Whether `incoming` wins over `stored` under last writer wins: the greater timestamp, ties broken
/// by the greater origin region name, the same way in every region.
pub fn wins(incoming: &ItemVersion, stored: Option<&ItemVersion>) -> bool {
    match stored {
        None => true,
        Some(stored) => {
            (incoming.write_timestamp_micros, incoming.origin_region.as_str())
                > (stored.write_timestamp_micros, stored.origin_region.as_str())
        }
    }
}

/// Whether a table is a global table (it has replicas in other regions).
pub fn is_global(table: &StoredTable) -> bool {
    table.description.as_ref().is_some_and(|d| !d.replicas.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(ts: u64, origin: &str) -> ItemVersion {
        ItemVersion { write_timestamp_micros: ts, origin_region: origin.into() }
    }

    #[test]
    fn the_greater_timestamp_wins_and_ties_break_on_the_origin() {
        assert!(wins(&version(2, "a"), Some(&version(1, "z"))));
        assert!(!wins(&version(1, "z"), Some(&version(2, "a"))));
        assert!(wins(&version(5, "eu-west"), Some(&version(5, "ap-south"))));
        assert!(!wins(&version(5, "ap-south"), Some(&version(5, "eu-west"))));
        assert!(!wins(&version(5, "eu-west"), Some(&version(5, "eu-west"))), "the same version again changes nothing");
        assert!(wins(&version(0, "a"), None));
    }

    #[test]
    fn replica_statuses_only_move_forward_in_their_order() {
        assert!(ReplicaStatus::Creating < ReplicaStatus::Active && ReplicaStatus::Active < ReplicaStatus::Deleting);
        for status in [ReplicaStatus::Creating, ReplicaStatus::Active, ReplicaStatus::Deleting] {
            assert_eq!(ReplicaStatus::parse(status.as_str()), status);
        }
    }
}
