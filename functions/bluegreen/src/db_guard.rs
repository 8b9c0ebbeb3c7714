//! The guard that keeps production off database clones, independent of the flow that should
//! already have made sure of it: before traffic moves to a slot and before the bake ends, no
//! container of that slot's task definitions may carry a clone's identifier or address — the
//! clones recorded on the deployment and every `bg-…` instance or cluster in the account — in
//! a plain value, a secret reference or an environment file's name, nor reference a secret
//! bluegreen wrote for a clone (`bluegreen/clone/…`, whatever its clone's state). What a
//! production secret or an environment file *holds* is not read. And cleanup never deletes a
//! clone that a running slot still references.

use crate::config::ServiceConfig;
use crate::context::Context;
use crate::ecs;
use crate::error::{StepError, StepResult};
use crate::naming::CLONE_PREFIX;
use crate::ports::compute::ServiceState as Service;
use crate::record::{DbClone, Deployment};
use crate::secret_reference::CLONE_SECRET_PREFIX;
use crate::slot::Slot;

/// What identifies one clone: its identifiers and known addresses.
struct CloneMarks {
    identifier: String,
    marks: Vec<String>,
}

impl CloneMarks {
    /// The (longest) mark of this clone `value` carries: what evidence names instead of the
    /// value, which may hold a password (a URL's, a JDBC `password=` parameter).
    fn matched(&self, value: &str) -> Option<&str> {
        let value = value.to_ascii_lowercase();
        self.marks
            .iter()
            .filter(|m| !m.is_empty() && value.contains(&m.to_ascii_lowercase()))
            .max_by_key(|m| m.len())
            .map(String::as_str)
    }
}

fn marks_of(clone: &DbClone) -> CloneMarks {
    CloneMarks {
        identifier: clone.identifier.clone(),
        marks: [
            Some(clone.identifier.clone()),
            Some(clone.instance_identifier()),
            clone.endpoint.clone(),
        ]
        .into_iter()
        .flatten()
        .collect(),
    }
}

async fn every_clone(ctx: &Context, deployment: &Deployment) -> StepResult<Vec<CloneMarks>> {
    let mut all: Vec<CloneMarks> = deployment.clones.iter().map(marks_of).collect();
    for (identifier, addresses) in clone_addresses(ctx).await? {
        let mut marks = addresses;
        marks.push(identifier.clone());
        all.push(CloneMarks { identifier, marks });
    }
    // A secret bluegreen wrote for a clone points at one, even once its clone is gone.
    all.push(CloneMarks {
        identifier: "a clone's secret".into(),
        marks: vec![format!(":secret:{CLONE_SECRET_PREFIX}")],
    });
    Ok(all)
}

/// Every bluegreen clone in the account (instances and clusters named `bg-…`) with the
/// addresses a client would use to reach it: the guard compares task definitions against these.
async fn clone_addresses(ctx: &Context) -> StepResult<Vec<(String, Vec<String>)>> {
    let databases = &ctx.ports.databases;
    let mut found: Vec<(String, Vec<String>)> = databases
        .all_instances()
        .await?
        .into_iter()
        .filter(|i| i.identifier.starts_with(CLONE_PREFIX))
        .map(|i| (i.identifier, i.endpoint.into_iter().collect()))
        .collect();
    found.extend(
        databases
            .all_clusters()
            .await?
            .into_iter()
            .filter(|c| c.identifier.starts_with(CLONE_PREFIX))
            .map(|c| (c.identifier, c.endpoints)),
    );
    Ok(found)
}

/// `container NAME=value` for every environment value of `service`'s task definitions (its
/// own and those of its deployments in progress) that points at one of `clones`.
async fn references(
    ctx: &Context,
    service: &Service,
    clones: &[CloneMarks],
) -> StepResult<Vec<(String, String)>> {
    let mut found = Vec::new();
    for td in task_definitions_of(service) {
        let definition = ecs::describe_task_definition(ctx, &td).await?;
        for (container, name, value) in definition.all_references() {
            if let Some((clone, mark)) = clones
                .iter()
                .find_map(|c| c.matched(&value).map(|m| (c, m)))
            {
                // The value is not evidence (it may hold a password): what of the clone it names.
                found.push((
                    clone.identifier.clone(),
                    format!("{td}: container {container} {name} points at {mark}"),
                ));
            }
        }
    }
    Ok(found)
}

/// Refuses with `ProductionOnClone` if `slot`'s service would reach a clone.
pub async fn ensure_production_database(
    ctx: &Context,
    deployment: &Deployment,
    slot: Slot,
) -> StepResult<()> {
    let config = &deployment.config;
    let service =
        ecs::describe_service(ctx, &config.cluster, &config.slots.get(slot).service).await?;
    let clones = every_clone(ctx, deployment).await?;
    let found = references(ctx, &service, &clones).await?;
    if found.is_empty() {
        return Ok(());
    }
    let evidence: Vec<String> = found.into_iter().map(|(_, e)| e).collect();
    Err(StepError::ProductionOnClone(format!(
        "{slot} ({}) points at a database clone: {}",
        config.slots.get(slot).service,
        evidence.join("; ")
    )))
}

/// [`ensure_task_definition_on_production`] until the production migration has started: the
/// revision it runs was checked before its start and cannot change since, and a check that
/// looks every second (`crate::looks`) must not list every RDS instance and cluster of the
/// account each time.
pub async fn ensure_before_production_migration(
    ctx: &Context,
    deployment: &Deployment,
    td: &str,
) -> StepResult<()> {
    if deployment.production_migration.is_some() {
        return Ok(());
    }
    ensure_task_definition_on_production(ctx, deployment, td).await
}

/// Refuses with `ProductionOnClone` if task definition `td` points at a clone (checked before a
/// production or rollback migration runs with it).
pub async fn ensure_task_definition_on_production(
    ctx: &Context,
    deployment: &Deployment,
    td: &str,
) -> StepResult<()> {
    let clones = every_clone(ctx, deployment).await?;
    let definition = ecs::describe_task_definition(ctx, td).await?;
    let found: Vec<String> = definition
        .all_references()
        .into_iter()
        .filter_map(|(container, name, value)| {
            let mark = clones.iter().find_map(|c| c.matched(&value))?;
            Some(format!("container {container} {name} points at {mark}"))
        })
        .collect();
    if found.is_empty() {
        Ok(())
    } else {
        Err(StepError::ProductionOnClone(format!(
            "task definition {td} points at a database clone: {}",
            found.join("; ")
        )))
    }
}

/// For each of the deployment's clones that a running slot (desired count above zero) still
/// references: `(clone identifier, evidence)`. Cleanup keeps those.
pub async fn clones_in_use(
    ctx: &Context,
    config: &ServiceConfig,
    clones: &[DbClone],
) -> StepResult<Vec<(String, String)>> {
    if clones.is_empty() {
        return Ok(Vec::new());
    }
    let marks: Vec<CloneMarks> = clones.iter().map(marks_of).collect();
    let mut in_use = Vec::new();
    for (slot, name, service) in running_slots(ctx, config).await? {
        for (identifier, evidence) in references(ctx, &service, &marks).await? {
            in_use.push((identifier, format!("{slot} ({name}) uses it: {evidence}")));
        }
    }
    Ok(in_use)
}

/// Every value and reference (secret, environment file) of every task definition of the
/// service's slots that run tasks (desired count above zero): what scheduled teardown must not
/// pull a database or a clone's secret from under.
pub async fn env_values_in_use(ctx: &Context, config: &ServiceConfig) -> StepResult<Vec<String>> {
    let mut values = Vec::new();
    for (_, _, service) in running_slots(ctx, config).await? {
        for td in task_definitions_of(&service) {
            let definition = ecs::describe_task_definition(ctx, &td).await?;
            values.extend(definition.all_references().into_iter().map(|(_, _, v)| v));
        }
    }
    Ok(values)
}

/// The service's task definition and those of its deployments in progress.
fn task_definitions_of(service: &Service) -> Vec<String> {
    let mut all: Vec<String> = service.task_definition.iter().cloned().collect();
    for d in &service.deployments {
        if let Some(td) = &d.task_definition
            && !all.contains(td)
        {
            all.push(td.clone());
        }
    }
    all
}

/// The slot services that exist and should run tasks (desired count above zero).
async fn running_slots(
    ctx: &Context,
    config: &ServiceConfig,
) -> StepResult<Vec<(Slot, String, Service)>> {
    let mut running = Vec::new();
    for slot in Slot::ALL {
        let name = config.slots.get(slot).service.clone();
        match ecs::describe_service(ctx, &config.cluster, &name).await {
            Ok(service) if service.desired_count > 0 => running.push((slot, name, service)),
            Ok(_) | Err(StepError::ResourceNotFound { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(running)
}
