//! Load test of the public console on loopback (`bench/console-load`): the console's Lambda
//! app over a fresh emulator world, behind a cap of concurrent requests like the function's
//! reserved concurrency (`ConsoleConcurrency`: past it, Lambda answers 429), hit by a bounded
//! number of requests with forged, expired and valid links mixed.
//!
//! It counts the DynamoDB requests the console makes (at the client) and reports, per kind of
//! link: answers by status, p50/p99 latency; and checks that forged and expired links never
//! reached DynamoDB (every DynamoDB request is accounted for by a valid link's page).
//! Arguments: `[requests] [client concurrency] [console concurrency]` (defaults 2000 32 10).

#[allow(dead_code)]
#[path = "../../steps/common.rs"]
mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::IntoResponse;
use bluegreen::links::{self, LinkClaims};
use bluegreen::steps::approval::{self, RequestInput};
use bluegreen_tests::World;
use tokio::sync::Semaphore;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Forged,
    Expired,
    Valid,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[tokio::main]
async fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| {
            a.parse()
                .expect("numbers: requests, client concurrency, console concurrency")
        })
        .collect();
    let requests = args.first().copied().unwrap_or(2000);
    let clients = args.get(1).copied().unwrap_or(32);
    let capacity = args.get(2).copied().unwrap_or(10);

    let world = World::build().await;
    let id = common::deploy_to_health(&world).await;
    approval::request(
        &world.ctx,
        &RequestInput {
            deployment_id: id.clone(),
            task_token: "bluegreen-local:load:Approval:1".into(),
        },
    )
    .await
    .expect("request approval");

    let key = world.ctx.signing_key().await.unwrap().expect("signing key");
    let now = chrono::Utc::now();
    let valid = links::sign(
        &key,
        &LinkClaims::new(&id, "alice@example.com", now + chrono::Duration::hours(1)),
    );
    let expired = links::sign(
        &key,
        &LinkClaims::new(&id, "alice@example.com", now - chrono::Duration::minutes(1)),
    );
    let mut forged = valid.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == 'A' { 'B' } else { 'A' });
    let made_up = links::sign(
        &bluegreen::links::SigningKey::new(b"an attacker's own key, 32 bytes+".to_vec()).unwrap(),
        &LinkClaims::new(&id, "mallory@example.com", now + chrono::Duration::hours(1)),
    );

    let (ctx, reads) = bluegreen_tests::serving::count_dynamodb(&world.ctx);
    // Lambda's reserved concurrency: at most `capacity` invocations at once, the rest 429.
    let slots = Arc::new(Semaphore::new(capacity));
    let app = bluegreen_console::lambda_app(ctx).layer(axum::middleware::from_fn(
        move |request: Request, next: Next| {
            let slots = slots.clone();
            async move {
                match slots.try_acquire() {
                    Ok(_permit) => next.run(request).await,
                    Err(_) => (StatusCode::TOO_MANY_REQUESTS, "Rate Exceeded.").into_response(),
                }
            }
        },
    ));
    let console =
        bluegreen_tests::serving::serve(app, bluegreen_tests::serving::loopback_listener().await);
    let base = console.url.clone();

    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(clients)
        .build()
        .unwrap();
    let gate = Arc::new(Semaphore::new(clients));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(requests);
    for i in 0..requests {
        // 3 in 5 forged (altered or made-up key), 1 in 5 expired, 1 in 5 valid.
        let (kind, link) = match i % 5 {
            0 | 1 => (
                Kind::Forged,
                if i % 2 == 0 {
                    forged.clone()
                } else {
                    made_up.clone()
                },
            ),
            2 => (Kind::Forged, forged.clone()),
            3 => (Kind::Expired, expired.clone()),
            _ => (Kind::Valid, valid.clone()),
        };
        let url = format!("{base}/deployments/{id}?link={link}");
        let (http, gate) = (http.clone(), gate.clone());
        tasks.push(tokio::spawn(async move {
            let _turn = gate.acquire_owned().await.unwrap();
            let sent = Instant::now();
            let status = match http.get(&url).send().await {
                Ok(r) => {
                    let status = r.status().as_u16();
                    let _ = r.bytes().await;
                    status
                }
                Err(_) => 0,
            };
            (kind, status, sent.elapsed())
        }));
    }
    let mut by_kind: BTreeMap<Kind, (BTreeMap<u16, usize>, Vec<Duration>)> = BTreeMap::new();
    for task in tasks {
        let (kind, status, took) = task.await.unwrap();
        let entry = by_kind.entry(kind).or_default();
        *entry.0.entry(status).or_default() += 1;
        entry.1.push(took);
    }
    let wall = started.elapsed();

    println!("kind      requests  answers (status: count)             p50       p99");
    let mut unexpected = 0;
    let mut all = Vec::new();
    for (kind, (statuses, mut times)) in by_kind.clone() {
        times.sort();
        all.extend(times.iter().copied());
        let expected: &[u16] = match kind {
            Kind::Forged => &[403, 429],
            Kind::Expired => &[410, 429],
            Kind::Valid => &[200, 429],
        };
        unexpected += statuses
            .iter()
            .filter(|(s, _)| !expected.contains(s))
            .map(|(_, n)| n)
            .sum::<usize>();
        println!(
            "{:<9} {:>8}  {:<35} {:>6.1} ms {:>6.1} ms",
            format!("{kind:?}").to_lowercase(),
            times.len(),
            statuses
                .iter()
                .map(|(s, n)| format!("{s}: {n}"))
                .collect::<Vec<_>>()
                .join(", "),
            percentile(&times, 0.5).as_secs_f64() * 1000.0,
            percentile(&times, 0.99).as_secs_f64() * 1000.0,
        );
    }
    all.sort();
    let valid_pages = by_kind
        .get(&Kind::Valid)
        .and_then(|(s, _)| s.get(&200).copied())
        .unwrap_or(0);
    let throttled: usize = by_kind.values().filter_map(|(s, _)| s.get(&429)).sum();
    let dynamodb = reads.count();
    // Each valid page is one GetItem; anything beyond came from a forged or expired link.
    let leaked = dynamodb.saturating_sub(valid_pages);
    println!(
        "console-load: {requests} requests ({clients} clients, console concurrency {capacity}) in \
         {:.1} s; p50 {:.1} ms, p99 {:.1} ms; 429: {throttled}; unexpected answers: {unexpected}; \
         DynamoDB requests: {dynamodb} for {valid_pages} valid pages; from forged or expired links: \
         {leaked}",
        wall.as_secs_f64(),
        percentile(&all, 0.5).as_secs_f64() * 1000.0,
        percentile(&all, 0.99).as_secs_f64() * 1000.0,
    );
    if unexpected > 0 || leaked > 0 || dynamodb < valid_pages {
        std::process::exit(1);
    }
}
