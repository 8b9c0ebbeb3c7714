//! A made-up history of deployments for the delivery-metrics tests: records as the steps
//! write them (admission's record, a timeline of steps, the switch time, the ending), written
//! straight into the deployments table, so `bluegreen metrics`, the console's pages and
//! `bluegreen::delivery` can be checked against numbers worked out by hand.

use bluegreen::Context;
use bluegreen::config::ServiceConfig;
use bluegreen::event::{Image, Push};
use bluegreen::record::{Deployment, Records, Status, StepOutcome, TimelineEntry};
use chrono::{DateTime, Duration, Utc};

use crate::{ACCOUNT, REPOSITORY};

/// One past deployment: pushed at `pushed`, traffic moved `switched` minutes later (or
/// never), a failure seen `failed` minutes after the push, ended `ended` minutes after it.
#[derive(Debug, Clone, Copy)]
pub struct Past {
    /// Its image tag (and the suffix of its id).
    pub tag: &'static str,
    /// When the image was pushed.
    pub pushed: DateTime<Utc>,
    /// Minutes from the push to the switch.
    pub switched: Option<i64>,
    /// How it ended.
    pub status: Status,
    /// Minutes from the push to the failure seen after the switch.
    pub failed: Option<i64>,
    /// Minutes from the push to its end.
    pub ended: i64,
}

/// The record `past` leaves, for `config`'s service.
pub fn record(ctx: &Context, config: &ServiceConfig, past: &Past) -> Deployment {
    let push = push(past.tag, past.pushed);
    let id = format!("{}-{}", config.name, past.tag);
    let mut d = bluegreen::admit::new_record(
        ctx,
        &id,
        &push,
        config.clone(),
        Status::Preparing,
        Some(bluegreen::Slot::Blue),
    );
    let at = |minutes: i64| past.pushed + Duration::minutes(minutes);
    d.created_at = at(0) + Duration::seconds(30);
    let entry = |step: &str, minutes: i64, outcome: StepOutcome| TimelineEntry {
        step: step.into(),
        at: at(minutes),
        outcome,
        detail: String::new(),
    };
    let mut timeline = vec![
        entry("prepare", 0, StepOutcome::Succeeded),
        entry("migrate", 1, StepOutcome::Started),
        entry("launch_preprod", 2, StepOutcome::Started),
        entry("health_check", 3, StepOutcome::Started),
        entry("approval", 4, StepOutcome::Started),
    ];
    if let Some(switched) = past.switched {
        timeline.push(entry("switch", switched, StepOutcome::Started));
        timeline.push(entry("bake", switched + 1, StepOutcome::Started));
        d.switched_at = Some(at(switched));
    }
    if let Some(failed) = past.failed {
        timeline.push(entry("bake", failed, StepOutcome::Failed));
    }
    let ending = match past.status {
        Status::Succeeded => "finish",
        Status::RolledBack => "rollback",
        _ => "abort",
    };
    timeline.push(entry(ending, past.ended, StepOutcome::Succeeded));
    d.timeline = timeline;
    d.status = past.status;
    d.updated_at = at(past.ended);
    d
}

/// A push of the service's repository tagged `tag` at `time`.
pub fn push(tag: &str, time: DateTime<Utc>) -> Push {
    Push {
        event_id: format!("history-{tag}"),
        time,
        image: Image {
            repository: REPOSITORY.into(),
            tag: tag.into(),
            digest: format!("sha256:{}", "ab".repeat(32)),
            account: ACCOUNT.into(),
            region: "us-east-1".into(),
        },
        replicated_from: None,
        requested: None,
    }
}

/// Writes `history` of `config`'s service into the deployments table.
pub async fn seed(ctx: &Context, config: &ServiceConfig, history: &[Past]) {
    let records = Records::new(ctx);
    for past in history {
        records
            .create(&record(ctx, config, past))
            .await
            .expect("a seeded record");
    }
}

/// The history the metrics tests share, `days_ago` days back from `now`, and the numbers it
/// makes (worked out by hand): four deployments of the service, three reaching production;
/// lead times 20, 40 and 5 minutes; one of the three rolled back 10 minutes after its bake
/// failed; one aborted before production.
pub fn standard(now: DateTime<Utc>) -> Vec<Past> {
    let day = |n: i64| now - Duration::days(n);
    vec![
        Past {
            tag: "v1",
            pushed: day(3),
            switched: Some(20),
            status: Status::Succeeded,
            failed: None,
            ended: 30,
        },
        Past {
            tag: "v2",
            pushed: day(2),
            switched: Some(40),
            status: Status::Succeeded,
            failed: None,
            ended: 50,
        },
        Past {
            tag: "v3",
            pushed: day(2) + Duration::hours(2),
            switched: Some(5),
            status: Status::RolledBack,
            failed: Some(10),
            ended: 20,
        },
        Past {
            tag: "v4",
            pushed: day(1),
            switched: None,
            status: Status::Aborted,
            failed: None,
            ended: 8,
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use bluegreen::delivery::{Delivered, step_times};

    /// A deployment's own time ends at its ending: the first succeeded one after the last
    /// `retry` (the reconciler's counts), never at an `unlock` a day later.
    #[test]
    fn a_deployments_time_ends_at_its_last_ending_not_at_later_entries() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let names = crate::memory::world::made_up_names();
            let conductor = std::sync::Arc::new(crate::memory::Immediate);
            let (_aws, ctx) =
                crate::memory::world::build(&names, conductor, std::sync::Arc::new(Utc::now)).await;
            let config = crate::service_config(&names);
            let pushed = "2026-12-01T00:00:00Z".parse::<DateTime<Utc>>().unwrap();
            let past = Past {
                tag: "v9",
                pushed,
                switched: Some(20),
                status: Status::NeedsAttention,
                failed: Some(25),
                ended: 30,
            };
            let mut d = record(&ctx, &config, &past);
            let at = |minutes: i64| pushed + Duration::minutes(minutes);
            let entry = |step: &str, minutes: i64, outcome| TimelineEntry {
                step: step.into(),
                at: at(minutes),
                outcome,
                detail: String::new(),
            };
            // The reconciler ended it needing attention at 30 (in place of the seeded ending),
            // a person retried at 90, the rollback ended it at 100, an unlock came a day later.
            d.timeline.pop();
            d.timeline
                .push(entry("reconcile", 30, StepOutcome::Succeeded));
            d.timeline.push(entry("retry", 90, StepOutcome::Started));
            d.timeline
                .push(entry("rollback", 100, StepOutcome::Succeeded));
            d.timeline
                .push(entry("unlock", 1540, StepOutcome::Succeeded));
            d.status = Status::RolledBack;
            assert_eq!(Delivered::of(&d).ended_at, Some(at(100)));
            let times = step_times(&d);
            let retry = times.iter().find(|t| t.step == "retry").unwrap();
            assert_eq!(retry.seconds, 600, "{times:?}");
            assert!(times.iter().all(|t| t.step != "unlock"), "{times:?}");

            // Without the retry, it ended at the reconciler's ending, not at the unlock.
            let unlock = d.timeline.pop().unwrap();
            d.timeline.truncate(d.timeline.len() - 2);
            d.timeline.push(unlock);
            d.status = Status::NeedsAttention;
            assert_eq!(Delivered::of(&d).ended_at, Some(at(30)));
        });
    }
}
