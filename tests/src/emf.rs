//! Lambda's log pipeline for embedded metric format lines, played against the emulator (moto
//! has no log pipeline): each document is checked as CloudWatch checks it — a `_aws` directive
//! with a namespace, dimension sets naming top-level string fields, metrics with numeric
//! top-level values — and each metric of each dimension set becomes a `PutMetricData` data
//! point at the document's timestamp. AWS documents the format at
//! <https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html>.

use aws_sdk_cloudwatch::primitives::DateTime as AwsTime;
use aws_sdk_cloudwatch::types::{Dimension, MetricDatum, StandardUnit};
use serde_json::Value;

/// The data points one EMF `line` makes, by namespace; a malformed document is an error (AWS
/// would extract no metric from it).
pub fn data_points(line: &str) -> Result<Vec<(String, MetricDatum)>, String> {
    let doc: Value = serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"))?;
    let aws = &doc["_aws"];
    let millis = aws["Timestamp"]
        .as_i64()
        .ok_or("_aws.Timestamp is not a number")?;
    let directives = aws["CloudWatchMetrics"]
        .as_array()
        .ok_or("_aws.CloudWatchMetrics is not a list")?;
    let mut points = Vec::new();
    for directive in directives {
        let namespace = directive["Namespace"].as_str().ok_or("no Namespace")?;
        let sets = directive["Dimensions"].as_array().ok_or("no Dimensions")?;
        let metrics = directive["Metrics"].as_array().ok_or("no Metrics")?;
        for set in sets {
            let mut dimensions = Vec::new();
            for name in set.as_array().ok_or("a dimension set is not a list")? {
                let name = name.as_str().ok_or("a dimension name is not text")?;
                let value = doc[name]
                    .as_str()
                    .ok_or(format!("dimension {name} has no top-level text value"))?;
                dimensions.push(Dimension::builder().name(name).value(value).build());
            }
            for metric in metrics {
                let name = metric["Name"].as_str().ok_or("a metric has no Name")?;
                let value = doc[name]
                    .as_f64()
                    .ok_or(format!("metric {name} has no top-level number"))?;
                let unit = metric["Unit"].as_str().unwrap_or("None");
                let datum = MetricDatum::builder()
                    .metric_name(name)
                    .set_dimensions(Some(dimensions.clone()))
                    .value(value)
                    .unit(StandardUnit::from(unit))
                    .timestamp(AwsTime::from_millis(millis))
                    .build();
                points.push((namespace.to_owned(), datum));
            }
        }
    }
    Ok(points)
}

/// Delivers `lines` to the CloudWatch of `sdk` (the emulator's), as the log pipeline would:
/// how many data points were put.
pub async fn deliver(sdk: &aws_config::SdkConfig, lines: &[String]) -> Result<usize, String> {
    let client = aws_sdk_cloudwatch::Client::new(sdk);
    let mut count = 0;
    for line in lines {
        for (namespace, datum) in data_points(line)? {
            client
                .put_metric_data()
                .namespace(namespace)
                .metric_data(datum)
                .send()
                .await
                .map_err(|e| format!("PutMetricData: {e:?}"))?;
            count += 1;
        }
    }
    Ok(count)
}
