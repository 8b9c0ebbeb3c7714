//! Delivery metrics from the deployment records (DESIGN 27): deployment frequency, lead time
//! from push to production, change failure rate and time to restore, per service and overall,
//! and where a deployment's time went step by step. Pure functions over the records: the CLI
//! (`bluegreen metrics`), the console's metrics page and the endings' EMF lines
//! ([`crate::metrics`]) all count the same way.
//!
//! Definitions, as DORA's, on what bluegreen knows:
//! - a deployment **reached production** when traffic first moved to it (`switched_at`);
//! - **deployment frequency**: deployments that succeeded, per day of the window;
//! - **lead time**: from the push (`pushed_at`) to production (`switched_at`), for the
//!   deployments that reached it — median and 90th percentile;
//! - **change failure rate**: of those that reached production, the share that ended rolled
//!   back (automatically or by `bluegreen rollback`), aborted, or needing attention;
//! - **time to restore**: for each change failure, from when the failure was seen (the first
//!   failed step after the switch, or the manual rollback's request) to production being back
//!   on a good release — the rollback's or abort's end, or for a deployment left needing
//!   attention the next deployment of the service that reached production and succeeded.
//!   Failures not restored yet are counted apart.

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use crate::record::{Deployment, Status, StepOutcome, TimelineEntry};
use crate::retirement::MANUAL_ROLLBACK_STEP;

/// What the delivery numbers read of one deployment record.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivered {
    /// The service.
    pub service: String,
    /// The deployment.
    pub deployment_id: String,
    /// How it stands.
    pub status: Status,
    /// When the image was pushed.
    pub pushed_at: DateTime<Utc>,
    /// When its record was made (the window is over this).
    pub created_at: DateTime<Utc>,
    /// When traffic first moved to it.
    pub switched_at: Option<DateTime<Utc>>,
    /// When a failure after the switch was first seen (see the module's definitions).
    pub failed_at: Option<DateTime<Utc>>,
    /// When it ended (its last timeline entry), once terminal.
    pub ended_at: Option<DateTime<Utc>>,
}

impl Delivered {
    /// Reads `d`.
    pub fn of(d: &Deployment) -> Self {
        let failed_at = d.switched_at.and_then(|switched| {
            d.timeline
                .iter()
                .filter(|e| e.at >= switched)
                .find(|e| {
                    e.outcome == StepOutcome::Failed
                        || (e.step == MANUAL_ROLLBACK_STEP && e.outcome == StepOutcome::Started)
                })
                .map(|e| e.at)
        });
        Delivered {
            service: d.service.clone(),
            deployment_id: d.deployment_id.clone(),
            status: d.status,
            pushed_at: d.pushed_at,
            created_at: d.created_at,
            switched_at: d.switched_at,
            failed_at,
            ended_at: d.status.is_terminal().then(|| ended_at(d)).flatten(),
        }
    }

    /// Whether it reached production and then failed there.
    pub fn change_failed(&self) -> bool {
        self.switched_at.is_some()
            && matches!(
                self.status,
                Status::RolledBack | Status::Aborted | Status::NeedsAttention
            )
    }

    /// Push to production, once it got there.
    pub fn lead_time(&self) -> Option<Duration> {
        self.switched_at.map(|at| at - self.pushed_at)
    }
}

/// The endings' timeline entries: the deployment was over (its status terminal) once one of
/// these succeeded (`reconcile`: the reconciler ended it needing attention). Entries after it
/// (an `unlock`, a manual rollback's retirement days later) are not the deployment's time.
const ENDINGS: [&str; 4] = ["finish", "abort", "rollback", "reconcile"];
/// An operator re-opened an ended deployment (`bluegreen retry`): its ending runs again.
const RETRY: &str = "retry";

/// Where `d`'s own timeline ends: the first ending that succeeded after the last `retry` (an
/// earlier ending ended it needing attention, and the retry re-opened it), inclusive; else all
/// of it.
fn own_timeline(d: &Deployment) -> &[TimelineEntry] {
    let from = d
        .timeline
        .iter()
        .rposition(|e| e.step == RETRY)
        .map_or(0, |i| i + 1);
    let end = d.timeline[from..]
        .iter()
        .position(|e| ENDINGS.contains(&e.step.as_str()) && e.outcome == StepOutcome::Succeeded)
        .map_or(d.timeline.len(), |i| from + i + 1);
    &d.timeline[..end]
}

/// When `d` ended: a manual rollback's move of traffic back (a succeeded deployment rolled back
/// later ended then, not at its finish), else its own timeline's last entry.
fn ended_at(d: &Deployment) -> Option<DateTime<Utc>> {
    let manual = d
        .timeline
        .iter()
        .find(|e| e.step == MANUAL_ROLLBACK_STEP && e.outcome == StepOutcome::Succeeded);
    match (d.status, manual) {
        (Status::RolledBack, Some(entry)) => Some(entry.at),
        _ => own_timeline(d).last().map(|e| e.at),
    }
}

/// A median and a 90th percentile, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Spread {
    /// The median.
    pub median_seconds: i64,
    /// The 90th percentile (nearest rank).
    pub p90_seconds: i64,
}

impl Spread {
    /// The spread of `seconds`; `None` when there are none.
    pub fn of(mut seconds: Vec<i64>) -> Option<Spread> {
        if seconds.is_empty() {
            return None;
        }
        seconds.sort_unstable();
        let rank = |p: usize| seconds[(seconds.len() * p).div_ceil(100).max(1) - 1];
        Some(Spread {
            median_seconds: rank(50),
            p90_seconds: rank(90),
        })
    }
}

/// The four numbers for one service (or every service) over a window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeliveryMetrics {
    /// The service; `None` for every service together.
    pub service: Option<String>,
    /// The window's start (records created at or after it count).
    pub since: DateTime<Utc>,
    /// The window's end.
    pub until: DateTime<Utc>,
    /// Deployments in the window (every record, queued and superseded ones too).
    pub deployments: usize,
    /// Of those, the ones that reached production.
    pub reached_production: usize,
    /// Of those, the ones that succeeded.
    pub succeeded: usize,
    /// Succeeded deployments per day of the window.
    pub per_day: f64,
    /// Push to production.
    pub lead_time: Option<Spread>,
    /// Deployments that reached production and failed there.
    pub change_failures: usize,
    /// `change_failures / reached_production`.
    pub change_failure_rate: Option<f64>,
    /// Failure seen to production restored, over the restored failures.
    pub time_to_restore: Option<Spread>,
    /// Change failures production has not been restored from (yet, as far as the records
    /// in the window tell).
    pub unrestored: usize,
}

/// The numbers of `records` (one service's, or every service's with `service = None`) over
/// `since..until`.
pub fn measure(
    records: &[Delivered],
    service: Option<&str>,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
) -> DeliveryMetrics {
    let window: Vec<&Delivered> = records
        .iter()
        .filter(|d| service.is_none_or(|s| d.service == s))
        .filter(|d| d.created_at >= since && d.created_at <= until)
        .collect();
    let reached: Vec<&Delivered> = window
        .iter()
        .copied()
        .filter(|d| d.switched_at.is_some())
        .collect();
    let succeeded = reached
        .iter()
        .filter(|d| d.status == Status::Succeeded)
        .count();
    let failures: Vec<&Delivered> = reached
        .iter()
        .copied()
        .filter(|d| d.change_failed())
        .collect();
    let restores: Vec<Option<i64>> = failures
        .iter()
        .map(|d| restored_at(d, records).map(|at| (at - seen_at(d)).num_seconds().max(0)))
        .collect();
    let days = ((until - since).num_seconds().max(1) as f64) / 86_400.0;
    DeliveryMetrics {
        service: service.map(str::to_owned),
        since,
        until,
        deployments: window.len(),
        reached_production: reached.len(),
        succeeded,
        per_day: succeeded as f64 / days,
        lead_time: Spread::of(
            reached
                .iter()
                .filter_map(|d| d.lead_time().map(|t| t.num_seconds().max(0)))
                .collect(),
        ),
        change_failures: failures.len(),
        change_failure_rate: (!reached.is_empty())
            .then(|| failures.len() as f64 / reached.len() as f64),
        time_to_restore: Spread::of(restores.iter().flatten().copied().collect()),
        unrestored: restores.iter().filter(|r| r.is_none()).count(),
    }
}

/// The numbers of every service in `records` (by name), then of all of them together.
pub fn by_service(
    records: &[Delivered],
    since: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Vec<DeliveryMetrics> {
    let mut services: Vec<&str> = records.iter().map(|d| d.service.as_str()).collect();
    services.sort_unstable();
    services.dedup();
    let mut all: Vec<DeliveryMetrics> = services
        .into_iter()
        .map(|s| measure(records, Some(s), since, until))
        .collect();
    all.push(measure(records, None, since, until));
    all
}

/// When the failure of `d` was seen.
fn seen_at(d: &Delivered) -> DateTime<Utc> {
    d.failed_at.or(d.switched_at).unwrap_or(d.created_at)
}

/// When production was back on a good release after `d` failed: its own ending, when that
/// ending moved production back (rolled back, aborted); otherwise the next deployment of the
/// service that reached production and succeeded.
fn restored_at(d: &Delivered, records: &[Delivered]) -> Option<DateTime<Utc>> {
    if matches!(d.status, Status::RolledBack | Status::Aborted) {
        return d.ended_at;
    }
    let seen = seen_at(d);
    records
        .iter()
        .filter(|n| n.service == d.service && n.status == Status::Succeeded)
        .filter_map(|n| n.switched_at)
        .filter(|at| *at > seen)
        .min()
}

/// How long one step of a deployment took: from its first entry in the timeline to the entry
/// after its last one (the next step beginning, or the deployment's end).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepTime {
    /// The step (`launch_preprod`, `approval`, …).
    pub step: String,
    /// Seconds.
    pub seconds: i64,
}

/// Where `d`'s time went, step by step, in the order the steps ran (a step that comes back —
/// a retried switch — adds to its first place), up to its ending.
pub fn step_times(d: &Deployment) -> Vec<StepTime> {
    let mut times: Vec<StepTime> = Vec::new();
    let timeline = own_timeline(d);
    for (entry, next) in timeline.iter().zip(timeline.iter().skip(1)) {
        let seconds = (next.at - entry.at).num_seconds().max(0);
        match times.iter_mut().find(|t| t.step == entry.step) {
            Some(time) => time.seconds += seconds,
            None => times.push(StepTime {
                step: entry.step.clone(),
                seconds,
            }),
        }
    }
    times
}

/// The median time of each step over `deployments` (steps in the order they first ran).
pub fn step_medians(deployments: &[Deployment]) -> Vec<StepTime> {
    let mut seen: Vec<(String, Vec<i64>)> = Vec::new();
    for d in deployments {
        for time in step_times(d) {
            match seen.iter_mut().find(|(step, _)| *step == time.step) {
                Some((_, all)) => all.push(time.seconds),
                None => seen.push((time.step, vec![time.seconds])),
            }
        }
    }
    seen.into_iter()
        .filter_map(|(step, all)| {
            Spread::of(all).map(|s| StepTime {
                step,
                seconds: s.median_seconds,
            })
        })
        .collect()
}

/// The longest window a reader may ask for: every record of the window is read, page by page.
pub const MAX_WINDOW_DAYS: i64 = 366;

/// The start of a window written as `30d`, `12h`, `2w` or `90m` before `now`, or as a date
/// (`2026-11-01`) or an RFC 3339 time; at most [`MAX_WINDOW_DAYS`] back.
pub fn parse_since(text: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    let text = text.trim();
    let unit = |c: char| match c {
        'm' => Some(60),
        'h' => Some(3_600),
        'd' => Some(86_400),
        'w' => Some(604_800),
        _ => None,
    };
    let span = text
        .chars()
        .last()
        .and_then(unit)
        .and_then(|seconds| {
            let n = text[..text.len() - 1]
                .parse::<i64>()
                .ok()
                .filter(|n| *n > 0)?;
            Duration::try_seconds(n.checked_mul(seconds)?)
        })
        .and_then(|span| now.checked_sub_signed(span));
    let since = span
        .or_else(|| {
            DateTime::parse_from_rfc3339(text)
                .ok()
                .map(|at| at.with_timezone(&Utc))
        })
        .or_else(|| {
            chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .ok()
                .map(|day| day.and_time(chrono::NaiveTime::MIN).and_utc())
        })
        .ok_or_else(|| {
            format!(
                "{text:?} is not a window start: use 30d, 12h, 2w, 90m, a date (2026-11-01) or \
                 an RFC 3339 time"
            )
        })?;
    if now - since > Duration::days(MAX_WINDOW_DAYS) {
        return Err(format!(
            "{text:?} reaches back more than {MAX_WINDOW_DAYS} days: every record of the window \
             is read; ask for a shorter one"
        ));
    }
    Ok(since)
}

/// `seconds` for people: `40s`, `15m 05s`, `2h 03m`, `3d 04h`.
pub fn human(seconds: i64) -> String {
    let s = seconds.max(0);
    match s {
        0..60 => format!("{s}s"),
        60..3_600 => format!("{}m {:02}s", s / 60, s % 60),
        3_600..86_400 => format!("{}h {:02}m", s / 3_600, s % 3_600 / 60),
        _ => format!("{}d {:02}h", s / 86_400, s % 86_400 / 3_600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(minutes: i64) -> DateTime<Utc> {
        "2026-12-01T00:00:00Z".parse::<DateTime<Utc>>().unwrap() + Duration::minutes(minutes)
    }

    /// A deployment of `service` pushed at `pushed` minutes, switched at `switched`, ended
    /// `status` at `ended`; a failure seen at `failed`.
    fn delivered(
        service: &str,
        pushed: i64,
        switched: Option<i64>,
        status: Status,
        failed: Option<i64>,
        ended: i64,
    ) -> Delivered {
        Delivered {
            service: service.into(),
            deployment_id: format!("{service}-{pushed}"),
            status,
            pushed_at: at(pushed),
            created_at: at(pushed),
            switched_at: switched.map(at),
            failed_at: failed.map(at),
            ended_at: Some(at(ended)),
        }
    }

    fn history() -> Vec<Delivered> {
        vec![
            // shop: two successes (lead times 20 and 40 min), one rolled back after the switch
            // (seen at 130, back at 140), one aborted before production, one left needing
            // attention after the switch (seen at 310) and restored by the next success (330).
            delivered("shop", 0, Some(20), Status::Succeeded, None, 30),
            delivered("shop", 60, Some(100), Status::Succeeded, None, 110),
            delivered("shop", 120, Some(125), Status::RolledBack, Some(130), 140),
            delivered("shop", 200, None, Status::Aborted, None, 210),
            delivered(
                "shop",
                300,
                Some(305),
                Status::NeedsAttention,
                Some(310),
                320,
            ),
            delivered("shop", 315, Some(330), Status::Succeeded, None, 340),
            // cart: one success, one failure nothing has restored yet.
            delivered("cart", 0, Some(10), Status::Succeeded, None, 15),
            delivered("cart", 50, Some(55), Status::NeedsAttention, Some(56), 60),
        ]
    }

    #[test]
    fn a_services_four_numbers() {
        let shop = measure(&history(), Some("shop"), at(0), at(1440));
        assert_eq!(shop.deployments, 6);
        assert_eq!(shop.reached_production, 5);
        assert_eq!(shop.succeeded, 3);
        assert_eq!(shop.per_day, 3.0);
        // Lead times 20, 40, 5, 5, 15 minutes: median 15, p90 40.
        assert_eq!(
            shop.lead_time,
            Some(Spread {
                median_seconds: 900,
                p90_seconds: 2400
            })
        );
        assert_eq!(shop.change_failures, 2);
        assert_eq!(shop.change_failure_rate, Some(0.4));
        // Restored after 10 min (rollback) and 20 min (the next success).
        assert_eq!(
            shop.time_to_restore,
            Some(Spread {
                median_seconds: 600,
                p90_seconds: 1200
            })
        );
        assert_eq!(shop.unrestored, 0);
    }

    #[test]
    fn every_service_together_and_an_unrestored_failure() {
        let all = by_service(&history(), at(0), at(1440));
        let names: Vec<Option<&str>> = all.iter().map(|m| m.service.as_deref()).collect();
        assert_eq!(names, vec![Some("cart"), Some("shop"), None]);
        let cart = &all[0];
        assert_eq!((cart.change_failures, cart.unrestored), (1, 1));
        assert_eq!(cart.time_to_restore, None);
        let overall = &all[2];
        assert_eq!(overall.deployments, 8);
        assert_eq!(overall.succeeded, 4);
        assert_eq!(overall.change_failures, 3);
        assert_eq!(overall.unrestored, 1);
    }

    #[test]
    fn the_window_counts_records_made_in_it() {
        let late = measure(&history(), Some("shop"), at(250), at(1440));
        assert_eq!(late.deployments, 2);
        assert_eq!(late.succeeded, 1);
        assert_eq!(late.per_day, 1.0 / ((1440.0 - 250.0) / 1440.0));
        let empty = measure(&history(), Some("shop"), at(2000), at(3000));
        assert_eq!(empty.deployments, 0);
        assert_eq!(empty.change_failure_rate, None);
        assert_eq!(empty.lead_time, None);
    }

    #[test]
    fn percentiles_take_the_nearest_rank() {
        assert_eq!(Spread::of(vec![]), None);
        assert_eq!(
            Spread::of(vec![7]),
            Some(Spread {
                median_seconds: 7,
                p90_seconds: 7
            })
        );
        let spread = Spread::of((1..=10).rev().collect()).unwrap();
        assert_eq!((spread.median_seconds, spread.p90_seconds), (5, 9));
    }

    #[test]
    fn a_window_start_is_a_span_back_or_a_date() {
        let now = at(100_000);
        assert_eq!(parse_since("30d", now), Ok(now - Duration::days(30)));
        assert_eq!(parse_since("12h", now), Ok(now - Duration::hours(12)));
        assert_eq!(parse_since("2w", now), Ok(now - Duration::weeks(2)));
        assert_eq!(parse_since("2026-12-01", now), Ok(at(0)));
        assert_eq!(parse_since("2026-12-01T00:10:00Z", now), Ok(at(10)));
        for bad in [
            "",
            "d",
            "0d",
            "-3d",
            "30x",
            "yesterday",
            "367d",
            "999999999999999d",
        ] {
            assert!(parse_since(bad, now).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn durations_read_for_people() {
        assert_eq!(human(40), "40s");
        assert_eq!(human(905), "15m 05s");
        assert_eq!(human(7_380), "2h 03m");
        assert_eq!(human(273_600), "3d 04h");
        assert_eq!(human(-5), "0s");
    }
}
