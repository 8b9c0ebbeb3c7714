//! The live-slot guard (DESIGN 20): a standing invariant, checked for every managed service
//! between deployments — by the reconciler's scheduled sweep, `status` and `doctor`.
//!
//! - Production forwards only to slots that run tasks and, in listener mode, have healthy
//!   targets. An IaC apply that puts the listener back on the target group written in the code
//!   (after a blue→green deployment, the slot bluegreen scaled to 0), or a person's console
//!   click, breaks it: a production outage nothing else in bluegreen would notice.
//! - The idle slot runs nothing, unless it is warm (tagged by finish, inside its window).
//!   Application Auto Scaling reviving an old slot, or an apply resetting its desired count,
//!   breaks it: a second copy of production, paid for and unmanaged.
//!
//! A service whose lock is held is not judged: a deployment (or a person) owns its slots then,
//! and they are in between on purpose. A violation is reported within one sweep — an EMF
//! metric (`bluegreen/LiveSlotViolations`, the stack's alarm), one notice per distinct
//! violation (naming what routes where and the command that repairs it), a line in `status`
//! and a `doctor` finding. With `guard.repair = true` the one unambiguous repair is made:
//! the slot production forwards all of its traffic to, running nothing, is scaled back to the
//! count of the slot that does run *the same release* (under the lock, as an operator would,
//! after looking again). A route reverted onto the previous release is only reported. One more
//! it makes whatever `guard.repair` says, because a person asked for it: a manual rollback
//! whose clean-up did not finish is finished (see [`crate::retirement`]). The guard never
//! moves production; finishing a manual rollback may move the routes that follow production
//! (the listener's default in rule mode, the other routes) to where production already is.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use crate::config::ServiceConfig;
use crate::config_store::ConfigStore;
use crate::context::Context;
use crate::ecs;
use crate::error::StepResult;
use crate::health;
use crate::lock::{Acquire, Locks};
use crate::naming::{TAG_EXPIRES, TAG_ROLE};
use crate::record::{Records, Status};
use crate::retirement;
use crate::routing;
use crate::service_index::ServiceIndex;
use crate::slot::Slot;
use crate::traffic_mode;

/// Seconds the guard's repair holds the lock for (a crashed sweep frees it after this).
const REPAIR_LEASE_SECONDS: i64 = 300;
/// How long after its expiry a tagged (warm or pre-prod) slot is still scheduled teardown's to
/// scale down before the guard calls it a violation: a few of teardown's hourly passes.
const TEARDOWN_GRACE_SECONDS: i64 = 6 * 3600;

/// One slot as the guard sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotSeen {
    /// Which slot.
    pub slot: Slot,
    /// Its ECS service.
    pub service: String,
    /// The share of production it receives, in percent.
    pub percent: i64,
    /// Tasks ECS is asked to run.
    pub desired: i32,
    /// Tasks running.
    pub running: i32,
    /// Healthy targets in its target group (listener mode; `None` when not read).
    pub healthy: Option<i32>,
    /// Until when it may keep running: `Some` when bluegreen tagged it with a role (warm after
    /// finish, pre-prod left behind) and an expiry — scheduled teardown scales it down.
    pub warm_until: Option<DateTime<Utc>>,
    /// The task definition it runs.
    pub task_definition: Option<String>,
    /// The other routes (listener mode: rules and listeners besides production's own and the
    /// test listener) that send it traffic.
    pub routes: Vec<String>,
}

/// A broken invariant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "code", rename_all = "kebab-case")]
pub enum Violation {
    /// Production forwards to a slot that runs no task or has no healthy target.
    ProductionOnEmptySlot {
        /// The slot.
        slot: Slot,
        /// Its service.
        service: String,
        /// The share of production it receives.
        percent: i64,
        /// Tasks running.
        running: i32,
        /// Healthy targets, when read.
        healthy: Option<i32>,
    },
    /// The idle slot runs tasks, and is not a warm slot inside its window.
    IdleSlotRunning {
        /// The slot.
        slot: Slot,
        /// Its service.
        service: String,
        /// Tasks it is asked to run.
        desired: i32,
    },
    /// Production's routes give neither slot any weight (DNS: both weights 0 — Route 53 then
    /// answers both records alike).
    ProductionUnrouted,
    /// Another route to the service (a host rule, an HTTP listener) forwards to a slot that
    /// runs no task: its traffic is down while production's own route is fine.
    RouteOnEmptySlot {
        /// The slot.
        slot: Slot,
        /// Its service.
        service: String,
        /// The routes.
        routes: Vec<String>,
    },
}

impl Violation {
    /// The stable name (`production-on-empty-slot`, `idle-slot-running`).
    pub fn code(&self) -> &'static str {
        match self {
            Violation::ProductionOnEmptySlot { .. } => "production-on-empty-slot",
            Violation::IdleSlotRunning { .. } => "idle-slot-running",
            Violation::ProductionUnrouted => "production-unrouted",
            Violation::RouteOnEmptySlot { .. } => "route-on-empty-slot",
        }
    }

    /// What is wrong, for people.
    pub fn describe(&self) -> String {
        match self {
            Violation::ProductionOnEmptySlot {
                slot,
                service,
                percent,
                running,
                healthy,
            } => format!(
                "production sends {percent}% to {slot} ({service}), which runs {running} task(s){}",
                healthy.map_or(String::new(), |h| format!(" with {h} healthy target(s)"))
            ),
            Violation::IdleSlotRunning {
                slot,
                service,
                desired,
            } => format!(
                "the idle slot {slot} ({service}) runs {desired} task(s) outside a warm window"
            ),
            Violation::ProductionUnrouted => {
                "production's routes give neither slot any weight".to_owned()
            }
            Violation::RouteOnEmptySlot {
                slot,
                service,
                routes,
            } => format!(
                "{} still forward{} to {slot} ({service}), which runs no task",
                routes.join(", "),
                if routes.len() == 1 { "s" } else { "" }
            ),
        }
    }

    /// The command that repairs it.
    pub fn repair_command(&self, config: &ServiceConfig, seen: &[SlotSeen]) -> String {
        match self {
            Violation::ProductionOnEmptySlot { service, .. }
                if config.traffic.engine() == crate::config::Engine::Ecs =>
            {
                format!(
                    "look at {service}'s ECS deployments and its target groups' health: ECS moves \
                     its production rule itself — never edit the rule or scale the service down"
                )
            }
            Violation::ProductionOnEmptySlot { slot, service, .. } => {
                let other = seen.iter().find(|s| s.slot == slot.other());
                let count = other.map_or(1, |o| o.desired.max(1));
                format!(
                    "the routes were changed outside bluegreen (an IaC apply?): point them back \
                     at {} ({}), or run `aws ecs update-service --cluster {} --service {service} \
                     --desired-count {count}`; then tell IaC to ignore the routes' forward \
                     actions (docs/iac.md)",
                    slot.other(),
                    config.slots.get(slot.other()).service,
                    config.cluster
                )
            }
            // On ECS's engine the "idle slot" is ECS's alternate target group: the service
            // is production's, never to be scaled down.
            Violation::IdleSlotRunning { slot, .. }
                if config.traffic.engine() == crate::config::Engine::Ecs =>
            {
                format!(
                    "look at the service's ECS deployments: none going on, the targets left in \
                     ECS's alternate target group {} are a revision ECS did not scale in; \
                     deregister them (`aws elbv2 deregister-targets`) — never scale the service, \
                     which is production's",
                    config.slots.get(*slot).target_group_arn
                )
            }
            Violation::IdleSlotRunning { slot, service, .. } => {
                let other = seen.iter().find(|s| s.slot == slot.other());
                if other.is_some_and(|o| o.percent > 0 && (o.running < 1 || o.healthy == Some(0))) {
                    // The routes moved off it: it is what production ran. Never advise removing it.
                    format!(
                        "keep {service}: it is what production ran before the routes moved off \
                         it; point production back at it first"
                    )
                } else {
                    format!(
                        "`aws ecs update-service --cluster {} --service {service} \
                         --desired-count 0`, and put its scalable target at rest \
                         (docs/autoscaling.md)",
                        config.cluster
                    )
                }
            }
            Violation::ProductionUnrouted => "point production at the slot that runs tasks \
                 (`bluegreen doctor` shows both); Route 53 answers every record of a name when \
                 all weights are 0"
                .to_owned(),
            Violation::RouteOnEmptySlot { slot, .. }
                if config.traffic.engine() == crate::config::Engine::Ecs =>
            {
                format!(
                    "point those routes at the target group production is on (not {}'s): ECS \
                     moves only its own production and test rules",
                    config.slots.get(*slot).target_group_arn
                )
            }
            Violation::RouteOnEmptySlot { slot, .. } => format!(
                "point those routes at {} ({}), and let the switch move them from now on \
                 (traffic.routes = \"auto\", or list them)",
                slot.other(),
                config.slots.get(slot.other()).service
            ),
        }
    }
}

/// The violations among `seen` (both slots) at `now`.
pub fn assess(seen: &[SlotSeen], now: DateTime<Utc>) -> Vec<Violation> {
    if seen.iter().all(|s| s.percent == 0) {
        return vec![Violation::ProductionUnrouted];
    }
    let mut found = Vec::new();
    for slot in seen {
        let starved = slot.running < 1 || slot.healthy.is_some_and(|h| h < 1);
        if slot.percent == 0 && !slot.routes.is_empty() && slot.running < 1 {
            found.push(Violation::RouteOnEmptySlot {
                slot: slot.slot,
                service: slot.service.clone(),
                routes: slot.routes.clone(),
            });
        }
        if slot.percent > 0 && starved {
            found.push(Violation::ProductionOnEmptySlot {
                slot: slot.slot,
                service: slot.service.clone(),
                percent: slot.percent,
                running: slot.running,
                healthy: slot.healthy,
            });
        }
        // Scheduled teardown scales an expired slot down on its next pass over the service
        // (hourly, a page of services at a time): not a violation until it had its chance.
        let teardowns = slot
            .warm_until
            .is_some_and(|until| now < until + Duration::seconds(TEARDOWN_GRACE_SECONDS));
        let warm = teardowns;
        // A slot other routes forward to is serving them, not idle.
        if slot.percent == 0 && slot.routes.is_empty() && slot.desired > 0 && !warm {
            found.push(Violation::IdleSlotRunning {
                slot: slot.slot,
                service: slot.service.clone(),
                desired: slot.desired,
            });
        }
    }
    found
}

/// The one repair the guard may make by itself, when it is unambiguous: production sends all
/// of its traffic to one slot that runs nothing, the other slot runs tasks *of the same
/// revision* — scale the first to the second's count. `None` otherwise (a split, both empty,
/// different releases, or nothing wrong).
pub fn repair(seen: &[SlotSeen]) -> Option<(Slot, i32)> {
    let starved = seen
        .iter()
        .find(|s| s.percent == 100 && s.desired < 1 && s.running < 1)?;
    let serving = seen.iter().find(|s| s.slot == starved.slot.other())?;
    // Scaling the starved slot back brings back the revision it runs: only when that is the
    // release the other slot runs (an apply reset the live slot's count). After a route was
    // reverted onto the previous release, scaling it up would roll production back to the
    // old image (maybe on a migrated schema): that is a person's decision.
    let same_release =
        starved.task_definition.is_some() && starved.task_definition == serving.task_definition;
    (serving.running > 0 && same_release)
        .then_some((starved.slot, serving.desired.max(serving.running)))
}

/// A stable name of a set of violations (codes and slots, not counts), so each distinct
/// violation is told once.
pub fn fingerprint(violations: &[Violation]) -> String {
    let mut parts: Vec<String> = violations
        .iter()
        .map(|v| match v {
            Violation::ProductionOnEmptySlot { slot, .. }
            | Violation::IdleSlotRunning { slot, .. }
            | Violation::RouteOnEmptySlot { slot, .. } => format!("{}:{slot}", v.code()),
            Violation::ProductionUnrouted => v.code().to_owned(),
        })
        .collect();
    parts.sort();
    parts.join(",")
}

/// Reads both slots: production's routing, each service's counts and warm tag, and the healthy
/// targets of the slots that receive traffic (listener mode).
pub async fn observe(ctx: &Context, config: &ServiceConfig) -> StepResult<Vec<SlotSeen>> {
    let routes = routing::read_production(ctx, config).await?;
    // Best-effort: the other routes are read on a shared load balancer (throttling, a rule
    // deleted in between); production's own checks never wait on them.
    let others = routing::observed_routes(ctx, config)
        .await
        .unwrap_or_else(|e| {
            warn!(service = %config.name, error = %e, "other routes unreadable");
            Vec::new()
        });
    let ecs_engine = config.traffic.engine() == crate::config::Engine::Ecs;
    let mut seen = Vec::new();
    for slot in Slot::ALL {
        let name = &config.slots.get(slot).service;
        let service = ecs::describe_service(ctx, &config.cluster, name).await?;
        let ecs_rules = ecs_own_rules(&service);
        let tags = ctx.ports.compute.tags_of(&service.arn).await?;
        let tag = |k: &str| tags.iter().find(|(key, _)| key == k).map(|(_, v)| v);
        let warm_until = tag(TAG_ROLE)
            .and(tag(TAG_EXPIRES))
            .and_then(|v| DateTime::parse_from_rfc3339(v).ok())
            .map(|t| t.with_timezone(&Utc));
        let percent = routes.percent(slot);
        // Where production reaches the slots through their target groups, a live slot's
        // healthy targets are what production gets.
        let healthy = if percent > 0 && traffic_mode::of(config).through_target_groups() {
            Some(
                health::target_health(ctx, config, slot)
                    .await?
                    .iter()
                    .filter(|t| t.state == "healthy")
                    .count() as i32,
            )
        } else {
            None
        };
        // On ECS's engine both slots name the one service, production's: the idle slot is
        // ECS's alternate target group, which holds targets only while ECS deploys. What runs
        // there is what is registered in it — never the service's tasks, and never a revision
        // the repair could scale (it scales services).
        let (desired, running, task_definition) = if percent == 0 && ecs_engine {
            let registered = staying_targets(ctx, &config.slots.get(slot).target_group_arn).await?;
            (registered, registered, None)
        } else {
            (
                service.desired_count,
                service.running_count,
                service.task_definition.clone(),
            )
        };
        seen.push(SlotSeen {
            slot,
            service: name.clone(),
            percent,
            desired,
            running,
            healthy,
            warm_until,
            task_definition,
            routes: crate::routes::others_on(config, &others, slot)
                .iter()
                // ECS's own rules (its test rule forwards to the alternate group) are ECS's.
                .filter(|r| !(ecs_engine && ecs_rules.contains(r)))
                .map(crate::routes::describe)
                .collect(),
        });
    }
    Ok(seen)
}

/// ECS's own rules of `service` (its production and test rules), which ECS moves itself.
fn ecs_own_rules(
    service: &crate::ports::compute::ServiceState,
) -> Vec<crate::ports::load_balancing::Route> {
    service
        .setup
        .routes
        .iter()
        .flat_map(|r| [r.production_rule.clone(), r.test_rule.clone()])
        .flatten()
        .map(crate::ports::load_balancing::Route::Rule)
        .collect()
}

/// The targets registered in `group` that stay: draining or unused ones are on their way out
/// (ECS's clean-up, a rollback).
async fn staying_targets(ctx: &Context, group: &str) -> StepResult<i32> {
    Ok(ctx
        .ports
        .load_balancing
        .target_health(group)
        .await?
        .iter()
        .filter(|t| !matches!(t.state.as_str(), "draining" | "unused"))
        .count() as i32)
}

/// What the guard would report for `config`'s service now, without telling anyone or
/// repairing (`status`, `doctor`): `(code, what is wrong, the repair)` per violation.
pub async fn findings(
    ctx: &Context,
    config: &ServiceConfig,
) -> StepResult<Vec<(&'static str, String, String)>> {
    let seen = observe(ctx, config).await?;
    Ok(assess(&seen, ctx.now())
        .iter()
        .map(|v| (v.code(), v.describe(), v.repair_command(config, &seen)))
        .collect())
}

/// What the guard found for one service, and what it did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Guarded {
    /// The service.
    pub service: String,
    /// `None`: not judged (its lock is held: a deployment or a person owns its slots).
    pub violations: Option<Vec<Violation>>,
    /// What it said about each violation and how to repair it, one line each.
    pub lines: Vec<String>,
    /// The repair it made (`guard.repair = true`), if any.
    pub repaired: Option<String>,
    /// Whether people were told this time (each distinct violation is told once).
    pub notified: bool,
    /// A queued push the repair's lock was handed to (the sweep starts it).
    pub handed_over: Option<String>,
    /// The EMF line emitted for the violations (`bluegreen/LiveSlotViolations`), if any.
    pub metric: Option<String>,
}

/// Checks `config`'s service once: judged only while its lock is free; reported (metric, one
/// notice per distinct violation) and, when configured and unambiguous, repaired.
pub async fn check(ctx: &Context, config: &ServiceConfig) -> StepResult<Guarded> {
    let locks = Locks::new(ctx);
    let mut guarded = Guarded {
        service: config.name.clone(),
        violations: None,
        lines: Vec::new(),
        repaired: None,
        notified: false,
        handed_over: None,
        metric: None,
    };
    if locks.read(&config.name).await?.is_some() {
        return Ok(guarded);
    }
    let seen = observe(ctx, config).await?;
    let violations = assess(&seen, ctx.now());
    guarded.lines = violations
        .iter()
        .map(|v| format!("{}: {}", v.describe(), v.repair_command(config, &seen)))
        .collect();
    // A deployment may have taken the service while the guard looked (TOCTOU): its shape is
    // then on purpose, not a violation.
    if locks.read(&config.name).await?.is_some() {
        return Ok(guarded);
    }
    // Every judged service counts, 0 included: the alarm's datapoints then say "all well" as
    // well as "broken", and it does not fall back to OK between two sweeps of a violation.
    guarded.metric = Some(crate::metrics::live_slot_violations(
        ctx,
        &config.name,
        violations.len(),
    ));
    // On ECS's engine both slots name production's one service: finishing a slots' manual
    // rollback or the repair would scale it. The guard only reports there.
    let ecs_engine = config.traffic.engine() == crate::config::Engine::Ecs;
    let left = left_by_a_rollback(config, &seen, &violations, ctx.now());
    if let Some(slot) = left.filter(|_| !ecs_engine) {
        // Not a repair of the guard's choosing: a person asked for it (see `retirement`).
        match finish_manual_rollback(ctx, config, slot).await {
            Ok((finished, next)) => (guarded.repaired, guarded.handed_over) = (finished, next),
            Err(e) => guarded.repaired = Some(format!("finishing the rollback failed: {e}")),
        }
    }
    if violations.is_empty() {
        locks.guard_cleared(&config.name).await?;
    } else {
        if guarded.repaired.is_none()
            && config.guard.repair
            && !ecs_engine
            && let Some((slot, _)) = repair(&seen)
        {
            match repair_slot(ctx, config, slot).await {
                Ok((repaired, next)) => (guarded.repaired, guarded.handed_over) = (repaired, next),
                Err(e) => guarded.repaired = Some(format!("repair failed: {e}")),
            }
        }
        if locks
            .first_report_of_guard(&config.name, &fingerprint(&violations))
            .await?
        {
            let mut body = guarded.lines.clone();
            body.extend(guarded.repaired.clone());
            match crate::notify::live_slot(ctx, &config.name, &body).await {
                Ok(sent) => guarded.notified = sent,
                Err(e) => {
                    // Told nobody: forget the report so the next sweep tells again.
                    locks.guard_cleared(&config.name).await?;
                    return Err(e);
                }
            }
        }
        warn!(service = %config.name, violations = ?violations, "live-slot guard");
    }
    guarded.violations = Some(violations);
    Ok(guarded)
}

/// Services the guard looks at per sweep: a fleet larger than this is covered in
/// `ceil(services / GUARD_SERVICES_PER_SWEEP)` sweeps (the cursor `guard` in the service index
/// says where the next one starts).
pub const GUARD_SERVICES_PER_SWEEP: i32 = 50;

const CURSOR: &str = "guard";

/// One pass of the guard over the next page of managed services (the service index). A
/// service whose config is invalid or whose check fails is reported as such and the pass goes
/// on: `Err` is one per service, never for the pass.
pub async fn sweep(ctx: &Context) -> StepResult<Vec<(String, StepResult<Guarded>)>> {
    let index = ServiceIndex::new(ctx);
    let names = index.next_page(CURSOR, GUARD_SERVICES_PER_SWEEP).await?;
    let mut results = Vec::new();
    for stored in ConfigStore::new(ctx).load_many(&names).await? {
        results.push(match stored {
            Ok(config) => (config.name.clone(), check(ctx, &config).await),
            Err(bad) => (
                bad.service.clone(),
                Err(crate::error::StepError::ConfigInvalid(bad.problems)),
            ),
        });
    }
    index
        .move_past(CURSOR, &names, GUARD_SERVICES_PER_SWEEP)
        .await?;
    Ok(results)
}

/// Who the guard is, on the records it writes.
const GUARD: &str = "the live-slot guard";

/// The idle slot a violation says still runs, if any.
fn idle_slot_running(violations: &[Violation]) -> Option<Slot> {
    violations.iter().find_map(|v| match v {
        Violation::IdleSlotRunning { slot, .. } => Some(*slot),
        _ => None,
    })
}

/// The slot an unfinished manual rollback may have left behind: the idle slot still running,
/// or one production is off (not warm) that only routes moving with production
/// (`traffic.routes`) still forward to — a rollback stopped between production's move and
/// theirs, which is no violation (the slot serves those routes) yet is finished all the same
/// (seed 9839). A route that does not follow production would refuse the retirement at every
/// sweep: such a slot is left to a person. Whether a rollback is pending there is the record's
/// to say ([`finish_manual_rollback`]).
fn left_by_a_rollback(
    config: &ServiceConfig,
    seen: &[SlotSeen],
    violations: &[Violation],
    now: DateTime<Utc>,
) -> Option<Slot> {
    idle_slot_running(violations).or_else(|| {
        seen.iter()
            .find(|s| {
                s.percent == 0
                    && !s.routes.is_empty()
                    && s.routes.iter().all(|r| follows_production(config, r))
                    && s.warm_until.is_none_or(|until| now >= until)
            })
            .map(|s| s.slot)
    })
}

/// Whether a route, as the guard names it (`listener <ARN>`, `rule <ARN>`), moves back and forth
/// with production ([`crate::routes::follows_production`]). Pure.
fn follows_production(config: &ServiceConfig, named: &str) -> bool {
    let arn = named.split_once(' ').map_or(named, |(_, arn)| arn);
    crate::routes::follows_production(config, arn)
}

/// What the guard did under the service's lock (`None`: nothing, the lock was taken meanwhile
/// or AWS no longer showed the reason), and the queued push the lock went to on release.
type UnderLock = (Option<String>, Option<String>);

/// Runs `act` holding the service's lock (a deployment starting meanwhile waits for it, and the
/// guard never changes anything under a deployment); released whatever happened.
async fn under_lock<F, Fut>(
    ctx: &Context,
    config: &ServiceConfig,
    what: &str,
    act: F,
) -> StepResult<UnderLock>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = StepResult<Option<String>>>,
{
    let locks = Locks::new(ctx);
    let holder = format!("{}-guard-repair", config.name);
    let lease = ctx.now() + Duration::seconds(REPAIR_LEASE_SECONDS);
    if let Acquire::HeldBy(_) = locks.hold(&config.name, &holder, lease).await? {
        return Ok((None, None));
    }
    let result = act().await;
    // A push queued behind the hold is started by the caller, even when `act` failed.
    let next = locks.release(&config.name, &holder).await?;
    Ok(match result {
        Ok(done) => (done, next),
        Err(e) => (Some(format!("{what} failed: {e}")), next),
    })
}

/// Scales `slot` to production's count under the service's lock, if AWS still shows that
/// repair when looked at again under it.
async fn repair_slot(ctx: &Context, config: &ServiceConfig, slot: Slot) -> StepResult<UnderLock> {
    under_lock(ctx, config, "repair", || async {
        let name = &config.slots.get(slot).service;
        let count = match observe(ctx, config).await.map(|seen| repair(&seen))? {
            Some((s, count)) if s == slot => count,
            _ => return Ok(None),
        };
        ecs::update_service(ctx, &config.cluster, name, None, count).await?;
        info!(service = %config.name, %slot, count, "live-slot guard repaired");
        Ok(Some(format!(
            "repaired (guard.repair): {slot} ({name}) scaled to {count} task(s), production's \
             count"
        )))
    })
    .await
}

/// Finishes the manual rollback a person ran when its clean-up did not (the slot it left,
/// `slot`, still runs, or other routes still forward to it): the newest deployment that moved traffic was rolled back by hand, its
/// retirement is pending, and production is still entirely on the other slot (checked under
/// the lock by [`retirement::finish`]).
async fn finish_manual_rollback(
    ctx: &Context,
    config: &ServiceConfig,
    slot: Slot,
) -> StepResult<UnderLock> {
    let last = Records::new(ctx)
        .newest_for_service(&config.name, |d| {
            matches!(d.status, Status::Succeeded | Status::RolledBack)
        })
        .await?;
    // Only on the deployment's own terms: the slot it left, the routing and slots it knew.
    let same_service = |d: &crate::record::Deployment| {
        d.config.slots == config.slots && d.config.traffic == config.traffic
    };
    let Some(last) = last.filter(|d| {
        retirement::pending(d) && d.target_slot().ok() == Some(slot) && same_service(d)
    }) else {
        return Ok((None, None));
    };
    under_lock(ctx, config, "finishing the manual rollback", || async {
        let (done, ..) = retirement::finish(ctx, &last, GUARD).await?;
        info!(service = %config.name, deployment_id = %last.deployment_id, "guard finished a manual rollback");
        Ok(Some(format!(
            "finished the manual rollback of {}: {done}",
            last.deployment_id
        )))
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(slot: Slot, percent: i64, desired: i32, running: i32) -> SlotSeen {
        let release = if slot == Slot::Blue {
            "shop:6"
        } else {
            "shop:7"
        };
        SlotSeen {
            slot,
            service: format!("shop-{slot}"),
            percent,
            desired,
            running,
            healthy: (percent > 0).then_some(running),
            warm_until: None,
            task_definition: Some(release.into()),
            routes: Vec::new(),
        }
    }

    /// A host rule left on blue after production moved to green and blue scaled to 0: an
    /// outage of that host that production's own route does not show.
    #[test]
    fn another_route_on_a_slot_that_runs_nothing_is_a_violation_and_keeps_it_from_being_idle() {
        let now = Utc::now();
        let rule = "rule arn:aws:elasticloadbalancing:us-east-1:1:listener-rule/app/a/1/2/3";
        let mut blue = seen(Slot::Blue, 0, 0, 0);
        blue.routes = vec![rule.into()];
        let violations = assess(&[blue.clone(), seen(Slot::Green, 100, 2, 2)], now);
        assert_eq!(violations.len(), 1, "{violations:?}");
        assert_eq!(violations[0].code(), "route-on-empty-slot");
        assert!(violations[0].describe().contains(rule));
        // Running, it serves the rule: not an idle slot to scale down.
        blue.desired = 2;
        blue.running = 2;
        assert_eq!(assess(&[blue, seen(Slot::Green, 100, 2, 2)], now), []);
    }

    /// A slot production is off that only routes moving with production still forward to is
    /// one a manual rollback may have left (the record decides); a route that does not follow
    /// production, or a warm slot, is left to a person.
    #[test]
    fn a_slot_still_routed_is_left_by_a_rollback_only_through_routes_that_follow_production() {
        use crate::config::{Routes, RoutesWord, Traffic};
        let now = Utc::now();
        let arn = "arn:aws:elasticloadbalancing:us-east-1:1:listener-rule/app/a/1/2/3";
        let mut blue = seen(Slot::Blue, 0, 2, 2);
        blue.routes = vec![format!("rule {arn}")];
        let slots = [blue.clone(), seen(Slot::Green, 100, 2, 2)];
        let mut config =
            ServiceConfig::from_toml(include_str!("../../../docs/example-service.toml")).unwrap();
        let with = |config: &mut ServiceConfig, chosen: Routes| {
            if let Traffic::Listener { routes, .. } = &mut config.traffic {
                *routes = chosen;
            }
        };
        with(&mut config, Routes::Word(RoutesWord::Primary));
        assert_eq!(left_by_a_rollback(&config, &slots, &[], now), None);
        with(&mut config, Routes::Word(RoutesWord::Auto));
        assert_eq!(
            left_by_a_rollback(&config, &slots, &[], now),
            Some(Slot::Blue)
        );
        with(&mut config, Routes::Listed(vec![arn.into()]));
        assert_eq!(
            left_by_a_rollback(&config, &slots, &[], now),
            Some(Slot::Blue)
        );
        with(&mut config, Routes::Listed(vec![format!("{arn}9")]));
        assert_eq!(left_by_a_rollback(&config, &slots, &[], now), None);
        with(&mut config, Routes::Word(RoutesWord::Auto));
        blue.warm_until = Some(now + Duration::hours(1));
        let warm = [blue, seen(Slot::Green, 100, 2, 2)];
        assert_eq!(left_by_a_rollback(&config, &warm, &[], now), None);
    }

    #[test]
    fn a_healthy_pair_has_no_violation() {
        let now = Utc::now();
        assert!(
            assess(
                &[seen(Slot::Blue, 100, 2, 2), seen(Slot::Green, 0, 0, 0)],
                now
            )
            .is_empty()
        );
        let mut warm = seen(Slot::Green, 0, 2, 2);
        warm.warm_until = Some(now + chrono::Duration::minutes(5));
        assert!(assess(&[seen(Slot::Blue, 100, 2, 2), warm.clone()], now).is_empty());
        warm.warm_until = Some(now - chrono::Duration::minutes(5));
        assert!(
            assess(&[seen(Slot::Blue, 100, 2, 2), warm.clone()], now).is_empty(),
            "just expired: teardown's to scale down on its next pass"
        );
        warm.warm_until = Some(now - chrono::Duration::hours(7));
        assert_eq!(
            assess(&[seen(Slot::Blue, 100, 2, 2), warm], now)[0].code(),
            "idle-slot-running",
            "teardown had its chances"
        );
    }

    #[test]
    fn a_reverted_route_is_production_on_an_empty_slot_and_repairable() {
        // After blue→green, an apply pointed the listener back at blue (scaled to 0).
        let world = [seen(Slot::Blue, 100, 0, 0), seen(Slot::Green, 0, 6, 6)];
        let found = assess(&world, Utc::now());
        let codes: Vec<_> = found.iter().map(Violation::code).collect();
        assert_eq!(codes, vec!["production-on-empty-slot", "idle-slot-running"]);
        assert_eq!(
            repair(&world),
            None,
            "blue runs the previous release: a person decides"
        );
        let mut reset = world.clone();
        reset[0].task_definition = reset[1].task_definition.clone();
        assert_eq!(
            repair(&reset),
            Some((Slot::Blue, 6)),
            "an apply reset the live slot's count: same release, scaled back"
        );
        assert_eq!(
            fingerprint(&found),
            "idle-slot-running:green,production-on-empty-slot:blue"
        );
    }

    #[test]
    fn running_tasks_without_healthy_targets_starve_production_too() {
        let mut blue = seen(Slot::Blue, 100, 2, 2);
        blue.healthy = Some(0);
        let found = assess(&[blue.clone(), seen(Slot::Green, 0, 0, 0)], Utc::now());
        assert_eq!(found[0].code(), "production-on-empty-slot");
        assert_eq!(
            repair(&[blue, seen(Slot::Green, 0, 0, 0)]),
            None,
            "not a count problem"
        );
    }

    #[test]
    fn routes_that_weigh_neither_slot_are_their_own_violation() {
        let found = assess(
            &[seen(Slot::Blue, 0, 2, 2), seen(Slot::Green, 0, 0, 0)],
            Utc::now(),
        );
        let codes: Vec<_> = found.iter().map(Violation::code).collect();
        assert_eq!(
            codes,
            vec!["production-unrouted"],
            "no advice to scale blue down"
        );
    }

    #[test]
    fn only_an_unambiguous_repair_is_offered() {
        let split = [seen(Slot::Blue, 50, 0, 0), seen(Slot::Green, 50, 2, 2)];
        assert_eq!(repair(&split), None, "a split is for a person");
        let both_empty = [seen(Slot::Blue, 100, 0, 0), seen(Slot::Green, 0, 0, 0)];
        assert_eq!(repair(&both_empty), None, "no count to restore");
    }
}
