//! The `ChangeFeed` gRPC service: pushes this node's changes to a follower from its position on, and
//! a progress message at least every [`PROGRESS_EVERY`], so a follower can tell a quiet feed from a
//! dead connection.

use std::time::Duration;

use tern_proto::internal::change_feed_server::ChangeFeed as ChangeFeedApi;
use tern_proto::internal::{ChangeBatch, FollowChangesRequest};
use tonic::{Request, Response, Status};

use super::ChangeFeed;

/// The longest a follower waits for a message from a live node.
pub const PROGRESS_EVERY: Duration = Duration::from_millis(500);

pub struct ChangeFeedService {
    feed: ChangeFeed,
}

impl ChangeFeedService {
    pub fn new(feed: ChangeFeed) -> Self {
        ChangeFeedService { feed }
    }
}

type Sender = tokio::sync::mpsc::Sender<Result<ChangeBatch, Status>>;

/// Sends the changes after `position` to `sender` until the follower hangs up or its position is lost.
async fn push(feed: ChangeFeed, mut position: u64, sender: Sender) {
    let mut moved = feed.watch();
    // The first message tells the follower where it starts.
    let start = ChangeBatch { through_position: position, latest_position: feed.position(), ..Default::default() };
    if sender.send(Ok(start)).await.is_err() {
        return;
    }
    loop {
        moved.borrow_and_update();
        let since = match feed.since(position) {
            Ok(since) => since,
            Err(lost) => {
                let _ = sender.send(Err(Status::failed_precondition(lost.to_string()))).await;
                return;
            }
        };
        let count = since.batches.len();
        let mut behind: u64 = since.batches.iter().map(|b| b.items.len() as u64).sum();
        for batch in since.batches {
            let mut message = (*batch).clone();
            behind -= message.items.len() as u64;
            // A follower that came from another node may stand inside a batch.
            message.items.retain(|item| item.position > position);
            message.latest_position = since.position;
            message.records_behind = behind;
            position = message.through_position;
            if sender.send(Ok(message)).await.is_err() {
                return;
            }
        }
        // Entries that changed no item move the position too; a quiet feed still says it is alive.
        let through = since.position.max(position);
        if count == 0 || through > position {
            position = through;
            let progress =
                ChangeBatch { through_position: through, latest_position: since.position, ..Default::default() };
            if sender.send(Ok(progress)).await.is_err() {
                return;
            }
        }
        if tokio::time::timeout(PROGRESS_EVERY, moved.changed()).await.is_ok_and(|r| r.is_err()) {
            return;
        }
    }
}

#[tonic::async_trait]
impl ChangeFeedApi for ChangeFeedService {
    type FollowStream = std::pin::Pin<Box<dyn futures::Stream<Item = Result<ChangeBatch, Status>> + Send>>;

    async fn follow(&self, request: Request<FollowChangesRequest>) -> Result<Response<Self::FollowStream>, Status> {
        let position = request.into_inner().after_position.unwrap_or_else(|| self.feed.position());
        // Checked before the stream starts, so a follower that cannot resume hears it at once.
        self.feed.since(position).map_err(|lost| Status::failed_precondition(lost.to_string()))?;
        let (sender, receiver) = tokio::sync::mpsc::channel(64);
        tokio::spawn(push(self.feed.clone(), position, sender));
        Ok(Response::new(Box::pin(tokio_stream::wrappers::ReceiverStream::new(receiver))))
    }
}
