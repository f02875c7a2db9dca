//! The RocksDB engine: one database, a column family per [`Family`], one write-ahead log.

use std::path::Path;

use rocksdb::{ColumnFamily, ColumnFamilyDescriptor, DBRawIterator, Options, ReadOptions, Snapshot, WriteOptions, DB};

use super::{Direction, Engine, KeyValue, ReadView, Scan, StorageError, Write, WriteSet};
use crate::keyspace::Family;

/// A node's RocksDB.
pub struct Rocks {
    db: DB,
}

fn engine_error(e: rocksdb::Error) -> StorageError {
    StorageError::Engine(e.into_string())
}

impl Rocks {
    /// Opens (or creates) the database at `path`, with every column family.
    pub fn open(path: &Path) -> Result<Rocks, StorageError> {
        let mut options = Options::default();
        options.create_if_missing(true);
        options.create_missing_column_families(true);
        options.set_compression_type(rocksdb::DBCompressionType::Lz4);
        let families = Family::ALL.map(|family| ColumnFamilyDescriptor::new(family.name(), Options::default()));
        Ok(Rocks { db: DB::open_cf_descriptors(&options, path, families).map_err(engine_error)? })
    }

    fn cf(&self, family: Family) -> &ColumnFamily {
        self.db.cf_handle(family.name()).unwrap_or_else(|| panic!("column family {family:?} is created at open"))
    }
}

/// Scans `family` with `options` (which may name a snapshot that outlives the scan).
fn scan<'s>(
    rocks: &'s Rocks,
    mut options: ReadOptions,
    family: Family,
    lower: &[u8],
    upper: Option<&[u8]>,
    direction: Direction,
) -> Scan<'s> {
    options.set_iterate_lower_bound(lower.to_vec());
    if let Some(upper) = upper {
        options.set_iterate_upper_bound(upper.to_vec());
    }
    let mut iter = rocks.db.raw_iterator_cf_opt(rocks.cf(family), options);
    match direction {
        Direction::Forward => iter.seek_to_first(),
        Direction::Reverse => iter.seek_to_last(),
    }
    Box::new(Walk { iter, direction, done: false })
}

/// A raw iterator walked as a [`Scan`].
struct Walk<'a> {
    iter: DBRawIterator<'a>,
    direction: Direction,
    done: bool,
}

impl Iterator for Walk<'_> {
    type Item = Result<KeyValue, StorageError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        if !self.iter.valid() {
            self.done = true;
            return self.iter.status().err().map(|e| Err(engine_error(e)));
        }
        let item = match (self.iter.key(), self.iter.value()) {
            (Some(key), Some(value)) => (key.to_vec(), value.to_vec()),
            _ => {
                self.done = true;
                return None;
            }
        };
        match self.direction {
            Direction::Forward => self.iter.next(),
            Direction::Reverse => self.iter.prev(),
        }
        Some(Ok(item))
    }
}

/// A consistent view: a RocksDB snapshot.
struct View<'a> {
    rocks: &'a Rocks,
    snapshot: Snapshot<'a>,
}

impl View<'_> {
    fn options(&self) -> ReadOptions {
        let mut options = ReadOptions::default();
        options.set_snapshot(&self.snapshot);
        options
    }
}

impl ReadView for View<'_> {
    fn get(&self, family: Family, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        let value = self.rocks.db.get_pinned_cf_opt(self.rocks.cf(family), key, &self.options());
        Ok(value.map_err(engine_error)?.map(|v| v.to_vec()))
    }

    fn scan<'s>(&'s self, family: Family, lower: &[u8], upper: Option<&[u8]>, direction: Direction) -> Scan<'s> {
        scan(self.rocks, self.options(), family, lower, upper, direction)
    }
}

impl ReadView for Rocks {
    fn get(&self, family: Family, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self.db.get_pinned_cf(self.cf(family), key).map_err(engine_error)?.map(|v| v.to_vec()))
    }

    fn scan<'s>(&'s self, family: Family, lower: &[u8], upper: Option<&[u8]>, direction: Direction) -> Scan<'s> {
        scan(self, ReadOptions::default(), family, lower, upper, direction)
    }
}

impl Engine for Rocks {
    fn latest(&self) -> &dyn ReadView {
        self
    }

    fn view(&self) -> Box<dyn ReadView + '_> {
        Box::new(View { rocks: self, snapshot: self.db.snapshot() })
    }

    fn write(&self, writes: WriteSet, durable: bool) -> Result<(), StorageError> {
        let mut batch = rocksdb::WriteBatch::default();
        for write in writes.into_writes() {
            match write {
                Write::Put { family, key, value } => batch.put_cf(self.cf(family), key, value),
                Write::Delete { family, key } => batch.delete_cf(self.cf(family), key),
                Write::DeleteRange { family, from, to } => batch.delete_range_cf(self.cf(family), from, to),
            }
        }
        let mut options = WriteOptions::default();
        options.set_sync(durable);
        self.db.write_opt(batch, &options).map_err(engine_error)
    }

    fn estimated_keys(&self, family: Family) -> u64 {
        self.db.property_int_value_cf(self.cf(family), "rocksdb.estimate-num-keys").ok().flatten().unwrap_or(0)
    }

    fn flush(&self) -> Result<(), StorageError> {
        self.db.flush_wal(true).map_err(engine_error)
    }
}
