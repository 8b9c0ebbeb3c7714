//! The step registry's dispatch: the one way from a step's name to its code, used by the
//! Lambda binary (`BLUEGREEN_STEP`) and the local runner, and the lookups over the registry
//! ([`STEPS`], declared with `steps!` in `steps/mod.rs`). What a step is
//! ([`crate::step_table::Step`]) is re-exported here; tests check the SAM template, the README
//! and the generated definition against the registry, so a step missing from one fails there.

use std::future::Future;
use std::pin::Pin;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::context::Context;
use crate::error::{StepError, StepResult};

pub use super::STEPS;
pub use super::bake::STEP as BAKE;
pub use super::health_check::STEP as HEALTH_CHECK;
pub use super::launch_preprod::STEP as LAUNCH_PREPROD;
pub use super::migrate::STEP as MIGRATE;
pub use super::promote::STEP as PROMOTE;
pub use super::switch::STEP as SWITCH;
pub use super::sync_db::STEP as SYNC_DB;
pub use crate::step_table::*;

/// A step's answer, type-erased so the Lambda runtime's future stays shallow (a step's future
/// nests every SDK call several async functions deep).
pub type Answer<'a> = Pin<Box<dyn Future<Output = StepResult<Value>> + Send + 'a>>;

/// Runs a start/check step on `{"action": …}` input, as one leased invocation of the
/// deployment (see `crate::fence`): input that does not parse touches nothing. A check looks
/// as the step's `LOOKS` say, within the invocation (see `crate::looks`).
macro_rules! start_or_check {
    ($step:ident, $ctx:expr, $registered:expr, $input:expr) => {
        Box::pin(async move {
            use $crate::fence::leased;
            use $crate::looks;
            use $crate::step_input::StartOrCheck;
            use $crate::steps::registry::{answer, parse};
            match parse::<StartOrCheck>($input)? {
                // A start's first wait is the step's own (a grace before the first look: a
                // clone just created may not be described yet).
                StartOrCheck::Start(i) => answer(
                    leased($ctx, &i.deployment_id, $registered, $step::start($ctx, &i)).await,
                ),
                StartOrCheck::Check(i) => {
                    let id = &i.deployment_id;
                    let watched = looks::watch($ctx, id, $step::LOOKS, || $step::check($ctx, &i));
                    answer(leased($ctx, id, $registered, watched).await)
                }
                // Not leased: it acts on nothing but its wait item, and must not wait
                // behind a check's lease (the event may come while the check still runs).
                // Only a step whose waits an event ends has a wait item to write (and the
                // permission to).
                StartOrCheck::Await(_) if $step::LOOKS.woken_by.is_empty() => {
                    Err($crate::error::StepError::EventMalformed(format!(
                        "{} waits for no ECS event: no await",
                        $step::STEP.name
                    )))
                }
                StartOrCheck::Await(i) => answer($crate::wakes::wait($ctx, &i).await),
            }
        })
    };
}

/// Declares the step registry (used once, in `steps/mod.rs`): from a list of
/// `polling(<module>)` and `row(<ROW>)` entries in the pipeline's order, the polling steps'
/// modules, [`STEPS`] (their rows and the table's, in that order), `invoke_polling`, the
/// dispatch of every polling step to its `start` or `check`, and `looks_of`. A polling module
/// declares `STEP` (its row), `LOOKS` (how its check looks), `start` and `check`.
macro_rules! steps {
    ($($kind:ident($name:ident)),* $(,)?) => {
        $(steps!(@module $kind $name);)*

        /// Every step, in the order a deployment runs them (see the registry above).
        pub const STEPS: &[$crate::step_table::Step] = &[$(steps!(@row $kind $name)),*];

        /// Runs `step` if it is a polling step; gives `input` back otherwise.
        pub(crate) fn invoke_polling<'a>(
            ctx: &'a $crate::context::Context,
            step: &'static $crate::step_table::Step,
            input: ::serde_json::Value,
        ) -> Result<registry::Answer<'a>, ::serde_json::Value> {
            $(steps!(@dispatch $kind $name ctx step input);)*
            Err(input)
        }

        /// How a polling step's check looks (its module's `LOOKS`, see [`crate::looks`]).
        pub fn looks_of(step: &str) -> Option<$crate::looks::Looks> {
            $(steps!(@looks $kind $name step);)*
            None
        }
    };
    (@looks polling $name:ident $step:ident) => {
        if $step == $name::STEP.name {
            return Some($name::LOOKS);
        }
    };
    (@looks row $name:ident $step:ident) => {};
    (@module polling $name:ident) => { pub mod $name; };
    (@module row $name:ident) => {};
    (@row polling $name:ident) => { $name::STEP };
    (@row row $name:ident) => { $crate::step_table::$name };
    (@dispatch polling $name:ident $ctx:ident $step:ident $input:ident) => {
        if $step.name == $name::STEP.name {
            return Ok(start_or_check!($name, $ctx, $step, $input));
        }
    };
    (@dispatch row $name:ident $ctx:ident $step:ident $input:ident) => {};
}

/// Runs `step` on `input` as its Lambda function does: the one dispatch from a step name to
/// its code, used by the Lambda binary and the local runner. Input that does not parse is
/// `EventMalformed` and nothing is called.
///
/// A plain function choosing one boxed future per step: one async block holding every step's
/// future would need, in debug builds, a stack frame as large as their sum while it runs (700
/// KB measured, beside the SDK's own 500 KB deserializers), and the local runner's test
/// threads have 2 MB.
pub fn invoke<'a>(ctx: &'a Context, step: &'static Step, input: Value) -> Answer<'a> {
    use super::*;
    use crate::fence;
    let input = match invoke_polling(ctx, step, input) {
        Ok(answer) => return answer,
        Err(input) => input,
    };
    match step.name {
        "prepare" => Box::pin(async move { answer(prepare::run(ctx, &input).await) }),
        "approval" => Box::pin(async move {
            match parse::<approval::ApprovalCall>(input)? {
                approval::ApprovalCall::Request(request) => answer(
                    fence::leased(
                        ctx,
                        &request.deployment_id,
                        step,
                        approval::request(ctx, &request),
                    )
                    .await,
                ),
                approval::ApprovalCall::TimedOut(timed_out) => answer(
                    fence::leased(
                        ctx,
                        &timed_out.deployment_id,
                        step,
                        approval::settle_timeout(ctx, &timed_out),
                    )
                    .await,
                ),
            }
        }),
        // Endings as the state machine calls them: an execution whose deployment an operator
        // retried does nothing (see `crate::ending::unless_resumed`).
        "finish" => Box::pin(async move {
            let i = parse::<DeploymentRef>(input)?;
            answer(crate::ending::unless_resumed(ctx, &i.deployment_id, finish::run(ctx, &i)).await)
        }),
        "abort" => Box::pin(async move {
            let i = parse::<FailureInput>(input)?;
            answer(crate::ending::unless_resumed(ctx, &i.deployment_id, abort::run(ctx, &i)).await)
        }),
        "rollback" => Box::pin(async move {
            let i = parse::<FailureInput>(input)?;
            answer(
                crate::ending::unless_resumed(ctx, &i.deployment_id, rollback::run(ctx, &i)).await,
            )
        }),
        "reconcile" => Box::pin(async move {
            answer(reconcile::run(ctx, &reconcile::Request::parse(&input)?).await)
        }),
        // The scheduled event's content is not used.
        "teardown" => Box::pin(async move { answer(teardown::run(ctx).await) }),
        "missed_pushes" => Box::pin(async move { answer(crate::missed_pushes::run(ctx).await) }),
        "index_config" => Box::pin(async move { answer(index_config::run(ctx, &input).await) }),
        "wake" => Box::pin(async move { answer(crate::wakes::on_event(ctx, &input).await) }),
        "ecs_hook" => {
            Box::pin(async move { answer(crate::ecs_hook::on_invocation(ctx, &input).await) })
        }
        other => {
            let other = other.to_owned();
            Box::pin(async move {
                Err(StepError::Internal(format!(
                    "step {other} is in the registry but has no dispatch"
                )))
            })
        }
    }
}

/// The step with this snake name.
pub fn by_name(name: &str) -> Option<&'static Step> {
    STEPS.iter().find(|s| s.name == name)
}

/// The step whose function this `${…FunctionArn}` placeholder names.
pub fn by_placeholder(placeholder: &str) -> Option<&'static Step> {
    STEPS.iter().find(|s| s.placeholder() == placeholder)
}

/// The step a state of the deployment definition belongs to (`LaunchPreprodWait` ->
/// launch_preprod, `ApprovalTimedOut` -> approval): the longest state prefix that matches.
pub fn by_state(state: &str) -> Option<&'static Step> {
    STEPS
        .iter()
        .filter(|s| !s.state.is_empty() && state.starts_with(s.state))
        .max_by_key(|s| s.state.len())
}

/// What people read for a timeline step name: the registry's label, or the name itself for
/// entries that are not steps (for example `manual_rollback`).
pub fn label(name: &str) -> &str {
    by_name(name).map(|s| s.label).unwrap_or(name)
}

pub(crate) fn answer<T: Serialize>(result: StepResult<T>) -> StepResult<Value> {
    result.map(|v| serde_json::to_value(v).expect("step outputs serialise"))
}

pub(crate) fn parse<T: DeserializeOwned>(input: Value) -> StepResult<T> {
    serde_json::from_value(input).map_err(|e| StepError::EventMalformed(e.to_string()))
}

/// Runs `ending` (`finish`, `rollback` or `abort`) once, as the execution would: its answer
/// may ask to wait (the caller comes back). An ending that fails for good makes the
/// deployment need attention with the cause (never a retry loop); a transient failure is
/// returned for the caller's retry.
pub(crate) async fn run_ending_once(
    ctx: &Context,
    ending: &str,
    input: &super::FailureInput,
) -> StepResult<crate::ending::Ended> {
    use super::*;
    // A step invocation of the execution that was running may still act until its lease
    // ends (the abort waits for it itself): rolling back or finishing beside it would race it.
    if ending != ABORT.name {
        let deployment = Records::new(ctx).get(&input.deployment_id).await?;
        if deployment.status.is_terminal() {
            return Ok(crate::ending::Ended::of(&deployment));
        }
        if let Some(lease) = crate::fence::live_lease(&deployment, ctx.now()) {
            let detail = format!(
                "waiting for the {} step in flight (it can act until {}) before the {ending}",
                lease.step, lease.until
            );
            return Ok(crate::ending::Ended::waiting(
                &deployment,
                detail,
                lease.until,
            ));
        }
    }
    let result = match ending {
        e if e == FINISH.name => {
            finish::run(
                ctx,
                &DeploymentRef {
                    deployment_id: input.deployment_id.clone(),
                },
            )
            .await
        }
        e if e == ROLLBACK.name => rollback::run(ctx, input).await,
        _ => abort::run(ctx, input).await,
    };
    match result {
        Ok(ended) => Ok(ended),
        Err(e) if e.is_retryable() => Err(e),
        Err(e) => {
            let deployment = Records::new(ctx).get(&input.deployment_id).await?;
            if deployment.status.is_terminal() {
                return Ok(crate::ending::Ended::of(&deployment));
            }
            let cause = CaughtError {
                error: e.name().into(),
                cause: format!("{ending} after {}: {e}", input.describe()),
            };
            reconcile::needs_attention(ctx, &deployment, &cause).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_states_and_functions_are_unique() {
        for (i, a) in STEPS.iter().enumerate() {
            for b in &STEPS[i + 1..] {
                assert_ne!(a.name, b.name);
                assert_ne!(a.function, b.function);
                assert!(a.state.is_empty() || a.state != b.state, "{}", a.state);
            }
        }
    }

    #[test]
    fn states_map_back_to_their_steps() {
        assert_eq!(by_state("LaunchPreprodWait"), Some(&LAUNCH_PREPROD));
        assert_eq!(by_state("ApprovalTimedOut"), Some(&APPROVAL));
        assert_eq!(by_state("Resume"), Some(&PREPARE));
        assert_eq!(by_state("Started?"), None);
        assert_eq!(
            by_placeholder("${RequestApprovalFunctionArn}"),
            Some(&APPROVAL)
        );
        assert_eq!(label("manual_rollback"), "manual_rollback");
        assert_eq!(label("sync_db"), "Sync database");
    }

    #[test]
    fn every_listed_error_is_a_step_error_name_of_the_state_machine_contract() {
        for step in STEPS {
            for name in step.errors() {
                assert!(
                    StepError::CONTRACT.contains(&name),
                    "{} lists {name}, which is not a state-machine error name",
                    step.name
                );
            }
        }
    }

    /// The execution's budget (`ServiceConfig::execution_waits`, which `config validate`
    /// holds under the execution's 48 hours) counts every wait by the step that waits it: a
    /// polling step or an approval added to the registry without its wait in the budget fails
    /// here, as does a wait booked to a step that is not registered.
    #[test]
    fn every_waiting_step_is_in_the_execution_budget_and_the_budget_names_only_steps() {
        const EXAMPLE: &str = include_str!("../../../../docs/example-service.toml");
        let shared = crate::config::ServiceConfig::from_toml(EXAMPLE).expect("the example");
        let isolated = EXAMPLE
            .replace("strategy = \"shared\"", "strategy = \"isolated\"")
            .replace("rehearsal = true", "")
            .replace("run = \"before_launch\"", "");
        let isolated = crate::config::ServiceConfig::from_toml(&isolated).expect("isolated");
        assert_eq!(isolated.problems(), Vec::<String>::new());
        let mut budgeted = std::collections::BTreeSet::new();
        for config in [&shared, &isolated] {
            for wait in config.execution_waits() {
                assert!(
                    by_name(wait.step).is_some(),
                    "{} is booked to {}, which is not a registered step",
                    wait.field,
                    wait.step
                );
                budgeted.insert(wait.step);
            }
        }
        for step in STEPS
            .iter()
            .filter(|s| matches!(s.shape, Shape::Polling | Shape::Approval))
        {
            assert!(
                budgeted.contains(step.name),
                "the {} step waits, but no wait of the execution's budget is booked to it \
                 (ServiceConfig::execution_waits in config_check.rs)",
                step.name
            );
        }
    }

    #[tokio::test]
    async fn every_step_has_a_dispatch_and_refuses_input_it_does_not_understand() {
        // Nothing listens here: input is refused before any AWS call.
        let sdk = aws_types::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_types::region::Region::new("us-east-1"))
            .endpoint_url("http://127.0.0.1:9")
            .build();
        let ctx = Context::new(&sdk, crate::context::Settings::from_env());
        for step in STEPS.iter().filter(|s| s.shape != Shape::Standalone) {
            let err = invoke(&ctx, step, serde_json::json!(["not", "an", "input"]))
                .await
                .expect_err(step.name);
            assert_eq!(err.name(), "EventMalformed", "{}: {err}", step.name);
        }
    }

    /// A paced check's last look begins at the end of its window and may take its bound: both
    /// must fit in the function's timeout, or Lambda kills the look (`Sandbox.Timedout`) and
    /// the deployment aborts without the step's evidence. And a check looking less often than
    /// every 2 s would be 1 s late on average, past the lead-time target.
    #[test]
    fn every_polling_step_looks_within_its_timeout_and_often() {
        for step in STEPS.iter().filter(|s| s.shape == Shape::Polling) {
            let looks = super::super::looks_of(step.name).expect(step.name);
            // And the lease's claim and release, the guard's read between looks.
            const OVERHEAD_SECONDS: u64 = 10;
            assert!(
                looks.window_seconds + looks.look_bound_seconds + OVERHEAD_SECONDS
                    <= step.timeout_seconds,
                "{}: a {} s window and {} s looks do not fit its {} s timeout",
                step.name,
                looks.window_seconds,
                looks.look_bound_seconds,
                step.timeout_seconds
            );
            assert!(looks.every_seconds >= 1, "{}", step.name);
            // The bake ends at a known time and looks at alarms; every other wait is AWS's.
            if step.name != BAKE.name {
                assert!(looks.every_seconds <= 2, "{}", step.name);
            }
        }
    }
}
