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
    let mut no_digest = sample("ecr-push-tagged.json");
    no_digest["detail"]["image-digest"] = "latest".into();
    assert_eq!(parse(&no_digest).unwrap_err().name(), "EventMalformed");
}
