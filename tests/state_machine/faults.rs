//! The fault campaign: the committed definitions run by the local runner with the real steps,
//! while one AWS call at a time is answered with a fault, and the end state is read back from
//! AWS.
//!
//! A dry run records every AWS call a deployment makes (service, operation, in order). Each
//! case then repeats the deployment with the 1st or the 2nd call of one operation answered
//! with `ThrottlingException`, a 503, or `AccessDenied` — always **after the call reached the
//! emulator**, so a write has taken effect and only its answer is lost: the hardest version of
//! each fault for a retry. After the run, as the execution's FAILED event would, the reconciler
//! looks at the service; then the case is **safe** when the deployment is
//! - `succeeded` with production on the new slot;
//! - `aborted` with production routing, the live slot and pre-prod as before and no clone;
//! - `rolled_back` with traffic on the old slot;
//! - `needs_attention` with the lock held and marked and a notification published;
//! - `preparing`, started by the reconciler (its execution never started) and running;
//! - or was never created (the intake refused the push) with the lock free,
//!
//! and no lock is held by a deployment that has ended otherwise. SNS is recorded but not
//! faulted: notifications are best effort (in Lambda the SDK's own retries cover transient
//! SNS errors; here SDK retries are off so the definition's `Retry` is what is tested).
//!
//! A second family breaks each Task state the dry run entered, the first time it runs and
//! after its work took effect: the function **crashes** (`Lambda.Unknown`: the state's Catch
//! decides), or the execution is **stopped** by hand while the task runs (nothing of the
//! definition runs after it; the reconciler decides, as after a stop, a failure or a timeout).
//!
//! `scripts/test` runs a rotating subset: every 33rd case, starting at an offset that moves by
//! one each day (`BLUEGREEN_FAULTS_OFFSET` pins it to reproduce a run; the offset is printed),
//! so CI covers every case over 33 days at a third of the cost of a fixed eleventh.
//! `scripts/faults` runs all (`BLUEGREEN_FAULTS=all`) and prints one line per case and a
//! closing summary.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use aws_config::retry::RetryConfig;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeDeserializationInterceptorContextMut, BeforeSerializationInterceptorContextRef,
};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};
use bluegreen::record::{Records, Status};
use bluegreen::steps::reconcile;
use bluegreen::{Context, Slot};
use bluegreen_statemachine::local::LocalTasks;
use bluegreen_statemachine::runner::BoxFuture;
use bluegreen_statemachine::{Failure, TaskCall, TaskHandler};
use serde_json::Value;
use tokio::sync::Notify;

use super::{Local, Person, push};

/// How a call is answered.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Fault {
    /// `ThrottlingException` (JSON) / `Throttling` (query): retryable.
    Throttled,
    /// HTTP 503: transient.
    Unavailable,
    /// `AccessDeniedException` / `AccessDenied`: permanent.
    Denied,
}

const FAULTS: [Fault; 3] = [Fault::Throttled, Fault::Unavailable, Fault::Denied];

/// One case: the `occurrence`-th call of `operation` on `service` gets `fault`.
#[derive(Debug, Clone, PartialEq)]
struct Target {
    service: String,
    operation: String,
    occurrence: usize,
    fault: Fault,
}

/// What the interceptor does and saw.
#[derive(Debug, Default)]
struct Plan {
    target: Option<Target>,
    calls: Mutex<Vec<(String, String)>>,
    fired: AtomicBool,
}

/// Marks the one call that gets the fault.
#[derive(Debug, Clone)]
struct Inject(Fault);

impl Storable for Inject {
    type Storer = StoreReplace<Self>;
}

#[derive(Debug, Clone)]
struct FaultInterceptor(Arc<Plan>);

impl Intercept for FaultInterceptor {
    fn name(&self) -> &'static str {
        "bluegreen-fault-campaign"
    }

    // Not `read_before_execution`: for a client's own interceptors that runs before the
    // operation's configuration (its `Metadata`) is in the bag.
    fn read_before_serialization(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(meta) = cfg.load::<Metadata>() else {
            return Ok(());
        };
        let call = (meta.service().to_owned(), meta.name().to_owned());
        let mut calls = self.0.calls.lock().unwrap();
        calls.push(call.clone());
        let occurrence = calls.iter().filter(|c| **c == call).count();
        if let Some(t) = &self.0.target
            && (t.service.as_str(), t.operation.as_str(), t.occurrence)
                == (call.0.as_str(), call.1.as_str(), occurrence)
        {
            cfg.interceptor_state().store_put(Inject(t.fault));
            self.0.fired.store(true, Ordering::SeqCst);
        }
        Ok(())
    }

    fn modify_before_deserialization(
        &self,
        context: &mut BeforeDeserializationInterceptorContextMut<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(Inject(fault)) = cfg.load::<Inject>().cloned() {
            let service = cfg
                .load::<Metadata>()
                .map(|m| m.service().to_owned())
                .unwrap_or_default();
            *context.response_mut() = error_response(&service, fault);
        }
        Ok(())
    }
}

/// The error answer `service` would give, in its protocol.
fn error_response(
    service: &str,
    fault: Fault,
) -> aws_smithy_runtime_api::client::orchestrator::HttpResponse {
    let json = matches!(service, "ECS" | "DynamoDB" | "SSM" | "SFN");
    let (status, code) = match (fault, json) {
        (Fault::Throttled, true) => (400, "ThrottlingException"),
        (Fault::Throttled, false) => (400, "Throttling"),
        (Fault::Unavailable, _) => (503, "ServiceUnavailable"),
        (Fault::Denied, true) => (400, "AccessDeniedException"),
        (Fault::Denied, false) => (403, "AccessDenied"),
    };
    let (content_type, body) = if json {
        (
            "application/x-amz-json-1.1",
            format!(r#"{{"__type":"{code}","message":"injected by the fault campaign"}}"#),
        )
    } else {
        (
            "text/xml",
            format!(
                "<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code>\
                 <Message>injected by the fault campaign</Message></Error>\
                 <RequestId>fault</RequestId></ErrorResponse>"
            ),
        )
    };
    let mut response = aws_smithy_runtime_api::http::Response::new(
        aws_smithy_runtime_api::http::StatusCode::try_from(status).unwrap(),
        SdkBody::from(body),
    );
    response.headers_mut().insert("content-type", content_type);
    response
}

/// How a Task state is broken, the first time it runs, after its work took effect.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Break {
    /// The function crashed (`Lambda.Unknown`, not retried): the state's Catch decides.
    Crashed,
    /// The execution was stopped by hand while the task ran: nothing of the definition runs
    /// after it, the reconciler decides.
    Stopped,
}

/// What the breaking task handler is to do, and saw.
#[derive(Debug, Default)]
struct Breaking {
    target: Option<(String, Break)>,
    entered: Mutex<Vec<String>>,
    fired: AtomicBool,
    stopped: Notify,
}

/// The local task handler, breaking one state.
struct Breaker {
    inner: Arc<LocalTasks>,
    breaking: Arc<Breaking>,
}

impl TaskHandler for Breaker {
    fn invoke(&self, call: TaskCall) -> BoxFuture<'_, Result<Value, Failure>> {
        Box::pin(async move {
            let state = call.state.clone();
            {
                let mut entered = self.breaking.entered.lock().unwrap();
                if !entered.contains(&state) {
                    entered.push(state.clone());
                }
            }
            let target = self
                .breaking
                .target
                .as_ref()
                .filter(|(s, _)| *s == state)
                .map(|(_, how)| *how);
            let answer = self.inner.invoke(call).await;
            match target {
                Some(how) if !self.breaking.fired.swap(true, Ordering::SeqCst) => match how {
                    Break::Crashed => Err(Failure::new(
                        "Lambda.Unknown",
                        "the function crashed after its work (injected)".to_owned(),
                    )),
                    Break::Stopped => {
                        self.breaking.stopped.notify_one();
                        std::future::pending().await
                    }
                },
                _ => answer,
            }
        })
    }
}

/// `ctx` with every AWS client going through `interceptor`, SDK retries off.
fn faulty(ctx: Context, sdk: &aws_config::SdkConfig, interceptor: &FaultInterceptor) -> Context {
    let mut clients = ctx.sdk().expect("SDK clients").clone();
    macro_rules! client {
        ($field:ident, $krate:ident) => {
            clients.$field = $krate::Client::from_conf(
                $krate::config::Builder::from(sdk)
                    .interceptor(interceptor.clone())
                    .retry_config(RetryConfig::disabled())
                    .build(),
            );
        };
    }
    client!(ecs, aws_sdk_ecs);
    client!(elb, aws_sdk_elasticloadbalancingv2);
    client!(route53, aws_sdk_route53);
    client!(dynamodb, aws_sdk_dynamodb);
    client!(ssm, aws_sdk_ssm);
    client!(rds, aws_sdk_rds);
    client!(sns, aws_sdk_sns);
    ctx.with_sdk(clients)
}

/// Which world a case runs in.
#[derive(Debug, Clone, Copy)]
enum Flavour {
    /// Shared database, listener mode (the default world).
    Shared,
    /// Isolated database cloned from an RDS instance.
    Isolated,
}

async fn world(flavour: Flavour) -> Local {
    let mut local = Local::new().await;
    local.world.ctx.settings.topic_arn = Some(local.world.topic_arn.clone());
    // The reconciler may start a deployment that never got its execution; moto keeps such an
    // execution RUNNING (it does not interpret it).
    local.world.create_deployment_machine().await;
    if let Flavour::Isolated = flavour {
        local.world.use_isolated_db().await;
    }
    local
}

/// One case of the campaign.
#[derive(Debug, Clone, PartialEq)]
enum Case {
    /// One AWS call answered with a fault.
    Call(Target),
    /// One Task state broken.
    State(String, Break),
}

impl Case {
    fn name(&self) -> String {
        match self {
            Case::Call(t) => format!(
                "{}:{}#{} {:?}",
                t.service, t.operation, t.occurrence, t.fault
            ),
            Case::State(state, how) => format!("state {state} {how:?}"),
        }
    }
}

/// What a run saw and whether its fault fired.
struct Seen {
    calls: Vec<(String, String)>,
    states: Vec<String>,
    fired: bool,
}

/// Runs one deployment with `case` (or none: the dry run).
async fn deploy(local: &Local, case: Option<&Case>) -> Seen {
    let plan = Arc::new(Plan {
        target: match case {
            Some(Case::Call(t)) => Some(t.clone()),
            _ => None,
        },
        ..Plan::default()
    });
    let breaking = Arc::new(Breaking {
        target: match case {
            Some(Case::State(state, how)) => Some((state.clone(), *how)),
            _ => None,
        },
        ..Breaking::default()
    });
    let ctx = faulty(
        local.ctx(),
        &local.world.sdk,
        &FaultInterceptor(plan.clone()),
    );
    let for_wrap = breaking.clone();
    let wrap = move |inner: Arc<LocalTasks>| -> Arc<dyn TaskHandler> {
        Arc::new(Breaker {
            inner,
            breaking: for_wrap.clone(),
        })
    };
    let run = local.run_wrapped(
        ctx,
        push("v2", "e-1", "2026-11-21T10:00:00Z"),
        Person::Approves,
        &wrap,
    );
    // A stop drops the running execution where it is.
    tokio::select! {
        _ = run => {}
        _ = breaking.stopped.notified() => {}
    }
    Seen {
        calls: plan.calls.lock().unwrap().clone(),
        states: breaking.entered.lock().unwrap().clone(),
        fired: plan.fired.load(Ordering::SeqCst) || breaking.fired.load(Ordering::SeqCst),
    }
}

/// The cases for `flavour`: the 1st and 2nd call of every operation the dry run made, with
/// every fault (SNS excluded, see the module doc); and every Task state it entered, crashed
/// and stopped.
async fn cases(flavour: Flavour) -> Vec<Case> {
    let local = world(flavour).await;
    let seen = deploy(&local, None).await;
    let mut operations: Vec<(String, String, usize)> = Vec::new();
    for call in &seen.calls {
        match operations
            .iter_mut()
            .find(|(s, o, _)| (s, o) == (&call.0, &call.1))
        {
            Some(op) => op.2 += 1,
            None => operations.push((call.0.clone(), call.1.clone(), 1)),
        }
    }
    let mut cases = Vec::new();
    for (service, operation, count) in operations {
        if service == "SNS" {
            continue;
        }
        for occurrence in 1..=count.min(2) {
            for fault in FAULTS {
                cases.push(Case::Call(Target {
                    service: service.clone(),
                    operation: operation.clone(),
                    occurrence,
                    fault,
                }));
            }
        }
    }
    for state in seen.states {
        for how in [Break::Crashed, Break::Stopped] {
            cases.push(Case::State(state.clone(), how));
        }
    }
    cases
}

/// Reads the end state from AWS; `Ok(outcome)` when safe, `Err(why)` when not.
async fn verdict(local: &Local) -> Result<String, String> {
    let world = &local.world;
    let id =
        bluegreen::naming::deployment_id("shop", "e-1", "2026-11-21T10:00:00Z".parse().unwrap());
    let mut deployment = match Records::new(&world.ctx).get(&id).await {
        Ok(d) => d,
        Err(bluegreen::StepError::DeploymentNotFound(_)) => {
            return match world.lock("shop").await {
                None => Ok("refused at intake, nothing held".into()),
                Some(lock) => Err(format!("no deployment, but the lock is held: {lock:?}")),
            };
        }
        Err(e) => return Err(format!("record unreadable: {e}")),
    };
    if !deployment.status.is_terminal() {
        // As the execution's FAILED event would: the reconciler decides.
        let reconciled = reconcile::service(&world.ctx, "shop")
            .await
            .map_err(|e| format!("reconciler failed: {e}"))?;
        deployment = Records::new(&world.ctx).get(&id).await.unwrap();
        // Started by the reconciler: its own execution owns it now (moto keeps it RUNNING).
        if reconciled.started.as_deref() == Some(id.as_str())
            && world.execution_status(&id).await.as_deref() == Some("RUNNING")
            && world.lock_holder().await.as_deref() == Some(id.as_str())
        {
            return Ok("started by the reconciler, its execution running".into());
        }
    }
    let production = world.production().await;
    let lock = world.lock("shop").await;
    let green = world.service(Slot::Green).await.1;
    let clones: Vec<String> = world
        .db_instances()
        .await
        .into_iter()
        .filter(|i| i != "shop-db")
        .collect();
    let status = deployment.status;
    let fail = |why: &str| {
        Err(format!(
            "{status:?}: {why} (production {production:?}, green {green}, lock {lock:?}, clones {clones:?})"
        ))
    };
    if status != Status::NeedsAttention && lock.as_ref().is_some_and(|l| l.holder == id) {
        return fail("ended but still holds the lock");
    }
    match status {
        Status::Succeeded if production.live().ok() != Some(Slot::Green) => fail("not on green"),
        Status::Aborted if (production.blue, production.green) != (1, 0) => {
            fail("production routing changed")
        }
        Status::Aborted if green != 0 => fail("pre-prod still running"),
        Status::Aborted | Status::Succeeded | Status::RolledBack if !clones.is_empty() => {
            fail("a clone is left")
        }
        Status::RolledBack if production.live().ok() != Some(Slot::Blue) => {
            fail("not back on blue")
        }
        Status::NeedsAttention => {
            let marked = lock
                .as_ref()
                .is_some_and(|l| l.holder == id && l.needs_attention.is_some());
            let told = world
                .published_subjects()
                .await
                .iter()
                .any(|s| s.contains("needs"));
            match (marked, told) {
                (true, true) => Ok("needs_attention".into()),
                (false, _) => fail("lock not held and marked"),
                (_, false) => fail("nobody was told"),
            }
        }
        Status::Succeeded | Status::Aborted | Status::RolledBack => {
            Ok(serde_json::to_value(status)
                .unwrap()
                .as_str()
                .unwrap_or_default()
                .to_owned())
        }
        _ => fail("not ended after the reconciler"),
    }
}

/// How far apart the cases of the CI subset are.
const SUBSET_STRIDE: usize = 33;

/// Where today's subset starts: `BLUEGREEN_FAULTS_OFFSET`, else the day number (UTC) modulo
/// the stride, so consecutive days run different cases.
fn subset_offset() -> usize {
    std::env::var("BLUEGREEN_FAULTS_OFFSET")
        .ok()
        .and_then(|o| o.parse::<usize>().ok())
        .unwrap_or_else(|| (chrono::Utc::now().timestamp() / 86_400) as usize)
        % SUBSET_STRIDE
}

/// Runs every case of `flavour` whose index `keep` selects; prints a line per case and the
/// flavour's summary; fails if any case is unsafe.
async fn campaign(flavour: Flavour) {
    let all = std::env::var("BLUEGREEN_FAULTS").as_deref() == Ok("all");
    // Only the cases whose name contains this (for working on one family).
    let only = std::env::var("BLUEGREEN_FAULTS_ONLY").unwrap_or_default();
    let cases = cases(flavour).await;
    assert!(
        cases.len() > 20,
        "the dry run saw too few calls: {}",
        cases.len()
    );
    let offset = subset_offset();
    if !all {
        println!(
            "faults: {flavour:?} subset: every {SUBSET_STRIDE}th case from {offset} (BLUEGREEN_FAULTS_OFFSET={offset})"
        );
    }
    let (mut ran, mut safe, mut unreached, mut unsafe_cases) = (0, 0, 0, Vec::new());
    for (i, case) in cases.into_iter().enumerate() {
        if (!all && i % SUBSET_STRIDE != offset) || !case.name().contains(&only) {
            continue;
        }
        let local = world(flavour).await;
        let seen = deploy(&local, Some(&case)).await;
        let name = format!("{flavour:?} {}", case.name());
        if !seen.fired {
            unreached += 1;
            println!("fault {name} -> not reached (the run made fewer calls)");
            continue;
        }
        ran += 1;
        match verdict(&local).await {
            Ok(outcome) => {
                safe += 1;
                println!("fault {name} -> {outcome}: safe");
            }
            Err(why) => {
                println!("fault {name} -> UNSAFE: {why}");
                unsafe_cases.push(format!("{name}: {why}"));
            }
        }
    }
    println!(
        "faults: {ran} cases, {safe} safe, {} unsafe ({flavour:?}; {unreached} not reached)",
        unsafe_cases.len()
    );
    assert!(unsafe_cases.is_empty(), "unsafe: {unsafe_cases:#?}");
}

#[tokio::test]
async fn fault_campaign_shared_database() {
    campaign(Flavour::Shared).await;
}

#[tokio::test]
async fn fault_campaign_isolated_database() {
    campaign(Flavour::Isolated).await;
}
