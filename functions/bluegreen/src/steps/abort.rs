//! Abort: the failure path before the switch. Puts the pre-prod slot back the way it was,
//! stops a running migration, deletes clones, restores the DNS TTL, releases the lock.
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

use super::FailureInput;
use super::cleanup::{self, Ended};
use super::migrate;

const STEP: &str = "abort";

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
    migrate::stop_running(ctx, &deployment).await?;
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
    let clones = cleanup::delete_clones(ctx, &deployment).await?;
    if !clones.is_empty() {
        done.push(format!("deleted clones {}", clones.join(", ")));
    }
    cleanup::restore_dns_ttl(ctx, &deployment).await?;
    done.push("production untouched".into());
    cleanup::end(
        ctx,
        &deployment,
        Status::Aborted,
        STEP,
        done.join("; "),
        Some(input.describe()),
    )
    .await
}
