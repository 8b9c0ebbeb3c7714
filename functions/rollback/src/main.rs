//! Lambda handler for the **rollback** step. Input: `{"deployment_id": …, "error": {"Error": …,
//! "Cause": …}}` as the state machine's `Catch` leaves it; see `bluegreen::steps::rollback`.

use bluegreen::steps::{FailureInput, rollback};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    bluegreen::lambda::serve(
        |ctx, input: FailureInput| async move { rollback::run(&ctx, &input).await },
    )
    .await
}
