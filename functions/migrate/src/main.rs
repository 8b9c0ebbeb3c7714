//! Lambda handler for the **migrate** step. Input: `{"action": "start", "deployment_id": …}` or
//! `{"action": "check", "deployment_id": …, "deadline": …, "attempt": …}`; see
//! `bluegreen::steps::migrate`.

use bluegreen::steps::migrate;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    bluegreen::lambda::serve_polling(
        |ctx, input| async move { migrate::start(&ctx, &input).await },
        |ctx, input| async move { migrate::check(&ctx, &input).await },
    )
    .await
}
