//! Prepare: config matching, the per-service lock and queue, the live slot read from AWS.

use bluegreen::Slot;
use bluegreen::lock::Locks;
use bluegreen::record::Status;
use bluegreen::steps::prepare::{self, Prepared, PreparedOutcome};
use bluegreen_tests::{World, push_event};

use crate::common::*;

#[tokio::test]
async fn a_matching_push_takes_the_lock_reads_the_live_slot_and_records_the_deployment() {
    let world = World::build().await;
    let event = push_event("v2", 'a', "event-1", PUSHED_AT);
    let first = prepare::run(&world.ctx, &event).await.unwrap();
    let Prepared::Deployments { deployments } = &first else {
        panic!("{first:?}")
    };
    let d = &deployments[0];
    assert_eq!(
        (d.outcome, d.live_slot, d.target_slot),
        (
            PreparedOutcome::Started,
            Some(Slot::Blue),
            Some(Slot::Green)
        )
    );
    assert!(d.approval_required);
    let stored = record(&world, &d.deployment_id).await;
    assert_eq!(stored.status, Status::Preparing);
    assert_eq!(stored.image.tag, "v2");
    assert_eq!(
        world.lock_holder().await.as_deref(),
        Some(d.deployment_id.as_str())
    );

    // Step Functions retries: the same answer, and the record is not rewritten.
    let again = prepare::run(&world.ctx, &event).await.unwrap();
    assert_eq!(again, first);
    assert_eq!(
        record(&world, &d.deployment_id).await.updated_at,
        stored.updated_at
    );
}

#[tokio::test]
async fn pushes_nobody_watches_are_ignored_and_change_nothing() {
    let world = World::build().await;
    for event in [push_event("latest", 'a', "e-untracked-tag", PUSHED_AT), {
        let mut e = push_event("v2", 'a', "e-other-repo", PUSHED_AT);
        e["detail"]["repository-name"] = "billing/api".into();
        e
    }] {
        let out = prepare::run(&world.ctx, &event).await.unwrap();
        assert!(matches!(out, Prepared::Ignored { .. }), "{out:?}");
    }
    assert_eq!(world.lock_holder().await, None);
}

#[tokio::test]
async fn a_push_during_a_deployment_is_queued_and_the_newest_queued_push_wins() {
    let world = World::build().await;
    let running = prepare_push(&world, "v2", "event-1").await;
    let queue = |tag: &str, id: &str, time: &str| {
        let event = push_event(tag, 'b', id, time);
        let ctx = world.ctx.clone();
        async move {
            match prepare::run(&ctx, &event).await.unwrap() {
                Prepared::Deployments { deployments } => deployments[0].clone(),
                other => panic!("{other:?}"),
            }
        }
    };
    let second = queue("v3", "event-2", "2026-11-21T10:01:00Z").await;
    assert_eq!(second.outcome, PreparedOutcome::Queued);
    let third = queue("v4", "event-3", "2026-11-21T10:02:00Z").await;
    assert_eq!(third.outcome, PreparedOutcome::Queued);
    assert_eq!(
        record(&world, &second.deployment_id).await.status,
        Status::Superseded
    );
    // A late-arriving older push does not replace the newer queued one.
    let late = queue("v2-late", "event-0", "2026-11-21T10:00:30Z").await;
    assert_eq!(late.outcome, PreparedOutcome::Superseded);
    let lock = Locks::new(&world.ctx).read("shop").await.unwrap().unwrap();
    assert_eq!(
        (lock.holder.as_str(), lock.queued.as_deref()),
        (running.as_str(), Some(third.deployment_id.as_str()))
    );
}

#[tokio::test]
async fn unexpected_production_routing_is_an_error_and_releases_the_lock() {
    let world = World::build().await;
    // Production forwards half to each slot: not a state a deployment may start from.
    bluegreen::routing::set_production(&world.ctx, &world.config(), Slot::Green, 50)
        .await
        .unwrap();
    let err = prepare::run(&world.ctx, &push_event("v2", 'a', "event-1", PUSHED_AT))
        .await
        .unwrap_err();
    assert_eq!(err.name(), "UnexpectedRouting", "{err}");
    assert_eq!(world.lock_holder().await, None);
}

#[tokio::test]
async fn an_invalid_stored_config_fails_with_every_problem_and_touches_nothing() {
    let world = World::build().await;
    let mut bad = serde_json::to_value(world.config()).unwrap();
    bad["health"]["smoke"] = serde_json::json!([]);
    bad["approval"]["approvers"] = serde_json::json!([]);
    world
        .ctx
        .ssm
        .put_parameter()
        .name("/bluegreen/services/shop")
        .value(bad.to_string())
        .r#type(aws_sdk_ssm::types::ParameterType::String)
        .overwrite(true)
        .send()
        .await
        .unwrap();
    let err = prepare::run(&world.ctx, &push_event("v2", 'a', "event-1", PUSHED_AT))
        .await
        .unwrap_err();
    let bluegreen::StepError::ConfigInvalid(problems) = &err else {
        panic!("{err}")
    };
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert_eq!(world.lock_holder().await, None);
}

#[tokio::test]
async fn of_the_sample_events_only_the_tagged_pushes_start_deployments() {
    let world = World::build().await;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../events");
    let mut started = Vec::new();
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    paths.sort();
    for path in paths {
        let event: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        if let Prepared::Deployments { deployments } =
            prepare::run(&world.ctx, &event).await.unwrap()
        {
            started.push((
                path.file_name().unwrap().to_string_lossy().into_owned(),
                deployments[0].outcome,
            ));
        }
    }
    assert_eq!(
        started,
        vec![
            (
                "ecr-push-tagged-v3.json".to_owned(),
                PreparedOutcome::Started
            ),
            ("ecr-push-tagged.json".to_owned(), PreparedOutcome::Queued),
        ]
    );
}
