//! Health check: every target of pre-prod's target group healthy (at least the desired count),
//! then HTTP smoke checks through the test endpoint, N consecutive rounds.
//!
//! Targets that are still starting are waited for until the deadline. A smoke check that
//! fails once the targets are healthy fails the step at once, with the evidence: which path,
//! what came back.

use std::time::Duration;

use aws_sdk_elasticloadbalancingv2::types::TargetHealthStateEnum;

use crate::config::{ServiceConfig, SmokeCheck};
use crate::context::Context;
use crate::error::{StepError, StepResult};
use crate::poll::{CheckInput, Poll, Started, pending};
use crate::record::{Change, Deployment};
use crate::routing;
use crate::slot::Slot;

use super::{DeploymentRef, load_active, record_done, record_failed, start_once};

const STEP: &str = "health_check";

/// Points the test listener at pre-prod and starts the health-check window.
pub async fn start(ctx: &Context, input: &DeploymentRef) -> StepResult<Started> {
    let deployment = load_active(ctx, &input.deployment_id).await?;
    routing::point_test_listener(ctx, &deployment.config, deployment.target_slot()?).await?;
    start_once(
        ctx,
        &deployment,
        STEP,
        deployment.config.health.timeout_seconds,
        5,
        Change::new(),
    )
    .await
}

/// Looks at target health, then runs the smoke checks.
pub async fn check(ctx: &Context, input: &CheckInput) -> StepResult<Poll> {
    let deployment = load_active(ctx, &input.deployment_id).await?;
    let target = deployment.target_slot()?;
    let desired = deployment
        .preprod
        .as_ref()
        .map(|p| p.desired_count)
        .unwrap_or(1);
    let now = ctx.now();
    let targets = target_health(ctx, &deployment.config, target).await?;
    let healthy = targets.iter().filter(|t| t.state == "healthy").count() as i32;
    let not_healthy: Vec<String> = targets
        .iter()
        .filter(|t| t.state != "healthy")
        .map(|t| format!("{} {} ({})", t.id, t.state, t.reason))
        .collect();
    if healthy < desired || !not_healthy.is_empty() {
        let evidence = format!(
            "{healthy}/{desired} targets healthy in {}{}{}",
            deployment.config.slots.get(target).target_group_arn,
            if not_healthy.is_empty() { "" } else { "; " },
            not_healthy.join(", ")
        );
        if now >= input.deadline {
            return Err(fail(ctx, &deployment, evidence).await);
        }
        return Ok(pending(input, now, evidence));
    }
    let base = deployment
        .config
        .test_url(target)
        .unwrap_or_default()
        .to_owned();
    let report = match smoke(ctx, &deployment.config, &base).await {
        Ok(report) => report,
        Err(evidence) => return Err(fail(ctx, &deployment, evidence).await),
    };
    let detail = format!("{healthy}/{desired} targets healthy; {report}");
    record_done(
        ctx,
        &deployment,
        STEP,
        &detail,
        Change::new().set("health_evidence", &detail),
    )
    .await?;
    Ok(Poll::Done { detail })
}

async fn fail(ctx: &Context, deployment: &Deployment, evidence: String) -> StepError {
    let change = Change::new().set("health_evidence", &evidence);
    record_failed(
        ctx,
        deployment,
        STEP,
        StepError::HealthCheckFailed(evidence),
        change,
    )
    .await
}

/// One target's health.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TargetState {
    pub id: String,
    pub state: String,
    pub reason: String,
}

/// The health of every target in a slot's target group.
pub(crate) async fn target_health(
    ctx: &Context,
    config: &ServiceConfig,
    slot: Slot,
) -> StepResult<Vec<TargetState>> {
    let arn = &config.slots.get(slot).target_group_arn;
    let out = ctx
        .elb
        .describe_target_health()
        .target_group_arn(arn)
        .send()
        .await
        .map_err(|e| match e.as_service_error() {
            Some(s) if s.is_target_group_not_found_exception() => StepError::ResourceNotFound {
                kind: "target group",
                id: arn.clone(),
            },
            _ => StepError::from_sdk("elasticloadbalancing:DescribeTargetHealth", e),
        })?;
    Ok(out
        .target_health_descriptions
        .unwrap_or_default()
        .into_iter()
        .map(|d| {
            let health = d.target_health;
            TargetState {
                id: d.target.and_then(|t| t.id).unwrap_or_default(),
                state: health
                    .as_ref()
                    .and_then(|h| h.state.clone())
                    .unwrap_or(TargetHealthStateEnum::Unavailable)
                    .as_str()
                    .to_owned(),
                reason: health
                    .and_then(|h| h.description.or(h.reason.map(|r| r.as_str().to_owned())))
                    .unwrap_or_default(),
            }
        })
        .collect())
}

/// Runs `consecutive_passes` rounds of every smoke check; the first failure is the evidence.
async fn smoke(ctx: &Context, config: &ServiceConfig, base: &str) -> Result<String, String> {
    let timeout = Duration::from_millis(config.health.request_timeout_ms);
    let rounds = config.health.consecutive_passes;
    for round in 1..=rounds {
        for check in &config.health.smoke {
            probe(ctx, base, check, timeout)
                .await
                .map_err(|e| format!("round {round}/{rounds}: {e}"))?;
        }
    }
    Ok(format!(
        "{} smoke check(s) passed {rounds} consecutive round(s) against {base}",
        config.health.smoke.len()
    ))
}

async fn probe(
    ctx: &Context,
    base: &str,
    check: &SmokeCheck,
    timeout: Duration,
) -> Result<(), String> {
    let url = format!("{}{}", base.trim_end_matches('/'), check.path);
    let response = ctx
        .http
        .get(&url)
        .timeout(timeout)
        .send()
        .await
        .map_err(|e| {
            format!(
                "GET {url}: {}",
                if e.is_timeout() {
                    "timed out".to_owned()
                } else {
                    e.to_string()
                }
            )
        })?;
    let status = response.status().as_u16();
    let body = response.text().await.unwrap_or_default();
    if status != check.expect_status {
        return Err(format!(
            "GET {url} returned {status}, expected {}; body: {}",
            check.expect_status,
            excerpt(&body)
        ));
    }
    if let Some(needle) = &check.body_contains
        && !body.contains(needle.as_str())
    {
        return Err(format!(
            "GET {url} body lacks {needle:?}; body: {}",
            excerpt(&body)
        ));
    }
    Ok(())
}

fn excerpt(body: &str) -> String {
    let mut s: String = body.chars().take(200).collect();
    if body.chars().count() > 200 {
        s.push('…');
    }
    s
}
