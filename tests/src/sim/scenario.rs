//! One seed's world: the service's config, the pushes (times, order of delivery, duplicates),
//! how each pushed image behaves (its rollout, smoke checks, alarms, migrations), how often
//! AWS fails, and what the operators do. Every choice comes from the seed; [`Knobs`] switch
//! whole kinds of trouble off, which is how a failing seed is shrunk.

use bluegreen::looks::Pacing;
use std::collections::BTreeSet;

use bluegreen::config::{
    ApprovalPolicy, Database, DbSource, DbStrategy, MigrationRun, Routes, RoutesWord,
    ServiceConfig, TestRule, Traffic,
};

use crate::Names;

use super::conductor::FaultRates;
use super::rng::Rng;

/// Which kinds of trouble a run may have (all on by default; shrinking turns them off).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Knobs {
    /// AWS calls throttled, their answers lost, invocations crashed.
    pub faults: bool,
    /// People approve, reject, abort, retry, unlock and roll back.
    pub operators: bool,
    /// Bad images: failed rollouts, failed smoke checks, alarms, failed migrations.
    pub bad_images: bool,
    /// At most this many pushes.
    pub pushes: usize,
    /// Status-change events dropped, duplicated, late.
    pub event_trouble: bool,
}

impl Default for Knobs {
    fn default() -> Self {
        Knobs {
            faults: true,
            operators: true,
            bad_images: true,
            pushes: 4,
            event_trouble: true,
        }
    }
}

impl Knobs {
    /// No trouble at all and one push: the interleaving campaign's and the lead-time
    /// benchmark's worlds.
    pub const QUIET: Knobs = Knobs {
        faults: false,
        operators: false,
        bad_images: false,
        pushes: 1,
        event_trouble: false,
    };
}

impl std::fmt::Display for Knobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut off = Vec::new();
        for (on, name) in [
            (self.faults, "faults"),
            (self.operators, "operators"),
            (self.bad_images, "bad-images"),
            (self.event_trouble, "event-trouble"),
        ] {
            if !on {
                off.push(format!("--no-{name}"));
            }
        }
        off.push(format!("--pushes {}", self.pushes));
        f.write_str(&off.join(" "))
    }
}

/// One push: its tag and digest, when it was pushed and when its event arrives.
#[derive(Debug, Clone)]
pub struct PushPlan {
    /// The tag.
    pub tag: String,
    /// The character its digest repeats.
    pub digest: char,
    /// The EventBridge event id.
    pub event_id: String,
    /// Seconds after the start it was pushed.
    pub pushed_after: u64,
    /// Seconds after the start its event is delivered (EventBridge delivers late, and out of
    /// order).
    pub delivered_after: u64,
    /// Delivered twice.
    pub duplicated: bool,
}

/// A seed's world.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// The knobs it was generated with.
    pub knobs: Knobs,
    /// The service's config.
    pub config: ServiceConfig,
    /// The pushes, in push order.
    pub pushes: Vec<PushPlan>,
    /// Digests whose rollout fails.
    pub rollout_fails: BTreeSet<char>,
    /// Digests whose smoke checks fail.
    pub smoke_fails: BTreeSet<char>,
    /// Digests that fire the bake alarm in production.
    pub alarms: BTreeSet<char>,
    /// `(kind, digest)` of migrations that exit non-zero.
    pub migration_fails: BTreeSet<(String, char)>,
    /// How long a migration task runs, seconds.
    pub migration_seconds: (u64, u64),
    /// How long a rollout takes, seconds.
    pub rollout_seconds: (u64, u64),
    /// How often calls fail.
    pub faults: FaultRates,
    /// Scripted decisions: the n-th approval request decided is approved (`true`) or rejected
    /// (`false`); past the list (empty in every seed's world) the rates below decide.
    pub decisions: Vec<bool>,
    /// Per thousand approval requests: approved (the rest are rejected or left to time out).
    pub approves: u64,
    /// Per thousand: rejected.
    pub rejects: u64,
    /// Per thousand deployments: an operator aborts it at some moment.
    pub aborts: u64,
    /// Production autoscales (blue has a scalable target and a policy) and Application Auto
    /// Scaling runs its policies now and then.
    pub autoscaled: bool,
    /// In a rule-mode world: the production listener's default action is another team's
    /// (otherwise it is production's and follows the rule). See [`super::neighbours`].
    pub default_is_neighbours: bool,
    /// How checks look: within each invocation every second or two (as in Lambda), or once
    /// per invocation (the state machine's backoff alone). Both must keep every invariant.
    pub pacing: Pacing,
}

fn digest_of(image: &str) -> Option<char> {
    image
        .rsplit("sha256:")
        .next()
        .and_then(|hex| hex.chars().next())
        .filter(|_| image.contains("sha256:"))
}

impl Scenario {
    /// The world `rng` makes with `knobs`.
    pub fn generate(rng: &Rng, knobs: Knobs, names: &Names) -> Scenario {
        let config = config(rng, names);
        let ecs = on_ecs(&config);
        let count = 1 + rng.below(knobs.pushes.max(1) as u64) as usize;
        let digests = ['a', 'b', 'c', 'd', 'e', 'f'];
        let mut pushes = Vec::new();
        let mut pushed = 60;
        for i in 0..count {
            pushed += rng.below(90 * 60);
            let late = match rng.below(10) {
                0..=6 => rng.below(5),
                7 | 8 => rng.below(120),
                _ => rng.below(1800),
            };
            pushes.push(PushPlan {
                tag: format!("v{}", i + 2),
                digest: digests[i % digests.len()],
                event_id: format!("event-{}", i + 1),
                pushed_after: pushed,
                delivered_after: pushed + late,
                duplicated: knobs.event_trouble && rng.chance(100),
            });
        }
        let pick = |per_thousand: u64| -> BTreeSet<char> {
            if !knobs.bad_images {
                return BTreeSet::new();
            }
            pushes
                .iter()
                .filter(|_| rng.chance(per_thousand))
                .map(|p| p.digest)
                .collect()
        };
        let rollout_fails = pick(80);
        let smoke_fails = pick(80);
        let alarms = pick(80);
        let mut migration_fails = BTreeSet::new();
        if knobs.bad_images {
            for push in &pushes {
                for kind in ["rehearsal", "migrate", "rollback"] {
                    if rng.chance(80) {
                        migration_fails.insert((kind.to_owned(), push.digest));
                    }
                }
            }
        }
        let faults = if knobs.faults && !rng.chance(200) {
            FaultRates {
                throttle: rng.below(30) as u32,
                lose_answer: rng.below(15) as u32,
                crash: rng.below(8) as u32,
            }
        } else {
            FaultRates::NONE
        };
        Scenario {
            knobs,
            config,
            pushes,
            rollout_fails,
            smoke_fails,
            alarms,
            migration_fails,
            migration_seconds: (5, 5 + rng.below(600)),
            rollout_seconds: (5, 5 + rng.below(300)),
            faults,
            decisions: Vec::new(),
            approves: 600 + rng.below(400),
            rejects: rng.below(200),
            aborts: if knobs.operators { rng.below(300) } else { 0 },
            // ECS's engine: the one service is not autoscaled here (its scalable target and
            // ECS's own deployments are not modelled together), and the listener's default is
            // another team's (ECS moves only its own rules: a default on the service's group
            // would be left on the old one).
            autoscaled: !ecs && rng.chance(500),
            default_is_neighbours: ecs || rng.chance(500),
            pacing: if rng.chance(500) {
                Pacing::Paced
            } else {
                Pacing::Once
            },
        }
    }

    /// Whether `image`'s rollout fails.
    pub fn rollout_fails(&self, image: &str) -> bool {
        digest_of(image).is_some_and(|d| self.rollout_fails.contains(&d))
    }

    /// Whether `image` fails its smoke checks.
    pub fn smoke_fails(&self, image: &str) -> bool {
        digest_of(image).is_some_and(|d| self.smoke_fails.contains(&d))
    }

    /// Whether `image` fires the bake alarm once it serves production.
    pub fn alarms(&self, image: &str) -> bool {
        digest_of(image).is_some_and(|d| self.alarms.contains(&d))
    }

    /// The exit code of a `kind` migration of `image`.
    pub fn migration_exit(&self, kind: &str, image: &str) -> i32 {
        match digest_of(image) {
            Some(d) if self.migration_fails.contains(&(kind.to_owned(), d)) => 3,
            _ => 0,
        }
    }
}

/// The standard config with this seed's database strategy, approval policy and warm window.
fn config(rng: &Rng, names: &Names) -> ServiceConfig {
    let mut config = crate::service_config(names);
    let (strategy, run, rehearsal) = *rng.pick(&[
        (DbStrategy::None, None, false),
        (DbStrategy::Shared, Some(MigrationRun::BeforeLaunch), false),
        (DbStrategy::Shared, Some(MigrationRun::AfterApproval), false),
        (DbStrategy::Shared, Some(MigrationRun::BeforeLaunch), true),
        (DbStrategy::Isolated, None, false),
    ]);
    config.database = Database {
        strategy,
        rehearsal,
        source: (strategy == DbStrategy::Isolated || rehearsal).then(|| DbSource::RdsInstance {
            identifier: "shop-db".into(),
        }),
        endpoint_env: "DATABASE_HOST".into(),
        ..Database::default()
    };
    match (&mut config.migration, strategy) {
        (_, DbStrategy::None) => config.migration = None,
        (Some(migration), _) => {
            migration.run = run;
            migration.rollback_command = rng
                .chance(500)
                .then(|| vec!["bin/migrate".into(), "down".into()]);
        }
        (None, _) => {}
    }
    config.health.test_url = Some(names.test_url.clone());
    if rng.chance(200) {
        config.approval.policy = ApprovalPolicy::Auto;
    }
    config.finish.keep_warm_seconds = *rng.pick(&[0, 0, 600]);
    // One seed in five moves production with Route 53 weighted records: each slot has its own
    // test URL, and the weights reach clients only after the change is in sync.
    if rng.chance(200) {
        dns_mode(&mut config, names);
        return config;
    }
    // One listener seed in five is one service on ECS's own blue/green (`traffic.engine =
    // "ecs"`, `crate::ecs_world`): ECS moves its own rules, bluegreen's hook gates it.
    if rng.chance(200) {
        ecs_engine(&mut config, names);
        return config;
    }
    // One listener seed in three moves production as a host rule on the shared listener,
    // beside another team's (see `neighbours`).
    if rng.chance(333)
        && let Traffic::Listener {
            production_rule_arn,
            ..
        } = &mut config.traffic
    {
        *production_rule_arn = Some(super::neighbours::production_rule(names));
    }
    // One listener seed in three has a second route of its own on the listener (an
    // `/admin/*` rule), moved with production (`traffic.routes = "auto"`).
    if rng.chance(333)
        && let Traffic::Listener { routes, .. } = &mut config.traffic
    {
        *routes = Routes::Word(RoutesWord::Auto);
    }
    // One seed in four reaches pre-prod through a test rule on the production listener: each
    // deployment's rule must be added before its checks and gone after its ending.
    if rng.chance(250)
        && let Traffic::Listener {
            test_listener_arn,
            test_rule,
            ..
        } = &mut config.traffic
    {
        *test_listener_arn = None;
        *test_rule = Some(TestRule::default());
    }
    config
}

/// `config` on ECS's engine: ECS's production rule, one service (`isolated` pre-prod in a
/// service of its own).
pub fn ecs_engine(config: &mut ServiceConfig, names: &Names) {
    crate::ecs_world::configure(config, names);
}

/// Whether `config` deploys with ECS's own blue/green.
pub fn on_ecs(config: &ServiceConfig) -> bool {
    config.traffic.engine() == bluegreen::config::Engine::Ecs
}

/// The name clients resolve in a DNS-mode world (the memory world's weighted records).
pub const DNS_RECORD: &str = "shop.example.com.";

/// `config` moving production with the world's weighted records, each slot checked through
/// its own test URL ([`slot_test_url`]). DNS mode has no maintenance page.
pub(super) fn dns_mode(config: &mut ServiceConfig, names: &Names) {
    config.traffic = Traffic::Dns {
        hosted_zone_id: names.zone_id.clone(),
        record_name: DNS_RECORD.into(),
        ttl_seconds: 300,
        switch_ttl_seconds: 30,
    };
    config.health.test_url = None;
    config.slots.blue.test_url = Some(slot_test_url(names, bluegreen::Slot::Blue));
    config.slots.green.test_url = Some(slot_test_url(names, bluegreen::Slot::Green));
    if let Some(migration) = &mut config.migration {
        migration.maintenance = false;
    }
}

/// Where a DNS-mode world's smoke checks reach `slot` directly.
pub fn slot_test_url(names: &Names, slot: bluegreen::Slot) -> String {
    format!("{}/{slot}", names.test_url)
}
