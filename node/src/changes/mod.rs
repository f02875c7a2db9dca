//! The change feed: the item changes this node applied lately, kept in memory in log order and pushed
//! to whoever follows it (the cache tier, [`crate::cache`]). A change's position is the write timestamp
//! the apply path gave its command: strictly rising in log order and the same on every node, so a
//! follower can move from one node to another and resume where it was, while that node still holds
//! the position. What a node holds is bounded in bytes; a follower that falls behind the bound, or
//! asks a node that restarted or installed a snapshot since, starts over.

pub mod service;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use prost::Message;
use tern_proto::internal::{ChangeBatch, ChangedItem};
use tokio::sync::watch;

/// Most bytes of changes a node keeps for its followers.
pub const RETAINED_BYTES: usize = 64 << 20;

/// What some entries changed, gathered by the apply path.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Changes {
    pub items: Vec<ChangedItem>,
    /// Tables created, deleted or changed.
    pub tables: Vec<String>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.items.is_empty() && self.tables.is_empty()
    }
}

/// A follower asked for a position this node no longer holds.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the change feed no longer holds position {asked}: this node holds the changes after {horizon}")]
pub struct PositionLost {
    pub asked: u64,
    pub horizon: u64,
}

/// This node's feed; clones share it.
#[derive(Clone)]
pub struct ChangeFeed {
    inner: Arc<Inner>,
}

struct Inner {
    retained: Mutex<Retained>,
    /// The position through which this node has applied and published, for waiting followers.
    position: watch::Sender<u64>,
    max_bytes: usize,
}

struct Retained {
    batches: VecDeque<Arc<ChangeBatch>>,
    bytes: usize,
    /// Every change after this position is held.
    horizon: u64,
    position: u64,
}

/// The batches after a position, and the feed's position when they were taken.
#[derive(Debug)]
pub struct Since {
    pub batches: Vec<Arc<ChangeBatch>>,
    pub position: u64,
}

impl ChangeFeed {
    /// A feed that starts at `position` (the node's applied clock), holding [`RETAINED_BYTES`].
    pub fn new(position: u64) -> ChangeFeed {
        ChangeFeed::with_capacity(position, RETAINED_BYTES)
    }

    /// A feed holding at most about `max_bytes` of changes (always the latest batch).
    pub fn with_capacity(position: u64, max_bytes: usize) -> ChangeFeed {
        let retained = Retained { batches: VecDeque::new(), bytes: 0, horizon: position, position };
        ChangeFeed {
            inner: Arc::new(Inner {
                retained: Mutex::new(retained),
                position: watch::Sender::new(position),
                max_bytes,
            }),
        }
    }

    /// The position through which this node has applied its region's writes and published them: a
    /// read of its state now reflects every write at or before it.
    pub fn position(&self) -> u64 {
        *self.inner.position.borrow()
    }

    /// Wakes when the position moves.
    pub fn watch(&self) -> watch::Receiver<u64> {
        self.inner.position.subscribe()
    }

    /// Publishes what applied entries changed, once they are written; `position` is the clock after them.
    pub fn publish(&self, changes: Changes, position: u64) {
        let mut retained = self.inner.retained.lock().expect("change feed lock");
        let position = position.max(retained.position);
        if !changes.is_empty() {
            let batch = ChangeBatch {
                through_position: position,
                items: changes.items,
                tables: changes.tables,
                ..Default::default()
            };
            retained.bytes += batch.encoded_len();
            retained.batches.push_back(Arc::new(batch));
            while retained.bytes > self.inner.max_bytes && retained.batches.len() > 1 {
                let oldest = retained.batches.pop_front().expect("more than one batch");
                retained.bytes -= oldest.encoded_len();
                retained.horizon = oldest.through_position;
            }
        }
        retained.position = position;
        drop(retained);
        self.inner.position.send_if_modified(|current| std::mem::replace(current, position) != position);
    }

    /// Starts over at `position`: this node's state jumped there (a snapshot was installed), so what
    /// changed before it is not known here.
    pub fn restart(&self, position: u64) {
        let mut retained = self.inner.retained.lock().expect("change feed lock");
        retained.batches.clear();
        retained.bytes = 0;
        retained.horizon = position;
        retained.position = position;
        drop(retained);
        self.inner.position.send_replace(position);
    }

    /// The batches holding changes after `after`, or why they cannot be had.
    pub fn since(&self, after: u64) -> Result<Since, PositionLost> {
        let retained = self.inner.retained.lock().expect("change feed lock");
        if after < retained.horizon {
            return Err(PositionLost { asked: after, horizon: retained.horizon });
        }
        let first = retained.batches.partition_point(|b| b.through_position <= after);
        Ok(Since { batches: retained.batches.range(first..).cloned().collect(), position: retained.position })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn changed(table: &str, position: u64) -> ChangedItem {
        ChangedItem { table_name: table.into(), position, ..Default::default() }
    }

    fn positions(since: &Since) -> Vec<u64> {
        since.batches.iter().flat_map(|b| b.items.iter().map(|i| i.position)).collect()
    }

    #[test]
    fn a_follower_gets_the_changes_after_its_position_and_the_position_moves_without_changes() {
        let feed = ChangeFeed::new(10);
        feed.publish(Changes { items: vec![changed("t", 11), changed("t", 12)], tables: vec![] }, 12);
        feed.publish(Changes::default(), 15);
        feed.publish(Changes { items: vec![changed("t", 16)], tables: vec!["t".into()] }, 16);
        assert_eq!(feed.position(), 16);
        assert_eq!(positions(&feed.since(10).unwrap()), [11, 12, 16]);
        assert_eq!(positions(&feed.since(12).unwrap()), [16]);
        assert_eq!(positions(&feed.since(15).unwrap()), [16]);
        assert_eq!(feed.since(16).unwrap().batches.len(), 0);
        // A follower ahead of this node (it followed another) waits for it.
        assert_eq!(feed.since(40).unwrap().batches.len(), 0);
        assert_eq!(feed.since(9).unwrap_err(), PositionLost { asked: 9, horizon: 10 });
    }

    #[test]
    fn the_oldest_changes_go_past_the_bound_and_their_followers_start_over() {
        let one = ChangeBatch { through_position: 1, items: vec![changed("t", 1)], ..Default::default() };
        let feed = ChangeFeed::with_capacity(0, one.encoded_len() * 2);
        for position in 1..=5 {
            feed.publish(Changes { items: vec![changed("t", position)], tables: vec![] }, position);
        }
        assert_eq!(feed.since(2).unwrap_err(), PositionLost { asked: 2, horizon: 3 });
        assert_eq!(positions(&feed.since(3).unwrap()), [4, 5]);
    }

    #[test]
    fn a_restart_forgets_what_came_before() {
        let feed = ChangeFeed::new(0);
        feed.publish(Changes { items: vec![changed("t", 1)], tables: vec![] }, 1);
        feed.restart(100);
        assert_eq!(feed.since(1).unwrap_err(), PositionLost { asked: 1, horizon: 100 });
        assert_eq!(feed.position(), 100);
        assert_eq!(feed.since(100).unwrap().batches.len(), 0);
    }
}
