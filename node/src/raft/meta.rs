//! The state machine's own state as stored: the last applied log id and membership, beside the
//! data in [`Family::Meta`], so that an atomic write of an entry's changes also records it applied.

use openraft::{AnyError, StorageIOError};

use super::types::{LogId, StorageError, StoredMembership};
use crate::engine::ReadView;
use crate::keyspace::{Family, Meta};

/// A failed read of the state machine, as openraft wants it.
pub fn read_error(e: impl std::error::Error + 'static) -> StorageError {
    StorageIOError::read_state_machine(AnyError::new(&e)).into()
}

/// The applied log id and membership `view` holds.
pub fn applied_state(view: &dyn ReadView) -> Result<(Option<LogId>, StoredMembership), StorageError> {
    let meta = |key: Meta| view.get(Family::Meta, key.key()).map_err(read_error);
    let applied = meta(Meta::Applied)?
        .map(|b| bincode::deserialize::<Option<LogId>>(&b))
        .transpose()
        .map_err(read_error)?
        .flatten();
    let membership =
        meta(Meta::Membership)?.map(|b| bincode::deserialize(&b)).transpose().map_err(read_error)?.unwrap_or_default();
    Ok((applied, membership))
}

/// The index of the last entry applied in `view` (0 before any).
pub fn applied_index(view: &dyn ReadView) -> Result<u64, crate::engine::StorageError> {
    let bytes = view.get(Family::Meta, Meta::Applied.key())?;
    Ok(bytes.and_then(|b| bincode::deserialize::<Option<LogId>>(&b).ok().flatten()).map_or(0, |id| id.index))
}
