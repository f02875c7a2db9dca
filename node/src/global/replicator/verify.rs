//! `tern verify`: compares a table in every region of the topology, item for item with their
//! versions, and lists each difference.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use futures::TryStreamExt;
use prost::Message;
use serde_json::{json, Value as Json};
use tern_proto::v1::{Item, ItemVersion};

use super::region_clients;
use crate::cli::output;
use crate::topology::Topology;

#[derive(Debug, Clone, Args)]
pub struct VerifyArgs {
    /// The name of the table to compare.
    #[arg(long)]
    pub table_name: String,
    /// The deployment's topology file.
    #[arg(long)]
    pub topology: PathBuf,
    /// Only these regions (default: every region that has the table).
    #[arg(long, value_delimiter = ',')]
    pub regions: Vec<String>,
}

/// One item as a region holds it: its key, the item (none for a tombstone), its version.
pub type Held = (Item, Option<Item>, ItemVersion);
/// One region's copy of a table, by encoded key.
pub type Copy = BTreeMap<Vec<u8>, Held>;

/// A region's copy of a table, its tombstones included (a delete's, until it is purged).
pub async fn read_copy(client: &tern_client::Client, table: &str) -> anyhow::Result<Copy> {
    let mut copy = Copy::new();
    let mut pages = std::pin::pin!(client.table_version_pages(table));
    while let Some(page) = pages.try_next().await? {
        for entry in page.items {
            let Some(version) = entry.version else { continue };
            let key = Item { attributes: entry.key };
            copy.insert(key.encode_to_vec(), (key, entry.item, version));
        }
    }
    Ok(copy)
}

fn item_json(item: &Item) -> Json {
    tern_proto::value::item_from_wire(item.attributes.clone())
        .map(|i| tern_proto::json::item_to_json(&i))
        .unwrap_or(Json::Null)
}

/// Compares the copies; the report lists each region's item count and every difference.
pub async fn verify(args: &VerifyArgs) -> anyhow::Result<(Json, bool)> {
    let topology = Topology::load(&args.topology)?;
    let clients = region_clients(&topology, Duration::from_secs(10)).await?;
    let mut copies = BTreeMap::new();
    for (region, client) in &clients {
        if !args.regions.is_empty() && !args.regions.contains(region) {
            continue;
        }
        match read_copy(client, &args.table_name).await {
            Ok(mut copy) => {
                // Tombstones are purged at different times in different regions: items only.
                copy.retain(|_, (_, item, _)| item.is_some());
                copies.insert(region.clone(), copy);
            }
            Err(e) if !args.regions.is_empty() => return Err(e),
            Err(e) => tracing::debug!(%region, error = %e, "region skipped"),
        }
    }
    anyhow::ensure!(!copies.is_empty(), "no region has table {}", args.table_name);
    let keys: BTreeSet<&Vec<u8>> = copies.values().flat_map(|c| c.keys()).collect();
    let mut differences = Vec::new();
    for key in keys {
        let versions: Vec<(&String, Option<&Held>)> =
            copies.iter().map(|(region, copy)| (region, copy.get(key))).collect();
        let first = versions[0].1.map(|(_, item, version)| (item, version));
        if versions.iter().all(|(_, v)| v.map(|(_, item, version)| (item, version)) == first) {
            continue;
        }
        let shown_key = versions.iter().find_map(|(_, v)| v.map(|(key, _, _)| item_json(key))).unwrap_or(Json::Null);
        let regions: serde_json::Map<String, Json> = versions
            .iter()
            .map(|(region, v)| {
                let shown = match v {
                    Some((_, Some(item), version)) => {
                        json!({ "Item": item_json(item), "Version": output::version(version) })
                    }
                    _ => Json::Null,
                };
                (region.to_string(), shown)
            })
            .collect();
        differences.push(json!({ "Key": shown_key, "Regions": regions }));
    }
    let same = differences.is_empty();
    let counts: serde_json::Map<String, Json> = copies.iter().map(|(r, c)| (r.clone(), json!(c.len()))).collect();
    Ok((
        json!({ "TableName": args.table_name, "ItemCounts": counts, "Identical": same, "Differences": differences }),
        same,
    ))
}
