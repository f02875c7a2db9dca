//! `tern streams list-streams|describe-stream|get-shard-iterator|get-records|tail`.

use std::io::Write;
use std::time::Duration;

use anyhow::bail;
use clap::Subcommand;
use futures::StreamExt;
use serde_json::{json, Value as Json};
use tern_client::{Client, StartingPosition};
use tern_proto::v1::{DescribeStreamRequest, GetRecordsRequest, GetShardIteratorRequest, ListStreamsRequest};

use super::output;

#[derive(Debug, Subcommand)]
pub enum StreamsCommand {
    /// Returns an array of stream ARNs associated with the current endpoint.
    ListStreams {
        /// If this parameter is provided, then only the streams associated with this table name are returned.
        #[arg(long)]
        table_name: Option<String>,
        /// The maximum number of streams to return.
        #[arg(long)]
        limit: Option<u32>,
        /// The ARN (Amazon Resource Name) of the first item that this operation will evaluate. Use the value
        /// that was returned for LastEvaluatedStreamArn in the previous operation.
        #[arg(long)]
        exclusive_start_stream_arn: Option<String>,
    },
    /// Returns information about a stream, including the current status of the stream, its Amazon Resource
    /// Name (ARN), the composition of its shards, and its corresponding DynamoDB table.
    DescribeStream {
        /// The Amazon Resource Name (ARN) for the stream.
        #[arg(long)]
        stream_arn: String,
    },
    /// Returns a shard iterator.
    GetShardIterator {
        /// The Amazon Resource Name (ARN) for the stream.
        #[arg(long)]
        stream_arn: String,
        /// The identifier of the shard. The iterator will be returned for this shard ID.
        #[arg(long)]
        shard_id: String,
        /// Determines how the shard iterator is used to start reading stream records from the shard:
        /// TRIM_HORIZON, LATEST, AT_SEQUENCE_NUMBER or AFTER_SEQUENCE_NUMBER.
        #[arg(long)]
        shard_iterator_type: String,
        /// The sequence number of a stream record in the shard from which to start reading (with
        /// AT_SEQUENCE_NUMBER or AFTER_SEQUENCE_NUMBER).
        #[arg(long)]
        sequence_number: Option<String>,
    },
    /// Retrieves the stream records from a given shard.
    GetRecords {
        /// A shard iterator that was retrieved from a previous GetShardIterator operation. This iterator can be
        /// used to access the stream records in this shard.
        #[arg(long)]
        shard_iterator: String,
        /// The maximum number of records to return from the shard.
        #[arg(long)]
        limit: Option<u32>,
    },
    /// Prints a table's stream records, one JSON record per line, from a position.
    Tail {
        /// The table whose stream to read.
        #[arg(long)]
        table_name: String,
        /// trim-horizon, latest, or after:SEQUENCE_NUMBER.
        #[arg(long, default_value = "trim-horizon")]
        from: String,
        /// Keep waiting for new records instead of stopping once caught up.
        #[arg(long)]
        follow: bool,
        /// Read as this named consumer: resume from its saved position and save it as it goes
        /// (long-retention streams).
        #[arg(long)]
        consumer_name: Option<String>,
    },
    /// A long-retention stream's named consumers and their positions.
    ListConsumers {
        /// The Amazon Resource Name (ARN) for the stream.
        #[arg(long)]
        stream_arn: String,
    },
}

impl StreamsCommand {
    pub async fn run(&self, client: &Client) -> anyhow::Result<Json> {
        Ok(match self {
            StreamsCommand::ListStreams { table_name, limit, exclusive_start_stream_arn } => {
                let request = ListStreamsRequest {
                    table_name: table_name.clone().unwrap_or_default(),
                    limit: limit.unwrap_or(0),
                    exclusive_start_stream_arn: exclusive_start_stream_arn.clone().unwrap_or_default(),
                };
                let response = client.list_streams(request).await?;
                let streams: Vec<Json> = response
                    .streams
                    .iter()
                    .map(|s| json!({"StreamArn": s.stream_arn, "TableName": s.table_name, "StreamLabel": s.stream_label}))
                    .collect();
                let mut out = json!({ "Streams": streams });
                if !response.last_evaluated_stream_arn.is_empty() {
                    out["LastEvaluatedStreamArn"] = json!(response.last_evaluated_stream_arn);
                }
                out
            }
            StreamsCommand::DescribeStream { stream_arn } => {
                let d = client
                    .describe_stream(DescribeStreamRequest { stream_arn: stream_arn.clone(), ..Default::default() })
                    .await?
                    .stream_description
                    .unwrap_or_default();
                let shards: Vec<Json> = d
                    .shards
                    .iter()
                    .map(|s| {
                        let range = s.sequence_number_range.clone().unwrap_or_default();
                        let mut r = json!({ "StartingSequenceNumber": range.starting_sequence_number });
                        if !range.ending_sequence_number.is_empty() {
                            r["EndingSequenceNumber"] = json!(range.ending_sequence_number);
                        }
                        json!({ "ShardId": s.shard_id, "SequenceNumberRange": r })
                    })
                    .collect();
                json!({ "StreamDescription": {
                    "StreamArn": d.stream_arn, "StreamLabel": d.stream_label, "StreamStatus": d.stream_status,
                    "StreamViewType": d.stream_view_type, "CreationRequestDateTime": d.creation_request_date_time,
                    "TableName": d.table_name,
                    "KeySchema": d.key_schema.iter().map(|k| json!({"AttributeName": k.attribute_name, "KeyType": k.key_type})).collect::<Vec<_>>(),
                    "Shards": shards,
                }})
            }
            StreamsCommand::GetShardIterator { stream_arn, shard_id, shard_iterator_type, sequence_number } => {
                let request = GetShardIteratorRequest {
                    stream_arn: stream_arn.clone(),
                    shard_id: shard_id.clone(),
                    shard_iterator_type: shard_iterator_type.clone(),
                    sequence_number: sequence_number.clone().unwrap_or_default(),
                    replication: false,
                };
                json!({ "ShardIterator": client.get_shard_iterator(request).await?.shard_iterator })
            }
            StreamsCommand::GetRecords { shard_iterator, limit } => {
                let response = client
                    .get_records(GetRecordsRequest {
                        shard_iterator: shard_iterator.clone(),
                        limit: limit.unwrap_or(0),
                        wait_millis: 0,
                    })
                    .await?;
                let mut out = json!({ "Records": response.records.iter().map(output::record).collect::<Vec<_>>() });
                if !response.next_shard_iterator.is_empty() {
                    out["NextShardIterator"] = json!(response.next_shard_iterator);
                }
                out
            }
            StreamsCommand::ListConsumers { stream_arn } => {
                let response = client
                    .list_consumers(tern_proto::v1::ListConsumersRequest { stream_arn: stream_arn.clone() })
                    .await?;
                let consumers: Vec<Json> = response
                    .consumers
                    .iter()
                    .map(|c| json!({"ConsumerName": c.consumer_name, "SequenceNumber": c.sequence_number, "UpdatedAt": c.updated_at}))
                    .collect();
                json!({ "Consumers": consumers })
            }
            StreamsCommand::Tail { table_name, from, follow, consumer_name } => {
                let start = match from.as_str() {
                    "trim-horizon" => StartingPosition::TrimHorizon,
                    "latest" => StartingPosition::Latest,
                    other => match other.strip_prefix("after:") {
                        Some(sequence) => StartingPosition::After(sequence.to_string()),
                        None => bail!("--from takes trim-horizon, latest or after:SEQUENCE_NUMBER"),
                    },
                };
                let (arn, shard) = client.table_stream(table_name).await?;
                if arn.is_empty() {
                    bail!("table {table_name} has no stream; enable one with update-table --stream-specification");
                }
                let poll = Duration::from_millis(100);
                let mut stdout = std::io::stdout();
                match consumer_name {
                    Some(name) => {
                        let records = client.consume_as(arn, shard, name.clone(), *follow, poll).await?;
                        futures::pin_mut!(records);
                        while let Some(record) = records.next().await {
                            writeln!(stdout, "{}", output::record(&record?))?;
                            stdout.flush()?;
                        }
                    }
                    None => {
                        let records = client.consume(arn, shard, start, *follow, poll);
                        futures::pin_mut!(records);
                        while let Some(record) = records.next().await {
                            writeln!(stdout, "{}", output::record(&record?))?;
                            stdout.flush()?;
                        }
                    }
                }
                json!({})
            }
        })
    }
}
