//! The missed-push sweep (issue 27 item 2): a push whose event never arrived is deployed once,
//! as its newest matching image, after the event's grace; a late event then answers the same
//! deployment; images a push event deployed, older ones, unwatched tags and services with no
//! deployment yet are left alone.

use bluegreen::missed_pushes;
use bluegreen::record::Records;
use bluegreen::steps::prepare::{self, Prepared, PreparedOutcome};
use bluegreen_tests::{World, push_event};
use chrono::{DateTime, Utc};

use crate::common::*;

/// The event ECR would have sent for `digest` pushed as `tag` at `time` (in whole seconds, as
/// EventBridge writes it).
fn event_of(tag: &str, digest: &str, event_id: &str, time: DateTime<Utc>) -> serde_json::Value {
    let time = time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let mut event = push_event(tag, 'a', event_id, &time);
    event["detail"]["image-digest"] = serde_json::json!(digest);
    event
}

async fn records_of_shop(world: &World) -> Vec<bluegreen::record::Deployment> {
    Records::new(&world.ctx)
        .for_service("shop", 50)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_dropped_push_event_is_deployed_once_as_the_newest_watched_image() {
    let world = World::build().await;
    world.create_deployment_machine().await;
    let v2 = deploy_to_switch(&world).await;
    bluegreen::steps::finish::run(&world.ctx, &id_ref(&v2))
        .await
        .expect("finish");
    // Three pushes whose events were all lost: an older watched one, the newest watched one,
    // and a newer one no pattern of the service matches.
    let older = world.push_image("v3", "app-3").await;
    let newest = world.push_image("v4", "app-4").await;
    world.push_image("dev-5", "app-5").await;

    let early = missed_pushes::run(&world.ctx).await.unwrap();
    assert!(
        early.deployed.is_empty(),
        "left to its event first: {early:?}"
    );
    assert_eq!(early.services, vec!["shop".to_owned()]);

    world.advance(chrono::Duration::seconds(
        missed_pushes::EVENT_GRACE_SECONDS + 60,
    ));
    let swept = missed_pushes::run(&world.ctx).await.unwrap();
    assert_eq!(swept.deployed.len(), 1, "{swept:?}");
    let records = records_of_shop(&world).await;
    let of = |digest: &str| {
        records
            .iter()
            .filter(|d| d.image.digest == digest)
            .collect::<Vec<_>>()
    };
    let deployed = of(&newest);
    assert_eq!(deployed.len(), 1, "{records:?}");
    let id = deployed[0].deployment_id.clone();
    assert_eq!(deployed[0].image.tag, "v4");
    assert!(
        of(&older).is_empty(),
        "not an older image: {older} {newest} {records:#?}"
    );
    assert_eq!(world.lock_holder().await.as_deref(), Some(id.as_str()));
    assert!(
        world.execution_status(&id).await.is_some(),
        "its execution was started"
    );

    // The next sweep, and the event arriving after all: the same deployment, nothing more.
    let again = missed_pushes::run(&world.ctx).await.unwrap();
    assert!(again.deployed.is_empty(), "{again:?}");
    let event = event_of("v4", &newest, "late-event-1", world.now());
    match prepare::run(&world.ctx, &event).await.unwrap() {
        Prepared::Deployments { deployments } => {
            assert_eq!(deployments.len(), 1);
            assert_eq!(deployments[0].deployment_id, id);
            assert_eq!(deployments[0].outcome, PreparedOutcome::Started);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        records_of_shop(&world).await.len(),
        records.len(),
        "no second deployment of the image"
    );
    let lock = world.lock("shop").await.unwrap();
    assert_eq!((lock.holder.as_str(), lock.queued), (id.as_str(), None));
}

#[tokio::test]
async fn an_image_its_event_deployed_and_a_service_never_deployed_are_left_alone() {
    let world = World::build().await;
    // No deployment yet: whatever the repository holds was there before bluegreen.
    world.push_image("v7", "app-7").await;
    world.advance(chrono::Duration::seconds(
        missed_pushes::EVENT_GRACE_SECONDS + 60,
    ));
    let first = missed_pushes::run(&world.ctx).await.unwrap();
    assert!(first.deployed.is_empty(), "{first:?}");
    assert!(records_of_shop(&world).await.is_empty());

    // A push whose event arrived. Its time has whole seconds and ECR's clock is not
    // EventBridge's: the event may say a moment *before* ECR's push time, so only the digest
    // (not the time) says this image was deployed.
    let before_the_push = Utc::now() - chrono::Duration::seconds(1);
    let digest = world.push_image("v8", "app-8").await;
    let event = event_of("v8", &digest, "event-8", before_the_push);
    let id = match prepare::run(&world.ctx, &event).await.unwrap() {
        Prepared::Deployments { deployments } => deployments[0].deployment_id.clone(),
        other => panic!("{other:?}"),
    };
    // Then the late event of a push made before it: the service's newest record, for another
    // image and older than v8's push.
    let earlier = push_event(
        "v6",
        'b',
        "event-6",
        &(before_the_push - chrono::Duration::seconds(2))
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    );
    prepare::run(&world.ctx, &earlier).await.unwrap();
    world.advance(chrono::Duration::seconds(
        missed_pushes::EVENT_GRACE_SECONDS + 60,
    ));
    let swept = missed_pushes::run(&world.ctx).await.unwrap();
    assert!(swept.deployed.is_empty(), "{swept:?}");
    let records = records_of_shop(&world).await;
    assert_eq!(records.len(), 2, "{records:?}");
    assert_eq!(
        records.iter().filter(|d| d.image.digest == digest).count(),
        1
    );
    assert_eq!(world.lock_holder().await.as_deref(), Some(id.as_str()));
}

/// A watched repository that does not exist is reported for its service; the run goes on and
/// moves its cursor.
#[tokio::test]
async fn a_missing_repository_is_reported_and_the_sweep_goes_on() {
    let world = World::build().await;
    prepare_push(&world, "v2", "event-1").await;
    world.advance(chrono::Duration::seconds(
        missed_pushes::EVENT_GRACE_SECONDS + 60,
    ));
    let report = missed_pushes::run(&world.ctx).await.unwrap();
    assert!(report.deployed.is_empty());
    assert_eq!(report.skipped.len(), 1, "{report:?}");
    assert!(
        report.skipped[0].contains("ECR repository")
            && report.skipped[0].contains("does not exist"),
        "{report:?}"
    );
}

/// ECR answers `DescribeImages` at most 1,000 images a page (the harness pages as AWS does): a
/// repository with a long history has its newest push on a later page, and the sweep must
/// deploy that one, not the newest of the first page (issue 22).
#[tokio::test]
async fn the_newest_image_on_a_later_page_is_the_one_deployed() {
    let world = World::build().await;
    prepare_push(&world, "v2", "event-1").await;
    let older = world.push_image("v3", "app-3").await;
    for n in 0..999 {
        world
            .push_image(&format!("dev-{n}"), &format!("dev-{n}"))
            .await;
    }
    let newest = world.push_image("v4", "app-4").await;
    world.advance(chrono::Duration::seconds(
        missed_pushes::EVENT_GRACE_SECONDS + 60,
    ));
    let swept = missed_pushes::run(&world.ctx).await.unwrap();
    assert_eq!(swept.deployed.len(), 1, "{swept:?}");
    let records = records_of_shop(&world).await;
    let digests: Vec<&str> = records.iter().map(|d| d.image.digest.as_str()).collect();
    assert!(digests.contains(&newest.as_str()), "{digests:?}");
    assert!(!digests.contains(&older.as_str()), "{digests:?}");
}

/// A person's `deploy` (or `rollback --to`) after a push whose event was lost: the person chose
/// what runs, so the sweep does not deploy the lost push over it later, although the request
/// is ordered among the pushes just after the running one (review of issue 27).
#[tokio::test]
async fn a_lost_push_made_before_a_persons_deploy_is_left_alone() {
    let world = World::build().await;
    prepare_push(&world, "v2", "event-1").await;
    let chosen = world.push_image("v1", "app-1").await;
    let lost = world.push_image("v3", "app-3").await;
    world.advance(chrono::Duration::seconds(60));
    let requested = bluegreen::release::deploy(
        &world.ctx,
        "shop",
        &bluegreen::ports::registry::ImageReference::Digest(chosen.clone()),
        "arn:aws:iam::123456789012:user/on-call",
        "req-rollback-1",
    )
    .await
    .unwrap();
    assert!(
        record(&world, &requested.deployment_id).await.pushed_at
            < records_of_shop(&world)
                .await
                .iter()
                .map(|d| d.created_at)
                .max()
                .unwrap(),
        "ordered among the pushes, not at the time of asking"
    );
    world.advance(chrono::Duration::seconds(
        missed_pushes::EVENT_GRACE_SECONDS + 60,
    ));
    let swept = missed_pushes::run(&world.ctx).await.unwrap();
    assert!(swept.deployed.is_empty(), "{swept:?}");
    let digests: Vec<String> = records_of_shop(&world)
        .await
        .into_iter()
        .map(|d| d.image.digest)
        .collect();
    assert!(!digests.contains(&lost), "{digests:?}");
}
