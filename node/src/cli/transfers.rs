//! `export-table-to-point-in-time`, `describe-export`, `list-exports`, `import-table`, `describe-import` and
//! `list-imports`: a table's data to a bucket as it was at a time of its PITR window, and a new table from a
//! bucket's data.

use std::future::Future;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;
use indicatif::{HumanCount, ProgressBar, ProgressStyle};
use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::{json, Value as Json};
use tern_client::Client;
use tern_proto::v1::{
    AttributeDefinition, CsvOptions, DescribeExportRequest, DescribeImportRequest, ExportDescription, ExportSummary,
    ExportTableToPointInTimeRequest, ImportSummary, ImportTableDescription, ImportTableRequest,
    IncrementalExportSpecification, InputFormatOptions, KeySchemaElement, ListExportsRequest, ListImportsRequest,
    S3BucketSource, TableCreationParameters,
};

use super::backups::date_time;
use super::{input, output};

// ---- Parameters ----

/// Reads `ExportFromTime=...,ExportToTime=...,ExportViewType=NEW_IMAGE` or its JSON form; the times are
/// ISO 8601 or seconds since the Unix epoch (a JSON string or number).
pub fn incremental_export_specification(text: &str) -> anyhow::Result<IncrementalExportSpecification> {
    const NAMES: [&str; 3] = ["ExportFromTime", "ExportToTime", "ExportViewType"];
    let fields = input::structure(text)?;
    if let Some(unknown) = fields.keys().find(|name| !NAMES.contains(&name.as_str())) {
        bail!("Unknown parameter in IncrementalExportSpecification: {unknown:?}, must be one of: {}", NAMES.join(", "));
    }
    let time = |name: &str| -> anyhow::Result<Option<f64>> {
        fields.get(name).map(|text| date_time(text).with_context(|| format!("Invalid {name}"))).transpose()
    };
    let export_view_type = match fields.get("ExportViewType").map(String::as_str) {
        None => String::new(),
        Some(view @ ("NEW_IMAGE" | "NEW_AND_OLD_IMAGES")) => view.to_string(),
        Some(other) => bail!("ExportViewType must be NEW_IMAGE or NEW_AND_OLD_IMAGES, got {other:?}"),
    };
    Ok(IncrementalExportSpecification {
        export_from_time: time("ExportFromTime")?,
        export_to_time: time("ExportToTime")?,
        export_view_type,
    })
}

/// Reads `S3Bucket=b,S3KeyPrefix=p[,S3BucketOwner=o]` or its JSON form.
pub fn s3_bucket_source(text: &str) -> anyhow::Result<S3BucketSource> {
    const NAMES: [&str; 3] = ["S3BucketOwner", "S3Bucket", "S3KeyPrefix"];
    let fields = input::structure(text)?;
    if let Some(unknown) = fields.keys().find(|name| !NAMES.contains(&name.as_str())) {
        bail!("Unknown parameter in S3BucketSource: {unknown:?}, must be one of: {}", NAMES.join(", "));
    }
    let field = |name: &str| fields.get(name).cloned().unwrap_or_default();
    let source = S3BucketSource {
        s3_bucket_owner: field("S3BucketOwner"),
        s3_bucket: field("S3Bucket"),
        s3_key_prefix: field("S3KeyPrefix"),
    };
    if source.s3_bucket.is_empty() {
        bail!("Missing required parameter in S3BucketSource: \"S3Bucket\"");
    }
    Ok(source)
}

/// `--input-format-options` as JSON.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct InputFormatOptionsJson {
    #[serde(rename = "Csv")]
    csv: Option<CsvOptionsJson>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CsvOptionsJson {
    #[serde(rename = "Delimiter")]
    delimiter: Option<String>,
    #[serde(rename = "HeaderList")]
    header_list: Option<Vec<String>>,
}

/// Reads `{"Csv":{"Delimiter":";","HeaderList":["a","b"]}}` (or `file://` of it). The AWS CLI's shorthand
/// (`Csv={Delimiter=;,HeaderList=[a,b]}`) is not read: a delimiter may be the shorthand's own comma.
pub fn input_format_options(text: &str) -> anyhow::Result<InputFormatOptions> {
    let value = json_object(text, "InputFormatOptions", r#"{"Csv":{"Delimiter":";","HeaderList":["pk","sk"]}}"#)?;
    let options: InputFormatOptionsJson =
        serde_json::from_value(value).context("Error parsing parameter InputFormatOptions")?;
    Ok(InputFormatOptions {
        csv: options.csv.map(|csv| CsvOptions {
            delimiter: csv.delimiter.unwrap_or_default(),
            header_list: csv.header_list.unwrap_or_default(),
        }),
    })
}

/// `--table-creation-parameters` as JSON.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TableCreationParametersJson {
    #[serde(rename = "TableName")]
    table_name: String,
    #[serde(rename = "AttributeDefinitions")]
    attribute_definitions: Vec<AttributeDefinitionJson>,
    #[serde(rename = "KeySchema")]
    key_schema: Vec<KeySchemaElementJson>,
    #[serde(rename = "BillingMode", default)]
    billing_mode: Option<String>,
    /// Accepted for compatibility; Tern has no capacity modes.
    #[serde(rename = "ProvisionedThroughput", default)]
    _provisioned_throughput: Option<IgnoredAny>,
    /// Accepted for compatibility; Tern's data is encrypted as its stores are configured.
    #[serde(rename = "SSESpecification", default)]
    _sse_specification: Option<IgnoredAny>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AttributeDefinitionJson {
    #[serde(rename = "AttributeName")]
    attribute_name: String,
    #[serde(rename = "AttributeType")]
    attribute_type: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeySchemaElementJson {
    #[serde(rename = "AttributeName")]
    attribute_name: String,
    #[serde(rename = "KeyType")]
    key_type: String,
}

/// Reads `{"TableName":...,"AttributeDefinitions":[...],"KeySchema":[...],"BillingMode":...}` (or `file://`
/// of it).
pub fn table_creation_parameters(text: &str) -> anyhow::Result<TableCreationParameters> {
    const EXAMPLE: &str = concat!(
        r#"{"TableName":"t","AttributeDefinitions":[{"AttributeName":"pk","AttributeType":"S"}],"#,
        r#""KeySchema":[{"AttributeName":"pk","KeyType":"HASH"}]}"#,
    );
    let value = json_object(text, "TableCreationParameters", EXAMPLE)?;
    if value.get("GlobalSecondaryIndexes").is_some() {
        bail!("TableCreationParameters: GlobalSecondaryIndexes are not supported (Tern has no secondary indexes)");
    }
    let parameters: TableCreationParametersJson =
        serde_json::from_value(value).context("Error parsing parameter TableCreationParameters")?;
    Ok(TableCreationParameters {
        table_name: parameters.table_name,
        attribute_definitions: parameters
            .attribute_definitions
            .into_iter()
            .map(|d| AttributeDefinition { attribute_name: d.attribute_name, attribute_type: d.attribute_type })
            .collect(),
        key_schema: parameters
            .key_schema
            .into_iter()
            .map(|k| KeySchemaElement { attribute_name: k.attribute_name, key_type: k.key_type })
            .collect(),
        billing_mode: parameters.billing_mode.unwrap_or_default(),
    })
}

/// A parameter only read as a JSON object (or `file://` of one): anything else is refused with an example.
fn json_object(text: &str, name: &str, example: &str) -> anyhow::Result<Json> {
    let text = input::text(text)?;
    if !text.trim_start().starts_with('{') {
        bail!("Error parsing parameter {name}: expected a JSON object such as {example} (or file://PATH of one)");
    }
    input::json(&text)
}

// ---- Output, with DynamoDB's field names ----

/// Sets `key` to a string unless it is empty.
fn insert_text(object: &mut Json, key: &str, text: &str) {
    if !text.is_empty() {
        object[key] = json!(text);
    }
}

/// A count of the wire's (never negative) as a progress bar's.
fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// An incremental export's IncrementalExportSpecification.
fn incremental_export(spec: &IncrementalExportSpecification) -> Json {
    let mut out = json!({});
    if let Some(from) = spec.export_from_time {
        output::insert_date_time(&mut out, "ExportFromTime", from);
    }
    if let Some(to) = spec.export_to_time {
        output::insert_date_time(&mut out, "ExportToTime", to);
    }
    insert_text(&mut out, "ExportViewType", &spec.export_view_type);
    out
}

/// What `export-table-to-point-in-time` and `describe-export` print under ExportDescription; while the
/// export is IN_PROGRESS, Tern's progress too (ItemsExported, BytesWritten).
pub fn export_description(d: &ExportDescription) -> Json {
    let mut out = json!({ "ExportArn": d.export_arn, "ExportStatus": d.export_status });
    output::insert_date_time(&mut out, "StartTime", d.start_time);
    output::insert_date_time(&mut out, "EndTime", d.end_time);
    insert_text(&mut out, "ExportManifest", &d.export_manifest);
    insert_text(&mut out, "TableArn", &d.table_arn);
    insert_text(&mut out, "TableId", &d.table_id);
    output::insert_date_time(&mut out, "ExportTime", d.export_time);
    insert_text(&mut out, "ClientToken", &d.client_token);
    insert_text(&mut out, "S3Bucket", &d.s3_bucket);
    insert_text(&mut out, "S3BucketOwner", &d.s3_bucket_owner);
    insert_text(&mut out, "S3Prefix", &d.s3_prefix);
    insert_text(&mut out, "S3SseAlgorithm", &d.s3_sse_algorithm);
    insert_text(&mut out, "S3SseKmsKeyId", &d.s3_sse_kms_key_id);
    insert_text(&mut out, "FailureCode", &d.failure_code);
    insert_text(&mut out, "FailureMessage", &d.failure_message);
    insert_text(&mut out, "ExportFormat", &d.export_format);
    // Known once the export is done (an empty table's export has 0 of each).
    if d.export_status == "COMPLETED" || d.billed_size_bytes > 0 {
        out["BilledSizeBytes"] = json!(d.billed_size_bytes);
    }
    if d.export_status == "COMPLETED" || d.item_count > 0 {
        out["ItemCount"] = json!(d.item_count);
    }
    insert_text(&mut out, "ExportType", &d.export_type);
    if let Some(spec) = &d.incremental_export_specification {
        out["IncrementalExportSpecification"] = incremental_export(spec);
    }
    if d.export_status == "IN_PROGRESS" {
        out["ItemsExported"] = json!(d.items_exported);
        out["BytesWritten"] = json!(d.bytes_written);
    }
    out
}

/// One export as ListExports lists it.
fn export_summary(summary: &ExportSummary) -> Json {
    let mut out = json!({ "ExportArn": summary.export_arn, "ExportStatus": summary.export_status });
    insert_text(&mut out, "ExportType", &summary.export_type);
    out
}

/// An import's S3BucketSource.
fn bucket_source(source: &S3BucketSource) -> Json {
    let mut out = json!({});
    insert_text(&mut out, "S3BucketOwner", &source.s3_bucket_owner);
    out["S3Bucket"] = json!(source.s3_bucket);
    insert_text(&mut out, "S3KeyPrefix", &source.s3_key_prefix);
    out
}

/// An import's InputFormatOptions.
fn format_options(options: &InputFormatOptions) -> Json {
    let mut out = json!({});
    if let Some(csv) = &options.csv {
        let mut csv_out = json!({});
        insert_text(&mut csv_out, "Delimiter", &csv.delimiter);
        if !csv.header_list.is_empty() {
            csv_out["HeaderList"] = json!(csv.header_list);
        }
        out["Csv"] = csv_out;
    }
    out
}

/// An import's TableCreationParameters.
fn creation_parameters(parameters: &TableCreationParameters) -> Json {
    let definitions: Vec<Json> = parameters
        .attribute_definitions
        .iter()
        .map(|d| json!({ "AttributeName": d.attribute_name, "AttributeType": d.attribute_type }))
        .collect();
    let mut out = json!({
        "TableName": parameters.table_name,
        "AttributeDefinitions": definitions,
        "KeySchema": output::key_schema(&parameters.key_schema),
    });
    insert_text(&mut out, "BillingMode", &parameters.billing_mode);
    out
}

/// What `import-table` and `describe-import` print under ImportTableDescription.
pub fn import_description(d: &ImportTableDescription) -> Json {
    let mut out = json!({ "ImportArn": d.import_arn, "ImportStatus": d.import_status });
    insert_text(&mut out, "TableArn", &d.table_arn);
    insert_text(&mut out, "TableId", &d.table_id);
    insert_text(&mut out, "ClientToken", &d.client_token);
    if let Some(source) = &d.s3_bucket_source {
        out["S3BucketSource"] = bucket_source(source);
    }
    out["ErrorCount"] = json!(d.error_count);
    insert_text(&mut out, "CloudWatchLogGroupArn", &d.cloud_watch_log_group_arn);
    insert_text(&mut out, "InputFormat", &d.input_format);
    if let Some(options) = d.input_format_options.as_ref().filter(|o| o.csv.is_some()) {
        out["InputFormatOptions"] = format_options(options);
    }
    insert_text(&mut out, "InputCompressionType", &d.input_compression_type);
    if let Some(parameters) = &d.table_creation_parameters {
        out["TableCreationParameters"] = creation_parameters(parameters);
    }
    output::insert_date_time(&mut out, "StartTime", d.start_time);
    output::insert_date_time(&mut out, "EndTime", d.end_time);
    out["ProcessedSizeBytes"] = json!(d.processed_size_bytes);
    out["ProcessedItemCount"] = json!(d.processed_item_count);
    out["ImportedItemCount"] = json!(d.imported_item_count);
    insert_text(&mut out, "FailureCode", &d.failure_code);
    insert_text(&mut out, "FailureMessage", &d.failure_message);
    out
}

/// One import as ListImports lists it.
fn import_summary(summary: &ImportSummary) -> Json {
    let mut out = json!({ "ImportArn": summary.import_arn, "ImportStatus": summary.import_status });
    insert_text(&mut out, "TableArn", &summary.table_arn);
    if let Some(source) = &summary.s3_bucket_source {
        out["S3BucketSource"] = bucket_source(source);
    }
    insert_text(&mut out, "CloudWatchLogGroupArn", &summary.cloud_watch_log_group_arn);
    insert_text(&mut out, "InputFormat", &summary.input_format);
    output::insert_date_time(&mut out, "StartTime", summary.start_time);
    output::insert_date_time(&mut out, "EndTime", summary.end_time);
    out
}

/// Why a waited-for export or import failed.
fn failure(what: &str, arn: &str, code: &str, message: &str) -> String {
    let code = if code.is_empty() { "no FailureCode" } else { code };
    format!("{what} {arn} FAILED ({code}): {message}")
}

/// The table name an ARN ends with (`...:table/NAME`), or the ARN.
fn table_name(arn: &str) -> String {
    arn.rsplit_once(":table/").map_or(arn, |(_, name)| name.split('/').next().unwrap_or(name)).to_string()
}

/// A count and its rate over `elapsed`, for a progress bar's message.
fn with_rate(count: u64, what: &str, elapsed: Duration) -> String {
    let seconds = elapsed.as_secs_f64();
    let rate = if seconds > 0.0 { (count as f64 / seconds) as u64 } else { 0 };
    format!("{} {what} ({}/s)", HumanCount(count), HumanCount(rate))
}

// ---- Paging, as the AWS CLI pages ----

/// Where a listing resumes, as the AWS CLI's `--starting-token`: base64 of
/// `{"NextToken": "<the call's token>", "boto_truncate_amount": N}`, N the entries of that page already
/// printed. A token that is not one is the call's own NextToken.
#[derive(Debug, Clone, Default, PartialEq)]
struct Resume {
    token: String,
    skip: usize,
}

impl Resume {
    fn decode(text: Option<&str>) -> Resume {
        use base64::Engine;
        let Some(text) = text else { return Resume::default() };
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .ok()
            .and_then(|bytes| serde_json::from_slice::<Json>(&bytes).ok());
        match decoded.as_ref().and_then(|d| Some((d.get("NextToken")?.as_str()?, d))) {
            Some((token, decoded)) => Resume {
                token: token.to_string(),
                skip: decoded.get("boto_truncate_amount").and_then(Json::as_u64).unwrap_or(0) as usize,
            },
            None => Resume { token: text.to_string(), skip: 0 },
        }
    }

    fn encode(&self) -> String {
        use base64::Engine;
        let mut token = json!({ "NextToken": self.token });
        if self.skip > 0 {
            token["boto_truncate_amount"] = json!(self.skip);
        }
        base64::engine::general_purpose::STANDARD.encode(token.to_string())
    }
}

/// Lists every page (`fetch(token)` gives one page's entries and the next token, empty after the last)
/// from `start` until done or `max_items`; the NextToken to print when more are left.
async fn list_pages<T, F, Fut>(
    start: Resume,
    max_items: Option<u64>,
    mut fetch: F,
) -> anyhow::Result<(Vec<T>, Option<String>)>
where
    F: FnMut(String) -> Fut,
    Fut: Future<Output = Result<(Vec<T>, String), tern_client::Error>>,
{
    let max = max_items.map(|max| usize::try_from(max).unwrap_or(usize::MAX));
    let full = |listed: usize| max.is_some_and(|max| listed >= max);
    let mut listed = Vec::new();
    let Resume { mut token, mut skip } = start;
    loop {
        let (entries, next) = fetch(token.clone()).await?;
        let on_page = entries.len();
        let mut taken = skip.min(on_page);
        for entry in entries.into_iter().skip(skip) {
            if full(listed.len()) {
                break;
            }
            listed.push(entry);
            taken += 1;
        }
        skip = 0;
        if full(listed.len()) && taken < on_page {
            return Ok((listed, Some(Resume { token, skip: taken }.encode())));
        }
        if next.is_empty() {
            return Ok((listed, None));
        }
        if full(listed.len()) {
            return Ok((listed, Some(Resume { token: next, skip: 0 }.encode())));
        }
        token = next;
    }
}

// ---- Exports ----

#[derive(Debug, Args)]
pub struct ExportTableToPointInTime {
    /// The Amazon Resource Name (ARN) associated with the table to export.
    #[arg(long)]
    pub table_arn: String,
    /// Time in the past from which to export table data: ISO 8601 (`2026-11-30T14:02:00Z`, UTC when it has
    /// no offset) or seconds since the Unix epoch. The export is a snapshot of the table's state at this
    /// point in time; the latest restorable time when omitted.
    #[arg(long, value_parser = date_time)]
    pub export_time: Option<f64>,
    /// Providing a ClientToken makes the call to ExportTableToPointInTime idempotent, meaning that
    /// multiple identical calls have the same effect as one single call.
    #[arg(long)]
    pub client_token: Option<String>,
    /// The name of the Amazon S3 bucket to export the snapshot to: a bucket of the nodes' `--buckets`.
    #[arg(long)]
    pub s3_bucket: String,
    /// The ID of the Amazon Web Services account that owns the bucket the export will be stored in.
    /// Recorded; Tern's buckets have no owners.
    #[arg(long)]
    pub s3_bucket_owner: Option<String>,
    /// The Amazon S3 bucket prefix to use as the file name and path of the exported snapshot.
    #[arg(long)]
    pub s3_prefix: Option<String>,
    /// Type of encryption used on the bucket where export data will be stored: AES256 or KMS. Recorded;
    /// Tern's stores are encrypted as they are configured.
    #[arg(long, value_parser = ["AES256", "KMS"])]
    pub s3_sse_algorithm: Option<String>,
    /// The ID of the KMS managed key used to encrypt the S3 bucket where export data will be stored.
    /// Recorded.
    #[arg(long)]
    pub s3_sse_kms_key_id: Option<String>,
    /// The format for the exported data: DYNAMODB_JSON (the default) or ION.
    #[arg(long, value_parser = ["DYNAMODB_JSON", "ION"])]
    pub export_format: Option<String>,
    /// Choice of whether to execute as a full export or incremental export: FULL_EXPORT (the default) or
    /// INCREMENTAL_EXPORT.
    #[arg(long, value_parser = ["FULL_EXPORT", "INCREMENTAL_EXPORT"])]
    pub export_type: Option<String>,
    /// The parameters of an incremental export:
    /// `ExportFromTime=2026-11-30T14:00:00Z,ExportToTime=2026-11-30T15:00:00Z,ExportViewType=NEW_IMAGE`
    /// (times ISO 8601 or seconds since the Unix epoch; ExportViewType NEW_IMAGE or NEW_AND_OLD_IMAGES, the
    /// default) or the JSON form.
    #[arg(long)]
    pub incremental_export_specification: Option<String>,
    /// After the call, wait until the export is COMPLETED (the items exported and bytes written so far are
    /// shown on stderr), then print its description; a FAILED export fails the command.
    #[arg(long)]
    pub wait: bool,
    /// With --wait: how long to wait for the export, in seconds.
    #[arg(long, default_value_t = 3600)]
    pub wait_timeout_secs: u64,
}

impl ExportTableToPointInTime {
    fn request(&self) -> anyhow::Result<ExportTableToPointInTimeRequest> {
        let text = |flag: &Option<String>| flag.clone().unwrap_or_default();
        Ok(ExportTableToPointInTimeRequest {
            table_arn: self.table_arn.clone(),
            export_time: self.export_time,
            client_token: text(&self.client_token),
            s3_bucket: self.s3_bucket.clone(),
            s3_bucket_owner: text(&self.s3_bucket_owner),
            s3_prefix: text(&self.s3_prefix),
            s3_sse_algorithm: text(&self.s3_sse_algorithm),
            s3_sse_kms_key_id: text(&self.s3_sse_kms_key_id),
            export_format: text(&self.export_format),
            export_type: text(&self.export_type),
            incremental_export_specification: self
                .incremental_export_specification
                .as_deref()
                .map(incremental_export_specification)
                .transpose()?,
        })
    }

    pub async fn run(&self, client: &Client) -> anyhow::Result<Json> {
        let response = client.export_table_to_point_in_time(self.request()?).await?;
        if !self.wait {
            return Ok(json!({ "ExportDescription": response.export_description.as_ref().map(export_description) }));
        }
        let started = response.export_description.unwrap_or_default();
        let ended = wait_for_export(client, &started, Duration::from_secs(self.wait_timeout_secs)).await?;
        Ok(json!({ "ExportDescription": export_description(&ended) }))
    }
}

/// Waits for an export, with its progress (items exported, bytes written, their rates) on stderr when it
/// is a terminal. A FAILED export is an error that says why.
async fn wait_for_export(
    client: &Client,
    started: &ExportDescription,
    timeout: Duration,
) -> anyhow::Result<ExportDescription> {
    let template = "{spinner} Exporting {prefix}: {msg}, {bytes} written ({bytes_per_sec}, {elapsed})";
    let style = ProgressStyle::with_template(template).expect("the template is valid");
    let bar = ProgressBar::new_spinner().with_style(style).with_prefix(table_name(&started.table_arn));
    bar.enable_steady_tick(Duration::from_millis(100));
    let ended = client
        .wait_for_export(&started.export_arn, timeout, |described| {
            bar.set_position(count(described.bytes_written));
            bar.set_message(with_rate(count(described.items_exported), "items", bar.elapsed()));
        })
        .await;
    match &ended {
        Ok(described) if described.export_status == "COMPLETED" => bar.finish_and_clear(),
        // The progress stays on screen above the error.
        _ => bar.abandon(),
    }
    let ended = ended?;
    if ended.export_status == "FAILED" {
        bail!(failure("Export", &ended.export_arn, &ended.failure_code, &ended.failure_message));
    }
    Ok(ended)
}

#[derive(Debug, Args)]
pub struct DescribeExport {
    /// The Amazon Resource Name (ARN) associated with the export.
    #[arg(long)]
    pub export_arn: String,
}

impl DescribeExport {
    pub async fn run(&self, client: &Client) -> anyhow::Result<Json> {
        let response = client.describe_export(DescribeExportRequest { export_arn: self.export_arn.clone() }).await?;
        Ok(json!({ "ExportDescription": response.export_description.as_ref().map(export_description) }))
    }
}

#[derive(Debug, Args)]
pub struct ListExports {
    /// The Amazon Resource Name (ARN) associated with the exported table (every table's exports when
    /// omitted).
    #[arg(long)]
    pub table_arn: Option<String>,
    /// Maximum number of results to return per page: the number of exports asked for in each ListExports
    /// call (its MaxResults, up to 25).
    #[arg(long, value_parser = clap::value_parser!(i32).range(1..))]
    pub max_results: Option<i32>,
    /// The total number of exports to return in the command's output. If more are available, a NextToken
    /// is provided in the output; pass it to --starting-token to resume.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_items: Option<u64>,
    /// A token to specify where to start paginating. This is the NextToken from a previously truncated
    /// response.
    #[arg(long)]
    pub starting_token: Option<String>,
}

impl ListExports {
    /// Lists every page until done or --max-items.
    pub async fn run(&self, client: &Client) -> anyhow::Result<Json> {
        let table_arn = self.table_arn.clone().unwrap_or_default();
        let max_results = self.max_results.unwrap_or(0);
        let start = Resume::decode(self.starting_token.as_deref());
        let (summaries, next) = list_pages(start, self.max_items, |next_token| {
            let request = ListExportsRequest { table_arn: table_arn.clone(), max_results, next_token };
            async move { client.list_exports(request).await.map(|page| (page.export_summaries, page.next_token)) }
        })
        .await?;
        let mut out = json!({ "ExportSummaries": summaries.iter().map(export_summary).collect::<Vec<_>>() });
        if let Some(next) = next {
            out["NextToken"] = json!(next);
        }
        Ok(out)
    }
}

// ---- Imports ----

#[derive(Debug, Args)]
pub struct ImportTable {
    /// Providing a ClientToken makes the call to ImportTable idempotent, meaning that multiple identical
    /// calls have the same effect as one single call.
    #[arg(long)]
    pub client_token: Option<String>,
    /// The S3 bucket that provides the source for the import: `S3Bucket=NAME,S3KeyPrefix=PREFIX` (and
    /// `S3BucketOwner=ACCOUNT`, recorded) or the JSON form. A bucket of the nodes' `--buckets`.
    #[arg(long)]
    pub s3_bucket_source: String,
    /// The format of the source data: CSV, DYNAMODB_JSON or ION.
    #[arg(long, value_parser = ["CSV", "DYNAMODB_JSON", "ION"])]
    pub input_format: String,
    /// Additional properties that specify how the input is formatted, as JSON only (or file://PATH):
    /// `{"Csv":{"Delimiter":";","HeaderList":["pk","sk"]}}`. The Delimiter is one of , ; : | tab or space
    /// (a comma when omitted); with a HeaderList, the first line is data.
    #[arg(long)]
    pub input_format_options: Option<String>,
    /// Type of compression to be used on the input coming from the imported table: GZIP, ZSTD or NONE (the
    /// default).
    #[arg(long, value_parser = ["GZIP", "ZSTD", "NONE"])]
    pub input_compression_type: Option<String>,
    /// Parameters for the table to import the data into, as JSON only (or file://PATH):
    /// `{"TableName":"t","AttributeDefinitions":[{"AttributeName":"pk","AttributeType":"S"}],
    /// "KeySchema":[{"AttributeName":"pk","KeyType":"HASH"}],"BillingMode":"PAY_PER_REQUEST"}`.
    /// ProvisionedThroughput and SSESpecification are accepted and ignored.
    #[arg(long)]
    pub table_creation_parameters: String,
    /// After the call, wait until the import is no longer IN_PROGRESS (the items processed and imported,
    /// errors and bytes processed so far are shown on stderr), then print its description; a FAILED import
    /// fails the command.
    #[arg(long)]
    pub wait: bool,
    /// With --wait: how long to wait for the import, in seconds.
    #[arg(long, default_value_t = 3600)]
    pub wait_timeout_secs: u64,
}

impl ImportTable {
    fn request(&self) -> anyhow::Result<ImportTableRequest> {
        Ok(ImportTableRequest {
            client_token: self.client_token.clone().unwrap_or_default(),
            s3_bucket_source: Some(s3_bucket_source(&self.s3_bucket_source)?),
            input_format: self.input_format.clone(),
            input_format_options: self.input_format_options.as_deref().map(input_format_options).transpose()?,
            input_compression_type: self.input_compression_type.clone().unwrap_or_default(),
            table_creation_parameters: Some(table_creation_parameters(&self.table_creation_parameters)?),
        })
    }

    pub async fn run(&self, client: &Client) -> anyhow::Result<Json> {
        let response = client.import_table(self.request()?).await?;
        if !self.wait {
            let described = response.import_table_description.as_ref().map(import_description);
            return Ok(json!({ "ImportTableDescription": described }));
        }
        let started = response.import_table_description.unwrap_or_default();
        let ended = wait_for_import(client, started, Duration::from_secs(self.wait_timeout_secs)).await?;
        Ok(json!({ "ImportTableDescription": import_description(&ended) }))
    }
}

/// Waits for an import to end, with its progress (items processed
/// and imported, errors, bytes processed) on stderr when it is a terminal. A FAILED import is an error that
/// says why.
async fn wait_for_import(
    client: &Client,
    started: ImportTableDescription,
    timeout: Duration,
) -> anyhow::Result<ImportTableDescription> {
    let table = match &started.table_creation_parameters {
        Some(parameters) if !parameters.table_name.is_empty() => parameters.table_name.clone(),
        _ => table_name(&started.table_arn),
    };
    let template = "{spinner} Importing {prefix}: {msg}, {bytes} processed ({bytes_per_sec}, {elapsed})";
    let style = ProgressStyle::with_template(template).expect("the template is valid");
    let bar = ProgressBar::new_spinner().with_style(style).with_prefix(table);
    bar.enable_steady_tick(Duration::from_millis(100));
    let ended = client
        .wait_for_import(&started.import_arn, timeout, |described| {
            bar.set_position(count(described.processed_size_bytes));
            bar.set_message(format!(
                "{}, {} imported, {} errors",
                with_rate(count(described.processed_item_count), "items processed", bar.elapsed()),
                HumanCount(count(described.imported_item_count)),
                HumanCount(count(described.error_count)),
            ));
        })
        .await;
    match &ended {
        Ok(described) if described.import_status == "COMPLETED" => bar.finish_and_clear(),
        // The progress stays on screen above the error.
        _ => bar.abandon(),
    }
    let ended = ended?;
    if ended.import_status == "FAILED" {
        bail!(failure("Import", &ended.import_arn, &ended.failure_code, &ended.failure_message));
    }
    Ok(ended)
}

#[derive(Debug, Args)]
pub struct DescribeImport {
    /// The Amazon Resource Name (ARN) associated with the table you're importing to.
    #[arg(long)]
    pub import_arn: String,
}

impl DescribeImport {
    pub async fn run(&self, client: &Client) -> anyhow::Result<Json> {
        let response = client.describe_import(DescribeImportRequest { import_arn: self.import_arn.clone() }).await?;
        Ok(json!({ "ImportTableDescription": response.import_table_description.as_ref().map(import_description) }))
    }
}

#[derive(Debug, Args)]
pub struct ListImports {
    /// The Amazon Resource Name (ARN) associated with the table that was imported to (every table's imports
    /// when omitted).
    #[arg(long)]
    pub table_arn: Option<String>,
    /// The number of ImportSummary objects returned in a single page: the number asked for in each
    /// ListImports call (its PageSize, up to 25).
    #[arg(long, value_parser = clap::value_parser!(i32).range(1..))]
    pub page_size: Option<i32>,
    /// The total number of imports to return in the command's output. If more are available, a NextToken
    /// is provided in the output; pass it to --starting-token to resume.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_items: Option<u64>,
    /// A token to specify where to start paginating. This is the NextToken from a previously truncated
    /// response.
    #[arg(long)]
    pub starting_token: Option<String>,
}

impl ListImports {
    /// Lists every page until done or --max-items.
    pub async fn run(&self, client: &Client) -> anyhow::Result<Json> {
        let table_arn = self.table_arn.clone().unwrap_or_default();
        let page_size = self.page_size.unwrap_or(0);
        let start = Resume::decode(self.starting_token.as_deref());
        let (summaries, next) = list_pages(start, self.max_items, |next_token| {
            let request = ListImportsRequest { table_arn: table_arn.clone(), page_size, next_token };
            async move { client.list_imports(request).await.map(|page| (page.import_summary_list, page.next_token)) }
        })
        .await?;
        let mut out = json!({ "ImportSummaryList": summaries.iter().map(import_summary).collect::<Vec<_>>() });
        if let Some(next) = next {
            out["NextToken"] = json!(next);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};

    /// 2026-11-30T14:02:00Z.
    const NOV_30: f64 = 1_796_047_320.0;

    #[test]
    fn the_incremental_specification_takes_the_shorthand_and_json() {
        let shorthand = incremental_export_specification(
            "ExportFromTime=2026-11-30T14:02:00Z,ExportToTime=1796050920,ExportViewType=NEW_IMAGE",
        )
        .unwrap();
        let json = incremental_export_specification(
            r#"{"ExportFromTime":1796047320,"ExportToTime":"2026-11-30T15:02:00Z","ExportViewType":"NEW_IMAGE"}"#,
        )
        .unwrap();
        let expected = IncrementalExportSpecification {
            export_from_time: Some(NOV_30),
            export_to_time: Some(NOV_30 + 3600.0),
            export_view_type: "NEW_IMAGE".into(),
        };
        assert_eq!(shorthand, expected);
        assert_eq!(json, expected);
        let offset = incremental_export_specification("ExportFromTime=2026-11-30T15:02:00+01:00").unwrap();
        assert_eq!(offset.export_from_time, Some(NOV_30));
        assert_eq!(offset.export_to_time, None);
        assert_eq!(offset.export_view_type, "");
    }

    #[test]
    fn a_bad_incremental_specification_is_refused() {
        for (text, mentions) in [
            ("ExportFromTime=yesterday", "ExportFromTime"),
            (r#"{"ExportToTime":"later"}"#, "ExportToTime"),
            ("ExportFromTime=1796047320,ExportViewType=OLD_IMAGE", "ExportViewType"),
            ("ExportFromTime=1796047320,ExportToTme=1796050920", "Unknown parameter"),
            ("ExportFromTime", "Key=Value"),
        ] {
            let error = format!("{:#}", incremental_export_specification(text).expect_err(text));
            assert!(error.contains(mentions), "{text}: {error}");
        }
    }

    #[test]
    fn the_bucket_source_takes_the_shorthand_and_json() {
        let shorthand =
            s3_bucket_source("S3Bucket=imports,S3KeyPrefix=orders/2026,S3BucketOwner=111122223333").unwrap();
        let json =
            s3_bucket_source(r#"{"S3Bucket":"imports","S3KeyPrefix":"orders/2026","S3BucketOwner":"111122223333"}"#)
                .unwrap();
        let expected = S3BucketSource {
            s3_bucket_owner: "111122223333".into(),
            s3_bucket: "imports".into(),
            s3_key_prefix: "orders/2026".into(),
        };
        assert_eq!(shorthand, expected);
        assert_eq!(json, expected);
        let bucket_only = s3_bucket_source("S3Bucket=imports").unwrap();
        assert_eq!(bucket_only.s3_key_prefix, "");
        for (text, mentions) in [
            ("S3KeyPrefix=orders", "S3Bucket"),
            ("S3Bucket=imports,S3Prefix=orders", "Unknown parameter"),
            (r#"{"S3Bucket":["imports"]}"#, "S3Bucket"),
        ] {
            let error = format!("{:#}", s3_bucket_source(text).expect_err(text));
            assert!(error.contains(mentions), "{text}: {error}");
        }
    }

    #[test]
    fn table_creation_parameters_are_read_from_json() {
        let parameters = table_creation_parameters(
            r#"{"TableName":"orders","AttributeDefinitions":[{"AttributeName":"pk","AttributeType":"S"},
                {"AttributeName":"sk","AttributeType":"N"}],"KeySchema":[{"AttributeName":"pk","KeyType":"HASH"},
                {"AttributeName":"sk","KeyType":"RANGE"}],"BillingMode":"PAY_PER_REQUEST",
                "ProvisionedThroughput":{"ReadCapacityUnits":5,"WriteCapacityUnits":5}}"#,
        )
        .unwrap();
        assert_eq!(
            parameters,
            TableCreationParameters {
                table_name: "orders".into(),
                attribute_definitions: vec![
                    AttributeDefinition { attribute_name: "pk".into(), attribute_type: "S".into() },
                    AttributeDefinition { attribute_name: "sk".into(), attribute_type: "N".into() },
                ],
                key_schema: vec![
                    KeySchemaElement { attribute_name: "pk".into(), key_type: "HASH".into() },
                    KeySchemaElement { attribute_name: "sk".into(), key_type: "RANGE".into() },
                ],
                billing_mode: "PAY_PER_REQUEST".into(),
            }
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("table.json");
        std::fs::write(
            &path,
            r#"{"TableName":"t","AttributeDefinitions":[{"AttributeName":"pk","AttributeType":"S"}],
               "KeySchema":[{"AttributeName":"pk","KeyType":"HASH"}]}"#,
        )
        .unwrap();
        let from_file = table_creation_parameters(&format!("file://{}", path.display())).unwrap();
        assert_eq!(from_file.table_name, "t");
        assert_eq!(from_file.billing_mode, "");
    }

    #[test]
    fn bad_table_creation_parameters_are_refused() {
        for (text, mentions) in [
            ("TableName=orders", "JSON object"),
            (r#"{"AttributeDefinitions":[],"KeySchema":[]}"#, "TableName"),
            (r#"{"TableName":"t","AttributeDefinitions":[{"AttributeName":"pk"}],"KeySchema":[]}"#, "AttributeType"),
            (r#"{"TableName":"t","AttributeDefinitions":[],"KeySchema":[],"Tags":[]}"#, "Tags"),
            (
                r#"{"TableName":"t","AttributeDefinitions":[],"KeySchema":[],"GlobalSecondaryIndexes":[]}"#,
                "GlobalSecondaryIndexes",
            ),
            (r#"{"TableName":"t","#, "Invalid JSON"),
        ] {
            let error = format!("{:#}", table_creation_parameters(text).expect_err(text));
            assert!(error.contains(mentions), "{text}: {error}");
        }
    }

    #[test]
    fn input_format_options_are_read_from_json() {
        let options = input_format_options(r#"{"Csv":{"Delimiter":";","HeaderList":["pk","sk"]}}"#).unwrap();
        assert_eq!(
            options,
            InputFormatOptions {
                csv: Some(CsvOptions { delimiter: ";".into(), header_list: vec!["pk".into(), "sk".into()] })
            }
        );
        let delimiter_only = input_format_options(r#"{"Csv":{"Delimiter":"\t"}}"#).unwrap();
        assert_eq!(delimiter_only.csv.unwrap().header_list, Vec::<String>::new());
        assert_eq!(input_format_options("{}").unwrap(), InputFormatOptions { csv: None });
        for (text, mentions) in [
            ("Csv={Delimiter=;}", "JSON object"),
            (r#"{"Csv":{"Delimeter":";"}}"#, "Delimeter"),
            (r#"{"Json":{}}"#, "Json"),
            (r#"{"Csv":{"HeaderList":"pk,sk"}}"#, "InputFormatOptions"),
        ] {
            let error = format!("{:#}", input_format_options(text).expect_err(text));
            assert!(error.contains(mentions), "{text}: {error}");
        }
    }

    #[test]
    fn an_export_is_printed_with_dynamodbs_names() {
        let description = ExportDescription {
            export_arn: "arn:tern:dynamodb:us-east:table/Music/export/01796047320000-2d8752fd".into(),
            export_status: "COMPLETED".into(),
            start_time: NOV_30,
            end_time: NOV_30 + 12.5,
            export_manifest: "exports/AWSDynamoDB/01796047320000-2d8752fd/manifest-summary.json".into(),
            table_arn: "arn:tern:dynamodb:us-east:table/Music".into(),
            table_id: "6e1b6f6c".into(),
            export_time: NOV_30 - 60.0,
            s3_bucket: "backups".into(),
            s3_prefix: "exports".into(),
            export_format: "DYNAMODB_JSON".into(),
            billed_size_bytes: 0,
            item_count: 0,
            export_type: "INCREMENTAL_EXPORT".into(),
            incremental_export_specification: Some(IncrementalExportSpecification {
                export_from_time: Some(NOV_30 - 3600.0),
                export_to_time: Some(NOV_30 - 60.0),
                export_view_type: "NEW_AND_OLD_IMAGES".into(),
            }),
            items_exported: 0,
            bytes_written: 4096,
            ..Default::default()
        };
        assert_eq!(
            export_description(&description),
            json!({
                "ExportArn": "arn:tern:dynamodb:us-east:table/Music/export/01796047320000-2d8752fd",
                "ExportStatus": "COMPLETED",
                "StartTime": "2026-11-30T14:02:00+00:00",
                "EndTime": "2026-11-30T14:02:12.500000+00:00",
                "ExportManifest": "exports/AWSDynamoDB/01796047320000-2d8752fd/manifest-summary.json",
                "TableArn": "arn:tern:dynamodb:us-east:table/Music",
                "TableId": "6e1b6f6c",
                "ExportTime": "2026-11-30T14:01:00+00:00",
                "S3Bucket": "backups",
                "S3Prefix": "exports",
                "ExportFormat": "DYNAMODB_JSON",
                "BilledSizeBytes": 0,
                "ItemCount": 0,
                "ExportType": "INCREMENTAL_EXPORT",
                "IncrementalExportSpecification": {
                    "ExportFromTime": "2026-11-30T13:02:00+00:00",
                    "ExportToTime": "2026-11-30T14:01:00+00:00",
                    "ExportViewType": "NEW_AND_OLD_IMAGES",
                },
            })
        );
        let running = ExportDescription {
            export_arn: "arn:x".into(),
            export_status: "IN_PROGRESS".into(),
            start_time: NOV_30,
            items_exported: 7,
            bytes_written: 512,
            ..Default::default()
        };
        assert_eq!(
            export_description(&running),
            json!({
                "ExportArn": "arn:x",
                "ExportStatus": "IN_PROGRESS",
                "StartTime": "2026-11-30T14:02:00+00:00",
                "ItemsExported": 7,
                "BytesWritten": 512,
            })
        );
    }

    #[test]
    fn an_import_is_printed_with_dynamodbs_names() {
        let description = ImportTableDescription {
            import_arn: "arn:tern:dynamodb:us-east:table/orders/import/01796047320000-aa".into(),
            import_status: "IN_PROGRESS".into(),
            table_arn: "arn:tern:dynamodb:us-east:table/orders".into(),
            table_id: "t-1".into(),
            s3_bucket_source: Some(S3BucketSource {
                s3_bucket: "imports".into(),
                s3_key_prefix: "orders".into(),
                ..Default::default()
            }),
            input_format: "CSV".into(),
            input_format_options: Some(InputFormatOptions {
                csv: Some(CsvOptions { delimiter: ";".into(), header_list: vec![] }),
            }),
            input_compression_type: "NONE".into(),
            table_creation_parameters: Some(TableCreationParameters {
                table_name: "orders".into(),
                attribute_definitions: vec![AttributeDefinition {
                    attribute_name: "pk".into(),
                    attribute_type: "S".into(),
                }],
                key_schema: vec![KeySchemaElement { attribute_name: "pk".into(), key_type: "HASH".into() }],
                billing_mode: String::new(),
            }),
            start_time: NOV_30,
            processed_size_bytes: 100,
            processed_item_count: 3,
            imported_item_count: 2,
            error_count: 1,
            ..Default::default()
        };
        assert_eq!(
            import_description(&description),
            json!({
                "ImportArn": "arn:tern:dynamodb:us-east:table/orders/import/01796047320000-aa",
                "ImportStatus": "IN_PROGRESS",
                "TableArn": "arn:tern:dynamodb:us-east:table/orders",
                "TableId": "t-1",
                "S3BucketSource": { "S3Bucket": "imports", "S3KeyPrefix": "orders" },
                "ErrorCount": 1,
                "InputFormat": "CSV",
                "InputFormatOptions": { "Csv": { "Delimiter": ";" } },
                "InputCompressionType": "NONE",
                "TableCreationParameters": {
                    "TableName": "orders",
                    "AttributeDefinitions": [{ "AttributeName": "pk", "AttributeType": "S" }],
                    "KeySchema": [{ "AttributeName": "pk", "KeyType": "HASH" }],
                },
                "StartTime": "2026-11-30T14:02:00+00:00",
                "ProcessedSizeBytes": 100,
                "ProcessedItemCount": 3,
                "ImportedItemCount": 2,
            })
        );
    }

    #[test]
    fn a_table_name_is_read_from_its_arn() {
        assert_eq!(table_name("arn:tern:dynamodb:us-east:table/Music"), "Music");
        assert_eq!(table_name("arn:tern:dynamodb:us-east:table/Music/export/01"), "Music");
        assert_eq!(table_name("something"), "something");
    }

    #[test]
    fn resume_tokens_are_the_aws_clis() {
        let resume = Resume { token: "0179".into(), skip: 2 };
        assert_eq!(Resume::decode(Some(resume.encode().as_str())), resume);
        let page_start = Resume { token: "0179".into(), skip: 0 };
        assert_eq!(Resume::decode(Some(page_start.encode().as_str())), page_start);
        // A service's own NextToken is taken as it is.
        assert_eq!(Resume::decode(Some("01796047320000-2d8752fd")), page_start_of("01796047320000-2d8752fd"));
        assert_eq!(Resume::decode(None), Resume::default());
    }

    fn page_start_of(token: &str) -> Resume {
        Resume { token: token.into(), skip: 0 }
    }

    /// Pages of a listing: token "" is the first, each page's next token names the next one.
    fn pages() -> BTreeMap<String, (Vec<&'static str>, String)> {
        BTreeMap::from([
            (String::new(), (vec!["a", "b", "c"], "p2".to_string())),
            ("p2".to_string(), (vec!["d", "e"], "p3".to_string())),
            ("p3".to_string(), (vec!["f"], String::new())),
        ])
    }

    async fn list(start: Resume, max: Option<u64>) -> (Vec<&'static str>, Option<String>) {
        let pages = pages();
        list_pages(start, max, |token| {
            let page = pages[&token].clone();
            async move { Ok::<_, tern_client::Error>(page) }
        })
        .await
        .unwrap()
    }

    #[tokio::test]
    async fn listings_page_themselves_and_stop_at_max_items() {
        assert_eq!(list(Resume::default(), None).await, (vec!["a", "b", "c", "d", "e", "f"], None));
        // Within a page: the token resumes after what was printed.
        let (first, token) = list(Resume::default(), Some(2)).await;
        assert_eq!(first, ["a", "b"]);
        let token = token.expect("more are left");
        assert_eq!(Resume::decode(Some(token.as_str())), Resume { token: String::new(), skip: 2 });
        let (second, token) = list(Resume::decode(Some(token.as_str())), Some(2)).await;
        assert_eq!(second, ["c", "d"]);
        let (third, token) = list(Resume::decode(token.as_deref()), Some(2)).await;
        assert_eq!(third, ["e", "f"]);
        assert_eq!(token, None);
        // At a page's end: the service's token.
        let (page, token) = list(Resume::default(), Some(3)).await;
        assert_eq!(page, ["a", "b", "c"]);
        assert_eq!(Resume::decode(token.as_deref()), page_start_of("p2"));
        // Exactly all of them: no token.
        assert_eq!(list(Resume::default(), Some(6)).await.1, None);
        // A service's own NextToken as --starting-token.
        assert_eq!(list(Resume::decode(Some("p3")), None).await, (vec!["f"], None));
    }

    fn parse(line: &[&str]) -> Result<Command, clap::Error> {
        Ok(Cli::try_parse_from(["tern"].iter().chain(line))?.command)
    }

    #[test]
    fn an_export_is_asked_for_as_the_aws_cli_asks() {
        let command = parse(&[
            "export-table-to-point-in-time",
            "--table-arn",
            "arn:tern:dynamodb:us-east:table/Music",
            "--s3-bucket",
            "backups",
            "--export-time",
            "2026-11-30T14:02:00Z",
            "--export-type",
            "INCREMENTAL_EXPORT",
            "--incremental-export-specification",
            "ExportFromTime=1796043720,ExportToTime=1796047320",
            "--export-format",
            "ION",
            "--s3-sse-algorithm",
            "KMS",
            "--wait",
        ])
        .unwrap();
        let export = match command {
            Command::ExportTableToPointInTime(export) => export,
            other => panic!("parsed as {other:?}"),
        };
        assert!(export.wait);
        assert_eq!(export.wait_timeout_secs, 3600);
        let request = export.request().unwrap();
        assert_eq!(request.export_time, Some(NOV_30));
        assert_eq!(request.export_format, "ION");
        assert_eq!(request.export_type, "INCREMENTAL_EXPORT");
        assert_eq!(request.s3_sse_algorithm, "KMS");
        assert_eq!(request.s3_prefix, "");
        let spec = request.incremental_export_specification.unwrap();
        assert_eq!(spec.export_from_time, Some(NOV_30 - 3600.0));
        assert_eq!(spec.export_to_time, Some(NOV_30));
        let wrong: [&[&str]; 4] = [
            &["export-table-to-point-in-time", "--s3-bucket", "b"],
            &["export-table-to-point-in-time", "--table-arn", "arn:t"],
            &["export-table-to-point-in-time", "--table-arn", "arn:t", "--s3-bucket", "b", "--export-format", "CSV"],
            &["export-table-to-point-in-time", "--table-arn", "arn:t", "--s3-bucket", "b", "--export-time", "soon"],
        ];
        for line in wrong {
            assert!(parse(line).is_err(), "{line:?}");
        }
    }

    #[test]
    fn an_import_is_asked_for_as_the_aws_cli_asks() {
        let command = parse(&[
            "import-table",
            "--s3-bucket-source",
            "S3Bucket=imports,S3KeyPrefix=orders",
            "--input-format",
            "CSV",
            "--input-format-options",
            r#"{"Csv":{"Delimiter":";"}}"#,
            "--input-compression-type",
            "GZIP",
            "--table-creation-parameters",
            concat!(
                r#"{"TableName":"orders","AttributeDefinitions":[{"AttributeName":"pk","AttributeType":"S"}],"#,
                r#""KeySchema":[{"AttributeName":"pk","KeyType":"HASH"}]}"#,
            ),
        ])
        .unwrap();
        let import = match command {
            Command::ImportTable(import) => import,
            other => panic!("parsed as {other:?}"),
        };
        let request = import.request().unwrap();
        assert_eq!(request.s3_bucket_source.unwrap().s3_bucket, "imports");
        assert_eq!(request.input_format, "CSV");
        assert_eq!(request.input_compression_type, "GZIP");
        assert_eq!(request.input_format_options.unwrap().csv.unwrap().delimiter, ";");
        assert_eq!(request.table_creation_parameters.unwrap().table_name, "orders");
        // --input-format is required.
        assert!(
            parse(&["import-table", "--s3-bucket-source", "S3Bucket=b", "--table-creation-parameters", "{}"]).is_err()
        );
        let listed =
            parse(&["list-imports", "--page-size", "10", "--max-items", "3", "--starting-token", "t"]).unwrap();
        assert!(matches!(listed, Command::ListImports(l) if l.page_size == Some(10) && l.max_items == Some(3)));
        let listed = parse(&["list-exports", "--table-arn", "arn:t", "--max-results", "5"]).unwrap();
        assert!(matches!(listed, Command::ListExports(l) if l.max_results == Some(5) && l.max_items.is_none()));
        assert!(parse(&["list-exports", "--max-items", "0"]).is_err());
    }
}
