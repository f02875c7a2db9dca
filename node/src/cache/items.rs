//! The item cache: items (and their absence) by table and key, each tagged with the position in the
//! region's order it is known to be current at. Every change to an entry goes through moka's per-key
//! compute step, and a newer position always wins, so a slow fill can never put back what a change the
//! cache has already seen replaced:
//!
//! - a fill read at position R installs only if R is at least the entry's position, or, when there is
//!   no entry, at least the fill floor (every change the cache has started to apply is at or before it:
//!   a change to this key it saw while the key was not cached is below it);
//! - a change from the feed at P replaces an entry at or before P with the item after the change;
//! - a write through the cache at P installs its result by the fill rule (it is a read at P).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use moka::future::Cache;
use moka::notification::RemovalCause;
use moka::ops::compute::{CompResult, Op};
use prost::Message;
use tern_proto::v1::{Item, ItemVersion};

/// An item cache key: the table and the item's key in storage form.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ItemKey {
    pub table: String,
    pub key: Vec<u8>,
}

/// What the cache knows of an item.
#[derive(Debug, Clone, PartialEq)]
pub enum Known {
    Item(Arc<Item>, ItemVersion),
    Absent,
    /// Changed at the entry's position in a way the cache did not see (an update whose new item it was
    /// not told): a miss, and fills must read at least that position.
    Unknown,
}

/// One entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The position the entry is current at.
    pub position: u64,
    pub known: Known,
    /// The epoch of the table when it was filled: an entry of an older epoch is not served.
    pub epoch: u64,
}

/// What a fill came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fill {
    Installed,
    /// The read is older than what the cache knows of the item: read again at the leader.
    Stale,
}

/// The item cache.
#[derive(Clone)]
pub struct ItemCache {
    entries: Cache<ItemKey, Entry>,
    /// Every change the cache has begun to apply is at or before this.
    floor: Arc<AtomicU64>,
    evictions: Arc<AtomicU64>,
}

fn weight(key: &ItemKey, entry: &Entry) -> u32 {
    let item = match &entry.known {
        Known::Item(item, _) => item.encoded_len(),
        _ => 0,
    };
    // Keys, the entry and moka's own bookkeeping (about a hundred bytes an entry).
    (key.table.len() + key.key.len() + item + 128).min(u32::MAX as usize) as u32
}

impl ItemCache {
    /// A cache of at most `capacity_bytes`, entries living `ttl` (none: until evicted or changed).
    pub fn new(capacity_bytes: u64, ttl: Option<Duration>, evictions: Arc<AtomicU64>) -> ItemCache {
        let counted = evictions.clone();
        let mut builder =
            Cache::builder().max_capacity(capacity_bytes).weigher(weight).eviction_listener(move |_, _, cause| {
                if cause == RemovalCause::Size {
                    counted.fetch_add(1, Ordering::Relaxed);
                    metrics::counter!("tern_cache_evictions_total", "cache" => "item").increment(1);
                }
            });
        if let Some(ttl) = ttl {
            builder = builder.time_to_live(ttl);
        }
        // Nothing installs before the feed starts ([`ItemCache::reset_floor`]).
        ItemCache { entries: builder.build(), floor: Arc::new(AtomicU64::new(u64::MAX)), evictions }
    }

    /// The entry for `key`, when it can be served under table epoch `epoch`.
    pub async fn get(&self, key: &ItemKey, epoch: u64) -> Option<Entry> {
        self.entries.get(key).await.filter(|e| e.epoch == epoch && !matches!(e.known, Known::Unknown))
    }

    /// Raises the fill floor: the cache is about to apply changes up to `position`.
    pub fn raise_floor(&self, position: u64) {
        self.floor.fetch_max(position, Ordering::SeqCst);
    }

    /// Sets the fill floor after starting over at `position` (`u64::MAX`: nothing installs).
    pub fn reset_floor(&self, position: u64) {
        self.floor.store(position, Ordering::SeqCst);
    }

    /// The fill floor: a read at an older position installs nothing that is not cached already.
    pub fn floor(&self) -> u64 {
        self.floor.load(Ordering::SeqCst)
    }

    /// Installs what a read at `position` found, unless the cache knows something newer.
    pub async fn fill(&self, key: ItemKey, epoch: u64, known: Known, position: u64) -> Fill {
        let floor = self.floor.clone();
        let result = self
            .entries
            .entry(key)
            .and_compute_with(|current| {
                let at_least = match current.map(|c| c.into_value()) {
                    Some(current) if current.epoch == epoch => current.position,
                    _ => floor.load(Ordering::SeqCst),
                };
                let op = if position >= at_least { Op::Put(Entry { position, known, epoch }) } else { Op::Nop };
                std::future::ready(op)
            })
            .await;
        match result {
            CompResult::Inserted(_) | CompResult::ReplacedWith(_) => Fill::Installed,
            _ => Fill::Stale,
        }
    }

    /// Marks an item changed at `position` in a way the cache was not told: later fills must read at
    /// least there.
    pub async fn unknown(&self, key: ItemKey, epoch: u64, position: u64) {
        let floor = self.floor.clone();
        self.entries
            .entry(key)
            .and_compute_with(|current| {
                let floor = floor.load(Ordering::SeqCst);
                let op = match current.map(|c| c.into_value()) {
                    Some(current) if current.epoch == epoch && current.position > position => Op::Nop,
                    Some(current) if current.epoch == epoch => {
                        Op::Put(Entry { position, known: Known::Unknown, epoch })
                    }
                    // Nothing installs until the feed starts again: nothing to hold back.
                    _ if floor == u64::MAX => Op::Nop,
                    _ => Op::Put(Entry { position: position.max(floor), known: Known::Unknown, epoch }),
                };
                std::future::ready(op)
            })
            .await;
    }

    /// A change from the feed: the item after the change at `position` (none: deleted). Only an item
    /// the cache holds is touched. Returns whether it held it.
    pub async fn changed(&self, key: ItemKey, position: u64, after: Option<(Item, ItemVersion)>) -> bool {
        // Always through the per-key compute, even for a key not cached: a fill that loaded the floor
        // before it was raised may be about to install, and must come before this or see the new floor.
        let result = self
            .entries
            .entry(key)
            .and_compute_with(|current| {
                let op = match current.map(|c| c.into_value()) {
                    Some(current) if current.position <= position => {
                        let known = match after {
                            Some((item, version)) => Known::Item(Arc::new(item), version),
                            None => Known::Absent,
                        };
                        Op::Put(Entry { position, known, epoch: current.epoch })
                    }
                    _ => Op::Nop,
                };
                std::future::ready(op)
            })
            .await;
        matches!(result, CompResult::ReplacedWith(_))
    }

    /// Drops every entry (the table epochs already make them unservable).
    pub fn clear(&self) {
        self.entries.invalidate_all();
    }

    pub fn entry_count(&self) -> u64 {
        self.entries.entry_count()
    }

    pub fn weighted_size(&self) -> u64 {
        self.entries.weighted_size()
    }

    pub fn evictions(&self) -> u64 {
        self.evictions.load(Ordering::Relaxed)
    }

    /// Runs moka's pending maintenance (counts and evictions are settled after it).
    pub async fn settle(&self) {
        self.entries.run_pending_tasks().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(k: &str) -> ItemKey {
        ItemKey { table: "t".into(), key: k.as_bytes().to_vec() }
    }

    fn item(value: &str) -> Known {
        let item = Item {
            attributes: [(
                "v".to_string(),
                tern_proto::v1::AttributeValue { value: Some(tern_proto::v1::attribute_value::Value::S(value.into())) },
            )]
            .into(),
        };
        Known::Item(Arc::new(item), ItemVersion::default())
    }

    fn image(value: &str) -> Option<(Item, ItemVersion)> {
        match item(value) {
            Known::Item(item, version) => Some(((*item).clone(), version)),
            _ => None,
        }
    }

    fn cache() -> ItemCache {
        let cache = ItemCache::new(1 << 20, None, Arc::new(AtomicU64::new(0)));
        cache.reset_floor(0);
        cache
    }

    #[tokio::test]
    async fn a_fill_older_than_a_change_already_seen_is_not_installed() {
        let cache = cache();
        // The key is not cached when the change at 20 arrives; a fill that read at 15 comes after.
        cache.raise_floor(20);
        assert!(!cache.changed(key("a"), 20, image("new")).await);
        assert_eq!(cache.fill(key("a"), 1, item("old"), 15).await, Fill::Stale);
        assert_eq!(cache.get(&key("a"), 1).await, None);
        assert_eq!(cache.fill(key("a"), 1, item("new"), 20).await, Fill::Installed);
        assert_eq!(cache.get(&key("a"), 1).await.unwrap().known, item("new"));
    }

    #[tokio::test]
    async fn a_change_replaces_an_older_entry_and_a_late_fill_cannot_undo_it() {
        let cache = cache();
        assert_eq!(cache.fill(key("a"), 1, item("v1"), 10).await, Fill::Installed);
        cache.raise_floor(12);
        assert!(cache.changed(key("a"), 12, image("v2")).await);
        assert_eq!(cache.fill(key("a"), 1, item("v1"), 11).await, Fill::Stale);
        assert_eq!(cache.get(&key("a"), 1).await.unwrap(), Entry { position: 12, known: item("v2"), epoch: 1 });
        // A change older than the entry (the fill read past it) changes nothing.
        assert_eq!(cache.fill(key("a"), 1, item("v3"), 30).await, Fill::Installed);
        assert!(!cache.changed(key("a"), 25, image("v2.5")).await);
        assert_eq!(cache.get(&key("a"), 1).await.unwrap().known, item("v3"));
        cache.raise_floor(31);
        assert!(cache.changed(key("a"), 31, None).await);
        assert_eq!(cache.get(&key("a"), 1).await.unwrap().known, Known::Absent);
    }

    #[tokio::test]
    async fn an_unknown_change_is_a_miss_that_only_a_read_past_it_fills() {
        let cache = cache();
        assert_eq!(cache.fill(key("a"), 1, item("v1"), 10).await, Fill::Installed);
        cache.unknown(key("a"), 1, 40).await;
        assert_eq!(cache.get(&key("a"), 1).await, None);
        assert_eq!(cache.fill(key("a"), 1, item("v1"), 39).await, Fill::Stale);
        assert_eq!(cache.fill(key("a"), 1, item("v2"), 40).await, Fill::Installed);
        assert_eq!(cache.get(&key("a"), 1).await.unwrap().known, item("v2"));
    }

    #[tokio::test]
    async fn nothing_installs_before_the_feed_starts() {
        let cache = ItemCache::new(1 << 20, None, Arc::new(AtomicU64::new(0)));
        assert_eq!(cache.fill(key("a"), 1, item("v1"), 10).await, Fill::Stale);
        cache.unknown(key("a"), 1, 10).await;
        cache.settle().await;
        assert_eq!(cache.entry_count(), 0);
        cache.reset_floor(10);
        assert_eq!(cache.fill(key("a"), 1, item("v1"), 10).await, Fill::Installed);
    }

    #[tokio::test]
    async fn an_entry_of_an_older_table_epoch_is_not_served_and_does_not_hold_fills_back() {
        let cache = cache();
        assert_eq!(cache.fill(key("a"), 1, item("v1"), 50).await, Fill::Installed);
        assert_eq!(cache.get(&key("a"), 2).await, None);
        assert_eq!(cache.fill(key("a"), 2, item("v2"), 5).await, Fill::Installed);
        assert_eq!(cache.get(&key("a"), 2).await.unwrap().known, item("v2"));
    }
}
