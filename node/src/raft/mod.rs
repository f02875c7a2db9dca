//! Consensus: openraft's types, its network over tonic and the internal Raft service.

pub mod network;
pub mod service;
pub mod types;
