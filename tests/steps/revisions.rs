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
