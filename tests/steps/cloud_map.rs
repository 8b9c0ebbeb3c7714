//! Issue 26 item 4: pre-prod is kept out of production's service discovery. A service whose
//! slots register in a Cloud Map service (adopt copies the registries to the second slot):
//! launch takes them away from pre-prod, so callers that find the service through Cloud Map
//! never reach an unapproved release; the switch gives the new slot the live slot's registries
//! before production's first request; an abort puts back what the slot had. Asserted from ECS.

use aws_sdk_ecs::types::ServiceRegistry;
use bluegreen::Slot;
use bluegreen::steps::abort;
use bluegreen_tests::{CLUSTER, World};

use crate::common::*;

const REGISTRY: &str = "arn:aws:servicediscovery:us-east-1:123456789012:service/srv-shop";

/// Both slots register in the service's Cloud Map service, as adopt leaves them.
async fn with_cloud_map(world: &World) {
    for slot in Slot::ALL {
        world
            .aws
            .ecs
            .update_service()
            .cluster(CLUSTER)
            .service(format!("shop-{slot}"))
            .service_registries(ServiceRegistry::builder().registry_arn(REGISTRY).build())
            .send()
            .await
            .expect("registries");
    }
}

async fn registered(world: &World, slot: Slot) -> Vec<String> {
    bluegreen::ecs::describe_service(&world.ctx, CLUSTER, &format!("shop-{slot}"))
        .await
        .unwrap()
        .registries
        .into_iter()
        .map(|r| r.registry_arn)
        .collect()
}

#[tokio::test]
async fn pre_prod_is_not_in_cloud_map_until_the_switch_and_production_is_throughout() {
    let world = World::build().await;
    with_cloud_map(&world).await;
    let id = deploy_to_approval(&world).await;
    assert_eq!(registered(&world, Slot::Green).await, Vec::<String>::new());
    assert_eq!(registered(&world, Slot::Blue).await, [REGISTRY]);
    let recorded = record(&world, &id).await.preprod.unwrap();
    assert_eq!(
        recorded.previous_registries.len(),
        1,
        "recorded for an abort"
    );

    approve(&world, &id).await;
    switch_all(&world, &id).await;
    assert_eq!(registered(&world, Slot::Green).await, [REGISTRY]);
    assert_eq!(
        registered(&world, Slot::Blue).await,
        [REGISTRY],
        "the old slot stays found until finish scales it down"
    );
}

#[tokio::test]
async fn an_abort_gives_the_slot_back_the_registries_it_had() {
    let world = World::build().await;
    with_cloud_map(&world).await;
    let id = launched(&world).await;
    assert_eq!(registered(&world, Slot::Green).await, Vec::<String>::new());
    abort::run(&world.ctx, &failure(&id, "HealthCheckFailed"))
        .await
        .expect("abort");
    assert_eq!(registered(&world, Slot::Green).await, [REGISTRY]);
    assert_eq!(registered(&world, Slot::Blue).await, [REGISTRY]);
}

/// A slot kept warm after finish serves no caller: out of Cloud Map for its window; a manual
/// rollback to it puts it back before production's traffic arrives.
#[tokio::test]
async fn a_warm_slot_leaves_cloud_map_and_a_rollback_to_it_brings_it_back() {
    use bluegreen::steps::finish;
    let world = World::build().await;
    with_cloud_map(&world).await;
    let mut config = world.config();
    config.finish.keep_warm_seconds = 3600;
    world.put_config(&config).await;
    let id = deploy_to_switch(&world).await;
    finish::run(&world.ctx, &id_ref(&id)).await.expect("finish");
    assert!(world.service(Slot::Blue).await.1 > 0, "kept warm");
    assert_eq!(registered(&world, Slot::Blue).await, Vec::<String>::new());
    assert_eq!(registered(&world, Slot::Green).await, [REGISTRY]);

    bluegreen::operator::manual_rollback(&world.ctx, "shop", "arn:aws:iam::123456789012:user/ops")
        .await
        .expect("manual rollback");
    assert_eq!(world.production().await.live().unwrap(), Slot::Blue);
    assert_eq!(registered(&world, Slot::Blue).await, [REGISTRY]);
}

/// A bake that fails: the rollback takes the failed slot out of Cloud Map as soon as
/// production is back, whatever keeps its tasks running.
#[tokio::test]
async fn a_rollback_takes_the_failed_slot_out_of_cloud_map() {
    use bluegreen::steps::rollback;
    let world = World::build().await;
    with_cloud_map(&world).await;
    let id = deploy_to_switch(&world).await;
    assert_eq!(registered(&world, Slot::Green).await, [REGISTRY]);
    rollback::run(&world.ctx, &failure(&id, "BakeFailed"))
        .await
        .expect("rollback");
    assert_eq!(world.production().await.live().unwrap(), Slot::Blue);
    assert_eq!(registered(&world, Slot::Green).await, Vec::<String>::new());
    assert_eq!(registered(&world, Slot::Blue).await, [REGISTRY]);
}
