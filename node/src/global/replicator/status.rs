//! `tern replication status`: every global table's replication state in every region, as JSON.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use serde_json::{json, Value as Json};
use tern_proto::v1::GetReplicationStateRequest;

use super::{describe_tables, region_clients};
use crate::topology::Topology;

#[derive(Debug, Clone, Args)]
pub struct StatusArgs {
    /// The deployment's topology file.
    #[arg(long)]
    pub topology: PathBuf,
    /// Only this table.
    #[arg(long)]
    pub table_name: Option<String>,
}

/// The state of every (table, region, source region), with lag in records and in time.
pub async fn status(args: &StatusArgs) -> anyhow::Result<Json> {
    let topology = Topology::load(&args.topology)?;
    let clients = region_clients(&topology, Duration::from_secs(5)).await?;
    let mut regions = Vec::new();
    for (region, client) in &clients {
        let tables = match describe_tables(client).await {
            Ok(tables) => tables,
            Err(error) => {
                regions.push(json!({ "Region": region, "Error": format!("{error:#}") }));
                continue;
            }
        };
        let mut global = Vec::new();
        for table in tables.iter().filter(|t| !t.replicas.is_empty()) {
            if args.table_name.as_ref().is_some_and(|name| name != &table.table_name) {
                continue;
            }
            let request = GetReplicationStateRequest { table_name: table.table_name.clone() };
            let state = client.get_replication_state(request).await?;
            let sources: Vec<Json> = state
                .checkpoints
                .iter()
                .map(|c| {
                    json!({
                        "SourceRegion": c.source_region,
                        "Phase": c.phase,
                        "SequenceNumber": c.sequence_number,
                        "RecordsBehind": c.records_behind,
                        "LagMillis": c.lag_millis,
                        "ItemsCopied": c.items_copied,
                        "ItemsTotal": c.items_total,
                        "SourceWatermarkMicros": c.source_watermark_micros.to_string(),
                        "UpdatedAt": c.updated_at,
                    })
                })
                .collect();
            global.push(json!({
                "TableName": table.table_name,
                "Replicas": table.replicas.iter().map(|r| json!({"RegionName": r.region_name, "ReplicaStatus": r.replica_status})).collect::<Vec<_>>(),
                "SafePointMicros": state.safe_point_micros.to_string(),
                "Tombstones": state.tombstones,
                "Sources": sources,
            }));
        }
        regions.push(json!({ "Region": region, "Tables": global }));
    }
    Ok(json!({ "Regions": regions }))
}
