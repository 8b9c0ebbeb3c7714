//! A service on ECS's own blue/green, in memory: the standard world with `shop-blue` set up as
//! a team sets such a service up — strategy `BLUE_GREEN`, its target group and the alternate
//! (the standard world's two groups), a production rule and a header-matched test rule on the
//! production listener, a bake time, and bluegreen's lifecycle hook registered at the two
//! stages it gates — plus a driver that plays ECS's stages (`memory::ecs_blue_green`) and
//! answers each hook invocation with bluegreen's `ecs_hook` step, as Lambda would.

use std::sync::Arc;

use bluegreen::config::{Engine, PREVIEW_HEADER, ServiceConfig, Traffic};
use bluegreen::ecs_hook::GATED_STAGES;
use bluegreen::naming::{TAG_DEPLOYMENT, TAG_MANAGED};
use bluegreen::ports::compute::{BlueGreenRoute, DeploymentSetup, LifecycleHook, RevisionOverlay};
use bluegreen::ports::load_balancing::{Condition, WeightedGroup};
use bluegreen::record::{Records, Status, TaskDefinitions};
use bluegreen::steps::registry::{self, ECS_HOOK};
use bluegreen::{Context, Slot};

use crate::memory::ecs_blue_green::BlueGreenDeployment;
use crate::memory::{Conductor, Immediate, MemoryAws, RuleModel};
use crate::{ACCOUNT, CLUSTER, Names, REPOSITORY};

/// bluegreen's hook function, as the stack names it.
pub const HOOK_ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:bluegreen-ecs-hook";
/// The one service ECS deploys.
pub const SERVICE: &str = "shop-blue";
/// The seconds between two looks of the driver at ECS's work.
pub const TICK_SECONDS: u64 = 5;

/// The world, the context over it, and the virtual time ECS's work has reached.
pub struct EcsWorld {
    /// The in-memory AWS.
    pub aws: MemoryAws,
    /// A context over it.
    pub ctx: Context,
    /// The world's identifiers.
    pub names: Names,
    /// The service's config (`traffic.engine = "ecs"`).
    pub config: ServiceConfig,
    /// ECS's production rule.
    pub production_rule: String,
    /// ECS's test rule (the preview header).
    pub test_rule: String,
    /// Virtual milliseconds since the start.
    pub now: u64,
    /// Every hook answer, in order: `(stage, hookStatus)`.
    pub answers: Vec<(String, String)>,
    /// The exit code of bluegreen's one-off tasks (migrations), which end at the tick after
    /// they started.
    pub task_exit: i32,
}

/// The world, with nothing deploying.
pub async fn build() -> EcsWorld {
    build_with(Arc::new(Immediate)).await
}

/// The world, its calls conducted by `conductor`.
pub async fn build_with(conductor: Arc<dyn Conductor>) -> EcsWorld {
    let names = crate::memory::world::made_up_names();
    let clock: bluegreen::context::Clock = Arc::new(chrono::Utc::now);
    let (aws, mut ctx) = crate::memory::world::build(&names, conductor, clock).await;
    // As the stack sets it: the launch requires this function at the gated stages.
    ctx.settings.ecs_hook_arn = Some(HOOK_ARN.into());
    aws.with(|s| install(s, &names));
    let mut config = crate::world::service_config(&names);
    configure(&mut config, &names);
    EcsWorld {
        aws,
        ctx,
        names: names.clone(),
        config,
        production_rule: production_rule(&names),
        test_rule: test_rule(&names),
        now: 0,
        answers: Vec::new(),
        task_exit: 0,
    }
}

/// A rule of the production listener, by its id.
fn rule_arn(names: &Names, id: u32) -> String {
    format!(
        "{}/{id:016x}",
        names
            .production_listener
            .replace(":listener/", ":listener-rule/")
    )
}

/// ECS's production rule (host `shop.example.com`).
pub fn production_rule(names: &Names) -> String {
    rule_arn(names, 0xbb01)
}

/// ECS's test rule (the preview header), before the production rule.
pub fn test_rule(names: &Names) -> String {
    rule_arn(names, 0xbb02)
}

/// `config` (the standard world's) made the one service's on ECS's engine: both slots name
/// `shop-blue`, production is ECS's production rule.
pub fn configure(config: &mut ServiceConfig, names: &Names) {
    config.slots.green.service = SERVICE.into();
    if let Traffic::Listener {
        production_rule_arn,
        engine,
        test_listener_arn,
        test_rule,
        ..
    } = &mut config.traffic
    {
        *production_rule_arn = Some(production_rule(names));
        *engine = Engine::Ecs;
        // ECS's test rule is the way to pre-prod.
        *test_listener_arn = None;
        *test_rule = None;
    }
}

/// Sets `shop-blue` up on ECS's own blue/green in `s`: its production and test rules (both on
/// the blue group; priority 9 left free for a maintenance page, which must sit directly above
/// production's rule), the smoke checks routed through the production listener by those
/// rules, and the deployment configuration with bluegreen's hook at the gated stages.
pub fn install(s: &mut crate::memory::State, names: &Names) {
    let (production_rule, test_rule) = (production_rule(names), test_rule(names));
    // No test listener of bluegreen's: ECS's test rule reaches the new revision.
    s.elb.listeners.remove(&names.test_listener);
    {
        let forward = Some(vec![
            WeightedGroup {
                target_group_arn: names.tg_blue.clone(),
                weight: Some(100),
            },
            WeightedGroup {
                target_group_arn: names.tg_green.clone(),
                weight: Some(0),
            },
        ]);
        for (arn, priority, conditions) in [
            (
                &test_rule,
                5,
                vec![condition("http-header", Some(PREVIEW_HEADER), "*")],
            ),
            (
                &production_rule,
                10,
                vec![condition("host-header", None, "shop.example.com")],
            ),
        ] {
            s.elb.rules.insert(
                arn.clone(),
                RuleModel {
                    listener: names.production_listener.clone(),
                    priority,
                    forward: forward.clone(),
                    fixed: None,
                    tags: Vec::new(),
                    conditions,
                },
            );
        }
        // The smoke checks go through production's listener: its rules decide which
        // revision answers. The revision production runs answers without the smoke checks'
        // "ok", so a check that production answers fails.
        s.smoke.routed = Some((names.test_url.clone(), names.production_listener.clone()));
        let answer = |body: &str| bluegreen::ports::smoke::Answer {
            status: 200,
            body: body.into(),
        };
        s.smoke
            .by_group
            .insert(names.tg_blue.clone(), answer("v1 (production)"));
        s.smoke
            .by_group
            .insert(names.tg_green.clone(), answer("ok"));
        let service = s
            .ecs
            .services
            .get_mut(&format!("{CLUSTER}/{SERVICE}"))
            .expect("shop-blue");
        service.state.setup = DeploymentSetup {
            controller: Some("ECS".into()),
            strategy: Some("BLUE_GREEN".into()),
            bake_minutes: Some(5),
            hooks: vec![LifecycleHook {
                target_type: "AWS_LAMBDA".into(),
                target_arn: Some(HOOK_ARN.into()),
                stages: GATED_STAGES.iter().map(|s| (*s).to_owned()).collect(),
                timeout_minutes: Some(1440),
                timeout_action: Some("ROLLBACK".into()),
            }],
            routes: vec![BlueGreenRoute {
                target_group: names.tg_blue.clone(),
                alternate_target_group: Some(names.tg_green.clone()),
                production_rule: Some(production_rule.clone()),
                test_rule: Some(test_rule.clone()),
                role_arn: Some(format!("arn:aws:iam::{ACCOUNT}:role/ecs-infrastructure")),
            }],
        };
    }
}

impl EcsWorld {
    /// Stores the world's config as `bluegreen config put` would (validated): what `prepare`,
    /// the operator commands and the scheduled teardown read.
    pub async fn store_config(&self) {
        bluegreen::config_store::ConfigStore::new(&self.ctx)
            .put(&self.config)
            .await
            .expect("the ECS config is valid and stored");
    }

    /// A bluegreen deployment of the service in `status` that registered `tag`'s revision
    /// (tagged with its id, as `crate::revisions` tags them): its id and the revision's ARN.
    pub async fn deployment(&self, tag: &str, status: Status) -> (String, String) {
        let id = format!("shop-{tag}");
        let push = crate::history::push(tag, chrono::Utc::now());
        let record = bluegreen::admit::new_record(
            &self.ctx,
            &id,
            &push,
            self.config.clone(),
            status,
            Some(Slot::Blue),
        );
        let records = Records::new(&self.ctx);
        records.create(&record).await.expect("the record");
        let overlay = RevisionOverlay {
            images: vec![(
                "web".into(),
                format!(
                    "{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/{REPOSITORY}@sha256:{}",
                    "cd".repeat(32)
                ),
            )],
            ..RevisionOverlay::default()
        };
        let tags = [
            (TAG_MANAGED.to_owned(), "true".to_owned()),
            (TAG_DEPLOYMENT.to_owned(), id.clone()),
        ];
        let arn = self
            .ctx
            .ports
            .compute
            .register_revision("shop", &overlay, &tags)
            .await
            .expect("registered");
        let registered = TaskDefinitions {
            preprod: Some(arn.clone()),
            ..TaskDefinitions::default()
        };
        records
            .update(
                &id,
                bluegreen::record::Change::new().task_definitions(&registered),
            )
            .await
            .expect("recorded");
        (id, arn)
    }

    /// Sets the deployment's status (as the steps would), with `failure` when given.
    pub async fn set_status(&self, id: &str, status: Status, failure: Option<&str>) {
        let mut change = bluegreen::record::Change::new().status(status);
        if let Some(failure) = failure {
            change = change.failure(failure);
        }
        Records::new(&self.ctx)
            .update(id, change)
            .await
            .expect("updated");
    }

    /// bluegreen's launch step (`start`) for deployment `id`, as the state machine calls it.
    pub async fn launch(&self, id: &str) -> Result<serde_json::Value, bluegreen::StepError> {
        let input = serde_json::json!({"action": "start", "deployment_id": id});
        registry::invoke(&self.ctx, &registry::LAUNCH_PREPROD, input).await
    }

    /// bluegreen's launch check for deployment `id` (its deadline an hour away).
    pub async fn launch_check(&self, id: &str) -> Result<serde_json::Value, bluegreen::StepError> {
        let deadline = chrono::Utc::now() + chrono::Duration::hours(1);
        let input = serde_json::json!({
            "action": "check", "deployment_id": id, "deadline": deadline, "attempt": 0
        });
        registry::invoke(&self.ctx, &registry::LAUNCH_PREPROD, input).await
    }

    /// bluegreen's abort step for deployment `id`, as the state machine calls it after a
    /// failure.
    pub async fn abort(&self, id: &str) -> Result<serde_json::Value, bluegreen::StepError> {
        let input = serde_json::json!({
            "deployment_id": id,
            "error": {"Error": "ApprovalRejected", "Cause": "rejected by ops"},
        });
        registry::invoke(&self.ctx, &registry::ABORT, input).await
    }

    /// Records the newest ECS deployment as deployment `id`'s own, as its launch would have
    /// (for tests that start ECS's deployment with [`EcsWorld::update_service`] and give the
    /// record a status of their own).
    pub async fn own_newest(&self, id: &str) {
        let arn = self.ecs_deployment().arn;
        self.record_preprod(id, "", Some(arn)).await;
    }

    /// Records pre-prod for deployment `id` as the launch does before its update: the
    /// service, `revision`, and the ECS deployment when given.
    pub async fn record_preprod(&self, id: &str, revision: &str, ecs_deployment: Option<String>) {
        let preprod = bluegreen::record::PreprodState {
            service: SERVICE.into(),
            task_definition_arn: revision.into(),
            previous_task_definition: self.service().0,
            previous_desired_count: 2,
            desired_count: 2,
            previous_marks: Default::default(),
            previous_registries: Vec::new(),
            ephemeral_service: None,
            ecs_deployment,
        };
        Records::new(&self.ctx)
            .update(id, bluegreen::record::Change::new().preprod(&preprod))
            .await
            .expect("recorded");
    }

    /// A revision of the service's family registered by someone else (an IaC apply, the
    /// console), with `tags`: its ARN.
    pub async fn foreign_revision(&self, tags: &[(String, String)]) -> String {
        self.ctx
            .ports
            .compute
            .register_revision("shop", &RevisionOverlay::default(), tags)
            .await
            .expect("registered")
    }

    /// A person stops ECS's newest deployment in the console (`StopServiceDeployment`, which
    /// rolls it back): its ARN.
    pub async fn stop_in_the_console(&self) -> String {
        let arn = self.ecs_deployment().arn;
        self.ctx
            .ports
            .service_deployments
            .stop_service_deployment(&arn)
            .await
            .expect("a deployment going on stops");
        arn
    }

    /// How many service deployments ECS made.
    pub fn ecs_deployments(&self) -> usize {
        self.aws.with(|s| s.ecs.blue_green.len())
    }

    /// `UpdateService` of the service to `task_definition` by anyone (a console, an IaC
    /// apply): on this service, a new ECS deployment.
    pub async fn update_service(&self, task_definition: &str) {
        self.ctx
            .ports
            .compute
            .update_service(CLUSTER, SERVICE, Some(task_definition), 2)
            .await
            .expect("UpdateService");
    }

    /// Plays ECS for `seconds` of virtual time, a look every [`TICK_SECONDS`], answering each
    /// hook invocation with bluegreen's hook step (its answers are added to `answers`).
    pub async fn play(&mut self, seconds: u64) {
        let end = self.now + seconds * 1000;
        while self.now < end {
            self.now += TICK_SECONDS * 1000;
            let now = self.now;
            let exit = self.task_exit;
            self.aws.with(|s| end_tasks(s, exit));
            let calls = self.aws.with(|s| s.play_blue_green(now));
            for call in calls {
                // bluegreen's hook never errs (ECS would roll back): an error fails the test.
                let answer = registry::invoke(&self.ctx, &ECS_HOOK, call.payload.clone())
                    .await
                    .unwrap_or_else(|e| panic!("the hook erred at {}: {e}", call.stage));
                let status = answer["hookStatus"].as_str().unwrap_or_default().to_owned();
                self.answers.push((call.stage.clone(), status));
                self.aws.with(|s| s.hook_answered(&call, Ok(answer)));
            }
        }
    }

    /// The newest service deployment ECS made.
    pub fn ecs_deployment(&self) -> BlueGreenDeployment {
        self.aws.with(|s| {
            s.ecs
                .blue_green
                .last()
                .cloned()
                .expect("a service deployment")
        })
    }

    /// Where `rule` forwards: `(target group, weight)`.
    pub fn forward(&self, rule: &str) -> Vec<(String, i32)> {
        self.aws.with(|s| {
            s.elb.rules[rule]
                .forward
                .clone()
                .unwrap_or_default()
                .into_iter()
                .map(|g| (g.target_group_arn, g.weight.unwrap_or(1)))
                .collect()
        })
    }

    /// The target group `rule` sends everything to, if it sends everything to one.
    pub fn all_to(&self, rule: &str) -> Option<String> {
        let forward = self.forward(rule);
        let live: Vec<_> = forward.iter().filter(|(_, w)| *w > 0).collect();
        (live.len() == 1).then(|| live[0].0.clone())
    }

    /// The service's task definition and the tasks registered in each target group
    /// (`(task definition, [blue group targets, green group targets])`).
    pub fn service(&self) -> (String, [usize; 2]) {
        self.aws.with(|s| {
            let td = s.ecs.services[&format!("{CLUSTER}/{SERVICE}")]
                .state
                .task_definition
                .clone()
                .unwrap_or_default();
            let count = |tg: &str| s.elb.targets.get(tg).map(Vec::len).unwrap_or(0);
            (
                td,
                [count(&self.names.tg_blue), count(&self.names.tg_green)],
            )
        })
    }
}

/// The container runtime: every one-off task still going ends — with `exit`, or 143 when it
/// was asked to stop — and is listed.
fn end_tasks(s: &mut crate::memory::State, exit: i32) {
    for task in s.ecs.tasks.values_mut() {
        task.listed = true;
        if task.state.last_status == "STOPPED" {
            continue;
        }
        let stopped = task.state.desired_status == "STOPPED";
        task.state.last_status = "STOPPED".into();
        task.state.desired_status = "STOPPED".into();
        task.state.stop_code = Some(
            if stopped {
                "UserInitiated"
            } else {
                "EssentialContainerExited"
            }
            .into(),
        );
        for c in &mut task.state.containers {
            c.exit_code = Some(if stopped { 143 } else { exit });
        }
    }
}

fn condition(field: &str, header: Option<&str>, value: &str) -> Condition {
    Condition {
        field: field.into(),
        header_name: header.map(str::to_owned),
        values: vec![value.into()],
    }
}
