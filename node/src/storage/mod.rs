//! A node's storage: one RocksDB holding the Raft log and the state machine.

pub mod apply;
pub mod db;
pub mod keys;
pub mod log_store;
pub mod reads;
pub mod schema;
pub mod snapshot;
pub mod state_machine;

pub use log_store::LogStore;
pub use reads::Reader;
pub use state_machine::StateMachine;
