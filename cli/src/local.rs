//! `bluegreen local up|down`: the emulator, the ECS stand-in and the smoke checks' app in the
//! background, for the README's first-hour walk (see `bluegreen_ops::local`). `up` prints the
//! `export` lines (`eval "$(bluegreen local up)"`); `down` stops what `up` started.

use std::io::{BufRead, BufReader};
use std::process::{Command, ExitCode, Stdio};

use aws_credential_types::Credentials;
use bluegreen::Context;
use bluegreen::context::Settings;
use bluegreen_ops::local::{self, Running, player};

use crate::output::Output;

/// `bluegreen local` subcommands.
#[derive(clap::Subcommand)]
pub enum LocalCommand {
    /// Start the emulator (moto with its control routes), a stand-in for the ECS scheduler and
    /// ELB, and an app answering the smoke checks, in the background; print the exports.
    Up {
        /// The emulator's port (default: any free one).
        #[arg(long, default_value_t = 0)]
        port: u16,
        /// Also create one ECS service behind an ALB (shop-cluster/shop-blue), the shape the
        /// first-hour walk adopts.
        #[arg(long)]
        example: bool,
    },
    /// Stop what `local up` started.
    Down,
    /// (Run by `local up`.) Play ECS and serve the app for the emulator at --endpoint.
    #[command(hide = true)]
    Play {
        #[arg(long)]
        endpoint: String,
    },
}

/// Runs a `local` subcommand.
pub async fn run(out: Output, command: LocalCommand) -> ExitCode {
    match command {
        LocalCommand::Up { port, example } => up(out, port, example).await,
        LocalCommand::Down => match local::down() {
            Ok(stopped) => out.show(&stopped, |stopped| {
                if stopped.is_empty() {
                    errln!("nothing was running");
                }
                for s in stopped {
                    errln!("stopped {s}");
                }
            }),
            Err(e) => crate::fail(&e),
        },
        LocalCommand::Play { endpoint } => play(&endpoint).await,
    }
}

/// A context over the emulator at `endpoint` with its test credentials.
async fn context(endpoint: &str) -> Context {
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(Credentials::new(
            "testing",
            "testing",
            None,
            None,
            "bluegreen-local",
        ))
        .load()
        .await;
    Context::new(&sdk, Settings::from_env())
}

async fn up(out: Output, port: u16, example: bool) -> ExitCode {
    if let Some(running) = local::running() {
        return crate::fail(&format!(
            "already up at {} (processes {} and {}): `bluegreen local down` first",
            running.endpoint, running.emulator_pid, running.player_pid
        ));
    }
    let (emulator_pid, endpoint) = match local::start_emulator(port) {
        Ok(started) => started,
        Err(e) => return crate::fail(&e),
    };
    let (player_pid, app_url) = match start_player(&endpoint) {
        Ok(started) => started,
        Err(e) => {
            local::stop(emulator_pid, "moto_harness.py");
            return crate::fail(&e);
        }
    };
    let running = Running {
        endpoint: endpoint.clone(),
        app_url,
        emulator_pid,
        player_pid,
        logs: local::directory(),
    };
    if let Err(e) = local::record(&running) {
        // Unrecorded, nothing could stop them later.
        local::stop(player_pid, "local play");
        local::stop(emulator_pid, "moto_harness.py");
        return crate::fail(&e);
    }
    if example {
        let ctx = context(&endpoint).await;
        let control = player::Control::new(&endpoint);
        if let Err(e) = local::example::create(&ctx, &control).await {
            return out.error(&e);
        }
    }
    out.show(&running, |r| {
        outln!("export AWS_ENDPOINT_URL={}", r.endpoint);
        outln!(
            "export AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing"
        );
        outln!("export BLUEGREEN_LOCAL_APP={}", r.app_url);
        errln!(
            "emulator at {} (process {}), ECS stand-in and app at {} (process {}); logs in {}; \
             `bluegreen local down` stops them{}",
            r.endpoint,
            r.emulator_pid,
            r.app_url,
            r.player_pid,
            r.logs.display(),
            if example {
                "; created shop-cluster/shop-blue behind shop-alb :80"
            } else {
                ""
            }
        );
    })
}

/// Starts `bluegreen local play` in the background; its process id and the app's URL.
fn start_player(endpoint: &str) -> Result<(u32, String), String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let log = local::directory().join("player.log");
    let log_file = std::fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
    let mut child =
        local::detached(Command::new(exe).args(["local", "play", "--endpoint", endpoint]))
            .stdout(Stdio::piped())
            .stderr(log_file)
            .spawn()
            .map_err(|e| e.to_string())?;
    let stdout = child.stdout.take().ok_or("the player's output")?;
    let app = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .find_map(|line| line.strip_prefix("APP ").map(|p| p.trim().to_owned()));
    match app {
        Some(url) => Ok((child.id(), url)),
        None => Err(format!(
            "the ECS stand-in did not start (its log: {})",
            log.display()
        )),
    }
}

/// `local play`: serves the app on a free port (printed as `APP <url>`), then plays ECS.
async fn play(endpoint: &str) -> ExitCode {
    let listener = match tokio::net::TcpListener::bind("127.0.0.1:0").await {
        Ok(l) => l,
        Err(e) => return crate::fail(&format!("cannot listen for the app: {e}")),
    };
    let port = listener.local_addr().map(|a| a.port()).unwrap_or_default();
    // The parent reads this line, then stops reading: nothing more is printed on stdout.
    println!("APP http://127.0.0.1:{port}");
    tokio::spawn(local::app::serve(listener));
    let ctx = context(endpoint).await;
    player::play(&ctx, &player::Control::new(endpoint)).await;
    ExitCode::SUCCESS
}
