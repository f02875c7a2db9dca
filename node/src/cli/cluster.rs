//! `tern cluster status|add-node|remove-node`.

use clap::Subcommand;
use serde_json::{json, Value as Json};
use tern_client::Client;
use tern_proto::v1::{Member, NodeStatus};

#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// The leader, term, members and every member's applied index, as JSON.
    Status,
    /// Add a node: it joins as a learner, catches up, then becomes a voter.
    AddNode {
        /// The new node's id within the region.
        #[arg(long)]
        node_id: u64,
        /// The new node's address (host:port).
        #[arg(long)]
        address: String,
    },
    /// Remove a node from the region.
    RemoveNode {
        /// The id of the node to remove.
        #[arg(long)]
        node_id: u64,
    },
}

fn members(members: &[Member]) -> Json {
    json!(members
        .iter()
        .map(|m| json!({"NodeId": m.node_id, "Address": m.address, "Voter": m.voter}))
        .collect::<Vec<_>>())
}

fn node(status: &NodeStatus) -> Json {
    json!({
        "NodeId": status.node_id,
        "State": status.state,
        "Term": status.current_term,
        "LastLogIndex": status.last_log_index,
        "AppliedIndex": status.last_applied_index,
        "SnapshotIndex": status.snapshot_index,
        "PurgedIndex": status.purged_index,
        "ClockOffsetMillis": status.clock_offset_micros as f64 / 1000.0,
        "LeadershipRefused": (!status.leadership_refused.is_empty()).then_some(&status.leadership_refused),
    })
}

impl ClusterCommand {
    pub async fn run(&self, client: &Client) -> anyhow::Result<Json> {
        match self {
            ClusterCommand::Status => {
                let seen = client.node_status(None).await?;
                let mut nodes = Vec::new();
                for member in &seen.members {
                    nodes.push(match client.node_status(Some(&member.address)).await {
                        Ok(status) => {
                            let mut entry = node(&status);
                            entry["Address"] = json!(member.address);
                            entry
                        }
                        Err(e) => json!({"NodeId": member.node_id, "Address": member.address, "Error": e.to_string()}),
                    });
                }
                Ok(json!({
                    "Region": seen.region,
                    "LeaderId": seen.leader_id,
                    "LeaderAddress": seen.leader_address,
                    "Term": seen.current_term,
                    "Members": members(&seen.members),
                    "Nodes": nodes,
                }))
            }
            ClusterCommand::AddNode { node_id, address } => {
                let response = client.add_node(*node_id, address).await?;
                Ok(json!({ "Members": members(&response.members) }))
            }
            ClusterCommand::RemoveNode { node_id } => {
                let response = client.remove_node(*node_id).await?;
                Ok(json!({ "Members": members(&response.members) }))
            }
        }
    }
}
