//! The ports ([`crate::ports`]) implemented with the AWS SDK for Rust: what runs in Lambda, in
//! the CLI against an account, and in the emulator tests. Each adapter maps AWS's errors to
//! [`crate::StepError`]s that name the missing resource, and AWS's shapes to the ports' plain
//! values.

mod alarms;
pub mod compute;
mod databases;
pub mod dns;
mod identity;
pub mod load_balancing;
mod notifications;
mod parameters;
mod registry;
mod scaling;
mod secrets;
mod service_deployments;
mod smoke;
mod tables;
mod workflow;

use std::sync::Arc;

use crate::ports::Ports;

/// The SDK clients, built once from one SDK config. Set-up and diagnosis commands (`adopt`,
/// `doctor`, `install`) use them directly; everything else goes through [`Ports`].
#[derive(Clone, Debug)]
pub struct Sdk {
    /// ECS.
    pub ecs: aws_sdk_ecs::Client,
    /// Elastic Load Balancing v2.
    pub elb: aws_sdk_elasticloadbalancingv2::Client,
    /// Route 53.
    pub route53: aws_sdk_route53::Client,
    /// DynamoDB.
    pub dynamodb: aws_sdk_dynamodb::Client,
    /// SSM Parameter Store.
    pub ssm: aws_sdk_ssm::Client,
    /// SNS.
    pub sns: aws_sdk_sns::Client,
    /// CloudWatch.
    pub cloudwatch: aws_sdk_cloudwatch::Client,
    /// RDS.
    pub rds: aws_sdk_rds::Client,
    /// Step Functions.
    pub sfn: aws_sdk_sfn::Client,
    /// STS.
    pub sts: aws_sdk_sts::Client,
    /// Secrets Manager.
    pub secrets: aws_sdk_secretsmanager::Client,
    /// Application Auto Scaling.
    pub autoscaling: aws_sdk_applicationautoscaling::Client,
    /// ECR.
    pub ecr: aws_sdk_ecr::Client,
}

impl Sdk {
    /// Every client from one SDK config.
    pub fn new(config: &aws_types::SdkConfig) -> Self {
        Sdk {
            ecs: aws_sdk_ecs::Client::new(config),
            elb: aws_sdk_elasticloadbalancingv2::Client::new(config),
            route53: aws_sdk_route53::Client::new(config),
            dynamodb: aws_sdk_dynamodb::Client::new(config),
            ssm: aws_sdk_ssm::Client::new(config),
            sns: aws_sdk_sns::Client::new(config),
            cloudwatch: aws_sdk_cloudwatch::Client::new(config),
            rds: aws_sdk_rds::Client::new(config),
            sfn: aws_sdk_sfn::Client::new(config),
            sts: aws_sdk_sts::Client::new(config),
            secrets: aws_sdk_secretsmanager::Client::new(config),
            autoscaling: aws_sdk_applicationautoscaling::Client::new(config),
            ecr: aws_sdk_ecr::Client::new(config),
        }
    }

    /// Every port, over these clients.
    pub fn ports(&self) -> Ports {
        Ports {
            compute: Arc::new(compute::Ecs(self.ecs.clone())),
            service_deployments: Arc::new(compute::Ecs(self.ecs.clone())),
            load_balancing: Arc::new(load_balancing::Elb(self.elb.clone())),
            dns: Arc::new(dns::Route53(self.route53.clone())),
            databases: Arc::new(databases::Rds(self.rds.clone())),
            tables: Arc::new(tables::DynamoDb(self.dynamodb.clone())),
            parameters: Arc::new(parameters::Ssm(self.ssm.clone())),
            workflow: Arc::new(workflow::StepFunctions(self.sfn.clone())),
            notifications: Arc::new(notifications::Sns::new(self.sns.clone())),
            alarms: Arc::new(alarms::CloudWatch(self.cloudwatch.clone())),
            identity: Arc::new(identity::Sts(self.sts.clone())),
            secrets: Arc::new(secrets::SecretsManager(self.secrets.clone())),
            smoke: Arc::new(smoke::Reqwest::default()),
            scaling: Arc::new(scaling::ApplicationAutoScaling(self.autoscaling.clone())),
            registry: Arc::new(registry::Ecr(self.ecr.clone())),
        }
    }
}
