//! The step registry: the one dispatch from a step's name to its code, used by the Lambda
//! binary (`BLUEGREEN_STEP`) and the local runner. The table of steps itself (names, states,
//! functions, timeouts) is [`crate::step_table`], re-exported here; tests check the SAM
//! template against it, so a step missing from the stack fails there.

use std::future::Future;
use std::pin::Pin;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::context::Context;
use crate::error::{StepError, StepResult};
use crate::step_input::StartOrCheck;

pub use crate::step_table::*;

/// A step's answer, type-erased so the Lambda runtime's future stays shallow (a step's future
/// nests every SDK call several async functions deep).
pub type Answer<'a> = Pin<Box<dyn Future<Output = StepResult<Value>> + Send + 'a>>;

/// Runs a start/check step on `{"action": …}` input, as one leased invocation of the
/// deployment (see `crate::fence`): input that does not parse touches nothing.
macro_rules! start_or_check {
    ($step:ident, $ctx:expr, $registered:expr, $input:expr) => {
        Box::pin(async move {
            match parse::<StartOrCheck>($input)? {
                StartOrCheck::Start(i) => answer(
                    fence::leased($ctx, &i.deployment_id, $registered, $step::start($ctx, &i))
                        .await,
                ),
                StartOrCheck::Check(i) => answer(
                    fence::leased($ctx, &i.deployment_id, $registered, $step::check($ctx, &i))
                        .await,
                ),
            }
        })
    };
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
    match step.name {
        "prepare" => Box::pin(async move { answer(prepare::run(ctx, &input).await) }),
        "sync_db" => start_or_check!(sync_db, ctx, step, input),
        "launch_preprod" => start_or_check!(launch_preprod, ctx, step, input),
        "migrate" => start_or_check!(migrate, ctx, step, input),
        "health_check" => start_or_check!(health_check, ctx, step, input),
        "promote" => start_or_check!(promote, ctx, step, input),
        "switch" => start_or_check!(switch, ctx, step, input),
        "bake" => start_or_check!(bake, ctx, step, input),
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

fn answer<T: Serialize>(result: StepResult<T>) -> StepResult<Value> {
    result.map(|v| serde_json::to_value(v).expect("step outputs serialise"))
}

fn parse<T: DeserializeOwned>(input: Value) -> StepResult<T> {
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
}
