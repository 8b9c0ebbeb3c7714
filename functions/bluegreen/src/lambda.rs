//! The shared body of every Lambda handler: JSON logging, clients built once, input parsed,
//! the step called, and errors mapped to their stable names.

use std::future::Future;
use std::pin::Pin;

use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::Instrument;

use crate::context::Context;
use crate::error::StepError;

/// Starts the Lambda log subscriber: JSON with AWS_LAMBDA_LOG_FORMAT=JSON (as the stack sets
/// it), the level from AWS_LAMBDA_LOG_LEVEL, and every line written through
/// [`crate::text::lines`], so a value from outside (an error quoting input, a reason) cannot
/// put a control sequence into the log stream or onto the screen of whoever tails it.
pub fn init_logging() {
    lambda_runtime::tracing::init_default_subscriber_with_writer(|| {
        crate::text::VisibleWriter(std::io::stdout())
    });
}

/// Runs a step as a Lambda function. `step` receives the parsed input; a payload that does
/// not parse is an `EventMalformed` error and nothing is called.
pub async fn serve<I, O, F, Fut>(step: F) -> Result<(), lambda_runtime::Error>
where
    I: DeserializeOwned + Send + 'static,
    O: Serialize + Send + 'static,
    F: Fn(Context, I) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<O, StepError>> + Send + 'static,
{
    init_logging();
    let ctx = Context::from_env().await;
    let step = &step;
    let ctx = &ctx;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| {
        // Every log line of the invocation carries the deployment id (never the task token).
        let deployment_id = event
            .payload
            .get("deployment_id")
            .or_else(|| event.payload.get("resume"))
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_owned();
        let span = tracing::info_span!(
            "step",
            deployment_id = %deployment_id,
            request_id = %event.context.request_id
        );
        async move {
            let input: I = serde_json::from_value(event.payload)
                .map_err(|e| Diagnostic::from(StepError::EventMalformed(e.to_string())))?;
            // Boxed and type-erased: a step's future nests every SDK call's future several
            // async functions deep; erasing it here keeps the runtime's future shallow enough
            // for the compiler's layout queries (a fresh build of the teardown handler
            // overflowed their depth limit without it).
            let answer: Pin<Box<dyn Future<Output = Result<O, StepError>> + Send>> =
                Box::pin(step(ctx.clone(), input));
            answer.await.map_err(|e| {
                tracing::error!(error_type = e.name(), error = %e, "step failed");
                Diagnostic::from(e)
            })
        }
        .instrument(span)
    }))
    .await
}

/// Runs the registered step that `BLUEGREEN_STEP` names (see [`crate::steps::registry`]).
/// An unset or unknown name fails at init, before the function takes any event, with the
/// names it knows.
pub async fn serve_registered_step() -> Result<(), lambda_runtime::Error> {
    use crate::steps::registry::{self, STEP_VARIABLE, STEPS};
    let name = std::env::var(STEP_VARIABLE).unwrap_or_default();
    let Some(step) = registry::by_name(&name) else {
        let known: Vec<&str> = STEPS.iter().map(|s| s.name).collect();
        return Err(format!(
            "{STEP_VARIABLE}={name:?} names no bluegreen step; known: {}",
            known.join(", ")
        )
        .into());
    };
    serve(move |ctx, input: serde_json::Value| async move {
        registry::invoke(&ctx, step, input).await
    })
    .await
}
