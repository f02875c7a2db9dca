//! `export-table-to-point-in-time`, `describe-export` and `list-exports`: a table's data written to a
//! bucket as it was at a time of its PITR window (or a window's changes), in DynamoDB's layout.

use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Value as Json};
use tern_client::Client;
use tern_proto::v1::{
    DescribeExportRequest, ExportDescription, ExportSummary, ExportTableToPointInTimeRequest,
    IncrementalExportSpecification, ListExportsRequest,
};

use super::backups::date_time;
use super::output::insert_text;
use super::{input, output};

use super::paging::{list_pages, Resume};
use super::progress::{count, failure, table_name, with_rate};

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

// ---- Output, with DynamoDB's field names ----

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

#[cfg(test)]
mod tests {

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
        let listed = parse(&["list-exports", "--table-arn", "arn:t", "--max-results", "5"]).unwrap();
        assert!(matches!(listed, Command::ListExports(l) if l.max_results == Some(5) && l.max_items.is_none()));
        assert!(parse(&["list-exports", "--max-items", "0"]).is_err());
    }
}
