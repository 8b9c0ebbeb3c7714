//! Lambda handler for the **abort** step. Input: `{"deployment_id": …, "error": {"Error": …,
//! "Cause": …}}` as the state machine's `Catch` leaves it; see `bluegreen::steps::abort`.

use bluegreen::steps::{FailureInput, abort};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    bluegreen::lambda::serve(
        |ctx, input: FailureInput| async move { abort::run(&ctx, &input).await },
    )
    .await
}
