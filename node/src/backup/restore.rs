//! A restore's items: the newest base at or before the restore time, with the PITR log's changes up
//! to it replayed over it (the segments in the store, then the tail still in this region's
//! `pitr_log`); or a backup's image as it is. Every file is checked against its checksum, and a gap
//! in the log fails the restore rather than restoring a state that never was.

use std::collections::BTreeMap;
use std::sync::Arc;

use prost::Message;
use tern_proto::internal::{ImageEntry, LogRecord, RestoreSource, StoredBackup, StoredItem};

use super::image::{self, Segment};
use super::store::BackupStore;
use super::view::{backup_status, list_backups, log_records, table_with_id, RecordLimit};
use super::JobError;
use crate::engine::Engine;

/// The items a restore writes, a batch at a time.
pub trait Sink {
    /// Takes a batch of items; `bytes_read` is how much backup data has been read so far.
    fn write(
        &mut self,
        items: Vec<ImageEntry>,
        bytes_read: u64,
    ) -> impl std::future::Future<Output = Result<(), JobError>> + Send;
}

/// Most bytes of items in one batch (one Raft entry): as a batch of users' writes.
pub const BATCH_BYTES: usize = crate::proposals::MAX_BATCH_BYTES;

/// Sends the items of `source` to `sink` in batches; returns how many.
pub async fn restore_items(
    engine: &Arc<dyn Engine>,
    store: &BackupStore,
    source: &RestoreSource,
    sink: &mut impl Sink,
) -> Result<u64, JobError> {
    if !source.backup_id.is_empty() {
        let folder = super::backup_folder(&source.backup_id);
        return replay(store, &folder, BTreeMap::new(), 0, sink).await;
    }
    let t = source.restore_to_micros;
    let bases = image::list_bases(store, &source.pitr_prefix).await?;
    let Some(&base) = bases.iter().rev().find(|&&b| b <= t) else {
        return Err(JobError::Failed(format!("no base of the PITR log at or before {t} µs is in the backup store")));
    };
    let (records, bytes_read) = log_between(engine, store, source, base, t).await?;
    let changes: BTreeMap<Vec<u8>, Option<StoredItem>> = records.into_iter().map(|r| (r.key, r.item)).collect();
    replay(store, &image::base_folder(&source.pitr_prefix, base), changes, bytes_read, sink).await
}

/// The changes of a PITR log (`source`'s folder and table) with `after < time <= through`, in time
/// order: from the store's segments, then the tail still in this region's `pitr_log`; and how many
/// bytes of segments were read.
pub async fn log_between(
    engine: &Arc<dyn Engine>,
    store: &BackupStore,
    source: &RestoreSource,
    after: u64,
    through: u64,
) -> Result<(Vec<LogRecord>, u64), JobError> {
    // The tail still here, and how far the store's segments go: from one view, so that what the
    // archiver uploads and drops meanwhile is in one or the other.
    let tail = if source.source_table_id != 0 { local_tail(engine, source, through)? } else { None };
    let archived_through = tail.as_ref().map_or(u64::MAX, |(archived, _)| *archived);
    let covered_to = through.min(archived_through);
    let segments = needed_segments(image::list_segments(store, &source.pitr_prefix).await?, after, covered_to)?;
    let mut records = Vec::new();
    let mut bytes_read = 0;
    // Records at or before `read` are in: an overlapping segment's first part is skipped.
    let mut read = after;
    for segment in &segments {
        for record in image::read_segment(store, segment).await? {
            if record.at_micros > read && record.at_micros <= through {
                bytes_read += record.encoded_len() as u64;
                records.push(record);
            }
        }
        read = segment.to_micros;
    }
    for record in tail.map(|(_, records)| records).unwrap_or_default() {
        if record.at_micros > read && record.at_micros <= through {
            records.push(record);
        }
    }
    Ok((records, bytes_read))
}

/// The segments that hold every change after `base` up to `to`, in the order to read them; a gap is
/// an error. Segments may overlap (an archiver that uploaded one and lost its leadership before
/// recording it, and a new leader that uploaded its own from the same point): each holds every change
/// of its range, so the chain takes, at each point, the segment that reaches furthest, and the reader
/// skips the records of the part already read.
pub fn needed_segments(all: Vec<Segment>, base: u64, to: u64) -> Result<Vec<Segment>, JobError> {
    if to <= base {
        return Ok(Vec::new());
    }
    let candidates: Vec<Segment> = all.into_iter().filter(|s| s.to_micros > base && s.from_micros < to).collect();
    let mut chain = Vec::new();
    let mut reached = base;
    while reached < to {
        let next = candidates
            .iter()
            .filter(|s| s.from_micros <= reached && s.to_micros > reached)
            .max_by_key(|s| s.to_micros)
            .ok_or_else(|| gap(reached, to))?;
        reached = next.to_micros;
        chain.push(next.clone());
    }
    Ok(chain)
}

fn gap(from: u64, to: u64) -> JobError {
    JobError::Failed(format!(
        "the PITR log's segments in the backup store do not hold the changes from {from} µs to {to} µs: a segment is missing"
    ))
}

/// How far the source table's log is archived, and its changes up to `through` still only here.
fn local_tail(
    engine: &Arc<dyn Engine>,
    source: &RestoreSource,
    through: u64,
) -> Result<Option<(u64, Vec<LogRecord>)>, JobError> {
    let view = engine.view();
    let pitr = match table_with_id(&*view, source.source_table_id)?
        .and_then(|t| t.pitr)
        .filter(|p| p.enabled && p.store_prefix == source.pitr_prefix)
    {
        Some(pitr) => pitr,
        // The source was deleted since: its system backup holds its log (all in the store once
        // AVAILABLE; until then, the part not yet archived is still here).
        None => match deleted_source(&*view, source)? {
            Some(backup) if backup_status(&backup) == "CREATING" => backup.pitr.unwrap_or_default(),
            Some(_) => return Ok(None),
            None => {
                return Err(JobError::Failed(
                    "the source table's PITR log is gone: PITR was turned off while the restore ran".into(),
                ))
            }
        },
    };
    let (from, to) = (pitr.archived_through_micros, through);
    let records = log_records(&*view, source.source_table_id, from, to, RecordLimit::NONE)?;
    Ok(Some((pitr.archived_through_micros, records)))
}

/// The system backup a deleted source table left, if it did.
fn deleted_source(
    view: &dyn crate::engine::ReadView,
    source: &RestoreSource,
) -> Result<Option<StoredBackup>, JobError> {
    Ok(list_backups(view)?.into_iter().find(|b| {
        b.source_table_id == source.source_table_id
            && b.pitr.as_ref().is_some_and(|p| p.store_prefix == source.pitr_prefix)
    }))
}

/// Sends an image's items, with `changes` laid over them, to `sink`.
async fn replay(
    store: &BackupStore,
    folder: &str,
    mut changes: BTreeMap<Vec<u8>, Option<StoredItem>>,
    mut bytes_read: u64,
    sink: &mut impl Sink,
) -> Result<u64, JobError> {
    let manifest = image::read_manifest(store, folder).await?;
    let mut batch = Batch::default();
    for part in &manifest.parts {
        let entries = image::read_part(store, folder, part).await?;
        bytes_read += part.bytes;
        for entry in entries {
            let entry = match changes.remove(&entry.key) {
                Some(Some(changed)) => ImageEntry { key: entry.key, item: Some(changed) },
                Some(None) => continue,
                None => entry,
            };
            batch.push(entry, bytes_read, sink).await?;
        }
    }
    for (key, item) in changes {
        if let Some(item) = item {
            batch.push(ImageEntry { key, item: Some(item) }, bytes_read, sink).await?;
        }
    }
    batch.flush(bytes_read, sink).await?;
    Ok(batch.written)
}

#[derive(Default)]
struct Batch {
    items: Vec<ImageEntry>,
    bytes: usize,
    written: u64,
}

impl Batch {
    async fn push(&mut self, entry: ImageEntry, bytes_read: u64, sink: &mut impl Sink) -> Result<(), JobError> {
        self.bytes += entry.encoded_len();
        self.items.push(entry);
        if self.bytes >= BATCH_BYTES {
            self.flush(bytes_read, sink).await?;
        }
        Ok(())
    }

    async fn flush(&mut self, bytes_read: u64, sink: &mut impl Sink) -> Result<(), JobError> {
        if self.items.is_empty() {
            return Ok(());
        }
        self.written += self.items.len() as u64;
        self.bytes = 0;
        sink.write(std::mem::take(&mut self.items), bytes_read).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segment(from: u64, to: u64) -> Segment {
        Segment { path: format!("{from}-{to}"), from_micros: from, to_micros: to, sha256: String::new() }
    }

    #[test]
    fn the_segments_after_a_base_must_follow_one_another_to_the_restore_time() {
        let all = vec![segment(0, 10), segment(10, 20), segment(20, 30), segment(30, 40)];
        let paths = |v: Vec<Segment>| v.into_iter().map(|s| s.path).collect::<Vec<_>>();
        assert_eq!(paths(needed_segments(all.clone(), 15, 25).unwrap()), vec!["10-20", "20-30"]);
        assert_eq!(paths(needed_segments(all.clone(), 10, 20).unwrap()), vec!["10-20"]);
        assert_eq!(paths(needed_segments(all.clone(), 30, 30).unwrap()), Vec::<String>::new());
        // Overlapping segments (two archivers from one point): the one that reaches furthest is read.
        let overlapping = vec![segment(0, 10), segment(10, 20), segment(10, 25), segment(20, 30), segment(25, 40)];
        assert_eq!(paths(needed_segments(overlapping, 5, 35).unwrap()), vec!["0-10", "10-25", "25-40"]);
        let missing_middle = vec![segment(0, 10), segment(20, 30)];
        assert!(matches!(needed_segments(missing_middle, 5, 25), Err(JobError::Failed(_))));
        let missing_end = vec![segment(0, 10)];
        assert!(matches!(needed_segments(missing_end, 5, 25), Err(JobError::Failed(_))));
        let missing_start = vec![segment(10, 20)];
        assert!(matches!(needed_segments(missing_start, 5, 15), Err(JobError::Failed(_))));
    }
}
