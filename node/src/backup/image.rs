//! The files a backup store holds, and their checksums:
//!
//! - a **table image** (an on-demand backup, or a PITR base): `part-NNNNN.bin` files of
//!   length-delimited [`ImageEntry`] messages, then `manifest.json`, written last, listing each part
//!   with its SHA-256 and item count, the table's definition and the image's time. The manifest
//!   carries the SHA-256 of its own body. An image without a manifest is unfinished and never read.
//! - a **PITR log segment**: length-delimited [`LogRecord`]s of one table's changes in commit order,
//!   named `<from>-<to>-<sha256>.log`: it holds every change with `from < time <= to`, and the next
//!   segment starts where it ends, so a missing segment shows as a gap.

use bytes::Bytes;
use prost::Message;
use serde::{Deserialize, Serialize};
use tern_proto::internal::{ImageEntry, LogRecord};
use tern_proto::v1::{BackupDescription, TableDescription};

use super::store::{sha256_hex, BackupStore, StoreError};

/// The largest part of an image: parts are read whole during a restore.
pub const PART_BYTES: usize = 32 * 1024 * 1024;

const IMAGE_FORMAT: &str = "tern-table-image/1";

/// What a table image holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub format: String,
    pub table_name: String,
    pub table_arn: String,
    /// The table's definition when the image was taken (prost, base64): key schema, attributes.
    pub table_description: String,
    /// Every change committed at or before this time (microseconds, the region's clock) is in the
    /// image, and none after.
    pub as_of_micros: u64,
    pub item_count: u64,
    pub bytes: u64,
    pub parts: Vec<Part>,
    /// An on-demand backup's description (prost, base64), for regions whose catalog lacks it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_description: Option<String>,
}

/// One part of an image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Part {
    /// Its name within the image's folder.
    pub name: String,
    pub sha256: String,
    pub items: u64,
    pub bytes: u64,
}

#[derive(Serialize, Deserialize)]
struct SignedManifest {
    manifest: Manifest,
    sha256: String,
}

impl Manifest {
    /// The backup this image is, when it is one.
    pub fn backup(&self) -> Result<Option<BackupDescription>, StoreError> {
        use base64::Engine;
        let Some(encoded) = &self.backup_description else { return Ok(None) };
        let damaged = |why: String| StoreError::Damaged { path: "manifest.json".into(), why };
        let bytes = base64::engine::general_purpose::STANDARD.decode(encoded).map_err(|e| damaged(e.to_string()))?;
        BackupDescription::decode(bytes.as_slice()).map(Some).map_err(|e| damaged(e.to_string()))
    }

    /// The table's definition as it was.
    pub fn table(&self) -> Result<TableDescription, StoreError> {
        use base64::Engine;
        let damaged = |why: String| StoreError::Damaged { path: "manifest.json".into(), why };
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(&self.table_description)
            .map_err(|e| damaged(e.to_string()))?;
        TableDescription::decode(bytes.as_slice()).map_err(|e| damaged(e.to_string()))
    }
}

/// Writes an image's parts as they fill, then its manifest.
pub struct ImageWriter<'a> {
    store: &'a BackupStore,
    folder: String,
    manifest: Manifest,
    buffer: Vec<u8>,
    buffered_items: u64,
}

impl<'a> ImageWriter<'a> {
    pub fn new(store: &'a BackupStore, folder: &str, table: &TableDescription, as_of_micros: u64) -> Self {
        use base64::Engine;
        let manifest = Manifest {
            format: IMAGE_FORMAT.into(),
            table_name: table.table_name.clone(),
            table_arn: table.table_arn.clone(),
            table_description: base64::engine::general_purpose::STANDARD.encode(table.encode_to_vec()),
            as_of_micros,
            item_count: 0,
            bytes: 0,
            parts: Vec::new(),
            backup_description: None,
        };
        ImageWriter {
            store,
            folder: folder.trim_end_matches('/').to_string(),
            manifest,
            buffer: Vec::new(),
            buffered_items: 0,
        }
    }

    /// Records the backup the image is (its description, as other regions will read it).
    pub fn set_backup(&mut self, description: BackupDescription) {
        use base64::Engine;
        self.manifest.backup_description =
            Some(base64::engine::general_purpose::STANDARD.encode(description.encode_to_vec()));
    }

    /// Adds one item; uploads a part when it is full.
    pub async fn add(&mut self, entry: &ImageEntry) -> Result<(), StoreError> {
        entry.encode_length_delimited(&mut self.buffer).expect("a Vec grows");
        self.buffered_items += 1;
        if self.buffer.len() >= PART_BYTES {
            self.flush_part().await?;
        }
        Ok(())
    }

    /// Adds encoded entries (length-delimited [`ImageEntry`]s) holding `items` items.
    pub async fn add_encoded(&mut self, encoded: &[u8], items: u64) -> Result<(), StoreError> {
        self.buffer.extend_from_slice(encoded);
        self.buffered_items += items;
        if self.buffer.len() >= PART_BYTES {
            self.flush_part().await?;
        }
        Ok(())
    }

    async fn flush_part(&mut self) -> Result<(), StoreError> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let data = Bytes::from(std::mem::take(&mut self.buffer));
        // Named by the image's time too: two leaders writing the same backup from different views
        // never overwrite each other's parts, and each manifest lists only its own.
        let name = format!("part-{:020}-{:05}.bin", self.manifest.as_of_micros, self.manifest.parts.len());
        let part = Part {
            name: name.clone(),
            sha256: sha256_hex(&data),
            items: self.buffered_items,
            bytes: data.len() as u64,
        };
        self.store.put(&format!("{}/{name}", self.folder), data).await?;
        self.manifest.item_count += part.items;
        self.manifest.bytes += part.bytes;
        self.manifest.parts.push(part);
        self.buffered_items = 0;
        Ok(())
    }

    /// Uploads the last part and the manifest: from now on the image is complete.
    pub async fn finish(mut self) -> Result<Manifest, StoreError> {
        self.flush_part().await?;
        let body = serde_json::to_vec(&self.manifest).expect("a manifest serializes");
        let signed = SignedManifest { manifest: self.manifest.clone(), sha256: sha256_hex(&body) };
        let data = serde_json::to_vec_pretty(&signed).expect("a manifest serializes");
        self.store.put(&format!("{}/manifest.json", self.folder), Bytes::from(data)).await?;
        Ok(self.manifest)
    }
}

/// Reads an image's manifest, checking its own checksum.
pub async fn read_manifest(store: &BackupStore, folder: &str) -> Result<Manifest, StoreError> {
    let path = format!("{}/manifest.json", folder.trim_end_matches('/'));
    let data = store.get(&path).await?;
    let damaged = |why: String| StoreError::Damaged { path: path.clone(), why };
    let signed: SignedManifest = serde_json::from_slice(&data).map_err(|e| damaged(e.to_string()))?;
    let body = serde_json::to_vec(&signed.manifest).expect("a manifest serializes");
    if sha256_hex(&body) != signed.sha256 {
        return Err(damaged("its checksum does not match its contents".into()));
    }
    if signed.manifest.format != IMAGE_FORMAT {
        return Err(damaged(format!("format {:?}, not {IMAGE_FORMAT:?}", signed.manifest.format)));
    }
    Ok(signed.manifest)
}

/// Reads one part of an image, checked, as its entries.
pub async fn read_part(store: &BackupStore, folder: &str, part: &Part) -> Result<Vec<ImageEntry>, StoreError> {
    let path = format!("{}/{}", folder.trim_end_matches('/'), part.name);
    let data = store.get_checked(&path, &part.sha256).await?;
    let entries: Vec<ImageEntry> = decode_all(&path, data)?;
    if entries.len() as u64 != part.items {
        let why = format!("{} items, not the {} the manifest lists", entries.len(), part.items);
        return Err(StoreError::Damaged { path, why });
    }
    Ok(entries)
}

fn decode_all<M: Message + Default>(path: &str, mut data: Bytes) -> Result<Vec<M>, StoreError> {
    let mut out = Vec::new();
    while !data.is_empty() {
        let message = M::decode_length_delimited(&mut data)
            .map_err(|e| StoreError::Damaged { path: path.to_string(), why: e.to_string() })?;
        out.push(message);
    }
    Ok(out)
}

/// One archived segment of a PITR log, as its name describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    pub path: String,
    pub from_micros: u64,
    pub to_micros: u64,
    pub sha256: String,
}

/// The folder of a PITR log's segments.
pub fn log_folder(prefix: &str) -> String {
    format!("{prefix}/log")
}

/// The folder of a PITR base taken at `as_of`.
pub fn base_folder(prefix: &str, as_of_micros: u64) -> String {
    format!("{prefix}/base/{as_of_micros:020}")
}

/// Uploads a segment holding `records` (every change with `from < time <= to`).
pub async fn write_segment(
    store: &BackupStore,
    prefix: &str,
    from_micros: u64,
    to_micros: u64,
    records: &[LogRecord],
) -> Result<Segment, StoreError> {
    let mut data = Vec::new();
    for record in records {
        record.encode_length_delimited(&mut data).expect("a Vec grows");
    }
    let sha256 = sha256_hex(&data);
    let path = format!("{}/{from_micros:020}-{to_micros:020}-{sha256}.log", log_folder(prefix));
    store.put(&path, Bytes::from(data)).await?;
    Ok(Segment { path, from_micros, to_micros, sha256 })
}

/// The segment a stored path names, if it is one.
pub fn parse_segment(path: &str) -> Option<Segment> {
    let name = path.rsplit('/').next()?.strip_suffix(".log")?;
    let mut parts = name.splitn(3, '-');
    let from_micros = parts.next()?.parse().ok()?;
    let to_micros = parts.next()?.parse().ok()?;
    let sha256 = parts.next()?.to_string();
    Some(Segment { path: path.to_string(), from_micros, to_micros, sha256 })
}

/// Every segment of a PITR log, in time order.
pub async fn list_segments(store: &BackupStore, prefix: &str) -> Result<Vec<Segment>, StoreError> {
    let mut segments: Vec<Segment> =
        store.list(&log_folder(prefix)).await?.into_iter().filter_map(|o| parse_segment(&o.path)).collect();
    segments.sort_by_key(|s| s.from_micros);
    Ok(segments)
}

/// The bases of a PITR log (their times), oldest first: only those whose manifest was written.
pub async fn list_bases(store: &BackupStore, prefix: &str) -> Result<Vec<u64>, StoreError> {
    let mut bases: Vec<u64> = store
        .list(&format!("{prefix}/base"))
        .await?
        .into_iter()
        .filter_map(|o| {
            let rest = o.path.strip_suffix("/manifest.json")?;
            rest.rsplit('/').next()?.parse().ok()
        })
        .collect();
    bases.sort_unstable();
    Ok(bases)
}

/// Reads a segment, checked.
pub async fn read_segment(store: &BackupStore, segment: &Segment) -> Result<Vec<LogRecord>, StoreError> {
    let data = store.get_checked(&segment.path, &segment.sha256).await?;
    decode_all(&segment.path, data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tern_proto::internal::StoredItem;

    fn entry(n: u32) -> ImageEntry {
        ImageEntry {
            key: n.to_be_bytes().to_vec(),
            item: Some(StoredItem { write_timestamp_micros: n as u64, ..Default::default() }),
        }
    }

    #[tokio::test]
    async fn an_image_reads_back_and_a_damaged_part_or_manifest_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = BackupStore::open(&format!("file://{}", dir.path().display())).unwrap();
        let table = TableDescription { table_name: "t".into(), ..Default::default() };
        let mut writer = ImageWriter::new(&store, "backups/b1", &table, 42);
        for n in 0..10 {
            writer.add(&entry(n)).await.unwrap();
        }
        let written = writer.finish().await.unwrap();
        let manifest = read_manifest(&store, "backups/b1").await.unwrap();
        assert_eq!(manifest, written);
        assert_eq!(
            (manifest.item_count, manifest.as_of_micros, manifest.table().unwrap().table_name.as_str()),
            (10, 42, "t")
        );
        let entries = read_part(&store, "backups/b1", &manifest.parts[0]).await.unwrap();
        assert_eq!(entries, (0..10).map(entry).collect::<Vec<_>>());

        let part = dir.path().join("backups/b1/part-00000000000000000042-00000.bin");
        let mut bytes = std::fs::read(&part).unwrap();
        bytes[3] ^= 0xFF;
        std::fs::write(&part, &bytes).unwrap();
        let damaged = read_part(&store, "backups/b1", &manifest.parts[0]).await.unwrap_err();
        assert!(matches!(damaged, StoreError::Damaged { .. }), "{damaged}");
        std::fs::remove_file(&part).unwrap();
        assert!(matches!(
            read_part(&store, "backups/b1", &manifest.parts[0]).await.unwrap_err(),
            StoreError::Missing { .. }
        ));

        let path = dir.path().join("backups/b1/manifest.json");
        let text = std::fs::read_to_string(&path).unwrap().replace("\"itemCount\": 10", "\"itemCount\": 11");
        std::fs::write(&path, text).unwrap();
        assert!(matches!(read_manifest(&store, "backups/b1").await.unwrap_err(), StoreError::Damaged { .. }));
    }

    #[tokio::test]
    async fn segments_are_named_by_their_range_and_checksum() {
        let dir = tempfile::tempdir().unwrap();
        let store = BackupStore::open(&format!("file://{}", dir.path().display())).unwrap();
        let records = vec![LogRecord { at_micros: 5, key: b"k".to_vec(), item: None }];
        let second = write_segment(&store, "pitr/p", 10, 20, &records).await.unwrap();
        let first = write_segment(&store, "pitr/p", 0, 10, &[]).await.unwrap();
        assert_eq!(list_segments(&store, "pitr/p").await.unwrap(), vec![first, second.clone()]);
        assert_eq!(read_segment(&store, &second).await.unwrap(), records);
        assert_eq!(parse_segment("x/00000000000000000010-00000000000000000020-abc.log").map(|s| s.to_micros), Some(20));
    }
}
