//! The client's errors.

use tern_proto::{ApiError, ErrorKind};

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The region answered with a DynamoDB error (`ValidationException`, `ResourceNotFoundException`, …).
    #[error(transparent)]
    Api(#[from] ApiError),
    /// The region stayed unavailable until the deadline; the last error seen.
    #[error("deadline of {deadline:?} exceeded after {attempts} attempts; last error: {last}")]
    DeadlineExceeded { deadline: std::time::Duration, attempts: u32, last: ApiError },
    /// A write whose deadline passed after an attempt that may have been applied: whether it was is
    /// unknown (read the item to find out). Never a guess.
    #[error("outcome unknown: the deadline of {deadline:?} passed after {attempts} attempts, and one may have been applied; last error: {last}")]
    OutcomeUnknown { deadline: std::time::Duration, attempts: u32, last: ApiError },
    /// An endpoint is not a valid address.
    #[error("invalid endpoint {0:?}")]
    InvalidEndpoint(String),
    /// No endpoint was given.
    #[error("at least one endpoint is needed")]
    NoEndpoints,
    /// An item could not be converted to or from a Rust value.
    #[error("item conversion: {0}")]
    Serde(String),
}

impl Error {
    /// The DynamoDB error name, when the region gave one.
    pub fn kind(&self) -> Option<ErrorKind> {
        match self {
            Error::Api(e) => Some(e.kind),
            Error::DeadlineExceeded { last, .. } => Some(last.kind),
            // Not the last attempt's kind: an application that retries on ServiceUnavailable must not
            // retry a write that may have been applied as a new call.
            Error::OutcomeUnknown { .. } => None,
            _ => None,
        }
    }
}
