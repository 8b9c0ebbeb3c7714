//! Issue 25 item 2: pre-prod reached through a test rule on the production listener instead of
//! a test listener on its own port. Where requests go is asserted through a stand-in of the
//! production listener that routes each request by the rules the emulator holds
//! (`bluegreen_tests::alb`): with the deployment's preview header to pre-prod's target group,
//! without it (or with another deployment's) to production's.

use bluegreen::Slot;
use bluegreen::config::Traffic;
use bluegreen::naming::{TAG_DEPLOYMENT, TAG_MANAGED, TAG_ROLE};
use bluegreen::ports::load_balancing::{ForwardRule, RuleState};
use bluegreen::record::Status;
use bluegreen::steps::{abort, finish, rollback, teardown};
use bluegreen::test_rule;
use bluegreen_tests::World;
use bluegreen_tests::alb::ListenerFront;

use crate::common::*;

const HEADER: &str = "X-Bluegreen-Preview";

/// The test rules on the production listener.
async fn test_rules(world: &World) -> Vec<RuleState> {
    world
        .ctx
        .ports
        .load_balancing
        .rules(&world.production_listener)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| {
            r.tags
                .iter()
                .any(|(k, v)| k == TAG_ROLE && v == test_rule::ROLE)
        })
        .collect()
}

/// Another team's host rules on the production listener at `priorities`, forwarding to a
/// target group of neither slot.
async fn other_teams_at(world: &World, priorities: std::ops::Range<i32>) {
    let other_team = world.create_target_group("other-team").await;
    for priority in priorities {
        let rule = ForwardRule {
            priority,
            conditions: vec![bluegreen::ports::load_balancing::Condition {
                field: "host-header".into(),
                header_name: None,
                values: vec![format!("team{priority}.example.com")],
            }],
            target_group_arn: other_team.clone(),
            tags: Vec::new(),
        };
        world
            .ctx
            .ports
            .load_balancing
            .create_forward_rule(&world.production_listener, &rule)
            .await
            .unwrap();
    }
}

/// Where a request for the shop goes, with these headers.
async fn answered_by(front: &ListenerFront, headers: &[(&str, &str)]) -> Option<String> {
    front
        .get("/health", Some("shop.example.com"), headers)
        .await
}

#[tokio::test]
async fn a_test_rule_shows_pre_prod_only_to_the_deployments_header_and_goes_when_it_finishes() {
    let world = World::build().await;
    let front = ListenerFront::start(&world.ctx, &world.production_listener).await;
    world.use_test_rule(&front.url).await;
    let blue = Some(world.tg(Slot::Blue).to_owned());
    let green = Some(world.tg(Slot::Green).to_owned());
    let id = prepare_push(&world, "v2", "event-1").await;
    sync(&world, &id).await;
    launch(&world, &id).await;

    // Added at the launch above the production rule (priority 10; 9 stays the maintenance
    // page's), matching only the deployment's header, forwarding to pre-prod's slot; its probe
    // after it answers only the probe's header value.
    let rules = test_rules(&world).await;
    assert_eq!(rules.len(), 2, "{rules:?}");
    let forward = rules.iter().find(|r| !r.answers_itself).expect("the rule");
    assert_eq!(forward.priority, Some(7));
    assert_eq!(forward.target_groups, [world.tg(Slot::Green).to_owned()]);
    assert_eq!(
        forward.conditions,
        test_rule::conditions(&Default::default(), &id)
    );
    let probe = rules.iter().find(|r| r.answers_itself).expect("the probe");
    assert_eq!(probe.priority, Some(8), "the probe comes after the rule");
    assert_eq!(
        probe.conditions,
        test_rule::conditions(&Default::default(), &format!("{id}-probe"))
    );
    // Ordinary requests, with or without the host, and a guess at the header: production.
    assert_eq!(answered_by(&front, &[]).await, blue);
    assert_eq!(front.get("/health", None, &[]).await, blue);
    assert_eq!(answered_by(&front, &[(HEADER, "shop-guess")]).await, blue);
    assert_eq!(
        answered_by(&front, &[(HEADER, &id.to_uppercase())]).await,
        green
    );
    assert_eq!(
        answered_by(&front, &[("x-bluegreen-preview", &id)]).await,
        green
    );

    let migrated = migrate_with(&world, &id, Some(0)).await.expect("migrate");
    assert!(matches!(migrated, bluegreen::poll::Poll::Done { .. }));
    let before = front.routed().len();
    let healthy = health(&world, &id).await.expect("health");
    assert!(
        matches!(healthy, bluegreen::poll::Poll::Done { .. }),
        "{healthy:?}"
    );
    let mut checks: Vec<_> = front.routed().split_off(before);
    let probe = checks.remove(0);
    assert_eq!(
        (probe.preview, probe.target_group),
        (Some(format!("{id}-probe")), None),
        "the probe came first and was answered by the probe rule"
    );
    assert_eq!(checks.len(), 2, "two rounds of one check: {checks:?}");
    assert!(
        checks
            .iter()
            .all(|c| c.preview.as_deref() == Some(id.as_str()) && c.target_group == green),
        "every smoke check carried the header and reached pre-prod: {checks:?}"
    );

    request_approval(&world, &id).await;
    bluegreen::steps::approval::decide(&world.ctx, &id, &decision(true))
        .await
        .unwrap();
    switch_all(&world, &id).await;
    assert_eq!(answered_by(&front, &[]).await, green, "production on green");
    let ended = finish::run(&world.ctx, &id_ref(&id)).await.expect("finish");
    assert_eq!(ended.status, Status::Succeeded);
    assert_eq!(
        test_rules(&world).await,
        [],
        "the rule went with the deployment"
    );
    assert_eq!(answered_by(&front, &[(HEADER, &id)]).await, green);
    assert_eq!(world.service(Slot::Blue).await.1, 0, "blue scaled to 0");
}

/// An abort scales pre-prod down under its own test rule (pre-prod's route, never one that
/// keeps a slot up) and removes the rule; a rerun answers the same.
#[tokio::test]
async fn an_abort_removes_the_test_rule_and_leaves_production_where_it_was() {
    let world = World::build().await;
    let front = ListenerFront::start(&world.ctx, &world.production_listener).await;
    world.use_test_rule(&front.url).await;
    let id = deploy_to_health(&world).await;
    assert_eq!(test_rules(&world).await.len(), 2, "the rule and its probe");
    let ended = abort::run(&world.ctx, &failure(&id, "HealthCheckFailed"))
        .await
        .expect("abort");
    assert_eq!(ended.status, Status::Aborted);
    assert_eq!(test_rules(&world).await, []);
    assert_eq!(
        world.service(Slot::Green).await.1,
        0,
        "pre-prod scaled down"
    );
    let blue = Some(world.tg(Slot::Blue).to_owned());
    assert_eq!(answered_by(&front, &[(HEADER, &id)]).await, blue);
    let again = abort::run(&world.ctx, &failure(&id, "HealthCheckFailed"))
        .await
        .expect("abort again");
    assert_eq!(again.status, Status::Aborted);
}

/// A rollback after the switch: production back on blue, the rule gone, green scaled down.
#[tokio::test]
async fn a_rollback_removes_the_test_rule_and_scales_the_failed_slot_down() {
    let world = World::build().await;
    let front = ListenerFront::start(&world.ctx, &world.production_listener).await;
    world.use_test_rule(&front.url).await;
    let id = deploy_to_switch(&world).await;
    let ended = rollback::run(&world.ctx, &failure(&id, "BakeFailed"))
        .await
        .expect("rollback");
    assert_eq!(ended.status, Status::RolledBack);
    assert_eq!(test_rules(&world).await, []);
    let blue = Some(world.tg(Slot::Blue).to_owned());
    assert_eq!(answered_by(&front, &[]).await, blue);
    assert_eq!(answered_by(&front, &[(HEADER, &id)]).await, blue);
    assert_eq!(
        world.service(Slot::Green).await.1,
        0,
        "the failed slot scaled down"
    );
}

/// A test rule an ending could not remove (its deployment is over, or has no record) goes at
/// the scheduled teardown; a running deployment's stays.
#[tokio::test]
async fn teardown_removes_test_rules_of_ended_deployments_only() {
    let world = World::build().await;
    let front = ListenerFront::start(&world.ctx, &world.production_listener).await;
    world.use_test_rule(&front.url).await;
    let id = launched(&world).await;
    let left = ForwardRule {
        priority: 5,
        conditions: test_rule::conditions(&Default::default(), "shop-gone"),
        target_group_arn: world.tg(Slot::Green).to_owned(),
        tags: [
            (TAG_MANAGED, "true"),
            (TAG_DEPLOYMENT, "shop-gone"),
            (TAG_ROLE, test_rule::ROLE),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .to_vec(),
    };
    world
        .ctx
        .ports
        .load_balancing
        .create_forward_rule(&world.production_listener, &left)
        .await
        .unwrap();
    assert_eq!(test_rules(&world).await.len(), 3);
    let report = teardown::run(&world.ctx).await.unwrap();
    assert!(
        report
            .removed
            .iter()
            .any(|r| r.contains("test rule") && r.contains("shop-gone")),
        "{report:?}"
    );
    let kept = test_rules(&world).await;
    assert_eq!(kept.len(), 2, "{kept:?}");
    assert!(
        kept.iter()
            .all(|r| r.tags.contains(&(TAG_DEPLOYMENT.to_owned(), id.clone())))
    );
}

/// A launch that stopped after adding the rule but before its probe: the next attempt
/// replaces the lone rule with the pair — also when the lone rule's own neighbour would have
/// been the only place left for the probe.
#[tokio::test]
async fn a_half_made_pair_is_replaced_by_the_next_attempt() {
    let world = World::build().await;
    let front = ListenerFront::start(&world.ctx, &world.production_listener).await;
    world.use_test_rule(&front.url).await;
    other_teams_at(&world, 1..7).await;
    let balancing = &world.ctx.ports.load_balancing;
    let id = prepare_push(&world, "v2", "event-1").await;
    let lone = ForwardRule {
        priority: 8,
        conditions: test_rule::conditions(&Default::default(), &id),
        target_group_arn: world.tg(Slot::Green).to_owned(),
        tags: [
            (TAG_MANAGED, "true"),
            (TAG_DEPLOYMENT, id.as_str()),
            (TAG_ROLE, test_rule::ROLE),
            (bluegreen::naming::TAG_SERVICE, "shop"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .to_vec(),
    };
    balancing
        .create_forward_rule(&world.production_listener, &lone)
        .await
        .unwrap();
    launch(&world, &id).await;
    let rules = test_rules(&world).await;
    let priority = |probe: bool| {
        rules
            .iter()
            .find(|r| r.answers_itself == probe)
            .and_then(|r| r.priority)
    };
    assert_eq!(
        (priority(false), priority(true)),
        (Some(7), Some(8)),
        "{rules:?}"
    );
    assert_eq!(rules.len(), 2);
}

/// No free priority above the production rule: the launch is refused before pre-prod runs,
/// naming the rule in the way, and doctor says so beforehand.
#[tokio::test]
async fn a_production_rule_with_no_room_above_it_refuses_the_launch_by_name() {
    let world = World::build().await;
    let front = ListenerFront::start(&world.ctx, &world.production_listener).await;
    let config = world.use_test_rule(&front.url).await;
    other_teams_at(&world, 1..9).await;
    let findings = bluegreen_ops::doctor::service(&world.ctx, &config).await;
    assert!(
        findings.iter().any(|f| f.code == "test-rule-no-room"),
        "{findings:?}"
    );
    let id = prepare_push(&world, "v2", "event-1").await;
    let err = bluegreen::steps::launch_preprod::start(&world.ctx, &id_ref(&id))
        .await
        .expect_err("no room for the test rule");
    assert_eq!(err.name(), "UnexpectedRouting", "{err}");
    assert!(err.to_string().contains("priority 10"), "{err}");
    assert_eq!(world.service(Slot::Green).await.1, 0, "nothing launched");
    assert_eq!(test_rules(&world).await, []);
}

/// The test rule fails closed: when requests with the header do not reach it (here its
/// `source_ips` do not hold the checks' address, as behind a NAT) the smoke checks would be
/// answered by production and pass for the wrong release; the probe sees it first and the
/// health check fails with that evidence, no smoke check counted.
#[tokio::test]
async fn a_test_rule_the_checks_do_not_reach_fails_the_health_check_instead_of_testing_production()
{
    let world = World::build().await;
    let front = ListenerFront::start(&world.ctx, &world.production_listener).await;
    let mut config = world.use_test_rule(&front.url).await;
    if let bluegreen::config::Traffic::Listener { test_rule, .. } = &mut config.traffic {
        test_rule.as_mut().unwrap().source_ips = vec!["10.0.0.0/8".into()];
    }
    world.put_config(&config).await;
    let id = prepare_push(&world, "v2", "event-1").await;
    sync(&world, &id).await;
    launch(&world, &id).await;
    migrate_with(&world, &id, Some(0)).await.expect("migrate");
    let before = front.routed().len();
    let err = health_past_deadline(&world, &id)
        .await
        .expect_err("the checks never reached pre-prod");
    assert_eq!(err.name(), "HealthCheckFailed");
    let text = err.to_string();
    assert!(
        text.contains("do not reach the test rule") && text.contains("source_ips"),
        "{text}"
    );
    let sent = front.routed().split_off(before);
    assert_eq!(sent.len(), 1, "only the probe was sent: {sent:?}");
    assert_eq!(
        sent[0].target_group.as_deref(),
        Some(world.tg(Slot::Blue)),
        "and production answered it"
    );
}

/// A route of the service above the production rule (an `/api/*` rule, tagged for bluegreen)
/// bounds where the test rule goes: a smoke check on its path still reaches pre-prod.
#[tokio::test]
async fn a_route_of_the_service_above_the_production_rule_never_catches_the_header() {
    let world = World::build().await;
    let front = ListenerFront::start(&world.ctx, &world.production_listener).await;
    world.use_test_rule(&front.url).await;
    world
        .ctx
        .ports
        .load_balancing
        .create_forward_rule(
            &world.production_listener,
            &ForwardRule {
                priority: 5,
                conditions: vec![bluegreen::ports::load_balancing::Condition {
                    field: "path-pattern".into(),
                    header_name: None,
                    values: vec!["/api/*".into()],
                }],
                target_group_arn: world.tg(Slot::Blue).to_owned(),
                tags: vec![(TAG_MANAGED.to_owned(), "true".to_owned())],
            },
        )
        .await
        .unwrap();
    let id = launched(&world).await;
    let priorities: Vec<_> = test_rules(&world)
        .await
        .iter()
        .filter_map(|r| r.priority)
        .collect();
    assert!(
        priorities.iter().all(|p| *p < 4),
        "above the /api/* rule (4 stays its page's place): {priorities:?}"
    );
    let host = Some("shop.example.com");
    let with_header = front.get("/api/health", host, &[(HEADER, &id)]).await;
    assert_eq!(with_header.as_deref(), Some(world.tg(Slot::Green)));
    let without = front.get("/api/health", host, &[]).await;
    assert_eq!(without.as_deref(), Some(world.tg(Slot::Blue)));
}

/// `adopt --test-rule` on an HTTPS service routed by a host rule: no test listener, the test
/// URL on the production host name (what the certificate names) and port, and green's target
/// group behind the production rule at weight 0 (ECS needs it behind the load balancer).
#[tokio::test]
async fn adopt_with_a_test_rule_uses_the_production_host_over_https() {
    use bluegreen_ops::adopt::{Request, adopt};
    use bluegreen_tests::{CLUSTER, MOTO_CALLER, REPOSITORY};
    let world = World::build().await;
    let ctx = &world.ctx;
    world.use_rule_mode().await;
    world.default_action_not_found().await;
    world.production_over_https().await;
    world.only_the_first_slot().await;
    bluegreen::config_store::ConfigStore::new(ctx)
        .delete("shop")
        .await
        .unwrap();
    let request = |test_rule: bool| Request {
        cluster: CLUSTER.into(),
        service: "shop-blue".into(),
        name: None,
        production_listener_arn: None,
        test_listener_arn: None,
        test_port: (!test_rule).then_some(8443),
        test_rule,
        host: None,
        repository: REPOSITORY.into(),
        container: None,
        tags: vec!["v*".into()],
        approvers: vec![MOTO_CALLER.into()],
        test_url: None,
        dns: None,
    };
    // Planned with a test listener: the production host on the test port.
    let planned = adopt(ctx, &request(false), false).await.expect("plan");
    assert_eq!(
        planned.config.health.test_url.as_deref(),
        Some("https://shop.example.com:8443")
    );
    let adopted = adopt(ctx, &request(true), true)
        .await
        .expect("adopt --test-rule");
    let config = adopted.config;
    assert_eq!(
        config.health.test_url.as_deref(),
        Some("https://shop.example.com")
    );
    let Traffic::Listener {
        test_listener_arn,
        test_rule,
        production_rule_arn,
        ..
    } = &config.traffic
    else {
        panic!("listener mode")
    };
    assert_eq!(test_listener_arn, &None);
    assert!(test_rule.is_some());
    let rule = production_rule_arn.clone().expect("rule mode");
    let groups = ctx
        .ports
        .load_balancing
        .forward(&bluegreen::ports::load_balancing::Route::Rule(rule))
        .await
        .unwrap()
        .unwrap();
    let weight_of = |tg: &str| {
        groups
            .iter()
            .find(|g| g.target_group_arn == tg)
            .and_then(|g| g.weight)
    };
    assert_eq!(weight_of(&config.slots.blue.target_group_arn), Some(100));
    assert_eq!(weight_of(&config.slots.green.target_group_arn), Some(0));
    assert!(config.problems().is_empty(), "{:?}", config.problems());
}

/// An HTTPS service routed by the listener's default action has no host name to read: adopt
/// refuses rather than write a test URL the certificate would not match, and takes `--host`.
#[tokio::test]
async fn adopt_refuses_an_https_test_url_without_a_host_name_and_takes_one_given() {
    use bluegreen_ops::adopt::{Request, adopt};
    use bluegreen_tests::{CLUSTER, MOTO_CALLER, REPOSITORY};
    let world = World::build().await;
    let ctx = &world.ctx;
    world.production_over_https().await;
    world.only_the_first_slot().await;
    bluegreen::config_store::ConfigStore::new(ctx)
        .delete("shop")
        .await
        .unwrap();
    let request = |host: Option<&str>| Request {
        cluster: CLUSTER.into(),
        service: "shop-blue".into(),
        name: None,
        production_listener_arn: None,
        test_listener_arn: None,
        test_port: Some(8443),
        test_rule: false,
        host: host.map(str::to_owned),
        repository: REPOSITORY.into(),
        container: None,
        tags: vec!["v*".into()],
        approvers: vec![MOTO_CALLER.into()],
        test_url: None,
        dns: None,
    };
    let err = adopt(ctx, &request(None), false)
        .await
        .expect_err("no host");
    assert_eq!(err.name(), "SetupRefused");
    assert!(err.to_string().contains("--host"), "{err}");
    let planned = adopt(ctx, &request(Some("api.example.com")), false)
        .await
        .expect("plan with --host");
    assert_eq!(
        planned.config.health.test_url.as_deref(),
        Some("https://api.example.com:8443")
    );

    // A Route 53 alias naming the load balancer gives the host without --host.
    alias_to_the_load_balancer(&world, "www.example.com.").await;
    let planned = adopt(ctx, &request(None), false)
        .await
        .expect("plan with the alias's name");
    assert_eq!(
        planned.config.health.test_url.as_deref(),
        Some("https://www.example.com:8443")
    );
}

/// An A alias `name` → the world's ALB, written as Route 53 answers it (`dualstack.`, any
/// case, a trailing dot).
async fn alias_to_the_load_balancer(world: &World, name: &str) {
    use aws_sdk_route53::types::{
        AliasTarget, Change, ChangeAction, ChangeBatch, ResourceRecordSet, RrType,
    };
    let balancer = world
        .aws
        .elb
        .describe_load_balancers()
        .names("shop-alb")
        .send()
        .await
        .unwrap()
        .load_balancers
        .unwrap()
        .remove(0);
    let alias = ResourceRecordSet::builder()
        .name(name)
        .r#type(RrType::A)
        .alias_target(
            AliasTarget::builder()
                .hosted_zone_id(balancer.canonical_hosted_zone_id.unwrap_or_default())
                .dns_name(format!(
                    "dualstack.{}.",
                    balancer.dns_name.unwrap_or_default().to_uppercase()
                ))
                .evaluate_target_health(false)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    let change = Change::builder()
        .action(ChangeAction::Create)
        .resource_record_set(alias)
        .build()
        .unwrap();
    world
        .aws
        .route53
        .change_resource_record_sets()
        .hosted_zone_id(&world.zone_id)
        .change_batch(ChangeBatch::builder().changes(change).build().unwrap())
        .send()
        .await
        .expect("an alias to the load balancer");
}
