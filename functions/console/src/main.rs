//! Lambda entry point of the approval console (function URL or API Gateway). The identity AWS
//! verified for an IAM-authenticated (SigV4) request becomes the [`CallerIdentity`]; requests
//! without one must carry a signed link.

use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::Response;
use bluegreen_console::CallerIdentity;
use lambda_http::RequestExt;
use lambda_http::request::RequestContext;

/// The IAM principal API Gateway (REST or HTTP API) or a function URL authenticated, if the
/// route uses IAM authorization. Taken from the invocation's request context, which the client
/// cannot write.
fn iam_principal(request: &Request) -> Option<String> {
    match request.extensions().request_context_ref()? {
        RequestContext::ApiGatewayV2(context) => {
            context.authorizer.as_ref()?.iam.as_ref()?.user_arn.clone()
        }
        RequestContext::ApiGatewayV1(context) => context.identity.user_arn.clone(),
        // Other integrations carry no IAM identity: such requests need a link.
        _ => None,
    }
}

async fn identify(mut request: Request, next: Next) -> Response {
    if let Some(arn) = iam_principal(&request) {
        request.extensions_mut().insert(CallerIdentity(arn));
    }
    next.run(request).await
}

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    // Honours AWS_LAMBDA_LOG_FORMAT=JSON and AWS_LAMBDA_LOG_LEVEL, as set by the stack.
    lambda_http::tracing::init_default_subscriber();
    let ctx = bluegreen::Context::from_env().await;
    let app = bluegreen_console::router(ctx).layer(middleware::from_fn(identify));
    lambda_http::run(app).await
}
