//! The SDK adapter for ECS's own blue/green (`bluegreen::aws::compute`, the `ServiceDeployments` port):
//! moto has none of these operations, so ECS's answers are scripted with aws-smithy-mocks and
//! the adapter's reading of them is checked — the order it lists, the fields it maps, the
//! errors it names. (The in-memory model the hook's tests run on is `memory::ecs_blue_green`.)

use aws_config::retry::RetryConfig;
use aws_sdk_ecs::operation::describe_service_deployments::DescribeServiceDeploymentsOutput;
use aws_sdk_ecs::operation::describe_service_revisions::DescribeServiceRevisionsOutput;
use aws_sdk_ecs::operation::list_service_deployments::{
    ListServiceDeploymentsError, ListServiceDeploymentsOutput,
};
use aws_sdk_ecs::operation::stop_service_deployment::{
    StopServiceDeploymentError, StopServiceDeploymentOutput,
};
use aws_sdk_ecs::types::{
    ServiceDeployment, ServiceDeploymentBrief, ServiceDeploymentLifecycleStage,
    ServiceDeploymentStatus, ServiceRevision, ServiceRevisionSummary,
    StopServiceDeploymentStopType,
};
use aws_smithy_mocks::{RuleMode, mock, mock_client};
use aws_smithy_types::error::ErrorMetadata;
use bluegreen::aws::compute::Ecs;
use bluegreen::ports::ServiceDeployments;

const DEPLOYMENT: &str = "arn:aws:ecs:us-east-1:123456789012:service-deployment/c/shop";
const REVISION: &str = "arn:aws:ecs:us-east-1:123456789012:service-revision/c/shop";

fn deployment(n: u32, status: ServiceDeploymentStatus, stage: &str) -> ServiceDeployment {
    ServiceDeployment::builder()
        .service_deployment_arn(format!("{DEPLOYMENT}/{n}"))
        .status(status)
        .status_reason(format!("reason {n}"))
        .lifecycle_stage(ServiceDeploymentLifecycleStage::from(stage))
        .target_service_revision(
            ServiceRevisionSummary::builder()
                .arn(format!("{REVISION}/{n}"))
                .build(),
        )
        .build()
}

#[tokio::test]
async fn service_deployments_are_read_newest_first_with_their_stage_and_revision() {
    let listed = mock!(aws_sdk_ecs::Client::list_service_deployments)
        .match_requests(|r| r.cluster() == Some("c") && r.service() == Some("shop"))
        .then_output(|| {
            let brief = |n: u32| {
                ServiceDeploymentBrief::builder()
                    .service_deployment_arn(format!("{DEPLOYMENT}/{n}"))
                    .created_at(aws_smithy_types::DateTime::from_secs(
                        1_790_000_000 + n as i64,
                    ))
                    .build()
            };
            // ECS does not document the order it lists in: oldest first here.
            ListServiceDeploymentsOutput::builder()
                .service_deployments(brief(1))
                .service_deployments(brief(2))
                .build()
        });
    // And it may describe them in yet another order.
    let described = mock!(aws_sdk_ecs::Client::describe_service_deployments)
        .match_requests(|r| r.service_deployment_arns().len() == 2)
        .then_output(|| {
            DescribeServiceDeploymentsOutput::builder()
                .service_deployments(deployment(
                    1,
                    ServiceDeploymentStatus::Successful,
                    "CLEAN_UP",
                ))
                .service_deployments(deployment(
                    2,
                    ServiceDeploymentStatus::InProgress,
                    "POST_TEST_TRAFFIC_SHIFT",
                ))
                .build()
        });
    let ecs = Ecs(mock_client!(
        aws_sdk_ecs,
        RuleMode::MatchAny,
        [&listed, &described]
    ));
    let found = ecs.service_deployments("c", "shop").await.unwrap();
    let seen: Vec<_> = found
        .iter()
        .map(|d| {
            (
                d.arn.rsplit('/').next().unwrap().to_owned(),
                d.status.as_str(),
                d.lifecycle_stage.as_deref().unwrap(),
                d.target_revision
                    .as_deref()
                    .unwrap()
                    .rsplit('/')
                    .next()
                    .unwrap(),
                d.is_ongoing(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            (
                "2".to_owned(),
                "IN_PROGRESS",
                "POST_TEST_TRAFFIC_SHIFT",
                "2",
                true
            ),
            ("1".to_owned(), "SUCCESSFUL", "CLEAN_UP", "1", false),
        ]
    );
    assert_eq!(found[0].status_reason.as_deref(), Some("reason 2"));
}

#[tokio::test]
async fn a_service_without_deployments_has_none_and_a_missing_one_is_not_found() {
    let empty = mock!(aws_sdk_ecs::Client::list_service_deployments)
        .match_requests(|r| r.service() == Some("quiet"))
        .then_output(|| ListServiceDeploymentsOutput::builder().build());
    let missing = mock!(aws_sdk_ecs::Client::list_service_deployments)
        .match_requests(|r| r.service() == Some("gone"))
        .then_error(|| {
            ListServiceDeploymentsError::ServiceNotFoundException(
                aws_sdk_ecs::types::error::ServiceNotFoundException::builder()
                    .message("Service not found.")
                    .build(),
            )
        });
    let ecs = Ecs(mock_client!(
        aws_sdk_ecs,
        RuleMode::MatchAny,
        [&empty, &missing]
    ));
    assert!(
        ecs.service_deployments("c", "quiet")
            .await
            .unwrap()
            .is_empty()
    );
    let err = ecs.service_deployments("c", "gone").await.unwrap_err();
    assert_eq!(err.name(), "ResourceNotFound", "{err}");
    assert!(err.to_string().contains("c/gone"), "{err}");
}

#[tokio::test]
async fn a_revision_reads_its_task_definition_and_an_unknown_one_is_not_found() {
    let revision = mock!(aws_sdk_ecs::Client::describe_service_revisions)
        .match_requests(|r| r.service_revision_arns() == [format!("{REVISION}/7")])
        .then_output(|| {
            DescribeServiceRevisionsOutput::builder()
                .service_revisions(
                    ServiceRevision::builder()
                        .service_revision_arn(format!("{REVISION}/7"))
                        .task_definition(
                            "arn:aws:ecs:us-east-1:123456789012:task-definition/shop:9",
                        )
                        .build(),
                )
                .build()
        });
    // ECS answers an unknown ARN with a failure entry, not an error.
    let unknown = mock!(aws_sdk_ecs::Client::describe_service_revisions)
        .then_output(|| DescribeServiceRevisionsOutput::builder().build());
    let ecs = Ecs(mock_client!(
        aws_sdk_ecs,
        RuleMode::MatchAny,
        [&revision, &unknown]
    ));
    let found = ecs
        .service_revision(&format!("{REVISION}/7"))
        .await
        .unwrap();
    assert!(found.task_definition.ends_with("task-definition/shop:9"));
    let err = ecs
        .service_revision(&format!("{REVISION}/8"))
        .await
        .unwrap_err();
    assert_eq!(err.name(), "ResourceNotFound", "{err}");
}

#[tokio::test]
async fn stopping_asks_for_a_rollback_and_names_ecs_refusal_of_one_that_ended() {
    let stopped = mock!(aws_sdk_ecs::Client::stop_service_deployment)
        .match_requests(|r| {
            r.service_deployment_arn() == Some(DEPLOYMENT)
                && r.stop_type() == Some(&StopServiceDeploymentStopType::Rollback)
        })
        .then_output(|| StopServiceDeploymentOutput::builder().build());
    let ended = mock!(aws_sdk_ecs::Client::stop_service_deployment).then_error(|| {
        StopServiceDeploymentError::generic(
            ErrorMetadata::builder()
                .code("ConflictException")
                .message("The service deployment is already completed.")
                .build(),
        )
    });
    let ecs = Ecs(mock_client!(
        aws_sdk_ecs,
        RuleMode::Sequential,
        [&stopped, &ended],
        |c| c.retry_config(RetryConfig::disabled())
    ));
    ecs.stop_service_deployment(DEPLOYMENT).await.unwrap();
    let err = ecs.stop_service_deployment(DEPLOYMENT).await.unwrap_err();
    assert_eq!(err.aws_code(), Some("ConflictException"), "{err}");
    assert!(!err.is_retryable());
}

#[tokio::test]
async fn ongoing_ones_are_listed_by_status_across_pages_and_a_failure_is_not_an_absence() {
    // Page one comes short with a token (the SDK allows it); page two holds the one going on.
    let first = mock!(aws_sdk_ecs::Client::list_service_deployments)
        .match_requests(|r| r.next_token().is_none())
        .then_output(|| {
            ListServiceDeploymentsOutput::builder()
                .next_token("page-2")
                .build()
        });
    let second = mock!(aws_sdk_ecs::Client::list_service_deployments)
        .match_requests(|r| {
            let ongoing = [
                ServiceDeploymentStatus::Pending,
                ServiceDeploymentStatus::InProgress,
                ServiceDeploymentStatus::StopRequested,
                ServiceDeploymentStatus::RollbackRequested,
                ServiceDeploymentStatus::RollbackInProgress,
            ];
            r.next_token() == Some("page-2") && r.status() == ongoing
        })
        .then_output(|| {
            ListServiceDeploymentsOutput::builder()
                .service_deployments(
                    ServiceDeploymentBrief::builder()
                        .service_deployment_arn(format!("{DEPLOYMENT}/7"))
                        .build(),
                )
                .build()
        });
    let described = mock!(aws_sdk_ecs::Client::describe_service_deployments)
        .match_requests(|r| r.service_deployment_arns() == [format!("{DEPLOYMENT}/7")])
        .then_output(|| {
            DescribeServiceDeploymentsOutput::builder()
                .service_deployments(deployment(
                    7,
                    ServiceDeploymentStatus::InProgress,
                    "PRE_SCALE_UP",
                ))
                .build()
        });
    // By ARN: MISSING is an absence, anything else an error.
    let missing = mock!(aws_sdk_ecs::Client::describe_service_deployments)
        .match_requests(|r| r.service_deployment_arns() == [format!("{DEPLOYMENT}/8")])
        .then_output(|| {
            DescribeServiceDeploymentsOutput::builder()
                .failures(
                    aws_sdk_ecs::types::Failure::builder()
                        .arn(format!("{DEPLOYMENT}/8"))
                        .reason("MISSING")
                        .build(),
                )
                .build()
        });
    let denied = mock!(aws_sdk_ecs::Client::describe_service_deployments)
        .match_requests(|r| r.service_deployment_arns() == [format!("{DEPLOYMENT}/9")])
        .then_output(|| {
            DescribeServiceDeploymentsOutput::builder()
                .failures(
                    aws_sdk_ecs::types::Failure::builder()
                        .arn(format!("{DEPLOYMENT}/9"))
                        .reason("AccessDeniedException")
                        .detail("not authorized")
                        .build(),
                )
                .build()
        });
    let ecs = Ecs(mock_client!(
        aws_sdk_ecs,
        RuleMode::MatchAny,
        [&first, &second, &described, &missing, &denied]
    ));
    let ongoing = ecs.ongoing_service_deployments("c", "shop").await.unwrap();
    assert_eq!(
        ongoing.iter().map(|d| d.arn.as_str()).collect::<Vec<_>>(),
        [format!("{DEPLOYMENT}/7")]
    );
    let (seven, eight, nine) = (
        format!("{DEPLOYMENT}/7"),
        format!("{DEPLOYMENT}/8"),
        format!("{DEPLOYMENT}/9"),
    );
    let found = ecs.service_deployment(&seven).await.unwrap().unwrap();
    assert_eq!(found.lifecycle_stage.as_deref(), Some("PRE_SCALE_UP"));
    assert_eq!(ecs.service_deployment(&eight).await.unwrap(), None);
    let err = ecs.service_deployment(&nine).await.unwrap_err();
    assert!(err.to_string().contains("AccessDeniedException"), "{err}");
}

/// `isolated` pre-prod's own service (`Compute::create_service`/`delete_service`) against the
/// emulator's ECS: a copy of production's placement — network, launch type, container and
/// port — in the alternate group, on the given revision and count, tagged, deployed by ECS's
/// rolling deployments with the circuit breaker and outside service discovery; a delete of it,
/// and of a service that is gone, succeeds.
#[tokio::test]
async fn pre_prod_s_own_service_copies_production_s_placement_and_is_deleted_again() {
    use bluegreen::Slot;
    use bluegreen::ports::compute::NewService;
    use bluegreen_tests::{CLUSTER, World};

    let world = World::build().await;
    let compute = &world.ctx.ports.compute;
    let production = compute
        .describe_service(CLUSTER, "shop-blue")
        .await
        .unwrap();
    let revision = production.task_definition.clone().unwrap();
    let new = NewService {
        cluster: CLUSTER.into(),
        name: bluegreen::naming::preprod_service_name("shop-blue", "shop-v2"),
        like: "shop-blue".into(),
        task_definition: revision.clone(),
        target_group: world.tg(Slot::Green).to_owned(),
        desired_count: 1,
        tags: vec![("bluegreen:managed".into(), "true".into())],
    };
    compute.create_service(&new).await.expect("created");
    let ecs = &world.aws.ecs;
    let described = |name: String| async move {
        ecs.describe_services()
            .cluster(CLUSTER)
            .services(name)
            .include(aws_sdk_ecs::types::ServiceField::Tags)
            .send()
            .await
            .unwrap()
            .services
            .unwrap_or_default()
    };
    let [copy] = described(new.name.clone())
        .await
        .try_into()
        .expect("one service");
    let [original] = described("shop-blue".into()).await.try_into().expect("one");
    assert_eq!(copy.status.as_deref(), Some("ACTIVE"));
    assert_eq!(copy.task_definition.as_deref(), Some(revision.as_str()));
    assert_eq!(copy.desired_count, 1);
    assert_eq!(copy.launch_type, original.launch_type);
    assert_eq!(copy.network_configuration, original.network_configuration);
    let lb = &copy.load_balancers()[0];
    assert_eq!(lb.target_group_arn.as_deref(), Some(world.tg(Slot::Green)));
    assert_eq!(lb.container_name.as_deref(), Some("web"));
    assert_eq!(lb.container_port, Some(8080));
    assert!(copy.service_registries().is_empty());
    let breaker = copy
        .deployment_configuration
        .as_ref()
        .and_then(|c| c.deployment_circuit_breaker.as_ref())
        .expect("the circuit breaker");
    assert!(breaker.enable);
    assert!(
        copy.tags()
            .iter()
            .any(|t| t.key() == Some("bluegreen:managed") && t.value() == Some("true"))
    );
    compute
        .delete_service(CLUSTER, &new.name)
        .await
        .expect("deleted");
    let gone = compute.describe_service(CLUSTER, &new.name).await;
    assert!(
        matches!(gone, Err(bluegreen::StepError::ResourceNotFound { .. })),
        "{gone:?}"
    );
    compute
        .delete_service(CLUSTER, "bg-never-created")
        .await
        .expect("a delete of a service that is not there is no error");
    // Production is untouched.
    let after = compute
        .describe_service(CLUSTER, "shop-blue")
        .await
        .unwrap();
    assert_eq!(after.task_definition, production.task_definition);
    assert_eq!(after.desired_count, production.desired_count);
}
