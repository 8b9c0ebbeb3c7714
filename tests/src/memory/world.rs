//! The standard world in memory, resource for resource as [`crate::World`] builds it in the
//! emulator: a cluster with blue (2 tasks, live) and green (0) services of family `shop`, an
//! ALB with a production listener on blue and a test listener on green, the weighted records
//! blue 100 / green 0, the production database and its snapshot, the bake alarm, the link
//! secret, the three tables and the service's config (stored and indexed).

use std::sync::Arc;

use bluegreen::config_store::ConfigStore;
use bluegreen::ports::compute::{ContainerState, ServiceDeployment, ServiceState};
use bluegreen::ports::databases::DbInstanceState;
use bluegreen::ports::dns::WeightedRecord;
use bluegreen::ports::load_balancing::{TargetHealth, WeightedGroup};
use bluegreen::{Context, Settings, Slot};

use super::tables::MemoryTables;
use super::{Conductor, ListenerModel, MemoryAws, ServiceModel, State};
use crate::world::{ACCOUNT, CLUSTER, LINK_SECRET, MOTO_CALLER, REPOSITORY, service_config};
use crate::{Names, standard_settings};

/// Identifiers in the shapes AWS gives them, for a world without an emulator.
pub fn made_up_names() -> Names {
    let elb = format!("arn:aws:elasticloadbalancing:us-east-1:{ACCOUNT}");
    Names {
        tg_blue: format!("{elb}:targetgroup/shop-blue/1111111111111111"),
        tg_green: format!("{elb}:targetgroup/shop-green/2222222222222222"),
        production_listener: format!(
            "{elb}:listener/app/shop-alb/3333333333333333/4444444444444444"
        ),
        test_listener: format!("{elb}:listener/app/shop-alb/3333333333333333/5555555555555555"),
        zone_id: "Z0000000000SIMULATED".into(),
        topic_arn: format!("arn:aws:sns:us-east-1:{ACCOUNT}:bluegreen"),
        test_url: "http://preprod.sim".into(),
    }
}

/// The standard world's AWS state over `names` (the config is stored by [`build`]).
pub fn standard_state(names: &Names, settings: &Settings) -> State {
    let mut state = State {
        caller: MOTO_CALLER.into(),
        tables: MemoryTables::new(bluegreen::tables::TABLES, |t| t.name(settings).to_owned()),
        ..State::default()
    };
    let td = state.ecs.register(
        "shop",
        vec![ContainerState {
            name: "web".into(),
            image: format!("{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/{REPOSITORY}:v1"),
            environment: vec![("DATABASE_HOST".into(), "shop-db.prod.internal".into())],
            secrets: Vec::new(),
            environment_files: Vec::new(),
            log: Some((
                "awslogs".into(),
                vec![
                    ("awslogs-group".into(), "/ecs/shop".into()),
                    ("awslogs-region".into(), "us-east-1".into()),
                    ("awslogs-stream-prefix".into(), "shop".into()),
                ],
            )),
        }],
        Vec::new(),
    );
    for (slot, tg, count) in [
        (Slot::Blue, &names.tg_blue, 2),
        (Slot::Green, &names.tg_green, 0),
    ] {
        let name = format!("shop-{slot}");
        let arn = format!("arn:aws:ecs:us-east-1:{ACCOUNT}:service/{CLUSTER}/{name}");
        state.ecs.tags.insert(
            arn.clone(),
            vec![("bluegreen:managed".into(), "true".into())],
        );
        state.ecs.services.insert(
            format!("{CLUSTER}/{name}"),
            ServiceModel {
                state: ServiceState {
                    arn,
                    name,
                    task_definition: Some(td.clone()),
                    desired_count: count,
                    running_count: count,
                    deployments: vec![ServiceDeployment {
                        status: "PRIMARY".into(),
                        task_definition: Some(td.clone()),
                        desired_count: count,
                        running_count: count,
                        rollout_state: Some("COMPLETED".into()),
                        rollout_reason: None,
                    }],
                    registries: Vec::new(),
                    setup: Default::default(),
                },
                target_group: tg.clone(),
            },
        );
        let octet = if slot == Slot::Blue { 1 } else { 2 };
        state.elb.targets.insert(
            tg.clone(),
            (0..count)
                .map(|i| TargetHealth {
                    id: format!("172.31.{octet}.{}", 10 + i),
                    state: "healthy".into(),
                    reason: String::new(),
                })
                .collect(),
        );
    }
    for (listener, tg) in [
        (&names.production_listener, &names.tg_blue),
        (&names.test_listener, &names.tg_green),
    ] {
        state.elb.listeners.insert(
            listener.clone(),
            ListenerModel {
                forward: Some(vec![WeightedGroup {
                    target_group_arn: tg.clone(),
                    weight: None,
                }]),
            },
        );
    }
    state.dns.zones.insert(
        names.zone_id.clone(),
        [(Slot::Blue, 100), (Slot::Green, 0)]
            .into_iter()
            .map(|(slot, weight)| WeightedRecord {
                name: "shop.example.com.".into(),
                set_identifier: Some(slot.as_str().into()),
                weight: Some(weight),
                ttl: Some(300),
                value: format!("shop-{slot}-alb.example.com"),
            })
            .collect(),
    );
    state.rds.instances.insert(
        "shop-db".into(),
        DbInstanceState {
            identifier: "shop-db".into(),
            status: "available".into(),
            endpoint: Some("shop-db.prod.internal".into()),
            cluster: None,
            tags: Vec::new(),
        },
    );
    state
        .rds
        .snapshots
        .insert("shop-db".into(), vec!["shop-db-nightly".into()]);
    state.alarms.alarms.insert("shop-5xx".into(), false);
    state.secrets.insert(
        LINK_SECRET.into(),
        "k3y-for-tests-only-0123456789abcdefghijklmnop".into(),
    );
    state
        .workflow
        .machines
        .push(crate::DEPLOYMENT_MACHINE_ARN.into());
    state
}

/// The standard world in memory, its calls conducted by `conductor`, with a context over it
/// on `clock`; the service's config stored and indexed as `config put` would.
pub async fn build(
    names: &Names,
    conductor: Arc<dyn Conductor>,
    clock: bluegreen::context::Clock,
) -> (MemoryAws, Context) {
    let settings = standard_settings();
    let aws = MemoryAws::new(standard_state(names, &settings), conductor);
    let ctx = Context::with_ports(aws.ports(), settings, clock);
    ConfigStore::new(&ctx)
        .put(&service_config(names))
        .await
        .expect("the standard config is stored");
    (aws, ctx)
}

/// Production autoscales: blue (live) gets a scalable target of `min..max` and a target
/// tracking policy on requests per target of its own target group, as a team's IaC makes it.
pub fn autoscale_blue(state: &mut State, names: &Names, min: i32, max: i32) {
    use bluegreen::ports::scaling::{
        PolicyKind, ScalableTarget, ScalingPolicy, Suspended, TrackedMetric,
    };
    let resource = bluegreen::autoscaling::resource_id(CLUSTER, "shop-blue");
    state.scaling.targets.insert(
        resource.clone(),
        ScalableTarget {
            min,
            max,
            suspended: Suspended::default(),
        },
    );
    let target_group = names
        .tg_blue
        .split_once("targetgroup/")
        .map(|(_, tg)| tg)
        .expect("a target group ARN");
    state.scaling.policies.insert(
        resource,
        vec![ScalingPolicy {
            name: "requests-per-target".into(),
            kind: PolicyKind::TargetTracking {
                target_value: 1000.0,
                metric: TrackedMetric::Predefined {
                    metric_type: "ALBRequestCountPerTarget".into(),
                    resource_label: Some(format!(
                        "app/shop-alb/3333333333333333/targetgroup/{target_group}"
                    )),
                },
                scale_out_cooldown: Some(60),
                scale_in_cooldown: Some(300),
                disable_scale_in: None,
            },
        }],
    );
}
