//! DynamoDB's export layout: where an export's objects go, its gzip'd data files with their MD5 and
//! S3-style ETag, and its manifests (`manifest-files.json`, JSON Lines of the data files;
//! `manifest-summary.json`, the export; each with a `.checksum` object holding its MD5 in hex).

use std::io::Write;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use bytes::Bytes;
use flate2::write::GzEncoder;
use md5::{Digest, Md5};
use serde_json::{json, Value as Json};

use super::format::Format;
use crate::backup::store::{BackupStore, StoreError};

/// A data file is closed once this many bytes of lines are in it.
const DATA_FILE_BYTES: usize = 128 << 20;
/// Data files larger than this are uploaded in parts of this size.
pub const PART_BYTES: usize = 16 << 20;

/// The folder of an export's manifests: `<prefix>/AWSDynamoDB/<ExportId>/` (no prefix: at the root).
pub fn export_folder(prefix: &str, export_id: &str) -> String {
    format!("{}AWSDynamoDB/{export_id}/", prefix_folder(prefix))
}

/// The folder of an export's data files: its own `data/` for a full export; for an incremental one,
/// the prefix's shared `AWSDynamoDB/data/`, as DynamoDB writes them.
pub fn data_folder(prefix: &str, export_id: &str, incremental: bool) -> String {
    match incremental {
        false => format!("{}data/", export_folder(prefix, export_id)),
        true => format!("{}AWSDynamoDB/data/", prefix_folder(prefix)),
    }
}

fn prefix_folder(prefix: &str) -> String {
    match prefix.trim_matches('/') {
        "" => String::new(),
        trimmed => format!("{trimmed}/"),
    }
}

/// One uploaded data file, as `manifest-files.json` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataFile {
    pub key: String,
    pub item_count: u64,
    /// Base64 of the MD5 of the object's bytes (compressed).
    pub md5: String,
    /// S3's ETag for the upload: the MD5 in hex, or for a multipart upload the MD5 of the parts' MD5s
    /// and `-<parts>`.
    pub etag: String,
    pub size: u64,
}

impl DataFile {
    fn manifest_line(&self) -> String {
        json!({
            "itemCount": self.item_count,
            "md5Checksum": self.md5,
            "etag": self.etag,
            "dataFileS3Key": self.key,
        })
        .to_string()
    }
}

/// Lines into gzip'd data files, closed at [`DATA_FILE_BYTES`] of lines. Lines are compressed on the
/// caller's thread (callers add them from a blocking section); uploads are [`DataFiles::upload`]'s.
pub struct DataFiles {
    folder: String,
    /// What names the files: an export's id (a repeated export writes the same files again).
    seed: String,
    extension: &'static str,
    open: Option<(GzEncoder<Vec<u8>>, u64, usize)>,
    closed: Vec<(Vec<u8>, u64)>,
    /// Bytes of lines written so far (uncompressed).
    pub bytes: u64,
    /// Lines written so far.
    pub items: u64,
}

impl DataFiles {
    pub fn new(folder: String, seed: &str, format: Format) -> Self {
        let seed = seed.to_string();
        DataFiles { folder, seed, extension: format.extension(), open: None, closed: Vec::new(), bytes: 0, items: 0 }
    }

    /// Adds a line (without its newline).
    pub fn add(&mut self, line: &str) {
        let (encoder, count, size) = self
            .open
            .get_or_insert_with(|| (GzEncoder::new(Vec::with_capacity(1 << 20), flate2::Compression::fast()), 0, 0));
        encoder.write_all(line.as_bytes()).and_then(|()| encoder.write_all(b"\n")).expect("a Vec grows");
        *count += 1;
        *size += line.len() + 1;
        self.items += 1;
        self.bytes += line.len() as u64 + 1;
        if *size >= DATA_FILE_BYTES {
            self.close();
        }
    }

    fn close(&mut self) {
        if let Some((encoder, count, _)) = self.open.take() {
            self.closed.push((encoder.finish().expect("a Vec grows"), count));
        }
    }

    /// Uploads the files closed so far; with `last`, the open one too (and one empty file when there
    /// were no items at all: DynamoDB writes at least one file).
    pub async fn upload(
        &mut self,
        store: &BackupStore,
        last: bool,
        uploaded: &mut Vec<DataFile>,
    ) -> Result<(), StoreError> {
        if last {
            if self.open.is_none() && uploaded.is_empty() && self.closed.is_empty() {
                self.open = Some((GzEncoder::new(Vec::new(), flate2::Compression::fast()), 0, 0));
            }
            self.close();
        }
        for (data, item_count) in std::mem::take(&mut self.closed) {
            let key = format!("{}{}.{}", self.folder, file_name(&self.seed, uploaded.len()), self.extension);
            // Hashing a file of up to 128 MiB takes the CPU: off the runtime's threads.
            let ((md5, etag), data) = tokio::task::spawn_blocking(move || (checksums(&data), data))
                .await
                .expect("hashing a data file does not panic");
            let size = data.len() as u64;
            store.put_in_parts(&key, Bytes::from(data), PART_BYTES).await?;
            uploaded.push(DataFile { key, item_count, md5, etag, size });
        }
        Ok(())
    }
}

/// A data file's name as DynamoDB's look (26 lower-case letters and digits), drawn from the export's id
/// and the file's number: an export run again (a new leader) writes the same files, never a second set.
fn file_name(seed: &str, number: usize) -> String {
    use sha2::{Digest, Sha256};
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let digest = Sha256::digest(format!("{seed}/{number}").as_bytes());
    digest.iter().take(26).map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()])).collect()
}

/// The base64 MD5 of `data`, and the ETag S3 gives it when uploaded as [`BackupStore::put_in_parts`] does.
fn checksums(data: &[u8]) -> (String, String) {
    let md5 = Md5::digest(data);
    let etag = if data.len() <= PART_BYTES {
        hex(&md5)
    } else {
        let mut of_parts = Md5::new();
        let parts = data.chunks(PART_BYTES).map(|part| of_parts.update(Md5::digest(part))).count();
        format!("{}-{parts}", hex(&of_parts.finalize()))
    };
    (BASE64.encode(md5), etag)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A time as the manifests write it: ISO 8601 in UTC with milliseconds (`2020-11-04T07:28:34.028Z`).
pub fn manifest_time(micros: u64) -> String {
    let format =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1000)
        .ok()
        .and_then(|at| at.format(format).ok())
        .unwrap_or_default()
}

/// Writes `manifest-files.json` and `manifest-summary.json` (each with its `.checksum`) into the export's
/// folder; `summary` is the summary without `manifestFilesS3Key`, which this adds. Returns the summary's key.
pub async fn write_manifests(
    store: &BackupStore,
    folder: &str,
    files: &[DataFile],
    mut summary: Json,
) -> Result<String, StoreError> {
    let mut listing: String = files.iter().map(|f| f.manifest_line() + "\n").collect();
    if listing.is_empty() {
        listing.push('\n');
    }
    let files_key = format!("{folder}manifest-files.json");
    put_with_checksum(store, &files_key, listing.into_bytes()).await?;
    summary["manifestFilesS3Key"] = json!(files_key);
    let summary_key = format!("{folder}manifest-summary.json");
    put_with_checksum(store, &summary_key, summary.to_string().into_bytes()).await?;
    Ok(summary_key)
}

async fn put_with_checksum(store: &BackupStore, key: &str, data: Vec<u8>) -> Result<(), StoreError> {
    let checksum = hex(&Md5::digest(&data));
    store.put(key, Bytes::from(data)).await?;
    let checksum_key = format!("{}.checksum", key.trim_end_matches(".json"));
    store.put(&checksum_key, Bytes::from(checksum.into_bytes())).await
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    #[test]
    fn folders_are_dynamodbs() {
        assert_eq!(export_folder("", "01-2"), "AWSDynamoDB/01-2/");
        assert_eq!(export_folder("/nightly/", "01-2"), "nightly/AWSDynamoDB/01-2/");
        assert_eq!(data_folder("nightly", "01-2", false), "nightly/AWSDynamoDB/01-2/data/");
        assert_eq!(data_folder("nightly", "01-2", true), "nightly/AWSDynamoDB/data/");
    }

    #[test]
    fn etags_are_s3s_for_one_part_and_for_many() {
        let (md5, etag) = checksums(b"hello");
        assert_eq!(etag, "5d41402abc4b2a76b9719d911017c592");
        assert_eq!(md5, "XUFAKrxLKna5cZ2REBfFkg==");
        let big = vec![7u8; PART_BYTES + 1];
        let (_, etag) = checksums(&big);
        assert!(etag.ends_with("-2") && etag.len() == 34, "{etag}");
    }

    #[test]
    fn data_file_names_are_the_same_when_an_export_is_run_again() {
        assert_eq!(file_name("01693685827463-2d8752fd", 0), file_name("01693685827463-2d8752fd", 0));
        assert_ne!(file_name("01693685827463-2d8752fd", 0), file_name("01693685827463-2d8752fd", 1));
        assert_ne!(file_name("01693685827463-2d8752fd", 0), file_name("01693685827463-2d8752fe", 0));
        let name = file_name("x", 3);
        assert_eq!(name.len(), 26);
        assert!(name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()), "{name}");
    }

    #[test]
    fn manifest_times_have_milliseconds_in_utc() {
        assert_eq!(manifest_time(1_604_474_914_028_123), "2020-11-04T07:28:34.028Z");
    }

    #[tokio::test]
    async fn lines_go_to_gzip_files_listed_with_their_checksums() {
        let dir = tempfile::tempdir().unwrap();
        let store = BackupStore::open(&format!("file://{}", dir.path().display())).unwrap();
        let mut files = DataFiles::new("AWSDynamoDB/x/data/".into(), "x", Format::DynamoDbJson);
        files.add("{\"Item\":{\"pk\":{\"S\":\"a\"}}}");
        files.add("{\"Item\":{\"pk\":{\"S\":\"b\"}}}");
        let mut uploaded = Vec::new();
        files.upload(&store, true, &mut uploaded).await.unwrap();
        assert_eq!(uploaded.len(), 1);
        let data = store.get(&uploaded[0].key).await.unwrap();
        assert_eq!(checksums(&data).0, uploaded[0].md5);
        let mut text = String::new();
        flate2::read::GzDecoder::new(&data[..]).read_to_string(&mut text).unwrap();
        assert_eq!(text, "{\"Item\":{\"pk\":{\"S\":\"a\"}}}\n{\"Item\":{\"pk\":{\"S\":\"b\"}}}\n");
        assert!(uploaded[0].key.starts_with("AWSDynamoDB/x/data/") && uploaded[0].key.ends_with(".json.gz"));

        let key = write_manifests(&store, "AWSDynamoDB/x/", &uploaded, json!({"itemCount": 2})).await.unwrap();
        let summary: Json = serde_json::from_slice(&store.get(&key).await.unwrap()).unwrap();
        assert_eq!(summary["manifestFilesS3Key"], "AWSDynamoDB/x/manifest-files.json");
        let listing = store.get("AWSDynamoDB/x/manifest-files.json").await.unwrap();
        let line: Json = serde_json::from_slice(listing.split(|b| *b == b'\n').next().unwrap()).unwrap();
        assert_eq!(line["itemCount"], 2);
        assert_eq!(line["dataFileS3Key"], json!(uploaded[0].key));
        let checksum = store.get("AWSDynamoDB/x/manifest-files.checksum").await.unwrap();
        assert_eq!(checksum, hex(&Md5::digest(&listing)).into_bytes());
    }

    #[tokio::test]
    async fn an_export_of_nothing_still_has_one_empty_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = BackupStore::open(&format!("file://{}", dir.path().display())).unwrap();
        let mut files = DataFiles::new("d/".into(), "x", Format::Ion);
        let mut uploaded = Vec::new();
        files.upload(&store, true, &mut uploaded).await.unwrap();
        assert_eq!(uploaded.len(), 1);
        assert_eq!(uploaded[0].item_count, 0);
        assert!(uploaded[0].key.ends_with(".ion.gz"));
    }
}
