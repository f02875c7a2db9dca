//! Export to and import from object storage: DynamoDB's calls, and a wait for an export to end.

use std::time::Duration;

use tern_proto::v1::transfers_client::TransfersClient;
use tern_proto::v1::*;

use crate::{request, Client, Error, Patience, Target, MAX_MESSAGE_BYTES};

fn transfers(channel: tonic::transport::Channel) -> TransfersClient<tonic::transport::Channel> {
    TransfersClient::new(channel)
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES)
}

impl Client {
    session_call!(transfers, /// ExportTableToPointInTime: IN_PROGRESS until its files are in the bucket.
        export_table_to_point_in_time, ExportTableToPointInTimeRequest, ExportTableToPointInTimeResponse);
    leader_call!(transfers, /// DescribeExport.
        describe_export, DescribeExportRequest, DescribeExportResponse);
    leader_call!(transfers, /// ListExports (one page).
        list_exports, ListExportsRequest, ListExportsResponse);
    session_call!(transfers, /// ImportTable: a new table, CREATING until the import ends.
        import_table, ImportTableRequest, ImportTableResponse);
    leader_call!(transfers, /// DescribeImport.
        describe_import, DescribeImportRequest, DescribeImportResponse);
    leader_call!(transfers, /// ListImports (one page).
        list_imports, ListImportsRequest, ListImportsResponse);

    /// Waits until an import ends (COMPLETED or FAILED: the description says which), calling
    /// `progress` with each description seen.
    pub async fn wait_for_import(
        &self,
        import_arn: &str,
        timeout: Duration,
        progress: impl FnMut(&ImportTableDescription),
    ) -> Result<ImportTableDescription, Error> {
        let describe = || async {
            let request = DescribeImportRequest { import_arn: import_arn.to_string() };
            Ok(self.describe_import(request).await?.import_table_description.unwrap_or_default())
        };
        let ended = |d: &ImportTableDescription| d.import_status != "IN_PROGRESS";
        poll(&format!("Import {import_arn}"), timeout, describe, ended, progress).await
    }

    /// Waits until an export ends (COMPLETED or FAILED: the description says which), calling
    /// `progress` with each description seen.
    pub async fn wait_for_export(
        &self,
        export_arn: &str,
        timeout: Duration,
        progress: impl FnMut(&ExportDescription),
    ) -> Result<ExportDescription, Error> {
        let describe = || async {
            let request = DescribeExportRequest { export_arn: export_arn.to_string() };
            Ok(self.describe_export(request).await?.export_description.unwrap_or_default())
        };
        let ended = |d: &ExportDescription| d.export_status != "IN_PROGRESS";
        poll(&format!("Export {export_arn}"), timeout, describe, ended, progress).await
    }
}

/// Describes a job every 200 ms until it has `ended`, or `timeout` passes (then ServiceUnavailable).
async fn poll<T, Fut>(
    what: &str,
    timeout: Duration,
    describe: impl Fn() -> Fut,
    ended: impl Fn(&T) -> bool,
    mut progress: impl FnMut(&T),
) -> Result<T, Error>
where
    Fut: std::future::Future<Output = Result<T, Error>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let described = describe().await?;
        progress(&described);
        if ended(&described) {
            return Ok(described);
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(Error::Api(tern_proto::ApiError::unavailable(format!(
                "{what} is still IN_PROGRESS after {timeout:?}"
            ))));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
