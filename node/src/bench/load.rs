//! The load workload: writes `--keys` new items with BatchWriteItem, as fast as `--concurrency`
//! writers can, and reports the rate.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use serde_json::json;
use tern_client::Client;
use tern_proto::v1::{write_request, BatchWriteItemRequest, PutRequest, WriteRequest, WriteRequestList};

use super::{emit, item, BenchArgs};

/// Items per BatchWriteItem (DynamoDB's limit).
const BATCH: u64 = 25;

pub async fn load(args: BenchArgs, client: Client) -> anyhow::Result<()> {
    let total = args.keys;
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut writers = Vec::new();
    for _ in 0..args.concurrency {
        let (client, args, next) = (client.clone(), args.clone(), next.clone());
        writers.push(tokio::spawn(async move {
            loop {
                let start = next.fetch_add(BATCH, Ordering::Relaxed);
                if start >= total {
                    return Ok::<_, anyhow::Error>(());
                }
                let mut requests: Vec<WriteRequest> = (start..(start + BATCH).min(total))
                    .map(|k| WriteRequest {
                        request: Some(write_request::Request::PutRequest(PutRequest {
                            item: tern_client::v1_item(&item(k, args.item_size)),
                        })),
                    })
                    .collect();
                while !requests.is_empty() {
                    let request = BatchWriteItemRequest {
                        request_items: [(args.table_name.clone(), WriteRequestList { requests })].into(),
                    };
                    let answer = client.batch_write_item(request).await?;
                    requests = answer.unprocessed_items.into_values().flat_map(|l| l.requests).collect();
                }
            }
        }));
    }
    for writer in writers {
        writer.await??;
    }
    let secs = started.elapsed().as_secs_f64();
    let report = json!({
        "workload": "Load",
        "items": total,
        "item_size": args.item_size,
        "secs": secs,
        "items_per_sec": (total as f64 / secs).round(),
    });
    let line = format!("loaded {total} items of {} B in {secs:.1} s ({:.0}/s)", args.item_size, total as f64 / secs);
    emit(args.json, &report, line)
}
