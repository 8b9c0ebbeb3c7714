//! Request approval: store the task token and the evidence on the deployment record and notify
//! approvers; and record a decision exactly once.
//!
//! The task token is written to its own attribute and is never returned, logged or put in a
//! notification. Sending `SendTaskSuccess`/`SendTaskFailure` with it is the job of whoever
//! records the decision (console or CLI), after [`decide`] succeeded.

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::Duration;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::config::ApprovalPolicy;
use crate::context::Context;
use crate::error::{Conditional, StepError, StepResult, conditional};
use crate::record::{ApprovalState, Change, Deployment, Records, Status};

use super::load_active;

const STEP: &str = "approval";

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
        if !deployment.has_outcome(STEP, "auto_approved") {
            records
                .update(
                    &deployment.deployment_id,
                    Change::new().log(STEP, "auto_approved", "policy auto", ctx.now()),
                )
                .await?;
        }
        return Ok(Requested::Automatic);
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
            }
        }
    };
    // The token may differ on a retry of the state; the newest one is the one that works.
    let mut change = Change::new()
        .set("task_token", &input.task_token)
        .set("approval", &approval);
    if deployment.approval.is_none() {
        change = change.set("status", &Status::AwaitingApproval).log(
            STEP,
            "requested",
            format!(
                "approvers: {}",
                deployment.config.approval.approvers.join(", ")
            ),
            ctx.now(),
        );
    }
    records.update(&deployment.deployment_id, change).await?;
    let notified = if deployment.has_outcome(STEP, "notified") {
        true
    } else {
        let sent = crate::notify::approval_requested(ctx, &deployment, &approval).await?;
        if sent {
            records
                .update(
                    &deployment.deployment_id,
                    Change::new().log(STEP, "notified", "SNS", ctx.now()),
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

/// A person's decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Decision {
    /// Approve or reject.
    pub approve: bool,
    /// Who decided (must be a listed approver).
    pub approver: String,
    /// Required when rejecting.
    #[serde(default)]
    pub reason: Option<String>,
    /// `console` or `cli`.
    pub channel: String,
}

/// Records a decision exactly once (a conditional write: a double click or a second approver
/// cannot decide twice). Returns the task token to send to Step Functions.
pub async fn decide(ctx: &Context, deployment_id: &str, decision: &Decision) -> StepResult<String> {
    let deployment = load_active(ctx, deployment_id).await?;
    check_decision(&deployment, decision, ctx.now())?;
    let now = ctx.now();
    let outcome = if decision.approve {
        "approved"
    } else {
        "rejected"
    };
    let result = ctx
        .dynamodb
        .update_item()
        .table_name(&ctx.settings.deployments_table)
        .key("deployment_id", AttributeValue::S(deployment_id.to_owned()))
        .update_expression(
            "SET approval.decision = :d, approval.approver = :who, approval.decided_at = :at, \
             approval.reason = :why, approval.channel = :ch, updated_at = :at, \
             timeline = list_append(timeline, :entry)",
        )
        .condition_expression("#status = :waiting AND attribute_not_exists(approval.decision)")
        .expression_attribute_names("#status", "status")
        .expression_attribute_values(":d", AttributeValue::S(outcome.into()))
        .expression_attribute_values(":who", AttributeValue::S(decision.approver.clone()))
        .expression_attribute_values(
            ":at",
            serde_dynamo::to_attribute_value(now).expect("time serialises"),
        )
        .expression_attribute_values(
            ":why",
            decision
                .reason
                .clone()
                .map(AttributeValue::S)
                .unwrap_or(AttributeValue::Null(true)),
        )
        .expression_attribute_values(":ch", AttributeValue::S(decision.channel.clone()))
        .expression_attribute_values(":waiting", AttributeValue::S("awaiting_approval".into()))
        .expression_attribute_values(
            ":entry",
            AttributeValue::L(vec![
                serde_dynamo::to_attribute_value(crate::record::TimelineEntry {
                    step: STEP.into(),
                    at: now,
                    outcome: outcome.into(),
                    detail: format!(
                        "by {} via {}{}",
                        decision.approver,
                        decision.channel,
                        decision
                            .reason
                            .as_deref()
                            .map(|r| format!(": {r}"))
                            .unwrap_or_default()
                    ),
                })
                .expect("entry serialises"),
            ]),
        )
        .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew)
        .send()
        .await;
    match conditional("dynamodb:UpdateItem", result)? {
        Conditional::Written(out) => out
            .attributes
            .and_then(|a| a.get("task_token").and_then(|t| t.as_s().ok()).cloned())
            .ok_or_else(|| {
                StepError::EventMalformed("no task token stored for this deployment".into())
            }),
        Conditional::ConditionFailed => Err(StepError::EventMalformed(format!(
            "deployment {deployment_id} is not awaiting a decision (already decided?)"
        ))),
    }
}

fn check_decision(
    deployment: &Deployment,
    decision: &Decision,
    now: chrono::DateTime<chrono::Utc>,
) -> StepResult<()> {
    let approval = deployment.approval.as_ref().ok_or_else(|| {
        StepError::EventMalformed(format!(
            "deployment {} has not requested approval",
            deployment.deployment_id
        ))
    })?;
    if now > approval.expires_at {
        return Err(StepError::ApprovalTimedOut);
    }
    if !deployment
        .config
        .approval
        .approvers
        .contains(&decision.approver)
    {
        return Err(StepError::EventMalformed(format!(
            "{} is not an approver of {}",
            decision.approver, deployment.service
        )));
    }
    if !decision.approve && decision.reason.as_deref().unwrap_or("").trim().is_empty() {
        return Err(StepError::EventMalformed(
            "a rejection needs a reason".into(),
        ));
    }
    Ok(())
}
