//! Organisation-scale benchmark (`bench/scale`): what one push, `history`, `status` and the
//! console's list page cost as the account grows, in AWS requests (counted at the client,
//! by operation) and wall time against the emulator.
//!
//! Worlds: 1 service; 10 services watching the pushed repository alone; the same 10 among
//! 100 and among 1,000 services (the others watch other repositories). Then, in the largest
//! world, 0 and 10,000 deployment records (100 of them the measured service's). Each figure
//! is the median of `--repeats` runs (default 5). The target: request counts independent of
//! the number of services and records, wall time within 1.5x of the smallest world.
//!
//! Arguments: `[--repeats N] [--services 1,10,100,1000] [--records 10000]`.

#[allow(dead_code)]
#[path = "../../steps/common.rs"]
mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};
use bluegreen::Context;
use bluegreen::config_store::ConfigStore;
use bluegreen::record::{Records, Status};
use bluegreen::steps::prepare::{self, Prepared};
use bluegreen_console::CallerIdentity;
use bluegreen_tests::serving::{RequestCounter, count_all};
use bluegreen_tests::{World, push_event};
use tower::ServiceExt;

/// What one measured operation cost.
#[derive(Debug, Clone)]
struct Cost {
    requests: usize,
    /// Requests by operation, for the table's footnote.
    calls: Vec<String>,
    wall: Duration,
}

fn median(mut costs: Vec<Cost>) -> Cost {
    costs.sort_by_key(|c| c.wall);
    costs[costs.len() / 2].clone()
}

/// Runs `op` on a counted copy of `ctx` `repeats` times: the median cost by wall time, and
/// what each run returned.
async fn measure<F, Fut, T>(ctx: &Context, repeats: usize, mut op: F) -> (Cost, Vec<T>)
where
    F: FnMut(Context, usize) -> Fut,
    Fut: std::future::Future<Output = T>,
{
    let mut costs = Vec::new();
    let mut outputs = Vec::new();
    for i in 0..repeats {
        let (counted, requests): (Context, RequestCounter) = count_all(ctx);
        let started = Instant::now();
        outputs.push(op(counted, i).await);
        let wall = started.elapsed();
        costs.push(Cost {
            requests: requests.count(),
            calls: requests.calls(),
            wall,
        });
    }
    (median(costs), outputs)
}

struct Args {
    repeats: usize,
    services: Vec<usize>,
    records: usize,
}

fn args() -> Args {
    let mut args = Args {
        repeats: 5,
        services: vec![1, 10, 100, 1000],
        records: 10_000,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--repeats" => args.repeats = value.parse().expect("--repeats N"),
            "--records" => args.records = value.parse().expect("--records N"),
            "--services" => {
                args.services = value
                    .split(',')
                    .map(|n| n.parse().expect("--services 1,10,100"))
                    .collect()
            }
            other => panic!("unknown argument {other}"),
        }
    }
    args
}

/// A world with `services` configs: `shop` and up to 9 more watching the pushed repository,
/// the rest watching a repository of their own.
async fn world_with(services: usize) -> World {
    let world = World::build().await;
    for i in 1..services {
        let mut config = world.config();
        if i < 10 {
            config.name = format!("shop-{i}");
        } else {
            config.name = format!("team{i}-app");
            config.source.repository = format!("team{i}/app");
        }
        world.put_config(&config).await;
    }
    world
}

/// One push of the watched repository through prepare (every watching service is started),
/// then each started deployment aborted (not measured) so the next push finds free locks.
async fn intake(world: &World, repeats: usize) -> Cost {
    let mut costs = Vec::new();
    for n in 0..repeats {
        let event = push_event(
            "v2",
            'a',
            &format!("bench-{n}"),
            &common::pushed_at(&format!("event-{n}")),
        );
        let (cost, started) = measure(&world.ctx, 1, |ctx, _| {
            let event = event.clone();
            async move {
                match prepare::run(&ctx, &event).await.expect("prepare") {
                    Prepared::Deployments { deployments } => deployments,
                    Prepared::Ignored { reason } => panic!("push ignored: {reason}"),
                }
            }
        })
        .await;
        for d in started.into_iter().flatten() {
            bluegreen::steps::abort::run(
                &world.ctx,
                &common::failure(&d.deployment_id, "HealthCheckFailed"),
            )
            .await
            .expect("abort");
        }
        costs.push(cost);
    }
    median(costs)
}

async fn history(world: &World, repeats: usize) -> Cost {
    measure(&world.ctx, repeats, |ctx, _| async move {
        Records::new(&ctx)
            .for_service("shop", 20)
            .await
            .expect("history");
    })
    .await
    .0
}

async fn status(world: &World, repeats: usize) -> Cost {
    let config = ConfigStore::new(&world.ctx).load("shop").await.unwrap();
    measure(&world.ctx, repeats, |ctx, _| {
        let config = config.clone();
        async move {
            bluegreen_ops::status::of(&ctx, config)
                .await
                .expect("status");
        }
    })
    .await
    .0
}

/// A control, not bluegreen: one raw Query of 20 items on the `by_service` index, straight
/// through the SDK. How long the emulator itself takes to answer a Query as its table grows
/// (moto evaluates a Query by walking the table; DynamoDB reads only the items returned).
async fn raw_query(world: &World, repeats: usize) -> Cost {
    measure(&world.ctx, repeats, |ctx, _| async move {
        ctx.sdk()
            .expect("SDK clients")
            .dynamodb
            .query()
            .table_name(&ctx.settings.deployments_table)
            .index_name("by_service")
            .key_condition_expression("#s = :s")
            .expression_attribute_names("#s", "service")
            .expression_attribute_values(
                ":s",
                aws_sdk_dynamodb::types::AttributeValue::S("shop".into()),
            )
            .scan_index_forward(false)
            .limit(20)
            .send()
            .await
            .expect("raw query");
    })
    .await
    .0
}

/// The console's list page, as an AWS-authenticated viewer, through the console's router.
async fn console_list(world: &World, repeats: usize) -> Cost {
    measure(&world.ctx, repeats, |ctx, _| async move {
        let app = bluegreen_console::router(ctx).layer(axum::Extension(CallerIdentity(
            "arn:aws:iam::123456789012:user/bench".into(),
        )));
        let request = axum::http::Request::builder()
            .uri("/")
            .body(axum::body::Body::empty())
            .unwrap();
        let response = app.oneshot(request).await.expect("console answers");
        assert_eq!(response.status(), 200, "the list page");
    })
    .await
    .0
}

/// Writes `n` succeeded records, one in 100 of them `shop`'s, copied from a real record of
/// `shop` (25 a BatchWriteItem call), newest a minute before now.
async fn seed_records(world: &World, n: usize) {
    let template = Records::new(&world.ctx)
        .for_service("shop", 1)
        .await
        .unwrap()
        .pop()
        .expect("a shop record to copy");
    let now = world.now();
    let mut batch = Vec::new();
    for i in 0..n {
        let mut d = template.clone();
        d.service = if i % 100 == 0 {
            "shop".into()
        } else {
            format!("team{}-app", 10 + i % 990)
        };
        d.deployment_id = format!("{}-seed-{i:05}", d.service);
        d.status = Status::Succeeded;
        d.created_at = now - chrono::Duration::minutes(1 + i as i64);
        d.updated_at = d.created_at;
        let item: HashMap<String, aws_sdk_dynamodb::types::AttributeValue> =
            serde_dynamo::to_item(&d).expect("record item");
        batch.push(
            WriteRequest::builder()
                .put_request(PutRequest::builder().set_item(Some(item)).build().unwrap())
                .build(),
        );
        if batch.len() == 25 || i + 1 == n {
            let mut pending = Some(std::mem::take(&mut batch));
            while let Some(items) = pending.take().filter(|b| !b.is_empty()) {
                let out = world
                    .aws
                    .dynamodb
                    .batch_write_item()
                    .request_items(&world.ctx.settings.deployments_table, items)
                    .send()
                    .await
                    .expect("batch write");
                pending = out
                    .unprocessed_items
                    .and_then(|mut u| u.remove(&world.ctx.settings.deployments_table));
            }
        }
    }
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

fn ratio(cost: &Cost, base: &Cost) -> String {
    format!("{:.2}", cost.wall.as_secs_f64() / base.wall.as_secs_f64())
}

fn operations(cost: &Cost) -> String {
    let mut counts: Vec<(String, usize)> = Vec::new();
    for call in &cost.calls {
        match counts.iter_mut().find(|(c, _)| c == call) {
            Some((_, n)) => *n += 1,
            None => counts.push((call.clone(), 1)),
        }
    }
    counts
        .iter()
        .map(|(c, n)| format!("{c} ×{n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[tokio::main]
async fn main() {
    let args = args();
    let (largest, rest) = args
        .services
        .split_last()
        .expect("--services names a world");
    println!(
        "## Intake of one push (median of {} pushes)\n",
        args.repeats
    );
    println!(
        "| services | watching the repository | AWS requests | wall ms | × smallest 10-watcher world |"
    );
    println!("|---:|---:|---:|---:|---:|");
    let mut base: Option<Cost> = None;
    let mut footnotes = Vec::new();
    let mut biggest = None;
    for (i, &n) in rest.iter().chain([largest]).enumerate() {
        let world = world_with(n).await;
        let cost = intake(&world, args.repeats).await;
        let watching = n.min(10);
        let relative = match (&base, watching) {
            (Some(b), 10) => ratio(&cost, b),
            (None, 10) => "1.00".into(),
            _ => "—".into(),
        };
        if watching == 10 && base.is_none() {
            base = Some(cost.clone());
        }
        println!(
            "| {n} | {watching} | {} | {} | {relative} |",
            cost.requests,
            ms(cost.wall)
        );
        footnotes.push(format!("{n} services: {}", operations(&cost)));
        if i == args.services.len() - 1 {
            biggest = Some(world);
        }
    }
    println!();
    for f in &footnotes {
        println!("- {f}");
    }
    let world = biggest.expect("the largest world");
    println!(
        "\n## Reads in the {largest}-service world (median of {} calls)\n",
        args.repeats
    );
    println!(
        "| deployment records | history shop (20): requests | ms | status shop: requests | ms | console list: requests | ms | control: one raw Query, ms |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut rows = Vec::new();
    for records in [0, args.records] {
        if records > 0 {
            seed_records(&world, records).await;
        }
        let total = Records::new(&world.ctx)
            .recent(usize::MAX)
            .await
            .unwrap()
            .len();
        let (h, s, c, q) = (
            history(&world, args.repeats).await,
            status(&world, args.repeats).await,
            console_list(&world, args.repeats).await,
            raw_query(&world, args.repeats).await,
        );
        println!(
            "| {total} | {} | {} | {} | {} | {} | {} | {} |",
            h.requests,
            ms(h.wall),
            s.requests,
            ms(s.wall),
            c.requests,
            ms(c.wall),
            ms(q.wall)
        );
        rows.push((total, h, s, c));
    }
    println!();
    if let Some((total, h, s, c)) = rows.last() {
        println!("- history ({total} records): {}", operations(h));
        println!("- status: {}", operations(s));
        println!("- console list: {}", operations(c));
    }
}
