//! The table of bluegreen's Lambda steps, as data: each step's name, state, function, label,
//! shape, where its failure goes, the errors it raises and its Lambda timeout.
//!
//! Everything that needs to know the steps reads this table instead of spelling their names
//! again: the dispatcher (`crate::steps::registry`), the generator of
//! `statemachine/deployment.asl.json`, the local runner, the validator, the fence (a lease
//! lasts a step's timeout), the CLI's timeline and the console's pages (labels). It is data
//! only, below every step, so the modules steps use can name a step without importing them.

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
