//! Abort: the failure path before the switch. Puts the pre-prod slot back the way it was,
//! stops a running migration, runs the rollback migration when the production migration had
//! succeeded (and waits for it), then the shared ending: maintenance off, clones deleted, DNS
//! TTL restored, lock released.
//!
//! Abort never touches production routing, and refuses to act if production no longer runs
//! entirely on the old slot — scaling down a slot that serves traffic would leave production
//! without a healthy side.

use crate::context::Context;
use crate::ecs;
use crate::error::{StepError, StepResult};
use crate::naming::{TAG_EXPIRES, TAG_ROLE};
use crate::record::{Records, Status};
use crate::routing;

use crate::migration;

use super::FailureInput;
use super::cleanup::{self, Ended};

const STEP: &str = super::registry::ABORT.name;

/// Aborts the deployment.
pub async fn run(ctx: &Context, input: &FailureInput) -> StepResult<Ended> {
    let deployment = Records::new(ctx).get(&input.deployment_id).await?;
    if deployment.status.is_terminal() {
        return Ok(Ended::of(&deployment));
    }
    let config = &deployment.config;
    let mut done = Vec::new();
    if let Some(old) = deployment.live_slot {
        let state = routing::read_production(ctx, config).await?;
        if state.weight(old.other()) > 0 {
            return Err(StepError::UnexpectedRouting(format!(
                "abort refused: production sends {}% to {} (the pre-prod slot); use rollback",
                state.percent(old.other()),
                old.other()
            )));
        }
        routing::point_test_listener(ctx, config, old.other()).await?;
    }
    done.extend(migration::stop_running(ctx, &deployment).await?);
    if let Some(preprod) = &deployment.preprod {
        let previous = (!preprod.previous_task_definition.is_empty())
            .then_some(preprod.previous_task_definition.as_str());
        ecs::update_service(
            ctx,
            &config.cluster,
            &preprod.service,
            previous,
            preprod.previous_desired_count,
        )
        .await?;
        let service = ecs::describe_service(ctx, &config.cluster, &preprod.service).await?;
        if let Some(arn) = service.service_arn.as_deref() {
            ecs::untag_resource(ctx, arn, &[TAG_ROLE, TAG_EXPIRES]).await?;
        }
        done.push(format!(
            "{} back to {} task(s) of its previous revision",
            preprod.service, preprod.previous_desired_count
        ));
    }
    // Stopped tasks are recorded by now; read what the record says about production's schema.
    let deployment = Records::new(ctx).get(&input.deployment_id).await?;
    let status =
        match cleanup::settle_rollback_migration(ctx, &deployment, Status::Aborted, &mut done)
            .await?
        {
            Ok(status) => status,
            Err(waiting) => return Ok(waiting),
        };
    done.push("production traffic untouched".into());
    cleanup::close(
        ctx,
        &deployment,
        status,
        STEP,
        done.into_iter().filter(|d| !d.is_empty()).collect(),
        Some(input.describe()),
    )
    .await
}
