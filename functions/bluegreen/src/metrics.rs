//! CloudWatch metrics in the Embedded Metric Format: one JSON line on stdout that Lambda's log
//! pipeline turns into a metric, so emitting one costs no API call in a step's path.
//!
//! `bluegreen/NeedsAttention` is the metric the stack's alarm watches: it counts deployments
//! that ended needing a person, and nothing else (ordinary aborts and rollbacks are the
//! product working, not an incident). `bluegreen/LiveSlotViolations` is the live-slot guard's
//! (a second alarm): production's slots out of shape between deployments.

use chrono::{DateTime, Utc};
use serde_json::json;

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

/// Prints `line` when running in Lambda (elsewhere there is no log pipeline to read it, and
/// the line would only clutter a terminal).
fn emit(line: &str) {
    if std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some() {
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

/// Emits the needs-attention metric when running in Lambda.
pub fn needs_attention(service: &str, deployment_id: &str, at: DateTime<Utc>) {
    emit(&needs_attention_line(service, deployment_id, at));
}

/// The EMF line counting the live-slot guard's `count` violations for `service`.
pub fn live_slot_violations_line(service: &str, count: usize, at: DateTime<Utc>) -> String {
    emf_line(LIVE_SLOT_VIOLATIONS, count, at, &[("service", service)])
}

/// Emits the live-slot guard's metric when running in Lambda, and returns its line (the
/// guard's report carries it, so tests and the CLI see what CloudWatch would count).
pub fn live_slot_violations(service: &str, count: usize, at: DateTime<Utc>) -> String {
    let line = live_slot_violations_line(service, count, at);
    emit(&line);
    line
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
}
