//! Tern's server roles and command line: storage nodes (Raft over RocksDB), the playground, the
//! benchmark, and the `aws dynamodb`-shaped client verbs. `docs/architecture.md` maps the modules.
//!
//! Storage, bottom up: [`keyspace`] (every key), [`engine`] (the read-view / write-set seam, RocksDB
//! and in memory), [`apply`] (the deterministic apply path and its dispatch), the concerns that hook
//! into it ([`stream`], [`global`], [`ttl`]), and [`raft`] (openraft's storage over the engine).
//! Serving: [`reader`] (local reads), [`routing`] (the leader), [`api`] (the public gRPC API).

// openraft's `StorageError` and `ConfigError` are large, and its traits fix them as our error types.
#![allow(clippy::result_large_err)]

pub mod api;
pub mod apply;
pub mod backup;
pub mod bench;
pub mod cache;
pub mod catalog;
pub mod changes;
pub mod chaos;
pub mod cli;
pub mod clock;
pub mod config;
pub mod engine;
pub mod global;
pub mod keyspace;
pub mod metrics;
pub mod node;
pub mod playground;
pub mod proposals;
pub mod raft;
pub mod reader;
pub mod routing;
pub mod schema;
pub mod sessions;
pub mod stream;
pub mod topology;
pub mod transfer;
pub mod ttl;
