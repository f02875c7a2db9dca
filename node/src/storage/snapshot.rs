//! State-machine snapshots: a consistent RocksDB view written to a file, sent to lagging or new nodes
//! in chunks by openraft, and installed in one write batch.
//!
//! File format: the magic `TERNSNAP1`, then records `[column family: u8][key length: u32][key]
//! [value length: u32][value]` for every key of the snapshot's column families.

use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use openraft::storage::{RaftSnapshotBuilder, Snapshot};
use openraft::{AnyError, StorageIOError};
use rocksdb::{WriteBatch, WriteOptions, DB};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncSeekExt, AsyncWriteExt};

use super::db::{cf, CF_RAFT, CF_SM_META, SNAPSHOT_CFS};
use super::state_machine::{APPLIED, MEMBERSHIP};
use crate::clock;
use crate::raft::types::{LogId, SnapshotMeta, StorageError, StoredMembership, TypeConfig};

const MAGIC: &[u8] = b"TERNSNAP1";
const CURRENT: &[u8] = b"current_snapshot";

/// Which snapshot is current, and its file.
#[derive(Serialize, Deserialize)]
struct CurrentSnapshot {
    meta: SnapshotMeta,
    file: String,
}

fn snapshot_error(e: impl std::error::Error + 'static) -> StorageError {
    StorageIOError::write_snapshot(None, AnyError::new(&e)).into()
}

/// Builds snapshots from a consistent view of the database.
pub struct SnapshotBuilder {
    db: Arc<DB>,
    dir: PathBuf,
}

impl SnapshotBuilder {
    pub fn new(db: Arc<DB>, dir: PathBuf) -> Self {
        SnapshotBuilder { db, dir }
    }
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        let (db, dir) = (self.db.clone(), self.dir.clone());
        let (meta, path) =
            tokio::task::spawn_blocking(move || write_snapshot(&db, &dir)).await.map_err(snapshot_error)??;
        make_current(&self.db, &self.dir, &meta, &path)?;
        tracing::info!(snapshot = %meta.snapshot_id, "built snapshot");
        let file = tokio::fs::File::open(&path).await.map_err(snapshot_error)?;
        Ok(Snapshot { meta, snapshot: Box::new(file) })
    }
}

fn write_snapshot(db: &DB, dir: &Path) -> Result<(SnapshotMeta, PathBuf), StorageError> {
    let view = db.snapshot();
    let read = |key: &[u8]| view.get_cf(cf(db, CF_SM_META), key).map_err(snapshot_error);
    let applied: Option<LogId> =
        read(APPLIED)?.map(|b| bincode::deserialize(&b)).transpose().map_err(snapshot_error)?.flatten();
    let membership: StoredMembership =
        read(MEMBERSHIP)?.map(|b| bincode::deserialize(&b)).transpose().map_err(snapshot_error)?.unwrap_or_default();
    let snapshot_id = match applied {
        Some(id) => format!("{}-{}-{}", id.leader_id.term, id.index, clock::now_micros()),
        None => format!("0-0-{}", clock::now_micros()),
    };
    let path = dir.join(format!("{snapshot_id}.snap"));
    let partial = dir.join(format!("{snapshot_id}.snap.partial"));
    let file = std::fs::File::create(&partial).map_err(snapshot_error)?;
    let mut out = BufWriter::new(file);
    out.write_all(MAGIC).map_err(snapshot_error)?;
    for (family, name) in SNAPSHOT_CFS.iter().enumerate() {
        for item in view.iterator_cf(cf(db, name), rocksdb::IteratorMode::Start) {
            let (key, value) = item.map_err(snapshot_error)?;
            out.write_all(&[family as u8]).map_err(snapshot_error)?;
            for part in [&key, &value] {
                out.write_all(&(part.len() as u32).to_be_bytes()).map_err(snapshot_error)?;
                out.write_all(part).map_err(snapshot_error)?;
            }
        }
    }
    let file = out.into_inner().map_err(|e| snapshot_error(e.into_error()))?;
    file.sync_all().map_err(snapshot_error)?;
    std::fs::rename(&partial, &path).map_err(snapshot_error)?;
    Ok((SnapshotMeta { last_log_id: applied, last_membership: membership, snapshot_id }, path))
}

/// Records `meta` as the current snapshot and removes every other snapshot file.
fn make_current(db: &DB, dir: &Path, meta: &SnapshotMeta, path: &Path) -> Result<(), StorageError> {
    let file = path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
    let current = CurrentSnapshot { meta: meta.clone(), file: file.clone() };
    let mut options = WriteOptions::default();
    options.set_sync(true);
    let mut batch = WriteBatch::default();
    batch.put_cf(cf(db, CF_RAFT), CURRENT, bincode::serialize(&current).map_err(snapshot_error)?);
    db.write_opt(batch, &options).map_err(snapshot_error)?;
    for entry in std::fs::read_dir(dir).map_err(snapshot_error)?.flatten() {
        if entry.file_name().to_string_lossy() != file {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    Ok(())
}

/// The current snapshot, if one was built or installed.
pub async fn current(db: &DB, dir: &Path) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
    let Some(bytes) = db.get_cf(cf(db, CF_RAFT), CURRENT).map_err(snapshot_error)? else {
        return Ok(None);
    };
    let current: CurrentSnapshot = bincode::deserialize(&bytes).map_err(snapshot_error)?;
    let file = tokio::fs::File::open(dir.join(&current.file)).await.map_err(snapshot_error)?;
    Ok(Some(Snapshot { meta: current.meta, snapshot: Box::new(file) }))
}

/// Replaces the state machine's data with a received snapshot, atomically, and keeps the snapshot
/// as this node's current one.
pub async fn install(
    db: &Arc<DB>,
    dir: &Path,
    meta: &SnapshotMeta,
    mut received: tokio::fs::File,
) -> Result<(), StorageError> {
    let path = dir.join(format!("{}.snap", meta.snapshot_id));
    received.flush().await.map_err(snapshot_error)?;
    received.seek(std::io::SeekFrom::Start(0)).await.map_err(snapshot_error)?;
    let mut copy = tokio::fs::File::create(&path).await.map_err(snapshot_error)?;
    tokio::io::copy(&mut received, &mut copy).await.map_err(snapshot_error)?;
    copy.sync_all().await.map_err(snapshot_error)?;
    drop(copy);
    let (db_for_load, path_for_load) = (db.clone(), path.clone());
    tokio::task::spawn_blocking(move || load(&db_for_load, &path_for_load)).await.map_err(snapshot_error)??;
    make_current(db, dir, meta, &path)
}

fn load(db: &DB, path: &Path) -> Result<(), StorageError> {
    let invalid = || snapshot_error(std::io::Error::new(std::io::ErrorKind::InvalidData, "malformed snapshot file"));
    let mut input = BufReader::new(std::fs::File::open(path).map_err(snapshot_error)?);
    let mut magic = [0u8; MAGIC.len()];
    input.read_exact(&mut magic).map_err(snapshot_error)?;
    if magic != MAGIC {
        return Err(invalid());
    }
    let mut batch = WriteBatch::default();
    for name in SNAPSHOT_CFS {
        batch.delete_range_cf(cf(db, name), &[][..], &[0xFFu8; 64][..]);
    }
    let mut family = [0u8; 1];
    loop {
        match input.read_exact(&mut family) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(e) => return Err(snapshot_error(e)),
        }
        let name = SNAPSHOT_CFS.get(family[0] as usize).ok_or_else(invalid)?;
        let mut parts = [Vec::new(), Vec::new()];
        for part in &mut parts {
            let mut len = [0u8; 4];
            input.read_exact(&mut len).map_err(snapshot_error)?;
            part.resize(u32::from_be_bytes(len) as usize, 0);
            input.read_exact(part).map_err(snapshot_error)?;
        }
        batch.put_cf(cf(db, name), &parts[0], &parts[1]);
    }
    let mut options = WriteOptions::default();
    options.set_sync(true);
    db.write_opt(batch, &options).map_err(snapshot_error)
}
