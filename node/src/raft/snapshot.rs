//! State-machine snapshots: a consistent view of the engine written to a file, sent to lagging or new
//! nodes in chunks by openraft, and installed in one atomic write.
//!
//! File format: the magic `TERNSNAP1`, then records `[column family: u8][key length: u32][key]
//! [value length: u32][value]` for every key of the snapshot's column families
//! ([`Family::SNAPSHOT`], numbered in that order).

use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use openraft::storage::{RaftSnapshotBuilder, Snapshot};
use openraft::{AnyError, StorageIOError};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncSeekExt, AsyncWriteExt};

use super::meta::applied_state;
use super::types::{SnapshotMeta, StorageError, TypeConfig};
use crate::clock;
use crate::engine::{Direction, Engine, WriteSet};
use crate::keyspace::{Family, RaftKey};

const MAGIC: &[u8] = b"TERNSNAP1";

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
    engine: Arc<dyn Engine>,
    dir: PathBuf,
}

impl SnapshotBuilder {
    pub fn new(engine: Arc<dyn Engine>, dir: PathBuf) -> Self {
        SnapshotBuilder { engine, dir }
    }
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        let (engine, dir) = (self.engine.clone(), self.dir.clone());
        let (meta, path) = tokio::task::spawn_blocking(move || write_snapshot(engine.as_ref(), &dir))
            .await
            .map_err(snapshot_error)??;
        if !make_current(self.engine.as_ref(), &self.dir, &meta, &path)? {
            // A newer snapshot was installed while this one was written: that one stays current.
            tracing::info!(snapshot = %meta.snapshot_id, "built snapshot superseded by an installed one");
            return current(self.engine.as_ref(), &self.dir).await?.ok_or_else(|| snapshot_error(missing()));
        }
        tracing::info!(snapshot = %meta.snapshot_id, "built snapshot");
        let file = tokio::fs::File::open(&path).await.map_err(snapshot_error)?;
        Ok(Snapshot { meta, snapshot: Box::new(file) })
    }
}

fn write_snapshot(engine: &dyn Engine, dir: &Path) -> Result<(SnapshotMeta, PathBuf), StorageError> {
    let view = engine.view();
    let (applied, membership) = applied_state(view.as_ref())?;
    let snapshot_id = match applied {
        Some(id) => format!("{}-{}-{}", id.leader_id.term, id.index, clock::now_micros()),
        None => format!("0-0-{}", clock::now_micros()),
    };
    let path = dir.join(format!("{snapshot_id}.snap"));
    let partial = dir.join(format!("{snapshot_id}.snap.partial"));
    let file = std::fs::File::create(&partial).map_err(snapshot_error)?;
    let mut out = BufWriter::new(file);
    out.write_all(MAGIC).map_err(snapshot_error)?;
    for (number, family) in Family::SNAPSHOT.into_iter().enumerate() {
        for item in view.scan(family, &[], None, Direction::Forward) {
            let (key, value) = item.map_err(snapshot_error)?;
            out.write_all(&[number as u8]).map_err(snapshot_error)?;
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

fn missing() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::NotFound, "no current snapshot")
}

/// Records `meta` as the current snapshot and removes every other snapshot file, unless the current
/// snapshot is newer (a snapshot installed while this one was built): then this one's file goes and
/// false is returned.
fn make_current(engine: &dyn Engine, dir: &Path, meta: &SnapshotMeta, path: &Path) -> Result<bool, StorageError> {
    if let Some(bytes) = engine.latest().get(Family::Raft, RaftKey::CurrentSnapshot.key()).map_err(snapshot_error)? {
        let existing: CurrentSnapshot = bincode::deserialize(&bytes).map_err(snapshot_error)?;
        if existing.meta.last_log_id > meta.last_log_id {
            let _ = std::fs::remove_file(path);
            return Ok(false);
        }
    }
    let file = path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
    // The file's name in its directory survives a crash before the pointer to it is written.
    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(snapshot_error)?;
    let current = CurrentSnapshot { meta: meta.clone(), file: file.clone() };
    let mut writes = WriteSet::default();
    writes.put(Family::Raft, RaftKey::CurrentSnapshot.key(), bincode::serialize(&current).map_err(snapshot_error)?);
    engine.write(writes, true).map_err(snapshot_error)?;
    for entry in std::fs::read_dir(dir).map_err(snapshot_error)?.flatten() {
        if entry.file_name().to_string_lossy() != file {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    Ok(true)
}

/// The current snapshot, if one was built or installed.
pub async fn current(engine: &dyn Engine, dir: &Path) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
    let Some(bytes) = engine.latest().get(Family::Raft, RaftKey::CurrentSnapshot.key()).map_err(snapshot_error)? else {
        return Ok(None);
    };
    let current: CurrentSnapshot = bincode::deserialize(&bytes).map_err(snapshot_error)?;
    let file = tokio::fs::File::open(dir.join(&current.file)).await.map_err(snapshot_error)?;
    Ok(Some(Snapshot { meta: current.meta, snapshot: Box::new(file) }))
}

/// Replaces the state machine's data with a received snapshot, atomically, and keeps the snapshot
/// as this node's current one.
pub async fn install(
    engine: &Arc<dyn Engine>,
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
    let (engine_for_load, path_for_load) = (engine.clone(), path.clone());
    tokio::task::spawn_blocking(move || load(engine_for_load.as_ref(), &path_for_load))
        .await
        .map_err(snapshot_error)??;
    make_current(engine.as_ref(), dir, meta, &path).map(|_| ())
}

fn load(engine: &dyn Engine, path: &Path) -> Result<(), StorageError> {
    let invalid = || snapshot_error(std::io::Error::new(std::io::ErrorKind::InvalidData, "malformed snapshot file"));
    let mut input = BufReader::new(std::fs::File::open(path).map_err(snapshot_error)?);
    let mut magic = [0u8; MAGIC.len()];
    input.read_exact(&mut magic).map_err(snapshot_error)?;
    if magic != MAGIC {
        return Err(invalid());
    }
    let mut writes = WriteSet::default();
    for family in Family::SNAPSHOT {
        writes.delete_range(family, [], [0xFFu8; 64]);
    }
    let mut number = [0u8; 1];
    loop {
        match input.read_exact(&mut number) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(e) => return Err(snapshot_error(e)),
        }
        let family = *Family::SNAPSHOT.get(number[0] as usize).ok_or_else(invalid)?;
        let mut parts = [Vec::new(), Vec::new()];
        for part in &mut parts {
            let mut len = [0u8; 4];
            input.read_exact(&mut len).map_err(snapshot_error)?;
            part.resize(u32::from_be_bytes(len) as usize, 0);
            input.read_exact(part).map_err(snapshot_error)?;
        }
        writes.put(family, &parts[0], &parts[1]);
    }
    engine.write(writes, true).map_err(snapshot_error)
}

#[cfg(test)]
mod tests {
    use openraft::{CommittedLeaderId, LogId};

    use super::*;
    use crate::engine::Memory;

    fn meta(index: u64) -> SnapshotMeta {
        SnapshotMeta {
            last_log_id: Some(LogId::new(CommittedLeaderId::new(1, 1), index)),
            last_membership: Default::default(),
            snapshot_id: format!("1-{index}"),
        }
    }

    #[test]
    fn a_late_build_never_replaces_a_newer_installed_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Memory::new();
        let (newer, older) = (dir.path().join("1-9.snap"), dir.path().join("1-5.snap"));
        std::fs::write(&newer, b"installed").unwrap();
        assert!(make_current(&engine, dir.path(), &meta(9), &newer).unwrap());
        std::fs::write(&older, b"built from an older view").unwrap();
        assert!(!make_current(&engine, dir.path(), &meta(5), &older).unwrap(), "the older one is refused");
        let bytes = engine.latest().get(Family::Raft, RaftKey::CurrentSnapshot.key()).unwrap().unwrap();
        let current: CurrentSnapshot = bincode::deserialize(&bytes).unwrap();
        assert_eq!((current.meta.snapshot_id.as_str(), current.file.as_str()), ("1-9", "1-9.snap"));
        assert!(newer.exists(), "the installed snapshot's file is kept");
        assert!(!older.exists(), "the superseded build's file is removed");
    }
}
