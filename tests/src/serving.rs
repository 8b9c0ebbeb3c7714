//! Serving an axum app on a loopback port for a test, and counting the AWS requests a context's
//! clients make.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeSerializationInterceptorContextRef;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use bluegreen::Context;

/// An app served on a loopback port, stopped when dropped.
pub struct Served {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Served {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A listener on a free loopback port (bound before serving, so what is served can name it).
pub async fn loopback_listener() -> tokio::net::TcpListener {
    tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port")
}

/// Serves `app` on `listener`, with the peer address available to it (`ConnectInfo`).
pub fn serve(app: axum::Router, listener: tokio::net::TcpListener) -> Served {
    let url = format!("http://{}", listener.local_addr().expect("bound"));
    let task = tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .expect("the app serves");
    });
    Served { url, task }
}

/// Serves the local console's `app` on `listener` as `bluegreen console` does: through its
/// front door ([`bluegreen_console::local::serve`]).
pub fn serve_local_console(app: axum::Router, listener: tokio::net::TcpListener) -> Served {
    let url = format!("http://{}", listener.local_addr().expect("bound"));
    let task = tokio::spawn(async move {
        bluegreen_console::local::serve(listener, app, std::future::pending())
            .await
            .expect("the local console serves");
    });
    Served { url, task }
}

/// Counts the requests a client sends (an interceptor, before each request is serialised),
/// and remembers each as `Service:Operation`.
#[derive(Debug, Clone, Default)]
pub struct RequestCounter(Arc<Mutex<Vec<String>>>);

impl RequestCounter {
    /// Requests so far.
    pub fn count(&self) -> usize {
        self.0.lock().expect("counter lock").len()
    }

    /// Every request so far, as `Service:Operation`, in order.
    pub fn calls(&self) -> Vec<String> {
        self.0.lock().expect("counter lock").clone()
    }

    /// Forgets the requests so far.
    pub fn reset(&self) {
        self.0.lock().expect("counter lock").clear();
    }
}

impl Intercept for RequestCounter {
    fn name(&self) -> &'static str {
        "bluegreen-test-request-counter"
    }

    fn read_before_serialization(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let call = cfg
            .load::<Metadata>()
            .map(|m| format!("{}:{}", m.service(), m.name()))
            .unwrap_or_else(|| "unknown".into());
        self.0.lock().expect("counter lock").push(call);
        Ok(())
    }
}

/// `ctx` with its DynamoDB requests counted.
pub fn count_dynamodb(ctx: &Context) -> (Context, RequestCounter) {
    let counter = RequestCounter::default();
    let mut sdk = ctx.sdk().expect("SDK clients").clone();
    sdk.dynamodb = aws_sdk_dynamodb::Client::from_conf(
        sdk.dynamodb
            .config()
            .to_builder()
            .interceptor(counter.clone())
            .build(),
    );
    (ctx.clone().with_sdk(sdk), counter)
}

/// `ctx` with every AWS request it makes counted, whichever client makes it.
pub fn count_all(ctx: &Context) -> (Context, RequestCounter) {
    let counter = RequestCounter::default();
    (intercept_all(ctx, counter.clone()), counter)
}

/// `ctx` with `interceptor` on every one of its SDK clients.
pub fn intercept_all(ctx: &Context, interceptor: impl Intercept + Clone + 'static) -> Context {
    let mut clients = ctx.sdk().expect("SDK clients").clone();
    macro_rules! counted {
        ($($field:ident: $sdk:ident),* $(,)?) => {
            $(clients.$field = $sdk::Client::from_conf(
                clients.$field.config().to_builder().interceptor(interceptor.clone()).build(),
            );)*
        };
    }
    counted!(
        ecs: aws_sdk_ecs,
        elb: aws_sdk_elasticloadbalancingv2,
        route53: aws_sdk_route53,
        dynamodb: aws_sdk_dynamodb,
        ssm: aws_sdk_ssm,
        sns: aws_sdk_sns,
        cloudwatch: aws_sdk_cloudwatch,
        rds: aws_sdk_rds,
        sfn: aws_sdk_sfn,
        sts: aws_sdk_sts,
        secrets: aws_sdk_secretsmanager,
        autoscaling: aws_sdk_applicationautoscaling,
        ecr: aws_sdk_ecr,
    );
    ctx.clone().with_sdk(clients)
}
