//! `adopt` of a service ECS already deploys blue/green (`deploymentConfiguration.strategy =
//! BLUE_GREEN`): its one service, target group and alternate, production and test rules are
//! what bluegreen's ECS engine drives (`traffic.engine = "ecs"`), so nothing is created — no
//! second service, target group or listener. The walk reads ECS's own routes, tags what
//! bluegreen's roles may change (the service, the production listener and rule) and stores the
//! config; it says what is still needed before the first push (bluegreen's lifecycle hook at
//! the gated stages: the launch refuses a service ECS would deploy without it).

use aws_sdk_ecs::types::Service;

use bluegreen::config::{Engine, Routes, Traffic};
use bluegreen::engine::ecs_blue_green::not_gated_setup;
use bluegreen::error::StepResult;
use bluegreen::ports::compute::{BlueGreenRoute, DeploymentSetup};
use bluegreen::routes::listener_of_rule;

use super::{Adopted, Existing, Routing, Walk, app_container, config_notes, refuse};
use crate::direct::elb;

impl Walk<'_> {
    /// The walk for a service on ECS's own blue/green: what exists, the tags, the config.
    pub(super) async fn run_on_ecs(
        &mut self,
        service: Service,
        setup: DeploymentSetup,
    ) -> StepResult<Adopted> {
        self.refuse_slot_options()?;
        let route = ecs_route(&self.req.service, &setup)?;
        let (found, port) = self.ecs_existing(service, &route).await?;
        let production = found.production.listener_arn.clone().unwrap_or_default();
        let rule = found.rule.clone().unwrap_or_default();
        self.managed_tags(&found, &[production.clone(), rule.clone()])
            .await?;
        let test_url = match &self.req.test_url {
            Some(url) => url.clone(),
            None => self.test_url(&found, port).await?,
        };
        let routing = Routing {
            traffic: Traffic::Listener {
                production_listener_arn: production,
                test_listener_arn: None,
                test_rule: None,
                production_rule_arn: Some(rule),
                shift: None,
                routes: Routes::default(),
                engine: Engine::Ecs,
            },
            test_url: Some(test_url),
            slot_urls: [None, None],
            record_values: [None, None],
        };
        // Both slots are the one service: its target group and the alternate, which trade
        // roles at every ECS deployment.
        let alternate = route.alternate_target_group.clone().unwrap_or_default();
        let slots = [
            (self.req.service.clone(), route.target_group.clone()),
            (self.req.service.clone(), alternate),
        ];
        let config = self.config(&found, slots, routing);
        self.store(&config).await?;
        self.notes.extend(config_notes(&config));
        self.notes.push(format!(
            "ECS scales the old revision in after its bake: `bluegreen rollback {}` is refused \
             on this engine; `bluegreen rollback {} --to <deployment>` deploys an earlier one \
             through the full flow",
            self.name, self.name
        ));
        self.notes.push(self.gate_note(&setup));
        Ok(Adopted {
            changed: !self.changes.is_empty(),
            changes: std::mem::take(&mut self.changes),
            notes: std::mem::take(&mut self.notes),
            config,
        })
    }

    /// The slots engine's options have no meaning here: ECS's own rules are the test route,
    /// and ECS moves listener rules, not DNS records.
    fn refuse_slot_options(&self) -> StepResult<()> {
        let service = &self.req.service;
        if self.req.dns.is_some() {
            return Err(refuse(format!(
                "{service} is on ECS's own blue/green, which moves its listener rules: DNS mode \
                 (--dns) needs two services (set its strategy to ROLLING and adopt it with \
                 --dns, or adopt it without --dns for traffic.engine = \"ecs\")"
            )));
        }
        if self.req.test_rule
            || self.req.test_listener_arn.is_some()
            || self.req.test_port.is_some()
        {
            return Err(refuse(format!(
                "{service} is on ECS's own blue/green: pre-prod is reached through ECS's own \
                 test rule (its advancedConfiguration testListenerRule), so --test-rule, \
                 --test-listener and --test-port do not apply"
            )));
        }
        Ok(())
    }

    /// What exists: the service, its app container, the target group ECS calls production's,
    /// the production listener and rule (and ECS's test rule beside it); and the port the
    /// smoke checks go to, production's.
    async fn ecs_existing(
        &self,
        service: Service,
        route: &BlueGreenRoute,
    ) -> StepResult<(Existing, i32)> {
        let tg_arn = &route.target_group;
        let target_group = elb::target_group(self.ctx, tg_arn).await?.ok_or_else(|| {
            bluegreen::StepError::ResourceNotFound {
                kind: "target group",
                id: tg_arn.clone(),
            }
        })?;
        let rule = route.production_rule.clone().unwrap_or_default();
        let test_rule = route.test_rule.clone().unwrap_or_default();
        let production_arn = listener_of_rule(&rule);
        if listener_of_rule(&test_rule) != production_arn {
            return Err(refuse(format!(
                "{}'s test rule {test_rule} is on another listener than production's rule: \
                 bluegreen reaches the new revision only through a header rule on the \
                 production listener (a test listener's rules are not driven yet)",
                self.req.service
            )));
        }
        let mut listeners = Vec::new();
        for balancer in target_group.load_balancer_arns() {
            listeners.extend(elb::listeners_of(self.ctx, balancer).await?);
        }
        let find = |arn: &str| {
            listeners
                .iter()
                .find(|l| l.listener_arn.as_deref() == Some(arn))
                .cloned()
                .ok_or_else(|| bluegreen::StepError::ResourceNotFound {
                    kind: "listener",
                    id: arn.to_owned(),
                })
        };
        let production = find(&production_arn)?;
        let port = production.port.unwrap_or_default();
        let balanced = service
            .load_balancers()
            .first()
            .and_then(|b| b.container_name.clone());
        let container = app_container(self.ctx, self.req, &service, balanced.as_deref()).await?;
        let found = Existing {
            service,
            container,
            target_group,
            production,
            rule: Some(rule),
            others: Vec::new(),
        };
        Ok((found, port))
    }

    /// What is still needed before the first push: bluegreen's hook at the gated stages.
    fn gate_note(&self, setup: &DeploymentSetup) -> String {
        let service = &self.req.service;
        match self.ctx.settings.ecs_hook_arn.as_deref() {
            None => format!(
                "bluegreen's lifecycle hook function is not known here (BLUEGREEN_ECS_HOOK_ARN): \
                 before the first push, register the stack's EcsHookFunctionArn on {service} at \
                 POST_TEST_TRAFFIC_SHIFT and POST_PRODUCTION_TRAFFIC_SHIFT, timeout action \
                 ROLLBACK, and check it with `bluegreen doctor {}`",
                self.name
            ),
            Some(hook) => match not_gated_setup(service, setup, hook) {
                Some(problem) => format!(
                    "{problem}. Until then every launch is refused, and nothing deploys; adopt \
                     does not change the service's deployment configuration (its IaC owns it: \
                     docs/iac.md)"
                ),
                None => format!("{service} is gated by bluegreen's hook at both stages"),
            },
        }
    }
}

/// The one load balancer route ECS's blue/green moves, refused unless bluegreen's ECS engine
/// can drive it: an ALB production rule, an alternate target group and a test rule.
fn ecs_route(service: &str, setup: &DeploymentSetup) -> StepResult<BlueGreenRoute> {
    let [route] = setup.routes.as_slice() else {
        return Err(refuse(format!(
            "{service} registers {} load balancer routes with ECS's blue/green: adopt takes a \
             service with exactly one",
            setup.routes.len()
        )));
    };
    let is_rule = |arn: &Option<String>| {
        arn.as_deref()
            .is_some_and(|a| a.contains(":listener-rule/"))
    };
    if !is_rule(&route.production_rule) {
        return Err(refuse(format!(
            "{service}'s blue/green production route ({}) is not an ALB listener rule: \
             bluegreen's ECS engine reads and waits for ECS's production rule (an NLB's \
             listeners are not driven yet; README \"Which engine\")",
            route.production_rule.as_deref().unwrap_or("none")
        )));
    }
    if route.alternate_target_group.is_none() {
        return Err(refuse(format!(
            "{service} has no alternate target group: ECS's blue/green needs one"
        )));
    }
    if !is_rule(&route.test_rule) {
        return Err(refuse(format!(
            "{service} has no test listener rule (advancedConfiguration testListenerRule): \
             bluegreen's health check reaches the new revision through it before the \
             approval; add one (a rule matching a header on the production listener is enough)"
        )));
    }
    Ok(route.clone())
}
