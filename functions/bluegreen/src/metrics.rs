//! CloudWatch metrics in the Embedded Metric Format: one JSON line on stdout that Lambda's log
//! pipeline turns into a metric, so emitting one costs no API call in a step's path.
//!
//! `bluegreen/NeedsAttention` is the metric the stack's alarm watches: it counts deployments
//! that ended needing a person, and nothing else (ordinary aborts and rollbacks are the
//! product working, not an incident). `bluegreen/LiveSlotViolations` is the live-slot guard's
//! (a second alarm): production's slots out of shape between deployments. The delivery
//! metrics ([`DELIVERY_METRICS`]) are emitted once per deployment, by its ending: teams alarm
//! and build dashboards on them (DESIGN 27).

use chrono::{DateTime, Utc};
use serde_json::json;

use crate::context::Context;
use crate::delivery::Delivered;
use crate::record::Status;

/// The metric namespace.
pub const NAMESPACE: &str = "bluegreen";
/// Deployments that ended needing a person.
pub const NEEDS_ATTENTION: &str = "NeedsAttention";
/// Violations the live-slot guard found (`guard`): production on a slot that runs nothing,
/// an idle slot running outside a warm window.
pub const LIVE_SLOT_VIOLATIONS: &str = "LiveSlotViolations";

/// One EMF document: `metric` (a count, no dimensions: the alarms watch the total) with
/// `value`, and `properties` (searchable in the logs) beside it.
fn emf_line(metric: &str, value: usize, at: DateTime<Utc>, properties: &[(&str, &str)]) -> String {
    let mut doc = json!({
        "_aws": {
            "Timestamp": at.timestamp_millis(),
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [[]],
                "Metrics": [{"Name": metric, "Unit": "Count"}],
            }],
        },
        metric: value,
    });
    for (name, text) in properties {
        doc[*name] = json!(text);
    }
    doc.to_string()
}

/// Prints `line` when running in Lambda, whose log pipeline turns it into metrics; a context
/// that collects its metric lines (tests, the local runner: [`Context::collect_metrics`])
/// gets it instead. Elsewhere nothing reads it, and it would only clutter a terminal.
fn emit(ctx: &Context, line: &str) {
    if let Some(lines) = ctx.metric_lines() {
        lines.lock().expect("metric lines").push(line.to_owned());
    } else if std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some() {
        println!("{line}");
    }
}

/// The EMF line counting one needs-attention ending of `deployment_id` (a property, searchable
/// in the logs, not a dimension: the alarm watches the total).
pub fn needs_attention_line(service: &str, deployment_id: &str, at: DateTime<Utc>) -> String {
    emf_line(
        NEEDS_ATTENTION,
        1,
        at,
        &[("service", service), ("deployment_id", deployment_id)],
    )
}

/// Emits the needs-attention metric.
pub fn needs_attention(ctx: &Context, service: &str, deployment_id: &str) {
    emit(
        ctx,
        &needs_attention_line(service, deployment_id, ctx.now()),
    );
}

/// The EMF line counting the live-slot guard's `count` violations for `service`.
pub fn live_slot_violations_line(service: &str, count: usize, at: DateTime<Utc>) -> String {
    emf_line(LIVE_SLOT_VIOLATIONS, count, at, &[("service", service)])
}

/// Emits the live-slot guard's metric, and returns its line (the guard's report carries it,
/// so tests and the CLI see what CloudWatch would count).
pub fn live_slot_violations(ctx: &Context, service: &str, count: usize) -> String {
    let line = live_slot_violations_line(service, count, ctx.now());
    emit(ctx, &line);
    line
}

/// The delivery metrics one ended deployment adds to (see [`crate::delivery`] for what each
/// counts), per service (dimension `Service`) and over every service (no dimension).
pub const DELIVERY_METRICS: [&str; 6] = [
    DEPLOYMENTS,
    SUCCEEDED,
    REACHED_PRODUCTION,
    CHANGE_FAILURES,
    LEAD_TIME,
    TIME_TO_RESTORE,
];
/// Deployments that ended (any way).
pub const DEPLOYMENTS: &str = "Deployments";
/// Deployments that succeeded: their sum per day is the deployment frequency.
pub const SUCCEEDED: &str = "DeploymentsSucceeded";
/// Deployments that reached production (traffic moved to them).
pub const REACHED_PRODUCTION: &str = "DeploymentsReachedProduction";
/// Deployments that reached production and failed there: divided by
/// [`REACHED_PRODUCTION`], the change failure rate.
pub const CHANGE_FAILURES: &str = "ChangeFailures";
/// Push to production, seconds (deployments that reached production).
pub const LEAD_TIME: &str = "LeadTimeSeconds";
/// Failure seen to production restored, seconds (a rollback's or an abort's ending after the
/// switch; a failure left needing attention is restored by a later deployment, which the
/// records show — `bluegreen metrics` — and no single ending knows).
pub const TIME_TO_RESTORE: &str = "TimeToRestoreSeconds";

/// The EMF line of one deployment that ended as `d` says (its status terminal, `ended_at`
/// set): counts and seconds, with `Service` and no dimension, and the deployment's id as a
/// property.
pub fn deployment_ended_line(d: &Delivered) -> String {
    let count = |yes: bool| json!(u8::from(yes));
    let mut values: Vec<(&str, serde_json::Value, &str)> = vec![
        (DEPLOYMENTS, count(true), "Count"),
        (SUCCEEDED, count(d.status == Status::Succeeded), "Count"),
        (REACHED_PRODUCTION, count(d.switched_at.is_some()), "Count"),
        (CHANGE_FAILURES, count(d.change_failed()), "Count"),
    ];
    if let Some(lead) = d.lead_time() {
        values.push((LEAD_TIME, json!(lead.num_seconds().max(0)), "Seconds"));
    }
    if d.change_failed()
        && matches!(d.status, Status::RolledBack | Status::Aborted)
        && let Some(ended) = d.ended_at
    {
        let seen = d.failed_at.or(d.switched_at).unwrap_or(ended);
        let seconds = (ended - seen).num_seconds().max(0);
        values.push((TIME_TO_RESTORE, json!(seconds), "Seconds"));
    }
    let at = d.ended_at.unwrap_or(d.created_at);
    let metrics: Vec<serde_json::Value> = values
        .iter()
        .map(|(name, _, unit)| json!({"Name": name, "Unit": unit}))
        .collect();
    let mut doc = json!({
        "_aws": {
            "Timestamp": at.timestamp_millis(),
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [["Service"], []],
                "Metrics": metrics,
            }],
        },
        "Service": d.service,
        "deployment_id": d.deployment_id,
        "status": d.status.to_string(),
    });
    for (name, value, _) in values {
        doc[name] = value;
    }
    doc.to_string()
}

/// Emits the delivery metrics of a deployment that just ended.
pub fn deployment_ended(ctx: &Context, d: &Delivered) {
    emit(ctx, &deployment_ended_line(d));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_needs_attention_line_is_an_emf_document_for_one_count() {
        let line = needs_attention_line("shop", "shop-1", DateTime::UNIX_EPOCH);
        let doc: serde_json::Value = serde_json::from_str(&line).unwrap();
        let directive = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], NAMESPACE);
        // Every metric named in the directive has a value at the top level, as EMF requires.
        for metric in directive["Metrics"].as_array().unwrap() {
            let name = metric["Name"].as_str().unwrap();
            assert_eq!(doc[name], 1, "{name}");
        }
        assert_eq!(doc["deployment_id"], "shop-1");
        assert!(
            !line.contains('\n'),
            "one line, or the pipeline reads two documents"
        );
    }

    #[test]
    fn the_live_slot_line_counts_the_violations() {
        let line = live_slot_violations_line("shop", 2, DateTime::UNIX_EPOCH);
        let doc: serde_json::Value = serde_json::from_str(&line).unwrap();
        let directive = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Metrics"][0]["Name"], LIVE_SLOT_VIOLATIONS);
        assert_eq!(doc[LIVE_SLOT_VIOLATIONS], 2);
        assert_eq!(doc["service"], "shop");
    }

    #[test]
    fn a_rolled_back_deployment_counts_a_change_failure_and_its_time_to_restore() {
        let at = |minutes: i64| DateTime::UNIX_EPOCH + chrono::Duration::minutes(minutes);
        let rolled_back = Delivered {
            service: "shop".into(),
            deployment_id: "shop-3".into(),
            status: Status::RolledBack,
            pushed_at: at(0),
            created_at: at(0),
            switched_at: Some(at(5)),
            failed_at: Some(at(10)),
            ended_at: Some(at(20)),
        };
        let doc: serde_json::Value =
            serde_json::from_str(&deployment_ended_line(&rolled_back)).unwrap();
        let directive = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Dimensions"], json!([["Service"], []]));
        assert_eq!(doc["Service"], "shop");
        assert_eq!(doc[DEPLOYMENTS], 1);
        assert_eq!(doc[SUCCEEDED], 0);
        assert_eq!(doc[REACHED_PRODUCTION], 1);
        assert_eq!(doc[CHANGE_FAILURES], 1);
        assert_eq!(doc[LEAD_TIME], 300);
        assert_eq!(doc[TIME_TO_RESTORE], 600);
        let named: Vec<&str> = directive["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["Name"].as_str().unwrap())
            .collect();
        assert_eq!(named, DELIVERY_METRICS);
        assert_eq!(doc["_aws"]["Timestamp"], at(20).timestamp_millis());

        // Aborted before production: counted, nothing else.
        let aborted = Delivered {
            status: Status::Aborted,
            switched_at: None,
            failed_at: None,
            ..rolled_back
        };
        let doc: serde_json::Value =
            serde_json::from_str(&deployment_ended_line(&aborted)).unwrap();
        assert_eq!(
            (doc[DEPLOYMENTS].clone(), doc[CHANGE_FAILURES].clone()),
            (json!(1), json!(0))
        );
        assert!(doc.get(LEAD_TIME).is_none() && doc.get(TIME_TO_RESTORE).is_none());
    }
}
