//! The durable Raft log: entries and vote in RocksDB, every append synced before it is acknowledged.

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;

use openraft::storage::{LogFlushed, LogState, RaftLogReader, RaftLogStorage};
use openraft::{AnyError, OptionalSend, RaftLogId, StorageIOError, Vote};
use rocksdb::{WriteBatch, WriteOptions, DB};

use super::db::{cf, CF_LOG, CF_RAFT};
use crate::raft::types::{Entry, LogId, NodeId, StorageError, TypeConfig};

const VOTE: &[u8] = b"vote";
const COMMITTED: &[u8] = b"committed";
const LAST_PURGED: &[u8] = b"last_purged";

/// The Raft log of one node.
#[derive(Clone)]
pub struct LogStore {
    db: Arc<DB>,
}

fn index_key(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}

fn synced() -> WriteOptions {
    let mut options = WriteOptions::default();
    options.set_sync(true);
    options
}

impl LogStore {
    pub fn new(db: Arc<DB>) -> Self {
        LogStore { db }
    }

    fn get_meta<T: serde::de::DeserializeOwned>(&self, key: &[u8]) -> Result<Option<T>, StorageError> {
        let bytes = self.db.get_cf(cf(&self.db, CF_RAFT), key).map_err(|e| StorageIOError::read(AnyError::new(&e)))?;
        bytes.map(|b| bincode::deserialize(&b).map_err(|e| StorageIOError::read(AnyError::new(&e)).into())).transpose()
    }

    fn put_meta<T: serde::Serialize>(&self, key: &[u8], value: &T, sync: bool) -> Result<(), StorageError> {
        let bytes = bincode::serialize(value).map_err(|e| StorageIOError::write(AnyError::new(&e)))?;
        let mut batch = WriteBatch::default();
        batch.put_cf(cf(&self.db, CF_RAFT), key, bytes);
        let options = if sync { synced() } else { WriteOptions::default() };
        self.db.write_opt(batch, &options).map_err(|e| StorageIOError::write(AnyError::new(&e)).into())
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
        let mut entries = Vec::new();
        let mode = rocksdb::IteratorMode::From(&index_key(start), rocksdb::Direction::Forward);
        for item in self.db.iterator_cf(cf(&self.db, CF_LOG), mode) {
            let (key, value) = item.map_err(|e| StorageIOError::read_logs(AnyError::new(&e)))?;
            let index = u64::from_be_bytes(key.as_ref().try_into().expect("log keys are 8 bytes"));
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
        let last_purged_log_id: Option<LogId> = self.get_meta(LAST_PURGED)?;
        let last = self.db.iterator_cf(cf(&self.db, CF_LOG), rocksdb::IteratorMode::End).next();
        let last_log_id = match last {
            Some(item) => {
                let (_, value) = item.map_err(|e| StorageIOError::read_logs(AnyError::new(&e)))?;
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
        self.put_meta(VOTE, vote, true)
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError> {
        self.get_meta(VOTE)
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        // Not synced: after a crash openraft learns the committed index again from the leader.
        metrics::gauge!("tern_raft_committed_index").set(committed.map_or(0, |id| id.index) as f64);
        self.put_meta(COMMITTED, &committed, false)
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        Ok(self.get_meta::<Option<LogId>>(COMMITTED)?.flatten())
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let log = cf(&self.db, CF_LOG);
        let mut batch = WriteBatch::default();
        for entry in entries {
            let bytes = bincode::serialize(&entry).map_err(|e| StorageIOError::write_logs(AnyError::new(&e)))?;
            batch.put_cf(log, index_key(entry.get_log_id().index), bytes);
        }
        let result = self.db.write_opt(batch, &synced());
        let io_result = result.as_ref().map(|_| ()).map_err(|e| std::io::Error::other(e.to_string()));
        callback.log_io_completed(io_result);
        result.map_err(|e| StorageIOError::write_logs(AnyError::new(&e)).into())
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let mut batch = WriteBatch::default();
        batch.delete_range_cf(cf(&self.db, CF_LOG), index_key(log_id.index), index_key(u64::MAX));
        batch.delete_cf(cf(&self.db, CF_LOG), index_key(u64::MAX));
        self.db.write_opt(batch, &synced()).map_err(|e| StorageIOError::write_logs(AnyError::new(&e)).into())
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let bytes = bincode::serialize(&log_id).map_err(|e| StorageIOError::write_logs(AnyError::new(&e)))?;
        let mut batch = WriteBatch::default();
        batch.put_cf(cf(&self.db, CF_RAFT), LAST_PURGED, bytes);
        batch.delete_range_cf(cf(&self.db, CF_LOG), index_key(0), index_key(log_id.index + 1));
        self.db.write_opt(batch, &synced()).map_err(|e| StorageIOError::write_logs(AnyError::new(&e)).into())
    }
}
