//! `bluegreen adopt`: plan, apply or undo taking an existing ECS service behind an ALB over
//! into blue/green (see `bluegreen_ops::adopt`). Without `--apply` it only says what it would do.

use std::path::PathBuf;
use std::process::ExitCode;

use bluegreen::Context;
use bluegreen_ops::adopt::{self, Request};

use crate::output::Output;

/// `bluegreen adopt` arguments.
#[derive(clap::Args)]
pub struct AdoptArgs {
    /// The ECS cluster.
    #[arg(long)]
    cluster: Option<String>,
    /// The existing ECS service (it becomes the blue slot).
    #[arg(long)]
    service: Option<String>,
    /// The config's name (default: the service's, without a -blue suffix).
    #[arg(long)]
    name: Option<String>,
    /// The production listener, if more than one forwards to the service's target group.
    #[arg(long)]
    listener: Option<String>,
    /// An existing test listener to point at the new slot.
    #[arg(long, conflicts_with = "test_port")]
    test_listener: Option<String>,
    /// Port of the test listener to create (on the production listener's load balancer).
    #[arg(long)]
    test_port: Option<i32>,
    /// Reach pre-prod through a rule on the production listener that matches only each
    /// deployment's preview header (X-Bluegreen-Preview), instead of a test listener.
    #[arg(long, conflicts_with_all = ["test_port", "test_listener", "dns_zone"])]
    test_rule: bool,
    /// The production host name, the one the certificate covers (default: the production
    /// rule's host-header condition, else the first Route 53 name pointing at the load
    /// balancer): the test URL uses it rather than the load balancer's own name.
    #[arg(long)]
    host: Option<String>,
    /// The ECR repository whose pushes deploy the service.
    #[arg(long)]
    repository: Option<String>,
    /// The app's container (default: the one whose image comes from --repository, the
    /// load-balanced one first; never a proxy sidecar in front of the app).
    #[arg(long)]
    container: Option<String>,
    /// Tag patterns that deploy (repeatable).
    #[arg(long = "tag", default_value = "v*")]
    tags: Vec<String>,
    /// Who may approve (repeatable): e-mail addresses or IAM ARNs.
    #[arg(long = "approver")]
    approvers: Vec<String>,
    /// DNS mode: the hosted zone of the service's record (with --dns-record).
    #[arg(long, requires = "dns_record", conflicts_with_all = ["test_port", "test_listener"])]
    dns_zone: Option<String>,
    /// DNS mode: the service's name, a simple CNAME to its load balancer.
    #[arg(long, requires = "dns_zone")]
    dns_record: Option<String>,
    /// Base URL of pre-prod for smoke checks (default: the production host name — --host or
    /// the production rule's — else, for HTTP, the load balancer's DNS name; on the test port,
    /// or production's with --test-rule).
    #[arg(long)]
    test_url: Option<String>,
    /// Where to write the config as TOML (default: <name>.toml).
    #[arg(long)]
    config_out: Option<PathBuf>,
    /// Create what the plan lists.
    #[arg(long, conflicts_with = "undo")]
    apply: bool,
    /// Remove what adopting this service created (only before anything was deployed).
    #[arg(long, value_name = "NAME")]
    undo: Option<String>,
}

fn required(value: &Option<String>, flag: &str) -> Result<String, ExitCode> {
    value
        .clone()
        .ok_or_else(|| crate::usage(&format!("adopt needs {flag} (or --undo NAME)")))
}

/// A run that failed part-way took its own changes back: says which, and what is still in
/// place (to remove by hand), before the error itself.
fn failure(out: Output, failed: &adopt::Failed) -> ExitCode {
    for undone in &failed.taken_back.undone {
        errln!("taken back: {undone}");
    }
    for left in &failed.taken_back.left {
        errln!("NOT taken back (undo it by hand): {left}");
    }
    out.error(&failed.error)
}

/// On an emulator on this machine, what works there when not given, each said: the smoke
/// checks go to `bluegreen local up`'s app (`BLUEGREEN_LOCAL_APP`; a load balancer's name does
/// not resolve here), and the approver is the caller (so `run --auto-approve` can approve).
async fn emulator_defaults(ctx: &Context, request: &mut Request) {
    if request.test_url.is_none()
        && request.dns.is_none()
        && let Ok(app) = std::env::var("BLUEGREEN_LOCAL_APP")
    {
        errln!(
            "on the emulator: smoke checks go to {app} (BLUEGREEN_LOCAL_APP, the app of \
             `bluegreen local up`); --test-url chooses another"
        );
        request.test_url = Some(app);
    }
    if request.approvers.is_empty()
        && let Ok(caller) = bluegreen::identity::caller_arn(ctx).await
    {
        errln!(
            "on the emulator: the approver is you ({caller}), so `run --auto-approve` can \
             approve; --approver chooses others"
        );
        request.approvers = vec![caller];
    }
}

/// `bluegreen adopt`.
pub async fn run(out: Output, args: AdoptArgs) -> ExitCode {
    let ctx = Context::from_env().await;
    if let Some(name) = &args.undo {
        return match adopt::undo(&ctx, name).await {
            Ok(removed) => out.show(&removed, |removed| {
                for r in removed {
                    outln!("removed {r}");
                }
            }),
            Err(e) => out.error(&e),
        };
    }
    let mut request = match (|| {
        Ok::<_, ExitCode>(Request {
            cluster: required(&args.cluster, "--cluster")?,
            service: required(&args.service, "--service")?,
            name: args.name.clone(),
            production_listener_arn: args.listener.clone(),
            test_listener_arn: args.test_listener.clone(),
            test_port: args.test_port,
            test_rule: args.test_rule,
            host: args.host.clone(),
            repository: required(&args.repository, "--repository")?,
            container: args.container.clone(),
            tags: args.tags.clone(),
            approvers: args.approvers.clone(),
            test_url: args.test_url.clone(),
            dns: args.dns_zone.clone().zip(args.dns_record.clone()).map(
                |(hosted_zone_id, record_name)| adopt::DnsTarget {
                    hosted_zone_id,
                    record_name,
                },
            ),
        })
    })() {
        Ok(r) => r,
        Err(code) => return code,
    };
    if ctx.on_loopback_emulator() {
        emulator_defaults(&ctx, &mut request).await;
    }
    let adopted = match adopt::adopt(&ctx, &request, args.apply).await {
        Ok(a) => a,
        Err(failed) => return failure(out, &failed),
    };
    if args.apply {
        let path = args
            .config_out
            .clone()
            .unwrap_or_else(|| PathBuf::from(format!("{}.toml", adopted.config.name)));
        let text = match toml::to_string_pretty(&adopted.config) {
            Ok(text) => text,
            Err(e) => return crate::fail(&format!("cannot write the config as TOML: {e}")),
        };
        if let Err(e) = std::fs::write(&path, text) {
            return crate::fail(&format!("cannot write {}: {e}", path.display()));
        }
        errln!("config written to {}", path.display());
    }
    out.show(&adopted, |a| {
        for change in &a.changes {
            outln!("{change}");
        }
        for note in &a.notes {
            outln!("note: {note}");
        }
        match (a.changed, args.apply) {
            (false, _) => outln!("nothing to change: {} is adopted", a.config.name),
            (true, false) => outln!("run again with --apply to make these changes"),
            (true, true) => outln!(
                "adopted {}: check it with `bluegreen doctor {}`",
                a.config.name,
                a.config.name
            ),
        }
    })
}
