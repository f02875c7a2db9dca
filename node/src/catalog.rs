//! The replicated catalogs of jobs in sm_meta (backups, exports, imports), each a key prefix with one
//! protobuf entry per job id: read one entry, or all in id (creation) order.

use crate::engine::{self, Direction, ReadView, StorageError};
use crate::keyspace::{self, Family};

/// One entry of a catalog in sm_meta (a backup, an export, an import), by its key; `what` names it in
/// a corruption error.
pub fn catalog_entry<T: prost::Message + Default>(
    view: &dyn ReadView,
    key: &[u8],
    what: &'static str,
) -> Result<Option<T>, StorageError> {
    view.get(Family::Meta, key)?.map(|b| engine::decode(what, &b)).transpose()
}

/// Every entry of a catalog in sm_meta (its keys begin with `prefix`), in key order: ids are made in
/// time order, so this is creation order.
pub fn catalog<T: prost::Message + Default>(
    view: &dyn ReadView,
    prefix: &[u8],
    what: &'static str,
) -> Result<Vec<T>, StorageError> {
    let end = keyspace::prefix_end(prefix);
    view.scan(Family::Meta, prefix, Some(&end), Direction::Forward)
        .map(|entry| entry.and_then(|(_, value)| engine::decode(what, &value)))
        .collect()
}
