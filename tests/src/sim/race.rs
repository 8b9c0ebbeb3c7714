//! The interleaving campaign (issue 21): one deployment in a fixed world, and one person's
//! action (or the reconciler's sweep) run to its end while a step invocation is paused right
//! before one of its AWS calls that change something — for every such call of the deployment,
//! every action, every database world. The invariants are checked as in any run: after every
//! call that changed AWS, and at rest.
//!
//! A case is named `<world> <action> @<n>`: the action runs before the `n`-th changing call a
//! step invocation makes (counted over the whole deployment, from its intake to its end).

use bluegreen::config::{DbSource, DbStrategy, MigrationRun, ServiceConfig};

/// The database world a case deploys into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum World {
    /// Pre-prod and production on production's database; the migration before launch.
    Shared,
    /// The production migration after approval, behind the maintenance page.
    SharedAfterApproval,
    /// Pre-prod on its own clone; the production migration after approval.
    Isolated,
    /// One service on ECS's own blue/green (`traffic.engine = "ecs"`), shared, the production
    /// migration after approval while ECS holds its test gate.
    Ecs,
    /// One service on ECS's own blue/green, pre-prod on its clone in a service of its own,
    /// handed over after the approval and the production migration to ECS's deployment of the
    /// production revision.
    EcsIsolated,
}

impl World {
    /// Every world.
    pub const ALL: [World; 5] = [
        World::Shared,
        World::SharedAfterApproval,
        World::Isolated,
        World::Ecs,
        World::EcsIsolated,
    ];

    /// Its name in a case line.
    pub fn name(self) -> &'static str {
        match self {
            World::Shared => "shared",
            World::SharedAfterApproval => "shared-after-approval",
            World::Isolated => "isolated",
            World::Ecs => "ecs",
            World::EcsIsolated => "ecs-isolated",
        }
    }

    /// The world named `name`.
    pub fn named(name: &str) -> Option<World> {
        World::ALL.into_iter().find(|w| w.name() == name)
    }

    /// `config` set up for this world: a migration with a rollback command everywhere.
    pub fn configure(self, config: &mut ServiceConfig, names: &crate::Names) {
        let isolated = matches!(self, World::Isolated | World::EcsIsolated);
        config.database.strategy = match isolated {
            true => DbStrategy::Isolated,
            false => DbStrategy::Shared,
        };
        config.database.rehearsal = false;
        config.database.source = isolated.then(|| DbSource::RdsInstance {
            identifier: "shop-db".into(),
        });
        if let Some(migration) = config.migration.as_mut() {
            migration.run = match self {
                World::Shared => Some(MigrationRun::BeforeLaunch),
                World::SharedAfterApproval | World::Ecs => Some(MigrationRun::AfterApproval),
                World::Isolated | World::EcsIsolated => None,
            };
            migration.maintenance = matches!(self, World::SharedAfterApproval | World::Ecs);
            migration.rollback_command = Some(vec!["bin/migrate".into(), "down".into()]);
        }
        config.finish.keep_warm_seconds = 0;
        if matches!(self, World::Ecs | World::EcsIsolated) {
            super::scenario::ecs_engine(config, names);
        }
    }
}

/// What races the paused step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// An approver approves.
    Approve,
    /// An approver rejects.
    Reject,
    /// An operator aborts.
    Abort,
    /// An operator retries the ending.
    Retry,
    /// An operator unlocks the service.
    Unlock,
    /// An operator rolls the service back.
    Rollback,
    /// The reconciler's scheduled sweep.
    Sweep,
}

impl Action {
    /// Every action.
    pub const ALL: [Action; 7] = [
        Action::Approve,
        Action::Reject,
        Action::Abort,
        Action::Retry,
        Action::Unlock,
        Action::Rollback,
        Action::Sweep,
    ];

    /// Its name in a case line.
    pub fn name(self) -> &'static str {
        match self {
            Action::Approve => "approve",
            Action::Reject => "reject",
            Action::Abort => "abort",
            Action::Retry => "retry",
            Action::Unlock => "unlock",
            Action::Rollback => "rollback",
            Action::Sweep => "sweep",
        }
    }

    /// The action named `name`.
    pub fn named(name: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.name() == name)
    }
}

/// One case of the campaign.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Case {
    /// The database world.
    pub world: World,
    /// What races the step.
    pub action: Action,
    /// Before which changing call of a step invocation (1-based).
    pub at: u64,
}

impl std::fmt::Display for Case {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} @{}",
            self.world.name(),
            self.action.name(),
            self.at
        )
    }
}

/// The campaign's cases: every world, every action, before every changing call a step
/// invocation makes in the world's unraced run.
pub fn cases() -> Vec<Case> {
    let mut cases = Vec::new();
    for world in World::ALL {
        let unraced = Case {
            world,
            action: Action::Sweep,
            at: 0,
        };
        let calls = super::race_case(unraced, false).step_changes;
        for action in Action::ALL {
            cases.extend((1..=calls).map(|at| Case { world, action, at }));
        }
    }
    cases
}

/// Whether an AWS operation may change something (reads never do).
pub fn changes(operation: &str) -> bool {
    let verb = operation.rsplit(':').next().unwrap_or(operation);
    !["Describe", "List", "Get", "Query", "Scan"]
        .iter()
        .any(|read| verb.starts_with(read))
}

/// Runs `action` to its end on the service's newest deployment, as its Lambda (or the CLI)
/// would; answers what it said.
pub async fn act(ctx: bluegreen::Context, action: Action) -> String {
    use bluegreen::operator;
    use bluegreen::steps::approval::{self, Decision};
    use bluegreen::steps::reconcile::{self, Request};
    use std::time::Duration;

    let newest = bluegreen::record::Records::new(&ctx)
        .for_service("shop", 1)
        .await
        .ok()
        .and_then(|records| records.into_iter().next())
        .map(|d| d.deployment_id);
    let actor = format!("race-{}", action.name());
    let answer = super::executions::invocation(&ctx, actor, move |ctx| async move {
        let id = newest.unwrap_or_default();
        let decision = |approve: bool| Decision {
            approve,
            approver: crate::MOTO_CALLER.into(),
            reason: (!approve).then(|| "raced (simulated)".into()),
            channel: "cli".into(),
            link_nonce: None,
        };
        let operator_name = crate::MOTO_CALLER;
        match action {
            Action::Approve | Action::Reject => {
                approval::decide_and_send(&ctx, &id, &decision(action == Action::Approve))
                    .await
                    .map(|d| format!("{d:?}"))
            }
            Action::Abort => operator::abort(&ctx, &id, operator_name)
                .await
                .map(|a| format!("{:?}", a.status)),
            Action::Retry => operator::retry(&ctx, &id, operator_name, Duration::from_secs(600))
                .await
                .map(|r| format!("{:?}", r.status)),
            Action::Unlock => operator::unlock(&ctx, "shop", operator_name)
                .await
                .map(|_| "unlocked".to_owned()),
            Action::Rollback => operator::manual_rollback(&ctx, "shop", operator_name)
                .await
                .map(|_| "rolled back".to_owned()),
            Action::Sweep => reconcile::run(&ctx, &Request::Sweep)
                .await
                .map(|r| format!("{} answers", r.len())),
        }
    })
    .await;
    answer.unwrap_or_else(|e| e)
}
