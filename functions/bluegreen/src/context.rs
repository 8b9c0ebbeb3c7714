//! The [`Context`] every step receives: AWS clients built once, settings, and a clock.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::aws::Sdk;
use crate::error::{StepError, StepResult};
use crate::poll::Pacing;
use crate::ports::Ports;

/// Settings that come from the Lambda environment (or the CLI's flags).
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// SSM parameter path under which service configs live, ending in `/`.
    pub config_prefix: String,
    /// DynamoDB table of deployment records (partition key `deployment_id`).
    pub deployments_table: String,
    /// DynamoDB table of per-service locks (partition key `service`).
    pub locks_table: String,
    /// DynamoDB table of the service index (`pk`, `sk`): which services watch a repository.
    pub services_table: String,
    /// SNS topic for approval requests and outcomes; notifications are skipped when absent.
    pub topic_arn: Option<String>,
    /// Base URL of the approval console, put into approval notifications.
    pub console_url: Option<String>,
    /// Secrets Manager id (name or ARN) of the key that signs approval links; without it,
    /// notifications carry no links and approvers decide from the CLI.
    pub link_secret_id: Option<String>,
    /// Optional Slack-compatible incoming webhook that receives the same notifications,
    /// without signed links (a channel is shared; a link identifies one person).
    pub webhook_url: Option<String>,
    /// ARN of the deployment state machine. Executions are named after their deployment, so
    /// this gives each lock holder's execution ARN (recorded on the lock) and lets the
    /// reconciler and operator commands look at, stop and start executions. Absent in local
    /// runs, where the local runner executes the definition in-process.
    pub deployment_machine_arn: Option<String>,
    /// The account the stack runs in: a service's `source.registry` defaults to it (with the
    /// stack's region). Unknown in local runs, where only a configured registry is checked.
    pub account_id: Option<String>,
    /// Which services may deploy with `approval.policy = "auto"` (no person approves). Set by
    /// the stack (`AutoApproveServices`), so that writing a config is not approving: a config
    /// author cannot switch a service's approvals off on their own.
    pub auto_approve: AutoApprove,
    /// Whether a check looks again within one invocation (`BLUEGREEN_CHECK_PACING`, see
    /// [`crate::looks`]): paced unless set to `once`.
    pub pacing: Pacing,
    /// Whether waits on ECS end by its events (`BLUEGREEN_WAKE_ON_EVENTS`, see
    /// [`crate::wakes`]): on unless set to `off` (a stack without the wake function's rule).
    pub wake_on_events: bool,
    /// The stack's ECS lifecycle hook function (`BLUEGREEN_ECS_HOOK_ARN`; the stack sets it):
    /// a launch on ECS's own blue/green requires the service's gated stages to invoke this
    /// function (any Lambda hook when unset, as in local runs).
    pub ecs_hook_arn: Option<String>,
}

/// The services allowed `approval.policy = "auto"` (`BLUEGREEN_AUTO_APPROVE_SERVICES`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum AutoApprove {
    /// Any service: unset, as in local runs on an emulator (the stack always sets it), or `*`.
    #[default]
    Any,
    /// Only these (`none`: no service).
    Only(std::collections::BTreeSet<String>),
}

impl AutoApprove {
    /// Parses the variable: unset or `*` is any service, `none` no service, otherwise a
    /// comma-separated list of service names.
    pub fn parse(value: Option<&str>) -> Self {
        match value.map(str::trim) {
            None | Some("*") => AutoApprove::Any,
            Some("none") | Some("") => AutoApprove::Only(Default::default()),
            Some(list) => AutoApprove::Only(
                list.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect(),
            ),
        }
    }

    /// Whether `service` may deploy without a person's approval.
    pub fn allows(&self, service: &str) -> bool {
        match self {
            AutoApprove::Any => true,
            AutoApprove::Only(services) => services.contains(service),
        }
    }
}

impl Settings {
    /// Reads `BLUEGREEN_CONFIG_PREFIX`, `BLUEGREEN_DEPLOYMENTS_TABLE`, `BLUEGREEN_LOCKS_TABLE`,
    /// `BLUEGREEN_SERVICES_TABLE`, `BLUEGREEN_TOPIC_ARN`, `BLUEGREEN_CONSOLE_URL`, `BLUEGREEN_LINK_SECRET_ID`,
    /// `BLUEGREEN_WEBHOOK_URL`, `BLUEGREEN_DEPLOYMENT_MACHINE_ARN`, `BLUEGREEN_ACCOUNT_ID`,
    /// `BLUEGREEN_AUTO_APPROVE_SERVICES`, `BLUEGREEN_CHECK_PACING`, `BLUEGREEN_WAKE_ON_EVENTS`
    /// and `BLUEGREEN_ECS_HOOK_ARN`, with the stack's defaults.
    pub fn from_env() -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        Settings {
            config_prefix: normalise_prefix(
                &var("BLUEGREEN_CONFIG_PREFIX").unwrap_or_else(|| "/bluegreen/services/".into()),
            ),
            deployments_table: var("BLUEGREEN_DEPLOYMENTS_TABLE")
                .unwrap_or_else(|| "bluegreen-deployments".into()),
            locks_table: var("BLUEGREEN_LOCKS_TABLE").unwrap_or_else(|| "bluegreen-locks".into()),
            services_table: var("BLUEGREEN_SERVICES_TABLE")
                .unwrap_or_else(|| "bluegreen-services".into()),
            topic_arn: var("BLUEGREEN_TOPIC_ARN"),
            console_url: var("BLUEGREEN_CONSOLE_URL"),
            link_secret_id: var("BLUEGREEN_LINK_SECRET_ID"),
            webhook_url: var("BLUEGREEN_WEBHOOK_URL"),
            deployment_machine_arn: var("BLUEGREEN_DEPLOYMENT_MACHINE_ARN"),
            account_id: var("BLUEGREEN_ACCOUNT_ID"),
            auto_approve: AutoApprove::parse(
                std::env::var("BLUEGREEN_AUTO_APPROVE_SERVICES")
                    .ok()
                    .as_deref(),
            ),
            pacing: Pacing::parse(std::env::var("BLUEGREEN_CHECK_PACING").ok().as_deref()),
            wake_on_events: !var("BLUEGREEN_WAKE_ON_EVENTS")
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("off")),
            ecs_hook_arn: var("BLUEGREEN_ECS_HOOK_ARN"),
        }
    }
}

impl Settings {
    /// The ARN of the execution that runs `deployment_id` (executions are named after their
    /// deployment), when the deployment machine is known.
    pub fn execution_arn(&self, deployment_id: &str) -> Option<String> {
        let machine = self.deployment_machine_arn.as_deref()?;
        Some(format!(
            "{}:{deployment_id}",
            machine.replacen(":stateMachine:", ":execution:", 1)
        ))
    }
}

/// Ensures a parameter path prefix starts and ends with `/`.
pub fn normalise_prefix(prefix: &str) -> String {
    let trimmed = prefix.trim_matches('/');
    if trimmed.is_empty() {
        "/".into()
    } else {
        format!("/{trimmed}/")
    }
}

/// A source of the current time; tests replace it to move past expiries.
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// Lets time pass between two looks of a check ([`crate::looks`]): tokio's sleep, or the local
/// runner's scaled clock (whose [`Clock`] only moves on when it sleeps).
pub type Sleeper = Arc<
    dyn Fn(std::time::Duration) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>
        + Send
        + Sync,
>;

/// EMF lines collected instead of printed (see [`crate::metrics`]).
pub type MetricLines = Arc<std::sync::Mutex<Vec<String>>>;

fn tokio_sleeper() -> Sleeper {
    Arc::new(|duration| Box::pin(tokio::time::sleep(duration)))
}

/// The ports, settings and clock shared by all steps. Cheap to clone.
#[derive(Clone)]
pub struct Context {
    /// What bluegreen needs from AWS ([`crate::ports`]): the SDK, or an in-memory world.
    pub ports: Ports,
    /// The SDK clients behind the ports, when they are the SDK's: set-up and diagnosis
    /// commands (`adopt`, `doctor`, `install`) call AWS directly ([`Context::sdk`]).
    sdk: Option<Arc<Sdk>>,
    /// Settings.
    pub settings: Settings,
    /// The AWS region the clients talk to (console log links).
    pub region: Option<String>,
    /// The endpoint every client was pointed at (`AWS_ENDPOINT_URL`), if any: set for an
    /// emulator, absent for AWS.
    pub endpoint_url: Option<String>,
    clock: Clock,
    sleeper: Sleeper,
    metric_lines: Option<MetricLines>,
    signing_key: Arc<tokio::sync::OnceCell<Option<crate::signing_key::SigningKey>>>,
}

impl Context {
    /// Every port over the SDK, built once from one shared SDK config.
    pub fn new(sdk: &aws_types::SdkConfig, settings: Settings) -> Self {
        let clients = Sdk::new(sdk);
        Context {
            ports: clients.ports(),
            sdk: Some(Arc::new(clients)),
            settings,
            region: sdk.region().map(|r| r.to_string()),
            endpoint_url: sdk.endpoint_url().map(str::to_owned),
            clock: Arc::new(Utc::now),
            sleeper: tokio_sleeper(),
            metric_lines: None,
            signing_key: Arc::default(),
        }
    }

    /// A context over other ports (the tests' in-memory AWS): no SDK clients, no endpoint.
    pub fn with_ports(ports: Ports, settings: Settings, clock: Clock) -> Self {
        Context {
            ports,
            sdk: None,
            settings,
            region: Some("us-east-1".into()),
            endpoint_url: None,
            clock,
            sleeper: tokio_sleeper(),
            metric_lines: None,
            signing_key: Arc::default(),
        }
    }

    /// Loads the SDK config from the environment (credentials chain, region,
    /// `AWS_ENDPOINT_URL`) and reads [`Settings::from_env`].
    pub async fn from_env() -> Self {
        let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .load()
            .await;
        Context::new(&sdk, Settings::from_env())
    }

    /// The same context over other SDK clients: every port rebuilt over them (tests wrap a
    /// client with interceptors or scripted answers this way).
    pub fn with_sdk(mut self, sdk: Sdk) -> Self {
        self.ports = sdk.ports();
        self.sdk = Some(Arc::new(sdk));
        self
    }

    /// The SDK clients, for the commands that call AWS directly; [`StepError::Internal`] in
    /// a context over other ports.
    pub fn sdk(&self) -> StepResult<&Sdk> {
        self.sdk.as_deref().ok_or_else(|| {
            StepError::Internal(
                "this operation calls AWS directly and has no in-memory equivalent".into(),
            )
        })
    }

    /// Replaces the clock (tests, and the local runner's time scale).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// The same context letting time pass with `sleeper` (the local runner's scaled clock).
    pub fn with_sleeper(mut self, sleeper: Sleeper) -> Self {
        self.sleeper = sleeper;
        self
    }

    /// The same context collecting its metric lines into `lines` instead of printing them
    /// (outside Lambda nothing reads stdout: tests and the local runner hand the lines to the
    /// emulator's CloudWatch, as Lambda's log pipeline does).
    pub fn collect_metrics(mut self, lines: MetricLines) -> Self {
        self.metric_lines = Some(lines);
        self
    }

    /// Where this context collects its metric lines, if it does.
    pub fn metric_lines(&self) -> Option<&MetricLines> {
        self.metric_lines.as_ref()
    }

    /// Lets `duration` pass, on this context's clock.
    pub async fn sleep(&self, duration: std::time::Duration) {
        (self.sleeper)(duration).await
    }

    /// The approval-link signing key from Secrets Manager, read once per process (a Lambda
    /// container keeps it; rotating the secret takes effect in new containers). `None` when no
    /// secret is configured.
    pub async fn signing_key(&self) -> StepResult<Option<crate::signing_key::SigningKey>> {
        self.signing_key
            .get_or_try_init(|| async {
                match &self.settings.link_secret_id {
                    Some(id) => {
                        crate::signing_key::SigningKey::from_secret(self.ports.secrets.as_ref(), id)
                            .await
                            .map(Some)
                    }
                    None => Ok(None),
                }
            })
            .await
            .cloned()
    }

    /// Whether every client talks to an emulator on this machine (`AWS_ENDPOINT_URL` names a
    /// loopback address). Only then may the CLI record decisions itself (`run --auto-approve`,
    /// the local console): against AWS, decisions are the operator API's alone.
    pub fn on_loopback_emulator(&self) -> bool {
        self.endpoint_url.as_deref().is_some_and(is_loopback_url)
    }

    /// The current time according to the context's clock.
    pub fn now(&self) -> DateTime<Utc> {
        (self.clock)()
    }
}

/// Whether `url` (`scheme://host[:port]/…`) names this machine: `localhost`, `127.0.0.0/8` or
/// `[::1]`.
pub fn is_loopback_url(url: &str) -> bool {
    let Some((_, rest)) = url.split_once("://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    // Userinfo (`user@host`) would let `http://127.0.0.1@evil.example` pass a prefix check.
    if authority.contains('@') {
        return false;
    }
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority.split(':').next().unwrap_or_default(),
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod loopback_tests {
    use super::is_loopback_url;

    #[test]
    fn only_this_machine_counts_as_loopback() {
        for url in [
            "http://127.0.0.1:5000",
            "http://localhost:4566/",
            "http://127.3.2.1",
            "http://[::1]:5000",
        ] {
            assert!(is_loopback_url(url), "{url}");
        }
        for url in [
            "https://dynamodb.eu-west-1.amazonaws.com",
            "http://127.0.0.1@evil.example:5000",
            "http://127.0.0.1.evil.example",
            "http://10.0.0.1:5000",
            "localhost:5000",
            "",
        ] {
            assert!(!is_loopback_url(url), "{url}");
        }
    }
}
