//! Rollback: the failure path after the switch. Sends all production traffic back to the old
//! slot and verifies it, points the test listener at the failed slot, scales the failed slot to
//! zero, starts the optional rollback-migration command, and ends the deployment.
//!
//! Schema is never reverted silently: without an explicit `rollback_command`, the schema stays
//! as the migration left it (migrations must be backward compatible in `shared` mode).

use crate::context::Context;
use crate::ecs;
use crate::error::{StepError, StepResult};
use crate::naming::{self, TAG_EXPIRES, TAG_ROLE};
use crate::record::{Change, Records, Status};
use crate::routing;

use super::FailureInput;
use super::cleanup::{self, Ended};
use super::migrate;

const STEP: &str = "rollback";

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
    if routing::read_production(ctx, config).await?.percent(old) != 100 {
        routing::set_production(ctx, config, old, 100).await?;
    }
    let after = routing::read_production(ctx, config).await?;
    if after.percent(old) != 100 {
        return Err(StepError::RollbackFailed(format!(
            "wrote 100% to {old} but read back {}%",
            after.percent(old)
        )));
    }
    done.push(format!("production traffic back on {old}"));
    routing::point_test_listener(ctx, config, failed).await?;
    if let Some(preprod) = &deployment.preprod {
        ecs::update_service(ctx, &config.cluster, &preprod.service, None, 0).await?;
        let service = ecs::describe_service(ctx, &config.cluster, &preprod.service).await?;
        if let Some(arn) = service.service_arn.as_deref() {
            ecs::untag_resource(ctx, arn, &[TAG_ROLE, TAG_EXPIRES]).await?;
        }
        done.push(format!("{} scaled to 0", preprod.service));
    }
    if let Some(command) = config
        .migration
        .as_ref()
        .and_then(|m| m.rollback_command.clone())
    {
        let started_by = naming::started_by(&deployment.deployment_id, "rollback");
        let task = match migrate::find_task(ctx, config, &started_by).await? {
            Some(task) => task,
            None => migrate::run_task(ctx, &deployment, &started_by, &command, None).await?,
        };
        let arn = task.task_arn.unwrap_or_default();
        Records::new(ctx)
            .update(
                &deployment.deployment_id,
                Change::new().set("rollback_task_arn", &arn),
            )
            .await?;
        done.push(format!("rollback migration started as {arn}"));
    }
    let clones = cleanup::delete_clones(ctx, &deployment).await?;
    if !clones.is_empty() {
        done.push(format!("deleted clones {}", clones.join(", ")));
    }
    cleanup::restore_dns_ttl(ctx, &deployment).await?;
    cleanup::end(
        ctx,
        &deployment,
        Status::RolledBack,
        STEP,
        done.join("; "),
        Some(input.describe()),
    )
    .await
}
