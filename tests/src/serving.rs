//! Serving an axum app on a loopback port for a test, and counting the AWS requests a context's
//! clients make.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeSerializationInterceptorContextRef;
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

/// Counts the requests a client sends (an interceptor, before each request is serialised).
#[derive(Debug, Clone, Default)]
pub struct RequestCounter(Arc<AtomicUsize>);

impl RequestCounter {
    /// Requests so far.
    pub fn count(&self) -> usize {
        self.0.load(Ordering::SeqCst)
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
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

/// `ctx` with its DynamoDB requests counted.
pub fn count_dynamodb(ctx: &Context) -> (Context, RequestCounter) {
    let counter = RequestCounter::default();
    let mut ctx = ctx.clone();
    ctx.dynamodb = aws_sdk_dynamodb::Client::from_conf(
        ctx.dynamodb
            .config()
            .to_builder()
            .interceptor(counter.clone())
            .build(),
    );
    (ctx, counter)
}
