//! A node's storage: one RocksDB holding the Raft log and the state machine.

pub mod apply;
pub mod db;
pub mod keys;
pub mod log_store;
pub mod reads;
pub mod replication;
pub mod schema;
pub mod snapshot;
pub mod state_machine;
pub mod stream_log;
pub mod streams;
pub mod table_admin;
pub mod transaction;
pub mod ttl;

pub use log_store::LogStore;
pub use reads::Reader;
pub use state_machine::StateMachine;

#[cfg(test)]
mod conformance {
    use openraft::testing::{StoreBuilder, Suite};
    use tempfile::TempDir;

    use super::{db, LogStore, StateMachine};
    use crate::raft::types::{StorageError, TypeConfig};

    struct RocksBuilder;

    impl StoreBuilder<TypeConfig, LogStore, StateMachine, TempDir> for RocksBuilder {
        async fn build(&self) -> Result<(TempDir, LogStore, StateMachine), StorageError> {
            let dir = tempfile::tempdir().expect("a temporary directory");
            let database = db::open(&dir.path().join("db")).expect("opening RocksDB");
            let state_machine = StateMachine::open(database.clone(), dir.path().join("snapshots"), "test")?;
            Ok((dir, LogStore::new(database), state_machine))
        }
    }

    /// openraft's storage conformance suite against the RocksDB log store and state machine.
    #[test]
    fn openraft_storage_suite() {
        Suite::test_all(RocksBuilder).expect("the RocksDB stores pass openraft's storage suite");
    }
}
