//! [`Alarms`] over CloudWatch.

use aws_sdk_cloudwatch::types::StateValue;

use crate::error::{StepError, StepResult};
use crate::ports::alarms::Alarms;

/// CloudWatch through the SDK.
pub struct CloudWatch(pub aws_sdk_cloudwatch::Client);

impl CloudWatch {
    async fn describe(
        &self,
        names: &[String],
    ) -> StepResult<aws_sdk_cloudwatch::operation::describe_alarms::DescribeAlarmsOutput> {
        self.0
            .describe_alarms()
            .set_alarm_names(Some(names.to_vec()))
            .send()
            .await
            .map_err(|e| StepError::from_sdk("cloudwatch:DescribeAlarms", e))
    }
}

#[async_trait::async_trait]
impl Alarms for CloudWatch {
    async fn firing(&self, names: &[String]) -> StepResult<Vec<String>> {
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let out = self.describe(names).await?;
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

    async fn missing(&self, names: &[String]) -> StepResult<Vec<String>> {
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let out = self.describe(names).await?;
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
}
