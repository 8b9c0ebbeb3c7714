//! `isolated` on ECS's engine (DESIGN 28): pre-prod in a service of its own.
//!
//! ECS's deployment of the one service cannot run pre-prod: the clone's revision would become
//! the service's, and ECS's next stages put it in production. So the launch creates a service
//! for the deployment ([`crate::naming::preprod_service_name`], tagged with it) running the
//! pre-prod revision, registered in the alternate target group — the one ECS's next deployment
//! brings the new revision up in, empty at rest — and reached by bluegreen's header rule
//! (`crate::test_rule`, above every rule of the service). Production's rules keep no weight on
//! that group, so no user reaches it.
//!
//! After the approval, promote migrates production, then hands over ([`hand_over`]): the rule
//! goes, the service is deleted, and only once its tasks left the group does ECS's deployment
//! of the production revision start (its new tasks must be the only ones the test and then
//! production rules reach there). From then on the deployment is the `shared` one: the record
//! names the production revision and ECS's deployment, and bluegreen's hook holds it at the
//! test gate until the switch. An abort before the hand-over deletes the service the same way.

use crate::config::{ServiceConfig, TestRule};
use crate::context::Context;
use crate::ecs::{self, Rollout};
use crate::error::{StepError, StepResult};
use crate::naming::{ROLE_OWN_PREPROD, TAG_DEPLOYMENT, TAG_MANAGED, TAG_ROLE, TAG_SERVICE};
use crate::ports::compute::NewService;
use crate::record::{Change, Deployment, PreprodState, Records, StepOutcome};
use crate::test_rule;

use super::PreprodRoute;

/// Timeline step: pre-prod's service deleted and its tasks gone from the group (the hand-over).
pub const REMOVED: &str = "ecs_preprod_removed";

/// Whether `config`'s pre-prod runs in a service of its own: `isolated` (its revision reads
/// the clone).
pub fn has_own_service(config: &ServiceConfig) -> bool {
    crate::db_plan::preprod_on_clone(config)
}

/// The header rule's settings: `traffic.test_rule`, else the default header.
fn rule_of(config: &ServiceConfig) -> TestRule {
    config.traffic.header_rule()
}

/// How many tasks pre-prod runs: `preprod.desired_count`, else production's count (at least
/// one).
pub fn desired_count(config: &ServiceConfig, production: i32) -> i32 {
    config.preprod.desired_count.unwrap_or(production.max(1))
}

/// Creates pre-prod's service `name` once: a retry finds it. Refused (`LaunchFailed`) when the
/// alternate group already has targets — something else registers there (a pre-prod service
/// an earlier ending could not delete, another service), and the smoke checks would count them.
pub async fn launch(
    ctx: &Context,
    deployment: &Deployment,
    preprod: &PreprodState,
    name: &str,
) -> StepResult<()> {
    let config = &deployment.config;
    let target = deployment.target_slot()?;
    let group = &config.slots.get(target).target_group_arn;
    match ecs::describe_service(ctx, &config.cluster, name).await {
        Ok(_) => return Ok(()),
        Err(StepError::ResourceNotFound { .. }) => {}
        Err(e) => return Err(e),
    }
    refuse_occupied(ctx, group, "pre-prod's service").await?;
    // The rule first: ELB reports the targets of a group no rule forwards to as `unused`.
    test_rule::ensure_rule(ctx, deployment, &rule_of(config), target).await?;
    crate::fence::guard(
        ctx,
        &deployment.deployment_id,
        "creating pre-prod's service",
    )
    .await?;
    let new = NewService {
        cluster: config.cluster.clone(),
        name: name.to_owned(),
        like: preprod.service.clone(),
        task_definition: preprod.task_definition_arn.clone(),
        target_group: group.clone(),
        desired_count: preprod.desired_count,
        tags: vec![
            (TAG_MANAGED.to_owned(), "true".to_owned()),
            (TAG_DEPLOYMENT.to_owned(), deployment.deployment_id.clone()),
            (TAG_ROLE.to_owned(), ROLE_OWN_PREPROD.to_owned()),
            (TAG_SERVICE.to_owned(), config.name.clone()),
        ],
    };
    ctx.ports.compute.create_service(&new).await
}

/// Refuses (`LaunchFailed`) to bring `what` up in `group` while other targets are registered
/// there and not draining (draining ones take no new requests and are on their way out): a
/// pre-prod service an ending could not delete, another service. The smoke checks would count
/// them as the new release's, and after the switch production would reach them.
pub async fn refuse_occupied(ctx: &Context, group: &str, what: &str) -> StepResult<()> {
    let registered = ctx.ports.load_balancing.target_health(group).await?;
    let serving: Vec<&str> = registered
        .iter()
        .filter(|t| !matches!(t.state.as_str(), "draining" | "unhealthy.draining"))
        .map(|t| t.id.as_str())
        .collect();
    if serving.is_empty() {
        return Ok(());
    }
    Err(StepError::LaunchFailed(format!(
        "the alternate target group {group} has targets registered ({}) before {what} \
         started: is a pre-prod service of an earlier deployment (bg-…-preprod-…) still \
         running, or another service registered there? It must be empty at rest",
        serving.join(", ")
    )))
}

/// How pre-prod's service stands: completed once its deployment of the pre-prod revision ran
/// its count.
pub async fn launched(
    ctx: &Context,
    deployment: &Deployment,
    preprod: &PreprodState,
    name: &str,
) -> StepResult<Rollout> {
    let cluster = &deployment.config.cluster;
    ecs::rollout(
        ctx,
        cluster,
        name,
        &preprod.task_definition_arn,
        preprod.desired_count,
    )
    .await
}

/// Readies the header rule to pre-prod's service (idempotent).
pub async fn open_route(ctx: &Context, deployment: &Deployment) -> StepResult<()> {
    let config = &deployment.config;
    let target = deployment.target_slot()?;
    test_rule::ensure_rule(ctx, deployment, &rule_of(config), target).await
}

/// Where the health check finds pre-prod: the alternate group, through the header rule (after
/// its probe).
pub fn route(deployment: &Deployment) -> StepResult<PreprodRoute> {
    let rule = rule_of(&deployment.config);
    let id = &deployment.deployment_id;
    Ok(PreprodRoute {
        slot: deployment.target_slot()?,
        preview: Some((rule.header.clone(), id.clone())),
        probe: Some(test_rule::probe_of(&rule, id)),
    })
}

/// Takes pre-prod's service away: the header rule removed, the service deleted (again on
/// every call while ECS describes it active), then `Err(what)` until no target is left in
/// the group. `Ok(detail)` once the group is empty. Unfenced: the abort runs it (a promote racing it
/// deletes the same service, which is no harm).
pub async fn remove(
    ctx: &Context,
    deployment: &Deployment,
    name: &str,
) -> StepResult<Result<String, String>> {
    let config = &deployment.config;
    test_rule::remove(ctx, deployment).await?;
    // Only an active one: ECS does not document its answer to deleting a draining service.
    // (The launch's lease ends after its CreateService returned: an abort reads after it.)
    match ecs::describe_service(ctx, &config.cluster, name).await {
        Ok(_) => {
            ctx.ports
                .compute
                .delete_service(&config.cluster, name)
                .await?;
        }
        Err(StepError::ResourceNotFound { .. }) => {}
        Err(e) => return Err(e),
    }
    let group = &config.slots.get(deployment.target_slot()?).target_group_arn;
    let left = ctx.ports.load_balancing.target_health(group).await?;
    if !left.is_empty() {
        return Ok(Err(format!(
            "pre-prod's service {name} deleted; waiting for its {} target(s) to leave {group}",
            left.len()
        )));
    }
    Ok(Ok(format!(
        "pre-prod's service {name} deleted, its tasks gone from {group}"
    )))
}

/// Hands `preprod` over from pre-prod's service to ECS's deployment of `production_revision`
/// once [`remove`] says the group is empty: recorded (with the service's count, which ECS
/// keeps) before ECS's deployment starts, so the launch's ECS code finds and records it as its
/// own. `Err(what)` while the group drains.
pub async fn hand_over(
    ctx: &Context,
    deployment: &Deployment,
    preprod: &PreprodState,
    name: &str,
    production_revision: &str,
) -> StepResult<Result<PreprodState, String>> {
    // A promote still running beside its retry may have handed over already: its record
    // (with ECS's deployment, once found) is kept, and ECS's tasks in the group are not
    // waited for as if they were pre-prod's.
    let recorded = Records::new(ctx).get(&deployment.deployment_id).await?;
    if let Some(current) = recorded.preprod.filter(|p| p.ephemeral_service.is_none()) {
        return Ok(Ok(current));
    }
    crate::fence::guard(
        ctx,
        &deployment.deployment_id,
        "handing pre-prod over to ECS",
    )
    .await?;
    let detail = match remove(ctx, deployment, name).await? {
        Ok(detail) => detail,
        Err(waiting) => return Ok(Err(waiting)),
    };
    let service = ecs::describe_service(ctx, &deployment.config.cluster, &preprod.service).await?;
    let state = PreprodState {
        task_definition_arn: production_revision.to_owned(),
        desired_count: service.desired_count,
        ephemeral_service: None,
        ecs_deployment: None,
        ..preprod.clone()
    };
    let change =
        Change::new()
            .preprod(&state)
            .log(REMOVED, StepOutcome::Succeeded, detail, ctx.now());
    Records::new(ctx)
        .update(&deployment.deployment_id, change)
        .await?;
    Ok(Ok(state))
}
