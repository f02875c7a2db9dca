//! openraft's state machine over a storage [`Engine`]: the entries of one apply call are applied by the
//! [`Applier`] over one [`Overlay`], each seeing the writes of those before it, and written in one
//! atomic write together with the last applied log id (in more than one when they are large); then
//! what they changed goes to the node's [`ChangeFeed`].

use std::path::PathBuf;
use std::sync::Arc;

use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{AnyError, EntryPayload, OptionalSend, RaftLogId, StorageIOError};
use prost::Message;
use tern_proto::internal::{command_outcome, Command, CommandOutcome};

use super::log_sync::LogSync;
use super::meta::{applied_state, read_error};
use super::snapshot::{self, SnapshotBuilder};
use super::types::{Entry, LogId, Outcome, SnapshotMeta, StorageError, StoredMembership, TypeConfig};
use crate::apply::Applier;
use crate::changes::ChangeFeed;
use crate::clock;
use crate::engine::{Engine, Overlay, WriteSet};
use crate::keyspace::{Family, Meta};

/// The state machine of one node.
pub struct StateMachine {
    engine: Arc<dyn Engine>,
    snapshot_dir: PathBuf,
    /// Builds and installs of snapshots, one at a time.
    snapshots: snapshot::Exclusive,
    region: String,
    applied: Option<LogId>,
    membership: StoredMembership,
    applier: Applier,
    /// Entries are applied only once they are on this node's disk.
    log: LogSync,
    /// What applied entries changed, for the cache tier.
    changes: ChangeFeed,
}

fn write_error(e: impl std::error::Error + 'static) -> StorageError {
    StorageIOError::write_state_machine(AnyError::new(&e)).into()
}

impl StateMachine {
    /// Opens the state machine over `engine`, keeping snapshots in `snapshot_dir`.
    pub fn open(
        engine: Arc<dyn Engine>,
        snapshot_dir: PathBuf,
        region: &str,
        log: LogSync,
    ) -> Result<Self, StorageError> {
        std::fs::create_dir_all(&snapshot_dir).map_err(write_error)?;
        snapshot::finish_interrupted_install(engine.as_ref(), &snapshot_dir)?;
        let (applied, membership) = applied_state(engine.latest())?;
        let applier = Applier::load(engine.latest(), region).map_err(read_error)?;
        let changes = ChangeFeed::new(applier.clock());
        Ok(StateMachine {
            engine,
            snapshot_dir,
            snapshots: snapshot::Exclusive::default(),
            region: region.to_string(),
            applied,
            membership,
            applier,
            log,
            changes,
        })
    }

    /// This node's change feed: what it applies, once written.
    pub fn change_feed(&self) -> ChangeFeed {
        self.changes.clone()
    }

    /// Reloads the in-memory view (applied id, membership, clock, tables) from the engine.
    fn load(&mut self) -> Result<(), StorageError> {
        (self.applied, self.membership) = applied_state(self.engine.latest())?;
        self.applier = Applier::load(self.engine.latest(), &self.region).map_err(read_error)?;
        Ok(())
    }

    /// Applies `entry` over `state`, the engine with the writes of the entries before it laid over.
    fn apply_entry(&mut self, state: &mut Overlay, entry: Entry) -> Result<Outcome, StorageError> {
        let log_id = *entry.get_log_id();
        let outcome = match entry.payload {
            EntryPayload::Blank => command_outcome::Outcome::None(true),
            EntryPayload::Membership(membership) => {
                self.membership = StoredMembership::new(Some(log_id), membership);
                let mut writes = WriteSet::default();
                writes.put(
                    Family::Meta,
                    Meta::Membership.key(),
                    bincode::serialize(&self.membership).map_err(write_error)?,
                );
                state.add(writes);
                command_outcome::Outcome::None(true)
            }
            EntryPayload::Normal(proposal) => {
                let command = Command::decode(proposal.0.as_slice())
                    .map_err(|e| StorageIOError::apply(log_id, AnyError::new(&e)))?;
                self.applier
                    .apply(state, log_id.index, command)
                    .map_err(|e| StorageIOError::apply(log_id, AnyError::new(&e)))?
            }
        };
        self.applied = Some(log_id);
        Ok(Outcome(CommandOutcome { outcome: Some(outcome) }.encode_to_vec()))
    }

    /// Writes what `state` holds, with the applied log id, in one atomic write (not synced: the log is
    /// durable, and a restart applies its entries past the applied id again).
    fn write_applied(&mut self, state: Overlay) -> Result<(), StorageError> {
        let mut writes = state.into_writes();
        writes.put(Family::Meta, Meta::Applied.key(), bincode::serialize(&self.applied).map_err(write_error)?);
        self.engine.write(writes, false).map_err(write_error)?;
        self.changes.publish(self.applier.take_changes(), self.applier.clock());
        Ok(())
    }
}

/// The pending writes after which an apply writes what it has so far, so that a long catch-up does
/// not hold all of its entries' writes in memory.
const APPLY_WRITE_BYTES: usize = 4 << 20;

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
        let entries: Vec<Entry> = entries.into_iter().collect();
        if let Some(last) = entries.last() {
            self.log.wait_durable(last.get_log_id().index).await?;
        }
        let started = std::time::Instant::now();
        let engine = self.engine.clone();
        let mut state = Overlay::new(engine.latest());
        let mut outcomes = Vec::new();
        for entry in entries {
            outcomes.push(self.apply_entry(&mut state, entry)?);
            if state.bytes() >= APPLY_WRITE_BYTES {
                self.write_applied(std::mem::replace(&mut state, Overlay::new(engine.latest())))?;
            }
        }
        if !outcomes.is_empty() {
            self.write_applied(state)?;
        }
        metrics::histogram!("tern_apply_batch_seconds").record(started.elapsed().as_secs_f64());
        metrics::counter!("tern_applied_entries_total").increment(outcomes.len() as u64);
        Ok(outcomes)
    }

    async fn get_snapshot_builder(&mut self) -> SnapshotBuilder {
        SnapshotBuilder::new(self.engine.clone(), self.snapshot_dir.clone(), self.snapshots.clone())
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
        snapshot::install(&self.engine, &self.snapshot_dir, &self.snapshots, meta, *snapshot).await?;
        self.load()?;
        self.changes.restart(self.applier.clock());
        tracing::info!(snapshot = %meta.snapshot_id, applied = ?self.applied, "installed snapshot");
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        snapshot::current(self.engine.as_ref(), &self.snapshot_dir).await
    }
}
