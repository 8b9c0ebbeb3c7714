//! Production and test routing: reading which slot is live from AWS (never from a cached
//! flag) and moving traffic between slots, in listener mode (ALB) or DNS mode (Route 53).

use aws_sdk_elasticloadbalancingv2::types::{
    Action, ActionTypeEnum, ForwardActionConfig, TargetGroupTuple,
};
use aws_sdk_route53::types::{Change, ChangeAction, ChangeBatch, RrType};

use crate::config::{ServiceConfig, Traffic};
use crate::context::Context;
use crate::error::{StepError, StepResult};
use crate::slot::Slot;
use crate::{elb, route53};

/// How production traffic is split between the slots right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteState {
    /// Weight of the blue slot.
    pub blue: i64,
    /// Weight of the green slot.
    pub green: i64,
    /// DNS mode: the records' TTL.
    pub ttl: Option<i64>,
}

impl RouteState {
    /// The weight of one slot.
    pub fn weight(&self, slot: Slot) -> i64 {
        match slot {
            Slot::Blue => self.blue,
            Slot::Green => self.green,
        }
    }

    /// The slot that takes all production traffic; an error when traffic is split or absent.
    pub fn live(&self) -> StepResult<Slot> {
        match (self.blue > 0, self.green > 0) {
            (true, false) => Ok(Slot::Blue),
            (false, true) => Ok(Slot::Green),
            _ => Err(StepError::UnexpectedRouting(format!(
                "traffic is split blue={} green={}; finish or undo the previous switch first",
                self.blue, self.green
            ))),
        }
    }

    /// The share of traffic (0–100) that goes to `slot`.
    pub fn percent(&self, slot: Slot) -> i64 {
        let total = self.blue + self.green;
        if total == 0 {
            0
        } else {
            self.weight(slot) * 100 / total
        }
    }
}

/// Reads production routing from the listener (or rule) or the Route 53 records.
pub async fn read_production(ctx: &Context, config: &ServiceConfig) -> StepResult<RouteState> {
    match &config.traffic {
        Traffic::Listener {
            production_listener_arn,
            production_rule_arn,
            ..
        } => {
            let actions = match production_rule_arn {
                Some(rule) => elb::rule_actions(ctx, rule).await?,
                None => elb::listener_actions(ctx, production_listener_arn).await?,
            };
            weights_of(config, &actions)
        }
        Traffic::Dns { .. } => read_dns(ctx, config).await,
    }
}

/// Which slot the test listener sends to (listener mode); `None` in DNS mode.
pub async fn read_test(ctx: &Context, config: &ServiceConfig) -> StepResult<Option<Slot>> {
    match &config.traffic {
        Traffic::Listener {
            test_listener_arn, ..
        } => {
            let state = weights_of(
                config,
                &elb::listener_actions(ctx, test_listener_arn).await?,
            )?;
            state.live().map(Some)
        }
        Traffic::Dns { .. } => Ok(None),
    }
}

/// Sends `percent` of production traffic to `slot` and the rest to the other slot, in one API
/// call. Returns the Route 53 change id in DNS mode (wait for it with [`change_in_sync`]).
pub async fn set_production(
    ctx: &Context,
    config: &ServiceConfig,
    slot: Slot,
    percent: i64,
) -> StepResult<Option<String>> {
    match &config.traffic {
        Traffic::Listener {
            production_listener_arn,
            production_rule_arn,
            ..
        } => {
            match production_rule_arn {
                Some(rule) => {
                    let actions = elb::rule_actions(ctx, rule).await?;
                    elb::set_rule_actions(ctx, rule, reweigh(config, actions, slot, percent)?)
                        .await?;
                }
                None => {
                    reweigh_listener(ctx, config, production_listener_arn, slot, percent).await?;
                }
            }
            Ok(None)
        }
        Traffic::Dns { .. } => {
            let ttl = read_dns(ctx, config).await?.ttl.unwrap_or(60);
            upsert_dns(ctx, config, slot, percent, ttl).await.map(Some)
        }
    }
}

/// Sends `percent` of production traffic to `slot` unless it already gets exactly that, then
/// reads production back and compares: bluegreen's one "write traffic, read it back,
/// compare". `Ok(Err(mismatch))` describes a read-back that differs (the caller names the
/// error: a switch, a rollback); `Ok(Ok(change))` carries the Route 53 change id when DNS was
/// written (wait for it with [`change_in_sync`]).
pub async fn set_production_verified(
    ctx: &Context,
    config: &ServiceConfig,
    slot: Slot,
    percent: i64,
) -> StepResult<Result<Option<String>, String>> {
    let change = if read_production(ctx, config).await?.percent(slot) != percent {
        set_production(ctx, config, slot, percent).await?
    } else {
        None
    };
    // Rule mode: the listener's default action follows the rule when it forwards only to this
    // service's slots; otherwise requests the rule does not match would keep going to the old
    // slot, which finish scales to 0. A default that does something else (a fixed response,
    // another service's target group) is left alone. Checked also when the rule was already
    // right: a retry after a crash between the two writes.
    if let Traffic::Listener {
        production_listener_arn: listener,
        production_rule_arn: Some(_),
        ..
    } = &config.traffic
    {
        let defaults = elb::listener_actions(ctx, listener).await?;
        if weights_of(config, &defaults).is_ok_and(|w| w.percent(slot) != percent) {
            let reweighed = reweigh(config, defaults, slot, percent)?;
            elb::set_listener_actions(ctx, listener, reweighed).await?;
        }
    }
    let after = read_production(ctx, config).await?;
    if after.percent(slot) != percent {
        return Ok(Err(format!(
            "wrote {percent}% to {slot} but read back {}%",
            after.percent(slot)
        )));
    }
    Ok(Ok(change))
}

/// Points the test listener at `slot` (listener mode; nothing to do in DNS mode, where each
/// slot has its own test endpoint).
pub async fn point_test_listener(
    ctx: &Context,
    config: &ServiceConfig,
    slot: Slot,
) -> StepResult<()> {
    if let Traffic::Listener {
        test_listener_arn, ..
    } = &config.traffic
        && read_test(ctx, config).await? != Some(slot)
    {
        reweigh_listener(ctx, config, test_listener_arn, slot, 100).await?;
    }
    Ok(())
}

/// DNS mode: sets the TTL of both weighted records, keeping their weights.
pub async fn set_dns_ttl(
    ctx: &Context,
    config: &ServiceConfig,
    ttl: i64,
) -> StepResult<Option<String>> {
    let state = read_dns(ctx, config).await?;
    if state.ttl == Some(ttl) {
        return Ok(None);
    }
    let live = state.live()?;
    upsert_dns(ctx, config, live, state.percent(live), ttl)
        .await
        .map(Some)
}

/// Whether a Route 53 change has propagated to all authoritative servers.
pub async fn change_in_sync(ctx: &Context, change_id: &str) -> StepResult<bool> {
    route53::change_in_sync(ctx, change_id).await
}

/// Sends `percent` of a listener's forward action to `slot`, keeping its other actions.
async fn reweigh_listener(
    ctx: &Context,
    config: &ServiceConfig,
    listener_arn: &str,
    slot: Slot,
    percent: i64,
) -> StepResult<()> {
    let actions = elb::listener_actions(ctx, listener_arn).await?;
    elb::set_listener_actions(ctx, listener_arn, reweigh(config, actions, slot, percent)?).await
}

/// The forward action of a listener or rule; other actions (authentication, …) are kept as
/// they are by [`reweigh`].
fn forward_action(actions: &[Action]) -> StepResult<&Action> {
    actions
        .iter()
        .find(|a| a.r#type == Some(ActionTypeEnum::Forward))
        .ok_or_else(|| StepError::UnexpectedRouting("no forward action on the listener".into()))
}

/// Maps a forward action's target groups to slot weights; a target group of neither slot
/// taking traffic is an error.
fn weights_of(config: &ServiceConfig, actions: &[Action]) -> StepResult<RouteState> {
    let forward = forward_action(actions)?;
    let tuples: Vec<(String, i64)> = match forward
        .forward_config
        .as_ref()
        .and_then(|f| f.target_groups.as_ref())
    {
        Some(groups) if !groups.is_empty() => groups
            .iter()
            .map(|g| {
                (
                    g.target_group_arn.clone().unwrap_or_default(),
                    // ALB treats a missing weight in a one-group forward as all traffic.
                    g.weight
                        .map(i64::from)
                        .unwrap_or(if groups.len() == 1 { 1 } else { 0 }),
                )
            })
            .collect(),
        _ => vec![(forward.target_group_arn.clone().unwrap_or_default(), 1)],
    };
    let mut state = RouteState {
        blue: 0,
        green: 0,
        ttl: None,
    };
    for (arn, weight) in tuples {
        if arn == config.slots.blue.target_group_arn {
            state.blue += weight;
        } else if arn == config.slots.green.target_group_arn {
            state.green += weight;
        } else if weight > 0 {
            return Err(StepError::UnexpectedRouting(format!(
                "listener forwards to target group {arn}, which belongs to neither slot"
            )));
        }
    }
    Ok(state)
}

/// Rewrites the forward action to send `percent` to `slot` and the rest to the other slot.
fn reweigh(
    config: &ServiceConfig,
    actions: Vec<Action>,
    slot: Slot,
    percent: i64,
) -> StepResult<Vec<Action>> {
    forward_action(&actions)?;
    let percent = percent.clamp(0, 100) as i32;
    let tuple = |s: Slot, weight: i32| {
        TargetGroupTuple::builder()
            .target_group_arn(&config.slots.get(s).target_group_arn)
            .weight(weight)
            .build()
    };
    Ok(actions
        .into_iter()
        .map(|action| {
            if action.r#type != Some(ActionTypeEnum::Forward) {
                return action;
            }
            let stickiness = action
                .forward_config
                .as_ref()
                .and_then(|f| f.target_group_stickiness_config.clone());
            let mut groups = vec![tuple(slot, percent)];
            if percent < 100 {
                groups.push(tuple(slot.other(), 100 - percent));
            }
            Action::builder()
                .r#type(ActionTypeEnum::Forward)
                .set_order(action.order)
                .forward_config(
                    ForwardActionConfig::builder()
                        .set_target_groups(Some(groups))
                        .set_target_group_stickiness_config(stickiness)
                        .build(),
                )
                .build()
        })
        .collect())
}

fn dns_names(config: &ServiceConfig) -> StepResult<(&str, &str)> {
    match &config.traffic {
        Traffic::Dns {
            hosted_zone_id,
            record_name,
            ..
        } => Ok((hosted_zone_id, record_name)),
        Traffic::Listener { .. } => Err(StepError::ConfigInvalid(vec![
            "traffic: not in DNS mode".into(),
        ])),
    }
}

fn same_name(a: &str, b: &str) -> bool {
    a.trim_end_matches('.')
        .eq_ignore_ascii_case(b.trim_end_matches('.'))
}

async fn read_dns(ctx: &Context, config: &ServiceConfig) -> StepResult<RouteState> {
    let (zone, name) = dns_names(config)?;
    let mut state = RouteState {
        blue: 0,
        green: 0,
        ttl: None,
    };
    let mut found = [false, false];
    let records =
        route53::record_sets(ctx, zone, name, RrType::Cname, |n| same_name(n, name)).await?;
    for record in &records {
        for (i, slot) in Slot::ALL.into_iter().enumerate() {
            if record.set_identifier.as_deref() == config.slots.get(slot).set_identifier.as_deref()
            {
                found[i] = true;
                match slot {
                    Slot::Blue => state.blue = record.weight.unwrap_or(0),
                    Slot::Green => state.green = record.weight.unwrap_or(0),
                }
                state.ttl = record.ttl.or(state.ttl);
            }
        }
    }
    if found != [true, true] {
        return Err(StepError::ResourceNotFound {
            kind: "weighted record",
            id: format!("{name} (set identifiers of both slots)"),
        });
    }
    Ok(state)
}

async fn upsert_dns(
    ctx: &Context,
    config: &ServiceConfig,
    slot: Slot,
    percent: i64,
    ttl: i64,
) -> StepResult<String> {
    let (zone, name) = dns_names(config)?;
    let percent = percent.clamp(0, 100);
    let record = |s: Slot, weight: i64| -> StepResult<Change> {
        let slot_config = config.slots.get(s);
        let value = slot_config.record_value.clone().unwrap_or_default();
        let set = slot_config.set_identifier.clone().unwrap_or_default();
        route53::change(
            ChangeAction::Upsert,
            route53::weighted(name, &set, weight, &value, ttl)?,
        )
    };
    let batch = ChangeBatch::builder()
        .comment(format!("bluegreen: {percent}% to {slot}"))
        .changes(record(slot, percent)?)
        .changes(record(slot.other(), 100 - percent)?)
        .build()
        .map_err(|e| StepError::ConfigInvalid(vec![e.to_string()]))?;
    route53::change_record_sets(ctx, zone, batch).await
}
