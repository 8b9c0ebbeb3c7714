//! Issue 26 item 3: adopt's copies keep everything. The green service is a copy of blue with
//! every setting CreateService takes and blue's own tags; the green target group has every
//! attribute of blue's (deregistration delay, stickiness, slow start, algorithm) and its tags.
//! Compared field by field from AWS after `adopt --apply`.

use aws_sdk_ecs::types::{
    AvailabilityZoneRebalancing, LaunchType, LoadBalancer, PropagateTags, Tag as EcsTag,
};
use aws_sdk_elasticloadbalancingv2::types::{Tag as ElbTag, TargetGroupAttribute};
use bluegreen::Slot;
use bluegreen_ops::adopt::{Request, adopt};
use bluegreen_ops::direct::{ecs, elb};
use bluegreen_tests::{CLUSTER, MOTO_CALLER, REPOSITORY, World};

/// A world with blue's target group and the production listener only, and `api-blue`: a
/// service with every copyable setting away from its default, tagged by its team.
async fn team_service(world: &World) {
    let ctx = &world.ctx;
    world.only_the_first_slot().await;
    let shop = ecs::describe_service(ctx, CLUSTER, "shop-blue")
        .await
        .unwrap();
    world
        .aws
        .ecs
        .create_service()
        .cluster(CLUSTER)
        .service_name("api-blue")
        .set_task_definition(shop.task_definition.clone())
        .desired_count(2)
        .launch_type(LaunchType::Fargate)
        .set_network_configuration(shop.network_configuration.clone())
        .load_balancers(
            LoadBalancer::builder()
                .target_group_arn(world.tg(Slot::Blue))
                .container_name("web")
                .container_port(8080)
                .build(),
        )
        .health_check_grace_period_seconds(45)
        .enable_execute_command(true)
        .enable_ecs_managed_tags(true)
        .propagate_tags(PropagateTags::Service)
        .availability_zone_rebalancing(AvailabilityZoneRebalancing::Enabled)
        .tags(EcsTag::builder().key("team").value("shop").build())
        .tags(EcsTag::builder().key("cost-center").value("42").build())
        .send()
        .await
        .expect("create api-blue");
    let attribute = |k: &str, v: &str| TargetGroupAttribute::builder().key(k).value(v).build();
    world
        .aws
        .elb
        .modify_target_group_attributes()
        .target_group_arn(world.tg(Slot::Blue))
        .attributes(attribute("deregistration_delay.timeout_seconds", "30"))
        .attributes(attribute("stickiness.enabled", "true"))
        .attributes(attribute("stickiness.type", "lb_cookie"))
        .attributes(attribute("stickiness.lb_cookie.duration_seconds", "3600"))
        .attributes(attribute("slow_start.duration_seconds", "60"))
        .attributes(attribute(
            "load_balancing.algorithm.type",
            "least_outstanding_requests",
        ))
        .send()
        .await
        .expect("blue's attributes");
    world
        .aws
        .elb
        .add_tags()
        .resource_arns(world.tg(Slot::Blue))
        .tags(ElbTag::builder().key("team").value("shop").build())
        .send()
        .await
        .unwrap();
}

/// The request that adopts `api-blue` as `api` (shared by the adopt tests).
pub(crate) fn request(world: &World) -> Request {
    Request {
        cluster: CLUSTER.into(),
        service: "api-blue".into(),
        name: Some("api".into()),
        production_listener_arn: Some(world.production_listener.clone()),
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
    }
}

/// What a copy of a service must keep, as DescribeServices answers it.
fn settings(s: &aws_sdk_ecs::types::Service) -> impl PartialEq + std::fmt::Debug {
    (
        (
            s.task_definition.clone(),
            s.launch_type.clone(),
            s.network_configuration.clone(),
            s.health_check_grace_period_seconds,
            s.enable_execute_command,
        ),
        (
            s.enable_ecs_managed_tags,
            s.propagate_tags.clone(),
            s.availability_zone_rebalancing.clone(),
            s.placement_constraints.clone(),
            s.placement_strategy.clone(),
            s.scheduling_strategy.clone(),
        ),
    )
}

#[tokio::test]
async fn adopt_copies_every_service_setting_attribute_and_tag_of_blue() {
    let world = World::build().await;
    team_service(&world).await;
    let adopted = adopt(&world.ctx, &request(&world), true)
        .await
        .expect("adopt --apply");
    let ctx = &world.ctx;
    let blue = ecs::describe_service(ctx, CLUSTER, "api-blue")
        .await
        .unwrap();
    let green = ecs::describe_service(ctx, CLUSTER, "api-green")
        .await
        .unwrap();
    assert_eq!(settings(&green), settings(&blue));
    assert_eq!(green.desired_count, 0);
    let green_tags = ecs::tags_of(ctx, green.service_arn.as_deref().unwrap())
        .await
        .unwrap();
    for tag in [
        ("team", "shop"),
        ("cost-center", "42"),
        ("bluegreen:managed", "true"),
    ] {
        assert!(
            green_tags.contains(&(tag.0.to_owned(), tag.1.to_owned())),
            "{tag:?} in {green_tags:?}"
        );
    }

    let green_tg = adopted.config.slots.green.target_group_arn.clone();
    let blue_attributes = elb::target_group_attributes(ctx, world.tg(Slot::Blue))
        .await
        .unwrap();
    assert!(
        blue_attributes.contains(&("slow_start.duration_seconds".into(), "60".into())),
        "{blue_attributes:?}"
    );
    assert_eq!(
        elb::target_group_attributes(ctx, &green_tg).await.unwrap(),
        blue_attributes,
        "every attribute of blue's"
    );
    let tg_tags = elb::tags_of(ctx, &green_tg).await.unwrap().unwrap();
    assert!(
        tg_tags.contains(&("team".into(), "shop".into())),
        "{tg_tags:?}"
    );

    // A second run finds nothing to copy.
    let again = adopt(&world.ctx, &request(&world), true).await.unwrap();
    assert!(!again.changed, "{:?}", again.changes);
}

/// A run stopped after the target group was created and before its attributes were set is
/// finished by the next one.
#[tokio::test]
async fn a_green_target_group_with_default_attributes_gets_blues_on_the_next_run() {
    let world = World::build().await;
    team_service(&world).await;
    let adopted = adopt(&world.ctx, &request(&world), true).await.unwrap();
    let green_tg = adopted.config.slots.green.target_group_arn.clone();
    elb::set_target_group_attributes(
        &world.ctx,
        &green_tg,
        &[("slow_start.duration_seconds".into(), "0".into())],
    )
    .await
    .unwrap();
    let planned = adopt(&world.ctx, &request(&world), false).await.unwrap();
    assert!(
        planned
            .changes
            .iter()
            .any(|c| c.contains("copy the attributes")),
        "{:?}",
        planned.changes
    );
    adopt(&world.ctx, &request(&world), true).await.unwrap();
    assert_eq!(
        elb::target_group_attributes(&world.ctx, &green_tg)
            .await
            .unwrap(),
        elb::target_group_attributes(&world.ctx, world.tg(Slot::Blue))
            .await
            .unwrap()
    );
}

/// Issue 26 item 4: a service on Service Connect is refused by adopt (nothing created) and
/// found by doctor: two slots cannot publish the same Service Connect names.
#[tokio::test]
async fn a_service_on_service_connect_is_refused_by_adopt_and_found_by_doctor() {
    use aws_sdk_ecs::types::ServiceConnectConfiguration;
    let world = World::build().await;
    let ctx = &world.ctx;
    elb::delete_listener(ctx, &world.test_listener)
        .await
        .unwrap();
    // The green slot, recreated on Service Connect (as a team that turned it on would have).
    recreate_green(
        &world,
        |lb| lb,
        |create| {
            create.service_connect_configuration(
                ServiceConnectConfiguration::builder()
                    .enabled(true)
                    .namespace("shop.internal")
                    .build(),
            )
        },
    )
    .await;
    let findings = bluegreen_ops::doctor::service(ctx, &world.config()).await;
    let codes: Vec<&str> = findings.iter().map(|f| f.code).collect();
    assert!(codes.contains(&"service-connect-unsupported"), "{codes:?}");
    assert!(
        findings
            .iter()
            .any(|f| f.problem.contains("shop.internal") && f.subject.ends_with("shop-green")),
        "{findings:?}"
    );

    let mut req = request(&world);
    req.service = "shop-green".into();
    req.name = Some("connect".into());
    let err = adopt(ctx, &req, true).await.unwrap_err();
    assert_eq!(err.name(), "SetupRefused", "{err}");
    assert!(err.to_string().contains("Service Connect"), "{err}");
    assert!(
        ecs::describe_service(ctx, CLUSTER, "shop-green-green")
            .await
            .is_err(),
        "no copy made"
    );
}

/// A service on ECS's own blue/green moves its own rules between its target group and the
/// alternate: doctor names a slot deployed that way (its launches are refused,
/// `tests/simulation/ecs_engine.rs`), and adopt never copies it into a second slot — it
/// adopts it as it is (`adopt_ecs.rs`), and refuses a route ECS's engine cannot drive (here a
/// production "rule" that is a listener: nothing made).
#[tokio::test]
async fn a_service_on_ecs_blue_green_is_found_by_doctor_and_never_copied_by_adopt() {
    use aws_sdk_ecs::types::{AdvancedConfiguration, DeploymentConfiguration, DeploymentStrategy};
    let world = World::build().await;
    let ctx = &world.ctx;
    // The green slot, recreated on ECS's blue/green (as a team that switched it would have).
    let advanced = AdvancedConfiguration::builder()
        .alternate_target_group_arn(world.tg(Slot::Blue))
        .production_listener_rule(&world.production_listener)
        .role_arn("arn:aws:iam::123456789012:role/ecs-infrastructure")
        .build();
    recreate_green(
        &world,
        |lb| lb.advanced_configuration(advanced),
        |create| {
            create.deployment_configuration(
                DeploymentConfiguration::builder()
                    .strategy(DeploymentStrategy::BlueGreen)
                    .bake_time_in_minutes(5)
                    .build(),
            )
        },
    )
    .await;
    let findings = bluegreen_ops::doctor::service(ctx, &world.config()).await;
    let found: Vec<_> = findings
        .iter()
        .filter(|f| f.code == "deployed-by-another")
        .collect();
    assert_eq!(found.len(), 1, "{findings:?}");
    assert!(found[0].subject.ends_with("shop-green"), "{found:?}");
    assert!(found[0].problem.contains("BLUE_GREEN"), "{found:?}");

    let before = services(&world).await;
    let mut req = request(&world);
    req.service = "shop-green".into();
    req.name = Some("ecs-bg".into());
    req.test_port = None;
    let err = adopt(ctx, &req, true).await.unwrap_err();
    assert_eq!(err.name(), "SetupRefused", "{err}");
    assert!(
        err.to_string().contains("not an ALB listener rule"),
        "{err}"
    );
    assert_eq!(
        services(&world).await,
        before,
        "no copy made, nothing changed"
    );
}

/// Every service of the cluster: name, task definition, desired count.
pub(crate) async fn services(world: &World) -> Vec<(String, Option<String>, i32)> {
    let arns = world
        .aws
        .ecs
        .list_services()
        .cluster(CLUSTER)
        .send()
        .await
        .unwrap()
        .service_arns
        .unwrap_or_default();
    let described = world
        .aws
        .ecs
        .describe_services()
        .cluster(CLUSTER)
        .set_services(Some(arns))
        .send()
        .await
        .unwrap();
    let mut all: Vec<_> = described
        .services
        .unwrap_or_default()
        .into_iter()
        .map(|s| {
            (
                s.service_name.unwrap_or_default(),
                s.task_definition,
                s.desired_count,
            )
        })
        .collect();
    all.sort();
    all
}

/// Deletes the green slot and creates it again as a copy of blue's basics (task definition,
/// network, Fargate, green's target group, the managed tag, no tasks), with `load_balancer`
/// and `create` adding what the test is about.
pub(crate) async fn recreate_green(
    world: &World,
    load_balancer: impl FnOnce(
        aws_sdk_ecs::types::builders::LoadBalancerBuilder,
    ) -> aws_sdk_ecs::types::builders::LoadBalancerBuilder,
    create: impl FnOnce(
        aws_sdk_ecs::operation::create_service::builders::CreateServiceFluentBuilder,
    )
        -> aws_sdk_ecs::operation::create_service::builders::CreateServiceFluentBuilder,
) {
    let ctx = &world.ctx;
    ecs::delete_service(ctx, CLUSTER, "shop-green")
        .await
        .unwrap();
    let shop = ecs::describe_service(ctx, CLUSTER, "shop-blue")
        .await
        .unwrap();
    let base = world
        .aws
        .ecs
        .create_service()
        .cluster(CLUSTER)
        .service_name("shop-green")
        .set_task_definition(shop.task_definition.clone())
        .desired_count(0)
        .launch_type(LaunchType::Fargate)
        .set_network_configuration(shop.network_configuration.clone())
        .load_balancers(
            load_balancer(
                LoadBalancer::builder()
                    .target_group_arn(world.tg(Slot::Green))
                    .container_name("web")
                    .container_port(8080),
            )
            .build(),
        )
        .tags(
            EcsTag::builder()
                .key("bluegreen:managed")
                .value("true")
                .build(),
        );
    create(base).send().await.expect("create shop-green");
}

/// On ECS's engine doctor checks what the launch checks before it deploys: the service on
/// ECS's blue/green with the stack's hook at both gated stages, rolling back on timeout.
#[tokio::test]
async fn doctor_checks_an_ecs_engine_service_s_lifecycle_hooks() {
    use aws_sdk_ecs::types::{
        AdvancedConfiguration, DeploymentConfiguration, DeploymentLifecycleHook,
        DeploymentLifecycleHookStage, DeploymentStrategy,
    };
    let hook = "arn:aws:lambda:us-east-1:123456789012:function:bluegreen-ecs-hook";
    let world = World::build().await;
    let gated = |stages: &[DeploymentLifecycleHookStage]| {
        let mut configuration = DeploymentConfiguration::builder()
            .strategy(DeploymentStrategy::BlueGreen)
            .bake_time_in_minutes(5);
        if !stages.is_empty() {
            configuration = configuration.lifecycle_hooks(
                DeploymentLifecycleHook::builder()
                    .hook_target_arn(hook)
                    .role_arn("arn:aws:iam::123456789012:role/ecs-hook-invoke")
                    .set_lifecycle_stages(Some(stages.to_vec()))
                    .build(),
            );
        }
        configuration.build()
    };
    let mut config = world.config();
    config.slots.blue.service = "shop-green".into();
    if let bluegreen::config::Traffic::Listener { engine, .. } = &mut config.traffic {
        *engine = bluegreen::config::Engine::Ecs;
    }
    let findings = |ctx: bluegreen::Context| {
        let config = config.clone();
        async move {
            bluegreen_ops::doctor::service(&ctx, &config)
                .await
                .into_iter()
                .filter(|f| f.code.starts_with("ecs-") || f.code == "target-group-not-attached")
                .map(|f| (f.code, f.problem))
                .collect::<Vec<_>>()
        }
    };
    let mut ctx = world.ctx.clone();
    ctx.settings.ecs_hook_arn = Some(hook.into());
    for (stages, expected) in [
        (
            vec![
                DeploymentLifecycleHookStage::PostTestTrafficShift,
                DeploymentLifecycleHookStage::PostProductionTrafficShift,
            ],
            None,
        ),
        // Only the test gate: ECS would move production on after the bake unasked.
        (
            vec![DeploymentLifecycleHookStage::PostTestTrafficShift],
            Some("POST_PRODUCTION_TRAFFIC_SHIFT"),
        ),
        (vec![], Some("POST_TEST_TRAFFIC_SHIFT")),
    ] {
        let advanced = AdvancedConfiguration::builder()
            .alternate_target_group_arn(world.tg(Slot::Blue))
            .production_listener_rule(&world.production_listener)
            .role_arn("arn:aws:iam::123456789012:role/ecs-infrastructure")
            .build();
        let configuration = gated(&stages);
        recreate_green(
            &world,
            |lb| lb.advanced_configuration(advanced),
            |create| create.deployment_configuration(configuration),
        )
        .await;
        let found = findings(ctx.clone()).await;
        match expected {
            None => assert!(found.is_empty(), "{stages:?}: {found:?}"),
            Some(stage) => {
                assert_eq!(found.len(), 1, "{stages:?}: {found:?}");
                assert_eq!(found[0].0, "ecs-not-gated");
                assert!(found[0].1.contains(stage), "{found:?}");
            }
        }
    }
    // Without the stack's hook ARN the check cannot be made, and says so.
    let found = findings(world.ctx.clone()).await;
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].0, "ecs-hook-unknown");
}

/// On ECS's engine with `isolated`, doctor finds a slot group whose deregistration delay is
/// half the launch timeout or more (pre-prod's service drains from it before ECS deploys, and
/// an abort waits as long); ELB's default 300 s against the default 900 s is fine.
#[tokio::test]
async fn doctor_finds_a_deregistration_delay_isolated_pre_prod_cannot_wait_out() {
    let world = World::build().await;
    let mut config = world.config();
    config.slots.blue.service = "shop-green".into();
    config.database.strategy = bluegreen::config::DbStrategy::Isolated;
    if let bluegreen::config::Traffic::Listener { engine, .. } = &mut config.traffic {
        *engine = bluegreen::config::Engine::Ecs;
    }
    let drains = |ctx: bluegreen::Context, config: bluegreen::config::ServiceConfig| async move {
        bluegreen_ops::doctor::service(&ctx, &config)
            .await
            .into_iter()
            .filter(|f| f.code == "ecs-preprod-drain-too-long")
            .map(|f| f.subject)
            .collect::<Vec<_>>()
    };
    assert!(drains(world.ctx.clone(), config.clone()).await.is_empty());
    world
        .aws
        .elb
        .modify_target_group_attributes()
        .target_group_arn(world.tg(Slot::Green))
        .attributes(
            aws_sdk_elasticloadbalancingv2::types::TargetGroupAttribute::builder()
                .key("deregistration_delay.timeout_seconds")
                .value("600")
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        drains(world.ctx.clone(), config.clone()).await,
        [world.tg(Slot::Green).to_owned()]
    );
    // Only with `isolated`: the other strategies start no service of their own.
    config.database.strategy = bluegreen::config::DbStrategy::Shared;
    assert!(drains(world.ctx.clone(), config).await.is_empty());
}

/// On ECS's engine doctor finds pre-prod's own service (`isolated`) that an ending left —
/// active, its deployment not holding the lock — and names the deployment and the way out;
/// another service's, and one deleted, are not reported.
#[tokio::test]
async fn doctor_finds_an_isolated_pre_prod_service_an_ending_left() {
    use bluegreen::ports::compute::NewService;
    let world = World::build().await;
    let mut config = world.config();
    config.slots.blue.service = "shop-green".into();
    if let bluegreen::config::Traffic::Listener { engine, .. } = &mut config.traffic {
        *engine = bluegreen::config::Engine::Ecs;
    }
    let compute = &world.ctx.ports.compute;
    let revision = compute
        .describe_service(bluegreen_tests::CLUSTER, "shop-blue")
        .await
        .unwrap()
        .task_definition
        .unwrap();
    let create = |service: &str, deployment: &str| NewService {
        cluster: bluegreen_tests::CLUSTER.into(),
        name: bluegreen::naming::preprod_service_name(service, deployment),
        like: "shop-blue".into(),
        task_definition: revision.clone(),
        target_group: world.tg(Slot::Blue).to_owned(),
        desired_count: 1,
        tags: vec![
            ("bluegreen:managed".into(), "true".into()),
            ("bluegreen:deployment-id".into(), deployment.into()),
        ],
    };
    let left = create("shop-green", "shop-20261201T000000-abcdef");
    compute.create_service(&left).await.unwrap();
    // Another service's pre-prod is its own doctor's business.
    compute
        .create_service(&create("cart", "cart-20261201T000000-abcdef"))
        .await
        .unwrap();
    let found = |ctx: bluegreen::Context| {
        let config = config.clone();
        async move {
            bluegreen_ops::doctor::service(&ctx, &config)
                .await
                .into_iter()
                .filter(|f| f.code == "ecs-preprod-service-left")
                .collect::<Vec<_>>()
        }
    };
    let findings = found(world.ctx.clone()).await;
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert!(findings[0].subject.ends_with(&left.name), "{findings:?}");
    assert!(
        findings[0]
            .fix
            .contains("bluegreen retry shop-20261201T000000-abcdef"),
        "{findings:?}"
    );
    // Its deployment going on (holding the lock) owns it: nothing to report.
    let order = bluegreen::lock::PushOrder::new(chrono::Utc::now(), "shop-20261201T000000-abcdef");
    bluegreen::lock::Locks::new(&world.ctx)
        .acquire(&config.name, &order)
        .await
        .unwrap();
    assert!(found(world.ctx.clone()).await.is_empty());
    compute
        .delete_service(bluegreen_tests::CLUSTER, &left.name)
        .await
        .unwrap();
    assert!(found(world.ctx.clone()).await.is_empty());
}
