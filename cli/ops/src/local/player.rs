//! Plays, on an emulator, the parts of AWS that act on their own while a deployment runs: the
//! ECS scheduler completes each service's rollout and registers its tasks in its target groups
//! (ELB reports them healthy), and the container runtime ends bluegreen's one-off tasks
//! (migrations) with exit code 0. Through the emulator's control routes, for every service of
//! every cluster — the walk's own services, whatever their names.

use std::time::Duration;

use aws_sdk_ecs::types::{DesiredStatus, Service};
use aws_sdk_elasticloadbalancingv2::types::TargetDescription;
use bluegreen::context::Context;
use bluegreen::error::{StepError, StepResult};
use serde_json::json;

/// The emulator's control routes.
#[derive(Clone)]
pub struct Control {
    endpoint: String,
    http: reqwest::Client,
}

impl Control {
    /// The control routes of the emulator at `endpoint`.
    pub fn new(endpoint: &str) -> Self {
        Control {
            endpoint: endpoint.trim_end_matches('/').to_owned(),
            http: reqwest::Client::new(),
        }
    }

    /// Calls a control route (`GET` without a body, else `POST` with `body`).
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        body: serde_json::Value,
    ) -> StepResult<serde_json::Value> {
        let url = format!("{}{path}", self.endpoint);
        let request = match method {
            "GET" => self.http.get(url),
            _ => self.http.post(url).body(body.to_string()),
        };
        let failed = |e: String| StepError::Internal(format!("emulator control {path}: {e}"));
        let response = request.send().await.map_err(|e| failed(e.to_string()))?;
        let ok = response.status().is_success();
        let text = response.text().await.map_err(|e| failed(e.to_string()))?;
        if !ok {
            return Err(failed(text));
        }
        serde_json::from_str(&text).map_err(|e| failed(e.to_string()))
    }
}

/// Plays until the process ends, a look every 200 ms; a failed look is tried again (the
/// world is being changed under it).
pub async fn play(ctx: &Context, control: &Control) {
    loop {
        if let Err(e) = once(ctx, control).await {
            tracing::debug!(error = %e, "play again");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// One look at every cluster.
pub async fn once(ctx: &Context, control: &Control) -> StepResult<()> {
    let ecs = &ctx.sdk()?.ecs;
    let clusters = ecs
        .list_clusters()
        .send()
        .await
        .map_err(|e| StepError::from_sdk("ecs:ListClusters", e))?;
    for cluster in clusters.cluster_arns() {
        let name = cluster.rsplit('/').next().unwrap_or(cluster);
        for service in services(ctx, name).await? {
            settle(ctx, control, name, &service).await?;
        }
        end_one_off_tasks(ctx, control, name).await?;
    }
    Ok(())
}

/// The cluster's active services.
async fn services(ctx: &Context, cluster: &str) -> StepResult<Vec<Service>> {
    let ecs = &ctx.sdk()?.ecs;
    let arns = ecs
        .list_services()
        .cluster(cluster)
        .send()
        .await
        .map_err(|e| StepError::from_sdk("ecs:ListServices", e))?
        .service_arns
        .unwrap_or_default();
    let mut all = Vec::new();
    for batch in arns.chunks(10) {
        let out = ecs
            .describe_services()
            .cluster(cluster)
            .set_services(Some(batch.to_vec()))
            .send()
            .await
            .map_err(|e| StepError::from_sdk("ecs:DescribeServices", e))?;
        all.extend(
            out.services
                .unwrap_or_default()
                .into_iter()
                .filter(|s| s.status.as_deref() == Some("ACTIVE")),
        );
    }
    Ok(all)
}

/// The scheduler: a service with tasks wanted has its rollout completed and as many targets
/// registered in each of its target groups as it wants tasks.
async fn settle(
    ctx: &Context,
    control: &Control,
    cluster: &str,
    service: &Service,
) -> StepResult<()> {
    if service.desired_count == 0 {
        return Ok(());
    }
    let name = service.service_name.as_deref().unwrap_or_default();
    let settled = service.deployments().iter().any(|d| {
        d.status.as_deref() == Some("PRIMARY")
            && d.task_definition == service.task_definition
            && d.rollout_state.as_ref().map(|s| s.as_str()) == Some("COMPLETED")
            && d.running_count >= service.desired_count
    });
    if !settled {
        let body = json!({"cluster": cluster, "service": name, "state": "COMPLETED"});
        control
            .call("POST", "/_bluegreen/ecs/rollout", body)
            .await?;
    }
    for balancer in service.load_balancers() {
        if let Some(group) = &balancer.target_group_arn {
            let port = balancer.container_port.unwrap_or(80);
            register(ctx, group, port, service.desired_count).await?;
        }
    }
    Ok(())
}

/// Registers targets in `group` until it has `count`, each an address of its own.
async fn register(ctx: &Context, group: &str, port: i32, count: i32) -> StepResult<()> {
    let elb = &ctx.sdk()?.elb;
    let health = elb
        .describe_target_health()
        .target_group_arn(group)
        .send()
        .await
        .map_err(|e| StepError::from_sdk("elasticloadbalancing:DescribeTargetHealth", e))?;
    let registered = health.target_health_descriptions().len() as i32;
    if registered >= count {
        return Ok(());
    }
    // The group's own address block: no two groups register the same address.
    let block: u32 = group.bytes().map(u32::from).sum::<u32>() % 250;
    let mut call = elb.register_targets().target_group_arn(group);
    for i in registered..count {
        let id = format!("10.{}.{}.{}", 100 + block % 100, block, 10 + i);
        call = call.targets(TargetDescription::builder().id(id).port(port).build());
    }
    call.send()
        .await
        .map_err(|e| StepError::from_sdk("elasticloadbalancing:RegisterTargets", e))?;
    Ok(())
}

/// The container runtime: bluegreen's one-off tasks (migrations: `startedBy` bg-…) exit 0.
async fn end_one_off_tasks(ctx: &Context, control: &Control, cluster: &str) -> StepResult<()> {
    let ecs = &ctx.sdk()?.ecs;
    let arns = ecs
        .list_tasks()
        .cluster(cluster)
        .desired_status(DesiredStatus::Running)
        .send()
        .await
        .map_err(|e| StepError::from_sdk("ecs:ListTasks", e))?
        .task_arns
        .unwrap_or_default();
    if arns.is_empty() {
        return Ok(());
    }
    let tasks = ecs
        .describe_tasks()
        .cluster(cluster)
        .set_tasks(Some(arns))
        .send()
        .await
        .map_err(|e| StepError::from_sdk("ecs:DescribeTasks", e))?
        .tasks
        .unwrap_or_default();
    for task in tasks {
        let one_off = task
            .started_by
            .as_deref()
            .is_some_and(|s| s.starts_with("bg-"));
        if one_off && task.last_status.as_deref() != Some("STOPPED") {
            let body = json!({"task_arn": task.task_arn, "exit_code": 0,
                              "stop_code": "EssentialContainerExited"});
            control
                .call("POST", "/_bluegreen/ecs/task-stopped", body)
                .await?;
        }
    }
    Ok(())
}
