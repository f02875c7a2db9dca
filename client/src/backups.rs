//! Point-in-time recovery and on-demand backups: DynamoDB's calls, and waits for a restore or a
//! backup to finish.

use std::time::Duration;

use tern_proto::v1::backups_client::BackupsClient;
use tern_proto::v1::*;
use tern_proto::ErrorKind;

use crate::{request, Client, Error, Patience, Target, MAX_MESSAGE_BYTES};

fn backups(channel: tonic::transport::Channel) -> BackupsClient<tonic::transport::Channel> {
    BackupsClient::new(channel)
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES)
}

impl Client {
    leader_call!(backups, /// UpdateContinuousBackups: point-in-time recovery on or off, and its window.
        update_continuous_backups, UpdateContinuousBackupsRequest, UpdateContinuousBackupsResponse);
    leader_call!(backups, /// DescribeContinuousBackups.
        describe_continuous_backups, DescribeContinuousBackupsRequest, DescribeContinuousBackupsResponse);
    session_call!(backups, /// RestoreTableToPointInTime: a new table, CREATING until its items are restored.
        restore_table_to_point_in_time, RestoreTableToPointInTimeRequest, RestoreTableToPointInTimeResponse);
    session_call!(backups, /// CreateBackup: CREATING until its files are in the backup store.
        create_backup, CreateBackupRequest, CreateBackupResponse);
    leader_call!(backups, /// DescribeBackup.
        describe_backup, DescribeBackupRequest, DescribeBackupResponse);
    leader_call!(backups, /// ListBackups (one page).
        list_backups, ListBackupsRequest, ListBackupsResponse);
    leader_call!(backups, /// DeleteBackup.
        delete_backup, DeleteBackupRequest, DeleteBackupResponse);
    session_call!(backups, /// RestoreTableFromBackup: a new table, CREATING until its items are restored.
        restore_table_from_backup, RestoreTableFromBackupRequest, RestoreTableFromBackupResponse);

    /// Waits until `table` is restored (ACTIVE), calling `progress` with each description seen. A
    /// restore that failed removes its table: the error then says why. As AWS's `table_exists` waiter,
    /// it waits through ResourceNotFoundException otherwise: DescribeTable is answered by any node,
    /// and one may not have applied the restore's new table yet.
    pub async fn wait_for_restore(
        &self,
        table: &str,
        timeout: Duration,
        mut progress: impl FnMut(&TableDescription),
    ) -> Result<TableDescription, Error> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let described = match self.describe_table(DescribeTableRequest { table_name: table.to_string() }).await {
                Err(Error::Api(error))
                    if error.kind == ErrorKind::ResourceNotFoundException
                        && error.details.as_ref().is_none_or(|d| d.restore_failure.is_empty())
                        && tokio::time::Instant::now() < deadline =>
                {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
                described => described?,
            };
            let table_description = described.table.unwrap_or_default();
            progress(&table_description);
            if table_description.table_status == "ACTIVE" {
                return Ok(table_description);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(Error::Api(tern_proto::ApiError::unavailable(format!(
                    "Table {table} is still {} after {timeout:?}",
                    table_description.table_status
                ))));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Waits until the backup is AVAILABLE.
    pub async fn wait_for_backup(&self, backup_arn: &str, timeout: Duration) -> Result<BackupDescription, Error> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let described = self.describe_backup(DescribeBackupRequest { backup_arn: backup_arn.to_string() }).await?;
            let description = described.backup_description.unwrap_or_default();
            let status = description.backup_details.as_ref().map(|d| d.backup_status.clone()).unwrap_or_default();
            if status == "AVAILABLE" {
                return Ok(description);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(Error::Api(tern_proto::ApiError::unavailable(format!(
                    "Backup {backup_arn} is still {status} after {timeout:?}"
                ))));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}
