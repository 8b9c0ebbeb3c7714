//! What a service's database strategy means for one deployment, decided in one place: which
//! clone sync DB makes, which migrations run before pre-prod launches, what happens after
//! approval, and what approvers are told. The migrate and promote steps, the console, the
//! notifications and the README's strategy table all follow this plan.
//!
//! | strategy | before launch | after approval, before the switch |
//! | --- | --- | --- |
//! | `none` / `shared`, `run = before_launch` | production migration (rehearsal clone first) | nothing |
//! | `none` / `shared`, `run = after_approval` | rehearsal on a clone, if configured | production migration, health re-check |
//! | `isolated` | migration on pre-prod's clone | re-point to production's database, production migration, roll out, health re-check |

use crate::config::{DbStrategy, MigrationRun, ServiceConfig};
use crate::record::{ClonePurpose, Deployment, TaskState};

/// A one-off migration task bluegreen runs, by what it runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MigrationTask {
    /// The migration against the deployment's clone (a rehearsal, or `isolated` pre-prod's).
    OnClone,
    /// The migration against production's database.
    Production,
    /// `rollback_command` against production's database.
    Rollback,
}

impl MigrationTask {
    /// The word in the task's `startedBy` value (kept stable: retries find tasks by it).
    pub fn kind(self) -> &'static str {
        match self {
            MigrationTask::OnClone => "rehearsal",
            MigrationTask::Production => "migrate",
            MigrationTask::Rollback => "rollback",
        }
    }

    /// How people read it.
    pub fn words(self) -> &'static str {
        match self {
            MigrationTask::OnClone => "migration on the clone",
            MigrationTask::Production => "production migration",
            MigrationTask::Rollback => "rollback migration",
        }
    }
}

/// What happens after approval, before any production traffic moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AfterApproval {
    /// The new slot gets the production revision and rolls out: on production's database
    /// (`isolated`) and without pre-prod's own variables (`preprod.environment`).
    pub repoint: bool,
    /// The production migration runs now.
    pub migrate: bool,
}

/// The database plan of a deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbPlan {
    /// The clone sync DB makes, if any.
    pub clone: Option<ClonePurpose>,
    /// Migrations the migrate step runs, in order, before pre-prod launches.
    pub before_launch: Vec<MigrationTask>,
    /// What the promote step does after approval; `None`: nothing.
    pub after_approval: Option<AfterApproval>,
}

/// Whether pre-prod's revision reads a clone (`isolated`): it must never be the revision
/// production runs — on ECS's engine it runs in a service of its own, and ECS deploys only
/// the production revision.
pub fn preprod_on_clone(config: &ServiceConfig) -> bool {
    config.database.strategy == DbStrategy::Isolated
}

/// The plan for `config`.
pub fn plan(config: &ServiceConfig) -> DbPlan {
    let db = &config.database;
    let clone = match db.strategy {
        DbStrategy::Isolated => Some(ClonePurpose::Preprod),
        DbStrategy::Shared if db.rehearsal => Some(ClonePurpose::Rehearsal),
        _ => None,
    };
    let run = config.migration.as_ref().map(|m| m.run_for(db.strategy));
    let mut before_launch = Vec::new();
    if run.is_some() && clone.is_some() {
        before_launch.push(MigrationTask::OnClone);
    }
    if run == Some(MigrationRun::BeforeLaunch) {
        before_launch.push(MigrationTask::Production);
    }
    // Pre-prod's revision is not production's when it has a clone or variables of its own:
    // production then gets its own revision, rolled out before any traffic moves.
    let repoint = db.strategy == DbStrategy::Isolated || !config.preprod.environment.is_empty();
    let migrate = run == Some(MigrationRun::AfterApproval);
    DbPlan {
        clone,
        before_launch,
        after_approval: (repoint || migrate).then_some(AfterApproval { repoint, migrate }),
    }
}

/// Whether the production revision differs from pre-prod's in its database setting.
fn db_is_repointed(config: &ServiceConfig) -> bool {
    config.database.strategy == DbStrategy::Isolated
}

/// What the approver is told about the database: where pre-prod ran, what already ran on
/// production, and what approving or rejecting will do. Read from the record (what happened),
/// not only from the plan (what should have).
pub fn approver_note(deployment: &Deployment) -> String {
    let config = &deployment.config;
    let plan = plan(config);
    let mut lines = Vec::new();
    if let Some(clone) = deployment.clone_for(ClonePurpose::Preprod) {
        lines.push(format!(
            "Pre-prod ran against {}, a clone of production's database{}.",
            clone.identifier,
            if config.migration.is_some() {
                ", and the migration ran on that clone"
            } else {
                ""
            }
        ));
    }
    lines.push(rejection_effect(deployment));
    if let Some(after) = plan.after_approval {
        let mut steps = Vec::new();
        if after.repoint && db_is_repointed(config) {
            steps.push(format!(
                "re-pointed to production's database ({} as the live slot has it)",
                config.database.setting()
            ));
        }
        if after.repoint && !config.preprod.environment.is_empty() {
            steps.push("given production's environment (without preprod.environment)".to_owned());
        }
        if after.migrate {
            steps.push(if maintenance(config) {
                "migrated on production behind a maintenance page".to_owned()
            } else {
                "migrated on production".to_owned()
            });
        }
        if after.repoint {
            steps.push("rolled out".to_owned());
        }
        steps.push("health-checked again".to_owned());
        lines.push(format!(
            "After approval and before any traffic moves, the new slot is {}.",
            steps.join(", ")
        ));
    }
    lines.join(" ")
}

/// What a rejection (or an abort now) leaves behind on production's database.
pub fn rejection_effect(deployment: &Deployment) -> String {
    let config = &deployment.config;
    let Some(migration) = &config.migration else {
        return "No migration is configured: production is untouched; rejecting aborts the \
                deployment."
            .to_owned();
    };
    match deployment.production_migration.as_ref().map(|m| m.state) {
        Some(TaskState::Succeeded) => match &migration.rollback_command {
            Some(command) => format!(
                "The production migration has already run on production's database; \
                 rejecting will not revert it by itself: bluegreen will run the rollback \
                 command `{}` and wait for it.",
                command.join(" ")
            ),
            None => "The production migration has already run on production's database; \
                     rejecting will not revert it (no rollback_command is configured: the \
                     schema stays as the migration left it)."
                .to_owned(),
        },
        Some(TaskState::NeverRan) => "The production migration never started (ECS could not \
                                      start its task): production's database is untouched; \
                                      rejecting aborts the deployment."
            .to_owned(),
        Some(_) => "The production migration was started on production's database and has not \
                    finished cleanly; it may have partly applied: bluegreen will not run a \
                    rollback command for it, and the deployment will need a person (the \
                    service stays locked until someone checks the schema and unlocks it)."
            .to_owned(),
        None => "The production database is untouched: the production migration runs only \
                 after approval; rejecting leaves it as it is."
            .to_owned(),
    }
}

fn maintenance(config: &ServiceConfig) -> bool {
    config.migration.as_ref().is_some_and(|m| m.maintenance)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Database, DbSource, Migration};

    fn config(strategy: DbStrategy, rehearsal: bool, run: Option<MigrationRun>) -> ServiceConfig {
        let mut config: ServiceConfig =
            toml::from_str(include_str!("../../../docs/example-service.toml")).unwrap();
        // The database plan alone: pre-prod variables add a production roll-out (tested
        // with them in tests/steps/revisions.rs).
        config.preprod.environment.clear();
        config.database = Database {
            strategy,
            rehearsal,
            source: Some(DbSource::RdsInstance {
                identifier: "shop-db".into(),
            }),
            ..Database::default()
        };
        config.migration = Some(Migration {
            command: vec!["migrate".into()],
            timeout_seconds: 600,
            rollback_command: None,
            run,
            maintenance: false,
            capacity: Default::default(),
        });
        config
    }

    #[test]
    fn isolated_migrates_its_clone_before_launch_and_production_after_approval() {
        let plan = plan(&config(DbStrategy::Isolated, false, None));
        assert_eq!(plan.clone, Some(ClonePurpose::Preprod));
        assert_eq!(plan.before_launch, vec![MigrationTask::OnClone]);
        assert_eq!(
            plan.after_approval,
            Some(AfterApproval {
                repoint: true,
                migrate: true
            })
        );
    }

    #[test]
    fn shared_runs_the_production_migration_when_configured() {
        let before = plan(&config(DbStrategy::Shared, true, None));
        assert_eq!(
            before.before_launch,
            vec![MigrationTask::OnClone, MigrationTask::Production]
        );
        assert_eq!(before.after_approval, None);
        let after = plan(&config(
            DbStrategy::Shared,
            false,
            Some(MigrationRun::AfterApproval),
        ));
        assert!(after.before_launch.is_empty());
        assert_eq!(
            after.after_approval,
            Some(AfterApproval {
                repoint: false,
                migrate: true
            })
        );
    }
}
