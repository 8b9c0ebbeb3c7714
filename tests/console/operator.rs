//! The manual rollback: inside the keep-warm window, with the old slot running, traffic goes
//! back and the deployment is recorded as rolled back by the operator; otherwise it is refused
//! and production stays where it is.

use bluegreen::Slot;
use bluegreen::operator::manual_rollback;
use bluegreen::record::{Status, StepOutcome};
use bluegreen::steps::finish;

use crate::*;

const OPERATOR: &str = "arn:aws:iam::123456789012:user/oncall";

/// Deploys v2 to green and finishes with blue kept warm for an hour, blue's tasks running.
async fn finished_with_warm_blue(world: &World) -> String {
    let mut config = world.config();
    config.finish.keep_warm_seconds = 3600;
    world.put_config(&config).await;
    let id = deploy_to_switch(world).await;
    finish::run(&world.ctx, &id_ref(&id)).await.expect("finish");
    world.settle(Slot::Blue, "COMPLETED").await;
    id
}

#[tokio::test]
async fn a_rollback_in_the_keep_warm_window_sends_traffic_back_once() {
    let world = World::build().await.with_topic();
    let id = finished_with_warm_blue(&world).await;
    let done = manual_rollback(&world.ctx, "shop", OPERATOR).await.unwrap();
    assert_eq!((done.live_slot, done.from_slot), (Slot::Blue, Slot::Green));
    assert_eq!(done.deployment_id, id);
    let production = world.production().await;
    assert_eq!(production.percent(Slot::Blue), 100, "{production:?}");
    assert_eq!(world.test_slot().await, Some(Slot::Green));
    assert_eq!(
        world.service(Slot::Green).await.1,
        0,
        "the bad slot is scaled down"
    );
    let blue_tags = world.service(Slot::Blue).await.2;
    assert!(
        !blue_tags.iter().any(|(k, _)| k == "bluegreen:expires-at"),
        "teardown would scale the live slot down: {blue_tags:?}"
    );
    let d = stored(&world, &id).await;
    assert_eq!(d.status, Status::RolledBack);
    let steps: Vec<&str> = d.timeline.iter().map(|e| e.step.as_str()).collect();
    assert_eq!(
        steps[steps.len() - 2..],
        ["manual_rollback", "manual_rollback_retire"],
        "traffic moved, then the bad slot retired"
    );
    let entry = &d.timeline[d.timeline.len() - 2];
    assert!(entry.detail.contains(OPERATOR), "{entry:?}");
    assert!(!bluegreen::retirement::pending(&d), "finished");
    // The same record without its retirement is pending; one written before the intent
    // existed (no `manual_rollback` started) never is: nothing would finish an old rollback.
    let mut unfinished = d.clone();
    unfinished
        .timeline
        .retain(|e| e.step != "manual_rollback_retire");
    assert!(bluegreen::retirement::pending(&unfinished));
    let mut old_format = unfinished.clone();
    old_format
        .timeline
        .retain(|e| !(e.step == "manual_rollback" && e.outcome == StepOutcome::Started));
    assert!(!bluegreen::retirement::pending(&old_format));
    assert_eq!(world.lock_holder().await, None, "the lock is released");
    let kinds: Vec<String> = world
        .published()
        .await
        .iter()
        .map(|m| m["attributes"]["kind"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(kinds.last().map(String::as_str), Some("rolled_back"));

    let again = manual_rollback(&world.ctx, "shop", OPERATOR)
        .await
        .unwrap_err();
    assert_eq!(again.name(), "RollbackRefused");
    assert!(again.to_string().contains("already rolled back"), "{again}");
}

/// The clean-up after traffic moved fails (ECS's answer to its first call, un-tagging blue, is
/// lost): the record already says `rolled_back` — production is on blue — and running the
/// command again finishes the clean-up instead of refusing.
#[tokio::test]
async fn a_rollback_whose_clean_up_fails_is_recorded_and_finished_by_running_it_again() {
    let world = World::build().await.with_topic();
    let id = finished_with_warm_blue(&world).await;
    let failing = untagging_fails(&world);
    let failed = manual_rollback(&failing, "shop", OPERATOR)
        .await
        .unwrap_err();
    assert_eq!(failed.name(), "RollbackFailed", "{failed}");
    let told = failed.to_string();
    assert!(
        told.contains("production traffic back on blue")
            && told.contains("run `bluegreen rollback shop` again"),
        "{told}"
    );
    assert_eq!(world.production().await.percent(Slot::Blue), 100);
    assert_eq!(world.service(Slot::Green).await.1, 2, "not scaled down yet");
    let d = stored(&world, &id).await;
    assert_eq!(
        d.status,
        Status::RolledBack,
        "the record says where traffic is"
    );
    let last = d.timeline.last().unwrap();
    assert_eq!(
        (last.step.as_str(), last.outcome),
        ("manual_rollback_retire", StepOutcome::Failed)
    );
    assert_eq!(world.lock_holder().await, None, "the lock is released");
    let rolled_back_notices = || async {
        let subjects = world.published_subjects().await;
        subjects
            .iter()
            .filter(|s| s.ends_with("rolled back"))
            .count()
    };
    assert_eq!(rolled_back_notices().await, 1, "people are told at once");

    let finished = manual_rollback(&world.ctx, "shop", OPERATOR).await.unwrap();
    assert!(finished.detail.contains("finished"), "{}", finished.detail);
    assert_eq!(
        world.service(Slot::Green).await.1,
        0,
        "the bad slot is retired"
    );
    assert_eq!(world.test_slot().await, Some(Slot::Green));
    assert_eq!(world.production().await.percent(Slot::Blue), 100);
    let d = stored(&world, &id).await;
    assert_eq!(d.status, Status::RolledBack);
    assert!(d.has_outcome("manual_rollback_retire", StepOutcome::Succeeded));
    assert_eq!(world.lock_holder().await, None);
    assert_eq!(rolled_back_notices().await, 1, "told once");

    let again = manual_rollback(&world.ctx, "shop", OPERATOR)
        .await
        .unwrap_err();
    assert!(again.to_string().contains("already rolled back"), "{again}");
}

/// A context whose ECS `UntagResource` answers are lost: aws-smithy-mocks replaces a modeled
/// error after the real client sent the request, so the call took effect in the emulator.
fn untagging_fails(world: &World) -> bluegreen::Context {
    use aws_sdk_ecs::operation::untag_resource::UntagResourceError;
    use aws_smithy_mocks::{MockResponseInterceptor, RuleMode, mock};
    let lost = mock!(aws_sdk_ecs::Client::untag_resource)
        .sequence()
        .error(|| {
            UntagResourceError::generic(
                aws_smithy_types::error::ErrorMetadata::builder()
                    .code("ServerException")
                    .message("ECS is having a bad day")
                    .build(),
            )
        })
        .repeatedly()
        .build();
    bluegreen_tests::with_client(&world.ctx, |c| {
        c.ecs = aws_sdk_ecs::Client::from_conf(
            aws_sdk_ecs::config::Builder::from(&world.sdk)
                .interceptor(
                    MockResponseInterceptor::new()
                        .rule_mode(RuleMode::MatchAny)
                        .with_rule(&lost)
                        .allow_passthrough(),
                )
                .retry_config(aws_config::retry::RetryConfig::disabled())
                .build(),
        )
    })
}

/// The answer to the routing write is lost after it took effect: production is on blue, but
/// the command failed before recording anything but its intent. Running it again sees the
/// intent and the routing, records the rollback and retires green (seed 5626's class, one
/// call earlier).
#[tokio::test]
async fn a_rollback_whose_routing_answer_was_lost_is_finished_by_running_it_again() {
    use aws_sdk_elasticloadbalancingv2::operation::modify_listener::ModifyListenerError;
    use aws_smithy_mocks::mock;
    let world = World::build().await.with_topic();
    let id = finished_with_warm_blue(&world).await;
    let lost = mock!(aws_sdk_elasticloadbalancingv2::Client::modify_listener)
        .sequence()
        .error(|| {
            ModifyListenerError::generic(
                aws_smithy_types::error::ErrorMetadata::builder()
                    .code("InternalFailure")
                    .build(),
            )
        })
        .repeatedly()
        .build();
    let failing = with_elb_rule(&world, &lost);
    manual_rollback(&failing, "shop", OPERATOR)
        .await
        .unwrap_err();
    assert_eq!(
        world.production().await.percent(Slot::Blue),
        100,
        "it took effect"
    );
    let d = stored(&world, &id).await;
    assert_eq!(d.status, Status::Succeeded, "only the intent is recorded");
    assert!(d.has_outcome("manual_rollback", StepOutcome::Started));
    assert_eq!(world.lock_holder().await, None);

    let finished = manual_rollback(&world.ctx, "shop", OPERATOR).await.unwrap();
    assert!(finished.detail.contains("finished"), "{}", finished.detail);
    let d = stored(&world, &id).await;
    assert_eq!(d.status, Status::RolledBack);
    assert!(d.has_outcome("manual_rollback_retire", StepOutcome::Succeeded));
    assert_eq!(world.service(Slot::Green).await.1, 0);
    assert_eq!(world.production().await.percent(Slot::Blue), 100);
}

/// Found by the simulator (seed 8036): a manual rollback whose traffic move fails before any
/// of production reached the warm slot leaves that slot at rest again — not holding
/// production's autoscaling minimum while it serves nothing — and production where it was;
/// running it again rolls back.
#[tokio::test]
async fn a_rollback_whose_move_failed_before_traffic_moved_puts_the_warm_slot_back_at_rest() {
    use aws_sdk_elasticloadbalancingv2::operation::describe_listeners::DescribeListenersError;
    use aws_smithy_mocks::mock;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let world = World::build().await.with_topic();
    world.autoscale(Slot::Blue, 2, 6).await;
    let id = finished_with_warm_blue(&world).await;
    assert_eq!(
        world.scalable_target(Slot::Blue).await.map(|t| t.min),
        Some(0)
    );
    // The second read of production (the move's own, after the capacity was given) fails.
    let reads = std::sync::Arc::new(AtomicUsize::new(0));
    let counted = reads.clone();
    let throttled = mock!(aws_sdk_elasticloadbalancingv2::Client::describe_listeners)
        .match_requests(move |_| counted.fetch_add(1, Ordering::SeqCst) == 1)
        .then_error(|| {
            DescribeListenersError::generic(
                aws_smithy_types::error::ErrorMetadata::builder()
                    .code("Throttling")
                    .build(),
            )
        });
    let failing = with_elb_rule(&world, &throttled);
    let err = manual_rollback(&failing, "shop", OPERATOR)
        .await
        .unwrap_err();
    assert_eq!(err.name(), "Throttled", "{err}");
    assert!(
        reads.load(Ordering::SeqCst) >= 3,
        "production was read again"
    );
    assert_eq!(world.production().await.percent(Slot::Green), 100);
    assert_eq!(
        world.scalable_target(Slot::Blue).await.map(|t| t.min),
        Some(0),
        "the warm slot is at rest again"
    );
    assert_eq!(world.lock_holder().await, None);
    let done = manual_rollback(&world.ctx, "shop", OPERATOR).await.unwrap();
    assert_eq!(done.live_slot, Slot::Blue);
    assert_eq!(stored(&world, &id).await.status, Status::RolledBack);
    assert!(world.scalable_target(Slot::Blue).await.map(|t| t.min) >= Some(2));
}

/// Nobody runs the rollback again: the live-slot guard's next look sees the bad slot still
/// running and finishes what the person asked for.
#[tokio::test]
async fn the_guard_finishes_a_manual_rollback_whose_clean_up_failed() {
    let world = World::build().await;
    let id = finished_with_warm_blue(&world).await;
    manual_rollback(&untagging_fails(&world), "shop", OPERATOR)
        .await
        .unwrap_err();
    assert_eq!(world.service(Slot::Green).await.1, 2);

    let guarded = bluegreen::guard::check(&world.ctx, &world.config())
        .await
        .unwrap();
    let repaired = guarded.repaired.unwrap_or_default();
    assert!(
        repaired.contains(&format!("finished the manual rollback of {id}")),
        "{repaired}"
    );
    assert_eq!(
        world.service(Slot::Green).await.1,
        0,
        "the bad slot is retired"
    );
    assert_eq!(world.production().await.percent(Slot::Blue), 100);
    let d = stored(&world, &id).await;
    assert!(d.has_outcome("manual_rollback_retire", StepOutcome::Succeeded));
    assert_eq!(
        world.lock_holder().await,
        None,
        "the guard gave the lock back"
    );

    let again = bluegreen::guard::check(&world.ctx, &world.config())
        .await
        .unwrap();
    assert_eq!(again.violations, Some(vec![]), "{:?}", again.lines);
}

/// The guard finishes a rollback only on the deployment's own terms: once the service's slots
/// or routing changed in its config (here green's test URL), what the old record names may not
/// be what runs now — it reports, and leaves the slot to a person.
#[tokio::test]
async fn the_guard_leaves_an_unfinished_rollback_alone_once_the_services_config_changed() {
    let world = World::build().await;
    let id = finished_with_warm_blue(&world).await;
    manual_rollback(&untagging_fails(&world), "shop", OPERATOR)
        .await
        .unwrap_err();
    let mut config = world.config();
    config.finish.keep_warm_seconds = 3600;
    config.slots.green.test_url = Some("http://green.internal:8443".into());
    world.put_config(&config).await;

    let guarded = bluegreen::guard::check(&world.ctx, &config).await.unwrap();
    assert_eq!(guarded.repaired, None, "{:?}", guarded.lines);
    assert!(
        guarded
            .violations
            .unwrap_or_default()
            .iter()
            .any(|v| v.code() == "idle-slot-running"),
        "still reported"
    );
    assert_eq!(world.service(Slot::Green).await.1, 2, "left to a person");
    assert!(
        !stored(&world, &id)
            .await
            .has_outcome("manual_rollback_retire", StepOutcome::Succeeded)
    );
}

/// A manual rollback left unfinished is finished only while production is still on the slot
/// it went back to: a route changed since is a person's to look at.
#[tokio::test]
async fn finishing_a_rollback_refuses_when_production_moved_since() {
    let world = World::build().await;
    finished_with_warm_blue(&world).await;
    let failing = untagging_fails(&world);
    manual_rollback(&failing, "shop", OPERATOR)
        .await
        .unwrap_err();
    // Someone puts production back on green by hand before finishing.
    bluegreen::routing::set_production(&world.ctx, &world.config(), Slot::Green, 100)
        .await
        .unwrap();
    let refused = manual_rollback(&world.ctx, "shop", OPERATOR)
        .await
        .unwrap_err();
    assert_eq!(refused.name(), "RollbackRefused");
    assert!(
        refused.to_string().contains("routing changed since"),
        "{refused}"
    );
    assert_eq!(world.service(Slot::Green).await.1, 2, "green serves: kept");
}

/// DNS mode: the weights go back at once, but resolvers may answer green for one more TTL, so
/// green keeps its tasks, tagged to expire then, and the scheduled teardown scales it down.
#[tokio::test]
async fn a_dns_manual_rollback_keeps_the_bad_slot_for_one_ttl_then_teardown_retires_it() {
    use bluegreen::steps::{switch, teardown};
    let world = World::build().await;
    let mut config = world.dns_config();
    config.finish.keep_warm_seconds = 3600;
    world.put_config(&config).await;
    let id = prepare_push(&world, "v2", "event-1").await;
    launch(&world, &id).await;
    health(&world, &id).await.unwrap();
    approve(&world, &id).await;
    let started = switch::start(&world.ctx, &id_ref(&id)).await.unwrap();
    world.advance(chrono::Duration::seconds(301));
    switch::check(&world.ctx, &check_of(&started))
        .await
        .unwrap();
    finish::run(&world.ctx, &id_ref(&id)).await.expect("finish");
    world.settle(Slot::Blue, "COMPLETED").await;
    let serving = world.service(Slot::Green).await.1;
    assert!(serving > 0);

    let done = manual_rollback(&world.ctx, "shop", OPERATOR).await.unwrap();
    assert_eq!(world.production_dns().await.live().unwrap(), Slot::Blue);
    assert!(done.detail.contains("TTL (300 s)"), "{}", done.detail);
    let (_, green_count, tags) = world.service(Slot::Green).await;
    assert_eq!(green_count, serving, "cached answers may still reach green");
    let expires = tags
        .iter()
        .find(|(k, _)| k == "bluegreen:expires-at")
        .map(|(_, v)| chrono::DateTime::parse_from_rfc3339(v).unwrap())
        .expect("green is tagged to expire");
    let ttl_left = expires.to_utc() - world.now();
    assert!(
        ttl_left > chrono::Duration::seconds(290) && ttl_left <= chrono::Duration::seconds(300),
        "expires one TTL after the rollback: {expires}"
    );
    assert_eq!(stored(&world, &id).await.status, Status::RolledBack);

    teardown::run(&world.ctx).await.unwrap();
    assert_eq!(
        world.service(Slot::Green).await.1,
        serving,
        "not expired yet"
    );
    world.advance(chrono::Duration::seconds(301));
    teardown::run(&world.ctx).await.unwrap();
    assert_eq!(world.service(Slot::Green).await.1, 0, "teardown retired it");
    assert!(world.service(Slot::Blue).await.1 > 0, "blue serves");
    assert_eq!(world.production_dns().await.live().unwrap(), Slot::Blue);
}

#[tokio::test]
async fn a_rollback_after_the_window_or_during_a_deployment_is_refused() {
    let world = World::build().await;
    finished_with_warm_blue(&world).await;
    world.advance(chrono::Duration::seconds(3700));
    let late = manual_rollback(&world.ctx, "shop", OPERATOR)
        .await
        .unwrap_err();
    assert_eq!(late.name(), "RollbackRefused");
    assert!(late.to_string().contains("keep-warm window"), "{late}");
    assert!(
        late.to_string().contains("bluegreen rollback shop --to"),
        "{late}"
    );
    assert_eq!(world.production().await.live().unwrap(), Slot::Green);

    let busy = prepare_push(&world, "v3", "event-9").await;
    let refused = manual_rollback(&world.ctx, "shop", OPERATOR)
        .await
        .unwrap_err();
    assert!(refused.to_string().contains(&busy), "{refused}");
    assert_eq!(world.production().await.live().unwrap(), Slot::Green);
    assert_eq!(world.lock_holder().await.as_deref(), Some(busy.as_str()));
}

#[tokio::test]
async fn a_rollback_refuses_when_the_old_slot_no_longer_runs() {
    let world = World::build().await;
    finished_with_warm_blue(&world).await;
    // Someone scaled the warm slot down by hand.
    world
        .aws
        .ecs
        .update_service()
        .cluster("shop-cluster")
        .service("shop-blue")
        .desired_count(0)
        .send()
        .await
        .unwrap();
    let refused = manual_rollback(&world.ctx, "shop", OPERATOR)
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("no longer warm"), "{refused}");
    assert_eq!(world.production().await.live().unwrap(), Slot::Green);
    assert_eq!(world.lock_holder().await, None);
}

#[tokio::test]
async fn a_service_without_deployments_is_unknown() {
    let world = World::build().await;
    let e = manual_rollback(&world.ctx, "nope", OPERATOR)
        .await
        .unwrap_err();
    assert_eq!(e.name(), "ServiceNotFound");
}

/// A manual rollback that moved production back and could not read the service's other
/// routes for now (a throttled read) answers the error once it tried the rest; running it
/// again finishes it and moves the routes left on the bad slot before retiring it. It used to
/// go straight to the retirement, whose scale-down refused with the routes still on green,
/// every time it was run again. (Review of the simulator's shared-load-balancer fix.)
#[tokio::test]
async fn a_rollback_run_again_moves_the_other_routes_an_interrupted_run_left_behind() {
    let (world, id, more) = rollback_interrupted_between_production_and_the_routes().await;
    let finished = manual_rollback(&world.ctx, "shop", OPERATOR).await.unwrap();
    assert!(finished.detail.contains("finished"), "{}", finished.detail);
    assert_rolled_back_to_blue(&world, &id, &more).await;
}

/// The same interrupted rollback, and nobody runs it again: the live-slot guard's next sweep
/// finishes it. The slot it left serves the other routes, so it is no violation (an idle slot
/// other routes forward to is serving them); the guard used to leave it so for good (the
/// simulator, seed 9839: at rest an `/admin/*` rule still on the rolled-back slot, which kept
/// production's autoscaling minimum).
#[tokio::test]
async fn the_guard_finishes_a_rollback_interrupted_between_production_and_the_routes() {
    let (world, id, more) = rollback_interrupted_between_production_and_the_routes().await;
    let config = bluegreen::config_store::ConfigStore::new(&world.ctx)
        .load("shop")
        .await
        .unwrap();
    let guarded = bluegreen::guard::check(&world.ctx, &config).await.unwrap();
    let repaired = guarded.repaired.unwrap_or_default();
    assert!(
        repaired.contains("finished the manual rollback"),
        "{repaired}"
    );
    assert_rolled_back_to_blue(&world, &id, &more).await;
    // At rest, the next sweep finds nothing to finish and changes nothing.
    let again = bluegreen::guard::check(&world.ctx, &config).await.unwrap();
    assert_eq!(again.repaired, None);
}

/// Every route back on blue, the deployment `rolled_back`, green retired.
async fn assert_rolled_back_to_blue(world: &World, id: &str, more: &[String]) {
    assert_eq!(
        on_blue(world, more).await,
        [100, 100, 100],
        "every route back on blue"
    );
    assert_eq!(stored(world, id).await.status, Status::RolledBack);
    assert_eq!(world.service(Slot::Green).await.1, 0, "green retired");
}

/// A deployment to green with `routes = "auto"` (the world's other routes to blue), finished
/// and kept warm, then rolled back by hand with ELB's read of the other routes throttled after
/// production moved: production back on blue, the other routes left on green, the command
/// answering the (retryable) error. The world, the deployment and the other routes.
async fn rollback_interrupted_between_production_and_the_routes() -> (World, String, [String; 3]) {
    use aws_sdk_elasticloadbalancingv2::operation::describe_target_groups::DescribeTargetGroupsError;
    use aws_smithy_mocks::mock;
    use bluegreen::config::{Routes, RoutesWord, Traffic};
    let world = World::build().await.with_topic();
    let more = world.more_routes_to_blue().await;
    let mut config = world.config();
    config.finish.keep_warm_seconds = 3600;
    if let Traffic::Listener { routes, .. } = &mut config.traffic {
        *routes = Routes::Word(RoutesWord::Auto);
    }
    world.put_config(&config).await;
    let id = deploy_to_switch(&world).await;
    finish::run(&world.ctx, &id_ref(&id)).await.expect("finish");
    world.settle(Slot::Blue, "COMPLETED").await;
    assert_eq!(
        on_blue(&world, &more).await,
        [0, 0, 0],
        "every route on green"
    );
    let throttled = mock!(aws_sdk_elasticloadbalancingv2::Client::describe_target_groups)
        .sequence()
        .error(|| {
            DescribeTargetGroupsError::generic(
                aws_smithy_types::error::ErrorMetadata::builder()
                    .code("Throttling")
                    .message("Rate exceeded")
                    .build(),
            )
        })
        .build();
    let interrupted = with_elb_rule(&world, &throttled);
    let err = manual_rollback(&interrupted, "shop", OPERATOR)
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert_eq!(
        world.production().await.percent(Slot::Blue),
        100,
        "production back"
    );
    assert_eq!(
        on_blue(&world, &more).await,
        [0, 0, 0],
        "the other routes left on green"
    );
    (world, id, more)
}

/// The share each of `routes` (listener or rule ARNs) sends to blue, as ELB has it.
async fn on_blue(world: &World, routes: &[String]) -> Vec<i32> {
    let mut shares = Vec::new();
    for arn in routes {
        let route = bluegreen::routes::route_of(arn);
        let groups = world.ctx.ports.load_balancing.forward(&route).await;
        let groups = groups.unwrap().unwrap_or_default();
        let single = groups.len() == 1;
        let blue = groups
            .iter()
            .filter(|g| g.target_group_arn == world.tg(Slot::Blue))
            .map(|g| g.weight.unwrap_or(if single { 100 } else { 0 }))
            .sum();
        shares.push(blue);
    }
    shares
}

/// The world's context with ELB calls answered by `rule` where it matches (a modeled error
/// replaces the answer after the call reached ELB; the rest go through).
fn with_elb_rule(world: &World, rule: &aws_smithy_mocks::Rule) -> bluegreen::Context {
    use aws_smithy_mocks::{MockResponseInterceptor, RuleMode};
    bluegreen_tests::with_client(&world.ctx, |c| {
        c.elb = aws_sdk_elasticloadbalancingv2::Client::from_conf(
            aws_sdk_elasticloadbalancingv2::config::Builder::from(&world.sdk)
                .interceptor(
                    MockResponseInterceptor::new()
                        .rule_mode(RuleMode::MatchAny)
                        .with_rule(rule)
                        .allow_passthrough(),
                )
                .retry_config(aws_config::retry::RetryConfig::disabled())
                .build(),
        )
    })
}
