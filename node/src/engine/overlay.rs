//! Writes not yet in the engine, laid over a read view: reads see the view as if the writes had been
//! applied. The apply path uses it to put many commands (the entries of one apply call, the commands
//! of one batched entry) into one atomic write while each still sees the writes of those before it.

use std::collections::BTreeMap;
use std::ops::Bound;

use super::{Direction, KeyValue, ReadView, Scan, StorageError, Write, WriteSet};
use crate::keyspace::Family;

/// The pending writes of one column family: each written key's latest value (`None`: deleted), and
/// the ranges deleted. A key written after a range delete is in `keys`; one written before it was
/// dropped from `keys` when the range came, so `keys` always wins over `ranges`.
#[derive(Default)]
struct Layer {
    keys: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    ranges: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Layer {
    /// Whether a range delete hides `key` (of the view below).
    fn hides(&self, key: &[u8]) -> bool {
        self.ranges.iter().any(|(from, to)| from.as_slice() <= key && key < to.as_slice())
    }
}

/// A layer's pending keys of one range, in a scan's order (`None`: deleted).
type Pending<'s> = Box<dyn Iterator<Item = (&'s Vec<u8>, &'s Option<Vec<u8>>)> + 's>;

/// A read view with pending writes over it.
pub struct Overlay<'a> {
    below: &'a dyn ReadView,
    layers: BTreeMap<Family, Layer>,
    /// The pending writes' keys and values, in bytes.
    bytes: usize,
}

impl<'a> Overlay<'a> {
    /// `below` with nothing over it yet.
    pub fn new(below: &'a dyn ReadView) -> Self {
        Overlay { below, layers: BTreeMap::new(), bytes: 0 }
    }

    /// Lays `writes` over what is there, in their order.
    pub fn add(&mut self, writes: WriteSet) {
        for write in writes.into_writes() {
            match write {
                Write::Put { family, key, value } => {
                    self.bytes += key.len() + value.len();
                    self.layers.entry(family).or_default().keys.insert(key, Some(value));
                }
                Write::Delete { family, key } => {
                    self.bytes += key.len();
                    self.layers.entry(family).or_default().keys.insert(key, None);
                }
                Write::DeleteRange { family, from, to } => {
                    self.bytes += from.len() + to.len();
                    let layer = self.layers.entry(family).or_default();
                    if from < to {
                        let doomed: Vec<Vec<u8>> =
                            layer.keys.range(from.clone()..to.clone()).map(|(k, _)| k.clone()).collect();
                        for key in doomed {
                            layer.keys.remove(&key);
                        }
                    }
                    // An inverted range is kept too, so that the final write fails as the engine's would.
                    layer.ranges.push((from, to));
                }
            }
        }
    }

    /// Whether nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.layers.is_empty()
    }

    /// The pending writes' keys and values, in bytes.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// The pending writes as one write set with the same effect: the range deletes, then each key's
    /// latest write.
    pub fn into_writes(self) -> WriteSet {
        let mut writes = WriteSet::default();
        for (family, layer) in self.layers {
            for (from, to) in layer.ranges {
                writes.delete_range(family, from, to);
            }
            for (key, value) in layer.keys {
                match value {
                    Some(value) => writes.put(family, key, value),
                    None => writes.delete(family, key),
                }
            }
        }
        writes
    }
}

impl ReadView for Overlay<'_> {
    fn get(&self, family: Family, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        let Some(layer) = self.layers.get(&family) else { return self.below.get(family, key) };
        match layer.keys.get(key) {
            Some(value) => Ok(value.clone()),
            None if layer.hides(key) => Ok(None),
            None => self.below.get(family, key),
        }
    }

    fn scan<'s>(&'s self, family: Family, lower: &[u8], upper: Option<&[u8]>, direction: Direction) -> Scan<'s> {
        let below = self.below.scan(family, lower, upper, direction);
        let Some(layer) = self.layers.get(&family) else { return below };
        if upper.is_some_and(|upper| upper <= lower) {
            return Box::new(std::iter::empty());
        }
        let range = (Bound::Included(lower.to_vec()), upper.map_or(Bound::Unbounded, |u| Bound::Excluded(u.to_vec())));
        let pending = layer.keys.range(range);
        let pending: Pending<'s> = match direction {
            Direction::Forward => Box::new(pending),
            Direction::Reverse => Box::new(pending.rev()),
        };
        // Keys written here shadow the view's; range deletes hide the rest of the view's keys.
        let below = below.filter(move |entry| match entry {
            Ok((key, _)) => !layer.keys.contains_key(key) && !layer.hides(key),
            Err(_) => true,
        });
        Box::new(Merge { below: below.peekable(), pending: pending.peekable(), direction })
    }
}

/// The view's keys and the pending keys of one range, in the scan's order (no key is in both).
struct Merge<'s, B: Iterator<Item = Result<KeyValue, StorageError>>> {
    below: std::iter::Peekable<B>,
    pending: std::iter::Peekable<Pending<'s>>,
    direction: Direction,
}

impl<B: Iterator<Item = Result<KeyValue, StorageError>>> Iterator for Merge<'_, B> {
    type Item = Result<KeyValue, StorageError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let pending_first = match (self.below.peek(), self.pending.peek()) {
                (None, None) => return None,
                (Some(Err(_)), _) | (Some(_), None) => false,
                (None, Some(_)) => true,
                (Some(Ok((below, _))), Some((pending, _))) => match self.direction {
                    Direction::Forward => pending.as_slice() < below.as_slice(),
                    Direction::Reverse => pending.as_slice() > below.as_slice(),
                },
            };
            if !pending_first {
                return self.below.next();
            }
            let (key, value) = self.pending.next()?;
            if let Some(value) = value {
                return Some(Ok((key.clone(), value.clone())));
            }
            // A pending delete: nothing to yield for it.
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::engine::{Engine, Memory};

    #[derive(Debug, Clone)]
    enum Op {
        Put(u8, u8),
        Delete(u8),
        DeleteRange(u8, u8),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0u8..12, any::<u8>()).prop_map(|(k, v)| Op::Put(k, v)),
            (0u8..12).prop_map(Op::Delete),
            (0u8..13, 0u8..13).prop_map(|(a, b)| Op::DeleteRange(a, b)),
        ]
    }

    fn write_set(ops: &[Op]) -> WriteSet {
        let mut writes = WriteSet::default();
        for op in ops {
            match *op {
                Op::Put(k, v) => writes.put(Family::Items, [k], [v]),
                Op::Delete(k) => writes.delete(Family::Items, [k]),
                Op::DeleteRange(a, b) if a <= b => writes.delete_range(Family::Items, [a], [b]),
                Op::DeleteRange(..) => {}
            }
        }
        writes
    }

    fn all(view: &dyn ReadView, lower: u8, upper: Option<u8>, direction: Direction) -> Vec<KeyValue> {
        let upper = upper.map(|u| [u]);
        view.scan(Family::Items, &[lower], upper.as_ref().map(|u| &u[..]), direction)
            .map(|entry| entry.expect("readable"))
            .collect()
    }

    proptest! {
        /// Reads through an overlay equal reads of an engine the same writes were applied to, and the
        /// overlay's one write set leaves the engine as the writes one by one do.
        #[test]
        fn an_overlay_reads_as_the_writes_applied(
            base in prop::collection::vec(op(), 0..30),
            steps in prop::collection::vec(prop::collection::vec(op(), 0..8), 0..6),
            bounds in prop::collection::vec((0u8..13, prop::option::of(0u8..14)), 1..6),
        ) {
            let (layered, applied) = (Memory::new(), Memory::new());
            layered.write(write_set(&base), false).unwrap();
            applied.write(write_set(&base), false).unwrap();
            let mut overlay = Overlay::new(&layered);
            for step in &steps {
                overlay.add(write_set(step));
                applied.write(write_set(step), false).unwrap();
                for key in 0u8..13 {
                    prop_assert_eq!(overlay.get(Family::Items, &[key]).unwrap(), applied.get(Family::Items, &[key]).unwrap());
                }
                for &(lower, upper) in &bounds {
                    for direction in [Direction::Forward, Direction::Reverse] {
                        prop_assert_eq!(all(&overlay, lower, upper, direction), all(&applied, lower, upper, direction));
                    }
                }
                prop_assert_eq!(overlay.get(Family::Tables, &[1]).unwrap(), None);
            }
            let writes = overlay.into_writes();
            layered.write(writes, false).unwrap();
            prop_assert_eq!(all(&layered, 0, None, Direction::Forward), all(&applied, 0, None, Direction::Forward));
        }
    }

    #[test]
    fn an_inverted_range_still_fails_the_write() {
        let engine = Memory::new();
        let mut overlay = Overlay::new(&engine);
        let mut writes = WriteSet::default();
        writes.put(Family::Items, b"a", b"1");
        writes.delete_range(Family::Items, b"z", b"b");
        overlay.add(writes);
        assert_eq!(overlay.get(Family::Items, b"a").unwrap(), Some(b"1".to_vec()));
        assert!(engine.write(overlay.into_writes(), false).is_err());
        assert_eq!(engine.get(Family::Items, b"a").unwrap(), None);
    }
}
