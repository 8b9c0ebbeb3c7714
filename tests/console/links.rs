//! Signed links: only a valid, unexpired, unused link for this deployment shows it or decides
//! it; every other link gets a clear page and changes nothing.

use bluegreen::links::{self, LinkClaims, SigningKey};
use bluegreen::record::Status;
use reqwest::StatusCode;

use crate::*;

/// The deployment still waits, undecided.
async fn assert_undecided(world: &bluegreen_tests::World, id: &str) {
    let d = stored(world, id).await;
    assert_eq!(d.status, Status::AwaitingApproval);
    assert_eq!(
        d.approval.unwrap().decision,
        None,
        "a decision was recorded"
    );
}

#[tokio::test]
async fn a_valid_link_shows_the_evidence_and_never_the_task_token() {
    let (world, console) = with_console().await;
    let id = awaiting(&world, LOCAL_TOKEN).await;
    let (status, page) = get(&link_for(&world, &id, "alice@example.com").await).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let d = stored(&world, &id).await;
    for evidence in [
        d.image.digest.as_str(),
        "v2",
        "2/2 targets healthy",
        "migration exited 0",
        "You are deciding as",
        "alice@example.com",
        "Approve and switch",
    ] {
        assert!(page.contains(evidence), "missing {evidence:?} in {page}");
    }
    assert!(!page.contains(LOCAL_TOKEN), "the task token is on the page");
    let (status, list) = get(&format!(
        "{}/?link={}",
        console.url,
        token_of(&link_for(&world, &id, "alice@example.com").await)
    ))
    .await;
    // A link opens its own deployment only: the list page sends its holder there, without
    // listing anyone else's deployments.
    assert_eq!(status, StatusCode::OK);
    assert!(
        list.contains(d.image.digest.as_str()) && !list.contains("Recent deployments"),
        "{list}"
    );
}

#[tokio::test]
async fn forged_links_are_refused_and_change_nothing() {
    let (world, console) = with_console().await;
    let id = awaiting(&world, LOCAL_TOKEN).await;
    let token = token_of(&link_for(&world, &id, "alice@example.com").await);
    // Same claims, altered signature; and a link signed with a key the attacker made up.
    let mut altered = token.clone();
    let last = altered.pop().unwrap();
    altered.push(if last == 'A' { 'B' } else { 'A' });
    let made_up = links::sign(
        &SigningKey::new(vec![42u8; 32]).unwrap(),
        &LinkClaims::new(
            &id,
            "alice@example.com",
            world.now() + chrono::Duration::hours(1),
        ),
    );
    for forged in [altered, made_up, "not-a-link".to_owned()] {
        let (status, page) = get(&format!("{}/deployments/{id}?link={forged}", console.url)).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{page}");
        assert!(page.contains("Nothing was changed"), "{page}");
        let (status, page) = post_decision(
            &console.url,
            &id,
            &[("decision", "approve"), ("link", &forged)],
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{page}");
    }
    assert_undecided(&world, &id).await;
}

#[tokio::test]
async fn an_expired_link_is_refused_and_changes_nothing() {
    let (world, console) = with_console().await;
    let id = awaiting(&world, LOCAL_TOKEN).await;
    let link = link_for(&world, &id, "alice@example.com").await;
    // The link expires with the approval window (3600 s in the test config).
    world.advance(chrono::Duration::seconds(3601));
    let (status, page) = get(&link).await;
    assert_eq!(status, StatusCode::GONE, "{page}");
    assert!(page.contains("expired"), "{page}");
    let (status, _) = post_decision(
        &console.url,
        &id,
        &[("decision", "approve"), ("link", &token_of(&link))],
    )
    .await;
    assert_eq!(status, StatusCode::GONE);
    assert_undecided(&world, &id).await;
}

#[tokio::test]
async fn a_used_link_cannot_decide_or_show_again() {
    let (world, console) = with_console().await;
    let id = awaiting(&world, LOCAL_TOKEN).await;
    let link = link_for(&world, &id, "alice@example.com").await;
    let token = token_of(&link);
    let (status, page) = post_decision(
        &console.url,
        &id,
        &[("decision", "approve"), ("link", &token)],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("Approved"), "{page}");
    let (status, page) = post_decision(
        &console.url,
        &id,
        &[
            ("decision", "reject"),
            ("reason", "changed my mind"),
            ("link", &token),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{page}");
    assert!(page.contains("already been used"), "{page}");
    let (status, _) = get(&link).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let approval = stored(&world, &id).await.approval.unwrap();
    assert_eq!(
        (
            approval.decision,
            approval.approver.as_deref(),
            approval.channel.as_deref()
        ),
        (
            Some(bluegreen::record::Verdict::Approved),
            Some("alice@example.com"),
            Some("console")
        )
    );
}

#[tokio::test]
async fn another_deployments_link_and_no_link_are_refused() {
    let (world, console) = with_console().await;
    let id = awaiting(&world, LOCAL_TOKEN).await;
    let key = world.ctx.signing_key().await.unwrap().unwrap();
    let elsewhere = links::sign(
        &key,
        &LinkClaims::new(
            "shop-other",
            "alice@example.com",
            world.now() + chrono::Duration::hours(1),
        ),
    );
    let (status, page) = post_decision(
        &console.url,
        &id,
        &[("decision", "approve"), ("link", &elsewhere)],
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{page}");
    assert!(page.contains("another deployment"), "{page}");
    for path in ["/".to_owned(), format!("/deployments/{id}")] {
        let (status, page) = get(&format!("{}{path}", console.url)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}: {page}");
    }
    let (status, _) = post_decision(&console.url, &id, &[("decision", "approve")]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_undecided(&world, &id).await;
}

#[tokio::test]
async fn a_rejection_without_a_reason_is_refused_and_the_link_still_works() {
    let (world, console) = with_console().await;
    let id = awaiting(&world, LOCAL_TOKEN).await;
    let token = token_of(&link_for(&world, &id, "bob@example.com").await);
    let (status, page) = post_decision(
        &console.url,
        &id,
        &[("decision", "reject"), ("reason", "  "), ("link", &token)],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{page}");
    assert_undecided(&world, &id).await;
    let (status, page) = post_decision(
        &console.url,
        &id,
        &[
            ("decision", "reject"),
            ("reason", "error rate on /cart"),
            ("link", &token),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let approval = stored(&world, &id).await.approval.unwrap();
    assert_eq!(approval.reason.as_deref(), Some("error rate on /cart"));
    assert_eq!(approval.approver.as_deref(), Some("bob@example.com"));
}

#[tokio::test]
async fn an_iam_identity_decides_only_if_listed_and_only_from_the_console_itself() {
    let world = World::build().await;
    let id = awaiting(&world, LOCAL_TOKEN).await;
    let (socket, _) = listener().await;
    let stranger = serve(
        world.ctx.clone(),
        socket,
        Some("arn:aws:iam::123456789012:user/mallory"),
    );
    let (status, page) = post_decision(&stranger.url, &id, &[("decision", "approve")]).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{page}");
    assert!(page.contains("NotAnApprover"), "{page}");
    let (socket, _) = listener().await;
    let operator = serve(
        world.ctx.clone(),
        socket,
        Some(bluegreen_tests::MOTO_CALLER),
    );
    // A form on another site posting to the console must not ride on the identity.
    let response = reqwest::Client::new()
        .post(format!("{}/deployments/{id}/decision", operator.url))
        .header("Origin", "https://evil.example")
        .form(&[("decision", "approve")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_undecided(&world, &id).await;
    let (status, page) = post_decision(&operator.url, &id, &[("decision", "approve")]).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(
        stored(&world, &id)
            .await
            .approval
            .unwrap()
            .approver
            .as_deref(),
        Some(bluegreen_tests::MOTO_CALLER)
    );
}
