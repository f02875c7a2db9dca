//! Point-in-time recovery and on-demand backups.
//!
//! The design (docs/backups.md has the whole of it): a table with PITR on keeps a log of its changes,
//! written in the same atomic write as each change ([`apply::record_change`], family `pitr_log`), each
//! change keyed by its local commit time, the region's clock. The leader's [`runner`] uploads the log
//! to the backup store ([`store`]) in sealed segments and drops what it uploaded, so only a short
//! tail is in Raft snapshots; it also uploads a **base** of the table (a consistent image of its items
//! and the time it is at) when PITR is turned on and then every base interval. Restoring to time `t`
//! ([`restore`]) reads the newest base at or before `t`, replays the segments (and the tail) up to `t`
//! over it, and writes the result into a new table through Raft. An on-demand backup is an image
//! of the table, kept until deleted. Everything the runner does is recorded in replicated state, so
//! a new leader carries it on.

pub mod apply;
pub mod image;
pub mod restore;
pub mod runner;
pub mod service;
pub mod store;
pub mod view;

use tern_proto::internal::PitrState;

use crate::engine;
use tern_proto::v1::{ContinuousBackupsDescription, PointInTimeRecoveryDescription};

/// Why a backup or restore job stopped.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// It cannot succeed (a damaged or missing file, a gap in the log, no access to the store): the
    /// job fails with this.
    #[error("{0}")]
    Failed(String),
    /// It may succeed later (the store unreachable, leadership lost): the job is tried again.
    #[error("{0}")]
    Interrupted(String),
}

impl From<store::StoreError> for JobError {
    fn from(error: store::StoreError) -> Self {
        match error {
            store::StoreError::Missing { .. } | store::StoreError::Damaged { .. } | store::StoreError::Url { .. } => {
                JobError::Failed(error.to_string())
            }
            store::StoreError::Store(ref e) if store::is_permanent(e) => JobError::Failed(error.to_string()),
            store::StoreError::Store(_) => JobError::Interrupted(error.to_string()),
        }
    }
}

impl From<engine::StorageError> for JobError {
    fn from(error: engine::StorageError) -> Self {
        JobError::Interrupted(error.to_string())
    }
}

/// The longest recovery window, and the default: 35 days.
pub const MAX_RECOVERY_PERIOD_DAYS: u32 = 35;

/// A day in microseconds.
pub const DAY_MICROS: u64 = 86_400 * 1_000_000;

/// The name of the backup a table deleted with PITR on leaves.
pub fn deleted_table_backup_name(table: &str) -> String {
    format!("{table}$DeletedTableBackup")
}

/// A backup id as DynamoDB makes them: `0`, the creation time in milliseconds (13 digits), `-`, and
/// 8 hex digits.
pub fn backup_id(at_micros: u64, salt: u64) -> String {
    format!("0{:013}-{:08x}", at_micros / 1000, salt as u32)
}

/// A backup's ARN: its table's ARN, `/backup/`, its id.
pub fn backup_arn(table_arn: &str, backup_id: &str) -> String {
    format!("{table_arn}/backup/{backup_id}")
}

/// The backup id an ARN ends with (a bare id is accepted too).
pub fn backup_id_of(arn: &str) -> Option<&str> {
    let id = arn.rsplit_once("/backup/").map_or(arn, |(_, id)| id);
    let valid = id.len() == 23
        && id.as_bytes()[14] == b'-'
        && id.bytes().enumerate().all(|(i, b)| i == 14 || b.is_ascii_hexdigit());
    valid.then_some(id)
}

/// The store folder of a backup's image.
pub fn backup_folder(backup_id: &str) -> String {
    format!("backups/{backup_id}")
}

/// Seconds since the epoch, as the API gives times, from microseconds.
pub fn seconds(micros: u64) -> f64 {
    micros as f64 / 1e6
}

/// The latest restorable time, as this node sees it: now (or the region's clock, when a replicated
/// write raised it past now). A restore to any time up to it is exact: its `RestoreTable` entry is
/// proposed after this is read, so it takes a later time than this, and every change at or before the
/// restore time is in the log before it (the clock rises strictly in log order).
pub fn restorable_now(applied_through: u64) -> u64 {
    crate::clock::now_micros().max(applied_through)
}

/// The restorable window of a table's PITR at `now` (see [`restorable_now`]): from the later of
/// the oldest base and `now` less the recovery period, to `now`. None when PITR is off or no base
/// has been uploaded yet.
pub fn window(pitr: &PitrState, now: u64) -> Option<(u64, u64)> {
    if !pitr.enabled || pitr.earliest_base_micros == 0 {
        return None;
    }
    let period = u64::from(pitr.recovery_period_days) * DAY_MICROS;
    let earliest = pitr.earliest_base_micros.max(now.saturating_sub(period));
    (earliest <= now).then_some((earliest, now))
}

/// DescribeContinuousBackups' answer for a table's PITR state at `now`.
pub fn describe(pitr: Option<&PitrState>, now: u64) -> ContinuousBackupsDescription {
    let enabled = pitr.is_some_and(|p| p.enabled);
    let (earliest, latest) = pitr.and_then(|p| window(p, now)).unwrap_or((0, 0));
    ContinuousBackupsDescription {
        continuous_backups_status: "ENABLED".into(),
        point_in_time_recovery_description: Some(PointInTimeRecoveryDescription {
            point_in_time_recovery_status: if enabled { "ENABLED" } else { "DISABLED" }.into(),
            recovery_period_in_days: if enabled { pitr.map_or(0, |p| p.recovery_period_days) } else { 0 },
            earliest_restorable_date_time: seconds(earliest),
            latest_restorable_date_time: seconds(latest),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backup_ids_and_arns_are_dynamodbs() {
        let id = backup_id(1_489_602_797_149_123, 0x73d8d5bc);
        assert_eq!(id, "01489602797149-73d8d5bc");
        let arn = backup_arn("arn:tern:dynamodb:us-east:table/Music", &id);
        assert_eq!(arn, "arn:tern:dynamodb:us-east:table/Music/backup/01489602797149-73d8d5bc");
        assert_eq!(backup_id_of(&arn), Some(id.as_str()));
        assert_eq!(backup_id_of(&id), Some(id.as_str()));
        assert_eq!(backup_id_of("arn:tern:dynamodb:us-east:table/Music/backup/nope"), None);
    }

    #[test]
    fn the_window_is_the_period_back_from_now_but_never_before_the_first_base() {
        let pitr = PitrState {
            enabled: true,
            recovery_period_days: 1,
            earliest_base_micros: 10 * DAY_MICROS,
            ..Default::default()
        };
        assert_eq!(window(&pitr, 10 * DAY_MICROS + 5), Some((10 * DAY_MICROS, 10 * DAY_MICROS + 5)));
        // A day later and more: the period bounds it, at once when the period is lowered.
        assert_eq!(window(&pitr, 12 * DAY_MICROS), Some((11 * DAY_MICROS, 12 * DAY_MICROS)));
        let wider = PitrState { recovery_period_days: 35, ..pitr.clone() };
        assert_eq!(window(&wider, 12 * DAY_MICROS), Some((10 * DAY_MICROS, 12 * DAY_MICROS)));
        assert_eq!(window(&PitrState { earliest_base_micros: 0, ..pitr.clone() }, 12 * DAY_MICROS), None);
        assert_eq!(window(&PitrState { enabled: false, ..pitr }, 12 * DAY_MICROS), None);
    }
}
