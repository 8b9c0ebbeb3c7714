//! The approval console and the operator actions, against a fresh moto per test: signed links
//! (forged, expired, reused, another deployment's), decisions recorded once and delivered to a
//! real waiting Step Functions execution (moto's interpreter), notifications, the manual
//! rollback, and a real browser approving a deployment that then switches.

#[allow(dead_code)]
#[path = "../steps/common.rs"]
mod common;

mod browser;
mod database;
mod decisions;
mod hardening;
mod links;
mod metrics;
mod notifications;
mod operator;
mod release;

use bluegreen::Context;
use bluegreen::record::{Deployment, Records};
use bluegreen::steps::approval::{self, RequestInput};
use bluegreen_console::CallerIdentity;
use bluegreen_tests::World;

use common::*;

pub use bluegreen_tests::serving::Served;

/// A listener on a free loopback port and its base URL (bound before serving, so links can
/// name it).
pub async fn listener() -> (tokio::net::TcpListener, String) {
    let listener = bluegreen_tests::serving::loopback_listener().await;
    let url = format!("http://{}", listener.local_addr().unwrap());
    (listener, url)
}

/// Serves the console over `ctx` on `listener`. With `operator`, every request carries that
/// AWS identity, as behind an IAM-authorized API or from the local operator.
pub fn serve(ctx: Context, listener: tokio::net::TcpListener, operator: Option<&str>) -> Served {
    let mut app = bluegreen_console::router(ctx);
    if let Some(arn) = operator {
        app = app.layer(axum::Extension(CallerIdentity(arn.to_owned())));
    }
    bluegreen_tests::serving::serve(app, listener)
}

/// A world whose notifications go to its topic and whose links point at a console about to be
/// served on `url`.
pub async fn world_with_console(url: &str) -> World {
    let mut world = World::build().await.with_topic();
    world.ctx.settings.console_url = Some(url.to_owned());
    world
}

/// A world whose links point at a console served over its context.
pub async fn with_console() -> (World, Served) {
    let (listener, url) = listener().await;
    let world = world_with_console(&url).await;
    let console = serve(world.ctx.clone(), listener, None);
    (world, console)
}

/// The request-approval step, with `task_token` as the waiting task's token.
pub async fn request_with(world: &World, id: &str, task_token: &str) {
    approval::request(
        &world.ctx,
        &RequestInput {
            deployment_id: id.to_owned(),
            task_token: task_token.to_owned(),
        },
    )
    .await
    .expect("request approval");
}

/// Runs a deployment to awaiting approval with `task_token` stored as the waiting task's token.
pub async fn awaiting(world: &World, task_token: &str) -> String {
    let id = deploy_to_health(world).await;
    request_with(world, &id, task_token).await;
    id
}

/// A token the local runner would issue: decisions are picked up from the record.
pub const LOCAL_TOKEN: &str = "bluegreen-local:test-execution:Approval:1";

/// The signed link each approver was sent for `id`, from the SNS messages (approver, URL).
pub async fn links_sent(world: &World, id: &str) -> Vec<(String, String)> {
    world
        .published()
        .await
        .into_iter()
        .filter(|m| m["attributes"]["kind"] == "awaiting_approval")
        .filter(|m| m["attributes"]["deployment_id"] == id)
        .map(|m| {
            let text = m["message"].as_str().unwrap_or_default();
            let url = text
                .split_whitespace()
                .find(|w| w.contains("?link="))
                .unwrap_or_else(|| panic!("no link in {text}"))
                .to_owned();
            (
                m["attributes"]["approver"].as_str().unwrap().to_owned(),
                url,
            )
        })
        .collect()
}

/// The link URL sent to `approver`.
pub async fn link_for(world: &World, id: &str, approver: &str) -> String {
    links_sent(world, id)
        .await
        .into_iter()
        .find(|(who, _)| who == approver)
        .map(|(_, url)| url)
        .unwrap_or_else(|| panic!("no link sent to {approver}"))
}

/// The `link` parameter of a console URL.
pub fn token_of(url: &str) -> String {
    url.split("?link=")
        .nth(1)
        .expect("link parameter")
        .to_owned()
}

/// Posts a decision form; returns the status and the page.
pub async fn post_decision(
    base: &str,
    id: &str,
    fields: &[(&str, &str)],
) -> (reqwest::StatusCode, String) {
    let response = reqwest::Client::new()
        .post(format!("{base}/deployments/{id}/decision"))
        .form(fields)
        .send()
        .await
        .expect("console answers");
    let status = response.status();
    (status, response.text().await.unwrap_or_default())
}

/// GETs a console URL; returns the status and the page.
pub async fn get(url: &str) -> (reqwest::StatusCode, String) {
    let response = reqwest::get(url).await.expect("console answers");
    let status = response.status();
    (status, response.text().await.unwrap_or_default())
}

/// The stored record.
pub async fn stored(world: &World, id: &str) -> Deployment {
    Records::new(&world.ctx).get(id).await.expect("record")
}
