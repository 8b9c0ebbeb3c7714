//! Notifications: one SNS message per approver with that approver's own link (filterable by the
//! `approver` attribute), the webhook without links, and a superseded push announced.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::routing::post;
use bluegreen::steps::prepare::{self, Prepared};
use bluegreen_tests::push_event;

use crate::*;

/// A Slack-compatible incoming webhook that keeps what it is sent.
async fn webhook() -> (String, Arc<Mutex<Vec<serde_json::Value>>>) {
    let received = Arc::new(Mutex::new(Vec::new()));
    let keep = received.clone();
    let app = Router::new().route(
        "/hook",
        post(move |body: axum::Json<serde_json::Value>| {
            let keep = keep.clone();
            async move {
                keep.lock().unwrap().push(body.0);
                "ok"
            }
        }),
    );
    let (listener, url) = listener().await;
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("{url}/hook"), received)
}

#[tokio::test]
async fn each_approver_gets_their_own_link_and_the_webhook_gets_none() {
    let (hook, received) = webhook().await;
    let mut world = world_with_console("https://console.example.com").await;
    world.ctx.settings.webhook_url = Some(hook);
    let id = awaiting(&world, LOCAL_TOKEN).await;
    let sent = links_sent(&world, &id).await;
    let approvers = world.config().approval.approvers;
    assert_eq!(
        sent.iter().map(|(who, _)| who.clone()).collect::<Vec<_>>(),
        approvers
    );
    let key = world.ctx.signing_key().await.unwrap().unwrap();
    for (approver, url) in &sent {
        let claims = bluegreen::links::verify(&key, &token_of(url), &id, world.now()).unwrap();
        assert_eq!(&claims.approver, approver);
    }
    let posts = received.lock().unwrap().clone();
    assert_eq!(posts.len(), 1, "{posts:?}");
    let text = posts[0]["text"].as_str().unwrap();
    assert!(
        text.contains("shop is ready to switch to shop/web:v2")
            && text.contains(&format!("https://console.example.com/deployments/{id}")),
        "{text}"
    );
    assert!(
        !text.contains("link="),
        "a shared channel got a personal link: {text}"
    );
    assert!(!text.contains(LOCAL_TOKEN), "the task token leaked: {text}");
}

#[tokio::test]
async fn a_superseded_push_is_announced() {
    let world = World::build().await.with_topic();
    let running = prepare_push(&world, "v2", "event-1").await;
    for (tag, digest, event, at) in [
        ("v3", 'b', "event-2", "2026-11-21T10:01:00Z"),
        ("v4", 'd', "event-3", "2026-11-21T10:02:00Z"),
    ] {
        let prepared = prepare::run(&world.ctx, &push_event(tag, digest, event, at))
            .await
            .unwrap();
        assert!(
            matches!(prepared, Prepared::Deployments { .. }),
            "{prepared:?}"
        );
    }
    let kinds: Vec<(String, String)> = world
        .published()
        .await
        .iter()
        .map(|m| {
            (
                m["attributes"]["kind"].as_str().unwrap().to_owned(),
                m["message"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        kinds.len(),
        1,
        "only the superseded push is news: {kinds:?}"
    );
    assert_eq!(kinds[0].0, "superseded");
    assert!(kinds[0].1.contains("shop/web:v3"), "{kinds:?}");
    assert_eq!(
        world.lock_holder().await.as_deref(),
        Some(running.as_str()),
        "the running deployment carries on"
    );
}
