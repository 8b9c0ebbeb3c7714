//! `local up --example`: the shape most teams have, for the first-hour walk to adopt — one ECS
//! service (`shop-cluster/shop-blue`, two tasks of `shop/web:v1`) behind an ALB's port-80
//! listener, in the emulator's default VPC. Nothing of bluegreen's (no tables, no config):
//! `init --local` and `adopt` make those, as they would in an account.

use aws_sdk_ecs::types::{
    AssignPublicIp, AwsVpcConfiguration, Compatibility, ContainerDefinition, LaunchType,
    LoadBalancer, NetworkConfiguration, NetworkMode, PortMapping,
};
use aws_sdk_elasticloadbalancingv2::types::{Action, ActionTypeEnum, ProtocolEnum, TargetTypeEnum};
use bluegreen::context::Context;
use bluegreen::error::{StepError, StepResult};
use serde_json::json;

use super::player::Control;

/// The example's cluster.
pub const CLUSTER: &str = "shop-cluster";
/// The example's service (it becomes the blue slot).
pub const SERVICE: &str = "shop-blue";
/// The ECR repository whose pushes deploy it.
pub const REPOSITORY: &str = "shop/web";

/// Creates the example in the emulator (once: a second `local up --example` finds it there).
pub async fn create(ctx: &Context, control: &Control) -> StepResult<()> {
    let aws = ctx.sdk()?;
    let existing = aws
        .ecs
        .describe_services()
        .cluster(CLUSTER)
        .services(SERVICE)
        .send()
        .await
        .ok()
        .and_then(|o| o.services)
        .unwrap_or_default();
    if existing
        .iter()
        .any(|s| s.status.as_deref() == Some("ACTIVE"))
    {
        return Ok(());
    }
    let network = control
        .call("GET", "/_bluegreen/network", json!({}))
        .await?;
    let text = |key: &str| network[key].as_str().unwrap_or_default().to_owned();
    let subnets: Vec<String> = network["subnet_ids"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let (vpc, group) = (text("vpc_id"), text("security_group_id"));
    let target_group = load_balancer(ctx, &subnets, &group, &vpc).await?;
    service(ctx, &subnets, &group, &target_group).await
}

/// The ALB, the service's target group (health check `/health`) and the port-80 listener
/// forwarding to it; the group's ARN.
async fn load_balancer(
    ctx: &Context,
    subnets: &[String],
    group: &str,
    vpc: &str,
) -> StepResult<String> {
    let elb = &ctx.sdk()?.elb;
    let balancer = elb
        .create_load_balancer()
        .name("shop-alb")
        .set_subnets(Some(subnets.to_vec()))
        .security_groups(group)
        .send()
        .await
        .map_err(|e| StepError::from_sdk("elasticloadbalancing:CreateLoadBalancer", e))?;
    let balancer_arn = balancer.load_balancers()[0]
        .load_balancer_arn
        .clone()
        .unwrap_or_default();
    let target_group = elb
        .create_target_group()
        .name(SERVICE)
        .protocol(ProtocolEnum::Http)
        .port(8080)
        .vpc_id(vpc)
        .target_type(TargetTypeEnum::Ip)
        .health_check_path("/health")
        .send()
        .await
        .map_err(|e| StepError::from_sdk("elasticloadbalancing:CreateTargetGroup", e))?;
    let target_group_arn = target_group.target_groups()[0]
        .target_group_arn
        .clone()
        .unwrap_or_default();
    let forward = Action::builder()
        .r#type(ActionTypeEnum::Forward)
        .target_group_arn(&target_group_arn)
        .build();
    elb.create_listener()
        .load_balancer_arn(balancer_arn)
        .protocol(ProtocolEnum::Http)
        .port(80)
        .default_actions(forward)
        .send()
        .await
        .map_err(|e| StepError::from_sdk("elasticloadbalancing:CreateListener", e))?;
    Ok(target_group_arn)
}

/// The cluster, the task definition (`web`, an image of [`REPOSITORY`], port 8080) and the
/// service with two tasks behind `target_group`.
async fn service(
    ctx: &Context,
    subnets: &[String],
    group: &str,
    target_group: &str,
) -> StepResult<()> {
    let ecs = &ctx.sdk()?.ecs;
    ecs.create_cluster()
        .cluster_name(CLUSTER)
        .send()
        .await
        .map_err(|e| StepError::from_sdk("ecs:CreateCluster", e))?;
    let account = ctx.settings.account_id.as_deref().unwrap_or("123456789012");
    let container = ContainerDefinition::builder()
        .name("web")
        .image(format!(
            "{account}.dkr.ecr.us-east-1.amazonaws.com/{REPOSITORY}:v1"
        ))
        .memory(512)
        .essential(true)
        .port_mappings(PortMapping::builder().container_port(8080).build())
        .build();
    let definition = ecs
        .register_task_definition()
        .family("shop")
        .network_mode(NetworkMode::Awsvpc)
        .requires_compatibilities(Compatibility::Fargate)
        .cpu("256")
        .memory("512")
        .container_definitions(container)
        .send()
        .await
        .map_err(|e| StepError::from_sdk("ecs:RegisterTaskDefinition", e))?;
    let arn = definition
        .task_definition
        .and_then(|t| t.task_definition_arn)
        .unwrap_or_default();
    let network = AwsVpcConfiguration::builder()
        .set_subnets(Some(subnets.to_vec()))
        .security_groups(group)
        .assign_public_ip(AssignPublicIp::Disabled)
        .build()
        .map_err(|e| StepError::Internal(e.to_string()))?;
    ecs.create_service()
        .cluster(CLUSTER)
        .service_name(SERVICE)
        .task_definition(arn)
        .desired_count(2)
        .launch_type(LaunchType::Fargate)
        .network_configuration(
            NetworkConfiguration::builder()
                .awsvpc_configuration(network)
                .build(),
        )
        .load_balancers(
            LoadBalancer::builder()
                .target_group_arn(target_group)
                .container_name("web")
                .container_port(8080)
                .build(),
        )
        .send()
        .await
        .map_err(|e| StepError::from_sdk("ecs:CreateService", e))?;
    Ok(())
}
