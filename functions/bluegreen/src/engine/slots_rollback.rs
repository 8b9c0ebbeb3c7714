//! The `slots` engine's rollback: production's routes back on the old slot and read back,
//! what follows production (Cloud Map, autoscaling) moved back with them, the test listener on
//! the failed slot, and — once no client can still reach it (DNS answers, NLB weights) — the
//! failed slot scaled to 0.

use chrono::{DateTime, Duration, Utc};

use super::Phase;
use crate::autoscaling;
use crate::config::DNS_IN_SYNC_BOUND_SECONDS;
use crate::context::Context;
use crate::ecs;
use crate::error::{StepError, StepResult};
use crate::ports::tables::Cond;
use crate::record::{Change, Deployment, DnsBack, Records, StepOutcome};
use crate::routing;
use crate::traffic_mode;

const STEP: &str = crate::step_table::ROLLBACK.name;

/// What follows production back to `old` besides its routes: callers that find the service
/// through Cloud Map leave the failed release, and `old`'s scale-in (frozen while traffic moved
/// away) is production's own target again. Each is a no-op once done.
async fn follow_production_back(
    ctx: &Context,
    deployment: &Deployment,
    old: crate::Slot,
) -> StepResult<()> {
    let config = &deployment.config;
    ecs::registries_to(
        ctx,
        &config.cluster,
        &config.slots.get(old.other()).service,
        &config.slots.get(old).service,
    )
    .await?;
    autoscaling::give_back(ctx, deployment, old).await
}

/// Rolls production back on the slots: production's routes back on the
/// old slot and read back, what follows production moved back with them, the test listener
/// on the failed slot, and — once no client can still reach it (DNS answers, NLB weights) —
/// the failed slot scaled to 0.
pub(crate) async fn on_slots(ctx: &Context, deployment: &Deployment) -> StepResult<Phase> {
    let config = &deployment.config;
    let old = deployment.old_slot()?;
    let failed = old.other();
    let mut done = Vec::new();
    let moved = routing::set_production_verified(ctx, config, old, 100, routing::Move::Back).await;
    // Retried, but production may be back already: then what follows it besides routes goes
    // before the retry (a rollback out of retries needs a person, and must not leave these on
    // the failed release meanwhile) — only then: while production is on the failed slot, its
    // registries and `old`'s frozen scale-in stay as they are.
    if moved.as_ref().is_err_and(StepError::is_retryable)
        && routing::read_production(ctx, config)
            .await
            .is_ok_and(|state| state.percent(old) == 100)
    {
        follow_production_back(ctx, deployment, old).await?;
    }
    let change = moved?.map_err(StepError::RollbackFailed)?;
    done.push(format!("production traffic back on {old}"));
    follow_production_back(ctx, deployment, old).await?;
    routing::point_test_listener(ctx, config, failed).await?;
    if let Some(wait) = cached_answers_expire(ctx, deployment, change).await? {
        let detail = match &wait {
            DnsWait::InSync { change_id, .. } => format!(
                "production traffic back on {old}; waiting for Route 53 to serve change \
                 {change_id} everywhere before the switch TTL starts to count"
            ),
            DnsWait::CachedAnswers(until) if config.traffic.on_nlb() => format!(
                "production traffic back on {old}; {failed} keeps its tasks until the NLB's \
                 weights settle ({}), holding the service so no deployment takes it meanwhile",
                until.to_rfc3339()
            ),
            DnsWait::CachedAnswers(until) => format!(
                "production traffic back on {old}; {failed} keeps its tasks until resolvers' \
                 cached answers for it expire ({})",
                until.to_rfc3339()
            ),
        };
        return Ok(Phase::Waiting {
            detail,
            until: wait.until(),
        });
    }
    if let Some(preprod) = &deployment.preprod {
        // At rest first: the switch gave it production's minimum.
        routing::ensure_unrouted(ctx, config, failed, "rollback's scale-down").await?;
        autoscaling::rest(ctx, &config.cluster, &preprod.service).await?;
        ecs::update_service(ctx, &config.cluster, &preprod.service, None, 0).await?;
        ecs::unmark_slot(ctx, &config.cluster, &preprod.service).await?;
        done.push(format!("{} scaled to 0", preprod.service));
    }
    Ok(Phase::Done(done))
}

/// What a DNS rollback still waits for before it scales the failed slot down.
#[derive(Debug, Clone, PartialEq)]
enum DnsWait {
    /// Route 53 has not reported the change INSYNC yet (until the bound).
    InSync {
        change_id: String,
        bound: DateTime<Utc>,
    },
    /// Resolvers may still hold the failed slot's answer until then.
    CachedAnswers(DateTime<Utc>),
}

impl DnsWait {
    fn until(&self) -> DateTime<Utc> {
        match self {
            DnsWait::InSync { bound, .. } => *bound,
            DnsWait::CachedAnswers(until) => *until,
        }
    }
}

/// DNS mode: resolvers keep answering with the failed slot for up to the record's TTL after
/// Route 53 serves the weights back everywhere (INSYNC), so its clients would fail if it were
/// scaled down at once. Behind an NLB new connections may reach it until the weights settle
/// ([`crate::config::NLB_WEIGHTS_SETTLE_SECONDS`]). The write (with `change`, the Route 53
/// change this call made, if any) and the moment it is first seen INSYNC (at once behind an
/// NLB) go on the record, so a retry keeps the same clock; the rollback waits holding the
/// service, so no queued deployment launches onto the slot meanwhile. `Some` while waiting;
/// behind an ALB traffic moves at once: `None`.
async fn cached_answers_expire(
    ctx: &Context,
    deployment: &Deployment,
    change: Option<String>,
) -> StepResult<Option<DnsWait>> {
    let traffic = &deployment.config.traffic;
    let linger = match traffic_mode::of(&deployment.config).cached_answers() {
        Some(answers) => answers.switch_ttl_seconds,
        None if traffic.on_nlb() => traffic.settle_seconds(),
        None => return Ok(None),
    };
    let records = Records::new(ctx);
    let now = ctx.now();
    let mut back = match &deployment.dns_back {
        Some(back) => back.clone(),
        None => {
            let back = DnsBack {
                change_id: change,
                written_at: now,
                in_sync_at: None,
            };
            // Once: a second run of the rollback at the same moment (which found the weights
            // already back, so knows no change id) must not write over the first's.
            let first = records
                .update_unless_ended(
                    &deployment.deployment_id,
                    Change::new().dns_back(&back).log(
                        STEP,
                        StepOutcome::Started,
                        "production traffic back",
                        now,
                    ),
                    Cond::absent("dns_back"),
                )
                .await?;
            if first {
                back
            } else {
                match records.get(&deployment.deployment_id).await?.dns_back {
                    Some(recorded) => recorded,
                    // The record has ended meanwhile: nothing is left to wait for.
                    None => return Ok(None),
                }
            }
        }
    };
    let in_sync_at = match back.in_sync_at {
        Some(at) => at,
        None => {
            let bound = back.written_at + Duration::seconds(DNS_IN_SYNC_BOUND_SECONDS as i64);
            if let Some(change_id) = &back.change_id
                && now < bound
                && !routing::change_in_sync(ctx, change_id).await?
            {
                return Ok(Some(DnsWait::InSync {
                    change_id: change_id.clone(),
                    bound,
                }));
            }
            back.in_sync_at = Some(now);
            records
                .update_ending(&deployment.deployment_id, Change::new().dns_back(&back))
                .await?;
            now
        }
    };
    let until = in_sync_at + Duration::seconds(linger as i64);
    Ok((now < until).then_some(DnsWait::CachedAnswers(until)))
}
