//! The [`Context`] every step receives: AWS clients built once, settings, and a clock.

use std::sync::Arc;

use chrono::{DateTime, Utc};

/// Settings that come from the Lambda environment (or the CLI's flags).
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// SSM parameter path under which service configs live, ending in `/`.
    pub config_prefix: String,
    /// DynamoDB table of deployment records (partition key `deployment_id`).
    pub deployments_table: String,
    /// DynamoDB table of per-service locks (partition key `service`).
    pub locks_table: String,
    /// SNS topic for approval requests and outcomes; notifications are skipped when absent.
    pub topic_arn: Option<String>,
    /// Base URL of the approval console, put into approval notifications.
    pub console_url: Option<String>,
}

impl Settings {
    /// Reads `BLUEGREEN_CONFIG_PREFIX`, `BLUEGREEN_DEPLOYMENTS_TABLE`, `BLUEGREEN_LOCKS_TABLE`,
    /// `BLUEGREEN_TOPIC_ARN` and `BLUEGREEN_CONSOLE_URL`, with the stack's defaults.
    pub fn from_env() -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        Settings {
            config_prefix: normalise_prefix(
                &var("BLUEGREEN_CONFIG_PREFIX").unwrap_or_else(|| "/bluegreen/services/".into()),
            ),
            deployments_table: var("BLUEGREEN_DEPLOYMENTS_TABLE")
                .unwrap_or_else(|| "bluegreen-deployments".into()),
            locks_table: var("BLUEGREEN_LOCKS_TABLE").unwrap_or_else(|| "bluegreen-locks".into()),
            topic_arn: var("BLUEGREEN_TOPIC_ARN"),
            console_url: var("BLUEGREEN_CONSOLE_URL"),
        }
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

/// AWS clients, settings and clock shared by all steps. Cheap to clone.
#[derive(Clone)]
pub struct Context {
    /// ECS.
    pub ecs: aws_sdk_ecs::Client,
    /// Elastic Load Balancing v2.
    pub elb: aws_sdk_elasticloadbalancingv2::Client,
    /// Route 53.
    pub route53: aws_sdk_route53::Client,
    /// DynamoDB.
    pub dynamodb: aws_sdk_dynamodb::Client,
    /// SSM Parameter Store.
    pub ssm: aws_sdk_ssm::Client,
    /// SNS.
    pub sns: aws_sdk_sns::Client,
    /// CloudWatch.
    pub cloudwatch: aws_sdk_cloudwatch::Client,
    /// RDS.
    pub rds: aws_sdk_rds::Client,
    /// HTTP client for smoke checks.
    pub http: reqwest::Client,
    /// Settings.
    pub settings: Settings,
    clock: Clock,
}

impl Context {
    /// Builds every client from one shared SDK config.
    pub fn new(sdk: &aws_types::SdkConfig, settings: Settings) -> Self {
        Context {
            ecs: aws_sdk_ecs::Client::new(sdk),
            elb: aws_sdk_elasticloadbalancingv2::Client::new(sdk),
            route53: aws_sdk_route53::Client::new(sdk),
            dynamodb: aws_sdk_dynamodb::Client::new(sdk),
            ssm: aws_sdk_ssm::Client::new(sdk),
            sns: aws_sdk_sns::Client::new(sdk),
            cloudwatch: aws_sdk_cloudwatch::Client::new(sdk),
            rds: aws_sdk_rds::Client::new(sdk),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("the HTTP client builds with static settings"),
            settings,
            clock: Arc::new(Utc::now),
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

    /// Replaces the clock (tests, and the local runner's time scale).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// The current time according to the context's clock.
    pub fn now(&self) -> DateTime<Utc> {
        (self.clock)()
    }
}
