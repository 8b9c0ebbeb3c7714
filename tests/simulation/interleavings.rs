//! Forced interleavings of an abort with a step in flight (issue 21, DESIGN 16/17): the step
//! is paused at one of its AWS calls, the racing action runs to its end, the step goes on.
//! Each test asserts what production sees afterwards, from the in-memory AWS: where the
//! production listener forwards, each slot's count, the record, the lock.
//!
//! Found by the simulator first (seed 6755: a Switch invocation moved production onto the
//! pre-prod slot after an operator's abort had scaled that slot to 0 and released the lock).

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};

use bluegreen::Context;
use bluegreen::record::{ApprovalState, Change, Records, Status, Verdict};
use bluegreen::slot::Slot;
use bluegreen::steps::registry::{self, SWITCH};
use bluegreen::steps::{DeploymentRef, launch_preprod};
use bluegreen_tests::memory::{Conductor, Fate, MemoryAws, State};

use super::block_on;
use serde_json::json;

type Racing = Box<dyn FnOnce(Context) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send>;

/// Answers every call at once; before the `nth` call of `operation` it runs the racing action
/// to its end (its own calls go through here too, unpaused).
#[derive(Default)]
struct Pause {
    at: Mutex<Option<(&'static str, usize, Racing)>>,
    seen: Mutex<usize>,
    ctx: OnceLock<Context>,
    ran: Mutex<bool>,
}

impl Pause {
    fn arm(&self, operation: &'static str, nth: usize, racing: Racing) {
        *self.at.lock().unwrap() = Some((operation, nth, racing));
        *self.seen.lock().unwrap() = 0;
    }

    fn ran(&self) -> bool {
        *self.ran.lock().unwrap()
    }
}

#[async_trait::async_trait]
impl Conductor for Pause {
    async fn before(&self, operation: &'static str) -> Fate {
        let racing = {
            let mut at = self.at.lock().unwrap();
            match at.as_ref() {
                Some((op, nth, _)) if *op == operation => {
                    let mut seen = self.seen.lock().unwrap();
                    *seen += 1;
                    if *seen == *nth {
                        at.take().map(|(_, _, racing)| racing)
                    } else {
                        None
                    }
                }
                _ => None,
            }
        };
        if let Some(racing) = racing {
            racing(self.ctx.get().expect("the world").clone()).await;
            *self.ran.lock().unwrap() = true;
        }
        Fate::Answer
    }

    fn applied(&self, _operation: &'static str, _state: &State) {}
}

/// A deployment approved and about to switch: pre-prod (green) launched and running its
/// tasks, production (blue) on the listener, the record `promoting`.
async fn ready_to_switch(pause: Arc<Pause>) -> (MemoryAws, Context, String) {
    let (aws, ctx, id) = super::prepared_under(pause.clone()).await;
    pause.ctx.set(ctx.clone()).ok();
    launch_preprod::start(
        &ctx,
        &DeploymentRef {
            deployment_id: id.clone(),
        },
    )
    .await
    .unwrap();
    // ECS has started pre-prod's tasks.
    aws.with(|s| {
        let green = s
            .ecs
            .services
            .get_mut(&format!("{}/shop-green", bluegreen_tests::CLUSTER))
            .unwrap();
        green.state.running_count = green.state.desired_count;
        // …and registered them, healthy, in its target group.
        let (group, count) = (green.target_group.clone(), green.state.desired_count);
        s.elb.targets.insert(
            group,
            (0..count)
                .map(|i| bluegreen::ports::load_balancing::TargetHealth {
                    id: format!("10.0.2.{}", 10 + i),
                    state: "healthy".into(),
                    reason: String::new(),
                })
                .collect(),
        );
    });
    let now = ctx.now();
    Records::new(&ctx)
        .update(
            &id,
            Change::new()
                .status(Status::Promoting)
                .approval(&approval(now, Some(Verdict::Approved))),
        )
        .await
        .unwrap();
    (aws, ctx, id)
}

/// An approval requested at `now`, decided `decision` by alice at once (or undecided).
fn approval(now: chrono::DateTime<chrono::Utc>, decision: Option<Verdict>) -> ApprovalState {
    let decided = decision.is_some();
    ApprovalState {
        requested_at: now,
        expires_at: now + chrono::Duration::hours(1),
        decision,
        approver: decided.then(|| "alice".to_owned()),
        decided_at: decided.then_some(now),
        reason: None,
        channel: decided.then(|| "cli".to_owned()),
        link_nonce: None,
        delivered_at: decided.then_some(now),
    }
}

/// The Switch step as its Lambda runs it (leased), from its start.
async fn switch(ctx: &Context, id: &str) -> Result<serde_json::Value, bluegreen::StepError> {
    registry::invoke(
        ctx,
        &SWITCH,
        json!({"action": "start", "deployment_id": id}),
    )
    .await
}

/// What production sees: the share of production traffic on green, green's desired and
/// running counts, the record's status, the lock's holder.
async fn seen(ctx: &Context, id: &str) -> (i64, i32, i32, Status, Option<String>) {
    let record = Records::new(ctx).get(id).await.unwrap();
    let routing = bluegreen::routing::read_production(ctx, &record.config)
        .await
        .unwrap();
    let green = ctx
        .ports
        .compute
        .describe_service(bluegreen_tests::CLUSTER, "shop-green")
        .await
        .unwrap();
    let holder = bluegreen::lock::Locks::new(ctx)
        .holder("shop")
        .await
        .unwrap();
    (
        routing.percent(Slot::Green),
        green.desired_count,
        green.running_count,
        record.status,
        holder,
    )
}

fn operator_abort(id: &str) -> Racing {
    let id = id.to_owned();
    Box::new(move |ctx: Context| {
        Box::pin(async move {
            let _ = bluegreen::operator::abort(&ctx, &id, "bob").await;
        })
    })
}

/// The abort lands after the Switch invocation claimed the deployment, before it wrote
/// `switching` (the interleaving of seed 6755): the abort waits for the invocation, the
/// invocation is fenced out at its status write, production never moves, and the abort then
/// ends the deployment with pre-prod scaled back.
#[test]
fn an_abort_after_the_switch_claimed_the_deployment_fences_the_switch_out() {
    block_on(async {
        let pause = Arc::new(Pause::default());
        let (_aws, ctx, id) = ready_to_switch(pause.clone()).await;
        // UpdateItem 1 is the claim, 2 the step's start entry, 3 `switching`.
        pause.arm("dynamodb:UpdateItem", 3, operator_abort(&id));
        let err = switch(&ctx, &id).await.unwrap_err();
        assert!(pause.ran());
        assert_eq!(err.name(), "Fenced", "{err}");
        let record = Records::new(&ctx).get(&id).await.unwrap();
        assert_eq!(record.abort_requested.as_ref().unwrap().by, "bob");
        assert_eq!(
            record.inflight, None,
            "the fenced invocation released its lease"
        );
        let (green_share, _, _, status, holder) = seen(&ctx, &id).await;
        assert_eq!(green_share, 0, "production never moved");
        assert_eq!(
            status,
            Status::Promoting,
            "the abort waited for the invocation"
        );
        assert_eq!(holder.as_deref(), Some(id.as_str()));

        // The abort goes on (the reconciler's sweep, or the operator's abort once more).
        let ended = super::abort_again(&ctx, &id).await;
        assert_eq!(ended.status, Status::Aborted, "{}", ended.detail);
        let (green_share, green_desired, _, status, holder) = seen(&ctx, &id).await;
        assert_eq!(
            (green_share, green_desired, status, holder),
            (0, 0, Status::Aborted, None)
        );
    });
}

/// The abort lands before the Switch invocation claimed the deployment: the abort ends it at
/// once, and the invocation changes nothing.
#[test]
fn an_abort_before_the_switch_claims_the_deployment_ends_it_and_the_switch_does_nothing() {
    block_on(async {
        let pause = Arc::new(Pause::default());
        let (_aws, ctx, id) = ready_to_switch(pause.clone()).await;
        pause.arm("dynamodb:UpdateItem", 1, operator_abort(&id));
        let err = switch(&ctx, &id).await.unwrap_err();
        assert!(pause.ran());
        assert_eq!(err.name(), "DeploymentEnded", "{err}");
        let (green_share, green_desired, _, status, holder) = seen(&ctx, &id).await;
        assert_eq!(
            (green_share, green_desired, status, holder),
            (0, 0, Status::Aborted, None)
        );
    });
}

/// The abort lands while the Switch moves the listener (after `switching` was written): the
/// abort is refused (ending it now is a rollback), production moves onto green, which runs
/// its tasks, and the deployment goes on.
#[test]
fn an_abort_after_the_switch_moved_the_status_is_refused_and_production_stays_served() {
    block_on(async {
        let pause = Arc::new(Pause::default());
        let (_aws, ctx, id) = ready_to_switch(pause.clone()).await;
        let refused = Arc::new(Mutex::new(None));
        let answer = refused.clone();
        let racing_id = id.clone();
        pause.arm(
            "elasticloadbalancing:ModifyListener",
            1,
            Box::new(move |ctx: Context| {
                Box::pin(async move {
                    let err = bluegreen::operator::abort(&ctx, &racing_id, "bob")
                        .await
                        .unwrap_err();
                    *answer.lock().unwrap() = Some(err.name().to_owned());
                })
            }),
        );
        switch(&ctx, &id).await.unwrap();
        assert_eq!(refused.lock().unwrap().as_deref(), Some("AbortRefused"));
        let (green_share, green_desired, green_running, status, holder) = seen(&ctx, &id).await;
        assert_eq!(green_share, 100);
        assert!(
            green_desired > 0 && green_running > 0,
            "green serves production"
        );
        assert_eq!(status, Status::Switching);
        assert_eq!(holder.as_deref(), Some(id.as_str()));
        let record = Records::new(&ctx).get(&id).await.unwrap();
        assert_eq!(record.abort_requested, None);
        assert_eq!(record.inflight, None);
    });
}

/// An approval and an abort within a second: once the abort was requested, the decision is
/// not recorded (and so never delivered), whatever the approver's link says.
#[test]
fn a_decision_after_an_abort_request_is_not_recorded() {
    block_on(async {
        let pause = Arc::new(Pause::default());
        let (_aws, ctx, id) = ready_to_switch(pause.clone()).await;
        Records::new(&ctx)
            .update(&id, Change::new().status(Status::AwaitingApproval))
            .await
            .unwrap();
        let now = ctx.now();
        Records::new(&ctx)
            .update(&id, Change::new().approval(&approval(now, None)))
            .await
            .unwrap();
        assert_eq!(
            bluegreen::fence::request_abort(&ctx, &id, "bob", &[])
                .await
                .unwrap(),
            bluegreen::fence::AbortMark::Requested
        );
        let decided = Records::new(&ctx)
            .record_decision(
                &id,
                &bluegreen::record::RecordedDecision {
                    verdict: Verdict::Approved,
                    approver: "alice",
                    reason: None,
                    channel: "cli",
                    link_nonce: None,
                },
                bluegreen::record::TimelineEntry {
                    step: "approval".into(),
                    at: now,
                    outcome: bluegreen::record::StepOutcome::Approved,
                    detail: "approved by alice".into(),
                },
            )
            .await
            .unwrap();
        assert_eq!(decided, None, "nothing recorded");
        let record = Records::new(&ctx).get(&id).await.unwrap();
        assert_eq!(record.approval.unwrap().decision, None);
    });
}

/// A retry of a step that takes over the lease of an earlier attempt still running (Step
/// Functions retries on some Lambda errors while the first invocation may go on): releasing
/// the retry's lease keeps the deployment leased until the earlier attempt's end, so an abort
/// still waits for it.
#[test]
fn a_retry_taking_over_a_live_lease_keeps_the_earlier_attempts_end() {
    block_on(async {
        let pause = Arc::new(Pause::default());
        let (_aws, ctx, id) = ready_to_switch(pause).await;
        let first = bluegreen::fence::claim(&ctx, &id, &SWITCH).await.unwrap();
        let first_until = Records::new(&ctx)
            .get(&id)
            .await
            .unwrap()
            .inflight
            .unwrap()
            .until;
        tokio::time::advance(std::time::Duration::from_secs(5)).await;
        let retry = bluegreen::fence::claim(&ctx, &id, &SWITCH).await.unwrap();
        assert_eq!(retry.earlier_until, Some(first_until));
        bluegreen::fence::release(&ctx, &retry).await;
        let left = Records::new(&ctx).get(&id).await.unwrap().inflight;
        assert_eq!(left.map(|l| l.until), Some(first_until), "still leased");
        // The first attempt's own release finds the lease no longer its own: nothing changes.
        bluegreen::fence::release(&ctx, &first).await;
        let ended = super::abort_again(&ctx, &id).await;
        assert!(ended.wait.is_some(), "the abort waits: {}", ended.detail);
        let (green_share, green_desired, _, status, _) = seen(&ctx, &id).await;
        assert_eq!((green_share, status), (0, Status::Promoting));
        assert!(green_desired > 0, "nothing undone while an attempt may act");
    });
}

/// A retried approval request (Step Functions retried the state: a new task token) racing a
/// decision: the decision recorded between the retry's read and its write is neither erased
/// nor left undelivered — the retry sends it to the new token at once, instead of the
/// execution waiting out the approval timeout (issue 21, item 9).
#[test]
fn a_retried_approval_request_keeps_and_delivers_a_decision_recorded_in_between() {
    use bluegreen::steps::approval::{self, Decision, RequestInput};
    block_on(async {
        let pause = Arc::new(Pause::default());
        let (aws, ctx, id) = super::prepared_under(pause.clone()).await;
        pause.ctx.set(ctx.clone()).ok();
        aws.with(|s| {
            for token in ["token-1", "token-2"] {
                s.workflow.tokens.insert(token.into(), None);
            }
        });
        let request = |token: &str| RequestInput {
            deployment_id: id.clone(),
            task_token: token.into(),
        };
        approval::request(&ctx, &request("token-1")).await.unwrap();
        // The retry has read the record; alice approves before it writes. Her answer went to
        // the first token (lost with the first attempt): nothing was delivered.
        let deciding = id.clone();
        pause.arm(
            "dynamodb:UpdateItem",
            1,
            Box::new(move |ctx: Context| {
                Box::pin(async move {
                    let decision = Decision {
                        approve: true,
                        approver: "alice@example.com".into(),
                        reason: None,
                        channel: "cli".into(),
                        link_nonce: None,
                    };
                    let token = approval::decide(&ctx, &deciding, &decision).await.unwrap();
                    assert_eq!(token, "token-1");
                })
            }),
        );
        approval::request(&ctx, &request("token-2")).await.unwrap();
        assert!(pause.ran());
        let record = Records::new(&ctx).get(&id).await.unwrap();
        let recorded = record.approval.unwrap();
        assert_eq!(recorded.decision, Some(Verdict::Approved), "not erased");
        assert!(recorded.delivered_at.is_some(), "delivered");
        let sent = aws.with(|s| s.workflow.tokens["token-2"].clone());
        let output: serde_json::Value = serde_json::from_str(&sent.unwrap().unwrap()).unwrap();
        assert_eq!(output["decision"], "approved");
        assert_eq!(output["approver"], "alice@example.com");
    });
}

/// Issue 21 (the epoch): the execution died while its Switch invocation was moving traffic;
/// the sweep marks the deployment needs-attention and an operator retries (a rollback). The
/// retry starts a new generation of the deployment: the rollback waits until the in-flight
/// invocation's lease has ended (rolling back beside it would let it move production onto a
/// slot the rollback has just scaled to 0), the invocation is fenced out of anything after
/// its current call, and the sweep then finishes the rollback: production back on blue,
/// green scaled down, the service free.
#[test]
fn a_retry_waits_out_a_step_in_flight_of_the_dead_execution_and_fences_it_out() {
    block_on(async {
        let pause = Arc::new(Pause::default());
        let (_aws, ctx, id) = ready_to_switch(pause.clone()).await;
        let racing_id = id.clone();
        let retried = Arc::new(Mutex::new(None));
        let answer = retried.clone();
        pause.arm(
            "elasticloadbalancing:ModifyListener",
            1,
            Box::new(move |ctx: Context| {
                Box::pin(async move {
                    let swept = bluegreen::steps::reconcile::service(&ctx, "shop")
                        .await
                        .unwrap();
                    assert_eq!(
                        swept.action,
                        bluegreen::steps::reconcile::Action::NeedsAttention,
                        "{swept:?}"
                    );
                    let retry = bluegreen::operator::retry(
                        &ctx,
                        &racing_id,
                        "bob",
                        std::time::Duration::ZERO,
                    )
                    .await;
                    *answer.lock().unwrap() = Some(retry);
                })
            }),
        );
        let switched = switch(&ctx, &id).await;
        assert!(pause.ran());
        let retry = retried.lock().unwrap().take().unwrap().unwrap();
        assert_eq!(retry.ending, "rollback");
        assert_eq!(retry.status, Status::Baking, "{}", retry.detail);
        assert!(retry.detail.contains("step in flight"), "{}", retry.detail);
        // The invocation's move (it had passed its guard) landed; nothing after it did.
        let (green_share, green_desired, _, status, _) = seen(&ctx, &id).await;
        assert_eq!((green_share, status), (100, Status::Baking), "{switched:?}");
        assert!(
            green_desired > 0,
            "green still runs the traffic it was given"
        );
        let record = Records::new(&ctx).get(&id).await.unwrap();
        assert_eq!(record.inflight, None, "the invocation released its lease");

        // A redrive of the dead execution reaching its rollback state does nothing: the
        // retry's ending is the one that runs.
        let redriven = registry::invoke(
            &ctx,
            &registry::ROLLBACK,
            json!({"deployment_id": id, "error": {"Error": "BakeFailed", "Cause": "redriven"}}),
        )
        .await
        .unwrap();
        assert!(redriven.get("wait").is_none(), "{redriven}");
        assert!(
            redriven["detail"]
                .as_str()
                .unwrap()
                .contains("does nothing"),
            "{redriven}"
        );
        let (green_share, green_desired, _, status, _) = seen(&ctx, &id).await;
        assert_eq!((green_share, status), (100, Status::Baking), "untouched");
        assert!(green_desired > 0);

        // The sweep carries the rollback on (the retry handed it over).
        let done = bluegreen::steps::reconcile::service(&ctx, "shop")
            .await
            .unwrap();
        assert_eq!(
            done.action,
            bluegreen::steps::reconcile::Action::Ended,
            "{done:?}"
        );
        let (green_share, green_desired, _, status, holder) = seen(&ctx, &id).await;
        assert_eq!(
            (green_share, green_desired, status, holder),
            (0, 0, Status::RolledBack, None)
        );

        // A redrive of the dead execution's steps changes nothing now.
        let late = switch(&ctx, &id).await.unwrap_err();
        assert_eq!(late.name(), "DeploymentEnded", "{late}");
    });
}

/// Issue 21, item 8: two abort endings at once — the operator's and the reconciler's (started
/// by the execution's ABORTED event) — both reach the rollback migration: the second runs to
/// its end while the first is paused just before its `RunTask`. The schema is reverted once:
/// one rollback task (the client token makes the first's late `RunTask` answer the same task),
/// and the record names it.
#[test]
fn two_aborts_at_once_run_the_rollback_command_once() {
    block_on(async {
        let pause = Arc::new(Pause::default());
        let (aws, ctx, id) = super::prepared_with(pause.clone(), |config| {
            config.migration.as_mut().unwrap().rollback_command =
                Some(vec!["bin/migrate".into(), "down".into()]);
        })
        .await;
        pause.ctx.set(ctx.clone()).ok();
        bluegreen::steps::migrate::start(
            &ctx,
            &DeploymentRef {
                deployment_id: id.clone(),
            },
        )
        .await
        .unwrap();
        // The production migration ran (before launch) and exited 0.
        let migration = aws.with(|s| s.ecs.tasks.keys().next().cloned()).unwrap();
        aws.with(|s| {
            let task = s.ecs.tasks.get_mut(&migration).unwrap();
            task.listed = true;
            task.state.last_status = "STOPPED".into();
            task.state.stop_code = Some("EssentialContainerExited".into());
            for container in &mut task.state.containers {
                container.exit_code = Some(0);
            }
        });
        let racing_id = id.clone();
        pause.arm(
            "ecs:RunTask",
            1,
            Box::new(move |ctx: Context| {
                Box::pin(async move {
                    // The reconciler's abort, as it runs after the ABORTED event.
                    let _ = bluegreen::ending::abort(
                        &ctx,
                        &bluegreen::steps::FailureInput {
                            deployment_id: racing_id,
                            error: Some(bluegreen::steps::CaughtError {
                                error: "ExecutionEnded".into(),
                                cause: "its execution ended ABORTED".into(),
                            }),
                        },
                    )
                    .await;
                })
            }),
        );
        let first = super::abort_again(&ctx, &id).await;
        assert!(pause.ran());
        assert!(first.wait.is_some(), "{}", first.detail);
        let rollbacks: Vec<String> = aws.with(|s| {
            s.ecs
                .tasks
                .iter()
                .filter(|(_, t)| t.command == ["bin/migrate", "down"])
                .map(|(arn, _)| arn.clone())
                .collect()
        });
        assert_eq!(rollbacks.len(), 1, "the rollback command ran twice");
        let record = Records::new(&ctx).get(&id).await.unwrap();
        assert_eq!(
            record.rollback_migration.map(|t| t.task_arn),
            Some(rollbacks[0].clone())
        );
    });
}

/// A retry and an unlock of the same deployment at once (the unlock lands between the retry's
/// reads and its write): the retry's one transaction finds the lock no longer its
/// deployment's and changes nothing — never a rollback or finish run beside the next push.
#[test]
fn a_retry_racing_an_unlock_changes_nothing_once_the_lock_is_gone() {
    block_on(async {
        let pause = Arc::new(Pause::default());
        let (_aws, ctx, id) = ready_to_switch(pause.clone()).await;
        Records::new(&ctx)
            .update_ending(&id, Change::new().status(Status::NeedsAttention))
            .await
            .unwrap();
        bluegreen::lock::Locks::new(&ctx)
            .mark_needs_attention("shop", &id, "a person must look")
            .await
            .unwrap();
        pause.arm(
            "dynamodb:TransactWriteItems",
            1,
            Box::new(|ctx: Context| {
                Box::pin(async move {
                    bluegreen::operator::unlock(&ctx, "shop", "carol")
                        .await
                        .unwrap();
                })
            }),
        );
        let err = bluegreen::operator::retry(&ctx, &id, "bob", std::time::Duration::ZERO)
            .await
            .unwrap_err();
        assert!(pause.ran());
        assert_eq!(err.name(), "RetryRefused", "{err}");
        let record = Records::new(&ctx).get(&id).await.unwrap();
        assert_eq!(record.status, Status::NeedsAttention);
        assert_eq!(record.resumed, None, "the retry wrote nothing");
        let (green_share, green_desired, _, _, holder) = seen(&ctx, &id).await;
        assert_eq!((green_share, holder), (0, None));
        assert!(green_desired > 0, "no ending ran: pre-prod left as it was");
    });
}
