//! The public `tern.v1.Transfers` service: DynamoDB's export and import calls. Every call runs on the
//! leader: a change is checked against its state before it is proposed, and a read answers from its
//! catalog after a read barrier, so a job just asked for is listed whichever node is asked.

use rand::Rng;
use tern_proto::internal::{
    command, command_outcome, CreateExport, ImportTable, RestoreSource, RestoreTable, StoredExport, StoredImport,
};
use tern_proto::v1::transfers_server::Transfers;
use tern_proto::v1::*;
use tern_proto::{ApiError, ErrorKind};
use tonic::{Request, Response, Status};

use super::apply::{list_exports, list_imports, read_export, read_import};
use super::format::Format;
use super::{Buckets, ExportProgress};
use crate::api::tern::observe;
use crate::backup::seconds;
use crate::routing::{Caller, RegionNode};

/// The longest window of an incremental export, as in DynamoDB.
const MAX_INCREMENTAL_MICROS: u64 = 24 * 3600 * 1_000_000;

/// Serves `tern.v1.Transfers` on one node.
pub struct TransfersService {
    node: RegionNode,
    buckets: Buckets,
    min_incremental_micros: u64,
    /// Where import error logs are written (the backup store), as their URLs begin.
    backup_store_url: String,
    /// What the exports running here (when this node leads) have written so far.
    progress: ExportProgress,
}

impl TransfersService {
    pub fn new(
        node: RegionNode,
        buckets: Buckets,
        progress: ExportProgress,
        min_incremental_secs: u64,
        backup_store_url: String,
    ) -> Self {
        let min_incremental_micros = min_incremental_secs * 1_000_000;
        TransfersService { node, buckets, min_incremental_micros, backup_store_url, progress }
    }

    /// The export a request asks for, checked against the table and its PITR window now.
    fn export_to_make(&self, request: &ExportTableToPointInTimeRequest) -> Result<StoredExport, ApiError> {
        let name = request
            .table_arn
            .rsplit_once(":table/")
            .map(|(_, name)| name.to_string())
            .ok_or_else(|| ApiError::validation(format!("Invalid TableArn: {:?}", request.table_arn)))?;
        let (_, stored) = self
            .node
            .reader
            .table(&name)
            .map_err(|_| ApiError::new(ErrorKind::TableNotFoundException, format!("Table not found: {name}")))?;
        let table = stored.description.clone().unwrap_or_default();
        if request.s3_bucket.is_empty() {
            return Err(ApiError::validation("S3Bucket is required"));
        }
        if let Err(e @ super::BucketError::Invalid(_)) = self.buckets.open(&request.s3_bucket, false) {
            return Err(ApiError::validation(e.to_string()));
        }
        let format = match request.export_format.as_str() {
            "" => Format::DynamoDbJson,
            other => Format::named(other).ok_or_else(|| {
                ApiError::validation(format!("ExportFormat must be DYNAMODB_JSON or ION, not {other}"))
            })?,
        };
        let export_type = match request.export_type.as_str() {
            "" | "FULL_EXPORT" => "FULL_EXPORT",
            "INCREMENTAL_EXPORT" => "INCREMENTAL_EXPORT",
            other => {
                return Err(ApiError::validation(format!(
                    "ExportType must be FULL_EXPORT or INCREMENTAL_EXPORT, not {other}"
                )))
            }
        };
        let pitr = stored.pitr.clone().filter(|p| p.enabled).ok_or_else(|| {
            ApiError::new(
                ErrorKind::PointInTimeRecoveryUnavailableException,
                format!("Point in time recovery is not enabled for table '{name}'"),
            )
        })?;
        let now = crate::backup::restorable_now(self.node.reader.applied_through());
        let (earliest, latest) = crate::backup::window(&pitr, now).ok_or_else(|| {
            ApiError::new(
                ErrorKind::PointInTimeRecoveryUnavailableException,
                format!(
                    "Table '{name}' has no restore point yet: its first base is being uploaded; retry in a few seconds"
                ),
            )
        })?;
        let micros = |what: &str, time: f64| -> Result<u64, ApiError> {
            match time.is_finite() && time >= 0.0 {
                true => Ok((time * 1e6).round() as u64),
                false => Err(ApiError::validation(format!("Invalid {what}: {time}"))),
            }
        };
        let outside = |what: &str, at: u64| {
            ApiError::new(
                ErrorKind::InvalidExportTimeException,
                format!(
                    "{what} {} is outside the table's point-in-time recovery window [{}, {}]",
                    seconds(at),
                    seconds(earliest),
                    seconds(latest)
                ),
            )
        };
        let mut description = ExportDescription {
            table_arn: table.table_arn.clone(),
            table_id: table.table_id.clone(),
            client_token: request.client_token.clone(),
            s3_bucket: request.s3_bucket.clone(),
            s3_bucket_owner: request.s3_bucket_owner.clone(),
            s3_prefix: request.s3_prefix.clone(),
            s3_sse_algorithm: request.s3_sse_algorithm.clone(),
            s3_sse_kms_key_id: request.s3_sse_kms_key_id.clone(),
            export_format: format.name().into(),
            export_type: export_type.into(),
            ..Default::default()
        };
        let (restore_to, from) = if export_type == "FULL_EXPORT" {
            if request.incremental_export_specification.is_some() {
                return Err(ApiError::validation("IncrementalExportSpecification is only for INCREMENTAL_EXPORT"));
            }
            let at = match request.export_time {
                Some(time) => micros("ExportTime", time)?,
                None => latest,
            };
            if at < earliest || at > latest {
                return Err(outside("ExportTime", at));
            }
            description.export_time = seconds(at);
            (at, 0)
        } else {
            if request.export_time.is_some() {
                return Err(ApiError::validation("ExportTime is only for FULL_EXPORT"));
            }
            let spec = request.incremental_export_specification.clone().unwrap_or_default();
            let from = micros(
                "ExportFromTime",
                spec.export_from_time
                    .ok_or_else(|| ApiError::validation("IncrementalExportSpecification.ExportFromTime is required"))?,
            )?;
            let to = match spec.export_to_time {
                Some(time) => micros("ExportToTime", time)?,
                None => latest,
            };
            let view = match spec.export_view_type.as_str() {
                "" | "NEW_AND_OLD_IMAGES" => "NEW_AND_OLD_IMAGES",
                "NEW_IMAGE" => "NEW_IMAGE",
                other => {
                    return Err(ApiError::validation(format!(
                        "ExportViewType must be NEW_IMAGE or NEW_AND_OLD_IMAGES, not {other}"
                    )))
                }
            };
            if from >= to {
                return Err(ApiError::validation("ExportFromTime must be before ExportToTime"));
            }
            let length = to - from;
            if length < self.min_incremental_micros || length > MAX_INCREMENTAL_MICROS {
                return Err(ApiError::validation(format!(
                    "The incremental export period must be between {} minutes and 24 hours, not {:.1} minutes",
                    self.min_incremental_micros as f64 / 60e6,
                    length as f64 / 60e6
                )));
            }
            if from < earliest {
                return Err(outside("ExportFromTime", from));
            }
            if to > latest {
                return Err(outside("ExportToTime", to));
            }
            description.incremental_export_specification = Some(IncrementalExportSpecification {
                export_from_time: Some(seconds(from)),
                export_to_time: Some(seconds(to)),
                export_view_type: view.into(),
            });
            (to - 1, from)
        };
        let key_attributes = table.key_schema.iter().map(|k| k.attribute_name.clone()).collect();
        let source = RestoreSource {
            pitr_prefix: pitr.store_prefix.clone(),
            restore_to_micros: restore_to,
            source_table_id: stored.table_id,
            ..Default::default()
        };
        Ok(StoredExport {
            description: Some(description),
            source: Some(source),
            from_micros: from,
            key_attributes,
            request: Some(request.clone()),
        })
    }
}

impl TransfersService {
    /// The table and import a request asks for, checked (the bucket is read by the job: a missing one
    /// fails the import, as in DynamoDB).
    fn import_to_make(&self, request: &ImportTableRequest) -> Result<(CreateTableRequest, StoredImport), ApiError> {
        let source =
            request.s3_bucket_source.clone().ok_or_else(|| ApiError::validation("S3BucketSource is required"))?;
        if source.s3_bucket.is_empty() {
            return Err(ApiError::validation("S3BucketSource.S3Bucket is required"));
        }
        if let Err(super::BucketError::Invalid(_)) = self.buckets.open(&source.s3_bucket, false) {
            return Err(ApiError::validation(format!("Invalid S3 bucket name: {:?}", source.s3_bucket)));
        }
        if !matches!(request.input_format.as_str(), "CSV" | "DYNAMODB_JSON" | "ION") {
            return Err(ApiError::validation(format!(
                "InputFormat must be CSV, DYNAMODB_JSON or ION, not {:?}",
                request.input_format
            )));
        }
        if super::import::Compression::named(&request.input_compression_type).is_none() {
            return Err(ApiError::validation(format!(
                "InputCompressionType must be GZIP, ZSTD or NONE, not {}",
                request.input_compression_type
            )));
        }
        if let Some(csv) = request.input_format_options.as_ref().and_then(|o| o.csv.as_ref()) {
            if request.input_format != "CSV" {
                return Err(ApiError::validation("InputFormatOptions.Csv is only for the CSV InputFormat"));
            }
            if super::import::csv_delimiter(&csv.delimiter).is_none() {
                return Err(ApiError::validation(format!(
                    "Delimiter must be one of , ; : | tab or space, not {:?}",
                    csv.delimiter
                )));
            }
            if csv.header_list.len() > 255 || csv.header_list.iter().any(|h| h.is_empty()) {
                return Err(ApiError::validation("HeaderList holds 1 to 255 non-empty column names"));
            }
        }
        let parameters = request
            .table_creation_parameters
            .clone()
            .ok_or_else(|| ApiError::validation("TableCreationParameters is required"))?;
        let table = CreateTableRequest {
            table_name: parameters.table_name.clone(),
            attribute_definitions: parameters.attribute_definitions.clone(),
            key_schema: parameters.key_schema.clone(),
            billing_mode: parameters.billing_mode.clone(),
            stream_specification: None,
        };
        // A taken name is refused when the entry applies, after the client token and the session are
        // looked at: a retry of an import that was made is answered with it, not with its table.
        crate::schema::check_create_table(&table)?;
        let description = ImportTableDescription {
            client_token: request.client_token.clone(),
            s3_bucket_source: Some(source),
            input_format: request.input_format.clone(),
            input_format_options: request.input_format_options.clone(),
            input_compression_type: if request.input_compression_type.is_empty() {
                "NONE".into()
            } else {
                request.input_compression_type.clone()
            },
            table_creation_parameters: Some(parameters),
            ..Default::default()
        };
        Ok((table, StoredImport { description: Some(description) }))
    }
}

/// One page of a catalog's jobs (id and description, in id order): those of `table_arn` (every table's
/// when empty) from the id `next_token` on, at most `limit`; and the id the next page starts at (empty
/// when there is none).
fn page<T>(
    jobs: impl Iterator<Item = (String, T)>,
    table_of: impl Fn(&T) -> &str,
    table_arn: &str,
    next_token: &str,
    limit: usize,
) -> (Vec<T>, String) {
    let mut wanted = jobs.filter(|(id, job)| {
        (table_arn.is_empty() || table_of(job) == table_arn) && (next_token.is_empty() || id.as_str() >= next_token)
    });
    let page: Vec<T> = wanted.by_ref().take(limit).map(|(_, job)| job).collect();
    let next = wanted.next().map(|(id, _)| id).unwrap_or_default();
    (page, next)
}

fn export_not_found(arn: &str) -> ApiError {
    ApiError::new(ErrorKind::ExportNotFoundException, format!("Export not found: {arn}"))
}

fn import_not_found(arn: &str) -> ApiError {
    ApiError::new(ErrorKind::ImportNotFoundException, format!("Import not found: {arn}"))
}

#[tonic::async_trait]
impl Transfers for TransfersService {
    async fn export_table_to_point_in_time(
        &self,
        request: Request<ExportTableToPointInTimeRequest>,
    ) -> Result<Response<ExportTableToPointInTimeResponse>, Status> {
        observe("ExportTableToPointInTime", async {
            let caller = &Caller::of(&request);
            let request = request.into_inner();
            self.node
                .on_leader(caller, request, |request| async move {
                    self.node.linearizable().await?;
                    let mut export = self.export_to_make(&request)?;
                    let id = crate::backup::backup_id(crate::clock::now_micros(), rand::rng().random::<u32>().into());
                    if let Some(description) = export.description.as_mut() {
                        description.export_arn = super::export_arn(&description.table_arn, &id);
                    }
                    let op = command::Op::CreateExport(CreateExport { export_id: id, export: Some(export) });
                    match self.node.propose_in_session(op, caller.session.clone()).await? {
                        command_outcome::Outcome::Export(description) => {
                            Ok(ExportTableToPointInTimeResponse { export_description: Some(description) })
                        }
                        other => Err(ApiError::internal(format!("unexpected outcome {other:?}")).into()),
                    }
                })
                .await
        })
        .await
    }

    async fn describe_export(
        &self,
        request: Request<DescribeExportRequest>,
    ) -> Result<Response<DescribeExportResponse>, Status> {
        observe("DescribeExport", async {
            let caller = &Caller::of(&request);
            let request = request.into_inner();
            let id = super::id_of(&request.export_arn, "export")
                .ok_or_else(|| export_not_found(&request.export_arn))?
                .to_string();
            self.node
                .on_leader(caller, request, |request| async move {
                    self.node.linearizable().await?;
                    let export = read_export(self.node.reader.latest(), &id)?
                        .ok_or_else(|| export_not_found(&request.export_arn))?;
                    let mut description = export.description.unwrap_or_default();
                    if let Some((items, bytes)) =
                        self.progress.get(&id).filter(|_| description.export_status == "IN_PROGRESS")
                    {
                        (description.items_exported, description.bytes_written) = (items as i64, bytes as i64);
                    }
                    Ok(DescribeExportResponse { export_description: Some(description) })
                })
                .await
        })
        .await
    }

    async fn list_exports(
        &self,
        request: Request<ListExportsRequest>,
    ) -> Result<Response<ListExportsResponse>, Status> {
        observe("ListExports", async {
            let caller = &Caller::of(&request);
            let request = request.into_inner();
            let limit = match request.max_results {
                0 => 25,
                n @ 1..=25 => n as usize,
                n => return Err(ApiError::validation(format!("MaxResults must be between 1 and 25, not {n}")).into()),
            };
            self.node
                .on_leader(caller, request, |request| async move {
                    self.node.linearizable().await?;
                    let jobs =
                        list_exports(self.node.reader.latest())?.into_iter().map(|e| e.description.unwrap_or_default());
                    let jobs = jobs.map(|d| (super::id_of(&d.export_arn, "export").unwrap_or_default().to_string(), d));
                    let (page, next_token) =
                        page(jobs, |d| &d.table_arn, &request.table_arn, &request.next_token, limit);
                    let summaries = page
                        .into_iter()
                        .map(|d| ExportSummary {
                            export_arn: d.export_arn,
                            export_status: d.export_status,
                            export_type: d.export_type,
                        })
                        .collect();
                    Ok(ListExportsResponse { export_summaries: summaries, next_token })
                })
                .await
        })
        .await
    }

    async fn import_table(
        &self,
        request: Request<ImportTableRequest>,
    ) -> Result<Response<ImportTableResponse>, Status> {
        observe("ImportTable", async {
            let caller = &Caller::of(&request);
            let request = request.into_inner();
            let (table, mut import) = self.import_to_make(&request)?;
            self.node
                .on_leader(caller, request, |_| async move {
                    let id = crate::backup::backup_id(crate::clock::now_micros(), rand::rng().random::<u32>().into());
                    if let Some(description) = import.description.as_mut() {
                        description.cloud_watch_log_group_arn =
                            format!("{}/{}", self.backup_store_url.trim_end_matches('/'), super::error_log(&id));
                    }
                    let source = RestoreSource { import_id: id.clone(), ..Default::default() };
                    let restore = RestoreTable { table: Some(table), source: Some(source), summary: None };
                    let op = command::Op::ImportTable(ImportTable {
                        import_id: id,
                        restore: Some(restore),
                        import: Some(import),
                    });
                    match self.node.propose_in_session(op, caller.session.clone()).await? {
                        command_outcome::Outcome::Import(description) => {
                            Ok(ImportTableResponse { import_table_description: Some(description) })
                        }
                        other => Err(ApiError::internal(format!("unexpected outcome {other:?}")).into()),
                    }
                })
                .await
        })
        .await
    }

    async fn describe_import(
        &self,
        request: Request<DescribeImportRequest>,
    ) -> Result<Response<DescribeImportResponse>, Status> {
        observe("DescribeImport", async {
            let caller = &Caller::of(&request);
            let request = request.into_inner();
            let id = super::id_of(&request.import_arn, "import")
                .ok_or_else(|| import_not_found(&request.import_arn))?
                .to_string();
            self.node
                .on_leader(caller, request, |request| async move {
                    self.node.linearizable().await?;
                    let import = read_import(self.node.reader.latest(), &id)?
                        .ok_or_else(|| import_not_found(&request.import_arn))?;
                    Ok(DescribeImportResponse { import_table_description: import.description })
                })
                .await
        })
        .await
    }

    async fn list_imports(
        &self,
        request: Request<ListImportsRequest>,
    ) -> Result<Response<ListImportsResponse>, Status> {
        observe("ListImports", async {
            let caller = &Caller::of(&request);
            let request = request.into_inner();
            let limit = match request.page_size {
                0 => 25,
                n @ 1..=25 => n as usize,
                n => return Err(ApiError::validation(format!("PageSize must be between 1 and 25, not {n}")).into()),
            };
            self.node
                .on_leader(caller, request, |request| async move {
                    self.node.linearizable().await?;
                    let jobs =
                        list_imports(self.node.reader.latest())?.into_iter().map(|i| i.description.unwrap_or_default());
                    let jobs = jobs.map(|d| (super::id_of(&d.import_arn, "import").unwrap_or_default().to_string(), d));
                    let (page, next_token) =
                        page(jobs, |d| &d.table_arn, &request.table_arn, &request.next_token, limit);
                    let summaries = page
                        .into_iter()
                        .map(|d| ImportSummary {
                            import_arn: d.import_arn,
                            import_status: d.import_status,
                            table_arn: d.table_arn,
                            s3_bucket_source: d.s3_bucket_source,
                            cloud_watch_log_group_arn: d.cloud_watch_log_group_arn,
                            input_format: d.input_format,
                            start_time: d.start_time,
                            end_time: d.end_time,
                        })
                        .collect();
                    Ok(ListImportsResponse { import_summary_list: summaries, next_token })
                })
                .await
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::page;

    #[test]
    fn a_page_holds_a_tables_jobs_from_the_token_and_names_the_next() {
        let jobs = || {
            [("01", "a"), ("02", "b"), ("03", "a"), ("04", "a"), ("05", "a")]
                .into_iter()
                .map(|(id, table)| (id.to_string(), (id.to_string(), table.to_string())))
        };
        let ids = |page: Vec<(String, String)>| page.into_iter().map(|(id, _)| id).collect::<Vec<_>>();
        let (first, next) = page(jobs(), |job| job.1.as_str(), "a", "", 2);
        assert_eq!((ids(first), next.as_str()), (vec!["01".to_string(), "03".to_string()], "04"));
        let (second, next) = page(jobs(), |job| job.1.as_str(), "a", "04", 2);
        assert_eq!((ids(second), next.as_str()), (vec!["04".to_string(), "05".to_string()], ""));
        let (all, next) = page(jobs(), |job| job.1.as_str(), "", "", 25);
        assert_eq!((all.len(), next.as_str()), (5, ""));
    }
}
