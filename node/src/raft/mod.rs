//! Consensus: openraft's types, its storage (the log store, the state machine and its snapshots,
//! over the storage engine), its network over tonic and the internal Raft service.

pub mod log_store;
pub mod log_sync;
pub mod meta;
pub mod network;
pub mod service;
pub mod snapshot;
pub mod state_machine;
pub mod types;

pub use log_store::LogStore;
pub use state_machine::StateMachine;

#[cfg(test)]
mod conformance {
    use std::sync::Arc;

    use openraft::testing::{StoreBuilder, Suite};
    use tempfile::TempDir;

    use super::types::{StorageError, TypeConfig};
    use super::{LogStore, StateMachine};
    use crate::engine::{Engine, Memory, Rocks};

    /// Builds stores over RocksDB, or over the in-memory engine.
    struct Builder {
        rocks: bool,
    }

    impl StoreBuilder<TypeConfig, LogStore, StateMachine, TempDir> for Builder {
        async fn build(&self) -> Result<(TempDir, LogStore, StateMachine), StorageError> {
            let dir = tempfile::tempdir().expect("a temporary directory");
            let engine: Arc<dyn Engine> = if self.rocks {
                Arc::new(Rocks::open(&dir.path().join("db")).expect("opening RocksDB"))
            } else {
                Arc::new(Memory::new())
            };
            let log_store = LogStore::open(engine.clone(), 0)?;
            let state_machine =
                StateMachine::open(engine.clone(), dir.path().join("snapshots"), "test", log_store.log_sync())?;
            Ok((dir, log_store, state_machine))
        }
    }

    /// openraft's storage conformance suite against the RocksDB log store and state machine.
    #[test]
    fn openraft_storage_suite() {
        Suite::test_all(Builder { rocks: true }).expect("the RocksDB stores pass openraft's storage suite");
    }

    /// The same suite over the in-memory engine: the stores depend on the engine's contract only.
    #[test]
    fn openraft_storage_suite_in_memory() {
        Suite::test_all(Builder { rocks: false }).expect("the in-memory stores pass openraft's storage suite");
    }
}
