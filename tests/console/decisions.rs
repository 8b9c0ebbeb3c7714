//! Decisions are recorded exactly once, and only then sent to the waiting Step Functions
//! execution: moto's own interpreter runs a `waitForTaskToken` task and must see the
//! `SendTaskSuccess`/`SendTaskFailure` the console sends.

use bluegreen_tests::stepfunctions::Waiting;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::*;

/// A console, and a deployment awaiting approval whose task token belongs to an execution
/// waiting in moto's interpreter.
async fn awaiting_in_moto() -> (bluegreen_tests::World, Served, String, Waiting) {
    let (world, console) = with_console().await;
    let id = deploy_to_health(&world).await;
    let waiting = Waiting::start(&world, &id).await;
    request_with(&world, &id, &waiting.token).await;
    (world, console, id, waiting)
}

#[tokio::test]
async fn an_approval_from_a_link_resumes_the_waiting_execution() {
    let (world, console, id, waiting) = awaiting_in_moto().await;
    assert!(
        waiting.running().await,
        "nothing may resume it before a decision"
    );
    let token = token_of(&link_for(&world, &id, "alice@example.com").await);
    let (status, page) = post_decision(
        &console.url,
        &id,
        &[("decision", "approve"), ("link", &token)],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("Step Functions has been told"), "{page}");
    assert!(
        !page.contains(&waiting.token),
        "the task token is on the page"
    );
    let (status, _, _, output) = waiting.ended().await;
    assert_eq!(status, "SUCCEEDED");
    let output: Value = serde_json::from_str(&output.unwrap()).unwrap();
    assert_eq!(
        output["approval"],
        json!({"decision": "approved", "approver": "alice@example.com"})
    );
    let approval = stored(&world, &id).await.approval.unwrap();
    assert!(approval.delivered_at.is_some(), "delivery not recorded");
}

#[tokio::test]
async fn a_rejection_fails_the_waiting_execution_with_approval_rejected() {
    let (world, console, id, waiting) = awaiting_in_moto().await;
    let token = token_of(&link_for(&world, &id, "bob@example.com").await);
    let (status, page) = post_decision(
        &console.url,
        &id,
        &[
            ("decision", "reject"),
            ("reason", "p99 latency doubled"),
            ("link", &token),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let (status, error, _, _) = waiting.ended().await;
    assert_eq!(status, "FAILED");
    assert_eq!(error.as_deref(), Some("ApprovalRejected"));
    // moto's interpreter drops the cause of SendTaskFailure (neither DescribeExecution nor
    // the history carries it), so only the error name is checked against moto. The cause text
    // comes from approval::rejection_cause, which the local runner uses too.
}

#[tokio::test]
async fn concurrent_clicks_by_two_approvers_record_and_send_one_decision() {
    let (world, console, id, waiting) = awaiting_in_moto().await;
    let alice = token_of(&link_for(&world, &id, "alice@example.com").await);
    let bob = token_of(&link_for(&world, &id, "bob@example.com").await);
    // Alice double-clicks approve three times while Bob rejects three times.
    let attempts = (0..6).map(|i| {
        let (url, id) = (console.url.clone(), id.clone());
        let (alice, bob) = (alice.clone(), bob.clone());
        tokio::spawn(async move {
            let fields: Vec<(&str, &str)> = if i % 2 == 0 {
                vec![("decision", "approve"), ("link", &alice)]
            } else {
                vec![
                    ("decision", "reject"),
                    ("reason", "not now"),
                    ("link", &bob),
                ]
            };
            post_decision(&url, &id, &fields).await.0
        })
    });
    let mut statuses = Vec::new();
    for attempt in attempts {
        statuses.push(attempt.await.unwrap());
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == StatusCode::OK).count(),
        1,
        "exactly one decision wins: {statuses:?}"
    );
    assert!(
        statuses
            .iter()
            .all(|s| *s == StatusCode::OK || *s == StatusCode::CONFLICT),
        "{statuses:?}"
    );
    let d = stored(&world, &id).await;
    let decisions = d
        .timeline
        .iter()
        .filter(|e| {
            e.outcome == bluegreen::record::StepOutcome::Approved
                || e.outcome == bluegreen::record::StepOutcome::Rejected
        })
        .count();
    assert_eq!(decisions, 1, "{:?}", d.timeline);
    let (status, _, _, _) = waiting.ended().await;
    let approved = d.approval.unwrap().decision == Some(bluegreen::record::Verdict::Approved);
    assert_eq!(status, if approved { "SUCCEEDED" } else { "FAILED" });
}

#[tokio::test]
async fn the_cli_identity_decides_through_the_same_record_and_delivery() {
    let world = World::build().await;
    let id = deploy_to_health(&world).await;
    let waiting = Waiting::start(&world, &id).await;
    request_with(&world, &id, &waiting.token).await;
    let me = bluegreen::identity::caller_arn(&world.ctx).await.unwrap();
    assert_eq!(me, bluegreen_tests::MOTO_CALLER);
    let decision = bluegreen::steps::approval::Decision {
        approve: true,
        approver: me.clone(),
        reason: None,
        channel: "cli".into(),
        link_nonce: None,
    };
    let delivered = approval::decide_and_send(&world.ctx, &id, &decision)
        .await
        .unwrap();
    assert_eq!(delivered, approval::Delivered::StepFunctions);
    assert_eq!(waiting.ended().await.0, "SUCCEEDED");
    let again = approval::decide_and_send(&world.ctx, &id, &decision)
        .await
        .unwrap_err();
    assert_eq!(again.name(), "NotAwaitingApproval");
}

#[tokio::test]
async fn a_link_decision_whose_delivery_failed_is_re_sent_by_the_same_link() {
    let (world, console, id, waiting) = awaiting_in_moto().await;
    // The first console cannot reach Step Functions: the approval is recorded, not delivered.
    let (listener, _) = listener().await;
    let cut_off = serve(
        bluegreen_tests::stepfunctions::cut_off_from_step_functions(&world.ctx),
        listener,
        None,
    );
    let token = token_of(&link_for(&world, &id, "alice@example.com").await);
    let approve = [("decision", "approve"), ("link", token.as_str())];
    let (status, page) = post_decision(&cut_off.url, &id, &approve).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{page}");
    assert!(page.contains("make the same decision again"), "{page}");
    assert!(
        !page.contains("127.0.0.1:9"),
        "AWS/transport text shown: {page}"
    );
    let recorded = stored(&world, &id).await.approval.unwrap();
    assert_eq!(
        (recorded.decision, recorded.delivered_at),
        (Some(bluegreen::record::Verdict::Approved), None)
    );
    assert!(waiting.running().await);

    // The same link cannot decide otherwise...
    let (status, page) = post_decision(
        &console.url,
        &id,
        &[("decision", "reject"), ("reason", "no"), ("link", &token)],
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{page}");
    assert!(page.contains("already been used"), "{page}");
    // ...but the same approval again is re-sent and reaches the execution, recorded once.
    let (status, page) = post_decision(&console.url, &id, &approve).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(waiting.ended().await.0, "SUCCEEDED");
    bluegreen_tests::stepfunctions::assert_approved_once_and_delivered(&stored(&world, &id).await);
    // Delivered now: the link is used up.
    let (status, _) = post_decision(&console.url, &id, &approve).await;
    assert_eq!(status, StatusCode::CONFLICT);
}
