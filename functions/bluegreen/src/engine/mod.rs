//! The deployment engines: how a release comes up beside production, as one trait with one
//! implementation per `traffic.engine` (DESIGN 28). The steps ask the engine ([`of`]) instead
//! of matching on the config, as they ask the traffic mode how production is reached
//! (`crate::traffic_mode`).
//!
//! - **slots** ([`slots`]): two ECS services; the idle one runs the new revision beside
//!   production, and bluegreen moves the listener (or the records) itself.
//! - **ecs** ([`ecs_blue_green`]): one service on ECS's own blue/green; one `UpdateService`
//!   starts ECS's deployment, which brings the new revision up on the alternate target group
//!   behind ECS's test rule and waits at `POST_TEST_TRAFFIC_SHIFT` for bluegreen's lifecycle
//!   hook (`crate::ecs_hook`) to let it on.
//!
//! Each phase of a deployment that touches the service or its traffic asks the engine: the
//! launch, the health check's route to pre-prod, the switch, what the bake watches, the
//! finish's retirement of the old release, the rollback's and the abort's put-back. The
//! database phase, the approval, the lock and queue and the record are the steps' own.

pub mod ecs_blue_green;
pub mod ecs_preprod;
pub mod ecs_production;
pub mod slots;
pub mod slots_finish;
pub mod slots_rollback;
pub mod slots_switch;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};

use crate::config::{Engine, ServiceConfig};
use crate::context::Context;
use crate::ecs::Rollout;
use crate::error::StepResult;
use crate::poll::Poll;
use crate::record::{Change, Deployment, PreprodState, Records, Status};
use crate::slot::Slot;

pub use crate::health::PreprodRoute;

/// How one service's new release comes up beside production. Every method that changes AWS is
/// idempotent (Step Functions retries it, and an answer may be lost after it took effect); one
/// that answers "waiting" or "in progress" is called again until it is done.
#[async_trait]
pub trait DeploymentEngine: Send + Sync {
    /// Starts pre-prod: records what it is about to change (so an abort can put it back)
    /// before changing it, then starts the new revision. Idempotent: Step Functions retries
    /// it, and a retry whose earlier answer was lost changes nothing twice. `step` names the
    /// calling step in the record's log.
    async fn launch(&self, ctx: &Context, deployment: &Deployment, step: &str) -> StepResult<()>;

    /// How the launch stands: completed once pre-prod runs the new revision where the health
    /// check can reach it, failed when AWS gave up on it (or it ended otherwise).
    async fn launched(&self, ctx: &Context, deployment: &Deployment) -> StepResult<Rollout>;

    /// An abort's first look, before anything is put back: refuses (`UnexpectedRouting`)
    /// what the abort must not do (production already moved to an approved release: a
    /// rollback's job) and readies production for the put-back. `Some` says what happened to
    /// production instead of "untouched" (it moved without the approval, and the put-back
    /// moves it back).
    async fn before_abort(
        &self,
        ctx: &Context,
        deployment: &Deployment,
    ) -> StepResult<Option<String>>;

    /// An abort: the service the launch changed put back (again while [`PutBack::Waiting`]).
    async fn put_back(
        &self,
        ctx: &Context,
        deployment: &Deployment,
        preprod: &PreprodState,
    ) -> StepResult<PutBack>;

    /// Readies the smoke checks' route to pre-prod (the health check's start). Idempotent.
    async fn open_test_route(&self, ctx: &Context, deployment: &Deployment) -> StepResult<()>;

    /// Where the health check finds pre-prod now; `Err`: what is not in place yet (it waits).
    async fn preprod_route(
        &self,
        ctx: &Context,
        deployment: &Deployment,
    ) -> StepResult<Result<PreprodRoute, String>>;

    /// After the approval: the release on the production revision `task_definition`, done
    /// once it runs where the health check reaches it (production not moved). Idempotent.
    async fn repoint(
        &self,
        ctx: &Context,
        deployment: &Deployment,
        task_definition: &str,
    ) -> StepResult<Rollout>;

    /// Moves production to the approved release, or looks how far it moved (the switch's
    /// start and every check): done once production is on it. Idempotent.
    async fn switch(
        &self,
        ctx: &Context,
        deployment: &Deployment,
        deadline: DateTime<Utc>,
    ) -> StepResult<Poll>;

    /// The slot the bake watches (production's now); `Err(why)`: AWS is taking it off.
    async fn baking(
        &self,
        ctx: &Context,
        deployment: &Deployment,
    ) -> StepResult<Result<Slot, String>>;

    /// After a clean bake: the old release retired (scaled down, kept warm, or AWS's).
    async fn retire_old(&self, ctx: &Context, deployment: &Deployment) -> StepResult<Phase>;

    /// A rollback after the switch: production back on the old release, the failed one off.
    async fn roll_back(&self, ctx: &Context, deployment: &Deployment) -> StepResult<Phase>;

    /// Whether the release production left runs on in a service of its own (the idle slot, warm
    /// for a manual rollback, then torn down); with one service (both "slots" name it) none.
    fn has_idle_slot(&self) -> bool;

    /// What would outlive the deployment's lock: ECS's deployment going on (rolled back by ECS
    /// at its stage limit), `isolated` pre-prod's own service (on the clone).
    async fn still_going(
        &self,
        ctx: &Context,
        deployment: &Deployment,
    ) -> StepResult<Option<String>>;
}

/// Where an ending's engine part stands (the finish's retirement, a rollback).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    /// Done: what was done, for the record.
    Done(Vec<String>),
    /// AWS is still at it: what is awaited and until when the ending waits.
    Waiting {
        /// What is awaited.
        detail: String,
        /// When the ending stops waiting (it then needs a person).
        until: DateTime<Utc>,
    },
    /// It cannot go on without a person: why (the deployment ends needing attention, the
    /// lock kept).
    Stuck(String),
}

/// Where an abort's put-back stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PutBack {
    /// Put back: what was done, for the record.
    Done(String),
    /// AWS is still at it: what is awaited (the abort is called again, until
    /// [`abort_bound`]).
    Waiting(String),
    /// It cannot be put back without a person: why (the deployment ends needing attention).
    Stuck(String),
}

/// Until when an abort waits for AWS to put pre-prod back: the launch timeout from the abort
/// request (every abort records one before it puts anything back; from now for a caller that
/// did not).
pub fn abort_bound(ctx: &Context, deployment: &Deployment) -> DateTime<Utc> {
    let asked = deployment
        .abort_requested
        .as_ref()
        .map_or_else(|| ctx.now(), |r| r.at);
    asked + Duration::seconds(deployment.config.preprod.launch_timeout_seconds as i64)
}

/// The engine of `config`: the one place the engine is chosen.
pub fn of(config: &ServiceConfig) -> Box<dyn DeploymentEngine> {
    match config.traffic.engine() {
        Engine::Slots => Box::new(slots::Slots),
        Engine::Ecs => Box::new(ecs_blue_green::EcsBlueGreen),
    }
}

/// Records what pre-prod will be (status `preparing`) before the launch changes anything, so
/// an abort can always put it back; returns it.
pub async fn save_preprod(
    ctx: &Context,
    deployment: &Deployment,
    state: PreprodState,
) -> StepResult<PreprodState> {
    let change = Change::new().preprod(&state).status(Status::Preparing);
    Records::new(ctx)
        .update(&deployment.deployment_id, change)
        .await?;
    Ok(state)
}

/// What launch recorded of pre-prod; `Internal` before the launch recorded it (the state
/// machine runs the check after the start only).
pub fn recorded_preprod(deployment: &Deployment) -> StepResult<&PreprodState> {
    deployment
        .preprod
        .as_ref()
        .ok_or_else(|| crate::error::StepError::Internal("launch check before launch start".into()))
}
