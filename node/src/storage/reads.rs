//! Reading a node's local state: tables, items, and key ranges in either direction with DynamoDB's
//! paging (Limit, the 1 MB page, ExclusiveStartKey).

use std::sync::Arc;

use prost::Message;
use rocksdb::{ReadOptions, DB};
use tern_proto::internal::{StoredItem, StoredTable};
use tern_proto::v1::{Item, ItemPage, ItemVersion, ReadTableVersionsResponse, VersionedItem};
use tern_proto::ApiError;

use super::db::{cf, CF_ITEMS, CF_SM_META, CF_STREAM_RECORDS, CF_TABLES, CF_TOMBSTONES};
use super::schema::TableSchema;
use super::{keys, stream_log};

/// Most bytes of items one Query or Scan page reads, as in DynamoDB.
pub const MAX_PAGE_BYTES: usize = 1024 * 1024;

/// A range of storage keys: `lower` included, `upper` excluded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRange {
    pub lower: Vec<u8>,
    pub upper: Vec<u8>,
}

/// The smallest key greater than every key that starts with `prefix`. Storage keys begin with a
/// table id, a log index far below `0xFF…`, so a key prefix is never all `0xFF` bytes.
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xFF {
            end.push(last + 1);
            return end;
        }
    }
    unreachable!("storage key prefixes start with a table id below 0xFF…")
}

/// The smallest key greater than `key` itself.
pub fn key_after(key: &[u8]) -> Vec<u8> {
    let mut next = key.to_vec();
    next.push(0);
    next
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
    db: Arc<DB>,
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::internal(e.to_string())
}

impl Reader {
    pub fn new(db: Arc<DB>) -> Self {
        Reader { db }
    }

    /// The node's database.
    pub fn db(&self) -> &DB {
        &self.db
    }

    /// A table's schema and stored definition.
    pub fn table(&self, name: &str) -> Result<(TableSchema, StoredTable), ApiError> {
        let bytes = self.db.get_cf(cf(&self.db, CF_TABLES), name.as_bytes()).map_err(internal)?;
        let stored =
            StoredTable::decode(bytes.ok_or_else(|| ApiError::table_not_found(name))?.as_slice()).map_err(internal)?;
        let description = stored.description.as_ref().ok_or_else(|| ApiError::internal("table without description"))?;
        Ok((TableSchema::from_description(stored.table_id, description)?, stored))
    }

    /// Table names in order, after `start_after`, at most `limit`; and the last name when more remain.
    pub fn list_tables(&self, start_after: &str, limit: usize) -> Result<(Vec<String>, Option<String>), ApiError> {
        let start = key_after(start_after.as_bytes());
        let mode =
            rocksdb::IteratorMode::From(if start_after.is_empty() { b"" } else { &start }, rocksdb::Direction::Forward);
        let mut names = Vec::new();
        for item in self.db.iterator_cf(cf(&self.db, CF_TABLES), mode) {
            let (name, _) = item.map_err(internal)?;
            if names.len() == limit {
                return Ok((names.clone(), names.last().cloned()));
            }
            names.push(String::from_utf8_lossy(&name).into_owned());
        }
        Ok((names, None))
    }

    /// The item stored under a storage key.
    pub fn item(&self, key: &[u8]) -> Result<Option<StoredItem>, ApiError> {
        let bytes = self.db.get_pinned_cf(cf(&self.db, CF_ITEMS), key).map_err(internal)?;
        bytes.map(|b| StoredItem::decode(b.as_ref()).map_err(internal)).transpose()
    }

    /// Items under several storage keys, all read from one consistent view of the database.
    pub fn items_at_one_point(&self, keys: &[Vec<u8>]) -> Result<Vec<Option<StoredItem>>, ApiError> {
        let view = self.db.snapshot();
        let items = cf(&self.db, CF_ITEMS);
        keys.iter()
            .map(|key| {
                let bytes = view.get_cf(items, key).map_err(internal)?;
                bytes.map(|b| StoredItem::decode(b.as_slice()).map_err(internal)).transpose()
            })
            .collect()
    }

    /// A page of a table's items and tombstones with their versions, in storage-key order, all read
    /// from one view of the database together with the stream's last sequence number and the clock.
    pub fn versions_page(
        &self,
        schema: &TableSchema,
        stored: &StoredTable,
        start_after: &[u8],
        limit: usize,
    ) -> Result<ReadTableVersionsResponse, ApiError> {
        let view = self.db.snapshot();
        let (table_start, table_end) = (keys::table_prefix(stored.table_id), keys::table_end(stored.table_id));
        let lower = if start_after.is_empty() { table_start } else { key_after(start_after) };
        let read_family = |family: &str| -> Result<Vec<(Vec<u8>, StoredItem)>, ApiError> {
            let mut options = ReadOptions::default();
            options.set_iterate_upper_bound(table_end.clone());
            let mut iter = view.raw_iterator_cf_opt(cf(&self.db, family), options);
            iter.seek(&lower);
            let mut found = Vec::new();
            while iter.valid() && found.len() <= limit {
                let (Some(key), Some(value)) = (iter.key(), iter.value()) else { break };
                found.push((key.to_vec(), StoredItem::decode(value).map_err(internal)?));
                iter.next();
            }
            iter.status().map_err(internal)?;
            Ok(found)
        };
        let (items, tombstones) = (read_family(CF_ITEMS)?, read_family(CF_TOMBSTONES)?);
        let mut merged: Vec<(Vec<u8>, StoredItem, bool)> = items
            .into_iter()
            .map(|(k, i)| (k, i, true))
            .chain(tombstones.into_iter().map(|(k, t)| (k, t, false)))
            .collect();
        merged.sort_by(|a, b| a.0.cmp(&b.0));
        // At most `limit` entries and about 1 MB, so a page always fits one message and one log entry.
        let mut bytes = 0;
        let fitting = merged
            .iter()
            .take(limit)
            .take_while(|(_, item, _)| {
                let fits = bytes == 0 || bytes + item.encoded_len() <= MAX_PAGE_BYTES;
                bytes += item.encoded_len();
                fits
            })
            .count();
        let more = merged.len() > fitting;
        merged.truncate(fitting);
        let last_evaluated_key =
            if more { merged.last().map(|(k, _, _)| k.clone()).unwrap_or_default() } else { vec![] };
        let items = merged
            .into_iter()
            .map(|(_, stored_item, live)| VersionedItem {
                key: schema.key_of(&stored_item.attributes),
                version: Some(ItemVersion {
                    write_timestamp_micros: stored_item.write_timestamp_micros,
                    origin_region: stored_item.origin_region.clone(),
                }),
                item: live.then_some(Item { attributes: stored_item.attributes }),
            })
            .collect();
        let clock = view
            .get_cf(cf(&self.db, CF_SM_META), crate::storage::state_machine::CLOCK)
            .map_err(internal)?
            .and_then(|b| b.as_slice().try_into().ok())
            .map_or(0, u64::from_be_bytes);
        let mut stream_arn = String::new();
        let mut stream_sequence_number = String::new();
        let mut last_record_sequence_number = String::new();
        if stored.stream_id != 0 {
            let mut iter = view.raw_iterator_cf(cf(&self.db, CF_STREAM_RECORDS));
            iter.seek_for_prev(stream_log::record_key(stored.stream_id, u64::MAX));
            let last = iter
                .key()
                .filter(|k| k.starts_with(&stored.stream_id.to_be_bytes()) && k.len() == 16)
                .map(|key| u64::from_be_bytes(key[8..].try_into().expect("16-byte record keys")));
            // With no record left (none yet, or all trimmed), the position is the last sequence number
            // the applied log could have written: following from it still notices a later trim.
            let applied = view
                .get_cf(cf(&self.db, CF_SM_META), crate::storage::state_machine::APPLIED)
                .map_err(internal)?
                .and_then(|b| bincode::deserialize::<Option<crate::raft::types::LogId>>(&b).ok().flatten())
                .map_or(0, |id| id.index);
            let position = last.unwrap_or((applied << 16) | (stream_log::RECORDS_PER_ENTRY - 1));
            stream_sequence_number = stream_log::sequence_text(position);
            last_record_sequence_number = last.map(stream_log::sequence_text).unwrap_or_default();
            stream_arn = stored.description.as_ref().map(|d| d.latest_stream_arn.clone()).unwrap_or_default();
        }
        Ok(ReadTableVersionsResponse {
            items,
            last_evaluated_key,
            stream_arn,
            stream_sequence_number,
            watermark_micros: clock,
            item_count: stored.description.as_ref().map_or(0, |d| d.item_count),
            last_record_sequence_number,
        })
    }

    /// One page of items in a key range, stopping at the limit or after 1 MB.
    pub fn page(&self, schema: &TableSchema, request: PageRequest) -> Result<ItemPage, ApiError> {
        let mut options = ReadOptions::default();
        options.set_iterate_lower_bound(request.range.lower.clone());
        options.set_iterate_upper_bound(request.range.upper.clone());
        let mut iter = self.db.raw_iterator_cf_opt(cf(&self.db, CF_ITEMS), options);
        match (&request.start_after, request.forward) {
            (Some(after), true) => iter.seek(key_after(after)),
            (None, true) => iter.seek_to_first(),
            (Some(after), false) => {
                iter.seek_for_prev(after);
                if iter.valid() && iter.key() == Some(after.as_slice()) {
                    iter.prev();
                }
            }
            (None, false) => iter.seek_to_last(),
        }
        let mut page = ItemPage::default();
        let mut bytes = 0usize;
        while iter.valid() {
            let (Some(_), Some(value)) = (iter.key(), iter.value()) else {
                break;
            };
            let stored = StoredItem::decode(value).map_err(internal)?;
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
            if request.forward {
                iter.next()
            } else {
                iter.prev()
            }
            let full = request.limit > 0 && page.scanned_count >= request.limit;
            if full || bytes >= MAX_PAGE_BYTES {
                page.last_evaluated_key = Some(key);
                break;
            }
        }
        iter.status().map_err(internal)?;
        page.count = page.items.len() as u32;
        Ok(page)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_is_past_every_extension() {
        assert_eq!(prefix_end(&[1, 2, 3]), vec![1, 2, 4]);
        assert_eq!(prefix_end(&[1, 0xFF]), vec![2]);
    }

    #[test]
    fn key_after_is_the_next_key() {
        let key = vec![5, 6];
        assert!(key_after(&key) > key);
        assert!(key_after(&key) <= vec![5, 6, 0]);
    }
}
