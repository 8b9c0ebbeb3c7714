//! The second half of a manual rollback: retiring the slot production left.
//!
//! `bluegreen rollback` records the deployment as `rolled_back` as soon as production's routing
//! is back on the good slot, and only then retires the bad one (test listener, autoscaling at
//! rest, 0 tasks — or, in DNS mode, one more TTL and teardown). A clean-up that failed or was
//! interrupted is *pending*: the operator's next `rollback` finishes it, and so does the
//! live-slot guard when it sees the bad slot still running.

use chrono::Duration;
use tracing::warn;

use crate::autoscaling;
use crate::context::Context;
use crate::ecs;
use crate::error::{StepError, StepResult};
use crate::naming::ROLE_WARM;
use crate::record::{Change, Deployment, Records, Status, StepOutcome};
use crate::routing;
use crate::slot::Slot;
use crate::traffic_mode;

/// Timeline step of a manual rollback's first half: production traffic moved back.
pub const MANUAL_ROLLBACK_STEP: &str = "manual_rollback";
/// Timeline step of a manual rollback's second half: the slot production left is retired.
pub const RETIRE_STEP: &str = "manual_rollback_retire";

/// Whether a person started a manual rollback of `deployment` (its intent is on the record,
/// written before traffic moved) and the slot it left is not retired yet: the command stopped,
/// an answer was lost, or the clean-up failed. Records from before the intent was written are
/// never pending.
pub fn pending(deployment: &Deployment) -> bool {
    matches!(deployment.status, Status::Succeeded | Status::RolledBack)
        && deployment.has_outcome(MANUAL_ROLLBACK_STEP, StepOutcome::Started)
        && !deployment.has_outcome(RETIRE_STEP, StepOutcome::Succeeded)
}

/// Records the deployment as rolled back by `operator` (once; `Ok(true)` when this call did).
/// A record already rolled back is fine: an earlier attempt's write took effect though its
/// answer was lost.
pub async fn record_rolled_back(
    ctx: &Context,
    deployment: &Deployment,
    operator: &str,
    detail: &str,
) -> StepResult<bool> {
    let records = Records::new(ctx);
    let written = records
        .update_while(
            &deployment.deployment_id,
            Status::Succeeded,
            Change::new()
                .status(Status::RolledBack)
                .failure(&format!("manually rolled back by {operator}"))
                .log(
                    MANUAL_ROLLBACK_STEP,
                    StepOutcome::Succeeded,
                    detail.to_owned(),
                    ctx.now(),
                ),
        )
        .await?;
    if written {
        return Ok(true);
    }
    let now = records.get(&deployment.deployment_id).await?;
    if now.status == Status::RolledBack {
        return Ok(false);
    }
    Err(StepError::RollbackRefused(format!(
        "{} is {} now, not succeeded: look before finishing its rollback",
        deployment.deployment_id, now.status
    )))
}

/// The slot a manual rollback of `deployment` goes back to, the slot it leaves, and where
/// production's traffic is now.
pub async fn traffic_of(
    ctx: &Context,
    deployment: &Deployment,
) -> StepResult<(Slot, Slot, routing::RouteState)> {
    let bad = deployment.target_slot()?;
    let state = routing::read_production(ctx, &deployment.config).await?;
    Ok((bad.other(), bad, state))
}

/// Finishes a manual rollback a person started whose traffic is already back: production must
/// still be entirely on the good slot, and that slot must run tasks (anything else is a
/// change made since, for a person to look at). The record says `rolled_back`, then the bad
/// slot is retired. The caller holds the service's lock. Returns what was done, the good and
/// the bad slot.
pub async fn finish(
    ctx: &Context,
    deployment: &Deployment,
    operator: &str,
) -> StepResult<(String, Slot, Slot)> {
    let config = &deployment.config;
    let (good, bad, state) = traffic_of(ctx, deployment).await?;
    if state.percent(good) != 100 {
        return Err(StepError::RollbackRefused(format!(
            "production sends {}% to {good}, not 100%: routing changed since the rollback of {}",
            state.percent(good),
            deployment.deployment_id
        )));
    }
    let good_name = &config.slots.get(good).service;
    let serving = ecs::describe_service(ctx, &config.cluster, good_name).await?;
    if serving.running_count < 1 {
        return Err(StepError::RollbackRefused(format!(
            "{good_name}, which production is on, runs no task: the slot it left may be the \
             only one running; look before retiring it"
        )));
    }
    let moved =
        format!("manual rollback by {operator}: production traffic back on {good} ({good_name})");
    record_rolled_back(ctx, deployment, operator, &moved).await?;
    let done = retire_and_log(ctx, deployment)
        .await
        .map_err(|e| StepError::RollbackFailed(unfinished(deployment, bad, &e)))?;
    Ok((done, good, bad))
}

/// What the operator reads when the clean-up failed: production is safe, the command is safe
/// to run again.
pub fn unfinished(deployment: &Deployment, bad: Slot, error: &StepError) -> String {
    format!(
        "retiring {} failed ({}: {error}); run `bluegreen rollback {}` again to finish",
        deployment.config.slots.get(bad).service,
        error.name(),
        deployment.service
    )
}

/// Retires the slot production left and notes the outcome on the (rolled back) record.
pub async fn retire_and_log(ctx: &Context, deployment: &Deployment) -> StepResult<String> {
    let retired = retire(ctx, deployment).await;
    let (outcome, detail) = match &retired {
        Ok(done) => (StepOutcome::Succeeded, done.clone()),
        Err(e) => (StepOutcome::Failed, format!("{}: {e}", e.name())),
    };
    let logged = Records::new(ctx)
        .update_while(
            &deployment.deployment_id,
            Status::RolledBack,
            Change::new().log(RETIRE_STEP, outcome, detail, ctx.now()),
        )
        .await;
    let done = retired?;
    // The clean-up happened; an unrecorded one is only re-done (idempotently) by a rerun.
    if let Err(e) = logged {
        warn!(error = %e, "could not record the retired slot");
    }
    Ok(done)
}

/// The clean-up after production went back to the good slot, each call idempotent: the good
/// slot loses its warm tag, the test listener points at the bad slot, whose autoscaling is put
/// at rest (a policy would otherwise bring it back) before it is scaled to zero. In DNS mode
/// resolvers may answer the bad slot for one more TTL: it keeps its tasks, tagged to expire
/// then, and the scheduled teardown scales it down.
async fn retire(ctx: &Context, deployment: &Deployment) -> StepResult<String> {
    let config = &deployment.config;
    let bad = deployment.target_slot()?;
    let good = bad.other();
    let bad_name = &config.slots.get(bad).service;
    // What follows production back to `good` (the listener's default in rule mode, the other
    // routes): the run that moved production back may have stopped before them. Production
    // itself is on `good` already (the callers looked), so only they can move here.
    routing::set_production_verified(ctx, config, good, 100, routing::Move::Back)
        .await?
        .map_err(StepError::RollbackFailed)?;
    // It is live again: scheduled teardown must not scale it down as an expired warm slot.
    ecs::unmark_slot(ctx, &config.cluster, &config.slots.get(good).service).await?;
    routing::point_test_listener(ctx, config, bad).await?;
    // Out of service discovery (Cloud Map) whatever keeps it running below.
    ecs::registries_to(
        ctx,
        &config.cluster,
        bad_name,
        &config.slots.get(good).service,
    )
    .await?;
    // Before it is put at rest: a route still on it would lose its traffic.
    routing::ensure_unrouted(ctx, config, bad, "retiring the rolled-back slot").await?;
    autoscaling::rest(ctx, &config.cluster, bad_name).await?;
    // Resolvers may still answer with it for the longer of the two TTLs.
    if let Some(answers) = traffic_mode::of(config).cached_answers() {
        let ttl = answers.ttl_seconds.max(answers.switch_ttl_seconds);
        let until = ctx.now() + Duration::seconds(ttl as i64);
        let id = &deployment.deployment_id;
        ecs::mark_slot(ctx, &config.cluster, bad_name, id, ROLE_WARM, until).await?;
        return Ok(format!(
            "{bad_name} keeps its tasks for the record's TTL ({ttl} s): scheduled teardown \
             scales it to 0 after {}",
            until.to_rfc3339()
        ));
    }
    if let Some(kept) = linger_behind_nlb(ctx, deployment, bad_name).await? {
        return Ok(kept);
    }
    ecs::update_service(ctx, &config.cluster, bad_name, None, 0).await?;
    Ok(format!("{bad_name} scaled to 0"))
}

/// Behind an NLB, whose weights take up to [`crate::config::NLB_WEIGHTS_SETTLE_SECONDS`] to
/// reach new connections, the slot production left (`service`) keeps its tasks, tagged to
/// expire then: the scheduled teardown scales it down. `None` behind an ALB, where it can go
/// at once.
pub async fn linger_behind_nlb(
    ctx: &Context,
    deployment: &Deployment,
    service: &str,
) -> StepResult<Option<String>> {
    let config = &deployment.config;
    let settle = config.traffic.settle_seconds();
    if settle == 0 {
        return Ok(None);
    }
    let until = ctx.now() + Duration::seconds(settle as i64);
    let id = &deployment.deployment_id;
    ecs::mark_slot(ctx, &config.cluster, service, id, ROLE_WARM, until).await?;
    Ok(Some(format!(
        "{service} keeps its tasks while the NLB's weights settle ({settle} s): scheduled \
         teardown scales it to 0 after {}",
        until.to_rfc3339()
    )))
}
