//! Errors raised while parsing and validating a policy document.
//!
//! Every variant renders a precise, lowercase message. The server maps all of them to the
//! IAM error code `MalformedPolicyDocument`, except [`PolicyError::TooLarge`], which IAM reports
//! as `LimitExceeded` (see [`PolicyError::aws_error_code`]).

/// Why a policy document was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// The text is not valid JSON (the detail comes from the JSON parser).
    #[error("syntax errors in policy: {0}")]
    Syntax(String),
    /// A JSON object repeats a key. AWS rejects such documents; a plain JSON parser would
    /// silently keep the last occurrence.
    #[error("duplicate key \"{key}\" in {location}")]
    DuplicateKey {
        /// The repeated key.
        key: String,
        /// Where the object is (`policy`, `statement 2`, `Condition of statement 0`, ...).
        location: String,
    },
    /// The document is larger than the configured limit. Counted as AWS does: characters,
    /// excluding whitespace outside string literals.
    #[error(
        "cannot exceed quota for policy size: {max} (document has {actual} characters without whitespace)"
    )]
    TooLarge {
        /// Size of the submitted document.
        actual: usize,
        /// The limit in force.
        max: usize,
    },
    /// `Version` is neither `2012-10-17` nor `2008-10-17`.
    #[error(
        "the policy failed legacy parsing: unsupported version \"{0}\" (expected 2012-10-17 or 2008-10-17)"
    )]
    InvalidVersion(String),
    /// An element that the policy grammar does not define.
    #[error("unknown element \"{element}\" in {location}")]
    UnknownElement {
        /// The unexpected key.
        element: String,
        /// Where it was found.
        location: String,
    },
    /// An element has the wrong JSON type.
    #[error("{element} must be {expected}")]
    WrongType {
        /// Which element (with its location).
        element: String,
        /// What it must be.
        expected: &'static str,
    },
    /// The document has no `Statement` element.
    #[error("missing required field Statement")]
    MissingStatement,
    /// `Statement` is an empty array.
    #[error("policy must contain at least one statement")]
    EmptyStatement,
    /// A statement has no `Effect`.
    #[error("missing required field Effect in statement {0}")]
    MissingEffect(usize),
    /// A statement has neither `Action` nor `NotAction`, or an empty list.
    #[error("policy statement must contain actions (statement {0})")]
    MissingActions(usize),
    /// A statement has neither `Resource` nor `NotResource`, or an empty list.
    #[error("policy statement must contain resources (statement {0})")]
    MissingResources(usize),
    /// A resource-based or trust policy statement has neither `Principal` nor `NotPrincipal`.
    #[error("missing required field Principal (statement {0})")]
    MissingPrincipal(usize),
    /// Two mutually exclusive elements (`Action`/`NotAction`, ...) appear together.
    #[error("statement {statement} cannot contain both {first} and {second}")]
    Conflicting {
        /// Statement index.
        statement: usize,
        /// First element.
        first: &'static str,
        /// Second element.
        second: &'static str,
    },
    /// `Effect` is not exactly `Allow` or `Deny`.
    #[error("invalid effect: \"{0}\" (must be Allow or Deny)")]
    InvalidEffect(String),
    /// A malformed action string.
    #[error("invalid action \"{action}\": {reason}")]
    InvalidAction {
        /// The action as written.
        action: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A resource that is neither `*` nor ARN-shaped.
    #[error("resource {0} must be in arn format or \"*\"")]
    InvalidResource(String),
    /// A principal value that is not valid for its type.
    #[error("invalid principal in policy: \"{kind}\":\"{value}\"")]
    InvalidPrincipal {
        /// Principal type (`AWS`, `Federated`, `Service`, `CanonicalUser`, or the unknown key).
        kind: String,
        /// The offending value.
        value: String,
    },
    /// `Principal`/`NotPrincipal` in an identity, session or boundary policy.
    #[error("policy document should not specify a principal")]
    PrincipalNotAllowed,
    /// `Resource`/`NotResource` in a role trust policy.
    #[error("has prohibited field {0}")]
    ResourceNotAllowed(&'static str),
    /// `NotPrincipal` in a role trust policy: IAM rejects it there (the IAM User Guide:
    /// "You cannot use the `NotPrincipal` element in an IAM identity-based policy nor in an IAM
    /// role trust policy").
    #[error("has prohibited field NotPrincipal")]
    NotPrincipalNotAllowed,
    /// An unknown condition operator.
    #[error("invalid condition operator: \"{0}\"")]
    InvalidConditionOperator(String),
    /// A condition key without a vendor prefix (`aws:`, `sts:`, `oidc.example.com/id/X:`, ...).
    #[error(
        "invalid condition key \"{0}\": actions/conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc."
    )]
    InvalidConditionKey(String),
    /// A condition value that cannot be used with its operator.
    #[error(
        "invalid value \"{value}\" for condition operator {operator} on key \"{key}\": {reason}"
    )]
    InvalidConditionValue {
        /// Operator name as written.
        operator: String,
        /// Condition key as written.
        key: String,
        /// The value.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A malformed `${...}` policy variable.
    #[error("invalid policy variable in \"{value}\": {reason}")]
    InvalidVariable {
        /// The string that contains the variable.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Two statements share a non-empty `Sid`.
    #[error("statement ids (sid) in a single policy must be unique: \"{0}\"")]
    DuplicateSid(String),
    /// A `Sid` with characters other than `[0-9A-Za-z]` in an IAM policy.
    #[error("statement ids (sid) must be alpha-numeric: \"{0}\" does not satisfy [0-9A-Za-z]*")]
    InvalidSid(String),
}

impl PolicyError {
    /// The AWS error code the IAM API returns for this error: `LimitExceeded` for an
    /// oversized document, `MalformedPolicyDocument` for everything else.
    #[must_use]
    pub fn aws_error_code(&self) -> &'static str {
        match self {
            Self::TooLarge { .. } => "LimitExceeded",
            _ => "MalformedPolicyDocument",
        }
    }
}
