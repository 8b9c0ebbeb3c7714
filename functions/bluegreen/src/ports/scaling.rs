//! Application Auto Scaling: the slots' scalable targets (ECS desired count), their scaling
//! policies and scheduled actions.
//!
//! Resources are named as Application Auto Scaling names them: `service/<cluster>/<service>`
//! (see [`crate::autoscaling::resource_id`]); the dimension is always
//! `ecs:service:DesiredCount`.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::error::StepResult;

/// A scalable target: the range Application Auto Scaling keeps the desired count in, and
/// which kinds of scaling are suspended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ScalableTarget {
    /// Minimum desired count.
    pub min: i32,
    /// Maximum desired count.
    pub max: i32,
    /// Suspended scaling.
    pub suspended: Suspended,
}

/// Which kinds of scaling are suspended on a scalable target.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Suspended {
    /// Policies may not lower the count.
    pub scale_in: bool,
    /// Policies may not raise the count.
    pub scale_out: bool,
    /// Scheduled actions do not run.
    pub scheduled: bool,
}

impl Suspended {
    /// Everything suspended.
    pub const ALL: Suspended = Suspended {
        scale_in: true,
        scale_out: true,
        scheduled: true,
    };
}

/// A scaling policy, as far as bluegreen copies it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScalingPolicy {
    /// Its name (unique per scalable target).
    pub name: String,
    /// What it does.
    pub kind: PolicyKind,
}

/// The kinds of scaling policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum PolicyKind {
    /// Target tracking: keep `metric` at `target_value`.
    TargetTracking {
        /// The value to keep the metric at.
        target_value: f64,
        /// The metric tracked.
        metric: TrackedMetric,
        /// Seconds after a scale-out before another.
        scale_out_cooldown: Option<i32>,
        /// Seconds after a scale-in before another.
        scale_in_cooldown: Option<i32>,
        /// Whether the policy never scales in.
        disable_scale_in: Option<bool>,
    },
    /// Step scaling, driven by CloudWatch alarms that name the policy's ARN.
    Step {
        /// `ChangeInCapacity`, `PercentChangeInCapacity` or `ExactCapacity`.
        adjustment_type: Option<String>,
        /// The steps.
        steps: Vec<StepAdjustment>,
        /// Smallest change for a percent adjustment.
        min_adjustment_magnitude: Option<i32>,
        /// Seconds between scaling activities.
        cooldown: Option<i32>,
        /// `Average`, `Minimum` or `Maximum`.
        metric_aggregation_type: Option<String>,
        /// The alarms that invoke it (they act on this policy's ARN only).
        alarms: Vec<String>,
    },
    /// A kind bluegreen does not copy (predictive scaling), by its type name.
    Other(String),
}

/// One step of a step scaling policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepAdjustment {
    /// Lower bound of the metric's difference from the alarm threshold.
    pub lower: Option<f64>,
    /// Upper bound.
    pub upper: Option<f64>,
    /// The change.
    pub adjustment: i32,
}

/// The metric of a target tracking policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum TrackedMetric {
    /// A predefined metric (`ECSServiceAverageCPUUtilization`, `ALBRequestCountPerTarget`…);
    /// `resource_label` names the load balancer and target group for the per-target ones.
    Predefined {
        /// The metric type.
        metric_type: String,
        /// `app/<lb>/<id>/targetgroup/<tg>/<id>`, for per-target-group metrics.
        resource_label: Option<String>,
    },
    /// One CloudWatch metric.
    Customized {
        /// Metric name.
        metric_name: String,
        /// Namespace.
        namespace: String,
        /// Dimensions, in order.
        dimensions: Vec<(String, String)>,
        /// Statistic (`Average`, `Sum`…).
        statistic: Option<String>,
        /// Unit.
        unit: Option<String>,
    },
    /// Metric math (several queries): not copied, its expressions cannot be re-pointed safely.
    MetricMath,
}

/// A scheduled action: at `schedule`, set the scalable target's range.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScheduledAction {
    /// Its name (unique per scalable target).
    pub name: String,
    /// `at(…)`, `rate(…)` or `cron(…)`.
    pub schedule: String,
    /// Time zone of the schedule.
    pub timezone: Option<String>,
    /// Not before.
    pub start_time: Option<DateTime<Utc>>,
    /// Not after.
    pub end_time: Option<DateTime<Utc>>,
    /// The minimum it sets.
    pub min: Option<i32>,
    /// The maximum it sets.
    pub max: Option<i32>,
}

/// Application Auto Scaling, as far as bluegreen carries a slot's autoscaling to the other.
#[async_trait::async_trait]
pub trait Scaling: Send + Sync {
    /// The scalable target of `resource`, `None` when it has none.
    async fn target(&self, resource: &str) -> StepResult<Option<ScalableTarget>>;

    /// Registers or updates `resource`'s scalable target. AWS then moves the current desired
    /// count into `[min, max]` at once (an upsert: a retry changes nothing more).
    async fn register(&self, resource: &str, target: &ScalableTarget) -> StepResult<()>;

    /// `resource`'s scaling policies (exactly its own: the emulator matches prefixes).
    async fn policies(&self, resource: &str) -> StepResult<Vec<ScalingPolicy>>;

    /// Creates or replaces a policy of `resource` (an upsert by name). Not for
    /// [`PolicyKind::Other`].
    async fn put_policy(&self, resource: &str, policy: &ScalingPolicy) -> StepResult<()>;

    /// Deletes `resource`'s policy `name`; one already gone is not an error.
    async fn delete_policy(&self, resource: &str, name: &str) -> StepResult<()>;

    /// `resource`'s scheduled actions.
    async fn scheduled_actions(&self, resource: &str) -> StepResult<Vec<ScheduledAction>>;

    /// Creates or replaces a scheduled action of `resource` (an upsert by name).
    async fn put_scheduled_action(
        &self,
        resource: &str,
        action: &ScheduledAction,
    ) -> StepResult<()>;

    /// Deletes `resource`'s scheduled action `name`; one already gone is not an error.
    async fn delete_scheduled_action(&self, resource: &str, name: &str) -> StepResult<()>;
}
