//! Lambda handler for the **reconciler**: Step Functions status changes of the deployment
//! machine and a schedule (EventBridge), and the state machine's Catch of a failed ending or
//! hand-over. See `bluegreen::steps::reconcile`.

use bluegreen::steps::reconcile::{self, Request};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    bluegreen::lambda::serve(|ctx, event: serde_json::Value| async move {
        reconcile::run(&ctx, &Request::parse(&event)?).await
    })
    .await
}
