//! Reading change streams from a node's local state, and trimming records past their retention.

use std::sync::Arc;

use prost::Message;
use rocksdb::{ReadOptions, WriteBatch, DB};
use tern_proto::internal::StoredStream;
use tern_proto::v1::{Consumer, StreamRecord};
use tern_proto::ApiError;

use super::db::{cf, CF_RAFT, CF_SM_META, CF_STREAMS, CF_STREAM_RECORDS};
use super::stream_log::record_key;

/// Most bytes of records one GetRecords returns, as in DynamoDB.
pub const MAX_RECORDS_BYTES: usize = 1024 * 1024;

/// Where a node notes how far it has trimmed a stream (its own state, not replicated).
fn trimmed_key(stream_id: u64) -> Vec<u8> {
    [b"trimmed/".as_slice(), &stream_id.to_be_bytes()].concat()
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::internal(e.to_string())
}

/// Reads streams and their records.
#[derive(Clone)]
pub struct StreamReader {
    db: Arc<DB>,
}

impl StreamReader {
    pub fn new(db: Arc<DB>) -> Self {
        StreamReader { db }
    }

    /// Every stream definition in `db` (for the apply path, which holds the database by reference).
    pub fn definitions(db: &DB) -> Vec<StoredStream> {
        db.iterator_cf(cf(db, CF_STREAMS), rocksdb::IteratorMode::Start)
            .filter_map(|item| item.ok())
            .filter(|(key, _)| key.len() == 8)
            .filter_map(|(_, value)| StoredStream::decode(value.as_ref()).ok())
            .collect()
    }

    /// Every stream this node knows, oldest first.
    pub fn streams(&self) -> Result<Vec<StoredStream>, ApiError> {
        let mut streams = Vec::new();
        for item in self.db.iterator_cf(cf(&self.db, CF_STREAMS), rocksdb::IteratorMode::Start) {
            let (key, value) = item.map_err(internal)?;
            // Stream definitions have 8-byte keys; named consumers' positions sort after them.
            if key.len() == 8 {
                streams.push(StoredStream::decode(value.as_ref()).map_err(internal)?);
            }
        }
        Ok(streams)
    }

    /// A stream's named consumers and their positions.
    pub fn consumers(&self, stream_id: u64) -> Result<Vec<Consumer>, ApiError> {
        let prefix = super::stream_log::consumer_key(stream_id, "");
        let mode = rocksdb::IteratorMode::From(&prefix, rocksdb::Direction::Forward);
        let mut consumers = Vec::new();
        for item in self.db.iterator_cf(cf(&self.db, CF_STREAMS), mode) {
            let (key, value) = item.map_err(internal)?;
            if !key.starts_with(&prefix) {
                break;
            }
            consumers.push(Consumer::decode(value.as_ref()).map_err(internal)?);
        }
        Ok(consumers)
    }

    /// The stream with this ARN.
    pub fn stream(&self, arn: &str) -> Result<StoredStream, ApiError> {
        self.streams()?
            .into_iter()
            .find(|s| s.stream_arn == arn)
            .ok_or_else(|| ApiError::not_found(format!("Requested resource not found: Stream: {arn} not found")))
    }

    pub fn stream_by_id(&self, stream_id: u64) -> Result<StoredStream, ApiError> {
        super::stream_log::read_stream(&self.db, stream_id)?
            .ok_or_else(|| ApiError::not_found(format!("Requested resource not found: Stream {stream_id} not found")))
    }

    /// RocksDB's estimate of the records held for all streams.
    pub fn estimated_records(&self) -> u64 {
        self.db
            .property_int_value_cf(cf(&self.db, CF_STREAM_RECORDS), "rocksdb.estimate-num-keys")
            .ok()
            .flatten()
            .unwrap_or(0)
    }

    /// The first and last sequence numbers a stream holds here, if any.
    pub fn bounds(&self, stream_id: u64) -> Result<Option<(u64, u64)>, ApiError> {
        let mut iter = self.db.raw_iterator_cf(cf(&self.db, CF_STREAM_RECORDS));
        let sequence = |key: &[u8]| u64::from_be_bytes(key[8..16].try_into().expect("16-byte record keys"));
        iter.seek(record_key(stream_id, 0));
        let first = match iter.key() {
            Some(key) if key.starts_with(&stream_id.to_be_bytes()) => sequence(key),
            _ => return Ok(None),
        };
        iter.seek_for_prev(record_key(stream_id, u64::MAX));
        let last = iter.key().map(sequence).unwrap_or(first);
        Ok(Some((first, last)))
    }

    /// Records from `from` on, at most `limit` of them and about 1 MB.
    pub fn records(&self, stream_id: u64, from: u64, limit: usize) -> Result<Vec<(u64, StreamRecord)>, ApiError> {
        let mut options = ReadOptions::default();
        options.set_iterate_upper_bound(record_key(stream_id, u64::MAX).to_vec());
        let mut iter = self.db.raw_iterator_cf_opt(cf(&self.db, CF_STREAM_RECORDS), options);
        iter.seek(record_key(stream_id, from));
        let mut records = Vec::new();
        let mut bytes = 0;
        while iter.valid() && records.len() < limit && bytes < MAX_RECORDS_BYTES {
            let (Some(key), Some(value)) = (iter.key(), iter.value()) else { break };
            if !key.starts_with(&stream_id.to_be_bytes()) {
                break;
            }
            bytes += value.len();
            let sequence = u64::from_be_bytes(key[8..16].try_into().expect("16-byte record keys"));
            records.push((sequence, StreamRecord::decode(value).map_err(internal)?));
            iter.next();
        }
        iter.status().map_err(internal)?;
        Ok(records)
    }

    /// The region's clock as this node has applied it (microseconds).
    pub fn clock(&self) -> Result<u64, ApiError> {
        let bytes = self.db.get_cf(cf(&self.db, CF_SM_META), super::state_machine::CLOCK).map_err(internal)?;
        Ok(bytes.and_then(|b| b.as_slice().try_into().ok()).map_or(0, u64::from_be_bytes))
    }

    /// How many records a stream holds from `from` on, counting up to `cap` (a read pays for what it
    /// counts, so a long backlog is reported as at least `cap`).
    pub fn count_from(&self, stream_id: u64, from: u64, cap: u64) -> Result<u64, ApiError> {
        let mut options = ReadOptions::default();
        options.set_iterate_upper_bound(record_key(stream_id, u64::MAX).to_vec());
        let mut iter = self.db.raw_iterator_cf_opt(cf(&self.db, CF_STREAM_RECORDS), options);
        iter.seek(record_key(stream_id, from));
        let mut count = 0;
        while iter.valid() && count < cap {
            count += 1;
            iter.next();
        }
        iter.status().map_err(internal)?;
        Ok(count)
    }

    /// Deletes the records of a stream created before `cutoff_secs`; returns how many.
    pub fn trim(&self, stream_id: u64, cutoff_secs: f64) -> Result<usize, ApiError> {
        let mut end = None;
        let mut count = 0;
        for (sequence, record) in self.records(stream_id, 0, usize::MAX)? {
            let created = record.dynamodb.as_ref().map_or(0.0, |d| d.approximate_creation_date_time);
            if created >= cutoff_secs {
                break;
            }
            end = Some(sequence);
            count += 1;
        }
        if let Some(last) = end {
            let mut batch = WriteBatch::default();
            batch.delete_range_cf(
                cf(&self.db, CF_STREAM_RECORDS),
                record_key(stream_id, 0),
                record_key(stream_id, last + 1),
            );
            batch.put_cf(cf(&self.db, CF_RAFT), trimmed_key(stream_id), last.to_be_bytes());
            self.db.write(batch).map_err(internal)?;
        }
        Ok(count)
    }

    /// The last sequence number trimmed from a stream on this node (0 when none was).
    pub fn trimmed_through(&self, stream_id: u64) -> Result<u64, ApiError> {
        let bytes = self.db.get_cf(cf(&self.db, CF_RAFT), trimmed_key(stream_id)).map_err(internal)?;
        Ok(bytes.and_then(|b| b.as_slice().try_into().ok()).map_or(0, u64::from_be_bytes))
    }
}
