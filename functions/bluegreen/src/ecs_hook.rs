//! ECS's lifecycle hook, answered from the deployment's record (`traffic.engine = "ecs"`,
//! DESIGN 28).
//!
//! A service on ECS's own blue/green runs both revisions in one service and moves traffic
//! itself; at each lifecycle stage it invokes the hook functions registered for it and goes
//! on, holds, or rolls back as they answer (`SUCCEEDED`, `IN_PROGRESS` with a call-back delay,
//! `FAILED`). bluegreen's hook gates two stages:
//!
//! - `POST_TEST_TRAFFIC_SHIFT` (the new revision has the test route, production is on the
//!   old): held while pre-prod is checked and a person decides; goes on once the deployment
//!   is switching (approved and ready: the production migration, if any, ran) and only then —
//!   a deployment past its switch is not asked this again, so an ECS deployment of its
//!   revision then is someone else's (a console redeploy); fails when it ended without
//!   switching (rejected, timed out, aborted, superseded) or an abort was asked for.
//! - `POST_PRODUCTION_TRAFFIC_SHIFT` (production on the new revision, the old still running):
//!   held while bluegreen's bake watches; goes on once the bake passed; fails when the
//!   deployment rolled back, was aborted, or had not switched (production moved without the
//!   approval); a deployment that needs attention is held for the person deciding.
//!
//! Every other stage goes on at once — ECS re-runs `TEST_TRAFFIC_SHIFT` and
//! `PRODUCTION_TRAFFIC_SHIFT` hooks while it rolls back, and a hook must never stand in a
//! rollback's way.
//!
//! Which bluegreen deployment an ECS deployment belongs to is read from ECS, not from the
//! lock (released when the deployment ends, while ECS may still ask): the target service
//! revision's task definition carries the deployment id bluegreen tagged it with, the record
//! must list that revision and name the service, and the ECS deployment must be the one the
//! launch recorded (`crate::engine::ecs_blue_green`; held at the test gate until it is
//! recorded). An ECS deployment bluegreen did not
//! start (a console deploy, an IaC apply that changed the revision) is failed at the gate:
//! ECS rolls it back, production stays where it was, and the hook says why in its log.
//!
//! A hook that errs makes ECS roll back, so this one never errs on its own trouble: a read
//! that fails — throttled, denied, not found, or slower than [`READ_BUDGET_SECONDS`] — holds
//! (`IN_PROGRESS`, asked again shortly; ECS's hook timeout is the backstop); only a decision,
//! or a gated invocation it cannot read, fails the stage. The stage is read first, so a
//! payload of another shape at a stage it does not gate still goes on.

use serde::{Deserialize, Serialize};
use tracing::{error, info, warn};

use crate::config::Engine;
use crate::context::Context;
use crate::error::{StepError, StepResult};
use crate::naming::TAG_DEPLOYMENT;
use crate::record::{Deployment, Records, Status, StepOutcome};

/// The stage after the test route moved to the new revision: bluegreen's approval gate.
pub const POST_TEST_TRAFFIC_SHIFT: &str = "POST_TEST_TRAFFIC_SHIFT";
/// The stage after production moved to the new revision: bluegreen's bake gate.
pub const POST_PRODUCTION_TRAFFIC_SHIFT: &str = "POST_PRODUCTION_TRAFFIC_SHIFT";
/// The stages bluegreen's hook is registered for (and the only ones it gates).
pub const GATED_STAGES: [&str; 2] = [POST_TEST_TRAFFIC_SHIFT, POST_PRODUCTION_TRAFFIC_SHIFT];

/// How long ECS waits before asking again while a gate holds: the lag between a decision
/// in the record and ECS moving on (ECS's default is 30 s; an invocation costs a read or
/// three).
pub const HOLD_SECONDS: u64 = 15;
/// How long ECS waits before asking again after a read failed that a retry may get through
/// (throttled, AWS briefly failing).
pub const TROUBLE_SECONDS: u64 = 10;
/// How long ECS waits before asking again after a read failed that only a person can fix
/// (access denied, a resource missing): logged as an error each time.
pub const BROKEN_SECONDS: u64 = 60;
/// The reads' budget within the function's 30 s: a Lambda timeout is a function error, which
/// ECS answers with a rollback.
pub const READ_BUDGET_SECONDS: u64 = 20;

/// What ECS sends a Lambda lifecycle hook.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HookInvocation {
    /// One hook run's id.
    #[serde(default)]
    pub execution_id: Option<String>,
    /// The stage ECS is at.
    pub lifecycle_stage: String,
    /// The service deployment's ARN.
    pub resource_arn: String,
    /// The service and the revisions.
    pub execution_details: ExecutionDetails,
    /// The hook's configured details, merged with those an `IN_PROGRESS` answer returned.
    #[serde(default)]
    pub hook_details: Option<serde_json::Value>,
}

/// The service, the revision being rolled out and the traffic weights ECS reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionDetails {
    /// The service's ARN (`arn:aws:ecs:<region>:<account>:service/<cluster>/<service>`).
    pub service_arn: String,
    /// The service revision being rolled out.
    pub target_service_revision_arn: String,
    /// Test traffic per service revision ARN, in percent (`{}` at stages without any; kept
    /// as ECS sends it, the hook decides nothing from it).
    #[serde(default)]
    pub test_traffic_weights: Option<serde_json::Value>,
    /// Production traffic per service revision ARN, in percent.
    #[serde(default)]
    pub production_traffic_weights: Option<serde_json::Value>,
}

/// The hook's answer, as ECS reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HookResponse {
    /// `SUCCEEDED`, `IN_PROGRESS` or `FAILED`.
    pub hook_status: String,
    /// Seconds before ECS asks again (`IN_PROGRESS` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_back_delay: Option<u64>,
}

/// What the hook decided for one invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// The stage may end: ECS goes on.
    GoOn,
    /// Not yet: ECS asks again after `seconds`.
    Hold {
        /// Seconds until ECS asks again.
        seconds: u64,
        /// What is awaited.
        why: String,
    },
    /// The stage fails: ECS rolls the deployment back.
    Fail {
        /// Why.
        why: String,
    },
}

impl Answer {
    /// The answer as ECS reads it.
    pub fn response(&self) -> HookResponse {
        let (status, delay) = match self {
            Answer::GoOn => ("SUCCEEDED", None),
            Answer::Hold { seconds, .. } => ("IN_PROGRESS", Some(*seconds)),
            Answer::Fail { .. } => ("FAILED", None),
        };
        HookResponse {
            hook_status: status.to_owned(),
            call_back_delay: delay,
        }
    }
}

/// Decides a gated stage of ECS deployment `resource` from the record of the deployment whose
/// revision it rolls out. Pure: the ECS deployment the launch recorded, the record's status,
/// its abort request and its bake's outcome are the whole decision; a stage bluegreen does not
/// gate goes on.
pub fn decide(stage: &str, deployment: &Deployment, resource: &str) -> Answer {
    if !GATED_STAGES.contains(&stage) {
        return Answer::GoOn;
    }
    let answer = decide_status(stage, deployment);
    let recorded = deployment
        .preprod
        .as_ref()
        .and_then(|p| p.ecs_deployment.as_deref());
    match (recorded, &answer) {
        (_, Answer::Fail { .. }) => answer,
        (Some(own), _) if own == resource => answer,
        (Some(own), _) => Answer::Fail {
            why: format!(
                "{resource} is not the ECS deployment deployment {} started ({own}): someone \
                 else deployed its revision",
                deployment.deployment_id
            ),
        },
        // Launch records its ECS deployment while ECS scales up, before this gate: until then
        // nothing goes on. Past the first gate, an unrecorded ECS deployment is not its own.
        (None, _) if stage == POST_TEST_TRAFFIC_SHIFT => Answer::Hold {
            seconds: HOLD_SECONDS,
            why: format!(
                "deployment {} has not recorded its ECS deployment yet",
                deployment.deployment_id
            ),
        },
        (None, _) => Answer::Fail {
            why: format!(
                "deployment {} never recorded an ECS deployment: {resource} is not its own",
                deployment.deployment_id
            ),
        },
    }
}

/// [`decide`]'s answer from the record's status, abort request and bake alone.
fn decide_status(stage: &str, deployment: &Deployment) -> Answer {
    let id = &deployment.deployment_id;
    let fail = |what: &str| Answer::Fail {
        why: format!(
            "deployment {id} {what} ({}){}",
            deployment.status,
            deployment
                .failure
                .as_deref()
                .map(|f| format!(": {f}"))
                .unwrap_or_default()
        ),
    };
    let hold = |what: &str| Answer::Hold {
        seconds: HOLD_SECONDS,
        why: format!("deployment {id} is {}: {what}", deployment.status),
    };
    if !GATED_STAGES.contains(&stage) {
        return Answer::GoOn;
    }
    if deployment.abort_requested.is_some() {
        return fail("is being aborted");
    }
    let production = stage == POST_PRODUCTION_TRAFFIC_SHIFT;
    let baked = deployment.has_outcome("bake", StepOutcome::Succeeded);
    // A switch that failed (its deadline) leaves the status `switching` until the rollback
    // ends: ECS must not be let on meanwhile.
    if !production && deployment.has_outcome("switch", StepOutcome::Failed) {
        return fail("failed its switch");
    }
    match deployment.status {
        Status::Aborted | Status::Superseded => fail("ended before the switch"),
        Status::RolledBack => fail("rolled back"),
        // Reopened by a retry at times (a finish that found a clone in use): a person decides.
        Status::NeedsAttention if production && baked => Answer::GoOn,
        Status::NeedsAttention if production => hold("a person decides"),
        Status::NeedsAttention => fail("needs attention before its switch"),
        Status::Switching if !production => Answer::GoOn,
        Status::Baking | Status::Succeeded if !production => {
            fail("is past its switch: this ECS deployment of its revision is not the one it ran")
        }
        _ if !production => hold("production moves once it is approved and ready"),
        Status::Switching | Status::Baking if baked => Answer::GoOn,
        Status::Succeeded => Answer::GoOn,
        Status::Switching | Status::Baking => hold("the old revision stays until the bake passed"),
        _ => fail("had not switched: production moved without its approval"),
    }
}

/// Answers one invocation (the `ecs_hook` step). Never an error: ECS rolls back on a hook's
/// error, so trouble reading holds and only a decision fails.
pub async fn on_invocation(ctx: &Context, input: &serde_json::Value) -> StepResult<HookResponse> {
    let stage = input["lifecycleStage"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let resource = input["resourceArn"].as_str().unwrap_or_default().to_owned();
    let answer = if stage.is_empty() {
        // Which stage is unknown, so it may be a gate: fail closed.
        Answer::Fail {
            why: "not an ECS lifecycle hook invocation: no lifecycleStage".into(),
        }
    } else if !GATED_STAGES.contains(&stage.as_str()) {
        Answer::GoOn
    } else {
        match serde_json::from_value::<HookInvocation>(input.clone()) {
            Ok(invocation) => judge(ctx, &invocation).await,
            // Nothing to hold on: no service, no revision. ECS rolls back what it cannot tell
            // the hook about; production stays on the revision it had.
            Err(e) => Answer::Fail {
                why: format!("not an ECS lifecycle hook invocation: {e}"),
            },
        }
    };
    match &answer {
        Answer::GoOn => info!(%stage, ecs_deployment = %resource, "the stage goes on"),
        Answer::Hold { why, seconds } => {
            info!(%stage, ecs_deployment = %resource, %why, seconds, "held");
        }
        Answer::Fail { why } => {
            warn!(%stage, ecs_deployment = %resource, %why, "failed: ECS rolls back");
        }
    }
    Ok(answer.response())
}

/// A gated stage's answer: the owner's decision, or a hold when reading it failed or took
/// longer than the budget.
async fn judge(ctx: &Context, invocation: &HookInvocation) -> Answer {
    let budget = std::time::Duration::from_secs(READ_BUDGET_SECONDS);
    let Ok(read) = tokio::time::timeout(budget, owner(ctx, invocation)).await else {
        return Answer::Hold {
            seconds: TROUBLE_SECONDS,
            why: format!("the reads took longer than {READ_BUDGET_SECONDS} s"),
        };
    };
    match read {
        Ok(Ok(deployment)) => {
            info!(deployment_id = %deployment.deployment_id, status = %deployment.status,
                "the ECS deployment is this deployment's");
            decide(
                &invocation.lifecycle_stage,
                &deployment,
                &invocation.resource_arn,
            )
        }
        Ok(Err(why)) => Answer::Fail { why },
        Err(e) if e.is_retryable() => Answer::Hold {
            seconds: TROUBLE_SECONDS,
            why: format!("could not read the deployment: {e}"),
        },
        // Denied, missing: failing would roll back (at the production gate, behind
        // bluegreen's back); held, a person sees it in the log and ECS's hook timeout bounds it.
        Err(e) => {
            error!(error = %e, "the hook cannot read what it decides from");
            Answer::Hold {
                seconds: BROKEN_SECONDS,
                why: format!("could not read the deployment: {e}"),
            }
        }
    }
}

/// The bluegreen deployment that started this ECS deployment, or why none did.
async fn owner(
    ctx: &Context,
    invocation: &HookInvocation,
) -> StepResult<Result<Deployment, String>> {
    let details = &invocation.execution_details;
    let revision = ctx
        .ports
        .service_deployments
        .service_revision(&details.target_service_revision_arn)
        .await?;
    let task_definition = ctx
        .ports
        .compute
        .describe_task_definition(&revision.task_definition)
        .await?;
    let tagged = task_definition
        .tags
        .iter()
        .find(|(k, _)| k == TAG_DEPLOYMENT)
        .map(|(_, v)| v.clone());
    let not_ours = |why: String| {
        Ok(Err(format!(
            "ECS deployment {} was not started by bluegreen: {why}; deploy by pushing the \
             image (bluegreen owns this service's deployments)",
            invocation.resource_arn
        )))
    };
    let Some(deployment_id) = tagged else {
        return not_ours(format!(
            "revision {} has no {TAG_DEPLOYMENT} tag",
            revision.task_definition
        ));
    };
    let deployment = match Records::new(ctx).get(&deployment_id).await {
        Ok(deployment) => deployment,
        Err(StepError::DeploymentNotFound(_)) => {
            return not_ours(format!("no deployment {deployment_id} is recorded"));
        }
        Err(e) => return Err(e),
    };
    if let Some(why) = mismatch(&deployment, &revision.task_definition, &details.service_arn) {
        return not_ours(why);
    }
    Ok(Ok(deployment))
}

/// Why `deployment` is not the one rolling `task_definition` out on `service_arn`, if it
/// is not: its record must list the revision, run on ECS's engine and name the service.
pub fn mismatch(
    deployment: &Deployment,
    task_definition: &str,
    service_arn: &str,
) -> Option<String> {
    let id = &deployment.deployment_id;
    // The revision production is to run: the production revision where the deployment has
    // one (`isolated`: pre-prod's reads the clone and must never serve production), else the
    // one revision it made.
    let revisions = &deployment.task_definitions;
    let for_production = match crate::db_plan::preprod_on_clone(&deployment.config) {
        // Pre-prod ran in a service of its own: ECS deploys only the production revision,
        // which promote registers (before that, no revision of the deployment is ECS's).
        true => revisions.production.as_ref(),
        false => revisions.production.as_ref().or(revisions.preprod.as_ref()),
    };
    if for_production.map(String::as_str) != Some(task_definition) {
        return Some(format!(
            "{task_definition} is not the revision deployment {id} registered for production"
        ));
    }
    let config = &deployment.config;
    if config.traffic.engine() != Engine::Ecs {
        return Some(format!(
            "deployment {id}'s service {} does not run on traffic.engine = \"ecs\"",
            config.name
        ));
    }
    let cluster = config.cluster.rsplit('/').next().unwrap_or_default();
    let expected = format!(":service/{cluster}/{}", config.slots.blue.service);
    if !service_arn.ends_with(&expected) {
        return Some(format!(
            "deployment {id} deploys {cluster}/{}, not {service_arn}",
            config.slots.blue.service
        ));
    }
    None
}
