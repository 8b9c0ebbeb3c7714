//! Checking a service config: every problem that can be found without AWS, each named by its
//! field, and the longest wait a deployment of it can go through (which must fit the
//! execution's timeout). The types are `crate::config`; this module sits above them and above
//! what the checks consult (the database plan, the address rules of `crate::endpoint`), so the
//! config's types import neither.

use crate::config::*;
use crate::db_plan;
use crate::error::{StepError, StepResult};
use crate::slot::Slot;
use crate::text;

/// The longest gate a service on ECS's engine may hold one lifecycle stage for: ECS fails a
/// stage after 24 hours; an hour is kept for the rollout and the calls around the gate.
pub const ECS_STAGE_BUDGET_SECONDS: u64 = 23 * 3600;

impl ServiceConfig {
    /// Checks everything that can be checked without AWS and lists every problem found.
    pub fn validate(&self) -> StepResult<()> {
        let problems = self.problems();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(StepError::ConfigInvalid(problems))
        }
    }

    /// The list of problems; empty when the config is valid.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Problems::default();
        if !valid_name(&self.name) {
            p.add(
                "name",
                "must be 1-40 characters of a-z, 0-9 and '-', starting with a letter",
            );
        }
        self.text_problems(&mut p);
        self.source_problems(&mut p);
        if self.cluster.trim().is_empty() {
            p.add("cluster", "must not be empty");
        } else if self.cluster.starts_with("arn:") {
            p.arn("cluster", &self.cluster, "ecs");
            // A service's ARN (`…:service/<cluster>/<name>`) is an ECS ARN too, and the most
            // common paste into this field.
            let resource = self.cluster.splitn(6, ':').nth(5).unwrap_or_default();
            if !resource.starts_with("cluster/") {
                p.add(
                    "cluster",
                    &format!(
                        "{:?} is not a cluster's ARN (arn:aws:ecs:<region>:<account>:cluster/<name>) \
                         or name",
                        self.cluster
                    ),
                );
            }
        }
        self.container_problems(&mut p);
        self.task_definition_problems(&mut p);
        self.slot_problems(&mut p);
        self.traffic_problems(&mut p);
        self.ecs_engine_problems(&mut p);
        self.nlb_problems(&mut p);
        self.preprod_problems(&mut p);
        self.preprod_environment_problems(&mut p);
        self.database_problems(&mut p);
        self.migration_problems(&mut p);
        self.health_problems(&mut p);
        operator_problems(&self.operators, &mut p);
        if self.approval.policy == ApprovalPolicy::Required && self.approval.approvers.is_empty() {
            p.add(
                "approval.approvers",
                "policy 'required' needs at least one approver",
            );
        }
        p.timeout("approval.timeout_seconds", self.approval.timeout_seconds);
        if self.bake.seconds > MAX_TIMEOUT_SECONDS {
            p.add("bake.seconds", "must be at most 86400");
        }
        if self.finish.keep_warm_seconds > 7 * MAX_TIMEOUT_SECONDS {
            p.add("finish.keep_warm_seconds", "must be at most 7 days");
        }
        self.execution_budget_problems(&mut p);
        p.0
    }

    /// Where images come from: the repository, the registry, the tag patterns.
    fn source_problems(&self, p: &mut Problems) {
        if self.source.repository.trim().is_empty() {
            p.add("source.repository", "must not be empty");
        }
        if let Some(registry) = &self.source.registry {
            if registry.account.len() != 12 || !registry.account.chars().all(|c| c.is_ascii_digit())
            {
                p.add(
                    "source.registry.account",
                    &format!("{:?} is not a 12-digit AWS account id", registry.account),
                );
            }
            if !crate::event::valid_region(&registry.region) {
                p.add(
                    "source.registry.region",
                    &format!(
                        "{:?} is not an AWS region name (like us-east-1)",
                        registry.region
                    ),
                );
            }
        }
        if self.source.tags.is_empty() {
            p.add("source.tags", "must list at least one tag pattern");
        }
        for (i, tag) in self.source.tags.iter().enumerate() {
            // An empty pattern matches no tag (ECR tags are 1-128 characters): the service
            // would never deploy through it.
            if tag.trim().is_empty() {
                p.add(
                    &format!("source.tags[{i}]"),
                    "is empty: it matches no tag (use \"*\" for every tag)",
                );
            } else if let Err(e) = globset::Glob::new(tag) {
                p.add(
                    &format!("source.tags[{i}]"),
                    &format!("is not a valid glob: {e}"),
                );
            }
        }
    }

    /// Each slot's service, target group and test URL; the slots apart.
    fn slot_problems(&self, p: &mut Problems) {
        for slot in Slot::ALL {
            let s = self.slots.get(slot);
            let at = format!("slots.{slot}");
            if s.service.trim().is_empty() {
                p.add(&format!("{at}.service"), "must not be empty");
            }
            p.elb_arn(
                &format!("{at}.target_group_arn"),
                &s.target_group_arn,
                ElbResource::TargetGroup,
            );
            if let Some(url) = &s.test_url {
                p.url(&format!("{at}.test_url"), url);
            }
        }
        // ECS's engine runs both revisions in one service (`ecs_engine_problems`).
        if self.slots.blue.service == self.slots.green.service
            && self.traffic.engine() == Engine::Slots
        {
            p.add("slots", "blue and green must be different ECS services");
        }
        if self.slots.blue.target_group_arn == self.slots.green.target_group_arn {
            p.add("slots", "blue and green must use different target groups");
        }
    }

    /// Pre-prod's count, launch timeout and time to live.
    fn preprod_problems(&self, p: &mut Problems) {
        if let Some(count) = self.preprod.desired_count
            && !(1..=1000).contains(&count)
        {
            p.add("preprod.desired_count", "must be between 1 and 1000");
        }
        p.timeout(
            "preprod.launch_timeout_seconds",
            self.preprod.launch_timeout_seconds,
        );
        if self.preprod.ttl_hours == 0 || self.preprod.ttl_hours > 24 * 30 {
            p.add("preprod.ttl_hours", "must be between 1 and 720");
        }
    }

    /// The migration's command, timeout and rollback command.
    fn migration_problems(&self, p: &mut Problems) {
        if let Some(m) = &self.migration {
            if m.command.is_empty() || m.command.iter().all(|c| c.trim().is_empty()) {
                p.add("migration.command", "must not be empty");
            }
            p.timeout("migration.timeout_seconds", m.timeout_seconds);
            if let Some(rb) = &m.rollback_command
                && rb.is_empty()
            {
                p.add("migration.rollback_command", "must not be empty when given");
            }
        }
    }

    /// The longest deployment fits the execution's limit.
    fn execution_budget_problems(&self, p: &mut Problems) {
        let waits = self.execution_waits();
        let total: u64 = waits.iter().map(|w| w.seconds).sum::<u64>() + EXECUTION_OVERHEAD_SECONDS;
        if total > EXECUTION_TIMEOUT_SECONDS {
            let parts: Vec<String> = waits
                .iter()
                .map(|w| format!("{} {}", w.field, w.seconds))
                .collect();
            p.add(
                "timeouts",
                &format!(
                    "the longest deployment waits {total} s ({} + {EXECUTION_OVERHEAD_SECONDS} \
                     for the steps themselves), more than the execution's limit of \
                     {EXECUTION_TIMEOUT_SECONDS} s: shorten one of them",
                    parts.join(" + ")
                ),
            );
        }
    }

    /// Strings no person means to write (control characters, or longer than
    /// [`text::CONFIG_STRING_MAX_CHARS`]) in any field, each named; and approvers that name
    /// nobody (blank, or padded with spaces that no identity carries).
    /// `task_definition.family`: a family name, used only with `source = "family"`.
    fn task_definition_problems(&self, p: &mut Problems) {
        if let Some(family) = &self.task_definition.family {
            // A family name, not `family:revision` or an ARN: the walk appends revisions.
            let valid = !family.is_empty()
                && family.len() <= 255
                && family
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            if !valid {
                p.add(
                    "task_definition.family",
                    "must be a task definition family name (letters, digits, '-', '_'), \
                 without a revision",
                );
            } else if self.task_definition.source == RevisionSource::Live {
                p.add(
                    "task_definition.family",
                    "is used only with source = \"family\"",
                );
            }
        }
    }

    fn text_problems(&self, p: &mut Problems) {
        match serde_json::to_value(self) {
            Ok(doc) => {
                for refused in text::refused_strings(&doc, text::CONFIG_STRING_MAX_CHARS) {
                    p.0.push(refused.to_string());
                }
            }
            Err(e) => p.add("config", &format!("cannot be read back as JSON: {e}")),
        }
        for (i, approver) in self.approval.approvers.iter().enumerate() {
            if approver.trim().is_empty() {
                p.add(
                    &format!("approval.approvers[{i}]"),
                    "must name an approver, not be blank",
                );
            } else if approver.trim() != approver {
                p.add(
                    &format!("approval.approvers[{i}]"),
                    &format!("{approver:?} has spaces around it; no identity matches that"),
                );
            }
        }
    }

    /// Every wait a deployment of this config can go through in one execution, longest case,
    /// each with the step that waits it and the config field that sets it: clone, migrations
    /// before launch, launch, health, approval, what promote repeats after approval, the
    /// switch (scaling the new slot, the traffic mode's waits), bake, and the ending's rollback
    /// migration. Keep-warm is not waited for in the execution (teardown ends it).
    ///
    /// A step is named by its registry name (a test holds each to a registered step, and
    /// every polling step and the approval to at least one wait of the fullest config).
    pub fn execution_waits(&self) -> Vec<Wait> {
        let plan = db_plan::plan(self);
        let mut waits = Vec::new();
        if plan.clone.is_some() {
            waits.push(Wait::new(
                "sync_db",
                "database.clone_timeout_seconds",
                self.database.clone_timeout_seconds,
            ));
        }
        let migration = self
            .migration
            .as_ref()
            .map(|m| m.timeout_seconds)
            .unwrap_or(0);
        for _ in &plan.before_launch {
            waits.push(Wait::new("migrate", "migration.timeout_seconds", migration));
        }
        let launch = self.preprod.launch_timeout_seconds;
        waits.push(Wait::new(
            "launch_preprod",
            "preprod.launch_timeout_seconds",
            launch,
        ));
        let health = self.health.timeout_seconds;
        waits.push(Wait::new("health_check", "health.timeout_seconds", health));
        if self.approval.policy == ApprovalPolicy::Required {
            waits.push(Wait::new(
                "approval",
                "approval.timeout_seconds",
                self.approval.timeout_seconds,
            ));
        }
        if let Some(after) = &plan.after_approval {
            if after.migrate {
                waits.push(Wait::new("promote", "migration.timeout_seconds", migration));
            }
            if after.repoint {
                waits.push(Wait::new(
                    "promote",
                    "preprod.launch_timeout_seconds",
                    launch,
                ));
            }
            waits.push(Wait::new("promote", "health.timeout_seconds", health));
        }
        // The switch first scales the new slot to production's current count (capacity).
        waits.push(Wait::new(
            "switch",
            "preprod.launch_timeout_seconds",
            launch,
        ));
        waits.extend(self.traffic_waits());
        waits.push(Wait::new("bake", "bake.seconds", self.bake.seconds));
        if self
            .migration
            .as_ref()
            .is_some_and(|m| m.rollback_command.is_some())
        {
            waits.push(Wait::new(
                "rollback",
                "migration.timeout_seconds",
                migration,
            ));
        }
        waits
    }

    /// The waits the traffic mode adds: the shift's steps (listener mode); the lowered TTL
    /// before the switch and, on a rollback, the switch TTL after Route 53 is INSYNC (DNS mode).
    fn traffic_waits(&self) -> Vec<Wait> {
        match &self.traffic {
            Traffic::Listener {
                shift: Some(shift), ..
            } => {
                let (step, interval) = match shift {
                    Shift::Canary {
                        interval_seconds, ..
                    } => (100, *interval_seconds),
                    Shift::Linear {
                        step_percent,
                        interval_seconds,
                    } => (u64::from((*step_percent).max(1)), *interval_seconds),
                };
                vec![Wait::new(
                    "switch",
                    "traffic.shift.interval_seconds",
                    interval * 100u64.div_ceil(step),
                )]
            }
            Traffic::Listener { shift: None, .. } => Vec::new(),
            Traffic::Dns {
                ttl_seconds,
                switch_ttl_seconds,
                ..
            } => vec![
                Wait::new("switch", "traffic.ttl_seconds", *ttl_seconds),
                // A rollback keeps the failed slot until cached answers for it expire, counted
                // from Route 53's INSYNC (waited for up to 10 minutes).
                Wait::new(
                    "rollback",
                    "traffic.switch_ttl_seconds",
                    *switch_ttl_seconds + DNS_IN_SYNC_BOUND_SECONDS,
                ),
            ],
        }
    }

    /// `preprod.environment`: variable names, and none that names a database (pre-prod's
    /// database is bluegreen's to set).
    fn container_problems(&self, p: &mut Problems) {
        if self.container.trim().is_empty() {
            p.add("container", "must not be empty");
        }
        if !self.containers.is_empty() && !self.containers.contains(&self.container) {
            p.add(
                "containers",
                &format!(
                    "must include `container` ({:?}): migrations run in it and its database \
                     setting is re-pointed, so it must run the pushed image",
                    self.container
                ),
            );
        }
        let mut seen = std::collections::BTreeSet::new();
        for name in &self.containers {
            if name.trim().is_empty() || !seen.insert(name) {
                p.add("containers", &format!("{name:?} is empty or listed twice"));
            }
        }
        for name in &self.image_env {
            if !env_name(name) {
                p.add(
                    "image_env",
                    &format!("{name:?} is not an environment variable name (letters, digits, _)"),
                );
            }
            if *name == self.database.setting()
                || crate::endpoint::carries_a_database_host(name)
                || self.preprod.environment.contains_key(name)
            {
                p.add(
                    "image_env",
                    &format!(
                        "{name} is set elsewhere (the database setting or preprod.environment): \
                         one variable, one owner"
                    ),
                );
            }
        }
    }

    fn preprod_environment_problems(&self, p: &mut Problems) {
        for name in self.preprod.environment.keys() {
            if !env_name(name) {
                p.add(
                    "preprod.environment",
                    &format!("{name:?} is not an environment variable name (letters, digits, _)"),
                );
            }
            if *name == self.database.setting() || crate::endpoint::carries_a_database_host(name) {
                p.add(
                    "preprod.environment",
                    &format!(
                        "{name} names a database: pre-prod's database is bluegreen's to set \
                     ({}; its clone in isolated mode)",
                        self.database.form().field()
                    ),
                );
            }
        }
    }

    fn traffic_problems(&self, p: &mut Problems) {
        match &self.traffic {
            Traffic::Listener {
                production_listener_arn,
                test_listener_arn,
                test_rule,
                production_rule_arn,
                shift,
                routes,
                engine: _,
            } => {
                if let Routes::Listed(arns) = routes {
                    let own = [
                        Some(production_listener_arn),
                        test_listener_arn.as_ref(),
                        production_rule_arn.as_ref(),
                    ];
                    routes_problems(arns, &own, p);
                }
                p.elb_arn(
                    "traffic.production_listener_arn",
                    production_listener_arn,
                    ElbResource::Listener,
                );
                test_route_problems(
                    self.traffic.engine(),
                    self.database.strategy == DbStrategy::Isolated,
                    production_listener_arn,
                    test_listener_arn.as_deref(),
                    test_rule.as_ref(),
                    p,
                );
                if let Some(rule) = production_rule_arn {
                    p.elb_arn("traffic.production_rule_arn", rule, ElbResource::Rule);
                }
                if let Some(shift) = shift {
                    shift_problems(shift, p);
                }
            }
            Traffic::Dns {
                hosted_zone_id,
                record_name,
                ttl_seconds,
                switch_ttl_seconds,
            } => {
                if hosted_zone_id.trim().is_empty() {
                    p.add("traffic.hosted_zone_id", "DNS mode needs a hosted zone id");
                }
                if record_name.trim().is_empty() {
                    p.add("traffic.record_name", "DNS mode needs a record name");
                }
                if *ttl_seconds == 0 || *ttl_seconds > 172_800 {
                    p.add("traffic.ttl_seconds", "must be between 1 and 172800");
                }
                if *switch_ttl_seconds == 0 || switch_ttl_seconds > ttl_seconds {
                    p.add(
                        "traffic.switch_ttl_seconds",
                        "must be between 1 and ttl_seconds",
                    );
                }
                for slot in Slot::ALL {
                    let s = self.slots.get(slot);
                    if s.set_identifier.as_deref().unwrap_or("").is_empty() {
                        p.add(
                            &format!("slots.{slot}.set_identifier"),
                            "DNS mode needs a set identifier per slot",
                        );
                    }
                    if s.record_value.as_deref().unwrap_or("").is_empty() {
                        p.add(
                            &format!("slots.{slot}.record_value"),
                            "DNS mode needs a record value per slot",
                        );
                    }
                }
            }
        }
    }

    /// What ECS's own blue/green (`traffic.engine = "ecs"`) needs and cannot do: one service
    /// (both slots name it, with its target group and the alternate), production moved at once
    /// and only through ECS's production rule, and gates that fit in one lifecycle stage
    /// (ECS fails a stage after 24 hours). Not yet: `isolated` (pre-prod on the clone needs a
    /// service of its own) and pre-prod's own environment (it would roll the one service out
    /// again after the approval).
    fn ecs_engine_problems(&self, p: &mut Problems) {
        let Traffic::Listener {
            shift,
            routes,
            production_rule_arn,
            engine: Engine::Ecs,
            ..
        } = &self.traffic
        else {
            return;
        };
        if production_rule_arn.is_none() {
            p.add(
                "traffic.production_rule_arn",
                "with engine = \"ecs\" name ECS's production listener rule (the service's \
                 advancedConfiguration productionListenerRule): bluegreen reads and waits for it \
                 (ECS's blue/green on an NLB's listeners is not driven yet)",
            );
        }
        if self.slots.blue.service != self.slots.green.service {
            p.add(
                "slots",
                "with traffic.engine = \"ecs\" blue and green name the one service ECS deploys \
                 (their target groups are its target group and the alternate)",
            );
        }
        if shift.is_some() {
            p.add(
                "traffic.shift",
                "ECS's blue/green moves production at once (canary and linear are other ECS \
                 strategies)",
            );
        }
        if !routes.is_primary_only() {
            p.add(
                "traffic.routes",
                "ECS moves only its production rule; other routes would stay behind",
            );
        }
        if !self.preprod.environment.is_empty() {
            p.add(
                "preprod.environment",
                "with traffic.engine = \"ecs\" pre-prod is ECS's new revision of the one \
                 service: giving it production's environment after the approval would roll the \
                 service out again, superseding ECS's deployment",
            );
        }
        self.ecs_stage_budget_problems(p);
    }

    /// ECS fails a lifecycle stage after 24 hours, and each gate of bluegreen's hook holds one:
    /// the test gate through the health checks, the approval and a migration run after it; the
    /// production gate through the bake. With `isolated` ECS deploys only after the approval
    /// (pre-prod runs in a service of its own): its test gate holds through promote's rollout
    /// and health re-check only, the approval is not bounded by it.
    fn ecs_stage_budget_problems(&self, p: &mut Problems) {
        let after_approval = self
            .migration
            .as_ref()
            .filter(|m| m.run_for(self.database.strategy) == MigrationRun::AfterApproval)
            .map_or(0, |m| m.timeout_seconds);
        let (test_gate, what) = if self.database.strategy == DbStrategy::Isolated {
            (
                self.preprod.launch_timeout_seconds + self.health.timeout_seconds,
                "preprod.launch_timeout_seconds + health.timeout_seconds (isolated: ECS deploys \
                 after the approval and its migration)",
            )
        } else {
            (
                self.health.timeout_seconds + self.approval.timeout_seconds + after_approval,
                "health.timeout_seconds + approval.timeout_seconds + a migration after approval",
            )
        };
        for (field, seconds, what) in [
            ("approval.timeout_seconds", test_gate, what),
            ("bake.seconds", self.bake.seconds, "bake.seconds"),
        ] {
            if seconds > ECS_STAGE_BUDGET_SECONDS {
                p.add(
                    field,
                    &format!(
                        "{what} is {seconds} s; with traffic.engine = \"ecs\" at most \
                         {ECS_STAGE_BUDGET_SECONDS}: ECS fails a lifecycle stage after 24 hours \
                         and each gate holds one stage"
                    ),
                );
            }
        }
    }

    /// What an NLB cannot do: listener rules (a production rule, a test rule), a fixed
    /// response (the maintenance page); and what its slow weights need: every step of a shift
    /// and the bake at least [`NLB_WEIGHTS_SETTLE_SECONDS`], so no slot is judged, or scaled
    /// down, while new connections may still reach it.
    fn nlb_problems(&self, p: &mut Problems) {
        let Traffic::Listener {
            test_listener_arn,
            test_rule,
            production_rule_arn,
            shift,
            ..
        } = &self.traffic
        else {
            return;
        };
        if !self.traffic.on_nlb() {
            return;
        }
        let settle = NLB_WEIGHTS_SETTLE_SECONDS;
        if test_rule.is_some() {
            p.add(
                "traffic.test_rule",
                "an NLB has no listener rules: reach pre-prod through a test listener",
            );
        }
        if production_rule_arn.is_some() {
            p.add(
                "traffic.production_rule_arn",
                "an NLB has no listener rules: switch the production listener itself",
            );
        }
        if let Some(arn) = test_listener_arn.as_deref().filter(|a| !is_nlb_arn(a)) {
            p.add(
                "traffic.test_listener_arn",
                &format!("{arn} is not an NLB listener, but the slots' target groups are an NLB's"),
            );
        }
        if self.migration.as_ref().is_some_and(|m| m.maintenance) {
            p.add(
                "migration.maintenance",
                "an NLB cannot answer a maintenance page (it has no fixed responses)",
            );
        }
        let interval = match shift {
            Some(
                Shift::Canary {
                    interval_seconds, ..
                }
                | Shift::Linear {
                    interval_seconds, ..
                },
            ) => Some(*interval_seconds),
            None => None,
        };
        if interval.is_some_and(|i| i < settle) {
            p.add(
                "traffic.shift.interval_seconds",
                &format!(
                    "at least {settle} on an NLB: its weights take up to {settle} s to reach new \
                     connections, so a shorter step judges the previous share"
                ),
            );
        }
        if self.bake.seconds < settle {
            p.add(
                "bake.seconds",
                &format!(
                    "at least {settle} on an NLB: new connections may reach the old slot for up \
                     to {settle} s after the switch, and finish scales it down after the bake"
                ),
            );
        }
    }

    fn database_problems(&self, p: &mut Problems) {
        let db = &self.database;
        let needs_source = db.strategy == DbStrategy::Isolated
            || (db.strategy == DbStrategy::Shared && db.rehearsal);
        if needs_source && db.source.is_none() {
            p.add(
                "database.source",
                "isolated mode and rehearsals need a source database",
            );
        }
        if db.rehearsal && db.strategy != DbStrategy::Shared {
            p.add(
                "database.rehearsal",
                "only applies to the 'shared' strategy",
            );
        }
        if db.rehearsal && self.migration.is_none() {
            p.add("database.rehearsal", "needs a migration to rehearse");
        }
        if let Some(DbSource::RdsInstance { identifier } | DbSource::AuroraCluster { identifier }) =
            &db.source
            && identifier.trim().is_empty()
        {
            p.add("database.source.identifier", "must not be empty");
        }
        if db.endpoint_env.trim().is_empty() {
            p.add("database.endpoint_env", "must not be empty");
        }
        if let Some(url_env) = &db.url_env {
            if !env_name(url_env) {
                p.add(
                    "database.url_env",
                    &format!(
                        "{url_env:?} is not an environment variable name (letters, digits, _)"
                    ),
                );
            }
            if db.endpoint_env != default_db_env() {
                p.add(
                    "database.url_env",
                    "set endpoint_env (a bare host) or url_env (a URL), not both",
                );
            }
        }
        if let Some(secret) = &db.secret {
            if !env_name(secret) {
                p.add(
                    "database.secret",
                    &format!(
                        "{secret:?} is not a `secrets` entry's name (letters, digits, _): name \
                         the variable the secret is read into, not the secret"
                    ),
                );
            }
            if db.endpoint_env != default_db_env() || db.url_env.is_some() {
                p.add(
                    "database.secret",
                    "set one of endpoint_env (a bare host), url_env (a URL) or secret (a \
                     `secrets` entry), not several",
                );
            }
        }
        if let Some(m) = &self.migration {
            if db.strategy == DbStrategy::Isolated && m.run == Some(MigrationRun::BeforeLaunch) {
                p.add(
                    "migration.run",
                    "'isolated' migrates its clone before launch and production only after \
                     approval; use 'after_approval' or leave it out",
                );
            }
            if m.maintenance && matches!(self.traffic, Traffic::Dns { .. }) {
                p.add(
                    "migration.maintenance",
                    "needs traffic mode 'listener' (a fixed-response rule on the production \
                     listener); DNS mode cannot show a maintenance page",
                );
            }
        }
        p.timeout("database.clone_timeout_seconds", db.clone_timeout_seconds);
    }

    fn health_problems(&self, p: &mut Problems) {
        let h = &self.health;
        if let Some(url) = &h.test_url {
            p.url("health.test_url", url);
        }
        if h.smoke.is_empty() {
            p.add("health.smoke", "at least one smoke check is required");
        }
        for (i, check) in h.smoke.iter().enumerate() {
            if !check.path.starts_with('/') {
                p.add(&format!("health.smoke[{i}].path"), "must start with '/'");
            }
            if !(100..=599).contains(&check.expect_status) {
                p.add(
                    &format!("health.smoke[{i}].expect_status"),
                    "must be an HTTP status (100-599)",
                );
            }
            smoke_request_problems(i, check, p);
        }
        if !h.smoke.is_empty() {
            for slot in Slot::ALL {
                if self.test_url(slot).is_none() {
                    p.add(
                        "health.test_url",
                        &format!("smoke checks need a test URL for slot {slot} (health.test_url or slots.{slot}.test_url)"),
                    );
                }
            }
        }
        if h.consecutive_passes == 0 || h.consecutive_passes > 100 {
            p.add("health.consecutive_passes", "must be between 1 and 100");
        }
        if h.request_timeout_ms == 0 || h.request_timeout_ms > 60_000 {
            p.add("health.request_timeout_ms", "must be between 1 and 60000");
        }
        // One look runs every round of every check; each request may take its whole timeout.
        // Past the function's timeout Lambda kills the look (`Sandbox.Timedout`) and the
        // deployment aborts with no evidence, so such a config is refused up front.
        // Through a test rule, one probe request comes first (`health::assess`).
        let probe = u64::from(matches!(
            self.traffic.test_route(),
            crate::config::TestRoute::Rule(_)
        ));
        let worst_ms = u64::from(h.consecutive_passes)
            .saturating_mul(h.smoke.len() as u64)
            .saturating_add(probe)
            .saturating_mul(h.request_timeout_ms);
        if worst_ms > SMOKE_BUDGET_SECONDS * 1000 {
            p.add(
                "health.consecutive_passes",
                &format!(
                    "{} round(s) × {} check(s) in health.smoke{} × health.request_timeout_ms \
                     {} may take {} s, longer than the {SMOKE_BUDGET_SECONDS} s a look of the \
                     health-check function has (its timeout is \
                     {HEALTH_CHECK_FUNCTION_TIMEOUT_SECONDS} s): lower one of them",
                    h.consecutive_passes,
                    h.smoke.len(),
                    if probe == 1 {
                        " (+1 test-rule probe)"
                    } else {
                        ""
                    },
                    h.request_timeout_ms,
                    worst_ms.div_ceil(1000)
                ),
            );
        }
        p.timeout("health.timeout_seconds", h.timeout_seconds);
    }
}

/// Collects validation problems as `field: message`.
#[derive(Default)]
struct Problems(Vec<String>);

impl Problems {
    /// Adds a problem. Messages quote what was found (a parser's error quotes the value), and
    /// problems are printed and published: what a screen would act on is shown, not passed.
    fn add(&mut self, field: &str, message: &str) {
        self.0.push(format!("{field}: {}", text::line(message)));
    }

    fn timeout(&mut self, field: &str, seconds: u64) {
        if seconds == 0 || seconds > MAX_TIMEOUT_SECONDS {
            self.add(field, "must be between 1 and 86400 seconds");
        }
    }

    fn arn(&mut self, field: &str, value: &str, service: &str) {
        if !valid_arn(value, service) {
            self.add(field, &format!("{value:?} is not a valid {service} ARN"));
        }
    }

    /// An ELB ARN of the kind the field needs: a listener ARN where a target group belongs
    /// is found here, not halfway through a deployment.
    fn elb_arn(&mut self, field: &str, value: &str, kind: ElbResource) {
        if !valid_arn(value, "elasticloadbalancing") {
            return self.arn(field, value, "elasticloadbalancing");
        }
        let resource = value.splitn(6, ':').nth(5).unwrap_or_default();
        // `targetgroup/<name>/<id>`, `listener/app/<lb>/<lb id>/<id>`,
        // `listener-rule/app/<lb>/<lb id>/<listener id>/<id>`.
        let (prefix, segments) = match kind {
            ElbResource::TargetGroup => ("targetgroup/", 3),
            ElbResource::Listener => ("listener/", 5),
            ElbResource::Rule => ("listener-rule/", 6),
        };
        let parts: Vec<&str> = resource.split('/').collect();
        if !resource.starts_with(prefix)
            || parts.len() != segments
            || parts.iter().any(|p| p.is_empty())
        {
            self.add(
                field,
                &format!("{value:?} is not {} ARN (…:{prefix}…)", kind.article_name()),
            );
        }
    }

    fn url(&mut self, field: &str, value: &str) {
        if !(value.starts_with("http://") || value.starts_with("https://")) || value.len() < 10 {
            self.add(field, &format!("{value:?} is not an http(s) URL"));
        }
    }
}

/// `traffic.routes` as a list: each an ELB listener or rule ARN, none of them the config's own
/// production or test route.
fn routes_problems(arns: &[String], own: &[Option<&String>], p: &mut Problems) {
    for (i, arn) in arns.iter().enumerate() {
        let field = format!("traffic.routes[{i}]");
        let kind = if arn.contains(":listener-rule/") {
            ElbResource::Rule
        } else {
            ElbResource::Listener
        };
        p.elb_arn(&field, arn, kind);
        if own.contains(&Some(arn)) {
            p.add(
                &field,
                "is the production or test route itself: list only the others",
            );
        }
    }
}

/// What is wrong with a listener config's way to pre-prod: exactly one of a test listener
/// (another listener than production's) and a test rule (a header name ALB can match, CIDR
/// blocks) — on ECS's engine no test listener (ECS's own test rule reaches the new revision),
/// and a test rule only for `isolated` pre-prod's own service (`own_preprod`).
fn test_route_problems(
    engine: Engine,
    own_preprod: bool,
    production_listener_arn: &str,
    test_listener_arn: Option<&str>,
    test_rule: Option<&TestRule>,
    p: &mut Problems,
) {
    if engine == Engine::Ecs {
        if test_listener_arn.is_some() || (test_rule.is_some() && !own_preprod) {
            p.add(
                "traffic",
                "with engine = \"ecs\" pre-prod is reached through ECS's own test rule (the \
                 service's advancedConfiguration testListenerRule): leave test_listener_arn \
                 unset, and test_rule too unless database.strategy is isolated (it then sets \
                 the header rule to pre-prod's own service)",
            );
        }
        if let Some(rule) = test_rule {
            test_rule_problems(rule, p);
        }
        return;
    }
    match (test_listener_arn, test_rule) {
        (Some(_), Some(_)) => p.add(
            "traffic",
            "set test_listener_arn or test_rule, not both: pre-prod is reached one way",
        ),
        (None, None) => p.add(
            "traffic",
            "listener mode needs a way to pre-prod: test_listener_arn (a listener on its own \
             port) or test_rule (a header rule on the production listener)",
        ),
        (Some(arn), None) => {
            p.elb_arn("traffic.test_listener_arn", arn, ElbResource::Listener);
            if arn == production_listener_arn {
                p.add("traffic", "production and test listeners must differ");
            }
        }
        (None, Some(rule)) => test_rule_problems(rule, p),
    }
}

/// What is wrong with a test rule: a header name ALB cannot match, too many or malformed CIDR
/// blocks.
fn test_rule_problems(rule: &TestRule, p: &mut Problems) {
    let header = &rule.header;
    // ALB matches header names of token characters, at most 40 of them.
    let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    if header.is_empty() || header.len() > 40 || !header.chars().all(token) {
        p.add(
            "traffic.test_rule.header",
            &format!("{header:?} is not an HTTP header name ALB can match (1-40 token characters)"),
        );
    }
    if header.eq_ignore_ascii_case("host") {
        p.add(
            "traffic.test_rule.header",
            "Host is matched by host-header conditions; name a header of its own",
        );
    }
    // One rule holds five condition values: the header's one and four networks.
    if rule.source_ips.len() > 4 {
        p.add("traffic.test_rule.source_ips", "at most 4 CIDR blocks");
    }
    for (i, cidr) in rule.source_ips.iter().enumerate() {
        if !is_cidr(cidr) {
            p.add(
                &format!("traffic.test_rule.source_ips[{i}]"),
                &format!("{cidr:?} is not a CIDR block like 10.0.0.0/16"),
            );
        }
    }
}

/// What is wrong with the `operators` list: entries no SigV4 caller can ever be.
fn operator_problems(operators: &[String], p: &mut Problems) {
    for (i, operator) in operators.iter().enumerate() {
        if !is_principal_arn(operator) {
            p.add(
                &format!("operators[{i}]"),
                &format!(
                    "{operator:?} is not an IAM user, role or session ARN \
                     (arn:aws:iam::<account>:role/<name>, a role without its path)"
                ),
            );
        }
    }
}

/// Whether `text` is an IAM user or role ARN, or an STS session ARN: what a SigV4 caller is.
fn is_principal_arn(text: &str) -> bool {
    let parts: Vec<&str> = text.splitn(6, ':').collect();
    let [arn, partition, service, region, account, resource] = parts.as_slice() else {
        return false;
    };
    *arn == "arn"
        && partition.starts_with("aws")
        && region.is_empty()
        && account.len() == 12
        && account.chars().all(|c| c.is_ascii_digit())
        && match *service {
            // A session ARN names its role without the role's path, so only a role listed
            // without one can ever match a caller.
            "iam" => {
                resource.starts_with("user/")
                    || resource
                        .strip_prefix("role/")
                        .is_some_and(|name| !name.is_empty() && !name.contains('/'))
            }
            "sts" => resource.starts_with("assumed-role/"),
            _ => false,
        }
        && !resource.contains(char::is_whitespace)
}

/// Whether `text` is an IPv4 or IPv6 CIDR block (`address/prefix`).
fn is_cidr(text: &str) -> bool {
    let Some((address, prefix)) = text.split_once('/') else {
        return false;
    };
    let Ok(prefix) = prefix.parse::<u8>() else {
        return false;
    };
    match address.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(_)) => prefix <= 32,
        Ok(std::net::IpAddr::V6(_)) => prefix <= 128,
        Err(_) => false,
    }
}

/// What is wrong with a gradual shift's steps and intervals.
fn shift_problems(shift: &Shift, p: &mut Problems) {
    let (field, percent, interval_seconds) = match shift {
        Shift::Canary {
            percent,
            interval_seconds,
        } => ("traffic.shift.percent", percent, interval_seconds),
        Shift::Linear {
            step_percent,
            interval_seconds,
        } => ("traffic.shift.step_percent", step_percent, interval_seconds),
    };
    if !(1..=99).contains(percent) {
        p.add(field, "must be between 1 and 99");
    }
    p.timeout("traffic.shift.interval_seconds", *interval_seconds);
}

/// What is wrong with smoke check `i`'s request: its method, headers, body, host, JSON match.
fn smoke_request_problems(i: usize, check: &SmokeCheck, p: &mut Problems) {
    let at = |field: &str| format!("health.smoke[{i}].{field}");
    if !SMOKE_METHODS.contains(&check.method.as_str()) {
        p.add(
            &at("method"),
            &format!(
                "{:?} is not one of {}",
                check.method,
                SMOKE_METHODS.join(", ")
            ),
        );
    }
    if check.body.is_some() && ["GET", "HEAD"].contains(&check.method.as_str()) {
        p.add(
            &at("body"),
            &format!("a {} request has no body", check.method),
        );
    }
    if check.method == "HEAD" && (check.body_contains.is_some() || check.json.is_some()) {
        p.add(
            &at("method"),
            "a HEAD answer has no body for body_contains or json to match",
        );
    }
    header_problems(i, check, p);
    if let Some(host) = &check.host
        && !host_name(host)
    {
        p.add(&at("host"), &format!("{host:?} is not a host name"));
    }
    if let Some(json) = &check.json
        && !json.pointer.is_empty()
        && !json.pointer.starts_with('/')
    {
        p.add(
            &at("json.pointer"),
            "must be a JSON pointer: empty or starting with '/' (`/status`)",
        );
    }
}

/// What is wrong with smoke check `i`'s headers: names, duplicates, values, secrets.
fn header_problems(i: usize, check: &SmokeCheck, p: &mut Problems) {
    let at = |field: &str| format!("health.smoke[{i}].{field}");
    let mut seen = std::collections::BTreeSet::new();
    for name in check.headers.keys() {
        if !seen.insert(name.to_ascii_lowercase()) {
            p.add(
                &at(&format!("headers.{name}")),
                "is set twice (header names ignore case)",
            );
        }
    }
    for (name, value) in &check.headers {
        let field = at(&format!("headers.{name}"));
        if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
            p.add(&field, "is not a header name");
        }
        // The host is its own field: it is also the TLS server name.
        if ["host", "content-length", "transfer-encoding", "connection"]
            .contains(&name.to_ascii_lowercase().as_str())
        {
            p.add(
                &field,
                "is set by the client (use `host` for the host name)",
            );
        }
        match value {
            HeaderValue::Text(text) => {
                if reqwest::header::HeaderValue::from_str(text).is_err() {
                    p.add(&field, "is not a valid header value");
                }
            }
            HeaderValue::Secret(secret) => {
                match crate::secret_reference::SecretReference::parse(&secret.secret) {
                    Err(_) => p.add(
                        &format!("{field}.secret"),
                        "must be a Secrets Manager secret's ARN",
                    ),
                    Ok(reference) if reference.secret_id != secret.secret => p.add(
                        &format!("{field}.secret"),
                        "must be the secret's ARN alone (a JSON key goes in `key`)",
                    ),
                    Ok(_) => {}
                }
            }
        }
    }
}

/// Whether `name` is a DNS host name (letters, digits, `-`, dots between labels), not an IP
/// address (one would bypass the test URL's address).
fn host_name(name: &str) -> bool {
    name.parse::<std::net::IpAddr>().is_err()
        && !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// Whether `name` can be an environment variable's name in a task definition.
fn env_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit())
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some('a'..='z'))
        && name.len() <= 40
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// The ELB resource an ARN field names.
#[derive(Debug, Clone, Copy)]
enum ElbResource {
    TargetGroup,
    Listener,
    Rule,
}

impl ElbResource {
    fn article_name(self) -> &'static str {
        match self {
            ElbResource::TargetGroup => "a target group",
            ElbResource::Listener => "a listener",
            ElbResource::Rule => "a listener rule",
        }
    }
}

/// `arn:partition:service:region:account:resource`, with the expected service.
fn valid_arn(value: &str, service: &str) -> bool {
    let parts: Vec<&str> = value.splitn(6, ':').collect();
    parts.len() == 6
        && parts[0] == "arn"
        && parts[1].starts_with("aws")
        && parts[2] == service
        && !parts[3].is_empty()
        && parts[4].len() == 12
        && parts[4].chars().all(|c| c.is_ascii_digit())
        && !parts[5].is_empty()
}

/// One wait of a deployment's execution (see [`ServiceConfig::execution_waits`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wait {
    /// The registry name of the step that waits it (`switch`, `rollback` …).
    pub step: &'static str,
    /// The config field that sets it.
    pub field: &'static str,
    /// How long, at most.
    pub seconds: u64,
}

impl Wait {
    fn new(step: &'static str, field: &'static str, seconds: u64) -> Self {
        Self {
            step,
            field,
            seconds,
        }
    }
}
