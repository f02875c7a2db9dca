//! An in-memory engine: ordered maps per column family behind a lock, with copy-on-write views.
//! For tests of the apply path and of the readers, without RocksDB.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::{Arc, RwLock};

use super::{Direction, Engine, KeyValue, ReadView, Scan, StorageError, Write, WriteSet};
use crate::keyspace::Family;

type Families = BTreeMap<Family, BTreeMap<Vec<u8>, Vec<u8>>>;

/// An engine that keeps everything in memory.
#[derive(Default)]
pub struct Memory {
    families: RwLock<Arc<Families>>,
}

/// A consistent view of a [`Memory`] engine.
struct View(Arc<Families>);

impl Memory {
    pub fn new() -> Memory {
        Memory::default()
    }

    fn current(&self) -> Arc<Families> {
        self.families.read().expect("memory engine lock").clone()
    }
}

fn get(families: &Families, family: Family, key: &[u8]) -> Option<Vec<u8>> {
    families.get(&family).and_then(|keys| keys.get(key)).cloned()
}

/// The range's entries, collected (a test engine need not stream them).
fn scan<'s>(families: &Families, family: Family, lower: &[u8], upper: Option<&[u8]>, direction: Direction) -> Scan<'s> {
    let Some(keys) = families.get(&family) else { return Box::new(std::iter::empty()) };
    if upper.is_some_and(|upper| upper <= lower) {
        return Box::new(std::iter::empty());
    }
    let upper = upper.map_or(Bound::Unbounded, |u| Bound::Excluded(u.to_vec()));
    let range = keys.range((Bound::Included(lower.to_vec()), upper));
    let entries: Vec<KeyValue> = match direction {
        Direction::Forward => range.map(|(k, v)| (k.clone(), v.clone())).collect(),
        Direction::Reverse => range.rev().map(|(k, v)| (k.clone(), v.clone())).collect(),
    };
    Box::new(entries.into_iter().map(Ok))
}

impl ReadView for View {
    fn get(&self, family: Family, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(get(&self.0, family, key))
    }

    fn scan<'s>(&'s self, family: Family, lower: &[u8], upper: Option<&[u8]>, direction: Direction) -> Scan<'s> {
        scan(&self.0, family, lower, upper, direction)
    }
}

impl ReadView for Memory {
    fn get(&self, family: Family, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(get(&self.current(), family, key))
    }

    fn scan<'s>(&'s self, family: Family, lower: &[u8], upper: Option<&[u8]>, direction: Direction) -> Scan<'s> {
        scan(&self.current(), family, lower, upper, direction)
    }
}

impl Engine for Memory {
    fn latest(&self) -> &dyn ReadView {
        self
    }

    fn view(&self) -> Box<dyn ReadView + '_> {
        Box::new(View(self.current()))
    }

    fn write(&self, writes: WriteSet, _durable: bool) -> Result<(), StorageError> {
        // As RocksDB does: a range whose end comes before its start fails the whole write.
        let inverted = writes.writes().iter().any(|w| matches!(w, Write::DeleteRange { from, to, .. } if from > to));
        if inverted {
            return Err(StorageError::Engine("Invalid argument: end key comes before start key".into()));
        }
        let mut guard = self.families.write().expect("memory engine lock");
        let families = Arc::make_mut(&mut guard);
        for write in writes.into_writes() {
            match write {
                Write::Put { family, key, value } => {
                    families.entry(family).or_default().insert(key, value);
                }
                Write::Delete { family, key } => {
                    families.entry(family).or_default().remove(&key);
                }
                Write::DeleteRange { family, from, to } => {
                    if from >= to {
                        continue; // Empty.
                    }
                    let keys = families.entry(family).or_default();
                    let doomed: Vec<Vec<u8>> = keys.range(from..to).map(|(k, _)| k.clone()).collect();
                    for key in doomed {
                        keys.remove(&key);
                    }
                }
            }
        }
        Ok(())
    }

    fn estimated_keys(&self, family: Family) -> u64 {
        self.current().get(&family).map_or(0, |keys| keys.len() as u64)
    }

    fn flush(&self) -> Result<(), StorageError> {
        Ok(())
    }
}
