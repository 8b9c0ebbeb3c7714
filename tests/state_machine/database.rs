//! Every database strategy through every outcome, on the committed definition with the real
//! steps: what production sees at the end, read from AWS — which slot serves, which database
//! endpoint each slot's task definition carries, which migrations ran against which database
//! (task definition plus overrides), that no clone, no clone secret and no maintenance rule is
//! left, and that the lock is free. The strategies that run on a clone (isolated, a rehearsal)
//! also run with each form of database setting: a bare host, a URL, a Secrets Manager secret.

use bluegreen::Slot;
use bluegreen::config::{DbSource, DbStrategy, MigrationRun, ServiceConfig};
use bluegreen::record::{Deployment, Records, Status, TaskState};
use bluegreen::secret_reference::{
    CLONE_SECRET_PREFIX, SecretReference, clone_secret_name, is_clone_secret,
};
use bluegreen_statemachine::Outcome;

use super::{Local, Person};

/// Production's database, as the live slot's task definition has it in the test world.
const PRODUCTION_DB: &str = "shop-db.prod.internal";
/// `url_env`: production's URL (the password must never reach a record or a message).
const PRODUCTION_URL: &str = "postgres://shop:s3cret@shop-db.prod.internal:5432/shop";
/// `secret`: production's secret, as RDS writes it.
const PRODUCTION_SECRET: &str =
    r#"{"username":"shop","password":"s3cret","host":"shop-db.prod.internal","port":5432}"#;

/// How the app reads its database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Form {
    /// `DATABASE_HOST`, a bare host (`database.endpoint_env`).
    Host,
    /// `DATABASE_URL`, a URL (`database.url_env`).
    Url,
    /// `DB_SECRET` from a Secrets Manager secret (`database.secret`).
    Secret,
}

impl Form {
    /// The setting's name in the task definition.
    fn setting(self) -> &'static str {
        match self {
            Form::Host => "DATABASE_HOST",
            Form::Url => "DATABASE_URL",
            Form::Secret => "DB_SECRET",
        }
    }

    /// Gives the live slot a revision that reads the database this way, and the config the
    /// matching setting.
    async fn apply(self, local: &Local, config: &mut ServiceConfig) {
        let world = &local.world;
        match self {
            Form::Host => {}
            Form::Url => {
                let td = world
                    .live_revision_with(&[("DATABASE_URL", PRODUCTION_URL)], &[])
                    .await;
                // Both slots ran the app's definition before bluegreen: an abort puts
                // pre-prod's slot back on it.
                world.set_task_definition(Slot::Green, &td).await;
                config.database.url_env = Some("DATABASE_URL".into());
            }
            Form::Secret => {
                let arn = world
                    .ctx
                    .ports
                    .secrets
                    .create_secret(
                        "shop/db",
                        PRODUCTION_SECRET,
                        None,
                        &[("bluegreen:database-source".into(), "true".into())],
                    )
                    .await
                    .expect("production's secret");
                let td = world.live_revision_with(&[], &[("DB_SECRET", &arn)]).await;
                world.set_task_definition(Slot::Green, &td).await;
                config.database.secret = Some("DB_SECRET".into());
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Strategy {
    None,
    SharedBeforeLaunch,
    SharedAfterApproval,
    SharedWithRehearsal,
    IsolatedRds,
    IsolatedAurora,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Case {
    Success,
    MigrationFails,
    HealthFails,
    Rejected,
    BakeAlarm,
}

impl Strategy {
    fn has_migration(self) -> bool {
        self != Strategy::None
    }

    /// The migration also runs on a clone before launch.
    fn migrates_a_clone(self) -> bool {
        matches!(
            self,
            Strategy::SharedWithRehearsal | Strategy::IsolatedRds | Strategy::IsolatedAurora
        )
    }

    fn migrates_production_before_approval(self) -> bool {
        matches!(
            self,
            Strategy::SharedBeforeLaunch | Strategy::SharedWithRehearsal
        )
    }

    async fn configure(self, local: &Local) -> ServiceConfig {
        self.configure_with(local, Form::Host).await
    }

    async fn configure_with(self, local: &Local, form: Form) -> ServiceConfig {
        let world = &local.world;
        let mut config = world.config();
        form.apply(local, &mut config).await;
        if let Some(migration) = config.migration.as_mut() {
            migration.rollback_command = Some(vec!["bin/migrate".into(), "down".into()]);
        }
        let rds = Some(DbSource::RdsInstance {
            identifier: "shop-db".into(),
        });
        match self {
            Strategy::None => {
                config.database.strategy = DbStrategy::None;
                config.migration = None;
            }
            Strategy::SharedBeforeLaunch => {}
            Strategy::SharedAfterApproval => {
                config.migration.as_mut().unwrap().run = Some(MigrationRun::AfterApproval);
            }
            Strategy::SharedWithRehearsal => {
                config.database.rehearsal = true;
                config.database.source = rds;
            }
            Strategy::IsolatedRds => {
                config.database.strategy = DbStrategy::Isolated;
                config.database.source = rds;
            }
            Strategy::IsolatedAurora => {
                world.create_aurora_cluster().await;
                config.database.strategy = DbStrategy::Isolated;
                config.database.source = Some(DbSource::AuroraCluster {
                    identifier: "shop-aurora".into(),
                });
            }
        }
        world.put_config(&config).await;
        config
    }
}

/// What must be true at the end of a case.
#[derive(Debug)]
struct Expected {
    error: Option<&'static str>,
    status: Status,
    live: Slot,
    clone_migrated: bool,
    production_migrated: bool,
    production_migration_succeeded: bool,
    rolled_back_schema: bool,
}

fn expected(strategy: Strategy, case: Case) -> Expected {
    let (error, status, live) = match case {
        Case::Success => (None, Status::Succeeded, Slot::Green),
        Case::MigrationFails => (Some("MigrationFailed"), Status::Aborted, Slot::Blue),
        Case::HealthFails => (Some("HealthCheckFailed"), Status::Aborted, Slot::Blue),
        Case::Rejected => (Some("ApprovalRejected"), Status::Aborted, Slot::Blue),
        Case::BakeAlarm => (Some("BakeFailed"), Status::RolledBack, Slot::Blue),
    };
    // A strategy whose only pre-approval migration is production's fails there; one that
    // migrates a clone first fails on the clone (and production is never migrated).
    let reaches_after_approval = matches!(case, Case::Success | Case::BakeAlarm)
        || (case == Case::MigrationFails && strategy == Strategy::SharedAfterApproval);
    let production_migrated = strategy.has_migration()
        && if strategy.migrates_production_before_approval() {
            !(case == Case::MigrationFails && strategy.migrates_a_clone())
        } else {
            reaches_after_approval
        };
    let production_migration_succeeded = production_migrated && case != Case::MigrationFails;
    // A production migration that failed may have partly applied: a person must look, and the
    // service stays locked (a failure on a clone leaves production untouched: aborted).
    let (error, status) = if production_migrated && case == Case::MigrationFails {
        (Some("NeedsAttention"), Status::NeedsAttention)
    } else {
        (error, status)
    };
    Expected {
        error,
        status,
        live,
        clone_migrated: strategy.migrates_a_clone(),
        production_migrated,
        production_migration_succeeded,
        rolled_back_schema: production_migration_succeeded && case != Case::Success,
    }
}

/// Reads which database a task definition or a task uses, for one form of setting.
struct Databases<'a> {
    local: &'a Local,
    form: Form,
    /// The deployment's clones: `(identifier, endpoint)`.
    clones: Vec<(String, String)>,
}

impl<'a> Databases<'a> {
    fn new(local: &'a Local, form: Form, deployment: &Deployment) -> Self {
        Databases {
            local,
            form,
            clones: deployment
                .clones
                .iter()
                .filter_map(|c| Some((c.identifier.clone(), c.endpoint.clone()?)))
                .collect(),
        }
    }

    /// The host a value of the setting names (`scheme://user:password@host:port/db`).
    fn host_in(&self, value: &str) -> String {
        match self.form {
            Form::Url => {
                let after = value.split_once('@').expect("a URL with a user").1;
                after.split([':', '/']).next().unwrap().to_owned()
            }
            Form::Host | Form::Secret => value.to_owned(),
        }
    }

    /// The database a one-off task ran against: its override, else its task definition's.
    async fn of_task(&self, task_arn: &str) -> String {
        let task = self.local.world.task(task_arn).await;
        let overridden = task
            .overrides
            .and_then(|o| o.container_overrides)
            .unwrap_or_default()
            .into_iter()
            .flat_map(|c| c.environment.unwrap_or_default())
            .find(|kv| kv.name.as_deref() == Some(self.form.setting()))
            .and_then(|kv| kv.value);
        match overridden {
            Some(value) => self.host_in(&value),
            None => self.of(task.task_definition_arn.as_deref().unwrap()).await,
        }
    }

    /// The database `task_definition`'s `web` container reads. A clone's secret is deleted
    /// with its clone, so a reference to one names that clone's endpoint (what the secret
    /// held is asserted while it exists, in tests/steps/database_secrets.rs).
    async fn of(&self, task_definition: &str) -> String {
        let world = &self.local.world;
        let td = bluegreen::ecs::describe_task_definition(&world.ctx, task_definition)
            .await
            .expect("task definition");
        if self.form != Form::Secret {
            let value = td
                .env_value("web", self.form.setting())
                .unwrap_or_else(|| panic!("{task_definition} sets {}", self.form.setting()));
            return self.host_in(&value);
        }
        let from = td.secret_from("web", "DB_SECRET").expect("DB_SECRET");
        if is_clone_secret(&from) {
            return self
                .clones
                .iter()
                .find(|(id, _)| from.contains(&clone_secret_name("shop", id)))
                .map(|(_, endpoint)| endpoint.clone())
                .unwrap_or_else(|| panic!("{from} names none of {:?}", self.clones));
        }
        let text = world
            .ctx
            .ports
            .secrets
            .secret_string(&SecretReference::parse(&from).unwrap().secret_id)
            .await
            .unwrap()
            .unwrap();
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        json["host"].as_str().unwrap().to_owned()
    }

    /// The databases the deployment's migration tasks of `kind` ran against.
    async fn migrations(&self, deployment: &Deployment, kind: &str) -> Vec<String> {
        let started_by = bluegreen::naming::started_by(&deployment.deployment_id, kind);
        let mut databases = Vec::new();
        for arn in self.local.world.tasks_started_by(&started_by).await {
            databases.push(self.of_task(&arn).await);
        }
        databases
    }
}

async fn database_of(local: &Local, task_definition: &str) -> String {
    let databases = Databases {
        local,
        form: Form::Host,
        clones: Vec::new(),
    };
    databases.of(task_definition).await
}

/// The databases the deployment's migration tasks of `kind` ran against (a bare host).
async fn migrations_of(local: &Local, deployment: &Deployment, kind: &str) -> Vec<String> {
    Databases::new(local, Form::Host, deployment)
        .migrations(deployment, kind)
        .await
}

async fn run_case_with(strategy: Strategy, case: Case, form: Form) {
    let local = Local::new().await;
    strategy.configure_with(&local, form).await;
    // Where the live slot reads its database secret from before the deployment.
    let live = local.world.service(Slot::Blue).await.0;
    let production_secret = bluegreen::ecs::describe_task_definition(&local.world.ctx, &live)
        .await
        .unwrap()
        .secret_from("web", "DB_SECRET");
    assert_eq!(production_secret.is_some(), form == Form::Secret);
    let person = match case {
        Case::Rejected => Person::Rejects,
        _ => Person::Approves,
    };
    match case {
        Case::MigrationFails => {
            let kind = if strategy.migrates_a_clone() {
                "rehearsal"
            } else {
                "migrate"
            };
            local.simulator.set_exit_for(kind, 3);
        }
        Case::HealthFails => local.world.smoke.answer("health", 503, "down"),
        _ => {}
    }
    let results = if case == Case::BakeAlarm {
        local.deploy_with_alarm_at_bake(person).await
    } else {
        local.deploy(person).await
    };
    let finished = &super::only(&results);
    let want = expected(strategy, case);
    let label = format!("{strategy:?} / {case:?} / {form:?}");
    match (want.error, &finished.outcome) {
        (None, Outcome::Succeeded(_)) => {}
        (Some(error), Outcome::Failed(f)) => assert_eq!(f.error, error, "{label}: {f:?}"),
        (_, outcome) => panic!("{label}: expected {:?}, got {outcome:?}", want.error),
    }
    let world = &local.world;
    let deployment = Records::new(&world.ctx)
        .get(&results[0].0)
        .await
        .expect("record");
    assert_eq!(deployment.status, want.status, "{label}: record status");
    let databases = Databases::new(&local, form, &deployment);

    // Production: the expected slot serves, runs tasks, and every slot is on production's DB.
    assert_eq!(
        world.production().await.live().unwrap(),
        want.live,
        "{label}: which slot serves production"
    );
    assert!(
        world.service(want.live).await.1 > 0,
        "{label}: the serving slot runs tasks"
    );
    for slot in Slot::ALL {
        let (td, _, _) = world.service(slot).await;
        assert_eq!(
            databases.of(&td).await,
            PRODUCTION_DB,
            "{label}: {slot}'s task definition must carry production's database"
        );
        let definition = bluegreen::ecs::describe_task_definition(&world.ctx, &td)
            .await
            .unwrap();
        match form {
            Form::Url => assert_eq!(
                definition.env_value("web", "DATABASE_URL").as_deref(),
                Some(PRODUCTION_URL),
                "{label}: {slot} keeps production's whole URL"
            ),
            Form::Secret => assert_eq!(
                definition.secret_from("web", "DB_SECRET"),
                production_secret,
                "{label}: {slot} references production's secret, and only it"
            ),
            Form::Host => {}
        }
    }

    // Which migrations ran, against which database.
    let clone_endpoints: Vec<String> = deployment
        .clones
        .iter()
        .filter_map(|c| c.endpoint.clone())
        .collect();
    let on_clone = databases.migrations(&deployment, "rehearsal").await;
    if want.clone_migrated {
        assert_eq!(on_clone.len(), 1, "{label}: one migration on the clone");
        assert!(
            clone_endpoints.contains(&on_clone[0]) && on_clone[0] != PRODUCTION_DB,
            "{label}: the clone migration ran against {} (clones: {clone_endpoints:?})",
            on_clone[0]
        );
    } else {
        assert!(on_clone.is_empty(), "{label}: no clone migration");
    }
    let on_production = databases.migrations(&deployment, "migrate").await;
    if want.production_migrated {
        assert_eq!(
            on_production,
            vec![PRODUCTION_DB.to_owned()],
            "{label}: the production migration ran once, on production"
        );
    } else {
        assert!(
            on_production.is_empty(),
            "{label}: production's schema untouched"
        );
    }
    assert_eq!(
        deployment.production_migrated(),
        want.production_migration_succeeded,
        "{label}: recorded production migration {:?}",
        deployment.production_migration
    );
    let rollbacks = databases.migrations(&deployment, "rollback").await;
    if want.rolled_back_schema {
        assert_eq!(
            rollbacks,
            vec![PRODUCTION_DB.to_owned()],
            "{label}: the rollback migration ran on production"
        );
        assert_eq!(
            deployment.rollback_migration.as_ref().map(|t| t.state),
            Some(TaskState::Succeeded),
            "{label}: the rollback migration was waited for"
        );
    } else {
        assert!(rollbacks.is_empty(), "{label}: no rollback migration");
    }

    // Isolated: pre-prod ran on its clone; after approval the slot was re-pointed.
    if matches!(strategy, Strategy::IsolatedRds | Strategy::IsolatedAurora) {
        let preprod = deployment.task_definitions.preprod.as_deref().unwrap();
        let preprod_db = databases.of(preprod).await;
        assert!(
            clone_endpoints.contains(&preprod_db),
            "{label}: pre-prod ran on {preprod_db}, not its clone"
        );
        if let Some(production) = deployment.task_definitions.production.as_deref() {
            assert_eq!(databases.of(production).await, PRODUCTION_DB);
        }
    }

    // Nothing left behind.
    let clones: Vec<String> = world
        .db_instances()
        .await
        .into_iter()
        .filter(|id| id.starts_with("bg-"))
        .collect();
    assert!(clones.is_empty(), "{label}: clones left: {clones:?}");
    let clusters: Vec<String> = world
        .db_clusters()
        .await
        .into_iter()
        .filter(|id| id.starts_with("bg-"))
        .collect();
    assert!(
        clusters.is_empty(),
        "{label}: clone clusters left: {clusters:?}"
    );
    let secrets = world
        .ctx
        .ports
        .secrets
        .secrets_named(CLONE_SECRET_PREFIX)
        .await
        .unwrap();
    assert!(
        secrets.is_empty(),
        "{label}: clone secrets left: {secrets:?}"
    );
    assert!(
        world.listener_rules().await.is_empty(),
        "{label}: a rule (maintenance page) was left on the production listener"
    );
    let holder = world.lock_holder().await;
    if want.status == Status::NeedsAttention {
        assert_eq!(
            holder,
            Some(deployment.deployment_id.clone()),
            "{label}: lock kept"
        );
    } else {
        assert_eq!(holder, None, "{label}: lock released");
    }
}

macro_rules! matrix {
    ($($name:ident: $strategy:ident, $case:ident $(, $form:ident)?;)*) => {
        $(
            #[tokio::test]
            async fn $name() {
                run_case_with(Strategy::$strategy, Case::$case, form!($($form)?)).await;
            }
        )*
    };
}

macro_rules! form {
    () => {
        Form::Host
    };
    ($form:ident) => {
        Form::$form
    };
}

matrix! {
    no_database_succeeds: None, Success;
    no_database_health_failure_aborts: None, HealthFails;
    no_database_rejection_aborts: None, Rejected;
    no_database_bake_alarm_rolls_back: None, BakeAlarm;
    shared_before_launch_succeeds: SharedBeforeLaunch, Success;
    shared_before_launch_migration_failure_needs_attention: SharedBeforeLaunch, MigrationFails;
    shared_before_launch_health_failure_rolls_the_schema_back: SharedBeforeLaunch, HealthFails;
    shared_before_launch_rejection_rolls_the_schema_back: SharedBeforeLaunch, Rejected;
    shared_before_launch_bake_alarm_rolls_back_traffic_and_schema: SharedBeforeLaunch, BakeAlarm;
    shared_after_approval_succeeds: SharedAfterApproval, Success;
    shared_after_approval_migration_failure_needs_attention_before_traffic_moves: SharedAfterApproval, MigrationFails;
    shared_after_approval_health_failure_leaves_production_unmigrated: SharedAfterApproval, HealthFails;
    shared_after_approval_rejection_leaves_production_unmigrated: SharedAfterApproval, Rejected;
    shared_after_approval_bake_alarm_rolls_back_traffic_and_schema: SharedAfterApproval, BakeAlarm;
    shared_with_rehearsal_succeeds: SharedWithRehearsal, Success;
    shared_with_rehearsal_failed_rehearsal_never_touches_production: SharedWithRehearsal, MigrationFails;
    shared_with_rehearsal_health_failure_rolls_the_schema_back: SharedWithRehearsal, HealthFails;
    shared_with_rehearsal_rejection_rolls_the_schema_back: SharedWithRehearsal, Rejected;
    shared_with_rehearsal_bake_alarm_rolls_back: SharedWithRehearsal, BakeAlarm;
    isolated_rds_succeeds_on_production_database: IsolatedRds, Success;
    isolated_rds_clone_migration_failure_aborts: IsolatedRds, MigrationFails;
    isolated_rds_health_failure_aborts: IsolatedRds, HealthFails;
    isolated_rds_rejection_aborts: IsolatedRds, Rejected;
    isolated_rds_bake_alarm_rolls_back: IsolatedRds, BakeAlarm;
    isolated_aurora_succeeds_on_production_database: IsolatedAurora, Success;
    isolated_aurora_clone_migration_failure_aborts: IsolatedAurora, MigrationFails;
    isolated_aurora_health_failure_aborts: IsolatedAurora, HealthFails;
    isolated_aurora_rejection_aborts: IsolatedAurora, Rejected;
    isolated_aurora_bake_alarm_rolls_back: IsolatedAurora, BakeAlarm;
    // The app reads a URL (`database.url_env`) or a secret (`database.secret`).
    isolated_url_succeeds_on_production_database: IsolatedRds, Success, Url;
    isolated_url_clone_migration_failure_aborts: IsolatedRds, MigrationFails, Url;
    isolated_url_health_failure_aborts: IsolatedRds, HealthFails, Url;
    isolated_url_rejection_aborts: IsolatedRds, Rejected, Url;
    isolated_url_bake_alarm_rolls_back: IsolatedRds, BakeAlarm, Url;
    isolated_secret_succeeds_on_production_database: IsolatedRds, Success, Secret;
    isolated_secret_clone_migration_failure_aborts: IsolatedRds, MigrationFails, Secret;
    isolated_secret_health_failure_aborts: IsolatedRds, HealthFails, Secret;
    isolated_secret_rejection_aborts: IsolatedRds, Rejected, Secret;
    isolated_secret_bake_alarm_rolls_back: IsolatedRds, BakeAlarm, Secret;
    rehearsal_url_succeeds: SharedWithRehearsal, Success, Url;
    rehearsal_url_failed_rehearsal_never_touches_production: SharedWithRehearsal, MigrationFails, Url;
    rehearsal_url_health_failure_rolls_the_schema_back: SharedWithRehearsal, HealthFails, Url;
    rehearsal_url_rejection_rolls_the_schema_back: SharedWithRehearsal, Rejected, Url;
    rehearsal_url_bake_alarm_rolls_back: SharedWithRehearsal, BakeAlarm, Url;
    rehearsal_secret_succeeds: SharedWithRehearsal, Success, Secret;
    rehearsal_secret_failed_rehearsal_never_touches_production: SharedWithRehearsal, MigrationFails, Secret;
    rehearsal_secret_health_failure_rolls_the_schema_back: SharedWithRehearsal, HealthFails, Secret;
    rehearsal_secret_rejection_rolls_the_schema_back: SharedWithRehearsal, Rejected, Secret;
    rehearsal_secret_bake_alarm_rolls_back: SharedWithRehearsal, BakeAlarm, Secret;
}

/// After approval, the isolated production migration fails: traffic never moved, no rollback
/// command runs for it, and the deployment needs a person with the lock kept (production's
/// schema may be half-migrated: the next push must not migrate it blindly).
#[tokio::test]
async fn isolated_production_migration_failure_after_approval_needs_attention_and_says_so() {
    let local = Local::new().await;
    Strategy::IsolatedRds.configure(&local).await;
    local.simulator.set_exit_for("migrate", 3);
    let results = local.deploy(Person::Approves).await;
    assert_eq!(super::error_of(super::only(&results)), "NeedsAttention");
    let deployment = Records::new(&local.world.ctx)
        .get(&results[0].0)
        .await
        .unwrap();
    assert_eq!(deployment.status, Status::NeedsAttention);
    assert_eq!(
        deployment.production_migration.as_ref().map(|m| m.state),
        Some(TaskState::Failed)
    );
    assert_eq!(
        migrations_of(&local, &deployment, "migrate").await,
        vec![PRODUCTION_DB.to_owned()]
    );
    assert!(
        migrations_of(&local, &deployment, "rollback")
            .await
            .is_empty()
    );
    let ending = &deployment.timeline.last().unwrap().detail;
    assert!(
        ending.contains("may have partly applied") && ending.contains("no rollback command"),
        "{ending}"
    );
    assert_eq!(local.world.production().await.live().unwrap(), Slot::Blue);
    assert_eq!(
        database_of(&local, &local.world.service(Slot::Blue).await.0).await,
        PRODUCTION_DB
    );
    assert!(
        !local
            .world
            .db_instances()
            .await
            .iter()
            .any(|i| i.starts_with("bg-"))
    );
    assert_eq!(
        local.world.lock_holder().await.as_deref(),
        Some(deployment.deployment_id.as_str()),
        "the service stays locked"
    );
}

/// Maintenance mode through a whole deployment: the page is removed at the end (the page
/// while the migration runs is shown by the promote step's own test).
#[tokio::test]
async fn shared_after_approval_with_maintenance_succeeds_and_removes_the_page() {
    let local = Local::new().await;
    let mut config = Strategy::SharedAfterApproval.configure(&local).await;
    config.migration.as_mut().unwrap().maintenance = true;
    local.world.put_config(&config).await;
    let results = local.deploy(Person::Approves).await;
    assert!(
        matches!(super::only(&results).outcome, Outcome::Succeeded(_)),
        "{:?}",
        super::only(&results).outcome
    );
    assert!(local.world.listener_rules().await.is_empty());
    assert_eq!(local.world.production().await.live().unwrap(), Slot::Green);
}
