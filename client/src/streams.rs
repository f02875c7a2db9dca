//! Change streams: DynamoDB Streams' calls, and a consumer that yields a table's records in order as an
//! async stream, resuming on any node after failures without losing or repeating a record.

use std::time::Duration;

use futures::Stream;
use tern_proto::v1::*;
use tern_proto::ErrorKind;

use crate::{request, Client, Error, Patience};

/// Where a consumer starts reading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartingPosition {
    /// The oldest record still kept.
    TrimHorizon,
    /// Only records written from now on.
    Latest,
    /// The record with this sequence number, and those after it.
    At(String),
    /// The records after this sequence number.
    After(String),
}

impl StartingPosition {
    fn request(&self, stream_arn: &str, shard_id: &str) -> GetShardIteratorRequest {
        let (kind, sequence) = match self {
            StartingPosition::TrimHorizon => ("TRIM_HORIZON", String::new()),
            StartingPosition::Latest => ("LATEST", String::new()),
            StartingPosition::At(s) => ("AT_SEQUENCE_NUMBER", s.clone()),
            StartingPosition::After(s) => ("AFTER_SEQUENCE_NUMBER", s.clone()),
        };
        GetShardIteratorRequest {
            stream_arn: stream_arn.into(),
            shard_id: shard_id.into(),
            shard_iterator_type: kind.into(),
            sequence_number: sequence,
            replication: false,
        }
    }
}

macro_rules! streams_operation {
    ($(#[$doc:meta])* $name:ident, $request:ty, $response:ty, $patience:expr) => {
        $(#[$doc])*
        pub async fn $name(&self, message: $request) -> Result<$response, Error> {
            let patience: fn(&$request) -> Patience = $patience;
            self.streams_call(patience(&message), |mut client, timeout| {
                let message = message.clone();
                async move { client.$name(request(message, timeout)).await }
            })
            .await
        }
    };
}

impl Client {
    streams_operation!(/// ListStreams.
        list_streams, ListStreamsRequest, ListStreamsResponse, |_| Patience::Attempt);
    streams_operation!(/// DescribeStream.
        describe_stream, DescribeStreamRequest, DescribeStreamResponse, |_| Patience::Attempt);
    streams_operation!(/// GetShardIterator.
        get_shard_iterator, GetShardIteratorRequest, GetShardIteratorResponse, |_| Patience::Attempt);
    streams_operation!(/// GetRecords; a long poll (`wait_millis`) gets that much longer to answer.
        get_records, GetRecordsRequest, GetRecordsResponse,
        |m| Patience::AttemptAnd(Duration::from_millis(m.wait_millis.into())));
    streams_operation!(/// Saves a named consumer's position (long-retention streams).
        put_consumer_position, PutConsumerPositionRequest, PutConsumerPositionResponse, |_| Patience::Attempt);
    streams_operation!(/// A stream's named consumers and their positions.
        list_consumers, ListConsumersRequest, ListConsumersResponse, |_| Patience::Attempt);

    /// Like [`Client::consume`], from a named consumer's saved position (the oldest record when it has
    /// none), saving its position durably in the region each time it fetches a new page: records
    /// handed out since the last save may come again after a crash of the consumer (at least once).
    pub async fn consume_as(
        &self,
        stream_arn: String,
        shard_id: String,
        consumer_name: String,
        follow: bool,
        poll: Duration,
    ) -> Result<impl Stream<Item = Result<StreamRecord, Error>> + '_, Error> {
        let consumers = self.list_consumers(ListConsumersRequest { stream_arn: stream_arn.clone() }).await?;
        let start = consumers
            .consumers
            .into_iter()
            .find(|c| c.consumer_name == consumer_name)
            .map(|c| StartingPosition::After(c.sequence_number))
            .unwrap_or(StartingPosition::TrimHorizon);
        Ok(self.records(stream_arn, shard_id, start, follow, poll, Some(consumer_name)))
    }

    /// The ARN and shard of a table's current stream.
    pub async fn table_stream(&self, table: &str) -> Result<(String, String), Error> {
        let table =
            self.describe_table(DescribeTableRequest { table_name: table.into() }).await?.table.unwrap_or_default();
        let arn = table.latest_stream_arn;
        let description =
            self.describe_stream(DescribeStreamRequest { stream_arn: arn.clone(), ..Default::default() }).await?;
        let shard = description
            .stream_description
            .and_then(|d| d.shards.into_iter().next())
            .map(|s| s.shard_id)
            .unwrap_or_default();
        Ok((arn, shard))
    }

    /// Every record of a stream from `start`, in order, as they come. With `follow` it waits for new
    /// records (polling every `poll`); without, it ends once it has caught up. It also ends when the
    /// stream is disabled and read to its end. An expired iterator is renewed after the last record seen.
    pub fn consume(
        &self,
        stream_arn: String,
        shard_id: String,
        start: StartingPosition,
        follow: bool,
        poll: Duration,
    ) -> impl Stream<Item = Result<StreamRecord, Error>> + '_ {
        self.records(stream_arn, shard_id, start, follow, poll, None)
    }

    fn records(
        &self,
        stream_arn: String,
        shard_id: String,
        start: StartingPosition,
        follow: bool,
        poll: Duration,
        consumer: Option<String>,
    ) -> impl Stream<Item = Result<StreamRecord, Error>> + '_ {
        struct State {
            saved: Option<String>,
            iterator: Option<String>,
            last: Option<String>,
            start: StartingPosition,
            buffer: std::collections::VecDeque<StreamRecord>,
            done: bool,
        }
        let state = State { saved: None, iterator: None, last: None, start, buffer: Default::default(), done: false };
        futures::stream::unfold(state, move |mut state| {
            let (stream_arn, shard_id, consumer) = (stream_arn.clone(), shard_id.clone(), consumer.clone());
            async move {
                loop {
                    if let Some(record) = state.buffer.pop_front() {
                        state.last = record.dynamodb.as_ref().map(|d| d.sequence_number.clone());
                        return Some((Ok(record), state));
                    }
                    // Everything handed out so far has been taken: save the position before reading on.
                    if let (Some(name), Some(last)) = (&consumer, &state.last) {
                        if state.saved.as_ref() != Some(last) {
                            let save = PutConsumerPositionRequest {
                                stream_arn: stream_arn.clone(),
                                consumer_name: name.clone(),
                                sequence_number: last.clone(),
                            };
                            if let Err(e) = self.put_consumer_position(save).await {
                                state.done = true;
                                return Some((Err(e), state));
                            }
                            state.saved = Some(last.clone());
                        }
                    }
                    if state.done {
                        return None;
                    }
                    let iterator = match state.iterator.take() {
                        Some(iterator) => iterator,
                        None => {
                            let start =
                                state.last.clone().map(StartingPosition::After).unwrap_or_else(|| state.start.clone());
                            match self.get_shard_iterator(start.request(&stream_arn, &shard_id)).await {
                                Ok(response) => response.shard_iterator,
                                Err(e) => {
                                    state.done = true;
                                    return Some((Err(e), state));
                                }
                            }
                        }
                    };
                    match self
                        .get_records(GetRecordsRequest {
                            shard_iterator: iterator.clone(),
                            limit: 1000,
                            wait_millis: 0,
                        })
                        .await
                    {
                        Ok(page) => {
                            let empty = page.records.is_empty();
                            state.buffer.extend(page.records);
                            if page.next_shard_iterator.is_empty() {
                                state.done = true;
                                continue;
                            }
                            state.iterator = Some(page.next_shard_iterator);
                            if empty {
                                if !follow {
                                    state.done = true;
                                    continue;
                                }
                                tokio::time::sleep(poll).await;
                            }
                        }
                        Err(e) if e.kind() == Some(ErrorKind::ExpiredIteratorException) => state.iterator = None,
                        Err(e) => {
                            state.done = true;
                            return Some((Err(e), state));
                        }
                    }
                }
            }
        })
    }
}
