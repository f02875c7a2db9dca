//! The apply path: every replica runs [`Applier::apply`] for every entry, in log order, so it reads
//! only replicated state and the entry itself. It assigns the entry's timestamp (the region's hybrid
//! logical clock), dispatches the command to the concern that owns it, and commits item changes
//! through [`commit::commit`], which calls each concern's hook. It knows the engine only as a
//! [`ReadView`] and a [`WriteSet`], so it runs the same over RocksDB and in memory.
//!
//! Who commits: `apply`'s own handlers (items, transactions) commit their writes; the other
//! concerns' handlers (`ttl`'s expiries, `global`'s replicated writes) return the writes they
//! decided and the dispatch commits them, so `commit` is never called from a concern it calls back.

pub mod commit;
pub mod entry;

pub use entry::clock;
pub mod items;
pub mod session;
pub mod tables;
pub mod transaction;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};

use prost::Message;
use tern_proto::internal::{
    command, command_outcome, Command, CommandError, CommandOutcome, CommandOutcomes, StoredTable,
};
use tern_proto::v1::ItemVersion;
use tern_proto::ApiError;

use self::commit::commit;
use self::entry::{Applied, ApplyError, Entry, MAX_BATCH_COMMANDS};
use crate::changes::Changes;
use crate::engine::{self, Direction, Overlay, ReadView, StorageError, WriteSet};
use crate::keyspace::{self, Family, Meta};
use crate::{backup, global, stream, transfer, ttl};

/// The engine-independent part of a node's state machine: the clock and the table definitions.
pub struct Applier {
    region: String,
    /// The last write timestamp assigned (hybrid logical clock, microseconds).
    clock: u64,
    tables: BTreeMap<String, StoredTable>,
    /// The tables the entry being applied changed: written once, after it.
    changed_tables: BTreeSet<String>,
    /// What the entries applied since the last [`Applier::take_changes`] changed.
    changes: Changes,
}

/// The error for a refused command, as its outcome.
pub fn error_outcome(e: ApiError) -> command_outcome::Outcome {
    command_outcome::Outcome::Error(CommandError {
        error_type: e.kind.name().to_string(),
        message: e.message,
        details: e.details.map(|d| *d),
    })
}

impl Applier {
    /// The applier of a node in `region`, over the state `view` holds.
    pub fn load(view: &dyn ReadView, region: &str) -> Result<Applier, StorageError> {
        let mut tables = BTreeMap::new();
        for entry in view.scan(Family::Tables, &[], None, Direction::Forward) {
            let (name, value) = entry?;
            tables.insert(String::from_utf8_lossy(&name).into_owned(), engine::decode("table", &value)?);
        }
        Ok(Applier {
            region: region.to_string(),
            clock: clock(view)?,
            tables,
            changed_tables: BTreeSet::new(),
            changes: Changes::default(),
        })
    }

    /// What the entries applied since the last call changed (for the change feed, once written).
    pub fn take_changes(&mut self) -> Changes {
        std::mem::take(&mut self.changes)
    }

    /// The last timestamp assigned.
    pub fn clock(&self) -> u64 {
        self.clock
    }

    /// Applies the command of the entry at `index` over `state` (the engine with the writes of the
    /// entries before it laid over), adding its writes to `state`. A refused command's outcome is its
    /// error; a storage failure stops the apply. A batch applies its commands in order, each with its
    /// own timestamp, session and outcome, each seeing the writes of those before it.
    pub fn apply(
        &mut self,
        state: &mut Overlay,
        index: u64,
        command: Command,
    ) -> Result<command_outcome::Outcome, StorageError> {
        let mut records = 0;
        self.changed_tables.clear();
        let outcome = match command.op {
            Some(command::Op::Batch(batch)) if batch.commands.len() > MAX_BATCH_COMMANDS => {
                // More than a proposer makes: its stream records could overflow the entry's positions.
                let refusal = ApiError::internal(format!("a batch of more than {MAX_BATCH_COMMANDS} commands"));
                let refused = CommandOutcome { outcome: Some(error_outcome(refusal)) };
                command_outcome::Outcome::Batch(CommandOutcomes { outcomes: vec![refused; batch.commands.len()] })
            }
            Some(command::Op::Batch(batch)) => {
                let mut outcomes = Vec::with_capacity(batch.commands.len());
                for command in batch.commands {
                    let outcome = self.apply_one(state, index, command, &mut records)?;
                    outcomes.push(CommandOutcome { outcome: Some(outcome) });
                }
                command_outcome::Outcome::Batch(CommandOutcomes { outcomes })
            }
            _ => self.apply_one(state, index, command, &mut records)?,
        };
        // Each changed table's definition once (a table deleted in the entry wrote its own delete).
        let mut writes = WriteSet::default();
        for name in std::mem::take(&mut self.changed_tables) {
            if let Some(stored) = self.tables.get(&name) {
                writes.put(Family::Tables, keyspace::table_key(&name), stored.encode_to_vec());
            }
        }
        state.add(writes);
        Ok(outcome)
    }

    /// Applies one command; `records` counts the entry's stream records so far.
    fn apply_one(
        &mut self,
        state: &mut Overlay,
        index: u64,
        command: Command,
        records: &mut u16,
    ) -> Result<command_outcome::Outcome, StorageError> {
        let mut writes = WriteSet::default();
        let outcome = self.decide(&*state, &mut writes, index, command, records);
        state.add(writes);
        outcome
    }

    /// Decides one command against `view`, adding its writes to `writes`.
    fn decide(
        &mut self,
        view: &dyn ReadView,
        writes: &mut WriteSet,
        index: u64,
        command: Command,
        records: &mut u16,
    ) -> Result<command_outcome::Outcome, StorageError> {
        // Strictly rising in log order on every replica, whatever the proposers' clocks did.
        self.clock = command.proposed_at_micros.max(self.clock + 1);
        writes.put(Family::Meta, Meta::Clock.key(), keyspace::encode_u64(self.clock));
        // Causality: a replicated write raises the clock to at least its timestamp, so a local write
        // made after it always wins over it.
        let replicated = match &command.op {
            Some(command::Op::ApplyReplicated(r)) => {
                r.changes.iter().filter_map(|c| c.version.as_ref()).map(|v| v.write_timestamp_micros).max()
            }
            _ => None,
        };
        let session = command.session.clone().filter(|s| !s.id.is_empty());
        if let Some(call) = &session {
            if let Some(first) = session::admit(view, writes, call, self.clock)? {
                metrics::counter!("tern_session_retries_answered_total").increment(1);
                return Ok(first);
            }
        }
        let mut entry = Entry {
            view,
            writes,
            tables: &mut self.tables,
            changed_tables: &mut self.changed_tables,
            region: &self.region,
            index,
            timestamp: self.clock,
            identity: command.identity.clone(),
            records: *records,
            changes: &mut self.changes,
        };
        let outcome = execute(&mut entry, command);
        *records = entry.records;
        let outcome = match outcome {
            Ok(outcome) => outcome,
            Err(ApplyError::Refused(refusal)) => error_outcome(refusal),
            Err(ApplyError::Storage(failure)) => return Err(failure),
        };
        if let Some(session) = &session {
            session::remember(writes, session, &outcome, self.clock);
        }
        if let Some(timestamp) = replicated {
            self.clock = self.clock.max(timestamp);
            writes.put(Family::Meta, Meta::Clock.key(), keyspace::encode_u64(self.clock));
        }
        Ok(outcome)
    }
}

/// Runs a command: the one dispatch from a command to the concern that applies it.
fn execute(entry: &mut Entry, command: Command) -> Applied<command_outcome::Outcome> {
    use command_outcome::Outcome;
    let origin = if command.origin_region.is_empty() { entry.region.to_string() } else { command.origin_region };
    let version = ItemVersion { write_timestamp_micros: entry.timestamp, origin_region: origin };
    // An entry whose operation this build does not know (written by a newer build: prost skips the
    // unknown field) stops this node applying, rather than letting it skip writes its peers apply.
    let Some(op) = command.op else {
        let why = "a command with no operation this build knows (written by a newer build?)".to_string();
        return Err(StorageError::Corrupt { what: "command", why }.into());
    };
    // A follower of the change feed drops what it holds of a table that is created, deleted or changed
    // (the cache's `TableInfo`: key schema and TTL). A new command that changes either belongs here.
    // Item changes reach the feed through `commit`, the one way an item is written.
    let table = match &op {
        command::Op::CreateTable(r) => Some(r.table_name.clone()),
        command::Op::DeleteTable(r) => Some(r.table_name.clone()),
        command::Op::UpdateTable(r) => Some(r.table_name.clone()),
        command::Op::UpdateTimeToLive(r) => Some(r.table_name.clone()),
        command::Op::SetReplicas(r) => Some(r.table_name.clone()),
        command::Op::RestoreTable(r) => r.table.as_ref().map(|t| t.table_name.clone()),
        command::Op::ImportTable(r) => r.restore.as_ref().and_then(|x| x.table.as_ref()).map(|t| t.table_name.clone()),
        command::Op::RestoreDone(r) => Some(r.table_name.clone()),
        _ => None,
    };
    if let Some(table) = table {
        entry.changes.tables.push(table);
    }
    Ok(match op {
        command::Op::CreateTable(r) => Outcome::CreateTable(tables::create_table(entry, r)?),
        command::Op::DeleteTable(r) => {
            // A table deleted with PITR on leaves a system backup of its log.
            backup::apply::refuse_if_backing_up(entry, &r.table_name)?;
            let stored = entry.tables.get(&r.table_name).cloned();
            let response = tables::delete_table(entry, r)?;
            if let Some(stored) = stored {
                backup::apply::keep_deleted_table(entry, &stored);
            }
            Outcome::DeleteTable(response)
        }
        command::Op::UpdateTable(r) => Outcome::UpdateTable(tables::update_table(entry, r)?),
        command::Op::UpdateTimeToLive(r) => Outcome::UpdateTimeToLive(ttl::apply::update_time_to_live(entry, r)?),
        command::Op::ExpireItems(r) => {
            let (outcome, deletes) = ttl::apply::expire_items(entry, r, &version)?;
            for delete in &deletes {
                commit(entry, delete)?;
            }
            Outcome::ExpireItems(outcome)
        }
        command::Op::IndexExpiries(r) => Outcome::IndexExpiries(ttl::apply::index_expiries(entry, r)?),
        command::Op::PutConsumerPosition(r) => Outcome::PutConsumerPosition(stream::put_consumer_position(entry, r)?),
        command::Op::PutItem(r) => Outcome::PutItem(items::put_item(entry, r, version)?),
        command::Op::DeleteItem(r) => Outcome::DeleteItem(items::delete_item(entry, r, version)?),
        command::Op::UpdateItem(r) => Outcome::UpdateItem(items::update_item(entry, r, version)?),
        command::Op::BatchWriteItem(r) => Outcome::BatchWriteItem(items::batch_write_item(entry, r, version)?),
        command::Op::TransactWriteItems(r) => transaction::transact_write_items(entry, r, version)?,
        command::Op::ApplyReplicated(r) => {
            let (outcome, winners) = global::apply::apply_replicated(entry, r)?;
            for write in &winners {
                commit(entry, write)?;
            }
            Outcome::ApplyReplicated(outcome)
        }
        command::Op::SetReplicas(r) => Outcome::SetReplicas(global::apply::set_replicas(entry, r)?),
        command::Op::SetReplicaStatus(r) => Outcome::SetReplicas(global::apply::set_replica_status(entry, r)?),
        command::Op::LockReplicaUpdate(r) => Outcome::LockReplicaUpdate(global::apply::lock_replica_update(entry, r)?),
        command::Op::PurgeTombstones(r) => Outcome::PurgeTombstones(global::apply::purge_tombstones(entry, r)?),
        command::Op::TrimStreams(r) => Outcome::TrimStreams(stream::trim(entry, r)?),
        command::Op::ForgetSessions(r) => Outcome::ForgetSessions(session::forget_sessions(entry, r)?),
        command::Op::UpdateContinuousBackups(r) => {
            Outcome::UpdateContinuousBackups(backup::apply::update_continuous_backups(entry, r)?)
        }
        command::Op::PitrProgress(r) => {
            backup::apply::pitr_progress(entry, r)?;
            Outcome::None(true)
        }
        command::Op::CreateBackup(r) => Outcome::Backup(backup::apply::create_backup(entry, r)?),
        command::Op::BackupDone(r) => Outcome::Backup(backup::apply::backup_done(entry, r)?),
        command::Op::DeleteBackup(r) => Outcome::Backup(backup::apply::delete_backup(entry, r)?),
        command::Op::RestoreTable(r) => Outcome::Restore(backup::apply::restore_table(entry, r)?),
        command::Op::RestoreItems(r) => {
            let version = backup::apply::restore_items(entry, &r)?;
            commit::commit_restored(entry, &r.table_name, &r.items, &version)?;
            if let Some(counts) = &r.import_counts {
                transfer::apply::import_progress(entry, &r.table_name, counts)?;
            }
            Outcome::Restore(backup::apply::restored(entry, &r.table_name, r.bytes_read)?)
        }
        command::Op::RestoreDone(r) => {
            // An import's table ends as a restore's does; the import records how it went.
            let import = transfer::apply::import_of(entry, &r.table_name, r.table_id);
            let ended = r.clone();
            let outcome = backup::apply::restore_done(entry, r)?;
            if let Some(import_id) = import {
                transfer::apply::import_done(entry, &import_id, &ended)?;
            }
            match outcome {
                Some(description) => Outcome::Restore(description),
                None => Outcome::None(true),
            }
        }
        command::Op::CreateExport(r) => Outcome::Export(transfer::apply::create_export(entry, r)?),
        command::Op::ExportDone(r) => Outcome::Export(transfer::apply::export_done(entry, r)?),
        command::Op::ImportTable(r) => Outcome::Import(transfer::apply::import_table(entry, r)?),
        command::Op::Batch(_) => return Err(ApiError::internal("a batch within a batch").into()),
    })
}
