//! `import-table`, `describe-import` and `list-imports`: a new table from a bucket's CSV, DynamoDB JSON
//! or Ion objects.

use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;
use indicatif::{HumanCount, ProgressBar, ProgressStyle};
use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::{json, Value as Json};
use tern_client::Client;
use tern_proto::v1::{
    AttributeDefinition, CsvOptions, DescribeImportRequest, ImportSummary, ImportTableDescription, ImportTableRequest,
    InputFormatOptions, KeySchemaElement, ListImportsRequest, S3BucketSource, TableCreationParameters,
};

use super::output::insert_text;
use super::{input, output};

use super::paging::{list_pages, Resume};
use super::progress::{count, failure, table_name, with_rate};

// ---- Parameters ----

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
    let value =
        input::json_object(text, "InputFormatOptions", r#"{"Csv":{"Delimiter":";","HeaderList":["pk","sk"]}}"#)?;
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
    let value = input::json_object(text, "TableCreationParameters", EXAMPLE)?;
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

// ---- Output, with DynamoDB's field names ----

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

    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};

    /// 2026-11-30T14:02:00Z.
    const NOV_30: f64 = 1_796_047_320.0;

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

    fn parse(line: &[&str]) -> Result<Command, clap::Error> {
        Ok(Cli::try_parse_from(["tern"].iter().chain(line))?.command)
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
    }
}
