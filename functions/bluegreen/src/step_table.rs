//! What a Lambda step is, as data — its name, state, function, label, shape, where its
//! failure goes, the errors it raises and its Lambda timeout — and the rows of the steps that
//! modules below the steps name (prepare, the approval, the endings, the reconciler and the
//! standalone functions).
//!
//! A polling step's row lives in its own module (`steps/<name>.rs`, `pub const STEP`), and
//! the ordered list of every step is the step registry (`crate::steps`, [`crate::steps::STEPS`]):
//! the dispatcher, the generator of `statemachine/deployment.asl.json`, the local runner, the
//! validator, the CLI's timeline and the console's labels read it instead of spelling step
//! names again. This module is data only, below every step, so the modules steps use can name
//! a step without importing one.

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
    /// [`crate::error::StepError::name`]).
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

/// `wake`: ECS's task and service deployment state changes wake the waits that named them
/// (see `crate::wakes`).
pub const WAKE: Step = Step {
    name: "wake",
    state: "",
    function: "Wake",
    timeout_seconds: 30,
    label: "Wake",
    shape: Shape::Standalone,
    on_failure: OnFailure::Nowhere,
    raises: &[],
};

/// `ecs_hook`: ECS's lifecycle hook for services on `traffic.engine = "ecs"`, answered from
/// the deployment's record (see `crate::ecs_hook`). Never raises: ECS rolls back on a hook's
/// error.
pub const ECS_HOOK: Step = Step {
    name: "ecs_hook",
    state: "",
    function: "EcsHook",
    timeout_seconds: 30,
    label: "ECS lifecycle hook",
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
