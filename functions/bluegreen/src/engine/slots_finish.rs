//! The `slots` engine's finish: production wholly on the new slot, the new slot plain live
//! with production's autoscaling ([`autoscaling::hand_over`]), the old slot scaled to zero or
//! kept warm for the configured window (scheduled teardown scales it down after).

use chrono::Duration;

use super::Phase;
use crate::autoscaling;
use crate::context::Context;
use crate::ecs;
use crate::error::{StepError, StepResult};
use crate::naming::ROLE_WARM;
use crate::record::Deployment;
use crate::routing;

/// The `slots` engine's retirement of the old slot (`crate::engine::slots`): production must
/// be wholly on the new slot; the new slot becomes plain live with production's autoscaling,
/// and the old one is scaled to 0 or kept warm.
pub(crate) async fn retire_old_slot(ctx: &Context, deployment: &Deployment) -> StepResult<Phase> {
    let config = &deployment.config;
    let new = deployment.target_slot()?;
    let old = new.other();
    let state = routing::read_production(ctx, config).await?;
    if state.percent(new) != 100 {
        return Err(StepError::UnexpectedRouting(format!(
            "finish refused: production sends {}% to {new}, expected 100%",
            state.percent(new)
        )));
    }
    // Every other route too: one the switch did not move (a host rule, an HTTP listener)
    // would lose its traffic when the old slot scales down.
    routing::ensure_unrouted(ctx, config, old, "finish").await?;
    let mut done = vec![format!("{new} is live")];
    ecs::unmark_slot(ctx, &config.cluster, &config.slots.get(new).service).await?;
    // Before the old slot is scaled down: once at rest, no policy brings it back.
    done.extend(autoscaling::hand_over(ctx, deployment, new).await?);
    let old_name = &config.slots.get(old).service;
    let keep_warm = config.finish.keep_warm_seconds;
    if keep_warm == 0 {
        ecs::update_service(ctx, &config.cluster, old_name, None, 0).await?;
        ecs::unmark_slot(ctx, &config.cluster, old_name).await?;
        done.push(format!("{old_name} scaled to 0"));
    } else {
        // Warm for a fast rollback, not for callers: out of service discovery (Cloud Map)
        // until a rollback brings it back.
        ecs::ensure_registries(ctx, &config.cluster, old_name, &[]).await?;
        let until = ctx.now() + Duration::seconds(keep_warm as i64);
        let id = &deployment.deployment_id;
        ecs::mark_slot(ctx, &config.cluster, old_name, id, ROLE_WARM, until).await?;
        done.push(format!("{old_name} kept warm until {}", until.to_rfc3339()));
    }
    Ok(Phase::Done(done))
}
