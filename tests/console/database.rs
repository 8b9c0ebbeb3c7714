//! What the console tells an approver about production's database, for both shared settings:
//! whether the production migration already ran (and what a rejection does about it).

use bluegreen::config::MigrationRun;
use reqwest::StatusCode;

use crate::*;

async fn page_and_rejection(run: MigrationRun) -> (String, String) {
    let (world, console) = with_console().await;
    let mut config = world.config();
    let migration = config.migration.as_mut().unwrap();
    migration.run = Some(run);
    migration.rollback_command = Some(vec!["bin/migrate".into(), "down".into()]);
    world.put_config(&config).await;
    let id = awaiting(&world, LOCAL_TOKEN).await;
    let link = link_for(&world, &id, "alice@example.com").await;
    let (status, page) = get(&link).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let (status, decided) = post_decision(
        &console.url,
        &id,
        &[
            ("decision", "reject"),
            ("link", &token_of(&link)),
            ("reason", "not today"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{decided}");
    (page, decided)
}

#[tokio::test]
async fn before_launch_the_approver_is_told_production_was_already_migrated() {
    let (page, decided) = page_and_rejection(MigrationRun::BeforeLaunch).await;
    let said = "The production migration has already run on production's database; \
                rejecting will not revert it by itself: bluegreen will run the rollback \
                command `bin/migrate down` and wait for it.";
    assert!(page.contains(said), "{page}");
    assert!(!page.contains("untouched"), "{page}");
    assert!(decided.contains(said), "{decided}");
    assert!(!decided.contains("production is untouched"), "{decided}");
}

#[tokio::test]
async fn after_approval_the_approver_is_told_production_is_untouched_until_then() {
    let (page, decided) = page_and_rejection(MigrationRun::AfterApproval).await;
    let said = "The production database is untouched: the production migration runs only \
                after approval; rejecting leaves it as it is.";
    assert!(page.contains(said), "{page}");
    assert!(
        page.contains("After approval and before any traffic moves, the new slot is migrated on production, health-checked again."),
        "{page}"
    );
    assert!(decided.contains(said), "{decided}");
}
