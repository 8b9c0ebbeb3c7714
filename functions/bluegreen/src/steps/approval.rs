//! Request approval: store the task token and the evidence on the deployment record and notify
//! approvers; and record a decision exactly once.
//!
//! The task token is written to its own attribute and is never returned, logged or put in a
//! notification. Sending `SendTaskSuccess`/`SendTaskFailure` with it is the job of whoever
//! records the decision (console or CLI), after [`decide`] succeeded.

use chrono::Duration;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::config::ApprovalPolicy;
use crate::context::Context;
use crate::error::{StepError, StepResult};
use crate::executions;
use crate::record::{
    ApprovalState, Change, Deployment, RecordedDecision, Records, Status, StepOutcome,
    TimelineEntry, Verdict,
};

use super::load_active;

const STEP: &str = super::registry::APPROVAL.name;

/// Input from the state machine's `waitForTaskToken` task.
#[derive(Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RequestInput {
    /// The deployment.
    pub deployment_id: String,
    /// `$$.Task.Token`.
    pub task_token: String,
}

impl std::fmt::Debug for RequestInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestInput")
            .field("deployment_id", &self.deployment_id)
            .finish_non_exhaustive()
    }
}

/// What request approval did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "approval", rename_all = "snake_case")]
pub enum Requested {
    /// Waiting for a person.
    Pending {
        /// Latest time a decision is accepted.
        expires_at: chrono::DateTime<chrono::Utc>,
        /// Whether approvers were notified.
        notified: bool,
    },
    /// Policy `auto`: no person needed.
    Automatic,
}

/// Stores the token and evidence, sets `awaiting_approval`, and notifies approvers once.
pub async fn request(ctx: &Context, input: &RequestInput) -> StepResult<Requested> {
    if input.task_token.trim().is_empty() {
        return Err(StepError::EventMalformed("task_token is empty".into()));
    }
    let deployment = load_active(ctx, &input.deployment_id).await?;
    let records = Records::new(ctx);
    if deployment.config.approval.policy == ApprovalPolicy::Auto {
        return auto_approved(ctx, &deployment).await;
    }
    let approval = match &deployment.approval {
        Some(existing) => existing.clone(),
        None => {
            let now = ctx.now();
            ApprovalState {
                requested_at: now,
                expires_at: now
                    + Duration::seconds(deployment.config.approval.timeout_seconds as i64),
                decision: None,
                approver: None,
                decided_at: None,
                reason: None,
                channel: None,
                link_nonce: None,
                delivered_at: None,
            }
        }
    };
    // The token may differ on a retry of the state; the newest one is the one that works. A
    // retry writes only the token: writing the approval read above again would erase a
    // decision recorded since.
    let id = &deployment.deployment_id;
    let token = || Change::new().task_token(&input.task_token);
    let opened = deployment.approval.is_none()
        && records
            .open_approval(
                id,
                token()
                    .approval(&approval)
                    .status(Status::AwaitingApproval)
                    .log(
                        STEP,
                        StepOutcome::Requested,
                        format!(
                            "approvers: {}",
                            deployment.config.approval.approvers.join(", ")
                        ),
                        ctx.now(),
                    ),
            )
            .await?;
    // A decision recorded before this retry (its first attempt failed after opening the
    // window) needs no one asked any more: approvers are not told "approval requested" for
    // a deployment someone has already decided.
    let decided = if opened {
        false
    } else {
        records.update(id, token()).await?;
        redeliver(ctx, id, &input.task_token).await?
    };
    let notified = if deployment.has_outcome(STEP, StepOutcome::Notified) {
        true
    } else if decided {
        false
    } else {
        let sent = crate::notify::approval_requested(ctx, &deployment, &approval).await?;
        if sent {
            records
                .update(
                    &deployment.deployment_id,
                    Change::new().log(STEP, StepOutcome::Notified, "SNS", ctx.now()),
                )
                .await?;
        }
        sent
    };
    Ok(Requested::Pending {
        expires_at: approval.expires_at,
        notified,
    })
}

/// `approval.policy = "auto"`: the request is answered at once, noted once on the timeline.
async fn auto_approved(ctx: &Context, deployment: &Deployment) -> StepResult<Requested> {
    // Checked again here, on the record's copy: a record prepared before the stack narrowed
    // `AutoApproveServices` (or carried past prepare some other way) is not approved by it.
    if !ctx.settings.auto_approve.allows(&deployment.service) {
        return Err(StepError::ConfigInvalid(vec![format!(
            "approval.policy: \"auto\" is not allowed for {} by the stack \
             (AutoApproveServices); nothing was switched",
            deployment.service
        )]));
    }
    if !deployment.has_outcome(STEP, StepOutcome::AutoApproved) {
        Records::new(ctx)
            .update(
                &deployment.deployment_id,
                Change::new().log(STEP, StepOutcome::AutoApproved, "policy auto", ctx.now()),
            )
            .await?;
    }
    Ok(Requested::Automatic)
}

/// A decision recorded before a retried request wrote its token went to the earlier token,
/// which no longer works: it is sent to `token` now, so the execution goes on at once instead
/// of waiting for the approval timeout to settle it. Answers whether a decision is recorded.
async fn redeliver(ctx: &Context, deployment_id: &str, token: &str) -> StepResult<bool> {
    let deployment = Records::new(ctx).get(deployment_id).await?;
    let Some(approval) = deployment.approval.as_ref() else {
        return Ok(false);
    };
    let Some(verdict) = approval.decision else {
        return Ok(false);
    };
    if approval.delivered_at.is_some()
        || token.starts_with(LOCAL_TOKEN_PREFIX)
        || verdict == Verdict::TimedOut
    {
        return Ok(true);
    }
    let approver = approval.approver.clone().unwrap_or_default();
    let sent = send(
        ctx,
        token,
        verdict == Verdict::Approved,
        &approver,
        approval.reason.as_deref(),
    )
    .await;
    match sent {
        Ok(()) => {
            note_delivered(ctx, deployment_id, "sent to the retried request's token").await?;
        }
        // The decider sent it to this token first: the execution has it.
        Err(StepError::DecisionNotDelivered(_)) => {}
        Err(e) => return Err(e),
    }
    Ok(true)
}

/// Sends a decision to the waiting task: `SendTaskSuccess` with `{"decision": "approved",
/// "approver": …}` or `SendTaskFailure` with error `ApprovalRejected`.
async fn send(
    ctx: &Context,
    token: &str,
    approve: bool,
    approver: &str,
    reason: Option<&str>,
) -> StepResult<()> {
    if approve {
        let output = serde_json::json!({"decision": Verdict::Approved, "approver": approver});
        executions::send_task_success(ctx, token, &output.to_string()).await
    } else {
        let cause = rejection_cause(approver, reason.unwrap_or_default());
        executions::send_task_failure(ctx, token, "ApprovalRejected", &cause).await
    }
}

/// Notes that the decision reached Step Functions (an execution that already acted on it and
/// ended is fine).
async fn note_delivered(ctx: &Context, deployment_id: &str, how: &str) -> StepResult<()> {
    let noted = Records::new(ctx)
        .update(
            deployment_id,
            Change::new().approval_delivered_at(ctx.now()).log(
                STEP,
                StepOutcome::Delivered,
                how,
                ctx.now(),
            ),
        )
        .await;
    match noted {
        Ok(()) | Err(StepError::DeploymentEnded { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Input of the approval wait's timeout path (`ApprovalTimedOut` in the definition).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TimedOutInput {
    /// The deployment.
    pub deployment_id: String,
    /// Always `true`: tells this input from a [`RequestInput`].
    pub timed_out: bool,
}

/// What the request-approval function is asked to do.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum ApprovalCall {
    /// The `waitForTaskToken` task: store the token, notify.
    Request(RequestInput),
    /// The wait timed out: settle from the record.
    TimedOut(TimedOutInput),
}

/// The answer of [`settle_timeout`] when a decision was recorded in time: what
/// `SendTaskSuccess` would have carried.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Settled {
    /// Always approved (a rejection is an error).
    pub decision: Verdict,
    /// Who approved.
    pub approver: String,
}

/// Settles an approval wait that Step Functions timed out. A decision recorded in time but never
/// delivered (its `SendTaskSuccess` failed) is not lost: an approval is answered as if delivered
/// (the definition goes on to promote), a rejection fails with `ApprovalRejected`. Without a
/// decision, `timed_out` is recorded with one conditional write — a decision racing it either
/// lands first (and counts) or is refused after — and the answer is `ApprovalTimedOut`.
pub async fn settle_timeout(ctx: &Context, input: &TimedOutInput) -> StepResult<Settled> {
    let records = Records::new(ctx);
    let now = ctx.now();
    let closed = records
        .close_approval_window(&input.deployment_id, STEP, now)
        .await?;
    if closed {
        return Err(StepError::ApprovalTimedOut);
    }
    let deployment = records.get(&input.deployment_id).await?;
    let Some(approval) = deployment.approval.as_ref() else {
        return Err(StepError::NotAwaitingApproval(describe_decided(
            &deployment,
        )));
    };
    match approval.decision {
        Some(Verdict::Approved) => {
            if approval.delivered_at.is_none() {
                records
                    .update(
                        &input.deployment_id,
                        Change::new().approval_delivered_at(now).log(
                            STEP,
                            StepOutcome::Delivered,
                            "recorded in time, taken from the record at the approval timeout",
                            now,
                        ),
                    )
                    .await?;
            }
            Ok(Settled {
                decision: Verdict::Approved,
                approver: approval.approver.clone().unwrap_or_default(),
            })
        }
        Some(Verdict::Rejected) => Err(StepError::ApprovalRejected(rejection_cause(
            approval.approver.as_deref().unwrap_or_default(),
            approval.reason.as_deref().unwrap_or_default(),
        ))),
        Some(Verdict::TimedOut) => Err(StepError::ApprovalTimedOut),
        None => Err(StepError::NotAwaitingApproval(describe_decided(
            &deployment,
        ))),
    }
}

/// A person's decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Decision {
    /// Approve or reject.
    pub approve: bool,
    /// Who decided: the approver a signed link names, or the caller's IAM ARN (CLI, API).
    pub approver: String,
    /// Required when rejecting.
    #[serde(default)]
    pub reason: Option<String>,
    /// `console` or `cli`.
    pub channel: String,
    /// The nonce of the signed link used, recorded so the link works once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link_nonce: Option<String>,
}

impl Decision {
    /// The decision with its reason as it is stored ([`crate::text::reason`]): one line,
    /// trimmed, none when empty; a reason with control characters or too long is refused
    /// ([`StepError::InputRefused`]) before anything is read or written.
    pub fn normalised(&self) -> StepResult<Decision> {
        Ok(Decision {
            reason: crate::text::reason(self.reason.as_deref().unwrap_or_default())?,
            ..self.clone()
        })
    }
}

pub use crate::step_input::LOCAL_TOKEN_PREFIX;

/// Where a recorded decision went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Delivered {
    /// Step Functions accepted `SendTaskSuccess`/`SendTaskFailure`.
    StepFunctions,
    /// A local runner waits on the record and picks the decision up itself.
    LocalRunner,
}

/// The answer to a decision, as the operator API returns it and the CLI prints it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Decided {
    /// The deployment.
    pub deployment_id: String,
    /// Approved or rejected.
    pub decision: Verdict,
    /// Who the decision is recorded for.
    pub approver: String,
    /// Where it went.
    pub delivered: Delivered,
}

/// Records the decision exactly once, then — and only then — sends it to the waiting
/// execution: `SendTaskSuccess` with `{"decision": "approved", "approver": …}` or
/// `SendTaskFailure` with error `ApprovalRejected`.
pub async fn decide_and_send(
    ctx: &Context,
    deployment_id: &str,
    decision: &Decision,
) -> StepResult<Delivered> {
    let decision = &decision.normalised()?;
    let token = decide(ctx, deployment_id, decision).await?;
    if token.starts_with(LOCAL_TOKEN_PREFIX) {
        return Ok(Delivered::LocalRunner);
    }
    send(
        ctx,
        &token,
        decision.approve,
        &decision.approver,
        decision.reason.as_deref(),
    )
    .await?;
    note_delivered(ctx, deployment_id, "sent to Step Functions").await?;
    Ok(Delivered::StepFunctions)
}

/// The `ApprovalRejected` cause the state machine carries into abort (and the local runner
/// uses too).
pub fn rejection_cause(approver: &str, reason: &str) -> String {
    format!("rejected by {approver}: {reason}")
}

/// Records a decision exactly once (a conditional write: a double click or a second approver
/// cannot decide twice). Returns the task token to send to Step Functions.
///
/// Who may decide is read from the service's **current** config, not from the copy the record
/// took when the deployment started: an approver removed since is refused, and nobody with
/// write access to the record can add themselves. A decision that was recorded but never
/// delivered (`SendTaskSuccess` failed) is handed back for re-delivery when the same approver
/// makes the same decision again.
pub async fn decide(ctx: &Context, deployment_id: &str, decision: &Decision) -> StepResult<String> {
    let decision = &decision.normalised()?;
    let deployment = load_active(ctx, deployment_id).await?;
    let current = crate::config_store::ConfigStore::new(ctx)
        .load(&deployment.service)
        .await?;
    let approvers = approvers_now(&deployment, &current.approval.approvers);
    if let Some(token) = undelivered(ctx, &deployment, decision, &approvers).await? {
        return Ok(token);
    }
    let approver = check_decision(&deployment, decision, &approvers, ctx.now())?;
    // A decision never precedes its request, whatever the deciding process's clock says: hosts
    // drift, and a `bluegreen run --time-scale` writes its records on a virtual clock that runs
    // ahead of the real one another terminal decides with.
    let requested_at = deployment.approval.as_ref().map(|a| a.requested_at);
    let now = requested_at.map_or(ctx.now(), |at| ctx.now().max(at));
    let verdict = Verdict::of(decision.approve);
    let entry = TimelineEntry {
        step: STEP.into(),
        at: now,
        outcome: verdict.outcome(),
        detail: format!(
            "by {} via {}{}",
            approver,
            decision.channel,
            decision
                .reason
                .as_deref()
                .map(|r| format!(": {r}"))
                .unwrap_or_default()
        ),
    };
    let recorded = RecordedDecision {
        verdict,
        approver: &approver,
        reason: decision.reason.as_deref(),
        channel: &decision.channel,
        link_nonce: decision.link_nonce.as_deref(),
    };
    let records = Records::new(ctx);
    match records
        .record_decision(deployment_id, &recorded, entry)
        .await?
    {
        Some(token) => Ok(token),
        None => {
            let now_stored = records.get(deployment_id).await?;
            Err(StepError::NotAwaitingApproval(describe_decided(
                &now_stored,
            )))
        }
    }
}

/// "approved by alice@example.com via console at …", or the status when nothing was decided.
pub fn describe_decided(deployment: &Deployment) -> String {
    match deployment
        .approval
        .as_ref()
        .filter(|a| a.decision.is_some())
    {
        Some(a) if a.decision == Some(Verdict::TimedOut) => format!(
            "deployment {}: the approval window closed at {} without a decision",
            deployment.deployment_id,
            a.expires_at.to_rfc3339()
        ),
        Some(a) => format!(
            "deployment {} was already {} by {} via {} at {}",
            deployment.deployment_id,
            a.decision
                .map(Verdict::outcome)
                .unwrap_or(StepOutcome::Other),
            a.approver.as_deref().unwrap_or("?"),
            a.channel.as_deref().unwrap_or("?"),
            a.decided_at.map(|t| t.to_rfc3339()).unwrap_or_default()
        ),
        None => format!(
            "deployment {} is {}, not awaiting approval",
            deployment.deployment_id, deployment.status
        ),
    }
}

/// The stored task token when `decision` repeats a recorded decision that never reached Step
/// Functions (same approver, same verdict, no `delivered_at`, still awaiting approval), so the
/// caller can send it again. Anyone else gets `None` and the usual "already decided" answer.
async fn undelivered(
    ctx: &Context,
    deployment: &Deployment,
    decision: &Decision,
    approvers: &[String],
) -> StepResult<Option<String>> {
    let Some(recorded) = deployment.approval.as_ref() else {
        return Ok(None);
    };
    let repeat = deployment.status == Status::AwaitingApproval
        && recorded.delivered_at.is_none()
        && recorded.decision == Some(Verdict::of(decision.approve))
        && recorded.approver.as_deref() == Some(decision.approver.as_str())
        && crate::identity::listed_approver(approvers, &decision.approver).is_some();
    if !repeat {
        return Ok(None);
    }
    let token = Records::new(ctx)
        .task_token(&deployment.deployment_id)
        .await?
        // A local runner reads the decision from the record: nothing to deliver again.
        .filter(|t| !t.starts_with(LOCAL_TOKEN_PREFIX));
    if token.is_some() {
        tracing::info!(
            deployment_id = %deployment.deployment_id,
            approver = %decision.approver,
            "re-delivering a recorded decision Step Functions never received"
        );
    }
    Ok(token)
}

/// Who may decide `deployment` now: the approvers its config named when it started who are
/// still approvers in the service's `current` config. Removing an approver takes effect at
/// once; adding one does not reach a deployment already on its way — otherwise whoever may
/// write configs could name themselves and approve what is waiting (config authorship is not
/// approval).
pub fn approvers_now(deployment: &Deployment, current: &[String]) -> Vec<String> {
    deployment
        .config
        .approval
        .approvers
        .iter()
        .filter(|a| current.contains(a))
        .cloned()
        .collect()
}

/// Checks the decision against the request and the service's current approvers; returns the
/// identity to record (the caller's own ARN even when it matched through its role, so the
/// audit names the session).
fn check_decision(
    deployment: &Deployment,
    decision: &Decision,
    approvers: &[String],
    now: chrono::DateTime<chrono::Utc>,
) -> StepResult<String> {
    let approval = deployment
        .approval
        .as_ref()
        .filter(|_| deployment.status == Status::AwaitingApproval)
        .ok_or_else(|| StepError::NotAwaitingApproval(describe_decided(deployment)))?;
    if approval.decision.is_some() {
        return Err(StepError::NotAwaitingApproval(describe_decided(deployment)));
    }
    if now > approval.expires_at {
        return Err(StepError::ApprovalTimedOut);
    }
    if crate::identity::listed_approver(approvers, &decision.approver).is_none() {
        return Err(StepError::NotAnApprover(format!(
            "{} is not an approver of this deployment of {} (its approvers, as when it \
             started and still in the current config: {})",
            decision.approver,
            deployment.service,
            approvers.join(", ")
        )));
    }
    if !decision.approve && decision.reason.as_deref().unwrap_or("").trim().is_empty() {
        return Err(StepError::EventMalformed(
            "a rejection needs a reason".into(),
        ));
    }
    Ok(decision.approver.clone())
}
