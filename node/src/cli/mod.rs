//! The `tern` command line: server roles, and a client whose verbs and flags mirror `aws dynamodb`.

pub mod batches;
pub mod cluster;
pub mod input;
pub mod items;
pub mod output;
pub mod streams;
pub mod tables;

use clap::{Parser, Subcommand};

use crate::bench::BenchArgs;
use crate::config::NodeArgs;
use crate::playground::PlaygroundArgs;

/// Tern: DynamoDB's data model and advanced features, self-hosted.
#[derive(Debug, Parser)]
#[command(name = "tern", version, about)]
pub struct Cli {
    /// Nodes of one region: URL[,URL...] (host:port or http://host:port).
    #[arg(long, global = true, env = "TERN_ENDPOINT", default_value = "127.0.0.1:7001")]
    pub endpoint: String,
    /// How long a client call may keep retrying, in seconds.
    #[arg(long, global = true, default_value_t = 15)]
    pub deadline_secs: u64,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a storage node.
    Node(NodeArgs),
    /// Start a local region of nodes as child processes, for trying Tern and for tests.
    Playground(PlaygroundArgs),
    /// Run a region's replicator: applies the other regions' changes to global tables.
    Replicator(crate::global::replicator::ReplicatorArgs),
    /// Global tables' replication: `status`.
    #[command(subcommand)]
    Replication(ReplicationCommand),
    /// Compare a table in every region, item for item with their versions; exit 1 on any difference.
    Verify(crate::global::replicator::verify::VerifyArgs),
    /// Load a running region and report throughput and latency.
    Bench(BenchArgs),
    /// Region membership and status.
    #[command(subcommand)]
    Cluster(cluster::ClusterCommand),
    CreateTable(tables::CreateTable),
    DescribeTable(tables::TableName),
    ListTables(tables::ListTables),
    DeleteTable(tables::TableName),
    UpdateTable(tables::UpdateTable),
    UpdateTimeToLive(tables::UpdateTimeToLive),
    DescribeTimeToLive(tables::TableName),
    /// DynamoDB Streams: list-streams, describe-stream, get-shard-iterator, get-records, tail.
    #[command(subcommand)]
    Streams(streams::StreamsCommand),
    PutItem(items::PutItem),
    GetItem(items::GetItem),
    DeleteItem(items::DeleteItem),
    UpdateItem(batches::UpdateItem),
    BatchGetItem(batches::BatchGetItem),
    BatchWriteItem(batches::BatchWriteItem),
    TransactWriteItems(batches::TransactWriteItems),
    TransactGetItems(batches::TransactGetItems),
    Query(items::Query),
    Scan(items::Scan),
}

#[derive(Debug, Subcommand)]
pub enum ReplicationCommand {
    /// Every global table's checkpoints, lag, safe point and tombstones, in every region (JSON).
    Status(crate::global::replicator::status::StatusArgs),
}

/// How a client command failed; the exit status follows the AWS CLI's (254 for a service error).
pub fn report_error(operation: &str, error: &anyhow::Error) -> i32 {
    if let Some(client_error) = error.downcast_ref::<tern_client::Error>() {
        if let Some(kind) = client_error.kind() {
            let message = match client_error {
                tern_client::Error::Api(e) => e.message.clone(),
                other => other.to_string(),
            };
            eprintln!("An error occurred ({kind}) when calling the {operation} operation: {message}");
            return 254;
        }
    }
    if let Some(api_error) = error.downcast_ref::<tern_proto::ApiError>() {
        eprintln!(
            "An error occurred ({}) when calling the {operation} operation: {}",
            api_error.kind, api_error.message
        );
        return 254;
    }
    eprintln!("{error:#}");
    255
}

impl Command {
    /// The DynamoDB operation name, for error messages.
    pub fn operation(&self) -> &'static str {
        match self {
            Command::CreateTable(_) => "CreateTable",
            Command::DescribeTable(_) => "DescribeTable",
            Command::ListTables(_) => "ListTables",
            Command::DeleteTable(_) => "DeleteTable",
            Command::UpdateTable(_) => "UpdateTable",
            Command::UpdateTimeToLive(_) => "UpdateTimeToLive",
            Command::DescribeTimeToLive(_) => "DescribeTimeToLive",
            Command::Streams(_) => "Streams",
            Command::PutItem(_) => "PutItem",
            Command::GetItem(_) => "GetItem",
            Command::DeleteItem(_) => "DeleteItem",
            Command::UpdateItem(_) => "UpdateItem",
            Command::BatchGetItem(_) => "BatchGetItem",
            Command::BatchWriteItem(_) => "BatchWriteItem",
            Command::TransactWriteItems(_) => "TransactWriteItems",
            Command::TransactGetItems(_) => "TransactGetItems",
            Command::Query(_) => "Query",
            Command::Scan(_) => "Scan",
            Command::Cluster(_) => "Cluster",
            Command::Replication(_) => "GetReplicationState",
            Command::Verify(_) => "ReadTableVersions",
            Command::Node(_) | Command::Playground(_) | Command::Bench(_) | Command::Replicator(_) => "",
        }
    }
}
