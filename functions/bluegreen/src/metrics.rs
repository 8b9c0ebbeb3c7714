//! CloudWatch metrics in the Embedded Metric Format: one JSON line on stdout that Lambda's log
//! pipeline turns into a metric, so emitting one costs no API call in a step's path.
//!
//! `bluegreen/NeedsAttention` is the metric the stack's alarm watches: it counts deployments
//! that ended needing a person, and nothing else (ordinary aborts and rollbacks are the
//! product working, not an incident).

use chrono::{DateTime, Utc};
use serde_json::json;

/// The metric namespace.
pub const NAMESPACE: &str = "bluegreen";
/// Deployments that ended needing a person.
pub const NEEDS_ATTENTION: &str = "NeedsAttention";

/// The EMF line counting one needs-attention ending of `deployment_id` (a property, searchable
/// in the logs, not a dimension: the alarm watches the total).
pub fn needs_attention_line(service: &str, deployment_id: &str, at: DateTime<Utc>) -> String {
    json!({
        "_aws": {
            "Timestamp": at.timestamp_millis(),
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [[]],
                "Metrics": [{"Name": NEEDS_ATTENTION, "Unit": "Count"}],
            }],
        },
        NEEDS_ATTENTION: 1,
        "service": service,
        "deployment_id": deployment_id,
    })
    .to_string()
}

/// Emits the needs-attention metric when running in Lambda (elsewhere there is no log pipeline
/// to read it, and the line would only clutter a terminal).
pub fn needs_attention(service: &str, deployment_id: &str, at: DateTime<Utc>) {
    if std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some() {
        println!("{}", needs_attention_line(service, deployment_id, at));
    }
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
}
