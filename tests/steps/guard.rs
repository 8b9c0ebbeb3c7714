//! Issue 23: the live-slot guard. After a blue→green deployment an IaC apply puts the
//! production listener back on blue's target group (the slot bluegreen scaled to 0): the next
//! sweep reports it (metric, one notice naming what routes where and the repair), `status` and
//! `doctor` show it; with `guard.repair = true` the sweep scales blue back to production's
//! count — and never moves traffic.

use aws_sdk_elasticloadbalancingv2::types::{Action as ElbAction, ActionTypeEnum};
use bluegreen::Slot;
use bluegreen::steps::finish;
use bluegreen::steps::reconcile::{self, Action, Request};
use bluegreen_tests::World;

use crate::common::*;

/// A finished blue→green deployment (blue at 0, green live with two healthy targets).
async fn deployed_to_green(world: &World) {
    let id = deploy_to_switch(world).await;
    finish::run(&world.ctx, &id_ref(&id)).await.expect("finish");
    assert_eq!(world.service(Slot::Blue).await.1, 0);
}

/// What `terraform apply` does to a listener whose default action the code says forwards to
/// blue: ModifyListener straight to blue's target group.
async fn apply_reverts_the_route(world: &World) {
    world
        .aws
        .elb
        .modify_listener()
        .listener_arn(&world.production_listener)
        .default_actions(
            ElbAction::builder()
                .r#type(ActionTypeEnum::Forward)
                .target_group_arn(&world.tg_blue)
                .build(),
        )
        .send()
        .await
        .expect("modify listener");
}

async fn guard_answers(world: &World) -> Vec<reconcile::Reconciled> {
    reconcile::run(&world.ctx, &Request::Sweep)
        .await
        .expect("sweep")
        .into_iter()
        .filter(|r| r.action == Action::GuardViolation)
        .collect()
}

fn live_slot_notices(published: &[serde_json::Value]) -> Vec<String> {
    published
        .iter()
        .filter(|m| m["attributes"]["kind"] == "live_slot")
        .map(|m| m["message"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test]
async fn a_route_reverted_to_the_scaled_down_slot_is_reported_by_the_next_sweep() {
    let world = World::build().await.with_topic();
    deployed_to_green(&world).await;
    assert!(
        guard_answers(&world).await.is_empty(),
        "healthy after the deployment"
    );

    apply_reverts_the_route(&world).await;
    let answers = guard_answers(&world).await;
    assert_eq!(answers.len(), 1, "{answers:?}");
    let detail = &answers[0].detail;
    assert!(
        detail.contains("production sends 100% to blue (shop-blue), which runs 0 task(s)"),
        "{detail}"
    );
    assert!(
        detail.contains("the idle slot green (shop-green) runs 2 task(s)"),
        "{detail}"
    );
    assert!(
        !detail.contains("--service shop-green --desired-count 0"),
        "never advise removing what production ran: {detail}"
    );

    let notices = live_slot_notices(&world.published().await);
    assert_eq!(notices.len(), 1, "{notices:?}");
    assert!(
        notices[0].contains("production sends 100% to blue"),
        "{}",
        notices[0]
    );
    assert!(
        notices[0].contains(
            "aws ecs update-service --cluster shop-cluster --service shop-blue --desired-count 2"
        ),
        "the repair command: {}",
        notices[0]
    );
    // The metric the stack's alarm watches, for this service and both violations.
    let guarded = bluegreen::guard::check(&world.ctx, &world.config())
        .await
        .unwrap();
    let metric: serde_json::Value =
        serde_json::from_str(guarded.metric.as_deref().expect("a metric line")).unwrap();
    assert_eq!(metric[bluegreen::metrics::LIVE_SLOT_VIOLATIONS], 2);
    assert_eq!(metric["service"], "shop");

    // Told once, however many sweeps see it.
    guard_answers(&world).await;
    assert_eq!(live_slot_notices(&world.published().await).len(), 1);

    let status = bluegreen_ops::status::of(&world.ctx, world.config())
        .await
        .unwrap();
    assert_eq!(status.production, "blue 100%");
    assert_eq!(status.guard.len(), 2, "{:?}", status.guard);
    let codes: Vec<&str> = bluegreen_ops::doctor::service(&world.ctx, &world.config())
        .await
        .into_iter()
        .map(|f| f.code)
        .collect();
    for code in ["production-on-empty-slot", "idle-slot-running"] {
        assert!(codes.contains(&code), "doctor: {codes:?}");
    }

    // Nothing was repaired or moved without `guard.repair`.
    assert_eq!(world.service(Slot::Blue).await.1, 0);
    assert_eq!(world.production().await.live().unwrap(), Slot::Blue);
}

/// `guard.repair` makes the one unambiguous repair: an apply swapped the slots' counts (blue,
/// which production forwards to, at 0; green running the same release) — blue is scaled back
/// to green's count under the lock, and no traffic moves.
#[tokio::test]
async fn with_guard_repair_a_live_slot_reset_to_zero_is_scaled_back_and_nothing_moves() {
    let world = World::build().await.with_topic();
    let mut config = world.config();
    config.guard.repair = true;
    world.put_config(&config).await;
    world.scale(Slot::Blue, 0).await;
    world.settle(Slot::Blue, "COMPLETED").await;
    world.scale(Slot::Green, 2).await;
    world.settle(Slot::Green, "COMPLETED").await;

    let answers = guard_answers(&world).await;
    assert_eq!(answers.len(), 1, "{answers:?}");
    assert!(
        answers[0]
            .detail
            .contains("repaired (guard.repair): blue (shop-blue) scaled to 2"),
        "{}",
        answers[0].detail
    );
    assert_eq!(
        world.service(Slot::Blue).await.1,
        2,
        "back to production's count"
    );
    assert_eq!(
        world.production().await.live().unwrap(),
        Slot::Blue,
        "no traffic moved"
    );
    assert_eq!(
        world.lock_holder().await,
        None,
        "the repair's hold is released"
    );
    let notices = live_slot_notices(&world.published().await);
    assert!(
        notices[0].contains("repaired (guard.repair)"),
        "{notices:?}"
    );
}

/// After a route was reverted onto the previous release, scaling that slot up would roll
/// production back to the old image: even with `guard.repair` the guard only reports, and
/// never advises removing the slot that ran production.
#[tokio::test]
async fn a_reverted_route_onto_the_previous_release_is_not_repaired() {
    let world = World::build().await.with_topic();
    let mut config = world.config();
    config.guard.repair = true;
    world.put_config(&config).await;
    deployed_to_green(&world).await;
    apply_reverts_the_route(&world).await;
    let answers = guard_answers(&world).await;
    assert_eq!(answers.len(), 1, "{answers:?}");
    assert!(
        !answers[0].detail.contains("repaired"),
        "{}",
        answers[0].detail
    );
    assert!(
        answers[0].detail.contains("keep shop-green"),
        "no advice to scale the old production down: {}",
        answers[0].detail
    );
    assert_eq!(world.service(Slot::Blue).await.1, 0);
    assert_eq!(world.service(Slot::Green).await.1, 2);
}

/// While a deployment holds the service its slots are in between on purpose: not judged.
#[tokio::test]
async fn a_service_a_deployment_holds_is_not_judged() {
    let world = World::build().await.with_topic();
    let _id = deploy_to_approval(&world).await;
    // Pre-prod runs on green while production is on blue: a deployment's normal shape.
    let guarded = bluegreen::guard::check(&world.ctx, &world.config())
        .await
        .unwrap();
    assert_eq!(guarded.violations, None);
    assert!(live_slot_notices(&world.published().await).is_empty());
}

/// Issue 26: a host rule (or an HTTP listener) added outside bluegreen still forwards to the
/// slot production left, which runs nothing: production's own route is fine, that host is
/// down. The sweep reports each route by name; status and doctor show it.
#[tokio::test]
async fn another_route_left_on_the_scaled_down_slot_is_reported_by_the_next_sweep() {
    let world = World::build().await.with_topic();
    deployed_to_green(&world).await;
    let [host, admin, http] = world.more_routes_to_blue().await;
    let answers = guard_answers(&world).await;
    assert_eq!(answers.len(), 1, "{answers:?}");
    let detail = &answers[0].detail;
    for route in [&host, &admin, &http] {
        assert!(detail.contains(route.as_str()), "names {route}: {detail}");
    }
    assert!(detail.contains("which runs no task"), "{detail}");
    let codes: Vec<&str> = bluegreen_ops::doctor::service(&world.ctx, &world.config())
        .await
        .iter()
        .map(|f| f.code)
        .collect();
    assert!(codes.contains(&"route-on-empty-slot"), "{codes:?}");
}
