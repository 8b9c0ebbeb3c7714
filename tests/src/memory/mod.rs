//! An in-memory AWS: every port of [`bluegreen::ports`] over plain state in one lock, for the
//! deterministic simulator (`scripts/simulate`) and the contract suite that holds it to the
//! SDK adapters on the emulator.
//!
//! It models what bluegreen relies on, and is allowed to be less kind than AWS, never kinder:
//! a task just started is not listed at once, `GetParameters` answers in reverse order, a
//! rollout, a clone or a DNS change completes only when the simulated AWS says so. Every call
//! passes through a [`Conductor`] first, which may delay it (virtual time) and choose its
//! fate: answered, throttled (nothing applied), its answer lost after it was applied, or the
//! calling invocation crashed right after it. With [`Immediate`], calls apply at once.
//!
//! What AWS does on its own (the ECS scheduler, the container runtime, RDS, Route 53
//! propagation) is not done here: [`State`] has the methods a simulator calls to play it.

mod compute;
mod databases;
mod dns;
pub mod ecs_blue_green;
mod load_balancing;
mod misc;
mod scaling;
pub mod tables;
mod workflow;
pub mod world;

use std::sync::{Arc, Mutex};

use bluegreen::StepError;
use bluegreen::ports::Ports;
use bluegreen::ports::registry::RegistryImage;

pub use compute::{EcsState, ServiceModel, TaskModel};
pub use databases::RdsState;
pub use dns::DnsState;
pub use load_balancing::{ElbState, ListenerModel, RuleModel};
pub use misc::{AlarmState, NotificationsState, SmokeState};
pub use scaling::ScalingState;
pub use workflow::{ExecutionModel, Starter, TokenAnswer, WorkflowState};

/// What happens to one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// Applied and answered.
    Answer,
    /// Throttled: nothing applied, a retryable error answered.
    Throttle,
    /// Applied, but the answer was lost: a retryable error answered.
    LoseAnswer,
    /// Applied, and the invocation that made the call died right after (it never returns).
    Crash,
}

/// Decides when each call happens and what becomes of it.
#[async_trait::async_trait]
pub trait Conductor: Send + Sync {
    /// Before `operation` is applied: may wait (virtual time) and chooses its fate.
    async fn before(&self, operation: &'static str) -> Fate;

    /// Right after `operation` was applied, with the state it left (the simulator checks its
    /// invariants here, after every transition).
    fn applied(&self, operation: &'static str, state: &State);
}

/// Every call at once, answered.
pub struct Immediate;

#[async_trait::async_trait]
impl Conductor for Immediate {
    async fn before(&self, _operation: &'static str) -> Fate {
        Fate::Answer
    }

    fn applied(&self, _operation: &'static str, _state: &State) {}
}

/// The whole in-memory AWS.
#[derive(Debug, Default)]
pub struct State {
    /// ECS.
    pub ecs: EcsState,
    /// ELBv2.
    pub elb: ElbState,
    /// Route 53.
    pub dns: DnsState,
    /// RDS.
    pub rds: RdsState,
    /// DynamoDB.
    pub tables: tables::MemoryTables,
    /// SSM parameters: name → (value, version).
    pub parameters: std::collections::BTreeMap<String, (String, i64)>,
    /// Step Functions.
    pub workflow: WorkflowState,
    /// SNS and the webhook.
    pub notifications: NotificationsState,
    /// CloudWatch alarms.
    pub alarms: AlarmState,
    /// The caller STS names.
    pub caller: String,
    /// Secrets Manager: id → secret string.
    pub secrets: std::collections::BTreeMap<String, String>,
    /// Secrets Manager: name → tags.
    pub secret_tags: std::collections::BTreeMap<String, Vec<(String, String)>>,
    /// What the test endpoints answer.
    pub smoke: SmokeState,
    /// Application Auto Scaling.
    pub scaling: ScalingState,
    /// ECR: repository → its images (tags move between them as ECR moves them).
    pub registry: std::collections::BTreeMap<String, Vec<RegistryImage>>,
    /// EventBridge's default bus: the events AWS's services put there (ECS's task and
    /// deployment state changes), oldest first, until the simulator's bus delivers them.
    pub bus: Vec<serde_json::Value>,
    /// The simulated clock as AWS's own work last saw it (ms since the start): when a
    /// blue/green stage began.
    pub now_ms: u64,
}

/// The in-memory AWS behind every port; clones share the state.
#[derive(Clone)]
pub struct MemoryAws {
    /// The state (lock it to arrange or inspect).
    pub state: Arc<Mutex<State>>,
    conductor: Arc<dyn Conductor>,
}

impl MemoryAws {
    /// An AWS holding `state`, its calls conducted by `conductor`.
    pub fn new(state: State, conductor: Arc<dyn Conductor>) -> Self {
        MemoryAws {
            state: Arc::new(Mutex::new(state)),
            conductor,
        }
    }

    /// Every port over this AWS.
    pub fn ports(&self) -> Ports {
        Ports {
            compute: Arc::new(self.clone()),
            service_deployments: Arc::new(self.clone()),
            load_balancing: Arc::new(self.clone()),
            dns: Arc::new(self.clone()),
            databases: Arc::new(self.clone()),
            tables: Arc::new(self.clone()),
            parameters: Arc::new(self.clone()),
            workflow: Arc::new(self.clone()),
            notifications: Arc::new(self.clone()),
            alarms: Arc::new(self.clone()),
            identity: Arc::new(self.clone()),
            secrets: Arc::new(self.clone()),
            smoke: Arc::new(self.clone()),
            scaling: Arc::new(self.clone()),
            registry: Arc::new(self.clone()),
        }
    }

    /// Runs `operation` on the state as its fate decides.
    async fn call<T>(
        &self,
        operation: &'static str,
        apply: impl FnOnce(&mut State) -> Result<T, StepError>,
    ) -> Result<T, StepError> {
        let fate = self.conductor.before(operation).await;
        if fate == Fate::Throttle {
            return Err(StepError::Throttled {
                operation,
                message: "Rate exceeded (simulated)".into(),
            });
        }
        let result = {
            let mut state = self.state.lock().expect("the in-memory AWS");
            let result = apply(&mut state);
            self.conductor.applied(operation, &state);
            result
        };
        match fate {
            Fate::LoseAnswer => Err(StepError::AwsTransient {
                operation,
                message: "the answer was lost after the call took effect (simulated)".into(),
            }),
            Fate::Crash => std::future::pending().await,
            Fate::Answer | Fate::Throttle => result,
        }
    }

    /// Runs `f` on the state without a call (arranging, inspecting, playing AWS's own work).
    pub fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.state.lock().expect("the in-memory AWS"))
    }
}

/// A `ResourceNotFound` for `kind` `id`.
fn not_found(kind: &'static str, id: &str) -> StepError {
    StepError::ResourceNotFound {
        kind,
        id: id.to_owned(),
    }
}

/// AWS's answer for a request it refuses (`code`).
fn refused(operation: &'static str, code: &str, message: impl Into<String>) -> StepError {
    StepError::Aws {
        operation,
        code: code.to_owned(),
        message: message.into(),
    }
}
