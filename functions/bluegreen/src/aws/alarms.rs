//! [`Alarms`] over CloudWatch.

use aws_sdk_cloudwatch::types::{AlarmType, StateValue};

use crate::error::{StepError, StepResult};
use crate::ports::alarms::Alarms;

/// CloudWatch through the SDK.
pub struct CloudWatch(pub aws_sdk_cloudwatch::Client);

/// The most alarm names `DescribeAlarms` takes in one request (CloudWatch API reference).
const NAMES_PER_REQUEST: usize = 100;

/// `(name, state, reason)` of an alarm, metric or composite.
type Seen = (String, Option<StateValue>, Option<String>);

impl CloudWatch {
    /// Every alarm of `names`, both kinds, every page. Without `AlarmTypes` AWS answers
    /// metric alarms only ("even if composite alarms exist"), so a composite alarm in
    /// `bake.alarms` would be invisible to the bake and reported missing by `doctor`. AWS takes
    /// at most [`NAMES_PER_REQUEST`] names a request, so longer lists are asked in chunks.
    async fn describe(&self, names: &[String]) -> StepResult<(Vec<Seen>, Vec<Seen>)> {
        let mut metric = Vec::new();
        let mut composite = Vec::new();
        for chunk in names.chunks(NAMES_PER_REQUEST) {
            let mut pages = self
                .0
                .describe_alarms()
                .set_alarm_names(Some(chunk.to_vec()))
                .alarm_types(AlarmType::MetricAlarm)
                .alarm_types(AlarmType::CompositeAlarm)
                .into_paginator()
                .send();
            while let Some(page) = pages.next().await {
                let page = page.map_err(|e| StepError::from_sdk("cloudwatch:DescribeAlarms", e))?;
                metric.extend(page.metric_alarms.unwrap_or_default().into_iter().map(|a| {
                    (
                        a.alarm_name.unwrap_or_default(),
                        a.state_value,
                        a.state_reason,
                    )
                }));
                composite.extend(
                    page.composite_alarms
                        .unwrap_or_default()
                        .into_iter()
                        .map(|a| {
                            (
                                a.alarm_name.unwrap_or_default(),
                                a.state_value,
                                a.state_reason,
                            )
                        }),
                );
            }
        }
        Ok((metric, composite))
    }
}

#[async_trait::async_trait]
impl Alarms for CloudWatch {
    async fn firing(&self, names: &[String]) -> StepResult<Vec<String>> {
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let (metric, composite) = self.describe(names).await?;
        let mut firing = Vec::new();
        for (name, state, reason) in metric {
            if state == Some(StateValue::Alarm) {
                firing.push(format!(
                    "alarm {name} is in ALARM: {}",
                    reason.unwrap_or_default()
                ));
            }
        }
        for (name, state, _) in composite {
            if state == Some(StateValue::Alarm) {
                firing.push(format!("composite alarm {name} is in ALARM"));
            }
        }
        Ok(firing)
    }

    async fn missing(&self, names: &[String]) -> StepResult<Vec<String>> {
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let (metric, composite) = self.describe(names).await?;
        let found: Vec<String> = metric
            .into_iter()
            .chain(composite)
            .map(|(name, _, _)| name)
            .collect();
        Ok(names
            .iter()
            .filter(|n| !found.contains(n))
            .cloned()
            .collect())
    }
}
