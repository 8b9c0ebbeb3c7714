//! The delivery pages: `/metrics` (every service's four numbers) and `/services/<name>` (one
//! service's numbers, charts of its deployments and its recent deployments), counted by
//! `bluegreen::delivery` as `bluegreen metrics` counts them.

use bluegreen::delivery::{self, Delivered, DeliveryMetrics, Spread, human};
use bluegreen::record::Deployment;
use chrono::{DateTime, Duration, Utc};
use maud::{Markup, html};

use crate::charts;
use crate::pages::{page, status, time};

/// Days the per-day chart shows.
const DAYS: i64 = 14;
/// Deployments the lead-time and per-step charts show.
const LAST: usize = 10;
/// Deployments the table lists.
const ROWS: usize = 50;

fn spread(s: Option<Spread>) -> String {
    s.map(|s| format!("{} (p90 {})", human(s.median_seconds), human(s.p90_seconds)))
        .unwrap_or_else(|| "—".into())
}

fn rate(m: &DeliveryMetrics) -> String {
    m.change_failure_rate
        .map(|r| {
            format!(
                "{:.0}% ({} of {})",
                r * 100.0,
                m.change_failures,
                m.reached_production
            )
        })
        .unwrap_or_else(|| "—".into())
}

/// The four numbers of one service (or all), as a definition list.
fn numbers(m: &DeliveryMetrics) -> Markup {
    html! {
        dl class="numbers" {
            dt { "Deployment frequency" } dd { (format!("{:.2}", m.per_day)) " a day (" (m.succeeded) " succeeded of " (m.deployments) ")" }
            dt { "Lead time, push to production" } dd { (spread(m.lead_time)) }
            dt { "Change failure rate" } dd { (rate(m)) }
            dt { "Time to restore" } dd {
                (spread(m.time_to_restore))
                @if m.unrestored > 0 { " · " (m.unrestored) " not restored yet" }
            }
        }
    }
}

/// Every service's numbers since `since`, each linking to its page.
pub fn overview(all: &[DeliveryMetrics], since: DateTime<Utc>) -> Markup {
    page(
        "Delivery metrics",
        html! {
            section {
                h1 { "Delivery metrics" }
                p { "Since " (time(since)) ". Lead time and time to restore: median (90th percentile)." }
                table {
                    tr { th { "Service" } th { "Per day" } th { "Lead time" } th { "Change failure rate" } th { "Time to restore" } }
                    @for m in all {
                        tr {
                            td {
                                @match &m.service {
                                    Some(name) => a href={ "/services/" (name) } { (name) },
                                    None => strong { "all services" },
                                }
                            }
                            td { (format!("{:.2}", m.per_day)) }
                            td { (spread(m.lead_time)) }
                            td { (rate(m)) }
                            td { (spread(m.time_to_restore)) }
                        }
                    }
                }
            }
        },
    )
}

/// Succeeded deployments per day over the last [`DAYS`] days up to `now`.
fn per_day(delivered: &[Delivered], now: DateTime<Utc>) -> Vec<(String, f64)> {
    (0..DAYS)
        .rev()
        .map(|back| {
            let day = (now - Duration::days(back)).date_naive();
            let count = delivered
                .iter()
                .filter(|d| d.status == bluegreen::record::Status::Succeeded)
                .filter(|d| d.switched_at.is_some_and(|at| at.date_naive() == day))
                .count();
            (day.format("%m-%d").to_string(), count as f64)
        })
        .collect()
}

/// One service's page: its numbers, deployments per day, the lead time and the time per step
/// of its last deployments, and its deployments in the window (`recent`, newest first; the
/// table shows the newest [`ROWS`]).
pub fn service(
    name: &str,
    metrics: &DeliveryMetrics,
    recent: &[Deployment],
    now: DateTime<Utc>,
) -> Markup {
    let delivered: Vec<Delivered> = recent.iter().map(Delivered::of).collect();
    let last: Vec<&Deployment> = recent.iter().take(LAST).rev().collect();
    let lead: Vec<(String, f64)> = last
        .iter()
        .filter_map(|d| {
            Delivered::of(d)
                .lead_time()
                .map(|t| (d.image.tag.clone(), t.num_seconds() as f64))
        })
        .collect();
    let steps: Vec<(String, Vec<delivery::StepTime>)> = last
        .iter()
        .map(|d| (d.image.tag.clone(), delivery::step_times(d)))
        .collect();
    page(
        &format!("{name} · delivery"),
        html! {
            section {
                h1 { (name) }
                p { "Since " (time(metrics.since)) "." }
                (numbers(metrics))
            }
            section {
                h2 { "Succeeded deployments per day" }
                (charts::bars("Succeeded deployments per day", &per_day(&delivered, now), |v| format!("{v} succeeded")))
                h2 { "Lead time, push to production" }
                (charts::bars("Lead time of the last deployments", &lead, |v| human(v as i64)))
                h2 { "Where the time goes" }
                (charts::step_stack("Time per step of the last deployments", &steps))
            }
            section {
                h2 { "Deployments" }
                table {
                    tr { th { "Deployment" } th { "Tag" } th { "Status" } th { "Pushed" } th { "Lead time" } }
                    @for d in recent.iter().take(ROWS) {
                        tr {
                            td { a href={ "/deployments/" (d.deployment_id) } { code { (d.deployment_id) } } }
                            td { code { (d.image.tag) } }
                            td { (status(d.status)) }
                            td { (time(d.pushed_at)) }
                            td { (Delivered::of(d).lead_time().map(|t| human(t.num_seconds())).unwrap_or_else(|| "—".into())) }
                        }
                    }
                }
            }
        },
    )
}
