//! Waits woken by ECS's events: a migration task stopped, a service deployment settled.
//!
//! A check that waits for ECS answers pending with a wake key ([`task_key`], [`service_key`]);
//! the state machine then waits on a task token (`.waitForTaskToken`, timing out after the
//! check's wait: the slow path) instead of a Wait state, and the step's `await` action
//! stores the token under the key ([`wait`]). ECS's events reach the wake function (the
//! `wake` step), which finds the key in the event ([`key_of`]) and completes the waiting task
//! ([`on_event`]): the check runs again about a second after ECS finished, and between checks
//! (30 s apart, up to 2 min in a long wait, when no event comes) no Lambda runs.
//!
//! An event only wakes; the check decides from what ECS describes, as it always did. So an
//! event delivered twice, late, out of order or for an older deployment of the same service
//! costs one more check and changes nothing; a lost event costs the slow path's wait.
//!
//! A wake must not be lost between the check's look and the token being stored: both sides
//! write one item (`pk = wake#<key>` in the service index's table) with conditions. The
//! event side completes the task whose token is there, or notes `news_at` when none is (or
//! only a timed-out wait's); the await side stores its token and takes `news_at`, failing
//! with `Woken` when there was news (the definition then runs the check at once). Whichever
//! writes second sees the other's write, so one of them wakes the wait. News older than the
//! look (a duplicate event) wakes one check early at worst.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_dynamo::{AttributeValue, Item};
use tracing::{info, warn};

use crate::context::Context;
use crate::error::{StepError, StepResult};
use crate::poll::{CheckInput, Poll, awaiting_event};
use crate::ports::tables::{Cond, Path, Returns, Update, Write, WriteOp, Written};
pub use crate::step_input::AwaitInput;
use crate::step_input::LOCAL_TOKEN_PREFIX;

/// The EventBridge detail type of ECS's task state changes (a migration task stopped).
pub const TASK_STATE_CHANGE: &str = "ECS Task State Change";
/// The EventBridge detail type of ECS's service deployment state changes (a rollout settled).
pub const DEPLOYMENT_STATE_CHANGE: &str = "ECS Deployment State Change";

/// How long a check woken by an event keeps looking (every second) before it waits again:
/// ECS's describe calls may lag its event by a moment.
pub const EVENT_LOOK_WINDOW_SECONDS: u64 = 3;

/// How long the state machine waits for an event before the check looks anyway: the slow path
/// when an event is lost. It doubles after every four checks of a step, to at most four times
/// this ([`slow_path_seconds`]): a long migration's execution must not fill Step Functions'
/// history (25,000 events; one wait and check are about 18).
pub const SLOW_PATH_SECONDS: u64 = 30;

/// The slow path of a step's check number `attempt`: 30, 30, 30, 30, 60 … 60, 120 s.
pub fn slow_path_seconds(attempt: u32) -> u64 {
    SLOW_PATH_SECONDS << (attempt / 4).min(2)
}

/// How long a wait item outlives its last write (DynamoDB's TTL removes it).
const ITEM_TTL_SECONDS: i64 = 24 * 3600;

/// The wake key of the task started with `started_by` (bluegreen's migration tasks carry
/// their deployment and kind there, see `crate::migration::started_by`).
pub fn task_key(started_by: &str) -> String {
    format!("ecs-task:{started_by}")
}

/// The wake key of service `service` in `cluster` (each a name or an ARN).
pub fn service_key(cluster: &str, service: &str) -> String {
    let last = |text: &str| text.rsplit('/').next().unwrap_or(text).to_owned();
    format!("ecs-service:{}/{}", last(cluster), last(service))
}

/// What [`wait`] answers when the token is stored: an event (or the timeout) ends the wait.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Waiting {
    /// The wake key it waits under.
    pub waiting_on: String,
}

/// What [`on_event`] did with one event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Woken {
    /// Not a change any wait is woken by (a task still running, a deployment in progress).
    Ignored {
        /// Why.
        why: String,
    },
    /// A waiting task was completed.
    Woke {
        /// The wake key.
        key: String,
        /// The deployment whose wait it was.
        deployment_id: String,
    },
    /// Nothing waited under the key (yet, or any more): the news is kept for the next wait.
    Noted {
        /// The wake key.
        key: String,
    },
}

/// The part of an "ECS Task State Change" detail read here.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TaskChange {
    last_status: String,
    #[serde(default)]
    started_by: Option<String>,
}

/// The part of an "ECS Deployment State Change" detail read here.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeploymentChange {
    event_name: String,
}

/// The wake key an ECS event concerns, or why it wakes nothing. Only endings wake: a task
/// `STOPPED`, a deployment `COMPLETED` or `FAILED` (a `RUNNING` task or a deployment
/// `IN_PROGRESS` arriving after its ending, as EventBridge may deliver them, is ignored).
/// Anything that is not an ECS event of those two types is `EventMalformed`.
pub fn key_of(event: &serde_json::Value) -> StepResult<Result<String, String>> {
    let event: EventBridgeEvent<serde_json::Value> = serde_json::from_value(event.clone())
        .map_err(|e| StepError::EventMalformed(format!("not an EventBridge event: {e}")))?;
    if event.source != "aws.ecs" {
        return Err(StepError::EventMalformed(format!(
            "the wake function handles ECS events, not events from {:?}",
            event.source
        )));
    }
    let malformed = |e: serde_json::Error| {
        StepError::EventMalformed(format!("{} detail: {e}", event.detail_type))
    };
    match event.detail_type.as_str() {
        TASK_STATE_CHANGE => {
            let change: TaskChange = serde_json::from_value(event.detail).map_err(malformed)?;
            if change.last_status != "STOPPED" {
                return Ok(Err(format!("task is {}", change.last_status)));
            }
            Ok(change
                .started_by
                .filter(|s| !s.is_empty())
                .map(|s| task_key(&s))
                .ok_or_else(|| "task has no startedBy".to_owned()))
        }
        DEPLOYMENT_STATE_CHANGE => {
            let change: DeploymentChange =
                serde_json::from_value(event.detail).map_err(malformed)?;
            if !matches!(
                change.event_name.as_str(),
                "SERVICE_DEPLOYMENT_COMPLETED" | "SERVICE_DEPLOYMENT_FAILED"
            ) {
                return Ok(Err(format!("deployment is {}", change.event_name)));
            }
            // A service with the retired short ARN (no cluster) is none of bluegreen's: its
            // slots are created with the long format. Not malformed, so not retried.
            Ok(event
                .resources
                .iter()
                .flatten()
                .find_map(|arn| service_of_arn(arn))
                .map(|(cluster, service)| service_key(cluster, service))
                .ok_or_else(|| format!("no service in the long ARN format: {:?}", event.resources)))
        }
        other => Err(StepError::EventMalformed(format!(
            "the wake function handles {TASK_STATE_CHANGE:?} and {DEPLOYMENT_STATE_CHANGE:?}, \
             not {other:?}"
        ))),
    }
}

/// `(cluster, service)` of `arn:…:ecs:…:service/<cluster>/<service>` (the long ARN format;
/// the retired short one names no cluster and is not matched).
fn service_of_arn(arn: &str) -> Option<(&str, &str)> {
    let resource = arn.split(':').nth(5)?;
    let mut parts = resource.split('/');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some("service"), Some(cluster), Some(service), None)
            if !cluster.is_empty() && !service.is_empty() =>
        {
            Some((cluster, service))
        }
        _ => None,
    }
}

/// A check's pending answer while ECS works on what `key` names, which must end by `by` (a
/// deadline no event announces: the migration task's own timeout, or the step's): waited for
/// by its event (the slow path after [`slow_path_seconds`], never past `by`), or — with
/// `BLUEGREEN_WAKE_ON_EVENTS=off` — looked at as any other wait.
pub fn pending(
    ctx: &Context,
    input: &CheckInput,
    detail: String,
    key: String,
    by: DateTime<Utc>,
) -> Poll {
    let now = ctx.now();
    if !ctx.settings.wake_on_events {
        return crate::poll::pending(input, now, detail);
    }
    let until = CheckInput {
        deadline: input.deadline.min(by),
        ..input.clone()
    };
    awaiting_event(&until, now, detail, key, slow_path_seconds(input.attempt))
}

fn s(value: &str) -> AttributeValue {
    AttributeValue::S(value.to_owned())
}

fn text(item: &Item, name: &str) -> Option<String> {
    match item.get(name) {
        Some(AttributeValue::S(value)) => Some(value.clone()),
        _ => None,
    }
}

/// The key of `key`'s wait item.
fn item_key(key: &str) -> Item {
    let mut item = Item::default();
    item.insert("pk".into(), s(&format!("wake#{key}")));
    item.insert("sk".into(), s("wait"));
    item
}

/// One write to `key`'s wait item: `set` these attributes (and the expiry), `remove` these,
/// if `condition` holds.
async fn write(
    ctx: &Context,
    key: &str,
    set: Vec<(&str, AttributeValue)>,
    remove: &[&str],
    condition: Option<Cond>,
    returns: Returns,
) -> StepResult<Written> {
    let mut updates: Vec<Update> = set
        .into_iter()
        .map(|(name, value)| Update::Set(Path::of(name), value))
        .collect();
    if !updates.is_empty() {
        let expires = ctx.now().timestamp() + ITEM_TTL_SECONDS;
        updates.push(Update::Set(
            Path::of("expires_at"),
            AttributeValue::N(expires.to_string()),
        ));
    }
    updates.extend(remove.iter().map(|name| Update::Remove(Path::of(name))));
    let write = Write {
        table: ctx.settings.services_table.clone(),
        key: item_key(key),
        op: WriteOp::Update(updates),
        condition,
    };
    ctx.ports.tables.write(write, returns).await
}

/// Completes the task waiting with `token`, then takes the token off the item (unless a newer
/// wait replaced it). `Ok(false)`: nobody waits on the token any more (the wait timed out,
/// the execution stopped, another wake came first). A local run's token is not Step
/// Functions': the local runner watches the item for its token to go, and cannot tell a
/// timed-out local wait from a live one, so the news is noted as well (a stale local token
/// does not swallow the wake; a live one costs one more check).
async fn complete(ctx: &Context, token: &str, key: &str) -> StepResult<bool> {
    let taken = Some(Cond::eq_s("token", token));
    if token.starts_with(LOCAL_TOKEN_PREFIX) {
        let news = vec![("news_at", s(&ctx.now().to_rfc3339()))];
        // A newer wait replaced the token meanwhile: not woken; the caller goes round again.
        let written = write(ctx, key, news, &["token"], taken, Returns::Nothing).await?;
        return Ok(matches!(written, Written::Applied(_)));
    }
    let output = serde_json::json!({ "woken_by": key }).to_string();
    let delivered = match ctx.ports.workflow.send_task_success(token, &output).await {
        Err(StepError::DecisionNotDelivered(why)) => {
            info!(%key, %why, "the wait had ended already");
            false
        }
        other => other.map(|()| true)?,
    };
    write(ctx, key, Vec::new(), &["token"], taken, Returns::Nothing).await?;
    Ok(delivered)
}

/// The `await` action: stores the waiting task's token under its key. When an event came
/// since the last wait on that key, the token is taken back and the action fails with
/// [`StepError::Woken`]: the definition's catch runs the check at once. (Completing its own
/// task would need `states:SendTaskSuccess`, which can complete any task — an approval too;
/// only the wake function holds it.)
pub async fn wait(ctx: &Context, input: &AwaitInput) -> StepResult<Waiting> {
    if input.task_token.trim().is_empty() || input.wake_on.trim().is_empty() {
        return Err(StepError::EventMalformed(
            "await needs a task_token and a wake_on key".into(),
        ));
    }
    let set = vec![
        ("token", s(&input.task_token)),
        ("deployment_id", s(&input.deployment_id)),
        ("waiting_since", s(&ctx.now().to_rfc3339())),
    ];
    let written = write(ctx, &input.wake_on, set, &["news_at"], None, Returns::Old).await?;
    let news = match written {
        Written::Applied(old) => old.as_ref().and_then(|item| text(item, "news_at")),
        Written::ConditionFailed => None,
    };
    let Some(news_at) = news else {
        return Ok(Waiting {
            waiting_on: input.wake_on.clone(),
        });
    };
    let ours = Some(Cond::eq_s("token", &input.task_token));
    write(
        ctx,
        &input.wake_on,
        Vec::new(),
        &["token"],
        ours,
        Returns::Nothing,
    )
    .await?;
    info!(deployment_id = %input.deployment_id, key = %input.wake_on, %news_at,
        "an event came before the wait began: the check runs at once");
    Err(StepError::Woken(format!(
        "{} changed at {news_at}, before the wait began",
        input.wake_on
    )))
}

/// Whether the task waiting with `token` still waits under `key` (the local runner's view of
/// a wake: the wake took the token off the item).
pub async fn still_waiting(ctx: &Context, key: &str, token: &str) -> StepResult<bool> {
    let item = ctx
        .ports
        .tables
        .get(&ctx.settings.services_table, &item_key(key), None)
        .await?;
    Ok(item.and_then(|i| text(&i, "token")).as_deref() == Some(token))
}

/// The wake function's work on one ECS event: completes the task waiting under the event's
/// key, or — when none waits — notes the news there for the next wait. A token left by a wait
/// that timed out is taken and the news noted (the check running after that timeout may be
/// about to wait again). A failure to complete leaves the token in place (the event's retry
/// completes it).
pub async fn on_event(ctx: &Context, event: &serde_json::Value) -> StepResult<Woken> {
    let key = match key_of(event)? {
        Ok(key) => key,
        Err(why) => return Ok(Woken::Ignored { why }),
    };
    // Each round ends or takes one token off the item, and a token is written once per wait:
    // the bound is only against a wait stored in every round.
    for _ in 0..4 {
        let news = vec![("news_at", s(&ctx.now().to_rfc3339()))];
        let nobody_waits = Some(Cond::absent("token"));
        if let Written::Applied(_) =
            write(ctx, &key, news, &[], nobody_waits, Returns::Nothing).await?
        {
            return Ok(Woken::Noted { key });
        }
        let item = ctx
            .ports
            .tables
            .get(&ctx.settings.services_table, &item_key(&key), None)
            .await?
            .unwrap_or_default();
        // Taken meanwhile by another wake of the same change: note the news again.
        let Some(token) = text(&item, "token") else {
            continue;
        };
        let deployment_id = text(&item, "deployment_id").unwrap_or_default();
        match complete(ctx, &token, &key).await {
            Ok(true) => {
                info!(%key, %deployment_id, "woke the wait");
                return Ok(Woken::Woke { key, deployment_id });
            }
            Ok(false) => continue,
            Err(e) => {
                warn!(%key, %deployment_id, error = %e, "could not wake the wait yet");
                return Err(e);
            }
        }
    }
    Err(StepError::AwsTransient {
        operation: "wake",
        message: format!("the wait item of {key} kept changing"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(
        detail_type: &str,
        detail: serde_json::Value,
        resources: &[&str],
    ) -> serde_json::Value {
        json!({
            "version": "0", "id": "e-1", "detail-type": detail_type, "source": "aws.ecs",
            "account": "111122223333", "time": "2026-12-06T10:00:00Z", "region": "eu-west-1",
            "resources": resources, "detail": detail,
        })
    }

    #[test]
    fn a_stopped_task_wakes_its_started_by_key_and_a_running_one_nothing() {
        let stopped = event(
            TASK_STATE_CHANGE,
            json!({"lastStatus": "STOPPED", "startedBy": "bg-shop-1-migrate"}),
            &["arn:aws:ecs:eu-west-1:111122223333:task/prod/abc"],
        );
        assert_eq!(key_of(&stopped).unwrap(), Ok(task_key("bg-shop-1-migrate")));
        let running = event(
            TASK_STATE_CHANGE,
            json!({"lastStatus": "RUNNING", "startedBy": "bg-shop-1-migrate"}),
            &[],
        );
        assert!(key_of(&running).unwrap().is_err());
        let nobody = event(TASK_STATE_CHANGE, json!({"lastStatus": "STOPPED"}), &[]);
        assert!(key_of(&nobody).unwrap().is_err());
    }

    #[test]
    fn a_settled_deployment_wakes_its_services_key_and_one_in_progress_nothing() {
        let arn = "arn:aws:ecs:eu-west-1:111122223333:service/prod/shop-green";
        for name in ["SERVICE_DEPLOYMENT_COMPLETED", "SERVICE_DEPLOYMENT_FAILED"] {
            let settled = event(DEPLOYMENT_STATE_CHANGE, json!({"eventName": name}), &[arn]);
            assert_eq!(
                key_of(&settled).unwrap(),
                Ok(service_key("prod", "shop-green"))
            );
        }
        let progress = event(
            DEPLOYMENT_STATE_CHANGE,
            json!({"eventName": "SERVICE_DEPLOYMENT_IN_PROGRESS"}),
            &[arn],
        );
        assert!(key_of(&progress).unwrap().is_err());
        let short_arn = event(
            DEPLOYMENT_STATE_CHANGE,
            json!({"eventName": "SERVICE_DEPLOYMENT_COMPLETED"}),
            &["arn:aws:ecs:eu-west-1:111122223333:service/shop-green"],
        );
        assert!(key_of(&short_arn).unwrap().is_err(), "ignored, not retried");
    }

    #[test]
    fn other_events_are_malformed_for_the_wake_function() {
        let ssm = json!({"version": "0", "id": "1", "detail-type": "Parameter Store Change",
            "source": "aws.ssm", "account": "1", "time": "2026-12-06T10:00:00Z",
            "region": "eu-west-1", "resources": [], "detail": {}});
        assert!(matches!(key_of(&ssm), Err(StepError::EventMalformed(_))));
        let action = event("ECS Service Action", json!({}), &[]);
        assert!(matches!(key_of(&action), Err(StepError::EventMalformed(_))));
        assert!(matches!(
            key_of(&json!({"hello": 1})),
            Err(StepError::EventMalformed(_))
        ));
    }

    #[test]
    fn the_slow_path_grows_with_the_checks_to_two_minutes() {
        let paths: Vec<u64> = [0, 3, 4, 7, 8, 40].map(slow_path_seconds).to_vec();
        assert_eq!(paths, vec![30, 30, 60, 60, 120, 120]);
    }

    #[test]
    fn a_cluster_arn_and_its_name_give_one_key() {
        assert_eq!(
            service_key("arn:aws:ecs:eu-west-1:1:cluster/prod", "web"),
            service_key("prod", "web")
        );
        assert_eq!(
            service_key("prod", "arn:aws:ecs:eu-west-1:1:service/prod/web"),
            service_key("prod", "web")
        );
    }
}
