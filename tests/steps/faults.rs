//! Faults moto cannot produce, scripted with aws-smithy-mocks.
//!
//! With passthrough, a mocked call still reaches moto and only its answer is replaced — exactly
//! a lost or failed response after the work happened, which is what a retry must survive.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use aws_config::retry::RetryConfig;
use aws_sdk_ecs::operation::describe_services::DescribeServicesError;
use aws_sdk_ecs::operation::run_task::RunTaskError;
use aws_smithy_mocks::{MockResponseInterceptor, Rule, RuleMode, mock, mock_client};
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::error::ErrorMetadata;
use bluegreen::Slot;
use bluegreen::steps::{launch_preprod, migrate};
use bluegreen_tests::World;

use crate::common::*;

fn ecs_with(world: &World, rule: &Rule) -> aws_sdk_ecs::Client {
    let interceptor = MockResponseInterceptor::new()
        .rule_mode(RuleMode::MatchAny)
        .with_rule(rule)
        .allow_passthrough();
    aws_sdk_ecs::Client::from_conf(
        aws_sdk_ecs::config::Builder::from(&world.sdk)
            .interceptor(interceptor)
            .retry_config(RetryConfig::disabled())
            .build(),
    )
}

fn aws_error(code: &str) -> ErrorMetadata {
    ErrorMetadata::builder()
        .code(code)
        .message(format!("{code} from the test"))
        .build()
}

#[tokio::test]
async fn throttling_midway_is_retryable_and_the_retry_converges_on_one_launch() {
    let world = World::build().await;
    let id = prepare_push(&world, "v2", "event-1").await;
    // The third DescribeServices comes after the revision was registered and the service
    // updated: the worst moment to fail.
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let throttle = mock!(aws_sdk_ecs::Client::describe_services)
        .match_requests(move |_| counter.fetch_add(1, Ordering::SeqCst) == 2)
        .then_error(|| DescribeServicesError::generic(aws_error("ThrottlingException")));
    let throttled =
        bluegreen_tests::with_client(&world.ctx, |c| c.ecs = ecs_with(&world, &throttle));
    let err = launch_preprod::start(&throttled, &id_ref(&id))
        .await
        .unwrap_err();
    assert_eq!(err.name(), "Throttled", "{err}");
    assert!(err.is_retryable());

    // Step Functions retries with a healthy API: one revision, the same service state.
    launch_preprod::start(&world.ctx, &id_ref(&id))
        .await
        .unwrap();
    let (_, green_count, tags) = world.service(Slot::Green).await;
    assert_eq!(green_count, 2);
    assert!(tags.iter().any(|(k, _)| k == "bluegreen:role"));
    assert_eq!(
        world.revisions().await,
        2,
        "the retry reused the registered revision"
    );
}

#[tokio::test]
async fn a_server_error_is_a_transient_error() {
    let world = World::build().await;
    let unavailable = mock!(aws_sdk_elasticloadbalancingv2::Client::describe_listeners)
        .then_http_response(|| {
            aws_smithy_runtime_api::http::Response::new(
                aws_smithy_runtime_api::http::StatusCode::try_from(503).unwrap(),
                SdkBody::from(
                    "<ErrorResponse><Error><Code>ServiceUnavailable</Code></Error></ErrorResponse>",
                ),
            )
        });
    let ctx = bluegreen_tests::with_client(&world.ctx, |c| {
        c.elb = mock_client!(
            aws_sdk_elasticloadbalancingv2,
            RuleMode::MatchAny,
            [&unavailable],
            |c| c.retry_config(RetryConfig::disabled())
        )
    });
    let err = bluegreen::routing::read_production(&ctx, &world.config())
        .await
        .unwrap_err();
    assert_eq!(err.name(), "AwsTransient", "{err:?}");
    assert!(err.is_retryable());
}

#[tokio::test]
async fn a_lost_run_task_answer_never_starts_a_second_migration() {
    let world = World::build().await;
    let id = prepare_push(&world, "v2", "event-1").await;
    launch(&world, &id).await;
    let lost = mock!(aws_sdk_ecs::Client::run_task)
        .then_error(|| RunTaskError::generic(aws_error("InternalFailure")));
    let ctx = bluegreen_tests::with_client(&world.ctx, |c| c.ecs = ecs_with(&world, &lost));
    let err = migrate::start(&ctx, &id_ref(&id)).await.unwrap_err();
    assert_eq!(err.aws_code(), Some("InternalFailure"));
    migrate::start(&world.ctx, &id_ref(&id)).await.unwrap();
    assert_eq!(migrations(&world, &id).await, 1, "one migration task");
}

/// The same, when ECS has not listed the task yet (its reads are eventually consistent; the
/// harness plays the lag): the retry cannot find the task, and it is RunTask's client token
/// (AWS answers the task that token started; the harness does the same) that keeps it to one
/// migration (issue 22).
#[tokio::test]
async fn a_lost_run_task_answer_while_ecs_does_not_list_the_task_yet_starts_one_migration() {
    let world = World::build().await;
    let id = prepare_push(&world, "v2", "event-1").await;
    launch(&world, &id).await;
    world.ecs_list_lag(true).await;
    let lost = mock!(aws_sdk_ecs::Client::run_task)
        .then_error(|| RunTaskError::generic(aws_error("InternalFailure")));
    let ctx = bluegreen_tests::with_client(&world.ctx, |c| c.ecs = ecs_with(&world, &lost));
    migrate::start(&ctx, &id_ref(&id)).await.unwrap_err();
    assert_eq!(
        migrations(&world, &id).await,
        0,
        "the task is not listed yet: the retry cannot find it"
    );
    migrate::start(&world.ctx, &id_ref(&id)).await.unwrap();
    world.ecs_list_lag(false).await;
    assert_eq!(migrations(&world, &id).await, 1, "one migration task");
}

#[tokio::test]
async fn access_denied_is_a_non_retryable_aws_error_carrying_the_code() {
    let world = World::build().await;
    let id = prepare_push(&world, "v2", "event-1").await;
    let denied = mock!(aws_sdk_ecs::Client::describe_services)
        .then_error(|| DescribeServicesError::generic(aws_error("AccessDeniedException")));
    let ctx = bluegreen_tests::with_client(&world.ctx, |c| c.ecs = ecs_with(&world, &denied));
    let err = launch_preprod::start(&ctx, &id_ref(&id)).await.unwrap_err();
    assert_eq!(
        (err.name(), err.aws_code()),
        ("AwsError", Some("AccessDeniedException"))
    );
    assert!(!err.is_retryable());
    assert_eq!(world.service(Slot::Green).await.1, 0, "nothing launched");
}

/// A lock release cancelled by DynamoDB for a conflict with another write to the lock item (a
/// push queueing at that moment), with no condition failed, is retryable: the ending is retried
/// by the state machine, not turned into needs-attention. Nothing was written.
#[tokio::test]
async fn a_lock_release_cancelled_for_a_conflict_is_retryable_and_changes_nothing() {
    use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
    use aws_sdk_dynamodb::types::CancellationReason;
    use aws_sdk_dynamodb::types::error::TransactionCanceledException;
    let world = World::build().await;
    let id = prepare_push(&world, "v2", "event-1").await;
    let conflict = mock!(aws_sdk_dynamodb::Client::transact_write_items).then_error(|| {
        TransactWriteItemsError::TransactionCanceledException(
            TransactionCanceledException::builder()
                .message("Transaction cancelled")
                .cancellation_reasons(
                    CancellationReason::builder()
                        .code("TransactionConflict")
                        .build(),
                )
                .cancellation_reasons(CancellationReason::builder().code("None").build())
                .build(),
        )
    });
    // The lock as it is, answered by the mock (a transaction that reached the emulator would
    // take effect there before its answer is replaced).
    let holder = id.clone();
    let lock = mock!(aws_sdk_dynamodb::Client::get_item).then_output(move || {
        use aws_sdk_dynamodb::types::AttributeValue as Av;
        aws_sdk_dynamodb::operation::get_item::GetItemOutput::builder()
            .item("service", Av::S("shop".into()))
            .item("deployment_id", Av::S(holder.clone()))
            .build()
    });
    // Nothing reaches the emulator: the mocked client answers every call itself.
    let ctx = bluegreen_tests::with_client(&world.ctx, |c| {
        c.dynamodb = mock_client!(
            aws_sdk_dynamodb,
            RuleMode::MatchAny,
            [&lock, &conflict],
            |c| c.retry_config(RetryConfig::disabled())
        )
    });
    let records = bluegreen::record::Records::new(&ctx);
    let err = bluegreen::lock::Locks::new(&ctx)
        .release_with("shop", &id, |_| {
            Ok(Some(records.update_in_transaction(
                &id,
                bluegreen::record::Change::new(),
            )))
        })
        .await
        .unwrap_err();
    assert_eq!(err.name(), "AwsTransient", "{err}");
    assert!(err.is_retryable());
    assert_eq!(
        world.lock_holder().await.as_deref(),
        Some(id.as_str()),
        "still held"
    );
}

/// The production migration succeeded and its outcome was recorded, but the invocation died
/// (or was throttled) before it took the maintenance page down: the retried check must still
/// take it down (before, the retry saw "migrated" and returned, and production answered 503
/// through the approval wait and the bake).
#[tokio::test]
async fn a_check_retried_after_the_migration_was_recorded_still_takes_the_page_down() {
    use bluegreen::record::{Change, Records, TaskState, TrackedTask};
    use bluegreen::steps::promote;

    let world = World::build().await;
    let id = approved_with_maintenance(&world, world.config()).await;
    let started = promote::start(&world.ctx, &id_ref(&id)).await.unwrap();
    assert_eq!(world.listener_rules().await.len(), 1, "the page is up");
    let recorded = record(&world, &id).await.production_migration.unwrap();
    world
        .stop_task(&recorded.task_arn, Some(0), "EssentialContainerExited")
        .await;
    // What the first attempt left: the outcome recorded, the page still up.
    Records::new(&world.ctx)
        .update(
            &id,
            Change::new().production_migration(&TrackedTask {
                state: TaskState::Succeeded,
                detail: "exit code 0".into(),
                ..recorded
            }),
        )
        .await
        .unwrap();
    assert_eq!(world.listener_rules().await.len(), 1);

    // Step Functions retries the check.
    let _ = promote::check(&world.ctx, &check_of(&started))
        .await
        .unwrap();
    assert!(world.listener_rules().await.is_empty(), "the page is down");
}

/// A look at the migration that fails for a reason of its own (DescribeTasks throttled) says
/// nothing about the task: the page stays up while it may still run.
#[tokio::test]
async fn a_throttled_look_at_a_running_production_migration_keeps_the_page_up() {
    use aws_sdk_ecs::operation::describe_tasks::DescribeTasksError;
    use bluegreen::steps::promote;

    let world = World::build().await;
    let id = approved_with_maintenance(&world, world.config()).await;
    let started = promote::start(&world.ctx, &id_ref(&id)).await.unwrap();
    let throttle = mock!(aws_sdk_ecs::Client::describe_tasks)
        .then_error(|| DescribeTasksError::generic(aws_error("ThrottlingException")));
    let throttled =
        bluegreen_tests::with_client(&world.ctx, |c| c.ecs = ecs_with(&world, &throttle));
    let err = promote::check(&throttled, &check_of(&started))
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert_eq!(world.listener_rules().await.len(), 1, "the page stays up");
}
