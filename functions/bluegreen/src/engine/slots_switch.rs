//! The `slots` engine's switch: production's routes moved to the new slot — all at once, or in
//! canary/linear steps — and read back; the test listener pointed at the old slot.
//!
//! Every call computes the traffic share the new slot should have *now* from the time the
//! switch began, so the switch's `start` and each `check` are idempotent. In DNS mode the
//! switch waits until the TTL lowered at launch has had time to reach resolvers, and for Route
//! 53 to be INSYNC.

use chrono::{DateTime, Duration, Utc};

use crate::capacity::{self, Capacity};
use crate::config::{Shift, TestRoute};
use crate::context::Context;
use crate::db_guard;
use crate::ecs;
use crate::error::{StepError, StepResult};
use crate::poll::Poll;
use crate::record::StepOutcome;
use crate::record::{Change, Deployment, Records, Status};
use crate::routing;
use crate::slot::Slot;
use crate::step_log::{record_done, record_failed};
use crate::traffic_mode;

/// The switch step's name on the record (`crate::steps::switch::STEP`; a test there keeps
/// them one).
pub(crate) const NAME: &str = "switch";

/// How often the switch looks at a new slot still starting the tasks production needs.
const CAPACITY_POLL_SECONDS: u64 = 15;

/// How often the switch looks at a pending Route 53 change: changes usually reach INSYNC
/// within a minute, and each look is one cheap GetChange.
const ROUTE53_SYNC_POLL_SECONDS: u64 = 10;

/// `Some(pending)` while the new slot does not yet run production's current task count
/// (see [`crate::capacity`]); it is scaled up on the first look. Past the switch's deadline
/// it is `SwitchFailed`: traffic did not move onto a slot too small for it.
async fn capacity_wait(
    ctx: &Context,
    deployment: &Deployment,
    target: crate::Slot,
    deadline: DateTime<Utc>,
) -> StepResult<Option<Poll>> {
    Ok(
        match capacity::ensure(ctx, deployment, target, NAME).await? {
            Capacity::Ready => None,
            Capacity::Waiting(detail) if ctx.now() >= deadline => {
                let err = StepError::SwitchFailed(format!(
                    "the new slot did not match production's task count by the deadline: {detail}"
                ));
                return Err(record_failed(ctx, deployment, NAME, err, Change::new()).await);
            }
            Capacity::Waiting(detail) => Some(Poll::Pending {
                wait_seconds: CAPACITY_POLL_SECONDS,
                attempt: 0,
                detail,
                scheduled: false,
                wake_on: None,
            }),
        },
    )
}

/// How long the DNS TTL wait still has to run.
pub(crate) fn ttl_wait(ctx: &Context, deployment: &Deployment) -> Duration {
    match &deployment.dns_ttl {
        Some(ttl) => ttl.lowered_at + Duration::seconds(ttl.previous) - ctx.now(),
        None => Duration::zero(),
    }
}

/// How long the planned traffic shift takes (canary, linear).
pub(crate) fn shift_duration(deployment: &Deployment) -> u64 {
    match traffic_mode::of(&deployment.config).shift() {
        Some(Shift::Canary {
            interval_seconds, ..
        }) => *interval_seconds,
        Some(Shift::Linear {
            step_percent,
            interval_seconds,
        }) => interval_seconds * (100 / u64::from(*step_percent).max(1) + 1),
        None => 0,
    }
}

/// The new slot's share `elapsed` after the switch began, and when the next step is due.
pub fn schedule(shift: Option<&Shift>, elapsed: Duration) -> (i64, Option<Duration>) {
    let secs = elapsed.num_seconds().max(0);
    match shift {
        None => (100, None),
        Some(Shift::Canary {
            percent,
            interval_seconds,
        }) => {
            let interval = *interval_seconds as i64;
            if secs < interval {
                (
                    i64::from(*percent),
                    Some(Duration::seconds(interval - secs)),
                )
            } else {
                (100, None)
            }
        }
        Some(Shift::Linear {
            step_percent,
            interval_seconds,
        }) => {
            let interval = (*interval_seconds as i64).max(1);
            let steps = secs / interval + 1;
            let percent = (i64::from(*step_percent) * steps).min(100);
            if percent >= 100 {
                (100, None)
            } else {
                (percent, Some(Duration::seconds(steps * interval - secs)))
            }
        }
    }
}

/// When the switch began: from the record, or now (written with the `switching` status, which
/// an abort request fences out). With the `ecs` engine that status is what lets bluegreen's
/// lifecycle hook open ECS's test gate.
pub(crate) async fn switched_at(
    ctx: &Context,
    deployment: &Deployment,
    target: crate::Slot,
    now: DateTime<Utc>,
) -> StepResult<DateTime<Utc>> {
    if let Some(at) = deployment.switched_at {
        return Ok(at);
    }
    Records::new(ctx)
        .update(
            &deployment.deployment_id,
            Change::new()
                .switched_at(now)
                .status(Status::Switching)
                .log(
                    NAME,
                    StepOutcome::TrafficMoving,
                    format!("to {target}"),
                    now,
                ),
        )
        .await?;
    Ok(now)
}

/// Before production's first request reaches it, the new slot gets the live slot's service
/// registries (Cloud Map), which launch took away: callers that find the service through
/// service discovery reach it from now on, as the load balancer's do. ECS rolls the slot out
/// again to register its tasks; the old slot's stay registered until finish scales it down.
/// Cloud Map has no weights: during a canary its callers are spread by task count, not by the
/// canary's share.
async fn registries_follow(ctx: &Context, deployment: &Deployment, target: Slot) -> StepResult<()> {
    let config = &deployment.config;
    let live = ecs::describe_service(
        ctx,
        &config.cluster,
        &config.slots.get(target.other()).service,
    )
    .await?;
    ecs::ensure_registries(
        ctx,
        &config.cluster,
        &config.slots.get(target).service,
        &live.registries,
    )
    .await?;
    Ok(())
}

/// `Some(pending)` until resolvers have dropped answers cached with the TTL from before it was
/// lowered (DNS mode): a schedule, nothing to look at meanwhile.
fn ttl_pending(ctx: &Context, deployment: &Deployment) -> Option<Poll> {
    let wait = ttl_wait(ctx, deployment);
    (wait > Duration::zero()).then(|| Poll::Pending {
        // Rounded up: rounded down, the wait ended just before the TTL did.
        wait_seconds: (wait.num_milliseconds().max(1) as u64).div_ceil(1000),
        attempt: 0,
        detail: "waiting for the old DNS TTL to expire before switching".into(),
        scheduled: true,
        wake_on: None,
    })
}

/// The `slots` engine's switch (`crate::engine::slots`): the new slot scaled to production's
/// count, then production's routes moved to it, all at once or step by step.
pub(crate) async fn on_slots(
    ctx: &Context,
    deployment: &Deployment,
    deadline: DateTime<Utc>,
) -> StepResult<Poll> {
    let config = &deployment.config;
    let target = deployment.target_slot()?;
    let now = ctx.now();
    if let Some(waiting) = ttl_pending(ctx, deployment) {
        return Ok(waiting);
    }
    // Capacity follows production: the first move waits (before the switch begins, so an
    // abort is still an abort) until the new slot runs production's current task count.
    if deployment.switched_at.is_none()
        && let Some(waiting) = capacity_wait(ctx, deployment, target, deadline).await?
    {
        return Ok(waiting);
    }
    let switched_at = switched_at(ctx, deployment, target, now).await?;
    let (percent, next) = schedule(traffic_mode::of(config).shift(), now - switched_at);
    // The Route 53 change this step wrote last (on the record, since an earlier check may
    // have written it).
    let mut dns_change = deployment.dns_change_id.clone();
    let current = routing::read_production(ctx, config).await?;
    // Each later canary or linear step waits for capacity too: production may have scaled out
    // meanwhile.
    if current.percent(target) != percent
        && deployment.switched_at.is_some()
        && let Some(waiting) = capacity_wait(ctx, deployment, target, deadline).await?
    {
        return Ok(waiting);
    }
    // Also when production has its share but something follows it (rule mode's default, other
    // routes): an interrupted attempt may have left them, and a move writes only what differs.
    // Without followers (DNS mode's INSYNC looks) a look at production is enough.
    if (current.percent(target) != percent || traffic_mode::of(config).has_followers())
        && let Some(id) = move_traffic(ctx, deployment, target, percent).await?
    {
        dns_change = Some(id);
    }
    if let Some(change_id) = dns_change
        && !routing::change_in_sync(ctx, &change_id).await?
    {
        if now >= deadline {
            let err = StepError::SwitchFailed(format!(
                "Route 53 change {change_id} not INSYNC by the deadline"
            ));
            return Err(record_failed(ctx, deployment, NAME, err, Change::new()).await);
        }
        return Ok(Poll::Pending {
            wait_seconds: ROUTE53_SYNC_POLL_SECONDS,
            attempt: 0,
            detail: format!("{percent}% on {target}; waiting for Route 53 INSYNC"),
            scheduled: false,
            wake_on: None,
        });
    }
    if let Some(next) = next {
        return Ok(Poll::Pending {
            wait_seconds: next.num_seconds().max(1) as u64,
            attempt: 0,
            detail: format!("{percent}% of production traffic on {target}"),
            scheduled: true,
            wake_on: None,
        });
    }
    let detail = test_listener_to_the_old_slot(ctx, config, target).await?;
    record_done(ctx, deployment, NAME, &detail, Change::new()).await?;
    Ok(Poll::Done { detail })
}

/// Once production is wholly on `target`, the test listener goes to the old slot; what the
/// switch did, for the record.
async fn test_listener_to_the_old_slot(
    ctx: &Context,
    config: &crate::config::ServiceConfig,
    target: Slot,
) -> StepResult<String> {
    routing::point_test_listener(ctx, config, target.other()).await?;
    Ok(match config.traffic.test_route() {
        TestRoute::Listener(_) => format!(
            "100% of production traffic on {target}; test listener on {}",
            target.other()
        ),
        // A test rule is the deployment's own (gone at its ending); in DNS mode each slot
        // keeps its own test endpoint.
        TestRoute::Rule(_) | TestRoute::SlotUrls | TestRoute::Ecs => {
            format!("100% of production traffic on {target}")
        }
    })
}

/// Moves `percent` of production traffic to `target` — never onto a slot that would use a
/// database clone, never after an abort was requested — and reads it back. Returns the Route 53
/// change it made (DNS mode), recorded so a later check follows it to INSYNC.
async fn move_traffic(
    ctx: &Context,
    deployment: &Deployment,
    target: crate::Slot,
    percent: i64,
) -> StepResult<Option<String>> {
    let deployment_id = &deployment.deployment_id;
    // Independent of the flow that should already have re-pointed it: no traffic moves to a
    // slot that would use a database clone.
    if let Err(err) = db_guard::ensure_production_database(ctx, deployment, target).await {
        return Err(record_failed(ctx, deployment, NAME, err, Change::new()).await);
    }
    crate::fence::guard(ctx, deployment_id, "moving production traffic").await?;
    // After the guards, before the routes: found by Cloud Map's callers as by the load
    // balancer's (a no-op once done, so each step checks it, a retry after a crash too).
    registries_follow(ctx, deployment, target).await?;
    let change = match routing::set_production_verified(
        ctx,
        &deployment.config,
        target,
        percent,
        routing::Move::Forward,
    )
    .await?
    {
        Ok(change) => change,
        Err(mismatch) => {
            let err = StepError::SwitchFailed(mismatch);
            return Err(record_failed(ctx, deployment, NAME, err, Change::new()).await);
        }
    };
    if let Some(id) = &change {
        Records::new(ctx)
            .update(deployment_id, Change::new().dns_change_id(id))
            .await?;
    }
    Ok(change)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canary_sends_its_share_until_the_interval_ends_then_everything() {
        let canary = Shift::Canary {
            percent: 10,
            interval_seconds: 300,
        };
        assert_eq!(
            schedule(Some(&canary), Duration::seconds(0)),
            (10, Some(Duration::seconds(300)))
        );
        assert_eq!(schedule(Some(&canary), Duration::seconds(299)).0, 10);
        assert_eq!(schedule(Some(&canary), Duration::seconds(300)), (100, None));
    }

    #[test]
    fn linear_adds_a_step_per_interval_and_ends_at_one_hundred() {
        let linear = Shift::Linear {
            step_percent: 25,
            interval_seconds: 60,
        };
        let shares: Vec<i64> = [0, 59, 60, 120, 180, 240]
            .iter()
            .map(|s| schedule(Some(&linear), Duration::seconds(*s)).0)
            .collect();
        assert_eq!(shares, vec![25, 25, 50, 75, 100, 100]);
        assert_eq!(schedule(None, Duration::zero()), (100, None));
    }
}
