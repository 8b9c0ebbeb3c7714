//! `bluegreen metrics [service] [--since 30d]`: the four delivery numbers from the deployment
//! records (see `bluegreen::delivery`), per service and overall, and for one service where
//! its deployments' time goes step by step.

use std::process::ExitCode;

use bluegreen::Context;
use bluegreen::config_store::ConfigStore;
use bluegreen::delivery::{self, Delivered, DeliveryMetrics, Spread, StepTime, human};
use bluegreen::record::Records;
use serde::Serialize;

use crate::output::{Output, table};

/// `bluegreen metrics`.
#[derive(clap::Args)]
pub struct MetricsArgs {
    /// Only this service (and where its time goes, step by step).
    service: Option<String>,
    /// The window's start: 30d, 12h, 2w, 90m, a date (2026-11-01) or an RFC 3339 time.
    #[arg(long, default_value = "30d")]
    since: String,
}

/// What `--output json` prints.
#[derive(Serialize)]
struct Report {
    /// Each service's numbers, then every service's together (`service: null`).
    metrics: Vec<DeliveryMetrics>,
    /// One service's median time per step over the window's deployments.
    #[serde(skip_serializing_if = "Option::is_none")]
    step_medians: Option<Vec<StepTime>>,
}

/// Reads the window's records and prints the numbers.
pub async fn run(out: Output, args: MetricsArgs) -> ExitCode {
    let ctx = Context::from_env().await;
    let now = ctx.now();
    let since = match delivery::parse_since(&args.since, now) {
        Ok(since) => since,
        Err(e) => return out.failure("ConfigInvalid", &e),
    };
    let records = match Records::new(&ctx)
        .created_since(args.service.as_deref(), since)
        .await
    {
        Ok(records) => records,
        Err(e) => return out.error(&e),
    };
    // A name with no deployments in the window is checked against the configs: a typo says
    // so, a service without deployments shows zeros (a deleted service's history still shows).
    if let Some(service) = &args.service
        && records.is_empty()
        && let Err(e) = ConfigStore::new(&ctx).load(service).await
    {
        return out.error(&e);
    }
    let delivered: Vec<Delivered> = records.iter().map(Delivered::of).collect();
    let report = match &args.service {
        Some(service) => Report {
            metrics: vec![delivery::measure(&delivered, Some(service), since, now)],
            step_medians: Some(delivery::step_medians(&records)),
        },
        None => Report {
            metrics: delivery::by_service(&delivered, since, now),
            step_medians: None,
        },
    };
    out.show(&report, print)
}

fn spread(s: Option<Spread>) -> String {
    s.map(|s| format!("{} / {}", human(s.median_seconds), human(s.p90_seconds)))
        .unwrap_or_else(|| "-".into())
}

fn print(report: &Report) {
    let rows: Vec<Vec<String>> = report
        .metrics
        .iter()
        .map(|m| {
            vec![
                m.service.clone().unwrap_or_else(|| "(all)".into()),
                m.deployments.to_string(),
                m.reached_production.to_string(),
                m.succeeded.to_string(),
                format!("{:.2}", m.per_day),
                spread(m.lead_time),
                m.change_failure_rate
                    .map(|r| format!("{:.0}% ({})", r * 100.0, m.change_failures))
                    .unwrap_or_else(|| "-".into()),
                spread(m.time_to_restore),
                m.unrestored.to_string(),
            ]
        })
        .collect();
    if let Some(first) = report.metrics.first() {
        outln!(
            "since {} (lead time and time to restore: median / 90th percentile)",
            first.since.format("%Y-%m-%d %H:%M UTC")
        );
    }
    table(
        &[
            "SERVICE",
            "DEPLOYMENTS",
            "TO PRODUCTION",
            "SUCCEEDED",
            "PER DAY",
            "LEAD TIME",
            "CHANGE FAILURES",
            "TIME TO RESTORE",
            "UNRESTORED",
        ],
        &rows,
    );
    if let Some(steps) = &report.step_medians {
        outln!("\nmedian time per step:");
        let rows: Vec<Vec<String>> = steps
            .iter()
            .map(|s| vec![s.step.clone(), human(s.seconds)])
            .collect();
        table(&["STEP", "MEDIAN"], &rows);
    }
}
