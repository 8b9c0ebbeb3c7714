//! [`Scaling`] over Application Auto Scaling.

use aws_sdk_applicationautoscaling::types::{
    AdjustmentType, CustomizedMetricSpecification, MetricAggregationType, MetricDimension,
    MetricStatistic, MetricType, PolicyType, PredefinedMetricSpecification, ScalableDimension,
    ScalableTargetAction, ServiceNamespace, StepScalingPolicyConfiguration, SuspendedState,
    TargetTrackingScalingPolicyConfiguration,
};
use aws_smithy_types::DateTime as SmithyTime;
use chrono::{DateTime, Utc};

use crate::error::{StepError, StepResult};
use crate::ports::scaling::{
    PolicyKind, ScalableTarget, Scaling, ScalingPolicy, ScheduledAction, StepAdjustment, Suspended,
    TrackedMetric,
};

/// Application Auto Scaling through the SDK.
pub struct ApplicationAutoScaling(pub aws_sdk_applicationautoscaling::Client);

const DIMENSION: ScalableDimension = ScalableDimension::EcsServiceDesiredCount;

/// Whether `err` says the named object does not exist (a delete's retry).
fn gone(err: &StepError) -> bool {
    err.aws_code() == Some("ObjectNotFoundException")
}

fn to_chrono(t: &SmithyTime) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(t.secs(), t.subsec_nanos())
}

fn to_smithy(t: &DateTime<Utc>) -> SmithyTime {
    // Whole precision: a copy must compare equal to what it was copied from, or every look
    // would write it again.
    SmithyTime::from_secs_and_nanos(t.timestamp(), t.timestamp_subsec_nanos())
}

fn tracked(config: &TargetTrackingScalingPolicyConfiguration) -> TrackedMetric {
    if let Some(p) = &config.predefined_metric_specification {
        return TrackedMetric::Predefined {
            metric_type: p.predefined_metric_type.as_str().to_owned(),
            resource_label: p.resource_label.clone(),
        };
    }
    match &config.customized_metric_specification {
        Some(c) if c.metrics.is_none() => TrackedMetric::Customized {
            metric_name: c.metric_name.clone().unwrap_or_default(),
            namespace: c.namespace.clone().unwrap_or_default(),
            dimensions: c
                .dimensions
                .iter()
                .flatten()
                .map(|d| (d.name.clone(), d.value.clone()))
                .collect(),
            statistic: c.statistic.as_ref().map(|s| s.as_str().to_owned()),
            unit: c.unit.clone(),
        },
        _ => TrackedMetric::MetricMath,
    }
}

fn policy_kind(p: &aws_sdk_applicationautoscaling::types::ScalingPolicy) -> PolicyKind {
    if let Some(t) = &p.target_tracking_scaling_policy_configuration {
        return PolicyKind::TargetTracking {
            target_value: t.target_value,
            metric: tracked(t),
            scale_out_cooldown: t.scale_out_cooldown,
            scale_in_cooldown: t.scale_in_cooldown,
            disable_scale_in: t.disable_scale_in,
        };
    }
    if let Some(s) = &p.step_scaling_policy_configuration {
        return PolicyKind::Step {
            adjustment_type: s.adjustment_type.as_ref().map(|a| a.as_str().to_owned()),
            steps: s
                .step_adjustments
                .iter()
                .flatten()
                .map(|a| StepAdjustment {
                    lower: a.metric_interval_lower_bound,
                    upper: a.metric_interval_upper_bound,
                    adjustment: a.scaling_adjustment,
                })
                .collect(),
            min_adjustment_magnitude: s.min_adjustment_magnitude,
            cooldown: s.cooldown,
            metric_aggregation_type: s
                .metric_aggregation_type
                .as_ref()
                .map(|m| m.as_str().to_owned()),
            alarms: p
                .alarms
                .iter()
                .flatten()
                .map(|a| a.alarm_name.clone())
                .collect(),
        };
    }
    PolicyKind::Other(p.policy_type.as_str().to_owned())
}

fn target_tracking(
    target_value: f64,
    metric: &TrackedMetric,
    cooldowns: (Option<i32>, Option<i32>),
    disable_scale_in: Option<bool>,
) -> StepResult<TargetTrackingScalingPolicyConfiguration> {
    let mut config = TargetTrackingScalingPolicyConfiguration::builder()
        .target_value(target_value)
        .set_scale_out_cooldown(cooldowns.0)
        .set_scale_in_cooldown(cooldowns.1)
        .set_disable_scale_in(disable_scale_in);
    config = match metric {
        TrackedMetric::Predefined {
            metric_type,
            resource_label,
        } => config.predefined_metric_specification(
            PredefinedMetricSpecification::builder()
                .predefined_metric_type(MetricType::from(metric_type.as_str()))
                .set_resource_label(resource_label.clone())
                .build()
                .map_err(|e| StepError::Internal(format!("scaling policy: {e}")))?,
        ),
        TrackedMetric::Customized {
            metric_name,
            namespace,
            dimensions,
            statistic,
            unit,
        } => config.customized_metric_specification(
            CustomizedMetricSpecification::builder()
                .metric_name(metric_name)
                .namespace(namespace)
                .set_dimensions(Some(
                    dimensions
                        .iter()
                        .map(|(n, v)| MetricDimension::builder().name(n).value(v).build())
                        .collect::<Result<_, _>>()
                        .map_err(|e| StepError::Internal(format!("scaling policy: {e}")))?,
                ))
                .set_statistic(statistic.as_deref().map(MetricStatistic::from))
                .set_unit(unit.clone())
                .build(),
        ),
        TrackedMetric::MetricMath => {
            return Err(StepError::Internal(
                "a metric-math target tracking policy is not copied".into(),
            ));
        }
    };
    config
        .build()
        .map_err(|e| StepError::Internal(format!("scaling policy: {e}")))
}

#[async_trait::async_trait]
impl Scaling for ApplicationAutoScaling {
    async fn target(&self, resource: &str) -> StepResult<Option<ScalableTarget>> {
        let out = self
            .0
            .describe_scalable_targets()
            .service_namespace(ServiceNamespace::Ecs)
            .resource_ids(resource)
            .scalable_dimension(DIMENSION)
            .send()
            .await
            .map_err(|e| {
                StepError::from_sdk("application-autoscaling:DescribeScalableTargets", e)
            })?;
        Ok(out
            .scalable_targets
            .unwrap_or_default()
            .into_iter()
            .find(|t| t.resource_id == resource)
            .map(|t| {
                let s = t
                    .suspended_state
                    .unwrap_or_else(|| SuspendedState::builder().build());
                ScalableTarget {
                    min: t.min_capacity,
                    max: t.max_capacity,
                    suspended: Suspended {
                        scale_in: s.dynamic_scaling_in_suspended.unwrap_or(false),
                        scale_out: s.dynamic_scaling_out_suspended.unwrap_or(false),
                        scheduled: s.scheduled_scaling_suspended.unwrap_or(false),
                    },
                }
            }))
    }

    async fn register(&self, resource: &str, target: &ScalableTarget) -> StepResult<()> {
        self.0
            .register_scalable_target()
            .service_namespace(ServiceNamespace::Ecs)
            .resource_id(resource)
            .scalable_dimension(DIMENSION)
            .min_capacity(target.min)
            .max_capacity(target.max)
            .suspended_state(
                SuspendedState::builder()
                    .dynamic_scaling_in_suspended(target.suspended.scale_in)
                    .dynamic_scaling_out_suspended(target.suspended.scale_out)
                    .scheduled_scaling_suspended(target.suspended.scheduled)
                    .build(),
            )
            .send()
            .await
            .map_err(|e| {
                StepError::from_sdk("application-autoscaling:RegisterScalableTarget", e)
            })?;
        Ok(())
    }

    async fn policies(&self, resource: &str) -> StepResult<Vec<ScalingPolicy>> {
        let mut policies = Vec::new();
        let mut pages = self
            .0
            .describe_scaling_policies()
            .service_namespace(ServiceNamespace::Ecs)
            .resource_id(resource)
            .scalable_dimension(DIMENSION)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| {
                StepError::from_sdk("application-autoscaling:DescribeScalingPolicies", e)
            })?;
            policies.extend(
                page.scaling_policies
                    .unwrap_or_default()
                    .iter()
                    .filter(|p| p.resource_id == resource)
                    .map(|p| ScalingPolicy {
                        name: p.policy_name.clone(),
                        kind: policy_kind(p),
                    }),
            );
        }
        Ok(policies)
    }

    async fn put_policy(&self, resource: &str, policy: &ScalingPolicy) -> StepResult<()> {
        let request = self
            .0
            .put_scaling_policy()
            .service_namespace(ServiceNamespace::Ecs)
            .resource_id(resource)
            .scalable_dimension(DIMENSION)
            .policy_name(&policy.name);
        let request = match &policy.kind {
            PolicyKind::TargetTracking {
                target_value,
                metric,
                scale_out_cooldown,
                scale_in_cooldown,
                disable_scale_in,
            } => request
                .policy_type(PolicyType::TargetTrackingScaling)
                .target_tracking_scaling_policy_configuration(target_tracking(
                    *target_value,
                    metric,
                    (*scale_out_cooldown, *scale_in_cooldown),
                    *disable_scale_in,
                )?),
            PolicyKind::Step {
                adjustment_type,
                steps,
                min_adjustment_magnitude,
                cooldown,
                metric_aggregation_type,
                alarms: _,
            } => request
                .policy_type(PolicyType::StepScaling)
                .step_scaling_policy_configuration(
                    StepScalingPolicyConfiguration::builder()
                        .set_adjustment_type(adjustment_type.as_deref().map(AdjustmentType::from))
                        .set_step_adjustments(Some(
                            steps
                                .iter()
                                .map(|s| {
                                    aws_sdk_applicationautoscaling::types::StepAdjustment::builder()
                                        .set_metric_interval_lower_bound(s.lower)
                                        .set_metric_interval_upper_bound(s.upper)
                                        .scaling_adjustment(s.adjustment)
                                        .build()
                                })
                                .collect::<Result<_, _>>()
                                .map_err(|e| StepError::Internal(format!("scaling policy: {e}")))?,
                        ))
                        .set_min_adjustment_magnitude(*min_adjustment_magnitude)
                        .set_cooldown(*cooldown)
                        .set_metric_aggregation_type(
                            metric_aggregation_type
                                .as_deref()
                                .map(MetricAggregationType::from),
                        )
                        .build(),
                ),
            PolicyKind::Other(kind) => {
                return Err(StepError::Internal(format!(
                    "a {kind} policy is not copied"
                )));
            }
        };
        request
            .send()
            .await
            .map_err(|e| StepError::from_sdk("application-autoscaling:PutScalingPolicy", e))?;
        Ok(())
    }

    async fn delete_policy(&self, resource: &str, name: &str) -> StepResult<()> {
        let result = self
            .0
            .delete_scaling_policy()
            .service_namespace(ServiceNamespace::Ecs)
            .resource_id(resource)
            .scalable_dimension(DIMENSION)
            .policy_name(name)
            .send()
            .await
            .map_err(|e| StepError::from_sdk("application-autoscaling:DeleteScalingPolicy", e));
        match result {
            Err(e) if !gone(&e) => Err(e),
            _ => Ok(()),
        }
    }

    async fn scheduled_actions(&self, resource: &str) -> StepResult<Vec<ScheduledAction>> {
        let mut actions = Vec::new();
        let mut pages = self
            .0
            .describe_scheduled_actions()
            .service_namespace(ServiceNamespace::Ecs)
            .resource_id(resource)
            .scalable_dimension(DIMENSION)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| {
                StepError::from_sdk("application-autoscaling:DescribeScheduledActions", e)
            })?;
            actions.extend(
                page.scheduled_actions
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|a| a.resource_id == resource)
                    .map(|a| ScheduledAction {
                        name: a.scheduled_action_name,
                        schedule: a.schedule,
                        timezone: a.timezone,
                        start_time: a.start_time.as_ref().and_then(to_chrono),
                        end_time: a.end_time.as_ref().and_then(to_chrono),
                        min: a
                            .scalable_target_action
                            .as_ref()
                            .and_then(|t| t.min_capacity),
                        max: a
                            .scalable_target_action
                            .as_ref()
                            .and_then(|t| t.max_capacity),
                    }),
            );
        }
        Ok(actions)
    }

    async fn put_scheduled_action(
        &self,
        resource: &str,
        action: &ScheduledAction,
    ) -> StepResult<()> {
        self.0
            .put_scheduled_action()
            .service_namespace(ServiceNamespace::Ecs)
            .resource_id(resource)
            .scalable_dimension(DIMENSION)
            .scheduled_action_name(&action.name)
            .schedule(&action.schedule)
            .set_timezone(action.timezone.clone())
            .set_start_time(action.start_time.as_ref().map(to_smithy))
            .set_end_time(action.end_time.as_ref().map(to_smithy))
            .scalable_target_action(
                ScalableTargetAction::builder()
                    .set_min_capacity(action.min)
                    .set_max_capacity(action.max)
                    .build(),
            )
            .send()
            .await
            .map_err(|e| StepError::from_sdk("application-autoscaling:PutScheduledAction", e))?;
        Ok(())
    }

    async fn delete_scheduled_action(&self, resource: &str, name: &str) -> StepResult<()> {
        let result = self
            .0
            .delete_scheduled_action()
            .service_namespace(ServiceNamespace::Ecs)
            .resource_id(resource)
            .scalable_dimension(DIMENSION)
            .scheduled_action_name(name)
            .send()
            .await
            .map_err(|e| StepError::from_sdk("application-autoscaling:DeleteScheduledAction", e));
        match result {
            Err(e) if !gone(&e) => Err(e),
            _ => Ok(()),
        }
    }
}
