//! Lambda handler for the **health check** step. Input: `{"action": "start", "deployment_id": …}` or
//! `{"action": "check", "deployment_id": …, "deadline": …, "attempt": …}`; see
//! `bluegreen::steps::health_check`.

use bluegreen::steps::health_check;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    bluegreen::lambda::serve_polling(
        |ctx, input| async move { health_check::start(&ctx, &input).await },
        |ctx, input| async move { health_check::check(&ctx, &input).await },
    )
    .await
}
