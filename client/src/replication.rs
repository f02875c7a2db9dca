//! Global tables' replication service: what replicators and regions call on one another. Every call
//! goes to the region's leader. Reads and applies of changes (idempotent: last writer wins by version)
//! take an attempt's time; replica-list changes wait up to the deadline.

use futures::Stream;
use tern_proto::v1::replication_client::ReplicationClient;
use tern_proto::v1::*;

use crate::{request, Client, Error, Patience, Target, MAX_MESSAGE_BYTES};

macro_rules! replication_operation {
    ($(#[$doc:meta])* $name:ident, $request:ty, $response:ty, $patience:expr) => {
        $(#[$doc])*
        pub async fn $name(&self, message: $request) -> Result<$response, Error> {
            self.call_on(Target::Leader, $patience, |channel, timeout| {
                let message = message.clone();
                async move {
                    ReplicationClient::new(channel)
                        .max_decoding_message_size(MAX_MESSAGE_BYTES)
                        .max_encoding_message_size(MAX_MESSAGE_BYTES)
                        .$name(request(message, timeout))
                        .await
                }
            })
            .await
        }
    };
}

impl Client {
    replication_operation!(/// Applies another region's changes (last writer wins) with the new checkpoint.
        apply_replicated, ApplyReplicatedRequest, ApplyReplicatedResponse, Patience::Attempt);
    replication_operation!(/// A table's replication checkpoints, safe point and tombstones in this region.
        get_replication_state, GetReplicationStateRequest, ReplicationState, Patience::Attempt);
    replication_operation!(/// A page of a table's items and tombstones with their versions.
        read_table_versions, ReadTableVersionsRequest, ReadTableVersionsResponse, Patience::Attempt);
    replication_operation!(/// Sets a table's replica list in this region (creating the table when asked).
        set_replicas, SetReplicasRequest, SetReplicasResponse, Patience::Deadline);
    replication_operation!(/// Sets one replica's status in this region's replica list.
        set_replica_status, SetReplicaStatusRequest, SetReplicasResponse, Patience::Deadline);
    replication_operation!(/// Takes or releases a table's replica-update lock in this region.
        lock_replica_update, LockReplicaUpdateRequest, LockReplicaUpdateResponse, Patience::Deadline);

    /// Every page of a table's items and tombstones with their versions, in key order, each read on
    /// the leader; the first page also carries the stream position and the clock at its read.
    pub fn table_version_pages(
        &self,
        table: &str,
    ) -> impl Stream<Item = Result<ReadTableVersionsResponse, Error>> + '_ {
        let table = table.to_string();
        futures::stream::try_unfold(Some(Vec::new()), move |start| {
            let table = table.clone();
            async move {
                let Some(exclusive_start_key) = start else { return Ok(None) };
                let request = ReadTableVersionsRequest { table_name: table, exclusive_start_key, limit: 0 };
                let page = self.read_table_versions(request).await?;
                let next = (!page.last_evaluated_key.is_empty()).then(|| page.last_evaluated_key.clone());
                Ok(Some((page, next)))
            }
        })
    }
}
