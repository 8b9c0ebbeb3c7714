//! Rollback: the failure path after the switch. Sends all production traffic back to the old
//! slot and verifies it, points the test listener at the failed slot, scales the failed slot to
//! zero, runs the optional rollback migration and waits for it, then the shared ending.
//!
//! Schema is never reverted silently: without an explicit `rollback_command`, the schema stays
//! as the migration left it (migrations must be backward compatible). A rollback migration
//! that fails leaves the deployment needing a person, never "rolled back".

use chrono::{DateTime, Duration, Utc};

use crate::config::Traffic;
use crate::context::Context;
use crate::ecs;
use crate::error::{StepError, StepResult};
use crate::record::{Change, Deployment, Records, Status, StepOutcome};
use crate::routing;

use super::FailureInput;
use crate::ending::{self, Ended};

const STEP: &str = super::registry::ROLLBACK.name;

/// Rolls the deployment back.
pub async fn run(ctx: &Context, input: &FailureInput) -> StepResult<Ended> {
    let deployment = Records::new(ctx).get(&input.deployment_id).await?;
    if deployment.status.is_terminal() {
        return Ok(Ended::of(&deployment));
    }
    let config = &deployment.config;
    let old = deployment.old_slot()?;
    let failed = old.other();
    let mut done = Vec::new();
    routing::set_production_verified(ctx, config, old, 100)
        .await?
        .map_err(StepError::RollbackFailed)?;
    done.push(format!("production traffic back on {old}"));
    routing::point_test_listener(ctx, config, failed).await?;
    if let Some(until) = cached_answers_expire(ctx, &deployment).await? {
        let detail = format!(
            "production traffic back on {old}; {failed} keeps its tasks until resolvers' cached \
             answers for it expire ({})",
            until.to_rfc3339()
        );
        return Ok(Ended::waiting(&deployment, detail, until));
    }
    if let Some(preprod) = &deployment.preprod {
        ecs::update_service(ctx, &config.cluster, &preprod.service, None, 0).await?;
        ecs::unmark_slot(ctx, &config.cluster, &preprod.service).await?;
        done.push(format!("{} scaled to 0", preprod.service));
    }
    let status =
        match ending::settle_rollback_migration(ctx, &deployment, Status::RolledBack, &mut done)
            .await?
        {
            Ok(status) => status,
            Err(waiting) => return Ok(waiting),
        };
    ending::close(
        ctx,
        &deployment,
        status,
        STEP,
        done.into_iter().filter(|d| !d.is_empty()).collect(),
        Some(input.describe()),
    )
    .await
}

/// DNS mode: resolvers keep answering with the failed slot for up to the record's TTL after
/// the weights moved back, so its clients would fail if it were scaled down at once. The time
/// traffic went back is written to the timeline on the first call (a retry keeps it); `Some`
/// until that time plus the switch TTL. Listener mode moves traffic at once: `None`.
async fn cached_answers_expire(
    ctx: &Context,
    deployment: &Deployment,
) -> StepResult<Option<DateTime<Utc>>> {
    let Traffic::Dns {
        switch_ttl_seconds, ..
    } = &deployment.config.traffic
    else {
        return Ok(None);
    };
    let back_at = match super::started_at(deployment, STEP) {
        Some(at) => at,
        None => {
            let now = ctx.now();
            Records::new(ctx)
                .update_ending(
                    &deployment.deployment_id,
                    Change::new().log(STEP, StepOutcome::Started, "production traffic back", now),
                )
                .await?;
            now
        }
    };
    let until = back_at + Duration::seconds(*switch_ttl_seconds as i64);
    Ok((ctx.now() < until).then_some(until))
}
