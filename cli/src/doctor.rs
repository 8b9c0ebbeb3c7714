//! `bluegreen doctor [service]`: the installation and one service (or every service) checked
//! against AWS, read-only; every finding listed with what to do. Exit status 0 when there is
//! nothing to fix, 1 otherwise.

use std::process::ExitCode;

use bluegreen::config_store::ConfigStore;
use bluegreen::{Context, StepError};
use bluegreen_ops::doctor::{self, Finding};
use serde::Serialize;

use crate::output::Output;

#[derive(Serialize)]
struct Report {
    healthy: bool,
    findings: Vec<Finding>,
}

fn config_finding(subject: &str, problems: &[String]) -> Finding {
    Finding {
        code: "config-invalid",
        subject: subject.to_owned(),
        problem: problems.join("; "),
        fix: "fix the config file, check it with `bluegreen config validate`, and store it \
              with `bluegreen config put`"
            .into(),
    }
}

fn not_configured(service: &str, prefix: &str) -> Finding {
    Finding {
        code: "service-not-configured",
        subject: service.to_owned(),
        problem: format!("no config is stored for {service} under {prefix}"),
        fix: "store its config with `bluegreen config put <file>` (or make one with `bluegreen \
              adopt`), or point BLUEGREEN_CONFIG_PREFIX at the prefix that holds it"
            .into(),
    }
}

/// `bluegreen doctor [service]`.
pub async fn run(out: Output, service: Option<&str>) -> ExitCode {
    let ctx = Context::from_env().await;
    let mut findings = doctor::installation(&ctx).await;
    let store = ConfigStore::new(&ctx);
    let stored = match service {
        Some(name) => match store.load(name).await {
            Ok(config) => vec![Ok(config)],
            Err(StepError::ConfigInvalid(problems)) => {
                findings.push(config_finding(name, &problems));
                vec![]
            }
            // Not an error of doctor's: a finding beside the installation's (which may say why:
            // a missing table, another config prefix).
            Err(StepError::ServiceNotFound(_)) => {
                findings.push(not_configured(name, &ctx.settings.config_prefix));
                vec![]
            }
            Err(e) => return out.error(&e),
        },
        None => match store.load_each().await {
            Ok(all) => all,
            Err(e) => return out.error(&e),
        },
    };
    for config in stored {
        match config {
            Ok(config) => findings.extend(doctor::service(&ctx, &config).await),
            Err(bad) => findings.push(config_finding(&bad.service, &bad.problems)),
        }
    }
    let report = Report {
        healthy: findings.is_empty(),
        findings,
    };
    out.show(&report, |r| {
        if r.healthy {
            outln!("ok: nothing to fix");
            return;
        }
        for f in &r.findings {
            outln!(
                "{}  {}\n    {}\n    fix: {}",
                f.code,
                f.subject,
                f.problem,
                f.fix
            );
        }
        outln!("{} finding(s)", r.findings.len());
    });
    if report.healthy {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
