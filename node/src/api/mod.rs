//! The public gRPC API of a node: items and tables, and cluster administration.

pub mod cluster;
pub mod items;
pub mod key_condition;
pub mod reads;
pub mod replication;
pub mod routing;
pub mod streams;
pub mod validate;
pub mod writes;

pub use cluster::ClusterService;
pub use items::TernService;
pub use replication::ReplicationService;
pub use routing::RegionNode;
