//! ECS's own blue/green (`traffic.engine = "ecs"`), modelled in memory, and bluegreen's
//! lifecycle hook answering it from the deployment's record (`bluegreen::ecs_hook`). Each
//! test asserts what production sees at the end: where ECS's production and test rules
//! forward, the service's task definition, the targets left in each group, ECS's status.

use bluegreen::ecs_hook::{HOLD_SECONDS, POST_PRODUCTION_TRAFFIC_SHIFT, POST_TEST_TRAFFIC_SHIFT};
use bluegreen::record::Status;
use bluegreen::steps::registry::{self, ECS_HOOK};
use bluegreen_tests::ecs_world::{self, EcsWorld};
use serde_json::json;

/// The world and a deployment of `v2` that bluegreen started (pre-prod being checked), its
/// revision rolled out by one `UpdateService`: `(world, deployment id, revision, the
/// revision the service ran before)`.
async fn rolling_out() -> (EcsWorld, String, String, String) {
    let world = ecs_world::build().await;
    let before = world.service().0;
    let (id, revision) = world.deployment("v2", Status::Preprod).await;
    world.update_service(&revision).await;
    assert_ne!(before, revision);
    (world, id, revision, before)
}

/// How often the hook answered `status` at `stage`.
fn answered(world: &EcsWorld, stage: &str, status: &str) -> usize {
    world
        .answers
        .iter()
        .filter(|(s, a)| s == stage && a == status)
        .count()
}

#[tokio::test]
async fn the_hook_holds_the_test_shift_until_the_deployment_switches_then_ecs_moves_production() {
    let (mut world, id, revision, _) = rolling_out().await;
    world.play(120).await;

    // Held at the gate: the test rule has the new revision, production the old.
    let ecs = world.ecs_deployment();
    assert_eq!(ecs.stage_name(), POST_TEST_TRAFFIC_SHIFT);
    assert_eq!(ecs.status, "IN_PROGRESS");
    assert_eq!(
        world.all_to(&world.test_rule),
        Some(world.names.tg_green.clone())
    );
    assert_eq!(
        world.all_to(&world.production_rule),
        Some(world.names.tg_blue.clone())
    );
    // Asked again every HOLD_SECONDS (ECS's call-back delay), never let through.
    let holds = answered(&world, POST_TEST_TRAFFIC_SHIFT, "IN_PROGRESS");
    assert!(
        holds >= 4,
        "held {holds} times in 2 minutes (every {HOLD_SECONDS} s)"
    );
    assert_eq!(answered(&world, POST_TEST_TRAFFIC_SHIFT, "SUCCEEDED"), 0);

    // Approved and ready: production moves; then the bake gate holds until bluegreen's bake.
    world.set_status(&id, Status::Switching, None).await;
    world.play(60).await;
    let ecs = world.ecs_deployment();
    assert_eq!(ecs.stage_name(), POST_PRODUCTION_TRAFFIC_SHIFT);
    assert_eq!(
        world.all_to(&world.production_rule),
        Some(world.names.tg_green.clone())
    );
    assert_eq!(
        world.service().1,
        [2, 2],
        "the old revision keeps running through the bake"
    );
    world.set_status(&id, Status::Baking, None).await;
    world.play(60).await;
    assert_eq!(
        world.ecs_deployment().stage_name(),
        POST_PRODUCTION_TRAFFIC_SHIFT
    );

    // bluegreen's bake passed: ECS bakes its own 5 minutes and cleans up.
    world.set_status(&id, Status::Succeeded, None).await;
    world.play(7 * 60).await;
    let ecs = world.ecs_deployment();
    assert_eq!(ecs.status, "SUCCESSFUL");
    assert_eq!(
        world.all_to(&world.production_rule),
        Some(world.names.tg_green.clone())
    );
    assert_eq!(
        world.service(),
        (revision.clone(), [0, 2]),
        "only the new revision runs"
    );
    // The groups swapped roles: the next deployment rolls out on the blue group.
    let route = world.aws.with(|s| {
        s.ecs.services[&format!("{}/{}", bluegreen_tests::CLUSTER, ecs_world::SERVICE)]
            .state
            .setup
            .routes[0]
            .clone()
    });
    assert_eq!(route.target_group, world.names.tg_green);
    assert_eq!(
        route.alternate_target_group.as_deref(),
        Some(world.names.tg_blue.as_str())
    );
}

#[tokio::test]
async fn a_rejected_deployment_fails_the_test_shift_and_ecs_rolls_back_with_production_untouched() {
    let (mut world, id, _, before) = rolling_out().await;
    world.play(90).await;
    assert_eq!(world.ecs_deployment().stage_name(), POST_TEST_TRAFFIC_SHIFT);
    let production = world.forward(&world.production_rule);

    world
        .set_status(&id, Status::Aborted, Some("ApprovalRejected: not today"))
        .await;
    world.play(HOLD_SECONDS + 10).await;

    let ecs = world.ecs_deployment();
    assert_eq!(ecs.status, "ROLLBACK_SUCCESSFUL");
    assert!(
        ecs.status_reason
            .as_deref()
            .unwrap_or_default()
            .contains("FAILED"),
        "{:?}",
        ecs.status_reason
    );
    assert_eq!(answered(&world, POST_TEST_TRAFFIC_SHIFT, "FAILED"), 1);
    // Production never moved and still forwards as before; the test route is back on it;
    // the new revision's tasks are gone and the service runs what it ran.
    assert_eq!(world.forward(&world.production_rule), production);
    assert_eq!(
        world.all_to(&world.test_rule),
        Some(world.names.tg_blue.clone())
    );
    assert_eq!(world.service(), (before, [2, 0]));
}

#[tokio::test]
async fn a_deployment_bluegreen_did_not_start_is_failed_at_the_gate() {
    let world = ecs_world::build().await;
    // A revision registered by someone else (an IaC apply, the console): no deployment tag.
    let foreign = world
        .ctx
        .ports
        .compute
        .register_revision("shop", &Default::default(), &[])
        .await
        .unwrap();
    // And one tagged with a deployment of another service's config would not be listed there.
    let mut world = world;
    world.update_service(&foreign).await;
    world.play(120).await;
    let ecs = world.ecs_deployment();
    assert_eq!(ecs.status, "ROLLBACK_SUCCESSFUL", "{:?}", ecs.status_reason);
    assert_eq!(answered(&world, POST_TEST_TRAFFIC_SHIFT, "FAILED"), 1);
    assert_eq!(
        world.all_to(&world.production_rule),
        Some(world.names.tg_blue.clone())
    );
    assert_ne!(world.service().0, foreign);
}

#[tokio::test]
async fn a_rollback_after_the_production_shift_puts_production_back_on_the_old_revision() {
    let (mut world, id, _, before) = rolling_out().await;
    world.set_status(&id, Status::Switching, None).await;
    world.play(120).await;
    assert_eq!(
        world.ecs_deployment().stage_name(),
        POST_PRODUCTION_TRAFFIC_SHIFT
    );
    assert_eq!(
        world.all_to(&world.production_rule),
        Some(world.names.tg_green.clone())
    );

    // The bake's alarm: bluegreen's rollback records it; the next invocation fails the stage.
    world
        .set_status(&id, Status::RolledBack, Some("AlarmFiring: shop-5xx"))
        .await;
    world.play(HOLD_SECONDS + 10).await;
    let ecs = world.ecs_deployment();
    assert_eq!(ecs.status, "ROLLBACK_SUCCESSFUL");
    assert_eq!(answered(&world, POST_PRODUCTION_TRAFFIC_SHIFT, "FAILED"), 1);
    assert_eq!(
        world.all_to(&world.production_rule),
        Some(world.names.tg_blue.clone())
    );
    assert_eq!(world.service(), (before, [2, 0]));
}

#[tokio::test]
async fn stop_service_deployment_rolls_back_one_going_on_and_is_refused_for_one_that_ended() {
    let (mut world, _id, _, before) = rolling_out().await;
    world.play(90).await;
    let arn = world.ecs_deployment().arn;
    world
        .ctx
        .ports
        .compute
        .stop_service_deployment(&arn, true)
        .await
        .expect("a deployment going on stops");
    world.play(10).await;
    assert_eq!(world.ecs_deployment().status, "ROLLBACK_SUCCESSFUL");
    assert_eq!(
        world.all_to(&world.test_rule),
        Some(world.names.tg_blue.clone())
    );
    assert_eq!(world.service(), (before, [2, 0]));
    let again = world
        .ctx
        .ports
        .compute
        .stop_service_deployment(&arn, true)
        .await;
    assert_eq!(again.unwrap_err().aws_code(), Some("ConflictException"));
    // ECS describes it so to the engine.
    let described = world
        .ctx
        .ports
        .compute
        .service_deployments(bluegreen_tests::CLUSTER, ecs_world::SERVICE)
        .await
        .unwrap();
    assert_eq!(described[0].arn, arn);
    assert_eq!(described[0].status, "ROLLBACK_SUCCESSFUL");
    assert!(!described[0].is_ongoing());
}

#[tokio::test]
async fn a_gate_held_past_ecs_stage_limit_rolls_back() {
    let (mut world, _id, _, _) = rolling_out().await;
    world.play(25 * 3600).await;
    let ecs = world.ecs_deployment();
    assert_eq!(ecs.status, "ROLLBACK_SUCCESSFUL");
    assert!(
        ecs.status_reason
            .as_deref()
            .unwrap_or_default()
            .contains("24 hours"),
        "{:?}",
        ecs.status_reason
    );
    assert_eq!(
        world.all_to(&world.production_rule),
        Some(world.names.tg_blue.clone())
    );
}

#[tokio::test]
async fn the_hook_holds_when_it_cannot_read_and_fails_what_it_cannot_parse() {
    let (world, _id, _, _) = rolling_out().await;
    // Not ECS's payload: failed (ECS rolls back what it cannot tell the hook about), not an
    // error (a Lambda error would do the same without saying why).
    let garbage = registry::invoke(&world.ctx, &ECS_HOOK, json!({"hello": "world"}))
        .await
        .expect("the hook never errs");
    assert_eq!(garbage["hookStatus"], "FAILED");
    // A stage it does not gate goes on without reading anything.
    let ungated = json!({
        "lifecycleStage": "TEST_TRAFFIC_SHIFT",
        "resourceArn": "arn:aws:ecs:us-east-1:123456789012:service-deployment/c/s/1",
        "executionDetails": {
            "serviceArn": "arn:aws:ecs:us-east-1:123456789012:service/c/s",
            "targetServiceRevisionArn": "arn:aws:ecs:us-east-1:123456789012:service-revision/c/s/9",
        },
    });
    let answer = registry::invoke(&world.ctx, &ECS_HOOK, ungated.clone())
        .await
        .unwrap();
    assert_eq!(answer, json!({"hookStatus": "SUCCEEDED"}));
    // A gated stage whose revision ECS does not know: failed, naming it.
    let mut unknown = ungated;
    unknown["lifecycleStage"] = json!(POST_TEST_TRAFFIC_SHIFT);
    let answer = registry::invoke(&world.ctx, &ECS_HOOK, unknown)
        .await
        .unwrap();
    assert_eq!(answer["hookStatus"], "FAILED");
}

/// Throttles every call of one operation.
struct Throttling(&'static str);

#[async_trait::async_trait]
impl bluegreen_tests::memory::Conductor for Throttling {
    async fn before(&self, operation: &'static str) -> bluegreen_tests::memory::Fate {
        if operation == self.0 {
            bluegreen_tests::memory::Fate::Throttle
        } else {
            bluegreen_tests::memory::Fate::Answer
        }
    }

    fn applied(&self, _operation: &'static str, _state: &bluegreen_tests::memory::State) {}
}

#[tokio::test]
async fn a_throttled_read_holds_the_gate_instead_of_rolling_back() {
    // ECS throttles the hook's first read: the gate must hold, not fail.
    let throttled = std::sync::Arc::new(Throttling("ecs:DescribeServiceRevisions"));
    let mut world = ecs_world::build_with(throttled).await;
    let (id, revision) = world.deployment("v2", Status::Switching).await;
    world.update_service(&revision).await;
    world.play(120).await;
    let ecs = world.ecs_deployment();
    assert_eq!(ecs.status, "IN_PROGRESS", "{:?}", ecs.status_reason);
    assert_eq!(ecs.stage_name(), POST_TEST_TRAFFIC_SHIFT);
    assert!(
        answered(&world, POST_TEST_TRAFFIC_SHIFT, "IN_PROGRESS") >= 8,
        "asked again every {} s",
        bluegreen::ecs_hook::TROUBLE_SECONDS
    );
    assert_eq!(
        world.all_to(&world.production_rule),
        Some(world.names.tg_blue.clone())
    );
    let _ = id;
}

#[tokio::test]
async fn each_status_decides_both_gates() {
    use bluegreen::ecs_hook::{Answer, decide};
    let world = ecs_world::build().await;
    let (id, _) = world.deployment("v2", Status::Preprod).await;
    let mut deployment = bluegreen::record::Records::new(&world.ctx)
        .get(&id)
        .await
        .unwrap();
    let verdict = |a: Answer| match a {
        Answer::GoOn => "go on",
        Answer::Hold { .. } => "hold",
        Answer::Fail { .. } => "fail",
    };
    // (status, at the test shift, at the production shift)
    let table = [
        (Status::Preparing, "hold", "hold"),
        (Status::Preprod, "hold", "hold"),
        (Status::AwaitingApproval, "hold", "hold"),
        (Status::Promoting, "hold", "hold"),
        (Status::Switching, "go on", "hold"),
        (Status::Baking, "go on", "hold"),
        (Status::Succeeded, "go on", "go on"),
        (Status::Aborted, "fail", "fail"),
        (Status::Superseded, "fail", "fail"),
        (Status::RolledBack, "fail", "fail"),
        (Status::NeedsAttention, "fail", "fail"),
    ];
    for (status, test_shift, production_shift) in table {
        deployment.status = status;
        assert_eq!(
            verdict(decide(POST_TEST_TRAFFIC_SHIFT, &deployment)),
            test_shift,
            "{status}"
        );
        assert_eq!(
            verdict(decide(POST_PRODUCTION_TRAFFIC_SHIFT, &deployment)),
            production_shift,
            "{status}"
        );
    }
}

#[tokio::test]
async fn a_revision_counts_as_the_deployments_only_on_its_service_and_engine() {
    use bluegreen::ecs_hook::mismatch;
    let world = ecs_world::build().await;
    let (id, revision) = world.deployment("v2", Status::Preprod).await;
    let deployment = bluegreen::record::Records::new(&world.ctx)
        .get(&id)
        .await
        .unwrap();
    let service = world.aws.with(|s| {
        s.ecs.services[&format!("{}/{}", bluegreen_tests::CLUSTER, ecs_world::SERVICE)]
            .state
            .arn
            .clone()
    });
    assert_eq!(mismatch(&deployment, &revision, &service), None);
    let other = mismatch(
        &deployment,
        "arn:aws:ecs:us-east-1:123456789012:task-definition/shop:99",
        &service,
    );
    assert!(other.unwrap().contains("did not register"));
    let elsewhere = service.replace("/shop-blue", "/shop-green");
    assert!(
        mismatch(&deployment, &revision, &elsewhere)
            .unwrap()
            .contains("not ")
    );
    let mut slots = deployment.clone();
    if let bluegreen::config::Traffic::Listener { engine, .. } = &mut slots.config.traffic {
        *engine = bluegreen::config::Engine::Slots;
    }
    assert!(
        mismatch(&slots, &revision, &service)
            .unwrap()
            .contains("engine")
    );
}

#[test]
fn a_slot_on_ecs_blue_green_refuses_the_launch_before_anything_changes() {
    super::block_on(async {
        let clock: bluegreen::context::Clock = std::sync::Arc::new(chrono::Utc::now);
        let immediate = std::sync::Arc::new(bluegreen_tests::memory::Immediate);
        let (aws, ctx, id) = super::prepared_on(immediate, clock, |_| {}).await;
        let green = format!("{}/shop-green", bluegreen_tests::CLUSTER);
        aws.with(|s| {
            let setup = &mut s.ecs.services.get_mut(&green).unwrap().state.setup;
            setup.strategy = Some("BLUE_GREEN".into());
        });
        let before = aws.with(|s| (s.ecs.services[&green].state.clone(), s.elb.rules.len()));
        let input = json!({"action": "start", "deployment_id": id});
        let err = registry::invoke(&ctx, &registry::LAUNCH_PREPROD, input)
            .await
            .unwrap_err();
        assert_eq!(err.name(), "LaunchFailed", "{err}");
        assert!(err.to_string().contains("BLUE_GREEN"), "{err}");
        let after = aws.with(|s| (s.ecs.services[&green].state.clone(), s.elb.rules.len()));
        assert_eq!(
            after, before,
            "the idle slot and the listener's rules unchanged"
        );
        let record = bluegreen::record::Records::new(&ctx)
            .get(&id)
            .await
            .unwrap();
        assert!(
            record.preprod.is_none(),
            "nothing recorded for an abort to undo"
        );
    });
}
