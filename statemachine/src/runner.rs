//! Executes a [`Definition`]: the state transitions, input/output processing, Retry and Catch,
//! Map iterations, and an execution history like Step Functions' own.
//!
//! What a Task does is up to a [`TaskHandler`]; how time passes is up to a [`Clock`], so a
//! local run can shorten waits (time scale) while every state sees consistent timestamps.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::{Value, json};

use crate::definition::{
    Catcher, Choice, ChoiceRule, Definition, Fail, Io, MapState, Pass, Retrier, State, Task,
    Transition, Wait,
};
use crate::path::{self, PathError};

/// A boxed future, for the object-safe traits below.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The error of an execution stopped from outside (as Step Functions' StopExecution, which
/// bluegreen calls with this name): see [`Failure::ends_execution`].
pub const STOPPED: &str = "StoppedByOperator";

/// An error raised by a task or by the runner, in Step Functions' terms.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Failure {
    /// Error name (`MigrationFailed`, `States.Timeout`, …).
    #[serde(rename = "Error")]
    pub error: String,
    /// Cause text.
    #[serde(rename = "Cause")]
    pub cause: String,
}

impl Failure {
    /// A failure with a name and a cause.
    pub fn new(error: impl Into<String>, cause: impl Into<String>) -> Self {
        Failure {
            error: error.into(),
            cause: cause.into(),
        }
    }

    /// A failure that ends the execution, neither retried nor caught: `States.Runtime`, and
    /// [`STOPPED`] (the local runner's StopExecution: the deployment was aborted or ended
    /// from elsewhere, and its ending must not run a second time here).
    pub fn ends_execution(&self) -> bool {
        self.error == "States.Runtime" || self.error == STOPPED
    }

    fn runtime(err: PathError, state: &str) -> Self {
        Failure::new("States.Runtime", format!("state {state:?}: {err}"))
    }

    fn as_json(&self) -> Value {
        json!({"Error": self.error, "Cause": self.cause})
    }
}

/// One task invocation as the runner hands it to the [`TaskHandler`].
#[derive(Debug, Clone, PartialEq)]
pub struct TaskCall {
    /// The state's name.
    pub state: String,
    /// The state's `Resource`.
    pub resource: String,
    /// The effective input (after `InputPath` and `Parameters`).
    pub input: Value,
    /// The task token, for `.waitForTaskToken` resources.
    pub task_token: Option<String>,
    /// The execution's id.
    pub execution_id: String,
}

/// Carries out Task states.
pub trait TaskHandler: Send + Sync {
    /// Runs one task; an `Err` is matched against the state's Retry and Catch.
    fn invoke(&self, call: TaskCall) -> BoxFuture<'_, Result<Value, Failure>>;
}

/// How time passes for an execution.
pub trait Clock: Send + Sync {
    /// The current (possibly virtual) time.
    fn now(&self) -> DateTime<Utc>;
    /// Lets `seconds` of (possibly virtual) time pass (a Wait state, a retry delay).
    fn sleep(&self, seconds: f64) -> BoxFuture<'_, ()>;
    /// Completes once `seconds` of (possibly virtual) time have passed, however they pass:
    /// used for timeouts racing other work.
    fn timer(&self, seconds: f64) -> BoxFuture<'_, ()>;
    /// One cycle of a poll loop: `spent` is the real time the caller just spent working (a
    /// query), then the loop waits `seconds`. A scaled clock counts the work at its pace, so
    /// the loop's time passes at exactly its scale however long the work takes; by default
    /// this is [`Clock::sleep`].
    fn pace(&self, seconds: f64, spent: Duration) -> BoxFuture<'_, ()> {
        let _ = spent;
        self.sleep(seconds)
    }
}

/// Real time.
pub struct RealClock;

impl Clock for RealClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
    fn sleep(&self, seconds: f64) -> BoxFuture<'_, ()> {
        Box::pin(tokio::time::sleep(Duration::from_secs_f64(
            seconds.max(0.0),
        )))
    }
    fn timer(&self, seconds: f64) -> BoxFuture<'_, ()> {
        self.sleep(seconds)
    }
}

/// Virtual time that runs `scale` times as fast as real time: a 60 s Wait at scale 0.01 takes
/// 0.6 s, and [`Clock::now`] moves on by the full 60 s. Share it with the steps' clock so both
/// agree on deadlines.
#[derive(Clone)]
pub struct ScaledClock {
    scale: f64,
    offset: Arc<Mutex<chrono::Duration>>,
    skipped: Arc<tokio::sync::watch::Sender<()>>,
}

impl ScaledClock {
    /// A clock where waits take `scale` of their real duration (0 = no real waiting).
    pub fn new(scale: f64) -> Self {
        ScaledClock {
            scale: scale.clamp(0.0, 1.0),
            offset: Arc::default(),
            skipped: Arc::new(tokio::sync::watch::channel(()).0),
        }
    }

    /// The current virtual time, for sharing with the steps' clock.
    pub fn shared_now(&self) -> impl Fn() -> DateTime<Utc> + Send + Sync + 'static {
        let offset = self.offset.clone();
        move || Utc::now() + *offset.lock().expect("clock lock")
    }
}

impl Clock for ScaledClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now() + *self.offset.lock().expect("clock lock")
    }
    fn sleep(&self, seconds: f64) -> BoxFuture<'_, ()> {
        let real = seconds.max(0.0) * self.scale;
        let skipped = seconds.max(0.0) - real;
        Box::pin(async move {
            tokio::time::sleep(Duration::from_secs_f64(real)).await;
            *self.offset.lock().expect("clock lock") +=
                chrono::Duration::milliseconds((skipped * 1000.0) as i64);
            self.skipped.send_replace(());
        })
    }
    fn pace(&self, seconds: f64, spent: Duration) -> BoxFuture<'_, ()> {
        let (real, skipped) = paced(seconds, spent.as_secs_f64(), self.scale);
        Box::pin(async move {
            tokio::time::sleep(Duration::from_secs_f64(real)).await;
            *self.offset.lock().expect("clock lock") +=
                chrono::Duration::milliseconds((skipped * 1000.0) as i64);
            self.skipped.send_replace(());
        })
    }
    fn timer(&self, seconds: f64) -> BoxFuture<'_, ()> {
        let deadline =
            self.now() + chrono::Duration::milliseconds((seconds.max(0.0) * 1000.0) as i64);
        Box::pin(async move {
            let mut skips = self.skipped.subscribe();
            loop {
                let remaining = (deadline - self.now()).num_milliseconds();
                if remaining <= 0 {
                    return;
                }
                // Virtual time moves with real time and jumps when a wait is skipped.
                tokio::select! {
                    biased;
                    () = tokio::time::sleep(Duration::from_millis(remaining as u64)) => {}
                    changed = skips.changed() => if changed.is_err() { return; },
                }
            }
        })
    }
}

/// One poll cycle on a clock of `scale`: after `spent` real seconds of work (which the clock
/// has already counted 1:1), how long to sleep for real and how much virtual time to skip, so
/// that the cycle takes `seconds * scale` of real time for `seconds` of virtual time — or, when
/// the work alone took longer, so that its real time counts at the clock's pace (`spent /
/// scale`). Either way virtual time passes at exactly `1 / scale` of real time. (A plain
/// [`Clock::sleep`] counts the work 1:1: a 1,500 s approval at 0.01 took 37–48 s, not 15.)
fn paced(seconds: f64, spent: f64, scale: f64) -> (f64, f64) {
    let (seconds, spent) = (seconds.max(0.0), spent.max(0.0));
    if scale <= 0.0 {
        return (0.0, seconds); // no real waiting at all
    }
    let target = seconds * scale;
    if spent <= target {
        let real = target - spent;
        // Virtual time over the cycle: `spent` already, `real` while sleeping, the rest
        // skipped — `seconds` in all.
        (real, seconds - spent - real)
    } else {
        (0.0, spent / scale - spent)
    }
}

/// One entry of the execution history.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HistoryEvent {
    /// When (by the execution's clock).
    pub at: DateTime<Utc>,
    /// What happened.
    #[serde(flatten)]
    pub kind: EventKind,
}

/// The kinds of history events.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type")]
pub enum EventKind {
    /// The execution began.
    ExecutionStarted {
        /// Its input.
        input: Value,
    },
    /// A state was entered.
    StateEntered {
        /// The state.
        state: String,
    },
    /// A state was left.
    StateExited {
        /// The state.
        state: String,
    },
    /// A task was started.
    TaskScheduled {
        /// The state.
        state: String,
        /// Its resource.
        resource: String,
    },
    /// A task returned.
    TaskSucceeded {
        /// The state.
        state: String,
    },
    /// A task failed.
    TaskFailed {
        /// The state.
        state: String,
        /// The error.
        error: String,
        /// The cause.
        cause: String,
    },
    /// A failed state is retried.
    Retrying {
        /// The state.
        state: String,
        /// Which retry (1 = first).
        attempt: u32,
        /// The delay before it.
        delay_seconds: f64,
    },
    /// An error was caught.
    Caught {
        /// The state.
        state: String,
        /// The error.
        error: String,
        /// Where the execution continues.
        next: String,
    },
    /// A Wait state began waiting.
    Waiting {
        /// The state.
        state: String,
        /// For how long.
        seconds: f64,
    },
    /// The execution succeeded.
    ExecutionSucceeded {
        /// Its output.
        output: Value,
    },
    /// The execution failed.
    ExecutionFailed {
        /// The error.
        error: String,
        /// The cause.
        cause: String,
    },
}

/// How an execution ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Reached a Succeed state or an End.
    Succeeded(Value),
    /// Reached a Fail state, or an error nothing caught.
    Failed(Failure),
}

/// Receives history events as they happen (the CLI's live timeline).
pub type Observer = Arc<dyn Fn(&HistoryEvent) + Send + Sync>;

/// A number in `0..1` for each FULL-jitter retry delay (a seeded simulation passes its own).
pub type Jitter = Arc<dyn Fn() -> f64 + Send + Sync>;

/// Runs executions of one definition.
pub struct Runner {
    definition: Definition,
    state_machine_id: String,
    tasks: Arc<dyn TaskHandler>,
    clock: Arc<dyn Clock>,
    observer: Option<Observer>,
    jitter: Jitter,
}

struct Execution {
    id: String,
    input: Value,
    started: DateTime<Utc>,
    history: Mutex<Vec<HistoryEvent>>,
}

/// The finished execution: its outcome and history.
#[derive(Debug, Clone)]
pub struct Finished {
    /// How it ended.
    pub outcome: Outcome,
    /// Everything that happened, in order.
    pub history: Vec<HistoryEvent>,
}

impl Finished {
    /// The names of the states entered, in order (for comparing runs).
    pub fn states_entered(&self) -> Vec<String> {
        self.history
            .iter()
            .filter_map(|e| match &e.kind {
                EventKind::StateEntered { state } => Some(state.clone()),
                _ => None,
            })
            .collect()
    }
}

enum Step {
    Next(String, Value),
    End(Value),
}

impl Runner {
    /// A runner for `definition`; `state_machine_id` is `$$.StateMachine.Id`.
    pub fn new(
        definition: Definition,
        state_machine_id: &str,
        tasks: Arc<dyn TaskHandler>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Runner {
            definition,
            state_machine_id: state_machine_id.to_owned(),
            tasks,
            clock,
            observer: None,
            jitter: Arc::new(fastrand::f64),
        }
    }

    /// Draws FULL-jitter factors from `jitter` instead of the process's own generator.
    pub fn with_jitter(mut self, jitter: Jitter) -> Self {
        self.jitter = jitter;
        self
    }

    /// Calls `observer` for every history event as it happens.
    pub fn with_observer(mut self, observer: Observer) -> Self {
        self.observer = Some(observer);
        self
    }

    /// Runs one execution to its end.
    pub async fn run(&self, execution_id: &str, input: Value) -> Finished {
        let execution = Execution {
            id: execution_id.to_owned(),
            input: input.clone(),
            started: self.clock.now(),
            history: Mutex::new(Vec::new()),
        };
        self.record(
            &execution,
            EventKind::ExecutionStarted {
                input: input.clone(),
            },
        );
        let body = self.run_machine(&execution, &self.definition, input, None);
        let outcome = match self.definition.timeout_seconds {
            Some(limit) => {
                // Biased (polled in order): a seeded simulation replays the same run.
                tokio::select! {
                    biased;
                    outcome = body => outcome,
                    () = self.clock.timer(limit as f64) => Err(Failure::new("States.Timeout", format!("execution exceeded {limit} s"))),
                }
            }
            None => body.await,
        };
        let outcome = match outcome {
            Ok(output) => {
                self.record(
                    &execution,
                    EventKind::ExecutionSucceeded {
                        output: output.clone(),
                    },
                );
                Outcome::Succeeded(output)
            }
            Err(failure) => {
                self.record(
                    &execution,
                    EventKind::ExecutionFailed {
                        error: failure.error.clone(),
                        cause: failure.cause.clone(),
                    },
                );
                Outcome::Failed(failure)
            }
        };
        Finished {
            outcome,
            history: execution.history.into_inner().expect("history lock"),
        }
    }

    fn record(&self, execution: &Execution, kind: EventKind) {
        let event = HistoryEvent {
            at: self.clock.now(),
            kind,
        };
        if let Some(observer) = &self.observer {
            observer(&event);
        }
        execution.history.lock().expect("history lock").push(event);
    }

    fn run_machine<'a>(
        &'a self,
        execution: &'a Execution,
        machine: &'a Definition,
        input: Value,
        map_item: Option<(usize, Value)>,
    ) -> BoxFuture<'a, Result<Value, Failure>> {
        Box::pin(async move {
            let mut current = machine.start_at.clone();
            let mut data = input;
            loop {
                let state = machine.states.get(&current).ok_or_else(|| {
                    Failure::new(
                        "States.Runtime",
                        format!("state {current:?} does not exist"),
                    )
                })?;
                self.record(
                    execution,
                    EventKind::StateEntered {
                        state: current.clone(),
                    },
                );
                let entered = self.clock.now();
                let context = self.context(execution, &current, entered, map_item.as_ref(), None);
                let step = self
                    .run_state(execution, &current, state, data, &context)
                    .await?;
                self.record(
                    execution,
                    EventKind::StateExited {
                        state: current.clone(),
                    },
                );
                match step {
                    Step::Next(next, output) => {
                        current = next;
                        data = output;
                    }
                    Step::End(output) => return Ok(output),
                }
            }
        })
    }

    fn context(
        &self,
        execution: &Execution,
        state: &str,
        entered: DateTime<Utc>,
        map_item: Option<&(usize, Value)>,
        token: Option<&str>,
    ) -> Value {
        let mut context = json!({
            "Execution": {
                "Id": execution.id,
                "Input": execution.input,
                "StartTime": execution.started.to_rfc3339_opts(SecondsFormat::Millis, true),
            },
            "State": {"Name": state, "EnteredTime": entered.to_rfc3339_opts(SecondsFormat::Millis, true), "RetryCount": 0},
            "StateMachine": {"Id": self.state_machine_id},
        });
        if let Some((index, value)) = map_item {
            context["Map"] = json!({"Item": {"Index": index, "Value": value}});
        }
        if let Some(token) = token {
            context["Task"] = json!({"Token": token});
        }
        context
    }

    async fn run_state(
        &self,
        execution: &Execution,
        name: &str,
        state: &State,
        input: Value,
        context: &Value,
    ) -> Result<Step, Failure> {
        match state {
            State::Pass(pass) => run_pass(name, pass, input, context),
            State::Succeed(_) => Ok(Step::End(input)),
            State::Fail(fail) => Err(run_fail(name, fail, &input, context)?),
            State::Wait(wait) => self.run_wait(execution, name, wait, input, context).await,
            State::Choice(choice) => run_choice(name, choice, input, context),
            State::Task(task) => self.run_task(execution, name, task, input, context).await,
            State::Map(map) => self.run_map(execution, name, map, input, context).await,
        }
    }

    /// A `Wait` state: sleeps on the runner's clock for `Seconds` or `SecondsPath`.
    async fn run_wait(
        &self,
        execution: &Execution,
        name: &str,
        wait: &Wait,
        input: Value,
        context: &Value,
    ) -> Result<Step, Failure> {
        let runtime = |e: PathError| Failure::runtime(e, name);
        let effective = match &wait.input_path {
            Some(p) => path::read(p, &input, context).map_err(runtime)?,
            None => input.clone(),
        };
        let seconds = match (&wait.seconds, &wait.seconds_path) {
            (Some(s), _) => *s as f64,
            (None, Some(p)) => path::read(p, &effective, context)
                .map_err(runtime)?
                .as_f64()
                .ok_or_else(|| {
                    Failure::new(
                        "States.Runtime",
                        format!("state {name:?}: SecondsPath is not a number"),
                    )
                })?,
            (None, None) => 0.0,
        };
        self.record(
            execution,
            EventKind::Waiting {
                state: name.to_owned(),
                seconds,
            },
        );
        self.clock.sleep(seconds).await;
        let output = match &wait.output_path {
            Some(p) => path::read(p, &input, context).map_err(runtime)?,
            None => input,
        };
        Ok(transition(&wait.transition, output))
    }

    /// A `Task` state: the call (with its task token when it waits for one, and its timeout),
    /// its events, its retries and its catchers.
    async fn run_task(
        &self,
        execution: &Execution,
        name: &str,
        task: &Task,
        input: Value,
        context: &Value,
    ) -> Result<Step, Failure> {
        let attempt = |ctx: Value| self.task_attempt(execution, name, task, input.clone(), ctx);
        let outcome = self
            .with_retry(execution, name, &task.retry, context, attempt)
            .await;
        self.finish(
            execution,
            name,
            &task.catch,
            &task.flow.transition,
            input,
            outcome,
        )
    }

    /// One attempt of a `Task` state: the call, with its task token when it waits for one and
    /// under its timeout, recorded as scheduled and then succeeded or failed.
    async fn task_attempt(
        &self,
        execution: &Execution,
        name: &str,
        task: &Task,
        input: Value,
        ctx: Value,
    ) -> Result<Value, Failure> {
        let token = task.resource.ends_with(".waitForTaskToken").then(|| {
            format!(
                "{}{}:{}:{}",
                bluegreen::steps::approval::LOCAL_TOKEN_PREFIX,
                execution.id,
                name,
                self.clock.now().timestamp_micros()
            )
        });
        let ctx = match &token {
            Some(t) => {
                let mut c = ctx;
                c["Task"] = json!({"Token": t});
                c
            }
            None => ctx,
        };
        let effective = apply_input(&task.flow.io, task.parameters.as_ref(), &input, &ctx)
            .map_err(|e| Failure::runtime(e, name))?;
        let timeout = task_timeout(name, task, &effective, &input, &ctx)?;
        self.record(
            execution,
            EventKind::TaskScheduled {
                state: name.to_owned(),
                resource: task.resource.clone(),
            },
        );
        let call = TaskCall {
            state: name.to_owned(),
            resource: task.resource.clone(),
            input: effective,
            task_token: token,
            execution_id: execution.id.clone(),
        };
        let result = match timeout {
            Some(limit) => tokio::select! {
                biased;
                r = self.tasks.invoke(call) => r,
                () = self.clock.timer(limit) => Err(Failure::new("States.Timeout", format!("task {name:?} timed out after {limit} s"))),
            },
            None => self.tasks.invoke(call).await,
        };
        match &result {
            Ok(_) => self.record(
                execution,
                EventKind::TaskSucceeded {
                    state: name.to_owned(),
                },
            ),
            Err(f) => self.record(
                execution,
                EventKind::TaskFailed {
                    state: name.to_owned(),
                    error: f.error.clone(),
                    cause: f.cause.clone(),
                },
            ),
        }
        let raw = result?;
        let selected = match &task.result_selector {
            Some(t) => path::template(t, &raw, &ctx).map_err(|e| Failure::runtime(e, name))?,
            None => raw,
        };
        apply_output(&task.flow.io, input, selected, &ctx).map_err(|e| Failure::runtime(e, name))
    }

    /// A `Map` state (inline): the item processor run for each element, in order.
    async fn run_map(
        &self,
        execution: &Execution,
        name: &str,
        map: &MapState,
        input: Value,
        context: &Value,
    ) -> Result<Step, Failure> {
        let processor = Definition::from_value(&map.item_processor)
            .map_err(|e| Failure::new("States.Runtime", format!("state {name:?}: {e}")))?;
        let attempt = |ctx: Value| {
            let input = input.clone();
            let processor = &processor;
            async move {
                let effective = match &map.flow.io.input_path {
                    Some(p) => {
                        path::read(p, &input, &ctx).map_err(|e| Failure::runtime(e, name))?
                    }
                    None => input.clone(),
                };
                let items = match &map.items_path {
                    Some(p) => {
                        path::read(p, &effective, &ctx).map_err(|e| Failure::runtime(e, name))?
                    }
                    None => effective.clone(),
                };
                let items = items.as_array().cloned().ok_or_else(|| {
                    Failure::new(
                        "States.Runtime",
                        format!("state {name:?}: ItemsPath is not an array"),
                    )
                })?;
                let mut results = Vec::new();
                for (index, item) in items.into_iter().enumerate() {
                    let item_ctx = self.context(
                        execution,
                        name,
                        self.clock.now(),
                        Some(&(index, item.clone())),
                        None,
                    );
                    let item_input = match &map.item_selector {
                        Some(t) => path::template(t, &effective, &item_ctx)
                            .map_err(|e| Failure::runtime(e, name))?,
                        None => item.clone(),
                    };
                    results.push(
                        self.run_machine(execution, processor, item_input, Some((index, item)))
                            .await?,
                    );
                }
                apply_output(&map.flow.io, input, Value::Array(results), &ctx)
                    .map_err(|e| Failure::runtime(e, name))
            }
        };
        let outcome = self
            .with_retry(execution, name, &map.retry, context, attempt)
            .await;
        self.finish(
            execution,
            name,
            &map.catch,
            &map.flow.transition,
            input,
            outcome,
        )
    }

    /// Runs `attempt` and retries it as the state's retriers say.
    async fn with_retry<F, Fut>(
        &self,
        execution: &Execution,
        name: &str,
        retriers: &[Retrier],
        context: &Value,
        attempt: F,
    ) -> Result<Value, Failure>
    where
        F: Fn(Value) -> Fut,
        Fut: Future<Output = Result<Value, Failure>>,
    {
        let mut counts = vec![0u32; retriers.len()];
        let mut retries = 0u32;
        loop {
            let mut ctx = context.clone();
            ctx["State"]["RetryCount"] = json!(retries);
            let failure = match attempt(ctx).await {
                Ok(output) => return Ok(output),
                Err(f) => f,
            };
            if failure.ends_execution() {
                return Err(failure);
            }
            let Some(index) = retriers
                .iter()
                .position(|r| error_matches(&r.error_equals, &failure.error))
            else {
                return Err(failure);
            };
            let retrier = &retriers[index];
            if counts[index] >= retrier.max_attempts {
                return Err(failure);
            }
            let mut delay =
                retrier.interval_seconds as f64 * retrier.backoff_rate.powi(counts[index] as i32);
            if let Some(max) = retrier.max_delay_seconds {
                delay = delay.min(max as f64);
            }
            if retrier.jitter_strategy.as_deref() == Some("FULL") {
                delay *= (self.jitter)();
            }
            counts[index] += 1;
            retries += 1;
            self.record(
                execution,
                EventKind::Retrying {
                    state: name.to_owned(),
                    attempt: counts[index],
                    delay_seconds: delay,
                },
            );
            self.clock.sleep(delay).await;
        }
    }

    fn finish(
        &self,
        execution: &Execution,
        name: &str,
        catchers: &[Catcher],
        next: &Transition,
        input: Value,
        outcome: Result<Value, Failure>,
    ) -> Result<Step, Failure> {
        match outcome {
            Ok(output) => Ok(transition(next, output)),
            Err(failure) if failure.ends_execution() => Err(failure),
            Err(failure) => {
                let Some(catcher) = catchers
                    .iter()
                    .find(|c| error_matches(&c.error_equals, &failure.error))
                else {
                    return Err(failure);
                };
                self.record(
                    execution,
                    EventKind::Caught {
                        state: name.to_owned(),
                        error: failure.error.clone(),
                        next: catcher.next.clone(),
                    },
                );
                let output = match &catcher.result_path {
                    None => failure.as_json(),
                    Some(None) => input,
                    Some(Some(p)) => path::write(input, p, failure.as_json())
                        .map_err(|e| Failure::runtime(e, name))?,
                };
                Ok(Step::Next(catcher.next.clone(), output))
            }
        }
    }
}

/// A `Task` state's timeout in seconds (`TimeoutSecondsPath` read from the effective input,
/// else the state's input; or `TimeoutSeconds`). Step Functions takes a positive whole number
/// of seconds; anything else fails the state as a runtime error, which no catcher catches.
fn task_timeout(
    name: &str,
    task: &Task,
    effective: &Value,
    input: &Value,
    ctx: &Value,
) -> Result<Option<f64>, Failure> {
    let timeout = match (&task.timeout_seconds_path, task.timeout_seconds) {
        (Some(p), _) => {
            let value = path::read(p, effective, ctx)
                .or_else(|_| path::read(p, input, ctx))
                .map_err(|e| Failure::runtime(e, name))?;
            let Some(seconds) = value.as_f64() else {
                return Err(Failure::new(
                    "States.Runtime",
                    format!("state {name:?}: {p} is {value}, not a number of seconds"),
                ));
            };
            Some(seconds)
        }
        (None, Some(s)) => Some(s as f64),
        (None, None) => None,
    };
    if let Some(limit) = timeout.filter(|l| !(*l >= 1.0 && l.fract() == 0.0)) {
        return Err(Failure::new(
            "States.Runtime",
            format!("state {name:?}: timeout {limit} is not a positive whole number of seconds"),
        ));
    }
    Ok(timeout)
}

/// `States.ALL` matches everything; `States.TaskFailed` everything but `States.Timeout`.
pub fn error_matches(names: &[String], error: &str) -> bool {
    // As in Step Functions, `States.ALL` does not catch a runtime error (a path that does not
    // resolve, a non-positive timeout) nor an oversized payload: those fail the execution.
    let terminal = matches!(error, "States.Runtime" | "States.DataLimitExceeded");
    names.iter().any(|n| {
        n == error
            || (n == "States.ALL" && !terminal)
            || (n == "States.TaskFailed" && error != "States.Timeout" && !terminal)
    })
}

fn transition(transition: &Transition, output: Value) -> Step {
    match &transition.next {
        Some(next) if !transition.end => Step::Next(next.clone(), output),
        _ => Step::End(output),
    }
}

fn apply_input(
    io: &Io,
    parameters: Option<&Value>,
    input: &Value,
    context: &Value,
) -> Result<Value, PathError> {
    let selected = match &io.input_path {
        Some(p) => path::read(p, input, context)?,
        None => input.clone(),
    };
    match parameters {
        Some(t) => path::template(t, &selected, context),
        None => Ok(selected),
    }
}

fn apply_output(io: &Io, input: Value, result: Value, context: &Value) -> Result<Value, PathError> {
    let combined = match &io.result_path {
        None => result,
        Some(None) => input,
        Some(Some(p)) => path::write(input, p, result)?,
    };
    match &io.output_path {
        Some(p) => path::read(p, &combined, context),
        None => Ok(combined),
    }
}

fn matches_rule(rule: &ChoiceRule, input: &Value, context: &Value) -> Result<bool, PathError> {
    if let Some(expected) = rule.is_present {
        return Ok(path::is_present(&rule.variable, input, context) == expected);
    }
    // A missing variable is a runtime error, as in Step Functions; the definitions guard with
    // IsPresent where a value may be absent.
    let value = path::read(&rule.variable, input, context)?;
    if let Some(expected) = &rule.string_equals {
        return Ok(value.as_str() == Some(expected.as_str()));
    }
    if let Some(expected) = rule.boolean_equals {
        return Ok(value.as_bool() == Some(expected));
    }
    if let Some(other) = &rule.timestamp_greater_than_equals_path {
        let other = path::read(other, input, context)?;
        let parse = |v: &Value| {
            v.as_str()
                .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        };
        return Ok(match (parse(&value), parse(&other)) {
            (Some(a), Some(b)) => a >= b,
            _ => false,
        });
    }
    Ok(false)
}

/// A `Pass` state: its result (or its effective input) shaped by its paths.
fn run_pass(name: &str, pass: &Pass, input: Value, context: &Value) -> Result<Step, Failure> {
    let runtime = |e: PathError| Failure::runtime(e, name);
    let effective =
        apply_input(&pass.flow.io, pass.parameters.as_ref(), &input, context).map_err(runtime)?;
    let result = pass.result.clone().unwrap_or(effective);
    let output = apply_output(&pass.flow.io, input, result, context).map_err(runtime)?;
    Ok(transition(&pass.flow.transition, output))
}

/// A `Fail` state: the failure it names (`Error`/`Cause`, or read from their paths); `Err`
/// when a path cannot be read.
fn run_fail(name: &str, fail: &Fail, input: &Value, context: &Value) -> Result<Failure, Failure> {
    let runtime = |e: PathError| Failure::runtime(e, name);
    let error = match &fail.error_path {
        Some(p) => path::read(p, input, context)
            .map_err(runtime)?
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        None => fail.error.clone().unwrap_or_else(|| "States.Fail".into()),
    };
    let cause = match &fail.cause_path {
        Some(p) => path::read(p, input, context)
            .map_err(runtime)?
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        None => fail.cause.clone().unwrap_or_default(),
    };
    Ok(Failure::new(error, cause))
}

/// A `Choice` state: the first rule that matches, or the default.
fn run_choice(name: &str, choice: &Choice, input: Value, context: &Value) -> Result<Step, Failure> {
    let runtime = |e: PathError| Failure::runtime(e, name);
    let effective = match &choice.input_path {
        Some(p) => path::read(p, &input, context).map_err(runtime)?,
        None => input.clone(),
    };
    let next = choice
        .choices
        .iter()
        .map(|rule| matches_rule(rule, &effective, context).map(|m| m.then(|| rule.next.clone())))
        .find_map(|r| r.transpose())
        .transpose()
        .map_err(runtime)?
        .or_else(|| choice.default.clone())
        .ok_or_else(|| {
            Failure::new(
                "States.NoChoiceMatched",
                format!("state {name:?}: no rule matched"),
            )
        })?;
    let output = match &choice.output_path {
        Some(p) => path::read(p, &input, context).map_err(runtime)?,
        None => input,
    };
    Ok(Step::Next(next, output))
}

#[cfg(test)]
mod tests {
    use super::paced;

    /// Real and virtual time of one poll cycle: (work + sleep, work + sleep + skipped).
    fn cycle(seconds: f64, spent: f64, scale: f64) -> (f64, f64) {
        let (real, skipped) = paced(seconds, spent, scale);
        (spent + real, spent + real + skipped)
    }

    #[test]
    fn a_poll_cycle_passes_virtual_time_at_exactly_the_clocks_scale() {
        // Issue 29 item 10: a 2 s poll at 0.01 whose look takes 5 ms, then 30 ms.
        for spent in [0.0, 0.005, 0.019, 0.03, 1.5] {
            let (real, virtual_time) = cycle(2.0, spent, 0.01);
            assert!(
                (real / virtual_time - 0.01).abs() < 1e-9,
                "{spent}: {real} real for {virtual_time} virtual"
            );
        }
        // Quick work: the cycle is the poll's length; slow work: its own, at the pace.
        assert!((cycle(2.0, 0.005, 0.01).1 - 2.0).abs() < 1e-9);
        assert!((cycle(2.0, 0.03, 0.01).1 - 3.0).abs() < 1e-9);
        // Scale 0: no real waiting, the poll's time skipped.
        assert_eq!(paced(2.0, 0.03, 0.0), (0.0, 2.0));
        // Real time: the work, and never more sleep than the scaled poll.
        assert_eq!(cycle(2.0, 0.0, 1.0), (2.0, 2.0));
    }
}
