//! The small services in memory: DynamoDB's port over [`super::tables`], SSM parameters, SNS
//! and the webhook, CloudWatch alarms, STS, Secrets Manager, ECR's images, and the test
//! endpoints' answers.

use std::collections::BTreeMap;
use std::time::Duration;

use bluegreen::StepError;
use bluegreen::ports::notifications::Message;
use bluegreen::ports::parameters::Parameter;
use bluegreen::ports::registry::{ImageReference, RegistryImage};
use bluegreen::ports::secrets::SecretInfo;
use bluegreen::ports::smoke::{Answer, SmokeRequest};
use bluegreen::ports::tables::{Cancelled, Cond, Page, Query, Returns, Write, Written};
use bluegreen::ports::{
    Alarms, Identity, Notifications, Parameters, Registry, Secrets, SmokeClient, Tables,
};
use serde_dynamo::Item;

use super::{MemoryAws, not_found};

/// What was published and posted.
#[derive(Debug, Clone, Default)]
pub struct NotificationsState {
    /// `(topic, message)`, in order.
    pub published: Vec<(String, Message)>,
    /// `(webhook URL, text)`, in order.
    pub posted: Vec<(String, String)>,
}

/// CloudWatch alarms: name → in ALARM.
#[derive(Debug, Clone, Default)]
pub struct AlarmState {
    /// Every alarm and whether it fires.
    pub alarms: BTreeMap<String, bool>,
}

/// What the test endpoints answer: by URL prefix (longest first), else 200 `ok`.
#[derive(Debug, Clone, Default)]
pub struct SmokeState {
    /// URL prefix → the answer (or why there is none).
    pub answers: BTreeMap<String, Result<Answer, String>>,
    /// Requests to this URL prefix reach this listener, which routes them by its rules
    /// (conditions, priority, weights) to a target group; what a group's release answers is
    /// in `by_group`. Set by worlds whose smoke checks go through production's listener.
    pub routed: Option<(String, String)>,
    /// Target group → what the release it runs answers (a group without one: `answers`).
    pub by_group: BTreeMap<String, Answer>,
}

#[async_trait::async_trait]
impl Tables for MemoryAws {
    async fn get(
        &self,
        table: &str,
        key: &Item,
        projection: Option<&[&str]>,
    ) -> Result<Option<Item>, StepError> {
        self.call("dynamodb:GetItem", |s| s.tables.get(table, key, projection))
            .await
    }

    async fn write(&self, write: Write, returns: Returns) -> Result<Written, StepError> {
        let operation = match write.op {
            bluegreen::ports::tables::WriteOp::Put(_) => "dynamodb:PutItem",
            bluegreen::ports::tables::WriteOp::Update(_) => "dynamodb:UpdateItem",
            bluegreen::ports::tables::WriteOp::Delete => "dynamodb:DeleteItem",
        };
        self.call(operation, |s| s.tables.write(&write, returns))
            .await
    }

    async fn transact(&self, writes: Vec<Write>) -> Result<Result<(), Cancelled>, StepError> {
        self.call("dynamodb:TransactWriteItems", |s| {
            s.tables.transact(&writes)
        })
        .await
    }

    async fn query(&self, query: &Query) -> Result<Page, StepError> {
        self.call("dynamodb:Query", |s| s.tables.query(query)).await
    }

    async fn scan(
        &self,
        table: &str,
        filter: Option<&Cond>,
        start_after: Option<Item>,
    ) -> Result<Page, StepError> {
        self.call("dynamodb:Scan", |s| {
            s.tables.scan(table, filter, start_after.as_ref())
        })
        .await
    }
}

fn parameter(name: &str, (value, version): &(String, i64)) -> Parameter {
    Parameter {
        name: name.to_owned(),
        value: value.clone(),
        version: *version,
    }
}

#[async_trait::async_trait]
impl Parameters for MemoryAws {
    async fn get(&self, name: &str) -> Result<Option<Parameter>, StepError> {
        self.call("ssm:GetParameter", |s| {
            Ok(s.parameters.get(name).map(|p| parameter(name, p)))
        })
        .await
    }

    async fn get_many(&self, names: &[String]) -> Result<Vec<Parameter>, StepError> {
        self.call("ssm:GetParameters", |s| {
            // "In any order": the reverse of what was asked, so callers that need an order
            // must make it themselves.
            Ok(names
                .iter()
                .rev()
                .filter_map(|n| s.parameters.get(n).map(|p| parameter(n, p)))
                .collect())
        })
        .await
    }

    async fn by_path(&self, path: &str) -> Result<Vec<Parameter>, StepError> {
        self.call("ssm:GetParametersByPath", |s| {
            let prefix = format!("{}/", path.trim_end_matches('/'));
            Ok(s.parameters
                .iter()
                .filter(|(n, _)| {
                    n.strip_prefix(&prefix)
                        .is_some_and(|rest| !rest.contains('/'))
                })
                .map(|(n, p)| parameter(n, p))
                .collect())
        })
        .await
    }

    async fn put(&self, name: &str, value: &str) -> Result<(), StepError> {
        self.call("ssm:PutParameter", |s| {
            let version = s.parameters.get(name).map(|(_, v)| v + 1).unwrap_or(1);
            s.parameters
                .insert(name.to_owned(), (value.to_owned(), version));
            Ok(())
        })
        .await
    }

    async fn delete(&self, name: &str) -> Result<bool, StepError> {
        self.call("ssm:DeleteParameter", |s| {
            Ok(s.parameters.remove(name).is_some())
        })
        .await
    }
}

#[async_trait::async_trait]
impl Notifications for MemoryAws {
    async fn publish(&self, topic_arn: &str, message: &Message) -> Result<(), StepError> {
        self.call("sns:Publish", |s| {
            s.notifications
                .published
                .push((topic_arn.to_owned(), message.clone()));
            Ok(())
        })
        .await
    }

    async fn post_webhook(&self, url: &str, text: &str) {
        // Best effort, as the SDK world's: a lost post is not an error.
        let _ = self
            .call("webhook:Post", |s| {
                s.notifications
                    .posted
                    .push((url.to_owned(), text.to_owned()));
                Ok(())
            })
            .await;
    }
}

#[async_trait::async_trait]
impl Alarms for MemoryAws {
    async fn firing(&self, names: &[String]) -> Result<Vec<String>, StepError> {
        self.call("cloudwatch:DescribeAlarms", |s| {
            Ok(names
                .iter()
                .filter(|n| s.alarms.alarms.get(*n) == Some(&true))
                .map(|n| format!("alarm {n} is in ALARM: simulated"))
                .collect())
        })
        .await
    }

    async fn missing(&self, names: &[String]) -> Result<Vec<String>, StepError> {
        self.call("cloudwatch:DescribeAlarms", |s| {
            Ok(names
                .iter()
                .filter(|n| !s.alarms.alarms.contains_key(*n))
                .cloned()
                .collect())
        })
        .await
    }
}

#[async_trait::async_trait]
impl Identity for MemoryAws {
    async fn caller_arn(&self) -> Result<String, StepError> {
        self.call("sts:GetCallerIdentity", |s| Ok(s.caller.clone()))
            .await
    }
}

/// The ARN the in-memory Secrets Manager gives the secret `name`.
pub fn secret_arn(name: &str) -> String {
    format!("arn:aws:secretsmanager:us-east-1:123456789012:secret:{name}-AbCdEf")
}

/// The name of the secret `id` (its name or ARN) if it exists.
fn secret_name(s: &super::State, id: &str) -> Option<String> {
    s.secrets
        .keys()
        .find(|name| *name == id || secret_arn(name) == id)
        .cloned()
}

fn secret_info(s: &super::State, name: &str) -> SecretInfo {
    SecretInfo {
        arn: secret_arn(name),
        name: name.to_owned(),
        kms_key_id: None,
        tags: s.secret_tags.get(name).cloned().unwrap_or_default(),
    }
}

#[async_trait::async_trait]
impl Secrets for MemoryAws {
    async fn secret_string_at(
        &self,
        id: &str,
        _stage: Option<&str>,
        _version: Option<&str>,
    ) -> Result<Option<String>, StepError> {
        self.call("secretsmanager:GetSecretValue", |s| {
            secret_name(s, id)
                .and_then(|name| s.secrets.get(&name).cloned())
                .map(Some)
                .ok_or_else(|| not_found("secret", id))
        })
        .await
    }

    async fn describe_secret(&self, id: &str) -> Result<Option<SecretInfo>, StepError> {
        self.call("secretsmanager:DescribeSecret", |s| {
            Ok(secret_name(s, id).map(|name| secret_info(s, &name)))
        })
        .await
    }

    async fn create_secret(
        &self,
        name: &str,
        value: &str,
        _kms_key_id: Option<&str>,
        tags: &[(String, String)],
    ) -> Result<String, StepError> {
        self.call("secretsmanager:CreateSecret", |s| {
            if s.secrets.contains_key(name) {
                return Err(StepError::Aws {
                    operation: "secretsmanager:CreateSecret",
                    code: "ResourceExistsException".into(),
                    message: format!("the secret {name} already exists"),
                });
            }
            s.secrets.insert(name.to_owned(), value.to_owned());
            s.secret_tags.insert(name.to_owned(), tags.to_vec());
            Ok(secret_arn(name))
        })
        .await
    }

    async fn put_secret_value(&self, id: &str, value: &str) -> Result<(), StepError> {
        self.call("secretsmanager:PutSecretValue", |s| {
            let name = secret_name(s, id).ok_or_else(|| not_found("secret", id))?;
            s.secrets.insert(name, value.to_owned());
            Ok(())
        })
        .await
    }

    async fn delete_secret(&self, id: &str) -> Result<bool, StepError> {
        self.call("secretsmanager:DeleteSecret", |s| {
            Ok(match secret_name(s, id) {
                Some(name) => {
                    s.secrets.remove(&name);
                    s.secret_tags.remove(&name);
                    true
                }
                None => false,
            })
        })
        .await
    }

    async fn secrets_named(&self, prefix: &str) -> Result<Vec<SecretInfo>, StepError> {
        self.call("secretsmanager:ListSecrets", |s| {
            Ok(s.secrets
                .keys()
                .filter(|name| name.starts_with(prefix))
                .map(|name| secret_info(s, name))
                .collect())
        })
        .await
    }
}

#[async_trait::async_trait]
impl SmokeClient for MemoryAws {
    async fn send(&self, request: &SmokeRequest, _timeout: Duration) -> Result<Answer, String> {
        let url = request.url.as_str();
        self.call("http:Get", |s| {
            // A request with a header a fixed-response rule matches (a test rule's probe) is
            // answered by that rule, as the listener would.
            if let Some(rule) = answering_rule(s, request) {
                return Ok(Ok(Answer {
                    status: rule.status_code.parse().unwrap_or(200),
                    body: rule.body.clone(),
                }));
            }
            if let Some(answer) = routed_answer(s, request) {
                return Ok(answer);
            }
            let answer = s
                .smoke
                .answers
                .iter()
                .filter(|(prefix, _)| url.starts_with(prefix.as_str()))
                .max_by_key(|(prefix, _)| prefix.len())
                .map(|(_, answer)| answer.clone())
                .unwrap_or(Ok(Answer {
                    status: 200,
                    body: "ok".into(),
                }));
            Ok(answer)
        })
        .await
        .unwrap_or_else(|e| Err(e.to_string()))
    }
}

/// The answer of the release a routed request reaches (`SmokeState::routed`): the listener's
/// rule of lowest priority whose every condition the request meets (else its default action),
/// its forward's one group with weight. `None` when the request is not routed; an error when
/// it is but reaches no answer (no group, split weights, a group without one) — never the
/// URL's answers, which would pass for any release.
fn routed_answer(s: &super::State, request: &SmokeRequest) -> Option<Result<Answer, String>> {
    let (prefix, listener) = s.smoke.routed.as_ref()?;
    let rest = request.url.strip_prefix(prefix.as_str())?;
    Some(
        routed_to(s, request, listener, rest)
            .ok_or_else(|| format!("the harness routes {} nowhere that answers", request.url)),
    )
}

fn routed_to(
    s: &super::State,
    request: &SmokeRequest,
    listener: &str,
    rest: &str,
) -> Option<Answer> {
    // ELB matches the path without its query.
    let path = rest.split('?').next().unwrap_or(rest);
    let mut rules: Vec<_> = s
        .elb
        .rules
        .values()
        .filter(|r| r.listener == listener)
        .collect();
    rules.sort_by_key(|r| r.priority);
    let forward = match rules.iter().find(|r| meets(&r.conditions, request, path)) {
        Some(rule) => rule.forward.clone(),
        None => s.elb.listeners.get(listener)?.forward.clone(),
    }?;
    let live: Vec<_> = forward
        .iter()
        .filter(|g| g.weight.unwrap_or(1) > 0)
        .collect();
    // Split traffic has no one answer: the harness models whole moves only.
    let [group] = live.as_slice() else {
        return None;
    };
    s.smoke.by_group.get(&group.target_group_arn).cloned()
}

/// Whether `request` (to `path` on the listener) meets every one of `conditions`, ELB's
/// way: header names, header values and hosts without case, `*` and `?` wildcards; a field
/// the harness does not model is a harness error.
fn meets(
    conditions: &[bluegreen::ports::load_balancing::Condition],
    request: &SmokeRequest,
    path: &str,
) -> bool {
    !conditions.is_empty()
        && conditions.iter().all(|c| {
            let any = |value: &str| {
                c.values
                    .iter()
                    .any(|v| glob(&v.to_lowercase(), &value.to_lowercase()))
            };
            match c.field.as_str() {
                "http-header" => request.headers.iter().any(|(name, value)| {
                    c.header_name
                        .as_deref()
                        .is_some_and(|h| h.eq_ignore_ascii_case(name))
                        && any(value)
                }),
                // The Host header: the request's own, else the URL's authority.
                "host-header" => request
                    .host
                    .clone()
                    .or_else(|| url_host(&request.url))
                    .is_some_and(|h| any(&h)),
                "path-pattern" => c.values.iter().any(|v| glob(v, path)),
                other => panic!("the harness does not match {other} conditions"),
            }
        })
}

/// The host of `url` (without a port).
fn url_host(url: &str) -> Option<String> {
    let authority = url.split("://").nth(1)?.split('/').next()?;
    Some(authority.split(':').next()?.to_owned())
}

/// ELB's wildcard match: `*` any run of characters, `?` one.
fn glob(pattern: &str, text: &str) -> bool {
    match pattern.chars().next() {
        None => text.is_empty(),
        Some('*') => (0..=text.len())
            .filter(|i| text.is_char_boundary(*i))
            .any(|i| glob(&pattern[1..], &text[i..])),
        Some(p) => text.chars().next().is_some_and(|t| {
            (p == '?' || p == t) && glob(&pattern[p.len_utf8()..], &text[t.len_utf8()..])
        }),
    }
}

/// The fixed response whose `http-header` condition the request's headers meet.
fn answering_rule<'a>(
    s: &'a super::State,
    request: &SmokeRequest,
) -> Option<&'a bluegreen::ports::load_balancing::FixedResponseRule> {
    s.elb
        .rules
        .values()
        .filter_map(|r| r.fixed.as_ref())
        .find(|rule| {
            rule.conditions.iter().any(|c| c.field == "http-header")
                && rule.conditions.iter().all(|c| match c.field.as_str() {
                    "http-header" => request.headers.iter().any(|(name, value)| {
                        c.header_name
                            .as_deref()
                            .is_some_and(|h| h.eq_ignore_ascii_case(name))
                            && c.values.contains(value)
                    }),
                    _ => true,
                })
        })
}

/// ECR's `DescribeImages` over [`super::State::registry`]: any registry id names the one
/// in-memory registry.
#[async_trait::async_trait]
impl Registry for MemoryAws {
    async fn image(
        &self,
        _registry: Option<&str>,
        repository: &str,
        reference: &ImageReference,
    ) -> Result<Option<RegistryImage>, StepError> {
        self.call("ecr:DescribeImages", |s| {
            let images = s
                .registry
                .get(repository)
                .ok_or_else(|| not_found("ECR repository", repository))?;
            Ok(images
                .iter()
                .find(|i| match reference {
                    ImageReference::Tag(tag) => i.tags.contains(tag),
                    ImageReference::Digest(digest) => &i.digest == digest,
                })
                .cloned())
        })
        .await
    }

    async fn tagged_images(
        &self,
        _registry: Option<&str>,
        repository: &str,
        limit: usize,
    ) -> Result<Vec<RegistryImage>, StepError> {
        self.call("ecr:DescribeImages", |s| {
            let images = s
                .registry
                .get(repository)
                .ok_or_else(|| not_found("ECR repository", repository))?;
            Ok(images
                .iter()
                .filter(|i| !i.tags.is_empty())
                .take(limit)
                .cloned()
                .collect())
        })
        .await
    }
}
