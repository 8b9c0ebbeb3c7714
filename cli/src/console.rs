//! `bluegreen console`: the approval console served from this machine.
//!
//! Requests from this machine (loopback) act as the operator's AWS identity (STS), like the
//! CLI; requests from elsewhere (with `--listen 0.0.0.0:…`) must carry a signed link.

use std::net::SocketAddr;
use std::process::ExitCode;

use axum::extract::{ConnectInfo, Request};
use axum::middleware::{self, Next};
use bluegreen::{Context, identity};
use bluegreen_console::CallerIdentity;

/// Arguments of `bluegreen console`.
#[derive(clap::Args)]
pub struct ConsoleArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8088")]
    listen: SocketAddr,
    /// Serve links only: do not act as your AWS identity even for local requests.
    #[arg(long)]
    links_only: bool,
}

/// Serves until interrupted.
pub async fn serve(args: ConsoleArgs) -> ExitCode {
    let ctx = Context::from_env().await;
    let operator = if args.links_only {
        None
    } else {
        match identity::caller_arn(&ctx).await {
            Ok(arn) => Some(arn),
            Err(e) => {
                return crate::fail(&format!(
                    "cannot tell who you are ({}: {e}); use --links-only to serve links only",
                    e.name()
                ));
            }
        }
    };
    let listener = match tokio::net::TcpListener::bind(args.listen).await {
        Ok(l) => l,
        Err(e) => return crate::fail(&format!("cannot listen on {}: {e}", args.listen)),
    };
    let address = listener.local_addr().unwrap_or(args.listen);
    println!("bluegreen console on http://{address}/");
    match &operator {
        Some(arn) => println!("requests from this machine act as {arn}"),
        None => println!("links only"),
    }
    let app = bluegreen_console::router(ctx).layer(middleware::from_fn(
        move |mut request: Request, next: Next| {
            let operator = operator.clone();
            async move {
                let local = request
                    .extensions()
                    .get::<ConnectInfo<SocketAddr>>()
                    .is_some_and(|ConnectInfo(peer)| peer.ip().is_loopback());
                if let (true, Some(arn)) = (local, operator) {
                    request.extensions_mut().insert(CallerIdentity(arn));
                }
                next.run(request).await
            }
        },
    ));
    let served = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await;
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => crate::fail(&format!("console stopped: {e}")),
    }
}
