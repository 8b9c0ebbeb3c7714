//! The step registry: every Lambda step of bluegreen, named once.
//!
//! Everything that needs to know the steps reads this table instead of spelling their names
//! again: the Lambda binary (which step to serve, from `BLUEGREEN_STEP`), the generator of
//! `statemachine/deployment.asl.json` (state names, function placeholders, the poll loop,
//! where failures go), the local runner (which step a `${…FunctionArn}` resource is), the
//! validator, the CLI's timeline and the console's pages (labels). Tests check the SAM
//! template against it, so a step missing from the stack fails there.

use std::future::Future;
use std::pin::Pin;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::context::Context;
use crate::error::{StepError, StepResult};
use crate::lambda::StartOrCheck;

/// How a step appears in the deployment definition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// `prepare`: one call at the start of the deployment (`Resume`), which also serves the
    /// intake's fan-out.
    Resume,
    /// Start once, then wait and check until done or past its deadline: the poll loop (see
    /// `crate::poll`).
    Polling,
    /// The approval wait (`.waitForTaskToken`) and the settlement of its timeout.
    Approval,
    /// An ending (finish, abort, rollback): may ask to be called again after a wait, may hand
    /// the service over to the next queued deployment.
    Ending,
    /// The reconciler: invoked when an ending fails, when a hand-over cannot start the next
    /// execution, and on a schedule.
    Reconciler,
    /// Not part of the deployment definition: its own trigger (the scheduled teardown, the
    /// config indexer on SSM change events).
    Standalone,
}

/// Where the deployment goes when a step fails after its retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnFailure {
    /// Before traffic moved: abort (production untouched).
    Abort,
    /// After traffic may have moved: roll back.
    Rollback,
    /// An ending failed: the reconciler records needs-attention.
    EndingFailed,
    /// Not a deployment state (teardown), or the reconciler itself (its failure leaves the
    /// deployment to the scheduled sweep).
    Nowhere,
}

/// One Lambda step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    /// Snake name: the timeline's step, `BLUEGREEN_STEP`, the local runner's key.
    pub name: &'static str,
    /// The state name (and prefix of its loop's states) in the deployment definition.
    pub state: &'static str,
    /// The function's name in the stack: `<function>Function` resource,
    /// `${<function>FunctionArn}` placeholder.
    pub function: &'static str,
    /// What people read on the console and in the CLI's timeline.
    pub label: &'static str,
    /// How the step appears in the definition.
    pub shape: Shape,
    /// Where a failure goes.
    pub on_failure: OnFailure,
    /// The error names the step raises besides [`COMMON_ERRORS`] (each is a
    /// [`StepError::name`]).
    pub raises: &'static [&'static str],
    /// The function's Lambda timeout (the stack's `Timeout`, a test holds them equal): no
    /// invocation acts after it, which bounds the fence's lease.
    pub timeout_seconds: u64,
}

impl Step {
    /// `${SyncDbFunctionArn}`: the resource placeholder in the definitions.
    pub fn placeholder(&self) -> String {
        format!("${{{}FunctionArn}}", self.function)
    }

    /// Every error name the step can raise: its own and the common ones.
    pub fn errors(&self) -> impl Iterator<Item = &'static str> + use<> {
        self.raises.iter().chain(COMMON_ERRORS).copied()
    }
}

/// Errors every step can raise: AWS failures (the first two are retried by the definition),
/// a deployment that is missing or ended, input that does not parse, a broken record.
pub const COMMON_ERRORS: &[&str] = &[
    "Throttled",
    "AwsTransient",
    "AwsError",
    "DeploymentNotFound",
    "DeploymentEnded",
    "Fenced",
    "EventMalformed",
    "RecordInvalid",
    "Internal",
];

/// The Lambda binary that serves every step (it reads `BLUEGREEN_STEP`).
pub const STEP_BINARY: &str = "bluegreen-step";

/// The environment variable that names the step a function serves.
pub const STEP_VARIABLE: &str = "BLUEGREEN_STEP";

/// `prepare`.
pub const PREPARE: Step = Step {
    name: "prepare",
    state: "Resume",
    function: "Prepare",
    timeout_seconds: 30,
    label: "Prepare",
    shape: Shape::Resume,
    on_failure: OnFailure::Abort,
    raises: &[
        "ConfigInvalid",
        "ServiceNotFound",
        "ResourceNotFound",
        "UnexpectedRouting",
        "LockLost",
    ],
};
/// `sync_db`.
pub const SYNC_DB: Step = Step {
    name: "sync_db",
    state: "SyncDb",
    function: "SyncDb",
    timeout_seconds: 60,
    label: "Sync database",
    shape: Shape::Polling,
    on_failure: OnFailure::Abort,
    raises: &["SyncFailed", "ResourceNotFound"],
};
/// `launch_preprod`.
pub const LAUNCH_PREPROD: Step = Step {
    name: "launch_preprod",
    state: "LaunchPreprod",
    function: "LaunchPreprod",
    timeout_seconds: 60,
    label: "Launch pre-prod",
    shape: Shape::Polling,
    on_failure: OnFailure::Abort,
    raises: &[
        "LaunchFailed",
        "ConfigInvalid",
        "ResourceNotFound",
        "UnexpectedRouting",
    ],
};
/// `migrate`.
pub const MIGRATE: Step = Step {
    name: "migrate",
    state: "Migrate",
    function: "Migrate",
    timeout_seconds: 60,
    label: "Migrate",
    shape: Shape::Polling,
    on_failure: OnFailure::Abort,
    raises: &[
        "MigrationFailed",
        "MigrationTimedOut",
        "ConfigInvalid",
        "ResourceNotFound",
    ],
};
/// `health_check`.
pub const HEALTH_CHECK: Step = Step {
    name: "health_check",
    state: "HealthCheck",
    function: "HealthCheck",
    timeout_seconds: 120,
    label: "Health check",
    shape: Shape::Polling,
    on_failure: OnFailure::Abort,
    raises: &["HealthCheckFailed", "ResourceNotFound"],
};
/// `approval`.
pub const APPROVAL: Step = Step {
    name: "approval",
    state: "Approval",
    function: "RequestApproval",
    timeout_seconds: 30,
    label: "Approval",
    shape: Shape::Approval,
    on_failure: OnFailure::Abort,
    raises: &["ApprovalRejected", "ApprovalTimedOut", "ConfigInvalid"],
};
/// `promote`.
pub const PROMOTE: Step = Step {
    name: "promote",
    state: "Promote",
    function: "Promote",
    timeout_seconds: 120,
    label: "Promote",
    shape: Shape::Polling,
    on_failure: OnFailure::Abort,
    raises: &[
        "MigrationFailed",
        "MigrationTimedOut",
        "LaunchFailed",
        "HealthCheckFailed",
        "ProductionOnClone",
        "MaintenanceFailed",
        "ApprovalRejected",
        "AlarmFiring",
        "ConfigInvalid",
        "ResourceNotFound",
    ],
};
/// `switch`.
pub const SWITCH: Step = Step {
    name: "switch",
    state: "Switch",
    function: "Switch",
    timeout_seconds: 60,
    label: "Switch traffic",
    shape: Shape::Polling,
    on_failure: OnFailure::Rollback,
    raises: &[
        "SwitchFailed",
        "ApprovalRejected",
        "ProductionOnClone",
        "UnexpectedRouting",
        "ConfigInvalid",
    ],
};
/// `bake`.
pub const BAKE: Step = Step {
    name: "bake",
    state: "Bake",
    function: "Bake",
    timeout_seconds: 30,
    label: "Bake",
    shape: Shape::Polling,
    on_failure: OnFailure::Rollback,
    raises: &["BakeFailed", "ProductionOnClone", "ResourceNotFound"],
};
/// `finish`.
pub const FINISH: Step = Step {
    name: "finish",
    state: "Finish",
    function: "Finish",
    timeout_seconds: 120,
    label: "Finish",
    shape: Shape::Ending,
    on_failure: OnFailure::EndingFailed,
    raises: &[
        "UnexpectedRouting",
        "ProductionOnClone",
        "MigrationFailed",
        "MigrationTimedOut",
    ],
};
/// `abort`.
pub const ABORT: Step = Step {
    name: "abort",
    state: "Abort",
    function: "Abort",
    timeout_seconds: 120,
    label: "Abort",
    shape: Shape::Ending,
    on_failure: OnFailure::EndingFailed,
    raises: &[
        "UnexpectedRouting",
        "MaintenanceFailed",
        "ProductionOnClone",
        "MigrationFailed",
        "MigrationTimedOut",
    ],
};
/// `rollback`.
pub const ROLLBACK: Step = Step {
    name: "rollback",
    state: "Rollback",
    function: "Rollback",
    timeout_seconds: 120,
    label: "Roll back",
    shape: Shape::Ending,
    on_failure: OnFailure::EndingFailed,
    raises: &[
        "RollbackFailed",
        "UnexpectedRouting",
        "MaintenanceFailed",
        "ProductionOnClone",
        "MigrationFailed",
        "MigrationTimedOut",
    ],
};
/// `reconcile`.
pub const RECONCILE: Step = Step {
    name: "reconcile",
    state: "EndingFailed",
    function: "Reconcile",
    timeout_seconds: 300,
    label: "Reconcile",
    shape: Shape::Reconciler,
    on_failure: OnFailure::Nowhere,
    raises: &[],
};
/// `teardown`.
pub const TEARDOWN: Step = Step {
    name: "teardown",
    state: "",
    function: "Teardown",
    timeout_seconds: 300,
    label: "Teardown",
    shape: Shape::Standalone,
    on_failure: OnFailure::Nowhere,
    raises: &[],
};

/// `missed_pushes`.
pub const MISSED_PUSHES: Step = Step {
    name: "missed_pushes",
    state: "",
    function: "MissedPushes",
    timeout_seconds: 300,
    label: "Missed pushes",
    shape: Shape::Standalone,
    on_failure: OnFailure::Nowhere,
    raises: &[],
};

/// `index_config`.
pub const INDEX_CONFIG: Step = Step {
    name: "index_config",
    state: "",
    function: "IndexConfig",
    timeout_seconds: 30,
    label: "Index config",
    shape: Shape::Standalone,
    on_failure: OnFailure::Nowhere,
    raises: &[],
};

/// Every step, in the order a deployment runs them (endings, the reconciler and the
/// standalone functions last). The generator chains the [`Shape::Polling`] and
/// [`Shape::Approval`] steps in this order between `Resume` and `Finish`.
pub const STEPS: &[Step] = &[
    PREPARE,
    SYNC_DB,
    MIGRATE,
    LAUNCH_PREPROD,
    HEALTH_CHECK,
    APPROVAL,
    PROMOTE,
    SWITCH,
    BAKE,
    FINISH,
    ABORT,
    ROLLBACK,
    RECONCILE,
    TEARDOWN,
    MISSED_PUSHES,
    INDEX_CONFIG,
];

/// The step with this snake name.
pub fn by_name(name: &str) -> Option<&'static Step> {
    STEPS.iter().find(|s| s.name == name)
}

/// The step whose function this `${…FunctionArn}` placeholder names.
pub fn by_placeholder(placeholder: &str) -> Option<&'static Step> {
    STEPS.iter().find(|s| s.placeholder() == placeholder)
}

/// The step a state of the deployment definition belongs to (`LaunchPreprodWait` ->
/// launch_preprod, `ApprovalTimedOut` -> approval): the longest state prefix that matches.
pub fn by_state(state: &str) -> Option<&'static Step> {
    STEPS
        .iter()
        .filter(|s| !s.state.is_empty() && state.starts_with(s.state))
        .max_by_key(|s| s.state.len())
}

/// What people read for a timeline step name: the registry's label, or the name itself for
/// entries that are not steps (for example `manual_rollback`).
pub fn label(name: &str) -> &str {
    by_name(name).map(|s| s.label).unwrap_or(name)
}

/// A step's answer, type-erased so the Lambda runtime's future stays shallow (a step's future
/// nests every SDK call several async functions deep).
pub type Answer<'a> = Pin<Box<dyn Future<Output = StepResult<Value>> + Send + 'a>>;

/// Runs a start/check step on `{"action": …}` input, as one leased invocation of the
/// deployment (see `crate::fence`): input that does not parse touches nothing.
macro_rules! start_or_check {
    ($step:ident, $ctx:expr, $registered:expr, $input:expr) => {
        Box::pin(async move {
            match parse::<StartOrCheck>($input)? {
                StartOrCheck::Start(i) => answer(
                    fence::leased($ctx, &i.deployment_id, $registered, $step::start($ctx, &i))
                        .await,
                ),
                StartOrCheck::Check(i) => answer(
                    fence::leased($ctx, &i.deployment_id, $registered, $step::check($ctx, &i))
                        .await,
                ),
            }
        })
    };
}

/// Runs `step` on `input` as its Lambda function does: the one dispatch from a step name to
/// its code, used by the Lambda binary and the local runner. Input that does not parse is
/// `EventMalformed` and nothing is called.
///
/// A plain function choosing one boxed future per step: one async block holding every step's
/// future would need, in debug builds, a stack frame as large as their sum while it runs (700
/// KB measured, beside the SDK's own 500 KB deserializers), and the local runner's test
/// threads have 2 MB.
pub fn invoke<'a>(ctx: &'a Context, step: &'static Step, input: Value) -> Answer<'a> {
    use super::*;
    use crate::fence;
    match step.name {
        "prepare" => Box::pin(async move { answer(prepare::run(ctx, &input).await) }),
        "sync_db" => start_or_check!(sync_db, ctx, step, input),
        "launch_preprod" => start_or_check!(launch_preprod, ctx, step, input),
        "migrate" => start_or_check!(migrate, ctx, step, input),
        "health_check" => start_or_check!(health_check, ctx, step, input),
        "promote" => start_or_check!(promote, ctx, step, input),
        "switch" => start_or_check!(switch, ctx, step, input),
        "bake" => start_or_check!(bake, ctx, step, input),
        "approval" => Box::pin(async move {
            match parse::<approval::ApprovalCall>(input)? {
                approval::ApprovalCall::Request(request) => answer(
                    fence::leased(
                        ctx,
                        &request.deployment_id,
                        step,
                        approval::request(ctx, &request),
                    )
                    .await,
                ),
                approval::ApprovalCall::TimedOut(timed_out) => answer(
                    fence::leased(
                        ctx,
                        &timed_out.deployment_id,
                        step,
                        approval::settle_timeout(ctx, &timed_out),
                    )
                    .await,
                ),
            }
        }),
        // Endings as the state machine calls them: an execution whose deployment an operator
        // retried does nothing (see `fence::unless_resumed`).
        "finish" => Box::pin(async move {
            let i = parse::<DeploymentRef>(input)?;
            answer(fence::unless_resumed(ctx, &i.deployment_id, finish::run(ctx, &i)).await)
        }),
        "abort" => Box::pin(async move {
            let i = parse::<FailureInput>(input)?;
            answer(fence::unless_resumed(ctx, &i.deployment_id, abort::run(ctx, &i)).await)
        }),
        "rollback" => Box::pin(async move {
            let i = parse::<FailureInput>(input)?;
            answer(fence::unless_resumed(ctx, &i.deployment_id, rollback::run(ctx, &i)).await)
        }),
        "reconcile" => Box::pin(async move {
            answer(reconcile::run(ctx, &reconcile::Request::parse(&input)?).await)
        }),
        // The scheduled event's content is not used.
        "teardown" => Box::pin(async move { answer(teardown::run(ctx).await) }),
        "missed_pushes" => Box::pin(async move { answer(crate::missed_pushes::run(ctx).await) }),
        "index_config" => Box::pin(async move { answer(index_config::run(ctx, &input).await) }),
        other => {
            let other = other.to_owned();
            Box::pin(async move {
                Err(StepError::Internal(format!(
                    "step {other} is in the registry but has no dispatch"
                )))
            })
        }
    }
}

fn answer<T: Serialize>(result: StepResult<T>) -> StepResult<Value> {
    result.map(|v| serde_json::to_value(v).expect("step outputs serialise"))
}

fn parse<T: DeserializeOwned>(input: Value) -> StepResult<T> {
    serde_json::from_value(input).map_err(|e| StepError::EventMalformed(e.to_string()))
}

/// Runs `ending` (`finish`, `rollback` or `abort`) once, as the execution would: its answer
/// may ask to wait (the caller comes back). An ending that fails for good makes the
/// deployment need attention with the cause (never a retry loop); a transient failure is
/// returned for the caller's retry.
pub(crate) async fn run_ending_once(
    ctx: &Context,
    ending: &str,
    input: &super::FailureInput,
) -> StepResult<crate::ending::Ended> {
    use super::*;
    // A step invocation of the execution that was running may still act until its lease
    // ends (the abort waits for it itself): rolling back or finishing beside it would race it.
    if ending != ABORT.name {
        let deployment = Records::new(ctx).get(&input.deployment_id).await?;
        if deployment.status.is_terminal() {
            return Ok(crate::ending::Ended::of(&deployment));
        }
        if let Some(lease) = crate::fence::live_lease(&deployment, ctx.now()) {
            let detail = format!(
                "waiting for the {} step in flight (it can act until {}) before the {ending}",
                lease.step, lease.until
            );
            return Ok(crate::ending::Ended::waiting(
                &deployment,
                detail,
                lease.until,
            ));
        }
    }
    let result = match ending {
        e if e == FINISH.name => {
            finish::run(
                ctx,
                &DeploymentRef {
                    deployment_id: input.deployment_id.clone(),
                },
            )
            .await
        }
        e if e == ROLLBACK.name => rollback::run(ctx, input).await,
        _ => abort::run(ctx, input).await,
    };
    match result {
        Ok(ended) => Ok(ended),
        Err(e) if e.is_retryable() => Err(e),
        Err(e) => {
            let deployment = Records::new(ctx).get(&input.deployment_id).await?;
            if deployment.status.is_terminal() {
                return Ok(crate::ending::Ended::of(&deployment));
            }
            let cause = CaughtError {
                error: e.name().into(),
                cause: format!("{ending} after {}: {e}", input.describe()),
            };
            reconcile::needs_attention(ctx, &deployment, &cause).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_states_and_functions_are_unique() {
        for (i, a) in STEPS.iter().enumerate() {
            for b in &STEPS[i + 1..] {
                assert_ne!(a.name, b.name);
                assert_ne!(a.function, b.function);
                assert!(a.state.is_empty() || a.state != b.state, "{}", a.state);
            }
        }
    }

    #[test]
    fn states_map_back_to_their_steps() {
        assert_eq!(by_state("LaunchPreprodWait"), Some(&LAUNCH_PREPROD));
        assert_eq!(by_state("ApprovalTimedOut"), Some(&APPROVAL));
        assert_eq!(by_state("Resume"), Some(&PREPARE));
        assert_eq!(by_state("Started?"), None);
        assert_eq!(
            by_placeholder("${RequestApprovalFunctionArn}"),
            Some(&APPROVAL)
        );
        assert_eq!(label("manual_rollback"), "manual_rollback");
        assert_eq!(label("sync_db"), "Sync database");
    }

    #[test]
    fn every_listed_error_is_a_step_error_name_of_the_state_machine_contract() {
        for step in STEPS {
            for name in step.errors() {
                assert!(
                    StepError::CONTRACT.contains(&name),
                    "{} lists {name}, which is not a state-machine error name",
                    step.name
                );
            }
        }
    }

    #[tokio::test]
    async fn every_step_has_a_dispatch_and_refuses_input_it_does_not_understand() {
        // Nothing listens here: input is refused before any AWS call.
        let sdk = aws_types::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_types::region::Region::new("us-east-1"))
            .endpoint_url("http://127.0.0.1:9")
            .build();
        let ctx = Context::new(&sdk, crate::context::Settings::from_env());
        for step in STEPS.iter().filter(|s| s.shape != Shape::Standalone) {
            let err = invoke(&ctx, step, serde_json::json!(["not", "an", "input"]))
                .await
                .expect_err(step.name);
            assert_eq!(err.name(), "EventMalformed", "{}: {err}", step.name);
        }
    }
}
