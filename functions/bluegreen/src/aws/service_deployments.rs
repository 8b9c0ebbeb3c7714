//! ECS's own blue/green through the SDK: how a service is set up to deploy, its service
//! deployments and revisions, and stopping one (the [`crate::ports::ServiceDeployments`]
//! methods of that name delegate here).

use aws_sdk_ecs::types::{Service, ServiceDeploymentStatus, StopServiceDeploymentStopType};

use crate::error::{StepError, StepResult};
use crate::ports::compute::{BlueGreenRoute, DeploymentSetup, LifecycleHook};
use crate::ports::service_deployments::{EcsDeployment, ServiceRevision};

/// How ECS deploys `service`, read from its description.
pub fn setup_of(service: &Service) -> DeploymentSetup {
    let configuration = service.deployment_configuration();
    DeploymentSetup {
        controller: service
            .deployment_controller()
            .map(|c| c.r#type().as_str().to_owned()),
        strategy: configuration
            .and_then(|c| c.strategy())
            .map(|s| s.as_str().to_owned()),
        bake_minutes: configuration.and_then(|c| c.bake_time_in_minutes()),
        hooks: configuration
            .map(|c| c.lifecycle_hooks())
            .unwrap_or_default()
            .iter()
            .map(|h| LifecycleHook {
                target_type: h
                    .target_type()
                    .map(|t| t.as_str().to_owned())
                    .unwrap_or_else(|| "AWS_LAMBDA".to_owned()),
                target_arn: h.hook_target_arn().map(str::to_owned),
                stages: h
                    .lifecycle_stages()
                    .iter()
                    .map(|s| s.as_str().to_owned())
                    .collect(),
                timeout_minutes: h
                    .timeout_configuration()
                    .and_then(|t| t.timeout_in_minutes()),
                timeout_action: h
                    .timeout_configuration()
                    .and_then(|t| t.action())
                    .map(|a| a.as_str().to_owned()),
            })
            .collect(),
        routes: service
            .load_balancers()
            .iter()
            .filter_map(|lb| {
                let advanced = lb.advanced_configuration()?;
                Some(BlueGreenRoute {
                    target_group: lb.target_group_arn().unwrap_or_default().to_owned(),
                    alternate_target_group: advanced
                        .alternate_target_group_arn()
                        .map(str::to_owned),
                    production_rule: advanced.production_listener_rule().map(str::to_owned),
                    test_rule: advanced.test_listener_rule().map(str::to_owned),
                    role_arn: advanced.role_arn().map(str::to_owned),
                })
            })
            .collect(),
    }
}

/// The service deployments ECS lists first (20) for `service`, described, newest first by
/// their creation (ECS does not document the order it lists in).
pub async fn list(
    client: &aws_sdk_ecs::Client,
    cluster: &str,
    service: &str,
) -> StepResult<Vec<EcsDeployment>> {
    listed(client, cluster, service, None, 1).await
}

/// How many pages of ongoing service deployments are read: ECS runs one deployment of a
/// service at a time (with those it stops or rolls back), so one page is all there is; a
/// page may come short with a token (the SDK's documentation), hence a few.
const ONGOING_PAGES: usize = 5;

/// The service deployments of `service` still going on (ECS's list filtered by status, so
/// however many ended before them), described, newest first.
pub async fn ongoing(
    client: &aws_sdk_ecs::Client,
    cluster: &str,
    service: &str,
) -> StepResult<Vec<EcsDeployment>> {
    let statuses = [
        ServiceDeploymentStatus::Pending,
        ServiceDeploymentStatus::InProgress,
        ServiceDeploymentStatus::StopRequested,
        ServiceDeploymentStatus::RollbackRequested,
        ServiceDeploymentStatus::RollbackInProgress,
    ];
    listed(
        client,
        cluster,
        service,
        Some(statuses.to_vec()),
        ONGOING_PAGES,
    )
    .await
}

/// Up to `pages` pages of `service`'s service deployments (of `statuses`), described, newest
/// first by creation.
async fn listed(
    client: &aws_sdk_ecs::Client,
    cluster: &str,
    service: &str,
    statuses: Option<Vec<ServiceDeploymentStatus>>,
    pages: usize,
) -> StepResult<Vec<EcsDeployment>> {
    let mut briefs = Vec::new();
    let mut token = None;
    for _ in 0..pages {
        let page = client
            .list_service_deployments()
            .cluster(cluster)
            .service(service)
            .set_status(statuses.clone())
            .max_results(20)
            .set_next_token(token.take())
            .send()
            .await
            .map_err(|e| match e.as_service_error() {
                Some(s)
                    if s.is_service_not_found_exception() || s.is_cluster_not_found_exception() =>
                {
                    StepError::ResourceNotFound {
                        kind: "ECS service",
                        id: format!("{cluster}/{service}"),
                    }
                }
                _ => StepError::from_sdk("ecs:ListServiceDeployments", e),
            })?;
        briefs.extend(page.service_deployments().iter().filter_map(|d| {
            Some((
                d.service_deployment_arn()?.to_owned(),
                d.created_at().copied(),
            ))
        }));
        token = page.next_token().map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    // Newest first; one without a creation time last.
    briefs.sort_by(|a, b| b.1.map(|t| t.as_nanos()).cmp(&a.1.map(|t| t.as_nanos())));
    let arns: Vec<String> = briefs.into_iter().map(|(arn, _)| arn).collect();
    let mut deployments = Vec::new();
    // ECS describes at most 20 at a time.
    for chunk in arns.chunks(20) {
        deployments.extend(describe(client, chunk).await?);
    }
    Ok(deployments)
}

/// `arns` described, in that order (whatever order ECS describes them in); those ECS reports
/// `MISSING` are left out, any other failure (access denied, say) is an error — never taken
/// for a deployment that is not there.
pub async fn describe(
    client: &aws_sdk_ecs::Client,
    arns: &[String],
) -> StepResult<Vec<EcsDeployment>> {
    if arns.is_empty() {
        return Ok(Vec::new());
    }
    let described = client
        .describe_service_deployments()
        .set_service_deployment_arns(Some(arns.to_vec()))
        .send()
        .await
        .map_err(|e| StepError::from_sdk("ecs:DescribeServiceDeployments", e))?;
    if let Some(failure) = described
        .failures()
        .iter()
        .find(|f| f.reason() != Some("MISSING"))
    {
        return Err(StepError::Aws {
            operation: "ecs:DescribeServiceDeployments",
            code: failure.reason().unwrap_or("Failure").to_owned(),
            message: format!(
                "{}: {}",
                failure.arn().unwrap_or_default(),
                failure.detail().unwrap_or_default()
            ),
        });
    }
    let mut deployments: Vec<EcsDeployment> = described
        .service_deployments()
        .iter()
        .map(|d| EcsDeployment {
            arn: d.service_deployment_arn().unwrap_or_default().to_owned(),
            status: d
                .status()
                .map(|s| s.as_str().to_owned())
                .unwrap_or_default(),
            status_reason: d.status_reason().map(str::to_owned),
            lifecycle_stage: d.lifecycle_stage().map(|s| s.as_str().to_owned()),
            target_revision: d
                .target_service_revision()
                .and_then(|r| r.arn())
                .map(str::to_owned),
        })
        .collect();
    deployments.sort_by_key(|d| arns.iter().position(|a| *a == d.arn));
    Ok(deployments)
}

/// One service revision.
pub async fn revision(client: &aws_sdk_ecs::Client, arn: &str) -> StepResult<ServiceRevision> {
    let out = client
        .describe_service_revisions()
        .service_revision_arns(arn)
        .send()
        .await
        .map_err(|e| StepError::from_sdk("ecs:DescribeServiceRevisions", e))?;
    out.service_revisions()
        .iter()
        .find(|r| r.service_revision_arn() == Some(arn))
        .map(|r| ServiceRevision {
            arn: arn.to_owned(),
            task_definition: r.task_definition().unwrap_or_default().to_owned(),
        })
        .ok_or_else(|| StepError::ResourceNotFound {
            kind: "ECS service revision",
            id: arn.to_owned(),
        })
}

/// Stops a service deployment, rolling it back.
pub async fn stop(client: &aws_sdk_ecs::Client, arn: &str) -> StepResult<()> {
    client
        .stop_service_deployment()
        .service_deployment_arn(arn)
        .stop_type(StopServiceDeploymentStopType::Rollback)
        .send()
        .await
        .map_err(|e| StepError::from_sdk("ecs:StopServiceDeployment", e))?;
    Ok(())
}
