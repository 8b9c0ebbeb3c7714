//! Whole deployments of one service on ECS's own blue/green (`traffic.engine = "ecs"`) through
//! the committed definitions, on the simulator's world (`bluegreen_tests::sim`): ECS's stages
//! played, bluegreen's hook answering, every invariant checked after every call and every move
//! ECS makes. Each test asserts from AWS at the end: the records' statuses, ECS's service
//! deployments, where the production rule forwards and which image runs there, the targets in
//! each group, the migration tasks and the database they ran against, the lock.

use bluegreen::config::{ApprovalPolicy, DbStrategy, MigrationRun, ServiceConfig};
use bluegreen::record::{Deployment, Status, StepOutcome};
use bluegreen_tests::memory::{MemoryAws, world as memory_world};
use bluegreen_tests::sim::{self, Knobs};

/// Seeds whose world is one service on ECS's own blue/green (one listener seed in five): with
/// no trouble — one push, an approver who approves — every one deploys through the committed
/// definition, ECS moving production between the hook's gates, and ends `succeeded` with
/// every invariant kept (production on a group with the new revision's tasks registered, the
/// old group emptied by ECS, no lock left).
#[test]
fn quiet_seeds_on_ecs_own_blue_green_deploy_through_its_gates() {
    let mut on_ecs = 0;
    for seed in 0..60 {
        let report = sim::run(seed, Knobs::QUIET);
        let hooks: Vec<&String> = report
            .trace
            .iter()
            .filter(|l| l.contains("ECS hook at"))
            .collect();
        if hooks.is_empty() {
            continue;
        }
        on_ecs += 1;
        let trace = report.trace.join("\n");
        assert!(
            report.safe(),
            "seed {seed}: {:?}\n{trace}",
            report.violations
        );
        let ended: Vec<&str> = report.deployments.iter().map(|(_, s)| s.as_str()).collect();
        assert_eq!(ended, ["succeeded"], "seed {seed}:\n{trace}");
        for gate in [
            "POST_TEST_TRAFFIC_SHIFT: SUCCEEDED",
            "POST_PRODUCTION_TRAFFIC_SHIFT: SUCCEEDED",
        ] {
            assert!(
                hooks.iter().any(|l| l.contains(gate)),
                "seed {seed}: no {gate} in\n{trace}"
            );
        }
    }
    assert!(on_ecs >= 5, "only {on_ecs} of 60 seeds were ECS worlds");
}

/// A service without a database bluegreen knows of (no migration).
fn no_database(config: &mut ServiceConfig) {
    config.database.strategy = DbStrategy::None;
    config.migration = None;
}

/// A push: its tag, the character its digest repeats, seconds after the start.
type Push = (&'static str, char, u64);

/// Runs `pushes` (delivered on time, once) on one service on ECS's own blue/green, its config
/// the standard one changed by `configure`, approvals required and decided by `decisions` in
/// order, the images of `broken` digests never passing their health checks. Every invariant
/// must hold; the trace, and AWS at the end.
fn run_on_ecs(
    pushes: &[Push],
    decisions: &[bool],
    broken: &[char],
    configure: &dyn Fn(&mut ServiceConfig),
) -> (String, End) {
    run_on_ecs_failing(pushes, decisions, broken, &[], configure)
}

/// [`run_on_ecs`], the images of `failing` digests answering their smoke checks with 500.
fn run_on_ecs_failing(
    pushes: &[Push],
    decisions: &[bool],
    broken: &[char],
    failing: &[char],
    configure: &dyn Fn(&mut ServiceConfig),
) -> (String, End) {
    let knobs = Knobs {
        pushes: pushes.len(),
        ..Knobs::QUIET
    };
    let (report, aws) = sim::run_scripted(7, knobs, &|scenario, names| {
        let mut config = bluegreen_tests::service_config(names);
        config.health.test_url = Some(names.test_url.clone());
        config.approval.policy = ApprovalPolicy::Required;
        configure(&mut config);
        sim::scenario::ecs_engine(&mut config, names);
        scenario.config = config;
        scenario.default_is_neighbours = true;
        scenario.autoscaled = false;
        scenario.pushes = pushes
            .iter()
            .enumerate()
            .map(|(i, (tag, digest, at))| sim::scenario::PushPlan {
                tag: (*tag).into(),
                digest: *digest,
                event_id: format!("event-{}", i + 1),
                pushed_after: *at,
                delivered_after: *at,
                duplicated: false,
            })
            .collect();
        scenario.decisions = decisions.to_vec();
        scenario.rollout_fails = broken.iter().copied().collect();
        scenario.smoke_fails = failing.iter().copied().collect();
    });
    let trace = report.trace.join("\n");
    assert!(report.safe(), "{:?}\n{trace}", report.violations);
    (trace, End::read(&aws))
}

/// AWS at the end of a run.
struct End {
    records: Vec<Deployment>,
    /// ECS's service deployments' statuses, oldest first.
    ecs: Vec<String>,
    /// The groups the production rule forwards to (weight above 0).
    production: Vec<String>,
    /// Targets registered in each of the service's two groups.
    targets: Vec<(String, usize)>,
    /// The image the service's task definition runs.
    image: String,
    /// Held locks.
    locks: usize,
    /// bluegreen's one-off tasks: `(startedBy, DATABASE_HOST it ran with, exit code)`.
    tasks: Vec<(String, String, Option<i32>)>,
    /// The production database's host, as the service's first revision names it.
    production_database: String,
    /// The database host the service's task definition names now.
    service_database: String,
    /// The task definitions ECS's service deployments rolled out, oldest first.
    ecs_revisions: Vec<String>,
    /// Every ECS service left, by name.
    services: Vec<String>,
    /// Database instances left (not being deleted).
    clones: Vec<String>,
}

impl End {
    fn read(aws: &MemoryAws) -> End {
        let settings = bluegreen_tests::standard_settings();
        let names = memory_world::made_up_names();
        aws.with(|s| {
            let records = s
                .tables
                .items(&settings.deployments_table)
                .into_iter()
                .filter_map(|item| serde_dynamo::from_item(item).ok())
                .collect();
            let rule = bluegreen_tests::ecs_world::production_rule(&names);
            let production = s.elb.rules[&rule]
                .forward
                .clone()
                .unwrap_or_default()
                .into_iter()
                .filter(|g| g.weight.unwrap_or(1) > 0)
                .map(|g| g.target_group_arn)
                .collect();
            let targets = [&names.tg_blue, &names.tg_green]
                .into_iter()
                .map(|g| (g.clone(), s.elb.targets.get(g).map_or(0, Vec::len)))
                .collect();
            let service = &s.ecs.services[&format!("{}/shop-blue", bluegreen_tests::CLUSTER)];
            let container = |td: &str| {
                s.ecs
                    .definition(td)
                    .and_then(|d| d.containers.first().cloned())
            };
            let td = service.state.task_definition.clone().unwrap_or_default();
            let image = container(&td).map(|c| c.image).unwrap_or_default();
            let env = |td: &str, name: &str| {
                s.ecs
                    .definition(td)
                    .and_then(|d| d.env_value("web", name))
                    .unwrap_or_default()
            };
            let tasks = s
                .ecs
                .tasks
                .values()
                .map(|t| {
                    let host = t
                        .env
                        .iter()
                        .find(|(k, _)| k == "DATABASE_HOST")
                        .map(|(_, v)| v.clone())
                        .unwrap_or_else(|| env(&t.state.task_definition, "DATABASE_HOST"));
                    let exit = t.state.containers.first().and_then(|c| c.exit_code);
                    (t.state.started_by.clone(), host, exit)
                })
                .collect();
            // Held locks: items naming a holder (the table keeps each service's fence counter).
            let locks = s
                .tables
                .items(&settings.locks_table)
                .iter()
                .filter(|item| item.contains_key("deployment_id"))
                .count();
            End {
                records,
                ecs: s.ecs.blue_green.iter().map(|d| d.status.clone()).collect(),
                production,
                targets,
                image,
                locks,
                tasks,
                production_database: env("shop:1", "DATABASE_HOST"),
                service_database: env(&td, "DATABASE_HOST"),
                ecs_revisions: s
                    .ecs
                    .blue_green
                    .iter()
                    .map(|d| d.target.1.clone())
                    .collect(),
                services: s
                    .ecs
                    .services
                    .values()
                    .map(|m| m.state.name.clone())
                    .collect(),
                clones: s
                    .rds
                    .instances
                    .iter()
                    .filter(|(_, i)| i.status != "deleting")
                    .map(|(id, _)| id.clone())
                    .collect(),
            }
        })
    }

    /// The status of `tag`'s deployment and whether it moved production.
    fn status(&self, tag: &str, trace: &str) -> (Status, bool) {
        self.records
            .iter()
            .find(|d| d.image.tag == tag)
            .map(|d| (d.status, d.switched_at.is_some()))
            .unwrap_or_else(|| panic!("no record of {tag}:\n{trace}"))
    }

    /// Production on one group, which has the service's tasks, and the other group empty;
    /// the service running `digest`'s image; no lock held.
    fn production_runs(&self, digest: char) {
        assert_eq!(self.production.len(), 1, "{:?}", self.production);
        for (group, count) in &self.targets {
            let expected = if *group == self.production[0] { 2 } else { 0 };
            assert_eq!(*count, expected, "{group}: {:?}", self.targets);
        }
        let pinned = format!("sha256:{}", digest.to_string().repeat(64));
        assert!(self.image.contains(&pinned), "{}", self.image);
        assert_eq!(self.locks, 0, "a lock is left");
    }
}

/// `v2` is rejected at ECS's test gate while `v3` and `v4` are pushed behind it: the abort
/// stops ECS there (its rollback answers the hook's call), production never moved, the lock
/// goes to the newest push (`v3` superseded by `v4`), and `v4` is deployed through ECS.
#[test]
fn on_ecs_a_rejection_hands_the_lock_to_the_newest_queued_push_which_ecs_deploys() {
    let pushes = [("v2", 'a', 60), ("v3", 'b', 200), ("v4", 'c', 260)];
    let (trace, end) = run_on_ecs(&pushes, &[false, true], &[], &no_database);
    assert_eq!(
        end.status("v2", &trace),
        (Status::Aborted, false),
        "{trace}"
    );
    assert_eq!(
        end.status("v3", &trace),
        (Status::Superseded, false),
        "{trace}"
    );
    assert_eq!(
        end.status("v4", &trace),
        (Status::Succeeded, true),
        "{trace}"
    );
    // v2's ECS deployment rolled back at the gate; v3's never started; v4's completed.
    assert_eq!(end.ecs, ["ROLLBACK_SUCCESSFUL", "SUCCESSFUL"], "{trace}");
    // ECS never reached the production gate before the rejection.
    let rejected = trace.find("reject ").expect("the rejection");
    assert!(
        !trace[..rejected].contains("POST_PRODUCTION_TRAFFIC_SHIFT"),
        "{trace}"
    );
    end.production_runs('c');
}

/// A `shared` deployment whose migration runs after the approval: approved at ECS's test gate,
/// migrated against production's database while ECS waits there, then moved and baked to
/// success.
#[test]
fn on_ecs_a_shared_deployment_approved_at_the_test_gate_is_migrated_then_baked_to_success() {
    let (trace, end) = run_on_ecs(&[("v2", 'a', 60)], &[true], &[], &|config| {
        config.database.strategy = DbStrategy::Shared;
        let migration = config.migration.as_mut().expect("the standard migration");
        migration.run = Some(MigrationRun::AfterApproval);
    });
    assert_eq!(
        end.status("v2", &trace),
        (Status::Succeeded, true),
        "{trace}"
    );
    assert_eq!(end.ecs, ["SUCCESSFUL"], "{trace}");
    end.production_runs('a');
    // One production migration, exit 0, against production's database (not a clone).
    let migrations: Vec<_> = end
        .tasks
        .iter()
        .filter(|t| t.0.ends_with("-migrate"))
        .collect();
    assert_eq!(migrations.len(), 1, "{:?}", end.tasks);
    assert_eq!(migrations[0].2, Some(0), "{:?}", end.tasks);
    assert!(!end.production_database.is_empty());
    assert_eq!(migrations[0].1, end.production_database, "{:?}", end.tasks);
    // In order: approved, migrated (promote runs the migration after approval and checks
    // pre-prod's health again), then production moved.
    let record = &end.records[0];
    let at = |step: &str, outcome: StepOutcome| first_at(record, step, outcome);
    let approved = at("approval", StepOutcome::Approved);
    let migrated = at("promote", StepOutcome::Succeeded);
    let moving = at("switch", StepOutcome::TrafficMoving);
    assert!(
        approved < migrated && migrated < moving,
        "{:?}",
        record.timeline
    );
    // And ECS was let on only after the migration: the hook's first SUCCEEDED at the test
    // gate (a trace stamp, `+h:mm:ss.mmm` since the run's epoch) comes after it.
    let let_on = trace
        .lines()
        .find(|l| l.contains("ECS hook at POST_TEST_TRAFFIC_SHIFT: SUCCEEDED"))
        .and_then(|l| l.split_whitespace().next())
        .map(seconds_of_stamp)
        .expect("the hook let ECS on");
    let epoch: chrono::DateTime<chrono::Utc> = sim::clock::EPOCH.parse().unwrap();
    let migrated = (migrated - epoch).num_milliseconds() as f64 / 1000.0;
    assert!(
        let_on > migrated,
        "ECS let on at {let_on} s, migrated at {migrated} s"
    );
}

/// `isolated` on one service: the standard config with pre-prod on a clone of `shop-db` (the
/// standard migration: on the clone before the launch, on production after the approval).
fn isolated(config: &mut ServiceConfig) {
    config.database.strategy = DbStrategy::Isolated;
    config.database.source = Some(bluegreen::config::DbSource::RdsInstance {
        identifier: "shop-db".into(),
    });
    config.database.endpoint_env = "DATABASE_HOST".into();
}

/// When `record`'s timeline first has `step` with `outcome` (a test failure when never).
fn first_at(
    record: &Deployment,
    step: &str,
    outcome: StepOutcome,
) -> chrono::DateTime<chrono::Utc> {
    record
        .timeline
        .iter()
        .find(|e| e.step == step && e.outcome == outcome)
        .map(|e| e.at)
        .unwrap_or_else(|| panic!("no {step} {outcome:?}: {:?}", record.timeline))
}

/// What `record`'s timeline says at `step`, every entry joined.
fn said(record: &Deployment, step: &str) -> String {
    record
        .timeline
        .iter()
        .filter(|e| e.step == step)
        .map(|e| e.detail.as_str())
        .collect::<Vec<_>>()
        .join("; ")
}

impl End {
    /// Only the world's own services (no pre-prod service) and no clone left.
    fn nothing_of_pre_prod_left(&self) {
        let mut services = self.services.clone();
        services.sort();
        assert_eq!(services, ["shop-blue", "shop-green"], "services left");
        assert_eq!(self.clones, ["shop-db"], "databases left");
    }
}

/// `isolated` on ECS's engine: pre-prod runs on the clone in a service of its own (ECS's
/// deployment of the one service cannot run the clone's revision), checked through bluegreen's
/// header rule; after the approval production is migrated, pre-prod's service deleted and
/// drained, and only then ECS deploys the production revision — on production's database —
/// which bluegreen's hook holds at the test gate until the switch, then bakes to success.
#[test]
fn on_ecs_isolated_pre_prod_runs_on_the_clone_in_its_own_service_then_ecs_deploys_production_s_revision()
 {
    let (trace, end) = run_on_ecs(&[("v2", 'a', 60)], &[true], &[], &isolated);
    assert_eq!(
        end.status("v2", &trace),
        (Status::Succeeded, true),
        "{trace}"
    );
    end.production_runs('a');
    let record = &end.records[0];
    let revisions = &record.task_definitions;
    let (preprod, production) = (
        revisions.preprod.clone().expect("pre-prod's revision"),
        revisions
            .production
            .clone()
            .expect("the production revision"),
    );
    // ECS deployed once, the production revision, never pre-prod's; the service runs it, on
    // production's database.
    assert_eq!(end.ecs, ["SUCCESSFUL"], "{trace}");
    assert_eq!(
        end.ecs_revisions,
        std::slice::from_ref(&production),
        "{trace}"
    );
    assert!(!end.production_database.is_empty());
    assert_eq!(end.service_database, end.production_database);
    // Pre-prod ran in its own service, created at the launch and deleted by promote.
    let own = record
        .preprod
        .as_ref()
        .map(|p| p.service.clone())
        .expect("pre-prod");
    assert_eq!(own, "shop-blue", "the record hands over to the one service");
    assert!(
        said(record, bluegreen::engine::ecs_preprod::REMOVED).contains("bg-shop-blue-preprod-"),
        "{:?}",
        record.timeline
    );
    // The migrations: on the clone before the launch, on production after the approval.
    let ran = |kind: &str| -> Vec<(String, Option<i32>)> {
        end.tasks
            .iter()
            .filter(|t| t.0.ends_with(kind))
            .map(|t| (t.1.clone(), t.2))
            .collect()
    };
    let on_clone = ran("-rehearsal");
    assert_eq!(on_clone.len(), 1, "{:?}", end.tasks);
    assert!(on_clone[0].0.starts_with("bg-shop"), "{on_clone:?}");
    assert_eq!(
        ran("-migrate"),
        [(end.production_database.clone(), Some(0))]
    );
    // In order: pre-prod healthy, approved, migrated and handed over, production moved.
    let at = |step: &str, outcome: StepOutcome| first_at(record, step, outcome);
    let handed_over = at(
        bluegreen::engine::ecs_preprod::REMOVED,
        StepOutcome::Succeeded,
    );
    assert!(at("approval", StepOutcome::Approved) < handed_over);
    assert!(handed_over < at("switch", StepOutcome::TrafficMoving));
    assert_ne!(preprod, production);
    end.nothing_of_pre_prod_left();
}

/// `isolated` on ECS's engine, rejected: the abort deletes pre-prod's own service (its tasks
/// leave the alternate group) and the clone; ECS never deployed anything; production stayed on
/// its group with its tasks; the lock is released.
#[test]
fn on_ecs_a_rejected_isolated_deployment_leaves_no_pre_prod_service_and_ecs_never_deployed() {
    let (trace, end) = run_on_ecs(&[("v2", 'a', 60)], &[false], &[], &isolated);
    assert_eq!(
        end.status("v2", &trace),
        (Status::Aborted, false),
        "{trace}"
    );
    assert!(end.ecs.is_empty(), "{:?}\n{trace}", end.ecs);
    // Pre-prod ran (its health checked through bluegreen's rule), then the abort deleted it.
    let record = &end.records[0];
    assert!(
        !said(record, "health_check").is_empty(),
        "{:?}",
        record.timeline
    );
    assert!(
        said(record, "abort").contains("pre-prod's service bg-shop-blue-preprod-"),
        "{:?}",
        record.timeline
    );
    assert_eq!(end.production.len(), 1);
    for (group, count) in &end.targets {
        let expected = if *group == end.production[0] { 2 } else { 0 };
        assert_eq!(*count, expected, "{group}: {:?}", end.targets);
    }
    assert_eq!(end.service_database, end.production_database);
    assert!(
        end.tasks.iter().all(|t| !t.0.ends_with("-migrate")),
        "{:?}",
        end.tasks
    );
    assert_eq!(end.locks, 0);
    end.nothing_of_pre_prod_left();
}

/// `isolated` on ECS's engine, `v2` answering its smoke checks with 500: the health check
/// reaches pre-prod's own service through bluegreen's rule (production, which answers "ok",
/// would pass them) and fails; the abort deletes the service, ECS never deploys, and `v3`
/// pushed behind it goes through to production on production's database.
#[test]
fn on_ecs_an_isolated_pre_prod_failing_its_smoke_checks_is_aborted_and_the_next_push_deploys() {
    let pushes = [("v2", 'a', 60), ("v3", 'b', 90)];
    let (trace, end) = run_on_ecs_failing(&pushes, &[true], &[], &['a'], &isolated);
    assert_eq!(
        end.status("v2", &trace),
        (Status::Aborted, false),
        "{trace}"
    );
    let v2 = end.records.iter().find(|d| d.image.tag == "v2").unwrap();
    assert_eq!(
        v2.failure.as_deref().map(|f| f.contains("500")),
        Some(true),
        "{:?}",
        v2.failure
    );
    assert_eq!(
        end.status("v3", &trace),
        (Status::Succeeded, true),
        "{trace}"
    );
    // ECS deployed once: v3's production revision, never v2's.
    let v3 = end.records.iter().find(|d| d.image.tag == "v3").unwrap();
    assert_eq!(end.ecs, ["SUCCESSFUL"], "{trace}");
    assert_eq!(
        end.ecs_revisions,
        v3.task_definitions
            .production
            .iter()
            .cloned()
            .collect::<Vec<_>>()
    );
    end.production_runs('b');
    assert_eq!(end.service_database, end.production_database);
    end.nothing_of_pre_prod_left();
}

/// A trace stamp's seconds: `+1:02:03.500` is 3723.5.
fn seconds_of_stamp(stamp: &str) -> f64 {
    stamp
        .trim_start_matches('+')
        .split(':')
        .map(|part| part.parse::<f64>().expect("a stamp"))
        .fold(0.0, |total, part| total * 60.0 + part)
}

/// `v2`'s tasks never pass their health checks: ECS's circuit breaker rolls its deployment
/// back at `SCALE_UP`, the launch fails with ECS's reason, production never moved; `v3`,
/// pushed behind it, is deployed.
#[test]
fn on_ecs_a_revision_ecs_rolls_back_fails_the_launch_and_the_next_push_deploys() {
    let pushes = [("v2", 'a', 60), ("v3", 'b', 90)];
    let (trace, end) = run_on_ecs(&pushes, &[true], &['a'], &no_database);
    assert_eq!(
        end.status("v2", &trace),
        (Status::Aborted, false),
        "{trace}"
    );
    let v2 = end.records.iter().find(|d| d.image.tag == "v2").unwrap();
    let failure = v2.failure.clone().unwrap_or_default();
    assert!(failure.contains("circuit breaker"), "{failure}");
    assert_eq!(
        end.status("v3", &trace),
        (Status::Succeeded, true),
        "{trace}"
    );
    assert_eq!(end.ecs, ["ROLLBACK_SUCCESSFUL", "SUCCESSFUL"], "{trace}");
    end.production_runs('b');
}
