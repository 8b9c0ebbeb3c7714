//! Health evidence shared by the health check, the post-approval re-check and the bake: the
//! target health of a slot's target group and HTTP smoke checks through a test endpoint.

use std::time::Duration;

use crate::config::{HeaderValue, JsonMatch, SecretHeader, ServiceConfig, SmokeCheck};
use crate::context::Context;
use crate::error::{StepError, StepResult};
use crate::ports::smoke::SmokeRequest;
use crate::slot::Slot;
use crate::test_rule::Probe;

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

/// Where the health check reaches pre-prod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreprodRoute {
    /// The slot whose target group serves pre-prod (its targets are the ones checked).
    pub slot: Slot,
    /// `(name, value)`: the header a smoke request carries so that a rule on the production
    /// listener routes it to pre-prod, when one does.
    pub preview: Option<(String, String)>,
    /// The request proving header requests reach bluegreen's test rule (and so are not
    /// answered by production).
    pub probe: Option<Probe>,
}

/// Looks at pre-prod where `route` says it is: at least `desired` targets in its slot's
/// target group, all healthy, then the smoke checks — with the route's preview header when a
/// rule routes to pre-prod by header (after its probe, when it has one).
pub async fn assess(
    ctx: &Context,
    config: &ServiceConfig,
    route: &PreprodRoute,
    desired: i32,
) -> StepResult<Assessment> {
    let slot = route.slot;
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
    if let Some(probe) = &route.probe
        && let Err(evidence) = reaches_the_test_rule(ctx, config, &base, probe).await
    {
        return Ok(Assessment::Failed(evidence));
    }
    let preview = route.preview.clone();
    Ok(match smoke(ctx, config, &base, preview).await? {
        Ok(report) => Assessment::Passed(format!("{healthy}/{desired} targets healthy; {report}")),
        Err(evidence) => Assessment::Failed(evidence),
    })
}

/// Whether a request with the preview header reaches the deployment's rules: the probe rule
/// beside the test rule must answer its own text. Otherwise the smoke checks would be answered
/// by production (a proxy dropping the header, `source_ips` not holding the checks' address,
/// a rule above) and could pass for the wrong release. Sent like the first check (its `Host`
/// and TLS setting), on a path nobody else asks for.
async fn reaches_the_test_rule(
    ctx: &Context,
    config: &ServiceConfig,
    base: &str,
    probe: &crate::test_rule::Probe,
) -> Result<(), String> {
    let first = config.health.smoke.first();
    let request = SmokeRequest {
        method: "GET".into(),
        url: format!("{}{}", base.trim_end_matches('/'), probe.path),
        headers: vec![probe.header.clone()],
        body: None,
        host: first.and_then(|c| c.host.clone()),
        verify_tls: first.is_none_or(|c| c.verify_tls),
    };
    let timeout = Duration::from_millis(config.health.request_timeout_ms);
    let what = described(&request);
    let unreached = |got: String| {
        format!(
            "requests with the {} header do not reach the test rule, so the smoke checks \
             would be answered by production: {what} {got} (a proxy or CDN dropping the \
             header, traffic.test_rule.source_ips not holding the checks' address, or a rule \
             above it)",
            probe.header.0
        )
    };
    match ctx.ports.smoke.send(&request, timeout).await {
        Ok(answer) if answer.status == 200 && answer.body.trim() == probe.body => Ok(()),
        Ok(answer) => Err(unreached(format!(
            "got {} {}",
            answer.status,
            excerpt(&answer.body)
        ))),
        Err(e) => Err(unreached(format!("failed: {e}"))),
    }
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
/// A header kept in Secrets Manager that cannot be read is an error of the step (access,
/// a missing key), not a failed check.
async fn smoke(
    ctx: &Context,
    config: &ServiceConfig,
    base: &str,
    preview: Option<(String, String)>,
) -> StepResult<Result<String, String>> {
    let timeout = Duration::from_millis(config.health.request_timeout_ms);
    let rounds = config.health.consecutive_passes;
    let mut requests = Vec::new();
    for check in &config.health.smoke {
        let mut request = request(ctx, base, check).await?;
        // Through a test rule only the preview header reaches pre-prod; a check's own header
        // of that name would send it to production instead.
        if let Some((name, value)) = &preview {
            request
                .headers
                .retain(|(n, _)| !n.eq_ignore_ascii_case(name));
            request.headers.push((name.clone(), value.clone()));
        }
        requests.push((check, request));
    }
    for round in 1..=rounds {
        for (check, request) in &requests {
            if let Err(e) = probe(ctx, request, check, timeout).await {
                return Ok(Err(format!("round {round}/{rounds}: {e}")));
            }
        }
    }
    Ok(Ok(format!(
        "{} smoke check(s) passed {rounds} consecutive round(s) against {base}{}",
        config.health.smoke.len(),
        match &preview {
            Some((name, _)) => format!(" with the test rule's {name} header"),
            None => String::new(),
        }
    )))
}

/// `check`'s request against `base`, its secret header values read.
async fn request(ctx: &Context, base: &str, check: &SmokeCheck) -> StepResult<SmokeRequest> {
    let mut headers = Vec::new();
    for (name, value) in &check.headers {
        let value = match value {
            HeaderValue::Text(text) => text.clone(),
            HeaderValue::Secret(secret) => secret_header(ctx, name, secret).await?,
        };
        headers.push((name.clone(), value));
    }
    Ok(SmokeRequest {
        method: check.method.clone(),
        url: format!("{}{}", base.trim_end_matches('/'), check.path),
        headers,
        body: check.body.clone(),
        host: check.host.clone(),
        verify_tls: check.verify_tls,
    })
}

/// A header's value from Secrets Manager (one JSON key of it, when `key` is set). Errors name
/// the header and the secret, never a value.
async fn secret_header(ctx: &Context, name: &str, secret: &SecretHeader) -> StepResult<String> {
    let invalid = |why: &str| {
        StepError::ConfigInvalid(vec![format!(
            "health.smoke headers.{name}: secret {}: {why}",
            secret.secret
        )])
    };
    let text = ctx
        .ports
        .secrets
        .secret_string(&secret.secret)
        .await?
        .ok_or_else(|| invalid("holds binary data, not text"))?;
    let Some(key) = &secret.key else {
        return Ok(text);
    };
    let fields: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&text)
        .map_err(|_| invalid("is not a JSON object, which `key` needs"))?;
    match fields.get(key) {
        Some(serde_json::Value::String(value)) => Ok(value.clone()),
        _ => Err(invalid(&format!("has no text field `{key}`"))),
    }
}

/// What a request is called in evidence: its method and URL, and the host it names.
fn described(request: &SmokeRequest) -> String {
    match &request.host {
        Some(host) => format!("{} {} (Host {host})", request.method, request.url),
        None => format!("{} {}", request.method, request.url),
    }
}

async fn probe(
    ctx: &Context,
    request: &SmokeRequest,
    check: &SmokeCheck,
    timeout: Duration,
) -> Result<(), String> {
    let what = described(request);
    let answer = ctx
        .ports
        .smoke
        .send(request, timeout)
        .await
        .map_err(|e| format!("{what}: {e}"))?;
    let (status, body) = (answer.status, answer.body);
    if status != check.expect_status {
        return Err(format!(
            "{what} returned {status}, expected {}; body: {}",
            check.expect_status,
            excerpt(&body)
        ));
    }
    if let Some(needle) = &check.body_contains
        && !body.contains(needle.as_str())
    {
        return Err(format!(
            "{what} body lacks {needle:?}; body: {}",
            excerpt(&body)
        ));
    }
    if let Some(json) = &check.json {
        json_matches(&body, json)
            .map_err(|why| format!("{what} {why}; body: {}", excerpt(&body)))?;
    }
    Ok(())
}

/// Whether `body` is JSON holding `json.equals` at `json.pointer`.
fn json_matches(body: &str, json: &JsonMatch) -> Result<(), String> {
    let value: serde_json::Value =
        serde_json::from_str(body).map_err(|e| format!("answered no JSON ({e})"))?;
    match value.pointer(&json.pointer) {
        Some(found) if *found == json.equals => Ok(()),
        Some(found) => Err(format!(
            "JSON at {:?} is {found}, expected {}",
            json.pointer, json.equals
        )),
        None => Err(format!("JSON has nothing at {:?}", json.pointer)),
    }
}

fn excerpt(body: &str) -> String {
    let mut s: String = body.chars().take(BODY_EXCERPT_CHARS).collect();
    if body.chars().count() > BODY_EXCERPT_CHARS {
        s.push('…');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expect(pointer: &str, equals: serde_json::Value) -> JsonMatch {
        JsonMatch {
            pointer: pointer.into(),
            equals,
        }
    }

    #[test]
    fn a_json_match_finds_the_value_at_its_pointer() {
        let body = r#"{"status":"ok","checks":[{"db":true}],"version":3}"#;
        assert!(json_matches(body, &expect("/status", "ok".into())).is_ok());
        assert!(json_matches(body, &expect("/checks/0/db", true.into())).is_ok());
        assert!(json_matches(body, &expect("/version", 3.into())).is_ok());
        let wrong = json_matches(body, &expect("/status", "up".into())).unwrap_err();
        assert!(wrong.contains(r#"is "ok", expected "up""#), "{wrong}");
        let missing = json_matches(body, &expect("/nope", true.into())).unwrap_err();
        assert!(missing.contains("nothing at"), "{missing}");
        let html = json_matches("<html>", &expect("/status", "ok".into())).unwrap_err();
        assert!(html.contains("no JSON"), "{html}");
    }

    #[test]
    fn a_request_shows_no_header_value() {
        let mut request = SmokeRequest::get("http://alb:8443/health");
        request
            .headers
            .push(("Authorization".into(), "Bearer t0ken".into()));
        assert!(!format!("{request:?}").contains("t0ken"));
        assert!(!described(&request).contains("t0ken"));
    }
}
