//! Event intake: the sample events in `events/` as AWS sends them.

use bluegreen::StepError;
use bluegreen::event::{Intake, parse};

fn sample(name: &str) -> serde_json::Value {
    let path = format!("{}/../events/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).expect("sample exists"))
        .expect("sample is JSON")
}

#[test]
fn a_tagged_push_becomes_a_digest_pinned_image() {
    let Intake::Push(push) = parse(&sample("ecr-push-tagged.json")).unwrap() else {
        panic!("not a push")
    };
    assert_eq!(push.image.repository, "shop/web");
    assert_eq!(push.image.tag, "v2");
    assert_eq!(
        push.image.pinned_uri(),
        format!(
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/shop/web@{}",
            push.image.digest
        )
    );
}

#[test]
fn digest_only_delete_failed_and_foreign_events_are_ignored_with_a_reason() {
    for (file, reason) in [
        ("ecr-push-digest-only.json", "digest-only"),
        ("ecr-delete.json", "not a PUSH"),
        ("ecr-push-failed.json", "FAILURE"),
        ("scheduled-teardown.json", "not an ECR Image Action"),
    ] {
        match parse(&sample(file)).unwrap() {
            Intake::Ignored(why) => assert!(why.contains(reason), "{file}: {why}"),
            Intake::Push(p) => panic!("{file} started a deployment: {p:?}"),
        }
    }
}

#[test]
fn malformed_events_are_typed_errors() {
    for bad in [
        serde_json::json!({"hello": "world"}),
        serde_json::json!([1, 2, 3]),
        serde_json::json!({"source": "aws.ecr", "detail-type": "ECR Image Action", "detail": {"result": "SUCCESS"}}),
    ] {
        let err = parse(&bad).unwrap_err();
        assert!(matches!(err, StepError::EventMalformed(_)), "{bad}: {err}");
        assert_eq!(err.name(), "EventMalformed");
    }
    // A replication names the registry it came from: one that cannot be is refused by field.
    let mut replica = sample("ecr-replication-action.json");
    replica["detail"]["source-account"] = "12345".into();
    let err = parse(&replica).unwrap_err();
    assert!(err.to_string().contains("detail.source-account"), "{err}");
    replica["detail"]["source-account"] = "123456789012".into();
    replica["detail"]
        .as_object_mut()
        .unwrap()
        .remove("source-region");
    let err = parse(&replica).unwrap_err();
    assert!(err.to_string().contains("detail.source-region"), "{err}");
    let mut no_digest = sample("ecr-push-tagged.json");
    no_digest["detail"]["image-digest"] = "latest".into();
    assert_eq!(parse(&no_digest).unwrap_err().name(), "EventMalformed");
}

/// Values ECR could not have sent, field by field: each is refused by prepare as
/// `EventMalformed` naming the field, before any config is matched, lock taken or record made.
fn malformed_pushes() -> Vec<(&'static str, serde_json::Value)> {
    let base = sample("ecr-push-tagged.json");
    let with = |path: &[&str], value: serde_json::Value| {
        let mut event = base.clone();
        let mut at = &mut event;
        for key in &path[..path.len() - 1] {
            at = &mut at[*key];
        }
        at[path[path.len() - 1]] = value;
        event
    };
    let detail = |key: &str, value: serde_json::Value| with(&["detail", key], value);
    let mut cases = Vec::new();
    for repository in [
        "Shop/web",
        "shop//web",
        "/shop/web",
        "shop/web/",
        "shop/-web",
        "shop/web-",
        "shop/we..b",
        "shop web",
        "shop/wéb",
        "a",
        "shop/web\n",
        "shop/web;rm",
        "shop/web:v2",
    ] {
        cases.push((
            "detail.repository-name",
            detail("repository-name", repository.into()),
        ));
    }
    cases.push((
        "detail.repository-name",
        detail("repository-name", "a".repeat(257).into()),
    ));
    for tag in [
        ".v2",
        "-v2",
        "v2 beta",
        "v2/beta",
        "v2:beta",
        "v2@sha256",
        "vé",
        "v2\t",
        "v2,latest",
    ] {
        cases.push(("detail.image-tag", detail("image-tag", tag.into())));
    }
    cases.push((
        "detail.image-tag",
        detail("image-tag", "v".repeat(129).into()),
    ));
    for digest in [
        "latest",
        "sha256:",
        "sha256:abc",
        "sha512:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "sha256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "sha256:gggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggg",
        "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "",
    ] {
        cases.push(("detail.image-digest", detail("image-digest", digest.into())));
    }
    let mut no_digest = base.clone();
    no_digest["detail"]
        .as_object_mut()
        .unwrap()
        .remove("image-digest");
    cases.push(("detail.image-digest", no_digest));
    for account in [
        "",
        "12345678901",
        "1234567890123",
        "12345678901a",
        "123456789012 ",
    ] {
        cases.push(("account", with(&["account"], account.into())));
    }
    for region in [
        "",
        "us-east",
        "US-EAST-1",
        "us_east_1",
        "us-east-1a",
        "-east-1",
        "us--1",
    ] {
        cases.push(("region", with(&["region"], region.into())));
    }
    for id in ["".to_owned(), "x".repeat(257)] {
        cases.push(("id", with(&["id"], id.into())));
    }
    cases
}

#[test]
fn values_ecr_cannot_send_are_refused_naming_the_field() {
    let cases = malformed_pushes();
    assert!(cases.len() >= 45, "{} cases", cases.len());
    for (field, event) in cases {
        let err = parse(&event).expect_err(&format!("{field}: {event}"));
        assert_eq!(err.name(), "EventMalformed", "{field}: {err}");
        assert!(err.to_string().contains(field), "{field}: {err}");
    }
}

#[test]
fn values_at_the_edges_of_the_grammar_are_accepted() {
    let base = sample("ecr-push-tagged.json");
    for (key, value) in [
        ("repository-name", "a1"),
        ("repository-name", "team.a/sub_group/web-app"),
        ("image-tag", "_v2"),
        ("image-tag", "V2.1-rc_3"),
    ] {
        let mut event = base.clone();
        event["detail"][key] = value.into();
        assert!(
            matches!(parse(&event), Ok(Intake::Push(_))),
            "{key}={value}"
        );
    }
    let mut long_tag = base.clone();
    long_tag["detail"]["image-tag"] = "v".repeat(128).into();
    assert!(matches!(parse(&long_tag), Ok(Intake::Push(_))));
    let mut gov = base;
    gov["region"] = "us-gov-west-1".into();
    assert!(matches!(parse(&gov), Ok(Intake::Push(_))));
}

#[tokio::test]
async fn a_malformed_push_changes_nothing_in_aws() {
    // Through prepare against the world: no lock, no record, nothing published — checked
    // once for the whole set, after every case ran.
    let world = bluegreen_tests::World::build().await.with_topic();
    let cases = malformed_pushes();
    for (field, event) in &cases {
        let err = bluegreen::steps::prepare::run(&world.ctx, event)
            .await
            .expect_err(field);
        assert_eq!(err.name(), "EventMalformed", "{field}: {err}");
    }
    assert_eq!(world.lock_holder().await, None);
    let records = world
        .aws
        .dynamodb
        .scan()
        .table_name("bluegreen-deployments")
        .send()
        .await
        .unwrap();
    assert_eq!(records.count, 0, "records written");
    assert!(world.published().await.is_empty(), "notifications sent");
}

#[tokio::test]
async fn malformed_configs_are_refused_before_anything_is_stored() {
    let world = bluegreen_tests::World::build().await;
    let good = serde_json::to_value(world.config()).unwrap();
    let stored_before = bluegreen::config_store::ConfigStore::new(&world.ctx)
        .load("shop")
        .await
        .unwrap();
    let mut cases: Vec<(&str, serde_json::Value)> = Vec::new();
    let mut case = |name: &'static str, edit: &dyn Fn(&mut serde_json::Value)| {
        let mut config = good.clone();
        edit(&mut config);
        cases.push((name, config));
    };
    case("unknown key", &|c| c["colour"] = "blue".into());
    case("name with capitals", &|c| c["name"] = "Shop".into());
    case("empty repository", &|c| {
        c["source"]["repository"] = "".into()
    });
    case("no tag patterns", &|c| {
        c["source"]["tags"] = serde_json::json!([])
    });
    case("bad glob", &|c| {
        c["source"]["tags"] = serde_json::json!(["v[1"])
    });
    case("empty container", &|c| c["container"] = "".into());
    case("target group not an ARN", &|c| {
        c["slots"]["green"]["target_group_arn"] = "tg-green".into()
    });
    case("no smoke checks", &|c| {
        c["health"]["smoke"] = serde_json::json!([])
    });
    case("no approvers", &|c| {
        c["approval"]["approvers"] = serde_json::json!([])
    });
    case("zero launch timeout", &|c| {
        c["preprod"]["launch_timeout_seconds"] = 0.into()
    });
    case("ttl over 30 days", &|c| {
        c["preprod"]["ttl_hours"] = 721.into()
    });
    case("bake over a day", &|c| c["bake"]["seconds"] = 86401.into());
    case("migration without timeout", &|c| {
        c["migration"]["timeout_seconds"] = 0.into()
    });
    case("missing cluster", &|c| {
        c.as_object_mut().unwrap().remove("cluster");
    });
    case("waits over 48 h", &|c| {
        c["approval"]["timeout_seconds"] = 86400.into();
        c["bake"]["seconds"] = 86400.into();
    });
    case("strategy unknown", &|c| {
        c["database"]["strategy"] = "mirror".into()
    });
    let count = cases.len();
    assert!(count >= 15, "{count} cases");
    for (name, raw) in cases {
        let err = match bluegreen::config::ServiceConfig::from_json(&raw.to_string()) {
            Err(e) => e,
            Ok(config) => bluegreen::config_store::ConfigStore::new(&world.ctx)
                .put(&config)
                .await
                .expect_err(name),
        };
        assert_eq!(err.name(), "ConfigInvalid", "{name}: {err}");
    }
    let stored_after = bluegreen::config_store::ConfigStore::new(&world.ctx)
        .load("shop")
        .await
        .unwrap();
    assert_eq!(stored_after, stored_before, "the stored config changed");
}

/// Issue 27 item 3: where an image comes from. A forwarded event of another account, a push in
/// another region and a replica are each taken or ignored by the service's `source.registry`
/// and `source.pull_from`, with a reason that names both registries; nothing is written for an
/// ignored one.
mod registries {
    use bluegreen::config::{PullFrom, RegistryLocation};
    use bluegreen::steps::prepare::{self, Prepared, PreparedOutcome};
    use bluegreen_tests::{ACCOUNT, World};

    use super::sample;

    async fn prepared(world: &World, event: &str) -> Prepared {
        prepare::run(&world.ctx, &sample(event)).await.unwrap()
    }

    fn ignored(outcome: Prepared, why: &str) {
        match outcome {
            Prepared::Ignored { reason } => assert!(reason.contains(why), "{reason}"),
            other => panic!("not ignored: {other:?}"),
        }
    }

    /// The started deployment's pinned image.
    async fn started_image(world: &World, outcome: Prepared) -> String {
        let Prepared::Deployments { deployments } = outcome else {
            panic!("not prepared: {outcome:?}")
        };
        assert_eq!(
            deployments[0].outcome,
            PreparedOutcome::Started,
            "{deployments:?}"
        );
        let d = bluegreen::record::Records::new(&world.ctx)
            .get(&deployments[0].deployment_id)
            .await
            .unwrap();
        d.image.pinned_uri()
    }

    #[tokio::test]
    async fn another_accounts_forwarded_push_deploys_only_for_a_service_that_names_that_registry() {
        let world = World::build().await;
        ignored(
            prepared(&world, "ecr-push-foreign-account.json").await,
            &format!(
                "shop watches shop/web in registry {ACCOUNT} in us-east-1, not 210987654321 in us-east-1"
            ),
        );
        assert_eq!(world.lock_holder().await, None, "nothing taken");

        let mut config = world.config();
        config.source.registry = Some(RegistryLocation {
            account: "210987654321".into(),
            region: "us-east-1".into(),
        });
        world.put_config(&config).await;
        // Now the stack's own account is the other registry.
        ignored(
            prepared(&world, "ecr-push-tagged.json").await,
            &format!("not {ACCOUNT} in us-east-1"),
        );
        let image = started_image(
            &world,
            prepared(&world, "ecr-push-foreign-account.json").await,
        )
        .await;
        assert!(
            image.starts_with("210987654321.dkr.ecr.us-east-1.amazonaws.com/shop/web@sha256:"),
            "{image}"
        );
    }

    #[tokio::test]
    async fn a_service_on_a_local_replica_waits_for_the_replication_and_pulls_in_its_own_region() {
        let world = World::build().await;
        // By default a push in another region is another registry, and replicas are not taken.
        ignored(
            prepared(&world, "ecr-push-other-region.json").await,
            "not 123456789012 in us-west-2",
        );
        ignored(
            prepared(&world, "ecr-replication-action.json").await,
            "not 123456789012 in us-west-2",
        );

        let mut config = world.config();
        config.source.registry = Some(RegistryLocation {
            account: ACCOUNT.into(),
            region: "us-west-2".into(),
        });
        config.source.pull_from = PullFrom::LocalReplica;
        world.put_config(&config).await;
        ignored(
            prepared(&world, "ecr-push-other-region.json").await,
            "waits for the replica of this push in us-east-1",
        );
        assert_eq!(world.lock_holder().await, None);
        let image = started_image(
            &world,
            prepared(&world, "ecr-replication-action.json").await,
        )
        .await;
        assert!(
            image.starts_with(&format!(
                "{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/shop/web@"
            )),
            "pulled from the replica in the stack's region: {image}"
        );
    }

    /// A replication into another account, forwarded to the stack's bus, is not the local
    /// replica: pinning it would pull from that account's registry (review of issue 27).
    #[tokio::test]
    async fn a_replica_in_another_account_is_not_the_local_replica() {
        let world = World::build().await;
        let mut config = world.config();
        config.source.registry = Some(RegistryLocation {
            account: ACCOUNT.into(),
            region: "us-west-2".into(),
        });
        config.source.pull_from = PullFrom::LocalReplica;
        world.put_config(&config).await;
        let mut event = sample("ecr-replication-action.json");
        event["account"] = serde_json::json!("210987654321");
        ignored(
            prepare::run(&world.ctx, &event).await.unwrap(),
            &format!("shop pulls from its replica in account {ACCOUNT}, not 210987654321"),
        );
        assert_eq!(world.lock_holder().await, None, "nothing taken");
    }

    #[tokio::test]
    async fn replicas_are_refused_to_a_service_that_pulls_from_the_pushed_registry() {
        let world = World::build().await;
        let mut config = world.config();
        config.source.registry = Some(RegistryLocation {
            account: ACCOUNT.into(),
            region: "us-west-2".into(),
        });
        world.put_config(&config).await;
        ignored(
            prepared(&world, "ecr-replication-action.json").await,
            "pulls from the registry pushed to (source.pull_from = \"event\")",
        );
        let image =
            started_image(&world, prepared(&world, "ecr-push-other-region.json").await).await;
        assert!(
            image.starts_with(&format!("{ACCOUNT}.dkr.ecr.us-west-2.amazonaws.com/")),
            "{image}"
        );
    }
}
