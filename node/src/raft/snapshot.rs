//! State-machine snapshots: a consistent view of the engine written to a file, sent to lagging or new
//! nodes in chunks by openraft, and installed in write batches of a bounded size behind an
//! "installing" marker, so that a restart in the middle finishes the install before the node serves.
//!
//! File format: the magic `TERNSNAP3`; the column families it holds, by name (`[count: u8]`, then each
//! `[name length: u8][name]`); then records `[family: u8][key length: u32][key][value length: u32]
//! [value]`, the family given by its place in that list; then the end `[0xFF][records: u64][xxh3 of the
//! records' bytes: u64]`, so that a file cut short (even at a record's boundary) or damaged is refused.
//! Files of the earlier formats are still read: `TERNSNAP2` (no end) and `TERNSNAP1` (no end, the
//! families numbered in [`Family::SNAPSHOT`]'s order).

use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use openraft::storage::{RaftSnapshotBuilder, Snapshot};
use openraft::{AnyError, StorageIOError};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncSeekExt, AsyncWriteExt};

use xxhash_rust::xxh3::Xxh3;

use super::meta::applied_state;
use super::types::{SnapshotMeta, StorageError, TypeConfig};
use crate::clock;
use crate::engine::{Direction, Engine, WriteSet};
use crate::keyspace::{Family, RaftKey};

const MAGIC: &[u8] = b"TERNSNAP3";
const MAGIC_UNSEALED: &[u8] = b"TERNSNAP2";
const MAGIC_NUMBERED: &[u8] = b"TERNSNAP1";
/// In place of a family number: the records are over and the end follows.
const END: u8 = 0xFF;
const _: () = assert!(Family::SNAPSHOT.len() < END as usize, "a family number would read as the end");
/// Bytes of keys and values per write batch when a snapshot is installed.
const INSTALL_BATCH_BYTES: usize = 32 * 1024 * 1024;

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
    exclusive: Exclusive,
}

/// Builds and installs of one node's snapshots, one at a time: a build never reads a half-installed
/// state machine, and neither removes the other's file.
pub type Exclusive = Arc<tokio::sync::Mutex<()>>;

impl SnapshotBuilder {
    pub fn new(engine: Arc<dyn Engine>, dir: PathBuf, exclusive: Exclusive) -> Self {
        SnapshotBuilder { engine, dir, exclusive }
    }
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        let _exclusive = self.exclusive.lock().await;
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
    out.write_all(&[Family::SNAPSHOT.len() as u8]).map_err(snapshot_error)?;
    for family in Family::SNAPSHOT {
        out.write_all(&[family.name().len() as u8]).map_err(snapshot_error)?;
        out.write_all(family.name().as_bytes()).map_err(snapshot_error)?;
    }
    let (mut count, mut hasher) = (0u64, Xxh3::new());
    for (number, family) in Family::SNAPSHOT.into_iter().enumerate() {
        for item in view.scan(family, &[], None, Direction::Forward) {
            let (key, value) = item.map_err(snapshot_error)?;
            let mut record = Vec::with_capacity(9 + key.len() + value.len());
            record.push(number as u8);
            for part in [&key, &value] {
                record.extend_from_slice(&(part.len() as u32).to_be_bytes());
                record.extend_from_slice(part);
            }
            hasher.update(&record);
            count += 1;
            out.write_all(&record).map_err(snapshot_error)?;
        }
    }
    out.write_all(&[END]).map_err(snapshot_error)?;
    out.write_all(&count.to_be_bytes()).map_err(snapshot_error)?;
    out.write_all(&hasher.digest().to_be_bytes()).map_err(snapshot_error)?;
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
    let file = file_name(path);
    // The file's name in its directory survives a crash before the pointer to it is written.
    sync_dir(dir)?;
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

/// Replaces the state machine's data with a received snapshot and keeps the snapshot as this node's
/// current one. The file is saved first; then the install, in batches behind a marker naming it.
pub async fn install(
    engine: &Arc<dyn Engine>,
    dir: &Path,
    exclusive: &Exclusive,
    meta: &SnapshotMeta,
    mut received: tokio::fs::File,
) -> Result<(), StorageError> {
    let _exclusive = exclusive.lock().await;
    let path = dir.join(format!("{}.snap", meta.snapshot_id));
    received.flush().await.map_err(snapshot_error)?;
    received.seek(std::io::SeekFrom::Start(0)).await.map_err(snapshot_error)?;
    let mut copy = tokio::fs::File::create(&path).await.map_err(snapshot_error)?;
    tokio::io::copy(&mut received, &mut copy).await.map_err(snapshot_error)?;
    copy.sync_all().await.map_err(snapshot_error)?;
    drop(copy);
    sync_dir(dir)?;
    let installing = CurrentSnapshot { meta: meta.clone(), file: file_name(&path) };
    let (engine, dir) = (engine.clone(), dir.to_path_buf());
    tokio::task::spawn_blocking(move || install_file(engine.as_ref(), &dir, &installing, INSTALL_BATCH_BYTES))
        .await
        .map_err(snapshot_error)?
}

/// Finishes an install a restart interrupted, if any: the state machine's families hold part of a
/// snapshot until it has.
pub fn finish_interrupted_install(engine: &dyn Engine, dir: &Path) -> Result<(), StorageError> {
    let Some(bytes) = engine.latest().get(Family::Raft, RaftKey::InstallingSnapshot.key()).map_err(snapshot_error)?
    else {
        return Ok(());
    };
    let installing: CurrentSnapshot = bincode::deserialize(&bytes).map_err(snapshot_error)?;
    tracing::warn!(snapshot = %installing.meta.snapshot_id, "finishing a snapshot install a restart interrupted");
    install_file(engine, dir, &installing, INSTALL_BATCH_BYTES)
}

/// Makes the directory's entries (a new or renamed file) durable.
fn sync_dir(dir: &Path) -> Result<(), StorageError> {
    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(snapshot_error)
}

fn file_name(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

/// Loads a saved snapshot file into the state machine's families, `batch_bytes` of keys and values per
/// write: the whole file is read once first (a malformed one is refused before anything is touched);
/// then the first write sets the marker and clears the families, the last removes the marker; then the
/// snapshot becomes current.
fn install_file(
    engine: &dyn Engine,
    dir: &Path,
    installing: &CurrentSnapshot,
    batch_bytes: usize,
) -> Result<(), StorageError> {
    let path = dir.join(&installing.file);
    for record in Records::open(&path)? {
        record?;
    }
    let mut writes = WriteSet::default();
    writes.put(
        Family::Raft,
        RaftKey::InstallingSnapshot.key(),
        bincode::serialize(installing).map_err(snapshot_error)?,
    );
    for family in Family::SNAPSHOT {
        writes.delete_range(family, [], [0xFFu8; 64]);
    }
    engine.write(writes, true).map_err(snapshot_error)?;
    let (mut writes, mut bytes) = (WriteSet::default(), 0);
    for record in Records::open(&path)? {
        let (family, key, value) = record?;
        bytes += key.len() + value.len();
        writes.put(family, key, value);
        if bytes >= batch_bytes {
            engine.write(std::mem::take(&mut writes), false).map_err(snapshot_error)?;
            bytes = 0;
        }
    }
    writes.delete(Family::Raft, RaftKey::InstallingSnapshot.key());
    engine.write(writes, true).map_err(snapshot_error)?;
    make_current(engine, dir, &installing.meta, &path).map(|_| ())
}

/// The records of a snapshot file, after its header: `(family, key, value)`. A file of the current
/// format yields an error, not the end, unless its end record is there and matches what was read.
struct Records {
    path: PathBuf,
    input: BufReader<std::fs::File>,
    families: Vec<Family>,
    /// Whether the file ends with the end record (the current format).
    sealed: bool,
    ended: bool,
    count: u64,
    hasher: Xxh3,
}

impl Records {
    fn open(path: &Path) -> Result<Records, StorageError> {
        let mut input = BufReader::new(std::fs::File::open(path).map_err(snapshot_error)?);
        let mut magic = [0u8; MAGIC.len()];
        input.read_exact(&mut magic).map_err(snapshot_error)?;
        let mut records = Records {
            path: path.to_path_buf(),
            input,
            families: Vec::new(),
            sealed: magic == MAGIC,
            ended: false,
            count: 0,
            hasher: Xxh3::new(),
        };
        records.families = if magic == MAGIC || magic == MAGIC_UNSEALED {
            let mut count = [0u8; 1];
            records.input.read_exact(&mut count).map_err(snapshot_error)?;
            (0..count[0]).map(|_| records.family_name()).collect::<Result<_, _>>()?
        } else if magic == MAGIC_NUMBERED {
            Family::SNAPSHOT.to_vec()
        } else {
            return Err(records.invalid("not a snapshot file".into()));
        };
        Ok(records)
    }

    fn invalid(&self, what: String) -> StorageError {
        snapshot_error(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("snapshot {}: {what}", self.path.display()),
        ))
    }

    /// A read that found the file's end too soon is a file cut short; any other failure is itself.
    fn cut_short(&self, e: std::io::Error) -> StorageError {
        match e.kind() {
            std::io::ErrorKind::UnexpectedEof => self.invalid("a record is cut short".into()),
            _ => snapshot_error(e),
        }
    }

    fn family_name(&mut self) -> Result<Family, StorageError> {
        let mut len = [0u8; 1];
        self.input.read_exact(&mut len).map_err(snapshot_error)?;
        let mut name = vec![0u8; len[0] as usize];
        self.input.read_exact(&mut name).map_err(snapshot_error)?;
        let name = String::from_utf8_lossy(&name).into_owned();
        Family::snapshot_family(&name)
            .ok_or_else(|| self.invalid(format!("column family {name:?} is not one this node keeps")))
    }

    fn record(&mut self, number: u8) -> Result<(Family, Vec<u8>, Vec<u8>), StorageError> {
        let family =
            *self.families.get(number as usize).ok_or_else(|| self.invalid(format!("family number {number}")))?;
        self.hasher.update(&[number]);
        let mut parts = [Vec::new(), Vec::new()];
        for part in &mut parts {
            let mut len = [0u8; 4];
            self.input.read_exact(&mut len).map_err(|e| self.cut_short(e))?;
            // Read through `take`, not into a buffer of the stated size: a damaged length allocates no
            // more than the file holds.
            let wanted = u32::from_be_bytes(len) as u64;
            part.reserve_exact(wanted.min(1 << 20) as usize);
            if (&mut self.input).take(wanted).read_to_end(part).map_err(snapshot_error)? as u64 != wanted {
                return Err(self.invalid("a record is cut short".into()));
            }
            self.hasher.update(&len);
            self.hasher.update(part);
        }
        self.count += 1;
        let [key, value] = parts;
        Ok((family, key, value))
    }

    /// Checks the end record against the records read, and that nothing follows it.
    fn end(&mut self) -> Result<(), StorageError> {
        let mut end = [0u8; 16];
        self.input.read_exact(&mut end).map_err(|e| self.cut_short(e))?;
        let count = u64::from_be_bytes(end[..8].try_into().expect("eight bytes"));
        let digest = u64::from_be_bytes(end[8..].try_into().expect("eight bytes"));
        if count != self.count || digest != self.hasher.digest() {
            return Err(
                self.invalid(format!("{} records read, {count} written, or their checksum differs", self.count))
            );
        }
        if self.input.read(&mut [0u8; 1]).map_err(snapshot_error)? != 0 {
            return Err(self.invalid("bytes follow its end record".into()));
        }
        Ok(())
    }
}

impl Iterator for Records {
    type Item = Result<(Family, Vec<u8>, Vec<u8>), StorageError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.ended {
            return None;
        }
        let mut number = [0u8; 1];
        let result = match self.input.read_exact(&mut number) {
            Ok(()) if self.sealed && number[0] == END => self.end().map(|()| None),
            Ok(()) => self.record(number[0]).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !self.sealed => Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                Err(self.invalid("it ends without its end record".into()))
            }
            Err(e) => Err(snapshot_error(e)),
        };
        // After the end, or an error, there is nothing more to read.
        self.ended = !matches!(result, Ok(Some(_)));
        result.transpose()
    }
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

    /// Every key of the snapshot's families.
    fn contents(engine: &dyn Engine) -> Vec<(Family, Vec<u8>, Vec<u8>)> {
        let view = engine.view();
        Family::SNAPSHOT
            .into_iter()
            .flat_map(|f| {
                view.scan(f, &[], None, Direction::Forward).map(move |e| {
                    let (k, v) = e.unwrap();
                    (f, k, v)
                })
            })
            .collect()
    }

    fn filled() -> Memory {
        let engine = Memory::new();
        let mut writes = WriteSet::default();
        for i in 0u32..500 {
            writes.put(Family::Items, i.to_be_bytes(), vec![7u8; 100]);
            writes.put(Family::Tables, format!("t{i}"), b"table");
        }
        engine.write(writes, true).unwrap();
        engine
    }

    /// A snapshot names its families, and installs in batches of a bounded size: the target's own
    /// state is gone, the source's is there, and the marker is removed at the end.
    #[test]
    fn a_snapshot_names_its_families_and_installs_in_bounded_batches() {
        let (from, to) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let source = filled();
        let (meta, path) = write_snapshot(&source, from.path()).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert!(bytes.starts_with(b"TERNSNAP3\x09\x07sm_meta\x06tables\x05items"), "{:?}", &bytes[..40]);
        let target = Memory::new();
        let mut stale = WriteSet::default();
        stale.put(Family::Items, b"only-here", b"gone after the install");
        target.write(stale, true).unwrap();
        std::fs::copy(&path, to.path().join(file_name(&path))).unwrap();
        let installing = CurrentSnapshot { meta: meta.clone(), file: file_name(&path) };
        install_file(&target, to.path(), &installing, 4096).unwrap();
        assert_eq!(contents(&target), contents(&source));
        assert!(target.latest().get(Family::Raft, RaftKey::InstallingSnapshot.key()).unwrap().is_none());
        assert!(target.latest().get(Family::Raft, RaftKey::CurrentSnapshot.key()).unwrap().is_some());
    }

    /// An install a crash cut short (the marker set, part of the data written) is finished at the next
    /// start, from the saved file.
    #[test]
    fn an_interrupted_install_is_finished_at_the_next_start() {
        let (from, to) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let source = filled();
        let (meta, path) = write_snapshot(&source, from.path()).unwrap();
        std::fs::copy(&path, to.path().join(file_name(&path))).unwrap();
        let target = Memory::new();
        let installing = CurrentSnapshot { meta, file: file_name(&path) };
        let mut partial = WriteSet::default();
        partial.put(Family::Raft, RaftKey::InstallingSnapshot.key(), bincode::serialize(&installing).unwrap());
        partial.put(Family::Items, 3u32.to_be_bytes(), b"half-written");
        target.write(partial, true).unwrap();
        finish_interrupted_install(&target, to.path()).unwrap();
        assert_eq!(contents(&target), contents(&source));
        assert!(target.latest().get(Family::Raft, RaftKey::InstallingSnapshot.key()).unwrap().is_none());
        finish_interrupted_install(&target, to.path()).unwrap(); // nothing to do now
        assert_eq!(contents(&target), contents(&source));
    }

    /// Files of the earlier formats (no end record; families numbered in the first) are still installed.
    #[test]
    fn snapshots_of_the_earlier_formats_still_install() {
        let (from, to) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let source = filled();
        let (meta, path) = write_snapshot(&source, from.path()).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let header = MAGIC.len() + 1 + Family::SNAPSHOT.iter().map(|f| 1 + f.name().len()).sum::<usize>();
        let records = &bytes[header..bytes.len() - 17];
        let unsealed = [MAGIC_UNSEALED, &bytes[MAGIC.len()..header], records].concat();
        let numbered = [MAGIC_NUMBERED, records].concat();
        for (name, file) in [("unsealed.snap", unsealed), ("numbered.snap", numbered)] {
            std::fs::write(to.path().join(name), file).unwrap();
            let target = Memory::new();
            let installing = CurrentSnapshot { meta: meta.clone(), file: name.into() };
            install_file(&target, to.path(), &installing, 1 << 20).unwrap();
            assert_eq!(contents(&target), contents(&source), "{name}");
        }
    }

    /// A file cut short at a record's boundary, or with a byte changed, is refused: its end record is
    /// missing or does not match.
    #[test]
    fn a_snapshot_cut_at_a_record_boundary_or_damaged_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (_, path) = write_snapshot(&filled(), dir.path()).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let read_all = |file: &[u8]| {
            let path = dir.path().join("other.snap");
            std::fs::write(&path, file).unwrap();
            Records::open(&path).unwrap().collect::<Result<Vec<_>, _>>().map(|r| r.len()).map_err(|e| e.to_string())
        };
        assert_eq!(read_all(&bytes), Ok(1000));
        let cut = read_all(&bytes[..bytes.len() - 17]).unwrap_err();
        assert!(cut.contains("ends without its end record"), "{cut}");
        let mut damaged = bytes.clone();
        let value = bytes.windows(100).rposition(|w| w.iter().all(|b| *b == 7)).expect("an item's value");
        damaged[value + 50] ^= 1;
        let damaged = read_all(&damaged).unwrap_err();
        assert!(damaged.contains("checksum differs"), "{damaged}");
        let longer = read_all(&[&bytes[..], b"x"].concat()).unwrap_err();
        assert!(longer.contains("bytes follow its end record"), "{longer}");
    }

    /// A file cut short is refused before the state machine is touched.
    #[test]
    fn a_malformed_snapshot_is_refused_before_anything_is_cleared() {
        let (from, to) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (meta, path) = write_snapshot(&filled(), from.path()).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(to.path().join("cut.snap"), &bytes[..bytes.len() - 50]).unwrap();
        let target = filled();
        let before = contents(&target);
        let installing = CurrentSnapshot { meta, file: "cut.snap".into() };
        assert!(install_file(&target, to.path(), &installing, 4096).is_err());
        assert_eq!(contents(&target), before, "nothing was cleared");
        assert!(target.latest().get(Family::Raft, RaftKey::InstallingSnapshot.key()).unwrap().is_none());
    }
}
