//! Point-in-time recovery and on-demand backups: DynamoDB's calls, and waits for a restore or a
//! backup to finish.

use std::time::Duration;

use tern_proto::v1::backups_client::BackupsClient;
use tern_proto::v1::*;
use tern_proto::ErrorKind;

use crate::{request, Client, Error, Patience, Target, MAX_MESSAGE_BYTES};

/// A call the leader answers (any node forwards it there): reads see every change acknowledged before.
macro_rules! backups_operation {
    ($(#[$doc:meta])* $name:ident, $request:ty, $response:ty, $target:expr) => {
        $(#[$doc])*
        pub async fn $name(&self, message: $request) -> Result<$response, Error> {
            self.call_on($target, Patience::Attempt, |channel, timeout| {
                let message = message.clone();
                async move { backups(channel).$name(request(message, timeout)).await }
            })
            .await
        }
    };
}

/// A call that makes something (a backup, a table): one call of the client's session, so that a
/// retry after a lost answer is answered with the first attempt's outcome, never made twice.
macro_rules! backups_write {
    ($(#[$doc:meta])* $name:ident, $request:ty, $response:ty) => {
        $(#[$doc])*
        pub async fn $name(&self, message: $request) -> Result<$response, Error> {
            let call = self.inner.session.begin();
            let result = self
                .call_on(Target::Leader, Patience::Deadline, |channel, timeout| {
                    let request = call.request(message.clone(), timeout);
                    async move { backups(channel).$name(request).await }
                })
                .await;
            call.finish(result)
        }
    };
}

fn backups(channel: tonic::transport::Channel) -> BackupsClient<tonic::transport::Channel> {
    BackupsClient::new(channel)
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES)
}

impl Client {
    backups_operation!(/// UpdateContinuousBackups: point-in-time recovery on or off, and its window.
        update_continuous_backups, UpdateContinuousBackupsRequest, UpdateContinuousBackupsResponse, Target::Leader);
    backups_operation!(/// DescribeContinuousBackups.
        describe_continuous_backups, DescribeContinuousBackupsRequest, DescribeContinuousBackupsResponse, Target::Leader);
    backups_write!(/// RestoreTableToPointInTime: a new table, CREATING until its items are restored.
        restore_table_to_point_in_time, RestoreTableToPointInTimeRequest, RestoreTableToPointInTimeResponse);
    backups_write!(/// CreateBackup: CREATING until its files are in the backup store.
        create_backup, CreateBackupRequest, CreateBackupResponse);
    backups_operation!(/// DescribeBackup.
        describe_backup, DescribeBackupRequest, DescribeBackupResponse, Target::Leader);
    backups_operation!(/// ListBackups (one page).
        list_backups, ListBackupsRequest, ListBackupsResponse, Target::Leader);
    backups_operation!(/// DeleteBackup.
        delete_backup, DeleteBackupRequest, DeleteBackupResponse, Target::Leader);
    backups_write!(/// RestoreTableFromBackup: a new table, CREATING until its items are restored.
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
