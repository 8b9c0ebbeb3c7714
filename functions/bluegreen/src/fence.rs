//! Fencing between an abort and the step invocations still in flight (DESIGN 16 and 17).
//!
//! `StopExecution` does not stop a Lambda invocation that is already running, so an abort
//! cannot know from Step Functions alone that no step will still move traffic, scale a slot or
//! start a migration. Three writes on the deployment's record order them instead:
//!
//! - **claim**: every step invocation first sets the record's `inflight` lease (its token and
//!   `until` = start + the function's timeout + a margin), only while the record has not ended
//!   and no abort was requested; otherwise it stops at once ([`StepError::Fenced`]). It clears
//!   the lease when it returns, however it returns.
//! - **guard**: immediately before each side effect that moves traffic, scales a slot or
//!   starts a task, a step reads the record again (consistently) and stops if an abort was
//!   requested.
//! - **abort request**: an abort first sets `abort_requested` (once; an operator's abort only
//!   before traffic may have moved). The ending then waits until no lease is live — Lambda
//!   ends every invocation by its timeout, so `until` is a true bound — and only then reads
//!   AWS and undoes what it finds.
//!
//! A status write is fenced by the same mark (`Records::update`), so a step either moved the
//! status before the abort was requested (and the abort sees it) or changes nothing. What is
//! left is the residual window of any check-then-act against ELB or ECS: a step that passed
//! its guard just before the request still acts; the ending observes after its lease and sees
//! that effect.

use chrono::Duration;
use tracing::warn;

use crate::context::Context;
use crate::error::{StepError, StepResult};
use crate::ports::tables::{Cond, Path};
use crate::record::{
    ABORT_REQUESTED, AbortRequest, Change, Deployment, Inflight, RESUMED, Records, Status,
    status_value,
};
use crate::step_table::Step;

/// Added to a function's timeout for the lease: the invocation's clock and the table's may
/// differ a little, and Lambda's timeout is measured from the start of the invocation.
pub const LEASE_MARGIN_SECONDS: i64 = 30;

/// A step invocation's claim on its deployment, released by [`release`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The deployment.
    pub deployment_id: String,
    /// This invocation's token.
    pub token: String,
    /// The end of an earlier invocation's live lease this one took over.
    pub earlier_until: Option<chrono::DateTime<chrono::Utc>>,
}

/// How often a claim re-reads and tries again when another invocation claimed in between.
const CLAIM_ATTEMPTS: usize = 5;

/// Claims the deployment for one invocation of `step`: fails with [`StepError::Fenced`] when
/// an abort was requested, [`StepError::DeploymentEnded`] when it has ended. A live lease of
/// another invocation is taken over (Step Functions retries a task on some Lambda errors while
/// the earlier attempt may still run), and its end is kept: releasing this lease leaves the
/// deployment leased until the earlier invocation cannot act any more.
pub async fn claim(ctx: &Context, deployment_id: &str, step: &Step) -> StepResult<Lease> {
    let records = Records::new(ctx);
    for _ in 0..CLAIM_ATTEMPTS {
        let current = records.get(deployment_id).await?;
        if fenced_out(&current) {
            return Err(refusal(&current, &format!("the {} step", step.name)));
        }
        let now = ctx.now();
        let token = format!(
            "{}-{}",
            step.name,
            now.timestamp_nanos_opt().unwrap_or_default()
        );
        let earlier_until =
            live_lease(&current, now).map(|l| l.earlier_until.map_or(l.until, |e| e.max(l.until)));
        let inflight = Inflight {
            token: token.clone(),
            step: step.name.to_owned(),
            until: now + Duration::seconds(step.timeout_seconds as i64 + LEASE_MARGIN_SECONDS),
            earlier_until,
        };
        // Unchanged since the read: no other claim landed in between.
        let unchanged = match &current.inflight {
            Some(seen) => Cond::Eq(
                Path::of("inflight.token"),
                serde_dynamo::AttributeValue::S(seen.token.clone()),
            ),
            None => Cond::absent("inflight"),
        };
        if records
            .update_unless_ended(
                deployment_id,
                Change::new().inflight(&inflight),
                Cond::And(vec![
                    Cond::absent(ABORT_REQUESTED),
                    Cond::absent(RESUMED),
                    unchanged,
                ]),
            )
            .await?
        {
            return Ok(Lease {
                deployment_id: deployment_id.to_owned(),
                token,
                earlier_until,
            });
        }
    }
    Err(StepError::AwsTransient {
        operation: "dynamodb:UpdateItem",
        message: format!("the lease on {deployment_id} changed on every attempt to claim it"),
    })
}

/// Ends this invocation's lease if it is still its own: removed, or — when it took over a
/// lease that is still live — left until that lease's end. A failure is only logged: the lease
/// then runs out at its `until`, and an abort waits that long.
pub async fn release(ctx: &Context, lease: &Lease) {
    let mine = Cond::Eq(
        Path::of("inflight.token"),
        serde_dynamo::AttributeValue::S(lease.token.clone()),
    );
    let change = match lease.earlier_until {
        Some(until) if until > ctx.now() => Change::new().inflight(&Inflight {
            token: format!("{}-released", lease.token),
            step: "an earlier attempt".to_owned(),
            until,
            earlier_until: None,
        }),
        _ => Change::new().no_inflight(),
    };
    if let Err(e) = Records::new(ctx)
        .update_unless_ended(&lease.deployment_id, change, mine)
        .await
    {
        warn!(deployment_id = %lease.deployment_id, error = %e, "could not release the step's lease");
    }
}

/// Runs `work` as one leased invocation of `step` on `deployment_id`: claim, work, release
/// (also when the work fails).
pub async fn leased<T>(
    ctx: &Context,
    deployment_id: &str,
    step: &Step,
    work: impl Future<Output = StepResult<T>>,
) -> StepResult<T> {
    let lease = claim(ctx, deployment_id, step).await?;
    let answer = work.await;
    release(ctx, &lease).await;
    answer
}

/// Reads the record once more, consistently, right before `action` (a side effect that moves
/// traffic, scales a slot or starts a task): [`StepError::Fenced`] if an abort was requested
/// meanwhile, [`StepError::DeploymentEnded`] if it has ended.
pub async fn guard(ctx: &Context, deployment_id: &str, action: &str) -> StepResult<()> {
    let current = Records::new(ctx).get(deployment_id).await?;
    if fenced_out(&current) {
        return Err(refusal(&current, action));
    }
    Ok(())
}

/// Whether no step invocation may act on `deployment` any more: it has ended, an abort was
/// requested, or an operator re-ran its ending (`retry`). The last is the deployment's new
/// generation: the execution it belonged to is over, and an invocation of that execution
/// still in flight (or a redrive of it) must not act beside the ending the operator runs.
fn fenced_out(deployment: &Deployment) -> bool {
    deployment.status.is_terminal()
        || deployment.abort_requested.is_some()
        || deployment.resumed.is_some()
}

/// Why a claim or guard on `deployment` stops `what`.
fn refusal(deployment: &Deployment, what: &str) -> StepError {
    let id = deployment.deployment_id.clone();
    if deployment.status.is_terminal() {
        return StepError::DeploymentEnded {
            id,
            status: deployment.status.to_string(),
        };
    }
    match (&deployment.abort_requested, &deployment.resumed) {
        (Some(request), _) => StepError::Fenced {
            id,
            why: format!(
                "an abort was requested by {} at {}; {what} does nothing more",
                request.by, request.at
            ),
        },
        (None, Some(resumed)) => StepError::Fenced {
            id,
            why: format!(
                "{} re-ran its {} at {}; {what} does nothing more",
                resumed.by, resumed.ending, resumed.at
            ),
        },
        (None, None) => StepError::DeploymentEnded {
            id,
            status: deployment.status.to_string(),
        },
    }
}

/// What [`request_abort`] found.
#[derive(Debug, Clone, PartialEq)]
pub enum AbortMark {
    /// This call set the mark.
    Requested,
    /// An abort was already requested (by someone, at some time).
    AlreadyRequested(AbortRequest),
    /// The mark was not set: the record (read after the refused write) has ended, or is in a
    /// status in `not_in`.
    Refused(Box<Deployment>),
}

/// Sets the abort mark once, unless the record has ended or is in one of the statuses
/// `not_in` (an operator may not abort once traffic may have moved: that is a rollback). One
/// conditional write, so a step's status write and the request are ordered.
pub async fn request_abort(
    ctx: &Context,
    deployment_id: &str,
    by: &str,
    not_in: &[Status],
) -> StepResult<AbortMark> {
    let request = AbortRequest {
        by: by.to_owned(),
        at: ctx.now(),
    };
    let mut condition = vec![Cond::absent(ABORT_REQUESTED)];
    condition.extend(
        not_in
            .iter()
            .map(|s| Cond::Ne(Path::of("status"), status_value(*s))),
    );
    let records = Records::new(ctx);
    if records
        .update_unless_ended(
            deployment_id,
            Change::new().abort_requested(&request),
            Cond::And(condition),
        )
        .await?
    {
        return Ok(AbortMark::Requested);
    }
    let current = records.get(deployment_id).await?;
    Ok(match current.abort_requested.clone() {
        Some(earlier) if !current.status.is_terminal() => AbortMark::AlreadyRequested(earlier),
        _ => AbortMark::Refused(Box::new(current)),
    })
}

/// Until when a step invocation may still act on the deployment, if one may.
pub fn live_lease(
    deployment: &Deployment,
    now: chrono::DateTime<chrono::Utc>,
) -> Option<&Inflight> {
    deployment.inflight.as_ref().filter(|l| l.until > now)
}
