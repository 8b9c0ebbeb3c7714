//! ECS's own blue/green (`traffic.engine = "ecs"`), modelled in memory, and bluegreen's
//! lifecycle hook answering it from the deployment's record (`bluegreen::ecs_hook`). Each
//! test asserts what production sees at the end: where ECS's production and test rules
//! forward, the service's task definition, the targets left in each group, ECS's status.

use bluegreen::ecs_hook::{HOLD_SECONDS, POST_PRODUCTION_TRAFFIC_SHIFT, POST_TEST_TRAFFIC_SHIFT};
use bluegreen::naming::{TAG_EXPIRES, TAG_ROLE};
use bluegreen::record::{Status, StepOutcome};
use bluegreen::steps::registry::{self, ECS_HOOK};
use bluegreen_tests::ecs_world::{self, EcsWorld};
use bluegreen_tests::memory::Fate;
use serde_json::json;

/// The world and a deployment of `v2` that bluegreen's launch started (one `UpdateService`,
/// its ECS deployment recorded): `(world, deployment id, revision, the revision the service
/// ran before)`.
async fn rolling_out() -> (EcsWorld, String, String, String) {
    rolling_out_with(std::sync::Arc::new(bluegreen_tests::memory::Immediate)).await
}

/// [`rolling_out`], the world's calls conducted by `conductor`.
async fn rolling_out_with(
    conductor: std::sync::Arc<dyn bluegreen_tests::memory::Conductor>,
) -> (EcsWorld, String, String, String) {
    let world = ecs_world::build_with(conductor).await;
    let before = world.service().0;
    let (id, revision) = world.deployment("v2", Status::Preparing).await;
    world.launch(&id).await.expect("launched");
    assert_eq!(world.service().0, revision);
    assert_ne!(before, revision);
    (world, id, revision, before)
}

/// Production's rule still sends everything to the group production had (blue's).
fn assert_production_on_the_old_group(world: &EcsWorld) {
    assert_eq!(
        world.all_to(&world.production_rule),
        Some(world.names.tg_blue.clone()),
        "production's rule"
    );
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
    assert_production_on_the_old_group(&world);
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
    let foreign = world.foreign_revision(&[]).await;
    let mut world = world;
    world.update_service(&foreign).await;
    world.play(120).await;
    let ecs = world.ecs_deployment();
    assert_eq!(ecs.status, "ROLLBACK_SUCCESSFUL", "{:?}", ecs.status_reason);
    assert_eq!(answered(&world, POST_TEST_TRAFFIC_SHIFT, "FAILED"), 1);
    assert_production_on_the_old_group(&world);
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
    assert_production_on_the_old_group(&world);
    assert_eq!(world.service(), (before, [2, 0]));
}

#[tokio::test]
async fn stop_service_deployment_rolls_back_one_going_on_and_is_refused_for_one_that_ended() {
    let (mut world, _id, _, before) = rolling_out().await;
    world.play(90).await;
    let arn = world.stop_in_the_console().await;
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
        .service_deployments
        .stop_service_deployment(&arn)
        .await;
    assert_eq!(again.unwrap_err().aws_code(), Some("ConflictException"));
    // ECS describes it so to the engine.
    let described = world
        .ctx
        .ports
        .service_deployments
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
    assert_production_on_the_old_group(&world);
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
    // Nor does a payload of another shape at such a stage (ECS's weights may come as null).
    let odd = json!({"lifecycleStage": "PRE_SCALE_UP", "executionDetails": null});
    let answer = registry::invoke(&world.ctx, &ECS_HOOK, odd).await.unwrap();
    assert_eq!(answer, json!({"hookStatus": "SUCCEEDED"}));
    // A gated stage whose revision ECS does not describe: held for a person (a failure would
    // roll back behind bluegreen's back), asked again in a minute.
    let mut unknown = ungated;
    unknown["lifecycleStage"] = json!(POST_TEST_TRAFFIC_SHIFT);
    unknown["executionDetails"]["testTrafficWeights"] = json!(null);
    let answer = registry::invoke(&world.ctx, &ECS_HOOK, unknown)
        .await
        .unwrap();
    assert_eq!(
        answer,
        json!({"hookStatus": "IN_PROGRESS", "callBackDelay": bluegreen::ecs_hook::BROKEN_SECONDS})
    );
}

#[tokio::test]
async fn a_throttled_read_holds_the_gate_instead_of_rolling_back() {
    // ECS throttles the hook's first read: the gate must hold, not fail.
    let throttled = Scripted::new(|op, _| match op {
        "ecs:DescribeServiceRevisions" => Fate::Throttle,
        _ => Fate::Answer,
    });
    let mut world = ecs_world::build_with(throttled).await;
    let (id, revision) = world.deployment("v2", Status::Switching).await;
    world.update_service(&revision).await;
    world.own_newest(&id).await;
    world.play(120).await;
    let ecs = world.ecs_deployment();
    assert_eq!(ecs.status, "IN_PROGRESS", "{:?}", ecs.status_reason);
    assert_eq!(ecs.stage_name(), POST_TEST_TRAFFIC_SHIFT);
    assert!(
        answered(&world, POST_TEST_TRAFFIC_SHIFT, "IN_PROGRESS") >= 8,
        "asked again every {} s",
        bluegreen::ecs_hook::TROUBLE_SECONDS
    );
    assert_production_on_the_old_group(&world);
    let _ = id;
}

#[tokio::test]
async fn each_status_decides_both_gates() {
    use bluegreen::ecs_hook::{Answer, decide};
    let world = ecs_world::build().await;
    let (id, _) = world.deployment("v2", Status::Preprod).await;
    let own = "arn:aws:ecs:us-east-1:123456789012:service-deployment/bg/shop-blue/own";
    let mut deployment = bluegreen::record::Records::new(&world.ctx)
        .get(&id)
        .await
        .unwrap();
    deployment.preprod = Some(bluegreen::record::PreprodState {
        service: ecs_world::SERVICE.into(),
        task_definition_arn: String::new(),
        previous_task_definition: String::new(),
        previous_desired_count: 2,
        desired_count: 2,
        previous_marks: Default::default(),
        previous_registries: Vec::new(),
        ecs_deployment: Some(own.into()),
        ephemeral_service: None,
    });
    let decide = |stage: &str, d: &bluegreen::record::Deployment| decide(stage, d, own);
    let verdict = |a: Answer| match a {
        Answer::GoOn => "go on",
        Answer::Hold { .. } => "hold",
        Answer::Fail { .. } => "fail",
    };
    // (status, at the test shift, at the production shift, at it once the bake passed).
    // Every status: a new one fails to compile here until it is decided.
    let row = |status: Status| match status {
        Status::Queued
        | Status::Preparing
        | Status::Preprod
        | Status::AwaitingApproval
        | Status::Promoting => ("hold", "fail", "fail"),
        Status::Switching | Status::Baking if status == Status::Switching => {
            ("go on", "hold", "go on")
        }
        Status::Switching | Status::Baking => ("fail", "hold", "go on"),
        Status::Succeeded => ("fail", "go on", "go on"),
        Status::Aborted | Status::Superseded | Status::RolledBack => ("fail", "fail", "fail"),
        Status::NeedsAttention => ("fail", "hold", "go on"),
    };
    let all = [
        Status::Queued,
        Status::Superseded,
        Status::Preparing,
        Status::Preprod,
        Status::AwaitingApproval,
        Status::Promoting,
        Status::Switching,
        Status::Baking,
        Status::Succeeded,
        Status::Aborted,
        Status::RolledBack,
        Status::NeedsAttention,
    ];
    let baked = {
        let mut d = deployment.clone();
        d.timeline.push(bluegreen::record::TimelineEntry {
            step: "bake".into(),
            at: chrono::Utc::now(),
            outcome: bluegreen::record::StepOutcome::Succeeded,
            detail: String::new(),
        });
        d
    };
    for status in all {
        let (test_shift, production_shift, after_bake) = row(status);
        deployment.status = status;
        let mut baked = baked.clone();
        baked.status = status;
        let seen = (
            verdict(decide(POST_TEST_TRAFFIC_SHIFT, &deployment)),
            verdict(decide(POST_PRODUCTION_TRAFFIC_SHIFT, &deployment)),
            verdict(decide(POST_PRODUCTION_TRAFFIC_SHIFT, &baked)),
        );
        assert_eq!(seen, (test_shift, production_shift, after_bake), "{status}");
        // An abort asked for fails both gates, whatever the status says.
        let mut aborting = baked.clone();
        aborting.abort_requested = Some(bluegreen::record::AbortRequest {
            by: "arn:aws:iam::123456789012:user/ops".into(),
            at: chrono::Utc::now(),
        });
        for stage in [POST_TEST_TRAFFIC_SHIFT, POST_PRODUCTION_TRAFFIC_SHIFT] {
            assert_eq!(
                verdict(decide(stage, &aborting)),
                "fail",
                "{status} aborting"
            );
        }
        // Stages bluegreen does not gate go on, whatever the record says.
        assert_eq!(verdict(decide("TEST_TRAFFIC_SHIFT", &aborting)), "go on");
        // Another ECS deployment of the revision fails both gates, whatever the status.
        let other = "arn:aws:ecs:us-east-1:123456789012:service-deployment/bg/shop-blue/other";
        for d in [&deployment, &baked] {
            for stage in [POST_TEST_TRAFFIC_SHIFT, POST_PRODUCTION_TRAFFIC_SHIFT] {
                assert_eq!(
                    verdict(bluegreen::ecs_hook::decide(stage, d, other)),
                    "fail",
                    "{status} {stage}"
                );
            }
        }
        // Before the launch recorded its ECS deployment: the test gate holds what it would
        // let on, the production gate fails (no ECS deployment gets there unrecorded).
        let mut unrecorded = baked.clone();
        unrecorded.preprod = None;
        let at_test = verdict(bluegreen::ecs_hook::decide(
            POST_TEST_TRAFFIC_SHIFT,
            &unrecorded,
            own,
        ));
        assert_eq!(
            at_test,
            if test_shift == "fail" { "fail" } else { "hold" },
            "{status} unrecorded"
        );
        assert_eq!(
            verdict(bluegreen::ecs_hook::decide(
                POST_PRODUCTION_TRAFFIC_SHIFT,
                &unrecorded,
                own
            )),
            "fail",
            "{status} unrecorded"
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
    assert!(other.unwrap().contains("registered for production"));
    let elsewhere = service.replace("/shop-blue", "/shop-green");
    assert!(
        mismatch(&deployment, &revision, &elsewhere)
            .unwrap()
            .contains("deploys")
    );
    // `isolated`: only the production revision, never pre-prod's (it reads the clone).
    let mut isolated = deployment.clone();
    isolated.task_definitions.production =
        Some("arn:aws:ecs:us-east-1:123456789012:task-definition/shop:77".into());
    assert!(mismatch(&isolated, &revision, &service).is_some());
    assert_eq!(
        mismatch(
            &isolated,
            "arn:aws:ecs:us-east-1:123456789012:task-definition/shop:77",
            &service
        ),
        None
    );
    // ... and before promote registered it, none: an `isolated` config's pre-prod revision
    // (the clone's) is never ECS's to deploy.
    let mut before_promote = deployment.clone();
    self::isolated(&mut before_promote.config);
    assert!(
        mismatch(&before_promote, &revision, &service)
            .unwrap()
            .contains("registered for production")
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

#[tokio::test]
async fn a_succeeded_deployments_revision_deployed_again_by_someone_else_is_failed_at_the_gate() {
    let world = ecs_world::build().await;
    let (id, revision) = world.deployment("v2", Status::Preprod).await;
    world.set_status(&id, Status::Succeeded, None).await;
    // A console "force new deployment" or an IaC apply of that revision later: bluegreen's
    // deployment is past its switch and would never be asked the test gate again.
    let mut world = world;
    world.update_service(&revision).await;
    world.play(120).await;
    let ecs = world.ecs_deployment();
    assert_eq!(ecs.status, "ROLLBACK_SUCCESSFUL", "{:?}", ecs.status_reason);
    assert_eq!(answered(&world, POST_TEST_TRAFFIC_SHIFT, "FAILED"), 1);
    assert_production_on_the_old_group(&world);
}

#[tokio::test]
async fn a_gate_is_held_until_just_before_the_stage_limit() {
    let (mut world, _id, _, _) = rolling_out().await;
    world.play(23 * 3600 + 1800).await;
    let ecs = world.ecs_deployment();
    assert_eq!(
        (ecs.status.as_str(), ecs.stage_name()),
        ("IN_PROGRESS", POST_TEST_TRAFFIC_SHIFT)
    );
    assert_production_on_the_old_group(&world);
}

#[tokio::test]
async fn a_hook_that_errs_or_answers_without_a_status_rolls_back_as_ecs_does() {
    for answer in [
        Err("Unhandled: the function crashed".to_owned()),
        Ok(json!({"status": "ok"})),
    ] {
        let (world, _id, _, before) = rolling_out().await;
        // ECS at the gate, its invocation out.
        let calls = world.aws.with(|s| {
            let mut calls = Vec::new();
            for t in 1..40 {
                calls = s.play_blue_green(t * 5000);
                if !calls.is_empty() {
                    break;
                }
            }
            calls
        });
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0].stage, POST_TEST_TRAFFIC_SHIFT);
        world.aws.with(|s| {
            s.hook_answered(&calls[0], answer.clone());
            s.play_blue_green(300_000);
        });
        let ecs = world.ecs_deployment();
        assert_eq!(ecs.status, "ROLLBACK_SUCCESSFUL", "{answer:?}");
        assert_eq!(world.service(), (before, [2, 0]), "{answer:?}");
    }
}

#[tokio::test]
async fn a_newer_update_supersedes_a_deployment_at_the_gate_and_puts_its_traffic_back() {
    let (mut world, _id, _, before) = rolling_out().await;
    world.play(90).await;
    let first = world.ecs_deployment();
    assert_eq!(first.stage_name(), POST_TEST_TRAFFIC_SHIFT);
    let (_, newer) = world.deployment("v3", Status::Preprod).await;
    world.update_service(&newer).await;
    world.play(10).await;
    let stopped = world
        .aws
        .with(|s| s.blue_green(&first.arn).cloned().unwrap());
    assert_eq!(stopped.status, "STOPPED");
    let second = world.ecs_deployment();
    assert_ne!(second.arn, first.arn);
    assert_eq!(
        second.source.1, before,
        "the newer one starts from what production runs"
    );
    assert_production_on_the_old_group(&world);
}

#[tokio::test]
async fn a_revision_forging_an_approved_deployments_tag_is_failed_at_the_gate() {
    let world = ecs_world::build().await;
    let (id, _) = world.deployment("v2", Status::Preprod).await;
    world.set_status(&id, Status::Switching, None).await;
    // Someone registers their own revision with that deployment's id as its tag.
    let forged = world
        .foreign_revision(&[(bluegreen::naming::TAG_DEPLOYMENT.to_owned(), id.clone())])
        .await;
    let mut world = world;
    world.update_service(&forged).await;
    world.play(120).await;
    let ecs = world.ecs_deployment();
    assert_eq!(ecs.status, "ROLLBACK_SUCCESSFUL", "{:?}", ecs.status_reason);
    assert_eq!(answered(&world, POST_TEST_TRAFFIC_SHIFT, "FAILED"), 1);
    assert_eq!(answered(&world, POST_TEST_TRAFFIC_SHIFT, "SUCCEEDED"), 0);
    assert_production_on_the_old_group(&world);
    assert_ne!(world.service().0, forged);
}

/// The test rule's and the production rule's single target group.
fn rules(world: &EcsWorld) -> (Option<String>, Option<String>) {
    (
        world.all_to(&world.test_rule),
        world.all_to(&world.production_rule),
    )
}

#[tokio::test]
async fn the_launch_starts_one_ecs_deployment_and_completes_once_ecs_holds_it_at_the_gate() {
    let mut world = ecs_world::build().await;
    let before = world.service().0;
    let (id, revision) = world.deployment("v2", Status::Preparing).await;
    world.launch(&id).await.expect("launched");
    // Step Functions retries a start: the same ECS deployment, never a second.
    world.launch(&id).await.expect("launched again");
    assert_eq!(world.ecs_deployments(), 1);
    let ecs = world.ecs_deployment();
    let record = bluegreen::record::Records::new(&world.ctx)
        .get(&id)
        .await
        .unwrap();
    let preprod = record.preprod.expect("pre-prod recorded");
    assert_eq!(preprod.ecs_deployment.as_deref(), Some(ecs.arn.as_str()));
    assert_eq!(
        (
            preprod.task_definition_arn.as_str(),
            preprod.previous_task_definition.as_str()
        ),
        (revision.as_str(), before.as_str())
    );
    let (names, desired) = (
        world.names.clone(),
        world.aws.with(|s| {
            s.ecs.services[&format!("{}/{}", bluegreen_tests::CLUSTER, ecs_world::SERVICE)]
                .state
                .desired_count
        }),
    );
    assert_eq!(
        desired, 2,
        "the service's count is its autoscaling's, untouched"
    );
    // Before ECS reaches the gate the check waits; once ECS holds there it is done.
    let early = world.launch_check(&id).await.expect("checked");
    assert_eq!(early["status"], "pending", "{early}");
    world.play(120).await;
    let done = world.launch_check(&id).await.expect("checked");
    assert_eq!(done["status"], "done", "{done}");
    let record = bluegreen::record::Records::new(&world.ctx)
        .get(&id)
        .await
        .unwrap();
    assert_eq!(record.status, Status::Preprod);
    // What production sees: the old revision; the new one behind the test rule only.
    assert_eq!(
        rules(&world),
        (Some(names.tg_green.clone()), Some(names.tg_blue.clone()))
    );
    assert_eq!(world.service(), (revision, [2, 2]));
    assert!(answered(&world, POST_TEST_TRAFFIC_SHIFT, "IN_PROGRESS") >= 1);
    assert_eq!(answered(&world, POST_TEST_TRAFFIC_SHIFT, "SUCCEEDED"), 0);
}

#[tokio::test]
async fn a_launch_retried_after_its_update_took_effect_adopts_that_ecs_deployment() {
    let lose = Scripted::new(|op, before| match (op, before) {
        ("ecs:UpdateService", 0) => Fate::LoseAnswer,
        _ => Fate::Answer,
    });
    let world = ecs_world::build_with(lose).await;
    let (id, revision) = world.deployment("v2", Status::Preparing).await;
    let lost = world.launch(&id).await.unwrap_err();
    assert!(lost.is_retryable(), "{lost}");
    assert_eq!(world.ecs_deployments(), 1, "the update took effect");
    world.launch(&id).await.expect("the retry");
    assert_eq!(world.ecs_deployments(), 1, "no second ECS deployment");
    let ecs = world.ecs_deployment();
    assert_eq!(ecs.status, "IN_PROGRESS", "not superseded");
    let record = bluegreen::record::Records::new(&world.ctx)
        .get(&id)
        .await
        .unwrap();
    assert_eq!(
        record.preprod.and_then(|p| p.ecs_deployment),
        Some(ecs.arn.clone())
    );
    assert_eq!(world.service().0, revision);
}

#[tokio::test]
async fn a_launch_refuses_a_service_ecs_would_deploy_without_the_gates() {
    use bluegreen::ports::compute::DeploymentSetup;
    type Breaks = fn(&mut DeploymentSetup);
    let not_ours = "no lifecycle hook at POST_TEST_TRAFFIC_SHIFT that invokes bluegreen's hook";
    let cases: [(&str, Breaks); 5] = [
        ("not on ECS's blue/green", |s| {
            s.strategy = Some("ROLLING".into());
        }),
        (
            "no lifecycle hook at POST_PRODUCTION_TRAFFIC_SHIFT that invokes bluegreen's hook",
            |s| {
                s.hooks[0]
                    .stages
                    .retain(|st| st != POST_PRODUCTION_TRAFFIC_SHIFT)
            },
        ),
        // A held gate would move production once the timeout passed.
        (not_ours, |s| {
            s.hooks[0].timeout_action = Some("CONTINUE".into());
        }),
        // Another team's function answers for itself.
        (not_ours, |s| {
            s.hooks[0].target_arn =
                Some("arn:aws:lambda:us-east-1:123456789012:function:always-yes".into());
        }),
        // A pause hook is resolved by whoever calls ContinueServiceDeployment.
        (not_ours, |s| {
            s.hooks[0].target_type = "PAUSE".into();
            s.hooks[0].target_arn = None;
        }),
    ];
    for (why, breaks) in cases {
        let world = ecs_world::build().await;
        let key = format!("{}/{}", bluegreen_tests::CLUSTER, ecs_world::SERVICE);
        world
            .aws
            .with(|s| breaks(&mut s.ecs.services.get_mut(&key).unwrap().state.setup));
        let before = (world.service(), rules(&world));
        let (id, _) = world.deployment("v2", Status::Preparing).await;
        let err = world.launch(&id).await.unwrap_err();
        assert_eq!(err.name(), "LaunchFailed", "{why}: {err}");
        assert!(err.to_string().contains(why), "{why}: {err}");
        assert_eq!(world.ecs_deployments(), 0, "{why}");
        assert_eq!((world.service(), rules(&world)), before, "{why}");
        let record = bluegreen::record::Records::new(&world.ctx)
            .get(&id)
            .await
            .unwrap();
        assert!(record.preprod.is_none(), "{why}: nothing to put back");
    }
    // The hook registered with a qualifier (an alias) is the hook.
    let world = ecs_world::build().await;
    let key = format!("{}/{}", bluegreen_tests::CLUSTER, ecs_world::SERVICE);
    world.aws.with(|s| {
        let hook = &mut s.ecs.services.get_mut(&key).unwrap().state.setup.hooks[0];
        hook.target_arn = Some(format!("{}:live", ecs_world::HOOK_ARN));
    });
    let (id, _) = world.deployment("v2", Status::Preparing).await;
    world.launch(&id).await.expect("an alias of the hook gates");
    assert_eq!(world.ecs_deployments(), 1);
}

#[tokio::test]
async fn hooks_changed_after_pre_prod_was_recorded_refuse_the_update() {
    // The first start recorded pre-prod and lost its answer before the update; meanwhile
    // someone took bluegreen's hook off the production gate. The retry must not deploy.
    let world = ecs_world::build().await;
    let (id, revision) = world.deployment("v2", Status::Preparing).await;
    let key = format!("{}/{}", bluegreen_tests::CLUSTER, ecs_world::SERVICE);
    // Pre-prod recorded as the first start would have, with the gates in place.
    world.record_preprod(&id, &revision, None).await;
    world.aws.with(|s| {
        let setup = &mut s.ecs.services.get_mut(&key).unwrap().state.setup;
        setup.hooks[0]
            .stages
            .retain(|st| st != POST_PRODUCTION_TRAFFIC_SHIFT);
    });
    let err = world.launch(&id).await.unwrap_err();
    assert_eq!(err.name(), "LaunchFailed", "{err}");
    assert_eq!(world.ecs_deployments(), 0, "nothing deployed");
}

#[tokio::test]
async fn a_launch_does_not_supersede_an_ecs_deployment_going_on() {
    let world = ecs_world::build().await;
    // Someone's deployment from the console, still rolling out.
    let theirs = world.foreign_revision(&[]).await;
    world.update_service(&theirs).await;
    let their_ecs = world.ecs_deployment();
    let (id, _) = world.deployment("v2", Status::Preparing).await;
    let err = world.launch(&id).await.unwrap_err();
    assert_eq!(err.name(), "LaunchFailed", "{err}");
    assert!(err.to_string().contains(&their_ecs.arn), "{err}");
    assert_eq!(world.ecs_deployments(), 1);
    assert_eq!(
        world.ecs_deployment().status,
        "IN_PROGRESS",
        "theirs goes on"
    );
    assert_eq!(world.service().0, theirs);
}

#[tokio::test]
async fn ecs_rolling_the_launch_back_fails_it_with_ecs_reason() {
    let (mut world, id, _, before) = rolling_out().await;
    world.stop_in_the_console().await;
    world.play(120).await;
    let err = world.launch_check(&id).await.unwrap_err();
    assert_eq!(err.name(), "LaunchFailed", "{err}");
    assert!(err.to_string().contains("ROLLBACK_SUCCESSFUL"), "{err}");
    assert_eq!(world.service(), (before, [2, 0]));
    assert_production_on_the_old_group(&world);
}

#[tokio::test]
async fn another_ecs_deployment_of_an_approved_revision_is_failed_at_the_gate() {
    // Launched, approved: switching. Someone deploys something else and then the approved
    // revision again (a console "roll back to the previous revision"): a second ECS
    // deployment of the same revision, which the record does not name.
    let (mut world, id, revision, before) = rolling_out().await;
    world.play(90).await;
    let own = world.ecs_deployment().arn;
    world.set_status(&id, Status::Switching, None).await;
    world.update_service(&before).await;
    world.update_service(&revision).await;
    let second = world.ecs_deployment();
    assert_ne!(second.arn, own);
    world.answers.clear();
    world.play(120).await;
    let second = world
        .aws
        .with(|s| s.blue_green(&second.arn).cloned().unwrap());
    assert_eq!(
        second.status, "ROLLBACK_SUCCESSFUL",
        "{:?}",
        second.status_reason
    );
    assert_eq!(answered(&world, POST_TEST_TRAFFIC_SHIFT, "SUCCEEDED"), 0);
    assert!(answered(&world, POST_TEST_TRAFFIC_SHIFT, "FAILED") >= 1);
    assert_production_on_the_old_group(&world);
}

#[tokio::test]
async fn an_abort_rolls_ecs_back_and_ends_once_ecs_did() {
    let counting = Scripted::new(|_, _| Fate::Answer);
    let (mut world, id, revision, before) = rolling_out_with(counting.clone()).await;
    world.play(90).await;
    assert_eq!(world.launch_check(&id).await.unwrap()["status"], "done");
    let names = world.names.clone();
    assert_eq!(
        rules(&world),
        (Some(names.tg_green.clone()), Some(names.tg_blue.clone()))
    );
    // The first call asks ECS to roll back and waits for it.
    let first = world.abort(&id).await.expect("abort");
    assert!(first["wait"].is_object(), "{first}");
    let ecs = world.ecs_deployment();
    assert!(ecs.status.starts_with("ROLLBACK"), "{}", ecs.status);
    assert_eq!(counting.count("ecs:StopServiceDeployment"), 1);
    // Called again before ECS rolled back: it asks nothing twice and still waits.
    let again = world.abort(&id).await.expect("abort again");
    assert!(again["wait"].is_object(), "{again}");
    assert_eq!(counting.count("ecs:StopServiceDeployment"), 1);
    world.play(120).await;
    let ended = world.abort(&id).await.expect("abort ends");
    assert!(ended["wait"].is_null(), "{ended}");
    assert_eq!(ended["status"], "aborted", "{ended}");
    // Production never moved; the service is back on its revision, the new one gone.
    let ecs = world.ecs_deployment();
    assert_eq!(ecs.status, "ROLLBACK_SUCCESSFUL");
    assert_eq!(
        world.ecs_deployments(),
        1,
        "the abort deployed nothing itself"
    );
    assert_eq!(world.service(), (before, [2, 0]));
    assert_ne!(world.service().0, revision);
    assert_eq!(
        rules(&world),
        (Some(names.tg_blue.clone()), Some(names.tg_blue.clone()))
    );
    let record = bluegreen::record::Records::new(&world.ctx)
        .get(&id)
        .await
        .unwrap();
    assert_eq!(record.status, Status::Aborted);
}

#[tokio::test]
async fn an_abort_once_ecs_moves_production_is_refused_for_a_rollback() {
    let (mut world, id, _, _) = rolling_out().await;
    world.play(90).await;
    world.set_status(&id, Status::Switching, None).await;
    world.play(60).await;
    let ecs = world.ecs_deployment();
    assert_eq!(ecs.stage_name(), POST_PRODUCTION_TRAFFIC_SHIFT);
    let err = world.abort(&id).await.unwrap_err();
    assert_eq!(err.name(), "UnexpectedRouting", "{err}");
    assert!(err.to_string().contains("use rollback"), "{err}");
    // Nothing stopped: production stays where ECS moved it until a rollback decides.
    let ecs = world.ecs_deployment();
    assert_eq!(ecs.status, "IN_PROGRESS");
    assert_eq!(
        world.all_to(&world.production_rule),
        Some(world.names.tg_green.clone())
    );
}

#[tokio::test]
async fn an_abort_rolls_back_what_ecs_moved_without_the_approval_and_says_so() {
    // Launched with the gates in place; then someone takes bluegreen's hook off the service.
    let (mut world, id, _, before) = rolling_out().await;
    let key = format!("{}/{}", bluegreen_tests::CLUSTER, ecs_world::SERVICE);
    world.aws.with(|s| {
        s.ecs
            .services
            .get_mut(&key)
            .unwrap()
            .state
            .setup
            .hooks
            .clear();
    });
    world.play(120).await;
    assert_eq!(
        world.all_to(&world.production_rule),
        Some(world.names.tg_green.clone()),
        "ECS moved production without the approval"
    );
    let first = world
        .abort(&id)
        .await
        .expect("not refused: nobody approved it");
    assert!(first["wait"].is_object(), "{first}");
    world.play(120).await;
    let ended = world.abort(&id).await.expect("abort ends");
    assert_eq!(ended["status"], "aborted", "{ended}");
    let detail = ended["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("without the approval"), "{detail}");
    assert!(!detail.contains("production traffic untouched"), "{detail}");
    assert_production_on_the_old_group(&world);
    assert_eq!(world.service().0, before);
}

#[tokio::test]
async fn a_late_abort_still_stops_ecs_and_leaves_it_to_a_person() {
    let counting = Scripted::new(|_, _| Fate::Answer);
    let (mut world, id, _, _) = rolling_out_with(counting.clone()).await;
    world.play(90).await;
    // Asked two hours ago (past the launch timeout); the abort only runs now.
    let asked = bluegreen::record::AbortRequest {
        by: "arn:aws:iam::123456789012:user/ops".into(),
        at: chrono::Utc::now() - chrono::Duration::hours(2),
    };
    bluegreen::record::Records::new(&world.ctx)
        .update(
            &id,
            bluegreen::record::Change::new().abort_requested(&asked),
        )
        .await
        .unwrap();
    let answer = world.abort(&id).await.expect("abort");
    assert_eq!(counting.count("ecs:StopServiceDeployment"), 1, "{answer}");
    assert!(world.ecs_deployment().status.starts_with("ROLLBACK"));
    assert_eq!(answer["status"], "needs_attention", "{answer}");
    world.play(120).await;
    assert_production_on_the_old_group(&world);
}

#[tokio::test]
async fn a_recorded_ecs_deployment_ecs_no_longer_describes_fails_the_launch_check() {
    let world = ecs_world::build().await;
    let (id, revision) = world.deployment("v2", Status::Preparing).await;
    let gone = "arn:aws:ecs:us-east-1:123456789012:service-deployment/shop-cluster/shop-blue/gone";
    world
        .record_preprod(&id, &revision, Some(gone.into()))
        .await;
    let err = world.launch_check(&id).await.unwrap_err();
    assert_eq!(err.name(), "LaunchFailed", "{err}");
    assert!(err.to_string().contains("describes no deployment"), "{err}");
}

/// Records every call and gives each its fate by `rule(operation, how many calls of that
/// operation came before it)`.
struct Scripted {
    calls: std::sync::Mutex<Vec<&'static str>>,
    rule: fn(&str, usize) -> Fate,
}

impl Scripted {
    fn new(rule: fn(&str, usize) -> Fate) -> std::sync::Arc<Self> {
        std::sync::Arc::new(Scripted {
            calls: Default::default(),
            rule,
        })
    }

    /// How many calls of `operation` were made.
    fn count(&self, operation: &str) -> usize {
        let calls = self.calls.lock().unwrap();
        calls.iter().filter(|o| **o == operation).count()
    }
}

#[async_trait::async_trait]
impl bluegreen_tests::memory::Conductor for Scripted {
    async fn before(&self, operation: &'static str) -> Fate {
        let before = self.count(operation);
        self.calls.lock().unwrap().push(operation);
        (self.rule)(operation, before)
    }

    fn applied(&self, _operation: &'static str, _state: &bluegreen_tests::memory::State) {}
}

/// A deployment of `v2` through bluegreen's steps, from the launch to the bake's start,
/// approved at ECS's test gate: `(world, deployment id, revision, the revision before)`.
/// Without a migration and with a bake of no length (the steps' clock is real time; ECS's
/// is the world's virtual one).
async fn approved_and_switched() -> (EcsWorld, String, String, String) {
    let (mut world, id, revision, before) = approved().await;
    let switched = run_step(&mut world, &registry::SWITCH, &id).await;
    assert!(switched.unwrap().contains("ECS moved production"));
    (world, id, revision, before)
}

/// [`approved_and_switched`] up to the switch: launched, healthy, approved, promoted.
async fn approved() -> (EcsWorld, String, String, String) {
    let mut world = ecs_world::build().await;
    world.config.migration = None;
    approved_in(world).await
}

/// In `world` (bake of no length): synced, migrated (when the config migrates before the
/// launch), launched, healthy, approved, promoted.
async fn approved_in(mut world: EcsWorld) -> (EcsWorld, String, String, String) {
    world.config.bake.seconds = 0;
    let before = world.service().0;
    let (id, revision) = world.deployment("v2", Status::Preparing).await;
    run_step(&mut world, &registry::SYNC_DB, &id)
        .await
        .expect("synced");
    run_step(&mut world, &registry::MIGRATE, &id)
        .await
        .expect("migrated");
    let launched = run_step(&mut world, &registry::LAUNCH_PREPROD, &id).await;
    assert!(launched.unwrap().contains(POST_TEST_TRAFFIC_SHIFT));
    let healthy = run_step(&mut world, &registry::HEALTH_CHECK, &id).await;
    assert!(healthy.unwrap().contains("2/2 targets healthy"));
    approve(&world, &id).await;
    run_step(&mut world, &registry::PROMOTE, &id)
        .await
        .expect("promoted");
    (world, id, revision, before)
}

/// One polling step as the state machine runs it: started, then checked — ECS playing
/// [`ecs_world::TICK_SECONDS`] between two looks — until done. Its error, or its detail.
async fn run_step(
    world: &mut EcsWorld,
    step: &'static registry::Step,
    id: &str,
) -> Result<String, bluegreen::StepError> {
    let start = json!({"action": "start", "deployment_id": id});
    let started = registry::invoke(&world.ctx, step, start).await?;
    for attempt in 0..200 {
        let check = json!({"action": "check", "deployment_id": id,
                           "deadline": started["deadline"], "attempt": attempt});
        let answer = registry::invoke(&world.ctx, step, check).await?;
        if answer["status"] == "done" {
            return Ok(answer["detail"].as_str().unwrap_or_default().to_owned());
        }
        world.play(ecs_world::TICK_SECONDS).await;
    }
    panic!("{} not done after 200 looks", step.name)
}

/// An ending as the state machine runs it: called again, ECS playing a minute between two
/// calls, while it answers with a wait. Its last answer.
async fn run_ending(
    world: &mut EcsWorld,
    ending: &'static registry::Step,
    id: &str,
) -> serde_json::Value {
    let input = json!({"deployment_id": id,
                       "error": {"Error": "BakeFailed", "Cause": "alarm shop-5xx"}});
    for _ in 0..60 {
        let ended = registry::invoke(&world.ctx, ending, input.clone())
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", ending.name));
        if ended.get("wait").is_none() {
            return ended;
        }
        world.play(60).await;
    }
    panic!("{} still waiting after an hour", ending.name)
}

/// The approval requested and given, as the console or the CLI gives it.
async fn approve(world: &EcsWorld, id: &str) {
    use bluegreen::steps::approval::{self, Decision, RequestInput};
    let request = RequestInput {
        deployment_id: id.into(),
        task_token: "token-1".into(),
    };
    approval::request(&world.ctx, &request)
        .await
        .expect("requested");
    let decision = Decision {
        approve: true,
        approver: "alice@example.com".into(),
        reason: None,
        channel: "cli".into(),
        link_nonce: None,
    };
    approval::decide(&world.ctx, id, &decision)
        .await
        .expect("approved");
}

#[tokio::test]
async fn approved_at_the_test_gate_ecs_moves_production_and_the_finish_waits_for_its_clean_up() {
    let (mut world, id, revision, _) = approved_and_switched().await;
    // Production moved by ECS; the old revision still runs behind the bake gate.
    assert_eq!(
        world.all_to(&world.production_rule),
        Some(world.names.tg_green.clone())
    );
    assert_eq!(
        world.ecs_deployment().stage_name(),
        POST_PRODUCTION_TRAFFIC_SHIFT
    );
    assert_eq!(world.service().1, [2, 2]);

    run_step(&mut world, &registry::BAKE, &id)
        .await
        .expect("baked");
    // ECS goes on to its own bake; a bake check run again then (a retry, a lost answer) is
    // still done, not a failure that would roll the deployment back.
    world.play(60).await;
    assert_eq!(world.ecs_deployment().stage_name(), "BAKE_TIME");
    let again = json!({"action": "check", "deployment_id": id,
                       "deadline": chrono::Utc::now(), "attempt": 9});
    let again = registry::invoke(&world.ctx, &registry::BAKE, again)
        .await
        .expect("the bake check again");
    assert_eq!(again["status"], "done", "{again}");
    // The first finish finds ECS still baking its own time: it waits, the lock held.
    let first = registry::invoke(&world.ctx, &registry::FINISH, json!({"deployment_id": id}))
        .await
        .expect("finish");
    assert!(first.get("wait").is_some(), "{first}");
    assert_eq!(first["status"], "baking");
    let ended = run_ending(&mut world, &registry::FINISH, &id).await;
    assert_eq!(ended["status"], "succeeded", "{ended}");

    let ecs = world.ecs_deployment();
    assert_eq!(ecs.status, "SUCCESSFUL");
    assert_eq!(world.ecs_deployments(), 1);
    assert_eq!(
        world.all_to(&world.production_rule),
        Some(world.names.tg_green.clone())
    );
    assert_eq!(
        world.service(),
        (revision, [0, 2]),
        "only the new revision runs"
    );
    let record = bluegreen::record::Records::new(&world.ctx)
        .get(&id)
        .await
        .unwrap();
    assert_eq!(record.status, Status::Succeeded);
    assert!(
        record
            .timeline
            .iter()
            .any(|e| e.detail.contains("ECS completed deployment")),
        "{:?}",
        record.timeline
    );
}

#[tokio::test]
async fn an_alarm_in_the_bake_rolls_production_back_through_ecs() {
    let (mut world, id, _, before) = approved_and_switched().await;
    world
        .aws
        .with(|s| s.alarms.alarms.insert("shop-5xx".into(), true));
    let failed = run_step(&mut world, &registry::BAKE, &id).await;
    assert_eq!(failed.unwrap_err().name(), "BakeFailed");

    let ended = run_ending(&mut world, &registry::ROLLBACK, &id).await;
    assert_eq!(ended["status"], "rolled_back", "{ended}");
    let ecs = world.ecs_deployment();
    assert_eq!(ecs.status, "ROLLBACK_SUCCESSFUL");
    assert_eq!(world.ecs_deployments(), 1, "rolled back, not redeployed");
    assert_production_on_the_old_group(&world);
    assert_eq!(
        world.service(),
        (before, [2, 0]),
        "the previous revision runs, the failed one is gone"
    );
    // The bake gate answered FAILED once the record said rolled back (or ECS was stopped
    // first): ECS never went on to its own bake.
    assert_eq!(
        answered(&world, POST_PRODUCTION_TRAFFIC_SHIFT, "SUCCEEDED"),
        0
    );
}

/// `step` started, then checked once with its deadline passed (ECS not played between): the
/// step's error.
async fn checked_past_its_deadline(
    world: &EcsWorld,
    step: &'static registry::Step,
    id: &str,
) -> bluegreen::StepError {
    let start = json!({"action": "start", "deployment_id": id});
    registry::invoke(&world.ctx, step, start)
        .await
        .expect("started");
    let past = chrono::Utc::now() - chrono::Duration::seconds(1);
    let check = json!({"action": "check", "deployment_id": id, "deadline": past, "attempt": 1});
    registry::invoke(&world.ctx, step, check)
        .await
        .expect_err("past its deadline")
}

/// The deployment's record.
async fn record(world: &EcsWorld, id: &str) -> bluegreen::record::Deployment {
    bluegreen::record::Records::new(&world.ctx)
        .get(id)
        .await
        .expect("record")
}

#[tokio::test]
async fn ecs_rolling_back_on_its_own_fails_the_bake_and_the_rollback_waits_for_it() {
    let (mut world, id, _, before) = approved_and_switched().await;
    // Someone rolls ECS's deployment back in the console (or ECS's own alarms do).
    world.stop_in_the_console().await;
    assert_eq!(world.ecs_deployment().status, "ROLLBACK_REQUESTED");
    // Not progress: the bake fails at once rather than passing while ECS takes production away.
    let failed = run_step(&mut world, &registry::BAKE, &id).await;
    let failed = failed.unwrap_err();
    assert_eq!(failed.name(), "BakeFailed");
    assert!(
        failed.to_string().contains("ROLLBACK_REQUESTED"),
        "{failed}"
    );

    let ended = run_ending(&mut world, &registry::ROLLBACK, &id).await;
    assert_eq!(ended["status"], "rolled_back", "{ended}");
    assert_eq!(world.ecs_deployment().status, "ROLLBACK_SUCCESSFUL");
    assert_production_on_the_old_group(&world);
    assert_eq!(world.service(), (before, [2, 0]));
    assert!(
        !record(&world, &id)
            .await
            .has_outcome("bake", StepOutcome::Succeeded)
    );
}

#[tokio::test]
async fn a_switch_ecs_did_not_make_by_its_deadline_fails_and_rolls_back_with_production_untouched()
{
    let (mut world, id, _, before) = approved().await;
    // ECS has not answered yet (nothing played); the deadline has passed.
    let err = checked_past_its_deadline(&world, &registry::SWITCH, &id).await;
    assert_eq!(err.name(), "SwitchFailed");
    let failed = record(&world, &id).await;
    assert!(
        failed.has_outcome("switch", StepOutcome::Failed),
        "{:?}",
        failed.timeline
    );
    // Before the rollback runs, ECS asks the hook again: the status is still `switching`, but
    // a failed switch is not let on — ECS rolls back by itself.
    world.play(2 * HOLD_SECONDS).await;
    assert_eq!(answered(&world, POST_TEST_TRAFFIC_SHIFT, "SUCCEEDED"), 0);
    assert_eq!(answered(&world, POST_TEST_TRAFFIC_SHIFT, "FAILED"), 1);
    assert_production_on_the_old_group(&world);

    let ended = run_ending(&mut world, &registry::ROLLBACK, &id).await;
    assert_eq!(ended["status"], "rolled_back", "{ended}");
    assert_eq!(world.ecs_deployment().status, "ROLLBACK_SUCCESSFUL");
    assert_production_on_the_old_group(&world);
    assert_eq!(world.service(), (before, [2, 0]));
}

#[tokio::test]
async fn a_rollback_that_finds_ecs_completed_needs_a_person_and_changes_nothing() {
    let (mut world, id, revision, _) = approved_and_switched().await;
    run_step(&mut world, &registry::BAKE, &id)
        .await
        .expect("baked");
    // ECS bakes its own time and cleans up: the old revision is gone.
    world.play(7 * 60).await;
    assert_eq!(world.ecs_deployment().status, "SUCCESSFUL");

    let ended = run_ending(&mut world, &registry::ROLLBACK, &id).await;
    assert_eq!(ended["status"], "needs_attention", "{ended}");
    assert!(
        ended["detail"].as_str().unwrap().contains("ECS completed"),
        "{ended}"
    );
    // Nothing stopped, nothing redeployed: production stays on the new revision.
    assert_eq!(world.ecs_deployments(), 1);
    assert_eq!(world.ecs_deployment().status, "SUCCESSFUL");
    assert_eq!(
        world.all_to(&world.production_rule),
        Some(world.names.tg_green.clone())
    );
    assert_eq!(world.service(), (revision, [0, 2]));
}

/// The health check at its deadline after the launch, once `change` has changed ECS's test
/// rule: its error. ECS's rules are left as ECS set them, production on the old group.
async fn health_check_at_its_deadline_after(
    change: impl FnOnce(&mut bluegreen_tests::memory::RuleModel),
) -> bluegreen::StepError {
    let mut world = ecs_world::build().await;
    let (id, _) = world.deployment("v2", Status::Preparing).await;
    run_step(&mut world, &registry::LAUNCH_PREPROD, &id)
        .await
        .expect("launched");
    let test_rule = world.test_rule.clone();
    world
        .aws
        .with(|s| change(s.elb.rules.get_mut(&test_rule).expect("test rule")));
    let err = checked_past_its_deadline(&world, &registry::HEALTH_CHECK, &id).await;
    assert_eq!(
        world.all_to(&world.test_rule),
        Some(world.names.tg_green.clone()),
        "ECS's rules are left as ECS set them"
    );
    assert_production_on_the_old_group(&world);
    err
}

#[tokio::test]
async fn a_test_rule_matching_more_than_one_header_is_not_taken_for_the_smoke_checks() {
    // The team's test rule also wants a host the smoke checks do not send: production would
    // answer them.
    let err = health_check_at_its_deadline_after(|rule| {
        rule.conditions
            .push(bluegreen::ports::load_balancing::Condition {
                field: "host-header".into(),
                header_name: None,
                values: vec!["preview.example.com".into()],
            });
    })
    .await;
    assert_eq!(err.name(), "HealthCheckFailed");
    assert!(
        err.to_string().contains("one http-header condition"),
        "{err}"
    );
}

#[tokio::test]
async fn a_test_rule_evaluated_after_production_s_rule_is_not_taken_for_the_smoke_checks() {
    // ELB evaluates the lower number first: production's rule (20) would see the smoke
    // checks before a test rule at 30.
    let err = health_check_at_its_deadline_after(|rule| rule.priority = 30).await;
    assert_eq!(err.name(), "HealthCheckFailed");
    assert!(
        err.to_string().contains("comes after production's rule"),
        "{err}"
    );
}

/// bluegreen's one-off tasks in the order they started: `(task definition, command, exit)`.
fn one_off_tasks(world: &EcsWorld) -> Vec<(String, Vec<String>, Option<i32>)> {
    world.aws.with(|s| {
        s.ecs
            .tasks
            .values()
            .map(|t| {
                let exit = t.state.containers.first().and_then(|c| c.exit_code);
                (t.state.task_definition.clone(), t.command.clone(), exit)
            })
            .collect()
    })
}

#[tokio::test]
async fn a_shared_deployment_migrated_before_the_launch_then_alarmed_rolls_back_through_ecs_and_waits_for_its_rollback_migration()
 {
    let mut world = ecs_world::build().await;
    if let Some(migration) = &mut world.config.migration {
        migration.rollback_command = Some(vec!["bin/migrate".into(), "down".into()]);
    }
    let (mut world, id, revision, before) = approved_in(world).await;
    // The migration ran once, before the launch, with the pushed revision (shared: production's
    // database, as production's task definition has it).
    let tasks = one_off_tasks(&world);
    assert_eq!(
        tasks,
        [(
            revision.clone(),
            vec!["bin/migrate".to_owned(), "up".to_owned()],
            Some(0)
        )]
    );
    let switched = run_step(&mut world, &registry::SWITCH, &id).await;
    assert!(switched.unwrap().contains("ECS moved production"));
    world
        .aws
        .with(|s| s.alarms.alarms.insert("shop-5xx".into(), true));
    let failed = run_step(&mut world, &registry::BAKE, &id).await;
    assert_eq!(failed.unwrap_err().name(), "BakeFailed");

    // The first rollback call asks ECS to roll back and waits for it; the rollback migration
    // runs once production is back, and the ending waits for it too.
    let input = json!({"deployment_id": id,
                       "error": {"Error": "BakeFailed", "Cause": "alarm shop-5xx"}});
    let first = registry::invoke(&world.ctx, &registry::ROLLBACK, input)
        .await
        .expect("rollback");
    assert!(first.get("wait").is_some(), "{first}");
    assert_eq!(
        one_off_tasks(&world).len(),
        1,
        "no rollback migration before ECS rolled back"
    );
    let ended = run_ending(&mut world, &registry::ROLLBACK, &id).await;
    assert_eq!(ended["status"], "rolled_back", "{ended}");

    let tasks = one_off_tasks(&world);
    assert_eq!(tasks.len(), 2, "{tasks:?}");
    assert_eq!(tasks[1].1, ["bin/migrate", "down"]);
    assert_eq!(tasks[1].2, Some(0), "the rollback migration ran to its end");
    assert_eq!(world.ecs_deployment().status, "ROLLBACK_SUCCESSFUL");
    assert_production_on_the_old_group(&world);
    assert_eq!(world.service(), (before, [2, 0]));
    let record = record(&world, &id).await;
    assert_eq!(record.status, Status::RolledBack);
}

#[tokio::test]
async fn the_live_slot_guard_takes_ecs_s_alternate_group_not_the_one_service_for_the_idle_slot() {
    let findings = |world: &EcsWorld| {
        let (ctx, config) = (world.ctx.clone(), world.config.clone());
        async move {
            bluegreen::guard::findings(&ctx, &config)
                .await
                .expect("observed")
                .into_iter()
                .map(|(code, what, repair)| (code, format!("{what}: {repair}")))
                .collect::<Vec<_>>()
        }
    };
    // At rest: production's service runs its tasks, ECS's alternate group holds none — no
    // "idle slot running" (the one service is both slots' name).
    let world = ecs_world::build().await;
    assert_eq!(world.service().1, [2, 0]);
    assert_eq!(findings(&world).await, []);

    // A target draining out of the alternate group (ECS's clean-up) is on its way out.
    let green = world.names.tg_green.clone();
    let leave = |state: &str| {
        let (blue, green, state) = (world.names.tg_blue.clone(), green.clone(), state.to_owned());
        world.aws.with(move |s| {
            let mut target = s.elb.targets[&blue][0].clone();
            target.state = state;
            s.elb.targets.insert(green, vec![target]);
        });
    };
    leave("draining");
    assert_eq!(findings(&world).await, []);

    // A target left in the alternate group with no route to it (a revision ECS did not
    // scale in): that is what the guard reports as the idle slot running. ECS's own test rule
    // forwarding there is not "another route" keeping it busy.
    leave("healthy");
    let found = findings(&world).await;
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].0, "idle-slot-running");
    assert!(found[0].1.contains("green"), "{found:?}");
    // Never the slots' advice to scale the idle service down: here it is production's.
    assert!(!found[0].1.contains("--desired-count 0"), "{found:?}");
    assert!(found[0].1.contains("deregister"), "{found:?}");

    // The sweep's check with repairs on — and a manual rollback whose clean-up is pending,
    // which on the slots the guard finishes by scaling the slot it left — reports it and
    // changes nothing: here that "slot" is production's one service.
    let (pending, _) = world.deployment("v1", Status::Baking).await;
    let intent = bluegreen::record::Change::new().log(
        bluegreen::retirement::MANUAL_ROLLBACK_STEP,
        StepOutcome::Started,
        "rolling back",
        chrono::Utc::now(),
    );
    bluegreen::record::Records::new(&world.ctx)
        .update(&pending, intent)
        .await
        .expect("intent recorded");
    world.set_status(&pending, Status::Succeeded, None).await;
    let mut config = world.config.clone();
    config.guard.repair = true;
    let before = world.aws.with(|s| {
        s.ecs.services[&format!("{}/{}", bluegreen_tests::CLUSTER, ecs_world::SERVICE)]
            .state
            .clone()
    });
    let guarded = bluegreen::guard::check(&world.ctx, &config)
        .await
        .expect("checked");
    assert_eq!(guarded.repaired, None, "{guarded:?}");
    assert_eq!(guarded.violations.map(|v| v.len()), Some(1));
    let after = world.aws.with(|s| {
        s.ecs.services[&format!("{}/{}", bluegreen_tests::CLUSTER, ecs_world::SERVICE)]
            .state
            .clone()
    });
    assert_eq!(after.desired_count, before.desired_count);
    assert_eq!(after.task_definition, before.task_definition);
    assert_eq!(
        world.service(),
        (before.task_definition.unwrap_or_default(), [2, 1])
    );
}

/// [`approved_and_switched`], baked and finished: ECS completed, the lock released; with an
/// hour of `finish.keep_warm_seconds`, so a manual rollback is not refused for its window.
async fn succeeded() -> (EcsWorld, String, String) {
    let mut world = ecs_world::build().await;
    world.config.migration = None;
    world.config.finish.keep_warm_seconds = 3600;
    let (mut world, id, revision, _) = approved_in(world).await;
    run_step(&mut world, &registry::SWITCH, &id)
        .await
        .expect("switched");
    run_step(&mut world, &registry::BAKE, &id)
        .await
        .expect("baked");
    let ended = run_ending(&mut world, &registry::FINISH, &id).await;
    assert_eq!(ended["status"], "succeeded", "{ended}");
    world.store_config().await;
    assert_eq!(world.service(), (revision.clone(), [0, 2]));
    (world, id, revision)
}

#[tokio::test]
async fn a_manual_rollback_is_refused_on_ecs_and_production_stays_on_the_new_revision() {
    let (world, _, revision) = succeeded().await;
    let refused = bluegreen::operator::manual_rollback(&world.ctx, "shop", "alice@example.com")
        .await
        .unwrap_err();
    assert_eq!(refused.name(), "RollbackRefused", "{refused}");
    assert!(
        refused.to_string().contains("bluegreen rollback shop --to"),
        "{refused}"
    );
    // Sending production to the old group would find it empty: ECS cleaned it up.
    assert_eq!(
        world.all_to(&world.production_rule),
        Some(world.names.tg_green.clone())
    );
    assert_eq!(world.service(), (revision, [0, 2]));
    let lock = bluegreen::lock::Locks::new(&world.ctx)
        .read("shop")
        .await
        .unwrap();
    assert!(lock.is_none(), "{lock:?}");
}

#[tokio::test]
async fn the_scheduled_teardown_never_scales_the_one_service_in() {
    let (world, _, revision) = succeeded().await;
    // A service moved from the slots engine can still carry its slot-days tags, expired.
    let arn = world.aws.with(|s| {
        s.ecs.services[&format!("{}/{}", bluegreen_tests::CLUSTER, ecs_world::SERVICE)]
            .state
            .arn
            .clone()
    });
    let expired = (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339();
    world
        .ctx
        .ports
        .compute
        .tag_resource(
            &arn,
            &[
                (TAG_ROLE.to_owned(), "preprod".to_owned()),
                (TAG_EXPIRES.to_owned(), expired),
            ],
        )
        .await
        .unwrap();
    // Where ECS leaves its test rule after the clean-up is not documented: here it follows
    // production, and the listener answers unmatched hosts with a fixed response (a shared
    // ALB's usual 404), so nothing sends anything to the old group and only the engine keeps
    // the teardown off production's service.
    let green = world.names.tg_green.clone();
    world.aws.with(|s| {
        for listener in s.elb.listeners.values_mut() {
            listener.forward = None;
        }
        s.elb.rules.get_mut(&world.test_rule).unwrap().forward =
            Some(vec![bluegreen::ports::load_balancing::WeightedGroup {
                target_group_arn: green,
                weight: Some(100),
            }]);
    });
    let report = bluegreen::steps::teardown::run(&world.ctx).await.unwrap();
    assert!(report.removed.is_empty(), "{report:?}");
    assert_eq!(world.service(), (revision, [0, 2]));
    let desired = world.aws.with(|s| {
        s.ecs.services[&format!("{}/{}", bluegreen_tests::CLUSTER, ecs_world::SERVICE)]
            .state
            .desired_count
    });
    assert_eq!(desired, 2);
}

#[tokio::test]
async fn a_manual_rollback_of_a_deployment_that_ran_on_ecs_is_refused_whatever_the_config_says_now()
{
    let (mut world, _, revision) = succeeded().await;
    // The service was taken back to two slots within the last deployment's keep-warm window:
    // that deployment still ran on ECS, whose old revision is gone.
    world.config.slots.green.service = "shop-green".into();
    if let bluegreen::config::Traffic::Listener {
        engine,
        test_listener_arn,
        ..
    } = &mut world.config.traffic
    {
        *engine = bluegreen::config::Engine::Slots;
        *test_listener_arn = Some(world.names.test_listener.clone());
    }
    world.store_config().await;
    let refused = bluegreen::operator::manual_rollback(&world.ctx, "shop", "alice@example.com")
        .await
        .unwrap_err();
    assert_eq!(refused.name(), "RollbackRefused", "{refused}");
    assert!(
        refused.to_string().contains("ECS's own blue/green"),
        "{refused}"
    );
    assert_eq!(
        world.all_to(&world.production_rule),
        Some(world.names.tg_green.clone())
    );
    assert_eq!(world.service(), (revision, [0, 2]));
}

#[tokio::test]
async fn unlock_is_refused_while_ecs_s_deployment_of_the_holder_goes_on() {
    use bluegreen::lock::Locks;
    let (mut world, id, _, _) = approved_and_switched().await;
    // Held at the production gate, the deployment needs a person; it keeps the lock.
    world
        .set_status(
            &id,
            Status::NeedsAttention,
            Some("the bake's ending failed"),
        )
        .await;
    let ctx = world.ctx.clone();
    let locks = Locks::new(&ctx);
    let lease = chrono::Utc::now() + chrono::Duration::hours(1);
    locks.hold("shop", &id, lease).await.unwrap();
    world.store_config().await;
    let refused = bluegreen::operator::unlock(&world.ctx, "shop", "alice@example.com")
        .await
        .unwrap_err();
    assert_eq!(refused.name(), "UnlockRefused", "{refused}");
    assert!(refused.to_string().contains("still going on"), "{refused}");
    assert_eq!(locks.holder("shop").await.unwrap(), Some(id.clone()));
    // Once ECS's deployment has ended (stopped in the console: rolled back), the lock goes.
    world.stop_in_the_console().await;
    world.play(120).await;
    assert_eq!(world.ecs_deployment().status, "ROLLBACK_SUCCESSFUL");
    assert_production_on_the_old_group(&world);
    bluegreen::operator::unlock(&world.ctx, "shop", "alice@example.com")
        .await
        .expect("unlocked once ECS ended");
    assert_eq!(locks.holder("shop").await.unwrap(), None);
}

/// `config` with pre-prod on a clone (`isolated`): pre-prod runs in a service of its own.
fn isolated(config: &mut bluegreen::config::ServiceConfig) {
    config.database.strategy = bluegreen::config::DbStrategy::Isolated;
    config.database.source = Some(bluegreen::config::DbSource::RdsInstance {
        identifier: "shop-db".into(),
    });
}

/// Pre-prod's own services (`bg-…`): `(name, task definition, target group, desired count)`.
fn preprod_services(world: &EcsWorld) -> Vec<(String, Option<String>, String, i32)> {
    world.aws.with(|s| {
        s.ecs
            .services
            .values()
            .filter(|m| m.state.name.starts_with("bg-"))
            .map(|m| {
                (
                    m.state.name.clone(),
                    m.state.task_definition.clone(),
                    m.target_group.clone(),
                    m.state.desired_count,
                )
            })
            .collect()
    })
}

/// bluegreen's test rules on the production listener: `(priority, target group)`.
fn preview_rules(world: &EcsWorld) -> Vec<(i32, Option<String>)> {
    world.aws.with(|s| {
        s.elb
            .rules
            .values()
            .filter(|r| {
                r.tags
                    .iter()
                    .any(|(k, v)| k == TAG_ROLE && v == bluegreen::test_rule::ROLE)
            })
            .map(|r| {
                let to = r.forward.as_ref().map(|f| f[0].target_group_arn.clone());
                (r.priority, to)
            })
            .collect()
    })
}

/// The alternate (green) group holds one target, `id`, in `state`, and nothing else.
fn in_the_alternate_group(world: &EcsWorld, id: &str, state: &str) {
    world.aws.with(|s| {
        s.elb.targets.insert(
            world.names.tg_green.clone(),
            vec![bluegreen::ports::load_balancing::TargetHealth {
                id: id.into(),
                state: state.into(),
                reason: String::new(),
            }],
        );
    });
}

/// `isolated`: the launch gives pre-prod one service of its own (a retry finds it) on the
/// pre-prod revision, in the alternate group, behind bluegreen's header rule (and its probe)
/// placed above ECS's rules; ECS deploys nothing and production is untouched. The abort
/// deletes the service and the rule, and waits until its tasks have left the group.
#[tokio::test]
async fn isolated_pre_prod_runs_in_a_service_of_its_own_which_the_abort_deletes_and_waits_out() {
    let mut world = ecs_world::build().await;
    isolated(&mut world.config);
    let (id, revision) = world.deployment("v2", Status::Preparing).await;
    let before = world.service();
    world.launch(&id).await.expect("launched");
    world.launch(&id).await.expect("a retry finds it");
    let services = preprod_services(&world);
    assert_eq!(services.len(), 1, "{services:?}");
    let (name, td, group, _) = &services[0];
    assert!(name.starts_with("bg-shop-blue-preprod-"), "{name}");
    assert_eq!(td.as_deref(), Some(revision.as_str()));
    assert_eq!(group, &world.names.tg_green);
    assert_eq!(world.ecs_deployments(), 0, "ECS deployed nothing");
    assert_eq!(world.service(), before, "production's service untouched");
    assert_production_on_the_old_group(&world);
    // The rule and its probe, both above ECS's test rule (priority 5); the rule to the group.
    let rules = preview_rules(&world);
    assert_eq!(rules.len(), 2, "{rules:?}");
    assert!(rules.iter().all(|(p, _)| *p < 5), "{rules:?}");
    assert!(rules.contains(&(
        rules.iter().map(|r| r.0).min().unwrap(),
        Some(world.names.tg_green.clone())
    )));

    // Pre-prod's tasks registered; the abort deletes the service, then waits for them.
    in_the_alternate_group(&world, "10.9.0.1", "healthy");
    world.abort(&id).await.expect("the abort's first call");
    assert!(preprod_services(&world).is_empty());
    assert!(preview_rules(&world).is_empty());
    let record = bluegreen::record::Records::new(&world.ctx)
        .get(&id)
        .await
        .unwrap();
    assert!(
        !record.status.is_terminal(),
        "ended while pre-prod's tasks drain"
    );
    world.aws.with(|s| {
        s.elb
            .targets
            .insert(world.names.tg_green.clone(), Vec::new());
    });
    world.abort(&id).await.expect("the abort again");
    let record = bluegreen::record::Records::new(&world.ctx)
        .get(&id)
        .await
        .unwrap();
    assert_eq!(record.status, Status::Aborted, "{:?}", record.timeline);
    assert_eq!(world.ecs_deployments(), 0);
    assert_eq!(world.service(), before);
}

/// `isolated`: an alternate group that already has targets (a pre-prod service an earlier
/// ending could not delete, another service) refuses the launch before anything is created:
/// the smoke checks would count those targets as pre-prod's.
#[tokio::test]
async fn isolated_pre_prod_is_refused_where_the_alternate_group_is_not_empty() {
    let mut world = ecs_world::build().await;
    isolated(&mut world.config);
    let (id, _) = world.deployment("v2", Status::Preparing).await;
    in_the_alternate_group(&world, "10.9.0.7", "healthy");
    let err = world.launch(&id).await.expect_err("refused");
    assert_eq!(err.name(), "LaunchFailed");
    assert!(err.to_string().contains("10.9.0.7"), "{err}");
    assert!(preprod_services(&world).is_empty());
    assert!(preview_rules(&world).is_empty());
    assert_eq!(world.ecs_deployments(), 0);
}

/// `shared` too: ECS's deployment is not started beside targets already serving in the
/// alternate group (an `isolated` pre-prod service an ending left): refused, nothing deployed.
/// Draining targets (on their way out, taking no new requests) do not refuse it.
#[tokio::test]
async fn ecs_s_deployment_is_refused_where_the_alternate_group_serves_other_targets() {
    let world = ecs_world::build().await;
    let (id, _) = world.deployment("v2", Status::Preparing).await;
    in_the_alternate_group(&world, "10.9.0.8", "healthy");
    let err = world.launch(&id).await.expect_err("refused");
    assert_eq!(err.name(), "LaunchFailed");
    assert!(err.to_string().contains("10.9.0.8"), "{err}");
    assert_eq!(world.ecs_deployments(), 0);
    in_the_alternate_group(&world, "10.9.0.8", "draining");
    let (id, _) = world.deployment("v3", Status::Preparing).await;
    world
        .launch(&id)
        .await
        .expect("draining targets do not refuse it");
    assert_eq!(world.ecs_deployments(), 1);
}

/// `isolated`: while pre-prod's own service runs, the engine says so (what refuses an
/// `unlock`: the service would run on, on its clone, with no lock); once deleted, nothing.
#[tokio::test]
async fn pre_prod_s_own_service_still_running_is_what_keeps_the_lock() {
    let mut world = ecs_world::build().await;
    isolated(&mut world.config);
    let (id, _) = world.deployment("v2", Status::Preparing).await;
    world.launch(&id).await.expect("launched");
    let records = bluegreen::record::Records::new(&world.ctx);
    let deployment = records.get(&id).await.unwrap();
    let engine = bluegreen::engine::of(&deployment.config);
    let going = engine.still_going(&world.ctx, &deployment).await.unwrap();
    assert!(
        going
            .as_deref()
            .is_some_and(|g| g.contains("bg-shop-blue-preprod-") && g.contains("retry")),
        "{going:?}"
    );
    let name = deployment
        .preprod
        .clone()
        .unwrap()
        .ephemeral_service
        .unwrap();
    world
        .ctx
        .ports
        .compute
        .delete_service(bluegreen_tests::CLUSTER, &name)
        .await
        .unwrap();
    assert_eq!(
        engine.still_going(&world.ctx, &deployment).await.unwrap(),
        None
    );
}
