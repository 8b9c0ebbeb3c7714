//! Lambda handler for the **prepare** step. Input: the EventBridge `ECR Image Action` event, or
//! `{"resume": "<deployment id>"}` for a queued deployment; see `bluegreen::steps::prepare`.

use bluegreen::steps::prepare;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    bluegreen::lambda::serve(|ctx, event: serde_json::Value| async move {
        prepare::run(&ctx, &event).await
    })
    .await
}
