//! The query cache: Query and Scan pages by their whole request. A page is filed under generations
//! that every change from the feed moves: its partition's (a Query) or its table's (a Scan), so a page
//! is served only while nothing it could hold has changed since before it was read. The generation is
//! taken before the fill floor, and the feed raises the floor before it moves a generation, so a fill
//! that read before a change either carries the old generation or fails the floor.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use moka::future::Cache;
use moka::notification::RemovalCause;
use prost::Message;
use tern_proto::v1::ItemPage;

/// Partition generations per table (a partition's is shared with the others hashed to its slot).
pub const PARTITION_SLOTS: usize = 1024;

/// A table's generations.
pub struct Generations {
    /// Moves on every change to the table.
    pub table: AtomicU64,
    pub partitions: Vec<AtomicU64>,
}

impl Default for Generations {
    fn default() -> Self {
        Generations { table: AtomicU64::new(0), partitions: (0..PARTITION_SLOTS).map(|_| AtomicU64::new(0)).collect() }
    }
}

/// What a page depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// A Query: its partition's slot.
    Partition(usize),
    /// A Scan (or a Query whose partition is not known): the whole table.
    Table,
}

impl Generations {
    /// The slot of a partition, from its storage prefix.
    pub fn slot(partition_prefix: &[u8]) -> usize {
        (xxhash_rust::xxh3::xxh3_64(partition_prefix) % PARTITION_SLOTS as u64) as usize
    }

    pub fn current(&self, scope: Scope) -> u64 {
        match scope {
            Scope::Partition(slot) => self.partitions[slot].load(Ordering::SeqCst),
            Scope::Table => self.table.load(Ordering::SeqCst),
        }
    }

    /// A change to the partition in `slot`.
    pub fn changed(&self, slot: usize) {
        self.partitions[slot].fetch_add(1, Ordering::SeqCst);
        self.table.fetch_add(1, Ordering::SeqCst);
    }
}

/// One cached page.
#[derive(Clone)]
pub struct Page {
    pub page: Arc<ItemPage>,
    pub epoch: u64,
    pub scope: Scope,
    pub generation: u64,
    pub position: u64,
}

/// The query cache.
#[derive(Clone)]
pub struct QueryCache {
    pages: Cache<Vec<u8>, Page>,
    evictions: Arc<AtomicU64>,
}

impl QueryCache {
    /// A cache of at most `capacity_bytes`, pages living `ttl`.
    pub fn new(capacity_bytes: u64, ttl: Duration, evictions: Arc<AtomicU64>) -> QueryCache {
        let counted = evictions.clone();
        let pages = Cache::builder()
            .max_capacity(capacity_bytes)
            .weigher(|key: &Vec<u8>, page: &Page| {
                (key.len() + page.page.encoded_len() + 128).min(u32::MAX as usize) as u32
            })
            .time_to_live(ttl)
            .eviction_listener(move |_, _, cause| {
                if cause == RemovalCause::Size {
                    counted.fetch_add(1, Ordering::Relaxed);
                    metrics::counter!("tern_cache_evictions_total", "cache" => "query").increment(1);
                }
            })
            .build();
        QueryCache { pages, evictions }
    }

    /// The page cached for `request`, while its table epoch and generation still hold.
    pub async fn get(&self, request: &[u8], epoch: u64, generations: &Generations) -> Option<Page> {
        let page = self.pages.get(request).await?;
        if page.epoch == epoch && generations.current(page.scope) == page.generation {
            return Some(page);
        }
        self.pages.invalidate(request).await;
        None
    }

    pub async fn insert(&self, request: Vec<u8>, page: Page) {
        self.pages.insert(request, page).await;
    }

    pub fn clear(&self) {
        self.pages.invalidate_all();
    }

    pub fn entry_count(&self) -> u64 {
        self.pages.entry_count()
    }

    pub fn weighted_size(&self) -> u64 {
        self.pages.weighted_size()
    }

    pub fn evictions(&self) -> u64 {
        self.evictions.load(Ordering::Relaxed)
    }

    pub async fn settle(&self) {
        self.pages.run_pending_tasks().await;
    }
}
