//! Autoscaling belongs to the live slot and follows production from slot to slot.
//!
//! Application Auto Scaling knows each slot as its own scalable target. Left alone, the first
//! switch would leave production on a slot with no scalable target (it stops autoscaling) and
//! the old slot under its own (`min ≥ 1`): the next time a policy ran, Application Auto Scaling
//! would bring the old slot back to its minimum — a second copy of production, running for
//! ever. So a deployment carries the live slot's autoscaling with it, in four stances:
//!
//! | when | the slot | its scalable target |
//! |------|----------|---------------------|
//! | launch | pre-prod | [`held`]: min 0, everything suspended (pre-prod keeps `preprod.desired_count`); policies and scheduled actions copied, per-target-group metrics re-pointed |
//! | switch, each canary step | the new slot | [`serving`]: production's min/max, **scale-in suspended** through the bake |
//! | finish | the new slot / the old slot | production's own target (as recorded) / [`resting`]: min 0, everything suspended, so nothing brings it back |
//! | rollback, abort, teardown | the slot leaving | [`resting`] before it is scaled down; a manual rollback restores the old slot's recorded target |
//!
//! Decisions are the pure functions here; [`carry`], [`rest`] and [`restore`] carry them out
//! through the [`crate::ports::Scaling`] port ([`plan_carry`] observes and decides, [`carry`]
//! writes, [`hand_over`] runs at finish). Every write is an upsert that a retry repeats
//! harmlessly, and each is skipped when AWS already holds what it would write.

use crate::config::ServiceConfig;
use crate::context::Context;
use crate::error::StepResult;
use crate::ports::scaling::{
    PolicyKind, ScalableTarget, ScalingPolicy, ScheduledAction, Suspended, TrackedMetric,
};
use crate::ports::tables::Cond;
use crate::record::{Change, Deployment, Records};
use crate::slot::Slot;

/// Application Auto Scaling's name for an ECS service: `service/<cluster name>/<service>`
/// (the cluster as a name even when configured as an ARN).
pub fn resource_id(cluster: &str, service: &str) -> String {
    let cluster = cluster.rsplit_once(":cluster/").map_or(cluster, |(_, n)| n);
    format!("service/{cluster}/{service}")
}

/// Pre-prod's target at launch: it may scale as production does later, but nothing acts on it
/// yet (its count is `preprod.desired_count`, and a minimum of 0 leaves it there).
pub fn held(live: &ScalableTarget, preprod_count: i32) -> ScalableTarget {
    ScalableTarget {
        min: 0,
        max: live.max.max(preprod_count),
        suspended: Suspended::ALL,
    }
}

/// The new slot's target while it takes production traffic and bakes: production's range, and
/// no scale-in (a quiet bake must not shrink the slot that production now depends on).
pub fn serving(live: &ScalableTarget) -> ScalableTarget {
    ScalableTarget {
        min: live.min,
        max: live.max,
        suspended: Suspended {
            scale_in: true,
            ..live.suspended
        },
    }
}

/// A slot at rest (idle, or warm until its window ends): no minimum and nothing suspended
/// left to resume, so no policy or scheduled action can bring it back.
pub fn resting(current: &ScalableTarget) -> ScalableTarget {
    ScalableTarget {
        min: 0,
        max: current.max,
        suspended: Suspended::ALL,
    }
}

/// What a slot's per-slot metrics are named after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotNames<'a> {
    /// Its ECS service name (the `ServiceName` dimension).
    pub service: &'a str,
    /// Its target group ARN (`targetgroup/<name>/<id>` in resource labels and dimensions).
    pub target_group_arn: &'a str,
    /// Whether both slots' target groups sit behind the same load balancer (listener mode),
    /// so a per-target-group metric (`app/<lb>/…/targetgroup/…`, the `LoadBalancer` and
    /// `TargetGroup` dimensions) can be re-pointed by swapping the target group alone. In DNS
    /// mode each slot has its own load balancer, which bluegreen does not look up.
    pub shared_load_balancer: bool,
}

impl<'a> SlotNames<'a> {
    /// The names of `slot` of `config`.
    pub fn of(config: &'a ServiceConfig, slot: Slot) -> Self {
        let slot_config = config.slots.get(slot);
        SlotNames {
            service: &slot_config.service,
            target_group_arn: &slot_config.target_group_arn,
            shared_load_balancer: crate::traffic_mode::of(config).through_target_groups(),
        }
    }
}

/// `targetgroup/<name>/<id>` of a target group ARN, as metrics name it.
fn target_group_label(arn: &str) -> Option<&str> {
    arn.find("targetgroup/").map(|i| &arn[i..])
}

/// `policy` with every name of `from` in its metric replaced by the one of `to`: the target
/// group in an `ALBRequestCountPerTarget` resource label, the `TargetGroup` and `ServiceName`
/// dimensions of a customized metric. `Err` says why it cannot be copied.
pub fn repoint(
    policy: &ScalingPolicy,
    from: &SlotNames,
    to: &SlotNames,
) -> Result<ScalingPolicy, String> {
    let kind = match &policy.kind {
        PolicyKind::TargetTracking {
            target_value,
            metric,
            scale_out_cooldown,
            scale_in_cooldown,
            disable_scale_in,
        } => PolicyKind::TargetTracking {
            target_value: *target_value,
            metric: repoint_metric(metric, from, to)
                .map_err(|why| format!("policy {}: {why}", policy.name))?,
            scale_out_cooldown: *scale_out_cooldown,
            scale_in_cooldown: *scale_in_cooldown,
            disable_scale_in: *disable_scale_in,
        },
        PolicyKind::Step { .. } => policy.kind.clone(),
        PolicyKind::Other(kind) => {
            return Err(format!("policy {}: {kind} is not copied", policy.name));
        }
    };
    Ok(ScalingPolicy {
        name: policy.name.clone(),
        kind,
    })
}

/// Whether a tracked metric names a load balancer or target group (a per-slot name).
fn per_target_group(metric: &TrackedMetric) -> bool {
    match metric {
        TrackedMetric::Predefined { resource_label, .. } => resource_label.is_some(),
        TrackedMetric::Customized { dimensions, .. } => dimensions
            .iter()
            .any(|(n, _)| n == "TargetGroup" || n == "LoadBalancer"),
        TrackedMetric::MetricMath => false,
    }
}

/// The tracked metric with `from`'s names replaced by `to`'s (see [`repoint`]).
fn repoint_metric(
    metric: &TrackedMetric,
    from: &SlotNames,
    to: &SlotNames,
) -> Result<TrackedMetric, String> {
    if per_target_group(metric) && !to.shared_load_balancer {
        return Err(format!(
            "its metric names the live slot's load balancer and target group, and {} has a \
             load balancer of its own",
            to.service
        ));
    }
    let from_tg = target_group_label(from.target_group_arn);
    let to_tg = target_group_label(to.target_group_arn);
    Ok(match metric {
        TrackedMetric::Predefined {
            metric_type,
            resource_label,
        } => TrackedMetric::Predefined {
            metric_type: metric_type.clone(),
            resource_label: match resource_label {
                Some(label) => Some(repoint_label(label, from_tg, to_tg).ok_or_else(|| {
                    format!("its resource label {label} does not name the live slot's target group")
                })?),
                None => None,
            },
        },
        TrackedMetric::Customized {
            metric_name,
            namespace,
            dimensions,
            statistic,
            unit,
        } => TrackedMetric::Customized {
            metric_name: metric_name.clone(),
            namespace: namespace.clone(),
            dimensions: dimensions
                .iter()
                .map(|(name, value)| {
                    let value = match (name.as_str(), from_tg, to_tg) {
                        ("TargetGroup", Some(f), Some(t)) if value == f => t.to_owned(),
                        ("ServiceName", _, _) if value == from.service => to.service.to_owned(),
                        _ => value.clone(),
                    };
                    (name.clone(), value)
                })
                .collect(),
            statistic: statistic.clone(),
            unit: unit.clone(),
        },
        TrackedMetric::MetricMath => {
            return Err("metric math is not re-pointed; copy it by hand".into());
        }
    })
}

/// `app/<lb>/<id>/targetgroup/<from>` → `app/<lb>/<id>/targetgroup/<to>`; `None` when the
/// label does not end in `from` (and is not already `to`'s: a repeated copy).
fn repoint_label(label: &str, from: Option<&str>, to: Option<&str>) -> Option<String> {
    let (from, to) = (from?, to?);
    if label.ends_with(to) {
        return Some(label.to_owned());
    }
    label
        .strip_suffix(from)
        .map(|load_balancer| format!("{load_balancer}{to}"))
}

/// What to write so that a slot's policies and scheduled actions equal the live slot's.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CopyPlan {
    /// Policies to create or replace (re-pointed).
    pub put_policies: Vec<ScalingPolicy>,
    /// Policies the slot has and the live slot does not.
    pub delete_policies: Vec<String>,
    /// Scheduled actions to create or replace.
    pub put_actions: Vec<ScheduledAction>,
    /// Scheduled actions the slot has and the live slot does not.
    pub delete_actions: Vec<String>,
    /// Live policies bluegreen cannot carry and the receiving slot does not have from the
    /// team either, and why: production would lose them at finish.
    pub uncarried: Vec<String>,
}

impl CopyPlan {
    /// Whether nothing needs writing.
    pub fn is_empty(&self) -> bool {
        self.put_policies.is_empty()
            && self.delete_policies.is_empty()
            && self.put_actions.is_empty()
            && self.delete_actions.is_empty()
    }
}

/// The writes that make `to`'s policies and scheduled actions equal `from`'s, re-pointed.
/// Anything `to` already holds unchanged is left alone.
///
/// What bluegreen cannot re-point — a step policy (CloudWatch alarms name its ARN, and alarms
/// are not copied), metric math, predictive scaling, a per-target-group metric across two load
/// balancers — must be given to `to` by the team (IaC, one per slot): a same-named policy on
/// `to` (for a step policy, one with alarms) is then left exactly as it is. Without one it is
/// listed in [`CopyPlan::uncarried`], and the launch or switch refuses rather than leave
/// production without it.
pub fn plan_copy(
    from: (&[ScalingPolicy], &[ScheduledAction]),
    to: (&[ScalingPolicy], &[ScheduledAction]),
    names: (&SlotNames, &SlotNames),
) -> CopyPlan {
    let mut plan = CopyPlan::default();
    for policy in from.0 {
        let held = to.0.iter().find(|p| p.name == policy.name);
        let copy = match &policy.kind {
            PolicyKind::Step { .. } => Err(format!(
                "step policy {}: CloudWatch alarms invoke it by its ARN, and bluegreen does not \
                 copy alarms",
                policy.name
            )),
            _ => repoint(policy, names.0, names.1),
        };
        match copy {
            Ok(copy) => {
                if !held.is_some_and(|p| same_policy(p, &copy)) {
                    plan.put_policies.push(copy);
                }
            }
            Err(_) if held.is_some_and(provided_by_the_team) => {}
            Err(why) => plan.uncarried.push(format!(
                "{why}: give {} its own policy {} (IaC, one per slot; docs/autoscaling.md)",
                names.1.service, policy.name
            )),
        }
    }
    plan.delete_policies =
        to.0.iter()
            .filter(|p| !from.0.iter().any(|l| l.name == p.name))
            .map(|p| p.name.clone())
            .collect();
    for action in from.1 {
        if !to.1.contains(action) {
            plan.put_actions.push(action.clone());
        }
    }
    plan.delete_actions =
        to.1.iter()
            .filter(|a| !from.1.iter().any(|l| l.name == a.name))
            .map(|a| a.name.clone())
            .collect();
    plan
}

/// Whether a policy on the receiving slot is the team's own copy of one bluegreen cannot
/// carry (bluegreen never writes such a policy): a step policy some alarm invokes, or any
/// other kind it does not write.
fn provided_by_the_team(policy: &ScalingPolicy) -> bool {
    match &policy.kind {
        PolicyKind::Step { alarms, .. } => !alarms.is_empty(),
        PolicyKind::TargetTracking { .. } => true,
        PolicyKind::Other(_) => true,
    }
}

/// Two policies are the same when they differ at most in the alarms AWS attached to them
/// (a step policy's alarms name its own ARN; they are not part of what is written).
fn same_policy(a: &ScalingPolicy, b: &ScalingPolicy) -> bool {
    let without_alarms = |p: &ScalingPolicy| match &p.kind {
        PolicyKind::Step {
            adjustment_type,
            steps,
            min_adjustment_magnitude,
            cooldown,
            metric_aggregation_type,
            ..
        } => PolicyKind::Step {
            adjustment_type: adjustment_type.clone(),
            steps: steps.clone(),
            min_adjustment_magnitude: *min_adjustment_magnitude,
            cooldown: *cooldown,
            metric_aggregation_type: metric_aggregation_type.clone(),
            alarms: Vec::new(),
        },
        other => other.clone(),
    };
    a.name == b.name && without_alarms(a) == without_alarms(b)
}

/// The stance [`carry`] puts the receiving slot in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stance {
    /// Pre-prod at launch ([`held`]), sized `preprod_count`.
    Held {
        /// Pre-prod's desired count.
        preprod_count: i32,
    },
    /// About to take (or taking) production traffic ([`serving`]).
    Serving,
}

/// What [`plan_carry`] found to write on the receiving slot.
#[derive(Debug, Clone, PartialEq)]
pub struct Carry {
    /// The receiving slot's resource id.
    resource: String,
    /// Its service name, and the live slot's (for the timeline).
    services: (String, String),
    /// The scalable target to register, when it differs.
    register: Option<ScalableTarget>,
    /// Policies and scheduled actions to write.
    copy: CopyPlan,
    /// The stance it is carried in.
    stance: Stance,
}

impl Carry {
    /// Whether AWS already holds everything.
    pub fn is_empty(&self) -> bool {
        self.register.is_none() && self.copy.is_empty()
    }

    /// `Err(refuse(why))` when a live policy cannot be carried (see [`plan_copy`]): a typed
    /// step failure before anything moved, naming each policy and what the team must add.
    pub fn refuse_uncarried(
        &self,
        refuse: impl FnOnce(String) -> crate::error::StepError,
    ) -> StepResult<()> {
        if self.copy.uncarried.is_empty() {
            return Ok(());
        }
        Err(refuse(format!(
            "production's autoscaling cannot follow it to {}: {}",
            self.services.0,
            self.copy.uncarried.join("; ")
        )))
    }

    /// What it does, for the timeline.
    pub fn describe(&self) -> String {
        let (to, from) = &self.services;
        let mut done = Vec::new();
        if let Some(target) = &self.register {
            done.push(format!(
                "{to} autoscales {}..{} like {from}{}",
                target.min,
                target.max,
                match self.stance {
                    Stance::Held { .. } => " (held: suspended until it takes traffic)",
                    Stance::Serving => " (scale-in suspended through the bake)",
                }
            ));
        }
        if !self.copy.is_empty() {
            done.push(format!(
                "{} scaling policies and {} scheduled actions copied from {from}",
                self.copy.put_policies.len(),
                self.copy.put_actions.len()
            ));
        }
        done.join("; ")
    }
}

/// Reads what carrying the autoscaling of `to`'s other slot (the live one) to `to` in
/// `stance` would write: its scalable target, then its policies (re-pointed) and scheduled
/// actions. `None` when the live slot has no scalable target (nothing to carry).
pub async fn plan_carry(
    ctx: &Context,
    config: &ServiceConfig,
    to: Slot,
    stance: Stance,
) -> StepResult<Option<Carry>> {
    let scaling = &ctx.ports.scaling;
    let (live_slot, new_slot) = (config.slots.get(to.other()), config.slots.get(to));
    let live = resource_id(&config.cluster, &live_slot.service);
    let new = resource_id(&config.cluster, &new_slot.service);
    let Some(live_target) = scaling.target(&live).await? else {
        return Ok(None);
    };
    let wanted = match stance {
        Stance::Held { preprod_count } => held(&live_target, preprod_count),
        Stance::Serving => serving(&live_target),
    };
    let register = (scaling.target(&new).await? != Some(wanted)).then_some(wanted);
    let (from, into) = (SlotNames::of(config, to.other()), SlotNames::of(config, to));
    let copy = plan_copy(
        (
            &scaling.policies(&live).await?,
            &scaling.scheduled_actions(&live).await?,
        ),
        (
            &scaling.policies(&new).await?,
            &scaling.scheduled_actions(&new).await?,
        ),
        (&from, &into),
    );
    Ok(Some(Carry {
        resource: new,
        services: (new_slot.service.clone(), live_slot.service.clone()),
        register,
        copy,
        stance,
    }))
}

/// Writes `carry`: the scalable target first (policies need one), then the copy.
pub async fn carry(ctx: &Context, carry: &Carry) -> StepResult<()> {
    let scaling = &ctx.ports.scaling;
    let resource = &carry.resource;
    if let Some(target) = &carry.register {
        scaling.register(resource, target).await?;
    }
    let plan = &carry.copy;
    for policy in &plan.put_policies {
        scaling.put_policy(resource, policy).await?;
    }
    for name in &plan.delete_policies {
        scaling.delete_policy(resource, name).await?;
    }
    for action in &plan.put_actions {
        scaling.put_scheduled_action(resource, action).await?;
    }
    for name in &plan.delete_actions {
        scaling.delete_scheduled_action(resource, name).await?;
    }
    Ok(())
}

/// Puts `service`'s scalable target at rest ([`resting`]) before the slot is scaled down, so no
/// policy or scheduled action brings it back. Returns the target it had, `None` when it has
/// none (nothing to do).
pub async fn rest(
    ctx: &Context,
    cluster: &str,
    service: &str,
) -> StepResult<Option<ScalableTarget>> {
    let resource = resource_id(cluster, service);
    let Some(current) = ctx.ports.scaling.target(&resource).await? else {
        return Ok(None);
    };
    let at_rest = resting(&current);
    if current != at_rest {
        ctx.ports.scaling.register(&resource, &at_rest).await?;
    }
    Ok(Some(current))
}

/// Production's scalable target as it was before bluegreen touched it, recorded once on the
/// deployment: the first caller reads it from the live slot (`old`) and writes it with
/// `attribute_not_exists`; every later caller — a retry, a second finish, a racing ending —
/// gets the recorded one, never a target bluegreen has since frozen or rested. `None` when
/// production does not autoscale (or the record ended meanwhile).
async fn production_target(
    ctx: &Context,
    deployment: &Deployment,
    old: Slot,
) -> StepResult<Option<ScalableTarget>> {
    if let Some(recorded) = deployment.production_scaling {
        return Ok(Some(recorded));
    }
    let config = &deployment.config;
    let resource = resource_id(&config.cluster, &config.slots.get(old).service);
    let Some(current) = ctx.ports.scaling.target(&resource).await? else {
        return Ok(None);
    };
    let records = Records::new(ctx);
    let first = records
        .update_unless_ended(
            &deployment.deployment_id,
            Change::new().production_scaling(&current),
            Cond::absent("production_scaling"),
        )
        .await?;
    if first {
        return Ok(Some(current));
    }
    Ok(records
        .get(&deployment.deployment_id)
        .await?
        .production_scaling)
}

/// Before the first traffic move: production's target is recorded, then the live slot's
/// scale-in is suspended until the deployment ends — as traffic drains from it through a
/// canary and the bake, its policies must not shrink the slot a rollback sends everything
/// back to. Returns the timeline line when it changed something.
pub async fn freeze_production(
    ctx: &Context,
    deployment: &Deployment,
    live: Slot,
) -> StepResult<Option<String>> {
    let Some(production) = production_target(ctx, deployment, live).await? else {
        return Ok(None);
    };
    let config = &deployment.config;
    let service = &config.slots.get(live).service;
    let frozen = ScalableTarget {
        suspended: Suspended {
            scale_in: true,
            ..production.suspended
        },
        ..production
    };
    let resource = resource_id(&config.cluster, service);
    if ctx.ports.scaling.target(&resource).await? == Some(frozen) {
        return Ok(None);
    }
    ctx.ports.scaling.register(&resource, &frozen).await?;
    Ok(Some(format!(
        "{service} (production) scale-in suspended while traffic moves away from it"
    )))
}

/// Finish: production's autoscaling moves for good. The new slot gets production's recorded
/// target (scale-in resumed after the bake) and the old slot is put at rest before it is
/// scaled down. Returns the timeline line, `None` when production does not autoscale.
pub async fn hand_over(
    ctx: &Context,
    deployment: &Deployment,
    new: Slot,
) -> StepResult<Option<String>> {
    let config = &deployment.config;
    let old = new.other();
    let Some(production) = production_target(ctx, deployment, old).await? else {
        return Ok(None);
    };
    let cluster = &config.cluster;
    restore(ctx, cluster, &config.slots.get(new).service, &production).await?;
    rest(ctx, cluster, &config.slots.get(old).service).await?;
    Ok(Some(format!(
        "{} autoscales {}..{} (scale-in resumed); {} at rest (min 0, scaling suspended)",
        config.slots.get(new).service,
        production.min,
        production.max,
        config.slots.get(old).service
    )))
}

/// A bake rollback or an abort, production back on (or never off) `live`: it gets
/// production's recorded target back (scale-in resumed). Nothing when nothing was recorded
/// (the switch never froze it).
pub async fn give_back(ctx: &Context, deployment: &Deployment, live: Slot) -> StepResult<()> {
    if let Some(production) = &deployment.production_scaling {
        let config = &deployment.config;
        restore(
            ctx,
            &config.cluster,
            &config.slots.get(live).service,
            production,
        )
        .await?;
    }
    Ok(())
}

/// A manual rollback from `bad` (production since finish): the target production has *now*
/// — IaC or people may have changed its range since finish — with the suspended state
/// production had before the deployment; the recorded target when `bad` has none. `None` when
/// production does not autoscale.
pub async fn taken_back(
    ctx: &Context,
    deployment: &Deployment,
    bad: Slot,
) -> StepResult<Option<ScalableTarget>> {
    let config = &deployment.config;
    let resource = resource_id(&config.cluster, &config.slots.get(bad).service);
    let current = ctx.ports.scaling.target(&resource).await?;
    Ok(match (current, deployment.production_scaling) {
        (Some(now), Some(recorded)) => Some(ScalableTarget {
            suspended: recorded.suspended,
            ..now
        }),
        (now, recorded) => now.or(recorded),
    })
}

/// Gives `service` the scalable target `target` (production's own) unless it has it already.
pub async fn restore(
    ctx: &Context,
    cluster: &str,
    service: &str,
    target: &ScalableTarget,
) -> StepResult<()> {
    let resource = resource_id(cluster, service);
    if ctx.ports.scaling.target(&resource).await?.as_ref() != Some(target) {
        ctx.ports.scaling.register(&resource, target).await?;
    }
    Ok(())
}

/// What is wrong with the slots' autoscaling while no deployment runs, as `(code, problem,
/// fix)`: the idle slot able to come back (a minimum above 0, or scaling not suspended — an
/// IaC apply re-registered it), production's scaling left suspended (a bake that never
/// finished), and what a deployment could not carry (its launch would refuse).
pub fn problems(
    live: (&str, Option<&ScalableTarget>),
    idle: (&str, Option<&ScalableTarget>),
    uncarried: &[String],
) -> Vec<(&'static str, String, String)> {
    let mut found = Vec::new();
    if let (Some(idle_target), Some(_)) = (idle.1, live.1)
        && (idle_target.min > 0 || idle_target.suspended != Suspended::ALL)
    {
        found.push((
            "idle-slot-autoscales",
            format!(
                "{} (idle) has a scalable target of {}..{} with {:?}: a policy or scheduled \
                 action can bring it back beside production",
                idle.0, idle_target.min, idle_target.max, idle_target.suspended
            ),
            "register it at rest (min 0, dynamic and scheduled scaling suspended), and tell \
             IaC to ignore the scalable targets' min/max/suspended state (docs/autoscaling.md)"
                .to_owned(),
        ));
    }
    if let Some(live_target) = live.1
        && (live_target.suspended.scale_in || live_target.suspended.scale_out)
    {
        found.push((
            "live-slot-scaling-suspended",
            format!(
                "{} (live) has scaling suspended ({:?}): production does not follow its load",
                live.0, live_target.suspended
            ),
            "resume it (RegisterScalableTarget with SuspendedState false) once no deployment \
             is baking"
                .to_owned(),
        ));
    }
    for why in uncarried {
        found.push((
            "autoscaling-not-carried",
            format!("{}: {why}", live.0),
            "the next deployment's launch refuses until it is provided for both slots \
             (docs/autoscaling.md)"
                .to_owned(),
        ));
    }
    found
}

/// [`problems`] for `config`'s slots with `live` serving production, read from AWS.
pub async fn check(
    ctx: &Context,
    config: &ServiceConfig,
    live: Slot,
) -> StepResult<Vec<(&'static str, String, String)>> {
    let scaling = &ctx.ports.scaling;
    let (live_slot, idle_slot) = (config.slots.get(live), config.slots.get(live.other()));
    let live_id = resource_id(&config.cluster, &live_slot.service);
    let idle_id = resource_id(&config.cluster, &idle_slot.service);
    let live_target = scaling.target(&live_id).await?;
    let idle_target = scaling.target(&idle_id).await?;
    let uncarried = match live_target {
        Some(_) => {
            let (from, to) = (
                SlotNames::of(config, live),
                SlotNames::of(config, live.other()),
            );
            plan_copy(
                (&scaling.policies(&live_id).await?, &[]),
                (&scaling.policies(&idle_id).await?, &[]),
                (&from, &to),
            )
            .uncarried
        }
        None => Vec::new(),
    };
    Ok(problems(
        (&live_slot.service, live_target.as_ref()),
        (&idle_slot.service, idle_target.as_ref()),
        &uncarried,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TG_BLUE: &str = "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/shop-blue/aaa";
    const TG_GREEN: &str = "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/shop-green/bbb";

    fn names() -> (SlotNames<'static>, SlotNames<'static>) {
        (
            SlotNames {
                service: "shop-blue",
                target_group_arn: TG_BLUE,
                shared_load_balancer: true,
            },
            SlotNames {
                service: "shop-green",
                target_group_arn: TG_GREEN,
                shared_load_balancer: true,
            },
        )
    }

    fn requests_per_target(label: &str) -> ScalingPolicy {
        ScalingPolicy {
            name: "requests".into(),
            kind: PolicyKind::TargetTracking {
                target_value: 1000.0,
                metric: TrackedMetric::Predefined {
                    metric_type: "ALBRequestCountPerTarget".into(),
                    resource_label: Some(label.into()),
                },
                scale_out_cooldown: Some(60),
                scale_in_cooldown: Some(300),
                disable_scale_in: None,
            },
        }
    }

    #[test]
    fn resource_ids_use_the_cluster_name_even_from_an_arn() {
        assert_eq!(resource_id("prod", "shop-blue"), "service/prod/shop-blue");
        assert_eq!(
            resource_id("arn:aws:ecs:us-east-1:1:cluster/prod", "shop-blue"),
            "service/prod/shop-blue"
        );
    }

    #[test]
    fn each_stance_sets_what_the_slot_needs() {
        let live = ScalableTarget {
            min: 4,
            max: 20,
            suspended: Suspended::default(),
        };
        assert_eq!(
            held(&live, 1),
            ScalableTarget {
                min: 0,
                max: 20,
                suspended: Suspended::ALL
            }
        );
        assert_eq!(held(&live, 30).max, 30, "never clamps pre-prod down");
        let serving = serving(&live);
        assert_eq!((serving.min, serving.max), (4, 20));
        assert!(serving.suspended.scale_in && !serving.suspended.scale_out);
        assert_eq!(resting(&live).min, 0);
        assert_eq!(resting(&live).suspended, Suspended::ALL);
    }

    #[test]
    fn per_target_group_metrics_are_repointed_to_the_receiving_slot() {
        let (blue, green) = names();
        let policy = requests_per_target("app/shop-alb/123/targetgroup/shop-blue/aaa");
        let copy = repoint(&policy, &blue, &green).unwrap();
        assert_eq!(
            copy,
            requests_per_target("app/shop-alb/123/targetgroup/shop-green/bbb")
        );
        assert_eq!(
            repoint(&copy, &blue, &green).unwrap(),
            copy,
            "a repeated copy keeps the label"
        );
        let elsewhere = requests_per_target("app/shop-alb/123/targetgroup/other/ccc");
        assert!(repoint(&elsewhere, &blue, &green).is_err());
    }

    #[test]
    fn customized_metrics_follow_the_slot_by_service_and_target_group() {
        let (blue, green) = names();
        let policy = ScalingPolicy {
            name: "cpu".into(),
            kind: PolicyKind::TargetTracking {
                target_value: 60.0,
                metric: TrackedMetric::Customized {
                    metric_name: "CPUUtilization".into(),
                    namespace: "AWS/ECS".into(),
                    dimensions: vec![
                        ("ClusterName".into(), "prod".into()),
                        ("ServiceName".into(), "shop-blue".into()),
                        ("TargetGroup".into(), "targetgroup/shop-blue/aaa".into()),
                    ],
                    statistic: Some("Average".into()),
                    unit: None,
                },
                scale_out_cooldown: None,
                scale_in_cooldown: None,
                disable_scale_in: None,
            },
        };
        let PolicyKind::TargetTracking {
            metric: TrackedMetric::Customized { dimensions, .. },
            ..
        } = repoint(&policy, &blue, &green).unwrap().kind
        else {
            panic!("still a customized target tracking policy");
        };
        assert_eq!(
            dimensions,
            vec![
                ("ClusterName".into(), "prod".into()),
                ("ServiceName".into(), "shop-green".into()),
                ("TargetGroup".into(), "targetgroup/shop-green/bbb".into()),
            ]
        );
    }

    #[test]
    fn the_copy_writes_only_what_differs_and_removes_what_the_live_slot_dropped() {
        let (blue, green) = names();
        let live = [requests_per_target(
            "app/shop-alb/123/targetgroup/shop-blue/aaa",
        )];
        let night = ScheduledAction {
            name: "night".into(),
            schedule: "cron(0 22 * * ? *)".into(),
            timezone: Some("Europe/Paris".into()),
            start_time: None,
            end_time: None,
            min: Some(1),
            max: Some(4),
        };
        let nights = [night];
        let first = plan_copy((&live, &nights), (&[], &[]), (&blue, &green));
        assert_eq!(first.put_policies.len(), 1);
        assert_eq!(first.put_actions, nights.to_vec());
        let stale = ScalingPolicy {
            name: "old".into(),
            kind: PolicyKind::Other("PredictiveScaling".into()),
        };
        let copied = [first.put_policies[0].clone(), stale];
        let again = plan_copy((&live, &nights), (&copied, &nights), (&blue, &green));
        assert!(again.put_policies.is_empty() && again.put_actions.is_empty());
        assert_eq!(again.delete_policies, vec!["old".to_owned()]);
    }

    #[test]
    fn what_cannot_be_carried_is_refused_unless_the_team_gave_the_slot_its_own() {
        let (blue, green) = names();
        let predictive = ScalingPolicy {
            name: "forecast".into(),
            kind: PolicyKind::Other("PredictiveScaling".into()),
        };
        let step = |alarms: Vec<String>| ScalingPolicy {
            name: "step".into(),
            kind: PolicyKind::Step {
                adjustment_type: Some("ChangeInCapacity".into()),
                steps: Vec::new(),
                min_adjustment_magnitude: None,
                cooldown: Some(60),
                metric_aggregation_type: None,
                alarms,
            },
        };
        let live = [predictive.clone(), step(vec!["shop-cpu-high".into()])];
        let plan = plan_copy((&live, &[]), (&[], &[]), (&blue, &green));
        assert!(plan.put_policies.is_empty(), "neither is written");
        assert_eq!(plan.uncarried.len(), 2, "{:?}", plan.uncarried);
        assert!(plan.uncarried[0].contains("PredictiveScaling"));
        assert!(plan.uncarried[1].contains("alarms"));
        // The team's own per-slot copies (the step one with its own alarm) are left alone.
        let theirs = [predictive, step(vec!["shop-green-cpu-high".into()])];
        let plan = plan_copy((&live, &[]), (&theirs, &[]), (&blue, &green));
        assert!(plan.uncarried.is_empty() && plan.is_empty(), "{plan:?}");
        // A step policy without an alarm on the slot is not the team's: still uncarried.
        let plan = plan_copy((&live, &[]), (&[step(Vec::new())], &[]), (&blue, &green));
        assert_eq!(plan.uncarried.len(), 2);
    }

    #[test]
    fn per_target_group_metrics_across_two_load_balancers_are_not_guessed() {
        let (blue, mut green) = names();
        green.shared_load_balancer = false;
        let policy = requests_per_target("app/shop-alb/123/targetgroup/shop-blue/aaa");
        let why = repoint(&policy, &blue, &green).unwrap_err();
        assert!(why.contains("load balancer of its own"), "{why}");
    }

    #[test]
    fn doctor_names_an_idle_slot_that_can_come_back_and_a_suspended_production() {
        let production = ScalableTarget {
            min: 2,
            max: 8,
            suspended: Suspended::default(),
        };
        let rested = resting(&production);
        assert!(problems(("blue", Some(&production)), ("green", Some(&rested)), &[]).is_empty());
        assert!(problems(("blue", None), ("green", None), &[]).is_empty());
        let codes = |found: Vec<(&'static str, String, String)>| {
            found.into_iter().map(|f| f.0).collect::<Vec<_>>()
        };
        assert_eq!(
            codes(problems(
                ("blue", Some(&production)),
                ("green", Some(&production)),
                &[]
            )),
            vec!["idle-slot-autoscales"],
            "IaC re-registered the idle slot"
        );
        assert_eq!(
            codes(problems(
                ("blue", Some(&serving(&production))),
                ("green", Some(&rested)),
                &["policy x: metric math".into()]
            )),
            vec!["live-slot-scaling-suspended", "autoscaling-not-carried"]
        );
    }
}
