//! The durable state machine: tables and items live in RocksDB, and each entry is applied in one
//! write batch together with the applied log id and the clock.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{AnyError, EntryPayload, OptionalSend, RaftLogId, StorageIOError};
use prost::Message;
use rocksdb::{WriteBatch, DB};
use tern_proto::internal::{command, command_outcome, Command, CommandOutcome, StoredTable};

use super::apply::Tables;
use super::db::{cf, CF_SM_META, CF_TABLES};
use super::snapshot::{self, SnapshotBuilder};
use crate::clock;
use crate::raft::types::{Entry, LogId, Outcome, SnapshotMeta, StorageError, StoredMembership, TypeConfig};

pub(crate) const APPLIED: &[u8] = b"applied";
pub(crate) const MEMBERSHIP: &[u8] = b"membership";
pub(crate) const CLOCK: &[u8] = b"clock";

/// The state machine of one node.
pub struct StateMachine {
    db: Arc<DB>,
    snapshot_dir: PathBuf,
    region: String,
    applied: Option<LogId>,
    membership: StoredMembership,
    /// The last write timestamp assigned (hybrid logical clock, microseconds).
    clock: u64,
    tables: BTreeMap<String, StoredTable>,
}

fn read_error(e: impl std::error::Error + 'static) -> StorageError {
    StorageIOError::read_state_machine(AnyError::new(&e)).into()
}

fn write_error(e: impl std::error::Error + 'static) -> StorageError {
    StorageIOError::write_state_machine(AnyError::new(&e)).into()
}

impl StateMachine {
    /// Opens the state machine over `db`, keeping snapshots in `snapshot_dir`.
    pub fn open(db: Arc<DB>, snapshot_dir: PathBuf, region: &str) -> Result<Self, StorageError> {
        std::fs::create_dir_all(&snapshot_dir).map_err(write_error)?;
        let mut sm = StateMachine {
            db,
            snapshot_dir,
            region: region.to_string(),
            applied: None,
            membership: StoredMembership::default(),
            clock: 0,
            tables: BTreeMap::new(),
        };
        sm.load()?;
        Ok(sm)
    }

    /// Reloads the in-memory view (applied id, membership, clock, tables) from RocksDB.
    fn load(&mut self) -> Result<(), StorageError> {
        let meta = |key: &[u8]| self.db.get_cf(cf(&self.db, CF_SM_META), key).map_err(read_error);
        self.applied = meta(APPLIED)?
            .map(|b| bincode::deserialize::<Option<LogId>>(&b))
            .transpose()
            .map_err(read_error)?
            .flatten();
        self.membership =
            meta(MEMBERSHIP)?.map(|b| bincode::deserialize(&b)).transpose().map_err(read_error)?.unwrap_or_default();
        self.clock = meta(CLOCK)?.map(|b| u64::from_be_bytes(b.as_slice().try_into().unwrap_or_default())).unwrap_or(0);
        self.tables.clear();
        for item in self.db.iterator_cf(cf(&self.db, CF_TABLES), rocksdb::IteratorMode::Start) {
            let (name, value) = item.map_err(read_error)?;
            let table = StoredTable::decode(value.as_ref()).map_err(read_error)?;
            self.tables.insert(String::from_utf8_lossy(&name).into_owned(), table);
        }
        Ok(())
    }

    fn apply_entry(&mut self, entry: Entry) -> Result<Outcome, StorageError> {
        let log_id = *entry.get_log_id();
        let mut batch = WriteBatch::default();
        let meta = cf(&self.db, CF_SM_META);
        let outcome = match entry.payload {
            EntryPayload::Blank => command_outcome::Outcome::None(true),
            EntryPayload::Membership(membership) => {
                self.membership = StoredMembership::new(Some(log_id), membership);
                batch.put_cf(meta, MEMBERSHIP, bincode::serialize(&self.membership).map_err(write_error)?);
                command_outcome::Outcome::None(true)
            }
            EntryPayload::Normal(proposal) => {
                let command = Command::decode(proposal.0.as_slice())
                    .map_err(|e| StorageIOError::apply(log_id, AnyError::new(&e)))?;
                // Strictly rising in log order on every replica, whatever the proposers' clocks did.
                self.clock = command.proposed_at_micros.max(self.clock + 1);
                batch.put_cf(meta, CLOCK, self.clock.to_be_bytes());
                let identity = command.identity.clone();
                // Causality: a replicated write raises the clock to at least its timestamp, so a local
                // write made after it always wins over it.
                let replicated = match &command.op {
                    Some(command::Op::ApplyReplicated(r)) => {
                        r.changes.iter().filter_map(|c| c.version.as_ref()).map(|v| v.write_timestamp_micros).max()
                    }
                    _ => None,
                };
                let mut tables = Tables {
                    db: &self.db,
                    tables: &mut self.tables,
                    region: &self.region,
                    index: log_id.index,
                    timestamp: self.clock,
                    records: 0,
                    identity,
                };
                let outcome = tables.execute(command, log_id.index, self.clock, &mut batch);
                if let Some(timestamp) = replicated {
                    self.clock = self.clock.max(timestamp);
                    batch.put_cf(meta, CLOCK, self.clock.to_be_bytes());
                }
                outcome
            }
        };
        self.applied = Some(log_id);
        batch.put_cf(meta, APPLIED, bincode::serialize(&self.applied).map_err(write_error)?);
        self.db.write(batch).map_err(|e| StorageIOError::apply(log_id, AnyError::new(&e)))?;
        Ok(Outcome(CommandOutcome { outcome: Some(outcome) }.encode_to_vec()))
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        Ok((self.applied, self.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Outcome>, StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let started = std::time::Instant::now();
        let outcomes = entries.into_iter().map(|entry| self.apply_entry(entry)).collect::<Result<Vec<_>, _>>()?;
        metrics::histogram!("tern_apply_batch_seconds").record(started.elapsed().as_secs_f64());
        metrics::counter!("tern_applied_entries_total").increment(outcomes.len() as u64);
        Ok(outcomes)
    }

    async fn get_snapshot_builder(&mut self) -> SnapshotBuilder {
        SnapshotBuilder::new(self.db.clone(), self.snapshot_dir.clone())
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<tokio::fs::File>, StorageError> {
        let path = self.snapshot_dir.join(format!("incoming-{}.snap", clock::now_micros()));
        let file = tokio::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .await
            .map_err(write_error)?;
        Ok(Box::new(file))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<tokio::fs::File>,
    ) -> Result<(), StorageError> {
        snapshot::install(&self.db, &self.snapshot_dir, meta, *snapshot).await?;
        self.load()?;
        tracing::info!(snapshot = %meta.snapshot_id, applied = ?self.applied, "installed snapshot");
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        snapshot::current(&self.db, &self.snapshot_dir).await
    }
}
