//! The storage engine seam: a read view (get and ordered scans), a write set (put, delete,
//! delete_range) applied atomically, over the column families of [`crate::keyspace`]. RocksDB
//! ([`rocks`]) serves the nodes; an in-memory engine ([`memory`]) serves tests of the apply path
//! without RocksDB. Everything above this module sees only these traits.

pub mod memory;
pub mod overlay;
pub mod rocks;

use crate::keyspace::Family;

pub use memory::Memory;
pub use overlay::Overlay;
pub use rocks::Rocks;

/// A failure of the storage engine or of the data it holds. Not a refusal of a request: a node that
/// cannot read or write its state stops applying instead of deciding differently from its peers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StorageError {
    #[error("storage engine error: {0}")]
    Engine(String),
    #[error("corrupt {what} in storage: {why}")]
    Corrupt { what: &'static str, why: String },
}

/// A read that failed in storage answers the caller with DynamoDB's InternalServerError.
impl From<StorageError> for tern_proto::ApiError {
    fn from(error: StorageError) -> Self {
        tern_proto::ApiError::internal(error.to_string())
    }
}

impl From<StorageError> for tonic::Status {
    fn from(error: StorageError) -> Self {
        tern_proto::ApiError::from(error).into()
    }
}

/// Decodes a stored prost message; `what` names it in the error.
pub fn decode<M: prost::Message + Default>(what: &'static str, bytes: &[u8]) -> Result<M, StorageError> {
    M::decode(bytes).map_err(|e| StorageError::Corrupt { what, why: e.to_string() })
}

/// Which way a scan walks its range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Forward,
    Reverse,
}

/// One key and its value.
pub type KeyValue = (Vec<u8>, Vec<u8>);

/// The keys of a range in order, each read or failed.
pub type Scan<'a> = Box<dyn Iterator<Item = Result<KeyValue, StorageError>> + 'a>;

/// Reads: the engine's latest state, or a consistent view of one moment.
pub trait ReadView {
    /// The value under `key`.
    fn get(&self, family: Family, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError>;

    /// The keys from `lower` (included) to `upper` (excluded; none for the family's end), walked in
    /// `direction`.
    fn scan<'a>(&'a self, family: Family, lower: &[u8], upper: Option<&[u8]>, direction: Direction) -> Scan<'a>;

    /// The first key (and value) of a range in `direction`.
    fn first(
        &self,
        family: Family,
        lower: &[u8],
        upper: Option<&[u8]>,
        direction: Direction,
    ) -> Result<Option<KeyValue>, StorageError> {
        self.scan(family, lower, upper, direction).next().transpose()
    }
}

/// A storage engine: reads, consistent views, and atomic writes.
pub trait Engine: Send + Sync {
    /// Reads of the latest state (each read sees every write before it).
    fn latest(&self) -> &dyn ReadView;

    /// A consistent view of the engine as it is now; later writes do not show in it.
    fn view(&self) -> Box<dyn ReadView + '_>;

    /// Applies every write of `writes` atomically; `durable` waits until they are on disk.
    fn write(&self, writes: WriteSet, durable: bool) -> Result<(), StorageError>;

    /// An estimate of how many keys a family holds.
    fn estimated_keys(&self, family: Family) -> u64;

    /// Makes every write so far durable (at shutdown).
    fn flush(&self) -> Result<(), StorageError>;
}

/// One write of a [`WriteSet`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Write {
    Put {
        family: Family,
        key: Vec<u8>,
        value: Vec<u8>,
    },
    Delete {
        family: Family,
        key: Vec<u8>,
    },
    /// Deletes the keys from `from` (included) to `to` (excluded).
    DeleteRange {
        family: Family,
        from: Vec<u8>,
        to: Vec<u8>,
    },
}

/// Writes to apply atomically, in order (a later write to a key wins over an earlier one).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteSet {
    writes: Vec<Write>,
}

impl WriteSet {
    pub fn put(&mut self, family: Family, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) {
        self.writes.push(Write::Put { family, key: key.as_ref().to_vec(), value: value.as_ref().to_vec() });
    }

    pub fn delete(&mut self, family: Family, key: impl AsRef<[u8]>) {
        self.writes.push(Write::Delete { family, key: key.as_ref().to_vec() });
    }

    pub fn delete_range(&mut self, family: Family, from: impl AsRef<[u8]>, to: impl AsRef<[u8]>) {
        self.writes.push(Write::DeleteRange { family, from: from.as_ref().to_vec(), to: to.as_ref().to_vec() });
    }

    pub fn is_empty(&self) -> bool {
        self.writes.is_empty()
    }

    pub fn len(&self) -> usize {
        self.writes.len()
    }

    /// The writes, in order.
    pub fn writes(&self) -> &[Write] {
        &self.writes
    }

    /// The writes, in order.
    pub fn into_writes(self) -> Vec<Write> {
        self.writes
    }
}

#[cfg(test)]
mod tests;
