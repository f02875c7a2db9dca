//! Reading a node's local state: tables, items, and key ranges in either direction with DynamoDB's
//! paging (Limit, the 1 MB page, ExclusiveStartKey).

use std::sync::Arc;

use tern_proto::internal::{StoredItem, StoredTable};
use tern_proto::v1::{Item, ItemPage, ItemVersion};
use tern_proto::ApiError;

use crate::changes::ChangeFeed;
use crate::engine::{self, Direction, Engine, ReadView};
use crate::keyspace::{self, key_after, Family};
use crate::schema::TableSchema;

/// Most bytes of items one Query or Scan page reads, as in DynamoDB.
pub const MAX_PAGE_BYTES: usize = 1024 * 1024;

/// A range of storage keys: `lower` included, `upper` excluded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRange {
    pub lower: Vec<u8>,
    pub upper: Vec<u8>,
}

/// How to read one page of a range.
pub struct PageRequest {
    pub range: KeyRange,
    pub forward: bool,
    /// Storage key of the ExclusiveStartKey.
    pub start_after: Option<Vec<u8>>,
    /// Most items to evaluate; 0 for no limit.
    pub limit: u32,
    pub with_versions: bool,
}

/// Reads a node's local state; eventually consistent unless the caller made sure of more.
#[derive(Clone)]
pub struct Reader {
    engine: Arc<dyn Engine>,
    changes: ChangeFeed,
}

impl Reader {
    pub fn new(engine: Arc<dyn Engine>, changes: ChangeFeed) -> Self {
        Reader { engine, changes }
    }

    /// The region clock through which this node's state holds the region's writes: taken before a
    /// read, the read reflects every write at or before it (a response's `applied_through_micros`).
    pub fn applied_through(&self) -> u64 {
        self.changes.position()
    }

    /// Reads of the node's latest state.
    pub fn latest(&self) -> &dyn ReadView {
        self.engine.latest()
    }

    /// Whether a snapshot is being installed here: the local state holds part of it until it is.
    pub fn installing_snapshot(&self) -> bool {
        self.latest().get(Family::Raft, keyspace::RaftKey::InstallingSnapshot.key()).ok().flatten().is_some()
    }

    /// A consistent view of the node's state as it is now.
    pub fn view(&self) -> Box<dyn ReadView + '_> {
        self.engine.view()
    }

    /// A table's schema and stored definition.
    pub fn table(&self, name: &str) -> Result<(TableSchema, StoredTable), ApiError> {
        let stored = self.described_table(name)?;
        if stored.restoring.is_some() {
            return Err(crate::schema::being_restored(name));
        }
        Ok((TableSchema::of(&stored)?, stored))
    }

    /// A table's definition, whatever its status (a table being restored serves DescribeTable only).
    /// A table whose restore failed is not found, and the error says why.
    pub fn described_table(&self, name: &str) -> Result<StoredTable, ApiError> {
        match self.engine.latest().get(Family::Tables, keyspace::table_key(name))? {
            Some(bytes) => Ok(engine::decode("table", &bytes)?),
            None => match self.engine.latest().get(Family::Meta, &keyspace::restore_failure_key(name))? {
                Some(why) => {
                    let why = String::from_utf8_lossy(&why).into_owned();
                    let message =
                        format!("Requested resource not found: Table: {name} not found (its restore failed: {why})");
                    let details = tern_proto::v1::ErrorDetails { restore_failure: why, ..Default::default() };
                    Err(ApiError::not_found(message).with_details(details))
                }
                None => Err(ApiError::table_not_found(name)),
            },
        }
    }

    /// Table names in order, after `start_after`, at most `limit`; and the last name when more remain.
    pub fn list_tables(&self, start_after: &str, limit: usize) -> Result<(Vec<String>, Option<String>), ApiError> {
        let start = if start_after.is_empty() { Vec::new() } else { key_after(start_after.as_bytes()) };
        let mut names = Vec::new();
        for item in self.engine.latest().scan(Family::Tables, &start, None, Direction::Forward) {
            let (name, _) = item?;
            if names.len() == limit {
                return Ok((names.clone(), names.last().cloned()));
            }
            names.push(String::from_utf8_lossy(&name).into_owned());
        }
        Ok((names, None))
    }

    /// The item stored under a storage key.
    pub fn item(&self, key: &[u8]) -> Result<Option<StoredItem>, ApiError> {
        Ok(self.engine.latest().get(Family::Items, key)?.map(|b| engine::decode("item", &b)).transpose()?)
    }

    /// Items under several storage keys, all read from one consistent view of the database.
    pub fn items_at_one_point(&self, keys: &[Vec<u8>]) -> Result<Vec<Option<StoredItem>>, ApiError> {
        let view = self.engine.view();
        keys.iter()
            .map(|key| Ok(view.get(Family::Items, key)?.map(|b| engine::decode("item", &b)).transpose()?))
            .collect()
    }

    /// One page of items in a key range, stopping at the limit or after 1 MB.
    pub fn page(&self, schema: &TableSchema, request: PageRequest) -> Result<ItemPage, ApiError> {
        let range = &request.range;
        // ExclusiveStartKey narrows the range: past it going forward, before it going back.
        let (lower, upper, direction) = match (&request.start_after, request.forward) {
            (Some(after), true) => (key_after(after).max(range.lower.clone()), range.upper.clone(), Direction::Forward),
            (None, true) => (range.lower.clone(), range.upper.clone(), Direction::Forward),
            (Some(after), false) => (range.lower.clone(), after.clone().min(range.upper.clone()), Direction::Reverse),
            (None, false) => (range.lower.clone(), range.upper.clone(), Direction::Reverse),
        };
        let mut page = ItemPage::default();
        let mut bytes = 0usize;
        for entry in self.engine.latest().scan(Family::Items, &lower, Some(&upper), direction) {
            let (_, value) = entry?;
            let stored: StoredItem = engine::decode("item", &value)?;
            bytes += value.len();
            if request.with_versions {
                page.item_versions.push(ItemVersion {
                    write_timestamp_micros: stored.write_timestamp_micros,
                    origin_region: stored.origin_region.clone(),
                });
            }
            let key = Item { attributes: schema.key_of(&stored.attributes) };
            page.items.push(Item { attributes: stored.attributes });
            page.scanned_count += 1;
            let full = request.limit > 0 && page.scanned_count >= request.limit;
            if full || bytes >= MAX_PAGE_BYTES {
                page.last_evaluated_key = Some(key);
                break;
            }
        }
        page.count = page.items.len() as u32;
        Ok(page)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use prost::Message;
    use tern_proto::v1::attribute_value::Value;
    use tern_proto::v1::AttributeValue;

    use super::*;
    use crate::engine::{Memory, Rocks, WriteSet};
    use crate::schema::KeyAttribute;

    fn schema() -> TableSchema {
        TableSchema {
            table_id: 7,
            partition_key: KeyAttribute { name: "pk".into(), attribute_type: "S".into() },
            sort_key: Some(KeyAttribute { name: "sk".into(), attribute_type: "N".into() }),
        }
    }

    fn key(sk: u32) -> BTreeMap<String, AttributeValue> {
        BTreeMap::from([
            ("pk".to_string(), AttributeValue { value: Some(Value::S("p".into())) }),
            ("sk".to_string(), AttributeValue { value: Some(Value::N(sk.to_string())) }),
        ])
    }

    /// A reader over `engine` holding items `p/1` to `p/10` and one item of another partition.
    fn reader(engine: Arc<dyn Engine>) -> Reader {
        let mut writes = WriteSet::default();
        for sk in 1..=10 {
            let item = StoredItem { attributes: key(sk), ..Default::default() };
            writes.put(Family::Items, schema().storage_key(&key(sk)).unwrap(), item.encode_to_vec());
        }
        let mut other = key(1);
        other.insert("pk".into(), AttributeValue { value: Some(Value::S("q".into())) });
        let item = StoredItem { attributes: other.clone(), ..Default::default() };
        writes.put(Family::Items, schema().storage_key(&other).unwrap(), item.encode_to_vec());
        engine.write(writes, false).unwrap();
        Reader::new(engine, ChangeFeed::new(0))
    }

    /// The sort keys of a page of partition `p`, and its LastEvaluatedKey's sort key.
    fn page(reader: &Reader, forward: bool, after: Option<u32>, limit: u32) -> (Vec<String>, Option<String>) {
        let prefix = schema().partition_prefix(&key(1)["pk"]).unwrap();
        let request = PageRequest {
            range: KeyRange { upper: keyspace::prefix_end(&prefix), lower: prefix },
            forward,
            start_after: after.map(|sk| schema().storage_key(&key(sk)).unwrap()),
            limit,
            with_versions: false,
        };
        let page = reader.page(&schema(), request).unwrap();
        let sk = |item: &BTreeMap<String, AttributeValue>| match item.get("sk").and_then(|v| v.value.clone()) {
            Some(Value::N(n)) => n,
            other => panic!("{other:?}"),
        };
        (page.items.iter().map(|i| sk(&i.attributes)).collect(), page.last_evaluated_key.map(|k| sk(&k.attributes)))
    }

    fn numbers(range: impl Iterator<Item = u32>) -> Vec<String> {
        range.map(|n| n.to_string()).collect()
    }

    #[test]
    fn pages_follow_the_exclusive_start_key_both_ways_on_every_engine() {
        let dir = tempfile::tempdir().unwrap();
        let engines: [Arc<dyn Engine>; 2] =
            [Arc::new(Rocks::open(&dir.path().join("db")).unwrap()), Arc::new(Memory::new())];
        for engine in engines {
            let reader = reader(engine);
            assert_eq!(page(&reader, true, None, 0), (numbers(1..=10), None));
            assert_eq!(page(&reader, true, None, 3), (numbers(1..=3), Some("3".into())));
            assert_eq!(page(&reader, true, Some(3), 3), (numbers(4..=6), Some("6".into())));
            assert_eq!(page(&reader, true, Some(9), 3), (numbers(10..=10), None));
            assert_eq!(page(&reader, true, Some(10), 0), (vec![], None));
            assert_eq!(page(&reader, false, None, 0), (numbers((1..=10).rev()), None));
            assert_eq!(page(&reader, false, Some(8), 2), (numbers([7, 6].into_iter()), Some("6".into())));
            assert_eq!(page(&reader, false, Some(1), 0), (vec![], None));
            assert_eq!(page(&reader, false, Some(2), 0), (numbers(1..=1), None));
        }
    }
}
