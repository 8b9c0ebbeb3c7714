//! `bluegreen wait`: follows one deployment until it ends, for people and for the CI pipeline
//! that pushed its image. Exit status: 0 when the new image serves production; 1 when the
//! deployment aborted, rolled back, was superseded by a newer push or needs attention; 2 when
//! `--timeout` passed first (as for bad usage, a malformed `--digest` included); 3 when
//! bluegreen cannot be read (a table is missing, access is denied, nothing of the push is found
//! and the service is not configured or its config is invalid, or AWS stayed unreachable from
//! the first look to the timeout) — a pipeline can tell its own set-up from a failed
//! deployment. Transient errors (throttling, 5xx, a dropped connection) are retried within
//! `--timeout`.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use bluegreen::Context;
use bluegreen::config_store::ConfigStore;
use bluegreen::record::{Deployment, TimelineEntry};
use bluegreen::steps::registry;
use bluegreen_ops::follow::{self, Ending, Target};
use serde::Serialize;

use crate::output::Output;

/// Exit status when the timeout passed before the deployment ended.
const TIMED_OUT: u8 = 2;

/// Exit status of bad usage that clap cannot see (a malformed `--digest`).
const USAGE: u8 = 2;

/// Exit status when bluegreen cannot be read: not a verdict on the deployment.
const CANNOT_READ: u8 = 3;

/// `bluegreen wait` arguments.
#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("which").required(true).args(["deployment", "digest", "tag"])))]
pub struct WaitArgs {
    /// The deployment id.
    #[arg(long)]
    deployment: Option<String>,
    /// The service (with --digest or --tag).
    #[arg(long, required_unless_present = "deployment")]
    service: Option<String>,
    /// The pushed image's digest (`sha256:…`).
    #[arg(long, requires = "service")]
    digest: Option<String>,
    /// The pushed tag.
    #[arg(long, requires = "service")]
    tag: Option<String>,
    /// With --digest or --tag: only deployments created this long before the wait started
    /// count (an earlier push of the same tag is not this one).
    #[arg(long, default_value = "15m", value_parser = humantime::parse_duration)]
    since: Duration,
    /// Give up after this long: exit status 2, or 3 when bluegreen could never be read.
    #[arg(long, default_value = "60m", value_parser = humantime::parse_duration)]
    timeout: Duration,
    /// How often to look.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    interval: Duration,
}

impl WaitArgs {
    fn target(&self) -> Target {
        let since = chrono::Utc::now()
            - chrono::Duration::from_std(self.since).unwrap_or(chrono::Duration::MAX);
        let service = self.service.clone().unwrap_or_default();
        match (&self.deployment, &self.digest, &self.tag) {
            (Some(id), _, _) => Target::Deployment(id.clone()),
            (None, Some(digest), _) => Target::Digest {
                service,
                digest: digest.clone(),
                since,
            },
            (None, None, tag) => Target::Tag {
                service,
                tag: tag.clone().unwrap_or_default(),
                since,
            },
        }
    }
}

/// What `--output json` prints at the end.
#[derive(Serialize)]
struct Waited<'a> {
    outcome: &'a str,
    deployment: Option<&'a Deployment>,
}

fn line(entry: &TimelineEntry) -> String {
    format!(
        "{}  {:<16} {:<10} {}",
        entry.at.format("%H:%M:%S"),
        registry::label(&entry.step),
        entry.outcome.words(),
        bluegreen::text::line(&entry.detail)
    )
}

/// `bluegreen wait`.
pub async fn run(out: Output, args: WaitArgs) -> ExitCode {
    if let Some(refused) = malformed_digest(out, &args) {
        return refused;
    }
    let ctx = Context::from_env().await;
    let target = args.target();
    let started = Instant::now();
    let live = out == Output::Text && std::io::stderr().is_terminal();
    let (mut shown, mut announced, mut service_checked) = (0, false, false);
    // What the last look that succeeded found (`None`: no look has succeeded yet).
    let mut last: Option<Option<Deployment>> = None;
    loop {
        let found = match follow::find(&ctx, &target).await {
            Ok(found) => found,
            // Throttling, a 5xx, a dropped connection: looked at again until the timeout, then
            // a timeout if bluegreen was read before, else "cannot read".
            Err(e) if e.is_retryable() => {
                if started.elapsed() >= args.timeout {
                    return match last {
                        Some(found) => timed_out(out, found, args.timeout),
                        None => cannot_read(out, &e),
                    };
                }
                if out == Output::Text {
                    errln!("bluegreen: {}: {e} (trying again)", e.name());
                }
                pause(&args, started).await;
                continue;
            }
            Err(e) => return cannot_read(out, &e),
        };
        // Nothing of this push yet: a service that is not configured (or whose config is
        // invalid) will never have it. Checked once, and only then: a deployment already
        // running carries its own copy of the config, whatever the stored one says now.
        if found.is_none() && !service_checked {
            match service_configured(&ctx, &args).await {
                Ok(()) => service_checked = true,
                // Asked again with the next look (and, at the deadline, a timeout).
                Err(e) if e.is_retryable() => {}
                Err(e) => return cannot_read(out, &e),
            }
        }
        if let Some(d) = &found {
            if !announced && out == Output::Text {
                outln!(
                    "following {} ({}:{})",
                    d.deployment_id,
                    d.service,
                    d.image.tag
                );
                announced = true;
            }
            if out == Output::Text {
                for entry in d.timeline.iter().skip(shown) {
                    if live {
                        eprint!("\r\x1b[K");
                    }
                    outln!("{}", line(entry));
                }
            }
            shown = d.timeline.len();
            if let Some(ending) = Ending::of(d.status) {
                return finish(out, d, ending);
            }
        }
        if started.elapsed() >= args.timeout {
            return timed_out(out, found, args.timeout);
        }
        if live {
            show_waiting(found.as_ref(), started);
        }
        last = Some(found);
        pause(&args, started).await;
    }
}

/// Refuses a `--digest` that cannot be one at once (bad usage, exit 2), instead of waiting
/// the whole timeout for a push that cannot exist.
fn malformed_digest(out: Output, args: &WaitArgs) -> Option<ExitCode> {
    let digest = args
        .digest
        .as_deref()
        .filter(|d| !bluegreen::event::valid_digest(d))?;
    out.failure(
        "EventMalformed",
        &format!(
            "--digest {:?} is not an image digest (\"sha256:\" and 64 lowercase hex digits)",
            bluegreen::text::line(digest)
        ),
    );
    Some(ExitCode::from(USAGE))
}

/// Sleeps until the next look: `--interval`, or less when the timeout comes first.
async fn pause(args: &WaitArgs, started: Instant) {
    tokio::time::sleep(
        args.interval
            .min(args.timeout.saturating_sub(started.elapsed())),
    )
    .await;
}

/// The terminal's one status line while nothing new happened: where the deployment is.
fn show_waiting(found: Option<&Deployment>, started: Instant) {
    let status = found.map_or("not prepared yet".to_owned(), |d| d.status.to_string());
    // The erase-line sequence is ours; the status is shown, never acted on.
    eprint!(
        "\r\x1b[K  {} ({}s)",
        bluegreen::text::line(&status),
        started.elapsed().as_secs()
    );
}

/// `--timeout` passed before the deployment ended: where it is (or that none was found).
fn timed_out(out: Output, found: Option<Deployment>, timeout: Duration) -> ExitCode {
    let what = match &found {
        Some(d) => format!("{} is still {}", d.deployment_id, d.status),
        None => "no deployment of that push was found".into(),
    };
    if out == Output::Json {
        outln!(
            "{}",
            serde_json::json!({"outcome": "timed_out", "deployment": found})
        );
    }
    errln!(
        "bluegreen: timed out after {}: {what}",
        humantime::format_duration(timeout)
    );
    ExitCode::from(TIMED_OUT)
}

/// Whether the service `--service` names can have a deployment to wait for: an error when it
/// is not configured, or its config is invalid (no push of it will deploy), or the read failed.
async fn service_configured(ctx: &Context, args: &WaitArgs) -> Result<(), bluegreen::StepError> {
    match args.service.as_deref() {
        Some(service) => ConfigStore::new(ctx).load(service).await.map(drop),
        None => Ok(()),
    }
}

/// Reports an error that is not the deployment's verdict, exit status [`CANNOT_READ`].
fn cannot_read(out: Output, e: &bluegreen::StepError) -> ExitCode {
    out.error(e);
    ExitCode::from(CANNOT_READ)
}

fn finish(out: Output, d: &Deployment, ending: Ending) -> ExitCode {
    let outcome = d.status.to_string();
    out.show(
        &Waited {
            outcome: &outcome,
            deployment: Some(d),
        },
        |_| match ending {
            Ending::Succeeded => outln!("{} succeeded", d.deployment_id),
            Ending::Failed => outln!(
                "{} ended {}: {}",
                d.deployment_id,
                d.status,
                d.failure.as_deref().unwrap_or("see bluegreen history")
            ),
        },
    );
    match ending {
        Ending::Succeeded => ExitCode::SUCCESS,
        Ending::Failed => ExitCode::FAILURE,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bluegreen::record::StepOutcome;

    /// Issue 29 item 9: `Switch traffic traffic_moving` was the stored word, not a person's.
    #[test]
    fn a_timeline_line_says_its_outcome_in_words() {
        let entry = TimelineEntry {
            step: "switch".into(),
            at: chrono::Utc::now(),
            outcome: StepOutcome::TrafficMoving,
            detail: "10% to green".into(),
        };
        let shown = line(&entry);
        assert!(shown.contains("moving traffic"), "{shown}");
        assert!(!shown.contains("traffic_moving"), "{shown}");
    }
}
