//! An import's items: every object under the source prefix (in key order), decompressed (GZIP, ZSTD or
//! none; all objects alike, whatever their names), read as CSV, DynamoDB JSON or Ion, and checked as
//! PutItem checks an item. A valid item goes to the sink in batches; one that is not is counted and
//! kept with its reason for the import's error log, and the import goes on.

use std::io::Read as _;
use std::sync::Arc;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use tern_proto::internal::{ImageEntry, ImportCounts, StoredItem};
use tern_proto::value::{item_from_wire, item_to_wire};
use tern_proto::{AttributeValue, Item};

use super::format::{self, LineError};
use crate::backup::restore::BATCH_BYTES;
use crate::backup::store::BackupStore;
use crate::backup::JobError;
use crate::schema::TableSchema;

/// How the source objects are written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputFormat {
    /// CSV: a delimiter, and the header (the first line unless a header list is given).
    Csv {
        delimiter: u8,
        header_list: Vec<String>,
    },
    DynamoDbJson,
    Ion,
}

/// How the source objects are compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    /// DynamoDB's name (`GZIP`, `ZSTD`, `NONE`; empty is `NONE`).
    pub fn named(name: &str) -> Option<Compression> {
        match name {
            "" | "NONE" => Some(Compression::None),
            "GZIP" => Some(Compression::Gzip),
            "ZSTD" => Some(Compression::Zstd),
            _ => None,
        }
    }
}

/// The delimiters DynamoDB takes for CSV: `, ; : |`, tab and space (empty is a comma).
pub fn csv_delimiter(text: &str) -> Option<u8> {
    match text {
        "" => Some(b','),
        "," | ";" | ":" | "|" | "\t" | " " => Some(text.as_bytes()[0]),
        _ => None,
    }
}

/// An item that failed validation: where it was, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    pub object: String,
    /// The line (JSON, CSV) or value (Ion) in the object, from 1; 0 for the object as a whole.
    pub line: u64,
    pub reason: String,
}

/// How many rejected items an import lists in its error log (it counts them all).
pub const MAX_LISTED_REJECTS: usize = 10_000;

impl Rejected {
    /// The error log's line for it (JSON).
    pub fn log_line(&self) -> String {
        serde_json::json!({ "object": self.object, "line": self.line, "reason": self.reason }).to_string()
    }
}

/// An import's error log: a JSON line per listed rejected item, and one that says how many more there
/// were when `errors` is more than it lists.
pub fn error_log(listed: &[Rejected], errors: u64) -> String {
    let mut log: String = listed.iter().map(|r| r.log_line() + "\n").collect();
    let unlisted = errors.saturating_sub(listed.len() as u64);
    if unlisted > 0 {
        let why = format!("{unlisted} more items were rejected; the first {} are listed", listed.len());
        log.push_str(&(serde_json::json!({ "unlisted": unlisted, "reason": why }).to_string() + "\n"));
    }
    log
}

/// Where an import's valid items go, with its counts so far.
pub trait ImportSink {
    fn write(
        &mut self,
        items: Vec<ImageEntry>,
        counts: &ImportCounts,
    ) -> impl std::future::Future<Output = Result<(), JobError>> + Send;
}

/// How many items the reader hands over at a time.
const READ_CHUNK_ITEMS: usize = 1024;

/// What the reader hands over: an object's items (or why each is not one) with their lines, as they
/// are read; then the object's end, with the bytes it held (decompressed) and why the rest of it could
/// not be read, if it could not.
enum Read {
    Items { object: Arc<str>, items: Vec<(u64, Result<ImageEntry, LineError>)> },
    End { object: Arc<str>, bytes: u64, abandoned: Option<String> },
}

/// Reads every object under `prefix` in `bucket` and sends its valid items to `sink`; returns the
/// final counts and the items rejected (the first [`MAX_LISTED_REJECTS`]). No object under the prefix
/// fails the import. The objects are read and their items checked on a blocking thread, a few chunks
/// ahead of the sink, so that reading and writing overlap.
pub async fn run(
    bucket: &BackupStore,
    prefix: &str,
    format: &InputFormat,
    compression: Compression,
    schema: &TableSchema,
    sink: &mut impl ImportSink,
) -> Result<(ImportCounts, Vec<Rejected>), JobError> {
    // S3's prefixes are string prefixes (`data/part-` matches `data/part-1.csv`): list the folder the
    // prefix is in, and keep what starts with it.
    let folder = prefix.rsplit_once('/').map_or("", |(folder, _)| folder);
    let objects: Vec<_> = bucket.list(folder).await?.into_iter().filter(|o| o.path.starts_with(prefix)).collect();
    if objects.is_empty() {
        return Err(JobError::Failed(format!("No objects were found under the prefix {prefix:?} of the bucket")));
    }
    let (sender, mut reads) = tokio::sync::mpsc::channel(4);
    let reader = {
        let (bucket, format, schema) = (bucket.clone(), format.clone(), schema.clone());
        tokio::task::spawn_blocking(move || read_objects(&bucket, objects, compression, &format, &schema, &sender))
    };
    let mut counts = ImportCounts::default();
    let mut rejected = Vec::new();
    let mut reject = |counts: &mut ImportCounts, object: &str, line: u64, reason: String| {
        counts.errors += 1;
        if rejected.len() < MAX_LISTED_REJECTS {
            rejected.push(Rejected { object: object.to_string(), line, reason });
        }
    };
    let mut batch = Vec::new();
    let mut batch_bytes = 0;
    while let Some(read) = reads.recv().await {
        match read {
            Read::Items { object, items } => {
                for (line, result) in items {
                    counts.processed_items += 1;
                    match result {
                        Ok(entry) => {
                            batch_bytes += prost::Message::encoded_len(&entry);
                            batch.push(entry);
                            if batch_bytes >= BATCH_BYTES {
                                sink.write(std::mem::take(&mut batch), &counts).await?;
                                batch_bytes = 0;
                            }
                        }
                        Err(LineError(reason)) => reject(&mut counts, &object, line, reason),
                    }
                }
            }
            Read::End { object, bytes, abandoned } => {
                counts.processed_bytes += bytes;
                if let Some(reason) = abandoned {
                    // The rest of the object counts as one item processed and rejected.
                    counts.processed_items += 1;
                    reject(&mut counts, &object, 0, reason);
                }
            }
        }
    }
    // The reader ends when every object is read, or at the first it could not get.
    reader.await.map_err(|e| JobError::Interrupted(e.to_string()))??;
    sink.write(batch, &counts).await?;
    Ok((counts, rejected))
}

/// Gets each object and hands its items over, a chunk at a time; stops early when nobody takes them.
fn read_objects(
    bucket: &BackupStore,
    objects: Vec<crate::backup::store::StoredObject>,
    compression: Compression,
    format: &InputFormat,
    schema: &TableSchema,
    sender: &tokio::sync::mpsc::Sender<Read>,
) -> Result<(), JobError> {
    let runtime = tokio::runtime::Handle::current();
    for stored in objects {
        let data = runtime.block_on(bucket.get(&stored.path))?;
        let object: Arc<str> = stored.path.into();
        let mut chunk = Vec::with_capacity(READ_CHUNK_ITEMS);
        let mut taken = true;
        let (bytes, abandoned) = read_object(&data, compression, format, schema, |line, item| {
            if !taken {
                return;
            }
            chunk.push((line, item.and_then(|item| entry(item, schema))));
            if chunk.len() >= READ_CHUNK_ITEMS {
                let items = std::mem::replace(&mut chunk, Vec::with_capacity(READ_CHUNK_ITEMS));
                taken = sender.blocking_send(Read::Items { object: object.clone(), items }).is_ok();
            }
        });
        let last = Read::Items { object: object.clone(), items: chunk };
        if !taken || sender.blocking_send(last).is_err() {
            return Ok(());
        }
        if sender.blocking_send(Read::End { object, bytes, abandoned }).is_err() {
            return Ok(());
        }
    }
    Ok(())
}

/// Reads one object: each item (or why it is not one) goes to `item` with its line; returns the bytes
/// read (decompressed), and why the rest of the object could not be read, if it could not.
fn read_object(
    data: &[u8],
    compression: Compression,
    format: &InputFormat,
    schema: &TableSchema,
    mut item: impl FnMut(u64, Result<Item, LineError>),
) -> (u64, Option<String>) {
    let mut text = Vec::new();
    let decompressed = match compression {
        Compression::None => {
            text.extend_from_slice(data);
            Ok(())
        }
        Compression::Gzip => flate2::read::MultiGzDecoder::new(data).read_to_end(&mut text).map(|_| ()),
        Compression::Zstd => {
            zstd::stream::read::Decoder::new(data).and_then(|mut d| d.read_to_end(&mut text)).map(|_| ())
        }
    };
    // What was decompressed before a damaged part is read; the rest is abandoned.
    let mut abandoned =
        decompressed.err().map(|e| format!("The object could not be decompressed ({compression:?}): {e}"));
    let bytes = text.len() as u64;
    match format {
        InputFormat::DynamoDbJson => {
            for (n, line) in text.split(|b| *b == b'\n').enumerate() {
                let line = std::str::from_utf8(line).map_err(|e| LineError(format!("Invalid UTF-8: {e}")));
                match line {
                    Ok(line) if line.trim().is_empty() => {}
                    Ok(line) => item(n as u64 + 1, format::json_item(line)),
                    Err(e) => item(n as u64 + 1, Err(e)),
                }
            }
        }
        InputFormat::Ion => match format::ion_items(std::io::Cursor::new(text)) {
            Ok(values) => values.enumerate().for_each(|(n, value)| item(n as u64 + 1, value)),
            Err(LineError(why)) => abandoned = Some(why),
        },
        InputFormat::Csv { delimiter, header_list } => {
            for (n, row) in csv_items(&text, *delimiter, header_list, schema) {
                item(n, row);
            }
        }
    }
    (bytes, abandoned)
}

/// An item as a restore entry, checked as PutItem checks one: types, sets, nesting, size, and the key.
fn entry(item: Item, schema: &TableSchema) -> Result<ImageEntry, LineError> {
    let attributes = item_to_wire(&item);
    item_from_wire(attributes.clone()).map_err(|e| LineError(e.message))?;
    let key = schema.storage_key(&attributes).map_err(|e| LineError(e.message))?;
    let item = StoredItem { attributes: attributes.into_iter().collect(), ..Default::default() };
    Ok(ImageEntry { key: key[8..].to_vec(), item: Some(item) })
}

/// CSV rows as items, by DynamoDB's rules: the header names the columns (the first line, unless a
/// header list is given); key columns take their type from the key schema (S, N, or B in base64),
/// every other column is a string; empty cells are left out.
fn csv_items(
    text: &[u8],
    delimiter: u8,
    header_list: &[String],
    schema: &TableSchema,
) -> Vec<(u64, Result<Item, LineError>)> {
    let mut reader = csv::ReaderBuilder::new().delimiter(delimiter).has_headers(false).flexible(true).from_reader(text);
    let mut records = reader.byte_records();
    let mut items = Vec::new();
    let header: Vec<String> = if header_list.is_empty() {
        match records.next() {
            Some(Ok(first)) => first.iter().map(|h| String::from_utf8_lossy(h).into_owned()).collect(),
            Some(Err(e)) => return vec![(1, Err(LineError(format!("Invalid CSV header: {e}"))))],
            None => return items,
        }
    } else {
        header_list.to_vec()
    };
    for record in records {
        let line = match &record {
            Ok(r) => r.position().map_or(0, |p| p.line()),
            Err(e) => e.position().map_or(0, |p| p.line()),
        };
        let item = record.map_err(|e| LineError(format!("Invalid CSV: {e}"))).and_then(|record| {
            if record.len() != header.len() {
                return Err(LineError(format!(
                    "The row has {} columns; the header has {}",
                    record.len(),
                    header.len()
                )));
            }
            let mut item = Item::new();
            for (name, cell) in header.iter().zip(record.iter()) {
                if cell.is_empty() {
                    continue;
                }
                let cell = std::str::from_utf8(cell).map_err(|e| LineError(format!("Invalid UTF-8: {e}")))?;
                let key_type = schema.key_attributes().find(|k| &k.name == name).map(|k| k.attribute_type.as_str());
                let value = match key_type {
                    Some("N") => AttributeValue::N(cell.parse().map_err(|e: tern_proto::number::NumberError| {
                        LineError(format!("The key {name} is not a number: {e}"))
                    })?),
                    Some("B") => AttributeValue::B(
                        BASE64.decode(cell).map_err(|_| LineError(format!("The key {name} is not base64")))?,
                    ),
                    _ => AttributeValue::S(cell.to_string()),
                };
                item.insert(name.clone(), value);
            }
            Ok(item)
        });
        items.push((line, item));
    }
    items
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use tern_proto::v1::{AttributeDefinition, KeySchemaElement, TableDescription};

    use super::*;

    fn schema(sort: Option<(&str, &str)>) -> TableSchema {
        let mut description = TableDescription {
            attribute_definitions: vec![AttributeDefinition {
                attribute_name: "pk".into(),
                attribute_type: "S".into(),
            }],
            key_schema: vec![KeySchemaElement { attribute_name: "pk".into(), key_type: "HASH".into() }],
            ..Default::default()
        };
        if let Some((name, kind)) = sort {
            description
                .attribute_definitions
                .push(AttributeDefinition { attribute_name: name.into(), attribute_type: kind.into() });
            description.key_schema.push(KeySchemaElement { attribute_name: name.into(), key_type: "RANGE".into() });
        }
        TableSchema::from_description(7, &description).unwrap()
    }

    /// What one object held: each item (or why it is not one) with its line, the bytes read, and why
    /// the rest could not be read.
    struct ReadObject {
        items: Vec<(u64, Result<ImageEntry, LineError>)>,
        bytes: u64,
        abandoned: Option<String>,
    }

    fn read_all(data: &[u8], compression: Compression, format: &InputFormat, schema: &TableSchema) -> ReadObject {
        let mut items = Vec::new();
        let (bytes, abandoned) = read_object(data, compression, format, schema, |n, item| {
            items.push((n, item.and_then(|item| entry(item, schema))))
        });
        ReadObject { items, bytes, abandoned }
    }

    fn items(read: ReadObject) -> Vec<Result<Item, String>> {
        read.items
            .into_iter()
            .map(|(_, r)| {
                r.map(|entry| {
                    tern_proto::value::item_from_wire(entry.item.unwrap().attributes.into_iter().collect()).unwrap()
                })
                .map_err(|e| e.0)
            })
            .collect()
    }

    fn s(text: &str) -> AttributeValue {
        AttributeValue::S(text.into())
    }

    fn item(pairs: &[(&str, AttributeValue)]) -> Item {
        pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
    }

    #[test]
    fn csv_follows_dynamodbs_rules() {
        let text = "pk,n,note\r\na,1,\"says \"\"hi\"\", twice\"\nb,2,\n";
        let read = read_all(
            text.as_bytes(),
            Compression::None,
            &InputFormat::Csv { delimiter: b',', header_list: vec![] },
            &schema(Some(("n", "N"))),
        );
        assert_eq!(
            items(read),
            vec![
                Ok(item(&[
                    ("pk", s("a")),
                    ("n", AttributeValue::N("1".parse().unwrap())),
                    ("note", s("says \"hi\", twice"))
                ])),
                Ok(item(&[("pk", s("b")), ("n", AttributeValue::N("2".parse().unwrap()))])),
            ]
        );
        // A header list: the first line is data; another delimiter; non-key numbers stay strings.
        let format = InputFormat::Csv { delimiter: b';', header_list: vec!["pk".into(), "count".into()] };
        let read = read_all(b"x;10\ny;\n", Compression::None, &format, &schema(None));
        assert_eq!(items(read), vec![Ok(item(&[("pk", s("x")), ("count", s("10"))])), Ok(item(&[("pk", s("y"))]))]);
    }

    #[test]
    fn bad_rows_are_rejected_with_why_and_the_rest_go_in() {
        let format = InputFormat::Csv { delimiter: b',', header_list: vec![] };
        let read = read_all(b"pk,n\n,1\na,x\nb,2\nc\n", Compression::None, &format, &schema(Some(("n", "N"))));
        let results = items(read);
        assert_eq!(results.len(), 4);
        assert!(results[0].as_ref().unwrap_err().contains("Missing the key pk"), "{results:?}");
        assert!(results[1].as_ref().unwrap_err().contains("The key n is not a number"), "{results:?}");
        assert!(results[2].is_ok());
        assert!(results[3].as_ref().unwrap_err().contains("columns"), "{results:?}");

        let json = b"{\"Item\":{\"pk\":{\"S\":\"a\"}}}\n{\"Item\":{\"pk\":{\"N\":\"1\"}}}\nnot json\n\n{\"Item\":{\"other\":{\"S\":\"x\"}}}\n";
        let read = read_all(json, Compression::None, &InputFormat::DynamoDbJson, &schema(None));
        let lines: Vec<u64> = read.items.iter().map(|(n, _)| *n).collect();
        assert_eq!(lines, vec![1, 2, 3, 5]);
        let results = items(read);
        assert!(results[0].is_ok());
        assert!(results[1].as_ref().unwrap_err().contains("Type mismatch"), "{results:?}");
        assert!(results[2].as_ref().unwrap_err().starts_with("Invalid JSON"), "{results:?}");
        assert!(results[3].as_ref().unwrap_err().contains("Missing the key pk"), "{results:?}");
        let big = format!("{{\"Item\":{{\"pk\":{{\"S\":\"a\"}},\"blob\":{{\"S\":\"{}\"}}}}}}", "x".repeat(400 * 1024));
        let read = read_all(big.as_bytes(), Compression::None, &InputFormat::DynamoDbJson, &schema(None));
        assert_eq!(items(read), vec![Err("Item size has exceeded the maximum allowed size".to_string())]);
    }

    #[test]
    fn gzip_and_zstd_inputs_read_the_same() {
        let text = b"{\"Item\":{\"pk\":{\"S\":\"a\"}}}\n";
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(text).unwrap();
        let gz = gz.finish().unwrap();
        let zst = zstd::stream::encode_all(&text[..], 3).unwrap();
        for (data, compression) in [(&gz, Compression::Gzip), (&zst, Compression::Zstd)] {
            let read = read_all(data, compression, &InputFormat::DynamoDbJson, &schema(None));
            assert_eq!(read.bytes, text.len() as u64);
            assert_eq!(items(read), vec![Ok(item(&[("pk", s("a"))]))]);
        }
        let read = read_all(&gz[..gz.len() - 6], Compression::Gzip, &InputFormat::DynamoDbJson, &schema(None));
        assert!(read.abandoned.is_some(), "a cut gzip object is abandoned where it breaks");
    }

    #[test]
    fn the_error_log_lists_its_items_and_says_how_many_more() {
        let rejected = Rejected { object: "o".into(), line: 3, reason: "bad".into() };
        assert_eq!(error_log(std::slice::from_ref(&rejected), 1), "{\"line\":3,\"object\":\"o\",\"reason\":\"bad\"}\n");
        let log = error_log(&[rejected], 12_001);
        let last: serde_json::Value = serde_json::from_str(log.lines().last().unwrap()).unwrap();
        assert_eq!(last["unlisted"], 12_000);
    }

    #[test]
    fn delimiters_and_compressions_are_dynamodbs() {
        assert_eq!(csv_delimiter(""), Some(b','));
        assert_eq!(csv_delimiter("\t"), Some(b'\t'));
        assert_eq!(csv_delimiter("#"), None);
        assert_eq!(Compression::named("ZSTD"), Some(Compression::Zstd));
        assert_eq!(Compression::named("BZIP2"), None);
    }
}
