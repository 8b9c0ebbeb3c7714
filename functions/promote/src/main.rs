//! Lambda handler for the **promote** step (after approval, before the switch). Input:
//! `{"action": "start", "deployment_id": …}` or `{"action": "check", "deployment_id": …,
//! "deadline": …, "attempt": …}`; see `bluegreen::steps::promote`.

use bluegreen::steps::promote;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    bluegreen::lambda::serve_polling(
        |ctx, input| async move { promote::start(&ctx, &input).await },
        |ctx, input| async move { promote::check(&ctx, &input).await },
    )
    .await
}
