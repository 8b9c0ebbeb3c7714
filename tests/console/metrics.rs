//! The delivery pages over a seeded history (`bluegreen_tests::history::standard`, numbers
//! worked out by hand): every service's four numbers, one service's with its charts and its
//! deployments, and who may see them.

use bluegreen_tests::history;

use crate::*;

const OPERATOR: &str = "arn:aws:iam::123456789012:user/oncall";

/// A world holding the standard history, its console served to `viewer`.
async fn seeded(viewer: Option<&str>) -> (World, Served, String) {
    let (listener, url) = listener().await;
    let world = World::build().await;
    let past = history::standard(chrono::Utc::now());
    history::seed(&world.ctx, &world.config(), &past).await;
    let console = serve(world.ctx.clone(), listener, viewer);
    (world, console, url)
}

#[tokio::test]
async fn the_metrics_pages_show_a_seeded_historys_numbers_and_charts() {
    let (_world, _console, url) = seeded(Some(OPERATOR)).await;

    let (status, page) = get(&format!("{url}/metrics")).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains(r#"href="/services/shop""#), "{page}");
    assert!(page.contains("all services"), "{page}");
    // Lead time median 20 min (p90 40), one change failure of three, restored in 10 min.
    assert!(page.contains("20m 00s (p90 40m 00s)"), "{page}");
    assert!(page.contains("33% (1 of 3)"), "{page}");
    assert!(page.contains("10m 00s (p90 10m 00s)"), "{page}");

    let (status, page) = get(&format!("{url}/services/shop")).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page.matches(r#"<svg class="chart""#).count(), 3, "{page}");
    for tag in ["v1", "v2", "v3", "v4"] {
        assert!(
            page.contains(&format!("/deployments/shop-{tag}")),
            "{tag}: {page}"
        );
    }
    // The lead-time chart: one bar per deployment that reached production.
    assert!(
        page.contains("v2: 40m 00s") && page.contains("v3: 5m 00s"),
        "{page}"
    );
    // Where the time goes: the bake of v1 took 9 minutes (switch at 20, bake from 21 to 30).
    assert!(page.contains("v1 · bake: 9m 00s"), "{page}");
    assert!(!page.contains("<script"), "no scripts");

    let (status, page) = get(&format!("{url}/services/shop?since=1h")).await;
    assert_eq!(status, 404, "nothing in the last hour: {page}");
    let (status, page) = get(&format!("{url}/metrics?since=soon")).await;
    assert_eq!(status, 400, "{page}");
    assert!(page.contains("not a window start"), "{page}");
}

#[tokio::test]
async fn the_metrics_pages_need_an_aws_identity() {
    let (_world, _console, url) = seeded(None).await;
    for path in ["/metrics", "/services/shop"] {
        let (status, page) = get(&format!("{url}{path}")).await;
        assert_eq!(status, 401, "{path}: {page}");
        assert!(!page.contains("20m 00s"), "{path} shows nothing: {page}");
    }
}
