//! The public `tern.v1.Backups` service: DynamoDB's continuous-backup, backup and restore calls.
//! Reads are answered by any node; calls that change something run on the leader, which checks them
//! against the backup store and its own state before proposing them.

use rand::Rng;
use tern_proto::internal::{command, command_outcome, CreateBackup, DeleteBackup, RestoreSource, RestoreTable};
use tern_proto::v1::backups_server::Backups;
use tern_proto::v1::*;
use tern_proto::{ApiError, ErrorKind};
use tonic::{Request, Response, Status};

use super::apply::backup_not_found;
use super::store::{BackupStore, StoreError};
use super::view::{list_backups, read_backup};
use super::{image, seconds};
use crate::api::tern::observe;
use crate::routing::{Caller, RegionNode};
use crate::schema::check_table_name;

/// Serves `tern.v1.Backups` on one node.
pub struct BackupsService {
    node: RegionNode,
    store: BackupStore,
}

impl BackupsService {
    pub fn new(node: RegionNode, store: BackupStore) -> Self {
        BackupsService { node, store }
    }

    /// The outcome of a proposal made as one call of the caller's session (a refusal is the error).
    async fn propose(&self, op: command::Op, caller: &Caller) -> Result<command_outcome::Outcome, ApiError> {
        self.node.propose_in_session(op, caller.session.clone()).await
    }

    /// A restore's new table, proposed; its description.
    async fn start_restore(
        &self,
        caller: &Caller,
        target: &str,
        source_table: &SourceTableDetails,
        source: RestoreSource,
        summary: RestoreSummary,
    ) -> Result<TableDescription, ApiError> {
        // A taken name is refused when the entry applies, not here: a client's retry of a restore that
        // was made is answered with its first outcome (its session), not with the table it made.
        check_table_name(target)?;
        let table = CreateTableRequest {
            table_name: target.to_string(),
            attribute_definitions: source_table.attribute_definitions.clone(),
            key_schema: source_table.key_schema.clone(),
            billing_mode: source_table.billing_mode.clone(),
            stream_specification: None,
        };
        let op = command::Op::RestoreTable(RestoreTable {
            table: Some(table),
            source: Some(source),
            summary: Some(summary),
        });
        match self.propose(op, caller).await? {
            command_outcome::Outcome::Restore(description) => Ok(description),
            other => Err(ApiError::internal(format!("unexpected outcome {other:?}"))),
        }
    }

    /// A backup this region's catalog lacks, from its image in the store (made in another region).
    async fn backup_in_store(&self, backup_id: &str) -> Result<Option<(BackupDescription, image::Manifest)>, ApiError> {
        let manifest = match image::read_manifest(&self.store, &super::backup_folder(backup_id)).await {
            Ok(manifest) => manifest,
            Err(StoreError::Missing { .. }) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let Some(mut description) = manifest.backup()? else { return Ok(None) };
        if let Some(details) = description.backup_details.as_mut() {
            details.backup_status = "AVAILABLE".into();
            details.item_count = manifest.item_count;
            details.backup_size_bytes = manifest.bytes;
        }
        Ok(Some((description, manifest)))
    }
}

/// The source table named by ARN or by name.
fn source_name(request: &RestoreTableToPointInTimeRequest) -> Result<String, ApiError> {
    match (request.source_table_name.is_empty(), request.source_table_arn.is_empty()) {
        (false, true) => Ok(request.source_table_name.clone()),
        (true, false) => request
            .source_table_arn
            .rsplit_once(":table/")
            .map(|(_, name)| name.to_string())
            .ok_or_else(|| ApiError::validation(format!("Invalid SourceTableArn: {}", request.source_table_arn))),
        (true, true) => Err(ApiError::validation("Either SourceTableArn or SourceTableName must be given")),
        (false, false) => Err(ApiError::validation("Only one of SourceTableArn and SourceTableName may be given")),
    }
}

fn table_not_found(name: &str) -> ApiError {
    ApiError::new(ErrorKind::TableNotFoundException, format!("Table not found: {name}"))
}

/// A backup as ListBackups summarizes it.
fn summary(description: &BackupDescription) -> BackupSummary {
    let details = description.backup_details.clone().unwrap_or_default();
    let source = description.source_table_details.clone().unwrap_or_default();
    BackupSummary {
        table_name: source.table_name,
        table_id: source.table_id,
        table_arn: source.table_arn,
        backup_arn: details.backup_arn,
        backup_name: details.backup_name,
        backup_creation_date_time: details.backup_creation_date_time,
        backup_expiry_date_time: details.backup_expiry_date_time,
        backup_status: details.backup_status,
        backup_type: details.backup_type,
        backup_size_bytes: details.backup_size_bytes,
    }
}

#[tonic::async_trait]
impl Backups for BackupsService {
    async fn update_continuous_backups(
        &self,
        request: Request<UpdateContinuousBackupsRequest>,
    ) -> Result<Response<UpdateContinuousBackupsResponse>, Status> {
        observe("UpdateContinuousBackups", async {
            let caller = &Caller::of(&request);
            let request = request.into_inner();
            check_table_name(&request.table_name)?;
            if request.point_in_time_recovery_specification.is_none() {
                return Err(ApiError::validation("PointInTimeRecoverySpecification is required").into());
            }
            let name = request.table_name.clone();
            self.node
                .write_checked(caller.clone(), request, move |_| match self.node.reader.table(&name) {
                    Ok(_) => Ok(()),
                    Err(e) if e.kind == ErrorKind::ResourceNotFoundException => Err(table_not_found(&name)),
                    Err(e) => Err(e),
                })
                .await
        })
        .await
    }

    async fn describe_continuous_backups(
        &self,
        request: Request<DescribeContinuousBackupsRequest>,
    ) -> Result<Response<DescribeContinuousBackupsResponse>, Status> {
        observe("DescribeContinuousBackups", async {
            let caller = &Caller::of(&request);
            let request = request.into_inner();
            check_table_name(&request.table_name)?;
            self.node
                .on_leader(caller, request, |request| async move {
                    self.node.linearizable().await?;
                    let stored = self
                        .node
                        .reader
                        .described_table(&request.table_name)
                        .map_err(|_| table_not_found(&request.table_name))?;
                    let now = super::restorable_now(self.node.reader.applied_through());
                    let description = super::describe(stored.pitr.as_ref(), now);
                    Ok(DescribeContinuousBackupsResponse { continuous_backups_description: Some(description) })
                })
                .await
        })
        .await
    }

    async fn restore_table_to_point_in_time(
        &self,
        request: Request<RestoreTableToPointInTimeRequest>,
    ) -> Result<Response<RestoreTableToPointInTimeResponse>, Status> {
        observe("RestoreTableToPointInTime", async {
            let caller = &Caller::of(&request);
            let request = request.into_inner();
            let source = source_name(&request)?;
            check_table_name(&source)?;
            check_table_name(&request.target_table_name)?;
            if request.use_latest_restorable_time == request.restore_date_time.is_some() {
                return Err(ApiError::validation("Exactly one of RestoreDateTime and UseLatestRestorableTime must be given").into());
            }
            self.node
                .on_leader(caller, request, |request| async move {
                    self.node.linearizable().await?;
                    let (_, stored) = self.node.reader.table(&source).map_err(|_| table_not_found(&source))?;
                    let unavailable = || {
                        ApiError::new(
                            ErrorKind::PointInTimeRecoveryUnavailableException,
                            format!("Point in time recovery is not enabled for table '{source}'"),
                        )
                    };
                    let pitr = stored.pitr.clone().filter(|p| p.enabled).ok_or_else(unavailable)?;
                    let now = super::restorable_now(self.node.reader.applied_through());
                    let (earliest, latest) = super::window(&pitr, now).ok_or_else(|| {
                        ApiError::new(
                            ErrorKind::PointInTimeRecoveryUnavailableException,
                            format!("Table '{source}' has no restore point yet: its first base is being uploaded; retry in a few seconds"),
                        )
                    })?;
                    let at = match request.restore_date_time {
                        Some(time) if time.is_finite() && time >= 0.0 => (time * 1e6).round() as u64,
                        Some(time) => return Err(ApiError::validation(format!("Invalid RestoreDateTime: {time}")).into()),
                        None => latest,
                    };
                    if at < earliest || at > latest {
                        return Err(ApiError::new(
                            ErrorKind::InvalidRestoreTimeException,
                            format!(
                                "RestoreDateTime {} is outside the restorable window [{}, {}]",
                                seconds(at),
                                seconds(earliest),
                                seconds(latest)
                            ),
                        )
                        .into());
                    }
                    let description = stored.description.clone().unwrap_or_default();
                    let source = RestoreSource {
                        pitr_prefix: pitr.store_prefix.clone(),
                        restore_to_micros: at,
                        source_table_id: stored.table_id,
                        ..Default::default()
                    };
                    let summary = RestoreSummary {
                        source_table_arn: description.table_arn.clone(),
                        restore_date_time: seconds(at),
                        ..Default::default()
                    };
                    let details = super::apply::source_details(&description);
                    let table = self.start_restore(caller, &request.target_table_name, &details, source, summary).await?;
                    Ok(RestoreTableToPointInTimeResponse { table_description: Some(table) })
                })
                .await
        })
        .await
    }

    async fn create_backup(
        &self,
        request: Request<CreateBackupRequest>,
    ) -> Result<Response<CreateBackupResponse>, Status> {
        observe("CreateBackup", async {
            let caller = &Caller::of(&request);
            let request = request.into_inner();
            check_table_name(&request.table_name)?;
            super::apply::check_backup_name(&request.backup_name)?;
            self.node
                .on_leader(caller, request, |request| async move {
                    self.node.reader.table(&request.table_name).map_err(|_| table_not_found(&request.table_name))?;
                    let backup_id = super::backup_id(crate::clock::now_micros(), rand::rng().random::<u32>().into());
                    let op = command::Op::CreateBackup(CreateBackup {
                        backup_id,
                        table_name: request.table_name,
                        backup_name: request.backup_name,
                    });
                    match self.propose(op, caller).await? {
                        command_outcome::Outcome::Backup(description) => {
                            Ok(CreateBackupResponse { backup_details: description.backup_details })
                        }
                        other => Err(ApiError::internal(format!("unexpected outcome {other:?}")).into()),
                    }
                })
                .await
        })
        .await
    }

    async fn describe_backup(
        &self,
        request: Request<DescribeBackupRequest>,
    ) -> Result<Response<DescribeBackupResponse>, Status> {
        observe("DescribeBackup", async {
            let caller = &Caller::of(&request);
            let request = request.into_inner();
            let id = super::backup_id_of(&request.backup_arn)
                .ok_or_else(|| backup_not_found(&request.backup_arn))?
                .to_string();
            self.node
                .on_leader(caller, request, |request| async move {
                    self.node.linearizable().await?;
                    if let Some(backup) = read_backup(self.node.reader.latest(), &id)? {
                        return Ok(DescribeBackupResponse { backup_description: backup.description });
                    }
                    match self.backup_in_store(&id).await? {
                        Some((description, _)) => Ok(DescribeBackupResponse { backup_description: Some(description) }),
                        None => Err(backup_not_found(&request.backup_arn).into()),
                    }
                })
                .await
        })
        .await
    }

    async fn list_backups(
        &self,
        request: Request<ListBackupsRequest>,
    ) -> Result<Response<ListBackupsResponse>, Status> {
        observe("ListBackups", async {
            let caller = &Caller::of(&request);
            let request = request.into_inner();
            let limit = match request.limit {
                0 => 100,
                n @ 1..=100 => n as usize,
                n => return Err(ApiError::validation(format!("Limit must be between 1 and 100, not {n}")).into()),
            };
            let types: &[&str] = match request.backup_type.as_str() {
                "" | "USER" => &["USER"],
                "SYSTEM" => &["SYSTEM"],
                "AWS_BACKUP" => &[],
                "ALL" => &["USER", "SYSTEM"],
                other => {
                    return Err(ApiError::validation(format!(
                        "BackupType must be USER, SYSTEM, AWS_BACKUP or ALL, not {other}"
                    ))
                    .into())
                }
            };
            let start_after = match request.exclusive_start_backup_arn.as_str() {
                "" => None,
                arn => Some(
                    super::backup_id_of(arn)
                        .ok_or_else(|| ApiError::validation(format!("Invalid ExclusiveStartBackupArn: {arn}")))?
                        .to_string(),
                ),
            };
            // The catalog as the leader holds it, so that a backup just made (or a table just deleted)
            // is listed whichever node is asked.
            self.node
                .on_leader(caller, request, |request| async move {
                    self.node.linearizable().await?;
                    let mut summaries = Vec::new();
                    let mut more = false;
                    for backup in list_backups(self.node.reader.latest())? {
                        let description = backup.description.unwrap_or_default();
                        let found = summary(&description);
                        let id = super::backup_id_of(&found.backup_arn).unwrap_or_default().to_string();
                        let wanted = types.contains(&found.backup_type.as_str())
                            && (request.table_name.is_empty() || found.table_name == request.table_name)
                            && request.time_range_lower_bound.is_none_or(|t| found.backup_creation_date_time >= t)
                            && request.time_range_upper_bound.is_none_or(|t| found.backup_creation_date_time < t)
                            && start_after.as_ref().is_none_or(|after| &id > after);
                        if !wanted {
                            continue;
                        }
                        if summaries.len() == limit {
                            more = true;
                            break;
                        }
                        summaries.push(found);
                    }
                    let last_evaluated_backup_arn = if more {
                        summaries.last().map(|s| s.backup_arn.clone()).unwrap_or_default()
                    } else {
                        String::new()
                    };
                    Ok(ListBackupsResponse { backup_summaries: summaries, last_evaluated_backup_arn })
                })
                .await
        })
        .await
    }

    async fn delete_backup(
        &self,
        request: Request<DeleteBackupRequest>,
    ) -> Result<Response<DeleteBackupResponse>, Status> {
        observe("DeleteBackup", async {
            let caller = &Caller::of(&request);
            let request = request.into_inner();
            let id = super::backup_id_of(&request.backup_arn)
                .ok_or_else(|| backup_not_found(&request.backup_arn))?
                .to_string();
            self.node
                .on_leader(caller, request, |request| async move {
                    let backup = read_backup(self.node.reader.latest(), &id)?
                        .ok_or_else(|| backup_not_found(&request.backup_arn))?;
                    let description = match self
                        .propose(command::Op::DeleteBackup(DeleteBackup { backup_id: id.clone() }), caller)
                        .await?
                    {
                        command_outcome::Outcome::Backup(description) => description,
                        other => return Err(ApiError::internal(format!("unexpected outcome {other:?}")).into()),
                    };
                    // Out of the catalog first: files left by a failure here cost space, never a
                    // backup listed without its files.
                    let folder = match &backup.pitr {
                        Some(pitr) => pitr.store_prefix.clone(),
                        None => super::backup_folder(&id),
                    };
                    if let Err(e) = self.store.delete_all(&folder).await {
                        tracing::warn!(backup = %id, error = %e, "a deleted backup's files are left in the store");
                    }
                    Ok(DeleteBackupResponse { backup_description: Some(description) })
                })
                .await
        })
        .await
    }

    async fn restore_table_from_backup(
        &self,
        request: Request<RestoreTableFromBackupRequest>,
    ) -> Result<Response<RestoreTableFromBackupResponse>, Status> {
        observe("RestoreTableFromBackup", async {
            let caller = &Caller::of(&request);
            let request = request.into_inner();
            check_table_name(&request.target_table_name)?;
            let id = super::backup_id_of(&request.backup_arn)
                .ok_or_else(|| backup_not_found(&request.backup_arn))?
                .to_string();
            self.node
                .on_leader(caller, request, |request| async move {
                    let (description, source) = match read_backup(self.node.reader.latest(), &id)? {
                        Some(backup) => {
                            let description = backup.description.clone().unwrap_or_default();
                            let details = description.backup_details.clone().unwrap_or_default();
                            if details.backup_status != "AVAILABLE" {
                                let why = format!("Backup {} is {}", details.backup_arn, details.backup_status);
                                return Err(ApiError::new(ErrorKind::BackupInUseException, why).into());
                            }
                            let source = match &backup.pitr {
                                Some(pitr) => RestoreSource {
                                    pitr_prefix: pitr.store_prefix.clone(),
                                    restore_to_micros: backup.deleted_at_micros,
                                    ..Default::default()
                                },
                                None => RestoreSource { backup_id: id.clone(), ..Default::default() },
                            };
                            (description, source)
                        }
                        None => match self.backup_in_store(&id).await? {
                            Some((description, _)) => {
                                (description, RestoreSource { backup_id: id.clone(), ..Default::default() })
                            }
                            None => return Err(backup_not_found(&request.backup_arn).into()),
                        },
                    };
                    let details = description.backup_details.clone().unwrap_or_default();
                    let source_table = description.source_table_details.clone().unwrap_or_default();
                    let summary = RestoreSummary {
                        source_backup_arn: details.backup_arn.clone(),
                        source_table_arn: source_table.table_arn.clone(),
                        restore_date_time: details.backup_creation_date_time,
                        ..Default::default()
                    };
                    let table =
                        self.start_restore(caller, &request.target_table_name, &source_table, source, summary).await?;
                    Ok(RestoreTableFromBackupResponse { table_description: Some(table) })
                })
                .await
        })
        .await
    }
}
