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

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use crate::backup::store::{BackupStore, StoreError};

/// What the exports running on this node (the leader) have written so far, by export id: items and
/// bytes of lines. DescribeExport, answered by the leader, shows it while an export is IN_PROGRESS.
#[derive(Debug, Clone, Default)]
pub struct ExportProgress(Arc<Mutex<BTreeMap<String, (u64, u64)>>>);

impl ExportProgress {
    pub fn set(&self, export_id: &str, items: u64, bytes: u64) {
        self.0.lock().expect("progress lock").insert(export_id.to_string(), (items, bytes));
    }

    pub fn get(&self, export_id: &str) -> Option<(u64, u64)> {
        self.0.lock().expect("progress lock").get(export_id).copied()
    }

    pub fn forget(&self, export_id: &str) {
        self.0.lock().expect("progress lock").remove(export_id);
    }
}

/// Where buckets are: a directory of directories, or S3's buckets.
#[derive(Debug, Clone)]
pub enum Buckets {
    /// A directory of directories, one per bucket (its `file://` URL).
    Directories(String),
    /// S3's buckets (or an S3-compatible store's).
    S3,
}

impl Buckets {
    /// Buckets under `url`: `file:///dir` (each bucket a directory in it) or `s3://` (S3 buckets,
    /// reached with the usual `AWS_*` variables; a request names its bucket, so the URL names none).
    pub fn new(url: &str) -> Result<Buckets, StoreError> {
        let bad = |why: String| StoreError::Url { url: url.into(), why };
        let parsed = url::Url::parse(url).map_err(|e| bad(e.to_string()))?;
        match parsed.scheme() {
            "file" => Ok(Buckets::Directories(url.trim_end_matches('/').to_string())),
            "s3" if parsed.host_str().is_none_or(str::is_empty) && parsed.path().trim_matches('/').is_empty() => {
                Ok(Buckets::S3)
            }
            "s3" => Err(bad("give `s3://` alone: each export and import names its own bucket".into())),
            other => Err(bad(format!("unsupported scheme {other:?} (file:// or s3://)"))),
        }
    }

    /// The bucket named `name`; a bucket that does not exist yet is made when `create` (an export's
    /// directory), else refused.
    pub fn open(&self, name: &str, create: bool) -> Result<BackupStore, BucketError> {
        if !valid_bucket_name(name) {
            return Err(BucketError::Invalid(name.to_string()));
        }
        let root = match self {
            Buckets::S3 => return Ok(BackupStore::open(&format!("s3://{name}"))?),
            Buckets::Directories(root) => root,
        };
        let url = format!("{root}/{name}");
        if !create {
            let dir = url::Url::parse(&url).ok().and_then(|u| u.to_file_path().ok());
            if !dir.is_some_and(|d| d.is_dir()) {
                return Err(BucketError::Missing(name.to_string()));
            }
        }
        Ok(BackupStore::open(&url)?)
    }
}

impl Buckets {
    /// [`Buckets::open`], and the bucket checked to exist in the store (S3's buckets are not known
    /// until asked).
    pub async fn open_existing(&self, name: &str, create: bool) -> Result<BackupStore, BucketError> {
        let bucket = self.open(name, create)?;
        match bucket.bucket_exists().await? {
            true => Ok(bucket),
            false => Err(BucketError::Missing(name.to_string())),
        }
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
    fn the_buckets_url_is_a_directory_or_s3_itself() {
        assert!(
            matches!(Buckets::new("file:///srv/buckets/"), Ok(Buckets::Directories(root)) if root == "file:///srv/buckets")
        );
        assert!(matches!(Buckets::new("s3://"), Ok(Buckets::S3)));
        assert!(Buckets::new("s3://one-bucket/prefix").is_err());
        assert!(Buckets::new("gs://x").is_err());
    }

    #[test]
    fn arns_end_with_the_id() {
        let arn = export_arn("arn:tern:dynamodb:us-east:table/Music", "01693685827463-2d8752fd");
        assert_eq!(arn, "arn:tern:dynamodb:us-east:table/Music/export/01693685827463-2d8752fd");
        assert_eq!(id_of(&arn, "export"), Some("01693685827463-2d8752fd"));
        assert_eq!(id_of(&arn, "import"), None);
    }
}
