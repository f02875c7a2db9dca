//! DynamoDB's error names, and how they travel in a gRPC status.

use std::fmt;

/// The gRPC metadata key that carries the DynamoDB error name.
pub const ERROR_TYPE_KEY: &str = "tern-error-type";

/// DynamoDB's error names that Tern returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    ValidationException,
    ResourceNotFoundException,
    ResourceInUseException,
    ConditionalCheckFailedException,
    TransactionCanceledException,
    IdempotentParameterMismatchException,
    LimitExceededException,
    ExpiredIteratorException,
    TrimmedDataAccessException,
    InternalServerError,
    ServiceUnavailable,
    InvalidRestoreTimeException,
    PointInTimeRecoveryUnavailableException,
    TableAlreadyExistsException,
    TableNotFoundException,
    BackupNotFoundException,
    BackupInUseException,
    ContinuousBackupsUnavailableException,
    InvalidExportTimeException,
    ExportConflictException,
    ExportNotFoundException,
    ImportConflictException,
    ImportNotFoundException,
}

impl ErrorKind {
    /// The name as DynamoDB spells it.
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::ValidationException => "ValidationException",
            ErrorKind::ResourceNotFoundException => "ResourceNotFoundException",
            ErrorKind::ResourceInUseException => "ResourceInUseException",
            ErrorKind::ConditionalCheckFailedException => "ConditionalCheckFailedException",
            ErrorKind::TransactionCanceledException => "TransactionCanceledException",
            ErrorKind::IdempotentParameterMismatchException => "IdempotentParameterMismatchException",
            ErrorKind::LimitExceededException => "LimitExceededException",
            ErrorKind::ExpiredIteratorException => "ExpiredIteratorException",
            ErrorKind::TrimmedDataAccessException => "TrimmedDataAccessException",
            ErrorKind::InternalServerError => "InternalServerError",
            ErrorKind::ServiceUnavailable => "ServiceUnavailable",
            ErrorKind::InvalidRestoreTimeException => "InvalidRestoreTimeException",
            ErrorKind::PointInTimeRecoveryUnavailableException => "PointInTimeRecoveryUnavailableException",
            ErrorKind::TableAlreadyExistsException => "TableAlreadyExistsException",
            ErrorKind::TableNotFoundException => "TableNotFoundException",
            ErrorKind::BackupNotFoundException => "BackupNotFoundException",
            ErrorKind::BackupInUseException => "BackupInUseException",
            ErrorKind::ContinuousBackupsUnavailableException => "ContinuousBackupsUnavailableException",
            ErrorKind::InvalidExportTimeException => "InvalidExportTimeException",
            ErrorKind::ExportConflictException => "ExportConflictException",
            ErrorKind::ExportNotFoundException => "ExportNotFoundException",
            ErrorKind::ImportConflictException => "ImportConflictException",
            ErrorKind::ImportNotFoundException => "ImportNotFoundException",
        }
    }

    /// The kind with this DynamoDB name.
    pub fn from_name(name: &str) -> Option<Self> {
        use ErrorKind::*;
        [
            ValidationException,
            ResourceNotFoundException,
            ResourceInUseException,
            ConditionalCheckFailedException,
            TransactionCanceledException,
            IdempotentParameterMismatchException,
            LimitExceededException,
            ExpiredIteratorException,
            TrimmedDataAccessException,
            InternalServerError,
            ServiceUnavailable,
            InvalidRestoreTimeException,
            PointInTimeRecoveryUnavailableException,
            TableAlreadyExistsException,
            TableNotFoundException,
            BackupNotFoundException,
            BackupInUseException,
            ContinuousBackupsUnavailableException,
            InvalidExportTimeException,
            ExportConflictException,
            ExportNotFoundException,
            ImportConflictException,
            ImportNotFoundException,
        ]
        .into_iter()
        .find(|kind| kind.name() == name)
    }

    fn code(self) -> tonic::Code {
        match self {
            ErrorKind::ValidationException => tonic::Code::InvalidArgument,
            ErrorKind::ResourceNotFoundException => tonic::Code::NotFound,
            ErrorKind::ResourceInUseException => tonic::Code::AlreadyExists,
            ErrorKind::ConditionalCheckFailedException => tonic::Code::FailedPrecondition,
            ErrorKind::TransactionCanceledException => tonic::Code::Aborted,
            ErrorKind::IdempotentParameterMismatchException => tonic::Code::InvalidArgument,
            ErrorKind::LimitExceededException => tonic::Code::ResourceExhausted,
            ErrorKind::ExpiredIteratorException => tonic::Code::FailedPrecondition,
            ErrorKind::TrimmedDataAccessException => tonic::Code::OutOfRange,
            ErrorKind::InternalServerError => tonic::Code::Internal,
            ErrorKind::ServiceUnavailable => tonic::Code::Unavailable,
            ErrorKind::InvalidRestoreTimeException => tonic::Code::InvalidArgument,
            ErrorKind::PointInTimeRecoveryUnavailableException => tonic::Code::FailedPrecondition,
            ErrorKind::TableAlreadyExistsException => tonic::Code::AlreadyExists,
            ErrorKind::TableNotFoundException => tonic::Code::NotFound,
            ErrorKind::BackupNotFoundException => tonic::Code::NotFound,
            ErrorKind::BackupInUseException => tonic::Code::FailedPrecondition,
            ErrorKind::ContinuousBackupsUnavailableException => tonic::Code::FailedPrecondition,
            ErrorKind::InvalidExportTimeException => tonic::Code::InvalidArgument,
            ErrorKind::ExportConflictException => tonic::Code::AlreadyExists,
            ErrorKind::ExportNotFoundException => tonic::Code::NotFound,
            ErrorKind::ImportConflictException => tonic::Code::AlreadyExists,
            ErrorKind::ImportNotFoundException => tonic::Code::NotFound,
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An error as DynamoDB would return it: a name and a message.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct ApiError {
    pub kind: ErrorKind,
    pub message: String,
    /// The old item of a failed condition, or a cancelled transaction's reasons.
    pub details: Option<Box<crate::v1::ErrorDetails>>,
}

impl ApiError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        ApiError { kind, message: message.into(), details: None }
    }

    /// The error with structured details attached.
    pub fn with_details(mut self, details: crate::v1::ErrorDetails) -> Self {
        self.details = Some(Box::new(details));
        self
    }

    /// DynamoDB's error for a condition that does not hold.
    pub fn condition_failed() -> Self {
        Self::new(ErrorKind::ConditionalCheckFailedException, "The conditional request failed")
    }

    pub fn validation(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::ValidationException, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::ResourceNotFoundException, message)
    }

    pub fn in_use(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::ResourceInUseException, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InternalServerError, message)
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::ServiceUnavailable, message)
    }

    /// DynamoDB's error for a table that does not exist.
    pub fn table_not_found(table: &str) -> Self {
        Self::not_found(format!("Requested resource not found: Table: {table} not found"))
    }
}

impl From<ApiError> for tonic::Status {
    fn from(error: ApiError) -> Self {
        let details = error.details.map(|d| prost::Message::encode_to_vec(d.as_ref())).unwrap_or_default();
        let mut status = tonic::Status::with_details(error.kind.code(), error.message, details.into());
        status.metadata_mut().insert(ERROR_TYPE_KEY, tonic::metadata::MetadataValue::from_static(error.kind.name()));
        status
    }
}

impl From<&tonic::Status> for ApiError {
    /// Reads the DynamoDB error back; a status without one (a transport failure) is `ServiceUnavailable`
    /// when it is retryable and `InternalServerError` otherwise.
    fn from(status: &tonic::Status) -> Self {
        let named = status.metadata().get(ERROR_TYPE_KEY).and_then(|v| v.to_str().ok()).and_then(ErrorKind::from_name);
        let kind = named.unwrap_or(match status.code() {
            // Without Tern's error type, an `Unknown` status comes from the transport (a connection
            // reset mid-call, a node killed): the call may be retried, as AWS SDKs retry them.
            tonic::Code::Unavailable
            | tonic::Code::DeadlineExceeded
            | tonic::Code::Cancelled
            | tonic::Code::Unknown => ErrorKind::ServiceUnavailable,
            _ => ErrorKind::InternalServerError,
        });
        let details = Some(status.details())
            .filter(|d| !d.is_empty())
            .and_then(|d| <crate::v1::ErrorDetails as prost::Message>::decode(d).ok())
            .map(Box::new);
        ApiError { kind, message: status.message().to_string(), details }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn survives_a_trip_through_a_grpc_status() {
        let error = ApiError::table_not_found("orders");
        let status: tonic::Status = error.clone().into();
        assert_eq!(status.code(), tonic::Code::NotFound);
        assert_eq!(ApiError::from(&status), error);
    }

    #[test]
    fn a_bare_unavailable_status_is_service_unavailable() {
        let status = tonic::Status::unavailable("connection refused");
        assert_eq!(ApiError::from(&status).kind, ErrorKind::ServiceUnavailable);
    }
}
