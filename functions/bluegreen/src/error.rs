//! The one error type of the step library.
//!
//! Every variant has a stable name ([`StepError::name`]) that becomes the Lambda error type, so
//! the state machine's `Retry` and `Catch` clauses can match on it. Renaming a variant's name is
//! a breaking change for `statemachine/bluegreen.asl.json`.

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

/// Result alias used throughout the library.
pub type StepResult<T> = Result<T, StepError>;

/// Everything that can go wrong in a step, named for the state machine.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// The input event or step input could not be understood. Nothing was changed.
    #[error("malformed input: {0}")]
    EventMalformed(String),

    /// A service config failed validation; every problem is listed.
    #[error("service config is invalid: {}", .0.join("; "))]
    ConfigInvalid(Vec<String>),

    /// No service config with this name exists under the configured prefix.
    #[error("unknown service {0:?}: no config under the config prefix")]
    ServiceNotFound(String),

    /// An AWS resource named by the config or the deployment record does not exist.
    #[error("{kind} {id:?} does not exist")]
    ResourceNotFound {
        /// What kind of resource (for example "ECS service").
        kind: &'static str,
        /// The identifier that was looked up.
        id: String,
    },

    /// No deployment record with this id exists.
    #[error("deployment {0:?} does not exist")]
    DeploymentNotFound(String),

    /// The deployment has already ended; steps refuse to act on it.
    #[error("deployment {id:?} has already ended ({status})")]
    DeploymentEnded {
        /// The deployment.
        id: String,
        /// Its terminal status.
        status: String,
    },

    /// The step was fenced out: an abort was requested while it ran, so it changed nothing
    /// more (the ending observes AWS after it and undoes what it did). Never retried.
    #[error("deployment {id:?} is being aborted; this step stops here: {why}")]
    Fenced {
        /// The deployment.
        id: String,
        /// Who asked for the abort, and when.
        why: String,
    },

    /// Production routing is not in a state bluegreen understands (for example both slots take
    /// traffic, or the listener forwards to a target group that belongs to neither slot).
    #[error("production routing is unexpected: {0}")]
    UnexpectedRouting(String),

    /// The per-service lock is held by a different deployment than the one asking.
    #[error("lock for service {service:?} is held by deployment {holder:?}")]
    LockLost {
        /// The service whose lock was checked.
        service: String,
        /// The deployment that holds it.
        holder: String,
    },

    /// The pre-prod slot did not reach a stable rollout.
    #[error("pre-prod launch failed: {0}")]
    LaunchFailed(String),

    /// Creating or waiting for a database clone failed.
    #[error("database sync failed: {0}")]
    SyncFailed(String),

    /// The migration task ended without success.
    #[error(
        "migration failed: {}, {reason} (logs: {})",
        exit_code.map_or_else(|| "no exit code".to_owned(), |c| format!("exit code {c}")),
        log_location.as_deref().unwrap_or("no log configuration")
    )]
    MigrationFailed {
        /// The essential container's exit code, if ECS reported one.
        exit_code: Option<i32>,
        /// The stop code and reason ECS gave.
        reason: String,
        /// CloudWatch Logs group/stream derived from the task definition's log configuration.
        log_location: Option<String>,
    },

    /// The migration task did not stop before its deadline; it has been stopped.
    #[error("migration did not finish before its deadline (task {task_arn} was stopped)")]
    MigrationTimedOut {
        /// The task that was stopped.
        task_arn: String,
    },

    /// Target health or a smoke check failed; the message carries the evidence.
    #[error("health check failed: {0}")]
    HealthCheckFailed(String),

    /// A person rejected the deployment.
    #[error("approval rejected: {0}")]
    ApprovalRejected(String),

    /// Nobody decided before the approval timeout.
    #[error("approval timed out")]
    ApprovalTimedOut,

    /// The deployment is not waiting for a decision: it was decided already, or has not asked
    /// for one.
    #[error("no decision possible: {0}")]
    NotAwaitingApproval(String),

    /// The caller is not a listed approver of the service.
    #[error("not an approver: {0}")]
    NotAnApprover(String),

    /// The service lists its operators (`operators`) and the caller is none of them.
    #[error("not an operator: {0}")]
    NotAnOperator(String),

    /// The decision was recorded, but Step Functions did not accept it (the execution timed
    /// out or ended); the deployment will end as the state machine decides.
    #[error("decision recorded but not delivered: {0}")]
    DecisionNotDelivered(String),

    /// A manual rollback is not possible now (no finished deployment, outside the keep-warm
    /// window, the old slot is not running, or a deployment is in progress).
    #[error("rollback refused: {0}")]
    RollbackRefused(String),

    /// `bluegreen unlock` is not safe now (the holder is still in progress, or nothing is
    /// locked).
    #[error("unlock refused: {0}")]
    UnlockRefused(String),

    /// `bluegreen abort` is not possible for this deployment (it has ended, is only queued, or
    /// traffic may already have moved — that is a rollback's job).
    #[error("abort refused: {0}")]
    AbortRefused(String),

    /// `bluegreen retry` is not possible for this deployment (it does not need attention, or
    /// no longer holds its service's lock).
    #[error("retry refused: {0}")]
    RetryRefused(String),

    /// A deployment a person asked for without a push (`bluegreen redeploy`) cannot start: the
    /// live image is not an ECR image pinned by digest, or not from the service's repository.
    /// Nothing was changed.
    #[error("release refused: {0}")]
    ReleaseRefused(String),

    /// A set-up command refused to act: `init --local` against something other than a
    /// loopback emulator, `adopt` of a service whose shape blue/green cannot take over, or
    /// `adopt --undo` after a deployment used what it created. Nothing was changed.
    #[error("set-up refused: {0}")]
    SetupRefused(String),

    /// Text a person sent (an approval or rejection reason) holds what no person means to write
    /// (a control character) or is too long; nothing was recorded ([`crate::text`]).
    #[error("input refused: {0}")]
    InputRefused(#[from] crate::text::TextRefused),

    /// The traffic switch could not be applied or verified.
    #[error("traffic switch failed: {0}")]
    SwitchFailed(String),

    /// One of the service's alarms (`bake.alarms`) is in ALARM just before the switch: no
    /// traffic moves to a service that is already alarming; the deployment aborts.
    #[error("alarm firing before the switch: {0}")]
    AlarmFiring(String),

    /// An alarm fired or live targets went unhealthy during the bake period.
    #[error("bake failed: {0}")]
    BakeFailed(String),

    /// Restoring the previous routing failed; a person must look.
    #[error("rollback failed: {0}")]
    RollbackFailed(String),

    /// A slot that is about to receive (or receives) production traffic would use a database
    /// clone: the guard refuses before any traffic moves to it.
    #[error("production must never run on a clone: {0}")]
    ProductionOnClone(String),

    /// Maintenance mode could not be switched on or off on the production listener.
    #[error("maintenance mode failed: {0}")]
    MaintenanceFailed(String),

    /// A deployment record or lock item in DynamoDB cannot be read as bluegreen's record type
    /// (edited by hand, or written by an incompatible version). Not the caller's input.
    #[error("record unreadable: {0}")]
    RecordInvalid(String),

    /// A wait for an ECS event (`crate::wakes`) was not begun: the event came first. The
    /// definition's catch runs the check at once (the await's only way to end its own wait
    /// without holding the task-token permission).
    #[error("woken before the wait began: {0}")]
    Woken(String),

    /// One of bluegreen's own invariants is broken (a field an earlier step always writes is
    /// missing, a request could not be built). A bug or a hand edit; not the caller's input.
    #[error("internal invariant broken: {0}")]
    Internal(String),

    /// AWS throttled the request; safe to retry with backoff.
    #[error("throttled by {operation}: {message}")]
    Throttled {
        /// The API operation, for example `ecs:UpdateService`.
        operation: &'static str,
        /// AWS's message.
        message: String,
    },

    /// A transient AWS failure (5xx, timeout, connection reset); safe to retry.
    #[error("transient AWS failure in {operation}: {message}")]
    AwsTransient {
        /// The API operation.
        operation: &'static str,
        /// What happened.
        message: String,
    },

    /// A non-retryable AWS error (access denied, validation, …).
    #[error("AWS error in {operation}: {code}: {message}")]
    Aws {
        /// The API operation.
        operation: &'static str,
        /// AWS's error code.
        code: String,
        /// AWS's message.
        message: String,
    },
}

impl StepError {
    /// The state machine's contract: every error name a step can raise, which the
    /// definitions' `Retry`/`Catch` may match (a test holds that they match nothing else).
    /// With [`StepError::OPERATOR_ONLY`], every variant's [`StepError::name`], once.
    pub const CONTRACT: &[&str] = &[
        "EventMalformed",
        "ConfigInvalid",
        "ServiceNotFound",
        "ResourceNotFound",
        "DeploymentNotFound",
        "DeploymentEnded",
        "Fenced",
        "UnexpectedRouting",
        "LockLost",
        "LaunchFailed",
        "SyncFailed",
        "MigrationFailed",
        "MigrationTimedOut",
        "HealthCheckFailed",
        "ApprovalRejected",
        "ApprovalTimedOut",
        "SwitchFailed",
        "AlarmFiring",
        "BakeFailed",
        "RollbackFailed",
        "ProductionOnClone",
        "MaintenanceFailed",
        "RecordInvalid",
        "Internal",
        "Woken",
        "Throttled",
        "AwsTransient",
        "AwsError",
    ];

    /// Names only operator commands (CLI, console, operator API) raise, as refusals of a
    /// person's request. They are not part of the state machine's contract: no step raises
    /// them and no `Retry`/`Catch` names them (a test holds both).
    pub const OPERATOR_ONLY: &[&str] = &[
        "NotAwaitingApproval",
        "NotAnApprover",
        "NotAnOperator",
        "DecisionNotDelivered",
        "RollbackRefused",
        "UnlockRefused",
        "AbortRefused",
        "RetryRefused",
        "SetupRefused",
        "InputRefused",
    ];

    /// The stable error name used as the Lambda error type and in the state machine.
    pub fn name(&self) -> &'static str {
        match self {
            StepError::EventMalformed(_) => "EventMalformed",
            StepError::ConfigInvalid(_) => "ConfigInvalid",
            StepError::ServiceNotFound(_) => "ServiceNotFound",
            StepError::ResourceNotFound { .. } => "ResourceNotFound",
            StepError::DeploymentNotFound(_) => "DeploymentNotFound",
            StepError::DeploymentEnded { .. } => "DeploymentEnded",
            StepError::Fenced { .. } => "Fenced",
            StepError::UnexpectedRouting(_) => "UnexpectedRouting",
            StepError::LockLost { .. } => "LockLost",
            StepError::LaunchFailed(_) => "LaunchFailed",
            StepError::SyncFailed(_) => "SyncFailed",
            StepError::MigrationFailed { .. } => "MigrationFailed",
            StepError::MigrationTimedOut { .. } => "MigrationTimedOut",
            StepError::HealthCheckFailed(_) => "HealthCheckFailed",
            StepError::ApprovalRejected(_) => "ApprovalRejected",
            StepError::ApprovalTimedOut => "ApprovalTimedOut",
            StepError::NotAwaitingApproval(_) => "NotAwaitingApproval",
            StepError::NotAnApprover(_) => "NotAnApprover",
            StepError::NotAnOperator(_) => "NotAnOperator",
            StepError::DecisionNotDelivered(_) => "DecisionNotDelivered",
            StepError::RollbackRefused(_) => "RollbackRefused",
            StepError::UnlockRefused(_) => "UnlockRefused",
            StepError::AbortRefused(_) => "AbortRefused",
            StepError::RetryRefused(_) => "RetryRefused",
            StepError::ReleaseRefused(_) => "ReleaseRefused",
            StepError::SetupRefused(_) => "SetupRefused",
            StepError::InputRefused(_) => "InputRefused",
            StepError::SwitchFailed(_) => "SwitchFailed",
            StepError::AlarmFiring(_) => "AlarmFiring",
            StepError::BakeFailed(_) => "BakeFailed",
            StepError::RollbackFailed(_) => "RollbackFailed",
            StepError::ProductionOnClone(_) => "ProductionOnClone",
            StepError::MaintenanceFailed(_) => "MaintenanceFailed",
            StepError::RecordInvalid(_) => "RecordInvalid",
            StepError::Internal(_) => "Internal",
            StepError::Woken(_) => "Woken",
            StepError::Throttled { .. } => "Throttled",
            StepError::AwsTransient { .. } => "AwsTransient",
            StepError::Aws { .. } => "AwsError",
        }
    }

    /// Whether Step Functions should retry the step on this error.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            StepError::Throttled { .. } | StepError::AwsTransient { .. }
        )
    }

    /// Classifies an SDK error from `operation` (for example `"ecs:UpdateService"`).
    ///
    /// Throttling codes become [`StepError::Throttled`]; 5xx responses, timeouts and dispatch
    /// failures become [`StepError::AwsTransient`]; everything else is [`StepError::Aws`] with
    /// AWS's own code, so no cause is lost.
    pub fn from_sdk<E>(operation: &'static str, err: SdkError<E, HttpResponse>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let code = err.code().unwrap_or_default().to_owned();
        let message = err
            .message()
            .map(str::to_owned)
            .unwrap_or_else(|| error_chain(&err));
        if THROTTLING_CODES.contains(&code.as_str()) {
            return StepError::Throttled { operation, message };
        }
        let transient = match &err {
            SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => true,
            SdkError::ResponseError(_) => true,
            SdkError::ServiceError(service) => service.raw().status().is_server_error(),
            _ => false,
        };
        if transient {
            StepError::AwsTransient { operation, message }
        } else {
            StepError::Aws {
                operation,
                code: if code.is_empty() {
                    "Unknown".into()
                } else {
                    code
                },
                message,
            }
        }
    }

    /// The AWS error code, when this is a non-retryable AWS error.
    pub fn aws_code(&self) -> Option<&str> {
        match self {
            StepError::Aws { code, .. } => Some(code),
            _ => None,
        }
    }
}

/// An error and its sources as people read them: `dispatch failure: io error: … Connection
/// refused (os error 111)`, each cause once, without the Debug dump the SDK's own context
/// display appends.
pub(crate) fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut current = Some(err);
    while let Some(e) = current {
        let text = e.to_string();
        // A wrapper often repeats its source's text; keep each cause once.
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        current = e.source();
    }
    parts.join(": ")
}

/// Names the table when DynamoDB says a table does not exist (its own message, "Requested
/// resource not found", does not): [`StepError::ResourceNotFound`] for `table`.
pub(crate) fn in_table(err: StepError, table: &str) -> StepError {
    match err.aws_code() {
        Some("ResourceNotFoundException") => StepError::ResourceNotFound {
            kind: "DynamoDB table",
            id: table.to_owned(),
        },
        _ => err,
    }
}

/// The outcome of a DynamoDB conditional write.
pub(crate) enum Conditional<T> {
    /// The condition held and the write happened.
    Written(T),
    /// The condition did not hold; nothing was written.
    ConditionFailed,
}

/// Separates a failed condition (an expected answer) from real errors.
pub(crate) fn conditional<T, E>(
    operation: &'static str,
    result: Result<T, SdkError<E, HttpResponse>>,
) -> StepResult<Conditional<T>>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match result {
        Ok(value) => Ok(Conditional::Written(value)),
        Err(e) if e.code() == Some("ConditionalCheckFailedException") => {
            Ok(Conditional::ConditionFailed)
        }
        Err(e) => Err(StepError::from_sdk(operation, e)),
    }
}

/// Error codes AWS services use for throttling (from the SDKs' own retry classifiers).
const THROTTLING_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "TransactionInProgressException",
    "RequestLimitExceeded",
    "BandwidthLimitExceeded",
    "RequestThrottled",
    "SlowDown",
    "PriorRequestNotComplete",
    "EC2ThrottledException",
];

impl From<StepError> for lambda_runtime::Diagnostic {
    fn from(err: StepError) -> Self {
        lambda_runtime::Diagnostic {
            error_type: err.name().to_owned(),
            error_message: err.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_maps_to_its_stable_lambda_error_type() {
        let diagnostic: lambda_runtime::Diagnostic = StepError::MigrationFailed {
            exit_code: Some(3),
            reason: "EssentialContainerExited".into(),
            log_location: Some("/ecs/app/migrate/abc".into()),
        }
        .into();
        assert_eq!(diagnostic.error_type, "MigrationFailed");
        assert!(
            diagnostic.error_message.contains("exit code 3,"),
            "{}",
            diagnostic.error_message
        );
        assert!(diagnostic.error_message.contains("/ecs/app/migrate/abc"));
    }

    #[test]
    fn the_contract_and_the_operator_refusals_name_each_variant_once() {
        let text = String::new;
        let every = [
            StepError::EventMalformed(text()),
            StepError::ConfigInvalid(vec![]),
            StepError::ServiceNotFound(text()),
            StepError::ResourceNotFound {
                kind: "k",
                id: text(),
            },
            StepError::DeploymentNotFound(text()),
            StepError::Fenced {
                id: text(),
                why: text(),
            },
            StepError::DeploymentEnded {
                id: text(),
                status: text(),
            },
            StepError::UnexpectedRouting(text()),
            StepError::LockLost {
                service: text(),
                holder: text(),
            },
            StepError::LaunchFailed(text()),
            StepError::SyncFailed(text()),
            StepError::MigrationFailed {
                exit_code: None,
                reason: text(),
                log_location: None,
            },
            StepError::MigrationTimedOut { task_arn: text() },
            StepError::HealthCheckFailed(text()),
            StepError::ApprovalRejected(text()),
            StepError::ApprovalTimedOut,
            StepError::NotAwaitingApproval(text()),
            StepError::NotAnApprover(text()),
            StepError::NotAnOperator(text()),
            StepError::DecisionNotDelivered(text()),
            StepError::RollbackRefused(text()),
            StepError::UnlockRefused(text()),
            StepError::AbortRefused(text()),
            StepError::RetryRefused(text()),
            StepError::SetupRefused(text()),
            StepError::InputRefused(crate::text::TextRefused::TooLong {
                field: text(),
                chars: 2,
                limit: 1,
            }),
            StepError::SwitchFailed(text()),
            StepError::AlarmFiring(text()),
            StepError::BakeFailed(text()),
            StepError::RollbackFailed(text()),
            StepError::ProductionOnClone(text()),
            StepError::MaintenanceFailed(text()),
            StepError::RecordInvalid(text()),
            StepError::Internal(text()),
            StepError::Woken(text()),
            StepError::Throttled {
                operation: "o",
                message: text(),
            },
            StepError::AwsTransient {
                operation: "o",
                message: text(),
            },
            StepError::Aws {
                operation: "o",
                code: text(),
                message: text(),
            },
        ];
        let mut names: Vec<&str> = every.iter().map(StepError::name).collect();
        let mut listed: Vec<&str> = StepError::CONTRACT
            .iter()
            .chain(StepError::OPERATOR_ONLY)
            .copied()
            .collect();
        names.sort_unstable();
        listed.sort_unstable();
        assert_eq!(
            names, listed,
            "each variant in exactly one list, nothing else"
        );
    }

    #[test]
    fn a_connection_error_reads_as_its_causes_without_a_debug_dump() {
        #[derive(Debug, thiserror::Error)]
        #[error("io error")]
        struct Outer(#[source] std::io::Error);
        let refused =
            std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "Connection refused");
        let text = error_chain(&Outer(refused));
        assert_eq!(text, "io error: Connection refused");
    }

    #[test]
    fn only_throttling_and_transient_errors_are_retryable() {
        assert!(
            StepError::Throttled {
                operation: "ecs:UpdateService",
                message: "slow down".into()
            }
            .is_retryable()
        );
        assert!(!StepError::HealthCheckFailed("x".into()).is_retryable());
        assert!(!StepError::ApprovalRejected("no".into()).is_retryable());
    }
}
