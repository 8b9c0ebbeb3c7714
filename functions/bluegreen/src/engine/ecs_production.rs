//! The `ecs` engine after the approval (DESIGN 28): the test route the health check takes,
//! the switch, what the bake watches, the finish and the rollback — each read from ECS's
//! service deployment the launch recorded and from the load balancer's rules, never written
//! to the rules (ECS owns them).
//!
//! The switch only opens bluegreen's gate: it writes the `switching` status, which the hook
//! (`crate::ecs_hook`) answers at `POST_TEST_TRAFFIC_SHIFT` by letting ECS move production;
//! the switch is done once ECS holds at `POST_PRODUCTION_TRAFFIC_SHIFT` with production's
//! rule wholly on the new revision's target group. The bake's success opens the second gate;
//! the finish then waits for ECS's own bake time and clean-up (`SUCCESSFUL`) before the
//! deployment ends and the lock goes on — a next push would otherwise find ECS's deployment
//! still going. A rollback stops ECS's deployment with rollback and waits for ECS to report
//! it rolled back.

use chrono::{DateTime, Duration, Utc};

use super::{Phase, PreprodRoute, PutBack};
use crate::context::Context;
use crate::ecs;
use crate::ecs_hook::POST_PRODUCTION_TRAFFIC_SHIFT;
use crate::error::{StepError, StepResult};
use crate::poll::Poll;
use crate::ports::load_balancing::{Condition, Route};
use crate::ports::service_deployments::EcsDeployment;
use crate::record::{Change, Deployment, Records, StepOutcome};
use crate::routing;
use crate::slot::Slot;
use crate::step_log::{record_done, record_failed};

/// The switch step's name on the record.
const SWITCH: &str = super::slots_switch::NAME;

/// How often the switch looks while ECS has not moved production yet: the hook holds ECS
/// for [`crate::ecs_hook::HOLD_SECONDS`] between its looks at the record.
const SWITCH_LOOK_SECONDS: u64 = 10;

/// How long the finish waits beyond ECS's own bake time for its clean-up, and a rollback
/// for ECS to roll back (its scale-down of the failed revision, its traffic shift back).
const ECS_MARGIN_SECONDS: i64 = 30 * 60;

/// Timeline step: when the rollback first asked ECS to roll back (the bound of its wait).
const ECS_ROLLBACK: &str = "ecs_rollback";

/// Where the health check finds pre-prod: the target group ECS's test rule sends everything
/// to — the slot production is not on — with the header the rule matches, when it matches one
/// (its wildcards filled in). `Err` while ECS has not moved the test rule there.
pub async fn preprod_route(
    ctx: &Context,
    deployment: &Deployment,
) -> StepResult<Result<PreprodRoute, String>> {
    let config = &deployment.config;
    let target = deployment.target_slot()?;
    let service = &super::recorded_preprod(deployment)?.service;
    let described = ecs::describe_service(ctx, &config.cluster, service).await?;
    let production_rule = described
        .setup
        .routes
        .iter()
        .find_map(|r| r.production_rule.clone());
    let Some(test_rule) = described
        .setup
        .routes
        .iter()
        .find_map(|r| r.test_rule.clone())
    else {
        return Ok(Err(format!(
            "service {service} has no test listener rule in its blue/green configuration: the \
             smoke checks cannot reach the new revision"
        )));
    };
    // A test listener's rules answer on their own port, under conditions (and a default)
    // bluegreen does not read: only a header rule beside production's is taken.
    let production_listener = config.traffic.production_listener_arn();
    if production_listener.is_some_and(|l| crate::routes::listener_of_rule(&test_rule) != l) {
        return Ok(Err(format!(
            "ECS's test rule {test_rule} is not on the production listener: bluegreen reaches \
             the new revision only through a header rule on production's listener (a test \
             listener's rules are not driven yet)"
        )));
    }
    let balancing = &ctx.ports.load_balancing;
    let groups = balancing
        .forward(&Route::Rule(test_rule.clone()))
        .await?
        .unwrap_or_default();
    let live: Vec<&str> = groups
        .iter()
        .filter(|g| g.weight.unwrap_or(1) > 0)
        .map(|g| g.target_group_arn.as_str())
        .collect();
    let wanted = config.slots.get(target).target_group_arn.as_str();
    if live != [wanted] {
        return Ok(Err(format!(
            "ECS's test rule {test_rule} forwards to {live:?}, not (only) to the new revision's \
             target group {wanted}"
        )));
    }
    let header = match test_rule_header(ctx, deployment, &test_rule, production_rule).await? {
        Ok(header) => header,
        Err(why) => return Ok(Err(why)),
    };
    Ok(Ok(PreprodRoute {
        slot: target,
        preview: Some(header),
        probe: None,
    }))
}

/// The header ECS's test rule matches, `Err` when the smoke checks sent with it might be
/// answered by production instead: a test rule evaluated after production's, with another
/// condition than one header, or missing from the production listener.
async fn test_rule_header(
    ctx: &Context,
    deployment: &Deployment,
    test_rule: &str,
    production_rule: Option<String>,
) -> StepResult<Result<(String, String), String>> {
    let config = &deployment.config;
    let rules = match config.traffic.production_listener_arn() {
        Some(listener) => ctx.ports.load_balancing.rules(listener).await?,
        None => Vec::new(),
    };
    let priority = |arn: &str| rules.iter().find(|r| r.arn == arn).and_then(|r| r.priority);
    // ELB evaluates the lower number first: behind production's rule the test rule would
    // never see the smoke checks (rules of other services are the listener's owner's to order).
    if let (Some(test), Some(production)) = (
        priority(test_rule),
        production_rule.as_deref().and_then(priority),
    ) && test >= production
    {
        return Ok(Err(format!(
            "ECS's test rule {test_rule} (priority {test}) comes after production's rule \
             (priority {production}): the smoke checks would be answered by production"
        )));
    }
    let rule = rules.into_iter().find(|r| r.arn == test_rule);
    // A condition the smoke requests might not meet would leave them to production's rule:
    // they would pass for the old revision. Only a rule matching one header is taken.
    let Some(rule) = rule else {
        return Ok(Err(format!(
            "ECS's test rule {test_rule} is not among the production listener's rules"
        )));
    };
    Ok(
        match matched_header(&rule.conditions, &deployment.deployment_id) {
            Some(header) if rule.conditions.len() == 1 => Ok(header),
            _ => Err(format!(
                "ECS's test rule {test_rule} on the production listener matches more (or other) \
                 than one http-header condition: the smoke checks could be answered by \
                 production; give it a single header condition"
            )),
        },
    )
}

/// A header that a rule with `conditions` matches: its `http-header` condition's name and
/// first value, each `*` made the deployment's id and each `?` an `x` (ELB's wildcards). Pure.
pub fn matched_header(conditions: &[Condition], deployment_id: &str) -> Option<(String, String)> {
    let header = conditions.iter().find(|c| c.field == "http-header")?;
    let value = header.values.first()?;
    let value = value.replace('*', deployment_id).replace('?', "x");
    Some((header.header_name.clone()?, value))
}

/// The switch: the `switching` status (written once, with the time), then ECS's progress.
pub async fn switch(
    ctx: &Context,
    deployment: &Deployment,
    deadline: DateTime<Utc>,
) -> StepResult<Poll> {
    let target = deployment.target_slot()?;
    let now = ctx.now();
    let own = described(ctx, deployment).await?;
    let stage = own.lifecycle_stage.as_deref().unwrap_or_default();
    if !going(&own) && own.status != "SUCCESSFUL" {
        let err = StepError::SwitchFailed(format!(
            "ECS deployment {} is {}{}: production stays on the previous revision",
            own.arn,
            own.status,
            reason(&own)
        ));
        return Err(record_failed(ctx, deployment, SWITCH, err, Change::new()).await);
    }
    super::slots_switch::switched_at(ctx, deployment, target, now).await?;
    let moved = own.status == "SUCCESSFUL"
        || matches!(
            stage,
            POST_PRODUCTION_TRAFFIC_SHIFT | "BAKE_TIME" | "CLEAN_UP"
        );
    let production = routing::read_production(ctx, &deployment.config).await?;
    if moved && production.percent(target) == 100 {
        let detail = format!(
            "ECS moved production to the new revision ({target}'s target group; ECS \
             deployment {} at {stage})",
            own.arn
        );
        record_done(ctx, deployment, SWITCH, &detail, Change::new()).await?;
        return Ok(Poll::Done { detail });
    }
    let waiting = format!(
        "ECS deployment {} at {stage}, production {}% on {target}",
        own.arn,
        production.percent(target)
    );
    if now >= deadline {
        let err = StepError::SwitchFailed(format!(
            "ECS did not move production by the deadline: {waiting}"
        ));
        return Err(record_failed(ctx, deployment, SWITCH, err, Change::new()).await);
    }
    Ok(Poll::Pending {
        wait_seconds: SWITCH_LOOK_SECONDS,
        attempt: 0,
        detail: waiting,
        scheduled: false,
        wake_on: None,
    })
}

/// What the bake watches: the new revision's slot while ECS keeps production on it; `Err`
/// once ECS is rolling it back on its own (its alarms) or stopped it.
pub async fn baking(ctx: &Context, deployment: &Deployment) -> StepResult<Result<Slot, String>> {
    let own = described(ctx, deployment).await?;
    let stage = own.lifecycle_stage.as_deref().unwrap_or_default();
    if going(&own) && stage == POST_PRODUCTION_TRAFFIC_SHIFT {
        return Ok(Ok(deployment.target_slot()?));
    }
    // A check run again after the bake passed (a retry, a lost answer): the hook has let ECS
    // on to its own bake and clean-up, which is no failure.
    let moving_on = going(&own) && matches!(stage, "BAKE_TIME" | "CLEAN_UP");
    if (moving_on || own.status == "SUCCESSFUL")
        && deployment.has_outcome("bake", StepOutcome::Succeeded)
    {
        return Ok(Ok(deployment.target_slot()?));
    }
    // Past the production gate before bluegreen's bake passed: the hook was taken off, and
    // ECS would scale the old revision away at its clean-up. Failing now rolls back while
    // ECS still can.
    Ok(Err(format!(
        "ECS deployment {} is {}{} at {stage} during bluegreen's bake (rolling back, stopped, \
         or past the production gate without bluegreen's bake)",
        own.arn,
        own.status,
        reason(&own)
    )))
}

/// Whether ECS is carrying the deployment forward (not rolling back, not stopping).
fn going(own: &EcsDeployment) -> bool {
    matches!(own.status.as_str(), "PENDING" | "IN_PROGRESS")
}

/// The finish: ECS's own bake time and clean-up, waited for until ECS reports the
/// deployment `SUCCESSFUL` with production on the new revision.
pub async fn retire_old(ctx: &Context, deployment: &Deployment) -> StepResult<Phase> {
    let own = described(ctx, deployment).await?;
    let target = deployment.target_slot()?;
    match own.status.as_str() {
        "SUCCESSFUL" => {
            let production = routing::read_production(ctx, &deployment.config).await?;
            if production.percent(target) != 100 {
                return Ok(Phase::Stuck(format!(
                    "ECS completed deployment {} but production sends {}% to {target}: look \
                     at the service's rules",
                    own.arn,
                    production.percent(target)
                )));
            }
            Ok(Phase::Done(vec![format!(
                "ECS completed deployment {}: production on the new revision ({target}'s target \
                 group), the old revision scaled down by ECS",
                own.arn
            )]))
        }
        _ if going(&own) => {
            let until = finish_bound(ctx, deployment).await?;
            let detail = format!(
                "waiting for ECS to finish deployment {} ({}, {}): its bake time and clean-up",
                own.arn,
                own.status,
                own.lifecycle_stage.as_deref().unwrap_or("no stage")
            );
            if ctx.now() >= until {
                return Ok(Phase::Stuck(format!(
                    "{detail} — still going at {}: look at it before the next deployment",
                    until.to_rfc3339()
                )));
            }
            Ok(Phase::Waiting { detail, until })
        }
        status => Ok(Phase::Stuck(format!(
            "ECS deployment {} is {status}{} after bluegreen's bake passed (ECS's own bake \
             alarms?): production is wherever ECS left it — look at the service's traffic and \
             schema before the next deployment",
            own.arn,
            reason(&own)
        ))),
    }
}

/// Until when the finish waits: ECS's bake time (as configured on the service now) and a
/// margin for its clean-up, from when bluegreen's bake passed.
async fn finish_bound(ctx: &Context, deployment: &Deployment) -> StepResult<DateTime<Utc>> {
    let config = &deployment.config;
    let service = &super::recorded_preprod(deployment)?.service;
    let described = ecs::describe_service(ctx, &config.cluster, service).await?;
    let bake_minutes = i64::from(described.setup.bake_minutes.unwrap_or(0).max(0));
    let baked_at = deployment
        .timeline
        .iter()
        .rev()
        .find(|e| e.step == "bake" && e.outcome == StepOutcome::Succeeded)
        .map_or_else(|| ctx.now(), |e| e.at);
    Ok(baked_at + Duration::minutes(bake_minutes) + Duration::seconds(ECS_MARGIN_SECONDS))
}

/// The rollback: ECS's deployment stopped with rollback (each call that finds it still going
/// asks again), waited for until ECS reports it rolled back; a person's once ECS could not, it
/// completed, another deployment superseded it, or the wait outlasted its bound.
pub async fn roll_back(ctx: &Context, deployment: &Deployment) -> StepResult<Phase> {
    let own = described(ctx, deployment).await?;
    let asked_at = rollback_asked_at(ctx, deployment).await?;
    if matches!(own.status.as_str(), "PENDING" | "IN_PROGRESS") {
        super::ecs_blue_green::stop(ctx, &own).await?;
    }
    let until = asked_at + Duration::seconds(ECS_MARGIN_SECONDS);
    match super::ecs_blue_green::abort_stands(&own, ctx.now() >= until) {
        PutBack::Done(_) if own.status == "STOPPED" => Ok(Phase::Stuck(format!(
            "ECS deployment {} was stopped by another deployment of the service{}: production \
             is wherever that one takes it",
            own.arn,
            reason(&own)
        ))),
        PutBack::Done(note) => {
            let old = deployment.old_slot()?;
            let production = routing::read_production(ctx, &deployment.config).await?;
            if production.percent(old) != 100 {
                return Ok(Phase::Stuck(format!(
                    "{note}, but production sends {}% to {old}: look at the service's rules",
                    production.percent(old)
                )));
            }
            Ok(Phase::Done(vec![format!(
                "{note}; production traffic back on {old}"
            )]))
        }
        PutBack::Waiting(detail) => Ok(Phase::Waiting { detail, until }),
        PutBack::Stuck(why) => Ok(Phase::Stuck(why)),
    }
}

/// When this rollback first asked ECS to roll back: written on the timeline once.
async fn rollback_asked_at(ctx: &Context, deployment: &Deployment) -> StepResult<DateTime<Utc>> {
    if let Some(entry) = deployment.timeline.iter().find(|e| e.step == ECS_ROLLBACK) {
        return Ok(entry.at);
    }
    let now = ctx.now();
    let log = Change::new().log(
        ECS_ROLLBACK,
        StepOutcome::Started,
        "asking ECS to roll its deployment back",
        now,
    );
    Records::new(ctx)
        .update_ending(&deployment.deployment_id, log)
        .await?;
    Ok(now)
}

/// The deployment's ECS deployment as ECS describes it now; `SwitchFailed`-free: a deployment
/// that ECS no longer describes is an `UnexpectedRouting` error (a person looks).
async fn described(ctx: &Context, deployment: &Deployment) -> StepResult<EcsDeployment> {
    let preprod = super::recorded_preprod(deployment)?;
    let arn = preprod.ecs_deployment.as_deref().ok_or_else(|| {
        StepError::Internal(format!(
            "deployment {} recorded no ECS deployment",
            deployment.deployment_id
        ))
    })?;
    ctx.ports
        .service_deployments
        .service_deployment(arn)
        .await?
        .ok_or_else(|| StepError::UnexpectedRouting(format!("ECS describes no deployment {arn}")))
}

fn reason(own: &EcsDeployment) -> String {
    own.status_reason
        .as_deref()
        .map(|r| format!(": {r}"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(name: &str, value: &str) -> Condition {
        Condition {
            field: "http-header".into(),
            header_name: Some(name.into()),
            values: vec![value.into()],
        }
    }

    #[test]
    fn the_test_rule_s_header_is_sent_with_its_wildcards_filled() {
        let host = Condition {
            field: "host-header".into(),
            header_name: None,
            values: vec!["shop.example.com".into()],
        };
        assert_eq!(
            matched_header(&[host.clone(), header("X-Preview", "*")], "shop-1"),
            Some(("X-Preview".into(), "shop-1".into()))
        );
        assert_eq!(
            matched_header(&[header("x-env", "green-??")], "shop-1"),
            Some(("x-env".into(), "green-xx".into()))
        );
        assert_eq!(matched_header(&[host], "shop-1"), None);
    }
}
