//! The `tern` command line: server roles, and a client whose verbs and flags mirror `aws dynamodb`.

pub mod backups;
pub mod batches;
pub mod cluster;
pub mod exports;
pub mod health;
pub mod imports;
pub mod input;
pub mod items;
pub mod output;
pub mod paging;
pub mod progress;
pub mod streams;
pub mod tables;

use clap::{Parser, Subcommand};

use crate::bench::BenchArgs;
use crate::config::NodeArgs;
use crate::playground::PlaygroundArgs;

/// Tern: DynamoDB's data model and advanced features, self-hosted.
#[derive(Debug, Parser)]
#[command(name = "tern", version)]
pub struct Cli {
    /// Nodes of one region: URL[,URL...] (host:port or http://host:port).
    #[arg(long, global = true, env = "TERN_ENDPOINT", default_value = "127.0.0.1:7001")]
    pub endpoint: String,
    /// How long a client call may keep retrying, in seconds.
    #[arg(long, global = true, default_value_t = 15)]
    pub deadline_secs: u64,
    /// How long one attempt of an item or stream call may wait for a node's answer before the call is
    /// retried on another node (writes stay exactly-once), in milliseconds.
    #[arg(long, global = true, default_value_t = 2000, value_parser = clap::value_parser!(u64).range(1..))]
    pub attempt_timeout_ms: u64,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a storage node.
    ///
    /// Every flag may instead come from the `--config` TOML file; flags given on the command line win.
    Node(NodeArgs),
    /// Start a local region of nodes as child processes, for trying Tern and for tests.
    Playground(PlaygroundArgs),
    /// Run a region's replicator: applies the other regions' changes to global tables.
    Replicator(crate::global::replicator::ReplicatorArgs),
    /// Run a cache node of a region (like DAX), or `status` of one.
    #[command(args_conflicts_with_subcommands = true)]
    Cache(crate::cache::CacheArgs),
    /// Global tables' replication: `status`.
    #[command(subcommand)]
    Replication(ReplicationCommand),
    /// Chaos-test a compose deployment: a workload in every region, faults and heals, then a checker.
    Chaos(crate::chaos::ChaosArgs),
    /// A container's health check: exit 0 when the URL (a metrics endpoint) answers 2xx.
    Health(health::HealthArgs),
    /// Compare a table in every region, item for item with their versions; exit 1 on any difference.
    Verify(crate::global::replicator::verify::VerifyArgs),
    /// Load a running region and report throughput and latency.
    Bench(BenchArgs),
    /// Region membership and status: `status`, `add-node`, `remove-node`.
    #[command(subcommand)]
    Cluster(cluster::ClusterCommand),
    /// The CreateTable operation adds a new table to the region.
    CreateTable(tables::CreateTable),
    /// Returns information about the table, including the current status of the table, when it was
    /// created, and the primary key schema.
    #[command(mut_arg("table_name", |a| a.help("The name of the table to describe")))]
    DescribeTable(tables::TableName),
    /// Returns an array of table names associated with the current endpoint.
    ListTables(tables::ListTables),
    /// The DeleteTable operation deletes a table and all of its items.
    #[command(mut_arg("table_name", |a| a.help("The name of the table to delete")))]
    DeleteTable(tables::TableName),
    /// Modifies the DynamoDB Streams settings or the replicas (global table regions) of a given table.
    UpdateTable(tables::UpdateTable),
    /// The UpdateTimeToLive method enables or disables Time to Live (TTL) for the specified table.
    UpdateTimeToLive(tables::UpdateTimeToLive),
    /// Gives a description of the Time to Live (TTL) status on the specified table.
    #[command(mut_arg("table_name", |a| a.help("The name of the table to be described")))]
    DescribeTimeToLive(tables::TableName),
    /// UpdateContinuousBackups enables or disables point in time recovery for the specified table.
    UpdateContinuousBackups(backups::UpdateContinuousBackups),
    /// Checks the status of continuous backups and point in time recovery on the specified table.
    #[command(mut_arg("table_name", |a| a.help(
        "Name of the table for which the customer wants to check the continuous backups and point in time \
         recovery settings"
    )))]
    DescribeContinuousBackups(tables::TableName),
    /// Restores the specified table to the specified point in time within EarliestRestorableDateTime and
    /// LatestRestorableDateTime, as a new table.
    RestoreTableToPointInTime(backups::RestoreTableToPointInTime),
    /// Creates a new table from an existing backup.
    RestoreTableFromBackup(backups::RestoreTableFromBackup),
    /// Creates a backup for an existing table.
    CreateBackup(backups::CreateBackup),
    /// Describes an existing backup of a table.
    DescribeBackup(backups::BackupArn),
    /// Lists the backups of the region's tables, or of one table, made in a time range.
    ListBackups(backups::ListBackups),
    /// Deletes an existing backup of a table.
    DeleteBackup(backups::BackupArn),
    /// Exports table data to an S3 bucket: a bucket of the nodes' `--buckets`. The table must have point in
    /// time recovery enabled, and you can export data from any time within the point in time recovery window.
    ExportTableToPointInTime(exports::ExportTableToPointInTime),
    /// Describes an existing table export.
    DescribeExport(exports::DescribeExport),
    /// Lists the region's exports, or one table's.
    ListExports(exports::ListExports),
    /// Imports table data from an S3 bucket (a bucket of the nodes' `--buckets`) into a new table.
    ImportTable(imports::ImportTable),
    /// Represents the properties of the import.
    DescribeImport(imports::DescribeImport),
    /// Lists the region's imports, or one table's.
    ListImports(imports::ListImports),
    /// DynamoDB Streams: list-streams, describe-stream, get-shard-iterator, get-records, tail, list-consumers.
    #[command(subcommand)]
    Streams(streams::StreamsCommand),
    /// Creates a new item, or replaces an old item with a new item.
    PutItem(items::PutItem),
    /// The GetItem operation returns a set of attributes for the item with the given primary key.
    GetItem(items::GetItem),
    /// Deletes a single item in a table by primary key.
    DeleteItem(items::DeleteItem),
    /// Edits an existing item's attributes, or adds a new item to the table if it does not already exist.
    UpdateItem(batches::UpdateItem),
    /// The BatchGetItem operation returns the attributes of one or more items from one or more tables.
    BatchGetItem(batches::BatchGetItem),
    /// The BatchWriteItem operation puts or deletes multiple items in one or more tables.
    BatchWriteItem(batches::BatchWriteItem),
    /// TransactWriteItems is a synchronous write operation that groups up to 100 action requests.
    TransactWriteItems(batches::TransactWriteItems),
    /// TransactGetItems is a synchronous operation that atomically retrieves multiple items from one or
    /// more tables.
    TransactGetItems(batches::TransactGetItems),
    /// The Query operation finds items based on primary key values.
    Query(items::Query),
    /// The Scan operation returns one or more items and item attributes by accessing every item in a table.
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
            Command::UpdateContinuousBackups(_) => "UpdateContinuousBackups",
            Command::DescribeContinuousBackups(_) => "DescribeContinuousBackups",
            Command::RestoreTableToPointInTime(_) => "RestoreTableToPointInTime",
            Command::RestoreTableFromBackup(_) => "RestoreTableFromBackup",
            Command::CreateBackup(_) => "CreateBackup",
            Command::DescribeBackup(_) => "DescribeBackup",
            Command::ListBackups(_) => "ListBackups",
            Command::DeleteBackup(_) => "DeleteBackup",
            Command::ExportTableToPointInTime(_) => "ExportTableToPointInTime",
            Command::DescribeExport(_) => "DescribeExport",
            Command::ListExports(_) => "ListExports",
            Command::ImportTable(_) => "ImportTable",
            Command::DescribeImport(_) => "DescribeImport",
            Command::ListImports(_) => "ListImports",
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
            Command::Node(_)
            | Command::Playground(_)
            | Command::Bench(_)
            | Command::Replicator(_)
            | Command::Cache(_)
            | Command::Health(_)
            | Command::Chaos(_) => "",
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    /// The built command tree: global flags propagated, clap's `--help` and `--version` added.
    fn built() -> clap::Command {
        let mut cli = Cli::command();
        cli.build();
        cli
    }

    fn text(styled: Option<&clap::builder::StyledStr>) -> String {
        styled.map(|s| s.to_string().trim().to_string()).unwrap_or_default()
    }

    /// Collects, under `path`, every verb without an about, every flag without help, and every two
    /// sibling verbs with the same about (a shared flag group's doc comment taken as their description).
    fn check(command: &clap::Command, path: &str, problems: &mut Vec<String>) {
        if text(command.get_about()).is_empty() {
            problems.push(format!("`{path}` has no description"));
        }
        for arg in command.get_arguments() {
            let builtin = matches!(arg.get_id().as_str(), "help" | "version");
            if !builtin && text(arg.get_help()).is_empty() {
                problems.push(format!("`{path}` --{} has no help", arg.get_long().unwrap_or(arg.get_id().as_str())));
            }
        }
        let mut verbs_by_about: BTreeMap<String, Vec<&str>> = BTreeMap::new();
        // clap's own `help` verb lists the others' names only.
        for verb in command.get_subcommands().filter(|verb| verb.get_name() != "help") {
            verbs_by_about.entry(text(verb.get_about())).or_default().push(verb.get_name());
            check(verb, &format!("{path} {}", verb.get_name()), problems);
        }
        for (about, verbs) in verbs_by_about {
            if verbs.len() > 1 {
                problems.push(format!("`{path}` verbs {verbs:?} share one description: {about:?}"));
            }
        }
    }

    #[test]
    fn every_verb_and_flag_explains_itself() {
        let mut problems = Vec::new();
        check(&built(), "tern", &mut problems);
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }

    /// The about a flag group's (or a verb's args struct's) doc comment gives a command it is part of.
    fn about_of<T: clap::Args>() -> String {
        text(T::augment_args(clap::Command::new("args")).get_about())
    }

    /// A verb without a doc comment of its own takes that of its args struct, or of a flag group flattened
    /// into it: no verb may show one.
    #[test]
    fn no_args_structs_doc_is_a_verbs_description() {
        let structs = [
            about_of::<items::Conditional>(),
            about_of::<items::Paging>(),
            about_of::<items::PutItem>(),
            about_of::<items::GetItem>(),
            about_of::<items::DeleteItem>(),
            about_of::<items::Query>(),
            about_of::<items::Scan>(),
            about_of::<batches::UpdateItem>(),
            about_of::<batches::BatchGetItem>(),
            about_of::<batches::BatchWriteItem>(),
            about_of::<batches::TransactWriteItems>(),
            about_of::<batches::TransactGetItems>(),
            about_of::<tables::TableName>(),
            about_of::<tables::CreateTable>(),
            about_of::<tables::ListTables>(),
            about_of::<tables::UpdateTable>(),
            about_of::<tables::UpdateTimeToLive>(),
            about_of::<backups::UpdateContinuousBackups>(),
            about_of::<backups::RestoreTarget>(),
            about_of::<backups::RestoreTableToPointInTime>(),
            about_of::<backups::RestoreTableFromBackup>(),
            about_of::<backups::CreateBackup>(),
            about_of::<backups::BackupArn>(),
            about_of::<backups::ListBackups>(),
            about_of::<exports::ExportTableToPointInTime>(),
            about_of::<exports::DescribeExport>(),
            about_of::<exports::ListExports>(),
            about_of::<imports::ImportTable>(),
            about_of::<imports::DescribeImport>(),
            about_of::<imports::ListImports>(),
            about_of::<NodeArgs>(),
            about_of::<PlaygroundArgs>(),
            about_of::<BenchArgs>(),
            about_of::<crate::global::replicator::ReplicatorArgs>(),
            about_of::<crate::cache::CacheArgs>(),
            about_of::<crate::global::replicator::status::StatusArgs>(),
            about_of::<crate::global::replicator::verify::VerifyArgs>(),
        ];
        assert!(!about_of::<items::Conditional>().is_empty(), "the check needs a documented flag group");
        fn walk(command: &clap::Command, structs: &[String], path: &str) {
            for verb in command.get_subcommands() {
                let path = format!("{path} {}", verb.get_name());
                let about = text(verb.get_about());
                assert!(!structs.contains(&about), "`{path}` is described by an args struct's doc: {about:?}");
                walk(verb, structs, &path);
            }
        }
        walk(&built(), &structs, "tern");
    }

    fn help(path: &[&str]) -> String {
        let mut command = built();
        for name in path {
            command = command.find_subcommand(name).unwrap_or_else(|| panic!("no verb {name}")).clone();
        }
        command.render_long_help().to_string()
    }

    #[test]
    fn help_uses_dynamodbs_words_and_no_flag_groups_doc() {
        let top = help(&[]);
        println!("$ tern --help\n{top}");
        assert!(top.starts_with("Tern: DynamoDB's data model"), "{top}");
        assert!(top.contains("Creates a new item, or replaces an old item with a new item"));
        for (verb, condition) in [
            ("put-item", "A condition that must be satisfied in order for a conditional PutItem operation to succeed"),
            ("delete-item", "A condition that must be satisfied in order for a conditional DeleteItem to succeed"),
            ("update-item", "A condition that must be satisfied in order for a conditional update to succeed"),
        ] {
            let help = help(&[verb]);
            println!("$ tern {verb} --help\n{help}");
            assert!(help.contains(condition), "{verb}: {help}");
            assert!(!help.contains("The flags of a conditional write"), "{verb}: {help}");
        }
        for verb in ["query", "scan"] {
            let help = help(&[verb]);
            println!("$ tern {verb} --help\n{help}");
            assert!(!help.contains("pagination flags"), "{verb}: {help}");
        }
        let describe = help(&["describe-table"]);
        println!("$ tern describe-table --help\n{describe}");
        assert!(describe.contains("The name of the table to describe"));
        let restore = help(&["restore-table-to-point-in-time"]);
        println!("$ tern restore-table-to-point-in-time --help\n{restore}");
        assert!(!restore.contains("The flags of a restore"), "{restore}");
        let import = help(&["import-table"]);
        println!("$ tern import-table --help\n{import}");
        assert!(import.contains("Imports table data from an S3 bucket"), "{import}");
        assert!(import.contains(r#"{"Csv":{"Delimiter":";","HeaderList":["pk","sk"]}}"#), "{import}");
        println!("$ tern export-table-to-point-in-time --help\n{}", help(&["export-table-to-point-in-time"]));
        println!("$ tern streams --help\n{}", help(&["streams"]));
        println!("$ tern streams get-records --help\n{}", help(&["streams", "get-records"]));
        println!("$ tern node --help\n{}", help(&["node"]));
    }
}
