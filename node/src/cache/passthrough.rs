//! The services a cache node passes through to its region: `Streams` (Subscribe too) and `Cluster`;
//! and its own `CacheAdmin` (`tern cache status`).

use ::tern_client::Relay;
use tern_proto::internal::cache_admin_server::CacheAdmin;
use tern_proto::internal::{CacheStatus, CacheStatusRequest};
use tern_proto::v1::cluster_server::Cluster;
use tern_proto::v1::streams_client::StreamsClient;
use tern_proto::v1::streams_server::Streams;
use tern_proto::v1::*;
use tonic::{Request, Response, Status};

use super::api_error;
use super::service::{relayed, CacheService};
use crate::routing::MAX_API_MESSAGE_BYTES;
use crate::stream::service::RecordStream;

/// Relays a `Streams` call to any node.
macro_rules! relay_streams {
    ($self:expr, $rpc:ident, $request:expr) => {{
        let metadata = $request.metadata().clone();
        let message = $request.into_inner();
        $self
            .state
            .client
            .relay(Relay::AnyNodeUntilDeadline, |channel, timeout| {
                let request = relayed(message.clone(), &metadata, timeout);
                async move {
                    StreamsClient::new(channel).max_decoding_message_size(MAX_API_MESSAGE_BYTES).$rpc(request).await
                }
            })
            .await
            .map(Response::new)
            .map_err(|e| Status::from(api_error(e)))
    }};
}

#[tonic::async_trait]
impl Streams for CacheService {
    type SubscribeStream = RecordStream;

    async fn list_streams(
        &self,
        request: Request<ListStreamsRequest>,
    ) -> Result<Response<ListStreamsResponse>, Status> {
        relay_streams!(self, list_streams, request)
    }

    async fn describe_stream(
        &self,
        request: Request<DescribeStreamRequest>,
    ) -> Result<Response<DescribeStreamResponse>, Status> {
        relay_streams!(self, describe_stream, request)
    }

    async fn get_shard_iterator(
        &self,
        request: Request<GetShardIteratorRequest>,
    ) -> Result<Response<GetShardIteratorResponse>, Status> {
        relay_streams!(self, get_shard_iterator, request)
    }

    async fn get_records(&self, request: Request<GetRecordsRequest>) -> Result<Response<GetRecordsResponse>, Status> {
        relay_streams!(self, get_records, request)
    }

    async fn put_consumer_position(
        &self,
        request: Request<PutConsumerPositionRequest>,
    ) -> Result<Response<PutConsumerPositionResponse>, Status> {
        relay_streams!(self, put_consumer_position, request)
    }

    async fn list_consumers(
        &self,
        request: Request<ListConsumersRequest>,
    ) -> Result<Response<ListConsumersResponse>, Status> {
        relay_streams!(self, list_consumers, request)
    }

    async fn subscribe(&self, request: Request<SubscribeRequest>) -> Result<Response<Self::SubscribeStream>, Status> {
        let message = request.into_inner();
        let records = self
            .state
            .client
            .relay(Relay::AnyNode, |channel, _| {
                // No timeout: the subscription lasts until the caller hangs up.
                let request = Request::new(message.clone());
                async move {
                    StreamsClient::new(channel)
                        .max_decoding_message_size(MAX_API_MESSAGE_BYTES)
                        .subscribe(request)
                        .await
                }
            })
            .await
            .map_err(|e| Status::from(api_error(e)))?;
        Ok(Response::new(Box::pin(records)))
    }
}

#[tonic::async_trait]
impl Cluster for CacheService {
    /// A cache answers as the leader of its own small world: a client given caches only sends them
    /// everything, and spreads its reads over them.
    async fn get_node_status(&self, request: Request<NodeStatusRequest>) -> Result<Response<NodeStatus>, Status> {
        let address = request.local_addr().map(|a| a.to_string()).unwrap_or_default();
        Ok(Response::new(NodeStatus {
            node_id: 0,
            region: self.state.region.clone(),
            state: "Cache".into(),
            leader_id: Some(0),
            leader_address: address,
            ..Default::default()
        }))
    }

    async fn add_node(&self, request: Request<AddNodeRequest>) -> Result<Response<MembershipResponse>, Status> {
        let message = request.into_inner();
        let (id, address) = (message.node_id, message.address);
        self.state.client.add_node(id, &address).await.map(Response::new).map_err(|e| Status::from(api_error(e)))
    }

    async fn remove_node(&self, request: Request<RemoveNodeRequest>) -> Result<Response<MembershipResponse>, Status> {
        let id = request.into_inner().node_id;
        self.state.client.remove_node(id).await.map(Response::new).map_err(|e| Status::from(api_error(e)))
    }
}

#[tonic::async_trait]
impl CacheAdmin for CacheService {
    async fn status(&self, _: Request<CacheStatusRequest>) -> Result<Response<CacheStatus>, Status> {
        Ok(Response::new(self.state.status().await))
    }
}
