//! The CloudWatch adapter: which of a service's alarms are firing, and which do not exist.

use aws_sdk_cloudwatch::types::StateValue;

use crate::context::Context;
use crate::error::{StepError, StepResult};

/// One line per named alarm (metric or composite) that is in ALARM now, with CloudWatch's
/// reason; empty when none is (or no names are given, without a call).
pub async fn firing(ctx: &Context, names: &[String]) -> StepResult<Vec<String>> {
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let out = describe(ctx, names).await?;
    let mut firing = Vec::new();
    for alarm in out.metric_alarms.unwrap_or_default() {
        if alarm.state_value == Some(StateValue::Alarm) {
            firing.push(format!(
                "alarm {} is in ALARM: {}",
                alarm.alarm_name.unwrap_or_default(),
                alarm.state_reason.unwrap_or_default()
            ));
        }
    }
    for alarm in out.composite_alarms.unwrap_or_default() {
        if alarm.state_value == Some(StateValue::Alarm) {
            firing.push(format!(
                "composite alarm {} is in ALARM",
                alarm.alarm_name.unwrap_or_default()
            ));
        }
    }
    Ok(firing)
}

/// The named alarms (metric or composite) that do not exist.
pub async fn missing(ctx: &Context, names: &[String]) -> StepResult<Vec<String>> {
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let out = describe(ctx, names).await?;
    let mut found: Vec<String> = out
        .metric_alarms
        .unwrap_or_default()
        .into_iter()
        .filter_map(|a| a.alarm_name)
        .collect();
    found.extend(
        out.composite_alarms
            .unwrap_or_default()
            .into_iter()
            .filter_map(|a| a.alarm_name),
    );
    Ok(names
        .iter()
        .filter(|n| !found.contains(n))
        .cloned()
        .collect())
}

async fn describe(
    ctx: &Context,
    names: &[String],
) -> StepResult<aws_sdk_cloudwatch::operation::describe_alarms::DescribeAlarmsOutput> {
    ctx.cloudwatch
        .describe_alarms()
        .set_alarm_names(Some(names.to_vec()))
        .send()
        .await
        .map_err(|e| StepError::from_sdk("cloudwatch:DescribeAlarms", e))
}
