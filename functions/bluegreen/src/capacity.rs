//! Capacity follows production: the slot about to take production traffic runs at least as
//! many tasks as production runs *now* — not pre-prod's count (`preprod.desired_count` sizes
//! pre-prod only, a cost-saving setting), and not production's count at launch (a service
//! autoscaled from 4 to 12 during a two-hour approval wait would be switched onto 4).
//!
//! Checked by the switch right before the first traffic move and before each later canary or
//! linear step: if the new slot has fewer tasks than the live slot wants or runs, it is scaled
//! up (the timeline says so) and the move waits until ECS runs that many tasks and the slot's
//! target group has that many healthy targets. The new slot is never scaled down here.
//! Production's autoscaling comes first ([`autoscaling`], serving: production's range,
//! scale-in suspended through the bake).

use crate::autoscaling::{self, Stance};
use crate::context::Context;
use crate::ecs;
use crate::error::{StepError, StepResult};
use crate::health;
use crate::record::{Change, Deployment, Records, StepOutcome};
use crate::slot::Slot;

/// What the slot about to take traffic still needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Capacity {
    /// It runs at least production's count with as many healthy targets: traffic may move.
    Ready,
    /// Scaled, or still starting tasks: look again (the detail says what is missing).
    Waiting(String),
}

/// The task count the new slot needs before it takes traffic: what the live slot wants or
/// runs, whichever is more (a service scaling out has desired ahead of running; one whose
/// desired count was just lowered still serves with the tasks it runs).
pub fn needed(live_desired: i32, live_running: i32) -> i32 {
    live_desired.max(live_running).max(1)
}

/// What to do about the new slot now: `Some(count)` to scale it to, when it wants fewer tasks
/// than `need`; `None` when its desired count is enough (it is never scaled down).
pub fn scale_to(target_desired: i32, need: i32) -> Option<i32> {
    (target_desired < need).then_some(need)
}

/// Makes `target` match production's current task count before traffic moves to it: scales
/// it up (a fenced side effect, noted on the timeline by `step`) and reports whether it is
/// ready — as many running tasks and healthy targets as production's count.
pub async fn ensure(
    ctx: &Context,
    deployment: &Deployment,
    target: Slot,
    step: &str,
) -> StepResult<Capacity> {
    let config = &deployment.config;
    carry_autoscaling(ctx, deployment, target, step).await?;
    let live_name = &config.slots.get(target.other()).service;
    let target_name = &config.slots.get(target).service;
    let live = ecs::describe_service(ctx, &config.cluster, live_name).await?;
    let current = ecs::describe_service(ctx, &config.cluster, target_name).await?;
    let need = needed(live.desired_count, live.running_count);
    if let Some(count) = scale_to(current.desired_count, need) {
        crate::fence::guard(ctx, &deployment.deployment_id, "scaling the new slot").await?;
        ecs::update_service(ctx, &config.cluster, target_name, None, count).await?;
        let detail = format!(
            "scaled {target} ({target_name}) from {} to {count} task(s) to match production \
             ({} wants {}, runs {})",
            current.desired_count,
            target.other(),
            live.desired_count,
            live.running_count
        );
        Records::new(ctx)
            .update(
                &deployment.deployment_id,
                Change::new().log(step, StepOutcome::Scaled, detail.clone(), ctx.now()),
            )
            .await?;
        return Ok(Capacity::Waiting(detail));
    }
    let healthy = health::target_health(ctx, config, target)
        .await?
        .iter()
        .filter(|t| t.state == "healthy")
        .count() as i32;
    if current.running_count < need || healthy < need {
        return Ok(Capacity::Waiting(format!(
            "{target} runs {}/{need} task(s) with {healthy}/{need} healthy target(s); traffic \
             moves once it matches production",
            current.running_count
        )));
    }
    Ok(Capacity::Ready)
}

/// Gives `target` production's autoscaling, serving (scale-in suspended through the bake):
/// with AWS, registering production's minimum raises the slot to it at once. Production's own
/// target is recorded and its scale-in frozen first (see [`autoscaling::freeze_production`]).
/// A policy that cannot be carried fails the switch before any traffic moves.
async fn carry_autoscaling(
    ctx: &Context,
    deployment: &Deployment,
    target: Slot,
    step: &str,
) -> StepResult<()> {
    let config = &deployment.config;
    let Some(carry) = autoscaling::plan_carry(ctx, config, target, Stance::Serving).await? else {
        return Ok(());
    };
    carry.refuse_uncarried(StepError::SwitchFailed)?;
    crate::fence::guard(ctx, &deployment.deployment_id, "carrying autoscaling").await?;
    let mut done: Vec<String> = autoscaling::freeze_production(ctx, deployment, target.other())
        .await?
        .into_iter()
        .collect();
    if !carry.is_empty() {
        autoscaling::carry(ctx, &carry).await?;
        done.push(carry.describe());
    }
    if done.is_empty() {
        return Ok(());
    }
    Records::new(ctx)
        .update(
            &deployment.deployment_id,
            Change::new().log(step, StepOutcome::Scaled, done.join("; "), ctx.now()),
        )
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_new_slot_needs_what_production_wants_or_runs_whichever_is_more() {
        assert_eq!(needed(12, 4), 12, "scaling out: desired is ahead");
        assert_eq!(needed(2, 5), 5, "scaling in: the tasks still serving count");
        assert_eq!(needed(0, 0), 1, "never onto nothing");
    }

    #[test]
    fn the_new_slot_is_scaled_up_never_down() {
        assert_eq!(scale_to(1, 12), Some(12));
        assert_eq!(scale_to(12, 12), None);
        assert_eq!(scale_to(20, 12), None);
    }
}
