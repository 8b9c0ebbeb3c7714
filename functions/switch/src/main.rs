//! Lambda handler for the **switch** step. Input: `{"action": "start", "deployment_id": …}` or
//! `{"action": "check", "deployment_id": …, "deadline": …, "attempt": …}`; see
//! `bluegreen::steps::switch`.

use bluegreen::steps::switch;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    bluegreen::lambda::serve_polling(
        |ctx, input| async move { switch::start(&ctx, &input).await },
        |ctx, input| async move { switch::check(&ctx, &input).await },
    )
    .await
}
