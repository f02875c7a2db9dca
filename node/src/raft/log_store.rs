//! The durable Raft log: entries and vote in the storage engine, every append synced before it is
//! acknowledged.

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;

use super::types::{Entry, LogId, NodeId, StorageError, TypeConfig};
use crate::engine::{Direction, Engine, WriteSet};
use crate::keyspace::{self, Family, RaftKey};
use openraft::storage::{LogFlushed, LogState, RaftLogReader, RaftLogStorage};
use openraft::{AnyError, OptionalSend, RaftLogId, StorageIOError, Vote};

/// The Raft log of one node.
#[derive(Clone)]
pub struct LogStore {
    engine: Arc<dyn Engine>,
}

impl LogStore {
    pub fn new(engine: Arc<dyn Engine>) -> Self {
        LogStore { engine }
    }

    fn get_meta<T: serde::de::DeserializeOwned>(&self, key: RaftKey) -> Result<Option<T>, StorageError> {
        let bytes =
            self.engine.latest().get(Family::Raft, key.key()).map_err(|e| StorageIOError::read(AnyError::new(&e)))?;
        bytes.map(|b| bincode::deserialize(&b).map_err(|e| StorageIOError::read(AnyError::new(&e)).into())).transpose()
    }

    fn put_meta<T: serde::Serialize>(&self, key: RaftKey, value: &T, sync: bool) -> Result<(), StorageError> {
        let bytes = bincode::serialize(value).map_err(|e| StorageIOError::write(AnyError::new(&e)))?;
        let mut writes = WriteSet::default();
        writes.put(Family::Raft, key.key(), bytes);
        self.engine.write(writes, sync).map_err(|e| StorageIOError::write(AnyError::new(&e)).into())
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        let start = match range.start_bound() {
            Bound::Included(&i) => i,
            Bound::Excluded(&i) => i + 1,
            Bound::Unbounded => 0,
        };
        let end = match range.end_bound() {
            Bound::Included(&i) => i.checked_add(1).map(keyspace::log_key),
            Bound::Excluded(&i) => Some(keyspace::log_key(i)),
            Bound::Unbounded => None,
        };
        let mut entries = Vec::new();
        let scan = self.engine.latest().scan(
            Family::Log,
            &keyspace::log_key(start),
            end.as_ref().map(|e| &e[..]),
            Direction::Forward,
        );
        for item in scan {
            let (key, value) = item.map_err(|e| StorageIOError::read_logs(AnyError::new(&e)))?;
            let index = keyspace::log_index(&key).expect("log keys are 8 bytes");
            if !range.contains(&index) {
                break;
            }
            entries.push(bincode::deserialize(&value).map_err(|e| StorageIOError::read_logs(AnyError::new(&e)))?);
        }
        Ok(entries)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let last_purged_log_id: Option<LogId> = self.get_meta(RaftKey::LastPurged)?;
        let last = self.engine.latest().first(Family::Log, &[], None, Direction::Reverse);
        let last_log_id = match last.map_err(|e| StorageIOError::read_logs(AnyError::new(&e)))? {
            Some((_, value)) => {
                let entry: Entry =
                    bincode::deserialize(&value).map_err(|e| StorageIOError::read_logs(AnyError::new(&e)))?;
                Some(*entry.get_log_id())
            }
            None => last_purged_log_id,
        };
        Ok(LogState { last_purged_log_id, last_log_id })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError> {
        self.put_meta(RaftKey::Vote, vote, true)
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError> {
        self.get_meta(RaftKey::Vote)
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        // Not synced: after a crash openraft learns the committed index again from the leader.
        metrics::gauge!("tern_raft_committed_index").set(committed.map_or(0, |id| id.index) as f64);
        self.put_meta(RaftKey::Committed, &committed, false)
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        Ok(self.get_meta::<Option<LogId>>(RaftKey::Committed)?.flatten())
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut writes = WriteSet::default();
        for entry in entries {
            let bytes = bincode::serialize(&entry).map_err(|e| StorageIOError::write_logs(AnyError::new(&e)))?;
            writes.put(Family::Log, keyspace::log_key(entry.get_log_id().index), bytes);
        }
        let result = self.engine.write(writes, true);
        let io_result = result.as_ref().map(|_| ()).map_err(|e| std::io::Error::other(e.to_string()));
        callback.log_io_completed(io_result);
        result.map_err(|e| StorageIOError::write_logs(AnyError::new(&e)).into())
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let mut writes = WriteSet::default();
        writes.delete_range(Family::Log, keyspace::log_key(log_id.index), keyspace::log_key(u64::MAX));
        writes.delete(Family::Log, keyspace::log_key(u64::MAX));
        self.engine.write(writes, true).map_err(|e| StorageIOError::write_logs(AnyError::new(&e)).into())
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let bytes = bincode::serialize(&log_id).map_err(|e| StorageIOError::write_logs(AnyError::new(&e)))?;
        let mut writes = WriteSet::default();
        writes.put(Family::Raft, RaftKey::LastPurged.key(), bytes);
        writes.delete_range(Family::Log, keyspace::log_key(0), keyspace::log_key(log_id.index + 1));
        self.engine.write(writes, true).map_err(|e| StorageIOError::write_logs(AnyError::new(&e)).into())
    }
}
