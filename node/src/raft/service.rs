//! The internal Raft service: receives peers' RPCs and hands them to openraft.

use serde::de::DeserializeOwned;
use serde::Serialize;
use tern_proto::internal::raft_server;
use tern_proto::internal::{ClockReading, ClockRequest, RaftPayload};
use tonic::{Request, Response, Status};

use super::types::Raft;

/// Serves `tern.internal.v1.Raft` for one node.
pub struct RaftService {
    raft: Raft,
}

impl RaftService {
    pub fn new(raft: Raft) -> Self {
        RaftService { raft }
    }
}

fn decode<T: DeserializeOwned>(request: Request<RaftPayload>) -> Result<T, Status> {
    bincode::deserialize(&request.into_inner().data)
        .map_err(|e| Status::invalid_argument(format!("malformed raft message: {e}")))
}

fn encode<T: Serialize>(result: &T) -> Result<Response<RaftPayload>, Status> {
    let data = bincode::serialize(result).map_err(|e| Status::internal(e.to_string()))?;
    Ok(Response::new(RaftPayload { data }))
}

#[tonic::async_trait]
impl raft_server::Raft for RaftService {
    async fn append_entries(&self, request: Request<RaftPayload>) -> Result<Response<RaftPayload>, Status> {
        encode(&self.raft.append_entries(decode(request)?).await)
    }

    async fn vote(&self, request: Request<RaftPayload>) -> Result<Response<RaftPayload>, Status> {
        encode(&self.raft.vote(decode(request)?).await)
    }

    async fn install_snapshot(&self, request: Request<RaftPayload>) -> Result<Response<RaftPayload>, Status> {
        encode(&self.raft.install_snapshot(decode(request)?).await)
    }

    async fn read_clock(&self, _: Request<ClockRequest>) -> Result<Response<ClockReading>, Status> {
        Ok(Response::new(ClockReading { now_micros: crate::clock::now_micros() }))
    }
}
