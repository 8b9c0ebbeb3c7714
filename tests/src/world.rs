//! A realistic AWS world in the emulator: default-VPC subnets and security group, an ALB with
//! production and test listeners, blue and green target groups, an ECS cluster with blue and
//! green services, a Route 53 zone with weighted records, an RDS instance with a snapshot, the
//! DynamoDB tables, an SNS topic, an alarm — and the service config in SSM.

use std::sync::{Arc, Mutex};

use aws_sdk_ecs::types::{
    AssignPublicIp, AwsVpcConfiguration, Compatibility, ContainerDefinition, KeyValuePair,
    LaunchType, LoadBalancer, LogConfiguration, LogDriver, NetworkConfiguration, NetworkMode,
    PortMapping,
};
use aws_sdk_elasticloadbalancingv2::types::{
    Action, ActionTypeEnum, FixedResponseActionConfig, ForwardActionConfig,
    HostHeaderConditionConfig, ProtocolEnum, RuleCondition, TargetDescription, TargetGroupTuple,
    TargetTypeEnum,
};
use bluegreen::config::{
    Approval, ApprovalPolicy, Bake, Database, DbStrategy, Finish, Health, ImageSource, Migration,
    Preprod, ServiceConfig, SlotConfig, Slots, SmokeCheck, Traffic,
};
use bluegreen::config_store::ConfigStore;
use bluegreen::routing::{self, RouteState};
use bluegreen::{Context, Settings, Slot};
use chrono::{DateTime, Utc};
use serde_json::json;

use crate::{Emulator, SmokeApp};

/// The Secrets Manager secret holding the approval-link signing key.
pub const LINK_SECRET: &str = "bluegreen/link-signing-key";

/// Who moto's STS says the caller is (the CLI's and the local console's identity in tests).
pub const MOTO_CALLER: &str = "arn:aws:sts::123456789012:user/moto";

/// The account moto uses.
pub const ACCOUNT: &str = "123456789012";
/// The deployment state machine's ARN in the world's settings. The machine itself exists only
/// once a test creates it ([`World::create_deployment_machine`]); until then every execution
/// looks absent, as after a failed hand-over.
pub const DEPLOYMENT_MACHINE_ARN: &str =
    "arn:aws:states:us-east-1:123456789012:stateMachine:bluegreen-deployment";
/// The cluster of the demo service.
pub const CLUSTER: &str = "shop-cluster";
/// The repository the demo service watches.
pub const REPOSITORY: &str = "shop/web";

/// Everything a test needs: the emulator, a context for the steps, and the world's ids.
pub struct World {
    /// The emulator (stopped on drop).
    pub emulator: Emulator,
    /// The context steps run with; its clock can be moved with [`World::advance`].
    pub ctx: Context,
    /// The SDK config pointing at the emulator (for tests that build their own clients).
    pub sdk: aws_config::SdkConfig,
    /// SDK clients on the emulator: how tests arrange and inspect AWS state directly.
    pub aws: bluegreen::aws::Sdk,
    /// Pre-prod's HTTP stand-in behind the test listener.
    pub smoke: SmokeApp,
    /// Subnets of the default VPC.
    pub subnets: Vec<String>,
    /// The default security group.
    pub security_group: String,
    /// Production listener.
    pub production_listener: String,
    /// Test listener.
    pub test_listener: String,
    /// Blue target group.
    pub tg_blue: String,
    /// Green target group.
    pub tg_green: String,
    /// Route 53 zone id.
    pub zone_id: String,
    /// SNS topic.
    pub topic_arn: String,
    offset: Arc<Mutex<chrono::Duration>>,
}

/// A `RegisterTaskDefinition` of the `shop` family as the world's IaC writes it (Fargate,
/// awsvpc, 256/512, the execution role), its containers still to add.
fn shop_revision(
    ecs: &aws_sdk_ecs::Client,
) -> aws_sdk_ecs::operation::register_task_definition::builders::RegisterTaskDefinitionFluentBuilder
{
    ecs.register_task_definition()
        .family("shop")
        .network_mode(NetworkMode::Awsvpc)
        .requires_compatibilities(Compatibility::Fargate)
        .cpu("256")
        .memory("512")
        .execution_role_arn(format!("arn:aws:iam::{ACCOUNT}:role/shop-execution"))
}

/// The settings every test world runs with (no topic until [`World::with_topic`]).
pub fn standard_settings() -> Settings {
    Settings {
        config_prefix: "/bluegreen/services/".into(),
        deployments_table: "bluegreen-deployments".into(),
        locks_table: "bluegreen-locks".into(),
        services_table: "bluegreen-services".into(),
        topic_arn: None,
        console_url: Some("https://console.example.com".into()),
        link_secret_id: Some(LINK_SECRET.into()),
        webhook_url: None,
        deployment_machine_arn: Some(DEPLOYMENT_MACHINE_ARN.into()),
        account_id: Some(ACCOUNT.into()),
        auto_approve: Default::default(),
        // Tests call a check to see one answer; the simulator and the lead-time benchmark
        // choose the pacing themselves.
        pacing: bluegreen::looks::Pacing::Once,
        wake_on_events: true,
        ecs_hook_arn: None,
    }
}

/// The identifiers of a world's resources: the emulator assigns them; the in-memory world
/// (`crate::memory::world`) makes them up in the same shapes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    /// Blue target group ARN.
    pub tg_blue: String,
    /// Green target group ARN.
    pub tg_green: String,
    /// Production listener ARN.
    pub production_listener: String,
    /// Test listener ARN.
    pub test_listener: String,
    /// Route 53 zone id.
    pub zone_id: String,
    /// SNS topic ARN.
    pub topic_arn: String,
    /// Pre-prod's test URL.
    pub test_url: String,
}

/// The demo service's config (listener mode, approval required, migration, shared DB) over
/// `names`.
pub fn service_config(names: &Names) -> ServiceConfig {
    let slot = |s: Slot, tg: &str| SlotConfig {
        service: format!("shop-{s}"),
        target_group_arn: tg.to_owned(),
        test_url: None,
        set_identifier: Some(s.as_str().into()),
        record_value: Some(format!("shop-{s}-alb.example.com")),
    };
    ServiceConfig {
        name: "shop".into(),
        source: ImageSource {
            repository: REPOSITORY.into(),
            tags: vec!["v*".into(), "release-*".into()],
            registry: None,
            pull_from: Default::default(),
        },
        cluster: CLUSTER.into(),
        container: "web".into(),
        containers: Vec::new(),
        image_env: Vec::new(),
        task_definition: Default::default(),
        slots: Slots {
            blue: slot(Slot::Blue, &names.tg_blue),
            green: slot(Slot::Green, &names.tg_green),
        },
        traffic: Traffic::Listener {
            production_listener_arn: names.production_listener.clone(),
            test_listener_arn: Some(names.test_listener.clone()),
            test_rule: None,
            production_rule_arn: None,
            shift: None,
            routes: Default::default(),
            engine: Default::default(),
        },
        preprod: Preprod::default(),
        database: Database {
            strategy: DbStrategy::Shared,
            ..Database::default()
        },
        migration: Some(Migration {
            command: vec!["bin/migrate".into(), "up".into()],
            timeout_seconds: 600,
            rollback_command: None,
            run: None,
            maintenance: false,
            capacity: Default::default(),
        }),
        health: Health {
            test_url: Some(names.test_url.clone()),
            smoke: vec![SmokeCheck {
                body_contains: Some("ok".into()),
                ..SmokeCheck::get("/health")
            }],
            consecutive_passes: 2,
            request_timeout_ms: 2000,
            timeout_seconds: 300,
        },
        approval: Approval {
            policy: ApprovalPolicy::Required,
            approvers: vec![
                "alice@example.com".into(),
                "bob@example.com".into(),
                MOTO_CALLER.into(),
            ],
            timeout_seconds: 3600,
        },
        bake: Bake {
            seconds: 60,
            alarms: vec!["shop-5xx".into()],
        },
        finish: Finish::default(),
        guard: Default::default(),
        operators: Vec::new(),
    }
}

/// An EventBridge `ECR Image Action` push event, shaped as AWS documents it.
pub fn push_event(
    tag: &str,
    digest_hex_char: char,
    event_id: &str,
    time: &str,
) -> serde_json::Value {
    json!({
        "version": "0",
        "id": event_id,
        "detail-type": "ECR Image Action",
        "source": "aws.ecr",
        "account": ACCOUNT,
        "time": time,
        "region": "us-east-1",
        "resources": [],
        "detail": {
            "result": "SUCCESS",
            "repository-name": REPOSITORY,
            "image-digest": format!("sha256:{}", digest_hex_char.to_string().repeat(64)),
            "action-type": "PUSH",
            "image-tag": tag
        }
    })
}

/// A target group `name` in `vpc`: HTTP on 8080, IP targets, health checked on `/health`.
async fn create_target_group(aws: &bluegreen::aws::Sdk, name: &str, vpc: &str) -> String {
    aws.elb
        .create_target_group()
        .name(name)
        .protocol(ProtocolEnum::Http)
        .port(8080)
        .vpc_id(vpc)
        .target_type(TargetTypeEnum::Ip)
        .health_check_path("/health")
        .send()
        .await
        .expect("create target group")
        .target_groups
        .unwrap()
        .remove(0)
        .target_group_arn
        .unwrap()
}

impl World {
    /// Starts an emulator and builds the world in it (blue live with 2 tasks, green at 0).
    pub async fn build() -> World {
        let emulator = Emulator::start().await;
        let sdk = emulator.sdk_config().await;
        let settings = standard_settings();
        let offset = Arc::new(Mutex::new(chrono::Duration::zero()));
        let clock_offset = offset.clone();
        let ctx = Context::new(&sdk, settings).with_clock(Arc::new(move || {
            Utc::now() + *clock_offset.lock().expect("clock lock")
        }));
        let aws = ctx.sdk().expect("SDK clients on the emulator").clone();
        let network = emulator
            .control("GET", "/_bluegreen/network", json!({}))
            .await;
        let subnets: Vec<String> = network["subnet_ids"]
            .as_array()
            .expect("subnets")
            .iter()
            .map(|s| s.as_str().expect("subnet id").to_owned())
            .collect();
        let security_group = network["security_group_id"]
            .as_str()
            .expect("sg")
            .to_owned();
        let vpc = network["vpc_id"].as_str().expect("vpc").to_owned();

        let lb = aws
            .elb
            .create_load_balancer()
            .name("shop-alb")
            .set_subnets(Some(subnets.clone()))
            .security_groups(&security_group)
            .send()
            .await
            .expect("create ALB")
            .load_balancers
            .unwrap()
            .remove(0)
            .load_balancer_arn
            .unwrap();
        let mut tgs = Vec::new();
        for name in ["shop-blue", "shop-green"] {
            tgs.push(create_target_group(&aws, name, &vpc).await);
        }
        let listener = |port: i32, tg: String| {
            let aws = aws.clone();
            let lb = lb.clone();
            async move {
                aws.elb
                    .create_listener()
                    .load_balancer_arn(lb)
                    .protocol(ProtocolEnum::Http)
                    .port(port)
                    .default_actions(
                        Action::builder()
                            .r#type(ActionTypeEnum::Forward)
                            .target_group_arn(tg)
                            .build(),
                    )
                    // As docs/deploy.md asks: bluegreen's roles modify only tagged listeners.
                    .tags(
                        aws_sdk_elasticloadbalancingv2::types::Tag::builder()
                            .key("bluegreen:managed")
                            .value("true")
                            .build(),
                    )
                    .send()
                    .await
                    .expect("create listener")
                    .listeners
                    .unwrap()
                    .remove(0)
                    .listener_arn
                    .unwrap()
            }
        };
        let production_listener = listener(80, tgs[0].clone()).await;
        let test_listener = listener(8443, tgs[1].clone()).await;

        let smoke = SmokeApp::start().await;
        let world_topic = aws
            .sns
            .create_topic()
            .name("bluegreen")
            .send()
            .await
            .expect("create topic")
            .topic_arn
            .unwrap();
        let zone_id = aws
            .route53
            .create_hosted_zone()
            .name("example.com")
            .caller_reference("bluegreen-tests")
            .send()
            .await
            .expect("create zone")
            .hosted_zone
            .unwrap()
            .id
            .trim_start_matches("/hostedzone/")
            .to_owned();

        let world = World {
            emulator,
            ctx,
            sdk,
            aws,
            smoke,
            subnets,
            security_group,
            production_listener,
            test_listener,
            tg_blue: tgs[0].clone(),
            tg_green: tgs[1].clone(),
            zone_id,
            topic_arn: world_topic,
            offset,
        };
        world.create_tables().await;
        world.create_ecs().await;
        world.create_records().await;
        world.create_database().await;
        world
            .aws
            .cloudwatch
            .put_metric_alarm()
            .alarm_name("shop-5xx")
            .namespace("AWS/ApplicationELB")
            .metric_name("HTTPCode_Target_5XX_Count")
            .statistic(aws_sdk_cloudwatch::types::Statistic::Sum)
            .period(60)
            .evaluation_periods(1)
            .threshold(1.0)
            .comparison_operator(
                aws_sdk_cloudwatch::types::ComparisonOperator::GreaterThanOrEqualToThreshold,
            )
            .send()
            .await
            .expect("create alarm");
        world
            .aws
            .secrets
            .create_secret()
            .name(LINK_SECRET)
            .secret_string("k3y-for-tests-only-0123456789abcdefghijklmnop")
            .send()
            .await
            .expect("create the link signing secret");
        world.put_config(&world.config()).await;
        world
    }

    /// A context whose settings publish to the world's topic.
    pub fn with_topic(mut self) -> World {
        self.ctx.settings.topic_arn = Some(self.topic_arn.clone());
        self
    }

    async fn create_tables(&self) {
        for table in bluegreen::tables::TABLES {
            bluegreen::tables::create(&self.ctx, table)
                .await
                .expect("create table");
        }
    }

    async fn create_ecs(&self) {
        let ecs = &self.aws.ecs;
        ecs.create_cluster()
            .cluster_name(CLUSTER)
            .send()
            .await
            .expect("create cluster");
        let container = ContainerDefinition::builder()
            .name("web")
            .image(format!(
                "{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/{REPOSITORY}:v1"
            ))
            .memory(512)
            .essential(true)
            .port_mappings(PortMapping::builder().container_port(8080).build())
            .environment(
                KeyValuePair::builder()
                    .name("DATABASE_HOST")
                    .value("shop-db.prod.internal")
                    .build(),
            )
            .log_configuration(
                LogConfiguration::builder()
                    .log_driver(LogDriver::Awslogs)
                    .options("awslogs-group", "/ecs/shop")
                    .options("awslogs-stream-prefix", "shop")
                    .options("awslogs-region", "us-east-1")
                    .build()
                    .unwrap(),
            )
            .build();
        let td = shop_revision(ecs)
            .container_definitions(container)
            .send()
            .await
            .expect("register task definition")
            .task_definition
            .unwrap()
            .task_definition_arn
            .unwrap();
        for (slot, tg, count) in [
            (Slot::Blue, &self.tg_blue, 2),
            (Slot::Green, &self.tg_green, 0),
        ] {
            ecs.create_service()
                .cluster(CLUSTER)
                .service_name(format!("shop-{slot}"))
                .task_definition(&td)
                .desired_count(count)
                .launch_type(LaunchType::Fargate)
                .tags(
                    aws_sdk_ecs::types::Tag::builder()
                        .key("bluegreen:managed")
                        .value("true")
                        .build(),
                )
                .load_balancers(
                    LoadBalancer::builder()
                        .target_group_arn(tg)
                        .container_name("web")
                        .container_port(8080)
                        .build(),
                )
                .network_configuration(
                    NetworkConfiguration::builder()
                        .awsvpc_configuration(
                            AwsVpcConfiguration::builder()
                                .set_subnets(Some(self.subnets.clone()))
                                .security_groups(&self.security_group)
                                .assign_public_ip(AssignPublicIp::Disabled)
                                .build()
                                .unwrap(),
                        )
                        .build(),
                )
                .send()
                .await
                .expect("create service");
        }
        self.settle(Slot::Blue, "COMPLETED").await;
        self.register_targets(Slot::Blue, 2).await;
    }

    async fn create_records(&self) {
        use aws_sdk_route53::types::{
            Change, ChangeAction, ChangeBatch, ResourceRecord, ResourceRecordSet, RrType,
        };
        let mut batch = ChangeBatch::builder();
        for (slot, weight) in [(Slot::Blue, 100), (Slot::Green, 0)] {
            batch = batch.changes(
                Change::builder()
                    .action(ChangeAction::Create)
                    .resource_record_set(
                        ResourceRecordSet::builder()
                            .name("shop.example.com.")
                            .r#type(RrType::Cname)
                            .set_identifier(slot.as_str())
                            .weight(weight)
                            .ttl(300)
                            .resource_records(
                                ResourceRecord::builder()
                                    .value(format!("shop-{slot}-alb.example.com"))
                                    .build()
                                    .unwrap(),
                            )
                            .build()
                            .unwrap(),
                    )
                    .build()
                    .unwrap(),
            );
        }
        self.aws
            .route53
            .change_resource_record_sets()
            .hosted_zone_id(&self.zone_id)
            .change_batch(batch.build().unwrap())
            .send()
            .await
            .expect("create records");
    }

    async fn create_database(&self) {
        self.aws
            .rds
            .create_db_instance()
            .db_instance_identifier("shop-db")
            .db_instance_class("db.t3.micro")
            .engine("postgres")
            .master_username("shop")
            .master_user_password("not-a-secret-1")
            .allocated_storage(20)
            .send()
            .await
            .expect("create DB instance");
        self.aws
            .rds
            .create_db_snapshot()
            .db_instance_identifier("shop-db")
            .db_snapshot_identifier("shop-db-nightly")
            .send()
            .await
            .expect("create snapshot");
    }

    /// The demo service's config (listener mode, approval required, migration, shared DB).
    pub fn config(&self) -> ServiceConfig {
        service_config(&self.names())
    }

    /// The identifiers the emulator gave this world's resources.
    pub fn names(&self) -> Names {
        Names {
            tg_blue: self.tg_blue.clone(),
            tg_green: self.tg_green.clone(),
            production_listener: self.production_listener.clone(),
            test_listener: self.test_listener.clone(),
            zone_id: self.zone_id.clone(),
            topic_arn: self.topic_arn.clone(),
            test_url: self.smoke.url.clone(),
        }
    }

    /// The config in DNS mode (weighted CNAMEs under shop.example.com).
    pub fn dns_config(&self) -> ServiceConfig {
        let mut config = self.config();
        config.traffic = Traffic::Dns {
            hosted_zone_id: self.zone_id.clone(),
            record_name: "shop.example.com.".into(),
            ttl_seconds: 300,
            switch_ttl_seconds: 30,
        };
        config
    }

    /// Stores a config in SSM (validated first).
    pub async fn put_config(&self, config: &ServiceConfig) {
        ConfigStore::new(&self.ctx)
            .put(config)
            .await
            .expect("config stored");
    }

    /// The ARN of a slot's ECS service.
    pub async fn service_arn(&self, slot: Slot) -> String {
        bluegreen::ecs::describe_service(&self.ctx, CLUSTER, &format!("shop-{slot}"))
            .await
            .expect("slot service")
            .arn
    }

    /// Another target group in the world's VPC (HTTP on 8080, IP targets).
    pub async fn create_target_group(&self, name: &str) -> String {
        let vpc = self
            .aws
            .elb
            .describe_target_groups()
            .target_group_arns(&self.tg_blue)
            .send()
            .await
            .expect("describe target group")
            .target_groups
            .unwrap()
            .remove(0)
            .vpc_id
            .unwrap();
        create_target_group(&self.aws, name, &vpc).await
    }

    /// Makes the test listener forward to `target_group` (as a person might by hand).
    pub async fn point_test_listener_at(&self, target_group: &str) {
        self.aws
            .elb
            .modify_listener()
            .listener_arn(&self.test_listener)
            .default_actions(
                Action::builder()
                    .r#type(ActionTypeEnum::Forward)
                    .target_group_arn(target_group)
                    .build(),
            )
            .send()
            .await
            .expect("modify the test listener");
    }

    /// Pushes an image to the emulator's ECR repository [`REPOSITORY`] (created on the first
    /// push) with `tag`, and returns its digest. `content` tells images apart: the same
    /// content under another tag is the same image (ECR moves or adds the tag). No event is
    /// sent: tests deliver (or drop) it themselves.
    pub async fn push_image(&self, tag: &str, content: &str) -> String {
        let ecr = &self.aws.ecr;
        if let Err(e) = ecr
            .create_repository()
            .repository_name(REPOSITORY)
            .send()
            .await
        {
            let exists = e
                .as_service_error()
                .is_some_and(|s| s.is_repository_already_exists_exception());
            assert!(exists, "create the repository: {e:?}");
        }
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {
                "mediaType": "application/vnd.docker.container.image.v1+json",
                "size": 7023,
                "digest": format!("sha256:{}", sha256_hex(content)),
            },
            // moto derives the image digest from the layers' digests.
            "layers": [{
                "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                "size": 32654,
                "digest": format!("sha256:{}", sha256_hex(content)),
            }],
        });
        let out = ecr
            .put_image()
            .repository_name(REPOSITORY)
            .image_manifest(manifest.to_string())
            .image_tag(tag)
            .send()
            .await
            .expect("put the image");
        out.image
            .and_then(|i| i.image_id)
            .and_then(|id| id.image_digest)
            .expect("ECR names the pushed digest")
    }

    /// Moves the context's clock forward.
    pub fn advance(&self, by: chrono::Duration) {
        *self.offset.lock().expect("clock lock") += by;
    }

    /// The context's current time.
    pub fn now(&self) -> DateTime<Utc> {
        self.ctx.now()
    }

    /// Production routing as AWS reports it.
    pub async fn production(&self) -> RouteState {
        routing::read_production(&self.ctx, &self.config())
            .await
            .expect("read production")
    }

    /// Production routing in DNS mode.
    pub async fn production_dns(&self) -> RouteState {
        routing::read_production(&self.ctx, &self.dns_config())
            .await
            .expect("read records")
    }

    /// Which slot the test listener forwards to.
    pub async fn test_slot(&self) -> Option<Slot> {
        routing::read_test(&self.ctx, &self.config())
            .await
            .expect("read test listener")
    }

    /// A slot's ECS service: (task definition, desired count, tags).
    pub async fn service(&self, slot: Slot) -> (String, i32, Vec<(String, String)>) {
        let s = bluegreen::ecs::describe_service(&self.ctx, CLUSTER, &format!("shop-{slot}"))
            .await
            .expect("service");
        let tags = self.ctx.ports.compute.tags_of(&s.arn).await.expect("tags");
        (s.task_definition.unwrap_or_default(), s.desired_count, tags)
    }

    /// Registers a revision of the `shop` family whose `web` container has exactly `environment`
    /// and `secrets` (`(name, valueFrom)`), as the app's own IaC would, and points the live
    /// (blue) slot at it. Returns its ARN.
    pub async fn live_revision_with(
        &self,
        environment: &[(&str, &str)],
        secrets: &[(&str, &str)],
    ) -> String {
        let mut container = ContainerDefinition::builder()
            .name("web")
            .image(format!(
                "{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/{REPOSITORY}:v1"
            ))
            .memory(512)
            .essential(true)
            .port_mappings(PortMapping::builder().container_port(8080).build());
        for (name, value) in environment {
            container =
                container.environment(KeyValuePair::builder().name(*name).value(*value).build());
        }
        for (name, from) in secrets {
            container = container.secrets(
                aws_sdk_ecs::types::Secret::builder()
                    .name(*name)
                    .value_from(*from)
                    .build()
                    .expect("secret"),
            );
        }
        self.live_revision_of(vec![container.build()]).await
    }

    /// Registers a revision of the `shop` family with exactly `containers` (a proxy in front
    /// of the app, agents, a worker on the app's image — as real task definitions are) and
    /// points the live (blue) slot at it. Returns its ARN.
    pub async fn live_revision_of(&self, containers: Vec<ContainerDefinition>) -> String {
        let td = shop_revision(&self.aws.ecs)
            .set_container_definitions(Some(containers))
            .send()
            .await
            .expect("register task definition")
            .task_definition
            .unwrap()
            .task_definition_arn
            .unwrap();
        self.set_task_definition(Slot::Blue, &td).await;
        td
    }

    /// Moves a slot's ECS service onto `strategy` (`(provider, base, weight)`), as a team
    /// weighting its service to Fargate Spot would.
    pub async fn capacity_strategy(&self, slot: Slot, strategy: &[(&str, i32, i32)]) {
        let mut update = self
            .aws
            .ecs
            .update_service()
            .cluster(CLUSTER)
            .service(format!("shop-{slot}"))
            .force_new_deployment(true);
        for (provider, base, weight) in strategy {
            update = update.capacity_provider_strategy(
                aws_sdk_ecs::types::CapacityProviderStrategyItem::builder()
                    .capacity_provider(*provider)
                    .base(*base)
                    .weight(*weight)
                    .build()
                    .expect("strategy item"),
            );
        }
        update.send().await.expect("update service");
    }

    /// The capacity provider ECS says a task runs on.
    pub async fn capacity_provider_of(&self, task_arn: &str) -> Option<String> {
        self.aws
            .ecs
            .describe_tasks()
            .cluster(CLUSTER)
            .tasks(task_arn)
            .send()
            .await
            .expect("describe tasks")
            .tasks
            .unwrap_or_default()
            .pop()
            .and_then(|t| t.capacity_provider_name)
    }

    /// Points a slot's ECS service at another task definition (an operator's hand edit).
    pub async fn set_task_definition(&self, slot: Slot, task_definition: &str) {
        self.aws
            .ecs
            .update_service()
            .cluster(CLUSTER)
            .service(format!("shop-{slot}"))
            .task_definition(task_definition)
            .send()
            .await
            .expect("update service");
    }

    /// Sets a slot's desired count, as Application Auto Scaling or a person would (moto runs
    /// that many tasks at once).
    pub async fn scale(&self, slot: Slot, count: i32) {
        self.aws
            .ecs
            .update_service()
            .cluster(CLUSTER)
            .service(format!("shop-{slot}"))
            .desired_count(count)
            .send()
            .await
            .expect("update service");
    }

    /// Production autoscales, as a team's IaC sets it up: `slot` gets a scalable target of
    /// `min..max` and a target tracking policy on requests per target of its own target group
    /// (behind the production listener's load balancer), registered through the SDK.
    pub async fn autoscale(&self, slot: Slot, min: i32, max: i32) {
        use bluegreen::ports::scaling::{
            PolicyKind, ScalableTarget, ScalingPolicy, Suspended, TrackedMetric,
        };
        let resource = bluegreen::autoscaling::resource_id(CLUSTER, &format!("shop-{slot}"));
        let scaling = &self.ctx.ports.scaling;
        let target = ScalableTarget {
            min,
            max,
            suspended: Suspended::default(),
        };
        scaling
            .register(&resource, &target)
            .await
            .expect("register");
        // app/<lb name>/<lb id>/targetgroup/<tg name>/<tg id>, from the listener and TG ARNs.
        let lb = self
            .production_listener
            .split_once(":listener/")
            .and_then(|(_, l)| l.rsplit_once('/'))
            .map(|(lb, _)| lb.to_owned())
            .expect("listener ARN");
        let arn = self.tg(slot);
        let tg = &arn[arn.find("targetgroup/").expect("TG ARN")..];
        let policy = ScalingPolicy {
            name: "requests-per-target".into(),
            kind: PolicyKind::TargetTracking {
                target_value: 1000.0,
                metric: TrackedMetric::Predefined {
                    metric_type: "ALBRequestCountPerTarget".into(),
                    resource_label: Some(format!("{lb}/{tg}")),
                },
                scale_out_cooldown: Some(60),
                scale_in_cooldown: Some(300),
                disable_scale_in: None,
            },
        };
        scaling
            .put_policy(&resource, &policy)
            .await
            .expect("put policy");
    }

    /// A slot's scalable target, as Application Auto Scaling holds it.
    pub async fn scalable_target(
        &self,
        slot: Slot,
    ) -> Option<bluegreen::ports::scaling::ScalableTarget> {
        let resource = bluegreen::autoscaling::resource_id(CLUSTER, &format!("shop-{slot}"));
        self.ctx
            .ports
            .scaling
            .target(&resource)
            .await
            .expect("describe")
    }

    /// A slot's scaling policies.
    pub async fn scaling_policies(
        &self,
        slot: Slot,
    ) -> Vec<bluegreen::ports::scaling::ScalingPolicy> {
        let resource = bluegreen::autoscaling::resource_id(CLUSTER, &format!("shop-{slot}"));
        self.ctx
            .ports
            .scaling
            .policies(&resource)
            .await
            .expect("describe")
    }

    /// Application Auto Scaling runs every policy once (the harness plays it: a slot below
    /// its minimum scales out to it unless scale-out is suspended, and so on).
    pub async fn run_autoscaling(&self) {
        self.emulator
            .control("POST", "/_bluegreen/autoscaling/run", json!({}))
            .await;
    }

    /// ECS's reads lag behind its writes (`on`): tasks started from now on are not listed by
    /// `ListTasks` until the lag is switched off again (AWS documents its ECS reads as
    /// eventually consistent).
    pub async fn ecs_list_lag(&self, on: bool) {
        self.emulator
            .control("POST", "/_bluegreen/ecs/list-lag", json!({ "on": on }))
            .await;
    }

    /// The ECS scheduler finished (or failed) the slot's rollout.
    pub async fn settle(&self, slot: Slot, state: &str) {
        self.emulator
            .control(
                "POST",
                "/_bluegreen/ecs/rollout",
                json!({"cluster": CLUSTER, "service": format!("shop-{slot}"), "state": state}),
            )
            .await;
    }

    /// The ECS scheduler reports the slot's primary deployment in `state` while older
    /// deployments of `draining` (task definition ARNs) still replace their tasks.
    pub async fn settle_draining(&self, slot: Slot, state: &str, draining: &[&str]) {
        self.emulator
            .control(
                "POST",
                "/_bluegreen/ecs/rollout",
                json!({
                    "cluster": CLUSTER,
                    "service": format!("shop-{slot}"),
                    "state": state,
                    "draining": draining,
                }),
            )
            .await;
    }

    /// `n` tasks of the slot registered in its target group (ECS would do this).
    pub async fn register_targets(&self, slot: Slot, n: u8) {
        let tg = self.tg(slot);
        let octet = if slot == Slot::Blue { 1 } else { 2 };
        let mut call = self.aws.elb.register_targets().target_group_arn(tg);
        for i in 0..n {
            call = call.targets(
                TargetDescription::builder()
                    .id(format!("172.31.{octet}.{}", 10 + i))
                    .port(8080)
                    .build(),
            );
        }
        call.send().await.expect("register targets");
    }

    /// ELB reports a target of the slot in `state`.
    pub async fn set_target_health(&self, slot: Slot, index: u8, state: &str) {
        let octet = if slot == Slot::Blue { 1 } else { 2 };
        self.emulator
            .control(
                "POST",
                "/_bluegreen/elbv2/target-health",
                json!({"target_group_arn": self.tg(slot), "target_id": format!("172.31.{octet}.{}", 10 + index), "state": state}),
            )
            .await;
    }

    /// The container runtime stops a task with an exit code (or none).
    pub async fn stop_task(&self, task_arn: &str, exit_code: Option<i32>, stop_code: &str) {
        self.emulator
            .control(
                "POST",
                "/_bluegreen/ecs/task-stopped",
                json!({"task_arn": task_arn, "exit_code": exit_code, "stop_code": stop_code}),
            )
            .await;
    }

    /// Messages published to the world's topic.
    pub async fn published(&self) -> Vec<serde_json::Value> {
        let out = self
            .emulator
            .control(
                "POST",
                "/_bluegreen/sns/published",
                json!({"topic_arn": self.topic_arn}),
            )
            .await;
        out.as_array().cloned().unwrap_or_default()
    }

    /// A slot's target group ARN.
    pub fn tg(&self, slot: Slot) -> &str {
        match slot {
            Slot::Blue => &self.tg_blue,
            Slot::Green => &self.tg_green,
        }
    }

    /// Every task (running or stopped) started with `started_by`.
    pub async fn tasks_started_by(&self, started_by: &str) -> Vec<String> {
        let mut arns = Vec::new();
        for status in [
            aws_sdk_ecs::types::DesiredStatus::Running,
            aws_sdk_ecs::types::DesiredStatus::Stopped,
        ] {
            let out = self
                .aws
                .ecs
                .list_tasks()
                .cluster(CLUSTER)
                .started_by(started_by)
                .desired_status(status)
                .send()
                .await
                .expect("list tasks");
            arns.extend(out.task_arns.unwrap_or_default());
        }
        arns
    }

    /// A task as ECS describes it.
    pub async fn task(&self, task_arn: &str) -> aws_sdk_ecs::types::Task {
        let out = self
            .aws
            .ecs
            .describe_tasks()
            .cluster(CLUSTER)
            .tasks(task_arn)
            .send()
            .await
            .expect("describe task");
        out.tasks
            .unwrap_or_default()
            .into_iter()
            .next()
            .expect("the task exists")
    }

    /// The first container override a task was started with.
    pub async fn task_override(&self, task_arn: &str) -> aws_sdk_ecs::types::ContainerOverride {
        let task = self.task(task_arn).await;
        task.overrides
            .and_then(|o| o.container_overrides)
            .and_then(|c| c.into_iter().next())
            .expect("the task has a container override")
    }

    /// How many revisions the `shop` task definition family has.
    pub async fn revisions(&self) -> usize {
        let out = self
            .aws
            .ecs
            .list_task_definitions()
            .family_prefix("shop")
            .send()
            .await
            .expect("list revisions");
        out.task_definition_arns.unwrap_or_default().len()
    }

    /// Rule mode: a host-header rule on the production listener forwarding to blue (the
    /// listener's default action keeps forwarding to blue too), and the stored config moving
    /// that rule. Returns the config.
    pub async fn use_rule_mode(&self) -> ServiceConfig {
        let forward_blue = Action::builder()
            .r#type(ActionTypeEnum::Forward)
            .forward_config(
                ForwardActionConfig::builder()
                    .target_groups(
                        TargetGroupTuple::builder()
                            .target_group_arn(&self.tg_blue)
                            .weight(100)
                            .build(),
                    )
                    .build(),
            )
            .build();
        let host = RuleCondition::builder()
            .field("host-header")
            .host_header_config(
                HostHeaderConditionConfig::builder()
                    .values("shop.example.com")
                    .build(),
            )
            .build();
        let rule = self
            .aws
            .elb
            .create_rule()
            .listener_arn(&self.production_listener)
            .priority(10)
            .conditions(host)
            .actions(forward_blue)
            .send()
            .await
            .expect("create rule")
            .rules
            .unwrap_or_default()
            .remove(0)
            .rule_arn
            .expect("rule arn");
        let mut config = self.config();
        if let Traffic::Listener {
            production_rule_arn,
            ..
        } = &mut config.traffic
        {
            *production_rule_arn = Some(rule);
        }
        self.put_config(&config).await;
        config
    }

    /// `traffic.test_rule` on the rule mode of [`Self::use_rule_mode`]: no test listener (the
    /// world's is deleted), smoke checks against `url` (a stand-in of the production listener,
    /// [`crate::alb::ListenerFront`]). Returns the stored config.
    pub async fn use_test_rule(&self, url: &str) -> ServiceConfig {
        bluegreen_ops::direct::elb::delete_listener(&self.ctx, &self.test_listener)
            .await
            .expect("delete the test listener");
        let mut config = self.use_rule_mode().await;
        if let Traffic::Listener {
            test_listener_arn,
            test_rule,
            ..
        } = &mut config.traffic
        {
            *test_listener_arn = None;
            *test_rule = Some(bluegreen::config::TestRule::default());
        }
        config.health.test_url = Some(url.to_owned());
        self.put_config(&config).await;
        config
    }

    /// The service behind a Network Load Balancer instead of the ALB: an NLB with a TCP
    /// production listener (:80, to blue) and a TCP test listener (:8080, to green), both
    /// tagged as bluegreen's; the ALB's listeners are deleted (a target group is behind one
    /// load balancer). The stored config names the NLB's listeners, bakes the weights'
    /// settling time and has no maintenance page. Returns it.
    pub async fn use_nlb(&self) -> ServiceConfig {
        for listener in [&self.production_listener, &self.test_listener] {
            bluegreen_ops::direct::elb::delete_listener(&self.ctx, listener)
                .await
                .expect("delete the ALB's listener");
        }
        let nlb = self
            .aws
            .elb
            .create_load_balancer()
            .name("shop-nlb")
            .r#type(aws_sdk_elasticloadbalancingv2::types::LoadBalancerTypeEnum::Network)
            .set_subnets(Some(self.subnets.clone()))
            .send()
            .await
            .expect("create NLB")
            .load_balancers
            .unwrap()
            .remove(0)
            .load_balancer_arn
            .unwrap();
        let mut listeners = Vec::new();
        for (port, tg) in [(80, &self.tg_blue), (8080, &self.tg_green)] {
            let listener = self
                .aws
                .elb
                .create_listener()
                .load_balancer_arn(&nlb)
                .protocol(ProtocolEnum::Tcp)
                .port(port)
                .default_actions(
                    Action::builder()
                        .r#type(ActionTypeEnum::Forward)
                        .target_group_arn(tg)
                        .build(),
                )
                .tags(
                    aws_sdk_elasticloadbalancingv2::types::Tag::builder()
                        .key("bluegreen:managed")
                        .value("true")
                        .build(),
                )
                .send()
                .await
                .expect("create NLB listener")
                .listeners
                .unwrap()
                .remove(0)
                .listener_arn
                .unwrap();
            listeners.push(listener);
        }
        let mut config = self.config();
        if let Traffic::Listener {
            production_listener_arn,
            test_listener_arn,
            ..
        } = &mut config.traffic
        {
            *production_listener_arn = listeners[0].clone();
            *test_listener_arn = Some(listeners[1].clone());
        }
        config.bake.seconds = bluegreen::config::NLB_WEIGHTS_SETTLE_SECONDS;
        self.put_config(&config).await;
        config
    }

    /// The production listener served over HTTPS on port 443, with the team's certificate for
    /// `shop.example.com`.
    pub async fn production_over_https(&self) {
        let certificate = self
            .emulator
            .control(
                "POST",
                "/_bluegreen/acm/certificate",
                json!({"domain": "shop.example.com"}),
            )
            .await;
        self.aws
            .elb
            .modify_listener()
            .listener_arn(&self.production_listener)
            .protocol(ProtocolEnum::Https)
            .port(443)
            .certificates(
                aws_sdk_elasticloadbalancingv2::types::Certificate::builder()
                    .certificate_arn(certificate["arn"].as_str().expect("a certificate ARN"))
                    .build(),
            )
            .send()
            .await
            .expect("the production listener over HTTPS");
    }

    /// Takes the second slot away — its service, its target group and the test listener — as a
    /// team's world is before bluegreen (what `adopt` starts from). Blue and the production
    /// listener stay.
    pub async fn only_the_first_slot(&self) {
        let ctx = &self.ctx;
        bluegreen_ops::direct::ecs::delete_service(ctx, CLUSTER, "shop-green")
            .await
            .expect("delete green");
        bluegreen_ops::direct::elb::delete_listener(ctx, &self.test_listener)
            .await
            .expect("delete the test listener");
        bluegreen_ops::direct::elb::delete_target_group(ctx, &self.tg_green)
            .await
            .expect("delete green's target group");
    }

    /// The other routes a service on a shared ALB has, each forwarding to blue and tagged
    /// `bluegreen:managed=true`: a host rule and an `/admin/*` path rule on the production
    /// listener, and an HTTP listener on port 8080. Returns their ARNs in that order.
    pub async fn more_routes_to_blue(&self) -> [String; 3] {
        let forward_blue = || {
            Action::builder()
                .r#type(ActionTypeEnum::Forward)
                .target_group_arn(&self.tg_blue)
                .build()
        };
        let managed = || {
            aws_sdk_elasticloadbalancingv2::types::Tag::builder()
                .key("bluegreen:managed")
                .value("true")
                .build()
        };
        let host = RuleCondition::builder()
            .field("host-header")
            .host_header_config(
                HostHeaderConditionConfig::builder()
                    .values("api.shop.example.com")
                    .build(),
            )
            .build();
        let admin = RuleCondition::builder()
            .field("path-pattern")
            .path_pattern_config(
                aws_sdk_elasticloadbalancingv2::types::PathPatternConditionConfig::builder()
                    .values("/admin/*")
                    .build(),
            )
            .build();
        let mut rules = Vec::new();
        for (priority, condition) in [(20, host), (30, admin)] {
            rules.push(
                self.aws
                    .elb
                    .create_rule()
                    .listener_arn(&self.production_listener)
                    .priority(priority)
                    .conditions(condition)
                    .actions(forward_blue())
                    .tags(managed())
                    .send()
                    .await
                    .expect("create rule")
                    .rules
                    .unwrap_or_default()
                    .remove(0)
                    .rule_arn
                    .expect("rule arn"),
            );
        }
        let balancer = self
            .aws
            .elb
            .describe_listeners()
            .listener_arns(&self.production_listener)
            .send()
            .await
            .expect("describe listener")
            .listeners
            .unwrap_or_default()
            .remove(0)
            .load_balancer_arn
            .expect("its load balancer");
        let http = self
            .aws
            .elb
            .create_listener()
            .load_balancer_arn(balancer)
            .protocol(ProtocolEnum::Http)
            .port(8080)
            .default_actions(forward_blue())
            .tags(managed())
            .send()
            .await
            .expect("create listener")
            .listeners
            .unwrap()
            .remove(0)
            .listener_arn
            .unwrap();
        let [host, admin] = <[String; 2]>::try_from(rules).expect("two rules");
        [host, admin, http]
    }

    /// Makes the production listener's default action a fixed 404 (rule mode, where only the
    /// rule serves the service).
    pub async fn default_action_not_found(&self) {
        self.aws
            .elb
            .modify_listener()
            .listener_arn(&self.production_listener)
            .default_actions(
                Action::builder()
                    .r#type(ActionTypeEnum::FixedResponse)
                    .fixed_response_config(
                        FixedResponseActionConfig::builder()
                            .status_code("404")
                            .build(),
                    )
                    .build(),
            )
            .send()
            .await
            .expect("modify listener");
    }

    /// The production listener's default actions, as ELB has them.
    pub async fn default_actions(&self) -> Vec<Action> {
        self.aws
            .elb
            .describe_listeners()
            .listener_arns(&self.production_listener)
            .send()
            .await
            .expect("describe listeners")
            .listeners
            .unwrap_or_default()
            .remove(0)
            .default_actions
            .unwrap_or_default()
    }

    /// Puts a CloudWatch alarm into `ALARM` (as CloudWatch would on a metric breach).
    pub async fn raise_alarm(&self, alarm: &str, reason: &str) {
        self.aws
            .cloudwatch
            .set_alarm_state()
            .alarm_name(alarm)
            .state_value(aws_sdk_cloudwatch::types::StateValue::Alarm)
            .state_reason(reason)
            .send()
            .await
            .expect("set alarm state");
    }

    /// Stores the demo config with an isolated database cloned from `shop-db`.
    pub async fn use_isolated_db(&self) {
        let mut config = self.config();
        config.database.strategy = DbStrategy::Isolated;
        config.database.source = Some(bluegreen::config::DbSource::RdsInstance {
            identifier: "shop-db".into(),
        });
        self.put_config(&config).await;
    }

    /// Subjects of the messages published to the world's topic, oldest first.
    pub async fn published_subjects(&self) -> Vec<String> {
        self.published()
            .await
            .iter()
            .map(|m| m["subject"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// Creates the deployment state machine of the world's settings in moto. moto does not
    /// interpret it (unless a test turns that on), so executions stay RUNNING until stopped:
    /// exactly the states the reconciler must tell apart.
    pub async fn create_deployment_machine(&self) {
        self.aws
            .sfn
            .create_state_machine()
            .name("bluegreen-deployment")
            .definition(r#"{"StartAt": "Run", "States": {"Run": {"Type": "Pass", "End": true}}}"#)
            .role_arn("arn:aws:iam::123456789012:role/bluegreen-states")
            .send()
            .await
            .expect("create deployment machine");
    }

    /// Starts the execution of deployment `id`, as the intake or a hand-over would.
    pub async fn start_execution(&self, id: &str) {
        bluegreen::executions::start(&self.ctx, id)
            .await
            .expect("start execution");
    }

    /// Stops deployment `id`'s execution by hand, as a person in the console would.
    pub async fn stop_execution(&self, id: &str) {
        self.aws
            .sfn
            .stop_execution()
            .execution_arn(
                self.ctx
                    .settings
                    .execution_arn(id)
                    .expect("machine ARN set"),
            )
            .send()
            .await
            .expect("stop execution");
    }

    /// Step Functions' status of deployment `id`'s execution, `None` if there is none.
    pub async fn execution_status(&self, id: &str) -> Option<String> {
        let arn = self
            .ctx
            .settings
            .execution_arn(id)
            .expect("machine ARN set");
        match self
            .aws
            .sfn
            .describe_execution()
            .execution_arn(arn)
            .send()
            .await
        {
            Ok(out) => Some(out.status.as_str().to_owned()),
            Err(_) => None,
        }
    }

    /// The service's lock as stored, if held.
    pub async fn lock(&self, service: &str) -> Option<bluegreen::lock::LockItem> {
        bluegreen::lock::Locks::new(&self.ctx)
            .read(service)
            .await
            .expect("read lock")
    }

    /// Which deployment holds the service's lock, if any.
    pub async fn lock_holder(&self) -> Option<String> {
        bluegreen::lock::Locks::new(&self.ctx)
            .holder("shop")
            .await
            .expect("read lock")
    }

    /// The production listener's rules other than its default action, as `(priority, ARN)`.
    pub async fn listener_rules(&self) -> Vec<(String, String)> {
        self.aws
            .elb
            .describe_rules()
            .listener_arn(&self.production_listener)
            .send()
            .await
            .expect("describe rules")
            .rules
            .unwrap_or_default()
            .into_iter()
            .filter(|r| r.is_default != Some(true))
            .map(|r| {
                (
                    r.priority.unwrap_or_default(),
                    r.rule_arn.unwrap_or_default(),
                )
            })
            .collect()
    }

    /// An Aurora PostgreSQL cluster `shop-aurora` (a source for copy-on-write clones).
    pub async fn create_aurora_cluster(&self) {
        self.aws
            .rds
            .create_db_cluster()
            .db_cluster_identifier("shop-aurora")
            .engine("aurora-postgresql")
            .master_username("shop")
            .master_user_password("not-a-secret-1")
            .send()
            .await
            .expect("create Aurora cluster");
    }

    /// Identifiers of every DB cluster.
    pub async fn db_clusters(&self) -> Vec<String> {
        self.aws
            .rds
            .describe_db_clusters()
            .send()
            .await
            .expect("describe DB clusters")
            .db_clusters
            .unwrap_or_default()
            .into_iter()
            .filter_map(|c| c.db_cluster_identifier)
            .collect()
    }

    /// Identifiers of every DB instance.
    pub async fn db_instances(&self) -> Vec<String> {
        self.aws
            .rds
            .describe_db_instances()
            .send()
            .await
            .expect("describe DB instances")
            .db_instances
            .unwrap_or_default()
            .into_iter()
            .filter_map(|i| i.db_instance_identifier)
            .collect()
    }
}

/// 64 hex digits that differ for different `text` (a fake image config's digest; ECR does
/// not read the config blob).
fn sha256_hex(text: &str) -> String {
    let hex: String = text.bytes().map(|b| format!("{b:02x}")).collect();
    format!("{hex:0>64}").chars().rev().take(64).collect()
}
