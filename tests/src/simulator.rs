//! Plays the parts of AWS that act on their own while a state machine runs unattended: the ECS
//! scheduler completes rollouts and registers the tasks in the slot's target group, and the
//! container runtime ends bluegreen's one-off tasks with a chosen exit code.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_ecs::types::DesiredStatus;
use aws_sdk_elasticloadbalancingv2::types::TargetDescription;
use bluegreen::Slot;
use serde_json::json;

use crate::emulator::Control;
use crate::world::{CLUSTER, World};

/// Runs until dropped.
pub struct Simulator {
    task: tokio::task::JoinHandle<()>,
    migration_exit: Arc<AtomicI32>,
    exit_by_kind: ExitCodes,
    rollouts_fail: Arc<AtomicBool>,
}

/// Exit codes by the `startedBy` kind of a one-off task (`rehearsal`, `migrate`, `rollback`).
type ExitCodes = Arc<Mutex<HashMap<String, i32>>>;

impl Drop for Simulator {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Simulator {
    /// Starts playing ECS for the world's two slots.
    pub fn start(world: &World) -> Simulator {
        Simulator::start_with(
            world,
            [
                (Slot::Blue, world.tg_blue.clone()),
                (Slot::Green, world.tg_green.clone()),
            ],
        )
    }

    /// Starts playing ECS for the services `shop-<slot>` registering in these target groups
    /// (a world whose slots were made by `bluegreen adopt`, say).
    pub fn start_with(world: &World, groups: [(Slot, String); 2]) -> Simulator {
        let ecs = world.aws.ecs.clone();
        let elb = world.aws.elb.clone();
        let control = world.emulator.control_handle();
        let migration_exit = Arc::new(AtomicI32::new(0));
        let exit = migration_exit.clone();
        let exit_by_kind: ExitCodes = Arc::default();
        let by_kind = exit_by_kind.clone();
        let rollouts_fail = Arc::new(AtomicBool::new(false));
        let fail = rollouts_fail.clone();
        let task = tokio::spawn(async move {
            loop {
                for (slot, tg) in &groups {
                    // Errors are transient here (the world is being changed under us): try again.
                    let _ =
                        settle_slot(&ecs, &elb, &control, *slot, tg, fail.load(Ordering::SeqCst))
                            .await;
                }
                let _ = finish_tasks(&ecs, &control, exit.load(Ordering::SeqCst), &by_kind).await;
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
        });
        Simulator {
            task,
            migration_exit,
            exit_by_kind,
            rollouts_fail,
        }
    }

    /// From now on, new rollouts end FAILED (tasks that never become healthy).
    pub fn fail_rollouts(&self) {
        self.rollouts_fail.store(true, Ordering::SeqCst);
    }

    /// The exit code one-off tasks (migrations) end with from now on.
    pub fn set_migration_exit(&self, code: i32) {
        self.migration_exit.store(code, Ordering::SeqCst);
    }

    /// The exit code one-off tasks whose `startedBy` ends with `-<kind>` end with from now on
    /// (`rehearsal`: a migration on a clone, `migrate`: on production, `rollback`).
    pub fn set_exit_for(&self, kind: &str, code: i32) {
        self.exit_by_kind
            .lock()
            .expect("exit codes")
            .insert(kind.to_owned(), code);
    }
}

async fn settle_slot(
    ecs: &aws_sdk_ecs::Client,
    elb: &aws_sdk_elasticloadbalancingv2::Client,
    control: &Control,
    slot: Slot,
    tg: &str,
    fail: bool,
) -> Result<(), String> {
    let name = format!("shop-{slot}");
    let out = ecs
        .describe_services()
        .cluster(CLUSTER)
        .services(&name)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let Some(service) = out.services.unwrap_or_default().into_iter().next() else {
        return Ok(());
    };
    if service.desired_count == 0 {
        return Ok(());
    }
    let primary = service
        .deployments
        .unwrap_or_default()
        .into_iter()
        .find(|d| d.status.as_deref() == Some("PRIMARY"));
    let completed = primary.as_ref().is_some_and(|d| {
        d.task_definition == service.task_definition
            && d.rollout_state.as_ref().map(|s| s.as_str()) == Some("COMPLETED")
    });
    if fail && completed {
        return Ok(()); // only new rollouts fail
    }
    let state = if fail { "FAILED" } else { "COMPLETED" };
    let settled = primary.is_some_and(|d| {
        d.task_definition == service.task_definition
            && d.rollout_state.as_ref().map(|s| s.as_str()) == Some(state)
            && (fail || d.running_count >= service.desired_count)
    });
    if !settled {
        control
            .call(
                "POST",
                "/_bluegreen/ecs/rollout",
                json!({"cluster": CLUSTER, "service": name, "state": state}),
            )
            .await?;
    }
    if fail {
        // Tasks that never start register no targets.
        return Ok(());
    }
    let health = elb
        .describe_target_health()
        .target_group_arn(tg)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let registered = health.target_health_descriptions.unwrap_or_default().len() as i32;
    if registered < service.desired_count {
        let octet = if slot == Slot::Blue { 1 } else { 2 };
        let mut call = elb.register_targets().target_group_arn(tg);
        for i in registered..service.desired_count {
            call = call.targets(
                TargetDescription::builder()
                    .id(format!("172.31.{octet}.{}", 10 + i))
                    .port(8080)
                    .build(),
            );
        }
        call.send().await.map_err(|e| e.to_string())?;
    }
    Ok(())
}

async fn finish_tasks(
    ecs: &aws_sdk_ecs::Client,
    control: &Control,
    default_exit: i32,
    by_kind: &ExitCodes,
) -> Result<(), String> {
    let out = ecs
        .list_tasks()
        .cluster(CLUSTER)
        .desired_status(DesiredStatus::Running)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let arns = out.task_arns.unwrap_or_default();
    if arns.is_empty() {
        return Ok(());
    }
    let tasks = ecs
        .describe_tasks()
        .cluster(CLUSTER)
        .set_tasks(Some(arns))
        .send()
        .await
        .map_err(|e| e.to_string())?
        .tasks
        .unwrap_or_default();
    for task in tasks {
        let started_by = task.started_by.unwrap_or_default();
        let exit_code = by_kind
            .lock()
            .expect("exit codes")
            .iter()
            .find(|(kind, _)| started_by.ends_with(&format!("-{kind}")))
            .map(|(_, code)| *code)
            .unwrap_or(default_exit);
        control
            .call(
                "POST",
                "/_bluegreen/ecs/task-stopped",
                json!({"task_arn": task.task_arn, "exit_code": exit_code, "stop_code": "EssentialContainerExited"}),
            )
            .await?;
    }
    Ok(())
}
