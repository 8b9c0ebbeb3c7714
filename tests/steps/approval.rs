//! Request approval and the recorded decision.

use bluegreen::record::Status;
use bluegreen::steps::approval::{self, RequestInput, Requested};
use bluegreen_tests::World;

use crate::common::*;

async fn healthy(world: &World) -> String {
    let id = prepare_push(world, "v2", "event-1").await;
    launch(world, &id).await;
    health(world, &id).await.unwrap();
    id
}

#[tokio::test]
async fn requesting_approval_stores_the_token_and_notifies_once_without_the_token() {
    let world = World::build().await.with_topic();
    let id = healthy(&world).await;
    let input = RequestInput {
        deployment_id: id.clone(),
        task_token: "secret-token-123".into(),
    };
    let first = approval::request(&world.ctx, &input).await.unwrap();
    assert!(
        matches!(first, Requested::Pending { notified: true, .. }),
        "{first:?}"
    );
    let again = approval::request(&world.ctx, &input).await.unwrap();
    assert_eq!(again, first);
    let stored = record(&world, &id).await;
    assert_eq!(stored.status, Status::AwaitingApproval);
    let published = world.published().await;
    let approvers = world.config().approval.approvers;
    assert_eq!(
        published.len(),
        approvers.len(),
        "one message per approver, once: {published:?}"
    );
    for (message, approver) in published.iter().zip(&approvers) {
        assert_eq!(message["attributes"]["approver"], approver.as_str());
        assert_eq!(message["attributes"]["kind"], "awaiting_approval");
        let text = message["message"].as_str().unwrap();
        assert!(
            text.contains(&format!(
                "https://console.example.com/deployments/{id}?link="
            )) && text.contains("2/2 targets healthy"),
            "{text}"
        );
        let token = text
            .split("?link=")
            .nth(1)
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap();
        let key = world.ctx.signing_key().await.unwrap().unwrap();
        let claims = bluegreen::links::verify(&key, token, &id, world.now()).unwrap();
        assert_eq!(
            &claims.approver, approver,
            "each approver gets their own link"
        );
        assert!(
            !text.contains("secret-token-123"),
            "the task token leaked into the notification"
        );
    }
    assert!(
        !format!("{stored:?}").contains("secret-token-123"),
        "the token leaked into the record's Debug"
    );
}

#[tokio::test]
async fn a_decision_is_recorded_exactly_once_and_returns_the_token() {
    let world = World::build().await;
    let id = healthy(&world).await;
    request_approval(&world, &id).await;
    let token = approval::decide(&world.ctx, &id, &decision(true))
        .await
        .unwrap();
    assert_eq!(token, format!("token-{id}"));
    let second = approval::decide(&world.ctx, &id, &decision(false))
        .await
        .unwrap_err();
    assert_eq!(second.name(), "NotAwaitingApproval");
    assert!(
        second
            .to_string()
            .contains("already approved by alice@example.com via cli"),
        "{second}"
    );
    let stored = record(&world, &id).await.approval.unwrap();
    assert_eq!(
        (stored.decision, stored.approver.as_deref()),
        (
            Some(bluegreen::record::Verdict::Approved),
            Some("alice@example.com")
        )
    );
}

#[tokio::test]
async fn concurrent_decisions_record_one_winner() {
    let world = World::build().await;
    let id = healthy(&world).await;
    request_approval(&world, &id).await;
    let (yes, no) = (decision(true), decision(false));
    let (a, b) = tokio::join!(
        approval::decide(&world.ctx, &id, &yes),
        approval::decide(&world.ctx, &id, &no),
    );
    assert_eq!(
        a.is_ok() as u8 + b.is_ok() as u8,
        1,
        "exactly one decision wins: {a:?} {b:?}"
    );
    let timeline = record(&world, &id).await.timeline;
    let decisions = timeline
        .iter()
        .filter(|e| {
            e.outcome == bluegreen::record::StepOutcome::Approved
                || e.outcome == bluegreen::record::StepOutcome::Rejected
        })
        .count();
    assert_eq!(decisions, 1);
}

#[tokio::test]
async fn strangers_rejections_without_reason_and_late_decisions_are_refused() {
    let world = World::build().await;
    let id = healthy(&world).await;
    request_approval(&world, &id).await;
    let mut stranger = decision(true);
    stranger.approver = "mallory@example.com".into();
    let refused = approval::decide(&world.ctx, &id, &stranger)
        .await
        .unwrap_err();
    assert_eq!(refused.name(), "NotAnApprover", "{refused}");
    let mut no_reason = decision(false);
    no_reason.reason = None;
    assert!(
        approval::decide(&world.ctx, &id, &no_reason)
            .await
            .unwrap_err()
            .to_string()
            .contains("needs a reason")
    );
    world.advance(chrono::Duration::hours(2));
    assert_eq!(
        approval::decide(&world.ctx, &id, &decision(true))
            .await
            .unwrap_err()
            .name(),
        "ApprovalTimedOut"
    );
    assert_eq!(
        record(&world, &id).await.approval.unwrap().decision,
        None,
        "nothing was recorded"
    );
}

#[tokio::test]
async fn auto_policy_needs_no_person() {
    let world = World::build().await;
    let mut config = world.config();
    config.approval.policy = bluegreen::config::ApprovalPolicy::Auto;
    config.approval.approvers.clear();
    world.put_config(&config).await;
    let id = healthy(&world).await;
    let input = RequestInput {
        deployment_id: id.clone(),
        task_token: "t".into(),
    };
    assert_eq!(
        approval::request(&world.ctx, &input).await.unwrap(),
        Requested::Automatic
    );
    switch_all(&world, &id).await;
}

#[tokio::test]
async fn an_empty_task_token_is_malformed() {
    let world = World::build().await;
    let id = healthy(&world).await;
    let input = RequestInput {
        deployment_id: id,
        task_token: " ".into(),
    };
    assert_eq!(
        approval::request(&world.ctx, &input)
            .await
            .unwrap_err()
            .name(),
        "EventMalformed"
    );
}

/// A deployment awaiting approval with `token` stored.
async fn awaiting(world: &World, token: &str) -> String {
    let id = healthy(world).await;
    approval::request(
        &world.ctx,
        &RequestInput {
            deployment_id: id.clone(),
            task_token: token.into(),
        },
    )
    .await
    .unwrap();
    id
}

#[tokio::test]
async fn at_the_timeout_an_approval_recorded_in_time_but_never_delivered_still_counts() {
    let world = World::build().await;
    let id = awaiting(&world, "token-whose-delivery-failed").await;
    // Recorded (the conditional write), then SendTaskSuccess failed: nothing marked delivered.
    approval::decide(&world.ctx, &id, &decision(true))
        .await
        .unwrap();
    assert_eq!(
        record(&world, &id).await.approval.unwrap().delivered_at,
        None
    );
    let input = approval::TimedOutInput {
        deployment_id: id.clone(),
        timed_out: true,
    };
    let settled = approval::settle_timeout(&world.ctx, &input).await.unwrap();
    assert_eq!(
        (settled.decision, settled.approver.as_str()),
        (bluegreen::record::Verdict::Approved, "alice@example.com")
    );
    let stored = record(&world, &id).await;
    let approval = stored.approval.unwrap();
    assert!(approval.delivered_at.is_some());
    assert_eq!(
        approval.decision,
        Some(bluegreen::record::Verdict::Approved)
    );
    // The switch step accepts it: the recorded decision is an approval.
    assert!(
        stored
            .timeline
            .iter()
            .any(|e| e.outcome == bluegreen::record::StepOutcome::Delivered)
    );
    // Settling again (the task retried) answers the same.
    assert_eq!(
        approval::settle_timeout(&world.ctx, &input).await.unwrap(),
        settled
    );
}

#[tokio::test]
async fn at_the_timeout_without_a_decision_the_window_closes_and_no_later_decision_lands() {
    let world = World::build().await;
    let id = awaiting(&world, "token").await;
    let input = approval::TimedOutInput {
        deployment_id: id.clone(),
        timed_out: true,
    };
    let err = approval::settle_timeout(&world.ctx, &input)
        .await
        .unwrap_err();
    assert_eq!(err.name(), "ApprovalTimedOut");
    assert_eq!(
        record(&world, &id).await.approval.unwrap().decision,
        Some(bluegreen::record::Verdict::TimedOut)
    );
    let late = approval::decide(&world.ctx, &id, &decision(true))
        .await
        .unwrap_err();
    assert_eq!(late.name(), "NotAwaitingApproval");
    assert!(late.to_string().contains("closed"), "{late}");
    assert_eq!(
        approval::settle_timeout(&world.ctx, &input)
            .await
            .unwrap_err()
            .name(),
        "ApprovalTimedOut",
        "a retried settle answers the same"
    );
}

#[tokio::test]
async fn at_the_timeout_a_rejection_recorded_in_time_aborts_as_rejected() {
    let world = World::build().await;
    let id = awaiting(&world, "token").await;
    approval::decide(&world.ctx, &id, &decision(false))
        .await
        .unwrap();
    let err = approval::settle_timeout(
        &world.ctx,
        &approval::TimedOutInput {
            deployment_id: id,
            timed_out: true,
        },
    )
    .await
    .unwrap_err();
    assert_eq!(err.name(), "ApprovalRejected");
    assert!(err.to_string().contains("not today"), "{err}");
}

#[tokio::test]
async fn a_repeated_decision_for_a_local_runner_is_already_decided_not_re_sent() {
    let world = World::build().await;
    let id = awaiting(&world, "bluegreen-local:run:Approval:1").await;
    approval::decide(&world.ctx, &id, &decision(true))
        .await
        .unwrap();
    // The local runner reads the record; there is nothing to deliver again.
    let again = approval::decide(&world.ctx, &id, &decision(true))
        .await
        .unwrap_err();
    assert_eq!(again.name(), "NotAwaitingApproval", "{again}");
}

#[tokio::test]
async fn a_decision_from_a_clock_behind_the_request_is_never_recorded_before_it() {
    let world = World::build().await;
    // The request is written on a clock an hour ahead (a time-scaled run, or a drifting host);
    // the decision comes from a process on real time.
    world.advance(chrono::Duration::hours(1));
    let id = awaiting(&world, "bluegreen-local:run:Approval:1").await;
    let real_time = world
        .ctx
        .clone()
        .with_clock(std::sync::Arc::new(chrono::Utc::now));
    approval::decide(&real_time, &id, &decision(true))
        .await
        .unwrap();
    let approval = record(&world, &id).await.approval.unwrap();
    let decided_at = approval.decided_at.unwrap();
    assert!(
        decided_at >= approval.requested_at,
        "decided {decided_at} before the request at {}",
        approval.requested_at
    );
}

/// Issue 21, item 9: a request whose first attempt opened the window and failed before it
/// notified anyone, decided in between (the console lists it): the retried request sends the
/// decision on and does not tell approvers "approval requested" for a decided deployment.
#[tokio::test]
async fn a_retried_request_does_not_ask_approvers_about_a_deployment_already_decided() {
    use aws_smithy_mocks::{MockResponseInterceptor, RuleMode, mock};
    let world = World::build().await.with_topic();
    let id = healthy(&world).await;
    let unavailable = mock!(aws_sdk_sns::Client::publish)
        .sequence()
        .error(|| {
            aws_sdk_sns::operation::publish::PublishError::AuthorizationErrorException(
                aws_sdk_sns::types::error::AuthorizationErrorException::builder()
                    .message("not allowed to publish")
                    .build(),
            )
        })
        .repeatedly()
        .build();
    let failing = bluegreen_tests::with_client(&world.ctx, |c| {
        c.sns = aws_sdk_sns::Client::from_conf(
            aws_sdk_sns::config::Builder::from(&world.sdk)
                .interceptor(
                    MockResponseInterceptor::new()
                        .rule_mode(RuleMode::MatchAny)
                        .with_rule(&unavailable)
                        .allow_passthrough(),
                )
                .build(),
        )
    });
    let first = RequestInput {
        deployment_id: id.clone(),
        task_token: "token-first".into(),
    };
    approval::request(&failing, &first).await.unwrap_err();
    // (The mock answers after the call reached SNS: the first approver's message went out.)
    let before = world.published().await.len();
    assert_eq!(record(&world, &id).await.status, Status::AwaitingApproval);
    approval::decide(&world.ctx, &id, &decision(true))
        .await
        .unwrap();

    let retried = RequestInput {
        deployment_id: id.clone(),
        task_token: "token-retried".into(),
    };
    let answer = approval::request(&world.ctx, &retried).await.unwrap();
    assert!(
        matches!(
            answer,
            Requested::Pending {
                notified: false,
                ..
            }
        ),
        "{answer:?}"
    );
    let published = world.published().await;
    assert_eq!(published.len(), before, "{published:?}");
    let approval = record(&world, &id).await.approval.unwrap();
    assert_eq!(
        approval.decision,
        Some(bluegreen::record::Verdict::Approved)
    );
}

/// Issue 22 item 4: config authorship is not approval. A person whom a config change names as
/// an approver after the deployment started cannot decide it (nothing is recorded, it still
/// waits); removing an approver takes effect at once; the approvers it started with decide.
#[tokio::test]
async fn an_approver_added_after_the_deployment_started_cannot_decide_it() {
    let world = World::build().await;
    let id = deploy_to_approval(&world).await;
    let mut config = world.config();
    config.approval.approvers.push("mallory@example.com".into());
    config.approval.approvers.retain(|a| a != "bob@example.com");
    world.put_config(&config).await;

    let mut added = decision(true);
    added.approver = "mallory@example.com".into();
    let refused = approval::decide(&world.ctx, &id, &added).await.unwrap_err();
    assert_eq!(refused.name(), "NotAnApprover", "{refused}");
    let mut removed = decision(true);
    removed.approver = "bob@example.com".into();
    let refused = approval::decide(&world.ctx, &id, &removed)
        .await
        .unwrap_err();
    assert_eq!(refused.name(), "NotAnApprover", "{refused}");
    let d = record(&world, &id).await;
    assert_eq!(d.status, Status::AwaitingApproval);
    assert_eq!(d.approval.unwrap().decision, None, "nothing recorded");

    approval::decide(&world.ctx, &id, &decision(true))
        .await
        .expect("alice was an approver when it started and still is");
}

/// A deployment prepared under `auto` while the stack allowed it is not approved by it once
/// the stack no longer does (`AutoApproveServices` narrowed): the request is refused and
/// nothing is noted as auto-approved (review of issue 22 item 4).
#[tokio::test]
async fn auto_approval_is_checked_again_against_the_stack_when_approval_is_requested() {
    use bluegreen::context::AutoApprove;
    let world = World::build().await;
    let mut config = world.config();
    config.approval.policy = bluegreen::config::ApprovalPolicy::Auto;
    config.approval.approvers.clear();
    world.put_config(&config).await;
    let id = healthy(&world).await;
    let mut narrowed = world.ctx.clone();
    narrowed.settings.auto_approve = AutoApprove::parse(Some("none"));
    let input = RequestInput {
        deployment_id: id.clone(),
        task_token: "t".into(),
    };
    let err = approval::request(&narrowed, &input).await.unwrap_err();
    assert_eq!(err.name(), "ConfigInvalid", "{err}");
    assert!(
        !record(&world, &id)
            .await
            .timeline
            .iter()
            .any(|e| e.outcome == bluegreen::record::StepOutcome::AutoApproved)
    );
}

/// `run --auto-approve`'s approver approves a deployment once: its next look, while the record
/// still says `awaiting_approval` (the approval step has not taken the decision yet), neither
/// decides again nor reports a refusal. Before, about half the local runs printed "could not
/// approve … already approved by" the same approver right after its own approval. A refusal
/// (an approver not listed) is said once.
#[tokio::test]
async fn the_auto_approver_approves_once_and_says_a_refusal_once() {
    use bluegreen_ops::auto_approve::AutoApprover;
    let world = World::build().await;
    let id = deploy_to_approval(&world).await;
    // A deployment of another run (another terminal, another service) is never approved.
    let mut elsewhere = AutoApprover::new(bluegreen_tests::MOTO_CALLER.into());
    let others = std::collections::BTreeSet::from(["shop-another-run".to_owned()]);
    assert!(elsewhere.look(&world.ctx, &others).await.is_empty());
    let record = bluegreen::record::Records::new(&world.ctx)
        .get(&id)
        .await
        .unwrap();
    assert!(
        record.approval.unwrap().decision.is_none(),
        "not this run's: not approved"
    );
    let ours = std::collections::BTreeSet::from([id.clone()]);

    let mut stranger = AutoApprover::new("arn:aws:iam::123456789012:user/stranger".into());
    let refused = stranger.look(&world.ctx, &ours).await;
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert!(
        refused[0].contains(&format!("could not approve {id}: NotAnApprover")),
        "{refused:?}"
    );
    assert!(
        stranger.look(&world.ctx, &ours).await.is_empty(),
        "said once"
    );

    let mut approver = AutoApprover::new(bluegreen_tests::MOTO_CALLER.into());
    let first = approver.look(&world.ctx, &ours).await;
    assert_eq!(
        first,
        [format!(
            "approved {id} as {} (--auto-approve)",
            bluegreen_tests::MOTO_CALLER
        )]
    );
    let record = bluegreen::record::Records::new(&world.ctx)
        .get(&id)
        .await
        .unwrap();
    assert_eq!(
        record.status,
        Status::AwaitingApproval,
        "the approval step has not taken the decision: the index still lists it"
    );
    let second = approver.look(&world.ctx, &ours).await;
    assert!(
        second.is_empty(),
        "no second decision, no refusal: {second:?}"
    );
    // Another run's approver (knowing nothing of this approval) is answered with the same
    // decision: approving again as the same approver is not a refusal.
    let mut after_a_lost_answer = AutoApprover::new(bluegreen_tests::MOTO_CALLER.into());
    assert_eq!(after_a_lost_answer.look(&world.ctx, &ours).await, first);
}
