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

/// An HTTP endpoint that keeps the bodies SNS delivers to it.
async fn sns_endpoint() -> (String, Arc<Mutex<Vec<String>>>) {
    let received = Arc::new(Mutex::new(Vec::new()));
    let keep = received.clone();
    let app = Router::new().route(
        "/sns",
        post(move |body: String| {
            let keep = keep.clone();
            async move {
                keep.lock().unwrap().push(body);
                "ok"
            }
        }),
    );
    let (listener, url) = listener().await;
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("{url}/sns"), received)
}

#[tokio::test]
async fn each_approvers_filtered_subscription_receives_only_their_own_link() {
    use bluegreen_ops::subscriptions;
    let (world, _console) = with_console().await;
    let sns = &world.aws.sns;
    // Subscriptions as `bluegreen approvers subscribe` makes them (HTTP endpoints here, where
    // moto delivers and applies filter policies; e-mail in AWS), and a team channel that asks
    // for outcomes only.
    let mut inboxes = Vec::new();
    for (who, filter) in [
        (
            "alice@example.com",
            subscriptions::approver_filter("alice@example.com"),
        ),
        (
            "bob@example.com",
            subscriptions::approver_filter("bob@example.com"),
        ),
        (
            "team",
            r#"{"kind": ["succeeded", "aborted", "rolled_back"]}"#.to_owned(),
        ),
    ] {
        let (url, inbox) = sns_endpoint().await;
        sns.subscribe()
            .topic_arn(&world.topic_arn)
            .protocol("http")
            .endpoint(url)
            .attributes("FilterPolicy", filter)
            .send()
            .await
            .expect("subscribe");
        inboxes.push((who, inbox));
    }
    assert_eq!(subscriptions::audit(&world.ctx).await.unwrap(), vec![]);

    let id = awaiting(&world, LOCAL_TOKEN).await;
    let alice_link = token_of(&link_for(&world, &id, "alice@example.com").await);
    let bob_link = token_of(&link_for(&world, &id, "bob@example.com").await);
    for (who, inbox) in &inboxes {
        let bodies = inbox.lock().unwrap().clone();
        let with = |link: &str| bodies.iter().filter(|b| b.contains(link)).count();
        match *who {
            "alice@example.com" => assert_eq!(
                (with(&alice_link), with(&bob_link), bodies.len()),
                (1, 0, 1)
            ),
            "bob@example.com" => assert_eq!(
                (with(&alice_link), with(&bob_link), bodies.len()),
                (0, 1, 1)
            ),
            _ => assert!(bodies.iter().all(|b| !b.contains("?link=")), "{bodies:?}"),
        }
    }

    // A subscription without a filter (or with one admitting everyone) would see every link:
    // the audit names it.
    let (open, _) = sns_endpoint().await;
    sns.subscribe()
        .topic_arn(&world.topic_arn)
        .protocol("http")
        .endpoint(&open)
        .send()
        .await
        .expect("subscribe");
    let exposed = subscriptions::audit(&world.ctx).await.unwrap();
    assert_eq!(exposed.len(), 1, "{exposed:?}");
    assert!(
        exposed[0].endpoint.ends_with(&open) && exposed[0].problem.contains("no filter policy")
    );
}

#[tokio::test]
async fn subscribing_a_services_approvers_gives_each_their_own_filter_once() {
    let world = World::build().await.with_topic();
    let config = world.config();
    let first = bluegreen_ops::subscriptions::subscribe_approvers(&world.ctx, &config)
        .await
        .unwrap();
    let emails: Vec<&str> = first.iter().map(|s| s.approver.as_str()).collect();
    assert_eq!(
        emails,
        ["alice@example.com", "bob@example.com"],
        "IAM principals get no links"
    );
    let again = bluegreen_ops::subscriptions::subscribe_approvers(&world.ctx, &config)
        .await
        .unwrap();
    assert_eq!(first, again, "a repeat answers the same subscriptions");
    for s in &first {
        let attributes = world
            .aws
            .sns
            .get_subscription_attributes()
            .subscription_arn(&s.subscription_arn)
            .send()
            .await
            .unwrap()
            .attributes
            .unwrap();
        assert_eq!(
            attributes["FilterPolicy"],
            bluegreen_ops::subscriptions::approver_filter(&s.approver)
        );
    }
    assert_eq!(
        bluegreen_ops::subscriptions::audit(&world.ctx)
            .await
            .unwrap(),
        vec![]
    );
}
