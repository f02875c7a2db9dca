//! Reading a node's local state: tables, items, and key ranges in either direction with DynamoDB's
//! paging (Limit, the 1 MB page, ExclusiveStartKey).

use std::sync::Arc;

use tern_proto::internal::{StoredItem, StoredTable};
use tern_proto::v1::{Item, ItemPage, ItemVersion};
use tern_proto::ApiError;

use crate::engine::{self, Direction, Engine};
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
}

impl Reader {
    pub fn new(engine: Arc<dyn Engine>) -> Self {
        Reader { engine }
    }

    /// The node's storage engine.
    pub fn engine(&self) -> &dyn Engine {
        self.engine.as_ref()
    }

    /// A table's schema and stored definition.
    pub fn table(&self, name: &str) -> Result<(TableSchema, StoredTable), ApiError> {
        let bytes = self.engine.get(Family::Tables, keyspace::table_key(name))?;
        let stored: StoredTable = engine::decode("table", &bytes.ok_or_else(|| ApiError::table_not_found(name))?)?;
        Ok((TableSchema::of(&stored)?, stored))
    }

    /// Table names in order, after `start_after`, at most `limit`; and the last name when more remain.
    pub fn list_tables(&self, start_after: &str, limit: usize) -> Result<(Vec<String>, Option<String>), ApiError> {
        let start = if start_after.is_empty() { Vec::new() } else { key_after(start_after.as_bytes()) };
        let mut names = Vec::new();
        for item in self.engine.scan(Family::Tables, &start, None, Direction::Forward) {
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
        Ok(self.engine.get(Family::Items, key)?.map(|b| engine::decode("item", &b)).transpose()?)
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
        for entry in self.engine.scan(Family::Items, &lower, Some(&upper), direction) {
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
