//! The people and schedules around a deployment: pushes delivered by EventBridge to the
//! intake state machine; approvers who approve, reject or let a window close; operators who
//! abort, retry, unlock and roll back; the reconciler's sweep and the scheduled teardown.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bluegreen::Context;
use bluegreen::record::{Records, Status};
use bluegreen::steps::approval::{self, Decision};
use bluegreen::steps::reconcile::{self, Request};
use bluegreen::{operator, steps};
use bluegreen_statemachine::{Definition, INTAKE_ASL, Runner};

use crate::{MOTO_CALLER, push_event};

use super::clock::{SimClock, stamp};
use super::executions::{SimExecutions, invocation};
use super::rng::Rng;
use super::scenario::Scenario;

/// Who operators are, as the config lists them.
const OPERATOR: &str = MOTO_CALLER;

/// What an actor writes down.
pub type Trace = Arc<Mutex<Vec<String>>>;

pub(super) fn note(trace: &Trace, line: String) {
    trace
        .lock()
        .expect("trace")
        .push(format!("{} {line}", stamp()));
}

/// Delivers each push's event to the intake state machine when the scenario says (late,
/// out of order, twice).
pub async fn pushes(scenario: Scenario, executions: Arc<SimExecutions>, trace: Trace) {
    let mut deliveries: Vec<(u64, usize)> = scenario
        .pushes
        .iter()
        .enumerate()
        .flat_map(|(i, p)| {
            let mut times = vec![(p.delivered_after, i)];
            if p.duplicated {
                times.push((p.delivered_after + 30, i));
            }
            times
        })
        .collect();
    deliveries.sort();
    let epoch: chrono::DateTime<chrono::Utc> = super::clock::EPOCH.parse().expect("epoch");
    for (at, i) in deliveries {
        let wait = at.saturating_sub(super::clock::elapsed().as_secs());
        tokio::time::sleep(Duration::from_secs(wait)).await;
        let push = &scenario.pushes[i];
        let pushed_at = epoch + chrono::Duration::seconds(push.pushed_after as i64);
        let event = push_event(
            &push.tag,
            push.digest,
            &push.event_id,
            &pushed_at.to_rfc3339(),
        );
        note(
            &trace,
            format!("push {} ({}) delivered", push.tag, push.event_id),
        );
        let tasks = executions.tasks();
        let jitter = executions.jitter();
        tokio::spawn(async move {
            let definition = Definition::parse(INTAKE_ASL).expect("the committed intake");
            let runner = Runner::new(
                definition,
                "arn:sim:stateMachine:bluegreen-intake",
                tasks,
                Arc::new(SimClock),
            )
            .with_jitter(jitter);
            runner.run(&format!("intake-{i}"), event).await;
        });
    }
}

/// Approvers: each approval request is approved, rejected or left alone, after a while.
pub async fn approvers(ctx: Context, rng: Rng, scenario: Scenario, trace: Trace) {
    let mut decided = BTreeSet::new();
    loop {
        tokio::time::sleep(Duration::from_secs(30 + rng.below(300))).await;
        let Ok(waiting) = Records::new(&ctx)
            .with_status(Status::AwaitingApproval)
            .await
        else {
            continue;
        };
        for deployment in waiting {
            if !decided.insert(deployment.deployment_id.clone()) {
                continue;
            }
            let roll = rng.below(1000);
            let approve = match (scenario.decisions.get(decided.len() - 1), roll) {
                (Some(scripted), _) => *scripted,
                (None, r) if r < scenario.approves => true,
                (None, r) if r < scenario.approves + scenario.rejects => false,
                _ => continue, // left to time out
            };
            let id = deployment.deployment_id.clone();
            let decision = Decision {
                approve,
                approver: OPERATOR.into(),
                reason: (!approve).then(|| "not good enough (simulated)".into()),
                channel: "cli".into(),
                link_nonce: None,
            };
            let delay = rng.below(900);
            let ctx = ctx.clone();
            let trace = trace.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs(delay)).await;
                let actor = if approve { "approve" } else { "reject" }.to_owned();
                let answer = invocation(&ctx, actor, move |ctx| async move {
                    approval::decide_and_send(&ctx, &id, &decision).await
                })
                .await;
                note(
                    &trace,
                    format!(
                        "{} {}: {answer:?}",
                        if approve { "approve" } else { "reject" },
                        deployment.deployment_id
                    ),
                );
            });
        }
    }
}

/// Operators: abort a running deployment now and then; retry or unlock one that needs
/// attention; roll back right after a success, and run an unfinished rollback again; redeploy
/// what runs, or a deployment that served, through the full flow.
pub async fn operators(ctx: Context, rng: Rng, scenario: Scenario, trace: Trace) {
    let mut acted = BTreeSet::new();
    loop {
        tokio::time::sleep(Duration::from_secs(60 + rng.below(1200))).await;
        let records = match Records::new(&ctx).for_service("shop", 20).await {
            Ok(r) => r,
            Err(_) => continue,
        };
        for d in records {
            let id = d.deployment_id.clone();
            let action = match d.status {
                s if !s.is_terminal() && s != Status::Queued && rng.chance(scenario.aborts) => {
                    "abort"
                }
                Status::NeedsAttention => *rng.pick(&["retry", "retry", "unlock"]),
                Status::Succeeded if rng.chance(50) => "rollback",
                // A config-only release, or this deployment again later (`rollback --to`).
                Status::Succeeded | Status::RolledBack if rng.chance(20) => {
                    *rng.pick(&["redeploy", "rollback-to"])
                }
                Status::RolledBack if bluegreen::retirement::pending(&d) => "finish-rollback",
                _ => continue,
            };
            // An unfinished rollback is run again until it finishes, as its error says.
            if action != "finish-rollback" && !acted.insert((id.clone(), action)) {
                continue;
            }
            let trace = trace.clone();
            let ctx = ctx.clone();
            tokio::spawn(async move {
                let answer = invocation(&ctx, action.to_owned(), move |ctx| async move {
                    match action {
                        "abort" => operator::abort(&ctx, &id, OPERATOR)
                            .await
                            .map(|a| format!("{a:?}")),
                        "retry" => operator::retry(&ctx, &id, OPERATOR, Duration::from_secs(600))
                            .await
                            .map(|a| format!("{a:?}")),
                        "unlock" => operator::unlock(&ctx, "shop", OPERATOR)
                            .await
                            .map(|a| format!("{a:?}")),
                        "redeploy" => {
                            bluegreen::release::redeploy(&ctx, "shop", OPERATOR, &request(&id))
                                .await
                                .map(|a| format!("{a:?}"))
                        }
                        "rollback-to" => bluegreen::release::roll_back_to(
                            &ctx,
                            "shop",
                            &id,
                            OPERATOR,
                            &request(&id),
                        )
                        .await
                        .map(|a| format!("{a:?}")),
                        _ => operator::manual_rollback(&ctx, "shop", OPERATOR)
                            .await
                            .map(|a| format!("{a:?}")),
                    }
                })
                .await;
                note(
                    &trace,
                    format!(
                        "{action} {}: {}",
                        d.deployment_id,
                        answer.map_or_else(|e| e, |_| "done".into())
                    ),
                );
            });
        }
    }
}

/// The reconciler's scheduled sweep, every five minutes, and the teardown every half hour.
pub async fn schedules(ctx: Context, trace: Trace) {
    let mut minutes = 0;
    loop {
        tokio::time::sleep(Duration::from_secs(300)).await;
        minutes += 5;
        let answer = invocation(&ctx, "sweep".into(), |ctx| async move {
            reconcile::run(&ctx, &Request::Sweep).await.map(|_| ())
        })
        .await;
        if let Err(e) = answer {
            note(&trace, format!("sweep: {e}"));
        }
        if minutes % 30 == 0 {
            let answer = invocation(&ctx, "teardown".into(), |ctx| async move {
                steps::teardown::run(&ctx).await.map(|_| ())
            })
            .await;
            if let Err(e) = answer {
                note(&trace, format!("teardown: {e}"));
            }
        }
    }
}

/// A request id for a person's release request about deployment `id` (one request per
/// deployment and action: the operator acts once on each).
fn request(id: &str) -> String {
    id.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .rev()
        .take(40)
        .collect()
}
