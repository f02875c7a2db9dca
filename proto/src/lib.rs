//! Tern's wire API (gRPC package `tern.v1`, plus the internal `tern.internal.v1`) and its data
//! model: attribute values, exact numbers, DynamoDB JSON and DynamoDB's error names.

pub mod number;

/// Generated code, nested as the protobuf packages are.
mod generated {
    pub mod tern {
        pub mod v1 {
            tonic::include_proto!("tern.v1");
        }
        pub mod internal {
            pub mod v1 {
                tonic::include_proto!("tern.internal.v1");
            }
        }
    }
}

/// The public API, package `tern.v1`.
pub use generated::tern::v1;

/// Internal RPCs and the Raft log's commands, package `tern.internal.v1`.
pub use generated::tern::internal::v1 as internal;

pub mod error;
pub mod json;
pub mod session;
pub mod value;

pub use error::{ApiError, ErrorKind};
pub use number::Number;
pub use value::{AttributeValue, Item};
