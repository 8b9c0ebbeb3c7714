//! Notifications: an SNS message (and, when configured, a Slack-compatible webhook post) for
//! exactly six events — awaiting approval, succeeded, aborted, rolled back, needs attention,
//! superseded. The
//! [`Notice`] type is the whole list; nothing else is ever sent.
//!
//! Awaiting approval is published once per approver, each with that approver's signed link and
//! the message attributes `kind` and `approver`, so an approver's subscription filters on its own
//! address (`{"approver": ["alice@example.com"]}`) and never sees another's link. The webhook
//! (a shared channel) gets no links, only the console page. Task tokens and the signing key
//! never appear in any message.

use crate::context::Context;
use crate::error::{StepError, StepResult};
use crate::links::{self, LinkClaims};
use crate::ports::notifications::Message;
use crate::record::{ApprovalState, Deployment};
use crate::text;

/// The events worth a person's attention.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    /// A deployment waits for an approver.
    AwaitingApproval,
    /// The new slot serves production.
    Succeeded,
    /// Failed before the switch; production untouched.
    Aborted,
    /// Traffic went back to the old slot (automatically or by an operator).
    RolledBack,
    /// A newer push replaced a queued deployment.
    Superseded,
    /// The deployment ended in a state a person must resolve; the lock stays held.
    NeedsAttention,
    /// A push arrived for a service whose stored config is invalid: nothing was deployed.
    ConfigInvalid,
    /// The live-slot guard found production's slots out of shape between deployments.
    LiveSlot,
}

impl Notice {
    /// The `kind` message attribute and the word used in subjects.
    pub fn kind(self) -> &'static str {
        match self {
            Notice::AwaitingApproval => "awaiting_approval",
            Notice::Succeeded => "succeeded",
            Notice::Aborted => "aborted",
            Notice::RolledBack => "rolled_back",
            Notice::Superseded => "superseded",
            Notice::NeedsAttention => "needs_attention",
            Notice::ConfigInvalid => "config_invalid",
            Notice::LiveSlot => "live_slot",
        }
    }

    fn words(self) -> &'static str {
        match self {
            Notice::AwaitingApproval => "awaits approval",
            Notice::Succeeded => "succeeded",
            Notice::Aborted => "was aborted",
            Notice::RolledBack => "was rolled back",
            Notice::Superseded => "was superseded",
            Notice::NeedsAttention => "needs attention",
            Notice::ConfigInvalid => "has an invalid config",
            Notice::LiveSlot => "production slots out of shape",
        }
    }
}

/// Tells each approver a deployment awaits them, with their own signed link when a signing key
/// and console URL are configured. Returns `false` when no topic is configured.
pub async fn approval_requested(
    ctx: &Context,
    deployment: &Deployment,
    approval: &ApprovalState,
) -> StepResult<bool> {
    let key = ctx.signing_key().await?;
    let console = ctx.settings.console_url.as_deref();
    let evidence = format!(
        "{service} is ready to switch to {repo}:{tag}\n\
         Digest: {digest}\n\
         Health: {health}\n\
         Database: {database}\n\
         Decide before {expires}.",
        service = deployment.service,
        repo = deployment.image.repository,
        tag = deployment.image.tag,
        digest = deployment.image.digest,
        health = deployment
            .health_evidence
            .as_deref()
            .unwrap_or("not recorded"),
        database = crate::db_plan::approver_note(deployment),
        expires = approval.expires_at.to_rfc3339(),
    );
    let cli = format!(
        "From a terminal: bluegreen approve {id}  |  bluegreen reject {id} --reason '…'",
        id = deployment.deployment_id
    );
    let mut sent = false;
    for approver in &deployment.config.approval.approvers {
        let link = match (&key, console) {
            (Some(key), Some(console)) => {
                let claims =
                    LinkClaims::new(&deployment.deployment_id, approver, approval.expires_at);
                format!(
                    "Your approval link (works once, for you only): {}\n",
                    links::url(
                        console,
                        &deployment.deployment_id,
                        &links::sign(key, &claims)
                    )
                )
            }
            _ => String::new(),
        };
        let body = format!("{evidence}\n{link}{cli}");
        sent |= publish(
            ctx,
            (&deployment.service, &deployment.deployment_id),
            Notice::AwaitingApproval,
            &body,
            Some(approver),
        )
        .await?;
    }
    let page = console
        .map(|c| {
            format!(
                "\nConsole: {}/deployments/{}",
                c.trim_end_matches('/'),
                deployment.deployment_id
            )
        })
        .unwrap_or_default();
    post_webhook(
        ctx,
        &format!(
            "{evidence}\nApprovers ({}) have been sent their links.{page}",
            deployment.config.approval.approvers.join(", ")
        ),
    )
    .await;
    Ok(sent)
}

/// Reports how a deployment ended. Returns `false` when no topic is configured.
pub async fn outcome(
    ctx: &Context,
    deployment: &Deployment,
    notice: Notice,
    detail: &str,
) -> StepResult<bool> {
    let body = format!(
        "Deployment {id} of {service} ({repo}:{tag}) {words}.\n{detail}",
        id = deployment.deployment_id,
        service = deployment.service,
        repo = deployment.image.repository,
        tag = deployment.image.tag,
        words = notice.words(),
    );
    let sent = publish(
        ctx,
        (&deployment.service, &deployment.deployment_id),
        notice,
        &body,
        None,
    )
    .await?;
    post_webhook(ctx, &body).await;
    Ok(sent)
}

/// Tells people a push for `service` deployed nothing because its stored config is invalid,
/// listing every problem. Returns `false` when no topic is configured.
pub async fn config_invalid(
    ctx: &Context,
    service: &str,
    deployment_id: &str,
    problems: &[String],
) -> StepResult<bool> {
    let body = format!(
        "A push for {service} deployed nothing: its stored config is invalid.\n{}\nFix it with \
         bluegreen config validate / put; the next push deploys.",
        problems.join("\n")
    );
    let sent = publish(
        ctx,
        (service, deployment_id),
        Notice::ConfigInvalid,
        &body,
        None,
    )
    .await?;
    post_webhook(ctx, &body).await;
    Ok(sent)
}

/// Tells people the live-slot guard found `service`'s slots out of shape (`lines`: each
/// violation with its repair, and a repair made). Returns `false` when no topic is configured.
pub async fn live_slot(ctx: &Context, service: &str, lines: &[String]) -> StepResult<bool> {
    let body = format!(
        "The live-slot guard found {service}'s slots out of shape (no deployment holds it):\n{}\n\
         bluegreen never moves traffic by itself; `bluegreen doctor {service}` shows the routes.",
        lines.join("\n")
    );
    let sent = publish(ctx, (service, "-"), Notice::LiveSlot, &body, None).await?;
    post_webhook(ctx, &body).await;
    Ok(sent)
}

/// Publishes about `(service, deployment id)`.
async fn publish(
    ctx: &Context,
    (service, deployment_id): (&str, &str),
    notice: Notice,
    body: &str,
    approver: Option<&str>,
) -> StepResult<bool> {
    let Some(topic) = ctx.settings.topic_arn.as_deref() else {
        return Ok(false);
    };
    // SNS subjects are one line of at most 100 characters. Subject and body are text for
    // people's mail clients and terminals: whatever a record quotes (a reason, an AWS error)
    // is shown, never acted on (crate::text).
    let subject: String = text::line(&format!("bluegreen: {service} {}", notice.words()))
        .chars()
        .take(100)
        .collect();
    let mut attributes = vec![
        ("deployment_id".to_owned(), deployment_id.to_owned()),
        ("service".to_owned(), service.to_owned()),
        ("kind".to_owned(), notice.kind().to_owned()),
    ];
    if let Some(approver) = approver {
        attributes.push(("approver".to_owned(), approver.to_owned()));
    }
    let message = Message {
        subject,
        body: text::lines(body).into_owned(),
        attributes,
    };
    ctx.ports.notifications.publish(topic, &message).await?;
    Ok(true)
}

/// Posts `{"text": …}` to the webhook. A failed post is logged and dropped: a chat message
/// must never fail or repeat a deployment step. The URL is a credential and is not logged.
async fn post_webhook(ctx: &Context, message: &str) {
    let Some(url) = ctx.settings.webhook_url.as_deref() else {
        return;
    };
    ctx.ports
        .notifications
        .post_webhook(url, &text::lines(message))
        .await;
}

/// Creates the notification topic `name`, or finds it (SNS answers the existing topic's ARN
/// for a repeat). For `bluegreen init --local`; in an account the stack owns it.
pub async fn create_topic(ctx: &Context, name: &str) -> StepResult<String> {
    let out = ctx
        .sdk()?
        .sns
        .create_topic()
        .name(name)
        .send()
        .await
        .map_err(|e| StepError::from_sdk("sns:CreateTopic", e))?;
    Ok(out.topic_arn.unwrap_or_default())
}

/// Whether the topic exists.
pub async fn topic_exists(ctx: &Context, topic_arn: &str) -> StepResult<bool> {
    match ctx
        .sdk()?
        .sns
        .get_topic_attributes()
        .topic_arn(topic_arn)
        .send()
        .await
    {
        Ok(_) => Ok(true),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_not_found_exception()) =>
        {
            Ok(false)
        }
        Err(e) => Err(StepError::from_sdk("sns:GetTopicAttributes", e)),
    }
}
