//! The traffic modes: how production traffic reaches a service's slots, as one trait with one
//! implementation per mode of `traffic` — an ALB or NLB listener (or one rule of it), and
//! Route 53 weighted records. What differs between the modes is answered here, once: the
//! steps, the endings and the guard ask the mode ([`of`]) instead of matching on the config.
//!
//! Features that exist in listener mode only — the maintenance page, the per-deployment test
//! rule, the other routes that move with production — read the listener's fields in their own
//! modules (`maintenance`, `test_rule`, `routes`) and are refused for DNS by validation.

use async_trait::async_trait;

use crate::config::{ServiceConfig, Shift, Traffic};
use crate::context::Context;
use crate::error::{StepError, StepResult};
use crate::ports::dns::WeightedRecord;
use crate::ports::load_balancing::{Route, RouteForward, WeightedGroup};
use crate::record::{Change, Deployment, DnsTtl, Records};
use crate::routes::{RouteState, weights_of};
use crate::slot::Slot;

/// How clients learn where production is, for one service: what a switch writes and reads
/// back, what it must wait for, and what lingers after production moves.
#[async_trait]
pub trait TrafficMode: Send + Sync {
    /// Production's weights, read from AWS (never from a cached flag).
    async fn read(&self, ctx: &Context) -> StepResult<RouteState>;

    /// Sends `percent` of production to `slot` and the rest to the other slot, in one call.
    /// Returns the Route 53 change to wait for (DNS mode; see
    /// [`crate::routing::change_in_sync`]).
    async fn write(&self, ctx: &Context, slot: Slot, percent: i64) -> StepResult<Option<String>>;

    /// What follows production once it is at `percent` on `slot`: in rule mode the listener's
    /// default action, when it forwards only to this service's slots (requests the rule does
    /// not match would otherwise keep going to the old slot, which finish scales to 0).
    /// Checked also when production was already right: a retry after a crash between writes.
    async fn follow(&self, ctx: &Context, slot: Slot, percent: i64) -> StepResult<()>;

    /// Whether anything moves with production (the listener's default in rule mode, the other
    /// routes of `traffic.routes`): a move must then be looked at also when production already
    /// has its share (an interrupted move may have left them behind).
    fn has_followers(&self) -> bool;

    /// Every route to a slot on the slots' load balancers; none in DNS mode (each slot has
    /// its own load balancer and production is the records).
    async fn observed_routes(&self, ctx: &Context) -> StepResult<Vec<RouteForward>>;

    /// Once per deployment, before the switch can begin (launch): DNS mode lowers the records'
    /// TTL to the switch TTL and records the one it replaced, so the switch can wait for the
    /// old answers to expire.
    async fn prepare_switch(&self, ctx: &Context, deployment: &Deployment) -> StepResult<()>;

    /// When the deployment ends: puts back what [`TrafficMode::prepare_switch`] changed.
    async fn restore(&self, ctx: &Context, deployment: &Deployment) -> StepResult<()>;

    /// The gradual shift, if any: canary or linear on a listener; DNS moves at once.
    fn shift(&self) -> Option<&Shift>;

    /// How long clients may keep answers that name a slot after production moved: DNS
    /// resolvers' cached answers (`None` where the load balancer decides per request).
    fn cached_answers(&self) -> Option<CachedAnswers>;

    /// Whether production reaches the slots through their target groups on a load balancer
    /// bluegreen reads (listener mode), so the live slot's target health is what production
    /// gets and the slots' load balancer is shared.
    fn through_target_groups(&self) -> bool;
}

/// DNS mode's cached answers: the record TTL between deployments, and the lower one a
/// deployment sets ahead of its switch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CachedAnswers {
    /// `traffic.ttl_seconds`.
    pub ttl_seconds: u64,
    /// `traffic.switch_ttl_seconds`.
    pub switch_ttl_seconds: u64,
}

/// The traffic mode of `config`: the one place the mode is chosen.
pub fn of(config: &ServiceConfig) -> Box<dyn TrafficMode + '_> {
    match &config.traffic {
        Traffic::Listener {
            production_listener_arn,
            production_rule_arn,
            shift,
            ..
        } => Box::new(ListenerMode {
            config,
            listener: production_listener_arn,
            rule: production_rule_arn.as_deref(),
            shift: shift.as_ref(),
        }),
        Traffic::Dns {
            hosted_zone_id,
            record_name,
            ttl_seconds,
            switch_ttl_seconds,
            ..
        } => Box::new(DnsMode::new(
            config,
            hosted_zone_id,
            record_name,
            *ttl_seconds,
            *switch_ttl_seconds,
        )),
    }
}

/// The DNS mode of `config`; `ConfigInvalid` in listener mode (for callers that act only on
/// records, such as putting a TTL back).
pub fn dns(config: &ServiceConfig) -> StepResult<DnsMode<'_>> {
    match &config.traffic {
        Traffic::Dns {
            hosted_zone_id,
            record_name,
            ttl_seconds,
            switch_ttl_seconds,
            ..
        } => Ok(DnsMode::new(
            config,
            hosted_zone_id,
            record_name,
            *ttl_seconds,
            *switch_ttl_seconds,
        )),
        Traffic::Listener { .. } => Err(StepError::ConfigInvalid(vec![
            "traffic: not in DNS mode".into(),
        ])),
    }
}

/// An ALB or NLB listener's default action, or one rule of it, forwards to the live slot's
/// target group (weighted during a shift).
pub struct ListenerMode<'a> {
    config: &'a ServiceConfig,
    listener: &'a str,
    rule: Option<&'a str>,
    shift: Option<&'a Shift>,
}

impl ListenerMode<'_> {
    fn route(&self) -> Route {
        match self.rule {
            Some(rule) => Route::Rule(rule.to_owned()),
            None => Route::Listener(self.listener.to_owned()),
        }
    }
}

#[async_trait]
impl TrafficMode for ListenerMode<'_> {
    async fn read(&self, ctx: &Context) -> StepResult<RouteState> {
        weights_of(self.config, forward(ctx, &self.route()).await?)
    }

    async fn write(&self, ctx: &Context, slot: Slot, percent: i64) -> StepResult<Option<String>> {
        reweigh(ctx, self.config, &self.route(), slot, percent).await?;
        Ok(None)
    }

    async fn follow(&self, ctx: &Context, slot: Slot, percent: i64) -> StepResult<()> {
        if self.rule.is_none() {
            return Ok(());
        }
        // A default that does something else (a fixed response, another service's target
        // group) is left alone.
        let route = Route::Listener(self.listener.to_owned());
        let defaults = ctx.ports.load_balancing.forward(&route).await?;
        if defaults
            .and_then(|groups| weights_of(self.config, groups).ok())
            .is_some_and(|w| w.percent(slot) != percent)
        {
            reweigh(ctx, self.config, &route, slot, percent).await?;
        }
        Ok(())
    }

    fn has_followers(&self) -> bool {
        self.rule.is_some() || crate::routes::move_with_production(self.config)
    }

    async fn observed_routes(&self, ctx: &Context) -> StepResult<Vec<RouteForward>> {
        ctx.ports
            .load_balancing
            .routes_to(&slot_target_groups(self.config))
            .await
    }

    async fn prepare_switch(&self, _: &Context, _: &Deployment) -> StepResult<()> {
        Ok(())
    }

    async fn restore(&self, _: &Context, _: &Deployment) -> StepResult<()> {
        Ok(())
    }

    fn shift(&self) -> Option<&Shift> {
        self.shift
    }

    fn cached_answers(&self) -> Option<CachedAnswers> {
        None
    }

    fn through_target_groups(&self) -> bool {
        true
    }
}

/// Route 53 weighted CNAME records, one per slot, under one name.
pub struct DnsMode<'a> {
    config: &'a ServiceConfig,
    zone: &'a str,
    name: &'a str,
    answers: CachedAnswers,
}

impl<'a> DnsMode<'a> {
    fn new(
        config: &'a ServiceConfig,
        zone: &'a str,
        name: &'a str,
        ttl_seconds: u64,
        switch_ttl_seconds: u64,
    ) -> Self {
        DnsMode {
            config,
            zone,
            name,
            answers: CachedAnswers {
                ttl_seconds,
                switch_ttl_seconds,
            },
        }
    }

    /// Sets the TTL of both weighted records, keeping their weights; `None` when it is
    /// already that.
    pub async fn set_ttl(&self, ctx: &Context, ttl: i64) -> StepResult<Option<String>> {
        let state = self.read(ctx).await?;
        if state.ttl == Some(ttl) {
            return Ok(None);
        }
        let live = state.live()?;
        self.upsert(ctx, live, state.percent(live), ttl)
            .await
            .map(Some)
    }

    async fn upsert(
        &self,
        ctx: &Context,
        slot: Slot,
        percent: i64,
        ttl: i64,
    ) -> StepResult<String> {
        let percent = percent.clamp(0, 100);
        let record = |s: Slot, weight: i64| {
            let slot_config = self.config.slots.get(s);
            WeightedRecord {
                name: self.name.to_owned(),
                set_identifier: Some(slot_config.set_identifier.clone().unwrap_or_default()),
                weight: Some(weight),
                ttl: Some(ttl),
                value: slot_config.record_value.clone().unwrap_or_default(),
            }
        };
        ctx.ports
            .dns
            .upsert(
                self.zone,
                &[record(slot, percent), record(slot.other(), 100 - percent)],
                &format!("bluegreen: {percent}% to {slot}"),
            )
            .await
    }
}

#[async_trait]
impl TrafficMode for DnsMode<'_> {
    async fn read(&self, ctx: &Context) -> StepResult<RouteState> {
        let mut state = RouteState {
            blue: 0,
            green: 0,
            ttl: None,
        };
        let mut found = [false, false];
        let records = ctx.ports.dns.cname_records(self.zone, self.name).await?;
        for record in &records {
            for (i, slot) in Slot::ALL.into_iter().enumerate() {
                let identifier = self.config.slots.get(slot).set_identifier.as_deref();
                if record.set_identifier.as_deref() == identifier {
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
                id: format!("{} (set identifiers of both slots)", self.name),
            });
        }
        Ok(state)
    }

    async fn write(&self, ctx: &Context, slot: Slot, percent: i64) -> StepResult<Option<String>> {
        // The TTL stays what it is (the switch TTL during a deployment).
        let ttl = self.read(ctx).await?.ttl.unwrap_or(60);
        self.upsert(ctx, slot, percent, ttl).await.map(Some)
    }

    async fn follow(&self, _: &Context, _: Slot, _: i64) -> StepResult<()> {
        Ok(())
    }

    fn has_followers(&self) -> bool {
        false
    }

    async fn observed_routes(&self, _: &Context) -> StepResult<Vec<RouteForward>> {
        Ok(Vec::new())
    }

    async fn prepare_switch(&self, ctx: &Context, deployment: &Deployment) -> StepResult<()> {
        if deployment.dns_ttl.is_some() {
            return Ok(());
        }
        let switch_ttl = self.answers.switch_ttl_seconds as i64;
        let previous = self.read(ctx).await?.ttl.unwrap_or(switch_ttl);
        if previous > switch_ttl {
            self.set_ttl(ctx, switch_ttl).await?;
        }
        Records::new(ctx)
            .update(
                &deployment.deployment_id,
                Change::new().dns_ttl(&DnsTtl {
                    previous,
                    lowered_at: ctx.now(),
                }),
            )
            .await
    }

    async fn restore(&self, ctx: &Context, deployment: &Deployment) -> StepResult<()> {
        if let Some(ttl) = &deployment.dns_ttl {
            self.set_ttl(ctx, ttl.previous).await?;
        }
        Ok(())
    }

    fn shift(&self) -> Option<&Shift> {
        None
    }

    fn cached_answers(&self) -> Option<CachedAnswers> {
        Some(self.answers)
    }

    fn through_target_groups(&self) -> bool {
        false
    }
}

/// Both slots' target groups.
pub(crate) fn slot_target_groups(config: &ServiceConfig) -> Vec<String> {
    Slot::ALL
        .iter()
        .map(|s| config.slots.get(*s).target_group_arn.clone())
        .collect()
}

/// The target groups of the route's forward action; no forward action is unexpected routing.
pub(crate) async fn forward(ctx: &Context, route: &Route) -> StepResult<Vec<WeightedGroup>> {
    ctx.ports
        .load_balancing
        .forward(route)
        .await?
        .ok_or_else(|| StepError::UnexpectedRouting("no forward action on the listener".into()))
}

/// Sends `percent` of the route's forward action to `slot` and the rest to the other slot,
/// in one call (its other actions and its stickiness kept).
pub(crate) async fn reweigh(
    ctx: &Context,
    config: &ServiceConfig,
    route: &Route,
    slot: Slot,
    percent: i64,
) -> StepResult<()> {
    let percent = percent.clamp(0, 100) as i32;
    let mut groups = vec![(config.slots.get(slot).target_group_arn.clone(), percent)];
    if percent < 100 {
        groups.push((
            config.slots.get(slot.other()).target_group_arn.clone(),
            100 - percent,
        ));
    }
    ctx.ports.load_balancing.set_forward(route, &groups).await
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = include_str!("../../../docs/example-service.toml");

    #[test]
    fn each_mode_answers_for_its_config() {
        // The example: a listener with a canary shift.
        let listener = ServiceConfig::from_toml(EXAMPLE).expect("the example");
        let mode = of(&listener);
        assert!(matches!(mode.shift(), Some(Shift::Canary { .. })));
        assert_eq!(mode.cached_answers(), None);
        assert!(mode.through_target_groups());
        assert!(dns(&listener).is_err());

        let mut records = listener.clone();
        records.traffic = Traffic::Dns {
            hosted_zone_id: "Z1".into(),
            record_name: "shop.example.com.".into(),
            ttl_seconds: 300,
            switch_ttl_seconds: 30,
        };
        let mode = of(&records);
        assert_eq!(mode.shift(), None);
        assert_eq!(
            mode.cached_answers(),
            Some(CachedAnswers {
                ttl_seconds: 300,
                switch_ttl_seconds: 30
            })
        );
        assert!(!mode.through_target_groups());
        assert!(dns(&records).is_ok());
    }
}
