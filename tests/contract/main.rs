//! The contract between the two worlds: the same scenarios, run through the SDK adapters on
//! the emulator and through the in-memory AWS, must leave AWS holding the same things. Each
//! scenario returns what it saw and what AWS holds at its end (read through the ports), as
//! JSON; the two are compared whole. A known divergence (AWS's own behaviour that one world
//! models and the other does not, like ECS deployments moto never creates) is left out of the
//! comparison and listed in docs/simulation.md.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bluegreen::config_store::ConfigStore;
use bluegreen::lock::Locks;
use bluegreen::ports::compute::RevisionOverlay;
use bluegreen::record::{Records, Status};
use bluegreen::steps::approval::{self, Decision, RequestInput};
use bluegreen::steps::prepare;
use bluegreen::{Context, Slot, routing};
use bluegreen_tests::memory::{Immediate, world as memory_world};
use bluegreen_tests::{CLUSTER, MOTO_CALLER, Names, World, push_event};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

/// The moment both worlds' clocks stand at.
fn fixed_clock() -> bluegreen::context::Clock {
    let at: DateTime<Utc> = "2026-11-21T10:30:00Z".parse().unwrap();
    Arc::new(move || at)
}

type Scenario = for<'a> fn(&'a Context, &'a Names) -> Pin<Box<dyn Future<Output = Value> + 'a>>;

/// Runs `scenario` in both worlds and compares what each saw and holds.
async fn in_both_worlds(name: &str, scenario: Scenario) {
    let world = World::build().await;
    let emulated = world.ctx.clone().with_clock(fixed_clock());
    let (_memory, in_memory) =
        memory_world::build(&world.names(), Arc::new(Immediate), fixed_clock()).await;
    let names = world.names();
    let on_emulator = scenario(&emulated, &names).await;
    let in_memory = scenario(&in_memory, &names).await;
    assert_eq!(
        serde_json::to_string_pretty(&on_emulator).unwrap(),
        serde_json::to_string_pretty(&in_memory).unwrap(),
        "{name}: the worlds differ (left: the emulator, right: in memory)"
    );
}

/// A push of `tag`, event `event_id`, pushed at `time`.
fn push(tag: &str, event_id: &str, time: &str) -> Value {
    push_event(tag, tag.chars().last().unwrap_or('a'), event_id, time)
}

/// The record of `id` as JSON, or the error's name.
async fn record(ctx: &Context, id: &str) -> Value {
    match Records::new(ctx).get(id).await {
        Ok(d) => serde_json::to_value(d).unwrap(),
        Err(e) => json!({ "error": e.name() }),
    }
}

/// The lock of `service`: holder, queued, needs attention.
async fn lock(ctx: &Context, service: &str) -> Value {
    match Locks::new(ctx).read(service).await.unwrap() {
        Some(l) => {
            json!({"holder": l.holder, "queued": l.queued, "needs_attention": l.needs_attention})
        }
        None => Value::Null,
    }
}

fn prepared_ids(prepared: &prepare::Prepared) -> Vec<(String, String)> {
    match prepared {
        prepare::Prepared::Deployments { deployments } => deployments
            .iter()
            .map(|d| (d.deployment_id.clone(), format!("{:?}", d.outcome)))
            .collect(),
        prepare::Prepared::Ignored { reason } => vec![("ignored".into(), reason.clone())],
    }
}

fn pushes_queue_and_supersede<'a>(
    ctx: &'a Context,
    _names: &'a Names,
) -> Pin<Box<dyn Future<Output = Value> + 'a>> {
    Box::pin(async move {
        let mut seen = Vec::new();
        for (tag, event, time) in [
            ("v2", "event-1", "2026-11-21T10:00:00Z"),
            ("v3", "event-2", "2026-11-21T10:05:00Z"),
            ("v4", "event-3", "2026-11-21T10:10:00Z"),
            // Older than the running one: superseded at once.
            ("v1", "event-4", "2026-11-21T09:00:00Z"),
        ] {
            let prepared = prepare::run(ctx, &push(tag, event, time)).await.unwrap();
            seen.push(prepared_ids(&prepared));
        }
        let ids: Vec<String> = seen.iter().flatten().map(|(id, _)| id.clone()).collect();
        let mut records = Vec::new();
        for id in &ids {
            records.push(record(ctx, id).await);
        }
        let queued = Records::new(ctx).with_status(Status::Queued).await.unwrap();
        json!({
            "prepared": seen,
            "records": records,
            "lock": lock(ctx, "shop").await,
            "queued": queued.iter().map(|d| d.deployment_id.clone()).collect::<Vec<_>>(),
            "history": Records::new(ctx).for_service("shop", 10).await.unwrap()
                .iter().map(|d| (d.deployment_id.clone(), d.status)).collect::<Vec<_>>(),
        })
    })
}

fn a_decision_is_recorded_once<'a>(
    ctx: &'a Context,
    _names: &'a Names,
) -> Pin<Box<dyn Future<Output = Value> + 'a>> {
    Box::pin(async move {
        let prepared = prepare::run(ctx, &push("v2", "event-1", "2026-11-21T10:00:00Z"))
            .await
            .unwrap();
        let id = prepared_ids(&prepared)[0].0.clone();
        Records::new(ctx)
            .update(
                &id,
                bluegreen::record::Change::new().status(Status::Preprod),
            )
            .await
            .unwrap();
        let requested = approval::request(
            ctx,
            &RequestInput {
                deployment_id: id.clone(),
                task_token: "bluegreen-local:contract:Approval:1".into(),
            },
        )
        .await
        .map(|r| format!("{r:?}"))
        .map_err(|e| e.name());
        let decide = |approve: bool, reason: &str| Decision {
            approve,
            approver: MOTO_CALLER.into(),
            reason: Some(reason.into()),
            channel: "cli".into(),
            link_nonce: None,
        };
        let first = approval::decide(ctx, &id, &decide(false, "p99 doubled\non /cart"))
            .await
            .map_err(|e| e.name());
        let second = approval::decide(ctx, &id, &decide(true, "ok"))
            .await
            .map_err(|e| e.name());
        json!({
            "requested": requested,
            "first": first,
            "second": second,
            "record": record(ctx, &id).await,
            "pending": Records::new(ctx).with_status(Status::AwaitingApproval).await.unwrap().len(),
        })
    })
}

fn a_lock_is_handed_over_with_its_record<'a>(
    ctx: &'a Context,
    _names: &'a Names,
) -> Pin<Box<dyn Future<Output = Value> + 'a>> {
    Box::pin(async move {
        let first = prepared_ids(
            &prepare::run(ctx, &push("v2", "event-1", "2026-11-21T10:00:00Z"))
                .await
                .unwrap(),
        )[0]
        .0
        .clone();
        let next = prepared_ids(
            &prepare::run(ctx, &push("v3", "event-2", "2026-11-21T10:05:00Z"))
                .await
                .unwrap(),
        )[0]
        .0
        .clone();
        let records = Records::new(ctx);
        let released = Locks::new(ctx)
            .release_with("shop", &first, |handed| {
                Ok(Some(
                    records.update_in_transaction(
                        &first,
                        bluegreen::record::Change::new()
                            .status(Status::Aborted)
                            .handed_over_to(handed.unwrap_or("nobody")),
                    ),
                ))
            })
            .await
            .map(|r| format!("{r:?}"))
            .map_err(|e| e.name());
        let refused = Locks::new(ctx)
            .release_with("shop", &next, |_| {
                Ok(Some(records.update_in_transaction(
                    "shop-no-such-deployment",
                    bluegreen::record::Change::new(),
                )))
            })
            .await
            .map(|r| format!("{r:?}"))
            .map_err(|e| e.name());
        let marked = Locks::new(ctx)
            .mark_needs_attention("shop", &next, "a test")
            .await
            .unwrap();
        json!({
            "released": released,
            "refused": refused,
            "marked": marked,
            "first": record(ctx, &first).await,
            "lock": lock(ctx, "shop").await,
            "held": Locks::new(ctx).held().await.unwrap().into_iter()
                .map(|(s, l)| (s, l.holder)).collect::<Vec<_>>(),
        })
    })
}

fn configs_are_stored_indexed_and_removed<'a>(
    ctx: &'a Context,
    _names: &'a Names,
) -> Pin<Box<dyn Future<Output = Value> + 'a>> {
    Box::pin(async move {
        let store = ConfigStore::new(ctx);
        let mut other = store.load("shop").await.unwrap();
        other.name = "cart".into();
        other.source.repository = "cart/web".into();
        store.put(&other).await.unwrap();
        other.source.repository = "cart/api".into();
        store.put(&other).await.unwrap();
        let watching_web = store.watching("cart/web").await.unwrap().len();
        let watching_api = store.watching("cart/api").await.unwrap().len();
        let all: Vec<String> = store
            .load_all()
            .await
            .unwrap()
            .into_iter()
            .map(|c| c.name)
            .collect();
        let many: Vec<String> = store
            .load_many(&["shop".into(), "cart".into(), "gone".into()])
            .await
            .unwrap()
            .into_iter()
            .map(|c| c.map(|c| c.name).unwrap_or_default())
            .collect();
        let deleted = store.delete("cart").await.map_err(|e| e.name());
        let deleted_again = store.delete("cart").await.map_err(|e| e.name());
        json!({
            "watching": [watching_web, watching_api],
            "all": all,
            "many": many,
            "deleted": deleted.is_ok(),
            "deleted_again": deleted_again.err(),
            "after": store.watching("cart/api").await.unwrap().len(),
        })
    })
}

fn a_revision_overlays_the_live_one<'a>(
    ctx: &'a Context,
    _names: &'a Names,
) -> Pin<Box<dyn Future<Output = Value> + 'a>> {
    Box::pin(async move {
        let compute = &ctx.ports.compute;
        let live = compute
            .describe_service(CLUSTER, "shop-blue")
            .await
            .unwrap();
        let base = compute
            .describe_task_definition(live.task_definition.as_deref().unwrap())
            .await
            .unwrap();
        let overlay = RevisionOverlay {
            images: vec![("web".into(), "repo@sha256:abc".into())],
            environment: vec![("web".into(), "DATABASE_HOST".into(), "bg-clone".into())],
            secrets: Vec::new(),
        };
        let tags = vec![("bluegreen:deployment".to_owned(), "d-1".to_owned())];
        let arn = compute
            .register_revision(&base.arn, &overlay, &tags)
            .await
            .unwrap();
        let latest = bluegreen::ecs::latest_revision_tagged(ctx, &base.family, &tags)
            .await
            .unwrap();
        let bad = compute
            .register_revision(
                &base.arn,
                &RevisionOverlay {
                    images: vec![("nope".into(), "x".into())],
                    ..RevisionOverlay::default()
                },
                &tags,
            )
            .await
            .map_err(|e| e.name());
        let revision = compute.describe_task_definition(&arn).await.unwrap();
        compute
            .update_service(CLUSTER, "shop-green", Some(&arn), 3)
            .await
            .unwrap();
        bluegreen::ecs::mark_slot(ctx, CLUSTER, "shop-green", "d-1", "preprod", ctx.now())
            .await
            .unwrap();
        let green = compute
            .describe_service(CLUSTER, "shop-green")
            .await
            .unwrap();
        let mut green_tags = compute.tags_of(&green.arn).await.unwrap();
        green_tags.sort();
        bluegreen::ecs::unmark_slot(ctx, CLUSTER, "shop-green")
            .await
            .unwrap();
        let mut unmarked = compute.tags_of(&green.arn).await.unwrap();
        unmarked.sort();
        let missing = compute
            .describe_service(CLUSTER, "shop-purple")
            .await
            .map_err(|e| e.name());
        json!({
            "arn_is_latest": latest.as_deref() == Some(arn.as_str()),
            "containers": revision.containers.iter()
                .map(|c| (c.name.clone(), c.image.clone(), c.environment.clone()))
                .collect::<Vec<_>>(),
            "revision_tags": revision.tags,
            "bad": bad.err(),
            "green": [green.task_definition == Some(arn), green.desired_count == 3],
            "green_tags": green_tags,
            "unmarked": unmarked,
            "missing": missing.err(),
        })
    })
}

fn an_unknown_task_is_described_as_none<'a>(
    ctx: &'a Context,
    _names: &'a Names,
) -> Pin<Box<dyn Future<Output = Value> + 'a>> {
    Box::pin(async move {
        // ECS forgets stopped tasks after about an hour: a recorded ARN it no longer knows is
        // an answer (`None`), not an error, so an abort or a check can go on from the record.
        let arn = format!("arn:aws:ecs:us-east-1:123456789012:task/{CLUSTER}/0123456789abcdef");
        let described = ctx
            .ports
            .compute
            .describe_task(CLUSTER, &arn)
            .await
            .map_err(|e| e.name());
        json!({ "described": described })
    })
}

fn production_moves_and_reads_back<'a>(
    ctx: &'a Context,
    _names: &'a Names,
) -> Pin<Box<dyn Future<Output = Value> + 'a>> {
    Box::pin(async move {
        let config = ConfigStore::new(ctx).load("shop").await.unwrap();
        let before = routing::read_production(ctx, &config).await.unwrap();
        let canary =
            routing::set_production_verified(ctx, &config, Slot::Green, 10, routing::Move::Forward)
                .await
                .unwrap();
        let split = routing::read_production(ctx, &config).await.unwrap();
        let all = routing::set_production_verified(
            ctx,
            &config,
            Slot::Green,
            100,
            routing::Move::Forward,
        )
        .await
        .unwrap();
        let after = routing::read_production(ctx, &config).await.unwrap();
        routing::point_test_listener(ctx, &config, Slot::Blue)
            .await
            .unwrap();
        let test = routing::read_test(ctx, &config).await.unwrap();
        let weights = |r: routing::RouteState| (r.blue, r.green);
        json!({
            "before": weights(before),
            "canary": canary.is_ok(),
            "split": weights(split),
            "all": all.is_ok(),
            "after": weights(after),
            "test": test,
        })
    })
}

fn dns_weights_move_in_one_batch<'a>(
    ctx: &'a Context,
    names: &'a Names,
) -> Pin<Box<dyn Future<Output = Value> + 'a>> {
    Box::pin(async move {
        let mut config = ConfigStore::new(ctx).load("shop").await.unwrap();
        let missing = ctx
            .ports
            .dns
            .cname_records("ZNOSUCHZONE", "x")
            .await
            .map_err(|e| e.name());
        config.traffic = bluegreen::config::Traffic::Dns {
            hosted_zone_id: names.zone_id.clone(),
            record_name: "shop.example.com.".into(),
            ttl_seconds: 300,
            switch_ttl_seconds: 30,
        };
        let before = routing::read_production(ctx, &config).await.unwrap();
        routing::set_dns_ttl(ctx, &config, 30).await.unwrap();
        let lowered = routing::read_production(ctx, &config).await.unwrap();
        routing::set_production(ctx, &config, Slot::Green, 100)
            .await
            .unwrap();
        let after = routing::read_production(ctx, &config).await.unwrap();
        json!({
            "missing_zone": missing.err(),
            "before": [before.blue, before.green, before.ttl.unwrap_or_default()],
            "lowered": lowered.ttl,
            "after": [after.blue, after.green],
        })
    })
}

fn autoscaling_is_carried_and_clamped<'a>(
    ctx: &'a Context,
    names: &'a Names,
) -> Pin<Box<dyn Future<Output = Value> + 'a>> {
    Box::pin(async move {
        use bluegreen::autoscaling::{self, Stance};
        use bluegreen::ports::scaling::{
            PolicyKind, ScalableTarget, ScalingPolicy, Suspended, TrackedMetric,
        };
        let config = ConfigStore::new(ctx).load("shop").await.unwrap();
        let scaling = &ctx.ports.scaling;
        let blue = autoscaling::resource_id(CLUSTER, "shop-blue");
        let green = autoscaling::resource_id(CLUSTER, "shop-green");
        let count = |service: &'static str| async move {
            bluegreen::ecs::describe_service(ctx, CLUSTER, service)
                .await
                .unwrap()
                .desired_count
        };
        // Production as IaC registers it: 3..9 raises blue from 2 to 3 at once.
        let production = ScalableTarget {
            min: 3,
            max: 9,
            suspended: Suspended::default(),
        };
        scaling.register(&blue, &production).await.unwrap();
        let tg = &names.tg_blue[names.tg_blue.find("targetgroup/").unwrap()..];
        let policy = ScalingPolicy {
            name: "requests".into(),
            kind: PolicyKind::TargetTracking {
                target_value: 500.0,
                metric: TrackedMetric::Predefined {
                    metric_type: "ALBRequestCountPerTarget".into(),
                    resource_label: Some(format!("app/shop-alb/3333/{tg}")),
                },
                scale_out_cooldown: Some(60),
                scale_in_cooldown: None,
                disable_scale_in: None,
            },
        };
        scaling.put_policy(&blue, &policy).await.unwrap();
        let held =
            autoscaling::plan_carry(ctx, &config, Slot::Green, Stance::Held { preprod_count: 1 })
                .await
                .unwrap()
                .unwrap();
        autoscaling::carry(ctx, &held).await.unwrap();
        let green_held = (
            scaling.target(&green).await.unwrap(),
            count("shop-green").await,
        );
        let serving = autoscaling::plan_carry(ctx, &config, Slot::Green, Stance::Serving)
            .await
            .unwrap()
            .unwrap();
        autoscaling::carry(ctx, &serving).await.unwrap();
        let again = autoscaling::plan_carry(ctx, &config, Slot::Green, Stance::Serving)
            .await
            .unwrap()
            .unwrap();
        // Not vacuous in either world: the registration raised green to production's minimum.
        assert_eq!(count("shop-green").await, 3);
        assert_eq!(green_held.1, 0, "held: pre-prod's count is not raised");
        let rested = autoscaling::rest(ctx, CLUSTER, "shop-blue").await.unwrap();
        json!({
            "blue_count": count("shop-blue").await,
            "green_held": green_held,
            "green_serving": (scaling.target(&green).await.unwrap(), count("shop-green").await),
            "green_policies": scaling.policies(&green).await.unwrap(),
            "nothing_left_to_carry": again.is_empty(),
            "blue_before_rest": rested,
            "blue_at_rest": scaling.target(&blue).await.unwrap(),
            "delete_missing": scaling.delete_policy(&green, "no-such-policy").await.map_err(|e| e.name()),
            "unknown_service": scaling
                .register(&autoscaling::resource_id(CLUSTER, "no-such"), &production)
                .await
                .map_err(|e| e.aws_code().map(str::to_owned)),
        })
    })
}

#[tokio::test]
async fn autoscaling_is_carried_and_clamped_alike() {
    in_both_worlds("autoscaling", autoscaling_is_carried_and_clamped).await;
}

#[tokio::test]
async fn pushes_are_queued_and_superseded_alike() {
    in_both_worlds("pushes", pushes_queue_and_supersede).await;
}

#[tokio::test]
async fn a_decision_is_recorded_once_alike() {
    in_both_worlds("decision", a_decision_is_recorded_once).await;
}

#[tokio::test]
async fn a_lock_is_handed_over_with_its_record_alike() {
    in_both_worlds("hand-over", a_lock_is_handed_over_with_its_record).await;
}

#[tokio::test]
async fn configs_are_stored_indexed_and_removed_alike() {
    in_both_worlds("configs", configs_are_stored_indexed_and_removed).await;
}

#[tokio::test]
async fn a_revision_overlays_the_live_one_alike() {
    in_both_worlds("revision", a_revision_overlays_the_live_one).await;
}

#[tokio::test]
async fn an_unknown_task_is_described_as_none_alike() {
    in_both_worlds("unknown task", an_unknown_task_is_described_as_none).await;
}

#[tokio::test]
async fn production_moves_and_reads_back_alike() {
    in_both_worlds("routing", production_moves_and_reads_back).await;
}

#[tokio::test]
async fn dns_weights_move_in_one_batch_alike() {
    in_both_worlds("dns", dns_weights_move_in_one_batch).await;
}
