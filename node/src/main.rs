//! The `tern` binary.

use std::time::Duration;

use clap::Parser;
use tern_client::{Client, RetryPolicy};
use tern_node::cli::{output, report_error, Cli, Command, ReplicationCommand};

/// mimalloc rather than the system allocator: the node allocates small buffers for every request,
/// entry and record, and glibc's malloc and free took about a sixth of a leader's time under load.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn init_tracing() {
    let filter =
        tracing_subscriber::EnvFilter::try_from_env("TERN_LOG").unwrap_or_else(|_| "info,openraft=warn".into());
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    let code = match run(cli).await {
        Ok(()) => 0,
        Err((operation, error)) => report_error(operation, &error),
    };
    std::process::exit(code);
}

async fn run(cli: Cli) -> Result<(), (&'static str, anyhow::Error)> {
    let operation = cli.command.operation();
    let fail = |e: anyhow::Error| (operation, e);
    match cli.command {
        Command::Node(args) => {
            init_tracing();
            let config = args.resolve().map_err(|e| fail(e.into()))?;
            tern_node::node::run(config).await.map_err(fail)
        }
        Command::Playground(args) => {
            init_tracing();
            tern_node::playground::run(args).await.map_err(fail)
        }
        Command::Replicator(args) => {
            init_tracing();
            tern_node::global::replicator::run(args).await.map_err(fail)
        }
        Command::Cache(args) => match args.command {
            Some(tern_node::cache::CacheCommand::Status) => {
                tern_node::cache::print_status(&cli.endpoint).await.map_err(fail)
            }
            None => {
                init_tracing();
                tern_node::cache::run(args).await.map_err(fail)
            }
        },
        Command::Replication(ReplicationCommand::Status(args)) => {
            output::print(tern_node::global::replicator::status::status(&args).await.map_err(fail)?);
            Ok(())
        }
        Command::Chaos(args) => {
            init_tracing();
            if !tern_node::chaos::run(args).await.map_err(fail)? {
                std::process::exit(1);
            }
            Ok(())
        }
        Command::Health(args) => tern_node::cli::health::check(&args).await.map_err(fail),
        Command::Verify(args) => {
            let (report, identical) = tern_node::global::replicator::verify::verify(&args).await.map_err(fail)?;
            output::print(report);
            if !identical {
                std::process::exit(1);
            }
            Ok(())
        }
        command => {
            let retry = RetryPolicy {
                deadline: Duration::from_secs(cli.deadline_secs),
                attempt_timeout: Duration::from_millis(cli.attempt_timeout_ms),
                ..RetryPolicy::default()
            };
            let client = Client::connect_with([cli.endpoint.as_str()], retry).await.map_err(|e| fail(e.into()))?;
            let document = match command {
                Command::Bench(args) => return tern_node::bench::run(args, client).await.map_err(fail),
                Command::Cluster(c) => c.run(&client).await,
                Command::CreateTable(c) => c.run(&client).await,
                Command::DescribeTable(c) => c.describe(&client).await,
                Command::ListTables(c) => c.run(&client).await,
                Command::DeleteTable(c) => c.delete(&client).await,
                Command::UpdateTable(c) => c.run(&client).await,
                Command::UpdateTimeToLive(c) => c.run(&client).await,
                Command::DescribeTimeToLive(c) => c.describe_time_to_live(&client).await,
                Command::UpdateContinuousBackups(c) => c.run(&client).await,
                Command::DescribeContinuousBackups(c) => c.describe_continuous_backups(&client).await,
                Command::RestoreTableToPointInTime(c) => c.run(&client).await,
                Command::RestoreTableFromBackup(c) => c.run(&client).await,
                Command::CreateBackup(c) => c.run(&client).await,
                Command::DescribeBackup(c) => c.describe(&client).await,
                Command::ListBackups(c) => c.run(&client).await,
                Command::DeleteBackup(c) => c.delete(&client).await,
                Command::ExportTableToPointInTime(c) => c.run(&client).await,
                Command::DescribeExport(c) => c.run(&client).await,
                Command::ListExports(c) => c.run(&client).await,
                Command::ImportTable(c) => c.run(&client).await,
                Command::DescribeImport(c) => c.run(&client).await,
                Command::ListImports(c) => c.run(&client).await,
                Command::Streams(c) => c.run(&client).await,
                Command::PutItem(c) => c.run(&client).await,
                Command::GetItem(c) => c.run(&client).await,
                Command::DeleteItem(c) => c.run(&client).await,
                Command::UpdateItem(c) => c.run(&client).await,
                Command::BatchGetItem(c) => c.run(&client).await,
                Command::BatchWriteItem(c) => c.run(&client).await,
                Command::TransactWriteItems(c) => c.run(&client).await,
                Command::TransactGetItems(c) => c.run(&client).await,
                Command::Query(c) => c.run(&client).await,
                Command::Scan(c) => c.run(&client).await,
                Command::Node(_)
                | Command::Playground(_)
                | Command::Replicator(_)
                | Command::Cache(_)
                | Command::Replication(_)
                | Command::Verify(_)
                | Command::Health(_)
                | Command::Chaos(_) => unreachable!("handled above"),
            };
            output::print(document.map_err(fail)?);
            Ok(())
        }
    }
}
