//! Lambda entry point of the approval console and operator API ([`bluegreen_console::lambda_app`]):
//! behind a function URL with `AuthType NONE` it serves link holders; behind one with
//! `AuthType AWS_IAM` (the operator API) every request carries the IAM principal AWS verified.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    // Honours AWS_LAMBDA_LOG_FORMAT=JSON and AWS_LAMBDA_LOG_LEVEL, as set by the stack.
    lambda_http::tracing::init_default_subscriber();
    let ctx = bluegreen::Context::from_env().await;
    lambda_http::run(bluegreen_console::lambda_app(ctx)).await
}
