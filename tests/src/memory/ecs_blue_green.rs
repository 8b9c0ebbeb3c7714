//! ECS's own blue/green in memory (`deploymentConfiguration.strategy = BLUE_GREEN`), modelled
//! from AWS's documentation since no emulator has it (docs/aws-behaviours.md lists each
//! modelled behaviour and its source):
//!
//! - `UpdateService` with a new task definition starts a service deployment with a new
//!   service revision; a deployment still going on is stopped (`STOP_REQUESTED`, then
//!   `STOPPED`: superseded) and its traffic put back on the revision production had (ECS documents the superseding; where
//!   the traffic goes then is not documented — this is the unkind reading for a gate).
//! - The stages in order: `PRE_SCALE_UP`, `SCALE_UP` (the new revision's tasks start and
//!   register in the alternate target group), `POST_SCALE_UP`, `TEST_TRAFFIC_SHIFT` (the test
//!   rule forwards 100 % to the alternate group), `POST_TEST_TRAFFIC_SHIFT`,
//!   `PRODUCTION_TRAFFIC_SHIFT` (the production rule, all at once), `POST_PRODUCTION_TRAFFIC_SHIFT`,
//!   `BAKE_TIME` (`bakeTimeInMinutes`), `CLEAN_UP` (the old revision's targets go; the target
//!   groups swap roles for the next deployment). `RECONCILE_SERVICE` (only with several
//!   active revisions) is not modelled.
//! - At each stage, every Lambda hook registered for it is invoked with ECS's payload; the
//!   stage ends when all answered `SUCCEEDED`; `IN_PROGRESS` invokes again after
//!   `callBackDelay` (30 s by default); `FAILED`, an answer without a valid `hookStatus` or a
//!   function error rolls back; so does a stage older than 24 hours.
//! - A rollback puts both rules back on the old revision's group, re-invokes the hooks of
//!   `TEST_TRAFFIC_SHIFT` and `PRODUCTION_TRAFFIC_SHIFT` (with the old revision at 100 %),
//!   removes the new revision's targets and ends `ROLLBACK_SUCCESSFUL` (a hook failing then:
//!   `ROLLBACK_FAILED`). `StopServiceDeployment` with `ROLLBACK` does the same for a
//!   deployment still going on and is refused (`ConflictException`) for one that ended.
//! - A hook's answer is read by its literal keys (`hookStatus`, `callBackDelay`), as ECS reads
//!   it; the hook's timeout (`timeoutInMinutes`, `CONTINUE` or `ROLLBACK`) is not modelled:
//!   the stage limit (24 hours) is.
//!
//! What ECS does on its own is played by [`State::play_blue_green`] (the simulator's cloud or a
//! test's driver): it returns the hook invocations due, which the caller runs outside the
//! lock and answers with [`State::hook_answered`].

use bluegreen::StepError;
use bluegreen::ports::compute::ServiceDeployment;
use bluegreen::ports::load_balancing::{TargetHealth, WeightedGroup};
use bluegreen::ports::service_deployments::{EcsDeployment, ServiceRevision, is_ongoing_status};
use serde_json::json;

use super::{State, refused};

/// The stages of a blue/green deployment, in order (`RECONCILE_SERVICE` is not modelled).
pub const STAGES: [&str; 9] = [
    "PRE_SCALE_UP",
    "SCALE_UP",
    "POST_SCALE_UP",
    "TEST_TRAFFIC_SHIFT",
    "POST_TEST_TRAFFIC_SHIFT",
    "PRODUCTION_TRAFFIC_SHIFT",
    "POST_PRODUCTION_TRAFFIC_SHIFT",
    "BAKE_TIME",
    "CLEAN_UP",
];

/// Stages that take no hooks.
const NO_HOOKS: [&str; 3] = ["SCALE_UP", "BAKE_TIME", "CLEAN_UP"];
/// The stages whose hooks ECS runs again while it rolls back.
const ROLLBACK_STAGES: [&str; 2] = ["TEST_TRAFFIC_SHIFT", "PRODUCTION_TRAFFIC_SHIFT"];
/// ECS fails a stage after this long (milliseconds).
pub const STAGE_LIMIT_MS: u64 = 24 * 3600 * 1000;
/// ECS's call-back delay when a hook answers `IN_PROGRESS` without one (seconds).
const DEFAULT_CALL_BACK_SECONDS: u64 = 30;

/// One blue/green service deployment.
#[derive(Debug, Clone)]
pub struct BlueGreenDeployment {
    /// Its ARN.
    pub arn: String,
    /// The service, `cluster/name`.
    pub service: String,
    /// The service's ARN.
    pub service_arn: String,
    /// ECS's status (`IN_PROGRESS`, `SUCCESSFUL`, `ROLLBACK_SUCCESSFUL`, …).
    pub status: String,
    /// Why, when it stopped or rolled back.
    pub status_reason: Option<String>,
    /// The stage it is at (an index into [`STAGES`]).
    pub stage: usize,
    /// The revision production had: service revision ARN, task definition, target group.
    pub source: (String, String, String),
    /// The revision rolled out, on the alternate target group.
    pub target: (String, String, String),
    /// Tasks the new revision runs.
    pub desired: i32,
    /// Rolling back (the rollback's hooks are the pending ones).
    pub rolling_back: bool,
    /// The current stage's work was done (its hooks then run).
    pub worked: bool,
    /// Hooks of the current stage not answered `SUCCEEDED` yet: `(function ARN, stage, due
    /// ms or None while an invocation is out)`.
    pub pending: Vec<(String, String, Option<u64>)>,
    /// When the current stage began (ms).
    pub stage_began: u64,
    /// When the bake ends (ms).
    pub bake_until: Option<u64>,
    /// Invocations made so far (their execution ids).
    pub invocations: u64,
    /// The new revision's tasks never pass their health checks: ECS's deployment circuit
    /// breaker rolls the deployment back at `SCALE_UP` (set by whoever plays the application).
    pub scale_up_fails: bool,
}

impl BlueGreenDeployment {
    /// Whether ECS is still working on it.
    pub fn is_ongoing(&self) -> bool {
        is_ongoing_status(&self.status)
    }

    /// The stage's name.
    pub fn stage_name(&self) -> &'static str {
        STAGES[self.stage]
    }

    pub(super) fn described(&self) -> EcsDeployment {
        EcsDeployment {
            arn: self.arn.clone(),
            status: self.status.clone(),
            status_reason: self.status_reason.clone(),
            lifecycle_stage: Some(self.stage_name().to_owned()),
            target_revision: Some(self.target.0.clone()),
        }
    }

    /// ECS's payload for a hook at `stage`.
    fn payload(&self, stage: &str) -> serde_json::Value {
        let (new, old) = (&self.target.0, &self.source.0);
        let weights = |moved: bool| {
            if self.rolling_back {
                json!({ old: 100.0, new: 0.0 })
            } else if moved {
                json!({ new: 100.0, old: 0.0 })
            } else {
                json!({})
            }
        };
        let at = STAGES.iter().position(|s| *s == stage).unwrap_or_default();
        json!({
            "executionId": format!("{}-{}", self.arn.rsplit('/').next().unwrap_or_default(), self.invocations),
            "lifecycleStage": stage,
            "resourceArn": self.arn,
            "executionDetails": {
                "serviceArn": self.service_arn,
                "targetServiceRevisionArn": new,
                "testTrafficWeights": weights((3..=4).contains(&at)),
                "productionTrafficWeights": weights((5..=6).contains(&at)),
            },
        })
    }
}

/// One hook invocation ECS makes: run it (outside the lock) and give its answer to
/// [`State::hook_answered`].
#[derive(Debug, Clone)]
pub struct HookCall {
    /// The service deployment.
    pub deployment: String,
    /// The hook function's ARN.
    pub function: String,
    /// The stage.
    pub stage: String,
    /// ECS's payload.
    pub payload: serde_json::Value,
}

impl State {
    /// The image the tasks registered in `group` run: while ECS's own blue/green deploys a
    /// service, each of its two revisions runs in its own group; otherwise the service whose
    /// group it is.
    pub fn image_in_group(&self, group: &str) -> Option<String> {
        let deploying = self.ecs.blue_green.iter().rev().find(|d| d.is_ongoing());
        let revision = deploying.and_then(|d| {
            [&d.source, &d.target]
                .into_iter()
                .find(|(_, _, g)| g == group)
                .map(|(_, td, _)| td.clone())
        });
        let td = match revision {
            Some(td) => td,
            None => {
                // The one running there: ECS-engine worlds keep the standard world's idle
                // `shop-green` on the alternate group at 0, where pre-prod's own service runs.
                let service = self
                    .ecs
                    .services
                    .values()
                    .filter(|s| s.target_group == group)
                    .max_by_key(|s| s.state.running_count > 0)?;
                service.state.task_definition.clone()?
            }
        };
        let definition = self.ecs.definition(&td)?;
        definition.containers.first().map(|c| c.image.clone())
    }

    /// The blue/green deployment `arn`.
    pub fn blue_green(&self, arn: &str) -> Option<&BlueGreenDeployment> {
        self.ecs.blue_green.iter().find(|d| d.arn == arn)
    }

    /// `UpdateService` of a blue/green service to `task_definition`: a new service revision and
    /// deployment (a deployment still going on is superseded).
    pub(super) fn start_blue_green(&mut self, key: &str, task_definition: &str, desired: i32) {
        let now = self.now_ms;
        for i in 0..self.ecs.blue_green.len() {
            if self.ecs.blue_green[i].service == key && self.ecs.blue_green[i].is_ongoing() {
                let old = self.ecs.blue_green[i].clone();
                self.put_back(&old);
                let d = &mut self.ecs.blue_green[i];
                d.status = "STOP_REQUESTED".into();
                d.status_reason = Some("a newer service deployment started".into());
                d.pending.clear();
            }
        }
        self.ecs.started += 1;
        let id = self.ecs.started;
        let model = &self.ecs.services[key];
        let route = model
            .state
            .setup
            .routes
            .first()
            .cloned()
            .expect("a blue/green route");
        let source_td = model.state.task_definition.clone().unwrap_or_default();
        let revisions = model.state.arn.replace(":service/", ":service-revision/");
        let revision = |n: u64| format!("{revisions}/{n:020}");
        let source = (
            self.ecs
                .revision_of_task_definition(key, &source_td)
                .unwrap_or_else(|| revision(id * 2)),
            source_td.clone(),
            route.target_group.clone(),
        );
        let target = (
            revision(id * 2 + 1),
            task_definition.to_owned(),
            route.alternate_target_group.clone().unwrap_or_default(),
        );
        let model = self.ecs.services.get_mut(key).expect("the service");
        model.state.task_definition = Some(task_definition.to_owned());
        model.state.desired_count = desired;
        for d in &mut model.state.deployments {
            d.status = "ACTIVE".into();
        }
        model
            .state
            .deployments
            .insert(0, rolling(task_definition, desired, "IN_PROGRESS"));
        let arn = format!(
            "{}/{id:020}",
            model.state.arn.replace(":service/", ":service-deployment/")
        );
        let service_arn = model.state.arn.clone();
        for (revision, td) in [(&source.0, &source.1), (&target.0, &target.1)] {
            self.ecs.revisions.insert(
                revision.clone(),
                ServiceRevision {
                    arn: revision.clone(),
                    task_definition: td.clone(),
                },
            );
            self.ecs
                .revision_service
                .insert(revision.clone(), key.to_owned());
        }
        self.ecs.blue_green.push(BlueGreenDeployment {
            arn,
            service: key.to_owned(),
            service_arn,
            status: "IN_PROGRESS".into(),
            status_reason: None,
            stage: 0,
            source,
            target,
            desired,
            rolling_back: false,
            worked: false,
            pending: Vec::new(),
            stage_began: now,
            bake_until: None,
            invocations: 0,
            scale_up_fails: false,
        });
    }

    /// `StopServiceDeployment`: `ROLLBACK` of a deployment still going on.
    pub(super) fn stop_blue_green(&mut self, arn: &str) -> Result<(), StepError> {
        let operation = "ecs:StopServiceDeployment";
        let Some(i) = self.ecs.blue_green.iter().position(|d| d.arn == arn) else {
            return Err(refused(
                operation,
                "ServiceDeploymentNotFoundException",
                "not found",
            ));
        };
        let d = &mut self.ecs.blue_green[i];
        if !d.is_ongoing() || d.status == "STOP_REQUESTED" {
            return Err(refused(
                operation,
                "ConflictException",
                format!("the service deployment is {}", d.status),
            ));
        }
        if !d.rolling_back {
            d.status = "ROLLBACK_REQUESTED".into();
            d.status_reason = Some("StopServiceDeployment with ROLLBACK".into());
        }
        Ok(())
    }

    /// Plays ECS's blue/green at `now` (ms): moves every deployment on as far as it can go
    /// and returns the hook invocations due (each is out until [`State::hook_answered`]).
    pub fn play_blue_green(&mut self, now: u64) -> Vec<HookCall> {
        self.now_ms = now;
        let mut calls = Vec::new();
        for i in 0..self.ecs.blue_green.len() {
            for _ in 0..STAGES.len() * 2 {
                if !self.ecs.blue_green[i].is_ongoing() || !self.advance(i, now, &mut calls) {
                    break;
                }
            }
        }
        calls
    }

    /// A hook's answer (`Err`: the function failed).
    pub fn hook_answered(&mut self, call: &HookCall, answer: Result<serde_json::Value, String>) {
        let now = self.now_ms;
        let Some(d) = self
            .ecs
            .blue_green
            .iter_mut()
            .find(|d| d.arn == call.deployment)
        else {
            return;
        };
        let Some(at) = d
            .pending
            .iter()
            .position(|(f, s, due)| *f == call.function && *s == call.stage && due.is_none())
        else {
            return; // stopped or superseded meanwhile
        };
        // ECS's reading of the answer, by its literal keys.
        let response = answer.and_then(|v| match v["hookStatus"].as_str() {
            Some(status) => Ok((status.to_owned(), v["callBackDelay"].as_u64())),
            None => Err(format!("no valid hookStatus in {v}")),
        });
        match response
            .as_ref()
            .map(|(status, delay)| (status.as_str(), *delay))
        {
            Ok(("SUCCEEDED", _)) => {
                d.pending.remove(at);
            }
            Ok(("IN_PROGRESS", delay)) => {
                let seconds = delay.unwrap_or(DEFAULT_CALL_BACK_SECONDS);
                d.pending[at].2 = Some(now + seconds * 1000);
            }
            other => {
                let why = match other {
                    Ok((status, _)) => {
                        format!("hook {} answered {status} at {}", call.function, call.stage)
                    }
                    Err(e) => format!("hook {} failed at {}: {e}", call.function, call.stage),
                };
                if d.rolling_back {
                    d.status = "ROLLBACK_FAILED".into();
                    d.status_reason = Some(why);
                    d.pending.clear();
                } else {
                    d.status = "ROLLBACK_REQUESTED".into();
                    d.status_reason = Some(why);
                }
            }
        }
    }

    /// One move of deployment `i`; whether it may move again at once.
    fn advance(&mut self, i: usize, now: u64, calls: &mut Vec<HookCall>) -> bool {
        let d = self.ecs.blue_green[i].clone();
        if d.status == "ROLLBACK_REQUESTED" {
            self.begin_rollback(i, now);
            return true;
        }
        if d.status == "STOP_REQUESTED" {
            self.ecs.blue_green[i].status = "STOPPED".into();
            return false;
        }
        if !d.worked {
            if !self.work(i, now) {
                return false;
            }
            let hooks = self.hooks_at(&d.service, d.stage_name(), d.rolling_back);
            let d = &mut self.ecs.blue_green[i];
            d.worked = true;
            d.pending = hooks
                .into_iter()
                .map(|f| (f, d.stage_name().to_owned(), Some(now)))
                .collect();
            return true;
        }
        if !d.pending.is_empty() {
            if !d.rolling_back && now.saturating_sub(d.stage_began) > STAGE_LIMIT_MS {
                let d = &mut self.ecs.blue_green[i];
                d.status = "ROLLBACK_REQUESTED".into();
                d.status_reason = Some(format!("{} ran longer than 24 hours", d.stage_name()));
                return true;
            }
            let d = &mut self.ecs.blue_green[i];
            for at in 0..d.pending.len() {
                if d.pending[at].2.is_some_and(|t| t <= now) {
                    d.pending[at].2 = None;
                    d.invocations += 1;
                    let (function, stage, _) = d.pending[at].clone();
                    calls.push(HookCall {
                        deployment: d.arn.clone(),
                        payload: d.payload(&stage),
                        function,
                        stage,
                    });
                }
            }
            return false;
        }
        self.next_stage(i, now);
        true
    }

    /// The current stage's own work; whether it is done.
    fn work(&mut self, i: usize, now: u64) -> bool {
        let d = self.ecs.blue_green[i].clone();
        if d.rolling_back {
            return true;
        }
        match d.stage_name() {
            "SCALE_UP" if d.scale_up_fails => {
                let d = &mut self.ecs.blue_green[i];
                d.status = "ROLLBACK_REQUESTED".into();
                d.status_reason = Some(
                    "tasks failed to start: the deployment circuit breaker rolled back".into(),
                );
                return false;
            }
            "SCALE_UP" => {
                let targets = (0..d.desired)
                    .map(|n| TargetHealth {
                        id: format!("10.77.{}.{}", self.ecs.started % 200, 10 + n),
                        state: "healthy".into(),
                        reason: String::new(),
                    })
                    .collect();
                self.elb.targets.insert(d.target.2.clone(), targets);
            }
            "TEST_TRAFFIC_SHIFT" => self.forward_all(&d.service, false, &d.target.2, &d.source.2),
            "PRODUCTION_TRAFFIC_SHIFT" => {
                self.forward_all(&d.service, true, &d.target.2, &d.source.2)
            }
            "BAKE_TIME" => {
                let minutes = self.ecs.services[&d.service]
                    .state
                    .setup
                    .bake_minutes
                    .unwrap_or(0);
                let until = *self.ecs.blue_green[i]
                    .bake_until
                    .get_or_insert(now + minutes.max(0) as u64 * 60_000);
                return now >= until;
            }
            "CLEAN_UP" => self.clean_up(&d),
            _ => {}
        }
        true
    }

    /// Moves to the next stage, or ends: `SUCCESSFUL` after `CLEAN_UP`, `ROLLBACK_SUCCESSFUL`
    /// after the rollback's hooks.
    fn next_stage(&mut self, i: usize, now: u64) {
        let d = &mut self.ecs.blue_green[i];
        if d.rolling_back {
            let next = ROLLBACK_STAGES
                .iter()
                .position(|s| *s == d.stage_name())
                .map(|p| p + 1);
            match next.and_then(|p| ROLLBACK_STAGES.get(p)) {
                Some(stage) => {
                    d.stage = STAGES.iter().position(|s| s == stage).expect("a stage");
                    d.worked = false;
                }
                None => {
                    d.status = "ROLLBACK_SUCCESSFUL".into();
                    let key = d.service.clone();
                    let source = d.source.1.clone();
                    let model = self.ecs.services.get_mut(&key).expect("the service");
                    model.state.deployments =
                        vec![rolling(&source, model.state.desired_count, "COMPLETED")];
                }
            }
            return;
        }
        if d.stage + 1 == STAGES.len() {
            d.status = "SUCCESSFUL".into();
            return;
        }
        d.stage += 1;
        d.worked = false;
        d.stage_began = now;
    }

    /// Both rules back on the old revision's group, the new revision's targets gone, the
    /// service's task definition the old one; then the rollback's hooks.
    fn begin_rollback(&mut self, i: usize, now: u64) {
        let d = self.ecs.blue_green[i].clone();
        self.put_back(&d);
        let d = &mut self.ecs.blue_green[i];
        d.status = "ROLLBACK_IN_PROGRESS".into();
        d.rolling_back = true;
        d.worked = false;
        d.pending.clear();
        d.stage = STAGES
            .iter()
            .position(|s| *s == ROLLBACK_STAGES[0])
            .expect("a stage");
        d.stage_began = now;
    }

    /// What a deployment stopped midway leaves: traffic on the old revision's group, the new
    /// revision's targets deregistered, the service set to the old task definition.
    fn put_back(&mut self, d: &BlueGreenDeployment) {
        self.forward_all(&d.service, true, &d.source.2, &d.target.2);
        self.forward_all(&d.service, false, &d.source.2, &d.target.2);
        self.elb.targets.insert(d.target.2.clone(), Vec::new());
        if let Some(model) = self.ecs.services.get_mut(&d.service) {
            model.state.task_definition = Some(d.source.1.clone());
        }
    }

    /// The old revision scaled in, the groups swapped for the next deployment.
    fn clean_up(&mut self, d: &BlueGreenDeployment) {
        self.elb.targets.insert(d.source.2.clone(), Vec::new());
        let model = self.ecs.services.get_mut(&d.service).expect("the service");
        model.target_group = d.target.2.clone();
        model.state.running_count = d.desired;
        model.state.deployments = vec![rolling(&d.target.1, d.desired, "COMPLETED")];
        if let Some(route) = model.state.setup.routes.first_mut() {
            route.target_group = d.target.2.clone();
            route.alternate_target_group = Some(d.source.2.clone());
        }
    }

    /// Sets the production (or test) rule of `service` to forward everything to `to`.
    fn forward_all(&mut self, service: &str, production: bool, to: &str, from: &str) {
        let Some(route) = self.ecs.services[service]
            .state
            .setup
            .routes
            .first()
            .cloned()
        else {
            return;
        };
        let rule = if production {
            route.production_rule
        } else {
            route.test_rule
        };
        let Some(rule) = rule else { return };
        let groups = vec![
            WeightedGroup {
                target_group_arn: to.to_owned(),
                weight: Some(100),
            },
            WeightedGroup {
                target_group_arn: from.to_owned(),
                weight: Some(0),
            },
        ];
        // An ALB rule, or an NLB listener (ECS's productionListenerRule may be either).
        if let Some(r) = self.elb.rules.get_mut(&rule) {
            r.forward = Some(groups);
        } else if let Some(l) = self.elb.listeners.get_mut(&rule) {
            l.forward = Some(groups);
        }
    }

    /// The Lambda hooks of `service` registered at `stage` (during a rollback, only those of
    /// the two traffic shifts run).
    fn hooks_at(&self, service: &str, stage: &str, rolling_back: bool) -> Vec<String> {
        if NO_HOOKS.contains(&stage) || (rolling_back && !ROLLBACK_STAGES.contains(&stage)) {
            return Vec::new();
        }
        self.ecs.services[service]
            .state
            .setup
            .hooks
            .iter()
            .filter(|h| h.target_type == "AWS_LAMBDA" && h.stages.iter().any(|s| s == stage))
            .filter_map(|h| h.target_arn.clone())
            .collect()
    }
}

impl super::EcsState {
    /// The service revision of `key` that runs `task_definition`, if one was made.
    fn revision_of_task_definition(&self, key: &str, task_definition: &str) -> Option<String> {
        self.revisions
            .values()
            .rev()
            .find(|r| {
                r.task_definition == task_definition
                    && self.revision_service.get(&r.arn).is_some_and(|s| s == key)
            })
            .map(|r| r.arn.clone())
    }

    /// The service deployments of `key`, newest first, as ECS describes them.
    pub(super) fn described_blue_green(&self, key: &str) -> Vec<EcsDeployment> {
        self.blue_green
            .iter()
            .rev()
            .filter(|d| d.service == key)
            .take(20)
            .map(BlueGreenDeployment::described)
            .collect()
    }

    /// A service's blue/green deployments still going on, newest first (ECS's list filtered
    /// by status: every one, however many others came before).
    pub(super) fn ongoing_blue_green(&self, key: &str) -> Vec<EcsDeployment> {
        self.blue_green
            .iter()
            .rev()
            .filter(|d| d.service == key && d.is_ongoing())
            .map(BlueGreenDeployment::described)
            .collect()
    }
}

fn rolling(task_definition: &str, desired: i32, state: &str) -> ServiceDeployment {
    ServiceDeployment {
        status: "PRIMARY".into(),
        task_definition: Some(task_definition.to_owned()),
        desired_count: desired,
        running_count: if state == "COMPLETED" { desired } else { 0 },
        rollout_state: Some(state.into()),
        rollout_reason: None,
    }
}
