//! `bluegreen redeploy` (issue 27 item 1, issue 23 item 5's config-only release): the image
//! production runs now goes through the full flow again — pre-prod on the family's newest
//! revision, approval, switch — never as a rolling update on production; it is refused while
//! a deployment runs or when the live image is not pinned by digest, and a repeated request
//! answers the deployment the first one started. `bluegreen rollback --to`: an earlier
//! deployment's digest and revision through the same flow, long after the warm window.
//! `bluegreen deploy --tag | --digest`: an image of the repository ECR holds, without a push.

use bluegreen::Slot;
use bluegreen::config::RevisionSource;
use bluegreen::poll::Poll;
use bluegreen::ports::registry::ImageReference;
use bluegreen::record::Status;
use bluegreen::release::{self, Requested};
use bluegreen::steps::prepare::PreparedOutcome;
use bluegreen::steps::{approval, finish, switch};

use bluegreen_tests::{ACCOUNT, REPOSITORY};

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
    iac_registers_a_revision_from(world, Slot::Green).await
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
    assert!(
        world.execution_status(&id).await.is_some(),
        "started in Step Functions"
    );
    assert_eq!(world.lock_holder().await.as_deref(), Some(id.as_str()));
    let d = record(&world, &id).await;
    assert_eq!(d.image, live.image);
    assert_eq!(d.live_slot, Some(Slot::Green));
    assert!(
        d.timeline[0]
            .detail
            .contains(&format!("requested by {OPERATOR}")),
        "{:?}",
        d.timeline[0]
    );
    // Asked again later (a retried call): a new time would make a new deployment id.
    world.advance(chrono::Duration::seconds(5));
    let again = redeploy(&world, "req-1").await.unwrap();
    assert_eq!(
        again.deployment_id, id,
        "the same request, the same deployment"
    );

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
    assert_eq!(
        world.service(Slot::Blue).await.0,
        preprod,
        "the new setting serves"
    );
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
    assert_eq!(
        lock.queued, None,
        "not queued behind it: it would deploy the old image"
    );
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
    assert!(
        refused
            .to_string()
            .contains("not an ECR image pinned by digest"),
        "{refused}"
    );
    assert_eq!(world.lock_holder().await, None);
    let unknown = release::redeploy(&world.ctx, "nope", OPERATOR, "req-4")
        .await
        .unwrap_err();
    assert_eq!(unknown.name(), "ServiceNotFound");
    let malformed = redeploy(&world, "not an id!").await.unwrap_err();
    assert_eq!(malformed.name(), "EventMalformed");
}

/// Runs a push of `tag` (digest of `digest_char`s) through to a finished deployment.
async fn deploy_and_finish(world: &World, tag: &str, digest_char: char, event_id: &str) -> String {
    let event = bluegreen_tests::push_event(tag, digest_char, event_id, &pushed_at(event_id));
    let id = match bluegreen::steps::prepare::run(&world.ctx, &event)
        .await
        .unwrap()
    {
        bluegreen::steps::prepare::Prepared::Deployments { deployments } => {
            deployments[0].deployment_id.clone()
        }
        other => panic!("{other:?}"),
    };
    sync(world, &id).await;
    launch(world, &id).await;
    migrate_with(world, &id, Some(0)).await.expect("migrate");
    health(world, &id).await.expect("health");
    request_approval(world, &id).await;
    approval::decide(&world.ctx, &id, &decision(true))
        .await
        .expect("approve");
    switch_all(world, &id).await;
    finish::run(&world.ctx, &id_ref(&id)).await.expect("finish");
    assert_eq!(record(world, &id).await.status, Status::Succeeded);
    id
}

#[tokio::test]
async fn a_rollback_to_an_earlier_deployment_sends_its_digest_and_revision_through_the_flow() {
    let world = World::build().await;
    let v2 = deploy_and_finish(&world, "v2", 'a', "event-1").await;
    let v2_revision = record(&world, &v2).await.task_definitions.preprod.unwrap();
    // A setting changed on production after v2 (by hand or by IaC): v3 starts from it.
    let changed = iac_changes_the_task_definition(&world).await;
    world.set_task_definition(Slot::Green, &changed).await;
    let v3 = deploy_and_finish(&world, "v3", 'b', "event-2").await;
    let v3_revision = record(&world, &v3).await.task_definitions.preprod.unwrap();
    let v3_ran = bluegreen::ecs::describe_task_definition(&world.ctx, &v3_revision)
        .await
        .unwrap();
    assert_eq!(v3_ran.env_value("web", "FEATURE_X").as_deref(), Some("on"));
    assert_eq!(world.production().await.live().unwrap(), Slot::Blue);
    // Long after any keep-warm window: green (v2's slot) runs nothing any more.
    world.advance(chrono::Duration::days(3));
    assert_eq!(world.service(Slot::Green).await.1, 0);

    let requested = release::roll_back_to(&world.ctx, "shop", &v2, OPERATOR, "req-9")
        .await
        .unwrap();
    assert_eq!(requested.outcome, PreparedOutcome::Started);
    assert_eq!(requested.tag, "v2");
    let id = requested.deployment_id;
    let d = record(&world, &id).await;
    assert_eq!(d.image, record(&world, &v2).await.image, "v2's digest");
    assert!(
        d.timeline[0]
            .detail
            .contains(&format!("rollback to {v2} requested by {OPERATOR}")),
        "{:?}",
        d.timeline[0]
    );

    sync(&world, &id).await;
    launch(&world, &id).await;
    let preprod = record(&world, &id).await.task_definitions.preprod.unwrap();
    let (ran, now) = (
        bluegreen::ecs::describe_task_definition(&world.ctx, &v2_revision)
            .await
            .unwrap(),
        bluegreen::ecs::describe_task_definition(&world.ctx, &preprod)
            .await
            .unwrap(),
    );
    assert_eq!(now.containers, ran.containers, "what v2 ran");
    assert_eq!(now.env_value("web", "FEATURE_X"), None, "not v3's settings");
    assert_eq!(
        world.production().await.live().unwrap(),
        Slot::Blue,
        "v3 serves meanwhile"
    );
    migrate_with(&world, &id, Some(0)).await.expect("migrate");
    health(&world, &id).await.expect("health");
    request_approval(&world, &id).await;
    assert_eq!(record(&world, &id).await.status, Status::AwaitingApproval);
    approval::decide(&world.ctx, &id, &decision(true))
        .await
        .expect("approve");
    switch_all(&world, &id).await;
    assert_eq!(world.production().await.live().unwrap(), Slot::Green);
    assert_eq!(world.service(Slot::Green).await.0, preprod);
    assert_eq!(
        record(&world, &v3).await.status,
        Status::Succeeded,
        "v3's record stays"
    );
}

#[tokio::test]
async fn a_rollback_to_a_deployment_that_never_served_or_does_not_exist_is_refused() {
    let world = World::build().await;
    let running = prepare_push(&world, "v2", "event-1").await;
    let refused = release::roll_back_to(&world.ctx, "shop", &running, OPERATOR, "req-1")
        .await
        .unwrap_err();
    assert_eq!(refused.name(), "ReleaseRefused", "{refused}");
    assert!(refused.to_string().contains("not succeeded"), "{refused}");
    let missing = release::roll_back_to(&world.ctx, "shop", "shop-nope", OPERATOR, "req-2")
        .await
        .unwrap_err();
    assert_eq!(missing.name(), "DeploymentNotFound", "{missing}");
    assert_eq!(world.lock_holder().await.as_deref(), Some(running.as_str()));
}

/// Family mode: a rollback's revisions start from the old base but do not name it as the
/// family's base, so the next push still starts from IaC's newest revision.
#[tokio::test]
async fn after_a_rollback_to_the_next_push_starts_from_the_familys_newest_revision() {
    let world = World::build().await;
    let mut config = world.config();
    config.task_definition.source = RevisionSource::Family;
    world.put_config(&config).await;
    let v2 = deploy_and_finish(&world, "v2", 'a', "event-1").await;
    let iac = iac_changes_the_task_definition(&world).await;
    deploy_and_finish(&world, "v3", 'b', "event-2").await;

    let back = release::roll_back_to(&world.ctx, "shop", &v2, OPERATOR, "req-5")
        .await
        .unwrap()
        .deployment_id;
    sync(&world, &back).await;
    launch(&world, &back).await;
    assert_ne!(
        record(&world, &back).await.task_definitions.base.as_deref(),
        Some(iac.as_str()),
        "the rollback starts from v2's base"
    );
    migrate_with(&world, &back, Some(0)).await.expect("migrate");
    health(&world, &back).await.expect("health");
    request_approval(&world, &back).await;
    approval::decide(&world.ctx, &back, &decision(true))
        .await
        .expect("approve");
    switch_all(&world, &back).await;
    finish::run(&world.ctx, &id_ref(&back))
        .await
        .expect("finish");

    let event = bluegreen_tests::push_event("v4", 'c', "event-4", &pushed_at("event-4"));
    let next = match bluegreen::steps::prepare::run(&world.ctx, &event)
        .await
        .unwrap()
    {
        bluegreen::steps::prepare::Prepared::Deployments { deployments } => {
            deployments[0].deployment_id.clone()
        }
        other => panic!("{other:?}"),
    };
    launch(&world, &next).await;
    assert_eq!(
        record(&world, &next).await.task_definitions.base.as_deref(),
        Some(iac.as_str()),
        "IaC's newest revision, not the one the rollback started from"
    );
}

/// A push made before a person's request, whose event arrives after it (EventBridge delivers
/// late), is newer than the request — it names a newer image — so it queues behind it and
/// deploys next, rather than being superseded by a request for an older image.
#[tokio::test]
async fn a_late_event_of_an_earlier_push_queues_behind_a_redeploy_instead_of_being_dropped() {
    let world = World::build().await;
    v2_live_from_the_family(&world).await;
    let requested = redeploy(&world, "req-7").await.unwrap();
    assert_eq!(requested.outcome, PreparedOutcome::Started);
    let event = bluegreen_tests::push_event("v3", 'b', "event-3", &pushed_at("event-3"));
    let late = match bluegreen::steps::prepare::run(&world.ctx, &event)
        .await
        .unwrap()
    {
        bluegreen::steps::prepare::Prepared::Deployments { deployments } => deployments[0].clone(),
        other => panic!("{other:?}"),
    };
    assert!(
        record(&world, &late.deployment_id).await.pushed_at < world.now(),
        "pushed before the request"
    );
    assert_eq!(late.outcome, PreparedOutcome::Queued, "{late:?}");
    let lock = world.lock("shop").await.unwrap();
    assert_eq!(lock.holder, requested.deployment_id);
    assert_eq!(lock.queued.as_deref(), Some(late.deployment_id.as_str()));
}

async fn deploy(
    world: &World,
    image: ImageReference,
    request_id: &str,
) -> bluegreen::StepResult<Requested> {
    release::deploy(&world.ctx, "shop", &image, OPERATOR, request_id).await
}

/// `bluegreen deploy --tag`: ECR resolves the tag to the digest it names, both are recorded,
/// and the image goes through pre-prod and the approval gate as a push's would.
#[tokio::test]
async fn a_deploy_by_tag_resolves_the_digest_in_ecr_and_waits_for_approval() {
    let world = World::build().await;
    world.create_deployment_machine().await;
    let digest = world.push_image("v3", "app-3").await;

    let requested = deploy(&world, ImageReference::Tag("v3".into()), "req-d1")
        .await
        .unwrap();
    assert_eq!(requested.outcome, PreparedOutcome::Started);
    let pinned = format!("{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/{REPOSITORY}@{digest}");
    assert_eq!(requested.image, pinned);
    assert_eq!(requested.tag, "v3");
    assert!(requested.execution_started);
    let id = requested.deployment_id.clone();
    assert_eq!(world.lock_holder().await.as_deref(), Some(id.as_str()));
    let d = record(&world, &id).await;
    assert_eq!(
        (d.image.digest.as_str(), d.image.tag.as_str()),
        (digest.as_str(), "v3")
    );
    assert!(
        d.timeline[0]
            .detail
            .contains(&format!("deploy tag v3 requested by {OPERATOR}")),
        "{:?}",
        d.timeline[0]
    );
    // The tag moves on in ECR; the same request still answers the deployment it started.
    world.push_image("v3", "app-3-rebuilt").await;
    world.advance(chrono::Duration::seconds(5));
    let again = deploy(&world, ImageReference::Tag("v3".into()), "req-d1")
        .await
        .unwrap();
    assert_eq!(again.deployment_id, id);
    assert_eq!(again.image, pinned, "the digest resolved the first time");

    sync(&world, &id).await;
    launch(&world, &id).await;
    let preprod = record(&world, &id).await.task_definitions.preprod.unwrap();
    let td = bluegreen::ecs::describe_task_definition(&world.ctx, &preprod)
        .await
        .unwrap();
    assert_eq!(
        td.container("web").unwrap().image,
        pinned,
        "pinned by digest"
    );
    migrate_with(&world, &id, Some(0)).await.expect("migrate");
    health(&world, &id).await.expect("health");
    request_approval(&world, &id).await;
    assert_eq!(record(&world, &id).await.status, Status::AwaitingApproval);
    let refused = switch::start(&world.ctx, &id_ref(&id)).await.unwrap_err();
    assert_eq!(refused.name(), "SwitchFailed", "{refused}");
    assert_eq!(world.production().await.live().unwrap(), Slot::Blue);
    approval::decide(&world.ctx, &id, &decision(true))
        .await
        .expect("approve");
    switch_all(&world, &id).await;
    assert_eq!(world.production().await.live().unwrap(), Slot::Green);
    assert_eq!(world.service(Slot::Green).await.0, preprod);
}

/// `bluegreen deploy --digest`: the tag recorded is the image's tag the service watches; behind
/// a running deployment a chosen image queues as a push does; an image ECR does not hold, or
/// a tag or digest that cannot be one, is refused by name and writes nothing.
#[tokio::test]
async fn a_deploy_by_digest_records_the_watched_tag_queues_behind_a_deployment_and_refuses_unknown_images()
 {
    let world = World::build().await;
    let digest = world.push_image("build-77", "app-4").await;
    assert_eq!(
        world.push_image("v4", "app-4").await,
        digest,
        "one image, two tags"
    );
    let running = prepare_push(&world, "v2", "event-1").await;

    let queued = deploy(&world, ImageReference::Digest(digest.clone()), "req-d2")
        .await
        .unwrap();
    assert_eq!(queued.outcome, PreparedOutcome::Queued, "{queued:?}");
    assert_eq!(queued.tag, "v4", "the tag the service's patterns match");
    assert!(!queued.execution_started);
    let lock = world.lock("shop").await.unwrap();
    assert_eq!(lock.holder, running);
    assert_eq!(lock.queued.as_deref(), Some(queued.deployment_id.as_str()));
    assert_eq!(
        record(&world, &queued.deployment_id).await.image.digest,
        digest
    );

    let written = |world: &World| {
        let ctx = world.ctx.clone();
        async move {
            bluegreen::record::Records::new(&ctx)
                .for_service("shop", 10)
                .await
                .unwrap()
                .len()
        }
    };
    let before = written(&world).await;
    let missing = deploy(&world, ImageReference::Tag("v9".into()), "req-d3")
        .await
        .unwrap_err();
    assert_eq!(missing.name(), "ReleaseRefused", "{missing}");
    assert!(
        missing.to_string().contains("has no image with tag v9"),
        "{missing}"
    );
    for bad in [
        ImageReference::Tag("-v1".into()),
        ImageReference::Digest("sha256:zz".into()),
    ] {
        let malformed = deploy(&world, bad, "req-d4").await.unwrap_err();
        assert_eq!(malformed.name(), "EventMalformed", "{malformed}");
    }
    assert_eq!(written(&world).await, before, "nothing written");
    let lock = world.lock("shop").await.unwrap();
    assert_eq!(lock.queued.as_deref(), Some(queued.deployment_id.as_str()));
}

/// A person's `deploy` behind a running deployment and a queued push replaces the queued
/// push (the person asked after it was queued), instead of being superseded by it and never
/// running while the command reported success (review of issue 27).
#[tokio::test]
async fn a_deploy_behind_a_queued_push_replaces_it() {
    let world = World::build().await;
    let digest = world.push_image("v4", "app-4").await;
    let running = prepare_push(&world, "v2", "event-1").await;
    let event = bluegreen_tests::push_event("v3", 'b', "event-2", &pushed_at("event-2"));
    let pushed = match bluegreen::steps::prepare::run(&world.ctx, &event)
        .await
        .unwrap()
    {
        bluegreen::steps::prepare::Prepared::Deployments { deployments } => {
            deployments[0].deployment_id.clone()
        }
        other => panic!("{other:?}"),
    };
    assert_eq!(
        world.lock("shop").await.unwrap().queued.as_deref(),
        Some(pushed.as_str())
    );

    let requested = deploy(&world, ImageReference::Digest(digest.clone()), "req-q1")
        .await
        .unwrap();
    assert_eq!(requested.outcome, PreparedOutcome::Queued, "{requested:?}");
    let lock = world.lock("shop").await.unwrap();
    assert_eq!(lock.holder, running);
    assert_eq!(
        lock.queued.as_deref(),
        Some(requested.deployment_id.as_str())
    );
    assert_eq!(record(&world, &pushed).await.status, Status::Superseded);
    assert_eq!(
        record(&world, &requested.deployment_id).await.image.digest,
        digest
    );
}

/// A deployment that succeeded shows an operator (an AWS identity: the operator API's people)
/// how to deploy it again or roll back to it; a link holder, who may only decide the approval
/// the link was sent for, is not shown them.
#[tokio::test]
async fn a_succeeded_deployment_offers_its_release_commands_to_operators_not_link_holders() {
    let (world, _public) = crate::with_console().await;
    let id = crate::awaiting(&world, crate::LOCAL_TOKEN).await;
    approval::decide(&world.ctx, &id, &decision(true))
        .await
        .expect("approve");
    switch_all(&world, &id).await;
    finish::run(&world.ctx, &id_ref(&id)).await.expect("finish");
    let d = record(&world, &id).await;
    assert_eq!(d.status, Status::Succeeded);
    let rollback = format!("bluegreen rollback shop --to {id}");
    let deploy = format!("bluegreen deploy shop --digest {}", d.image.digest);

    let link = crate::link_for(&world, &id, "alice@example.com").await;
    let (status, page) = crate::get(&link).await;
    assert_eq!(status, reqwest::StatusCode::OK, "{page}");
    assert!(
        page.contains(&d.image.digest),
        "the link shows the deployment: {page}"
    );
    assert!(
        !page.contains(&rollback) && !page.contains("bluegreen deploy"),
        "{page}"
    );

    let (listener, url) = crate::listener().await;
    let _operator_console = crate::serve(world.ctx.clone(), listener, Some(OPERATOR));
    let (status, page) = crate::get(&format!("{url}/deployments/{id}")).await;
    assert_eq!(status, reqwest::StatusCode::OK, "{page}");
    assert!(page.contains(&rollback), "{page}");
    assert!(page.contains(&deploy), "{page}");
}
