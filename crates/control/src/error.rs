//! The one error type of the services: an [`ErrorCode`] and a message.
//!
//! Services return [`AwsError`] and know nothing of the wire. Each protocol renders it once: the
//! query protocol (IAM, STS), EKS's rest-json and EKS Auth's rest-json read the error's name and
//! HTTP status from the [`ErrorCode::wire`] table, so a code is compared as an enum variant
//! everywhere and renamed only there (`AccessDenied` is `AccessDeniedException` to EKS,
//! `InvalidClientTokenId` is `UnrecognizedClientException` to both rest-json services).
//! Internal detail (database errors, fetch failures) is logged where it happens and never
//! reaches a client.

use std::fmt;

/// A wire protocol, each with its own names for some errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// AWS query protocol with XML errors (IAM, STS): `<ErrorResponse><Error><Code>`.
    Query,
    /// EKS rest-json: `x-amzn-ErrorType` and `{"message": ..}`, names of the EKS model.
    Eks,
    /// EKS Auth rest-json: names and statuses of the EKS Auth model (and the node agent's
    /// error line in direct mode, which relays them).
    EksAuth,
    /// CloudTrail's AWS JSON 1.1 (`{"__type": ...}`): the rest-json services' names, and 400
    /// for every fault of the caller, as JSON 1.1 services answer.
    CloudTrail,
}

impl Protocol {
    /// The protocols with a column of their own in the table (CloudTrail's follows EKS's).
    pub const ALL: [Self; 3] = [Self::Query, Self::Eks, Self::EksAuth];
}

/// How one protocol spells an error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Wire {
    /// The error code on the wire (`<Code>`, `x-amzn-ErrorType`).
    pub name: &'static str,
    /// HTTP status.
    pub status: u16,
}

impl Wire {
    /// `true` for errors the caller caused (XML `<Type>Sender</Type>`, agent `fault: client`).
    pub fn is_sender(self) -> bool {
        self.status < 500
    }
}

/// The table: one row per code, `name status` for the query protocol, EKS and EKS Auth.
/// Statuses are the models' (botocore `service-2.json`) where a model defines the name; the
/// signed-request errors of the rest-json services are the names AWS's front door answers with
/// (`UnrecognizedClientException`, `InvalidSignatureException`, ...), all 403 but where the
/// EKS Auth model defines the name with another status.
macro_rules! error_codes {
    ($(
        $(#[$doc:meta])*
        $variant:ident => query($qn:literal, $qs:literal), eks($en:literal, $es:literal), eks_auth($an:literal, $as:literal);
    )*) => {
        /// An AWS error, independent of the protocol that reports it.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $( $(#[$doc])* $variant, )*
        }

        impl ErrorCode {
            /// Every code, in table order.
            pub const ALL: &'static [Self] = &[ $( Self::$variant, )* ];

            /// How `protocol` names this error and with which status.
            pub fn wire(self, protocol: Protocol) -> Wire {
                match (self, protocol) {
                    $(
                        (Self::$variant, Protocol::Query) => Wire { name: $qn, status: $qs },
                        (Self::$variant, Protocol::Eks) => Wire { name: $en, status: $es },
                        (Self::$variant, Protocol::EksAuth) => Wire { name: $an, status: $as },
                        (Self::$variant, Protocol::CloudTrail) => Wire {
                            name: $en,
                            status: if $es < 500 { 400 } else { $es },
                        },
                    )*
                }
            }
        }
    };
}

error_codes! {
    // --- signed requests (every protocol) ---
    /// The access key id (or session token) is unknown.
    InvalidClientTokenId => query("InvalidClientTokenId", 403), eks("UnrecognizedClientException", 403), eks_auth("UnrecognizedClientException", 403);
    /// The signature does not match, or is out of its time window or scope.
    SignatureDoesNotMatch => query("SignatureDoesNotMatch", 403), eks("InvalidSignatureException", 403), eks_auth("InvalidSignatureException", 403);
    /// The `Authorization` header or presigned query is malformed.
    IncompleteSignature => query("IncompleteSignature", 400), eks("IncompleteSignatureException", 400), eks_auth("IncompleteSignatureException", 400);
    /// A signed API called without a signature.
    MissingAuthenticationToken => query("MissingAuthenticationToken", 403), eks("MissingAuthenticationTokenException", 403), eks_auth("MissingAuthenticationTokenException", 403);
    /// The session token that signed the request is expired (EKS Auth's model names it, 400).
    ExpiredToken => query("ExpiredToken", 403), eks("ExpiredTokenException", 403), eks_auth("ExpiredTokenException", 400);
    /// The caller may not do this (policy evaluation, expired presigned request).
    AccessDenied => query("AccessDenied", 403), eks("AccessDeniedException", 403), eks_auth("AccessDeniedException", 400);

    // --- request shape ---
    /// A parameter failed a modeled constraint.
    ValidationError => query("ValidationError", 400), eks("InvalidParameterException", 400), eks_auth("InvalidParameterException", 400);
    /// A required parameter is absent.
    MissingParameter => query("MissingParameter", 400), eks("InvalidParameterException", 400), eks_auth("InvalidParameterException", 400);
    /// A query request without `Action`.
    MissingAction => query("MissingAction", 400), eks("MissingAction", 400), eks_auth("MissingAction", 400);
    /// An action (or API version) this service does not have.
    InvalidAction => query("InvalidAction", 400), eks("InvalidAction", 400), eks_auth("InvalidAction", 400);
    /// STS `InvalidParameterValue` (session tags, session policy ARNs).
    InvalidParameterValue => query("InvalidParameterValue", 400), eks("InvalidParameterException", 400), eks_auth("InvalidParameterException", 400);
    /// No operation at this path.
    UnknownOperation => query("UnknownOperationException", 404), eks("UnknownOperationException", 404), eks_auth("UnknownOperationException", 404);
    /// The request body did not arrive in time.
    RequestTimeout => query("RequestTimeout", 408), eks("RequestTimeoutException", 408), eks_auth("RequestTimeoutException", 408);
    /// The request body is larger than any request of these APIs.
    RequestEntityTooLarge => query("RequestEntityTooLarge", 413), eks("RequestEntityTooLargeException", 413), eks_auth("RequestEntityTooLargeException", 413);

    // --- IAM ---
    /// IAM `InvalidInput`.
    InvalidInput => query("InvalidInput", 400), eks("InvalidParameterException", 400), eks_auth("InvalidParameterException", 400);
    /// IAM `NoSuchEntity`.
    NoSuchEntity => query("NoSuchEntity", 404), eks("ResourceNotFoundException", 404), eks_auth("ResourceNotFoundException", 404);
    /// IAM `EntityAlreadyExists`.
    EntityAlreadyExists => query("EntityAlreadyExists", 409), eks("ResourceInUseException", 409), eks_auth("InvalidRequestException", 400);
    /// IAM `LimitExceeded`.
    LimitExceeded => query("LimitExceeded", 409), eks("ResourceLimitExceededException", 400), eks_auth("InvalidRequestException", 400);
    /// IAM `DeleteConflict`.
    DeleteConflict => query("DeleteConflict", 409), eks("ResourceInUseException", 409), eks_auth("InvalidRequestException", 400);
    /// A write raced another one to the same object.
    ConcurrentModification => query("ConcurrentModification", 409), eks("ResourceInUseException", 409), eks_auth("ThrottlingException", 429);
    /// A policy document that does not parse or validate.
    MalformedPolicyDocument => query("MalformedPolicyDocument", 400), eks("InvalidParameterException", 400), eks_auth("InvalidRequestException", 400);

    // --- STS ---
    /// STS `InvalidIdentityToken`: a web identity token that fails verification.
    InvalidIdentityToken => query("InvalidIdentityToken", 400), eks("InvalidParameterException", 400), eks_auth("InvalidTokenException", 400);
    /// An identity token (web identity, projected service account token) that has expired.
    ExpiredIdentityToken => query("ExpiredTokenException", 400), eks("InvalidParameterException", 400), eks_auth("ExpiredTokenException", 400);
    /// STS `IDPCommunicationError`: the issuer's keys could not be fetched.
    IdpCommunicationError => query("IDPCommunicationError", 400), eks("ServiceUnavailableException", 503), eks_auth("ServiceUnavailableException", 503);
    /// STS `PackedPolicyTooLarge`.
    PackedPolicyTooLarge => query("PackedPolicyTooLarge", 400), eks("InvalidParameterException", 400), eks_auth("InvalidRequestException", 400);

    // --- EKS and EKS Auth ---
    /// EKS `ResourceNotFoundException` (EKS Auth: no association for the token's pod).
    ResourceNotFound => query("NoSuchEntity", 404), eks("ResourceNotFoundException", 404), eks_auth("ResourceNotFoundException", 404);
    /// EKS `ResourceInUseException`.
    ResourceInUse => query("EntityAlreadyExists", 409), eks("ResourceInUseException", 409), eks_auth("InvalidRequestException", 400);
    /// EKS `InvalidParameterException`.
    InvalidParameter => query("ValidationError", 400), eks("InvalidParameterException", 400), eks_auth("InvalidParameterException", 400);
    /// EKS `InvalidRequestException`.
    InvalidRequest => query("ValidationError", 400), eks("InvalidRequestException", 400), eks_auth("InvalidRequestException", 400);
    /// EKS `ResourceLimitExceededException`.
    ResourceLimitExceeded => query("LimitExceeded", 409), eks("ResourceLimitExceededException", 400), eks_auth("InvalidRequestException", 400);
    /// EKS `BadRequestException` (tagging).
    BadRequest => query("ValidationError", 400), eks("BadRequestException", 400), eks_auth("InvalidRequestException", 400);
    /// EKS `NotFoundException` (tagging: no resource with that ARN).
    NotFound => query("NoSuchEntity", 404), eks("NotFoundException", 404), eks_auth("ResourceNotFoundException", 404);
    /// EKS Auth `InvalidTokenException`: a service account token that fails verification.
    InvalidToken => query("InvalidIdentityToken", 400), eks("InvalidParameterException", 400), eks_auth("InvalidTokenException", 400);

    // --- CloudTrail (LookupEvents; rendered only by its JSON 1.1 protocol, which reads the EKS
    // column's name) ---
    /// A lookup attribute that is not valid (or more than one).
    InvalidLookupAttributes => query("InvalidLookupAttributesException", 400), eks("InvalidLookupAttributesException", 400), eks_auth("InvalidLookupAttributesException", 400);
    /// A start time after the end time, or a time outside the possible range.
    InvalidTimeRange => query("InvalidTimeRangeException", 400), eks("InvalidTimeRangeException", 400), eks_auth("InvalidTimeRangeException", 400);
    /// MaxResults outside 1..=50.
    InvalidMaxResults => query("InvalidMaxResultsException", 400), eks("InvalidMaxResultsException", 400), eks_auth("InvalidMaxResultsException", 400);
    /// A NextToken that is not one podiam gave for this query.
    InvalidNextToken => query("InvalidNextTokenException", 400), eks("InvalidNextTokenException", 400), eks_auth("InvalidNextTokenException", 400);
    /// A JSON body that does not decode (a member of the wrong type).
    Serialization => query("SerializationException", 400), eks("SerializationException", 400), eks_auth("SerializationException", 400);
    /// An event category other than `insight`.
    InvalidEventCategory => query("InvalidEventCategoryException", 400), eks("InvalidEventCategoryException", 400), eks_auth("InvalidEventCategoryException", 400);

    // --- failures on our side ---
    /// An internal failure (storage unavailable, unreadable state).
    InternalFailure => query("ServiceFailure", 500), eks("ServerException", 500), eks_auth("InternalServerException", 500);
    /// This replica cannot serve now (its view of the store is too old, an issuer is
    /// unreachable); SDKs retry.
    ServiceUnavailable => query("ServiceUnavailable", 503), eks("ServiceUnavailableException", 503), eks_auth("ServiceUnavailableException", 503);
}

impl fmt::Display for ErrorCode {
    /// The query protocol's name, the most familiar one.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.wire(Protocol::Query).name)
    }
}

/// An error as AWS reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AwsError {
    /// What went wrong; each protocol names it in its own words.
    pub code: ErrorCode,
    /// Human-readable message, in AWS's wording where AWS has one.
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
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// How `protocol` names this error and with which status.
    pub fn wire(&self, protocol: Protocol) -> Wire {
        self.code.wire(protocol)
    }

    // === query-protocol (IAM/STS) codes ===

    /// Request parameter failed a modeled constraint.
    pub fn validation(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::ValidationError, message)
    }
    /// A required parameter is absent.
    pub fn missing_parameter(name: &str) -> Self {
        Self::new(
            ErrorCode::MissingParameter,
            format!("The request must contain the parameter {name}."),
        )
    }
    /// IAM `InvalidInput`.
    pub fn invalid_input(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidInput, message)
    }
    /// IAM `NoSuchEntity`.
    pub fn no_such_entity(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::NoSuchEntity, message)
    }
    /// IAM `EntityAlreadyExists`.
    pub fn already_exists(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::EntityAlreadyExists, message)
    }
    /// IAM `LimitExceeded`.
    pub fn limit_exceeded(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::LimitExceeded, message)
    }
    /// IAM `DeleteConflict`.
    pub fn delete_conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::DeleteConflict, message)
    }
    /// `MalformedPolicyDocument`.
    pub fn malformed_policy(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::MalformedPolicyDocument, message)
    }
    /// `AccessDenied` (`AccessDeniedException` to the rest-json services).
    pub fn access_denied(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::AccessDenied, message)
    }
    /// STS `InvalidIdentityToken`.
    pub fn invalid_identity_token(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidIdentityToken, message)
    }
    /// STS `ExpiredTokenException` (web identity token expired).
    pub fn expired_web_identity_token(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::ExpiredIdentityToken, message)
    }
    /// STS `IDPCommunicationError`.
    pub fn idp_communication(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::IdpCommunicationError, message)
    }
    /// `InvalidAction`.
    pub fn invalid_action(action: &str) -> Self {
        Self::new(
            ErrorCode::InvalidAction,
            format!("Could not find operation {action} for this version."),
        )
    }
    /// IAM/STS internal failure (storage unavailable).
    pub fn service_failure() -> Self {
        Self::new(
            ErrorCode::InternalFailure,
            "The request processing has failed because of an unknown error, exception or failure.",
        )
    }
    /// A replica that cannot serve now; SDKs retry.
    pub fn service_unavailable(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::ServiceUnavailable, message)
    }

    // === signed-request codes ===

    /// Unknown access key id.
    pub fn invalid_client_token_id() -> Self {
        Self::new(
            ErrorCode::InvalidClientTokenId,
            "The security token included in the request is invalid.",
        )
    }
    /// A session token that is expired.
    pub fn expired_session_token() -> Self {
        Self::new(
            ErrorCode::ExpiredToken,
            "The security token included in the request is expired",
        )
    }
    /// A signed API called without a signature.
    pub fn missing_authentication() -> Self {
        Self::new(
            ErrorCode::MissingAuthenticationToken,
            "Request is missing Authentication Token",
        )
    }

    // === rest-json (EKS, EKS Auth) codes ===

    /// EKS `ResourceNotFoundException`.
    pub fn resource_not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::ResourceNotFound, message)
    }
    /// EKS `ResourceInUseException`.
    pub fn resource_in_use(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::ResourceInUse, message)
    }
    /// EKS `InvalidParameterException`.
    pub fn invalid_parameter(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidParameter, message)
    }
    /// EKS `InvalidRequestException`.
    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidRequest, message)
    }
    /// EKS `ResourceLimitExceededException`.
    pub fn resource_limit(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::ResourceLimitExceeded, message)
    }
    /// EKS `BadRequestException`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::BadRequest, message)
    }
    /// EKS `NotFoundException`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotFound, message)
    }
    /// EKS Auth `InvalidTokenException`.
    pub fn invalid_token(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidToken, message)
    }
    /// EKS `ServerException` (the rest-json name of an internal failure).
    pub fn server_exception() -> Self {
        Self::new(ErrorCode::InternalFailure, "An internal error occurred.")
    }
}

impl From<podiam_store::StoreError> for AwsError {
    fn from(e: podiam_store::StoreError) -> Self {
        match e {
            podiam_store::StoreError::Conflict { kind, id } => {
                tracing::info!(%kind, %id, "concurrent modification");
                Self::new(
                    ErrorCode::ConcurrentModification,
                    "The request was rejected because multiple requests to change this object were submitted simultaneously. Wait a few minutes and submit your request again.",
                )
            }
            e @ podiam_store::StoreError::Backend(_) => {
                tracing::error!(error = %ErrorChain(&e), "store failure");
                Self::service_failure()
            }
        }
    }
}

/// An error and its sources, `: `-separated, for the log.
pub struct ErrorChain<'a>(pub &'a (dyn std::error::Error + 'static));

impl fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut cause = self.0.source();
        while let Some(c) = cause {
            write!(f, ": {c}")?;
            cause = c.source();
        }
        Ok(())
    }
}
