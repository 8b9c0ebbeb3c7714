//! Issue 32 item 4: `adopt` of a service ECS already deploys blue/green stores an `engine =
//! "ecs"` config over what exists — its one service, target group and alternate, production
//! and test rules — and creates nothing: compared with everything adopt could touch before and
//! after (services with their load balancers, every target group, listener and rule with its
//! actions), tags and the stored config aside.

use aws_sdk_ecs::types::{
    AdvancedConfiguration, DeploymentConfiguration, DeploymentLifecycleHook,
    DeploymentLifecycleHookStage, DeploymentStrategy,
};
use aws_sdk_elasticloadbalancingv2::types::{
    Action, ActionTypeEnum, ForwardActionConfig, HostHeaderConditionConfig,
    HttpHeaderConditionConfig, RuleCondition, TargetGroupTuple,
};
use bluegreen::Slot;
use bluegreen::config::{Engine, Traffic};
use bluegreen::naming::TAG_MANAGED;
use bluegreen_ops::adopt::adopt;
use bluegreen_ops::direct::ecs;
use bluegreen_tests::{CLUSTER, World};

use crate::adopt_all_or_nothing::aws_state;
use crate::adopt_copies::{recreate_green, request};

const HOOK: &str = "arn:aws:lambda:us-east-1:123456789012:function:bluegreen-ecs-hook";

/// A rule of the production listener forwarding as ECS keeps it: green (production now) at
/// 100, blue (the alternate) at 0.
async fn ecs_rule(world: &World, priority: i32, condition: RuleCondition) -> String {
    let group = |tg: &str, weight| {
        TargetGroupTuple::builder()
            .target_group_arn(tg)
            .weight(weight)
            .build()
    };
    let forward = Action::builder()
        .r#type(ActionTypeEnum::Forward)
        .forward_config(
            ForwardActionConfig::builder()
                .target_groups(group(world.tg(Slot::Green), 100))
                .target_groups(group(world.tg(Slot::Blue), 0))
                .build(),
        )
        .build();
    world
        .aws
        .elb
        .create_rule()
        .listener_arn(&world.production_listener)
        .priority(priority)
        .conditions(condition)
        .actions(forward)
        .send()
        .await
        .expect("create rule")
        .rules
        .unwrap_or_default()
        .remove(0)
        .rule_arn
        .expect("rule arn")
}

/// ECS's production rule (a host) and test rule (the preview header) on the production
/// listener: `(production rule, test rule)`.
async fn ecs_rules(world: &World) -> (String, String) {
    let host = RuleCondition::builder()
        .field("host-header")
        .host_header_config(
            HostHeaderConditionConfig::builder()
                .values("shop.example.com")
                .build(),
        )
        .build();
    let header = RuleCondition::builder()
        .field("http-header")
        .http_header_config(
            HttpHeaderConditionConfig::builder()
                .http_header_name(bluegreen::config::PREVIEW_HEADER)
                .values("*")
                .build(),
        )
        .build();
    let test_rule = ecs_rule(world, 5, header).await;
    let production_rule = ecs_rule(world, 10, host).await;
    (production_rule, test_rule)
}

/// `shop-green` made a service on ECS's blue/green behind `rules`, with bluegreen's hook at
/// both gated stages when `gated`, its test rule when `with_test_rule`.
async fn on_ecs_blue_green(
    world: &World,
    rules: &(String, String),
    gated: bool,
    with_test_rule: bool,
) {
    let (production_rule, test_rule) = rules;
    let mut advanced = AdvancedConfiguration::builder()
        .alternate_target_group_arn(world.tg(Slot::Blue))
        .production_listener_rule(production_rule)
        .role_arn("arn:aws:iam::123456789012:role/ecs-infrastructure");
    if with_test_rule {
        advanced = advanced.test_listener_rule(test_rule);
    }
    let mut configuration = DeploymentConfiguration::builder()
        .strategy(DeploymentStrategy::BlueGreen)
        .bake_time_in_minutes(5);
    if gated {
        configuration = configuration.lifecycle_hooks(
            DeploymentLifecycleHook::builder()
                .hook_target_arn(HOOK)
                .role_arn("arn:aws:iam::123456789012:role/ecs-hook-invoke")
                .lifecycle_stages(DeploymentLifecycleHookStage::PostTestTrafficShift)
                .lifecycle_stages(DeploymentLifecycleHookStage::PostProductionTrafficShift)
                .build(),
        );
    }
    let (advanced, configuration) = (advanced.build(), configuration.build());
    recreate_green(
        world,
        |lb| lb.advanced_configuration(advanced),
        |create| create.deployment_configuration(configuration),
    )
    .await;
}

/// What adopt could create or change of AWS's shape: every line of [`aws_state`] but the
/// configs, without tags (adopt tags what bluegreen's roles may change).
async fn shape(world: &World) -> Vec<String> {
    aws_state(world)
        .await
        .into_iter()
        .filter(|line| !line.starts_with("config "))
        .map(|line| line.split(" tags ").next().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test]
async fn adopt_stores_an_ecs_config_for_a_service_on_ecs_blue_green_and_creates_nothing() {
    let world = World::build().await;
    let mut ctx = world.ctx.clone();
    ctx.settings.ecs_hook_arn = Some(HOOK.into());
    let rules = ecs_rules(&world).await;
    on_ecs_blue_green(&world, &rules, true, true).await;
    let production_rule = rules.0.clone();
    let before = shape(&world).await;
    let mut req = request(&world);
    req.service = "shop-green".into();
    req.name = Some("shop-ecs".into());
    req.test_port = None;
    req.test_url = None;

    let adopted = adopt(&ctx, &req, true).await.expect("adopted");
    assert_eq!(shape(&world).await, before, "nothing created or changed");
    let config = &adopted.config;
    assert_eq!(config.traffic.engine(), Engine::Ecs);
    // Both slots are the one service: ECS's production group and the alternate.
    assert_eq!(
        (
            config.slots.blue.service.as_str(),
            config.slots.green.service.as_str()
        ),
        ("shop-green", "shop-green")
    );
    assert_eq!(config.slots.blue.target_group_arn, world.tg(Slot::Green));
    assert_eq!(config.slots.green.target_group_arn, world.tg(Slot::Blue));
    let Traffic::Listener {
        production_rule_arn,
        production_listener_arn,
        test_listener_arn,
        ..
    } = &config.traffic
    else {
        panic!("listener mode: {:?}", config.traffic)
    };
    assert_eq!(
        production_rule_arn.as_deref(),
        Some(production_rule.as_str())
    );
    assert_eq!(production_listener_arn, &world.production_listener);
    assert_eq!(test_listener_arn, &None);
    // The smoke checks go to production's host; ECS's test rule routes them by the header.
    let test_url = config.health.test_url.clone().unwrap_or_default();
    assert!(test_url.contains("://shop.example.com"), "{test_url}");
    let stored = bluegreen::config_store::ConfigStore::new(&ctx)
        .load("shop-ecs")
        .await
        .expect("stored and valid");
    assert_eq!(&stored, config);
    let service = ecs::describe_service(&ctx, CLUSTER, "shop-green")
        .await
        .unwrap();
    let tags = ecs::tags_of(&ctx, service.service_arn().unwrap_or_default())
        .await
        .unwrap();
    assert!(
        tags.iter().any(|(k, v)| k == TAG_MANAGED && v == "true"),
        "{tags:?}"
    );
    assert!(
        adopted
            .notes
            .iter()
            .any(|n| n.contains("gated by bluegreen's hook")),
        "{:?}",
        adopted.notes
    );
    // A second run changes nothing.
    let again = adopt(&ctx, &req, true).await.expect("adopted again");
    assert!(!again.changed, "{:?}", again.changes);
    assert_eq!(again.config, *config);
}

#[tokio::test]
async fn adopt_says_a_service_ecs_would_deploy_ungated_needs_the_hook_and_refuses_one_without_a_test_rule()
 {
    let world = World::build().await;
    let mut ctx = world.ctx.clone();
    ctx.settings.ecs_hook_arn = Some(HOOK.into());
    let rules = ecs_rules(&world).await;
    on_ecs_blue_green(&world, &rules, false, true).await;
    let mut req = request(&world);
    req.service = "shop-green".into();
    req.name = Some("shop-ecs".into());
    req.test_port = None;
    let planned = adopt(&ctx, &req, false).await.expect("planned");
    assert!(
        planned
            .notes
            .iter()
            .any(|n| n.contains("POST_TEST_TRAFFIC_SHIFT") && n.contains("every launch is refused")),
        "{:?}",
        planned.notes
    );

    // Without a test rule the health check has no way to the new revision: refused, and
    // nothing changed (no tags, no config).
    on_ecs_blue_green(&world, &rules, true, false).await;
    let before = aws_state(&world).await;
    let err = adopt(&ctx, &req, true).await.unwrap_err();
    assert_eq!(err.name(), "SetupRefused", "{err}");
    assert!(err.to_string().contains("testListenerRule"), "{err}");
    assert_eq!(aws_state(&world).await, before);
}
