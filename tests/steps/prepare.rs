//! Prepare: config matching, the per-service lock and queue, the live slot read from AWS.

use bluegreen::Slot;
use bluegreen::lock::Locks;
use bluegreen::record::{Records, Status};
use bluegreen::steps::prepare::{self, Prepared, Prepared1, PreparedOutcome};
use bluegreen_tests::{World, push_event};

use crate::common::*;

#[tokio::test]
async fn a_matching_push_takes_the_lock_reads_the_live_slot_and_records_the_deployment() {
    let world = World::build().await;
    let event = push_event("v2", 'a', "event-1", PUSHED_AT);
    let first = prepare::run(&world.ctx, &event).await.unwrap();
    let Prepared::Deployments { deployments } = &first else {
        panic!("{first:?}")
    };
    let d = &deployments[0];
    assert_eq!(
        (d.outcome, d.live_slot, d.target_slot),
        (
            PreparedOutcome::Started,
            Some(Slot::Blue),
            Some(Slot::Green)
        )
    );
    assert!(d.approval_required);
    let stored = record(&world, &d.deployment_id).await;
    assert_eq!(stored.status, Status::Preparing);
    assert_eq!(stored.image.tag, "v2");
    assert_eq!(
        world.lock_holder().await.as_deref(),
        Some(d.deployment_id.as_str())
    );

    // Step Functions retries: the same answer, and the record is not rewritten.
    let again = prepare::run(&world.ctx, &event).await.unwrap();
    assert_eq!(again, first);
    assert_eq!(
        record(&world, &d.deployment_id).await.updated_at,
        stored.updated_at
    );
}

#[tokio::test]
async fn pushes_nobody_watches_are_ignored_and_change_nothing() {
    let world = World::build().await;
    for event in [push_event("latest", 'a', "e-untracked-tag", PUSHED_AT), {
        let mut e = push_event("v2", 'a', "e-other-repo", PUSHED_AT);
        e["detail"]["repository-name"] = "billing/api".into();
        e
    }] {
        let out = prepare::run(&world.ctx, &event).await.unwrap();
        assert!(matches!(out, Prepared::Ignored { .. }), "{out:?}");
    }
    assert_eq!(world.lock_holder().await, None);
}

#[tokio::test]
async fn a_push_during_a_deployment_is_queued_and_the_newest_queued_push_wins() {
    let world = World::build().await;
    let running = prepare_push(&world, "v2", "event-1").await;
    let queue = |tag: &str, id: &str, time: &str| {
        let event = push_event(tag, 'b', id, time);
        let ctx = world.ctx.clone();
        async move {
            match prepare::run(&ctx, &event).await.unwrap() {
                Prepared::Deployments { deployments } => deployments[0].clone(),
                other => panic!("{other:?}"),
            }
        }
    };
    let second = queue("v3", "event-2", "2026-11-21T10:01:00Z").await;
    assert_eq!(second.outcome, PreparedOutcome::Queued);
    let third = queue("v4", "event-3", "2026-11-21T10:02:00Z").await;
    assert_eq!(third.outcome, PreparedOutcome::Queued);
    assert_eq!(
        record(&world, &second.deployment_id).await.status,
        Status::Superseded
    );
    // A late-arriving older push does not replace the newer queued one.
    let late = queue("v2-late", "event-0", "2026-11-21T10:00:30Z").await;
    assert_eq!(late.outcome, PreparedOutcome::Superseded);
    let lock = Locks::new(&world.ctx).read("shop").await.unwrap().unwrap();
    assert_eq!(
        (lock.holder.as_str(), lock.queued.as_deref()),
        (running.as_str(), Some(third.deployment_id.as_str()))
    );
}

/// Prepares `event` and returns its one service's answer.
async fn only_answer(world: &World, event: &serde_json::Value) -> Prepared1 {
    match prepare::run(&world.ctx, event).await.unwrap() {
        Prepared::Deployments { deployments } if deployments.len() == 1 => deployments[0].clone(),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn unexpected_production_routing_fails_that_service_and_releases_the_lock() {
    let world = World::build().await;
    // Production forwards half to each slot: not a state a deployment may start from.
    bluegreen::routing::set_production(&world.ctx, &world.config(), Slot::Green, 50)
        .await
        .unwrap();
    let answer = only_answer(&world, &push_event("v2", 'a', "event-1", PUSHED_AT)).await;
    assert_eq!(answer.outcome, PreparedOutcome::Failed);
    assert!(
        answer
            .error
            .as_deref()
            .unwrap()
            .starts_with("UnexpectedRouting"),
        "{answer:?}"
    );
    assert_eq!(world.lock_holder().await, None);
    assert!(
        Records::new(&world.ctx)
            .get(&answer.deployment_id)
            .await
            .is_err()
    );
}

/// Writes a config straight into SSM (as a person or another tool would, unvalidated) and
/// delivers the "Parameter Store Change" event SSM sends for it to the index_config function.
async fn store_raw_config(world: &World, name: &str, value: &serde_json::Value) {
    world
        .aws
        .ssm
        .put_parameter()
        .name(format!("/bluegreen/services/{name}"))
        .value(value.to_string())
        .r#type(aws_sdk_ssm::types::ParameterType::String)
        .overwrite(true)
        .send()
        .await
        .unwrap();
    bluegreen::steps::index_config::run(&world.ctx, &parameter_changed(name))
        .await
        .expect("indexed");
}

#[tokio::test]
async fn an_invalid_stored_config_fails_its_service_with_every_problem_and_touches_nothing() {
    let world = World::build().await;
    let mut bad = serde_json::to_value(world.config()).unwrap();
    bad["health"]["smoke"] = serde_json::json!([]);
    bad["approval"]["approvers"] = serde_json::json!([]);
    store_raw_config(&world, "shop", &bad).await;
    let answer = only_answer(&world, &push_event("v2", 'a', "event-1", PUSHED_AT)).await;
    assert_eq!(answer.outcome, PreparedOutcome::Failed);
    let error = answer.error.unwrap();
    assert!(error.starts_with("ConfigInvalid"), "{error}");
    assert_eq!(
        error.matches("/bluegreen/services/shop:").count(),
        2,
        "{error}"
    );
    assert_eq!(world.lock_holder().await, None);
}

#[tokio::test]
async fn one_service_failing_does_not_stop_the_others_watching_the_same_repository() {
    let world = World::build().await;
    // `admin` watches the same repository but its production listener does not exist;
    // `broken` watches it too with a config that does not validate; `shop` is fine.
    let mut admin = world.config();
    admin.name = "admin".into();
    if let bluegreen::config::Traffic::Listener {
        production_listener_arn,
        ..
    } = &mut admin.traffic
    {
        *production_listener_arn = format!("{production_listener_arn}0");
    }
    world.put_config(&admin).await;
    let mut broken = serde_json::to_value(world.config()).unwrap();
    broken["name"] = "broken".into();
    broken["approval"]["approvers"] = serde_json::json!([]);
    store_raw_config(&world, "broken", &broken).await;

    let event = push_event("v2", 'a', "event-1", PUSHED_AT);
    let Prepared::Deployments { deployments } = prepare::run(&world.ctx, &event).await.unwrap()
    else {
        panic!("not prepared")
    };
    let outcome = |service: &str| {
        deployments
            .iter()
            .find(|d| d.service == service)
            .unwrap_or_else(|| panic!("no answer for {service}: {deployments:?}"))
            .clone()
    };
    assert_eq!(deployments.len(), 3, "{deployments:?}");
    assert_eq!(outcome("shop").outcome, PreparedOutcome::Started);
    assert_eq!(outcome("admin").outcome, PreparedOutcome::Failed);
    assert_eq!(outcome("broken").outcome, PreparedOutcome::Failed);
    assert!(
        outcome("broken")
            .error
            .unwrap()
            .starts_with("ConfigInvalid")
    );
    let locks = Locks::new(&world.ctx);
    assert_eq!(
        locks.holder("admin").await.unwrap(),
        None,
        "admin's lock given back"
    );
    assert_eq!(locks.holder("broken").await.unwrap(), None);
    assert_eq!(
        locks.holder("shop").await.unwrap(),
        Some(outcome("shop").deployment_id)
    );
}

#[tokio::test]
async fn a_push_older_than_the_running_deployment_is_superseded_never_queued() {
    let world = World::build().await;
    let running = prepare_push(&world, "v3", "event-2").await;
    // An older push delivered late (EventBridge does not order events).
    let late = only_answer(
        &world,
        &push_event("v2", 'b', "event-1", "2026-11-21T09:59:00Z"),
    )
    .await;
    assert_eq!(late.outcome, PreparedOutcome::Superseded, "{late:?}");
    let lock = Locks::new(&world.ctx).read("shop").await.unwrap().unwrap();
    assert_eq!((lock.holder, lock.queued), (running.clone(), None));
    let recorded = record(&world, &late.deployment_id).await;
    assert!(recorded.failure.unwrap().contains(&running));
}

#[tokio::test]
async fn a_push_older_than_the_last_deployment_never_deploys_after_it_even_once_it_ended() {
    let world = World::build().await;
    let newer = prepare_push(&world, "v3", "event-2").await;
    bluegreen::steps::abort::run(&world.ctx, &failure(&newer, "HealthCheckFailed"))
        .await
        .unwrap();
    assert_eq!(world.lock_holder().await, None);
    let late = only_answer(
        &world,
        &push_event("v2", 'b', "event-1", "2026-11-21T09:59:00Z"),
    )
    .await;
    assert_eq!(late.outcome, PreparedOutcome::Superseded, "{late:?}");
    assert_eq!(
        world.lock_holder().await,
        None,
        "the old image did not take the lock"
    );
    // A newer push still deploys.
    let next = only_answer(
        &world,
        &push_event("v4", 'c', "event-3", "2026-11-21T10:10:00Z"),
    )
    .await;
    assert_eq!(next.outcome, PreparedOutcome::Started);
}

#[tokio::test]
async fn pushes_in_the_same_second_are_ordered_the_same_way_whichever_arrives_first() {
    // Two pushes stamped with the same second, prepared in both orders in two worlds: the
    // same one ends up deploying (after the running one), the other superseded.
    let mut winners = Vec::new();
    for order in [["event-a", "event-b"], ["event-b", "event-a"]] {
        let world = World::build().await;
        prepare_push(&world, "v2", "event-1").await;
        for event in order {
            only_answer(
                &world,
                &push_event("v5", 'b', event, "2026-11-21T10:05:00Z"),
            )
            .await;
        }
        let lock = Locks::new(&world.ctx).read("shop").await.unwrap().unwrap();
        winners.push(lock.queued.expect("one queued"));
    }
    assert_eq!(winners[0], winners[1]);
}

#[tokio::test]
async fn of_the_sample_events_only_the_tagged_pushes_start_deployments() {
    let world = World::build().await;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../events");
    let mut started = Vec::new();
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    paths.sort();
    for path in paths {
        let event: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        if let Prepared::Deployments { deployments } =
            prepare::run(&world.ctx, &event).await.unwrap()
        {
            started.push((
                path.file_name().unwrap().to_string_lossy().into_owned(),
                deployments[0].outcome,
            ));
        }
    }
    assert_eq!(
        started,
        vec![
            (
                "ecr-push-tagged-v3.json".to_owned(),
                PreparedOutcome::Started
            ),
            // Pushed an hour before v3: older than the running deployment, so it never
            // deploys after it.
            (
                "ecr-push-tagged.json".to_owned(),
                PreparedOutcome::Superseded
            ),
        ]
    );
}

#[tokio::test]
async fn concurrent_pushes_for_services_sharing_a_repository_leave_one_running_each_and_the_newest_queued()
 {
    let world = World::build().await;
    let services = ["shop", "admin", "search"];
    for name in &services[1..] {
        let mut config = world.config();
        config.name = (*name).into();
        world.put_config(&config).await;
    }
    // 20 pushes of one repository, one a minute apart, all prepared at once (three services
    // watch it): as many intakes racing for the same three locks as EventBridge may start.
    let pushes = 20;
    let mut handles = Vec::new();
    for i in 0..pushes {
        let ctx = world.ctx.clone();
        let event = push_event(
            &format!("v{i}"),
            'b',
            &format!("burst-{i}"),
            &format!("2026-11-21T10:{i:02}:00Z"),
        );
        handles.push(tokio::spawn(async move {
            prepare::run(&ctx, &event).await.expect("prepare")
        }));
    }
    let mut answers = Vec::new();
    for handle in handles {
        match handle.await.unwrap() {
            Prepared::Deployments { deployments } => answers.extend(deployments),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(
        answers.len(),
        pushes * services.len(),
        "one answer per push and service"
    );
    let records = Records::new(&world.ctx);
    for service in services {
        let mine: Vec<&Prepared1> = answers.iter().filter(|a| a.service == service).collect();
        let started: Vec<&&Prepared1> = mine
            .iter()
            .filter(|a| a.outcome == PreparedOutcome::Started)
            .collect();
        assert_eq!(started.len(), 1, "{service}: exactly one runs: {mine:?}");
        let lock = Locks::new(&world.ctx).read(service).await.unwrap().unwrap();
        assert_eq!(lock.holder, started[0].deployment_id, "{service}");
        // The newest push either runs or waits; every other one is superseded, none lost.
        let newest = mine
            .iter()
            .find(|a| a.deployment_id.contains("T101900"))
            .expect("newest answered");
        if lock.holder != newest.deployment_id {
            assert_eq!(
                lock.queued.as_deref(),
                Some(newest.deployment_id.as_str()),
                "{service}"
            );
        }
        let mut superseded = 0;
        for answer in &mine {
            let status = records.get(&answer.deployment_id).await.unwrap().status;
            match status {
                Status::Superseded => superseded += 1,
                Status::Preparing | Status::Queued => {}
                other => panic!("{service}: {} is {other:?}", answer.deployment_id),
            }
        }
        let waiting = usize::from(lock.queued.is_some());
        assert_eq!(superseded, pushes - 1 - waiting, "{service}");
        // When the running one ends, the newest push takes over.
        bluegreen::steps::abort::run(&world.ctx, &failure(&lock.holder, "HealthCheckFailed"))
            .await
            .unwrap();
        let after = Locks::new(&world.ctx).read(service).await.unwrap();
        if waiting == 1 {
            assert_eq!(after.unwrap().holder, newest.deployment_id, "{service}");
        } else {
            assert_eq!(after, None, "{service}");
        }
    }
}

#[tokio::test]
async fn a_push_whose_prepare_gave_the_lock_back_takes_it_again_when_retried() {
    // Found by the fault campaign: prepare takes the lock, reading the live slot is throttled,
    // prepare gives the lock back and Step Functions retries — the retry must not find its
    // own push "older than the last one" and supersede itself.
    let world = World::build().await;
    let locks = Locks::new(&world.ctx);
    let order = bluegreen::lock::PushOrder::new(world.now(), "shop-retried");
    assert_eq!(
        locks.acquire("shop", &order).await.unwrap(),
        bluegreen::lock::Acquire::Held
    );
    locks.release("shop", "shop-retried").await.unwrap();
    assert_eq!(
        locks.acquire("shop", &order).await.unwrap(),
        bluegreen::lock::Acquire::Held
    );
    // An older push is still refused.
    locks.release("shop", "shop-retried").await.unwrap();
    let older =
        bluegreen::lock::PushOrder::new(world.now() - chrono::Duration::seconds(1), "shop-older");
    assert!(matches!(
        locks.acquire("shop", &older).await.unwrap(),
        bluegreen::lock::Acquire::Stale { .. }
    ));
}

#[tokio::test]
async fn people_are_told_about_an_invalid_config_once_per_version() {
    let world = World::build().await.with_topic();
    let mut bad = serde_json::to_value(world.config()).unwrap();
    bad["approval"]["approvers"] = serde_json::json!([]);
    store_raw_config(&world, "shop", &bad).await;
    for event in ["event-1", "event-2"] {
        let answer = only_answer(&world, &push_event("v2", 'a', event, &pushed_at(event))).await;
        assert_eq!(answer.outcome, PreparedOutcome::Failed);
    }
    assert_eq!(
        told_invalid(&world).await,
        1,
        "a push storm sends one message"
    );
    // A new version, still broken: one more message.
    bad["approval"]["timeout_seconds"] = 0.into();
    store_raw_config(&world, "shop", &bad).await;
    only_answer(
        &world,
        &push_event("v2", 'a', "event-3", &pushed_at("event-3")),
    )
    .await;
    assert_eq!(told_invalid(&world).await, 2);
    assert_eq!(world.lock_holder().await, None);
}

async fn told_invalid(world: &World) -> usize {
    world
        .published_subjects()
        .await
        .iter()
        .filter(|s| s.contains("invalid config"))
        .count()
}

/// A DynamoDB client whose `enqueue` (the UpdateItem that sets `queued_id`) is answered with
/// `code`; every other call goes through. With passthrough the request still reaches the
/// emulator and takes effect (aws-smithy-mocks replaces the answer after the attempt): this is
/// a lost answer. Add [`MisdirectRequests`] to the same client to make it a refusal.
fn dynamodb_losing_enqueue_answer(world: &World, code: &'static str) -> aws_sdk_dynamodb::Client {
    dynamodb_answering_enqueue_with(aws_sdk_dynamodb::config::Builder::from(&world.sdk), code)
}

/// A DynamoDB client whose `enqueue` is refused (misdirected to a table that does not exist,
/// so nothing is written) and answered `ThrottlingException`: a retryable failure that left the
/// lock's queue as it was, as when DynamoDB throttles the write.
pub(crate) fn dynamodb_throttling_enqueue(world: &World) -> aws_sdk_dynamodb::Client {
    let builder =
        aws_sdk_dynamodb::config::Builder::from(&world.sdk).interceptor(MisdirectRequests {
            marker: ENQUEUE_MARKER,
            table: world.ctx.settings.locks_table.clone(),
        });
    dynamodb_answering_enqueue_with(builder, "ThrottlingException")
}

fn dynamodb_answering_enqueue_with(
    builder: aws_sdk_dynamodb::config::Builder,
    code: &'static str,
) -> aws_sdk_dynamodb::Client {
    use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
    use aws_smithy_mocks::{MockResponseInterceptor, RuleMode, mock};
    let refuse = mock!(aws_sdk_dynamodb::Client::update_item)
        .match_requests(|r| {
            r.expression_attribute_names()
                .is_some_and(|names| names.values().any(|n| n == "queued_order"))
        })
        .then_error(move || {
            UpdateItemError::generic(
                aws_smithy_types::error::ErrorMetadata::builder()
                    .code(code)
                    .message(format!("{code} from the test"))
                    .build(),
            )
        });
    aws_sdk_dynamodb::Client::from_conf(
        builder
            .interceptor(
                MockResponseInterceptor::new()
                    .rule_mode(RuleMode::MatchAny)
                    .with_rule(&refuse)
                    .allow_passthrough(),
            )
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .build(),
    )
}

#[tokio::test]
async fn a_queued_push_whose_queueing_failed_after_its_record_was_written_is_queued_when_retried() {
    // A queued push's record is written before the lock's queue names it (so whoever
    // supersedes it or hands it the lock finds its record). If queueing then fails, the
    // retry must queue it, not answer "queued" from the record while the lock knows nothing.
    let world = World::build().await;
    let running = prepare_push(&world, "v2", "event-1").await;
    let event = push_event("v3", 'b', "event-2", &pushed_at("event-2"));
    let throttled = bluegreen_tests::with_client(&world.ctx, |c| {
        c.dynamodb = dynamodb_throttling_enqueue(&world)
    });
    let err = prepare::run(&throttled, &event).await.unwrap_err();
    assert!(err.is_retryable(), "{err}");
    let lock = world.lock("shop").await.expect("held");
    assert_eq!(
        (&lock.holder, &lock.queued),
        (&running, &None),
        "nothing queued yet"
    );

    let Prepared::Deployments { deployments } = prepare::run(&world.ctx, &event).await.unwrap()
    else {
        panic!("not prepared")
    };
    let queued = &deployments[0];
    assert_eq!(queued.outcome, PreparedOutcome::Queued);
    let lock = world.lock("shop").await.expect("held");
    assert_eq!(lock.holder, running);
    assert_eq!(lock.queued.as_deref(), Some(queued.deployment_id.as_str()));

    // And it deploys when the running one ends.
    bluegreen::steps::abort::run(&world.ctx, &failure(&running, "HealthCheckFailed"))
        .await
        .unwrap();
    assert_eq!(
        world.lock_holder().await.as_deref(),
        Some(queued.deployment_id.as_str())
    );
}

#[tokio::test]
async fn a_push_whose_queueing_answer_was_lost_stays_queued_and_deploys_next() {
    // The enqueue reached DynamoDB; only its answer was lost. The lock names the push, so
    // its record must stay queued (not be ended as "could not be queued").
    let world = World::build().await;
    let running = prepare_push(&world, "v2", "event-1").await;
    let event = push_event("v3", 'b', "event-2", &pushed_at("event-2"));
    let lost = bluegreen_tests::with_client(&world.ctx, |c| {
        c.dynamodb = dynamodb_losing_enqueue_answer(&world, "AccessDeniedException")
    });
    let Prepared::Deployments { deployments } = prepare::run(&lost, &event).await.unwrap() else {
        panic!("not prepared")
    };
    let answer = &deployments[0];
    assert_eq!(answer.outcome, PreparedOutcome::Failed, "{answer:?}");
    assert_eq!(
        record(&world, &answer.deployment_id).await.status,
        Status::Queued
    );
    bluegreen::steps::abort::run(&world.ctx, &failure(&running, "HealthCheckFailed"))
        .await
        .unwrap();
    assert_eq!(
        world.lock_holder().await.as_deref(),
        Some(answer.deployment_id.as_str())
    );
}

/// What only the lock's enqueue sends in an UpdateItem: the attribute `queued_order` (a
/// hand-over names it too, but in a TransactWriteItems).
const ENQUEUE_MARKER: &str = "\"queued_order\"";

/// Sends every UpdateItem whose body holds `marker` to a table that does not exist, so DynamoDB
/// itself refuses it before anything is written (a refusal, unlike a lost answer).
#[derive(Debug)]
struct MisdirectRequests {
    marker: &'static str,
    table: String,
}

impl aws_smithy_runtime_api::client::interceptors::Intercept for MisdirectRequests {
    fn name(&self) -> &'static str {
        "bluegreen-test-misdirect"
    }

    fn modify_before_signing(
        &self,
        context: &mut aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextMut<'_>,
        _components: &aws_smithy_runtime_api::client::runtime_components::RuntimeComponents,
        _cfg: &mut aws_smithy_types::config_bag::ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        let request = context.request_mut();
        let update_item = request
            .headers()
            .get("x-amz-target")
            .is_some_and(|t| t.ends_with(".UpdateItem"));
        if !update_item {
            return Ok(());
        }
        let Some(text) = request
            .body()
            .bytes()
            .map(|b| String::from_utf8_lossy(b).into_owned())
        else {
            return Ok(());
        };
        if text.contains(self.marker) {
            let body = text.replace(
                &format!("\"{}\"", self.table),
                "\"bluegreen-test-no-such-table\"",
            );
            request
                .headers_mut()
                .insert("content-length", body.len().to_string());
            *request.body_mut() = aws_smithy_types::body::SdkBody::from(body);
        }
        Ok(())
    }
}

#[tokio::test]
async fn a_push_that_could_not_be_queued_is_recorded_aborted_not_left_queued() {
    let world = World::build().await;
    let running = prepare_push(&world, "v2", "event-1").await;
    let event = push_event("v3", 'b', "event-2", &pushed_at("event-2"));
    let refused = bluegreen_tests::with_client(&world.ctx, |c| {
        c.dynamodb = aws_sdk_dynamodb::Client::from_conf(
            world
                .aws
                .dynamodb
                .config()
                .to_builder()
                .interceptor(MisdirectRequests {
                    marker: ENQUEUE_MARKER,
                    table: world.ctx.settings.locks_table.clone(),
                })
                .build(),
        )
    });
    let Prepared::Deployments { deployments } = prepare::run(&refused, &event).await.unwrap()
    else {
        panic!("not prepared")
    };
    let failed = &deployments[0];
    assert_eq!(failed.outcome, PreparedOutcome::Failed, "{failed:?}");
    let stored = record(&world, &failed.deployment_id).await;
    assert_eq!(stored.status, Status::Aborted);
    assert!(
        stored
            .failure
            .as_deref()
            .is_some_and(|f| f.starts_with("not queued: ResourceNotFound")),
        "{:?}",
        stored.failure
    );
    // The running deployment keeps its lock, and nothing is queued behind it.
    let lock = world.lock("shop").await.expect("held");
    assert_eq!((lock.holder, lock.queued), (running, None));
}

/// Holds the first DynamoDB `PutItem` whose body mentions `marker` until the test lets it go:
/// forces one interleaving of two prepares without timing anything. Blocks its worker thread,
/// so the test runs on a multi-threaded runtime.
#[derive(Debug)]
struct PauseFirstPut {
    marker: String,
    paused: std::sync::Mutex<Option<std::sync::mpsc::Sender<()>>>,
    resume: std::sync::Mutex<std::sync::mpsc::Receiver<()>>,
}

impl aws_smithy_runtime_api::client::interceptors::Intercept for PauseFirstPut {
    fn name(&self) -> &'static str {
        "bluegreen-test-pause"
    }

    fn read_before_transmit(
        &self,
        context: &aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef<'_>,
        _components: &aws_smithy_runtime_api::client::runtime_components::RuntimeComponents,
        _cfg: &mut aws_smithy_types::config_bag::ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        let request = context.request();
        let is_put = request
            .headers()
            .get("x-amz-target")
            .is_some_and(|t| t.ends_with(".PutItem"));
        let mentions = request
            .body()
            .bytes()
            .is_some_and(|b| String::from_utf8_lossy(b).contains(&self.marker));
        if is_put
            && mentions
            && let Some(paused) = self.paused.lock().unwrap().take()
        {
            paused.send(()).unwrap();
            // `block_in_place`: the runtime moves this worker's other tasks elsewhere while
            // it waits (else they wait too). Bounded, so a test whose other side never comes
            // fails instead of hanging.
            tokio::task::block_in_place(|| {
                self.resume
                    .lock()
                    .unwrap()
                    .recv_timeout(std::time::Duration::from_secs(30))
            })
            .map_err(|_| "the test never let the held request go")?;
        }
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_push_that_arrives_while_an_older_one_is_writing_its_queued_record_wins_cleanly() {
    // Found by CI under load: the older push was already in the lock's queue but had not
    // written its record when the newer push replaced it, so superseding it failed (no
    // record), the newer push was reported failed, and the older record stayed "queued"
    // forever. Here the older push is held right at its record write.
    let world = World::build().await;
    let running = prepare_push(&world, "v2", "event-1").await;
    let older = push_event("v3", 'b', "event-2", &pushed_at("event-2"));
    let newer = push_event("v4", 'c', "event-3", &pushed_at("event-3"));
    let older_id = bluegreen::naming::deployment_id(
        "shop",
        "event-2",
        chrono::DateTime::parse_from_rfc3339(&pushed_at("event-2"))
            .unwrap()
            .into(),
    );
    let (paused_tx, paused_rx) = std::sync::mpsc::channel();
    let (resume_tx, resume_rx) = std::sync::mpsc::channel();
    let held = bluegreen_tests::with_client(&world.ctx, |c| {
        c.dynamodb = aws_sdk_dynamodb::Client::from_conf(
            world
                .aws
                .dynamodb
                .config()
                .to_builder()
                .interceptor(PauseFirstPut {
                    marker: format!("\"{older_id}\""),
                    paused: std::sync::Mutex::new(Some(paused_tx)),
                    resume: std::sync::Mutex::new(resume_rx),
                })
                .build(),
        )
    });
    let first = tokio::spawn(async move { prepare::run(&held, &older).await });
    tokio::task::spawn_blocking(move || {
        paused_rx
            .recv_timeout(std::time::Duration::from_secs(30))
            .expect("the older push reached its record write")
    })
    .await
    .unwrap();
    let t0 = std::time::Instant::now();
    let second = prepare::run(&world.ctx, &newer).await.unwrap();
    eprintln!("SECOND {:?} {second:?}", t0.elapsed());
    resume_tx.send(()).unwrap();
    let first = first.await.unwrap().unwrap();

    let outcome = |p: &Prepared| match p {
        Prepared::Deployments { deployments } => {
            (deployments[0].deployment_id.clone(), deployments[0].outcome)
        }
        other => panic!("{other:?}"),
    };
    let (newer_id, newer_outcome) = outcome(&second);
    assert_eq!(
        outcome(&first),
        (older_id.clone(), PreparedOutcome::Superseded)
    );
    assert_eq!(newer_outcome, PreparedOutcome::Queued);
    assert_eq!(record(&world, &older_id).await.status, Status::Superseded);
    assert_eq!(record(&world, &newer_id).await.status, Status::Queued);
    let lock = world.lock("shop").await.expect("held");
    assert_eq!((lock.holder, lock.queued), (running, Some(newer_id)));
}

/// ELBv2 with the first `DescribeListeners` (the first service's live-slot read) throttled, or
/// every one of them with `always`.
fn elb_throttling(world: &World, always: bool) -> aws_sdk_elasticloadbalancingv2::Client {
    use aws_sdk_elasticloadbalancingv2::operation::describe_listeners::DescribeListenersError;
    use aws_smithy_mocks::{MockResponseInterceptor, RuleMode, mock};
    use std::sync::atomic::{AtomicUsize, Ordering};
    let calls = std::sync::Arc::new(AtomicUsize::new(0));
    let throttle = mock!(aws_sdk_elasticloadbalancingv2::Client::describe_listeners)
        .match_requests(move |_| always || calls.fetch_add(1, Ordering::SeqCst) == 0)
        .then_error(|| {
            DescribeListenersError::generic(
                aws_smithy_types::error::ErrorMetadata::builder()
                    .code("Throttling")
                    .message("Rate exceeded")
                    .build(),
            )
        });
    aws_sdk_elasticloadbalancingv2::Client::from_conf(
        aws_sdk_elasticloadbalancingv2::config::Builder::from(&world.sdk)
            .interceptor(
                MockResponseInterceptor::new()
                    .rule_mode(RuleMode::MatchAny)
                    .with_rule(&throttle)
                    .allow_passthrough(),
            )
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .build(),
    )
}

/// The service's only record.
async fn only_record(world: &World, service: &str) -> bluegreen::record::Deployment {
    let mut records = Records::new(&world.ctx)
        .for_service(service, 5)
        .await
        .unwrap();
    assert_eq!(records.len(), 1, "{service}: {records:?}");
    records.remove(0)
}

/// Issue 22 item 3: a retryable error for one of two services watching a repository stops only
/// that one. The other is prepared in the same attempt (record, lock); the throttled one is
/// parked as a queued record with the error, its lock not taken; the intake's retry prepares
/// it and answers the other's deployment again, the same one.
#[tokio::test]
async fn a_retryable_error_for_one_service_never_stops_the_others() {
    let world = World::build().await;
    let mut admin = world.config();
    admin.name = "admin".into();
    world.put_config(&admin).await;
    let event = push_event("v2", 'a', "event-1", PUSHED_AT);
    let throttled =
        bluegreen_tests::with_client(&world.ctx, |c| c.elb = elb_throttling(&world, false));
    let err = prepare::run(&throttled, &event).await.unwrap_err();
    assert!(err.is_retryable(), "{err}");

    // Whichever service was looked at first was throttled; the other was prepared anyway.
    let (admin_record, shop_record) = (
        only_record(&world, "admin").await,
        only_record(&world, "shop").await,
    );
    let (parked, prepared) = if admin_record.status == Status::Queued {
        (admin_record, shop_record)
    } else {
        (shop_record, admin_record)
    };
    assert_eq!(parked.status, Status::Queued, "{parked:?}");
    assert_eq!(prepared.status, Status::Preparing, "{prepared:?}");
    assert!(
        parked.timeline[0]
            .detail
            .contains("not prepared: Throttled"),
        "{:?}",
        parked.timeline
    );
    let locks = Locks::new(&world.ctx);
    assert_eq!(locks.holder(&parked.service).await.unwrap(), None);
    assert_eq!(
        locks.holder(&prepared.service).await.unwrap().as_deref(),
        Some(prepared.deployment_id.as_str())
    );

    // Step Functions retries the intake with a healthy API.
    let Prepared::Deployments { deployments } = prepare::run(&world.ctx, &event).await.unwrap()
    else {
        panic!("not prepared")
    };
    assert_eq!(deployments.len(), 2, "{deployments:?}");
    for d in &deployments {
        assert_eq!(d.outcome, PreparedOutcome::Started, "{d:?}");
        assert_eq!(
            locks.holder(&d.service).await.unwrap().as_deref(),
            Some(d.deployment_id.as_str())
        );
    }
    assert!(
        deployments
            .iter()
            .any(|d| d.deployment_id == prepared.deployment_id),
        "the same deployment answered again: {deployments:?}"
    );
    assert_eq!(
        only_record(&world, &parked.service).await.status,
        Status::Preparing
    );
}

/// Issue 22 item 3: a push whose prepare fails on every one of the intake's attempts leaves a
/// queued record with the cause (the intake ends `Rejected`), and the reconciler's sweep puts
/// it through the queue after its grace (or, when a retry already put it there and it holds
/// the lock, starts the execution it never got) — the push is not lost with the intake.
#[tokio::test]
async fn a_push_whose_prepare_kept_failing_is_recorded_and_the_reconciler_deploys_it() {
    // One attempt (an intake that stopped at once: the record is not in the lock) and the
    // intake's six (the first and five retries: a retry put it through the queue).
    for attempts in [1, 6] {
        recovered_after(attempts).await;
    }
}

async fn recovered_after(attempts: usize) {
    let world = World::build().await;
    world.create_deployment_machine().await;
    let event = push_event("v2", 'a', "event-1", PUSHED_AT);
    let throttled =
        bluegreen_tests::with_client(&world.ctx, |c| c.elb = elb_throttling(&world, true));
    for _ in 0..attempts {
        let err = prepare::run(&throttled, &event).await.unwrap_err();
        assert_eq!(err.name(), "Throttled", "{err}");
    }
    let parked = only_record(&world, "shop").await;
    assert_eq!(parked.status, Status::Queued);
    assert!(
        parked.timeline[0].detail.contains("Rate exceeded"),
        "the cause is recorded: {:?}",
        parked.timeline
    );
    // A retry put the parked record through the queue, so it may hold the lock (its prepare
    // failed after that); nobody else does.
    let holder = world.lock_holder().await;
    assert!(
        holder.is_none() || holder.as_deref() == Some(parked.deployment_id.as_str()),
        "{holder:?}"
    );

    world.advance(chrono::Duration::minutes(16));
    bluegreen::steps::reconcile::sweep(&world.ctx)
        .await
        .unwrap();
    let id = parked.deployment_id;
    assert_eq!(world.lock_holder().await.as_deref(), Some(id.as_str()));
    assert!(
        world.execution_status(&id).await.is_some(),
        "its execution was started"
    );
}

/// Issue 22 item 4: `approval.policy = "auto"` takes the stack's leave (`AutoApproveServices`),
/// so that writing a config is not approving. A service the stack does not name is refused at
/// prepare with the reason, and nothing is taken; one it names deploys without a person.
#[tokio::test]
async fn auto_approval_is_refused_unless_the_stack_allows_it_for_the_service() {
    use bluegreen::context::AutoApprove;
    let world = World::build().await;
    let mut config = world.config();
    config.approval.policy = bluegreen::config::ApprovalPolicy::Auto;
    config.approval.approvers.clear();
    world.put_config(&config).await;
    let event = push_event("v2", 'a', "event-1", PUSHED_AT);

    let mut stack = world.ctx.clone();
    stack.settings.auto_approve = AutoApprove::parse(Some("none"));
    let refused = only_answer_with(&stack, &event).await;
    assert_eq!(refused.outcome, PreparedOutcome::Failed);
    let error = refused.error.unwrap();
    assert!(
        error.starts_with("ConfigInvalid") && error.contains("\"auto\" is not allowed for shop"),
        "{error}"
    );
    assert_eq!(world.lock_holder().await, None, "nothing taken");

    stack.settings.auto_approve = AutoApprove::parse(Some("billing, shop"));
    let allowed = only_answer_with(&stack, &event).await;
    assert_eq!(allowed.outcome, PreparedOutcome::Started, "{allowed:?}");
}

async fn only_answer_with(ctx: &bluegreen::Context, event: &serde_json::Value) -> Prepared1 {
    match prepare::run(ctx, event).await.unwrap() {
        Prepared::Deployments { mut deployments } => {
            assert_eq!(deployments.len(), 1, "{deployments:?}");
            deployments.remove(0)
        }
        other => panic!("{other:?}"),
    }
}

/// A DynamoDB client whose queries of the deployments table (the sweep lookup of prepare) are
/// answered `ThrottlingException`; everything else reaches the emulator.
fn dynamodb_throttling_record_queries(world: &World) -> aws_sdk_dynamodb::Client {
    use aws_sdk_dynamodb::operation::query::QueryError;
    use aws_smithy_mocks::{MockResponseInterceptor, RuleMode, mock};
    let table = world.ctx.settings.deployments_table.clone();
    let throttle = mock!(aws_sdk_dynamodb::Client::query)
        .match_requests(move |r| r.table_name() == Some(table.as_str()))
        .then_error(|| {
            QueryError::generic(
                aws_smithy_types::error::ErrorMetadata::builder()
                    .code("ThrottlingException")
                    .message("Rate exceeded")
                    .build(),
            )
        });
    aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&world.sdk)
            .interceptor(
                MockResponseInterceptor::new()
                    .rule_mode(RuleMode::MatchAny)
                    .with_rule(&throttle)
                    .allow_passthrough(),
            )
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .build(),
    )
}

/// When prepare cannot tell whether the missed-push sweep already deployed the push (its
/// lookup is throttled), it parks nothing — a parked record could deploy the image a second
/// time — and the intake's retry prepares it (review of issue 22 item 3).
#[tokio::test]
async fn a_push_whose_sweep_lookup_fails_parks_nothing_and_is_prepared_on_the_retry() {
    let world = World::build().await;
    let throttled = bluegreen_tests::with_client(&world.ctx, |c| {
        c.dynamodb = dynamodb_throttling_record_queries(&world)
    });
    let event = push_event("v2", 'a', "event-1", PUSHED_AT);
    let err = prepare::run(&throttled, &event).await.unwrap_err();
    assert_eq!(err.name(), "Throttled", "{err}");
    assert!(
        Records::new(&world.ctx)
            .for_service("shop", 5)
            .await
            .unwrap()
            .is_empty(),
        "nothing parked"
    );
    assert_eq!(world.lock_holder().await, None);
    assert_eq!(
        only_answer(&world, &event).await.outcome,
        PreparedOutcome::Started
    );
}

/// A config asking for `auto` that the stack does not allow is refused before anything is
/// looked up, even when the lookups fail: it is never parked (a parked record would carry the
/// config past the check) (review of issue 22 item 4).
#[tokio::test]
async fn a_refused_auto_config_is_never_parked() {
    use bluegreen::context::AutoApprove;
    let world = World::build().await;
    let mut config = world.config();
    config.approval.policy = bluegreen::config::ApprovalPolicy::Auto;
    config.approval.approvers.clear();
    world.put_config(&config).await;
    let mut stack = bluegreen_tests::with_client(&world.ctx, |c| {
        c.dynamodb = dynamodb_throttling_record_queries(&world)
    });
    stack.settings.auto_approve = AutoApprove::parse(Some("none"));
    let event = push_event("v2", 'a', "event-1", PUSHED_AT);
    let refused = only_answer_with(&stack, &event).await;
    assert_eq!(refused.outcome, PreparedOutcome::Failed, "{refused:?}");
    assert!(
        Records::new(&world.ctx)
            .for_service("shop", 5)
            .await
            .unwrap()
            .is_empty()
    );
}
