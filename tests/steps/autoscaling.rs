//! Issue 23: production's autoscaling moves with production — held on pre-prod, serving (no
//! scale-in) from the switch, handed over at finish, the old slot at rest so no policy brings
//! it back, given back by a manual rollback. Application Auto Scaling is moto's; the harness
//! plays what AWS does with it (a register moves the count into range; `run_autoscaling` runs
//! every policy once).

use bluegreen::Slot;
use bluegreen::operator::manual_rollback;
use bluegreen::poll::Poll;
use bluegreen::ports::scaling::{PolicyKind, ScalableTarget, Suspended, TrackedMetric};
use bluegreen::record::{Status, StepOutcome};
use bluegreen::steps::{finish, launch_preprod, switch};
use bluegreen_tests::World;

use crate::common::*;

const OPERATOR: &str = "arn:aws:iam::123456789012:user/oncall";

fn production_scaling() -> ScalableTarget {
    ScalableTarget {
        min: 4,
        max: 20,
        suspended: Suspended::default(),
    }
}

/// Green (the bad or aborted slot) is at rest and stays at 0 when every policy runs.
async fn assert_green_rests_at_zero(world: &World) {
    assert_eq!(
        world
            .scalable_target(Slot::Green)
            .await
            .map(|t| (t.min, t.suspended)),
        Some((0, Suspended::ALL)),
        "at rest"
    );
    world.run_autoscaling().await;
    assert_eq!(
        world.service(Slot::Green).await.1,
        0,
        "no policy brings it back"
    );
}

/// The resource label of a slot's copied requests-per-target policy.
async fn tracked_label(world: &World, slot: Slot) -> String {
    let policies = world.scaling_policies(slot).await;
    assert_eq!(policies.len(), 1, "{policies:?}");
    match &policies[0].kind {
        PolicyKind::TargetTracking {
            metric: TrackedMetric::Predefined { resource_label, .. },
            ..
        } => resource_label.clone().expect("a resource label"),
        other => panic!("not the requests-per-target policy: {other:?}"),
    }
}

/// Production autoscaled (4..20) from 4 to 8 tasks while people decided; pre-prod ran one task
/// (`preprod.desired_count = 1`). Green is held at 1 with a copy of production's autoscaling
/// until the switch, serves at ≥ 8 with scale-in suspended, then takes production's scalable
/// target at finish; blue rests at 0 even when every policy runs.
#[tokio::test]
async fn production_is_switched_onto_its_grown_count_and_its_autoscaling_moves_with_it() {
    let world = World::build().await;
    let mut config = world.config();
    config.preprod.desired_count = Some(1);
    world.put_config(&config).await;
    world.autoscale(Slot::Blue, 4, 20).await;
    assert_eq!(
        world.service(Slot::Blue).await.1,
        4,
        "registered at its minimum"
    );

    let id = prepare_push(&world, "v2", "event-1").await;
    let started = launch_preprod::start(&world.ctx, &id_ref(&id))
        .await
        .unwrap();
    assert_eq!(
        world.service(Slot::Green).await.1,
        1,
        "pre-prod keeps its own count"
    );
    assert_eq!(
        world.scalable_target(Slot::Green).await,
        Some(ScalableTarget {
            min: 0,
            max: 20,
            suspended: Suspended::ALL
        }),
        "held: nothing acts on pre-prod yet"
    );
    let green_label = tracked_label(&world, Slot::Green).await;
    let green_tg = &world.tg_green[world.tg_green.find("targetgroup/").unwrap()..];
    assert!(green_label.ends_with(green_tg), "re-pointed: {green_label}");
    assert_ne!(green_label, tracked_label(&world, Slot::Blue).await);
    world.settle(Slot::Green, "COMPLETED").await;
    world.register_targets(Slot::Green, 1).await;
    let launched = launch_preprod::check(&world.ctx, &check_of(&started))
        .await
        .unwrap();
    assert!(matches!(launched, Poll::Done { .. }), "{launched:?}");
    health(&world, &id).await.unwrap();
    approve(&world, &id).await;

    // Production grows while people decide; the policies run: pre-prod stays at 1.
    world.scale(Slot::Blue, 8).await;
    world.run_autoscaling().await;
    assert_eq!(world.service(Slot::Green).await.1, 1);
    assert_eq!(world.service(Slot::Blue).await.1, 8);

    let started = switch::start(&world.ctx, &id_ref(&id)).await.unwrap();
    assert_eq!(
        world.scalable_target(Slot::Green).await,
        Some(ScalableTarget {
            min: 4,
            max: 20,
            suspended: Suspended {
                scale_in: true,
                ..Suspended::default()
            }
        }),
        "serving: production's range, no scale-in through the bake"
    );
    assert_eq!(
        world.service(Slot::Green).await.1,
        8,
        "production's count now"
    );
    assert_eq!(
        world.scalable_target(Slot::Blue).await.map(|t| t.suspended),
        Some(Suspended {
            scale_in: true,
            ..Suspended::default()
        }),
        "production keeps its tasks while traffic moves away from it"
    );
    assert_eq!(world.production().await.percent(Slot::Green), 0);
    world.settle(Slot::Green, "COMPLETED").await;
    world.register_targets(Slot::Green, 8).await;
    let done = switch::check(&world.ctx, &check_of(&started))
        .await
        .unwrap();
    assert!(matches!(done, Poll::Done { .. }), "{done:?}");
    assert_eq!(world.production().await.live().unwrap(), Slot::Green);

    let ended = finish::run(&world.ctx, &id_ref(&id)).await.unwrap();
    assert_eq!(ended.status, Status::Succeeded);
    assert_eq!(
        world.scalable_target(Slot::Green).await,
        Some(production_scaling())
    );
    assert_eq!(
        world.scalable_target(Slot::Blue).await,
        Some(ScalableTarget {
            min: 0,
            max: 20,
            suspended: Suspended::ALL
        })
    );
    let deployment = record(&world, &id).await;
    assert_eq!(deployment.production_scaling, Some(production_scaling()));
    let scaled: Vec<&str> = deployment
        .timeline
        .iter()
        .filter(|e| e.outcome == StepOutcome::Scaled)
        .map(|e| e.detail.as_str())
        .collect();
    assert!(
        scaled.iter().any(|d| d.contains("held"))
            && scaled.iter().any(|d| d.contains("to 8 task(s)")),
        "{scaled:?}"
    );

    // Every policy runs: the old slot stays at 0, production keeps 8.
    world.run_autoscaling().await;
    assert_eq!(
        world.service(Slot::Blue).await.1,
        0,
        "no second copy of production"
    );
    assert_eq!(world.service(Slot::Green).await.1, 8);
    // The hand-over again (a retried finish whose answer was lost): it finds blue at rest
    // and still hands green production's recorded target, never the rested one.
    let deployment = record(&world, &id).await;
    bluegreen::autoscaling::hand_over(&world.ctx, &deployment, Slot::Green)
        .await
        .unwrap();
    let mut unrecorded = deployment.clone();
    unrecorded.production_scaling = None;
    bluegreen::autoscaling::hand_over(&world.ctx, &unrecorded, Slot::Green)
        .await
        .unwrap();
    assert_eq!(
        world.scalable_target(Slot::Green).await,
        Some(production_scaling())
    );
    assert_eq!(
        world.scalable_target(Slot::Blue).await.map(|t| t.min),
        Some(0)
    );
}

/// The harness's Application Auto Scaling can fail the test above: a slot left under its own
/// scalable target at 0 comes back to its minimum when a policy runs.
#[tokio::test]
async fn a_slot_scaled_to_zero_under_its_own_scalable_target_comes_back() {
    let world = World::build().await;
    world.autoscale(Slot::Blue, 3, 6).await;
    world.scale(Slot::Blue, 0).await;
    world.run_autoscaling().await;
    assert_eq!(world.service(Slot::Blue).await.1, 3);
}

/// A manual rollback gives the warm old slot production's scalable target back before traffic
/// returns, and puts the bad slot at rest before scaling it to 0.
#[tokio::test]
async fn a_manual_rollback_gives_production_its_autoscaling_back() {
    let world = World::build().await;
    let mut config = world.config();
    config.finish.keep_warm_seconds = 3600;
    world.put_config(&config).await;
    world.autoscale(Slot::Blue, 2, 12).await;
    let production = ScalableTarget {
        min: 2,
        max: 12,
        suspended: Suspended::default(),
    };
    let id = deploy_to_switch(&world).await;
    finish::run(&world.ctx, &id_ref(&id)).await.unwrap();
    world.settle(Slot::Blue, "COMPLETED").await;
    assert_eq!(world.service(Slot::Blue).await.1, 2, "warm");
    assert_eq!(world.scalable_target(Slot::Green).await, Some(production));
    world.run_autoscaling().await;
    assert_eq!(
        world.service(Slot::Blue).await.1,
        2,
        "warm, not revived nor dropped"
    );

    manual_rollback(&world.ctx, "shop", OPERATOR).await.unwrap();
    assert_eq!(world.production().await.live().unwrap(), Slot::Blue);
    assert_eq!(world.scalable_target(Slot::Blue).await, Some(production));
    assert_green_rests_at_zero(&world).await;
    assert_eq!(world.service(Slot::Blue).await.1, 2);
}

/// A rollback in the bake puts the failed slot at rest before scaling it down: the minimum the
/// switch gave it would otherwise bring it back.
#[tokio::test]
async fn a_rollback_puts_the_failed_slot_at_rest_before_scaling_it_down() {
    let world = World::build().await;
    world.autoscale(Slot::Blue, 2, 10).await;
    let id = deploy_to_switch(&world).await;
    assert_eq!(
        world.scalable_target(Slot::Green).await.map(|t| t.min),
        Some(2)
    );
    let ended = bluegreen::steps::rollback::run(&world.ctx, &failure(&id, "BakeFailed"))
        .await
        .unwrap();
    assert_eq!(ended.status, Status::RolledBack);
    assert_eq!(world.production().await.live().unwrap(), Slot::Blue);
    assert_eq!(
        world.scalable_target(Slot::Blue).await,
        Some(ScalableTarget {
            min: 2,
            max: 10,
            suspended: Suspended::default()
        }),
        "production's own, untouched"
    );
    world.run_autoscaling().await;
    assert_eq!(world.service(Slot::Green).await.1, 0);
    assert_eq!(world.service(Slot::Blue).await.1, 2);
}

/// An abort after the switch began (production frozen, green given production's minimum) but
/// before any traffic moved: production gets its own target back, green rests at its old
/// count.
#[tokio::test]
async fn an_abort_after_the_switch_began_gives_production_its_autoscaling_back() {
    let world = World::build().await;
    let mut config = world.config();
    config.preprod.desired_count = Some(1);
    world.put_config(&config).await;
    world.autoscale(Slot::Blue, 2, 10).await;
    let id = prepare_push(&world, "v2", "event-1").await;
    let started = launch_preprod::start(&world.ctx, &id_ref(&id))
        .await
        .unwrap();
    world.settle(Slot::Green, "COMPLETED").await;
    world.register_targets(Slot::Green, 1).await;
    launch_preprod::check(&world.ctx, &check_of(&started))
        .await
        .unwrap();
    health(&world, &id).await.unwrap();
    approve(&world, &id).await;
    let started = switch::start(&world.ctx, &id_ref(&id)).await.unwrap();
    assert!(
        started.wait_seconds > 0,
        "green is still scaling: {started:?}"
    );
    assert_eq!(world.production().await.percent(Slot::Green), 0);
    assert!(
        world
            .scalable_target(Slot::Blue)
            .await
            .unwrap()
            .suspended
            .scale_in
    );

    let ended = bluegreen::steps::abort::run(&world.ctx, &failure(&id, "SwitchFailed"))
        .await
        .unwrap();
    assert_eq!(ended.status, Status::Aborted, "{}", ended.detail);
    assert_eq!(
        world.scalable_target(Slot::Blue).await,
        Some(ScalableTarget {
            min: 2,
            max: 10,
            suspended: Suspended::default()
        })
    );
    assert_green_rests_at_zero(&world).await;
}

/// A step policy is driven by alarms that name its ARN, which bluegreen does not copy: without
/// the team's own policy on green the launch refuses, naming it, before pre-prod runs.
#[tokio::test]
async fn a_policy_that_cannot_follow_production_refuses_the_launch() {
    use bluegreen::ports::scaling::ScalingPolicy;
    let world = World::build().await;
    world.autoscale(Slot::Blue, 2, 10).await;
    let blue = bluegreen::autoscaling::resource_id("shop-cluster", "shop-blue");
    let step = ScalingPolicy {
        name: "cpu-step".into(),
        kind: PolicyKind::Step {
            adjustment_type: Some("ChangeInCapacity".into()),
            steps: vec![bluegreen::ports::scaling::StepAdjustment {
                lower: Some(0.0),
                upper: None,
                adjustment: 2,
            }],
            min_adjustment_magnitude: None,
            cooldown: Some(60),
            metric_aggregation_type: Some("Average".into()),
            alarms: Vec::new(),
        },
    };
    world
        .ctx
        .ports
        .scaling
        .put_policy(&blue, &step)
        .await
        .unwrap();
    let id = prepare_push(&world, "v2", "event-1").await;
    let err = launch_preprod::start(&world.ctx, &id_ref(&id))
        .await
        .unwrap_err();
    assert_eq!(err.name(), "LaunchFailed");
    assert!(err.to_string().contains("cpu-step"), "{err}");
    assert_eq!(world.service(Slot::Green).await.1, 0, "pre-prod never ran");
    assert_eq!(world.scalable_target(Slot::Green).await, None);
}

/// A manual rollback gives the old slot the target production has now (IaC raised its
/// maximum after finish), not the one recorded at the switch.
#[tokio::test]
async fn a_manual_rollback_takes_productions_current_range_back() {
    let world = World::build().await;
    let mut config = world.config();
    config.finish.keep_warm_seconds = 3600;
    world.put_config(&config).await;
    world.autoscale(Slot::Blue, 2, 12).await;
    let id = deploy_to_switch(&world).await;
    finish::run(&world.ctx, &id_ref(&id)).await.unwrap();
    world.settle(Slot::Blue, "COMPLETED").await;
    let green = bluegreen::autoscaling::resource_id("shop-cluster", "shop-green");
    let raised = ScalableTarget {
        min: 2,
        max: 30,
        suspended: Suspended::default(),
    };
    world
        .ctx
        .ports
        .scaling
        .register(&green, &raised)
        .await
        .unwrap();
    manual_rollback(&world.ctx, "shop", OPERATOR).await.unwrap();
    assert_eq!(world.scalable_target(Slot::Blue).await, Some(raised));
}
