//! `bluegreen redeploy` (issue 27 item 1, issue 23 item 5's config-only release): the image
//! production runs now goes through the full flow again — pre-prod on the family's newest
//! revision, approval, switch — never as a rolling update on production; it is refused while
//! a deployment runs or when the live image is not pinned by digest, and a repeated request
//! answers the deployment the first one started.

use bluegreen::Slot;
use bluegreen::config::RevisionSource;
use bluegreen::ports::compute::RevisionOverlay;
use bluegreen::record::Status;
use bluegreen::release::{self, Requested};
use bluegreen::poll::Poll;
use bluegreen::steps::prepare::PreparedOutcome;
use bluegreen::steps::{approval, finish, switch};

use crate::*;

const OPERATOR: &str = "arn:aws:iam::123456789012:user/release-manager";

/// v2 deployed to green and finished; the service takes its task definition from the family.
async fn v2_live_from_the_family(world: &World) -> String {
    let mut config = world.config();
    config.task_definition.source = RevisionSource::Family;
    world.put_config(&config).await;
    let id = deploy_to_switch(world).await;
    finish::run(&world.ctx, &id_ref(&id)).await.expect("finish");
    id
}

/// IaC registers a new revision of the family (a new setting) and production keeps running
/// the revision it runs: a config-only change waiting for a release.
async fn iac_changes_the_task_definition(world: &World) -> String {
    let live = world.service(Slot::Green).await.0;
    let overlay = RevisionOverlay {
        images: Vec::new(),
        environment: vec![("web".into(), "FEATURE_X".into(), "on".into())],
    };
    world
        .ctx
        .ports
        .compute
        .register_revision(&live, &overlay, &[])
        .await
        .expect("register")
}

async fn redeploy(world: &World, request_id: &str) -> bluegreen::StepResult<Requested> {
    release::redeploy(&world.ctx, "shop", OPERATOR, request_id).await
}

#[tokio::test]
async fn a_redeploy_sends_the_live_digest_through_approval_on_the_familys_newest_revision() {
    let world = World::build().await;
    world.create_deployment_machine().await;
    let first = v2_live_from_the_family(&world).await;
    let live = record(&world, &first).await;
    iac_changes_the_task_definition(&world).await;
    let production_before = world.service(Slot::Green).await;

    let requested = redeploy(&world, "req-1").await.unwrap();
    assert_eq!(requested.outcome, PreparedOutcome::Started);
    assert_eq!(requested.image, live.image.pinned_uri(), "the live digest");
    assert_eq!(requested.tag, "v2", "the tag it was deployed as");
    assert!(requested.execution_started);
    let id = requested.deployment_id.clone();
    assert!(world.execution_status(&id).await.is_some(), "started in Step Functions");
    assert_eq!(world.lock_holder().await.as_deref(), Some(id.as_str()));
    let d = record(&world, &id).await;
    assert_eq!(d.image, live.image);
    assert_eq!(d.live_slot, Some(Slot::Green));
    assert!(
        d.timeline[0].detail.contains(&format!("requested by {OPERATOR}")),
        "{:?}",
        d.timeline[0]
    );
    let again = redeploy(&world, "req-1").await.unwrap();
    assert_eq!(again.deployment_id, id, "the same request, the same deployment");

    // Pre-prod (blue) runs IaC's new setting with the live digest; production is untouched.
    sync(&world, &id).await;
    launch(&world, &id).await;
    let preprod = record(&world, &id).await.task_definitions.preprod.unwrap();
    let td = bluegreen::ecs::describe_task_definition(&world.ctx, &preprod)
        .await
        .unwrap();
    assert_eq!(td.env_value("web", "FEATURE_X").as_deref(), Some("on"));
    assert_eq!(td.container("web").unwrap().image, live.image.pinned_uri());
    assert_eq!(world.service(Slot::Green).await, production_before);
    assert_eq!(world.production().await.live().unwrap(), Slot::Green);

    // The approval gates it as it gates a push.
    let migrated = migrate_with(&world, &id, Some(0)).await.expect("migrate");
    assert!(matches!(migrated, Poll::Done { .. }), "{migrated:?}");
    health(&world, &id).await.expect("health");
    request_approval(&world, &id).await;
    assert_eq!(record(&world, &id).await.status, Status::AwaitingApproval);
    let refused = switch::start(&world.ctx, &id_ref(&id)).await.unwrap_err();
    assert_eq!(refused.name(), "SwitchFailed", "{refused}");
    assert_eq!(world.production().await.live().unwrap(), Slot::Green);
    approval::decide(&world.ctx, &id, &decision(true))
        .await
        .expect("approve");
    switch_all(&world, &id).await;
    assert_eq!(world.production().await.live().unwrap(), Slot::Blue);
    assert_eq!(world.service(Slot::Blue).await.0, preprod, "the new setting serves");
}

#[tokio::test]
async fn a_redeploy_is_refused_while_a_deployment_runs_and_changes_nothing() {
    let world = World::build().await;
    let first = v2_live_from_the_family(&world).await;
    let running = prepare_push(&world, "v3", "event-2").await;
    let refused = redeploy(&world, "req-2").await.unwrap_err();
    assert_eq!(refused.name(), "ReleaseRefused", "{refused}");
    assert!(refused.to_string().contains(&running), "{refused}");
    assert_eq!(world.lock_holder().await.as_deref(), Some(running.as_str()));
    let lock = world.lock("shop").await.unwrap();
    assert_eq!(lock.queued, None, "not queued behind it: it would deploy the old image");
    let records = bluegreen::record::Records::new(&world.ctx)
        .for_service("shop", 10)
        .await
        .unwrap();
    let ids: Vec<&str> = records.iter().map(|d| d.deployment_id.as_str()).collect();
    assert_eq!(ids.len(), 2, "no record written: {ids:?}");
    assert!(ids.contains(&first.as_str()) && ids.contains(&running.as_str()));
}

/// An adopted service runs the tag its IaC wrote, not a digest: which image that is cannot be
/// known for sure, so nothing is deployed.
#[tokio::test]
async fn a_live_image_not_pinned_by_digest_is_refused() {
    let world = World::build().await;
    let refused = redeploy(&world, "req-3").await.unwrap_err();
    assert_eq!(refused.name(), "ReleaseRefused", "{refused}");
    assert!(refused.to_string().contains("not an ECR image pinned by digest"), "{refused}");
    assert_eq!(world.lock_holder().await, None);
    let unknown = release::redeploy(&world.ctx, "nope", OPERATOR, "req-4")
        .await
        .unwrap_err();
    assert_eq!(unknown.name(), "ServiceNotFound");
    let malformed = redeploy(&world, "not an id!").await.unwrap_err();
    assert_eq!(malformed.name(), "EventMalformed");
}
