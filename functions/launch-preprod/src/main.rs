//! Lambda handler for the **launch pre-prod** step. Input: `{"action": "start", "deployment_id": …}` or
//! `{"action": "check", "deployment_id": …, "deadline": …, "attempt": …}`; see
//! `bluegreen::steps::launch_preprod`.

use bluegreen::steps::launch_preprod;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    bluegreen::lambda::serve_polling(
        |ctx, input| async move { launch_preprod::start(&ctx, &input).await },
        |ctx, input| async move { launch_preprod::check(&ctx, &input).await },
    )
    .await
}
