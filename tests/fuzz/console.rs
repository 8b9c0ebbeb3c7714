//! The console's request handling, on the emulator: generated requests to the pages and the
//! operator API (as an approver and anonymously, with links, forms and bodies from the
//! hostile alphabet), and raw request heads to the local console's front door.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::{Body, to_bytes};
use axum::http::Request;
use bluegreen::record::{Deployment, Records};
use bluegreen_console::CallerIdentity;
use bluegreen_tests::{MOTO_CALLER, World};
use proptest::prelude::*;
use tower::ServiceExt;

use crate::common::deploy_to_health;
use crate::{Verdict, acted_on, campaign, hostile_char, hostile_string, stores_refused};

/// The headers every console answer carries.
const SECURITY_HEADERS: [&str; 5] = [
    "cache-control",
    "referrer-policy",
    "x-frame-options",
    "x-content-type-options",
    "content-security-policy",
];

/// A world with a deployment awaiting approval (a local runner's token: decisions are only
/// recorded), whose record is the template for a fresh one per input.
struct Fixture {
    runtime: tokio::runtime::Runtime,
    world: World,
    template: Deployment,
}

fn fixture() -> Fixture {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (world, template) = runtime.block_on(async {
        let world = World::build().await;
        let id = deploy_to_health(&world).await;
        bluegreen::steps::approval::request(
            &world.ctx,
            &bluegreen::steps::approval::RequestInput {
                deployment_id: id.clone(),
                task_token: "bluegreen-local:fuzz:Approval:1".into(),
            },
        )
        .await
        .unwrap();
        let template = Records::new(&world.ctx).get(&id).await.unwrap();
        (world, template)
    });
    Fixture {
        runtime,
        world,
        template,
    }
}

/// One generated request.
#[derive(Debug, Clone)]
struct Generated {
    method: &'static str,
    /// `None`: the fresh deployment's id.
    id: Option<String>,
    route: Route,
    /// A `link` query parameter.
    query: Option<String>,
    form: Vec<(String, String)>,
    json: Option<String>,
    as_approver: bool,
}

#[derive(Debug, Clone, Copy)]
enum Route {
    List,
    Page,
    Decision,
    ApiApprove,
    ApiReject,
    Other,
}

fn generated() -> impl Strategy<Value = Generated> {
    let method = prop::sample::select(vec!["GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS"]);
    let id = prop_oneof![3 => Just(None), 1 => hostile_string(30).prop_map(Some)];
    let route = prop::sample::select(vec![
        Route::List,
        Route::Page,
        Route::Decision,
        Route::ApiApprove,
        Route::ApiReject,
        Route::Other,
    ]);
    let query = prop::option::of(hostile_string(60));
    let decision = prop_oneof![
        2 => Just("approve".to_owned()),
        3 => Just("reject".to_owned()),
        1 => hostile_string(20),
    ];
    let reason = prop_oneof![
        4 => hostile_string(80),
        1 => prop::collection::vec(hostile_char(), 900..1100)
            .prop_map(|c| c.into_iter().collect::<String>()),
    ];
    let extra = prop::collection::vec(
        (
            prop::sample::select(vec!["link", "csrf", "decision", "other"]).prop_map(str::to_owned),
            hostile_string(40),
        ),
        0..3,
    );
    let form = prop_oneof![
        1 => Just(Vec::new()),
        4 => (decision, reason, extra).prop_map(|(decision, reason, extra)| {
            let mut form = vec![("decision".to_owned(), decision), ("reason".to_owned(), reason)];
            form.extend(extra);
            form
        }),
    ];
    let json = prop::option::of(prop_oneof![
        hostile_string(80).prop_map(|r| serde_json::json!({ "reason": r }).to_string()),
        hostile_string(80),
    ]);
    (method, id, route, query, form, json, any::<bool>()).prop_map(
        |(method, id, route, query, form, json, as_approver)| Generated {
            method,
            id,
            route,
            query,
            form,
            json,
            as_approver,
        },
    )
}

/// `s` percent-encoded for a URL path or query (every byte outside the unreserved set).
fn encoded(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            b => format!("%{b:02X}"),
        })
        .collect()
}

impl Generated {
    fn request(&self, fresh: &str) -> Request<Body> {
        let id = encoded(self.id.as_deref().unwrap_or(fresh));
        let path = match self.route {
            Route::List => "/".to_owned(),
            Route::Page => format!("/deployments/{id}"),
            Route::Decision => format!("/deployments/{id}/decision"),
            Route::ApiApprove => format!("/api/v1/deployments/{id}/approve"),
            Route::ApiReject => format!("/api/v1/deployments/{id}/reject"),
            Route::Other => format!("/{id}/{id}"),
        };
        let uri = match &self.query {
            Some(link) => format!("{path}?link={}", encoded(link)),
            None => path,
        };
        let builder = Request::builder().method(self.method).uri(uri);
        match (&self.json, self.form.is_empty()) {
            (Some(json), _) if matches!(self.route, Route::ApiApprove | Route::ApiReject) => {
                builder
                    .header("content-type", "application/json")
                    .body(Body::from(json.clone()))
            }
            (_, false) => {
                let form: Vec<String> = self
                    .form
                    .iter()
                    .map(|(k, v)| format!("{}={}", encoded(k), encoded(v)))
                    .collect();
                builder
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(Body::from(form.join("&")))
            }
            _ => builder.body(Body::empty()),
        }
        .expect("a request the client could send")
    }
}

#[test]
fn the_console_answers_every_request_with_its_headers_and_stores_no_control() {
    let fixture = fixture();
    let ctx = fixture.world.ctx.clone();
    let records = Records::new(&ctx);
    let counter = std::sync::atomic::AtomicUsize::new(0);
    let pages = bluegreen_console::router(ctx.clone());
    let as_approver = bluegreen_console::router(ctx.clone())
        .layer(axum::Extension(CallerIdentity(MOTO_CALLER.to_owned())));
    let api = bluegreen_console::lambda_app(ctx.clone());
    campaign("console requests", generated(), |input| {
        fixture.runtime.block_on(async {
            // A fresh deployment awaiting approval for every input: a decision can land once.
            let n = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let fresh = format!("{}-f{n}", fixture.template.deployment_id);
            let mut deployment = fixture.template.clone();
            deployment.deployment_id = fresh.clone();
            records.create(&deployment).await.unwrap();
            let app = match (input.route, input.as_approver) {
                (Route::ApiApprove | Route::ApiReject, _) => api.clone(),
                (_, true) => as_approver.clone(),
                (_, false) => pages.clone(),
            };
            let response = app.oneshot(input.request(&fresh)).await.unwrap();
            let status = response.status();
            for header in SECURITY_HEADERS {
                prop_assert!(
                    response.headers().contains_key(header),
                    "{status}: no {header}"
                );
            }
            let body = to_bytes(response.into_body(), usize::MAX).await.unwrap();
            let body = String::from_utf8_lossy(&body);
            prop_assert_eq!(acted_on(&body), None, "{}: {}", status, body);
            let stored = records.get(&fresh).await.unwrap();
            let stored = serde_json::to_value(&stored).unwrap();
            prop_assert!(!stores_refused(&stored), "stored: {stored}");
            // Gone again, so the list page reads what one input left, not what all of them did.
            ctx.sdk()
                .unwrap()
                .dynamodb
                .delete_item()
                .table_name(&ctx.settings.deployments_table)
                .key(
                    "deployment_id",
                    aws_sdk_dynamodb::types::AttributeValue::S(fresh.clone()),
                )
                .send()
                .await
                .unwrap();
            Ok(if status.is_success() {
                Verdict::Accepted
            } else {
                Verdict::Rejected
            })
        })
    });
}

/// A request head for the front door: an ordinary or generated request line, generated
/// headers, always ended (so the door judges it at once).
fn head() -> impl Strategy<Value = Vec<u8>> {
    let line = prop_oneof![
        "[a-z0-9/_-]{0,40}".prop_map(|p| format!("GET /{p} HTTP/1.1")),
        hostile_string(60).prop_map(|p| format!("GET /{p} HTTP/1.1")),
        hostile_string(60),
        prop::collection::vec(any::<u8>(), 0..60)
            .prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
        (9_000usize..70_000).prop_map(|n| format!("GET /?x={} HTTP/1.1", "a".repeat(n))),
    ];
    let header = (hostile_string(20), hostile_string(60)).prop_map(|(n, v)| format!("{n}: {v}"));
    let headers = prop_oneof![
        4 => prop::collection::vec(header, 0..8),
        1 => (60usize..80).prop_map(|n| (0..n).map(|i| format!("X-{i}: v")).collect()),
        1 => (1usize..3).prop_map(|n| vec![format!("X-Big: {}", "b".repeat(n * 20_000))]),
    ];
    (line, headers).prop_map(|(line, headers)| {
        let mut head = format!("{line}\r\n");
        for h in headers {
            head.push_str(&h);
            head.push_str("\r\n");
        }
        head.push_str("\r\n");
        head.into_bytes()
    })
}

#[test]
fn the_front_door_answers_every_head_with_the_consoles_headers() {
    let fixture = fixture();
    let (address, _served) = fixture.runtime.block_on(async {
        let listener = bluegreen_tests::serving::loopback_listener().await;
        let address = listener.local_addr().unwrap();
        let app = bluegreen_console::local::app(
            fixture.world.ctx.clone(),
            address,
            Some(MOTO_CALLER.to_owned()),
        );
        let served = bluegreen_tests::serving::serve_local_console(app, listener);
        (address, Arc::new(served))
    });
    campaign("front door", head(), |mut head| {
        fixture.runtime.block_on(async {
            // Some heads name this console's own address, so they reach the pages.
            if head.starts_with(b"GET /") && head.len() < 4096 {
                let end = head.len() - 2;
                head.splice(end..end, format!("Host: {address}\r\n").into_bytes());
            }
            let (status, headers, body) = exchange(address, &head).await?;
            for header in SECURITY_HEADERS {
                prop_assert!(headers.iter().any(|h| h == header), "{status}: no {header}");
            }
            prop_assert_eq!(acted_on(&body), None, "{}: {}", status, body);
            Ok(if status < 400 {
                Verdict::Accepted
            } else {
                Verdict::Rejected
            })
        })
    });
}

/// Sends `head` on a fresh connection and reads the whole answer: (status, header names,
/// body). No answer at all is a failure.
async fn exchange(
    address: SocketAddr,
    head: &[u8],
) -> Result<(u16, Vec<String>, String), TestCaseError> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let (mut reader, mut writer) = stream.split();
    let write = async {
        let _ = writer.write_all(head).await;
    };
    let mut answer = Vec::new();
    let read = reader.read_to_end(&mut answer);
    let exchanged = tokio::time::timeout(std::time::Duration::from_secs(30), async {
        tokio::join!(write, read)
    })
    .await;
    prop_assert!(exchanged.is_ok(), "no answer within 30 s");
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut response = httparse::Response::new(&mut headers);
    let parsed = response.parse(&answer);
    let Ok(httparse::Status::Complete(end)) = parsed else {
        return Err(TestCaseError::fail(format!(
            "not an HTTP answer: {:?}",
            String::from_utf8_lossy(&answer)
        )));
    };
    Ok((
        response.code.unwrap_or_default(),
        response
            .headers
            .iter()
            .map(|h| h.name.to_ascii_lowercase())
            .collect(),
        String::from_utf8_lossy(&answer[end..]).into_owned(),
    ))
}
