//! The consoles under abuse. The public console (the Lambda app behind a function URL with
//! `AuthType NONE`) checks a link before it reads the table: forged, altered and expired links
//! cost DynamoDB nothing (counted at the client), and server errors show a reference, not
//! AWS's text. The local console answers only its own loopback `Host` (DNS rebinding) and
//! takes a decision only from a form that carries its per-process token (CSRF).

use std::net::SocketAddr;
use std::sync::Arc;

use bluegreen::Context;
use bluegreen_tests::MOTO_CALLER;
use bluegreen_tests::serving::{
    count_dynamodb as counted, serve as serve_app, serve_local_console,
};
use reqwest::StatusCode;

use crate::*;

#[tokio::test]
async fn the_public_console_refuses_forged_and_expired_links_without_reading_the_table() {
    let (public, url) = listener().await;
    let world = world_with_console(&url).await;
    let id = awaiting(&world, LOCAL_TOKEN).await;
    let (ctx, dynamodb) = counted(&world.ctx);
    let console = serve_app(bluegreen_console::lambda_app(ctx), public);
    let token = token_of(&link_for(&world, &id, "alice@example.com").await);
    let mut altered = token.clone();
    let last = altered.pop().unwrap();
    altered.push(if last == 'A' { 'B' } else { 'A' });
    let other_deployment = id.replace("shop-", "shop-x");
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    let mut answers = Vec::new();
    for link in [altered.as_str(), "made.up", ""] {
        let page = client
            .get(format!("{}/deployments/{id}?link={link}", console.url))
            .send()
            .await
            .unwrap();
        answers.push(page.status());
        let list = client
            .get(format!("{}/?link={link}", console.url))
            .send()
            .await
            .unwrap();
        answers.push(list.status());
        let (status, _) = post_decision(
            &console.url,
            &id,
            &[("decision", "approve"), ("link", link)],
        )
        .await;
        answers.push(status);
    }
    // A genuine link, but for another deployment's page.
    let (status, _) = get(&format!(
        "{}/deployments/{other_deployment}?link={token}",
        console.url
    ))
    .await;
    answers.push(status);
    // The API routes need an IAM principal, which this function URL never has.
    let api = client
        .post(format!("{}/api/v1/deployments/{id}/approve", console.url))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    answers.push(api.status());
    assert!(
        answers
            .iter()
            .all(|s| matches!(*s, StatusCode::FORBIDDEN | StatusCode::UNAUTHORIZED)),
        "{answers:?}"
    );
    assert_eq!(dynamodb.count(), 0, "a refused request read the table");

    // An expired link: the clock moves past the approval window.
    let (late_ctx, late_reads) = counted(
        &world
            .ctx
            .clone()
            .with_clock(Arc::new(|| chrono::Utc::now() + chrono::Duration::days(2))),
    );
    let (late_listener, _) = listener().await;
    let late = serve_app(bluegreen_console::lambda_app(late_ctx), late_listener);
    let (status, page) = get(&format!("{}/deployments/{id}?link={token}", late.url)).await;
    assert_eq!(status, StatusCode::GONE, "{page}");
    assert_eq!(late_reads.count(), 0);

    // The counter counts: the genuine link reads the record.
    let (status, _) = get(&format!("{}/deployments/{id}?link={token}", console.url)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(dynamodb.count() > 0);
    assert_eq!(stored(&world, &id).await.approval.unwrap().decision, None);
}

#[tokio::test]
async fn server_errors_show_a_reference_and_never_aws_text() {
    let (public, url) = listener().await;
    let world = world_with_console(&url).await;
    let id = awaiting(&world, LOCAL_TOKEN).await;
    let token = token_of(&link_for(&world, &id, "alice@example.com").await);
    // The table is gone (a misconfigured stack): DynamoDB answers ResourceNotFoundException
    // with the table's name in its text.
    let mut ctx = world.ctx.clone();
    ctx.settings.deployments_table = "bluegreen-secret-table-name".into();
    let console = serve_app(bluegreen_console::lambda_app(ctx), public);
    let (status, page) = get(&format!("{}/deployments/{id}?link={token}", console.url)).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{page}");
    assert!(page.contains("reference"), "{page}");
    assert!(
        !page.contains("bluegreen-secret-table-name") && !page.contains("ResourceNotFound"),
        "AWS error text reached an anonymous caller: {page}"
    );
}

/// The local console on a loopback port, acting as moto's caller; its address.
async fn local_console(ctx: Context) -> (Served, SocketAddr) {
    let (listener, _) = listener().await;
    let address = listener.local_addr().unwrap();
    let app = bluegreen_console::local::app(ctx, address, Some(MOTO_CALLER.to_owned()));
    (serve_local_console(app, listener), address)
}

/// The value of the hidden `csrf` field in a page.
fn csrf_of(page: &str) -> Option<String> {
    let at = page.find("name=\"csrf\" value=\"")? + "name=\"csrf\" value=\"".len();
    Some(page[at..].split('"').next()?.to_owned())
}

#[tokio::test]
async fn the_local_console_answers_only_its_own_host_and_forms_with_its_token() {
    let world = World::build().await;
    let id = awaiting(&world, LOCAL_TOKEN).await;
    let (console, address) = local_console(world.ctx.clone()).await;
    let client = reqwest::Client::new();

    // DNS rebinding: a foreign name resolved to 127.0.0.1 sends its own Host (and Origin).
    let rebound = client
        .post(format!("{}/deployments/{id}/decision", console.url))
        .header("host", format!("attacker.example:{}", address.port()))
        .header(
            "origin",
            format!("http://attacker.example:{}", address.port()),
        )
        .form(&[("decision", "approve")])
        .send()
        .await
        .unwrap();
    assert_eq!(rebound.status(), StatusCode::MISDIRECTED_REQUEST);
    let page = client
        .get(format!("{}/deployments/{id}", console.url))
        .header("host", "attacker.example")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::MISDIRECTED_REQUEST);

    // A form posted from another page (no token, or a made-up one).
    for fields in [
        vec![("decision", "approve")],
        vec![("decision", "approve"), ("csrf", "0000")],
    ] {
        let (status, page) = post_decision(&console.url, &id, &fields).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{page}");
        assert!(page.contains("token"), "{page}");
    }
    assert_eq!(stored(&world, &id).await.approval.unwrap().decision, None);

    // The console's own page, at its own address, carries the token that works.
    let (status, page) = get(&format!(
        "http://localhost:{}/deployments/{id}",
        address.port()
    ))
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let csrf = csrf_of(&page).expect("the decision form carries a token");
    let (status, page) = post_decision(
        &console.url,
        &id,
        &[("decision", "approve"), ("csrf", &csrf)],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let approval = stored(&world, &id).await.approval.unwrap();
    assert_eq!(approval.approver.as_deref(), Some(MOTO_CALLER));

    // Another console process has another token.
    let (other, _) = local_console(world.ctx.clone()).await;
    let (_, other_page) = get(&format!("{}/deployments/{id}", other.url)).await;
    assert_ne!(csrf_of(&other_page), Some(csrf));
}

#[tokio::test]
async fn the_local_console_against_aws_shows_pages_and_takes_no_decision() {
    let world = World::build().await;
    let id = awaiting(&world, LOCAL_TOKEN).await;
    // The same clients, but the context says it talks to AWS (no loopback endpoint).
    let mut ctx = world.ctx.clone();
    ctx.endpoint_url = None;
    let (console, _) = local_console(ctx).await;
    let (status, page) = get(&format!("{}/deployments/{id}", console.url)).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(
        csrf_of(&page).is_none() && page.contains(&format!("bluegreen approve {id}")),
        "{page}"
    );
    let (status, page) = post_decision(&console.url, &id, &[("decision", "approve")]).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{page}");
    assert_eq!(stored(&world, &id).await.approval.unwrap().decision, None);
}

/// The security headers every console answer carries, refusals included.
const SECURITY_HEADERS: [&str; 5] = [
    "cache-control",
    "referrer-policy",
    "x-frame-options",
    "x-content-type-options",
    "content-security-policy",
];

/// One raw HTTP/1.1 exchange on a fresh connection: the status, the headers (lowercase names)
/// and the body of the answer. The request is written as given, however malformed; the server
/// may answer before it has read all of it.
async fn raw_exchange(
    address: SocketAddr,
    request: &[u8],
) -> (u16, std::collections::HashMap<String, String>, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let (mut reader, mut writer) = stream.split();
    let write = async {
        // The server may refuse and close before the whole request is written.
        let _ = writer.write_all(request).await;
    };
    let mut answer = Vec::new();
    let read = reader.read_to_end(&mut answer);
    let (_, read) = tokio::time::timeout(std::time::Duration::from_secs(20), async {
        tokio::join!(write, read)
    })
    .await
    .expect("the console answered in time");
    read.expect("the answer is readable");
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut response = httparse::Response::new(&mut headers);
    let httparse::Status::Complete(end) = response.parse(&answer).expect("an HTTP answer") else {
        panic!("incomplete answer: {}", String::from_utf8_lossy(&answer));
    };
    let headers = response
        .headers
        .iter()
        .map(|h| {
            (
                h.name.to_ascii_lowercase(),
                String::from_utf8_lossy(h.value).into_owned(),
            )
        })
        .collect();
    (
        response.code.unwrap(),
        headers,
        String::from_utf8_lossy(&answer[end..]).into_owned(),
    )
}

#[tokio::test]
async fn every_refusal_of_the_http_layer_carries_the_consoles_headers_and_names_the_problem() {
    let world = World::build().await;
    let (_console, address) = local_console(world.ctx.clone()).await;
    let host = format!("Host: {address}\r\n");
    let long_url = format!(
        "GET /deployments/x?link={} HTTP/1.1\r\n{host}\r\n",
        "a".repeat(100 * 1024)
    );
    let big_headers: String = (0..16)
        .map(|i| format!("X-Filler-{i}: {}\r\n", "h".repeat(4096)))
        .collect();
    let big_headers = format!("GET / HTTP/1.1\r\n{host}{big_headers}\r\n");
    let body = "reason=".to_owned() + &"r".repeat(128 * 1024);
    let big_body = format!(
        "POST /deployments/x/decision HTTP/1.1\r\n{host}Content-Type: \
         application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let cases: [(&str, Vec<u8>, u16, &str); 6] = [
        ("a 100 KB URL", long_url.into_bytes(), 414, "URL is longer"),
        (
            "64 KB of headers",
            big_headers.into_bytes(),
            431,
            "headers are larger",
        ),
        (
            "a request line that is not HTTP",
            b"HELLO\x01 THERE\r\n\r\n".to_vec(),
            400,
            "could not be read as HTTP",
        ),
        (
            "TLS spoken to the plain port",
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03".to_vec(),
            400,
            "could not be read as HTTP",
        ),
        ("a 128 KB body", big_body.into_bytes(), 413, "length limit"),
        (
            "an address nothing is served at",
            format!("GET /nothing/here HTTP/1.1\r\n{host}\r\n").into_bytes(),
            404,
            "nothing is served",
        ),
    ];
    for (what, request, status, names) in cases {
        let (got, headers, body) = raw_exchange(address, &request).await;
        assert_eq!(got, status, "{what}: {body}");
        for header in SECURITY_HEADERS {
            assert!(
                headers.contains_key(header),
                "{what}: no {header} in {headers:?}"
            );
        }
        assert_eq!(headers["cache-control"], "no-store", "{what}");
        assert!(
            body.contains(names),
            "{what}: the body does not say why: {body}"
        );
    }
    // The front door still lets an ordinary request through, on the same port.
    let (status, headers, _) = raw_exchange(
        address,
        format!("GET /deployments/nothing HTTP/1.1\r\n{host}\r\n").as_bytes(),
    )
    .await;
    assert_eq!(status, 404, "an unknown deployment");
    assert_eq!(headers["connection"], "close");
}

#[tokio::test]
async fn the_lambda_consoles_own_refusals_carry_its_headers() {
    let world = World::build().await;
    let app = bluegreen_console::lambda_app(world.ctx.clone());
    let requests = [
        (
            axum::http::Request::get("/nothing/here").body(axum::body::Body::empty()),
            404,
        ),
        (
            axum::http::Request::put("/").body(axum::body::Body::empty()),
            405,
        ),
        (
            axum::http::Request::post("/deployments/x/decision")
                .header("content-type", "application/x-www-form-urlencoded")
                .body(axum::body::Body::from(
                    "reason=".to_owned() + &"r".repeat(128 * 1024),
                )),
            413,
        ),
    ];
    for (request, status) in requests {
        use tower::ServiceExt;
        let response = app.clone().oneshot(request.unwrap()).await.unwrap();
        assert_eq!(response.status().as_u16(), status);
        for header in SECURITY_HEADERS {
            assert!(
                response.headers().contains_key(header),
                "{status}: no {header}"
            );
        }
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        assert!(!body.is_empty(), "{status}: an empty answer names nothing");
    }
}
