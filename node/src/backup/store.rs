//! The backup store: where on-demand backups, PITR bases and archived PITR log segments live, outside
//! the region. A local directory (`file:///path`, the default) or S3 and S3-compatible stores
//! (`s3://bucket/prefix`, configured from the usual `AWS_*` variables: `AWS_ENDPOINT_URL`,
//! `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, `AWS_ALLOW_HTTP`), through the
//! `object_store` crate. Every region of a topology that reaches the same store can restore the
//! others' backups.

use std::sync::Arc;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use sha2::{Digest, Sha256};
use tern_proto::ApiError;

/// A failure to reach or read the store, or a file in it that is damaged or missing.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("backup store URL {url:?}: {why}")]
    Url { url: String, why: String },
    #[error("backup store: {0}")]
    Store(#[from] object_store::Error),
    #[error("backup file {path} is missing from the backup store")]
    Missing { path: String },
    #[error("backup file {path} is damaged: {why}")]
    Damaged { path: String, why: String },
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        ApiError::internal(error.to_string())
    }
}

/// A backup store and the folder in it that is Tern's.
#[derive(Clone, Debug)]
pub struct BackupStore {
    store: Arc<dyn ObjectStore>,
    root: Path,
    url: String,
}

/// One object of the store: its path under the root, and its size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredObject {
    pub path: String,
    pub size: u64,
}

impl BackupStore {
    /// The store a URL names: `file:///dir` (created if missing) or `s3://bucket[/prefix]`.
    pub fn open(url: &str) -> Result<BackupStore, StoreError> {
        let bad = |why: String| StoreError::Url { url: url.to_string(), why };
        let parsed = url::Url::parse(url).map_err(|e| bad(e.to_string()))?;
        let (store, root): (Arc<dyn ObjectStore>, Path) = match parsed.scheme() {
            "file" => {
                let dir = parsed.to_file_path().map_err(|()| bad("not a local path".into()))?;
                std::fs::create_dir_all(&dir).map_err(|e| bad(format!("creating {}: {e}", dir.display())))?;
                let local = object_store::local::LocalFileSystem::new_with_prefix(&dir).map_err(StoreError::Store)?;
                (Arc::new(local), Path::default())
            }
            "s3" | "s3a" => {
                let endpoint_is_http = std::env::var("AWS_ENDPOINT_URL")
                    .or_else(|_| std::env::var("AWS_ENDPOINT"))
                    .is_ok_and(|e| e.starts_with("http://"));
                let mut builder = object_store::aws::AmazonS3Builder::from_env().with_url(url);
                if endpoint_is_http {
                    builder = builder.with_allow_http(true);
                }
                let s3 = builder.build().map_err(|e| bad(e.to_string()))?;
                let root = Path::from_url_path(parsed.path()).map_err(|e| bad(e.to_string()))?;
                (Arc::new(s3), root)
            }
            other => return Err(bad(format!("unsupported scheme {other:?} (file:// or s3://)"))),
        };
        Ok(BackupStore { store, root, url: url.to_string() })
    }

    /// The URL the store was opened from.
    pub fn url(&self) -> &str {
        &self.url
    }

    fn full(&self, path: &str) -> Path {
        path.split('/').filter(|p| !p.is_empty()).fold(self.root.clone(), |p, part| p.join(part))
    }

    /// Writes an object whole.
    pub async fn put(&self, path: &str, data: Bytes) -> Result<(), StoreError> {
        self.store.put(&self.full(path), PutPayload::from_bytes(data)).await?;
        Ok(())
    }

    /// Writes an object of more than `part_bytes` as a multipart upload of parts of that size (S3 takes
    /// at most 5 GiB in one put, and a large put that fails is sent again whole); a smaller one whole.
    pub async fn put_in_parts(&self, path: &str, data: Bytes, part_bytes: usize) -> Result<(), StoreError> {
        if data.len() <= part_bytes {
            return self.put(path, data).await;
        }
        let mut upload = self.store.put_multipart(&self.full(path)).await?;
        for start in (0..data.len()).step_by(part_bytes) {
            let part = data.slice(start..(start + part_bytes).min(data.len()));
            if let Err(e) = upload.put_part(PutPayload::from_bytes(part)).await {
                let _ = upload.abort().await;
                return Err(e.into());
            }
        }
        upload.complete().await?;
        Ok(())
    }

    /// Reads an object whole; a missing one is [`StoreError::Missing`].
    pub async fn get(&self, path: &str) -> Result<Bytes, StoreError> {
        match self.store.get(&self.full(path)).await {
            Ok(found) => Ok(found.bytes().await?),
            Err(object_store::Error::NotFound { .. }) => Err(StoreError::Missing { path: path.to_string() }),
            Err(e) => Err(e.into()),
        }
    }

    /// Reads an object and checks it against the SHA-256 it was written with.
    pub async fn get_checked(&self, path: &str, sha256: &str) -> Result<Bytes, StoreError> {
        let data = self.get(path).await?;
        let found = sha256_hex(&data);
        if found != sha256 {
            let why = format!("its SHA-256 is {found}, not the {sha256} it was written with");
            return Err(StoreError::Damaged { path: path.to_string(), why });
        }
        Ok(data)
    }

    /// Whether the store's bucket exists: the first page of a listing answers, or S3 (and its kin)
    /// says NoSuchBucket. A directory store's folder is made when it is opened.
    pub async fn bucket_exists(&self) -> Result<bool, StoreError> {
        match self.store.list(Some(&self.root)).try_next().await {
            Ok(_) => Ok(true),
            Err(e) if e.to_string().contains("NoSuchBucket") => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Every object under `prefix`, in path order.
    pub async fn list(&self, prefix: &str) -> Result<Vec<StoredObject>, StoreError> {
        let root = self.root.as_ref().len();
        let mut objects: Vec<StoredObject> = self
            .store
            .list(Some(&self.full(prefix)))
            .map_ok(|meta| {
                let full = meta.location.as_ref();
                let path = full.get(root..).unwrap_or(full).trim_start_matches('/').to_string();
                StoredObject { path, size: meta.size }
            })
            .try_collect()
            .await?;
        objects.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(objects)
    }

    /// Deletes every object under `prefix`; returns how many.
    pub async fn delete_all(&self, prefix: &str) -> Result<usize, StoreError> {
        let objects = self.list(prefix).await?;
        for object in &objects {
            match self.store.delete(&self.full(&object.path)).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(objects.len())
    }

    /// Deletes one object (gone already is fine).
    pub async fn delete(&self, path: &str) -> Result<(), StoreError> {
        match self.store.delete(&self.full(path)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

/// Whether a store error will happen again however often the call is retried: a missing object, no
/// permission, bad credentials, a path or an operation the store refuses. Others (the network, the
/// store's own failures) may pass.
pub fn is_permanent(error: &object_store::Error) -> bool {
    use object_store::Error::*;
    matches!(
        error,
        NotFound { .. }
            | InvalidPath { .. }
            | NotSupported { .. }
            | NotImplemented { .. }
            | PermissionDenied { .. }
            | Unauthenticated { .. }
            | UnknownConfigurationKey { .. }
    )
}

/// The SHA-256 of `data`, in lowercase hex.
pub fn sha256_hex(data: &[u8]) -> String {
    format!("{:x}", Sha256::digest(data))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_local_store_keeps_lists_checks_and_deletes() {
        let dir = tempfile::tempdir().unwrap();
        let store = BackupStore::open(&format!("file://{}/backups", dir.path().display())).unwrap();
        store.put("a/b/one.bin", Bytes::from_static(b"hello")).await.unwrap();
        store.put("a/c/two.bin", Bytes::from_static(b"world!")).await.unwrap();
        let listed = store.list("a").await.unwrap();
        assert_eq!(
            listed,
            vec![
                StoredObject { path: "a/b/one.bin".into(), size: 5 },
                StoredObject { path: "a/c/two.bin".into(), size: 6 }
            ]
        );
        assert_eq!(
            store.get_checked("a/b/one.bin", &sha256_hex(b"hello")).await.unwrap(),
            Bytes::from_static(b"hello")
        );
        let damaged = store.get_checked("a/b/one.bin", &sha256_hex(b"hellO")).await.unwrap_err();
        assert!(matches!(damaged, StoreError::Damaged { .. }), "{damaged}");
        assert!(matches!(store.get("a/none").await.unwrap_err(), StoreError::Missing { .. }));
        assert_eq!(store.delete_all("a/b").await.unwrap(), 1);
        assert_eq!(store.list("a").await.unwrap().len(), 1);
        assert!(BackupStore::open("ftp://x/y").is_err());
    }
}
