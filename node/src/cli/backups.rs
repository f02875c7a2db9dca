//! `update-continuous-backups`, `describe-continuous-backups`, `restore-table-to-point-in-time`,
//! `create-backup`, `describe-backup`, `list-backups`, `delete-backup` and `restore-table-from-backup`.

use std::time::Duration;

use anyhow::bail;
use clap::{ArgGroup, Args};
use indicatif::{HumanBytes, ProgressBar, ProgressStyle};
use serde_json::{json, Value as Json};
use tern_client::Client;
use tern_proto::v1::{
    BackupDescription, BackupDetails, BackupSummary, ContinuousBackupsDescription, CreateBackupRequest,
    DeleteBackupRequest, DescribeBackupRequest, DescribeContinuousBackupsRequest, ListBackupsRequest,
    PointInTimeRecoverySpecification, RestoreTableFromBackupRequest, RestoreTableToPointInTimeRequest,
    SourceTableDetails, TableDescription, UpdateContinuousBackupsRequest,
};
use time::error::{Parse, TryFromParsed};
use time::format_description::well_known::Iso8601;
use time::{Date, OffsetDateTime, PrimitiveDateTime};

use super::paging::{list_pages, Resume};
use super::{input, output, tables};

/// A time parameter as the AWS CLI reads one, in seconds since the Unix epoch: ISO 8601 / RFC 3339
/// (`2026-11-30T14:02:00Z`, `2026-11-30T15:02:00.5+01:00`; UTC when it has no offset, midnight UTC for a
/// date alone) or seconds since the epoch (`1796047320`, `1796047320.5`).
pub fn date_time(text: &str) -> anyhow::Result<f64> {
    let text = text.trim();
    if let Ok(seconds) = text.parse::<f64>() {
        if seconds.is_finite() {
            return Ok(seconds);
        }
    }
    match iso_8601(text) {
        Ok(at) => Ok(at.unix_timestamp() as f64 + f64::from(at.nanosecond()) / 1e9),
        Err(error) => bail!(
            "Invalid timestamp {text:?}: {error}; expected ISO 8601 (2026-11-30T14:02:00Z) or seconds since \
             the Unix epoch (1796047320)"
        ),
    }
}

/// ISO 8601 with an offset, without one (UTC), or a date alone (its midnight, UTC).
fn iso_8601(text: &str) -> Result<OffsetDateTime, Parse> {
    let with_offset = match OffsetDateTime::parse(text, &Iso8601::DEFAULT) {
        Ok(at) => return Ok(at),
        Err(error) => error,
    };
    let without_offset = match PrimitiveDateTime::parse(text, &Iso8601::DEFAULT) {
        Ok(at) => return Ok(at.assume_utc()),
        Err(error) => error,
    };
    if let Ok(date) = Date::parse(text, &Iso8601::DEFAULT) {
        return Ok(date.midnight().assume_utc());
    }
    // A time that only lacks an offset is not wrong for that: the attempt without one says what is.
    match with_offset {
        Parse::TryFromParsed(TryFromParsed::InsufficientInformation) => Err(without_offset),
        other => Err(other),
    }
}

#[derive(Debug, Args)]
pub struct UpdateContinuousBackups {
    /// The name of the table.
    #[arg(long)]
    pub table_name: String,
    /// Represents the settings used to enable point in time recovery:
    /// `PointInTimeRecoveryEnabled=true,RecoveryPeriodInDays=7` (RecoveryPeriodInDays from 1 to 35, 35 when
    /// omitted), `PointInTimeRecoveryEnabled=false`, or the JSON form.
    #[arg(long)]
    pub point_in_time_recovery_specification: String,
}

/// Reads `PointInTimeRecoveryEnabled=true[,RecoveryPeriodInDays=N]` or its JSON form.
pub fn point_in_time_recovery_specification(text: &str) -> anyhow::Result<PointInTimeRecoverySpecification> {
    const NAMES: [&str; 2] = ["PointInTimeRecoveryEnabled", "RecoveryPeriodInDays"];
    let fields = input::structure(text)?;
    if let Some(unknown) = fields.keys().find(|name| !NAMES.contains(&name.as_str())) {
        bail!(
            "Unknown parameter in PointInTimeRecoverySpecification: {unknown:?}, must be one of: {}",
            NAMES.join(", ")
        );
    }
    let enabled = match fields.get("PointInTimeRecoveryEnabled").map(String::as_str) {
        Some("true") => true,
        Some("false") => false,
        other => bail!("PointInTimeRecoveryEnabled must be true or false, got {other:?}"),
    };
    // 0 would mean the default on the wire: an explicit 0 is refused rather than read as 35.
    let recovery_period_in_days = match fields.get("RecoveryPeriodInDays") {
        None => 0,
        Some(days) => match days.parse::<u32>() {
            Ok(days @ 1..=35) => days,
            _ => bail!("RecoveryPeriodInDays must be a number of days from 1 to 35, got {days:?}"),
        },
    };
    Ok(PointInTimeRecoverySpecification { point_in_time_recovery_enabled: enabled, recovery_period_in_days })
}

/// What `update-continuous-backups` and `describe-continuous-backups` print.
fn continuous_backups(description: &ContinuousBackupsDescription) -> Json {
    let mut out = json!({ "ContinuousBackupsStatus": description.continuous_backups_status });
    if let Some(pitr) = &description.point_in_time_recovery_description {
        let mut recovery = json!({ "PointInTimeRecoveryStatus": pitr.point_in_time_recovery_status });
        if pitr.recovery_period_in_days > 0 {
            recovery["RecoveryPeriodInDays"] = json!(pitr.recovery_period_in_days);
        }
        output::insert_date_time(&mut recovery, "EarliestRestorableDateTime", pitr.earliest_restorable_date_time);
        output::insert_date_time(&mut recovery, "LatestRestorableDateTime", pitr.latest_restorable_date_time);
        out["PointInTimeRecoveryDescription"] = recovery;
    }
    json!({ "ContinuousBackupsDescription": out })
}

impl UpdateContinuousBackups {
    pub async fn run(&self, client: &Client) -> anyhow::Result<Json> {
        let request = UpdateContinuousBackupsRequest {
            table_name: self.table_name.clone(),
            point_in_time_recovery_specification: Some(point_in_time_recovery_specification(
                &self.point_in_time_recovery_specification,
            )?),
        };
        let response = client.update_continuous_backups(request).await?;
        Ok(continuous_backups(&response.continuous_backups_description.unwrap_or_default()))
    }
}

impl tables::TableName {
    pub async fn describe_continuous_backups(&self, client: &Client) -> anyhow::Result<Json> {
        let request = DescribeContinuousBackupsRequest { table_name: self.table_name.clone() };
        let response = client.describe_continuous_backups(request).await?;
        Ok(continuous_backups(&response.continuous_backups_description.unwrap_or_default()))
    }
}

/// The flags of a restore's new table, shared by `restore-table-to-point-in-time` and
/// `restore-table-from-backup`.
#[derive(Debug, Args)]
pub struct RestoreTarget {
    /// The name of the new table to which the table or backup must be restored.
    #[arg(long)]
    pub target_table_name: String,
    /// The billing mode of the restored table: PROVISIONED or PAY_PER_REQUEST. Accepted for compatibility;
    /// Tern has no capacity modes.
    #[arg(long)]
    pub billing_mode_override: Option<String>,
    /// After the call, wait until the restored table is ACTIVE (the items restored so far are shown on
    /// stderr), then print its description.
    #[arg(long)]
    pub wait: bool,
    /// With --wait: how long to wait for the restore, in seconds.
    #[arg(long, default_value_t = 3600)]
    pub wait_timeout_secs: u64,
}

impl RestoreTarget {
    /// What a restore prints: the call's TableDescription, or with --wait the restored table's.
    async fn finish(&self, client: &Client, started: Option<TableDescription>) -> anyhow::Result<Json> {
        if !self.wait {
            return Ok(json!({ "TableDescription": started.as_ref().map(output::table) }));
        }
        let timeout = Duration::from_secs(self.wait_timeout_secs);
        let table = wait_for_restore(client, &self.target_table_name, timeout).await?;
        Ok(json!({ "TableDescription": output::table(&table) }))
    }
}

/// Waits for a restore, with its progress (items restored, backup data read) on stderr when it is a
/// terminal. A restore that failed removes its table: the error says why.
async fn wait_for_restore(client: &Client, table: &str, timeout: Duration) -> anyhow::Result<TableDescription> {
    let style = ProgressStyle::with_template("{spinner} Restoring {prefix}: {human_pos} items, {msg} read ({elapsed})")
        .expect("the template is valid");
    let bar = ProgressBar::new_spinner().with_style(style).with_prefix(table.to_string());
    bar.enable_steady_tick(Duration::from_millis(100));
    let restored = client
        .wait_for_restore(table, timeout, |described| {
            if let Some(summary) = &described.restore_summary {
                bar.set_position(summary.items_restored);
                bar.set_message(HumanBytes(summary.bytes_read).to_string());
            }
        })
        .await;
    match &restored {
        Ok(_) => bar.finish_and_clear(),
        // The progress stays on screen above the error.
        Err(_) => bar.abandon(),
    }
    Ok(restored?)
}

#[derive(Debug, Args)]
#[command(
    group(ArgGroup::new("source").required(true).args(["source_table_name", "source_table_arn"])),
    group(ArgGroup::new("restore_point").required(true).args(["restore_date_time", "use_latest_restorable_time"])),
)]
pub struct RestoreTableToPointInTime {
    /// Name of the source table that is being restored.
    #[arg(long)]
    pub source_table_name: Option<String>,
    /// The DynamoDB table that will be restored. This value is an Amazon Resource Name (ARN).
    #[arg(long)]
    pub source_table_arn: Option<String>,
    /// Time in the past to restore the table to: ISO 8601 (`2026-11-30T14:02:00Z`, UTC when it has no
    /// offset) or seconds since the Unix epoch.
    #[arg(long, value_parser = date_time)]
    pub restore_date_time: Option<f64>,
    /// Restore the table to the latest possible time: its LatestRestorableDateTime.
    #[arg(long)]
    pub use_latest_restorable_time: bool,
    #[command(flatten)]
    pub target: RestoreTarget,
}

impl RestoreTableToPointInTime {
    pub async fn run(&self, client: &Client) -> anyhow::Result<Json> {
        let request = RestoreTableToPointInTimeRequest {
            source_table_arn: self.source_table_arn.clone().unwrap_or_default(),
            source_table_name: self.source_table_name.clone().unwrap_or_default(),
            target_table_name: self.target.target_table_name.clone(),
            use_latest_restorable_time: self.use_latest_restorable_time,
            restore_date_time: self.restore_date_time,
            billing_mode_override: self.target.billing_mode_override.clone().unwrap_or_default(),
        };
        let response = client.restore_table_to_point_in_time(request).await?;
        self.target.finish(client, response.table_description).await
    }
}

#[derive(Debug, Args)]
pub struct RestoreTableFromBackup {
    /// The Amazon Resource Name (ARN) associated with the backup.
    #[arg(long)]
    pub backup_arn: String,
    #[command(flatten)]
    pub target: RestoreTarget,
}

impl RestoreTableFromBackup {
    pub async fn run(&self, client: &Client) -> anyhow::Result<Json> {
        let request = RestoreTableFromBackupRequest {
            target_table_name: self.target.target_table_name.clone(),
            backup_arn: self.backup_arn.clone(),
            billing_mode_override: self.target.billing_mode_override.clone().unwrap_or_default(),
        };
        let response = client.restore_table_from_backup(request).await?;
        self.target.finish(client, response.table_description).await
    }
}

/// A backup's BackupDetails (with Tern's ItemCount once it has items).
fn backup_details(details: &BackupDetails) -> Json {
    let mut out = json!({
        "BackupArn": details.backup_arn,
        "BackupName": details.backup_name,
        "BackupSizeBytes": details.backup_size_bytes,
        "BackupStatus": details.backup_status,
        "BackupType": details.backup_type,
    });
    output::insert_date_time(&mut out, "BackupCreationDateTime", details.backup_creation_date_time);
    output::insert_date_time(&mut out, "BackupExpiryDateTime", details.backup_expiry_date_time);
    if details.item_count > 0 {
        out["ItemCount"] = json!(details.item_count);
    }
    out
}

/// The table a backup was made of, as SourceTableDetails.
fn source_table_details(source: &SourceTableDetails) -> Json {
    let mut out = json!({
        "TableName": source.table_name,
        "TableId": source.table_id,
        "TableArn": source.table_arn,
        "TableSizeBytes": source.table_size_bytes,
        "KeySchema": output::key_schema(&source.key_schema),
        "ItemCount": source.item_count,
    });
    output::insert_date_time(&mut out, "TableCreationDateTime", source.table_creation_date_time);
    if !source.billing_mode.is_empty() {
        out["BillingMode"] = json!(source.billing_mode);
    }
    out
}

/// What `describe-backup` and `delete-backup` print under BackupDescription.
fn backup_description(description: &BackupDescription) -> Json {
    let mut out = json!({});
    if let Some(details) = &description.backup_details {
        out["BackupDetails"] = backup_details(details);
    }
    if let Some(source) = &description.source_table_details {
        out["SourceTableDetails"] = source_table_details(source);
    }
    out
}

/// One backup as ListBackups lists it.
fn backup_summary(summary: &BackupSummary) -> Json {
    let mut out = json!({
        "TableName": summary.table_name,
        "TableId": summary.table_id,
        "TableArn": summary.table_arn,
        "BackupArn": summary.backup_arn,
        "BackupName": summary.backup_name,
        "BackupStatus": summary.backup_status,
        "BackupType": summary.backup_type,
        "BackupSizeBytes": summary.backup_size_bytes,
    });
    output::insert_date_time(&mut out, "BackupCreationDateTime", summary.backup_creation_date_time);
    output::insert_date_time(&mut out, "BackupExpiryDateTime", summary.backup_expiry_date_time);
    out
}

#[derive(Debug, Args)]
pub struct CreateBackup {
    /// The name of the table.
    #[arg(long)]
    pub table_name: String,
    /// Specified name for the backup.
    #[arg(long)]
    pub backup_name: String,
    /// After the call, wait until the backup is AVAILABLE, then print its details.
    #[arg(long)]
    pub wait: bool,
    /// With --wait: how long to wait for the backup, in seconds.
    #[arg(long, default_value_t = 3600)]
    pub wait_timeout_secs: u64,
}

impl CreateBackup {
    pub async fn run(&self, client: &Client) -> anyhow::Result<Json> {
        let request =
            CreateBackupRequest { table_name: self.table_name.clone(), backup_name: self.backup_name.clone() };
        let mut details = client.create_backup(request).await?.backup_details;
        if self.wait {
            let arn = details.as_ref().map(|d| d.backup_arn.clone()).unwrap_or_default();
            let timeout = Duration::from_secs(self.wait_timeout_secs);
            details = client.wait_for_backup(&arn, timeout).await?.backup_details;
        }
        Ok(json!({ "BackupDetails": details.as_ref().map(backup_details) }))
    }
}

/// The one flag of `describe-backup` and `delete-backup`.
#[derive(Debug, Args)]
pub struct BackupArn {
    /// The Amazon Resource Name (ARN) associated with the backup.
    #[arg(long)]
    pub backup_arn: String,
}

impl BackupArn {
    pub async fn describe(&self, client: &Client) -> anyhow::Result<Json> {
        let response = client.describe_backup(DescribeBackupRequest { backup_arn: self.backup_arn.clone() }).await?;
        Ok(json!({ "BackupDescription": response.backup_description.as_ref().map(backup_description) }))
    }

    pub async fn delete(&self, client: &Client) -> anyhow::Result<Json> {
        let response = client.delete_backup(DeleteBackupRequest { backup_arn: self.backup_arn.clone() }).await?;
        Ok(json!({ "BackupDescription": response.backup_description.as_ref().map(backup_description) }))
    }
}

#[derive(Debug, Args)]
pub struct ListBackups {
    /// Lists the backups from the table specified in TableName (all tables' when omitted).
    #[arg(long)]
    pub table_name: Option<String>,
    /// Only backups created at or after this time are listed: ISO 8601 (`2026-11-30T14:02:00Z`) or seconds
    /// since the Unix epoch.
    #[arg(long, value_parser = date_time)]
    pub time_range_lower_bound: Option<f64>,
    /// Only backups created before this time are listed: ISO 8601 or seconds since the Unix epoch.
    #[arg(long, value_parser = date_time)]
    pub time_range_upper_bound: Option<f64>,
    /// The backups from the table specified by BackupType are listed: USER (the default), SYSTEM,
    /// AWS_BACKUP or ALL.
    #[arg(long, value_parser = ["USER", "SYSTEM", "AWS_BACKUP", "ALL"])]
    pub backup_type: Option<String>,
    /// The number of backups to ask for in each ListBackups call (its Limit, up to 100).
    #[arg(long)]
    pub page_size: Option<u32>,
    /// The total number of backups to return in the command's output. If more are available, a NextToken
    /// is provided in the output; pass it to --starting-token to resume.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_items: Option<u64>,
    /// A token to specify where to start paginating. This is the NextToken from a previously truncated
    /// response (the ARN of the last backup it listed).
    #[arg(long)]
    pub starting_token: Option<String>,
}

impl ListBackups {
    /// Lists every page (each starting after the last backup of the one before) until done or --max-items.
    pub async fn run(&self, client: &Client) -> anyhow::Result<Json> {
        let start = Resume::decode(self.starting_token.as_deref());
        let (summaries, next) = list_pages(start, self.max_items, |exclusive_start_backup_arn| {
            let request = ListBackupsRequest {
                table_name: self.table_name.clone().unwrap_or_default(),
                limit: self.page_size.unwrap_or(0),
                time_range_lower_bound: self.time_range_lower_bound,
                time_range_upper_bound: self.time_range_upper_bound,
                exclusive_start_backup_arn,
                backup_type: self.backup_type.clone().unwrap_or_default(),
            };
            async move {
                let page = client.list_backups(request).await?;
                Ok((page.backup_summaries, page.last_evaluated_backup_arn))
            }
        })
        .await?;
        let mut out = json!({ "BackupSummaries": summaries.iter().map(backup_summary).collect::<Vec<_>>() });
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

    fn close(seconds: f64, expected: f64) -> bool {
        (seconds - expected).abs() < 1e-6
    }

    #[test]
    fn times_are_read_as_iso_8601_or_epoch_seconds() {
        for (text, expected) in [
            ("2026-11-30T14:02:00Z", NOV_30),
            ("2026-11-30T14:02:00+00:00", NOV_30),
            ("2026-11-30T15:02:00+01:00", NOV_30),
            ("2026-11-30T09:02:00-05:00", NOV_30),
            ("2026-11-30T14:02:00.123Z", NOV_30 + 0.123),
            ("2026-11-30T14:02:00.5+00:00", NOV_30 + 0.5),
            // No offset: UTC, as the AWS CLI takes it.
            ("2026-11-30T14:02:00", NOV_30),
            ("2026-11-30T14:02:00.250", NOV_30 + 0.25),
            ("2026-11-30", NOV_30 - (14.0 * 3600.0 + 120.0)),
            ("1796047320", NOV_30),
            ("1796047320.5", NOV_30 + 0.5),
            (" 1796047320 ", NOV_30),
        ] {
            let seconds = date_time(text).unwrap_or_else(|e| panic!("{text}: {e:#}"));
            assert!(close(seconds, expected), "{text}: {seconds} != {expected}");
        }
    }

    #[test]
    fn a_bad_time_says_what_is_expected() {
        for text in ["yesterday", "2026-13-01T00:00:00Z", "2026-02-30T00:00:00", "2026-11-30T25:00:00Z", "inf", ""] {
            let error = date_time(text).expect_err(text).to_string();
            assert!(error.starts_with("Invalid timestamp"), "{text}: {error}");
            assert!(error.contains("ISO 8601") && error.contains("Unix epoch"), "{text}: {error}");
        }
    }

    #[test]
    fn times_are_printed_as_the_aws_cli_prints_them() {
        assert_eq!(output::date_time(NOV_30), Some(json!("2026-11-30T14:02:00+00:00")));
        let fraction = date_time("2026-11-30T14:02:00.123Z").unwrap();
        assert_eq!(output::date_time(fraction), Some(json!("2026-11-30T14:02:00.123000+00:00")));
        assert_eq!(output::date_time(0.0), None);
    }

    #[test]
    fn the_recovery_specification_takes_the_shorthand_and_json() {
        let spec = point_in_time_recovery_specification("PointInTimeRecoveryEnabled=true").unwrap();
        assert!(spec.point_in_time_recovery_enabled);
        assert_eq!(spec.recovery_period_in_days, 0);
        let shorthand =
            point_in_time_recovery_specification("PointInTimeRecoveryEnabled=true,RecoveryPeriodInDays=7").unwrap();
        let json =
            point_in_time_recovery_specification(r#"{"PointInTimeRecoveryEnabled":true,"RecoveryPeriodInDays":7}"#)
                .unwrap();
        assert_eq!(shorthand, json);
        assert_eq!(json.recovery_period_in_days, 7);
        let off = point_in_time_recovery_specification(r#"{"PointInTimeRecoveryEnabled":false}"#).unwrap();
        assert!(!off.point_in_time_recovery_enabled);
    }

    #[test]
    fn a_bad_recovery_specification_is_refused() {
        for (text, mentions) in [
            ("PointInTimeRecoveryEnabled=true,RecoveryPeriodInDays=seven", "RecoveryPeriodInDays"),
            (r#"{"PointInTimeRecoveryEnabled":true,"RecoveryPeriodInDays":"seven"}"#, "RecoveryPeriodInDays"),
            ("PointInTimeRecoveryEnabled=true,RecoveryPeriodInDays=0", "RecoveryPeriodInDays"),
            ("PointInTimeRecoveryEnabled=true,RecoveryPeriodInDays=36", "RecoveryPeriodInDays"),
            ("PointInTimeRecoveryEnabled=yes", "PointInTimeRecoveryEnabled"),
            ("RecoveryPeriodInDays=7", "PointInTimeRecoveryEnabled"),
            ("PointInTimeRecoveryEnabled=true,RecoveryPeriodInDay=7", "Unknown parameter"),
            ("PointInTimeRecoveryEnabled", "Key=Value"),
        ] {
            let error = point_in_time_recovery_specification(text).expect_err(text).to_string();
            assert!(error.contains(mentions), "{text}: {error}");
        }
    }

    fn restore(args: &[&str]) -> Result<RestoreTableToPointInTime, clap::Error> {
        let verb = ["tern", "restore-table-to-point-in-time", "--target-table-name", "copy"];
        let line: Vec<&str> = verb.into_iter().chain(args.iter().copied()).collect();
        match Cli::try_parse_from(line)?.command {
            Command::RestoreTableToPointInTime(restore) => Ok(restore),
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn a_point_in_time_restore_needs_one_source_and_one_time() {
        let by_time =
            restore(&["--source-table-name", "orders", "--restore-date-time", "2026-11-30T14:02:00Z"]).unwrap();
        assert_eq!(by_time.restore_date_time, Some(NOV_30));
        assert!(!by_time.use_latest_restorable_time && !by_time.target.wait);
        assert_eq!(by_time.target.wait_timeout_secs, 3600);
        let latest = restore(&["--source-table-arn", "arn:t", "--use-latest-restorable-time", "--wait"]).unwrap();
        assert!(latest.use_latest_restorable_time && latest.target.wait);
        assert_eq!(latest.restore_date_time, None);
        let wrong: [&[&str]; 5] = [
            &["--use-latest-restorable-time"],
            &["--source-table-name", "orders"],
            &["--source-table-name", "orders", "--source-table-arn", "arn:t", "--use-latest-restorable-time"],
            &["--source-table-name", "orders", "--restore-date-time", "1796047320", "--use-latest-restorable-time"],
            &["--source-table-name", "orders", "--restore-date-time", "yesterday"],
        ];
        for args in wrong {
            assert!(restore(args).is_err(), "{args:?}");
        }
    }
}
