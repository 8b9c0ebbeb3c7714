//! Notifications: one SNS message per event worth a person's attention (awaiting approval,
//! succeeded, aborted, rolled back, superseded). Task tokens never appear in them.

use crate::context::Context;
use crate::error::{StepError, StepResult};
use crate::record::{ApprovalState, Deployment};

/// Tells approvers a deployment awaits them. Returns `false` when no topic is configured.
pub async fn approval_requested(
    ctx: &Context,
    deployment: &Deployment,
    approval: &ApprovalState,
) -> StepResult<bool> {
    let link = ctx
        .settings
        .console_url
        .as_deref()
        .map(|base| {
            format!(
                "{}/deployments/{}",
                base.trim_end_matches('/'),
                deployment.deployment_id
            )
        })
        .unwrap_or_else(|| format!("bluegreen approve {}", deployment.deployment_id));
    let body = format!(
        "{service} is ready to switch to {repo}:{tag} ({digest}).\n\
         Health: {health}\n\
         Approvers: {approvers}\n\
         Decide before {expires}: {link}",
        service = deployment.service,
        repo = deployment.image.repository,
        tag = deployment.image.tag,
        digest = deployment.image.digest,
        health = deployment
            .health_evidence
            .as_deref()
            .unwrap_or("not recorded"),
        approvers = deployment.config.approval.approvers.join(", "),
        expires = approval.expires_at.to_rfc3339(),
    );
    publish(ctx, deployment, "awaiting approval", &body).await
}

/// Reports how a deployment ended (`succeeded`, `aborted`, `rolled back`, `superseded`).
pub async fn outcome(
    ctx: &Context,
    deployment: &Deployment,
    outcome: &str,
    detail: &str,
) -> StepResult<bool> {
    let body = format!(
        "Deployment {id} of {service} ({repo}:{tag}) {outcome}.\n{detail}",
        id = deployment.deployment_id,
        service = deployment.service,
        repo = deployment.image.repository,
        tag = deployment.image.tag,
    );
    publish(ctx, deployment, outcome, &body).await
}

async fn publish(
    ctx: &Context,
    deployment: &Deployment,
    what: &str,
    body: &str,
) -> StepResult<bool> {
    let Some(topic) = ctx.settings.topic_arn.as_deref() else {
        return Ok(false);
    };
    // SNS subjects are limited to 100 characters.
    let subject: String = format!("bluegreen: {} {what}", deployment.service)
        .chars()
        .take(100)
        .collect();
    ctx.sns
        .publish()
        .topic_arn(topic)
        .subject(subject)
        .message(body)
        .message_attributes(
            "deployment_id",
            aws_sdk_sns::types::MessageAttributeValue::builder()
                .data_type("String")
                .string_value(&deployment.deployment_id)
                .build()
                .map_err(|e| StepError::EventMalformed(e.to_string()))?,
        )
        .send()
        .await
        .map_err(|e| StepError::from_sdk("sns:Publish", e))?;
    Ok(true)
}
