//! Tern's server roles and command line: storage nodes (Raft over RocksDB), the playground, the
//! benchmark, and the `aws dynamodb`-shaped client verbs.

// openraft's `StorageError` and `ConfigError` are large, and its traits fix them as our error types.
#![allow(clippy::result_large_err)]

pub mod api;
pub mod bench;
pub mod cli;
pub mod clock;
pub mod config;
pub mod metrics;
pub mod node;
pub mod playground;
pub mod raft;
pub mod replicator;
pub mod storage;
pub mod topology;
pub mod ttl;
