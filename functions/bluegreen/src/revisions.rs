//! The task definition revisions a deployment registers, both derived from the live slot's
//! current revision with the container image pinned to the pushed digest:
//!
//! - **pre-prod**: in `isolated` mode with the database setting (`database.endpoint_env`)
//!   replaced by pre-prod's clone; otherwise production's settings unchanged;
//! - **production** (`isolated` only, after approval): every setting as the live slot has it,
//!   so the database is production's — copied from AWS, never typed into config;
//! - **rehearsal** (`shared` + `rehearsal` with `database.secret` only): pre-prod's revision
//!   reading the rehearsal clone's secret, which a task override cannot change.
//!
//! Both are made from one base revision, chosen once and recorded (`task_definitions.base`):
//! the live slot's current one, or with `task_definition.source = "family"` the newest
//! revision of the family bluegreen did not register (IaC owns the task definition; bluegreen
//! overlays only the image digest and, isolated, the clone).
//!
//! Each is registered once: the record keeps its ARN, and a retry whose earlier response was
//! lost finds it as the family's latest revision by its tags.

use crate::app_containers::{self, Named};
use crate::clone_secret;
use crate::config::{DbSettingForm, DbStrategy, RevisionSource, ServiceConfig};
use crate::context::Context;
use crate::ecs;
pub use crate::endpoint::carries_a_database_host;
use crate::error::{StepError, StepResult};
use crate::naming::{TAG_BASE, TAG_DEPLOYMENT, TAG_MANAGED, TAG_PURPOSE};
use crate::ports::compute::{RevisionOverlay, TaskDefinitionState};
use crate::record::{Change, ClonePurpose, DbClone, Deployment, Records};
use crate::secret_reference::SecretReference;

/// Which revision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// What pre-prod runs before approval (and the migrations before launch).
    Preprod,
    /// `isolated`: what the new slot runs after approval, on production's database.
    Production,
    /// `shared` + `rehearsal` with `database.secret`: what the rehearsal runs, on its clone.
    Rehearsal,
}

impl Purpose {
    fn as_str(self) -> &'static str {
        match self {
            Purpose::Preprod => "preprod",
            Purpose::Production => "production",
            Purpose::Rehearsal => "rehearsal",
        }
    }

    /// Whether this revision's database setting must point at a clone.
    fn runs_on_a_clone(self, deployment: &Deployment) -> bool {
        match self {
            Purpose::Preprod => deployment.config.database.strategy == DbStrategy::Isolated,
            Purpose::Rehearsal => true,
            Purpose::Production => false,
        }
    }

    /// The clone this revision's database setting points at, once sync DB recorded it.
    fn clone(self, deployment: &Deployment) -> Option<&DbClone> {
        match self {
            Purpose::Preprod => deployment.clone_for(ClonePurpose::Preprod),
            Purpose::Rehearsal => deployment.clone_for(ClonePurpose::Rehearsal),
            Purpose::Production => None,
        }
    }
}

/// The containers of `base` that get the pushed image (see [`app_containers`]); a config that
/// names none safely is `ConfigInvalid`.
pub fn app_containers_of(
    config: &ServiceConfig,
    base: &TaskDefinitionState,
) -> StepResult<Vec<String>> {
    let named: Vec<Named<'_>> = base
        .containers
        .iter()
        .map(|c| Named {
            name: &c.name,
            image: &c.image,
        })
        .collect();
    app_containers::app_containers(config, &named, &base.arn)
        .map_err(|problem| StepError::ConfigInvalid(vec![problem]))
}

/// What the revision for `purpose` changes in the live slot's `base`, in every container that
/// runs the app: the pushed image and `image_env`, pre-prod's own variables, and in `isolated`
/// mode pre-prod's clone as the database setting.
fn overlay(
    deployment: &Deployment,
    base: &TaskDefinitionState,
    purpose: Purpose,
) -> StepResult<RevisionOverlay> {
    let config = &deployment.config;
    let apps = app_containers_of(config, base)?;
    let version = app_containers::version_label(&deployment.image.tag, &deployment.image.digest);
    let mut overlay = RevisionOverlay {
        images: apps
            .iter()
            .map(|c| (c.clone(), deployment.image.pinned_uri()))
            .collect(),
        environment: Vec::new(),
        secrets: Vec::new(),
    };
    for container in &apps {
        overlay.environment.extend(
            config
                .image_env
                .iter()
                .map(|name| (container.clone(), name.clone(), version.clone())),
        );
    }
    ensure_repointable(config, base, &apps)?;
    if purpose != Purpose::Production {
        // Pre-prod only: kept out of production's side effects (queues, crons, telemetry).
        for container in &apps {
            overlay.environment.extend(
                config
                    .preprod
                    .environment
                    .iter()
                    .map(|(name, value)| (container.clone(), name.clone(), value.clone())),
            );
        }
    }
    // A secret is re-pointed by `ensure`, which writes the clone's own secret first.
    if config.database.strategy == DbStrategy::Isolated
        && purpose == Purpose::Preprod
        && config.database.form() != DbSettingForm::Secret
    {
        let endpoint = deployment
            .clone_for(ClonePurpose::Preprod)
            .and_then(|c| c.endpoint.clone())
            .ok_or_else(|| {
                StepError::SyncFailed("isolated mode: no clone endpoint; run sync DB first".into())
            })?;
        overlay
            .environment
            .extend(on_the_clone(config, base, &endpoint)?);
    }
    Ok(overlay)
}

/// `isolated` or a rehearsal: every container that reads a database reads it from the one
/// setting bluegreen re-points (see [`database_problem`]); `ConfigInvalid` naming what the
/// task definition uses otherwise.
fn ensure_repointable(
    config: &ServiceConfig,
    base: &TaskDefinitionState,
    apps: &[String],
) -> StepResult<()> {
    let rehearsal = config.database.strategy == DbStrategy::Shared && config.database.rehearsal;
    if config.database.strategy == DbStrategy::Isolated || rehearsal {
        // Without it, pre-prod (isolated) or the rehearsal would not use its clone — it would
        // run on production's database — and bluegreen could not tell which one production
        // uses. Every app container counts: a worker beside the web container that kept
        // production's address would write to production from pre-prod.
        let setting = config.database.setting();
        let form = config.database.form();
        // Every container, not only the app's: a worker `containers` leaves out that reads
        // production's address would run on production from pre-prod.
        if let Some(problem) = base.containers.iter().find_map(|c| {
            let app = apps.contains(&c.name);
            database_problem(base, &c.name, &config.container, setting, form, app)
        }) {
            return Err(StepError::ConfigInvalid(vec![format!(
                "{}: {problem}; the {} would run on production's database \
                 (bluegreen re-points only the one setting the app reads its database host \
                 or URL from: a plain variable, or a Secrets Manager secret with \
                 database.secret)",
                form.field(),
                if rehearsal {
                    "rehearsal"
                } else {
                    "isolated pre-prod"
                },
            )]));
        }
    }
    Ok(())
}

/// `(container, setting, value)` for every container of `base` that sets the database
/// setting — the app's and any other — its value pointed at the clone `host` (a URL keeps all
/// but its host).
pub fn on_the_clone(
    config: &ServiceConfig,
    base: &TaskDefinitionState,
    host: &str,
) -> StepResult<Vec<(String, String, String)>> {
    let setting = config.database.setting();
    let all: Vec<String> = base.containers.iter().map(|c| c.name.clone()).collect();
    containers_setting(base, &all, setting)
        .into_iter()
        .map(|container| {
            let current = base.env_value(&container, setting);
            let value = config
                .database
                .repointed(current.as_deref(), host)
                .map_err(|why| {
                    StepError::ConfigInvalid(vec![format!("container {container}: {why}")])
                })?;
            Ok((container, setting.to_owned(), value))
        })
        .collect()
}

/// The containers among `names` that set `env` as a plain variable: those whose database
/// setting is re-pointed (`container` always is: [`database_problem`] refuses it otherwise).
pub fn containers_setting(base: &TaskDefinitionState, names: &[String], env: &str) -> Vec<String> {
    names
        .iter()
        .filter(|c| base.env_value(c, env).is_some())
        .cloned()
        .collect()
}

/// Why container `name` would not follow a re-pointed database: `container` (`main`) must be
/// re-pointable; any other container must be too unless it shows no database setting at all —
/// an app container by its variables, secrets and environment files, any other container (a
/// sidecar, or a worker `containers` leaves out) by its variables and secrets (an agent's
/// environment file is no reason to refuse; a database setting in one is not seen).
fn database_problem(
    base: &TaskDefinitionState,
    name: &str,
    main: &str,
    env: &str,
    form: DbSettingForm,
    app: bool,
) -> Option<String> {
    let production_secret = (form == DbSettingForm::Secret)
        .then(|| base.secret_from(main, env))
        .flatten()
        .and_then(|from| SecretReference::parse(&from).ok())
        .map(|r| r.secret_id);
    let c = base.container(name)?;
    let uses_a_database = name == main
        || (app && !c.environment_files.is_empty())
        || c.environment
            .iter()
            .chain(c.secrets.iter())
            .any(|(n, _)| n == env || carries_a_database_host(n));
    if uses_a_database {
        not_repointable(base, name, env, form, production_secret.as_deref())
    } else {
        None
    }
}

/// Why the database setting `env` of `container` in `base` is not the one the app's database
/// comes from, as far as the task definition shows: absent in the form `form` says (a plain
/// variable, or a `secrets` entry), set the other way, or beside another setting that carries
/// a database host (a `DATABASE_URL`-like variable or secret, which apps usually prefer).
/// With `database.secret`, `production_secret` is the secret the setting reads (its ARN): any
/// entry reading it counts as the setting. `None` when `env` is re-pointable.
pub fn not_repointable(
    base: &TaskDefinitionState,
    container: &str,
    env: &str,
    form: DbSettingForm,
    production_secret: Option<&str>,
) -> Option<String> {
    let c = base.container(container)?;
    let at = format!("container {container:?} of {}", base.arn);
    let from_secret = c.secrets.iter().any(|(name, _)| name == env);
    let plain = c.environment.iter().any(|(name, _)| name == env);
    match form {
        DbSettingForm::Secret if plain => {
            return Some(format!(
                "{at} sets {env} as a plain variable, not from a secret"
            ));
        }
        DbSettingForm::Host | DbSettingForm::Url if from_secret => {
            return Some(format!(
                "{at} reads {env} from a secret, not a plain variable (set database.secret = \
                 {env:?} to re-point a Secrets Manager secret)"
            ));
        }
        _ => {}
    }
    if let Some(file) = c.environment_files.first() {
        // What an environment file sets is not visible here; it may name the database.
        return Some(format!(
            "{at} reads variables from environment file {file}, which may set the database"
        ));
    }
    // With `database.secret`, every entry reading the production secret the setting names —
    // under any name or JSON key, in any container — reads the clone's copy (see
    // `clone_secret`): it is the setting, not another address.
    let production = production_secret.and_then(|id| SecretReference::parse(id).ok());
    let same_secret = |from: &str| {
        production
            .as_ref()
            .is_some_and(|p| SecretReference::parse(from).is_ok_and(|r| r.same_secret(p)))
    };
    let others: Vec<String> = c
        .environment
        .iter()
        .map(|(name, _)| (name, "variable"))
        .chain(
            c.secrets
                .iter()
                .filter(|(_, from)| !same_secret(from))
                .map(|(name, _)| (name, "secret")),
        )
        .filter(|(name, _)| *name != env && carries_a_database_host(name))
        .map(|(name, kind)| format!("{kind} {name}"))
        .collect();
    let set = plain || from_secret || c.secrets.iter().any(|(_, from)| same_secret(from));
    match (set, others.is_empty()) {
        (true, true) => None,
        (true, false) => Some(format!(
            "{at} sets {env}, but also {}, which the app may read its database from instead",
            others.join(", ")
        )),
        (false, true) => Some(format!("{at} sets no {env}")),
        (false, false) => Some(format!("{at} sets no {env}; it has {}", others.join(", "))),
    }
}

/// How far back [`choose_base`] looks past bluegreen's own revisions of a family.
const MAX_REVISIONS_BACK: u32 = 100;

/// The revision a deployment starts from (`task_definition.source`): the live slot's current
/// one, or the newest revision of the family that bluegreen did not register (no
/// `bluegreen:purpose` tag) — its own pre-prod and production revisions share the family.
async fn choose_base(ctx: &Context, deployment: &Deployment) -> StepResult<TaskDefinitionState> {
    let config = &deployment.config;
    let live_service = &config.slots.get(deployment.old_slot()?).service;
    let live_td = ecs::live_task_definition(ctx, &config.cluster, live_service).await?;
    if config.task_definition.source == RevisionSource::Live {
        return ecs::describe_task_definition(ctx, &live_td).await;
    }
    let family = match &config.task_definition.family {
        Some(family) => family.clone(),
        None => ecs::describe_task_definition(ctx, &live_td).await?.family,
    };
    let mut candidate = ecs::describe_task_definition(ctx, &family).await?;
    let mut revision = revision_of(&candidate.arn).unwrap_or(0);
    for _ in 0..MAX_REVISIONS_BACK {
        let tag = |key: &str| {
            candidate
                .tags
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.clone())
        };
        // bluegreen's own revisions: tagged with their purpose, or (older versions) only with
        // the deployment that registered them. `bluegreen:managed` alone says nothing: IaC's
        // default tags may carry it.
        if tag(TAG_PURPOSE).is_none() && tag(TAG_DEPLOYMENT).is_none() {
            return Ok(candidate);
        }
        // The newest of bluegreen's revisions names the base its deployment chose — the
        // family's newest of IaC's then; anything IaC registered later is above it.
        if let Some(base) = tag(TAG_BASE) {
            return ecs::describe_task_definition(ctx, &base).await;
        }
        candidate = loop {
            revision = revision.checked_sub(1).filter(|r| *r > 0).ok_or_else(|| {
                StepError::ResourceNotFound {
                    kind: "task definition revision not registered by bluegreen",
                    id: family.clone(),
                }
            })?;
            // A deleted revision leaves a gap in the numbers: look further down.
            match ecs::describe_task_definition(ctx, &format!("{family}:{revision}")).await {
                Err(StepError::ResourceNotFound { .. }) => continue,
                found => break found?,
            }
        };
    }
    Err(StepError::ResourceNotFound {
        kind: "task definition revision not registered by bluegreen (looked 100 back)",
        id: family,
    })
}

/// `(container, name, value)` settings of a revision.
type Settings = Vec<(String, String, String)>;

/// `isolated` mode, a given base (`rollback --to`): production's database setting as the live
/// slot has it now — the earlier deployment's may name a database a failover has replaced —
/// as plain variables and as `secrets` entries.
async fn production_database_now(
    ctx: &Context,
    deployment: &Deployment,
    base: &TaskDefinitionState,
) -> StepResult<(Settings, Settings)> {
    let config = &deployment.config;
    if config.database.strategy != DbStrategy::Isolated {
        return Ok(Default::default());
    }
    let live_service = &config.slots.get(deployment.old_slot()?).service;
    let live_td = ecs::live_task_definition(ctx, &config.cluster, live_service).await?;
    let env = config.database.setting();
    let secret = config.database.form() == DbSettingForm::Secret;
    let live = ecs::describe_task_definition(ctx, &live_td).await?;
    let value_of = |container: &str| {
        if secret {
            live.secret_from(container, env)
        } else {
            live.env_value(container, env)
        }
    };
    let value = value_of(&config.container).ok_or_else(|| {
        StepError::ConfigInvalid(vec![format!(
            "database: the live slot's task definition {live_td} sets no {env}"
        )])
    })?;
    // Every container of the given base that sets it gets production's value now: the live
    // definition's for that container, else the live main container's — never the old
    // revision's (a failover may have replaced that database).
    let setting: Settings = base
        .containers
        .iter()
        .filter(|c| {
            if secret {
                base.secret_from(&c.name, env).is_some()
            } else {
                base.env_value(&c.name, env).is_some()
            }
        })
        .map(|c| {
            let value = value_of(&c.name).unwrap_or_else(|| value.clone());
            (c.name.clone(), env.to_owned(), value)
        })
        .collect();
    Ok(if secret {
        (Vec::new(), setting)
    } else {
        (setting, Vec::new())
    })
}

/// The revision number of `…:task-definition/<family>:<revision>`.
fn revision_of(arn: &str) -> Option<u32> {
    arn.rsplit_once(':')?.1.parse().ok()
}

/// The revision for `purpose`, registered if it does not exist yet.
pub async fn ensure(
    ctx: &Context,
    deployment: &Deployment,
    purpose: Purpose,
) -> StepResult<String> {
    let recorded = match purpose {
        Purpose::Preprod => &deployment.task_definitions.preprod,
        Purpose::Production => &deployment.task_definitions.production,
        Purpose::Rehearsal => &deployment.task_definitions.rehearsal,
    };
    if let Some(arn) = recorded {
        return Ok(arn.clone());
    }
    let from_family = deployment.config.task_definition.source == RevisionSource::Family;
    let pinned = deployment.task_definitions.pinned_base;
    let base = match &deployment.task_definitions.base {
        // From the family (or a given base), both revisions share the base chosen first.
        // From the live slot, the production revision reads it again after approval:
        // production's settings as they are then (a failover may have moved its database).
        Some(arn) if from_family || pinned || purpose != Purpose::Production => {
            ecs::describe_task_definition(ctx, arn).await?
        }
        _ => choose_base(ctx, deployment).await?,
    };
    let mut tags = vec![
        ecs::tag(TAG_MANAGED, "true"),
        ecs::tag(TAG_DEPLOYMENT, &deployment.deployment_id),
        ecs::tag(TAG_PURPOSE, purpose.as_str()),
    ];
    // A given base is not the family's newest: naming it would send the next deployment's
    // family walk back to it.
    if !pinned {
        tags.push(ecs::tag(TAG_BASE, &base.arn));
    }
    let arn = match ecs::latest_revision_tagged(ctx, &base.family, &tags).await? {
        Some(arn) => arn,
        None => {
            // Boxed: it holds the clone secret's calls; kept off the calling step's stack.
            let overlay = Box::pin(full_overlay(ctx, deployment, &base, purpose)).await?;
            ctx.ports
                .compute
                .register_revision(&base.arn, &overlay, &tags)
                .await?
        }
    };
    record_registered(ctx, deployment, purpose, &base.arn, &arn).await?;
    Ok(arn)
}

/// Everything the revision for `purpose` changes in `base`: [`overlay`], production's
/// database now for a given base, and — with `database.secret` — the clone's secret (written
/// here, before the revision that reads it exists: a task never starts on a reference to a
/// secret that is not there yet).
async fn full_overlay(
    ctx: &Context,
    deployment: &Deployment,
    base: &TaskDefinitionState,
    purpose: Purpose,
) -> StepResult<RevisionOverlay> {
    let mut overlay = overlay(deployment, base, purpose)?;
    if deployment.task_definitions.pinned_base && purpose == Purpose::Production {
        let (environment, secrets) = production_database_now(ctx, deployment, base).await?;
        overlay.environment.extend(environment);
        overlay.secrets.extend(secrets);
    }
    if deployment.config.database.form() == DbSettingForm::Secret
        && purpose.runs_on_a_clone(deployment)
    {
        // Never a revision that should read a clone left reading production's secret.
        let clone = purpose.clone(deployment).ok_or_else(|| {
            StepError::SyncFailed(format!(
                "no clone recorded for the {} revision; run sync DB first",
                purpose.as_str()
            ))
        })?;
        overlay
            .secrets
            .extend(clone_secret::ensure(ctx, deployment, base, clone).await?);
    }
    Ok(overlay)
}

/// Records `arn` as the revision for `purpose` (and `base` as the base, once). From the
/// record as it is now, not the step's copy: a revision registered since it was read (the
/// same invocation's rehearsal revision, say) must not be written back out of it.
async fn record_registered(
    ctx: &Context,
    deployment: &Deployment,
    purpose: Purpose,
    base: &str,
    arn: &str,
) -> StepResult<()> {
    let records = Records::new(ctx);
    let mut registered = records
        .get(&deployment.deployment_id)
        .await?
        .task_definitions;
    registered.base.get_or_insert_with(|| base.to_owned());
    let slot = match purpose {
        Purpose::Preprod => &mut registered.preprod,
        Purpose::Production => &mut registered.production,
        Purpose::Rehearsal => &mut registered.rehearsal,
    };
    *slot = Some(arn.to_owned());
    records
        .update(
            &deployment.deployment_id,
            Change::new().task_definitions(&registered),
        )
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::compute::ContainerState;

    fn web(environment: &[(&str, &str)], secrets: &[(&str, &str)]) -> TaskDefinitionState {
        let pairs = |list: &[(&str, &str)]| {
            list.iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect()
        };
        TaskDefinitionState {
            arn: "arn:aws:ecs:us-east-1:1:task-definition/shop:3".into(),
            family: "shop".into(),
            containers: vec![ContainerState {
                name: "web".into(),
                image: "shop:v1".into(),
                environment: pairs(environment),
                secrets: pairs(secrets),
                environment_files: Vec::new(),
                log: None,
            }],
            tags: Default::default(),
        }
    }

    #[test]
    fn only_a_plain_host_variable_that_is_the_only_database_address_is_repointable() {
        let host = ("DATABASE_HOST", "db.prod");
        for (td, repointable) in [
            (web(&[host], &[]), true),
            (web(&[host], &[("DB_PASSWORD", "arn:s")]), true),
            (web(&[host, ("REDIS_URL", "redis://r")], &[]), true),
            (web(&[host, ("FEEDBACK_URL", "https://f")], &[]), true),
            (web(&[], &[]), false),
            (web(&[], &[("DATABASE_HOST", "arn:s")]), false),
            (web(&[host], &[("DATABASE_URL", "arn:s")]), false),
            (
                web(&[host, ("JDBC_CONNECTION_STRING", "jdbc:…")], &[]),
                false,
            ),
            (web(&[host], &[("PG_DSN", "arn:p")]), false),
            (
                web(&[host, ("SPRING_DATASOURCE_URL", "jdbc:…")], &[]),
                false,
            ),
            (web(&[host, ("PGHOST", "db")], &[]), false),
            (web(&[host, ("DB_HOST", "db")], &[]), false),
            (
                web(&[host], &[("ConnectionStrings__Default", "arn:c")]),
                false,
            ),
            (web(&[host, ("REDIS_HOST", "r")], &[]), true),
        ] {
            assert_eq!(
                not_repointable(&td, "web", "DATABASE_HOST", DbSettingForm::Host, None).is_none(),
                repointable,
                "{:?}",
                td.containers[0]
            );
        }
    }
}
