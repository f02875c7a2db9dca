//! Reading change streams from a node's local state: definitions and consumers, and records with the
//! trim horizon read from one consistent view ([`StreamView`]).

use std::sync::Arc;

use tern_proto::internal::StoredStream;
use tern_proto::v1::{Consumer, StreamRecord};
use tern_proto::ApiError;

use crate::engine::{self, Direction, Engine, ReadView};
use crate::keyspace::{self, Family, Seq};

/// Most bytes of records one GetRecords returns, as in DynamoDB.
pub const MAX_RECORDS_BYTES: usize = 1024 * 1024;
/// Most records one trim entry drops per stream (the leader proposes again at once while a trim is full).
pub const MAX_TRIMMED_PER_ENTRY: usize = 100_000;

/// Reads streams and their records.
#[derive(Clone)]
pub struct StreamReader {
    engine: Arc<dyn Engine>,
}

impl StreamReader {
    pub fn new(engine: Arc<dyn Engine>) -> Self {
        StreamReader { engine }
    }

    /// Streams and records as they are at this moment, read from one view; refused (the caller asks
    /// another node) while that view shows a snapshot being installed, when the records, horizons and
    /// clock are only partly the snapshot's: a reader could skip records it never saw.
    pub fn at_one_point(&self) -> Result<StreamView<'_>, ApiError> {
        let view = self.engine.view();
        if view.get(Family::Raft, keyspace::RaftKey::InstallingSnapshot.key())?.is_some() {
            return Err(ApiError::unavailable("This node is installing a snapshot; retry"));
        }
        Ok(StreamView { view })
    }

    /// Every stream this node knows, oldest first.
    pub fn streams(&self) -> Result<Vec<StoredStream>, ApiError> {
        Ok(super::definitions(self.engine.latest())?)
    }

    /// A stream's named consumers and their positions.
    pub fn consumers(&self, stream_id: u64) -> Result<Vec<Consumer>, ApiError> {
        let prefix = keyspace::consumer_key(stream_id, "");
        let end = keyspace::prefix_end(&prefix);
        let mut consumers = Vec::new();
        for entry in self.engine.latest().scan(Family::Streams, &prefix, Some(&end), Direction::Forward) {
            consumers.push(engine::decode("consumer", &entry?.1)?);
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

    /// The engine's estimate of the records held for all streams.
    pub fn estimated_records(&self) -> u64 {
        self.engine.estimated_keys(Family::StreamRecords)
    }
}

/// Streams and their records at one moment: a definition (with its trim horizon) and the records
/// read beside it always agree.
pub struct StreamView<'a> {
    view: Box<dyn ReadView + 'a>,
}

impl StreamView<'_> {
    pub fn stream_by_id(&self, stream_id: u64) -> Result<StoredStream, ApiError> {
        super::read_stream(self.view.as_ref(), stream_id)?
            .ok_or_else(|| ApiError::not_found(format!("Requested resource not found: Stream {stream_id} not found")))
    }

    /// Where TRIM_HORIZON starts: the first record held, or (none held) the first position after the
    /// trim horizon, never before the stream began. Read from this one view, so no record appended
    /// meanwhile is skipped.
    pub fn trim_horizon(&self, stream_id: u64) -> Result<Seq, ApiError> {
        let stream = self.stream_by_id(stream_id)?;
        Ok(match self.bounds(stream_id)? {
            Some((first, _)) => first,
            None => super::first_position(&stream).max(Seq::from_number(stream.trimmed_through).next()),
        })
    }

    /// The first and last positions a stream holds, if any.
    pub fn bounds(&self, stream_id: u64) -> Result<Option<(Seq, Seq)>, ApiError> {
        let (start, end) = (keyspace::record_key(stream_id, Seq::first_of(0)), keyspace::records_end(stream_id));
        let Some((first, _)) = self.view.first(Family::StreamRecords, &start, Some(&end), Direction::Forward)? else {
            return Ok(None);
        };
        let first = keyspace::parse_record_key(&first).map(|(_, seq)| seq).expect("16-byte record keys");
        let last = super::last_record(self.view.as_ref(), stream_id)?.unwrap_or(first);
        Ok(Some((first, last)))
    }

    /// Records from `from` on, at most `limit` of them and about 1 MB.
    pub fn records(&self, stream_id: u64, from: Seq, limit: usize) -> Result<Vec<(Seq, StreamRecord)>, ApiError> {
        let (start, end) = (keyspace::record_key(stream_id, from), keyspace::records_end(stream_id));
        let mut records = Vec::new();
        let mut bytes = 0;
        for entry in self.view.scan(Family::StreamRecords, &start, Some(&end), Direction::Forward) {
            if records.len() >= limit || bytes >= MAX_RECORDS_BYTES {
                break;
            }
            let (key, value) = entry?;
            bytes += value.len();
            let (_, seq) = keyspace::parse_record_key(&key).expect("16-byte record keys");
            records.push((seq, engine::decode("stream record", &value)?));
        }
        Ok(records)
    }

    /// The region's clock as this node has applied it (microseconds).
    pub fn clock(&self) -> Result<u64, ApiError> {
        Ok(crate::apply::entry::clock(self.view.as_ref())?)
    }

    /// How many records a stream holds from `from` on, counting up to `cap` (a read pays for what it
    /// counts, so a long backlog is reported as at least `cap`).
    pub fn count_from(&self, stream_id: u64, from: Seq, cap: u64) -> Result<u64, ApiError> {
        let (start, end) = (keyspace::record_key(stream_id, from), keyspace::records_end(stream_id));
        let mut count = 0;
        for entry in self.view.scan(Family::StreamRecords, &start, Some(&end), Direction::Forward) {
            if count >= cap {
                break;
            }
            entry?;
            count += 1;
        }
        Ok(count)
    }

    /// Where to trim a stream for a retention cutoff: the last record appended before `cutoff_secs`
    /// (within the first 1 MB of records), and how many records go with it.
    pub fn trim_point(&self, stream_id: u64, cutoff_secs: f64) -> Result<Option<(Seq, usize)>, ApiError> {
        // From the horizon on, one record at a time, stopping at the first one not due: the work is
        // what is due (capped per proposal), never the whole stream.
        let stream = self.stream_by_id(stream_id)?;
        let from = keyspace::record_key(stream_id, Seq::from_number(stream.trimmed_through).next());
        let end = keyspace::records_end(stream_id);
        let mut point = None;
        for (count, entry) in self
            .view
            .scan(Family::StreamRecords, &from, Some(&end), Direction::Forward)
            .take(MAX_TRIMMED_PER_ENTRY)
            .enumerate()
        {
            let (key, value) = entry?;
            let record: StreamRecord = engine::decode("stream record", &value)?;
            let appended = record.dynamodb.as_ref().map_or(0.0, |d| d.approximate_creation_date_time);
            if appended >= cutoff_secs {
                break;
            }
            let (_, seq) = keyspace::parse_record_key(&key).expect("16-byte record keys");
            point = Some((seq, count + 1));
        }
        Ok(point)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Memory, WriteSet};

    /// While a snapshot is being installed, stream reads are refused: the records, horizons and clock
    /// are only partly the snapshot's.
    #[test]
    fn stream_reads_are_refused_while_a_snapshot_is_installed() {
        let engine = Arc::new(Memory::new());
        let streams = StreamReader::new(engine.clone());
        assert!(streams.at_one_point().is_ok());
        let mut marker = WriteSet::default();
        marker.put(Family::Raft, keyspace::RaftKey::InstallingSnapshot.key(), b"installing");
        engine.write(marker, true).unwrap();
        let refused = streams.at_one_point().err().expect("refused while installing");
        assert_eq!(refused.kind, tern_proto::ErrorKind::ServiceUnavailable);
    }
}
