//! The public gRPC API of a node: thin adapters from `tern.v1.Tern` and `tern.v1.Cluster` to the
//! concerns. Requests are checked here, on the node that receives them; writes reach the leader
//! through `routing`, and are decided in `apply`.

pub mod cluster;
pub mod key_condition;
pub mod reads;
pub mod tern;
pub mod validate;
pub mod writes;

pub use cluster::ClusterService;
pub use tern::TernService;
