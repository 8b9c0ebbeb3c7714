//! Lambda handler for the **scheduled teardown**, invoked by EventBridge Scheduler; the event's
//! content is not used. See `bluegreen::steps::teardown`.

use bluegreen::steps::teardown;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    bluegreen::lambda::serve(
        |ctx, _event: serde_json::Value| async move { teardown::run(&ctx).await },
    )
    .await
}
