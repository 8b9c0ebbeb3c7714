//! Health evidence shared by the health check, the post-approval re-check and the bake: the
//! target health of a slot's target group and HTTP smoke checks through a test endpoint.

use std::time::Duration;

use crate::config::{ServiceConfig, SmokeCheck};
use crate::context::Context;
use crate::error::StepResult;
use crate::slot::Slot;

/// How many characters of a response body an error message quotes.
const BODY_EXCERPT_CHARS: usize = 200;

/// What one look at a slot's health found.
#[derive(Debug, Clone, PartialEq)]
pub enum Assessment {
    /// Targets are still starting: look again (the evidence says what is missing).
    Waiting(String),
    /// Every target healthy and every smoke check passed every round.
    Passed(String),
    /// Targets healthy but a smoke check failed: the evidence.
    Failed(String),
}

/// Looks at `slot`: at least `desired` targets, all healthy, then the smoke checks.
pub async fn assess(
    ctx: &Context,
    config: &ServiceConfig,
    slot: Slot,
    desired: i32,
) -> StepResult<Assessment> {
    let targets = target_health(ctx, config, slot).await?;
    let healthy = targets.iter().filter(|t| t.state == "healthy").count() as i32;
    let not_healthy: Vec<String> = targets
        .iter()
        .filter(|t| t.state != "healthy")
        .map(|t| format!("{} {} ({})", t.id, t.state, t.reason))
        .collect();
    if healthy < desired || !not_healthy.is_empty() {
        return Ok(Assessment::Waiting(format!(
            "{healthy}/{desired} targets healthy in {}{}{}",
            config.slots.get(slot).target_group_arn,
            if not_healthy.is_empty() { "" } else { "; " },
            not_healthy.join(", ")
        )));
    }
    let base = config.test_url(slot).unwrap_or_default().to_owned();
    Ok(match smoke(ctx, config, &base).await {
        Ok(report) => Assessment::Passed(format!("{healthy}/{desired} targets healthy; {report}")),
        Err(evidence) => Assessment::Failed(evidence),
    })
}

/// One target's health.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetState {
    /// Target id (IP or instance).
    pub id: String,
    /// ELB's state word, for example `healthy`.
    pub state: String,
    /// ELB's description or reason code.
    pub reason: String,
}

/// The health of every target in a slot's target group.
pub async fn target_health(
    ctx: &Context,
    config: &ServiceConfig,
    slot: Slot,
) -> StepResult<Vec<TargetState>> {
    let arn = &config.slots.get(slot).target_group_arn;
    Ok(ctx
        .ports
        .load_balancing
        .target_health(arn)
        .await?
        .into_iter()
        .map(|t| TargetState {
            id: t.id,
            state: t.state,
            reason: t.reason,
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
    let answer = ctx
        .ports
        .smoke
        .get(&url, timeout)
        .await
        .map_err(|e| format!("GET {url}: {e}"))?;
    let (status, body) = (answer.status, answer.body);
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
    let mut s: String = body.chars().take(BODY_EXCERPT_CHARS).collect();
    if body.chars().count() > BODY_EXCERPT_CHARS {
        s.push('…');
    }
    s
}
