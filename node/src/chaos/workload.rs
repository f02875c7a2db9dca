//! The workload: writers in every region at once, through the client library, on keys every region
//! writes (`shared-N`) and keys private to each region (`<region>-N`): puts, updates on condition that
//! the item exists, and deletes, each with a value no other operation writes. Every operation goes
//! into the history with its outcome.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tern_client::v1::{attribute_value::Value, AttributeValue, DeleteItemRequest, PutItemRequest, UpdateItemRequest};
use tern_client::{Client, ErrorKind};
use tokio::sync::RwLock;

use super::history::{History, Op, OpKind, Outcome, Version};

/// The key space and pace of the writers.
#[derive(Debug, Clone)]
pub struct Workload {
    pub table: String,
    pub writers_per_region: u32,
    pub shared_keys: u32,
    pub private_keys: u32,
    /// Pause between one writer's operations.
    pub pace: Duration,
    pub seed: u64,
}

/// Writers hold a read lock for each operation; the run takes the write lock to quiesce them (while it
/// measures convergence after a heal).
pub type Gate = Arc<RwLock<()>>;

fn s(text: &str) -> AttributeValue {
    AttributeValue { value: Some(Value::S(text.into())) }
}

fn version_of(version: Option<tern_client::v1::ItemVersion>) -> Outcome {
    match version {
        Some(v) => Outcome::Ok { version: Version::from(&v) },
        None => Outcome::Unknown { error: "acknowledged without a version".into() },
    }
}

/// How a call that did not succeed ended: failed for certain only when its condition did not hold (a
/// retried call gets its first outcome back from the session, so the refusal is the one applied).
/// Anything else may have been applied: the workload sends no request a region could reject as such,
/// and a ValidationException can also say that a call's outcome was forgotten.
fn failure(error: tern_client::Error) -> Outcome {
    match (&error, error.kind()) {
        (tern_client::Error::Api(_), Some(ErrorKind::ConditionalCheckFailedException)) => {
            Outcome::Failed { error: error.to_string() }
        }
        _ => Outcome::Unknown { error: error.to_string() },
    }
}

/// One operation on `key`, recorded in the history.
async fn operate(client: &Client, workload: &Workload, history: &History, op: Op) {
    let table = workload.table.clone();
    let key = [("pk".to_string(), s(&op.key))].into_iter().collect();
    let outcome = match op.kind {
        OpKind::Put => {
            let item =
                [("pk".to_string(), s(&op.key)), ("val".to_string(), s(op.value.as_deref().unwrap_or_default()))]
                    .into_iter()
                    .collect();
            match client.put_item_request(PutItemRequest { table_name: table, item, ..Default::default() }).await {
                Ok(response) => version_of(response.item_version),
                Err(e) => failure(e),
            }
        }
        OpKind::Update => {
            let request = UpdateItemRequest {
                table_name: table,
                key,
                update_expression: "SET val = :v".into(),
                condition_expression: "attribute_exists(pk)".into(),
                expression_attribute_values: [(":v".to_string(), s(op.value.as_deref().unwrap_or_default()))]
                    .into_iter()
                    .collect(),
                ..Default::default()
            };
            match client.update_item(request).await {
                Ok(response) => version_of(response.item_version),
                Err(e) => failure(e),
            }
        }
        OpKind::Delete => {
            match client.delete_item_request(DeleteItemRequest { table_name: table, key, ..Default::default() }).await {
                Ok(response) => version_of(response.item_version),
                Err(e) => failure(e),
            }
        }
    };
    history.record(Op { end_micros: history.now(), outcome, ..op });
}

/// One writer of a region, until `stop` is raised.
pub async fn writer(
    region: String,
    writer: u32,
    client: Client,
    workload: Workload,
    history: History,
    gate: Gate,
    stop: Arc<AtomicBool>,
) {
    let mut rng = StdRng::seed_from_u64(workload.seed ^ (u64::from(writer) << 32) ^ region_hash(&region));
    let mut seq = 0u64;
    while !stop.load(Ordering::SeqCst) {
        let permit = gate.read().await;
        if stop.load(Ordering::SeqCst) {
            break;
        }
        seq += 1;
        let key = if rng.random_bool(0.5) {
            format!("shared-{}", rng.random_range(0..workload.shared_keys.max(1)))
        } else {
            format!("{region}-{}", rng.random_range(0..workload.private_keys.max(1)))
        };
        let kind = match rng.random_range(0..4) {
            0 | 1 => OpKind::Put,
            2 => OpKind::Update,
            _ => OpKind::Delete,
        };
        let value = (kind != OpKind::Delete).then(|| format!("{region}:{writer}:{seq}"));
        let op = Op {
            id: 0,
            region: region.clone(),
            writer,
            kind,
            key,
            value,
            start_micros: history.now(),
            end_micros: 0,
            outcome: Outcome::Unknown { error: String::new() },
        };
        operate(&client, &workload, &history, op).await;
        drop(permit);
        tokio::time::sleep(workload.pace).await;
    }
}

/// A stable hash of a region's name, so each region's writers draw their own sequence from the seed.
fn region_hash(text: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(text.as_bytes())
}
