//! Issue 23 item 5: `task_definition.source = "family"` — IaC owns the task definition
//! (env, secrets, CPU, sidecars), bluegreen overlays only the pushed digest on the newest
//! revision of the family it did not register, and records which one it used.

use bluegreen::Slot;
use bluegreen::config::RevisionSource;
use bluegreen::steps::finish;
use bluegreen_tests::World;

use crate::common::*;

async fn iac_registers_a_revision(world: &World) -> String {
    iac_registers_a_revision_from(world, Slot::Blue).await
}

async fn feature_and_image(world: &World, arn: &str) -> (Option<String>, String) {
    let td = bluegreen::ecs::describe_task_definition(&world.ctx, arn)
        .await
        .unwrap();
    let image = td.container("web").unwrap().image.clone();
    (td.env_value("web", "FEATURE_X"), image)
}

#[tokio::test]
async fn from_the_family_pre_prod_runs_the_newest_iac_revision_with_the_pushed_digest() {
    let world = World::build().await;
    let mut config = world.config();
    config.task_definition.source = RevisionSource::Family;
    world.put_config(&config).await;
    let iac = iac_registers_a_revision(&world).await;

    let id = deploy_to_switch(&world).await;
    let deployment = record(&world, &id).await;
    assert_eq!(
        deployment.task_definitions.base.as_deref(),
        Some(iac.as_str())
    );
    let preprod = deployment.task_definitions.preprod.clone().unwrap();
    let (feature, image) = feature_and_image(&world, &preprod).await;
    assert_eq!(feature.as_deref(), Some("on"), "IaC's setting carried");
    assert_eq!(image, deployment.image.pinned_uri(), "the pushed digest");
    assert_eq!(
        world.service(Slot::Green).await.0,
        preprod,
        "production runs it now"
    );
    finish::run(&world.ctx, &id_ref(&id)).await.unwrap();

    // The family's newest revision is now bluegreen's own: the next push still starts from
    // IaC's, not from the last pre-prod revision.
    let next = prepare_push(&world, "v3", "event-2").await;
    launch(&world, &next).await;
    let deployment = record(&world, &next).await;
    assert_eq!(
        deployment.task_definitions.base.as_deref(),
        Some(iac.as_str())
    );
}

/// The default stays the live slot's revision: a revision IaC registered but production does
/// not run is not picked up.
#[tokio::test]
async fn by_default_pre_prod_starts_from_what_production_runs() {
    let world = World::build().await;
    let live = world.service(Slot::Blue).await.0;
    iac_registers_a_revision(&world).await;
    let id = prepare_push(&world, "v2", "event-1").await;
    launch(&world, &id).await;
    let deployment = record(&world, &id).await;
    assert_eq!(
        deployment.task_definitions.base.as_deref(),
        Some(live.as_str())
    );
    let preprod = deployment.task_definitions.preprod.unwrap();
    assert_eq!(feature_and_image(&world, &preprod).await.0, None);
}

/// Issue 26 item 3: a revision bluegreen registers keeps everything of its base — every field
/// `RegisterTaskDefinition` takes and the family's own tags (cost allocation, ownership; a
/// tag-on-create policy may require them), with bluegreen's tags added. The base sets every
/// field to something other than its default, and the two revisions are compared whole (their
/// `Debug` forms, with only the revision's own identity and the overlaid image blanked), so a
/// field bluegreen does not copy shows up as a difference here, not as a silent drop.
#[tokio::test]
async fn a_registered_revision_keeps_every_field_and_tag_of_its_base() {
    use aws_sdk_ecs::types::*;
    let world = World::build().await;
    let container = ContainerDefinition::builder()
        .name("web")
        .image("123456789012.dkr.ecr.us-east-1.amazonaws.com/shop/web:v1")
        .cpu(128)
        .memory(512)
        .memory_reservation(256)
        .essential(true)
        .port_mappings(PortMapping::builder().container_port(8080).build())
        .environment(
            KeyValuePair::builder()
                .name("DATABASE_HOST")
                .value("db")
                .build(),
        )
        .secrets(
            Secret::builder()
                .name("DB_PASSWORD")
                .value_from("arn:aws:ssm:us-east-1:123456789012:parameter/shop/db")
                .build()
                .unwrap(),
        )
        .docker_labels("team", "payments")
        .stop_timeout(90)
        .ulimits(
            Ulimit::builder()
                .name(UlimitName::Nofile)
                .soft_limit(4096)
                .hard_limit(8192)
                .build()
                .unwrap(),
        )
        .build();
    let proxy = ContainerDefinition::builder()
        .name("envoy")
        .image("public.ecr.aws/envoy:v1.30")
        .memory(128)
        .essential(true)
        .build();
    let base = world
        .aws
        .ecs
        .register_task_definition()
        .family("shop")
        .task_role_arn("arn:aws:iam::123456789012:role/ecs-tasks/shop-task")
        .execution_role_arn("arn:aws:iam::123456789012:role/ecs-tasks/shop-execution")
        .network_mode(NetworkMode::Awsvpc)
        .requires_compatibilities(Compatibility::Fargate)
        .cpu("512")
        .memory("1024")
        .container_definitions(container)
        .container_definitions(proxy)
        .volumes(Volume::builder().name("scratch").build())
        .ephemeral_storage(EphemeralStorage::builder().size_in_gib(40).build())
        .runtime_platform(
            RuntimePlatform::builder()
                .cpu_architecture(CpuArchitecture::Arm64)
                .operating_system_family(OsFamily::Linux)
                .build(),
        )
        .pid_mode(PidMode::Task)
        .enable_fault_injection(true)
        .tags(Tag::builder().key("cost-center").value("cc-1234").build())
        .tags(Tag::builder().key("team").value("payments").build())
        .tags(
            Tag::builder()
                .key("bluegreen:purpose")
                .value("production")
                .build(),
        )
        .send()
        .await
        .unwrap()
        .task_definition
        .unwrap()
        .task_definition_arn
        .unwrap();
    let overlay = bluegreen::ports::compute::RevisionOverlay {
        images: vec![(
            "web".into(),
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/shop/web@sha256:aaaa".into(),
        )],
        ..Default::default()
    };
    let ours = vec![("bluegreen:purpose".to_owned(), "preprod".to_owned())];
    let registered = world
        .ctx
        .ports
        .compute
        .register_revision(&base, &overlay, &ours)
        .await
        .unwrap();

    let described = |arn: String| {
        let ecs = world.aws.ecs.clone();
        async move {
            let out = ecs
                .describe_task_definition()
                .task_definition(arn)
                .include(TaskDefinitionField::Tags)
                .send()
                .await
                .unwrap();
            let mut td = out.task_definition.unwrap();
            // The revision's own identity, and the image the overlay changes.
            td.task_definition_arn = None;
            td.revision = 0;
            td.registered_at = None;
            td.registered_by = None;
            for c in td.container_definitions.iter_mut().flatten() {
                if c.name.as_deref() == Some("web") {
                    c.image = None;
                }
            }
            let mut tags: Vec<(String, String)> = out
                .tags
                .unwrap_or_default()
                .into_iter()
                .map(|t| (t.key.unwrap_or_default(), t.value.unwrap_or_default()))
                .collect();
            tags.sort();
            // `Debug` redacts the environment and repository credentials: compared apart.
            let hidden: Vec<String> = td
                .container_definitions
                .iter()
                .flatten()
                .map(|c| format!("{:?} {:?}", c.environment, c.repository_credentials))
                .collect();
            (format!("{td:#?}"), hidden, tags)
        }
    };
    let (base_td, base_hidden, base_tags) = described(base).await;
    let (copy_td, copy_hidden, copy_tags) = described(registered).await;
    assert_eq!(copy_td, base_td, "a field of the base was not copied");
    assert!(base_hidden[0].contains("DATABASE_HOST"), "{base_hidden:?}");
    assert_eq!(copy_hidden, base_hidden);
    let expected: Vec<(String, String)> = base_tags
        .into_iter()
        .filter(|(k, _)| !k.starts_with("bluegreen:"))
        .chain(ours)
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    assert_eq!(copy_tags, expected);
}

/// Issue 26 item 4: `preprod.environment` (queues off, telemetry as pre-prod) is on pre-prod's
/// revision only. After approval the new slot rolls out on a production revision without
/// them before any traffic moves, so production never serves with pre-prod's variables.
#[tokio::test]
async fn preprod_variables_reach_pre_prod_only_and_production_rolls_out_without_them() {
    use bluegreen::poll::Poll;
    use bluegreen::steps::promote;
    let world = World::build().await;
    let mut config = world.config();
    config.preprod.environment = [
        ("WORKERS_ENABLED".to_owned(), "false".to_owned()),
        ("DD_ENV".to_owned(), "preprod".to_owned()),
    ]
    .into();
    world.put_config(&config).await;
    let id = deploy_to_approval(&world).await;
    let preprod = record(&world, &id).await.task_definitions.preprod.unwrap();
    let variables = |arn: String| {
        let ctx = world.ctx.clone();
        async move {
            let td = bluegreen::ecs::describe_task_definition(&ctx, &arn)
                .await
                .unwrap();
            (
                td.env_value("web", "WORKERS_ENABLED"),
                td.env_value("web", "DD_ENV"),
                td.env_value("web", "DATABASE_HOST"),
            )
        }
    };
    assert_eq!(
        variables(preprod.clone()).await,
        (
            Some("false".into()),
            Some("preprod".into()),
            Some("shop-db.prod.internal".into())
        )
    );
    assert_eq!(world.service(Slot::Green).await.0, preprod);

    approve(&world, &id).await;
    let started = promote::start(&world.ctx, &id_ref(&id)).await.unwrap();
    let production = record(&world, &id)
        .await
        .task_definitions
        .production
        .expect("a production revision");
    assert_eq!(
        variables(production.clone()).await,
        (None, None, Some("shop-db.prod.internal".into()))
    );
    // The production migration (before launch) ran on the production revision too.
    let migration = record(&world, &id).await.migration_task_arn.unwrap();
    assert_eq!(
        world.task(&migration).await.task_definition_arn.as_deref(),
        Some(production.as_str())
    );
    assert_eq!(world.service(Slot::Green).await.0, production);
    assert!(matches!(
        promote::check(&world.ctx, &check_of(&started))
            .await
            .unwrap(),
        Poll::Pending { .. }
    ));
    assert_eq!(world.production().await.live().unwrap(), Slot::Blue);
    world.settle(Slot::Green, "COMPLETED").await;
    assert!(matches!(
        promote::check(&world.ctx, &check_of(&started))
            .await
            .unwrap(),
        Poll::Done { .. }
    ));
    switch_all(&world, &id).await;
    assert_eq!(world.production().await.live().unwrap(), Slot::Green);
    assert_eq!(world.service(Slot::Green).await.0, production);
}
