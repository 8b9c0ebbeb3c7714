//! `bluegreen adopt`: takes an ordinary ECS service behind an ALB listener (what most teams
//! have) and creates what blue/green needs from what exists — the second slot's target group
//! (a copy of the first, health check included), the second service (a copy of the first at
//! desired count 0), a test listener if there is none, the `bluegreen:managed` tags — and the
//! validated config that points at them.
//!
//! Without `apply` it only plans: the same walk, reading only, says what it would create.
//! With `apply` each piece is looked for before it is created (by name, or by the tags adopt
//! puts on what it creates), so a second run changes nothing and says so, and a run stopped
//! half-way finishes on the next one. `undo` removes what adopt created and the tags it added,
//! and is refused once a deployment has used them.
//!
//! Production traffic is never moved: the production listener keeps forwarding to the
//! existing service's target group, which becomes the blue slot.

use aws_sdk_ecs::types::Service;
use aws_sdk_elasticloadbalancingv2::types::{ActionTypeEnum, Listener, TargetGroup};
use serde::Serialize;

use crate::config::{
    Approval, Bake, Database, Finish, Health, ImageSource, Preprod, ServiceConfig, SlotConfig,
    Slots, SmokeCheck, Traffic,
};
use crate::config_store::ConfigStore;
use crate::context::Context;
use crate::ecs;
use crate::elb;
use crate::error::{StepError, StepResult};
use crate::lock::Locks;
use crate::naming::TAG_MANAGED;
use crate::record::Records;

/// Tag on everything adopt created, naming the adopted service's config (undo removes those).
pub const TAG_CREATED: &str = "bluegreen:adopt-created";
/// Tag on existing resources adopt tagged `bluegreen:managed` (undo removes both tags).
pub const TAG_TAGGED: &str = "bluegreen:adopt-tagged";

/// ELB names are at most 32 characters.
const ELB_NAME_MAX: usize = 32;

/// What to adopt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The ECS cluster.
    pub cluster: String,
    /// The existing service (it becomes the blue slot).
    pub service: String,
    /// The config's name (default: the service's name without a `-blue` suffix).
    pub name: Option<String>,
    /// The production listener, when its load balancer has more than one listener forwarding
    /// to the service's target group.
    pub production_listener_arn: Option<String>,
    /// An existing test listener to use (pointed at the new slot); else one is created on
    /// `test_port`.
    pub test_listener_arn: Option<String>,
    /// Port for the test listener adopt creates.
    pub test_port: Option<i32>,
    /// The ECR repository whose pushes deploy the service.
    pub repository: String,
    /// Tag patterns that deploy.
    pub tags: Vec<String>,
    /// Who may approve.
    pub approvers: Vec<String>,
    /// The test listener's base URL for smoke checks (default: the load balancer's DNS name
    /// and the test port).
    pub test_url: Option<String>,
}

/// What adopt did, or would do.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Adopted {
    /// Whether anything was (or would be) created or changed.
    pub changed: bool,
    /// One line per change, in order (`would …` when planning).
    pub changes: Vec<String>,
    /// The config (ARNs of what a plan would create read `(created by --apply)`).
    pub config: ServiceConfig,
}

/// What exists of the service's current shape.
struct Existing {
    service: Service,
    container: String,
    target_group: TargetGroup,
    production: Listener,
}

fn refuse(why: impl Into<String>) -> StepError {
    StepError::SetupRefused(why.into())
}

/// `<base>-green` for a `<base>-blue` name, else `<name>-green`, within `max` characters.
fn green_name(name: &str, max: usize) -> String {
    let base = name.strip_suffix("-blue").unwrap_or(name);
    let base: String = base
        .chars()
        .take(max.saturating_sub("-green".len()))
        .collect();
    format!("{base}-green")
}

/// Reads the service and what routes to it; refuses the shapes blue/green cannot take over.
async fn existing(ctx: &Context, req: &Request) -> StepResult<Existing> {
    let service = ecs::describe_service(ctx, &req.cluster, &req.service).await?;
    if service
        .deployment_controller
        .as_ref()
        .is_some_and(|c| c.r#type.as_str() != "ECS")
    {
        return Err(refuse(format!(
            "{} is deployed by {:?}, not ECS's rolling deployments: it has a blue/green \
             controller already",
            req.service,
            service
                .deployment_controller
                .as_ref()
                .map(|c| c.r#type.as_str())
        )));
    }
    let balancers = service.load_balancers();
    let balancer = match balancers {
        [] => {
            return Err(refuse(format!(
                "{} has no load balancer: blue/green needs an ALB target group to switch",
                req.service
            )));
        }
        [one] if one.load_balancer_name.is_some() => {
            return Err(refuse(format!(
                "{} is behind a classic ELB ({}), which cannot switch between target groups",
                req.service,
                one.load_balancer_name.as_deref().unwrap_or_default()
            )));
        }
        [one] => one,
        _ => {
            return Err(refuse(format!(
                "{} registers in {} target groups: adopt takes a service with exactly one",
                req.service,
                balancers.len()
            )));
        }
    };
    let tg_arn = balancer.target_group_arn.clone().unwrap_or_default();
    let target_group =
        elb::target_group(ctx, &tg_arn)
            .await?
            .ok_or_else(|| StepError::ResourceNotFound {
                kind: "target group",
                id: tg_arn.clone(),
            })?;
    let production = production_listener(ctx, req, &target_group).await?;
    Ok(Existing {
        container: balancer.container_name.clone().unwrap_or_default(),
        service,
        target_group,
        production,
    })
}

/// The listener whose default action forwards everything to `target_group`.
async fn production_listener(
    ctx: &Context,
    req: &Request,
    target_group: &TargetGroup,
) -> StepResult<Listener> {
    let tg = target_group.target_group_arn.as_deref().unwrap_or_default();
    let balancers = target_group.load_balancer_arns();
    let [balancer] = balancers else {
        return Err(refuse(format!(
            "target group {tg} is attached to {} load balancers: adopt takes one",
            balancers.len()
        )));
    };
    let forwards_here = |l: &Listener| {
        let actions = l.default_actions();
        actions.len() == 1
            && actions[0].r#type == Some(ActionTypeEnum::Forward)
            && (actions[0].target_group_arn.as_deref() == Some(tg)
                || actions[0]
                    .forward_config
                    .as_ref()
                    .is_some_and(|f| matches!(f.target_groups(), [one] if one.target_group_arn.as_deref() == Some(tg))))
    };
    let listeners = elb::listeners_of(ctx, balancer).await?;
    let candidates: Vec<&Listener> = listeners
        .iter()
        .filter(|l| match &req.production_listener_arn {
            Some(arn) => l.listener_arn.as_deref() == Some(arn.as_str()),
            None => forwards_here(l),
        })
        .collect();
    match candidates.as_slice() {
        [one] if forwards_here(one) => Ok((*one).clone()),
        [one] => Err(refuse(format!(
            "listener {} does not forward everything to {tg} by its default action (listener \
             rules are not adopted: write the config with production_rule_arn by hand)",
            one.listener_arn.as_deref().unwrap_or_default()
        ))),
        [] => Err(refuse(format!(
            "no listener of {balancer} forwards everything to {tg}{}",
            req.production_listener_arn
                .as_deref()
                .map(|a| format!(" ({a} is not one of its listeners)"))
                .unwrap_or_default()
        ))),
        _ => Err(refuse(format!(
            "{} listeners forward to {tg}: say which is production with --listener",
            candidates.len()
        ))),
    }
}

/// Plans (`apply` false) or applies adopting `req`. See the module docs.
pub async fn adopt(ctx: &Context, req: &Request, apply: bool) -> StepResult<Adopted> {
    let found = existing(ctx, req).await?;
    let name = req.name.clone().unwrap_or_else(|| {
        req.service
            .strip_suffix("-blue")
            .unwrap_or(&req.service)
            .to_owned()
    });
    let mut changes = Vec::new();
    let mut note = |what: String| {
        changes.push(if apply { what } else { format!("would {what}") });
    };
    let pending = "(created by --apply)".to_owned();
    let created_tag = [(TAG_MANAGED, "true"), (TAG_CREATED, name.as_str())];

    // 1. The green target group, a copy of blue's.
    let blue_tg = found
        .target_group
        .target_group_arn
        .clone()
        .unwrap_or_default();
    let tg_name = green_name(
        found
            .target_group
            .target_group_name
            .as_deref()
            .unwrap_or(&name),
        ELB_NAME_MAX,
    );
    let green_tg = match elb::target_group_named(ctx, &tg_name).await? {
        Some(tg) => {
            let arn = tg.target_group_arn.unwrap_or_default();
            ours(
                elb::tags_of(ctx, &arn).await?.unwrap_or_default(),
                &name,
                &arn,
            )?;
            arn
        }
        None if apply => {
            let tg =
                elb::create_target_group_like(ctx, &tg_name, &found.target_group, &created_tag)
                    .await?;
            note(format!(
                "create target group {tg_name} (a copy of {blue_tg})"
            ));
            tg.target_group_arn.unwrap_or_default()
        }
        None => {
            note(format!(
                "create target group {tg_name} (a copy of {blue_tg})"
            ));
            pending.clone()
        }
    };

    // 2. The test listener, forwarding to green (it must exist before the green service
    //    registers in the group: ECS wants a group attached to a load balancer).
    let test = test_listener(ctx, req, &found, &green_tg, &name, apply, &mut note).await?;
    let test_arn = test
        .as_ref()
        .and_then(|l| l.listener_arn.clone())
        .unwrap_or_else(|| pending.clone());

    // 3. The green service, a copy of blue's at desired count 0.
    let green_service = green_name(&req.service, usize::MAX);
    match ecs::describe_service(ctx, &req.cluster, &green_service).await {
        Ok(service) => {
            let arn = service.service_arn.unwrap_or_default();
            ours(ecs::tags_of(ctx, &arn).await?, &name, &arn)?;
        }
        Err(StepError::ResourceNotFound { .. }) => {
            if apply {
                ecs::create_service_like(
                    ctx,
                    &req.cluster,
                    &green_service,
                    &found.service,
                    &green_tg,
                    0,
                    &created_tag,
                )
                .await?;
            }
            note(format!(
                "create ECS service {}/{green_service} (a copy of {}, 0 tasks)",
                req.cluster, req.service
            ));
        }
        Err(e) => return Err(e),
    }

    // 4. The managed tags on what exists (the roles of the stack switch only tagged ones).
    let service_arn = found.service.service_arn.clone().unwrap_or_default();
    let service_tags = ecs::tags_of(ctx, &service_arn).await?;
    if !service_tags
        .iter()
        .any(|(k, v)| k == TAG_MANAGED && v == "true")
    {
        if apply {
            let tags = vec![ecs::tag(TAG_MANAGED, "true"), ecs::tag(TAG_TAGGED, &name)];
            ecs::tag_resource(ctx, &service_arn, tags).await?;
        }
        note(format!("tag {} {TAG_MANAGED}=true", req.service));
    }
    let production_arn = found.production.listener_arn.clone().unwrap_or_default();
    let mut to_tag = vec![production_arn.clone()];
    if test.is_some() {
        to_tag.push(test_arn.clone());
    }
    for arn in to_tag {
        let tags = elb::tags_of(ctx, &arn).await?.unwrap_or_default();
        if !tags.iter().any(|(k, v)| k == TAG_MANAGED && v == "true") {
            if apply {
                elb::add_tags(ctx, &arn, &[(TAG_MANAGED, "true"), (TAG_TAGGED, &name)]).await?;
            }
            note(format!("tag listener {arn} {TAG_MANAGED}=true"));
        }
    }

    // 5. The config, validated, in SSM and indexed.
    let config = ServiceConfig {
        name: name.clone(),
        source: ImageSource {
            repository: req.repository.clone(),
            tags: req.tags.clone(),
        },
        cluster: req.cluster.clone(),
        container: found.container.clone(),
        slots: Slots {
            blue: slot(&req.service, &blue_tg, "blue"),
            green: slot(&green_service, &green_tg, "green"),
        },
        traffic: Traffic::Listener {
            production_listener_arn: production_arn,
            test_listener_arn: test_arn,
            production_rule_arn: None,
            shift: None,
        },
        preprod: Preprod::default(),
        database: Database::default(),
        migration: None,
        health: Health {
            test_url: Some(match &req.test_url {
                Some(url) => url.clone(),
                None => test_url(ctx, &found, req).await?,
            }),
            smoke: vec![SmokeCheck {
                path: found
                    .target_group
                    .health_check_path
                    .clone()
                    .unwrap_or_else(|| "/".into()),
                expect_status: 200,
                body_contains: None,
            }],
            ..Health::default()
        },
        approval: Approval {
            approvers: req.approvers.clone(),
            ..Approval::default()
        },
        bake: Bake::default(),
        finish: Finish::default(),
    };
    if apply {
        config.validate()?;
        let store = ConfigStore::new(ctx);
        match store.load(&name).await {
            Ok(stored) if stored == config => {}
            Ok(_) | Err(StepError::ServiceNotFound(_)) | Err(StepError::ConfigInvalid(_)) => {
                store.put(&config).await?;
                note(format!("store the config {}", store.parameter_name(&name)));
            }
            Err(e) => return Err(e),
        }
    } else {
        // ARNs still to be created make a plan's config invalid; everything else is checked.
        let problems: Vec<String> = config
            .problems()
            .into_iter()
            .filter(|p| !p.contains(&pending))
            .collect();
        if !problems.is_empty() {
            return Err(StepError::ConfigInvalid(problems));
        }
        note(format!("store the config {name}"));
    }
    Ok(Adopted {
        changed: !changes.is_empty(),
        changes,
        config,
    })
}

/// A resource with the name adopt would give must be one adopt created for `name`; anything
/// else of that name is someone's, and is not taken over.
fn ours(tags: Vec<(String, String)>, name: &str, arn: &str) -> StepResult<()> {
    if tags.iter().any(|(k, v)| k == TAG_CREATED && v == name) {
        Ok(())
    } else {
        Err(refuse(format!(
            "{arn} exists and was not created by adopting {name}: rename or remove it, or write              the config by hand"
        )))
    }
}

fn slot(service: &str, target_group: &str, set_identifier: &str) -> SlotConfig {
    SlotConfig {
        service: service.to_owned(),
        target_group_arn: target_group.to_owned(),
        test_url: None,
        set_identifier: Some(set_identifier.to_owned()),
        record_value: None,
    }
}

/// The test listener: the one given, one adopt created before (by port), or a new one on
/// `test_port`. `None` only when planning one that does not exist yet.
async fn test_listener(
    ctx: &Context,
    req: &Request,
    found: &Existing,
    green_tg: &str,
    name: &str,
    apply: bool,
    note: &mut impl FnMut(String),
) -> StepResult<Option<Listener>> {
    let balancer = found
        .production
        .load_balancer_arn
        .clone()
        .unwrap_or_default();
    let listeners = elb::listeners_of(ctx, &balancer).await?;
    let forwards_green = |l: &Listener| {
        l.default_actions()
            .first()
            .is_some_and(|a| a.target_group_arn.as_deref() == Some(green_tg))
    };
    let existing = match (&req.test_listener_arn, req.test_port) {
        (Some(arn), _) => Some(
            listeners
                .iter()
                .find(|l| l.listener_arn.as_deref() == Some(arn.as_str()))
                .cloned()
                .ok_or_else(|| refuse(format!("{arn} is not a listener of {balancer}")))?,
        ),
        (None, Some(port)) => listeners.iter().find(|l| l.port == Some(port)).cloned(),
        (None, None) => {
            return Err(refuse(
                "the service has no test listener yet: give --test-port (adopt creates one) \
                 or --test-listener",
            ));
        }
    };
    if existing.as_ref().and_then(|l| l.listener_arn.as_deref())
        == found.production.listener_arn.as_deref()
    {
        return Err(refuse(
            "the test listener cannot be the production listener",
        ));
    }
    match existing {
        Some(listener) if forwards_green(&listener) => Ok(Some(listener)),
        Some(listener) if req.test_listener_arn.is_none() => Err(refuse(format!(
            "port {} of {balancer} is taken by listener {} (not adopt's): choose another \
             --test-port or pass it as --test-listener",
            listener.port.unwrap_or_default(),
            listener.listener_arn.as_deref().unwrap_or_default()
        ))),
        Some(listener) => {
            let arn = listener.listener_arn.clone().unwrap_or_default();
            if apply {
                elb::set_listener_actions(ctx, &arn, vec![elb::forward_to(green_tg)]).await?;
            }
            note(format!(
                "point test listener {arn} at the green target group"
            ));
            Ok(Some(listener))
        }
        None => {
            let port = req.test_port.unwrap_or_default();
            note(format!("create test listener :{port} on {balancer}"));
            if !apply {
                return Ok(None);
            }
            let created = elb::create_listener_like(
                ctx,
                &found.production,
                port,
                green_tg,
                &[(TAG_MANAGED, "true"), (TAG_CREATED, name)],
            )
            .await?;
            Ok(Some(created))
        }
    }
}

/// `http(s)://<load balancer DNS name>:<test port>`.
async fn test_url(ctx: &Context, found: &Existing, req: &Request) -> StepResult<String> {
    let scheme = match found.production.protocol.as_ref().map(|p| p.as_str()) {
        Some("HTTPS") => "https",
        _ => "http",
    };
    let balancer = found
        .production
        .load_balancer_arn
        .as_deref()
        .unwrap_or_default();
    let host = elb::load_balancer_dns(ctx, balancer)
        .await?
        .ok_or_else(|| StepError::ResourceNotFound {
            kind: "load balancer",
            id: balancer.to_owned(),
        })?;
    Ok(format!(
        "{scheme}://{host}:{}",
        req.test_port.unwrap_or(8443)
    ))
}

/// Removes what adopting `name` created (the green service, target group and test listener,
/// the config) and the tags it added to what existed. Refused once a deployment of the
/// service has run or holds its lock: from then on the slots are production's.
pub async fn undo(ctx: &Context, name: &str) -> StepResult<Vec<String>> {
    let config = ConfigStore::new(ctx).load(name).await?;
    if let Some(lock) = Locks::new(ctx).read(name).await? {
        return Err(refuse(format!(
            "{} holds {name}'s lock: undo only before anything was deployed",
            lock.holder
        )));
    }
    if let Some(d) = Records::new(ctx).for_service(name, 1).await?.pop() {
        return Err(refuse(format!(
            "{name} has been deployed ({}): its slots serve production now, undo would remove \
             one of them",
            d.deployment_id
        )));
    }
    let mut removed = Vec::new();
    for slot in [&config.slots.green, &config.slots.blue] {
        let Ok(service) = ecs::describe_service(ctx, &config.cluster, &slot.service).await else {
            continue;
        };
        let arn = service.service_arn.clone().unwrap_or_default();
        let tags = ecs::tags_of(ctx, &arn).await?;
        if tags.iter().any(|(k, v)| k == TAG_CREATED && v == name) {
            ecs::delete_service(ctx, &config.cluster, &slot.service).await?;
            removed.push(format!("ECS service {}/{}", config.cluster, slot.service));
        } else if tags.iter().any(|(k, v)| k == TAG_TAGGED && v == name) {
            ecs::untag_resource(ctx, &arn, &[TAG_MANAGED, TAG_TAGGED]).await?;
            removed.push(format!("tags of {}", slot.service));
        }
    }
    if let Traffic::Listener {
        production_listener_arn,
        test_listener_arn,
        ..
    } = &config.traffic
    {
        for arn in [test_listener_arn, production_listener_arn] {
            let tags = elb::tags_of(ctx, arn).await?.unwrap_or_default();
            if tags.iter().any(|(k, v)| k == TAG_CREATED && v == name) {
                elb::delete_listener(ctx, arn).await?;
                removed.push(format!("listener {arn}"));
            } else if tags.iter().any(|(k, v)| k == TAG_TAGGED && v == name) {
                elb::remove_tags(ctx, arn, &[TAG_MANAGED, TAG_TAGGED]).await?;
                removed.push(format!("tags of listener {arn}"));
            }
        }
    }
    for slot in [&config.slots.green, &config.slots.blue] {
        let tags = elb::tags_of(ctx, &slot.target_group_arn)
            .await?
            .unwrap_or_default();
        if tags.iter().any(|(k, v)| k == TAG_CREATED && v == name) {
            elb::delete_target_group(ctx, &slot.target_group_arn).await?;
            removed.push(format!("target group {}", slot.target_group_arn));
        }
    }
    ConfigStore::new(ctx).delete(name).await?;
    removed.push(format!("config {name}"));
    Ok(removed)
}
