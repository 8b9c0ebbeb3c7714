//! Step Functions, played: each execution is the committed definition run by the local
//! interpreter on virtual time, its tasks invoking the real steps as Lambda would — each
//! invocation on its own (a stopped execution does not stop it), within the function's
//! timeout (a crashed invocation is a timeout). Approval waits end by a task token, as in
//! Step Functions. When an execution ends, its status-change event goes to the reconciler,
//! sometimes late, twice, or not at all.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bluegreen::steps::approval::{self, RequestInput, Requested};
use bluegreen::steps::reconcile::{self, Request};
use bluegreen::steps::registry;
use bluegreen::{Context, StepError};
use bluegreen_statemachine::runner::{BoxFuture, Failure, TaskCall, TaskHandler};
use bluegreen_statemachine::{DEPLOYMENT_ASL, Definition, Outcome, Runner};
use serde_json::{Value, json};

use crate::memory::{MemoryAws, Starter};

use super::clock::{SimClock, stamp};
use super::rng::Rng;

/// How long an invocation outside the state machine (a reconciler run) may take: the stack's
/// default Lambda timeout. A task of an execution has its step's own timeout.
const LAMBDA_TIMEOUT: Duration = Duration::from_secs(60);
/// How often an approval wait looks at its token.
const TOKEN_POLL: Duration = Duration::from_secs(1);
/// How often a wait for an ECS event looks at its token (Step Functions goes on at once; a
/// tenth of a second is the simulator's lag).
const WAKE_POLL: Duration = Duration::from_millis(100);

tokio::task_local! {
    /// Who is making the AWS calls of the current invocation (`state@execution`, `abort`,
    /// `sweep`, …): what `--calls` prints next to each call that changed AWS.
    pub static ACTOR: String;
}

/// The current invocation's [`ACTOR`], or `-` outside one.
pub fn actor() -> String {
    ACTOR.try_with(Clone::clone).unwrap_or_else(|_| "-".into())
}

/// Runs the executions the in-memory Step Functions starts.
pub struct SimExecutions {
    inner: Arc<Inner>,
}

struct Inner {
    ctx: Context,
    aws: MemoryAws,
    rng: Rng,
    trace: Arc<Mutex<Vec<String>>>,
    running: Mutex<BTreeMap<String, tokio::task::AbortHandle>>,
    event_trouble: bool,
    /// ECS events' delivery draws from a generator of its own: a run's call latencies and
    /// retries do not shift with the events a mode delivers.
    event_rng: Rng,
    tokens: Mutex<u64>,
    ledger: Option<Arc<Ledger>>,
}

/// What a run's executions cost, for the lead-time benchmark ([`super::lead_time`]): each
/// Lambda invocation of a step and the states the deployment executions entered.
#[derive(Debug, Default)]
pub struct Ledger {
    /// Added before each Lambda task: Step Functions' dispatch and Lambda's invoke, which the
    /// interpreter otherwise does in no time.
    pub invoke_overhead: Duration,
    /// Every Lambda invocation of a step, in order.
    pub invocations: Mutex<Vec<Invocation>>,
    /// States entered by the deployment executions (Step Functions bills each).
    pub transitions: Mutex<u64>,
}

/// One Lambda invocation of a step.
#[derive(Debug, Clone, PartialEq)]
pub struct Invocation {
    /// The Task state that invoked it (`MigrateCheck`, `Migrate`, …).
    pub state: String,
    /// Virtual seconds since the start when it began (after the dispatch overhead).
    pub began: f64,
    /// When it ended.
    pub ended: f64,
    /// Whether it answered `{"status": "done"}` (a check that saw its work finished).
    pub done: bool,
}

impl std::fmt::Debug for SimExecutions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SimExecutions")
    }
}

impl SimExecutions {
    /// Executions over `ctx` and `aws`.
    pub fn new(
        ctx: Context,
        aws: MemoryAws,
        rng: Rng,
        trace: Arc<Mutex<Vec<String>>>,
        event_trouble: bool,
    ) -> Self {
        let event_rng = Rng::new(rng.below(u64::MAX) ^ 0xec5_e7e7);
        SimExecutions {
            inner: Arc::new(Inner {
                ctx,
                aws,
                rng,
                trace,
                running: Mutex::new(BTreeMap::new()),
                event_trouble,
                event_rng,
                tokens: Mutex::new(0),
                ledger: None,
            }),
        }
    }

    /// These executions, writing what each invocation and execution costs to `ledger`.
    pub fn with_ledger(mut self, ledger: Arc<Ledger>) -> Self {
        Arc::get_mut(&mut self.inner)
            .expect("executions not shared yet")
            .ledger = Some(ledger);
        self
    }

    /// The task handler executions run their tasks with.
    pub fn tasks(&self) -> Arc<dyn TaskHandler> {
        Arc::new(SimTasks(self.inner.clone()))
    }

    /// The bus AWS's events go to: each is delivered to the wake function as EventBridge
    /// would ([`Inner::deliver_ecs_event`]).
    pub fn bus(&self) -> super::cloud::Bus {
        let inner = self.inner.clone();
        Arc::new(move |event| inner.deliver_ecs_event(event))
    }

    /// FULL-jitter factors from the run's generator.
    pub fn jitter(&self) -> bluegreen_statemachine::runner::Jitter {
        self.inner.rng.jitter()
    }
}

impl Inner {
    fn trace(&self, line: String) {
        self.trace
            .lock()
            .expect("trace")
            .push(format!("{} {line}", stamp()));
    }

    /// Delivers execution `name`'s status change to the reconciler, as EventBridge would:
    /// usually within seconds, sometimes late, twice, or never.
    fn deliver_status_change(self: &Arc<Self>, name: &str) {
        for _ in 0..copies(self.event_trouble, &self.rng) {
            let late = if self.event_trouble && self.rng.chance(100) {
                60 + self.rng.below(1800)
            } else {
                1 + self.rng.below(10)
            };
            let inner = self.clone();
            let name = name.to_owned();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs(late)).await;
                let actor = format!("reconcile@{name}");
                let answer = invocation(&inner.ctx, actor, move |ctx| async move {
                    reconcile::run(&ctx, &Request::Deployment(name))
                        .await
                        .map(|_| ())
                })
                .await;
                if let Err(e) = answer {
                    inner.trace(format!("reconcile after a status change: {e}"));
                }
            });
        }
    }
}

impl Inner {
    /// Delivers an ECS event to the wake function, as EventBridge and Lambda would: usually
    /// within 0.2–1.5 s, with event trouble sometimes late (minutes), twice, or never (so
    /// copies also arrive out of order); a failed invocation is retried by Lambda after one
    /// and three minutes.
    fn deliver_ecs_event(self: &Arc<Self>, event: Value) {
        for _ in 0..copies(self.event_trouble, &self.event_rng) {
            let late = if self.event_trouble && self.event_rng.chance(100) {
                Duration::from_secs(60 + self.event_rng.below(1800))
            } else {
                Duration::from_millis(200 + self.event_rng.below(1300))
            };
            let inner = self.clone();
            let event = event.clone();
            tokio::spawn(async move {
                tokio::time::sleep(late).await;
                for retry in [0, 60, 120] {
                    tokio::time::sleep(Duration::from_secs(retry)).await;
                    if inner.wake(event.clone()).await.is_ok() {
                        return;
                    }
                }
            });
        }
    }

    /// One invocation of the wake function on `event` (in the ledger, as the steps' are).
    async fn wake(&self, event: Value) -> Result<(), String> {
        let began = super::clock::elapsed().as_secs_f64();
        let answer = invocation(&self.ctx, "wake".to_owned(), move |ctx| async move {
            registry::invoke(&ctx, &registry::WAKE, event)
                .await
                .map(|_| ())
        })
        .await;
        if let Some(ledger) = &self.ledger {
            ledger.invocations.lock().expect("ledger").push(Invocation {
                state: "Wake".into(),
                began,
                ended: super::clock::elapsed().as_secs_f64(),
                done: false,
            });
        }
        if let Err(e) = &answer {
            self.trace(format!("wake: {e}"));
        }
        answer
    }
}

/// How many copies of an event EventBridge delivers: one, and with event trouble 5 % none and
/// 5 % two.
fn copies(trouble: bool, rng: &Rng) -> u32 {
    match (trouble, rng.below(100)) {
        (true, 0..=4) => 0,
        (true, 5..=9) => 2,
        _ => 1,
    }
}

impl Starter for SimExecutions {
    fn started(&self, _machine: &str, name: &str, input: &str) {
        let inner = self.inner.clone();
        let key = name.to_owned();
        let name = name.to_owned();
        let input: Value = serde_json::from_str(input).unwrap_or(Value::Null);
        let handle = tokio::spawn(async move {
            let definition = Definition::parse(DEPLOYMENT_ASL).expect("the committed definition");
            let runner = Runner::new(
                definition,
                "arn:sim:stateMachine:bluegreen-deployment",
                Arc::new(SimTasks(inner.clone())),
                Arc::new(SimClock),
            )
            .with_jitter(inner.rng.jitter());
            let finished = runner.run(&name, input).await;
            if let Some(ledger) = &inner.ledger {
                *ledger.transitions.lock().expect("ledger") +=
                    finished.states_entered().len() as u64;
            }
            let status = match &finished.outcome {
                Outcome::Succeeded(_) => "SUCCEEDED".to_owned(),
                Outcome::Failed(f) if f.error == "States.Timeout" => "TIMED_OUT".to_owned(),
                Outcome::Failed(_) => "FAILED".to_owned(),
            };
            inner.trace(format!("execution {name} ended {status}"));
            inner.aws.with(|s| {
                if let Some(e) = s.workflow.executions.get_mut(&name)
                    && e.status == "RUNNING"
                {
                    e.status = status;
                }
            });
            inner.running.lock().expect("running").remove(&name);
            inner.deliver_status_change(&name);
        });
        self.inner
            .running
            .lock()
            .expect("running")
            .insert(key, handle.abort_handle());
    }

    fn stopped(&self, name: &str) {
        if let Some(handle) = self.inner.running.lock().expect("running").remove(name) {
            handle.abort();
        }
        self.inner.trace(format!("execution {name} stopped"));
        self.inner.deliver_status_change(name);
    }
}

/// Runs `step` as one Lambda invocation: on its own task (it outlives a stopped execution),
/// at most [`LAMBDA_TIMEOUT`] (a crashed invocation never answers: a timeout). `actor` names
/// it in the call trace.
pub async fn invocation<F, Fut, T>(ctx: &Context, actor: String, step: F) -> Result<T, String>
where
    F: FnOnce(Context) -> Fut,
    Fut: std::future::Future<Output = Result<T, StepError>> + Send + 'static,
    T: Send + 'static,
{
    let handle = tokio::spawn(ACTOR.scope(actor, step(ctx.clone())));
    // Lambda ends an invocation at its timeout: it acts no more.
    let kill = handle.abort_handle();
    match tokio::time::timeout(LAMBDA_TIMEOUT, handle).await {
        Ok(Ok(answer)) => answer.map_err(|e| format!("{}: {e}", e.name())),
        Ok(Err(joined)) => Err(format!("Lambda.Unknown: {joined}")),
        Err(_) => {
            kill.abort();
            Err("Sandbox.Timedout: Task timed out".into())
        }
    }
}

/// The tasks of the simulated executions.
struct SimTasks(Arc<Inner>);

impl SimTasks {
    /// A Lambda task: the step through the registry's dispatch, as the Lambda binary runs it.
    async fn lambda(&self, actor: &str, resource: &str, input: Value) -> Result<Value, Failure> {
        let Some(ledger) = self.0.ledger.clone() else {
            return self.lambda_unrecorded(actor, resource, input).await;
        };
        tokio::time::sleep(ledger.invoke_overhead).await;
        let began = super::clock::elapsed().as_secs_f64();
        let answer = self.lambda_unrecorded(actor, resource, input).await;
        ledger.invocations.lock().expect("ledger").push(Invocation {
            state: actor.split('@').next().unwrap_or(actor).to_owned(),
            began,
            ended: super::clock::elapsed().as_secs_f64(),
            done: answer
                .as_ref()
                .is_ok_and(|output| output["status"] == "done"),
        });
        answer
    }

    async fn lambda_unrecorded(
        &self,
        actor: &str,
        resource: &str,
        input: Value,
    ) -> Result<Value, Failure> {
        let step = registry::by_placeholder(resource).ok_or_else(|| {
            Failure::new("States.TaskFailed", format!("unknown resource {resource}"))
        })?;
        let actor = actor.to_owned();
        let ctx = self.0.ctx.clone();
        let handle =
            tokio::spawn(ACTOR.scope(
                actor,
                async move { registry::invoke(&ctx, step, input).await },
            ));
        let timeout = Duration::from_secs(step.timeout_seconds);
        // Lambda ends an invocation at its timeout: it acts no more.
        let kill = handle.abort_handle();
        match tokio::time::timeout(timeout, handle).await {
            Ok(Ok(Ok(output))) => Ok(output),
            Ok(Ok(Err(e))) => Err(Failure::new(e.name(), e.to_string())),
            Ok(Err(joined)) => Err(Failure::new("Lambda.Unknown", joined.to_string())),
            Err(_) => {
                kill.abort();
                Err(Failure::new(
                    "Sandbox.Timedout",
                    format!("Task timed out after {}.00 seconds", step.timeout_seconds),
                ))
            }
        }
    }

    /// `.waitForTaskToken`: the request-approval step gets a fresh token, then the task waits
    /// until Step Functions is sent an answer for it (or the state's timeout ends the wait).
    async fn approval(&self, input: Value) -> Result<Value, Failure> {
        let request: RequestInput =
            serde_json::from_value(input.get("Payload").cloned().unwrap_or(Value::Null))
                .map_err(|e| Failure::new("EventMalformed", e.to_string()))?;
        let (token, guard) = self.token();
        let ctx = self.0.ctx.clone();
        let with_token = RequestInput {
            deployment_id: request.deployment_id.clone(),
            task_token: token.clone(),
        };
        let handle = tokio::spawn(async move { approval::request(&ctx, &with_token).await });
        match tokio::time::timeout(LAMBDA_TIMEOUT, handle).await {
            Ok(Ok(Ok(Requested::Automatic))) => return Ok(json!({"decision": "automatic"})),
            Ok(Ok(Ok(_))) => {}
            Ok(Ok(Err(e))) => return Err(Failure::new(e.name(), e.to_string())),
            Ok(Err(joined)) => return Err(Failure::new("Lambda.Unknown", joined.to_string())),
            Err(_) => return Err(Failure::new("Sandbox.Timedout", "Task timed out")),
        }
        self.answered(&token, guard, TOKEN_POLL).await
    }

    /// A fresh task token Step Functions waits on, and the guard that ends the wait.
    fn token(&self) -> (String, TokenGuard) {
        let token = {
            let mut n = self.0.tokens.lock().expect("tokens");
            *n += 1;
            format!("sim-token-{n}")
        };
        self.0
            .aws
            .with(|s| s.workflow.tokens.insert(token.clone(), None));
        let guard = TokenGuard {
            aws: self.0.aws.clone(),
            token: token.clone(),
        };
        (token, guard)
    }

    /// Waits until `token` is answered (looked at every `poll`); the state's timeout ends the
    /// wait by dropping this future, and with it `guard`.
    async fn answered(
        &self,
        token: &str,
        guard: TokenGuard,
        poll: Duration,
    ) -> Result<Value, Failure> {
        loop {
            let answer = self
                .0
                .aws
                .with(|s| s.workflow.tokens.get(token).cloned().flatten());
            match answer {
                Some(Ok(output)) => {
                    drop(guard);
                    return Ok(serde_json::from_str(&output).unwrap_or(Value::Null));
                }
                Some(Err((error, cause))) => return Err(Failure::new(error, cause)),
                None => tokio::time::sleep(poll).await,
            }
        }
    }

    /// `.waitForTaskToken` of a step's `await` action (see `bluegreen::wakes`): the step's
    /// function stores a fresh token, then the task waits for the wake function (or the
    /// state's timeout). Any other is an approval wait.
    async fn wait_for_token(&self, call: TaskCall) -> Result<Value, Failure> {
        let mut payload = call.input.get("Payload").cloned().unwrap_or(Value::Null);
        if payload["action"] != "await" {
            return self.approval(call.input).await;
        }
        let (token, guard) = self.token();
        payload["task_token"] = json!(token);
        let function = call.input["FunctionName"].as_str().unwrap_or_default();
        let actor = format!("{}@{}", call.state, call.execution_id);
        self.lambda(&actor, function, payload).await?;
        self.answered(&token, guard, WAKE_POLL).await
    }

    /// `states:startExecution`: through the in-memory Step Functions (which runs it).
    async fn start_execution(&self, input: Value) -> Result<Value, Failure> {
        let machine = input["StateMachineArn"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let name = input["Name"].as_str().unwrap_or_default().to_owned();
        let execution_input = input["Input"].to_string();
        self.0
            .ctx
            .ports
            .workflow
            .start(&machine, &name, &execution_input)
            .await
            .map_err(|e| Failure::new(format!("StepFunctions.{}", e.name()), e.to_string()))?;
        Ok(json!({"ExecutionArn": format!("{machine}:{name}")}))
    }
}

/// Whoever stops waiting for a token (timed out, stopped, answered) makes it answer nothing
/// any more: Step Functions refuses a late `SendTask*` with TaskTimedOut.
struct TokenGuard {
    aws: MemoryAws,
    token: String,
}

impl Drop for TokenGuard {
    fn drop(&mut self) {
        self.aws.with(|s| {
            if let Some(slot @ None) = s.workflow.tokens.get_mut(&self.token) {
                *slot = Some(Err((
                    "States.Timeout".into(),
                    "nobody waits any more".into(),
                )));
            }
        });
    }
}

impl TaskHandler for SimTasks {
    fn invoke(&self, call: TaskCall) -> BoxFuture<'_, Result<Value, Failure>> {
        Box::pin(async move {
            match call.resource.as_str() {
                bluegreen_statemachine::validate::WAIT_FOR_TOKEN => self.wait_for_token(call).await,
                bluegreen_statemachine::validate::START_EXECUTION => {
                    self.start_execution(call.input).await
                }
                resource => {
                    let actor = format!("{}@{}", call.state, call.execution_id);
                    self.lambda(&actor, resource, call.input).await
                }
            }
        })
    }
}
