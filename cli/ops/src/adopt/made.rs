//! What one `adopt --apply` run changes, journaled *before* each write, so that a run failing
//! part-way (a permission missing, a throttle that outlasted the SDK's retries, a name taken
//! between the plan and the write) takes its own changes back instead of leaving a
//! half-adopted service that no config describes, `adopt --undo` cannot find and `doctor`
//! cannot see.
//!
//! Written ahead because a write's answer can be lost after it took effect: a create that
//! "failed" may have created. So what a create would make is named by what the walk knows
//! before the call (a name, a port), and taking it back looks it up and removes it only if it
//! exists and carries adopt's mark for this service. Every take-back is a set-to-value or a
//! delete of something found, so running one for a change that never happened does nothing.
//!
//! Only this run's changes are taken back: what an earlier run created stays (its config is
//! stored, or the next run finishes it), and a resource someone else owns is never touched.

use aws_sdk_elasticloadbalancingv2::types::Action;
use bluegreen::config::ServiceConfig;
use bluegreen::config_store::ConfigStore;
use bluegreen::context::Context;
use bluegreen::error::{StepError, StepResult};
use bluegreen::naming::TAG_MANAGED;
use bluegreen::ports::load_balancing::Route;

use super::{TAG_CREATED, TAG_TAGGED, undo::simple_record_again};
use crate::direct::{ecs, elb};

/// One change an apply run is about to make, with what taking it back needs.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Made {
    /// A target group it creates, by name.
    TargetGroup(String),
    /// A listener it creates on `balancer` (the test listener, or the green load balancer's).
    Listener { balancer: String, port: i32 },
    /// A load balancer it creates (DNS mode's green one), by name.
    LoadBalancer(String),
    /// An ECS service it creates (the green slot).
    Service { cluster: String, name: String },
    /// An ECS service adopt made earlier, pointed at this run's green group, with its group
    /// before.
    ServiceGroup {
        cluster: String,
        name: String,
        before: String,
    },
    /// `bluegreen:managed` and adopt's mark, put on an existing ECS service.
    ServiceTags(String),
    /// `bluegreen:managed` and adopt's mark, put on an existing listener or rule.
    RouteTags(String),
    /// A given test listener it points at green, with its actions before.
    ListenerActions { arn: String, before: Vec<Action> },
    /// A production route it gives green's group at weight 0, with its groups before.
    Forward {
        route: Route,
        before: Vec<(String, i32)>,
    },
    /// The simple record it makes the weighted pair.
    WeightedRecords { zone: String, name: String },
    /// The config it stores, with the one stored before (none: the config is deleted).
    Config {
        name: String,
        before: Option<Box<ServiceConfig>>,
    },
}

/// Whether an ELB resource carries adopt's mark for `adopter` (`None`: it does not exist).
async fn elb_ours(ctx: &Context, arn: &str, adopter: &str) -> StepResult<Option<bool>> {
    let tags = elb::tags_of(ctx, arn).await?;
    Ok(tags.map(|tags| marked(&tags, adopter)))
}

fn marked(tags: &[(String, String)], adopter: &str) -> bool {
    tags.iter().any(|(k, v)| k == TAG_CREATED && v == adopter)
}

impl Made {
    /// The change, as the run made it.
    fn what(&self) -> String {
        match self {
            Made::TargetGroup(name) => format!("created target group {name}"),
            Made::Listener { balancer, port } => format!("created listener :{port} on {balancer}"),
            Made::LoadBalancer(name) => format!("created load balancer {name}"),
            Made::Service { cluster, name } => format!("created ECS service {cluster}/{name}"),
            Made::ServiceGroup { cluster, name, .. } => {
                format!("pointed ECS service {cluster}/{name} at the green target group")
            }
            Made::ServiceTags(arn) | Made::RouteTags(arn) => {
                format!("tagged {arn} {TAG_MANAGED}=true")
            }
            Made::ListenerActions { arn, .. } => {
                format!("pointed listener {arn} at the green target group")
            }
            Made::Forward { route, .. } => format!(
                "gave {} green's target group at weight 0",
                bluegreen::routes::describe(route)
            ),
            Made::WeightedRecords { name, .. } => format!("made {name} a weighted pair"),
            Made::Config { name, .. } => format!("stored the config {name}"),
        }
    }

    /// Takes this change back if it happened; whether there was anything to take back.
    async fn take_back(&self, ctx: &Context, adopter: &str) -> StepResult<bool> {
        let marks = [TAG_MANAGED, TAG_TAGGED];
        match self {
            Made::TargetGroup(_)
            | Made::Listener { .. }
            | Made::LoadBalancer(_)
            | Made::Service { .. } => return self.delete_created(ctx, adopter).await,
            Made::ServiceGroup {
                cluster,
                name,
                before,
            } => {
                // The group it registered in before was deleted (why the run pointed it
                // elsewhere): nothing to point it back at.
                if elb::target_group(ctx, before).await?.is_none() {
                    return Ok(false);
                }
                let service = ecs::describe_service(ctx, cluster, name).await?;
                ecs::register_in(ctx, cluster, &service, before).await?
            }
            Made::ServiceTags(arn) => ecs::untag_resource(ctx, arn, &marks).await?,
            Made::RouteTags(arn) => elb::remove_tags(ctx, arn, &marks).await?,
            Made::ListenerActions { arn, before } => {
                elb::set_listener_actions(ctx, arn, before.clone()).await?
            }
            Made::Forward { route, before } => {
                ctx.ports.load_balancing.set_forward(route, before).await?
            }
            Made::WeightedRecords { zone, name } => {
                let changed = simple_record_again(ctx, zone, name).await?;
                return Ok(!changed.is_empty());
            }
            Made::Config { name, before } => {
                let store = ConfigStore::new(ctx);
                match before {
                    Some(config) => store.put(config).await?,
                    None => match store.delete(name).await {
                        // The put failed before the parameter was written: nothing stored.
                        Err(StepError::ServiceNotFound(_)) => return Ok(false),
                        other => other?,
                    },
                }
            }
        }
        Ok(true)
    }

    /// Deletes what the change created, found by name (or port) and only if it carries
    /// adopt's mark for `adopter`; whether there was one.
    async fn delete_created(&self, ctx: &Context, adopter: &str) -> StepResult<bool> {
        match self {
            Made::TargetGroup(name) => {
                let Some(tg) = elb::target_group_named(ctx, name).await? else {
                    return Ok(false);
                };
                let arn = tg.target_group_arn.unwrap_or_default();
                if elb_ours(ctx, &arn, adopter).await? != Some(true) {
                    return Ok(false);
                }
                elb::delete_target_group(ctx, &arn).await?;
            }
            Made::Listener { balancer, port } => {
                let listeners = elb::listeners_of(ctx, balancer).await?;
                let Some(arn) = listeners
                    .into_iter()
                    .find(|l| l.port == Some(*port))
                    .and_then(|l| l.listener_arn)
                else {
                    return Ok(false);
                };
                if elb_ours(ctx, &arn, adopter).await? != Some(true) {
                    return Ok(false);
                }
                elb::delete_listener(ctx, &arn).await?;
            }
            Made::LoadBalancer(name) => {
                let Some(lb) = elb::load_balancer_named(ctx, name).await? else {
                    return Ok(false);
                };
                let arn = lb.load_balancer_arn.unwrap_or_default();
                if elb_ours(ctx, &arn, adopter).await? != Some(true) {
                    return Ok(false);
                }
                elb::delete_load_balancer(ctx, &arn).await?;
            }
            Made::Service { cluster, name } => {
                let Ok(service) = ecs::describe_service(ctx, cluster, name).await else {
                    return Ok(false);
                };
                let arn = service.service_arn.unwrap_or_default();
                if !marked(&ecs::tags_of(ctx, &arn).await?, adopter) {
                    return Ok(false);
                }
                ecs::delete_service(ctx, cluster, name).await?;
            }
            _ => return Ok(false),
        }
        Ok(true)
    }
}

/// What taking a failed run's changes back did, and what it could not.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TakenBack {
    /// Each change taken back (as it was made), last change first.
    pub undone: Vec<String>,
    /// Each change still in place, with why it could not be taken back (undo these by hand).
    pub left: Vec<String>,
}

/// Takes `made` back, last change first (a listener before the target group it forwards to,
/// the service before the group it registers in). A change that cannot be taken back is
/// reported and the others are still tried.
pub(super) async fn take_back(ctx: &Context, made: &[Made], adopter: &str) -> TakenBack {
    let mut report = TakenBack::default();
    for change in made.iter().rev() {
        match change.take_back(ctx, adopter).await {
            Ok(true) => report.undone.push(change.what()),
            Ok(false) => {}
            Err(e) => report.left.push(format!("{} ({e})", change.what())),
        }
    }
    report
}
