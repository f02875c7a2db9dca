//! The node's RocksDB: one database, a column family per concern, one write-ahead log.

use std::path::Path;
use std::sync::Arc;

use rocksdb::{ColumnFamily, ColumnFamilyDescriptor, Options, DB};

/// Raft log entries, keyed by big-endian index.
pub const CF_LOG: &str = "raft_log";
/// Raft's own state: vote, committed and purged log ids.
pub const CF_RAFT: &str = "raft_state";
/// State-machine metadata: applied log id, membership, clock, current snapshot.
pub const CF_SM_META: &str = "sm_meta";
/// Table definitions, keyed by name.
pub const CF_TABLES: &str = "tables";
/// Items, keyed by the order-preserving storage key.
pub const CF_ITEMS: &str = "items";

/// Stream definitions, keyed by big-endian stream id.
pub const CF_STREAMS: &str = "streams";
/// Stream records, keyed by stream id and sequence number (both big-endian).
pub const CF_STREAM_RECORDS: &str = "stream_records";

/// The TTL expiry index: table id, expiry (epoch seconds), storage key; all big-endian.
pub const CF_TTL: &str = "ttl_index";

/// Global tables' deleted items (key attributes and the delete's version), keyed like items.
pub const CF_TOMBSTONES: &str = "tombstones";
/// Global tables' replication checkpoints: table id (big-endian), then the source region's name.
pub const CF_REPLICATION: &str = "replication";

/// The column families a state-machine snapshot carries.
pub const SNAPSHOT_CFS: [&str; 8] =
    [CF_SM_META, CF_TABLES, CF_ITEMS, CF_STREAMS, CF_STREAM_RECORDS, CF_TTL, CF_TOMBSTONES, CF_REPLICATION];

/// Opens (or creates) the node's database.
pub fn open(path: &Path) -> Result<Arc<DB>, rocksdb::Error> {
    let mut options = Options::default();
    options.create_if_missing(true);
    options.create_missing_column_families(true);
    options.set_compression_type(rocksdb::DBCompressionType::Lz4);
    let families = [CF_LOG, CF_RAFT]
        .into_iter()
        .chain(SNAPSHOT_CFS)
        .map(|name| ColumnFamilyDescriptor::new(name, Options::default()));
    Ok(Arc::new(DB::open_cf_descriptors(&options, path, families)?))
}

/// A column family that [`open`] created.
pub fn cf<'a>(db: &'a DB, name: &str) -> &'a ColumnFamily {
    db.cf_handle(name).unwrap_or_else(|| panic!("column family {name} is created when the database opens"))
}
