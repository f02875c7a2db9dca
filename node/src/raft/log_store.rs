//! The durable Raft log: entries and vote in the storage engine. Appends are written at once and synced
//! by [`LogSync`]'s thread; a follower's append is reported flushed after its sync, the leader's own at once
//! (see [`super::log_sync`] for what keeps that safe).

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;

use super::log_sync::LogSync;
use super::types::{Entry, LogId, NodeId, StorageError, TypeConfig};
use crate::engine::{Direction, Engine, WriteSet};
use crate::keyspace::{self, Family, RaftKey};
use openraft::entry::RaftPayload;
use openraft::storage::{LogFlushed, LogState, RaftLogReader, RaftLogStorage};
use openraft::{AnyError, OptionalSend, RaftLogId, StorageIOError, Vote};

/// The Raft log of one node.
#[derive(Clone)]
pub struct LogStore {
    engine: Arc<dyn Engine>,
    id: NodeId,
    /// The vote last saved.
    vote: Option<Vote<NodeId>>,
    sync: LogSync,
}

impl LogStore {
    /// Opens the log of node `id` in `engine`, making whatever of it a crash left unsynced durable.
    ///
    /// A node that led before it stopped does not lead again in the same term: its vote is stored back as
    /// a candidate's. It reported entries flushed before their sync (see [`super::log_sync`]), so a
    /// power loss may have taken entries its followers hold; leading on in the same term, it would give
    /// new entries the lost ones' ids, which followers would take for the ones they have. A new term
    /// (an election, as etcd holds on restart) gives new ids.
    pub fn open(engine: Arc<dyn Engine>, id: NodeId) -> Result<Self, StorageError> {
        engine.flush().map_err(|e| StorageIOError::write_logs(AnyError::new(&e)))?;
        let last = last_log_id(engine.as_ref())?;
        let mut vote: Option<Vote<NodeId>> = read_meta(engine.as_ref(), RaftKey::Vote)?;
        if let Some(led) = vote.filter(|v| v.is_committed() && v.leader_id().voted_for() == Some(id)) {
            let candidate = Vote::new(led.leader_id().get_term(), id);
            write_meta(engine.as_ref(), RaftKey::Vote, &candidate, true)?;
            tracing::info!(term = led.leader_id().get_term(), "led before stopping: standing for election again");
            vote = Some(candidate);
        }
        let sync = LogSync::start(engine.clone(), last).map_err(|e| StorageIOError::write_logs(AnyError::new(&e)))?;
        Ok(LogStore { engine, id, vote, sync })
    }

    /// How far the log is on disk: the state machine waits for it, the network clamps commits to it.
    pub fn log_sync(&self) -> LogSync {
        self.sync.clone()
    }

    fn get_meta<T: serde::de::DeserializeOwned>(&self, key: RaftKey) -> Result<Option<T>, StorageError> {
        read_meta(self.engine.as_ref(), key)
    }

    fn put_meta<T: serde::Serialize>(&self, key: RaftKey, value: &T, sync: bool) -> Result<(), StorageError> {
        write_meta(self.engine.as_ref(), key, value, sync)
    }
}

fn write_meta<T: serde::Serialize>(
    engine: &dyn Engine,
    key: RaftKey,
    value: &T,
    sync: bool,
) -> Result<(), StorageError> {
    let bytes = bincode::serialize(value).map_err(|e| StorageIOError::write(AnyError::new(&e)))?;
    let mut writes = WriteSet::default();
    writes.put(Family::Raft, key.key(), bytes);
    engine.write(writes, sync).map_err(|e| StorageIOError::write(AnyError::new(&e)).into())
}

fn read_meta<T: serde::de::DeserializeOwned>(engine: &dyn Engine, key: RaftKey) -> Result<Option<T>, StorageError> {
    let bytes = engine.latest().get(Family::Raft, key.key()).map_err(|e| StorageIOError::read(AnyError::new(&e)))?;
    bytes.map(|b| bincode::deserialize(&b).map_err(|e| StorageIOError::read(AnyError::new(&e)).into())).transpose()
}

/// Whether node `id`, holding `vote`, appends `entries` as their leader: its vote is a committed vote
/// for itself and every entry carries that leader's id. Only that leader makes entries with its id, and
/// a follower receives a leader's entries only after taking the leader's vote, which is not its own.
/// Membership changes are never early (see [`super::log_sync`]).
pub(crate) fn appended_as_leader(id: NodeId, vote: Option<&Vote<NodeId>>, entries: &[Entry]) -> bool {
    let Some(vote) = vote.filter(|v| v.is_committed() && v.leader_id().voted_for() == Some(id)) else {
        return false;
    };
    entries.iter().all(|e| e.get_log_id().leader_id == *vote.leader_id() && e.get_membership().is_none())
}

fn decode_entry(bytes: &[u8]) -> Result<Entry, StorageError> {
    bincode::deserialize(bytes).map_err(|e| StorageIOError::read_logs(AnyError::new(&e)).into())
}

/// The id of the log's last entry, or of the last purged one if none is left.
fn last_log_id(engine: &dyn Engine) -> Result<Option<LogId>, StorageError> {
    let last = engine.latest().first(Family::Log, &[], None, Direction::Reverse);
    match last.map_err(|e| StorageIOError::read_logs(AnyError::new(&e)))? {
        Some((_, value)) => Ok(Some(*decode_entry(&value)?.get_log_id())),
        None => read_meta(engine, RaftKey::LastPurged),
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
            entries.push(decode_entry(&value)?);
        }
        Ok(entries)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let last_purged_log_id: Option<LogId> = self.get_meta(RaftKey::LastPurged)?;
        let last_log_id = last_log_id(self.engine.as_ref())?;
        Ok(LogState { last_purged_log_id, last_log_id })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError> {
        // Synced: the WAL sync also makes every log entry written before it durable. A leader that
        // steps down answers its new leader from its log, early entries included, only after this.
        self.put_meta(RaftKey::Vote, vote, true)?;
        self.sync.synced();
        self.vote = Some(*vote);
        Ok(())
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
        let entries: Vec<Entry> = entries.into_iter().collect();
        let Some(last) = entries.last().map(|e| *e.get_log_id()) else {
            callback.log_io_completed(Ok(()));
            return Ok(());
        };
        let mut writes = WriteSet::default();
        for entry in &entries {
            let bytes = bincode::serialize(entry).map_err(|e| StorageIOError::write_logs(AnyError::new(&e)))?;
            writes.put(Family::Log, keyspace::log_key(entry.get_log_id().index), bytes);
        }
        if let Err(e) = self.engine.write(writes, false) {
            callback.log_io_completed(Err(std::io::Error::other(e.to_string())));
            return Err(StorageIOError::write_logs(AnyError::new(&e)).into());
        }
        if appended_as_leader(self.id, self.vote.as_ref(), &entries) {
            self.sync.written(last, None);
            callback.log_io_completed(Ok(()));
        } else {
            self.sync.written(last, Some(Box::new(move |synced| callback.log_io_completed(synced))));
        }
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let mut writes = WriteSet::default();
        writes.delete_range(Family::Log, keyspace::log_key(log_id.index), keyspace::log_key(u64::MAX));
        writes.delete(Family::Log, keyspace::log_key(u64::MAX));
        self.engine.write(writes, true).map_err(|e| StorageIOError::write_logs(AnyError::new(&e)))?;
        self.sync.truncated(last_log_id(self.engine.as_ref())?);
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let bytes = bincode::serialize(&log_id).map_err(|e| StorageIOError::write_logs(AnyError::new(&e)))?;
        let mut writes = WriteSet::default();
        writes.put(Family::Raft, RaftKey::LastPurged.key(), bytes);
        writes.delete_range(Family::Log, keyspace::log_key(0), keyspace::log_key(log_id.index + 1));
        self.engine.write(writes, true).map_err(|e| StorageIOError::write_logs(AnyError::new(&e)))?;
        self.sync.purged(log_id);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use openraft::testing::{blank_ent, membership_ent};
    use openraft::{CommittedLeaderId, Vote};

    use std::sync::Arc;

    use openraft::storage::RaftLogStorage;

    use super::{appended_as_leader, write_meta, LogStore};
    use crate::engine::{Engine, Memory};
    use crate::keyspace::RaftKey;
    use crate::raft::types::{Entry, TypeConfig};

    /// A leader that stops stands for election again: in its old term it could reuse the ids of
    /// entries it reported flushed early and lost, which its followers hold with other contents.
    #[tokio::test]
    async fn a_node_that_led_does_not_lead_again_in_the_same_term_after_a_restart() {
        let engine: Arc<dyn Engine> = Arc::new(Memory::new());
        write_meta(engine.as_ref(), RaftKey::Vote, &Vote::<u64>::new_committed(3, 1), true).unwrap();
        let mut restarted = LogStore::open(engine.clone(), 1).unwrap();
        let vote = restarted.read_vote().await.unwrap().unwrap();
        assert_eq!(vote, Vote::new(3, 1));
        assert!(!vote.is_committed());
        // A follower keeps its leader's committed vote.
        write_meta(engine.as_ref(), RaftKey::Vote, &Vote::<u64>::new_committed(3, 1), true).unwrap();
        let mut follower = LogStore::open(engine, 2).unwrap();
        assert_eq!(follower.read_vote().await.unwrap(), Some(Vote::new_committed(3, 1)));
    }

    fn entries(term: u64, leader: u64, indexes: std::ops::RangeInclusive<u64>) -> Vec<Entry> {
        indexes.map(|i| blank_ent::<TypeConfig>(term, leader, i)).collect()
    }

    #[test]
    fn only_a_leaders_own_entries_under_its_committed_vote_are_early() {
        let leading = Vote::new_committed(3, 1);
        assert!(appended_as_leader(1, Some(&leading), &entries(3, 1, 5..=7)));
        // A candidate's vote for itself is not yet a leader's.
        assert!(!appended_as_leader(1, Some(&Vote::new(3, 1)), &entries(3, 1, 5..=7)));
        // A follower of node 2, or node 1 under node 2's vote receiving its own older entries back.
        assert!(!appended_as_leader(1, Some(&Vote::new_committed(3, 2)), &entries(3, 2, 5..=7)));
        assert!(!appended_as_leader(1, Some(&Vote::new_committed(4, 2)), &entries(3, 1, 5..=7)));
        // Its own entries of an earlier term, and a mix.
        assert!(!appended_as_leader(1, Some(&leading), &entries(2, 1, 5..=7)));
        let mut mixed = entries(2, 1, 4..=4);
        mixed.extend(entries(3, 1, 5..=5));
        assert!(!appended_as_leader(1, Some(&leading), &mixed));
        assert!(!appended_as_leader(1, None, &entries(3, 1, 5..=7)));
        // A membership change is never early.
        let change = membership_ent::<TypeConfig>(3, 1, 8, vec![[1u64, 2, 3].into_iter().collect()]);
        assert_eq!(change.log_id.leader_id, CommittedLeaderId::new(3, 1));
        assert!(!appended_as_leader(1, Some(&leading), &[change]));
    }
}
