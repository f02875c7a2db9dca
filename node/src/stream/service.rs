//! The `tern.v1.Streams` service: DynamoDB Streams' API over the records every node holds, plus a
//! server-streaming Subscribe. Any node serves it from its local state.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use futures::Stream;
use prost::Message;
use tern_proto::internal::{ShardIteratorToken, StoredStream};
use tern_proto::v1::streams_server::Streams;
use tern_proto::v1::*;
use tern_proto::{ApiError, ErrorKind};
use tonic::{Request, Response, Status};

use super::reader::StreamReader;
use super::trim::StreamSettings;
use super::{check_not_trimmed, first_position, shard_id, StreamStatus};
use crate::clock;
use crate::keyspace::Seq;
use crate::routing::{Caller, RegionNode};

/// Readers of a 24-hour stream's shard at once, as in DynamoDB Streams.
pub const MAX_READERS_PER_SHARD: usize = 2;
/// How long a reader counts as reading after its last call.
const READER_IDLE: Duration = Duration::from_secs(5);
/// GetRecords counts the records left after its page up to this many.
pub const MAX_COUNTED_BEHIND: u64 = 10_000;
/// Longest GetRecords long poll.
pub const MAX_WAIT_MILLIS: u32 = 5_000;

/// Serves `tern.v1.Streams` on one node.
pub struct StreamsService {
    node: RegionNode,
    streams: StreamReader,
    settings: StreamSettings,
    readers: Arc<Mutex<HashMap<u64, HashMap<u64, Instant>>>>,
    next_reader: AtomicU64,
}

fn parse_sequence(text: &str) -> Result<Seq, ApiError> {
    Seq::parse(text).ok_or_else(|| ApiError::validation(format!("Invalid SequenceNumber: {text}")))
}

fn encode(token: &ShardIteratorToken) -> String {
    URL_SAFE_NO_PAD.encode(token.encode_to_vec())
}

fn decode(text: &str) -> Result<ShardIteratorToken, ApiError> {
    URL_SAFE_NO_PAD
        .decode(text)
        .ok()
        .and_then(|bytes| ShardIteratorToken::decode(bytes.as_slice()).ok())
        .ok_or_else(|| ApiError::validation(format!("Invalid ShardIterator: {text}")))
}

impl StreamsService {
    pub fn new(node: RegionNode, streams: StreamReader, settings: StreamSettings) -> Self {
        StreamsService {
            node,
            streams,
            settings,
            readers: Arc::default(),
            next_reader: AtomicU64::new(clock::now_micros()),
        }
    }

    /// The position just after everything applied so far.
    fn next_position(&self, stream: &StoredStream) -> Seq {
        let applied = self.node.raft.metrics().borrow().last_applied.map_or(0, |id| id.index);
        Seq::first_of(applied + 1).max(first_position(stream))
    }

    /// Where an iterator of the given type starts.
    fn start(&self, stream: &StoredStream, kind: &str, sequence: &str) -> Result<Seq, ApiError> {
        match kind {
            "TRIM_HORIZON" => self.streams.at_one_point()?.trim_horizon(stream.stream_id),
            "LATEST" => Ok(match self.streams.at_one_point()?.bounds(stream.stream_id)? {
                Some((_, last)) => last.next().max(self.next_position(stream)),
                None => self.next_position(stream),
            }),
            "AT_SEQUENCE_NUMBER" | "AFTER_SEQUENCE_NUMBER" => {
                let n = parse_sequence(sequence)?;
                // Only records at or after the start matter: after a trimmed record whose successors
                // are all still here, nothing is missing.
                let start = if kind == "AFTER_SEQUENCE_NUMBER" { n.next() } else { n };
                check_not_trimmed(stream, start)?;
                Ok(start)
            }
            other => Err(ApiError::validation(format!(
                "1 validation error detected: Value '{other}' at 'shardIteratorType' failed to satisfy constraint: Member must satisfy enum value set: [AFTER_SEQUENCE_NUMBER, LATEST, AT_SEQUENCE_NUMBER, TRIM_HORIZON]"
            ))),
        }
    }

    /// Counts a reader of a 24-hour stream; a third one at once is refused.
    fn check_reader(&self, stream: &StoredStream, reader: u64) -> Result<(), ApiError> {
        if stream.retention_days != 0 {
            return Ok(());
        }
        let mut readers = self.readers.lock().expect("reader table lock");
        let shard = readers.entry(stream.stream_id).or_default();
        let now = Instant::now();
        shard.retain(|_, seen| now.duration_since(*seen) < READER_IDLE);
        if !shard.contains_key(&reader) && shard.len() >= MAX_READERS_PER_SHARD {
            return Err(ApiError::new(
                ErrorKind::LimitExceededException,
                format!(
                    "Rate exceeded for shard {}: at most {MAX_READERS_PER_SHARD} readers may read a shard at once",
                    shard_id(stream.stream_id)
                ),
            ));
        }
        shard.insert(reader, now);
        Ok(())
    }

    fn describe(&self, stream: &StoredStream) -> Result<StreamDescription, ApiError> {
        let ending = (StreamStatus::of(stream) == StreamStatus::Disabled)
            .then(|| Seq::from_number(stream.last_sequence).max(first_position(stream)).text());
        let starting = self.streams.at_one_point()?.trim_horizon(stream.stream_id)?;
        Ok(StreamDescription {
            stream_arn: stream.stream_arn.clone(),
            stream_label: stream.stream_label.clone(),
            stream_status: stream.stream_status.clone(),
            stream_view_type: stream.stream_view_type.clone(),
            creation_request_date_time: stream.created_at_micros as f64 / 1e6,
            table_name: stream.table_name.clone(),
            key_schema: stream.key_schema.clone(),
            shards: vec![Shard {
                shard_id: shard_id(stream.stream_id),
                sequence_number_range: Some(SequenceNumberRange {
                    starting_sequence_number: starting.text(),
                    ending_sequence_number: ending.unwrap_or_default(),
                }),
                parent_shard_id: String::new(),
            }],
            last_evaluated_shard_id: String::new(),
            retention_days: stream.retention_days,
        })
    }

    /// One GetRecords: the records at the iterator's position and the iterator after them.
    fn read(&self, request: GetRecordsRequest) -> Result<GetRecordsResponse, ApiError> {
        let token = decode(&request.shard_iterator)?;
        let age = clock::now_micros().saturating_sub(token.issued_at_micros);
        if age > self.settings.iterator_ttl.as_micros() as u64 {
            return Err(ApiError::new(
                ErrorKind::ExpiredIteratorException,
                "Iterator expired. The iterator was created more than 15 minutes ago.",
            ));
        }
        if request.limit > 1000 {
            return Err(ApiError::validation(format!(
                "1 validation error detected: Value '{}' at 'limit' failed to satisfy constraint: Member must have value less than or equal to 1000",
                request.limit
            )));
        }
        // The horizon, the records and the clock from one view: a trim cannot fall between them.
        let view = self.streams.at_one_point()?;
        let stream = view.stream_by_id(token.stream_id)?;
        if !token.replication {
            self.check_reader(&stream, token.reader_id)?;
        }
        let from = Seq::from_number(token.position);
        check_not_trimmed(&stream, from)?;
        let limit = if request.limit == 0 { 1000 } else { request.limit as usize };
        // The clock at this view: every change applied after it has a later timestamp.
        let clock = view.clock()?;
        let records = view.records(stream.stream_id, from, limit)?;
        let position = records.last().map_or(from, |(seq, _)| seq.next());
        let records_behind = view.count_from(stream.stream_id, position, MAX_COUNTED_BEHIND)?;
        let closed = StreamStatus::of(&stream) == StreamStatus::Disabled && position.number() > stream.last_sequence;
        let next = ShardIteratorToken { position: position.number(), issued_at_micros: clock::now_micros(), ..token };
        Ok(GetRecordsResponse {
            records: records.into_iter().map(|(_, r)| r).collect(),
            next_shard_iterator: if closed { String::new() } else { encode(&next) },
            records_behind,
            watermark_micros: if records_behind == 0 { clock } else { 0 },
        })
    }
}

/// The records Subscribe sends: the nodes' own, and the ones a cache node relays.
pub type RecordStream = Pin<Box<dyn Stream<Item = Result<StreamRecord, Status>> + Send>>;

#[tonic::async_trait]
impl Streams for StreamsService {
    type SubscribeStream = RecordStream;

    async fn list_streams(
        &self,
        request: Request<ListStreamsRequest>,
    ) -> Result<Response<ListStreamsResponse>, Status> {
        let request = request.into_inner();
        let limit = if request.limit == 0 { 100 } else { request.limit as usize };
        let mut streams: Vec<StoredStream> = self.streams.streams()?;
        streams.retain(|s| request.table_name.is_empty() || s.table_name == request.table_name);
        if !request.exclusive_start_stream_arn.is_empty() {
            let after =
                streams.iter().position(|s| s.stream_arn == request.exclusive_start_stream_arn).map_or(0, |i| i + 1);
            streams.drain(..after);
        }
        let more = streams.len() > limit;
        streams.truncate(limit);
        let last = if more { streams.last().map(|s| s.stream_arn.clone()).unwrap_or_default() } else { String::new() };
        let summaries = streams
            .into_iter()
            .map(|s| StreamSummary { stream_arn: s.stream_arn, table_name: s.table_name, stream_label: s.stream_label })
            .collect();
        Ok(Response::new(ListStreamsResponse { streams: summaries, last_evaluated_stream_arn: last }))
    }

    async fn describe_stream(
        &self,
        request: Request<DescribeStreamRequest>,
    ) -> Result<Response<DescribeStreamResponse>, Status> {
        let stream = self.streams.stream(&request.into_inner().stream_arn)?;
        Ok(Response::new(DescribeStreamResponse { stream_description: Some(self.describe(&stream)?) }))
    }

    async fn get_shard_iterator(
        &self,
        request: Request<GetShardIteratorRequest>,
    ) -> Result<Response<GetShardIteratorResponse>, Status> {
        let request = request.into_inner();
        let stream = self.streams.stream(&request.stream_arn)?;
        if request.shard_id != shard_id(stream.stream_id) {
            return Err(ApiError::not_found(format!(
                "Requested resource not found: Shard {} not found",
                request.shard_id
            ))
            .into());
        }
        let position = self.start(&stream, &request.shard_iterator_type, &request.sequence_number)?;
        let reader_id = self.next_reader.fetch_add(1, Ordering::Relaxed);
        if !request.replication {
            self.check_reader(&stream, reader_id)?;
        }
        let token = ShardIteratorToken {
            stream_id: stream.stream_id,
            position: position.number(),
            issued_at_micros: clock::now_micros(),
            reader_id,
            replication: request.replication,
        };
        Ok(Response::new(GetShardIteratorResponse { shard_iterator: encode(&token) }))
    }

    async fn get_records(&self, request: Request<GetRecordsRequest>) -> Result<Response<GetRecordsResponse>, Status> {
        let request = request.into_inner();
        let wait = Duration::from_millis(request.wait_millis.min(MAX_WAIT_MILLIS) as u64);
        let until = Instant::now() + wait;
        let mut applied = self.node.raft.metrics();
        loop {
            let started = Instant::now();
            let response = self.read(request.clone());
            metrics::histogram!("tern_stream_get_records_seconds").record(started.elapsed().as_secs_f64());
            let response = response?;
            let remaining = until.saturating_duration_since(Instant::now());
            if !response.records.is_empty() || response.next_shard_iterator.is_empty() || remaining.is_zero() {
                return Ok(Response::new(response));
            }
            // Long poll: read again when the state machine applies more, until the wait is over.
            if let Ok(Err(_)) = tokio::time::timeout(remaining, applied.changed()).await {
                return Ok(Response::new(response)); // Raft is shutting down.
            }
        }
    }

    async fn put_consumer_position(
        &self,
        request: Request<PutConsumerPositionRequest>,
    ) -> Result<Response<PutConsumerPositionResponse>, Status> {
        self.node.write(Caller::of(&request), request.into_inner()).await.map(Response::new)
    }

    async fn list_consumers(
        &self,
        request: Request<ListConsumersRequest>,
    ) -> Result<Response<ListConsumersResponse>, Status> {
        let stream = self.streams.stream(&request.into_inner().stream_arn)?;
        Ok(Response::new(ListConsumersResponse { consumers: self.streams.consumers(stream.stream_id)? }))
    }

    async fn subscribe(&self, request: Request<SubscribeRequest>) -> Result<Response<Self::SubscribeStream>, Status> {
        let request = request.into_inner();
        let stream = self.streams.stream(&request.stream_arn)?;
        let mut position = self.start(&stream, &request.shard_iterator_type, &request.sequence_number)?;
        let (sender, receiver) = tokio::sync::mpsc::channel::<Result<StreamRecord, Status>>(256);
        let (reader, mut applied) = (self.streams.clone(), self.node.raft.metrics());
        let stream_id = stream.stream_id;
        tokio::spawn(async move {
            loop {
                // Every step checks the horizon against the records it reads, from one view.
                let step = || {
                    let view = reader.at_one_point()?;
                    check_not_trimmed(&view.stream_by_id(stream_id)?, position)?;
                    view.records(stream_id, position, 1000)
                };
                let records = match step() {
                    Ok(records) => records,
                    Err(e) => {
                        let _ = sender.send(Err(e.into())).await;
                        return;
                    }
                };
                if let Some((last, _)) = records.last() {
                    position = last.next();
                }
                let caught_up = records.is_empty();
                for (_, record) in records {
                    if sender.send(Ok(record)).await.is_err() {
                        return;
                    }
                }
                if caught_up {
                    // Wake when the state machine applies more, or poll again shortly.
                    let _ = tokio::time::timeout(Duration::from_millis(200), applied.changed()).await;
                    if sender.is_closed() {
                        return;
                    }
                }
            }
        });
        Ok(Response::new(Box::pin(tokio_stream::wrappers::ReceiverStream::new(receiver))))
    }
}
