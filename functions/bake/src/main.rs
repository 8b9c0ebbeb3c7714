//! Lambda handler for the **bake** step. Input: `{"action": "start", "deployment_id": …}` or
//! `{"action": "check", "deployment_id": …, "deadline": …, "attempt": …}`; see
//! `bluegreen::steps::bake`.

use bluegreen::steps::bake;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    bluegreen::lambda::serve_polling(
        |ctx, input| async move { bake::start(&ctx, &input).await },
        |ctx, input| async move { bake::check(&ctx, &input).await },
    )
    .await
}
