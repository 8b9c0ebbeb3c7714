//! Lambda handler for the **sync DB** step. Input: `{"action": "start", "deployment_id": …}` or
//! `{"action": "check", "deployment_id": …, "deadline": …, "attempt": …}`; see
//! `bluegreen::steps::sync_db`.

use bluegreen::steps::sync_db;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    bluegreen::lambda::serve_polling(
        |ctx, input| async move { sync_db::start(&ctx, &input).await },
        |ctx, input| async move { sync_db::check(&ctx, &input).await },
    )
    .await
}
