//! The one error type of the services: an AWS error code, its HTTP status and a message.
//!
//! Services return [`AwsError`]; each protocol renders it once (query XML or rest-json). Internal
//! detail (database errors, fetch failures) is logged where it happens and never reaches a client.

use std::fmt;

/// An error as AWS reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AwsError {
    /// The modeled error code, e.g. `NoSuchEntity`, `InvalidIdentityToken`.
    pub code: &'static str,
    /// HTTP status.
    pub status: u16,
    /// Human-readable message.
    pub message: String,
}

impl fmt::Display for AwsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for AwsError {}

/// Result alias for the services.
pub type Result<T, E = AwsError> = std::result::Result<T, E>;

impl AwsError {
    /// Build an error.
    pub fn new(code: &'static str, status: u16, message: impl Into<String>) -> Self {
        Self { code, status, message: message.into() }
    }
    /// `true` for errors the caller caused (XML `<Type>Sender</Type>`).
    pub fn is_sender(&self) -> bool {
        self.status < 500
    }

    // === query-protocol (IAM/STS) codes ===

    /// Request parameter failed a modeled constraint.
    pub fn validation(message: impl Into<String>) -> Self {
        Self::new("ValidationError", 400, message)
    }
    /// A required parameter is absent.
    pub fn missing_parameter(name: &str) -> Self {
        Self::new("MissingParameter", 400, format!("the request must contain the parameter {name}"))
    }
    /// IAM `InvalidInput`.
    pub fn invalid_input(message: impl Into<String>) -> Self {
        Self::new("InvalidInput", 400, message)
    }
    /// IAM `NoSuchEntity`.
    pub fn no_such_entity(message: impl Into<String>) -> Self {
        Self::new("NoSuchEntity", 404, message)
    }
    /// IAM `EntityAlreadyExists`.
    pub fn already_exists(message: impl Into<String>) -> Self {
        Self::new("EntityAlreadyExists", 409, message)
    }
    /// IAM `LimitExceeded`.
    pub fn limit_exceeded(message: impl Into<String>) -> Self {
        Self::new("LimitExceeded", 409, message)
    }
    /// IAM `DeleteConflict`.
    pub fn delete_conflict(message: impl Into<String>) -> Self {
        Self::new("DeleteConflict", 409, message)
    }
    /// `MalformedPolicyDocument`.
    pub fn malformed_policy(message: impl Into<String>) -> Self {
        Self::new("MalformedPolicyDocument", 400, message)
    }
    /// `AccessDenied` (query protocol).
    pub fn access_denied(message: impl Into<String>) -> Self {
        Self::new("AccessDenied", 403, message)
    }
    /// STS `InvalidIdentityToken`.
    pub fn invalid_identity_token(message: impl Into<String>) -> Self {
        Self::new("InvalidIdentityToken", 400, message)
    }
    /// STS `ExpiredTokenException` (web identity token expired).
    pub fn expired_web_identity_token(message: impl Into<String>) -> Self {
        Self::new("ExpiredTokenException", 400, message)
    }
    /// STS `IDPCommunicationError`.
    pub fn idp_communication(message: impl Into<String>) -> Self {
        Self::new("IDPCommunicationError", 400, message)
    }
    /// `InvalidAction`.
    pub fn invalid_action(action: &str) -> Self {
        Self::new("InvalidAction", 400, format!("could not find operation {action:?} for this version"))
    }
    /// IAM/STS internal failure (storage unavailable).
    pub fn service_failure() -> Self {
        Self::new("ServiceFailure", 500, "the request processing has failed because of an unknown error, exception or failure")
    }

    // === signed-request codes ===

    /// Unknown access key id.
    pub fn invalid_client_token_id() -> Self {
        Self::new("InvalidClientTokenId", 403, "the security token included in the request is invalid")
    }
    /// A session token that is expired.
    pub fn expired_session_token() -> Self {
        Self::new("ExpiredToken", 403, "the security token included in the request is expired")
    }
    /// A signed API called without a signature.
    pub fn missing_authentication() -> Self {
        Self::new("MissingAuthenticationToken", 403, "request is missing authentication token")
    }

    // === rest-json (EKS, EKS Auth) codes ===

    /// EKS `ResourceNotFoundException`.
    pub fn resource_not_found(message: impl Into<String>) -> Self {
        Self::new("ResourceNotFoundException", 404, message)
    }
    /// EKS `ResourceInUseException`.
    pub fn resource_in_use(message: impl Into<String>) -> Self {
        Self::new("ResourceInUseException", 409, message)
    }
    /// EKS `InvalidParameterException`.
    pub fn invalid_parameter(message: impl Into<String>) -> Self {
        Self::new("InvalidParameterException", 400, message)
    }
    /// EKS `InvalidRequestException`.
    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::new("InvalidRequestException", 400, message)
    }
    /// EKS `ResourceLimitExceededException`.
    pub fn resource_limit(message: impl Into<String>) -> Self {
        Self::new("ResourceLimitExceededException", 400, message)
    }
    /// EKS `ServerException`.
    pub fn server_exception() -> Self {
        Self::new("ServerException", 500, "an internal error occurred")
    }
    /// rest-json `AccessDeniedException`.
    pub fn access_denied_exception(message: impl Into<String>) -> Self {
        Self::new("AccessDeniedException", 403, message)
    }
}

impl From<podiam_store::StoreError> for AwsError {
    fn from(e: podiam_store::StoreError) -> Self {
        match e {
            podiam_store::StoreError::Conflict { kind, id } => {
                tracing::info!(%kind, %id, "concurrent modification");
                Self::new("ConcurrentModification", 409, "the request was rejected because multiple requests to change this object were submitted simultaneously")
            }
            podiam_store::StoreError::Backend(msg) => {
                tracing::error!(error = %msg, "store failure");
                Self::service_failure()
            }
        }
    }
}
