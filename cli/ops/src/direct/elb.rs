//! The Elastic Load Balancing adapter: every ELBv2 call bluegreen makes (listeners, rules,
//! their tags, target health), with errors mapped to [`StepError`]s that name the missing
//! resource. What the actions mean (which slot is live, the maintenance page) is decided by
//! `routing` and `maintenance`, not here.

use aws_sdk_elasticloadbalancingv2::types::{Action, Tag, TargetGroup};

use bluegreen::context::Context;
use bluegreen::error::{StepError, StepResult};

/// The default actions of a listener.
pub async fn listener_actions(ctx: &Context, listener_arn: &str) -> StepResult<Vec<Action>> {
    bluegreen::aws::load_balancing::listener_actions(&ctx.sdk()?.elb, listener_arn).await
}

/// Replaces a listener's default actions (one call: the whole split changes at once).
pub async fn set_listener_actions(
    ctx: &Context,
    listener_arn: &str,
    actions: Vec<Action>,
) -> StepResult<()> {
    ctx.sdk()?
        .elb
        .modify_listener()
        .listener_arn(listener_arn)
        .set_default_actions(Some(actions))
        .send()
        .await
        .map_err(|e| StepError::from_sdk("elasticloadbalancing:ModifyListener", e))?;
    Ok(())
}

/// The target group, or `None` when there is none with that ARN.
pub async fn target_group(ctx: &Context, arn: &str) -> StepResult<Option<TargetGroup>> {
    describe_target_group(
        ctx.sdk()?
            .elb
            .describe_target_groups()
            .target_group_arns(arn),
    )
    .await
}

/// A target group's deregistration delay in seconds (`deregistration_delay.timeout_seconds`),
/// when ELB reports one.
pub async fn deregistration_delay(ctx: &Context, arn: &str) -> StepResult<Option<u64>> {
    Ok(target_group_attributes(ctx, arn)
        .await?
        .into_iter()
        .find(|(key, _)| key == "deregistration_delay.timeout_seconds")
        .and_then(|(_, value)| value.parse().ok()))
}

/// The target group named `name`, or `None`.
pub async fn target_group_named(ctx: &Context, name: &str) -> StepResult<Option<TargetGroup>> {
    describe_target_group(ctx.sdk()?.elb.describe_target_groups().names(name)).await
}

/// The first group a DescribeTargetGroups request answers; `None` for TargetGroupNotFound.
async fn describe_target_group(
    request: aws_sdk_elasticloadbalancingv2::operation::describe_target_groups::builders::DescribeTargetGroupsFluentBuilder,
) -> StepResult<Option<TargetGroup>> {
    match request.send().await {
        Ok(out) => Ok(out.target_groups.unwrap_or_default().into_iter().next()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_target_group_not_found_exception()) =>
        {
            Ok(None)
        }
        Err(e) => Err(StepError::from_sdk(
            "elasticloadbalancing:DescribeTargetGroups",
            e,
        )),
    }
}

/// The tags of one ELB resource (listener, rule, target group) as `(key, value)` pairs;
/// `None` when ELB describes no such resource.
pub async fn tags_of(ctx: &Context, arn: &str) -> StepResult<Option<Vec<(String, String)>>> {
    let out = ctx
        .sdk()?
        .elb
        .describe_tags()
        .resource_arns(arn)
        .send()
        .await
        .map_err(|e| StepError::from_sdk("elasticloadbalancing:DescribeTags", e))?;
    Ok(out
        .tag_descriptions
        .unwrap_or_default()
        .into_iter()
        .find(|d| d.resource_arn.as_deref() == Some(arn))
        .map(|d| {
            d.tags
                .unwrap_or_default()
                .into_iter()
                .map(|t| (t.key.unwrap_or_default(), t.value.unwrap_or_default()))
                .collect()
        }))
}

fn elb_tags(tags: &[(&str, &str)]) -> Vec<Tag> {
    tags.iter()
        .map(|(k, v)| Tag::builder().key(*k).value(*v).build())
        .collect()
}

/// Creates target group `name` with `like`'s protocol, port, VPC, target type and health
/// check settings, tagged `tags`.
pub async fn create_target_group_like(
    ctx: &Context,
    name: &str,
    like: &TargetGroup,
    tags: &[(&str, &str)],
) -> StepResult<TargetGroup> {
    let out = ctx
        .sdk()?
        .elb
        .create_target_group()
        .name(name)
        .set_protocol(like.protocol.clone())
        .set_protocol_version(like.protocol_version.clone())
        .set_port(like.port)
        .set_vpc_id(like.vpc_id.clone())
        .set_target_type(like.target_type.clone())
        .set_ip_address_type(like.ip_address_type.clone())
        .set_health_check_protocol(like.health_check_protocol.clone())
        .set_health_check_port(like.health_check_port.clone())
        .set_health_check_enabled(like.health_check_enabled)
        .set_health_check_path(like.health_check_path.clone())
        .set_health_check_interval_seconds(like.health_check_interval_seconds)
        .set_health_check_timeout_seconds(like.health_check_timeout_seconds)
        .set_healthy_threshold_count(like.healthy_threshold_count)
        .set_unhealthy_threshold_count(like.unhealthy_threshold_count)
        .set_matcher(like.matcher.clone())
        .set_tags(Some(elb_tags(tags)))
        .send()
        .await
        .map_err(|e| StepError::from_sdk("elasticloadbalancing:CreateTargetGroup", e))?;
    out.target_groups
        .unwrap_or_default()
        .into_iter()
        .next()
        .ok_or_else(|| StepError::Internal(format!("CreateTargetGroup {name} answered no group")))
}

/// Deletes a target group (one already gone is fine).
pub async fn delete_target_group(ctx: &Context, arn: &str) -> StepResult<()> {
    // DeleteTargetGroup succeeds for a group that is already gone.
    ctx.sdk()?
        .elb
        .delete_target_group()
        .target_group_arn(arn)
        .send()
        .await
        .map_err(|e| StepError::from_sdk("elasticloadbalancing:DeleteTargetGroup", e))?;
    Ok(())
}

/// Every listener of a load balancer.
pub async fn listeners_of(
    ctx: &Context,
    load_balancer_arn: &str,
) -> StepResult<Vec<aws_sdk_elasticloadbalancingv2::types::Listener>> {
    let out = ctx
        .sdk()?
        .elb
        .describe_listeners()
        .load_balancer_arn(load_balancer_arn)
        .send()
        .await
        .map_err(|e| StepError::from_sdk("elasticloadbalancing:DescribeListeners", e))?;
    Ok(out.listeners.unwrap_or_default())
}

/// A forward of everything to one target group.
pub fn forward_to(target_group_arn: &str) -> Action {
    Action::builder()
        .r#type(aws_sdk_elasticloadbalancingv2::types::ActionTypeEnum::Forward)
        .target_group_arn(target_group_arn)
        .build()
}

/// Creates a listener on `load_balancer_arn`'s `port` like `like` (protocol, certificates,
/// SSL policy), forwarding everything to `target_group_arn`, tagged `tags`.
pub async fn create_listener_like(
    ctx: &Context,
    like: &aws_sdk_elasticloadbalancingv2::types::Listener,
    load_balancer_arn: &str,
    port: i32,
    target_group_arn: &str,
    tags: &[(&str, &str)],
) -> StepResult<aws_sdk_elasticloadbalancingv2::types::Listener> {
    let out = ctx
        .sdk()?
        .elb
        .create_listener()
        .load_balancer_arn(load_balancer_arn)
        .set_protocol(like.protocol.clone())
        .port(port)
        .set_certificates(like.certificates.clone())
        .set_ssl_policy(like.ssl_policy.clone())
        .default_actions(forward_to(target_group_arn))
        .set_tags(Some(elb_tags(tags)))
        .send()
        .await
        .map_err(|e| StepError::from_sdk("elasticloadbalancing:CreateListener", e))?;
    out.listeners
        .unwrap_or_default()
        .into_iter()
        .next()
        .ok_or_else(|| StepError::Internal(format!("CreateListener :{port} answered no listener")))
}

/// Deletes a listener; one already gone is fine.
pub async fn delete_listener(ctx: &Context, arn: &str) -> StepResult<()> {
    match ctx
        .sdk()?
        .elb
        .delete_listener()
        .listener_arn(arn)
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_listener_not_found_exception()) =>
        {
            Ok(())
        }
        Err(e) => Err(StepError::from_sdk(
            "elasticloadbalancing:DeleteListener",
            e,
        )),
    }
}

/// A target group's attributes (deregistration delay, stickiness, slow start, algorithm, …)
/// as `(key, value)`, sorted.
pub async fn target_group_attributes(
    ctx: &Context,
    arn: &str,
) -> StepResult<Vec<(String, String)>> {
    let out = ctx
        .sdk()?
        .elb
        .describe_target_group_attributes()
        .target_group_arn(arn)
        .send()
        .await
        .map_err(|e| {
            StepError::from_sdk("elasticloadbalancing:DescribeTargetGroupAttributes", e)
        })?;
    let mut attributes: Vec<(String, String)> = out
        .attributes
        .unwrap_or_default()
        .into_iter()
        .map(|a| (a.key.unwrap_or_default(), a.value.unwrap_or_default()))
        .collect();
    attributes.sort();
    Ok(attributes)
}

/// Sets a target group's attributes (a set-to-value: idempotent).
pub async fn set_target_group_attributes(
    ctx: &Context,
    arn: &str,
    attributes: &[(String, String)],
) -> StepResult<()> {
    ctx.sdk()?
        .elb
        .modify_target_group_attributes()
        .target_group_arn(arn)
        .set_attributes(Some(
            attributes
                .iter()
                .map(|(k, v)| {
                    aws_sdk_elasticloadbalancingv2::types::TargetGroupAttribute::builder()
                        .key(k)
                        .value(v)
                        .build()
                })
                .collect(),
        ))
        .send()
        .await
        .map_err(|e| StepError::from_sdk("elasticloadbalancing:ModifyTargetGroupAttributes", e))?;
    Ok(())
}

/// Adds tags to ELB resources.
pub async fn add_tags(ctx: &Context, arn: &str, tags: &[(&str, &str)]) -> StepResult<()> {
    ctx.sdk()?
        .elb
        .add_tags()
        .resource_arns(arn)
        .set_tags(Some(elb_tags(tags)))
        .send()
        .await
        .map_err(|e| StepError::from_sdk("elasticloadbalancing:AddTags", e))?;
    Ok(())
}

/// Removes tags from an ELB resource.
pub async fn remove_tags(ctx: &Context, arn: &str, keys: &[&str]) -> StepResult<()> {
    ctx.sdk()?
        .elb
        .remove_tags()
        .resource_arns(arn)
        .set_tag_keys(Some(keys.iter().map(|k| (*k).to_owned()).collect()))
        .send()
        .await
        .map_err(|e| StepError::from_sdk("elasticloadbalancing:RemoveTags", e))?;
    Ok(())
}

/// The DNS name of a load balancer.
pub async fn load_balancer_dns(ctx: &Context, arn: &str) -> StepResult<Option<String>> {
    Ok(load_balancer(ctx, arn).await?.and_then(|lb| lb.dns_name))
}

/// A load balancer, or `None` when there is none with that ARN.
pub async fn load_balancer(
    ctx: &Context,
    arn: &str,
) -> StepResult<Option<aws_sdk_elasticloadbalancingv2::types::LoadBalancer>> {
    load_balancer_where(
        ctx.sdk()?
            .elb
            .describe_load_balancers()
            .load_balancer_arns(arn),
    )
    .await
}

/// The load balancer named `name`, or `None`.
pub async fn load_balancer_named(
    ctx: &Context,
    name: &str,
) -> StepResult<Option<aws_sdk_elasticloadbalancingv2::types::LoadBalancer>> {
    load_balancer_where(ctx.sdk()?.elb.describe_load_balancers().names(name)).await
}

async fn load_balancer_where(
    request: aws_sdk_elasticloadbalancingv2::operation::describe_load_balancers::builders::DescribeLoadBalancersFluentBuilder,
) -> StepResult<Option<aws_sdk_elasticloadbalancingv2::types::LoadBalancer>> {
    match request.send().await {
        Ok(out) => Ok(out.load_balancers.unwrap_or_default().into_iter().next()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_load_balancer_not_found_exception()) =>
        {
            Ok(None)
        }
        Err(e) => Err(StepError::from_sdk(
            "elasticloadbalancing:DescribeLoadBalancers",
            e,
        )),
    }
}

/// Creates load balancer `name` like `like`: type, scheme, subnets (of its availability
/// zones), security groups and IP address type, tagged `tags`.
pub async fn create_load_balancer_like(
    ctx: &Context,
    name: &str,
    like: &aws_sdk_elasticloadbalancingv2::types::LoadBalancer,
    tags: &[(&str, &str)],
) -> StepResult<aws_sdk_elasticloadbalancingv2::types::LoadBalancer> {
    let subnets: Vec<String> = like
        .availability_zones()
        .iter()
        .filter_map(|z| z.subnet_id.clone())
        .collect();
    let out = ctx
        .sdk()?
        .elb
        .create_load_balancer()
        .name(name)
        .set_type(like.r#type.clone())
        .set_scheme(like.scheme.clone())
        .set_subnets(Some(subnets))
        .set_security_groups(Some(like.security_groups().to_vec()).filter(|g| !g.is_empty()))
        .set_ip_address_type(like.ip_address_type.clone())
        .set_tags(Some(elb_tags(tags)))
        .send()
        .await
        .map_err(|e| StepError::from_sdk("elasticloadbalancing:CreateLoadBalancer", e))?;
    out.load_balancers
        .unwrap_or_default()
        .into_iter()
        .next()
        .ok_or_else(|| StepError::Internal(format!("CreateLoadBalancer {name} answered none")))
}

/// Deletes a load balancer (one already gone is fine).
pub async fn delete_load_balancer(ctx: &Context, arn: &str) -> StepResult<()> {
    match ctx
        .sdk()?
        .elb
        .delete_load_balancer()
        .load_balancer_arn(arn)
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_load_balancer_not_found_exception()) =>
        {
            Ok(())
        }
        Err(e) => Err(StepError::from_sdk(
            "elasticloadbalancing:DeleteLoadBalancer",
            e,
        )),
    }
}
