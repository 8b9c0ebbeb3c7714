//! Issue 26 item 2: the app's containers are chosen by image. A task definition as real ones
//! are — an envoy proxy in front of the app, a Datadog agent, a worker running the app's image
//! with another command — gets the pushed digest in the app and the worker only; the proxy and
//! the agent keep their images. A `container` that is a sidecar refuses the deployment before
//! anything is registered or launched.

use aws_sdk_ecs::types::{ContainerDefinition, KeyValuePair, PortMapping, Secret};
use bluegreen::Slot;
use bluegreen::ports::compute::TaskDefinitionState;
use bluegreen::steps::{launch_preprod, migrate, promote};
use bluegreen_tests::{ACCOUNT, CLUSTER, MOTO_CALLER, REPOSITORY, World};

use crate::common::*;

const ENVOY: &str = "public.ecr.aws/envoyproxy/envoy:v1.31";
const AGENT: &str = "public.ecr.aws/datadog/agent:7";
const PRODUCTION_DB: &str = "shop-db.prod.internal";

fn app_image() -> String {
    format!("{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/{REPOSITORY}:v1")
}

fn container(name: &str, image: &str, env: &[(&str, &str)]) -> ContainerDefinition {
    let mut c = ContainerDefinition::builder()
        .name(name)
        .image(image)
        .memory(128)
        .essential(name != "datadog");
    if name == "proxy" {
        c = c.port_mappings(PortMapping::builder().container_port(8080).build());
    }
    for (k, v) in env {
        c = c.environment(KeyValuePair::builder().name(*k).value(*v).build());
    }
    c.build()
}

/// The live revision: proxy (load-balanced), web, datadog, worker (the app's image).
async fn proxied_world(worker: ContainerDefinition) -> World {
    let world = World::build().await;
    world
        .live_revision_of(vec![
            container("proxy", ENVOY, &[]),
            container("web", &app_image(), &[("DATABASE_HOST", PRODUCTION_DB)]),
            container("datadog", AGENT, &[("DD_SITE", "datadoghq.eu")]),
            worker,
        ])
        .await;
    world
}

fn worker(env: &[(&str, &str)]) -> ContainerDefinition {
    container("worker", &app_image(), env)
}

/// Isolated: a push prepared, synced and migrated on its clone; pre-prod's revision and the
/// clone's address its `web` container has.
async fn isolated_preprod_revision(world: &World) -> (TaskDefinitionState, String) {
    let id = prepare_push(world, "v2", "event-1").await;
    sync(world, &id).await;
    let migrated = migrate_with(world, &id, Some(0)).await.expect("migrate");
    assert!(matches!(migrated, bluegreen::poll::Poll::Done { .. }));
    let deployment = record(world, &id).await;
    let td = revision(world, &deployment.task_definitions.preprod.unwrap()).await;
    let clone = td.env_value("web", "DATABASE_HOST").unwrap();
    assert!(clone.starts_with("bg-shop-"), "{clone}");
    (td, clone)
}

async fn revision(world: &World, arn: &str) -> TaskDefinitionState {
    bluegreen::ecs::describe_task_definition(&world.ctx, arn)
        .await
        .unwrap()
}

/// `(image, DD_VERSION, WORKERS_ENABLED)` of each container, in order.
fn shape(td: &TaskDefinitionState) -> Vec<(String, Option<String>, Option<String>)> {
    td.containers
        .iter()
        .map(|c| {
            (
                c.image.clone(),
                td.env_value(&c.name, "DD_VERSION"),
                td.env_value(&c.name, "WORKERS_ENABLED"),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_push_updates_the_app_and_its_worker_and_never_the_proxy_or_the_agent() {
    let world = proxied_world(worker(&[("DATABASE_HOST", PRODUCTION_DB)])).await;
    let mut config = world.config();
    config.image_env = vec!["DD_VERSION".into()];
    config.preprod.environment = [("WORKERS_ENABLED".to_owned(), "false".to_owned())].into();
    world.put_config(&config).await;

    let id = deploy_to_approval(&world).await;
    let deployment = record(&world, &id).await;
    let pushed = deployment.image.pinned_uri();
    let preprod = deployment.task_definitions.preprod.clone().unwrap();
    let v2 = || Some("v2".to_owned());
    let off = || Some("false".to_owned());
    assert_eq!(
        shape(&revision(&world, &preprod).await),
        [
            (ENVOY.to_owned(), None, None),
            (pushed.clone(), v2(), off()),
            (AGENT.to_owned(), None, None),
            (pushed.clone(), v2(), off()),
        ],
        "pre-prod: the app and the worker run the push, with its version and pre-prod's \
         variables; the proxy and the agent are as they were"
    );
    assert_eq!(world.service(Slot::Green).await.0, preprod);

    approve(&world, &id).await;
    promote::start(&world.ctx, &id_ref(&id)).await.unwrap();
    let production = record(&world, &id)
        .await
        .task_definitions
        .production
        .expect("a production revision (pre-prod has variables of its own)");
    assert_eq!(
        shape(&revision(&world, &production).await),
        [
            (ENVOY.to_owned(), None, None),
            (pushed.clone(), v2(), None),
            (AGENT.to_owned(), None, None),
            (pushed, v2(), None),
        ],
        "production: the same images and version, without pre-prod's variables"
    );
    assert_eq!(world.service(Slot::Green).await.0, production);
}

/// A config whose `container` is the proxy (what adopt wrote before it chose by image) would
/// write the app into the proxy: the launch is refused, naming the app's containers, and
/// nothing is registered or started.
#[tokio::test]
async fn a_container_that_runs_a_sidecar_image_refuses_the_launch_and_changes_nothing() {
    let world = proxied_world(worker(&[])).await;
    let mut config = world.config();
    config.container = "proxy".into();
    world.put_config(&config).await;
    let green_before = world.service(Slot::Green).await;
    let id = prepare_push(&world, "v2", "event-1").await;
    let err = launch_preprod::start(&world.ctx, &id_ref(&id))
        .await
        .unwrap_err();
    assert_eq!(err.name(), "ConfigInvalid", "{err}");
    let text = err.to_string();
    assert!(
        text.contains(ENVOY) && text.contains("(web, worker)"),
        "names the proxy's image and the app's containers: {text}"
    );
    assert_eq!(world.service(Slot::Green).await, green_before);
    assert_eq!(record(&world, &id).await.task_definitions.preprod, None);
}

/// Named containers are the way out for an app whose image comes from elsewhere: only those
/// change.
#[tokio::test]
async fn named_containers_are_the_only_ones_a_push_updates() {
    let world = proxied_world(worker(&[])).await;
    let mut config = world.config();
    config.containers = vec!["web".into()];
    world.put_config(&config).await;
    let id = prepare_push(&world, "v2", "event-1").await;
    launch(&world, &id).await;
    let preprod = record(&world, &id).await.task_definitions.preprod.unwrap();
    let images: Vec<String> = revision(&world, &preprod)
        .await
        .containers
        .into_iter()
        .map(|c| c.image)
        .collect();
    assert_eq!(images[0], ENVOY);
    assert_eq!(images[3], app_image(), "only the named container changes");
}

/// Isolated mode: a worker running the app's image re-points with the app, so pre-prod's
/// worker writes to the clone, not to production.
#[tokio::test]
async fn isolated_pre_prod_re_points_every_app_container_to_its_clone() {
    let world = proxied_world(worker(&[("DATABASE_HOST", PRODUCTION_DB)])).await;
    world.use_isolated_db().await;
    let (td, clone) = isolated_preprod_revision(&world).await;
    assert_eq!(td.env_value("worker", "DATABASE_HOST"), Some(clone));
    assert_eq!(td.env_value("proxy", "DATABASE_HOST"), None);
}

/// …and a worker that reads its database from a secret would stay on production from
/// pre-prod: refused before any task runs.
#[tokio::test]
async fn isolated_pre_prod_is_refused_when_a_worker_reads_its_database_from_a_secret() {
    let secret = Secret::builder()
        .name("DATABASE_URL")
        .value_from("arn:aws:secretsmanager:us-east-1:123456789012:secret:shop/db-AbCdEf")
        .build()
        .unwrap();
    let mut worker = worker(&[]);
    worker.secrets = Some(vec![secret]);
    let world = proxied_world(worker).await;
    world.use_isolated_db().await;
    let err = refused_before_anything_runs(&world).await;
    assert_eq!(err.name(), "ConfigInvalid", "{err}");
    assert!(
        err.to_string().contains("container \"worker\"")
            && err.to_string().contains("secret DATABASE_URL"),
        "{err}"
    );
}

/// adopt writes the app's container into the config, chosen by image: for a service whose
/// load balancer targets the proxy it picks the app, not the proxy; a repository that no
/// container runs is refused, naming each container and its image; `--container` chooses.
#[tokio::test]
async fn adopt_chooses_the_app_container_by_image_not_the_load_balanced_proxy() {
    use aws_sdk_ecs::types::LoadBalancer;
    use bluegreen_ops::adopt::{Request, adopt};
    let world = proxied_world(worker(&[])).await;
    let td = world.service(Slot::Blue).await.0;
    // Only blue's target group and the production listener exist, as before bluegreen.
    world.only_the_first_slot().await;
    world
        .aws
        .ecs
        .create_service()
        .cluster(CLUSTER)
        .service_name("api")
        .task_definition(&td)
        .desired_count(1)
        .load_balancers(
            LoadBalancer::builder()
                .target_group_arn(world.tg(Slot::Blue))
                .container_name("proxy")
                .container_port(8080)
                .build(),
        )
        .send()
        .await
        .expect("create service");
    let request = |repository: &str, container: Option<&str>| Request {
        cluster: CLUSTER.into(),
        service: "api".into(),
        name: None,
        production_listener_arn: Some(world.production_listener.clone()),
        test_listener_arn: None,
        test_port: Some(8443),
        test_rule: false,
        host: None,
        repository: repository.into(),
        container: container.map(str::to_owned),
        tags: vec!["v*".into()],
        approvers: vec![MOTO_CALLER.into()],
        test_url: Some(world.smoke.url.clone()),
        dns: None,
    };
    let planned = adopt(&world.ctx, &request(REPOSITORY, None), false)
        .await
        .expect("plan");
    assert_eq!(planned.config.container, "web");
    assert!(
        planned.config.containers.is_empty(),
        "by image: web and worker"
    );

    let err = adopt(&world.ctx, &request("shop/other", None), false)
        .await
        .unwrap_err();
    assert_eq!(err.name(), "SetupRefused", "{err}");
    assert!(
        err.to_string().contains(&format!("proxy ({ENVOY})"))
            && err.to_string().contains("--container"),
        "{err}"
    );

    let chosen = adopt(&world.ctx, &request(REPOSITORY, Some("worker")), false)
        .await
        .expect("plan");
    assert_eq!(chosen.config.container, "worker");
    assert!(chosen.config.containers.is_empty());
    let err = adopt(&world.ctx, &request(REPOSITORY, Some("api")), false)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("\"api\" is not a container"),
        "{err}"
    );
}

/// `shared` + `rehearsal`: the rehearsal task runs the whole task definition, so the worker in
/// it reads the database setting too — it gets the clone's address as the migration's
/// container does, never production's; the proxy gets no override.
#[tokio::test]
async fn a_rehearsal_task_points_every_app_container_at_the_clone() {
    let world = proxied_world(worker(&[("DATABASE_HOST", PRODUCTION_DB)])).await;
    let mut config = world.config();
    config.database.rehearsal = true;
    config.database.source = Some(bluegreen::config::DbSource::RdsInstance {
        identifier: "shop-db".into(),
    });
    world.put_config(&config).await;
    let id = prepare_push(&world, "v2", "event-1").await;
    sync(&world, &id).await;
    migrate::start(&world.ctx, &id_ref(&id)).await.unwrap();
    let deployment = record(&world, &id).await;
    let task = world
        .task(
            deployment
                .rehearsal_task_arn
                .as_deref()
                .expect("a rehearsal"),
        )
        .await;
    let clone = deployment
        .clone_for(bluegreen::record::ClonePurpose::Rehearsal)
        .and_then(|c| c.endpoint.clone())
        .expect("the clone's endpoint");
    let overridden: Vec<(String, Vec<(String, String)>)> = task
        .overrides
        .expect("overrides")
        .container_overrides()
        .iter()
        .map(|o| {
            (
                o.name.clone().unwrap_or_default(),
                o.environment()
                    .iter()
                    .map(|kv| (kv.name.clone().unwrap(), kv.value.clone().unwrap()))
                    .collect(),
            )
        })
        .collect();
    let on_clone = vec![("DATABASE_HOST".to_owned(), clone)];
    assert_eq!(
        overridden,
        [
            ("web".to_owned(), on_clone.clone()),
            ("worker".to_owned(), on_clone)
        ]
    );
}

/// A worker `containers` leaves out (it runs the app's image, but the team named only `web`)
/// still reads production's database host: isolated pre-prod re-points it too, though its
/// image is not the push.
#[tokio::test]
async fn isolated_pre_prod_re_points_a_container_that_containers_leaves_out() {
    let world = proxied_world(worker(&[("DATABASE_HOST", PRODUCTION_DB)])).await;
    world.use_isolated_db().await;
    let mut config = world.config();
    config.database.strategy = bluegreen::config::DbStrategy::Isolated;
    config.database.source = Some(bluegreen::config::DbSource::RdsInstance {
        identifier: "shop-db".into(),
    });
    config.containers = vec!["web".into()];
    world.put_config(&config).await;
    let (td, clone) = isolated_preprod_revision(&world).await;
    assert_eq!(td.env_value("worker", "DATABASE_HOST"), Some(clone));
    assert_eq!(
        td.container("worker").unwrap().image,
        app_image(),
        "not named: keeps its image"
    );
}
