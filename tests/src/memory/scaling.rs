//! Application Auto Scaling in memory: scalable targets, policies and scheduled actions of ECS
//! services, and what AWS does with them on its own — registering a range moves the desired
//! count into it at once, and a policy that runs keeps the count inside the range unless that
//! direction is suspended ([`State::run_scaling_policies`], played by the simulator).

use std::collections::BTreeMap;

use bluegreen::StepError;
use bluegreen::ports::Scaling;
use bluegreen::ports::scaling::{ScalableTarget, ScalingPolicy, ScheduledAction};

use super::{MemoryAws, State, refused};

/// Application Auto Scaling's state, by resource id (`service/<cluster>/<service>`).
#[derive(Debug, Clone, Default)]
pub struct ScalingState {
    /// Scalable targets.
    pub targets: BTreeMap<String, ScalableTarget>,
    /// Policies of each resource.
    pub policies: BTreeMap<String, Vec<ScalingPolicy>>,
    /// Scheduled actions of each resource.
    pub actions: BTreeMap<String, Vec<ScheduledAction>>,
}

/// `cluster/service` of a resource id (the ECS state's key).
fn service_key(resource: &str) -> Option<String> {
    resource.strip_prefix("service/").map(str::to_owned)
}

impl State {
    /// Moves `resource`'s desired count into `[min, max]` — in the directions `allowed` says
    /// (scale out to the minimum, scale in to the maximum).
    fn clamp(&mut self, resource: &str, target: &ScalableTarget, allowed: (bool, bool)) {
        let Some(model) = service_key(resource).and_then(|k| self.ecs.services.get_mut(&k)) else {
            return;
        };
        let desired = model.state.desired_count;
        let clamped = match (desired < target.min, desired > target.max) {
            (true, _) if allowed.0 => target.min,
            (_, true) if allowed.1 => target.max,
            _ => desired,
        };
        if clamped != desired {
            model.update(None, clamped);
        }
    }

    /// Every scaling policy runs once: a slot below its minimum is scaled out to it, one above
    /// its maximum scaled in — unless that direction is suspended. (What makes an old slot
    /// under its own scalable target come back after bluegreen scaled it to 0.)
    pub fn run_scaling_policies(&mut self) {
        let targets: Vec<(String, ScalableTarget)> = self
            .scaling
            .targets
            .iter()
            .filter(|(r, _)| self.scaling.policies.get(*r).is_some_and(|p| !p.is_empty()))
            .map(|(r, t)| (r.clone(), *t))
            .collect();
        for (resource, target) in targets {
            let allowed = (!target.suspended.scale_out, !target.suspended.scale_in);
            self.clamp(&resource, &target, allowed);
        }
    }
}

#[async_trait::async_trait]
impl Scaling for MemoryAws {
    async fn target(&self, resource: &str) -> Result<Option<ScalableTarget>, StepError> {
        self.call("application-autoscaling:DescribeScalableTargets", |s| {
            Ok(s.scaling.targets.get(resource).copied())
        })
        .await
    }

    async fn register(&self, resource: &str, target: &ScalableTarget) -> Result<(), StepError> {
        const OP: &str = "application-autoscaling:RegisterScalableTarget";
        self.call(OP, |s| {
            let exists = service_key(resource).is_some_and(|k| s.ecs.services.contains_key(&k));
            if !exists {
                return Err(refused(
                    OP,
                    "ValidationException",
                    format!("ECS service doesn't exist: {resource}"),
                ));
            }
            s.scaling.targets.insert(resource.to_owned(), *target);
            // AWS moves an active resource's count into the new range at once.
            s.clamp(resource, target, (true, true));
            Ok(())
        })
        .await
    }

    async fn policies(&self, resource: &str) -> Result<Vec<ScalingPolicy>, StepError> {
        self.call("application-autoscaling:DescribeScalingPolicies", |s| {
            Ok(s.scaling
                .policies
                .get(resource)
                .cloned()
                .unwrap_or_default())
        })
        .await
    }

    async fn put_policy(&self, resource: &str, policy: &ScalingPolicy) -> Result<(), StepError> {
        const OP: &str = "application-autoscaling:PutScalingPolicy";
        self.call(OP, |s| {
            if !s.scaling.targets.contains_key(resource) {
                return Err(refused(OP, "ObjectNotFoundException", "No scalable target"));
            }
            let policies = s.scaling.policies.entry(resource.to_owned()).or_default();
            policies.retain(|p| p.name != policy.name);
            policies.push(policy.clone());
            Ok(())
        })
        .await
    }

    async fn delete_policy(&self, resource: &str, name: &str) -> Result<(), StepError> {
        self.call("application-autoscaling:DeleteScalingPolicy", |s| {
            if let Some(policies) = s.scaling.policies.get_mut(resource) {
                policies.retain(|p| p.name != name);
            }
            Ok(())
        })
        .await
    }

    async fn scheduled_actions(&self, resource: &str) -> Result<Vec<ScheduledAction>, StepError> {
        self.call("application-autoscaling:DescribeScheduledActions", |s| {
            Ok(s.scaling.actions.get(resource).cloned().unwrap_or_default())
        })
        .await
    }

    async fn put_scheduled_action(
        &self,
        resource: &str,
        action: &ScheduledAction,
    ) -> Result<(), StepError> {
        const OP: &str = "application-autoscaling:PutScheduledAction";
        self.call(OP, |s| {
            if !s.scaling.targets.contains_key(resource) {
                return Err(refused(OP, "ObjectNotFoundException", "No scalable target"));
            }
            let actions = s.scaling.actions.entry(resource.to_owned()).or_default();
            actions.retain(|a| a.name != action.name);
            actions.push(action.clone());
            Ok(())
        })
        .await
    }

    async fn delete_scheduled_action(&self, resource: &str, name: &str) -> Result<(), StepError> {
        self.call("application-autoscaling:DeleteScheduledAction", |s| {
            if let Some(actions) = s.scaling.actions.get_mut(resource) {
                actions.retain(|a| a.name != name);
            }
            Ok(())
        })
        .await
    }
}
