//! Issue 26 item 1: routes as a set. A service on a shared ALB is reached by a host rule, an
//! `/admin/*` rule and an HTTP listener besides its production listener. With
//! `traffic.routes = "auto"` (or the routes listed) every one moves with production, step by
//! step, and is read back; whatever the setting, no slot is scaled to 0 while a route still
//! forwards to it. Asserted from ELB.

use aws_sdk_elasticloadbalancingv2::operation::describe_target_groups::DescribeTargetGroupsError;
use aws_sdk_elasticloadbalancingv2::operation::modify_rule::ModifyRuleError;
use aws_smithy_mocks::{MockResponseInterceptor, RuleMode, mock};
use bluegreen::Slot;
use bluegreen::config::{Routes, RoutesWord, ServiceConfig, Shift, Traffic};
use bluegreen::ports::load_balancing::Route;
use bluegreen::routes::route_of;
use bluegreen::steps::{finish, switch};
use bluegreen_ops::direct::elb;
use bluegreen_tests::World;

use crate::common::*;

/// `(blue, green)` weights of a route, as ELB has them (a one-group forward without a weight
/// is all traffic).
async fn weights(world: &World, route: &Route) -> (i32, i32) {
    let groups = world
        .ctx
        .ports
        .load_balancing
        .forward(route)
        .await
        .unwrap()
        .expect("a forward action");
    let single = groups.len() == 1;
    let of = |slot: Slot| {
        groups
            .iter()
            .filter(|g| g.target_group_arn == world.tg(slot))
            .map(|g| g.weight.unwrap_or(if single { 100 } else { 0 }))
            .sum::<i32>()
    };
    (of(Slot::Blue), of(Slot::Green))
}

fn with_routes(mut config: ServiceConfig, chosen: Routes) -> ServiceConfig {
    if let Traffic::Listener { routes, .. } = &mut config.traffic {
        *routes = chosen;
    }
    config
}

/// The production listener and the three other routes, all on blue.
async fn shared_alb(world: &World, routes: Routes) -> Vec<Route> {
    let more = world.more_routes_to_blue().await;
    world.put_config(&with_routes(world.config(), routes)).await;
    let mut all = vec![Route::Listener(world.production_listener.clone())];
    all.extend(more.iter().map(|arn| route_of(arn)));
    all
}

async fn all_weights(world: &World, routes: &[Route]) -> Vec<(i32, i32)> {
    let mut out = Vec::new();
    for route in routes {
        out.push(weights(world, route).await);
    }
    out
}

#[tokio::test]
async fn every_route_to_the_service_moves_with_production_and_finish_leaves_none_on_the_old_slot() {
    let world = World::build().await;
    let routes = shared_alb(&world, Routes::Word(RoutesWord::Auto)).await;
    let id = deploy_to_switch(&world).await;
    assert_eq!(
        all_weights(&world, &routes).await,
        [(0, 100); 4],
        "every route on green"
    );
    assert_eq!(
        weights(&world, &Route::Listener(world.test_listener.clone())).await,
        (100, 0),
        "the test listener is pre-prod's: on blue now, never moved as production"
    );
    finish::run(&world.ctx, &id_ref(&id)).await.unwrap();
    assert_eq!(world.service(Slot::Blue).await.1, 0, "blue scaled to 0");
    let onto_blue: Vec<_> = world
        .ctx
        .ports
        .load_balancing
        .routes_to(&[world.tg(Slot::Blue).to_owned()])
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.route != Route::Listener(world.test_listener.clone()))
        .filter(|r| {
            r.groups
                .iter()
                .any(|g| g.target_group_arn == world.tg(Slot::Blue) && g.weight != Some(0))
        })
        .collect();
    assert_eq!(onto_blue, [], "nothing forwards to the scaled-down slot");
}

/// By default only the production listener moves; the three routes the switch left on blue
/// make finish refuse, naming each, and nothing is scaled down.
#[tokio::test]
async fn a_route_left_on_the_old_slot_makes_finish_refuse_and_keeps_the_slot_running() {
    let world = World::build().await;
    let routes = shared_alb(&world, Routes::default()).await;
    let id = deploy_to_switch(&world).await;
    assert_eq!(
        all_weights(&world, &routes).await,
        [(0, 100), (100, 0), (100, 0), (100, 0)]
    );
    let err = finish::run(&world.ctx, &id_ref(&id)).await.unwrap_err();
    assert_eq!(err.name(), "UnexpectedRouting", "{err}");
    let text = err.to_string();
    for route in &routes[1..] {
        let (Route::Listener(arn) | Route::Rule(arn)) = route;
        assert!(text.contains(arn.as_str()), "names {arn}: {text}");
    }
    assert_eq!(world.service(Slot::Blue).await.1, 2, "blue keeps its tasks");
    assert!(!record(&world, &id).await.status.is_terminal());
    assert_eq!(world.lock_holder().await.as_deref(), Some(id.as_str()));
    // status shows each of them where it is.
    let status = bluegreen_ops::status::of(&world.ctx, world.config())
        .await
        .unwrap();
    assert_eq!(status.production, "green 100%");
    assert_eq!(status.routes.len(), 3, "{:?}", status.routes);
    assert!(
        status.routes.iter().all(|r| r.ends_with(": blue 100%")),
        "{:?}",
        status.routes
    );
}

/// A canary moves every listed route to the canary share, then everything.
#[tokio::test]
async fn a_canary_moves_every_listed_route_step_by_step() {
    let world = World::build().await;
    let more = world.more_routes_to_blue().await;
    let mut config = with_routes(world.config(), Routes::Listed(more.to_vec()));
    if let Traffic::Listener { shift, .. } = &mut config.traffic {
        *shift = Some(Shift::Canary {
            percent: 10,
            interval_seconds: 300,
        });
    }
    world.put_config(&config).await;
    let mut routes = vec![Route::Listener(world.production_listener.clone())];
    routes.extend(more.iter().map(|arn| route_of(arn)));
    let id = deploy_to_approval(&world).await;
    approve(&world, &id).await;
    let started = switch::start(&world.ctx, &id_ref(&id)).await.unwrap();
    assert_eq!(all_weights(&world, &routes).await, [(90, 10); 4]);
    world.advance(chrono::Duration::seconds(301));
    switch::check(&world.ctx, &check_of(&started))
        .await
        .unwrap();
    assert_eq!(all_weights(&world, &routes).await, [(0, 100); 4]);
}

/// A route bluegreen may not modify (untagged) refuses the switch before anything moves:
/// half a service's routes on the new release is no state to leave production in.
#[tokio::test]
async fn an_untagged_route_refuses_the_switch_before_anything_moves() {
    let world = World::build().await;
    let routes = shared_alb(&world, Routes::Word(RoutesWord::Auto)).await;
    let Route::Listener(http) = &routes[3] else {
        unreachable!()
    };
    elb::remove_tags(&world.ctx, http, &["bluegreen:managed"])
        .await
        .unwrap();
    let id = deploy_to_approval(&world).await;
    approve(&world, &id).await;
    let err = switch::start(&world.ctx, &id_ref(&id)).await.unwrap_err();
    assert!(
        err.to_string().contains(http.as_str()) && err.to_string().contains("not tagged"),
        "{err}"
    );
    assert_eq!(all_weights(&world, &routes).await, [(100, 0); 4]);
}

/// Whether an ELB resource is tagged `bluegreen:managed=true`.
async fn managed(ctx: &bluegreen::Context, arn: &str) -> bool {
    bluegreen_ops::direct::elb::tags_of(ctx, arn)
        .await
        .unwrap()
        .unwrap_or_default()
        .iter()
        .any(|(k, v)| k == "bluegreen:managed" && v == "true")
}

/// adopt takes a service a shared load balancer routes by rules (the production listener's
/// default answers 404): the first rule becomes production, the other routes are listed to
/// move with it, each tagged — and they do move, all of them, and undo takes the tags back.
#[tokio::test]
async fn adopt_takes_a_rule_routed_service_and_every_route_moves_with_it() {
    use bluegreen_ops::adopt::{Request, adopt, undo};
    use bluegreen_tests::{CLUSTER, MOTO_CALLER, REPOSITORY};
    let world = World::build().await;
    let ctx = &world.ctx;
    let [host, admin, http] = world.more_routes_to_blue().await;
    elb::delete_listener(ctx, &http).await.unwrap();
    world.default_action_not_found().await;
    world.only_the_first_slot().await;
    bluegreen::config_store::ConfigStore::new(ctx)
        .delete("shop")
        .await
        .unwrap();
    for rule in [&host, &admin] {
        elb::remove_tags(ctx, rule, &["bluegreen:managed"])
            .await
            .unwrap();
    }
    let request = Request {
        cluster: CLUSTER.into(),
        service: "shop-blue".into(),
        name: None,
        production_listener_arn: None,
        test_listener_arn: None,
        test_port: Some(8443),
        test_rule: false,
        host: None,
        repository: REPOSITORY.into(),
        container: None,
        tags: vec!["v*".into()],
        approvers: vec![MOTO_CALLER.into()],
        test_url: Some(world.smoke.url.clone()),
        dns: None,
    };
    let adopted = adopt(ctx, &request, true).await.expect("adopt --apply");
    let config = adopted.config;
    let Traffic::Listener {
        production_listener_arn,
        production_rule_arn,
        routes,
        ..
    } = &config.traffic
    else {
        panic!("listener mode")
    };
    assert_eq!(production_listener_arn, &world.production_listener);
    assert_eq!(production_rule_arn.as_deref(), Some(host.as_str()));
    assert_eq!(routes, &Routes::Listed(vec![admin.clone()]));
    assert!(managed(ctx, &host).await && managed(ctx, &admin).await);

    // What the switch does, then what finish checks.
    bluegreen::routing::set_production_verified(
        ctx,
        &config,
        Slot::Green,
        100,
        bluegreen::routing::Move::Forward,
    )
    .await
    .unwrap()
    .unwrap();
    let green = config.slots.green.target_group_arn.clone();
    for rule in [&host, &admin] {
        let groups = ctx
            .ports
            .load_balancing
            .forward(&Route::Rule(rule.clone()))
            .await
            .unwrap()
            .unwrap();
        let to_green: i32 = groups
            .iter()
            .filter(|g| g.target_group_arn == green)
            .map(|g| g.weight.unwrap_or(100))
            .sum();
        assert_eq!(to_green, 100, "{rule}: {groups:?}");
    }
    bluegreen::routing::ensure_unrouted(ctx, &config, Slot::Blue, "finish")
        .await
        .expect("nothing left on blue");

    bluegreen::routing::set_production_verified(
        ctx,
        &config,
        Slot::Blue,
        100,
        bluegreen::routing::Move::Back,
    )
    .await
    .unwrap()
    .unwrap();
    undo(ctx, "shop").await.expect("undo");
    assert!(
        !managed(ctx, &host).await && !managed(ctx, &admin).await,
        "tags taken back"
    );
}

/// A route that cannot be moved never holds production on the bad release. After a switch
/// of every route, an IaC apply drops the HTTP listener's tag; the bake fails: the rollback
/// moves production and every route it may back to blue, leaves that one — and green's tasks
/// that serve it — and says so.
#[tokio::test]
async fn a_rollback_moves_back_every_route_it_may_and_never_scales_down_under_the_rest() {
    use bluegreen::steps::rollback;
    let world = World::build().await;
    let routes = shared_alb(&world, Routes::Word(RoutesWord::Auto)).await;
    let id = deploy_to_switch(&world).await;
    assert_eq!(all_weights(&world, &routes).await, [(0, 100); 4]);
    let Route::Listener(http) = &routes[3] else {
        unreachable!()
    };
    elb::remove_tags(&world.ctx, http, &["bluegreen:managed"])
        .await
        .unwrap();
    let green_tasks = world.service(Slot::Green).await.1;
    assert!(green_tasks > 0);
    let err = rollback::run(&world.ctx, &failure(&id, "BakeFailed"))
        .await
        .unwrap_err();
    assert_eq!(err.name(), "UnexpectedRouting", "{err}");
    assert!(err.to_string().contains(http.as_str()), "{err}");
    assert_eq!(
        all_weights(&world, &routes).await,
        [(100, 0), (100, 0), (100, 0), (0, 100)],
        "production and every movable route back on blue"
    );
    assert_eq!(
        world.service(Slot::Green).await.1,
        green_tasks,
        "green keeps serving the listener left on it"
    );
}

/// A switch attempt that moved production, and whose next write (the first other route) took
/// effect but lost its answer, is retried: the retry finds production already moved and
/// still moves every route left behind. It used to stop at production (nothing to move), and
/// finish then refused with the rest on the old slot: the deployment needed a person. Found
/// by the simulator (a shared ALB, `routes = "auto"`, a lost answer).
#[tokio::test]
async fn a_retried_switch_moves_the_routes_an_interrupted_attempt_left_behind() {
    let world = World::build().await;
    let routes = shared_alb(&world, Routes::Word(RoutesWord::Auto)).await;
    let id = deploy_to_approval(&world).await;
    bluegreen::steps::approval::decide(&world.ctx, &id, &decision(true))
        .await
        .expect("approve");
    // The first ModifyRule reaches ELB and takes effect; its answer is replaced by a
    // throttling error (a modeled error replaces the answer after the call went through, as a
    // timed-out or reset connection leaves it; the state machine retries both).
    let lost = mock!(aws_sdk_elasticloadbalancingv2::Client::modify_rule)
        .sequence()
        .error(|| ModifyRuleError::generic(throttling()))
        .build();
    let interrupted = with_elb_rule(&world, &lost);
    // The switch's start makes the first move.
    let err = switch::start(&interrupted, &id_ref(&id)).await.unwrap_err();
    assert!(err.is_retryable(), "{err}");
    let after_attempt = all_weights(&world, &routes).await;
    assert_eq!(after_attempt[0], (0, 100), "production moved");
    assert!(
        after_attempt[1..].contains(&(100, 0)),
        "the attempt left a route on blue: {after_attempt:?}"
    );

    // Step Functions retries the start with a healthy API, then checks.
    let started = switch::start(&world.ctx, &id_ref(&id))
        .await
        .expect("the retried start");
    let done = switch::check(&world.ctx, &check_of(&started))
        .await
        .expect("the check");
    assert!(
        matches!(done, bluegreen::poll::Poll::Done { .. }),
        "{done:?}"
    );
    assert_eq!(
        all_weights(&world, &routes).await,
        [(0, 100); 4],
        "every route on green"
    );
    finish::run(&world.ctx, &id_ref(&id))
        .await
        .expect("finish finds no route on blue");
    assert_eq!(world.service(Slot::Blue).await.1, 0, "blue scaled to 0");
}

/// A rollback that moved production back and could not read the other routes for now (a
/// throttled read) fails so that it is retried, and its retry moves them back. It used to take
/// the routes as unreadable for good: it moved production alone, its scale-down then refused
/// with the rest on the failed slot, and the deployment needed a person. Found by the
/// simulator (seeds 308, 1906, 5732, 6096 of the shared load balancer's first campaign).
#[tokio::test]
async fn a_rollback_that_cannot_read_the_other_routes_for_now_is_retried_and_moves_them_back() {
    let world = World::build().await;
    let routes = shared_alb(&world, Routes::Word(RoutesWord::Auto)).await;
    let id = deploy_to_switch(&world).await;
    // The first DescribeTargetGroups is where finding the other routes begins.
    let throttled = mock!(aws_sdk_elasticloadbalancingv2::Client::describe_target_groups)
        .sequence()
        .error(|| DescribeTargetGroupsError::generic(throttling()))
        .build();
    let between = rollback_interrupted_then_retried(&world, &routes, &id, &throttled).await;
    assert_eq!(between[0], (100, 0), "production moved back first");
    assert_eq!(world.service(Slot::Green).await.1, 0, "green scaled to 0");
}

/// Runs the rollback of `id` once with ELB answering `rule` (it must fail retryably), then
/// again as the definition's retry, which must put every route back on blue. Returns the
/// routes' weights between the two runs.
async fn rollback_interrupted_then_retried(
    world: &World,
    routes: &[Route],
    id: &str,
    rule: &aws_smithy_mocks::Rule,
) -> Vec<(i32, i32)> {
    use bluegreen::steps::rollback;
    let interrupted = with_elb_rule(world, rule);
    let err = rollback::run(&interrupted, &failure(id, "BakeFailed"))
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err}");
    let between = all_weights(world, routes).await;
    // The definition retries the Rollback state on Throttled.
    rollback::run(&world.ctx, &failure(id, "BakeFailed"))
        .await
        .expect("the retried rollback");
    assert_eq!(
        all_weights(world, routes).await,
        [(100, 0); 4],
        "every route back on blue"
    );
    between
}

/// A throttling error, as ELB answers one.
fn throttling() -> aws_smithy_types::error::ErrorMetadata {
    aws_smithy_types::error::ErrorMetadata::builder()
        .code("Throttling")
        .message("Rate exceeded")
        .build()
}

/// The world's context with ELB calls answered by `rule` where it matches (a modeled error
/// replaces the answer after the call reached ELB; others go through).
fn with_elb_rule(world: &World, rule: &aws_smithy_mocks::Rule) -> bluegreen::Context {
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

/// A move back tries every route before it answers a failure worth retrying: with the answer
/// of the first other route's write lost (the write took effect), production and every other
/// route are back on blue after the one attempt, and the rollback is still answered as
/// retryable — its retry finishes it.
#[tokio::test]
async fn a_rollback_moves_every_other_route_before_it_answers_a_throttled_one() {
    let world = World::build().await;
    let routes = shared_alb(&world, Routes::Word(RoutesWord::Auto)).await;
    let id = deploy_to_switch(&world).await;
    let throttled = mock!(aws_sdk_elasticloadbalancingv2::Client::modify_rule)
        .sequence()
        .error(|| ModifyRuleError::generic(throttling()))
        .build();
    let between = rollback_interrupted_then_retried(&world, &routes, &id, &throttled).await;
    // The throttled write took effect (its answer was replaced): every route was tried in the
    // one attempt, none skipped after the failure.
    assert_eq!(between, [(100, 0); 4]);
}
