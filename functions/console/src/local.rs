//! The console served from this machine (`bluegreen console`).
//!
//! A loopback port is reachable from any web page the operator opens: a page can post a form
//! to it, and under DNS rebinding a foreign name resolves to 127.0.0.1 so `Origin` and `Host`
//! both name the attacker's site. So the local console answers only requests whose `Host` is
//! `127.0.0.1:<port>`, `localhost:<port>` or `[::1]:<port>`, and every decision form carries a
//! token made for this process (a page elsewhere cannot read it: same-origin policy).
//!
//! Decisions are taken here only against an emulator on this machine; against AWS the pages
//! are read-only and name the CLI command, because decisions are the operator API's alone.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{ConnectInfo, Request};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use bluegreen::Context;

use crate::answer::{Refusal, security_headers};
use crate::caller::{CallerIdentity, LocalRequest};

/// The console for `bluegreen console` listening on `address` (which must be a loopback
/// address): pages over `ctx`, requests from this machine acting as `operator` when given.
pub fn app(ctx: Context, address: SocketAddr, operator: Option<String>) -> Router {
    let port = address.port();
    let hosts: Arc<[String]> = [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        format!("[::1]:{port}"),
    ]
    .into();
    let accepted = LocalRequest {
        csrf: format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        ),
        decides: ctx.on_loopback_emulator(),
    };
    crate::router(ctx)
        .layer(middleware::from_fn(
            move |mut request: Request, next: Next| {
                let hosts = hosts.clone();
                let accepted = accepted.clone();
                let operator = operator.clone();
                async move {
                    let host = request
                        .headers()
                        .get(header::HOST)
                        .and_then(|h| h.to_str().ok())
                        .unwrap_or_default()
                        .to_ascii_lowercase();
                    if !hosts.contains(&host) {
                        return Refusal::new(
                            StatusCode::MISDIRECTED_REQUEST,
                            "Wrong address",
                            format!("this console answers only at http://{}/", hosts[0]),
                        )
                        .into_response();
                    }
                    let from_here = request
                        .extensions()
                        .get::<ConnectInfo<SocketAddr>>()
                        .is_some_and(|ConnectInfo(peer)| peer.ip().is_loopback());
                    request.extensions_mut().remove::<CallerIdentity>();
                    if let (true, Some(arn)) = (from_here, operator) {
                        request.extensions_mut().insert(CallerIdentity(arn));
                    }
                    request.extensions_mut().insert(accepted);
                    let response: Response = next.run(request).await;
                    response
                }
            },
        ))
        .layer(middleware::map_response(security_headers))
        .layer(middleware::map_response(|r: Response| async {
            crate::front::with_local_headers(r)
        }))
}

/// Serves the local console (`app`, from [`app`]) on `listener` until `shutdown` completes,
/// every request head read first by the front door ([`crate::front`]) with the console's
/// limits, and the peer's address available to the app.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::serve::ListenerExt;
    let listener = crate::front::CheckedListener::new(listener)?.tap_io(|_| {});
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}
