//! The committed definitions, run by the local runner with the real steps against moto, while a
//! simulator plays ECS and a test "person" decides approvals: every path of the deployment
//! definition.

mod conformance;
mod database;
mod faults;

use std::sync::Arc;
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_sdk_ecs::operation::describe_services::DescribeServicesError;
use aws_smithy_mocks::{MockResponseInterceptor, RuleMode, mock};
use aws_smithy_types::error::ErrorMetadata;
use bluegreen::record::{Records, Status};
use bluegreen::steps::approval::{self, Decision};
use bluegreen::{Context, Slot};
use bluegreen_statemachine::local::LocalTasks;
use bluegreen_statemachine::{
    DEPLOYMENT_ASL, Definition, EventKind, Finished, INTAKE_ASL, Outcome, Runner, ScaledClock,
};
use bluegreen_tests::iam;
use bluegreen_tests::{Simulator, World, push_event};

/// What the test's approver does with a deployment awaiting approval.
#[derive(Clone, Copy, PartialEq)]
enum Person {
    Approves,
    Rejects,
    IsAway,
}

struct Local {
    world: World,
    clock: ScaledClock,
    simulator: Simulator,
    /// Every request the steps made in this world's runs, each checked against its role.
    checked: std::sync::Mutex<Vec<iam::Call>>,
}

impl Local {
    async fn new() -> Local {
        let world = World::build().await;
        let simulator = Simulator::start(&world);
        // A virtual second lasts a real millisecond: waits shrink, deadlines stay consistent.
        Local {
            world,
            clock: ScaledClock::new(0.001),
            simulator,
            checked: Default::default(),
        }
    }

    fn ctx(&self) -> Context {
        self.world
            .ctx
            .clone()
            .with_clock(Arc::new(self.clock.shared_now()))
    }

    /// Pushes `shop/web:v2` and runs what it starts, with `person` deciding approvals.
    async fn deploy(&self, person: Person) -> Vec<(String, Finished)> {
        self.run(
            self.ctx(),
            push("v2", "e-1", "2026-11-21T10:00:00Z"),
            person,
        )
        .await
    }

    /// Feeds `event` to the intake machine, then runs every deployment execution it (and the
    /// hand-overs after it) start, in order. Returns the deployment executions' results.
    async fn run(
        &self,
        ctx: Context,
        event: serde_json::Value,
        person: Person,
    ) -> Vec<(String, Finished)> {
        let (intake, results) = self.run_any(ctx, event, person).await;
        assert!(
            matches!(intake.outcome, Outcome::Succeeded(_)),
            "intake: {:?}",
            intake.outcome
        );
        results
    }

    /// [`Local::run`], whatever the intake's outcome: the intake's result and the deployment
    /// executions' results. The person decides through the world's own clients, so the
    /// clients under test are used by the definitions alone.
    async fn run_any(
        &self,
        ctx: Context,
        event: serde_json::Value,
        person: Person,
    ) -> (Finished, Vec<(String, Finished)>) {
        self.run_wrapped(ctx, event, person, &|tasks| tasks).await
    }

    /// [`Local::run_any`] with the task handler `wrap` makes of the local one (the fault
    /// campaign crashes or stops a state with it).
    async fn run_wrapped(
        &self,
        ctx: Context,
        event: serde_json::Value,
        person: Person,
        wrap: &dyn Fn(Arc<LocalTasks>) -> Arc<dyn bluegreen_statemachine::TaskHandler>,
    ) -> (Finished, Vec<(String, Finished)>) {
        // Aborted however the run ends, also when the caller drops it mid-way (a stop).
        struct Decider(tokio::task::JoinHandle<()>);
        impl Drop for Decider {
            fn drop(&mut self) {
                self.0.abort();
            }
        }
        let _decider = Decider(spawn_person(self.ctx(), person));
        // IAM by execution: every request a step makes is recorded as its function's and
        // checked against that function's role once the executions end.
        let (ctx, calls) = iam::recorded(&ctx);
        let local = Arc::new(LocalTasks::new(ctx, Arc::new(self.clock.clone()), 5.0));
        let tasks: Arc<dyn bluegreen_statemachine::TaskHandler> =
            Arc::new(iam::AsFunction(wrap(local.clone())));
        let intake = Runner::new(
            Definition::parse(INTAKE_ASL).unwrap(),
            "arn:local:intake",
            tasks.clone(),
            Arc::new(self.clock.clone()),
        );
        let finished = intake.run("intake-1", event).await;
        let deployment = Runner::new(
            Definition::parse(DEPLOYMENT_ASL).unwrap(),
            "arn:local:deployment",
            tasks.clone(),
            Arc::new(self.clock.clone()),
        );
        let mut results = Vec::new();
        let mut queue = local.take_started();
        while !queue.is_empty() {
            for start in queue {
                let finished = deployment.run(&start.name, start.input).await;
                results.push((start.name, finished));
            }
            queue = local.take_started();
        }
        let calls = calls.calls();
        let denied = grants().denied(&calls);
        assert!(
            denied.is_empty(),
            "requests the stack's roles do not allow (infra/template.yaml): {denied:#?}"
        );
        self.checked.lock().expect("checked").extend(calls);
        (finished, results)
    }
}

impl Local {
    /// Invokes a standalone step (teardown, the reconciler's sweep) as the stack's schedule
    /// does, as its function: its requests are checked against its role like the executions'.
    async fn invoke_scheduled(&self, step: &bluegreen::steps::registry::Step) -> serde_json::Value {
        let (ctx, calls) = iam::recorded(&self.ctx());
        let local = Arc::new(LocalTasks::new(ctx, Arc::new(self.clock.clone()), 5.0));
        let answer = bluegreen_statemachine::TaskHandler::invoke(
            &iam::AsFunction(local),
            bluegreen_statemachine::TaskCall {
                state: step.state.into(),
                resource: step.placeholder(),
                input: serde_json::json!({"detail-type": "Scheduled Event", "detail": {}}),
                task_token: None,
                execution_id: "scheduled".into(),
            },
        )
        .await
        .unwrap_or_else(|e| panic!("{}: {e:?}", step.name));
        let calls = calls.calls();
        let denied = grants().denied(&calls);
        assert!(
            denied.is_empty(),
            "requests the stack's roles do not allow (infra/template.yaml): {denied:#?}"
        );
        self.checked.lock().expect("checked").extend(calls);
        answer
    }
}

/// The stack's grants, read once.
fn grants() -> &'static iam::Grants {
    static GRANTS: std::sync::OnceLock<iam::Grants> = std::sync::OnceLock::new();
    GRANTS.get_or_init(iam::Grants::of_the_stack)
}

/// Puts the service's alarm into ALARM when the bake starts, after traffic moved: a breach
/// the new version causes.
struct AlarmAtBake {
    inner: Arc<LocalTasks>,
    cloudwatch: aws_sdk_cloudwatch::Client,
}

impl bluegreen_statemachine::TaskHandler for AlarmAtBake {
    fn invoke(
        &self,
        call: bluegreen_statemachine::TaskCall,
    ) -> bluegreen_statemachine::runner::BoxFuture<
        '_,
        Result<serde_json::Value, bluegreen_statemachine::Failure>,
    > {
        Box::pin(async move {
            if call.resource == bluegreen::steps::registry::BAKE.placeholder()
                && call.input["action"] == "start"
            {
                self.cloudwatch
                    .set_alarm_state()
                    .alarm_name("shop-5xx")
                    .state_value(aws_sdk_cloudwatch::types::StateValue::Alarm)
                    .state_reason("errors after the switch")
                    .send()
                    .await
                    .expect("set alarm state");
            }
            self.inner.invoke(call).await
        })
    }
}

impl Local {
    /// [`Local::deploy`], with the service's alarm raised as the bake starts.
    async fn deploy_with_alarm_at_bake(&self, person: Person) -> Vec<(String, Finished)> {
        let cloudwatch = self.world.aws.cloudwatch.clone();
        let (intake, results) = self
            .run_wrapped(
                self.ctx(),
                push("v2", "e-1", "2026-11-21T10:00:00Z"),
                person,
                &|tasks| {
                    Arc::new(AlarmAtBake {
                        inner: tasks,
                        cloudwatch: cloudwatch.clone(),
                    })
                },
            )
            .await;
        assert!(matches!(intake.outcome, Outcome::Succeeded(_)));
        results
    }
}

/// A person watching the records who decides every deployment awaiting approval.
fn spawn_person(ctx: Context, person: Person) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            if person != Person::IsAway {
                for deployment in Records::new(&ctx)
                    .for_service("shop", usize::MAX)
                    .await
                    .unwrap_or_default()
                {
                    if deployment.status == Status::AwaitingApproval {
                        let decision = Decision {
                            approve: person == Person::Approves,
                            approver: "alice@example.com".into(),
                            reason: Some("not this one".into()),
                            channel: "cli".into(),
                            link_nonce: None,
                        };
                        let _ = approval::decide(&ctx, &deployment.deployment_id, &decision).await;
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
}

/// An AWS error answer with `code`.
fn aws_error(code: &str) -> ErrorMetadata {
    ErrorMetadata::builder()
        .code(code)
        .message(format!("{code} from the test"))
        .build()
}

impl Local {
    /// [`Local::deploy`] with an ECS client whose calls reach moto except those `rule`
    /// answers (no SDK retries: the definition's `Retry` and `Catch` are what is under test).
    async fn deploy_with_ecs(&self, rule: &aws_smithy_mocks::Rule) -> Vec<(String, Finished)> {
        let ctx =
            bluegreen_tests::with_client(&self.ctx(), |c| c.ecs = ecs_with(&self.world, rule));
        self.run(
            ctx,
            push("v2", "e-1", "2026-11-21T10:00:00Z"),
            Person::Approves,
        )
        .await
    }
}

fn ecs_with(world: &World, rule: &aws_smithy_mocks::Rule) -> aws_sdk_ecs::Client {
    aws_sdk_ecs::Client::from_conf(
        aws_sdk_ecs::config::Builder::from(&world.sdk)
            .interceptor(
                MockResponseInterceptor::new()
                    .rule_mode(RuleMode::MatchAny)
                    .with_rule(rule)
                    .allow_passthrough(),
            )
            .retry_config(RetryConfig::disabled())
            .build(),
    )
}

fn push(tag: &str, id: &str, time: &str) -> serde_json::Value {
    push_event(tag, 'c', id, time)
}

fn only(results: &[(String, Finished)]) -> &Finished {
    assert_eq!(results.len(), 1, "one deployment execution expected");
    &results[0].1
}

fn error_of(finished: &Finished) -> &str {
    match &finished.outcome {
        Outcome::Failed(f) => &f.error,
        Outcome::Succeeded(out) => panic!("succeeded: {out}"),
    }
}

async fn assert_production_untouched(world: &World) {
    assert_eq!(world.production().await.live().unwrap(), Slot::Blue);
    assert_eq!(
        world.service(Slot::Green).await.1,
        0,
        "pre-prod scaled back"
    );
    assert_eq!(world.service(Slot::Blue).await.1, 2);
}

#[tokio::test]
async fn a_push_deploys_through_approval_and_production_moves_to_green() {
    let local = Local::new().await;
    let results = local.deploy(Person::Approves).await;
    let finished = only(&results);
    assert!(
        matches!(finished.outcome, Outcome::Succeeded(_)),
        "{:?}",
        finished.outcome
    );
    let entered = finished.states_entered();
    for state in [
        "SyncDb",
        "LaunchPreprodWait",
        "MigrateCheck",
        "HealthCheckDone?",
        "Approval",
        "Switch",
        "BakeCheck",
        "Finish",
        "Succeeded",
    ] {
        assert!(
            entered.contains(&state.to_owned()),
            "{state} missing from {entered:?}"
        );
    }
    assert_eq!(local.world.production().await.live().unwrap(), Slot::Green);
    assert_eq!(
        local.world.service(Slot::Blue).await.1,
        0,
        "old slot scaled to zero"
    );
}

/// Issue 22, IAM by execution: every request the functions make in a deployment that
/// succeeds, one an approver rejects, one whose bake alarm rolls it back, and the scheduled
/// teardown and sweep after them, is allowed by its function's role in infra/template.yaml
/// (each run checks its own; this one also says how many and what no request needed).
#[tokio::test]
async fn every_request_the_functions_make_is_allowed_by_their_roles() {
    use bluegreen::steps::registry::{RECONCILE, TEARDOWN};
    let mut local = Local::new().await;
    local.world.ctx.settings.topic_arn = Some(local.world.topic_arn.clone());
    local.world.create_deployment_machine().await;
    let succeeded = local.deploy(Person::Approves).await;
    assert!(matches!(only(&succeeded).outcome, Outcome::Succeeded(_)));
    let rejected = local
        .run(
            local.ctx(),
            push("v3", "e-2", "2026-11-21T11:00:00Z"),
            Person::Rejects,
        )
        .await;
    assert_eq!(error_of(only(&rejected)), "ApprovalRejected");
    local.invoke_scheduled(&TEARDOWN).await;
    local.invoke_scheduled(&RECONCILE).await;
    let alarmed = Local::new().await;
    let rolled_back = alarmed.deploy_with_alarm_at_bake(Person::Approves).await;
    assert_eq!(error_of(only(&rolled_back)), "BakeFailed");

    let mut calls = local.checked.lock().unwrap().clone();
    calls.extend(alarmed.checked.lock().unwrap().iter().cloned());
    let functions: std::collections::BTreeSet<&str> =
        calls.iter().map(|c| c.function.as_str()).collect();
    for function in [
        "PrepareFunction",
        "SyncDbFunction",
        "LaunchPreprodFunction",
        "HealthCheckFunction",
        "MigrateFunction",
        "RequestApprovalFunction",
        "PromoteFunction",
        "SwitchFunction",
        "BakeFunction",
        "FinishFunction",
        "AbortFunction",
        "RollbackFunction",
        "TeardownFunction",
        "ReconcileFunction",
    ] {
        assert!(
            functions.contains(function),
            "{function} made no request: {functions:?}"
        );
    }
    let unused = grants().unused(&calls);
    println!(
        "iam by execution: {} requests by {} functions checked, 0 denied; {} granted actions \
         no request needed:\n  {}",
        calls.len(),
        functions.len(),
        unused.len(),
        unused.join("\n  ")
    );
}

/// Issue 25, a test rule through the definitions: the smoke checks reach pre-prod through the
/// production listener with the deployment's header (and only they do), every request the
/// functions make for the rule is allowed by their roles, and no rule is left after a
/// success or a rejection.
#[tokio::test]
async fn a_test_rule_deployment_runs_through_the_definitions_and_leaves_no_rule() {
    use bluegreen_tests::alb::ListenerFront;
    let local = Local::new().await;
    let world = &local.world;
    let front = ListenerFront::start(&world.ctx, &world.production_listener).await;
    world.use_test_rule(&front.url).await;
    let results = local.deploy(Person::Approves).await;
    let (id, finished) = &results[0];
    assert!(
        matches!(finished.outcome, Outcome::Succeeded(_)),
        "{:?}",
        finished.outcome
    );
    let green = world.tg(Slot::Green).to_owned();
    let checks: Vec<_> = front
        .routed()
        .into_iter()
        .filter(|r| r.preview.as_deref() == Some(id.as_str()))
        .collect();
    assert!(
        !checks.is_empty(),
        "the smoke checks went through the listener"
    );
    assert!(
        checks
            .iter()
            .all(|c| c.preview.as_deref() == Some(id.as_str())
                && c.target_group.as_deref() == Some(green.as_str())),
        "{checks:?}"
    );
    let rules = |world: &World| {
        let world_ctx = world.ctx.clone();
        let listener = world.production_listener.clone();
        async move {
            world_ctx
                .ports
                .load_balancing
                .rules(&listener)
                .await
                .unwrap()
                .into_iter()
                .filter(|r| r.tags.iter().any(|(_, v)| v == bluegreen::test_rule::ROLE))
                .count()
        }
    };
    assert_eq!(rules(world).await, 0, "the rule went with the deployment");
    let rejected = local
        .run(
            local.ctx(),
            push("v3", "e-2", "2026-11-21T11:00:00Z"),
            Person::Rejects,
        )
        .await;
    assert_eq!(error_of(only(&rejected)), "ApprovalRejected");
    assert_eq!(rules(world).await, 0, "nor after an abort");
    assert_eq!(world.production().await.live().unwrap(), Slot::Green);
}

#[tokio::test]
async fn a_failed_health_check_aborts_with_production_untouched() {
    let local = Local::new().await;
    local.world.smoke.answer("health", 503, "down");
    let results = local.deploy(Person::Approves).await;
    let finished = only(&results);
    assert_eq!(error_of(finished), "HealthCheckFailed");
    assert!(finished.states_entered().contains(&"Aborted".to_owned()));
    assert_production_untouched(&local.world).await;
}

#[tokio::test]
async fn a_failed_database_sync_aborts_with_production_untouched() {
    let local = Local::new().await;
    let mut config = local.world.config();
    config.database.strategy = bluegreen::config::DbStrategy::Isolated;
    config.database.source = Some(bluegreen::config::DbSource::RdsInstance {
        identifier: "gone-db".into(),
    });
    local.world.put_config(&config).await;
    let results = local.deploy(Person::Approves).await;
    assert_eq!(error_of(only(&results)), "ResourceNotFound");
    assert_production_untouched(&local.world).await;
}

#[tokio::test]
async fn a_failed_launch_aborts_with_production_untouched() {
    let local = Local::new().await;
    local.simulator.fail_rollouts();
    let results = local.deploy(Person::Approves).await;
    assert_eq!(error_of(only(&results)), "LaunchFailed");
    assert_production_untouched(&local.world).await;
}

/// The production migration (shared, before launch) exits 3: it may have partly applied, so
/// the deployment needs a person and keeps the lock; traffic never moved and pre-prod is back.
#[tokio::test]
async fn a_failed_production_migration_needs_attention_with_traffic_untouched() {
    let local = Local::new().await;
    local.simulator.set_migration_exit(3);
    let results = local.deploy(Person::Approves).await;
    assert_eq!(error_of(only(&results)), "NeedsAttention");
    assert_production_untouched(&local.world).await;
    assert_eq!(
        local.world.lock_holder().await.as_deref(),
        Some(results[0].0.as_str()),
        "the service stays locked"
    );
}

#[tokio::test]
async fn a_rejected_approval_aborts_with_production_untouched() {
    let local = Local::new().await;
    let results = local.deploy(Person::Rejects).await;
    assert_eq!(error_of(only(&results)), "ApprovalRejected");
    assert_production_untouched(&local.world).await;
}

#[tokio::test]
async fn an_approval_nobody_gives_times_out_and_aborts() {
    let local = Local::new().await;
    let mut config = local.world.config();
    config.approval.timeout_seconds = 600;
    local.world.put_config(&config).await;
    let results = local.deploy(Person::IsAway).await;
    assert_eq!(error_of(only(&results)), "ApprovalTimedOut");
    assert_production_untouched(&local.world).await;
}

#[tokio::test]
async fn an_alarm_already_firing_before_the_switch_aborts_with_production_untouched() {
    let local = Local::new().await;
    local
        .world
        .raise_alarm("shop-5xx", "errors before the switch")
        .await;
    let results = local.deploy(Person::Approves).await;
    let finished = only(&results);
    assert_eq!(error_of(finished), "AlarmFiring");
    let entered = finished.states_entered();
    assert!(entered.contains(&"Aborted".to_owned()), "{entered:?}");
    assert!(!entered.contains(&"Switch".to_owned()), "{entered:?}");
    assert_production_untouched(&local.world).await;
    let deployment = Records::new(&local.world.ctx)
        .for_service("shop", usize::MAX)
        .await
        .unwrap()
        .remove(0);
    assert_eq!(deployment.status, Status::Aborted);
    assert!(
        deployment
            .failure
            .as_deref()
            .unwrap_or_default()
            .contains("shop-5xx"),
        "{:?}",
        deployment.failure
    );
    assert!(deployment.switched_at.is_none());
}

#[tokio::test]
async fn a_bake_alarm_rolls_back_with_traffic_restored() {
    let local = Local::new().await;
    let results = local.deploy_with_alarm_at_bake(Person::Approves).await;
    let finished = only(&results);
    assert_eq!(error_of(finished), "BakeFailed");
    assert!(finished.states_entered().contains(&"RolledBack".to_owned()));
    assert_eq!(local.world.production().await.live().unwrap(), Slot::Blue);
    assert_eq!(
        local.world.service(Slot::Blue).await.1,
        2,
        "the old slot kept serving"
    );
}

#[tokio::test]
async fn a_push_during_a_deployment_is_queued_then_deployed_after_the_first() {
    let local = Local::new().await;
    // The second push arrives while the first deployment holds the lock.
    let first =
        bluegreen::steps::prepare::run(&local.ctx(), &push("v2", "e-1", "2026-11-21T10:00:00Z"))
            .await
            .unwrap();
    let first_id = match first {
        bluegreen::steps::prepare::Prepared::Deployments { deployments } => {
            deployments[0].deployment_id.clone()
        }
        other => panic!("{other:?}"),
    };
    let queued = local
        .run(
            local.ctx(),
            push("v3", "e-2", "2026-11-21T10:01:00Z"),
            Person::Approves,
        )
        .await;
    assert!(queued.is_empty(), "the second push is queued, not started");
    // The first deployment runs; when it finishes it hands the lock to the queued one.
    let tasks = Arc::new(LocalTasks::new(
        local.ctx(),
        Arc::new(local.clock.clone()),
        5.0,
    ));
    let decider = spawn_person(local.ctx(), Person::Approves);
    let deployment = Runner::new(
        Definition::parse(DEPLOYMENT_ASL).unwrap(),
        "arn:local:deployment",
        tasks.clone(),
        Arc::new(local.clock.clone()),
    );
    let first_run = deployment
        .run(&first_id, serde_json::json!({"deployment_id": first_id}))
        .await;
    assert!(
        matches!(first_run.outcome, Outcome::Succeeded(_)),
        "{:?}",
        first_run.outcome
    );
    let next = tasks.take_started();
    assert_eq!(next.len(), 1, "the queued deployment was started");
    let second_run = deployment.run(&next[0].name, next[0].input.clone()).await;
    decider.abort();
    assert!(
        matches!(second_run.outcome, Outcome::Succeeded(_)),
        "{:?}",
        second_run.outcome
    );
    assert_eq!(
        local.world.production().await.live().unwrap(),
        Slot::Blue,
        "the second deployment went back to blue"
    );
}

#[tokio::test]
async fn a_throttled_call_is_retried_by_the_definition_and_the_deployment_succeeds() {
    let local = Local::new().await;
    let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = calls.clone();
    let throttle = mock!(aws_sdk_ecs::Client::describe_services)
        .match_requests(move |_| counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0)
        .then_error(|| DescribeServicesError::generic(aws_error("ThrottlingException")));
    let results = local.deploy_with_ecs(&throttle).await;
    let finished = only(&results);
    assert!(
        matches!(finished.outcome, Outcome::Succeeded(_)),
        "{:?}",
        finished.outcome
    );
    let retried = finished
        .history
        .iter()
        .any(|e| matches!(&e.kind, EventKind::Retrying { state, .. } if state == "Migrate"));
    assert!(retried, "the definition's Retry handled the throttle");
}

#[tokio::test]
async fn an_abort_that_fails_for_good_ends_needing_attention_with_the_lock_kept_and_marked() {
    let local = Local::new().await;
    local.world.smoke.answer("health", 503, "down");
    // Abort scales pre-prod back to 0; that call answers AccessDenied (a broken IAM policy,
    // say). aws-smithy-mocks replaces the answer after the attempt, so moto still scales it:
    // what is under test is the ending meeting a permanent error, not pre-prod's count.
    let denied = mock!(aws_sdk_ecs::Client::update_service)
        .match_requests(|r| r.desired_count() == Some(0))
        .then_error(|| {
            aws_sdk_ecs::operation::update_service::UpdateServiceError::generic(aws_error(
                "AccessDeniedException",
            ))
        });
    let results = local.deploy_with_ecs(&denied).await;
    let (id, finished) = &results[0];
    assert_eq!(error_of(finished), "NeedsAttention");
    let states = finished.states_entered();
    assert!(states.contains(&"EndingFailed".to_owned()), "{states:?}");
    // What production sees: still blue; the lock kept for a person, marked with the cause.
    assert_eq!(local.world.production().await.live().unwrap(), Slot::Blue);
    let recorded = Records::new(&local.world.ctx).get(id).await.unwrap();
    assert_eq!(recorded.status, Status::NeedsAttention);
    assert!(
        recorded
            .failure
            .as_deref()
            .unwrap_or_default()
            .contains("HealthCheckFailed"),
        "the original cause stays the failure: {:?}",
        recorded.failure
    );
    let lock = local.world.lock("shop").await.expect("kept");
    assert_eq!(&lock.holder, id);
    assert!(
        lock.needs_attention
            .as_deref()
            .unwrap_or_default()
            .contains("AccessDenied"),
        "{lock:?}"
    );
}
