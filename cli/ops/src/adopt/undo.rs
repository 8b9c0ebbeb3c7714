//! `adopt --undo`: removes what adopting a service created (the green service, target group,
//! test listener or green load balancer, the config) and the tags adopt added to what existed.

use crate::direct::ecs;
use crate::direct::elb;
use crate::direct::route53;
use bluegreen::config::{Routes, ServiceConfig, Traffic};
use bluegreen::config_store::ConfigStore;
use bluegreen::context::Context;
use bluegreen::error::StepResult;
use bluegreen::lock::Locks;
use bluegreen::naming::TAG_MANAGED;
use bluegreen::record::Records;

use super::{TAG_CREATED, TAG_TAGGED, refuse};

/// Removes what adopting `name` created (the green service, target group and test listener,
/// the config) and the tags it added to what existed. Refused once a deployment of the
/// service has run or holds its lock: from then on either slot may be production's (the
/// README's "Back to one service" is the way back).
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
            "{name} has been deployed ({}): from then on either slot may be production's, so \
             undo removes nothing. To go back to one service, see the README (\"Back to one \
             service\")",
            d.deployment_id
        )));
    }
    let mut removed = Vec::new();
    if let Traffic::Dns {
        hosted_zone_id,
        record_name,
        ..
    } = &config.traffic
    {
        removed.extend(simple_record_again(ctx, hosted_zone_id, record_name).await?);
    }
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
    removed.extend(undo_routes(ctx, &config, name).await?);
    for slot in [&config.slots.green, &config.slots.blue] {
        // DNS mode: the green load balancer adopt made (with its listener) goes first; the
        // target group cannot be deleted while a listener forwards to it.
        let balancers = elb::target_group(ctx, &slot.target_group_arn)
            .await?
            .map(|tg| tg.load_balancer_arns().to_vec())
            .unwrap_or_default();
        for balancer in balancers {
            let tags = elb::tags_of(ctx, &balancer).await?.unwrap_or_default();
            if tags.iter().any(|(k, v)| k == TAG_CREATED && v == name) {
                elb::delete_load_balancer(ctx, &balancer).await?;
                removed.push(format!("load balancer {balancer}"));
            }
        }
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

/// Listener mode: the test listener adopt created goes, and the tags it put on the production
/// listener, its rule and the other routes are taken back.
async fn undo_routes(ctx: &Context, config: &ServiceConfig, name: &str) -> StepResult<Vec<String>> {
    let mut removed = Vec::new();
    if let Traffic::Listener {
        production_listener_arn,
        test_listener_arn,
        production_rule_arn,
        routes,
        ..
    } = &config.traffic
    {
        let listed = match routes {
            Routes::Listed(arns) => arns.as_slice(),
            Routes::Word(_) => &[],
        };
        let routes = test_listener_arn
            .iter()
            .chain([production_listener_arn])
            .chain(production_rule_arn)
            .chain(listed);
        for arn in routes {
            let tags = elb::tags_of(ctx, arn).await?.unwrap_or_default();
            if tags.iter().any(|(k, v)| k == TAG_CREATED && v == name) {
                elb::delete_listener(ctx, arn).await?;
                removed.push(format!("listener {arn}"));
            } else if tags.iter().any(|(k, v)| k == TAG_TAGGED && v == name) {
                elb::remove_tags(ctx, arn, &[TAG_MANAGED, TAG_TAGGED]).await?;
                removed.push(format!("tags of {arn}"));
            }
        }
    }
    Ok(removed)
}

/// DNS mode: the weighted pair adopt made becomes the simple record again, with blue's value.
pub(super) async fn simple_record_again(
    ctx: &Context,
    zone: &str,
    name: &str,
) -> StepResult<Vec<String>> {
    let records = route53::cname_records(ctx, zone, name).await?;
    let Some(blue) = records
        .iter()
        .find(|r| r.set_identifier.as_deref() == Some("blue"))
    else {
        return Ok(Vec::new()); // already simple (an undo stopped half-way)
    };
    let batch = route53::simple_for(&records, blue)?;
    route53::change_record_sets(ctx, zone, batch).await?;
    Ok(vec![format!(
        "the weighted records of {name} (simple again)"
    )])
}
