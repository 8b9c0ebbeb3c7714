//! Lambda entry point of the approval console and operator API ([`bluegreen_console::lambda_app`]):
//! behind a function URL with `AuthType NONE` it serves link holders; behind one with
//! `AuthType AWS_IAM` (the operator API) every request carries the IAM principal AWS verified.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    bluegreen::lambda::init_logging();
    let ctx = bluegreen::Context::from_env().await;
    lambda_http::run(bluegreen_console::lambda_app(ctx)).await
}
