//! `doctor`: a healthy installation and service have no findings; each broken setup a new
//! user hits is found, named, and nothing else is reported beside it. Each test breaks one
//! thing in a healthy world, the way a person would get it wrong.

use bluegreen::config::{DbSource, DbStrategy, ServiceConfig, Traffic};
use bluegreen_ops::doctor;
use bluegreen_ops::subscriptions;
use bluegreen_tests::World;

/// A world set up as docs/deploy.md asks: topic and approver subscriptions, the deployment
/// machine, tagged slots and listeners.
async fn healthy() -> World {
    let world = World::build().await.with_topic();
    world.create_deployment_machine().await;
    subscriptions::subscribe_approvers(&world.ctx, &world.config())
        .await
        .expect("subscribe");
    world
}

/// Every finding code for `config` and the installation, sorted.
async fn codes(world: &World, config: &ServiceConfig) -> Vec<&'static str> {
    let mut found: Vec<&'static str> = doctor::installation(&world.ctx)
        .await
        .into_iter()
        .chain(doctor::service(&world.ctx, config).await)
        .inspect(|f| {
            // A fix names what the finding knows: no `<service>` or `slots.<slot>` left for
            // the reader to fill in (issue 29 item 9).
            for placeholder in ["<service>", "<slot>"] {
                assert!(!f.fix.contains(placeholder), "{}: {}", f.code, f.fix);
            }
        })
        .map(|f| f.code)
        .collect();
    found.sort();
    found
}

/// Stores `config` (so it is indexed, as `config put` does) and returns its findings.
async fn stored(world: &World, config: &ServiceConfig) -> Vec<&'static str> {
    world.put_config(config).await;
    codes(world, config).await
}

fn listener_mut(
    config: &mut ServiceConfig,
) -> (&mut String, &mut Option<String>, &mut Option<String>) {
    match &mut config.traffic {
        Traffic::Listener {
            production_listener_arn,
            test_listener_arn,
            production_rule_arn,
            ..
        } => (
            production_listener_arn,
            test_listener_arn,
            production_rule_arn,
        ),
        Traffic::Dns { .. } => panic!("a listener config"),
    }
}

#[tokio::test]
async fn a_healthy_listener_setup_has_no_findings_and_each_finding_says_what_to_do() {
    let world = healthy().await;
    assert_eq!(codes(&world, &world.config()).await, Vec::<&str>::new());
    let dns = {
        let mut c = world.dns_config();
        c.name = "shop-dns".into();
        c
    };
    assert_eq!(stored(&world, &dns).await, Vec::<&str>::new());
    // And a finding carries a subject, the problem and a fix.
    let mut broken = world.config();
    broken.container = "api".into();
    let findings = doctor::service(&world.ctx, &broken).await;
    assert!(
        findings
            .iter()
            .all(|f| !f.subject.is_empty() && !f.problem.is_empty() && !f.fix.is_empty()),
        "{findings:?}"
    );
}

#[tokio::test]
async fn a_wrong_container_name_is_found() {
    let world = healthy().await;
    let mut config = world.config();
    config.container = "api".into();
    // Two slots run the same task definition: one finding each.
    assert_eq!(stored(&world, &config).await, ["container-missing"; 2]);
}

/// Issue 26 item 2: a `container` that runs a proxy's image (what adopt once chose for a
/// proxied service) is found before a push writes the app into it.
#[tokio::test]
async fn a_container_running_a_sidecar_image_is_found() {
    use aws_sdk_ecs::types::ContainerDefinition;
    let world = healthy().await;
    let app = world.service(bluegreen::Slot::Blue).await.0;
    let app = bluegreen::ecs::describe_task_definition(&world.ctx, &app)
        .await
        .unwrap()
        .container("web")
        .unwrap()
        .image
        .clone();
    let define = |name: &str, image: &str| {
        ContainerDefinition::builder()
            .name(name)
            .image(image)
            .memory(128)
            .build()
    };
    world
        .live_revision_of(vec![
            define("proxy", "public.ecr.aws/envoyproxy/envoy:v1.31"),
            define("web", &app),
        ])
        .await;
    let mut config = world.config();
    config.container = "proxy".into();
    // Blue runs the proxied revision; green's has no proxy at all.
    assert_eq!(
        stored(&world, &config).await,
        ["container-image-not-from-source", "container-missing"]
    );
    config.container = "web".into();
    assert_eq!(stored(&world, &config).await, Vec::<&str>::new());
}

#[tokio::test]
async fn slot_services_in_another_cluster_are_found() {
    let world = healthy().await;
    let mut config = world.config();
    config.cluster = "payments-cluster".into();
    assert_eq!(stored(&world, &config).await, ["cluster-missing"]);
}

#[tokio::test]
async fn a_misspelt_slot_service_is_found() {
    let world = healthy().await;
    let mut config = world.config();
    config.slots.green.service = "shop-gren".into();
    assert_eq!(stored(&world, &config).await, ["service-missing"]);
}

#[tokio::test]
async fn an_untagged_slot_service_is_found() {
    let world = healthy().await;
    let arn = world.service_arn(bluegreen::Slot::Green).await;
    world
        .aws
        .ecs
        .untag_resource()
        .resource_arn(arn)
        .tag_keys("bluegreen:managed")
        .send()
        .await
        .unwrap();
    assert_eq!(codes(&world, &world.config()).await, ["service-untagged"]);
}

#[tokio::test]
async fn an_untagged_listener_is_found() {
    let world = healthy().await;
    world
        .aws
        .elb
        .remove_tags()
        .resource_arns(&world.test_listener)
        .tag_keys("bluegreen:managed")
        .send()
        .await
        .unwrap();
    assert_eq!(codes(&world, &world.config()).await, ["listener-untagged"]);
}

#[tokio::test]
async fn a_target_group_arn_that_names_nothing_is_found() {
    let world = healthy().await;
    let mut config = world.config();
    config.slots.green.target_group_arn = world
        .tg(bluegreen::Slot::Green)
        .replace("shop-green", "shop-gren");
    // Missing, not attached to the slot's service, and production/test routing no longer
    // names it (the test listener forwards to a group of neither slot).
    let found = stored(&world, &config).await;
    assert!(found.contains(&"target-group-missing"), "{found:?}");
    assert!(found.contains(&"target-group-not-attached"), "{found:?}");
}

#[tokio::test]
async fn a_target_group_not_attached_to_its_slot_service_is_found() {
    let world = healthy().await;
    // A third target group of the same VPC, which the green service does not register in:
    // the test listener is moved to it too, so only the attachment is wrong.
    let other = world.create_target_group("shop-green-2").await;
    let mut config = world.config();
    config.slots.green.target_group_arn = other.clone();
    world.point_test_listener_at(&other).await;
    assert_eq!(stored(&world, &config).await, ["target-group-not-attached"]);
}

#[tokio::test]
async fn a_missing_production_listener_and_rule_are_found() {
    let world = healthy().await;
    let mut config = world.config();
    *listener_mut(&mut config).0 = format!("{}0", world.production_listener);
    let found = stored(&world, &config).await;
    assert_eq!(found, ["listener-missing"]);
    let mut config = world.config();
    *listener_mut(&mut config).2 = Some(
        world
            .production_listener
            .replace(":listener/", ":listener-rule/")
            + "/0123456789abcdef",
    );
    assert_eq!(stored(&world, &config).await, ["rule-missing"]);
}

#[tokio::test]
async fn production_forwarding_to_both_slots_is_found() {
    let world = healthy().await;
    bluegreen::routing::set_production(&world.ctx, &world.config(), bluegreen::Slot::Green, 50)
        .await
        .unwrap();
    assert_eq!(
        codes(&world, &world.config()).await,
        ["production-routing-unexpected"]
    );
}

#[tokio::test]
async fn a_test_listener_on_the_live_slot_is_found() {
    let world = healthy().await;
    world
        .point_test_listener_at(world.tg(bluegreen::Slot::Blue))
        .await;
    assert_eq!(
        codes(&world, &world.config()).await,
        ["test-listener-routing"]
    );
}

#[tokio::test]
async fn a_missing_test_listener_is_found() {
    let world = healthy().await;
    let mut config = world.config();
    *listener_mut(&mut config).1 = Some(format!("{}0", world.test_listener));
    // The real test listener is then a route the config does not know, forwarding to the
    // idle slot that runs nothing.
    assert_eq!(
        stored(&world, &config).await,
        ["route-on-empty-slot", "test-listener-missing"]
    );
}

#[tokio::test]
async fn a_dns_setup_with_a_wrong_zone_or_missing_records_is_found() {
    let world = healthy().await;
    let mut config = world.dns_config();
    if let Traffic::Dns { hosted_zone_id, .. } = &mut config.traffic {
        *hosted_zone_id = "Z0000000000000NOPE".into();
    }
    assert_eq!(stored(&world, &config).await, ["hosted-zone-missing"]);
    let mut config = world.dns_config();
    config.slots.green.set_identifier = Some("green-2".into());
    assert_eq!(stored(&world, &config).await, ["dns-records-missing"]);
}

#[tokio::test]
async fn a_database_source_that_does_not_exist_is_found() {
    let world = healthy().await;
    let mut config = world.config();
    config.database.strategy = DbStrategy::Isolated;
    config.database.source = Some(DbSource::RdsInstance {
        identifier: "shop-db-old".into(),
    });
    assert_eq!(stored(&world, &config).await, ["database-source-missing"]);
    config.database.source = Some(DbSource::AuroraCluster {
        identifier: "shop-aurora".into(),
    });
    assert_eq!(stored(&world, &config).await, ["database-source-missing"]);
}

/// `database.secret`: a production secret the stack may not read (untagged), one that does
/// not exist, an SSM parameter, and a slot that reads no such secret are each found; a tagged
/// secret read by both slots is not.
#[tokio::test]
async fn a_database_secret_the_stack_cannot_use_is_found() {
    let world = healthy().await;
    let secrets = &world.ctx.ports.secrets;
    let untagged = secrets
        .create_secret("shop/db", r#"{"host":"db"}"#, None, &[])
        .await
        .unwrap();
    let tagged = secrets
        .create_secret(
            "shop/db-tagged",
            r#"{"host":"db"}"#,
            None,
            &[(bluegreen::naming::TAG_DATABASE_SOURCE.into(), "true".into())],
        )
        .await
        .unwrap();
    let mut config = world.config();
    config.database.strategy = DbStrategy::Isolated;
    config.database.source = Some(DbSource::RdsInstance {
        identifier: "shop-db".into(),
    });
    config.database.secret = Some("DB_SECRET".into());
    let both_slots_read = |value_from: String| {
        let world = &world;
        async move {
            let td = world
                .live_revision_with(&[], &[("DB_SECRET", &value_from)])
                .await;
            world.set_task_definition(bluegreen::Slot::Green, &td).await;
        }
    };
    both_slots_read(tagged.clone()).await;
    assert_eq!(stored(&world, &config).await, Vec::<&str>::new());
    both_slots_read(untagged).await;
    assert_eq!(stored(&world, &config).await, ["database-secret-untagged"]);
    both_slots_read(format!("{tagged}-gone")).await;
    assert_eq!(stored(&world, &config).await, ["database-secret-missing"]);
    both_slots_read("arn:aws:ssm:us-east-1:123456789012:parameter/shop/db".into()).await;
    // Once for the one reference both slots share.
    assert_eq!(
        stored(&world, &config).await,
        ["database-secret-not-re-pointable"]
    );
    config.database.secret = Some("OTHER_SECRET".into());
    both_slots_read(tagged).await;
    assert_eq!(
        stored(&world, &config).await,
        ["database-secret-not-read", "database-secret-not-read"]
    );
}

/// A smoke check's header secret the health check may not read (untagged) or that does not
/// exist is found; a tagged one is not.
#[tokio::test]
async fn a_smoke_header_secret_the_health_check_cannot_read_is_found() {
    use bluegreen::config::{HeaderValue, SecretHeader};
    let world = healthy().await;
    let secrets = &world.ctx.ports.secrets;
    let tagged = secrets
        .create_secret(
            "shop/smoke-token",
            "t0ken",
            None,
            &[(bluegreen::naming::TAG_SMOKE_HEADER.into(), "true".into())],
        )
        .await
        .unwrap();
    let untagged = secrets
        .create_secret("shop/other-token", "t0ken", None, &[])
        .await
        .unwrap();
    let mut config = world.config();
    let with_secret = |config: &mut ServiceConfig, secret: &str| {
        config.health.smoke[0].headers = [(
            "Authorization".to_owned(),
            HeaderValue::Secret(SecretHeader {
                secret: secret.to_owned(),
                key: None,
            }),
        )]
        .into();
    };
    with_secret(&mut config, &tagged);
    assert_eq!(stored(&world, &config).await, Vec::<&str>::new());
    with_secret(&mut config, &untagged);
    assert_eq!(
        stored(&world, &config).await,
        ["smoke-header-secret-untagged"]
    );
    with_secret(&mut config, &format!("{tagged}x"));
    assert_eq!(
        stored(&world, &config).await,
        ["smoke-header-secret-missing"]
    );
}

#[tokio::test]
async fn a_bake_alarm_that_does_not_exist_is_found() {
    let world = healthy().await;
    let mut config = world.config();
    config.bake.alarms.push("shop-latency".into());
    assert_eq!(stored(&world, &config).await, ["alarm-missing"]);
}

#[tokio::test]
async fn an_approver_without_a_filtered_subscription_is_found() {
    let world = healthy().await;
    let mut config = world.config();
    config.approval.approvers.push("carol@example.com".into());
    assert_eq!(stored(&world, &config).await, ["approver-not-subscribed"]);
    // Without a topic at all, nobody is told: one finding says so.
    let mut no_topic = World::build().await;
    no_topic.create_deployment_machine().await;
    no_topic.ctx.settings.topic_arn = None;
    assert_eq!(codes(&no_topic, &no_topic.config()).await, ["topic-unset"]);
}

#[tokio::test]
async fn a_config_missing_from_the_index_is_found() {
    let world = healthy().await;
    let mut config = world.config();
    config.name = "admin".into();
    // Written straight into SSM, its change event never handled.
    world
        .aws
        .ssm
        .put_parameter()
        .name("/bluegreen/services/admin")
        .value(config.to_json())
        .r#type(aws_sdk_ssm::types::ParameterType::String)
        .send()
        .await
        .unwrap();
    assert_eq!(codes(&world, &config).await, ["config-not-indexed"]);
}

#[tokio::test]
async fn missing_tables_indexes_secret_topic_and_state_machine_are_found() {
    let world = healthy().await;
    let mut ctx = world.ctx.clone();
    ctx.settings.services_table = "bluegreen-services-typo".into();
    ctx.settings.link_secret_id = Some("bluegreen/no-such-secret".into());
    ctx.settings.topic_arn = Some(format!("{}-typo", world.topic_arn));
    ctx.settings.deployment_machine_arn =
        Some("arn:aws:states:us-east-1:123456789012:stateMachine:bluegreen-typo".into());
    let mut found: Vec<&str> = doctor::installation(&ctx)
        .await
        .into_iter()
        .map(|f| f.code)
        .collect();
    found.sort();
    assert_eq!(
        found,
        [
            "link-secret-missing",
            "state-machine-missing",
            "table-missing",
            "topic-missing"
        ]
    );
    // A deployments table from before the indexes.
    world
        .aws
        .dynamodb
        .delete_table()
        .table_name("bluegreen-deployments")
        .send()
        .await
        .unwrap();
    let old = bluegreen::tables::Table {
        indexes: &[],
        ..bluegreen::tables::DEPLOYMENTS
    };
    bluegreen::tables::create(&world.ctx, &old).await.unwrap();
    let found: Vec<&str> = doctor::installation(&world.ctx)
        .await
        .into_iter()
        .map(|f| f.code)
        .collect();
    assert_eq!(found, ["index-missing"]);
}

/// Maintenance mode on a shared listener: the page could not go up without answering 503 for
/// another team's host, and `doctor` says so before a migration finds out.
#[tokio::test]
async fn a_maintenance_page_on_a_shared_listener_is_found() {
    let world = healthy().await;
    let mut config = world.config();
    config.migration.as_mut().unwrap().maintenance = true;
    assert_eq!(stored(&world, &config).await, Vec::<&str>::new());
    crate::database::other_teams_rule(&world, 5).await;
    assert_eq!(
        stored(&world, &config).await,
        vec!["maintenance-page-unplaceable"]
    );
}

/// Issue 23: an idle slot that autoscales beside production (an IaC apply registered it as
/// written in the code) is found; production's own autoscaling, and an idle slot at rest, are
/// not findings.
#[tokio::test]
async fn an_idle_slot_that_can_come_back_is_found() {
    use bluegreen::Slot;
    use bluegreen::ports::scaling::{ScalableTarget, Suspended};
    let world = healthy().await;
    let config = world.config();
    world.autoscale(Slot::Blue, 2, 8).await;
    let resource = bluegreen::autoscaling::resource_id(&config.cluster, "shop-green");
    let at_rest = ScalableTarget {
        min: 0,
        max: 8,
        suspended: Suspended::ALL,
    };
    world
        .ctx
        .ports
        .scaling
        .register(&resource, &at_rest)
        .await
        .unwrap();
    assert_eq!(stored(&world, &config).await, Vec::<&str>::new());
    let reverted = ScalableTarget {
        min: 2,
        max: 8,
        suspended: Suspended::default(),
    };
    world
        .ctx
        .ports
        .scaling
        .register(&resource, &reverted)
        .await
        .unwrap();
    // Registering a minimum of 2 raised green to 2 at once (as AWS does): it runs beside
    // production already, and the live-slot guard says so too.
    assert_eq!(
        stored(&world, &config).await,
        vec!["idle-slot-autoscales", "idle-slot-running"]
    );
}
