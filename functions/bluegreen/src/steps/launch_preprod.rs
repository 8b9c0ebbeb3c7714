//! Launch pre-prod: run the pushed image, pinned by digest, on the idle slot's ECS service.
//!
//! `start` registers a task definition revision derived from the live slot's current one with
//! only the container image replaced (and, in isolated DB mode, the clone's endpoint), records
//! what the idle service looked like, and updates the idle service. `check` waits for the
//! service's primary deployment of that revision to complete.

use aws_sdk_ecs::types::{KeyValuePair, TaskDefinition, TaskDefinitionField};

use crate::config::{DbStrategy, Traffic};
use crate::context::Context;
use crate::ecs;
use crate::error::{StepError, StepResult};
use crate::naming::{TAG_DEPLOYMENT, TAG_EXPIRES, TAG_MANAGED, TAG_ROLE};
use crate::poll::{CheckInput, Poll, Started, pending};
use crate::record::{Change, Deployment, DnsTtl, PreprodState, Records, Status};
use crate::routing;

use super::{DeploymentRef, load_active, record_done, record_failed, start_once};

const STEP: &str = "launch_preprod";

/// Starts the pre-prod launch.
pub async fn start(ctx: &Context, input: &DeploymentRef) -> StepResult<Started> {
    let deployment = load_active(ctx, &input.deployment_id).await?;
    let config = &deployment.config;
    let target = deployment.target_slot()?;
    let idle_name = &config.slots.get(target).service;
    let preprod = match &deployment.preprod {
        Some(p) => p.clone(),
        None => {
            let live = ecs::describe_service(
                ctx,
                &config.cluster,
                &config.slots.get(target.other()).service,
            )
            .await?;
            let idle = ecs::describe_service(ctx, &config.cluster, idle_name).await?;
            let live_td =
                live.task_definition
                    .clone()
                    .ok_or_else(|| StepError::ResourceNotFound {
                        kind: "task definition of the live slot",
                        id: config.slots.get(target.other()).service.clone(),
                    })?;
            let task_definition_arn = register_task_definition(ctx, &deployment, &live_td).await?;
            let state = PreprodState {
                service: idle_name.clone(),
                task_definition_arn,
                previous_task_definition: idle.task_definition.clone().unwrap_or_default(),
                previous_desired_count: idle.desired_count,
                desired_count: config
                    .preprod
                    .desired_count
                    .unwrap_or(live.desired_count.max(1)),
            };
            // Recorded before the service changes, so abort can always put it back.
            Records::new(ctx)
                .update(
                    &deployment.deployment_id,
                    Change::new()
                        .set("preprod", &state)
                        .set("status", &Status::Preparing),
                )
                .await?;
            state
        }
    };
    ecs::update_service(
        ctx,
        &config.cluster,
        idle_name,
        Some(&preprod.task_definition_arn),
        preprod.desired_count,
    )
    .await?;
    let idle = ecs::describe_service(ctx, &config.cluster, idle_name).await?;
    if let Some(arn) = idle.service_arn.as_deref() {
        ecs::tag_resource(
            ctx,
            arn,
            vec![
                ecs::tag(TAG_MANAGED, "true"),
                ecs::tag(TAG_DEPLOYMENT, &deployment.deployment_id),
                ecs::tag(TAG_EXPIRES, &deployment.expires_at.to_rfc3339()),
                ecs::tag(TAG_ROLE, "preprod"),
            ],
        )
        .await?;
    }
    lower_dns_ttl(ctx, &deployment).await?;
    start_once(
        ctx,
        &deployment,
        STEP,
        config.preprod.launch_timeout_seconds,
        10,
        Change::new(),
    )
    .await
}

/// Checks whether the pre-prod service runs the new revision at the desired count.
pub async fn check(ctx: &Context, input: &CheckInput) -> StepResult<Poll> {
    let deployment = load_active(ctx, &input.deployment_id).await?;
    let preprod = deployment
        .preprod
        .clone()
        .ok_or_else(|| StepError::EventMalformed("launch check before launch start".into()))?;
    let service = ecs::describe_service(ctx, &deployment.config.cluster, &preprod.service).await?;
    let primary = service
        .deployments
        .unwrap_or_default()
        .into_iter()
        .find(|d| d.status.as_deref() == Some("PRIMARY"));
    let now = ctx.now();
    let Some(primary) = primary else {
        return fail_or_wait(
            ctx,
            &deployment,
            input,
            now,
            "no primary deployment yet".into(),
        )
        .await;
    };
    let rollout = primary
        .rollout_state
        .as_ref()
        .map(|s| s.as_str().to_owned())
        .unwrap_or_default();
    let ours = primary.task_definition.as_deref() == Some(preprod.task_definition_arn.as_str());
    let progress = format!(
        "rollout {rollout}, running {}/{}",
        primary.running_count, preprod.desired_count
    );
    if ours && rollout == "FAILED" {
        let reason = primary
            .rollout_state_reason
            .unwrap_or_else(|| "rollout failed".into());
        let err = StepError::LaunchFailed(format!("{} did not start: {reason}", preprod.service));
        return Err(record_failed(ctx, &deployment, STEP, err, Change::new()).await);
    }
    if ours && rollout == "COMPLETED" && primary.running_count >= preprod.desired_count {
        let detail = format!(
            "{} runs {} ({progress})",
            preprod.service, preprod.task_definition_arn
        );
        record_done(
            ctx,
            &deployment,
            STEP,
            &detail,
            Change::new().set("status", &crate::record::Status::Preprod),
        )
        .await?;
        return Ok(Poll::Done { detail });
    }
    fail_or_wait(ctx, &deployment, input, now, progress).await
}

async fn fail_or_wait(
    ctx: &Context,
    deployment: &Deployment,
    input: &CheckInput,
    now: chrono::DateTime<chrono::Utc>,
    progress: String,
) -> StepResult<Poll> {
    if now >= input.deadline {
        let err = StepError::LaunchFailed(format!("not stable by the deadline: {progress}"));
        return Err(record_failed(ctx, deployment, STEP, err, Change::new()).await);
    }
    Ok(pending(input, now, progress))
}

/// Registers (once) the pre-prod task definition: the live revision with the image pinned by
/// digest. A retry finds the revision an earlier attempt registered by its deployment tag.
async fn register_task_definition(
    ctx: &Context,
    deployment: &Deployment,
    live_task_definition: &str,
) -> StepResult<String> {
    let live = describe_task_definition(ctx, live_task_definition).await?;
    let family = live.0.family.clone().unwrap_or_default();
    let latest = describe_task_definition(ctx, &family).await?;
    if latest
        .1
        .iter()
        .any(|(k, v)| k == TAG_DEPLOYMENT && v == &deployment.deployment_id)
    {
        return Ok(latest.0.task_definition_arn.unwrap_or_default());
    }
    let config = &deployment.config;
    let mut containers = live.0.container_definitions.clone().unwrap_or_default();
    let container = containers
        .iter_mut()
        .find(|c| c.name.as_deref() == Some(config.container.as_str()))
        .ok_or_else(|| {
            StepError::ConfigInvalid(vec![format!(
                "container: {:?} is not a container of task definition {live_task_definition}",
                config.container
            )])
        })?;
    container.image = Some(deployment.image.pinned_uri());
    if config.database.strategy == DbStrategy::Isolated {
        let endpoint = deployment
            .clones
            .iter()
            .find(|c| c.purpose == "preprod")
            .and_then(|c| c.endpoint.clone())
            .ok_or_else(|| {
                StepError::SyncFailed("isolated mode: no clone endpoint; run sync DB first".into())
            })?;
        set_env(
            &mut container.environment,
            &config.database.endpoint_env,
            &endpoint,
        );
    }
    let td = live.0;
    let out = ctx
        .ecs
        .register_task_definition()
        .family(family)
        .set_container_definitions(Some(containers))
        .set_task_role_arn(td.task_role_arn)
        .set_execution_role_arn(td.execution_role_arn)
        .set_network_mode(td.network_mode)
        .set_volumes(td.volumes)
        .set_placement_constraints(td.placement_constraints)
        .set_requires_compatibilities(td.requires_compatibilities)
        .set_cpu(td.cpu)
        .set_memory(td.memory)
        .set_pid_mode(td.pid_mode)
        .set_ipc_mode(td.ipc_mode)
        .set_proxy_configuration(td.proxy_configuration)
        .set_ephemeral_storage(td.ephemeral_storage)
        .set_runtime_platform(td.runtime_platform)
        .tags(ecs::tag(TAG_MANAGED, "true"))
        .tags(ecs::tag(TAG_DEPLOYMENT, &deployment.deployment_id))
        .send()
        .await
        .map_err(|e| StepError::from_sdk("ecs:RegisterTaskDefinition", e))?;
    out.task_definition
        .and_then(|t| t.task_definition_arn)
        .ok_or_else(|| StepError::AwsTransient {
            operation: "ecs:RegisterTaskDefinition",
            message: "no task definition in the response".into(),
        })
}

/// A task definition and its tags.
pub(crate) async fn describe_task_definition(
    ctx: &Context,
    name: &str,
) -> StepResult<(TaskDefinition, Vec<(String, String)>)> {
    let out = ctx
        .ecs
        .describe_task_definition()
        .task_definition(name)
        .include(TaskDefinitionField::Tags)
        .send()
        .await
        .map_err(|e| match e.as_service_error() {
            Some(s) if s.is_client_exception() => StepError::ResourceNotFound {
                kind: "task definition",
                id: name.to_owned(),
            },
            _ => StepError::from_sdk("ecs:DescribeTaskDefinition", e),
        })?;
    let tags = out
        .tags
        .unwrap_or_default()
        .into_iter()
        .map(|t| (t.key.unwrap_or_default(), t.value.unwrap_or_default()))
        .collect();
    let td = out
        .task_definition
        .ok_or_else(|| StepError::ResourceNotFound {
            kind: "task definition",
            id: name.to_owned(),
        })?;
    Ok((td, tags))
}

/// Sets (or replaces) one environment variable.
pub(crate) fn set_env(env: &mut Option<Vec<KeyValuePair>>, name: &str, value: &str) {
    let vars = env.get_or_insert_with(Vec::new);
    vars.retain(|kv| kv.name.as_deref() != Some(name));
    vars.push(KeyValuePair::builder().name(name).value(value).build());
}

/// DNS mode: lower the records' TTL ahead of the switch (once), remembering the old one.
async fn lower_dns_ttl(ctx: &Context, deployment: &Deployment) -> StepResult<()> {
    let Traffic::Dns {
        switch_ttl_seconds, ..
    } = &deployment.config.traffic
    else {
        return Ok(());
    };
    if deployment.dns_ttl.is_some() {
        return Ok(());
    }
    let state = routing::read_production(ctx, &deployment.config).await?;
    let previous = state.ttl.unwrap_or(*switch_ttl_seconds as i64);
    if previous > *switch_ttl_seconds as i64 {
        routing::set_dns_ttl(ctx, &deployment.config, *switch_ttl_seconds as i64).await?;
    }
    Records::new(ctx)
        .update(
            &deployment.deployment_id,
            Change::new().set(
                "dns_ttl",
                &DnsTtl {
                    previous,
                    lowered_at: ctx.now(),
                },
            ),
        )
        .await
}
