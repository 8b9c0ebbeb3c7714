//! `bluegreen console`: the approval console served on this machine (loopback only).
//!
//! Pages are read with your AWS credentials and requests from this machine act as your AWS
//! identity (STS). Against an emulator on this machine the pages also decide; against AWS they
//! are read-only and name the CLI command, because decisions are the operator API's alone. See
//! [`bluegreen_console::local`] for the Host and CSRF checks.

use std::net::SocketAddr;
use std::process::ExitCode;

use bluegreen::{Context, identity};

/// Arguments of `bluegreen console`.
#[derive(clap::Args)]
pub struct ConsoleArgs {
    /// Loopback address to listen on (the console never serves other machines: deploy the
    /// stack's console for them).
    #[arg(long, default_value = "127.0.0.1:8088")]
    listen: SocketAddr,
    /// Serve links only: do not act as your AWS identity even for local requests.
    #[arg(long)]
    links_only: bool,
}

/// Serves until interrupted.
pub async fn serve(args: ConsoleArgs) -> ExitCode {
    if !args.listen.ip().is_loopback() {
        return crate::fail(&format!(
            "refusing to listen on {}: the local console serves this machine only \
             (127.0.0.1 or ::1); others use the stack's console",
            args.listen
        ));
    }
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
    outln!("bluegreen console on http://{address}/");
    match &operator {
        Some(arn) => outln!("requests from this machine act as {arn}"),
        None => outln!("links only"),
    }
    if !ctx.on_loopback_emulator() {
        outln!("read-only against AWS: decide with `bluegreen approve` / `bluegreen reject`");
    }
    let app = bluegreen_console::local::app(ctx, address, operator);
    let served = bluegreen_console::local::serve(listener, app, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await;
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => crate::fail(&format!("console stopped: {e}")),
    }
}
