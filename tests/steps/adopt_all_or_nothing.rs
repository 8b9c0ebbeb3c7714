//! Issue 29 item 3: `adopt --apply` is all or nothing. Every check the plan makes (the test
//! port, the tag patterns, the approvers, a foreign resource with the name adopt would give)
//! refuses before the first write, and a write that fails part-way takes back what the run
//! had changed. Each case compares everything adopt could touch — the cluster's services with
//! their load balancers and tags, every target group, listener and rule with their actions and
//! tags, the stored configs — before and after.

use aws_sdk_ecs::operation::create_service::CreateServiceError;
use aws_sdk_ecs::types::{LaunchType, LoadBalancer};
use aws_smithy_mocks::{MockResponseInterceptor, RuleMode, mock};
use aws_smithy_types::error::ErrorMetadata;
use bluegreen::Slot;
use bluegreen::config::Traffic;
use bluegreen_ops::adopt::{Request, adopt};
use bluegreen_ops::direct::{ecs, elb};
use bluegreen_tests::{CLUSTER, World};

use crate::adopt_copies::request;

/// `api-blue`: a service behind blue's target group and the production listener, nothing else.
async fn api_service(world: &World) {
    world.only_the_first_slot().await;
    let shop = ecs::describe_service(&world.ctx, CLUSTER, "shop-blue")
        .await
        .unwrap();
    world
        .aws
        .ecs
        .create_service()
        .cluster(CLUSTER)
        .service_name("api-blue")
        .set_task_definition(shop.task_definition.clone())
        .desired_count(2)
        .launch_type(LaunchType::Fargate)
        .set_network_configuration(shop.network_configuration.clone())
        .load_balancers(
            LoadBalancer::builder()
                .target_group_arn(world.tg(Slot::Blue))
                .container_name("web")
                .container_port(8080)
                .build(),
        )
        .send()
        .await
        .expect("create api-blue");
}

/// One way a request is made one the plan refuses.
type Change = Box<dyn Fn(&mut Request)>;

/// Everything adopt could create or change, as AWS answers it, in a stable order.
pub(crate) async fn aws_state(world: &World) -> Vec<String> {
    let (ecs_client, elb_client) = (&world.aws.ecs, &world.aws.elb);
    let mut state = Vec::new();
    let services = ecs_client
        .list_services()
        .cluster(CLUSTER)
        .send()
        .await
        .unwrap();
    for arn in services.service_arns() {
        // A deleted service is listed until it drains, as INACTIVE.
        let Ok(s) = ecs::describe_service(&world.ctx, CLUSTER, arn).await else {
            continue;
        };
        let groups: Vec<_> = s
            .load_balancers()
            .iter()
            .map(|l| l.target_group_arn.clone())
            .collect();
        let tags = ecs::tags_of(&world.ctx, arn).await.unwrap();
        state.push(format!(
            "service {arn} desired {} groups {groups:?} tags {tags:?}",
            s.desired_count
        ));
    }
    let groups = elb_client.describe_target_groups().send().await.unwrap();
    for tg in groups.target_groups() {
        let arn = tg.target_group_arn.clone().unwrap_or_default();
        let tags = elb::tags_of(&world.ctx, &arn).await.unwrap();
        state.push(format!("target group {arn} tags {tags:?}"));
    }
    let balancers = elb_client.describe_load_balancers().send().await.unwrap();
    for lb in balancers.load_balancers() {
        let lb_arn = lb.load_balancer_arn.clone().unwrap_or_default();
        state.push(format!("load balancer {lb_arn}"));
        for listener in elb::listeners_of(&world.ctx, &lb_arn).await.unwrap() {
            let arn = listener.listener_arn.clone().unwrap_or_default();
            let tags = elb::tags_of(&world.ctx, &arn).await.unwrap();
            state.push(format!(
                "listener {arn} :{:?} {:?} tags {tags:?}",
                listener.port,
                listener.default_actions()
            ));
            let rules = elb_client
                .describe_rules()
                .listener_arn(&arn)
                .send()
                .await
                .unwrap();
            for rule in rules.rules() {
                let rule_arn = rule.rule_arn.clone().unwrap_or_default();
                let tags = elb::tags_of(&world.ctx, &rule_arn).await.unwrap();
                state.push(format!(
                    "rule {rule_arn} {:?} {:?} tags {tags:?}",
                    rule.priority,
                    rule.actions()
                ));
            }
        }
    }
    let configs = bluegreen::config_store::ConfigStore::new(&world.ctx)
        .load_each()
        .await
        .unwrap();
    for config in configs {
        state.push(format!("config {config:?}"));
    }
    state.sort();
    state
}

#[tokio::test]
async fn every_refusal_the_plan_can_make_comes_before_the_first_write() {
    let world = World::build().await;
    api_service(&world).await;
    // Someone's own api-green (not adopt's): adopt would create a service of that name.
    let foreign = async {
        world
            .aws
            .ecs
            .create_service()
            .cluster(CLUSTER)
            .service_name("api-green")
            .task_definition("shop:1")
            .desired_count(0)
            .send()
            .await
            .expect("someone's api-green");
    };
    let cases: Vec<(&str, Change, &str)> = vec![
        (
            "no test port",
            Box::new(|r: &mut Request| r.test_port = None),
            "give --test-port",
        ),
        (
            "the test port is production's",
            Box::new(|r: &mut Request| r.test_port = Some(80)),
            "cannot be the production listener",
        ),
        (
            "a tag pattern that is not a glob",
            Box::new(|r: &mut Request| r.tags = vec!["v[".into()]),
            "source.tags[0]",
        ),
        (
            "no approver",
            Box::new(|r: &mut Request| r.approvers.clear()),
            "approval.approvers",
        ),
    ];
    for (case, change, says) in cases {
        let before = aws_state(&world).await;
        let mut req = request(&world);
        change(&mut req);
        let failed = adopt(&world.ctx, &req, true).await.expect_err(case);
        assert!(failed.to_string().contains(says), "{case}: {failed}");
        assert_eq!(
            failed.taken_back,
            Default::default(),
            "{case}: nothing to take back"
        );
        assert_eq!(aws_state(&world).await, before, "{case}: nothing changed");
    }
    foreign.await;
    let before = aws_state(&world).await;
    let failed = adopt(&world.ctx, &request(&world), true)
        .await
        .expect_err("a foreign api-green");
    assert_eq!(failed.name(), "SetupRefused", "{failed}");
    assert!(
        failed
            .to_string()
            .contains("was not created by adopting api"),
        "{failed}"
    );
    let spaced = failed.to_string().contains("  ");
    assert!(!spaced, "one space between words: {failed}");
    assert_eq!(
        aws_state(&world).await,
        before,
        "a foreign name: nothing changed"
    );
}

#[tokio::test]
async fn a_write_failing_part_way_takes_back_what_the_run_changed() {
    let world = World::build().await;
    api_service(&world).await;
    let before = aws_state(&world).await;
    // The plan passes; the green service's creation is denied (a role without
    // ecs:CreateService) after the target group, the test listener and the tags were made.
    let denied = mock!(aws_sdk_ecs::Client::create_service).then_error(|| {
        CreateServiceError::generic(
            ErrorMetadata::builder()
                .code("AccessDeniedException")
                .message("not allowed to ecs:CreateService")
                .build(),
        )
    });
    let interceptor = MockResponseInterceptor::new()
        .rule_mode(RuleMode::MatchAny)
        .with_rule(&denied)
        .allow_passthrough();
    let denying = bluegreen_tests::with_client(&world.ctx, |c| {
        c.ecs = aws_sdk_ecs::Client::from_conf(
            aws_sdk_ecs::config::Builder::from(&world.sdk)
                .interceptor(interceptor)
                .build(),
        )
    });
    let failed = adopt(&denying, &request(&world), true)
        .await
        .expect_err("create service denied");
    assert!(failed.to_string().contains("CreateService"), "{failed}");
    let undone = &failed.taken_back.undone;
    assert!(failed.taken_back.left.is_empty(), "{:?}", failed.taken_back);
    // The service too: CreateService took effect and only its answer was a failure (the mock
    // passes the call through), as a lost answer is.
    let made = [
        "created ECS service",
        "created target group",
        "created listener",
        "tagged",
    ];
    for made in made {
        assert!(
            undone.iter().any(|u| u.starts_with(made)),
            "{made} in {undone:?}"
        );
    }
    assert_eq!(aws_state(&world).await, before, "everything taken back");

    // With the permission, the same command adopts the service.
    let adopted = adopt(&world.ctx, &request(&world), true)
        .await
        .expect("adopt");
    assert!(adopted.changed);
    ecs::describe_service(&world.ctx, CLUSTER, "api-green")
        .await
        .expect("the green slot");
}

/// Issue 29 item 4: a re-run after the green target group (and its test listener) was deleted
/// makes both again and points the green service at the new group — it used to keep
/// registering into the deleted one while adopt reported success.
#[tokio::test]
async fn a_rerun_after_the_green_group_was_deleted_points_the_green_service_at_the_new_one() {
    let world = World::build().await;
    api_service(&world).await;
    let first = adopt(&world.ctx, &request(&world), true)
        .await
        .expect("adopt");
    let Traffic::Listener {
        test_listener_arn: Some(test_listener),
        ..
    } = &first.config.traffic
    else {
        panic!("a test listener: {:?}", first.config.traffic);
    };
    let old_group = first.config.slots.green.target_group_arn.clone();
    elb::delete_listener(&world.ctx, test_listener)
        .await
        .unwrap();
    elb::delete_target_group(&world.ctx, &old_group)
        .await
        .unwrap();

    let again = adopt(&world.ctx, &request(&world), true)
        .await
        .expect("adopt again");
    let new_group = again.config.slots.green.target_group_arn.clone();
    assert_ne!(new_group, old_group);
    assert!(
        again
            .changes
            .iter()
            .any(|c| c.starts_with("point ECS service")),
        "{:?}",
        again.changes
    );
    let green = ecs::describe_service(&world.ctx, CLUSTER, "api-green")
        .await
        .unwrap();
    let registered: Vec<_> = green
        .load_balancers()
        .iter()
        .filter_map(|lb| lb.target_group_arn.clone())
        .collect();
    assert_eq!(
        registered,
        vec![new_group],
        "the green service registers in the new group"
    );
    let settled = adopt(&world.ctx, &request(&world), true).await.unwrap();
    assert!(!settled.changed, "{:?}", settled.changes);
}

/// Issue 29 item 4: adopt after the service has deployed is refused with the true reason, not
/// "the test listener cannot be the production listener" (the walk's reading of routes a
/// deployment moved).
#[tokio::test]
async fn adopt_after_a_deployment_is_refused_with_the_true_reason() {
    let world = World::build().await;
    let id = crate::common::prepare_push(&world, "v2", "event-1").await;
    let mut req = request(&world);
    req.service = "shop-blue".into();
    req.name = None;
    let failed = adopt(&world.ctx, &req, false)
        .await
        .expect_err("deployed already");
    assert_eq!(failed.name(), "SetupRefused", "{failed}");
    assert!(
        failed
            .to_string()
            .contains(&format!("shop is adopted and has deployed since ({id}")),
        "{failed}"
    );
}

/// Issue 29 item 5: the plan says what the stored config will do (its smoke check and URL, its
/// database strategy, keep-warm 0 and what that means for `rollback`) and that the new test
/// port needs the load balancer's security group.
#[tokio::test]
async fn the_plan_shows_the_config_and_the_security_group_a_new_port_needs() {
    let world = World::build().await;
    api_service(&world).await;
    let planned = adopt(&world.ctx, &request(&world), false)
        .await
        .expect("plan");
    let notes = planned.notes.join("\n");
    for says in [
        &format!("smoke check GET /health against {}", world.smoke.url),
        "database shared, no migration",
        "keep_warm_seconds is 0",
        "`bluegreen rollback` is refused",
        "test port 8443 must be allowed by the load balancer's security group(s) sg-",
    ] {
        assert!(notes.contains(says), "{says}: {notes}");
    }
}
