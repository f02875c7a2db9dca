//! Export to and import from object storage, in DynamoDB's formats and layout.
//!
//! An export (`ExportTableToPointInTime`) writes a table as it was at a time of its PITR window (full),
//! or the changes of a window compacted to one record per item (incremental), to a bucket:
//! `<prefix>/AWSDynamoDB/<ExportId>/` with `_started`, `manifest-summary.json`, `manifest-files.json`
//! and their checksums, and gzip'd JSON Lines (or Ion) data files. It reads what a restore reads (the
//! PITR log's base and segments in the backup store, and the short tail still in `pitr_log`), never
//! the table itself, so the table's traffic does not wait for it. An import (`ImportTable`) reads
//! CSV, DynamoDB JSON or Ion objects (plain, gzip or zstd) under a bucket's prefix into a new table,
//! written through the region's log like a restore's items. The design is in docs/transfers.md.
//!
//! Buckets are names resolved against the node's `--buckets` store: a directory per bucket
//! (`file:///dir`, the default) or the buckets of S3 or an S3-compatible store (`s3://`).

pub mod apply;
pub mod export;
pub mod format;
pub mod import;
pub mod layout;
pub mod service;

use crate::backup::store::{BackupStore, StoreError};

/// Where buckets are: a directory of directories, or S3's buckets.
#[derive(Debug, Clone)]
pub struct Buckets {
    root: String,
}

impl Buckets {
    /// Buckets under `url`: `file:///dir` (each bucket a directory in it) or `s3://` (S3 buckets,
    /// reached with the usual `AWS_*` variables).
    pub fn new(url: &str) -> Result<Buckets, StoreError> {
        let root = url.trim_end_matches('/').to_string();
        match url::Url::parse(url).map(|u| u.scheme().to_string()) {
            Ok(scheme) if scheme == "file" || scheme == "s3" => Ok(Buckets { root }),
            Ok(scheme) => Err(StoreError::Url {
                url: url.into(),
                why: format!("unsupported scheme {scheme:?} (file:// or s3://)"),
            }),
            Err(e) => Err(StoreError::Url { url: url.into(), why: e.to_string() }),
        }
    }

    /// The bucket named `name`; a bucket that does not exist yet is made when `create` (an export's
    /// directory), else refused.
    pub fn open(&self, name: &str, create: bool) -> Result<BackupStore, BucketError> {
        if !valid_bucket_name(name) {
            return Err(BucketError::Invalid(name.to_string()));
        }
        if self.root == "s3:" {
            return Ok(BackupStore::open(&format!("s3://{name}"))?);
        }
        let url = format!("{}/{name}", self.root);
        if !create {
            let dir = url::Url::parse(&url).ok().and_then(|u| u.to_file_path().ok());
            if !dir.is_some_and(|d| d.is_dir()) {
                return Err(BucketError::Missing(name.to_string()));
            }
        }
        Ok(BackupStore::open(&url)?)
    }
}

/// Why a bucket cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum BucketError {
    #[error("Invalid S3 bucket name: {0:?} (3 to 63 lower-case letters, digits, dots and hyphens)")]
    Invalid(String),
    #[error("The specified bucket does not exist: {0}")]
    Missing(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// S3's bucket names: 3 to 63 characters of lower-case letters, digits, `.` and `-`, beginning and
/// ending with a letter or digit (so a name never reaches outside the buckets' directory).
fn valid_bucket_name(name: &str) -> bool {
    let edge = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    (3..=63).contains(&name.len())
        && name.bytes().all(|b| edge(b) || b == b'.' || b == b'-')
        && name.bytes().next().is_some_and(edge)
        && name.bytes().last().is_some_and(edge)
        && !name.contains("..")
}

/// Where an import's error log is, in the backup store: one JSON line per rejected item (its object,
/// line and why). DescribeImport's CloudWatchLogGroupArn names it.
pub fn error_log(import_id: &str) -> String {
    format!("imports/{import_id}/errors.jsonl")
}

/// An export's ARN: its table's ARN, `/export/`, its id.
pub fn export_arn(table_arn: &str, export_id: &str) -> String {
    format!("{table_arn}/export/{export_id}")
}

/// An import's ARN: its table's ARN, `/import/`, its id.
pub fn import_arn(table_arn: &str, import_id: &str) -> String {
    format!("{table_arn}/import/{import_id}")
}

/// The id an export or import ARN ends with (`kind` is `export` or `import`).
pub fn id_of<'a>(arn: &'a str, kind: &str) -> Option<&'a str> {
    let (_, id) = arn.rsplit_once(&format!("/{kind}/"))?;
    crate::backup::backup_id_of(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_names_are_s3_names_and_stay_inside_the_root() {
        for good in ["exports", "my-bucket.2026", "abc"] {
            assert!(valid_bucket_name(good), "{good}");
        }
        for bad in ["ab", "Exports", "../etc", "a/b", "-abc", "abc-", "a..b", ""] {
            assert!(!valid_bucket_name(bad), "{bad}");
        }
    }

    #[test]
    fn a_missing_bucket_is_refused_unless_it_is_made() {
        let dir = tempfile::tempdir().unwrap();
        let buckets = Buckets::new(&format!("file://{}", dir.path().display())).unwrap();
        assert!(matches!(buckets.open("nothing-here", false), Err(BucketError::Missing(_))));
        buckets.open("made-now", true).unwrap();
        assert!(dir.path().join("made-now").is_dir());
        buckets.open("made-now", false).unwrap();
    }

    #[test]
    fn arns_end_with_the_id() {
        let arn = export_arn("arn:tern:dynamodb:us-east:table/Music", "01693685827463-2d8752fd");
        assert_eq!(arn, "arn:tern:dynamodb:us-east:table/Music/export/01693685827463-2d8752fd");
        assert_eq!(id_of(&arn, "export"), Some("01693685827463-2d8752fd"));
        assert_eq!(id_of(&arn, "import"), None);
    }
}
