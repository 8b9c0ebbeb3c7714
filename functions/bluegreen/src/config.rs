//! Service configs: the typed description of one service under bluegreen management.
//!
//! Configs are authored as TOML files (see `docs/example-service.toml`), validated with
//! [`ServiceConfig::validate`], and stored as JSON in SSM Parameter Store (see
//! [`crate::config_store`]). [`json_schema`] generates the JSON Schema from these types.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::error::{StepError, StepResult};
use crate::slot::Slot;
use crate::text;

/// Upper bound for any single timeout: Step Functions executions are capped at one year, but a
/// deployment that waits more than a day for anything is a mistake in the config.
pub const MAX_TIMEOUT_SECONDS: u64 = 24 * 60 * 60;
/// The deployment state machine's `TimeoutSeconds` (48 h). A config whose waits cannot all fit
/// would let the execution time out mid-way, so validation refuses it (a test keeps this equal
/// to the definition).
pub const EXECUTION_TIMEOUT_SECONDS: u64 = 48 * 60 * 60;
/// What the execution needs beyond the configured waits: step calls, retries, the ending's
/// grace (an hour, generous: a step call takes seconds).
const EXECUTION_OVERHEAD_SECONDS: u64 = 60 * 60;

/// How long a Network Load Balancer may take to bring its data plane to new forward weights:
/// ECS's own blue/green waits this long at each traffic shift on an NLB.
pub const NLB_WEIGHTS_SETTLE_SECONDS: u64 = 600;

/// Whether a listener (or load balancer) ARN names a Network Load Balancer's (`…/net/…`; an
/// ALB's say `…/app/…`).
pub fn is_nlb_arn(arn: &str) -> bool {
    arn.contains(":listener/net/") || arn.contains(":loadbalancer/net/")
}

/// How long a DNS rollback waits for Route 53 to serve the weights back everywhere (INSYNC,
/// usually well under a minute) before it starts the switch TTL's clock anyway.
pub const DNS_IN_SYNC_BOUND_SECONDS: u64 = 600;

/// One service under bluegreen management.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceConfig {
    /// Service name: lowercase letters, digits and `-`, 1–40 characters. Used in resource names.
    pub name: String,
    /// Which pushed images start a deployment.
    pub source: ImageSource,
    /// ECS cluster name or ARN that runs both slots.
    pub cluster: String,
    /// The app's container: one of those that get the pushed image (see `containers`), the
    /// one migrations run in and whose database setting is read and re-pointed.
    pub container: String,
    /// The containers that get the pushed image. Default (empty): every container whose image
    /// comes from `source.repository` — a proxy or agent sidecar keeps its own image, a worker
    /// running the app's image gets the new one — and `container` must be one of them. Name
    /// them here when the task definition's app image comes from elsewhere.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub containers: Vec<String>,
    /// Environment variables set to the pushed tag (the digest for a push without one) in
    /// every container that gets the pushed image, for example `["DD_VERSION"]`, so telemetry
    /// names the release.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub image_env: Vec<String>,
    /// Which task definition revision the new one is made from.
    #[serde(default)]
    pub task_definition: TaskDefinitionSource,
    /// The two slots.
    pub slots: Slots,
    /// How production traffic reaches a slot.
    pub traffic: Traffic,
    /// Pre-prod launch settings.
    #[serde(default)]
    pub preprod: Preprod,
    /// Database handling for pre-prod.
    #[serde(default)]
    pub database: Database,
    /// Optional one-off migration task.
    #[serde(default)]
    pub migration: Option<Migration>,
    /// Health checks that gate the approval.
    pub health: Health,
    /// Who approves the switch.
    #[serde(default)]
    pub approval: Approval,
    /// What is watched after the switch.
    #[serde(default)]
    pub bake: Bake,
    /// What happens to the old slot after a successful bake.
    #[serde(default)]
    pub finish: Finish,
    /// The live-slot guard between deployments (see `guard`).
    #[serde(default)]
    pub guard: Guard,
    /// Who may act on this service as an operator — abort, retry, rollback, rollback-to,
    /// unlock, deploy, redeploy: IAM user or role ARNs (a role admits its sessions). Empty:
    /// every principal the stack's operator policy admits. Approvals are `approval.approvers`'.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub operators: Vec<String>,
}

/// Image repository and tag patterns that start a deployment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ImageSource {
    /// ECR repository name (not URI), for example `shop/web`.
    pub repository: String,
    /// Tag glob patterns (`*`, `?`, `[abc]`); a push matches if any pattern matches a tag.
    /// Digest-only pushes (no tag) never match.
    pub tags: Vec<String>,
    /// The registry the service's images are pushed to (default: the account and region the
    /// stack runs in). A push to the same repository name in any other registry — another
    /// account's forwarded event, another region's — is ignored, naming both registries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry: Option<RegistryLocation>,
    /// Where the service's tasks pull the image from: `event` (default), the registry the push
    /// happened in; `local-replica`, the replica ECR replication made in the stack's region
    /// (deployments then start from the "ECR Replication Action" event, when the replica
    /// exists, and the image is pinned in the stack's region).
    #[serde(default, skip_serializing_if = "PullFrom::is_event")]
    pub pull_from: PullFrom,
}

use crate::event::Push;
pub use crate::event::RegistryLocation;

/// Where the stack runs: the registry a service watches unless its config names one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StackRegistry {
    /// The stack's account, when known.
    pub account: Option<String>,
    /// The stack's region, when known.
    pub region: Option<String>,
}

/// Where tasks pull a service's image from (`source.pull_from`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum PullFrom {
    /// The registry the push happened in.
    #[default]
    Event,
    /// ECR replication's copy in the stack's region.
    LocalReplica,
}

impl PullFrom {
    fn is_event(&self) -> bool {
        *self == PullFrom::Event
    }
}

/// The blue and green slots.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Slots {
    /// The blue slot.
    pub blue: SlotConfig,
    /// The green slot.
    pub green: SlotConfig,
}

impl Slots {
    /// The config of one slot.
    pub fn get(&self, slot: Slot) -> &SlotConfig {
        match slot {
            Slot::Blue => &self.blue,
            Slot::Green => &self.green,
        }
    }
}

/// One slot: an ECS service and the target group its tasks register in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SlotConfig {
    /// ECS service name in the cluster.
    pub service: String,
    /// ARN of the slot's target group.
    pub target_group_arn: String,
    /// Base URL of this slot's test endpoint (DNS mode: the slot's own load balancer).
    /// Overrides `health.test_url`.
    #[serde(default)]
    pub test_url: Option<String>,
    /// DNS mode: the weighted record's set identifier for this slot.
    #[serde(default)]
    pub set_identifier: Option<String>,
    /// DNS mode: the CNAME target for this slot (usually its own load balancer's DNS name).
    #[serde(default)]
    pub record_value: Option<String>,
}

/// How production traffic is routed to the live slot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "mode", rename_all = "snake_case", deny_unknown_fields)]
pub enum Traffic {
    /// An ALB listener (or one rule of it) forwards to the live slot's target group; pre-prod
    /// is reached through a test listener or a test rule (exactly one of the two).
    Listener {
        /// ARN of the production listener.
        production_listener_arn: String,
        /// ARN of the test listener (its own port) that forwards to the idle slot, for smoke
        /// checks against pre-prod. Either this or `test_rule`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        test_listener_arn: Option<String>,
        /// A rule on the production listener that forwards to pre-prod only the requests
        /// carrying the deployment's preview header (no extra port, production's host name and
        /// certificate). Either this or `test_listener_arn`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        test_rule: Option<TestRule>,
        /// Optional: switch this rule of the production listener instead of its default action.
        #[serde(default)]
        production_rule_arn: Option<String>,
        /// Optional gradual shift; absent means all at once.
        #[serde(default)]
        shift: Option<Shift>,
        /// The other routes that move with production (see [`Routes`]); default none.
        #[serde(default, skip_serializing_if = "Routes::is_primary_only")]
        routes: Routes,
    },
    /// Route 53 weighted CNAME records, one per slot, under one name. (Alias A/AAAA records
    /// are not supported yet.)
    Dns {
        /// Hosted zone id.
        hosted_zone_id: String,
        /// Fully qualified record name, for example `shop.example.com.`.
        record_name: String,
        /// TTL during normal operation.
        #[serde(default = "default_dns_ttl")]
        ttl_seconds: u64,
        /// TTL set ahead of a switch so clients pick up the change quickly.
        #[serde(default = "default_switch_ttl")]
        switch_ttl_seconds: u64,
    },
}

/// `traffic.test_rule`: pre-prod reached through the production listener. For each deployment
/// bluegreen adds a rule that forwards to pre-prod's slot only requests whose `header` carries
/// the deployment id (and, when `source_ips` is set, only from those networks), placed just
/// above the production rule (or below every rule when production is the listener's default
/// action), and removes it at every ending. Requests without the header never match it. The
/// header is a routing key, not a credential: restrict who can reach pre-prod with
/// `source_ips` or the app's own authentication.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TestRule {
    /// The header that selects pre-prod; the smoke checks send it with the deployment id.
    #[serde(default = "default_preview_header")]
    pub header: String,
    /// Optional: only requests from these CIDR blocks (an ALB `source-ip` condition), for
    /// example the VPC's range the checks run from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub source_ips: Vec<String>,
}

impl Default for TestRule {
    fn default() -> Self {
        TestRule {
            header: default_preview_header(),
            source_ips: Vec::new(),
        }
    }
}

fn default_preview_header() -> String {
    PREVIEW_HEADER.to_owned()
}

/// The header a test rule matches by default.
pub const PREVIEW_HEADER: &str = "X-Bluegreen-Preview";

/// How smoke checks reach pre-prod.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestRoute<'a> {
    /// A test listener on its own port, pointed at the idle slot.
    Listener(&'a str),
    /// A per-deployment rule on the production listener (`traffic.test_rule`).
    Rule(&'a TestRule),
    /// DNS mode: each slot's own test URL.
    SlotUrls,
}

impl Traffic {
    /// The production listener's ARN; `None` in DNS mode.
    pub fn production_listener_arn(&self) -> Option<&str> {
        match self {
            Traffic::Listener {
                production_listener_arn,
                ..
            } => Some(production_listener_arn),
            Traffic::Dns { .. } => None,
        }
    }

    /// Whether production is served by a Network Load Balancer.
    pub fn on_nlb(&self) -> bool {
        matches!(self, Traffic::Listener { production_listener_arn, .. } if is_nlb_arn(production_listener_arn))
    }

    /// How long after a forward's weights change every new connection follows them:
    /// [`NLB_WEIGHTS_SETTLE_SECONDS`] on an NLB, at once on an ALB. (DNS mode waits for its
    /// records' TTL on its own.)
    pub fn settle_seconds(&self) -> u64 {
        if self.on_nlb() {
            NLB_WEIGHTS_SETTLE_SECONDS
        } else {
            0
        }
    }

    /// How smoke checks reach pre-prod. A listener config with neither a test listener nor a
    /// test rule is refused by validation; read as a test rule with defaults it never reaches
    /// production traffic.
    pub fn test_route(&self) -> TestRoute<'_> {
        static DEFAULT_RULE: std::sync::LazyLock<TestRule> =
            std::sync::LazyLock::new(TestRule::default);
        match self {
            Traffic::Listener {
                test_listener_arn: Some(arn),
                ..
            } => TestRoute::Listener(arn),
            Traffic::Listener { test_rule, .. } => {
                TestRoute::Rule(test_rule.as_ref().unwrap_or(&DEFAULT_RULE))
            }
            Traffic::Dns { .. } => TestRoute::SlotUrls,
        }
    }
}

/// Which routes besides the production listener (or rule) move with production: on shared
/// load balancers a service is often reached by several — a host rule, an `/admin/*` rule, an
/// HTTP listener beside the HTTPS one. Every one moves at each step of the switch (canary and
/// linear too) and is read back; the test listener never counts. Whatever the setting, a slot
/// is never scaled to 0 while a route still forwards to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Routes {
    /// `"primary"` (default: only the production listener or rule) or `"auto"`: every
    /// listener default action and rule, on the load balancers of the slots' target groups,
    /// that forwards to a slot — found again at every move.
    Word(RoutesWord),
    /// These listener and rule ARNs (each forwarding only to the slots).
    Listed(Vec<String>),
}

/// The words [`Routes`] takes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RoutesWord {
    /// Only the production listener or rule.
    #[default]
    Primary,
    /// Every route that forwards to a slot.
    Auto,
}

impl Default for Routes {
    fn default() -> Self {
        Routes::Word(RoutesWord::Primary)
    }
}

impl Routes {
    /// Only the production listener or rule moves (the default).
    pub fn is_primary_only(&self) -> bool {
        *self == Routes::Word(RoutesWord::Primary)
    }
}

fn default_dns_ttl() -> u64 {
    300
}
pub(crate) fn default_switch_ttl() -> u64 {
    30
}

/// A gradual traffic shift (listener mode).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Shift {
    /// Send `percent` to the new slot, wait `interval_seconds`, then send everything.
    Canary {
        /// Canary share, 1–99.
        percent: u8,
        /// How long the canary runs.
        interval_seconds: u64,
    },
    /// Add `step_percent` every `interval_seconds` until everything moved.
    Linear {
        /// Step size, 1–99.
        step_percent: u8,
        /// Time between steps.
        interval_seconds: u64,
    },
}

/// Pre-prod launch settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Preprod {
    /// Desired count for pre-prod; absent means the live slot's desired count.
    #[serde(default)]
    pub desired_count: Option<i32>,
    /// How long the launch may take before it is `LaunchFailed`.
    #[serde(default = "default_launch_timeout")]
    pub launch_timeout_seconds: u64,
    /// How long a pre-prod slot may exist before scheduled teardown removes it.
    #[serde(default = "default_ttl_hours")]
    pub ttl_hours: u64,
    /// Environment variables set on pre-prod's revision only (the production revision never
    /// gets them), to keep pre-prod out of production's side effects: for example
    /// `WORKERS_ENABLED = "false"` (no queue consumers, no crons), `DD_ENV = "preprod"`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub environment: BTreeMap<String, String>,
}

fn default_launch_timeout() -> u64 {
    900
}
fn default_ttl_hours() -> u64 {
    24
}

impl Default for Preprod {
    fn default() -> Self {
        Preprod {
            desired_count: None,
            launch_timeout_seconds: default_launch_timeout(),
            ttl_hours: default_ttl_hours(),
            environment: BTreeMap::new(),
        }
    }
}

/// How pre-prod gets its database.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Database {
    /// `none`, `shared` (default) or `isolated`.
    #[serde(default)]
    pub strategy: DbStrategy,
    /// The production database (required for `isolated` and for a rehearsal).
    #[serde(default)]
    pub source: Option<DbSource>,
    /// `shared` only: rehearse the migration on a fresh clone before running it on production.
    #[serde(default)]
    pub rehearsal: bool,
    /// Environment variable that carries the clone's endpoint to pre-prod and the migration.
    #[serde(default = "default_db_env")]
    pub endpoint_env: String,
    /// Instead of `endpoint_env`: the plain environment variable that holds the database's
    /// URL (`postgres://app:pw@host:5432/shop`, `mysql://…`, `jdbc:postgresql://…`). bluegreen
    /// rewrites only the host inside it; user, password, port, database and parameters stay.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url_env: Option<String>,
    /// Instead of `endpoint_env`: the name of the `secrets` entry the app reads its database
    /// from (a Secrets Manager secret: RDS's JSON with `host`, a JSON key such as `…:url::`,
    /// or a URL). For a clone, bluegreen writes a per-deployment secret
    /// `bluegreen/clone/<service>/<clone>` (production's value with only its host fields
    /// changed, encrypted with production's key), points every entry that read production's
    /// secret in pre-prod's revision at it and deletes it with the clone; production's
    /// revisions always reference production's secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// How long creating a clone may take.
    #[serde(default = "default_clone_timeout")]
    pub clone_timeout_seconds: u64,
    /// Instance class for clones (defaults to the source's class).
    #[serde(default)]
    pub clone_instance_class: Option<String>,
}

impl Default for Database {
    fn default() -> Self {
        Database {
            strategy: DbStrategy::default(),
            source: None,
            rehearsal: false,
            endpoint_env: default_db_env(),
            url_env: None,
            secret: None,
            clone_timeout_seconds: default_clone_timeout(),
            clone_instance_class: None,
        }
    }
}

/// How the app reads its database, which decides how bluegreen points pre-prod at a clone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbSettingForm {
    /// A plain variable holding a bare host (`database.endpoint_env`): replaced.
    Host,
    /// A plain variable holding a URL (`database.url_env`): its host is replaced.
    Url,
    /// A `secrets` entry (`database.secret`): re-pointed at a per-deployment secret.
    Secret,
}

impl DbSettingForm {
    /// The config field that names the setting, for messages.
    pub fn field(self) -> &'static str {
        match self {
            DbSettingForm::Host => "database.endpoint_env",
            DbSettingForm::Url => "database.url_env",
            DbSettingForm::Secret => "database.secret",
        }
    }
}

impl Database {
    /// The variable bluegreen re-points at a clone: `secret` or `url_env` when set, else
    /// `endpoint_env`.
    pub fn setting(&self) -> &str {
        self.secret
            .as_deref()
            .or(self.url_env.as_deref())
            .unwrap_or(&self.endpoint_env)
    }

    /// How the setting carries the database.
    pub fn form(&self) -> DbSettingForm {
        if self.secret.is_some() {
            DbSettingForm::Secret
        } else if self.url_env.is_some() {
            DbSettingForm::Url
        } else {
            DbSettingForm::Host
        }
    }

    /// A plain variable's value pointed at the clone `host`, from production's `current` value
    /// (see [`crate::endpoint::repointed`]); an error names the setting, never the value.
    pub fn repointed(&self, current: Option<&str>, host: &str) -> Result<String, String> {
        let url = self.form() == DbSettingForm::Url;
        crate::endpoint::repointed(current.unwrap_or_default(), host, url)
            .map_err(|why| format!("{}: {}: {why}", self.form().field(), self.setting()))
    }
}

fn default_db_env() -> String {
    "DATABASE_HOST".into()
}
fn default_clone_timeout() -> u64 {
    3600
}

/// Database strategy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DbStrategy {
    /// The service has no database bluegreen needs to know about.
    None,
    /// Both slots use the production database; migrations must be backward compatible.
    #[default]
    Shared,
    /// Pre-prod gets its own clone of production.
    Isolated,
}

/// The production database to clone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum DbSource {
    /// An RDS instance: the clone is restored from its newest available snapshot.
    RdsInstance {
        /// DB instance identifier.
        identifier: String,
    },
    /// An Aurora cluster: the clone is a copy-on-write clone.
    AuroraCluster {
        /// DB cluster identifier.
        identifier: String,
    },
}

/// The one-off migration task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Migration {
    /// Command override for the service's container, for example `["bin/migrate", "up"]`.
    pub command: Vec<String>,
    /// How long the migration may run before it is stopped and `MigrationTimedOut`.
    #[serde(default = "default_migration_timeout")]
    pub timeout_seconds: u64,
    /// Optional explicit rollback migration. It runs as a tracked one-off task, waited for
    /// like the migration, on rollback and on an abort after the production migration
    /// succeeded. Schema is never reverted silently: without it, the schema stays as the
    /// migration left it.
    #[serde(default)]
    pub rollback_command: Option<Vec<String>>,
    /// When the production migration runs (`shared` and `none` strategies): `before_launch`
    /// (default: before pre-prod starts, so pre-prod tests the new code on the migrated schema;
    /// migrations must be expand/contract) or `after_approval` (pre-prod tests against the
    /// current schema; the migration runs after approval, before the switch). `isolated`
    /// always migrates its clone before launch and production after approval, so only
    /// `after_approval` (or nothing) is accepted there.
    #[serde(default)]
    pub run: Option<MigrationRun>,
    /// Listener mode only: while the production migration runs, production answers a fixed
    /// 503 page (an ALB fixed-response rule bluegreen adds above every other rule and always
    /// removes).
    #[serde(default)]
    pub maintenance: bool,
    /// The capacity migration tasks run on: `on_demand` (default: the service's capacity
    /// provider strategy without Fargate Spot — a Spot interruption stops a migration part-way)
    /// or `service` (the service's own strategy, Spot included).
    #[serde(default)]
    pub capacity: MigrationCapacity,
}

/// The capacity a migration task runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MigrationCapacity {
    /// The service's strategy without `FARGATE_SPOT` (`FARGATE` when nothing else is left).
    #[default]
    OnDemand,
    /// The service's own launch type or capacity provider strategy.
    Service,
}

/// When the production migration runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MigrationRun {
    /// Before pre-prod launches (expand/contract migrations).
    #[default]
    BeforeLaunch,
    /// After approval, before any production traffic moves.
    AfterApproval,
}

impl Migration {
    /// When the production migration runs for `strategy` (`isolated`: always after approval).
    pub fn run_for(&self, strategy: DbStrategy) -> MigrationRun {
        match strategy {
            DbStrategy::Isolated => MigrationRun::AfterApproval,
            _ => self.run.unwrap_or_default(),
        }
    }
}

fn default_migration_timeout() -> u64 {
    1800
}

/// Health checks that gate the approval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Health {
    /// Base URL of the test listener (listener mode), for example `http://alb:8443`.
    #[serde(default)]
    pub test_url: Option<String>,
    /// HTTP smoke checks run against the test endpoint.
    #[serde(default)]
    pub smoke: Vec<SmokeCheck>,
    /// How many rounds of all smoke checks must pass in a row; a failed round is tried again
    /// at the next look, until `timeout_seconds`.
    #[serde(default = "default_passes")]
    pub consecutive_passes: u32,
    /// Per-request timeout.
    #[serde(default = "default_request_timeout")]
    pub request_timeout_ms: u64,
    /// How long targets may take to become healthy and pass a clean run of smoke rounds.
    #[serde(default = "default_health_timeout")]
    pub timeout_seconds: u64,
}

impl Default for Health {
    fn default() -> Self {
        Health {
            test_url: None,
            smoke: Vec::new(),
            consecutive_passes: default_passes(),
            request_timeout_ms: default_request_timeout(),
            timeout_seconds: default_health_timeout(),
        }
    }
}

/// The health-check function's timeout in `infra/template.yaml` (a stack test holds the two
/// equal).
pub const HEALTH_CHECK_FUNCTION_TIMEOUT_SECONDS: u64 = 120;
/// How long one look's smoke rounds may take at most: the function's timeout less what the
/// look's other calls (target health, the record) need.
pub const SMOKE_BUDGET_SECONDS: u64 = HEALTH_CHECK_FUNCTION_TIMEOUT_SECONDS - 20;

fn default_passes() -> u32 {
    3
}
fn default_request_timeout() -> u64 {
    2000
}
fn default_health_timeout() -> u64 {
    600
}

/// One HTTP smoke check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SmokeCheck {
    /// HTTP method: `GET` (default), `HEAD`, `POST`, `PUT`, `PATCH`, `DELETE` or `OPTIONS`.
    #[serde(default = "default_method")]
    pub method: String,
    /// Path, starting with `/`.
    pub path: String,
    /// Request headers. A value is text (part of the config, so stored and shown with it), or
    /// `{ secret = "<Secrets Manager ARN>", key = "…" }` read when the check runs (the secret
    /// must be tagged `bluegreen:smoke-header = true`): a secret's value is never logged or
    /// recorded, and no header value appears in evidence.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, HeaderValue>,
    /// Request body (not with `GET` or `HEAD`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// The host name the app answers to (`shop.example.com`): sent as `Host` and used as the
    /// TLS server name (certificate checked against it), while the request still goes to the
    /// test URL's address. Without it, the test URL's host is both.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Verify the TLS certificate (default `true`); `false` only for a test listener with a
    /// self-signed certificate.
    #[serde(default = "default_true", skip_serializing_if = "is_true")]
    pub verify_tls: bool,
    /// Expected HTTP status.
    #[serde(default = "default_status")]
    pub expect_status: u16,
    /// Optional substring the body must contain.
    #[serde(default)]
    pub body_contains: Option<String>,
    /// The body must be JSON holding `equals` at `pointer` (RFC 6901: `/status`,
    /// `/checks/0/ok`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json: Option<JsonMatch>,
}

impl SmokeCheck {
    /// `GET path`, expecting `200`, with nothing else set.
    pub fn get(path: &str) -> SmokeCheck {
        SmokeCheck {
            method: default_method(),
            path: path.to_owned(),
            headers: BTreeMap::new(),
            body: None,
            host: None,
            verify_tls: true,
            expect_status: default_status(),
            body_contains: None,
            json: None,
        }
    }
}

/// A smoke-check header's value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum HeaderValue {
    /// The value itself.
    Text(String),
    /// Read from Secrets Manager when the check runs.
    Secret(SecretHeader),
}

/// A header value kept in Secrets Manager (a token, a basic-auth pair).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SecretHeader {
    /// The secret's ARN.
    pub secret: String,
    /// The JSON key holding the value, when the secret is a JSON object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

/// A JSON value the answer must hold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JsonMatch {
    /// Where, as a JSON pointer (RFC 6901).
    pub pointer: String,
    /// The value it must equal (any JSON value: `"ok"`, `true`, `3`).
    pub equals: serde_json::Value,
}

/// The methods a smoke check may use.
pub const SMOKE_METHODS: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

fn default_method() -> String {
    "GET".into()
}

fn default_true() -> bool {
    true
}

fn is_true(value: &bool) -> bool {
    *value
}

fn default_status() -> u16 {
    200
}

/// Approval policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Approval {
    /// `required` (default) or `auto`.
    #[serde(default)]
    pub policy: ApprovalPolicy,
    /// Who may approve (IAM principal ARNs or e-mail addresses).
    #[serde(default)]
    pub approvers: Vec<String>,
    /// How long to wait for a decision before `ApprovalTimedOut`.
    #[serde(default = "default_approval_timeout")]
    pub timeout_seconds: u64,
}

fn default_approval_timeout() -> u64 {
    4 * 60 * 60
}

impl Default for Approval {
    fn default() -> Self {
        Approval {
            policy: ApprovalPolicy::Required,
            approvers: Vec::new(),
            timeout_seconds: default_approval_timeout(),
        }
    }
}

/// Whether a person must approve the switch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalPolicy {
    /// A listed approver must approve.
    #[default]
    Required,
    /// Healthy pre-prod is switched without a person.
    Auto,
}

/// The watched period after the switch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Bake {
    /// How long to watch.
    #[serde(default = "default_bake")]
    pub seconds: u64,
    /// CloudWatch alarm names; any in `ALARM` fails the bake.
    #[serde(default)]
    pub alarms: Vec<String>,
}

fn default_bake() -> u64 {
    600
}

impl Default for Bake {
    fn default() -> Self {
        Bake {
            seconds: default_bake(),
            alarms: Vec::new(),
        }
    }
}

/// What happens to the old slot after a successful bake.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Finish {
    /// Keep the old slot running this long (for a fast manual rollback); 0 scales it to zero at
    /// once. Scheduled teardown scales it down once the window has passed.
    #[serde(default)]
    pub keep_warm_seconds: u64,
}

/// Which revision a deployment's task definitions are made from (the pushed image is always
/// pinned over it).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskDefinitionSource {
    /// `live` (default): the live slot's current revision. `family`: the newest revision of
    /// the family that bluegreen did not register — IaC owns env, secrets, CPU, sidecars, and
    /// bluegreen overlays only the image digest (docs/iac.md).
    #[serde(default)]
    pub source: RevisionSource,
    /// With `source = "family"`: the family (default: the live slot's revision's family).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<String>,
}

/// Where a deployment's base revision comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RevisionSource {
    /// The live slot's current revision.
    #[default]
    Live,
    /// The newest revision of the family that bluegreen did not register.
    Family,
}

/// The live-slot guard: what it may do besides reporting.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Guard {
    /// Repair by itself when the repair is unambiguous: production sends all of its traffic to
    /// a slot that runs nothing while the other runs tasks of the same release (an apply reset
    /// the live slot's count) — that slot is scaled back to the other's count. Traffic is never
    /// moved. Default false: report only (a manual rollback whose clean-up did not finish is
    /// finished either way: a person asked for it).
    #[serde(default)]
    pub repair: bool,
}

impl ServiceConfig {
    /// Parses a TOML config file's text.
    pub fn from_toml(text: &str) -> StepResult<Self> {
        toml::from_str(text).map_err(|e| StepError::ConfigInvalid(vec![e.to_string()]))
    }

    /// Parses the JSON form stored in Parameter Store.
    pub fn from_json(text: &str) -> StepResult<Self> {
        serde_json::from_str(text).map_err(|e| StepError::ConfigInvalid(vec![e.to_string()]))
    }

    /// The JSON form stored in Parameter Store.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a config always serialises")
    }

    /// Checks everything that can be checked without AWS and lists every problem found.
    pub fn validate(&self) -> StepResult<()> {
        let problems = self.problems();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(StepError::ConfigInvalid(problems))
        }
    }

    /// The list of problems; empty when the config is valid.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Problems::default();
        if !valid_name(&self.name) {
            p.add(
                "name",
                "must be 1-40 characters of a-z, 0-9 and '-', starting with a letter",
            );
        }
        self.text_problems(&mut p);
        if self.source.repository.trim().is_empty() {
            p.add("source.repository", "must not be empty");
        }
        if let Some(registry) = &self.source.registry {
            if registry.account.len() != 12 || !registry.account.chars().all(|c| c.is_ascii_digit())
            {
                p.add(
                    "source.registry.account",
                    &format!("{:?} is not a 12-digit AWS account id", registry.account),
                );
            }
            if !crate::event::valid_region(&registry.region) {
                p.add(
                    "source.registry.region",
                    &format!(
                        "{:?} is not an AWS region name (like us-east-1)",
                        registry.region
                    ),
                );
            }
        }
        if self.source.tags.is_empty() {
            p.add("source.tags", "must list at least one tag pattern");
        }
        for (i, tag) in self.source.tags.iter().enumerate() {
            if let Err(e) = globset::Glob::new(tag) {
                p.add(
                    &format!("source.tags[{i}]"),
                    &format!("is not a valid glob: {e}"),
                );
            }
        }
        if self.cluster.trim().is_empty() {
            p.add("cluster", "must not be empty");
        } else if self.cluster.starts_with("arn:") {
            p.arn("cluster", &self.cluster, "ecs");
        }
        self.container_problems(&mut p);
        self.task_definition_problems(&mut p);
        for slot in Slot::ALL {
            let s = self.slots.get(slot);
            let at = format!("slots.{slot}");
            if s.service.trim().is_empty() {
                p.add(&format!("{at}.service"), "must not be empty");
            }
            p.elb_arn(
                &format!("{at}.target_group_arn"),
                &s.target_group_arn,
                ElbResource::TargetGroup,
            );
            if let Some(url) = &s.test_url {
                p.url(&format!("{at}.test_url"), url);
            }
        }
        if self.slots.blue.service == self.slots.green.service {
            p.add("slots", "blue and green must be different ECS services");
        }
        if self.slots.blue.target_group_arn == self.slots.green.target_group_arn {
            p.add("slots", "blue and green must use different target groups");
        }
        self.traffic_problems(&mut p);
        self.nlb_problems(&mut p);
        if let Some(count) = self.preprod.desired_count
            && !(1..=1000).contains(&count)
        {
            p.add("preprod.desired_count", "must be between 1 and 1000");
        }
        p.timeout(
            "preprod.launch_timeout_seconds",
            self.preprod.launch_timeout_seconds,
        );
        if self.preprod.ttl_hours == 0 || self.preprod.ttl_hours > 24 * 30 {
            p.add("preprod.ttl_hours", "must be between 1 and 720");
        }
        self.preprod_environment_problems(&mut p);
        self.database_problems(&mut p);
        if let Some(m) = &self.migration {
            if m.command.is_empty() || m.command.iter().all(|c| c.trim().is_empty()) {
                p.add("migration.command", "must not be empty");
            }
            p.timeout("migration.timeout_seconds", m.timeout_seconds);
            if let Some(rb) = &m.rollback_command
                && rb.is_empty()
            {
                p.add("migration.rollback_command", "must not be empty when given");
            }
        }
        self.health_problems(&mut p);
        operator_problems(&self.operators, &mut p);
        if self.approval.policy == ApprovalPolicy::Required && self.approval.approvers.is_empty() {
            p.add(
                "approval.approvers",
                "policy 'required' needs at least one approver",
            );
        }
        p.timeout("approval.timeout_seconds", self.approval.timeout_seconds);
        if self.bake.seconds > MAX_TIMEOUT_SECONDS {
            p.add("bake.seconds", "must be at most 86400");
        }
        if self.finish.keep_warm_seconds > 7 * MAX_TIMEOUT_SECONDS {
            p.add("finish.keep_warm_seconds", "must be at most 7 days");
        }
        let waits = self.execution_waits();
        let total: u64 = waits.iter().map(|(_, s)| s).sum::<u64>() + EXECUTION_OVERHEAD_SECONDS;
        if total > EXECUTION_TIMEOUT_SECONDS {
            let parts: Vec<String> = waits.iter().map(|(f, s)| format!("{f} {s}")).collect();
            p.add(
                "timeouts",
                &format!(
                    "the longest deployment waits {total} s ({} + {EXECUTION_OVERHEAD_SECONDS} \
                     for the steps themselves), more than the execution's limit of \
                     {EXECUTION_TIMEOUT_SECONDS} s: shorten one of them",
                    parts.join(" + ")
                ),
            );
        }
        p.0
    }

    /// Strings no person means to write (control characters, or longer than
    /// [`text::CONFIG_STRING_MAX_CHARS`]) in any field, each named; and approvers that name
    /// nobody (blank, or padded with spaces that no identity carries).
    /// `task_definition.family`: a family name, used only with `source = "family"`.
    fn task_definition_problems(&self, p: &mut Problems) {
        if let Some(family) = &self.task_definition.family {
            // A family name, not `family:revision` or an ARN: the walk appends revisions.
            let valid = !family.is_empty()
                && family.len() <= 255
                && family
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            if !valid {
                p.add(
                    "task_definition.family",
                    "must be a task definition family name (letters, digits, '-', '_'), \
                 without a revision",
                );
            } else if self.task_definition.source == RevisionSource::Live {
                p.add(
                    "task_definition.family",
                    "is used only with source = \"family\"",
                );
            }
        }
    }

    fn text_problems(&self, p: &mut Problems) {
        match serde_json::to_value(self) {
            Ok(doc) => {
                for refused in text::refused_strings(&doc, text::CONFIG_STRING_MAX_CHARS) {
                    p.0.push(refused.to_string());
                }
            }
            Err(e) => p.add("config", &format!("cannot be read back as JSON: {e}")),
        }
        for (i, approver) in self.approval.approvers.iter().enumerate() {
            if approver.trim().is_empty() {
                p.add(
                    &format!("approval.approvers[{i}]"),
                    "must name an approver, not be blank",
                );
            } else if approver.trim() != approver {
                p.add(
                    &format!("approval.approvers[{i}]"),
                    &format!("{approver:?} has spaces around it; no identity matches that"),
                );
            }
        }
    }

    /// Every wait a deployment of this config can go through in one execution, longest case,
    /// with the config field that sets it: clone, migrations before launch, launch, health,
    /// approval, what promote repeats after approval, the traffic shift, bake, and the ending's
    /// rollback migration. Keep-warm is not waited for in the execution (teardown ends it).
    pub fn execution_waits(&self) -> Vec<(&'static str, u64)> {
        let plan = crate::db_plan::plan(self);
        let mut waits = Vec::new();
        if plan.clone.is_some() {
            waits.push((
                "database.clone_timeout_seconds",
                self.database.clone_timeout_seconds,
            ));
        }
        let migration = self
            .migration
            .as_ref()
            .map(|m| m.timeout_seconds)
            .unwrap_or(0);
        for _ in &plan.before_launch {
            waits.push(("migration.timeout_seconds", migration));
        }
        waits.push((
            "preprod.launch_timeout_seconds",
            self.preprod.launch_timeout_seconds,
        ));
        waits.push(("health.timeout_seconds", self.health.timeout_seconds));
        if self.approval.policy == ApprovalPolicy::Required {
            waits.push(("approval.timeout_seconds", self.approval.timeout_seconds));
        }
        if let Some(after) = &plan.after_approval {
            if after.migrate {
                waits.push(("migration.timeout_seconds", migration));
            }
            if after.repoint {
                waits.push((
                    "preprod.launch_timeout_seconds",
                    self.preprod.launch_timeout_seconds,
                ));
            }
            waits.push(("health.timeout_seconds", self.health.timeout_seconds));
        }
        // The switch first scales the new slot to production's current count (capacity).
        waits.push((
            "preprod.launch_timeout_seconds",
            self.preprod.launch_timeout_seconds,
        ));
        waits.extend(self.traffic_waits());
        waits.push(("bake.seconds", self.bake.seconds));
        if self
            .migration
            .as_ref()
            .is_some_and(|m| m.rollback_command.is_some())
        {
            waits.push(("migration.timeout_seconds", migration));
        }
        waits
    }

    /// The waits the traffic mode adds: the shift's steps (listener mode); the lowered TTL
    /// before the switch and, on a rollback, the switch TTL after Route 53 is INSYNC (DNS mode).
    fn traffic_waits(&self) -> Vec<(&'static str, u64)> {
        match &self.traffic {
            Traffic::Listener {
                shift: Some(shift), ..
            } => {
                let (step, interval) = match shift {
                    Shift::Canary {
                        interval_seconds, ..
                    } => (100, *interval_seconds),
                    Shift::Linear {
                        step_percent,
                        interval_seconds,
                    } => (u64::from((*step_percent).max(1)), *interval_seconds),
                };
                vec![(
                    "traffic.shift.interval_seconds",
                    interval * 100u64.div_ceil(step),
                )]
            }
            Traffic::Listener { shift: None, .. } => Vec::new(),
            Traffic::Dns {
                ttl_seconds,
                switch_ttl_seconds,
                ..
            } => vec![
                ("traffic.ttl_seconds", *ttl_seconds),
                // A rollback keeps the failed slot until cached answers for it expire, counted
                // from Route 53's INSYNC (waited for up to 10 minutes).
                (
                    "traffic.switch_ttl_seconds",
                    *switch_ttl_seconds + DNS_IN_SYNC_BOUND_SECONDS,
                ),
            ],
        }
    }

    /// `preprod.environment`: variable names, and none that names a database (pre-prod's
    /// database is bluegreen's to set).
    fn container_problems(&self, p: &mut Problems) {
        if self.container.trim().is_empty() {
            p.add("container", "must not be empty");
        }
        if !self.containers.is_empty() && !self.containers.contains(&self.container) {
            p.add(
                "containers",
                &format!(
                    "must include `container` ({:?}): migrations run in it and its database \
                     setting is re-pointed, so it must run the pushed image",
                    self.container
                ),
            );
        }
        let mut seen = std::collections::BTreeSet::new();
        for name in &self.containers {
            if name.trim().is_empty() || !seen.insert(name) {
                p.add("containers", &format!("{name:?} is empty or listed twice"));
            }
        }
        for name in &self.image_env {
            if !env_name(name) {
                p.add(
                    "image_env",
                    &format!("{name:?} is not an environment variable name (letters, digits, _)"),
                );
            }
            if *name == self.database.setting()
                || crate::revisions::carries_a_database_host(name)
                || self.preprod.environment.contains_key(name)
            {
                p.add(
                    "image_env",
                    &format!(
                        "{name} is set elsewhere (the database setting or preprod.environment): \
                         one variable, one owner"
                    ),
                );
            }
        }
    }

    fn preprod_environment_problems(&self, p: &mut Problems) {
        for name in self.preprod.environment.keys() {
            if !env_name(name) {
                p.add(
                    "preprod.environment",
                    &format!("{name:?} is not an environment variable name (letters, digits, _)"),
                );
            }
            if *name == self.database.setting() || crate::revisions::carries_a_database_host(name) {
                p.add(
                    "preprod.environment",
                    &format!(
                        "{name} names a database: pre-prod's database is bluegreen's to set \
                     ({}; its clone in isolated mode)",
                        self.database.form().field()
                    ),
                );
            }
        }
    }

    fn traffic_problems(&self, p: &mut Problems) {
        match &self.traffic {
            Traffic::Listener {
                production_listener_arn,
                test_listener_arn,
                test_rule,
                production_rule_arn,
                shift,
                routes,
            } => {
                if let Routes::Listed(arns) = routes {
                    let own = [
                        Some(production_listener_arn),
                        test_listener_arn.as_ref(),
                        production_rule_arn.as_ref(),
                    ];
                    routes_problems(arns, &own, p);
                }
                p.elb_arn(
                    "traffic.production_listener_arn",
                    production_listener_arn,
                    ElbResource::Listener,
                );
                test_route_problems(
                    production_listener_arn,
                    test_listener_arn.as_deref(),
                    test_rule.as_ref(),
                    p,
                );
                if let Some(rule) = production_rule_arn {
                    p.elb_arn("traffic.production_rule_arn", rule, ElbResource::Rule);
                }
                if let Some(shift) = shift {
                    shift_problems(shift, p);
                }
            }
            Traffic::Dns {
                hosted_zone_id,
                record_name,
                ttl_seconds,
                switch_ttl_seconds,
            } => {
                if hosted_zone_id.trim().is_empty() {
                    p.add("traffic.hosted_zone_id", "DNS mode needs a hosted zone id");
                }
                if record_name.trim().is_empty() {
                    p.add("traffic.record_name", "DNS mode needs a record name");
                }
                if *ttl_seconds == 0 || *ttl_seconds > 172_800 {
                    p.add("traffic.ttl_seconds", "must be between 1 and 172800");
                }
                if *switch_ttl_seconds == 0 || switch_ttl_seconds > ttl_seconds {
                    p.add(
                        "traffic.switch_ttl_seconds",
                        "must be between 1 and ttl_seconds",
                    );
                }
                for slot in Slot::ALL {
                    let s = self.slots.get(slot);
                    if s.set_identifier.as_deref().unwrap_or("").is_empty() {
                        p.add(
                            &format!("slots.{slot}.set_identifier"),
                            "DNS mode needs a set identifier per slot",
                        );
                    }
                    if s.record_value.as_deref().unwrap_or("").is_empty() {
                        p.add(
                            &format!("slots.{slot}.record_value"),
                            "DNS mode needs a record value per slot",
                        );
                    }
                }
            }
        }
    }

    /// What an NLB cannot do: listener rules (a production rule, a test rule), a fixed
    /// response (the maintenance page); and what its slow weights need: every step of a shift
    /// and the bake at least [`NLB_WEIGHTS_SETTLE_SECONDS`], so no slot is judged, or scaled
    /// down, while new connections may still reach it.
    fn nlb_problems(&self, p: &mut Problems) {
        let Traffic::Listener {
            test_listener_arn,
            test_rule,
            production_rule_arn,
            shift,
            ..
        } = &self.traffic
        else {
            return;
        };
        if !self.traffic.on_nlb() {
            return;
        }
        let settle = NLB_WEIGHTS_SETTLE_SECONDS;
        if test_rule.is_some() {
            p.add(
                "traffic.test_rule",
                "an NLB has no listener rules: reach pre-prod through a test listener",
            );
        }
        if production_rule_arn.is_some() {
            p.add(
                "traffic.production_rule_arn",
                "an NLB has no listener rules: switch the production listener itself",
            );
        }
        if let Some(arn) = test_listener_arn.as_deref().filter(|a| !is_nlb_arn(a)) {
            p.add(
                "traffic.test_listener_arn",
                &format!("{arn} is not an NLB listener, but the slots' target groups are an NLB's"),
            );
        }
        if self.migration.as_ref().is_some_and(|m| m.maintenance) {
            p.add(
                "migration.maintenance",
                "an NLB cannot answer a maintenance page (it has no fixed responses)",
            );
        }
        let interval = match shift {
            Some(
                Shift::Canary {
                    interval_seconds, ..
                }
                | Shift::Linear {
                    interval_seconds, ..
                },
            ) => Some(*interval_seconds),
            None => None,
        };
        if interval.is_some_and(|i| i < settle) {
            p.add(
                "traffic.shift.interval_seconds",
                &format!(
                    "at least {settle} on an NLB: its weights take up to {settle} s to reach new \
                     connections, so a shorter step judges the previous share"
                ),
            );
        }
        if self.bake.seconds < settle {
            p.add(
                "bake.seconds",
                &format!(
                    "at least {settle} on an NLB: new connections may reach the old slot for up \
                     to {settle} s after the switch, and finish scales it down after the bake"
                ),
            );
        }
    }

    fn database_problems(&self, p: &mut Problems) {
        let db = &self.database;
        let needs_source = db.strategy == DbStrategy::Isolated
            || (db.strategy == DbStrategy::Shared && db.rehearsal);
        if needs_source && db.source.is_none() {
            p.add(
                "database.source",
                "isolated mode and rehearsals need a source database",
            );
        }
        if db.rehearsal && db.strategy != DbStrategy::Shared {
            p.add(
                "database.rehearsal",
                "only applies to the 'shared' strategy",
            );
        }
        if db.rehearsal && self.migration.is_none() {
            p.add("database.rehearsal", "needs a migration to rehearse");
        }
        if let Some(DbSource::RdsInstance { identifier } | DbSource::AuroraCluster { identifier }) =
            &db.source
            && identifier.trim().is_empty()
        {
            p.add("database.source.identifier", "must not be empty");
        }
        if db.endpoint_env.trim().is_empty() {
            p.add("database.endpoint_env", "must not be empty");
        }
        if let Some(url_env) = &db.url_env {
            if !env_name(url_env) {
                p.add(
                    "database.url_env",
                    &format!(
                        "{url_env:?} is not an environment variable name (letters, digits, _)"
                    ),
                );
            }
            if db.endpoint_env != default_db_env() {
                p.add(
                    "database.url_env",
                    "set endpoint_env (a bare host) or url_env (a URL), not both",
                );
            }
        }
        if let Some(secret) = &db.secret {
            if !env_name(secret) {
                p.add(
                    "database.secret",
                    &format!(
                        "{secret:?} is not a `secrets` entry's name (letters, digits, _): name \
                         the variable the secret is read into, not the secret"
                    ),
                );
            }
            if db.endpoint_env != default_db_env() || db.url_env.is_some() {
                p.add(
                    "database.secret",
                    "set one of endpoint_env (a bare host), url_env (a URL) or secret (a \
                     `secrets` entry), not several",
                );
            }
        }
        if let Some(m) = &self.migration {
            if db.strategy == DbStrategy::Isolated && m.run == Some(MigrationRun::BeforeLaunch) {
                p.add(
                    "migration.run",
                    "'isolated' migrates its clone before launch and production only after \
                     approval; use 'after_approval' or leave it out",
                );
            }
            if m.maintenance && matches!(self.traffic, Traffic::Dns { .. }) {
                p.add(
                    "migration.maintenance",
                    "needs traffic mode 'listener' (a fixed-response rule on the production \
                     listener); DNS mode cannot show a maintenance page",
                );
            }
        }
        p.timeout("database.clone_timeout_seconds", db.clone_timeout_seconds);
    }

    fn health_problems(&self, p: &mut Problems) {
        let h = &self.health;
        if let Some(url) = &h.test_url {
            p.url("health.test_url", url);
        }
        if h.smoke.is_empty() {
            p.add("health.smoke", "at least one smoke check is required");
        }
        for (i, check) in h.smoke.iter().enumerate() {
            if !check.path.starts_with('/') {
                p.add(&format!("health.smoke[{i}].path"), "must start with '/'");
            }
            if !(100..=599).contains(&check.expect_status) {
                p.add(
                    &format!("health.smoke[{i}].expect_status"),
                    "must be an HTTP status (100-599)",
                );
            }
            smoke_request_problems(i, check, p);
        }
        if !h.smoke.is_empty() {
            for slot in Slot::ALL {
                if self.test_url(slot).is_none() {
                    p.add(
                        "health.test_url",
                        &format!("smoke checks need a test URL for slot {slot} (health.test_url or slots.{slot}.test_url)"),
                    );
                }
            }
        }
        if h.consecutive_passes == 0 || h.consecutive_passes > 100 {
            p.add("health.consecutive_passes", "must be between 1 and 100");
        }
        if h.request_timeout_ms == 0 || h.request_timeout_ms > 60_000 {
            p.add("health.request_timeout_ms", "must be between 1 and 60000");
        }
        // One look runs every round of every check; each request may take its whole timeout.
        // Past the function's timeout Lambda kills the look (`Sandbox.Timedout`) and the
        // deployment aborts with no evidence, so such a config is refused up front.
        let worst_ms = u64::from(h.consecutive_passes)
            .saturating_mul(h.smoke.len() as u64)
            .saturating_mul(h.request_timeout_ms);
        if worst_ms > SMOKE_BUDGET_SECONDS * 1000 {
            p.add(
                "health.consecutive_passes",
                &format!(
                    "{} round(s) × {} check(s) in health.smoke × health.request_timeout_ms {} \
                     may take {} s, longer than the {SMOKE_BUDGET_SECONDS} s a look of the \
                     health-check function has (its timeout is \
                     {HEALTH_CHECK_FUNCTION_TIMEOUT_SECONDS} s): lower one of them",
                    h.consecutive_passes,
                    h.smoke.len(),
                    h.request_timeout_ms,
                    worst_ms.div_ceil(1000)
                ),
            );
        }
        p.timeout("health.timeout_seconds", h.timeout_seconds);
    }

    /// The test URL for smoke checks against `slot` when it is pre-prod.
    pub fn test_url(&self, slot: Slot) -> Option<&str> {
        self.slots
            .get(slot)
            .test_url
            .as_deref()
            .or(self.health.test_url.as_deref())
    }

    /// Whether the service takes `push` by where it comes from (its tag is [`Self::matches_tag`]'s
    /// question): the push's registry — for a replication, the registry it was replicated
    /// from — must be `source.registry` (default: `stack`, the stack's account and region,
    /// where known); and a replication is taken only with `source.pull_from = "local-replica"`,
    /// which in turn waits for the replication of a push made in another region. `Err` says
    /// why not, naming both sides.
    pub fn takes_from(&self, push: &Push, stack: &StackRegistry) -> Result<(), String> {
        let pushed_to = push
            .replicated_from
            .clone()
            .unwrap_or_else(|| RegistryLocation {
                account: push.image.account.clone(),
                region: push.image.region.clone(),
            });
        let watched = self.source.registry.clone().or_else(|| {
            Some(RegistryLocation {
                account: stack.account.clone()?,
                region: stack.region.clone()?,
            })
        });
        if let Some(watched) = watched.filter(|w| *w != pushed_to) {
            return Err(format!(
                "{} watches {} in registry {watched}, not {pushed_to}",
                self.name, self.source.repository
            ));
        }
        let here = stack.region.as_deref();
        match (self.source.pull_from, &push.replicated_from) {
            (PullFrom::Event, Some(_)) => Err(format!(
                "{} pulls from the registry pushed to (source.pull_from = \"event\"), not from \
                 replicas",
                self.name
            )),
            // The replica this service pulls is in the stack's account: a replication into
            // any other account (forwarded here) would pin that account's registry.
            (PullFrom::LocalReplica, Some(_))
                if stack
                    .account
                    .as_deref()
                    .is_some_and(|a| a != push.image.account) =>
            {
                Err(format!(
                    "{} pulls from its replica in account {}, not {}",
                    self.name,
                    stack.account.as_deref().unwrap_or_default(),
                    push.image.account
                ))
            }
            (PullFrom::LocalReplica, Some(_)) if here.is_some_and(|r| r != push.image.region) => {
                Err(format!(
                    "{} pulls from its replica in {}, not {}",
                    self.name,
                    here.unwrap_or_default(),
                    push.image.region
                ))
            }
            (PullFrom::LocalReplica, None) if here.is_some_and(|r| r != push.image.region) => {
                Err(format!(
                    "{} waits for the replica of this push in {} (source.pull_from = \
                     \"local-replica\")",
                    self.name,
                    here.unwrap_or_default()
                ))
            }
            _ => Ok(()),
        }
    }

    /// The registry (account id; `None`: the caller's) that holds the images the service
    /// deploys, as the stack's ECR client in `stack_region` can read it: the local replica with
    /// `pull_from = "local-replica"`, else `source.registry`. `Err` when that registry is in
    /// another region (`deploy --tag` and the missed-push sweep read ECR in the stack's region
    /// only).
    pub fn registry_to_read(&self, stack_region: Option<&str>) -> Result<Option<&str>, String> {
        let Some(registry) = self.source.registry.as_ref() else {
            return Ok(None);
        };
        if self.source.pull_from == PullFrom::LocalReplica {
            return Ok(None);
        }
        if stack_region.is_some_and(|here| here != registry.region) {
            return Err(format!(
                "{}'s registry ({registry}) is in another region than the stack: set \
                 source.pull_from = \"local-replica\" to read its replica here",
                self.name
            ));
        }
        Ok(Some(&registry.account))
    }

    /// Whether `tag` matches one of the source tag patterns.
    pub fn matches_tag(&self, tag: &str) -> bool {
        self.source.tags.iter().any(|pattern| {
            globset::Glob::new(pattern)
                .map(|g| g.compile_matcher().is_match(tag))
                .unwrap_or(false)
        })
    }
}

/// Collects validation problems as `field: message`.
#[derive(Default)]
struct Problems(Vec<String>);

impl Problems {
    /// Adds a problem. Messages quote what was found (a parser's error quotes the value), and
    /// problems are printed and published: what a screen would act on is shown, not passed.
    fn add(&mut self, field: &str, message: &str) {
        self.0.push(format!("{field}: {}", text::line(message)));
    }

    fn timeout(&mut self, field: &str, seconds: u64) {
        if seconds == 0 || seconds > MAX_TIMEOUT_SECONDS {
            self.add(field, "must be between 1 and 86400 seconds");
        }
    }

    fn arn(&mut self, field: &str, value: &str, service: &str) {
        if !valid_arn(value, service) {
            self.add(field, &format!("{value:?} is not a valid {service} ARN"));
        }
    }

    /// An ELB ARN of the kind the field needs: a listener ARN where a target group belongs
    /// is found here, not halfway through a deployment.
    fn elb_arn(&mut self, field: &str, value: &str, kind: ElbResource) {
        if !valid_arn(value, "elasticloadbalancing") {
            return self.arn(field, value, "elasticloadbalancing");
        }
        let resource = value.splitn(6, ':').nth(5).unwrap_or_default();
        // `targetgroup/<name>/<id>`, `listener/app/<lb>/<lb id>/<id>`,
        // `listener-rule/app/<lb>/<lb id>/<listener id>/<id>`.
        let (prefix, segments) = match kind {
            ElbResource::TargetGroup => ("targetgroup/", 3),
            ElbResource::Listener => ("listener/", 5),
            ElbResource::Rule => ("listener-rule/", 6),
        };
        let parts: Vec<&str> = resource.split('/').collect();
        if !resource.starts_with(prefix)
            || parts.len() != segments
            || parts.iter().any(|p| p.is_empty())
        {
            self.add(
                field,
                &format!("{value:?} is not {} ARN (…:{prefix}…)", kind.article_name()),
            );
        }
    }

    fn url(&mut self, field: &str, value: &str) {
        if !(value.starts_with("http://") || value.starts_with("https://")) || value.len() < 10 {
            self.add(field, &format!("{value:?} is not an http(s) URL"));
        }
    }
}

/// `traffic.routes` as a list: each an ELB listener or rule ARN, none of them the config's own
/// production or test route.
fn routes_problems(arns: &[String], own: &[Option<&String>], p: &mut Problems) {
    for (i, arn) in arns.iter().enumerate() {
        let field = format!("traffic.routes[{i}]");
        let kind = if arn.contains(":listener-rule/") {
            ElbResource::Rule
        } else {
            ElbResource::Listener
        };
        p.elb_arn(&field, arn, kind);
        if own.contains(&Some(arn)) {
            p.add(
                &field,
                "is the production or test route itself: list only the others",
            );
        }
    }
}

/// What is wrong with a listener config's way to pre-prod: exactly one of a test listener
/// (another listener than production's) and a test rule (a header name ALB can match, CIDR
/// blocks).
fn test_route_problems(
    production_listener_arn: &str,
    test_listener_arn: Option<&str>,
    test_rule: Option<&TestRule>,
    p: &mut Problems,
) {
    match (test_listener_arn, test_rule) {
        (Some(_), Some(_)) => p.add(
            "traffic",
            "set test_listener_arn or test_rule, not both: pre-prod is reached one way",
        ),
        (None, None) => p.add(
            "traffic",
            "listener mode needs a way to pre-prod: test_listener_arn (a listener on its own \
             port) or test_rule (a header rule on the production listener)",
        ),
        (Some(arn), None) => {
            p.elb_arn("traffic.test_listener_arn", arn, ElbResource::Listener);
            if arn == production_listener_arn {
                p.add("traffic", "production and test listeners must differ");
            }
        }
        (None, Some(rule)) => {
            let header = &rule.header;
            // ALB matches header names of token characters, at most 40 of them.
            let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
            if header.is_empty() || header.len() > 40 || !header.chars().all(token) {
                p.add(
                    "traffic.test_rule.header",
                    &format!("{header:?} is not an HTTP header name ALB can match (1-40 token characters)"),
                );
            }
            if header.eq_ignore_ascii_case("host") {
                p.add(
                    "traffic.test_rule.header",
                    "Host is matched by host-header conditions; name a header of its own",
                );
            }
            // One rule holds five condition values: the header's one and four networks.
            if rule.source_ips.len() > 4 {
                p.add("traffic.test_rule.source_ips", "at most 4 CIDR blocks");
            }
            for (i, cidr) in rule.source_ips.iter().enumerate() {
                if !is_cidr(cidr) {
                    p.add(
                        &format!("traffic.test_rule.source_ips[{i}]"),
                        &format!("{cidr:?} is not a CIDR block like 10.0.0.0/16"),
                    );
                }
            }
        }
    }
}

/// What is wrong with the `operators` list: entries no SigV4 caller can ever be.
fn operator_problems(operators: &[String], p: &mut Problems) {
    for (i, operator) in operators.iter().enumerate() {
        if !is_principal_arn(operator) {
            p.add(
                &format!("operators[{i}]"),
                &format!(
                    "{operator:?} is not an IAM user, role or session ARN \
                     (arn:aws:iam::<account>:role/<name>, a role without its path)"
                ),
            );
        }
    }
}

/// Whether `text` is an IAM user or role ARN, or an STS session ARN: what a SigV4 caller is.
fn is_principal_arn(text: &str) -> bool {
    let parts: Vec<&str> = text.splitn(6, ':').collect();
    let [arn, partition, service, region, account, resource] = parts.as_slice() else {
        return false;
    };
    *arn == "arn"
        && partition.starts_with("aws")
        && region.is_empty()
        && account.len() == 12
        && account.chars().all(|c| c.is_ascii_digit())
        && match *service {
            // A session ARN names its role without the role's path, so only a role listed
            // without one can ever match a caller.
            "iam" => {
                resource.starts_with("user/")
                    || resource
                        .strip_prefix("role/")
                        .is_some_and(|name| !name.is_empty() && !name.contains('/'))
            }
            "sts" => resource.starts_with("assumed-role/"),
            _ => false,
        }
        && !resource.contains(char::is_whitespace)
}

/// Whether `text` is an IPv4 or IPv6 CIDR block (`address/prefix`).
fn is_cidr(text: &str) -> bool {
    let Some((address, prefix)) = text.split_once('/') else {
        return false;
    };
    let Ok(prefix) = prefix.parse::<u8>() else {
        return false;
    };
    match address.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(_)) => prefix <= 32,
        Ok(std::net::IpAddr::V6(_)) => prefix <= 128,
        Err(_) => false,
    }
}

/// What is wrong with a gradual shift's steps and intervals.
fn shift_problems(shift: &Shift, p: &mut Problems) {
    let (field, percent, interval_seconds) = match shift {
        Shift::Canary {
            percent,
            interval_seconds,
        } => ("traffic.shift.percent", percent, interval_seconds),
        Shift::Linear {
            step_percent,
            interval_seconds,
        } => ("traffic.shift.step_percent", step_percent, interval_seconds),
    };
    if !(1..=99).contains(percent) {
        p.add(field, "must be between 1 and 99");
    }
    p.timeout("traffic.shift.interval_seconds", *interval_seconds);
}

/// What is wrong with smoke check `i`'s request: its method, headers, body, host, JSON match.
fn smoke_request_problems(i: usize, check: &SmokeCheck, p: &mut Problems) {
    let at = |field: &str| format!("health.smoke[{i}].{field}");
    if !SMOKE_METHODS.contains(&check.method.as_str()) {
        p.add(
            &at("method"),
            &format!(
                "{:?} is not one of {}",
                check.method,
                SMOKE_METHODS.join(", ")
            ),
        );
    }
    if check.body.is_some() && ["GET", "HEAD"].contains(&check.method.as_str()) {
        p.add(
            &at("body"),
            &format!("a {} request has no body", check.method),
        );
    }
    if check.method == "HEAD" && (check.body_contains.is_some() || check.json.is_some()) {
        p.add(
            &at("method"),
            "a HEAD answer has no body for body_contains or json to match",
        );
    }
    header_problems(i, check, p);
    if let Some(host) = &check.host
        && !host_name(host)
    {
        p.add(&at("host"), &format!("{host:?} is not a host name"));
    }
    if let Some(json) = &check.json
        && !json.pointer.is_empty()
        && !json.pointer.starts_with('/')
    {
        p.add(
            &at("json.pointer"),
            "must be a JSON pointer: empty or starting with '/' (`/status`)",
        );
    }
}

/// What is wrong with smoke check `i`'s headers: names, duplicates, values, secrets.
fn header_problems(i: usize, check: &SmokeCheck, p: &mut Problems) {
    let at = |field: &str| format!("health.smoke[{i}].{field}");
    let mut seen = std::collections::BTreeSet::new();
    for name in check.headers.keys() {
        if !seen.insert(name.to_ascii_lowercase()) {
            p.add(
                &at(&format!("headers.{name}")),
                "is set twice (header names ignore case)",
            );
        }
    }
    for (name, value) in &check.headers {
        let field = at(&format!("headers.{name}"));
        if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
            p.add(&field, "is not a header name");
        }
        // The host is its own field: it is also the TLS server name.
        if ["host", "content-length", "transfer-encoding", "connection"]
            .contains(&name.to_ascii_lowercase().as_str())
        {
            p.add(
                &field,
                "is set by the client (use `host` for the host name)",
            );
        }
        match value {
            HeaderValue::Text(text) => {
                if reqwest::header::HeaderValue::from_str(text).is_err() {
                    p.add(&field, "is not a valid header value");
                }
            }
            HeaderValue::Secret(secret) => {
                match crate::secret_reference::SecretReference::parse(&secret.secret) {
                    Err(_) => p.add(
                        &format!("{field}.secret"),
                        "must be a Secrets Manager secret's ARN",
                    ),
                    Ok(reference) if reference.secret_id != secret.secret => p.add(
                        &format!("{field}.secret"),
                        "must be the secret's ARN alone (a JSON key goes in `key`)",
                    ),
                    Ok(_) => {}
                }
            }
        }
    }
}

/// Whether `name` is a DNS host name (letters, digits, `-`, dots between labels), not an IP
/// address (one would bypass the test URL's address).
fn host_name(name: &str) -> bool {
    name.parse::<std::net::IpAddr>().is_err()
        && !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// Whether `name` can be an environment variable's name in a task definition.
fn env_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit())
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some('a'..='z'))
        && name.len() <= 40
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// The ELB resource an ARN field names.
#[derive(Debug, Clone, Copy)]
enum ElbResource {
    TargetGroup,
    Listener,
    Rule,
}

impl ElbResource {
    fn article_name(self) -> &'static str {
        match self {
            ElbResource::TargetGroup => "a target group",
            ElbResource::Listener => "a listener",
            ElbResource::Rule => "a listener rule",
        }
    }
}

/// `arn:partition:service:region:account:resource`, with the expected service.
fn valid_arn(value: &str, service: &str) -> bool {
    let parts: Vec<&str> = value.splitn(6, ':').collect();
    parts.len() == 6
        && parts[0] == "arn"
        && parts[1].starts_with("aws")
        && parts[2] == service
        && !parts[3].is_empty()
        && parts[4].len() == 12
        && parts[4].chars().all(|c| c.is_ascii_digit())
        && !parts[5].is_empty()
}

/// The JSON Schema of [`ServiceConfig`], for editors and the CLI.
pub fn json_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(ServiceConfig)).expect("schema serialises")
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = include_str!("../../../docs/example-service.toml");

    fn example() -> ServiceConfig {
        ServiceConfig::from_toml(EXAMPLE).expect("the documented example parses")
    }

    #[test]
    fn url_env_is_a_variable_name_and_excludes_endpoint_env() {
        let mut config = example();
        config.database.url_env = Some("DATABASE_URL".into());
        assert_eq!(config.problems(), Vec::<String>::new());
        assert_eq!(config.database.setting(), "DATABASE_URL");
        config.database.endpoint_env = "DB_HOST".into();
        config.database.url_env = Some("1URL".into());
        let problems = config.problems();
        assert_eq!(
            problems
                .iter()
                .filter(|p| p.starts_with("database.url_env:"))
                .count(),
            2,
            "{problems:?}"
        );
    }

    #[test]
    fn secret_is_an_entry_name_and_excludes_the_other_forms() {
        let mut config = example();
        config.database.secret = Some("DB_SECRET".into());
        assert_eq!(config.problems(), Vec::<String>::new());
        assert_eq!(config.database.form(), DbSettingForm::Secret);
        config.database.url_env = Some("DATABASE_URL".into());
        config.database.secret = Some("arn:aws:secretsmanager:x".into());
        let problems: Vec<String> = config
            .problems()
            .into_iter()
            .filter(|p| p.starts_with("database.secret:"))
            .collect();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(
            problems[0].contains("not a `secrets` entry's name"),
            "{problems:?}"
        );
    }

    /// Issue 25 item 3: each smoke request field is checked, and named.
    #[test]
    fn a_smoke_checks_request_is_checked_field_by_field() {
        let mut config = example();
        let good = SmokeCheck {
            method: "POST".into(),
            headers: [
                ("X-Api-Key".to_owned(), HeaderValue::Text("k".into())),
                (
                    "Authorization".to_owned(),
                    HeaderValue::Secret(SecretHeader {
                        secret: "arn:aws:secretsmanager:us-east-1:1:secret:smoke-AbCdEf".into(),
                        key: Some("token".into()),
                    }),
                ),
            ]
            .into(),
            body: Some("{}".into()),
            host: Some("shop.example.com".into()),
            json: Some(JsonMatch {
                pointer: "/status".into(),
                equals: "ok".into(),
            }),
            ..SmokeCheck::get("/cart")
        };
        config.health.smoke = vec![good.clone()];
        assert_eq!(config.problems(), Vec::<String>::new());
        config.health.smoke = vec![
            SmokeCheck {
                method: "FETCH".into(),
                ..good.clone()
            },
            SmokeCheck {
                method: "GET".into(),
                headers: [
                    ("Host".to_owned(), HeaderValue::Text("x".into())),
                    ("Bad Name".to_owned(), HeaderValue::Text("x".into())),
                    (
                        "Authorization".to_owned(),
                        HeaderValue::Secret(SecretHeader {
                            secret: "smoke-token".into(),
                            key: None,
                        }),
                    ),
                ]
                .into(),
                host: Some("shop..example.com".into()),
                json: Some(JsonMatch {
                    pointer: "status".into(),
                    equals: "ok".into(),
                }),
                ..good.clone()
            },
            SmokeCheck {
                method: "HEAD".into(),
                body: None,
                headers: [
                    ("X-Api-Key".to_owned(), HeaderValue::Text("a".into())),
                    ("x-api-key".to_owned(), HeaderValue::Text("b".into())),
                    (
                        "Authorization".to_owned(),
                        HeaderValue::Secret(SecretHeader {
                            secret:
                                "arn:aws:secretsmanager:us-east-1:1:secret:smoke-AbCdEf:token::"
                                    .into(),
                            key: None,
                        }),
                    ),
                ]
                .into(),
                host: Some("10.0.0.1".into()),
                ..good
            },
        ];
        let problems = config.problems();
        for field in [
            "health.smoke[2].method",
            "health.smoke[2].headers.x-api-key",
            "health.smoke[2].headers.Authorization.secret",
            "health.smoke[2].host",
            "health.smoke[0].method",
            "health.smoke[1].body",
            "health.smoke[1].headers.Host",
            "health.smoke[1].headers.Bad Name",
            "health.smoke[1].headers.Authorization.secret",
            "health.smoke[1].host",
            "health.smoke[1].json.pointer",
        ] {
            assert!(
                problems.iter().any(|p| p.starts_with(&format!("{field}:"))),
                "{field} not named: {problems:?}"
            );
        }
    }

    #[test]
    fn containers_must_include_the_app_container_and_image_env_must_have_one_owner() {
        let mut config = example();
        config.containers = vec!["worker".into(), "worker".into()];
        config.image_env = vec![
            "DD_VERSION".into(),
            "9LIVES".into(),
            "DATABASE_URL".into(),
            config.preprod.environment.keys().next().unwrap().clone(),
        ];
        let problems = config.problems();
        let about = |field: &str| {
            problems
                .iter()
                .filter(|p| p.starts_with(&format!("{field}:")))
                .count()
        };
        assert_eq!(about("containers"), 2, "{problems:?}");
        assert_eq!(about("image_env"), 3, "{problems:?}");
        assert!(
            !problems.iter().any(|p| p.contains("DD_VERSION")),
            "{problems:?}"
        );
        config.containers = vec!["web".into(), "worker".into()];
        config.image_env = vec!["DD_VERSION".into()];
        assert_eq!(config.problems(), Vec::<String>::new());
    }

    /// Issue 22: smoke rounds that could outlast the health-check function are refused, naming
    /// the fields; the defaults and the budget's edge pass.
    #[test]
    fn a_registry_that_cannot_be_one_is_a_problem_naming_the_field() {
        let mut config = example();
        config.source.registry = Some(RegistryLocation {
            account: "2109876543".into(),
            region: "mars-1".into(),
        });
        let problems = config.problems();
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with("source.registry.account: "))
                && problems
                    .iter()
                    .any(|p| p.starts_with("source.registry.region: ")),
            "{problems:?}"
        );
        config.source.registry = Some(RegistryLocation {
            account: "210987654321".into(),
            region: "eu-west-1".into(),
        });
        assert_eq!(config.problems(), Vec::<String>::new());
        // deploy --tag and the sweep read ECR in the stack's region only.
        assert!(config.registry_to_read(Some("us-east-1")).is_err());
        assert_eq!(
            config.registry_to_read(Some("eu-west-1")),
            Ok(Some("210987654321"))
        );
        config.source.pull_from = PullFrom::LocalReplica;
        assert_eq!(config.registry_to_read(Some("us-east-1")), Ok(None));
    }

    #[test]
    fn preprod_variables_need_valid_names_and_leave_the_database_setting_alone() {
        let mut config = example();
        config.preprod.environment = [
            ("WORKERS_ENABLED".to_owned(), "false".to_owned()),
            ("9LIVES".to_owned(), "x".to_owned()),
            ("DATABASE_HOST".to_owned(), "elsewhere".to_owned()),
        ]
        .into();
        let problems: Vec<String> = config
            .problems()
            .into_iter()
            .filter(|p| p.starts_with("preprod.environment"))
            .collect();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems.iter().any(|p| p.contains("\"9LIVES\" is not")));
        assert!(
            problems
                .iter()
                .any(|p| p.contains("DATABASE_HOST names a database"))
        );
    }

    #[test]
    fn smoke_rounds_longer_than_the_health_check_function_are_a_problem() {
        let mut config = example();
        let check = config.health.smoke[0].clone();
        config.health.smoke = vec![check; 5];
        config.health.consecutive_passes = 10;
        config.health.request_timeout_ms = 2000;
        let at_the_edge = config.problems();
        assert!(
            !at_the_edge
                .iter()
                .any(|p| p.contains("health-check function")),
            "10 × 5 × 2 s = 100 s fits: {at_the_edge:?}"
        );
        config.health.request_timeout_ms = 2001;
        let problems = config.problems();
        let problem = problems
            .iter()
            .find(|p| p.contains("health-check function"))
            .unwrap_or_else(|| panic!("{problems:?}"));
        assert!(
            problem.starts_with("health.consecutive_passes: 10 round(s) × 5 check(s)")
                && problem.contains("may take 101 s"),
            "{problem}"
        );
    }

    /// Found by the fuzz campaign: globset's error quoted the pattern, control characters
    /// and all, into a problem that is printed and published.
    #[test]
    fn a_problem_quoting_a_value_shows_its_control_characters() {
        let mut config = example();
        config.source.tags = vec!["[\u{0}\u{1b}".into()];
        let problems = config.problems();
        let glob = problems
            .iter()
            .find(|p| p.starts_with("source.tags[0]: is not a valid glob"))
            .unwrap_or_else(|| panic!("{problems:?}"));
        assert!(!glob.chars().any(crate::text::is_hidden), "{glob}");
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with("source.tags[0]: contains the control character \\x00")),
            "{problems:?}"
        );
    }

    #[test]
    fn pre_prod_is_reached_by_a_test_listener_or_a_test_rule_never_both_or_neither() {
        let with = |listener: Option<&str>, rule: Option<TestRule>| {
            let mut config = example();
            if let Traffic::Listener {
                test_listener_arn,
                test_rule,
                ..
            } = &mut config.traffic
            {
                *test_listener_arn = listener.map(str::to_owned);
                *test_rule = rule;
            }
            config.problems()
        };
        let listener = match &example().traffic {
            Traffic::Listener {
                test_listener_arn, ..
            } => test_listener_arn.clone().unwrap(),
            Traffic::Dns { .. } => unreachable!("the example is listener mode"),
        };
        assert_eq!(with(None, Some(TestRule::default())), Vec::<String>::new());
        let both = with(Some(&listener), Some(TestRule::default()));
        assert!(both.len() == 1 && both[0].contains("not both"), "{both:?}");
        let neither = with(None, None);
        assert!(
            neither.len() == 1 && neither[0].contains("a way to pre-prod"),
            "{neither:?}"
        );
        let bad = TestRule {
            header: "X Preview".into(),
            source_ips: vec!["10.0.0.0/8".into(), "10.0.0.1".into(), "::/0".into()],
        };
        let problems = with(None, Some(bad));
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(
            problems[0].starts_with("traffic.test_rule.header"),
            "{problems:?}"
        );
        assert!(
            problems[1].starts_with("traffic.test_rule.source_ips[1]"),
            "{problems:?}"
        );
        let host = TestRule {
            header: "host".into(),
            ..TestRule::default()
        };
        assert_eq!(with(None, Some(host)).len(), 1);
        // The TOML form: a table with defaults.
        let text = include_str!("../../../docs/example-service.toml").replace(
            &format!("test_listener_arn = \"{listener}\""),
            "test_rule = { source_ips = [\"10.0.0.0/16\"] }",
        );
        let parsed = ServiceConfig::from_toml(&text).expect("a test rule parses");
        assert_eq!(
            parsed.traffic.test_route(),
            TestRoute::Rule(&TestRule {
                header: PREVIEW_HEADER.into(),
                source_ips: vec!["10.0.0.0/16".into()],
            })
        );
    }

    #[test]
    fn an_nlb_refuses_rules_a_maintenance_page_and_steps_shorter_than_its_weights_settle() {
        let nlb = |arn: &str| arn.replace("/app/shop/", "/net/shop/");
        let mut config = example();
        config.bake.seconds = NLB_WEIGHTS_SETTLE_SECONDS;
        if let Some(m) = config.migration.as_mut() {
            m.maintenance = false;
        }
        if let Traffic::Listener {
            production_listener_arn,
            test_listener_arn,
            shift,
            ..
        } = &mut config.traffic
        {
            *production_listener_arn = nlb(production_listener_arn);
            *test_listener_arn = test_listener_arn.as_deref().map(nlb);
            *shift = Some(Shift::Linear {
                step_percent: 25,
                interval_seconds: NLB_WEIGHTS_SETTLE_SECONDS,
            });
        }
        assert!(config.traffic.on_nlb());
        assert_eq!(config.traffic.settle_seconds(), NLB_WEIGHTS_SETTLE_SECONDS);
        assert_eq!(config.problems(), Vec::<String>::new());
        assert_eq!(
            example().traffic.settle_seconds(),
            0,
            "an ALB moves at once"
        );

        let mut bad = config.clone();
        bad.bake.seconds = 60;
        if let Some(m) = bad.migration.as_mut() {
            m.maintenance = true;
        }
        if let Traffic::Listener {
            test_listener_arn,
            test_rule,
            production_rule_arn,
            shift,
            ..
        } = &mut bad.traffic
        {
            *test_listener_arn = None;
            *test_rule = Some(TestRule::default());
            *production_rule_arn = Some(
                "arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener-rule/net/shop/1/2/3"
                    .into(),
            );
            *shift = Some(Shift::Canary {
                percent: 10,
                interval_seconds: 300,
            });
        }
        let problems = bad.problems();
        for field in [
            "traffic.test_rule",
            "traffic.production_rule_arn",
            "migration.maintenance",
            "traffic.shift.interval_seconds",
            "bake.seconds",
        ] {
            assert!(
                problems
                    .iter()
                    .any(|p| p.starts_with(field) && p.contains("NLB")),
                "{field}: {problems:?}"
            );
        }
        let mut mixed = config.clone();
        if let Traffic::Listener {
            test_listener_arn, ..
        } = &mut mixed.traffic
        {
            *test_listener_arn = test_listener_arn
                .as_deref()
                .map(|a| a.replace("/net/", "/app/"));
        }
        let problems = mixed.problems();
        assert!(
            problems.len() == 1 && problems[0].starts_with("traffic.test_listener_arn"),
            "{problems:?}"
        );
    }

    #[test]
    fn operators_are_iam_principals() {
        let mut config = example();
        config.operators = vec![
            "arn:aws:iam::123456789012:role/Oncall".into(),
            "arn:aws:iam::123456789012:user/pat".into(),
            "arn:aws:sts::123456789012:assumed-role/Oncall/pat".into(),
        ];
        assert_eq!(config.problems(), Vec::<String>::new());
        config.operators = vec![
            "pat@example.com".into(),
            "".into(),
            "arn:aws:iam::123456789012:group/ops".into(),
            "arn:aws:iam::12345:role/Oncall".into(),
            "arn:aws:iam::123456789012:role/aws-reserved/sso.amazonaws.com/Admin".into(),
        ];
        let problems = config.problems();
        assert_eq!(problems.len(), 5, "{problems:?}");
        assert!(
            problems.iter().all(|p| p.starts_with("operators[")),
            "{problems:?}"
        );
    }

    #[test]
    fn an_arn_of_the_wrong_elb_resource_is_a_problem_naming_the_field() {
        let mut config = example();
        let listener = match &config.traffic {
            Traffic::Listener {
                production_listener_arn,
                ..
            } => production_listener_arn.clone(),
            Traffic::Dns { .. } => unreachable!("the example is listener mode"),
        };
        config.slots.blue.target_group_arn = listener.clone();
        config.slots.green.target_group_arn =
            "arn:aws:elasticloadbalancing:eu-west-1:123456789012:tg-green".into();
        if let Traffic::Listener {
            test_listener_arn,
            production_rule_arn,
            ..
        } = &mut config.traffic
        {
            *test_listener_arn = Some(example().slots.blue.target_group_arn);
            *production_rule_arn = Some(listener);
        }
        let problems = config.problems();
        for (field, kind) in [
            ("slots.blue.target_group_arn", "not a target group ARN"),
            ("slots.green.target_group_arn", "not a target group ARN"),
            ("traffic.test_listener_arn", "not a listener ARN"),
            ("traffic.production_rule_arn", "not a listener rule ARN"),
        ] {
            assert!(
                problems
                    .iter()
                    .any(|p| p.starts_with(field) && p.contains(kind)),
                "{field}: {problems:?}"
            );
        }
        assert_eq!(problems.len(), 4, "{problems:?}");
        assert!(example().problems().is_empty());
    }

    #[test]
    fn the_documented_example_is_valid_and_survives_the_json_round_trip() {
        let config = example();
        config.validate().expect("the documented example is valid");
        assert_eq!(ServiceConfig::from_json(&config.to_json()).unwrap(), config);
        assert!(config.matches_tag("v1.2.3") && config.matches_tag("release-7"));
        assert!(!config.matches_tag("latest"));
    }

    #[test]
    fn waits_that_cannot_fit_in_one_execution_are_refused_naming_each_field_and_the_sum() {
        let mut config = example();
        assert!(config.validate().is_ok());
        config.approval.timeout_seconds = MAX_TIMEOUT_SECONDS;
        config.bake.seconds = MAX_TIMEOUT_SECONDS;
        let problems = config.problems();
        let timeouts = problems
            .iter()
            .find(|p| p.starts_with("timeouts"))
            .unwrap_or_else(|| panic!("{problems:?}"));
        assert!(
            timeouts.contains("approval.timeout_seconds 86400"),
            "{timeouts}"
        );
        assert!(timeouts.contains("bake.seconds 86400"), "{timeouts}");
        let total: u64 = config.execution_waits().iter().map(|(_, s)| s).sum();
        assert!(
            timeouts.contains(&(total + EXECUTION_OVERHEAD_SECONDS).to_string()),
            "{timeouts}"
        );
        // Each alone is fine; it is the sum that does not fit.
        config.bake.seconds = 60;
        assert!(config.validate().is_ok(), "{:?}", config.problems());
    }

    #[test]
    fn a_task_definition_family_is_a_bare_family_used_only_from_the_family() {
        let mut config: ServiceConfig = toml::from_str(EXAMPLE).unwrap();
        config.task_definition.source = RevisionSource::Family;
        config.task_definition.family = Some("shop:3".into());
        assert!(
            config
                .problems()
                .iter()
                .any(|p| p.contains("task_definition.family")),
            "{:?}",
            config.problems()
        );
        config.task_definition.family = Some("shop".into());
        assert!(config.problems().is_empty(), "{:?}", config.problems());
        config.task_definition.source = RevisionSource::Live;
        assert!(
            config
                .problems()
                .iter()
                .any(|p| p.contains("only with source"))
        );
    }

    #[test]
    fn validation_lists_every_problem_at_once() {
        let mut config = example();
        config.name = "Shop!".into();
        config.slots.green.target_group_arn = "not-an-arn".into();
        config.health.smoke.clear();
        config.approval.approvers.clear();
        config.preprod.launch_timeout_seconds = 0;
        config.migration.as_mut().unwrap().timeout_seconds = 10 * MAX_TIMEOUT_SECONDS;
        config.database.strategy = DbStrategy::Isolated;
        config.database.source = None;
        let StepError::ConfigInvalid(problems) = config.validate().unwrap_err() else {
            panic!("not ConfigInvalid")
        };
        for field in [
            "name:",
            "slots.green.target_group_arn:",
            "health.smoke:",
            "approval.approvers:",
            "preprod.launch_timeout_seconds:",
            "migration.timeout_seconds:",
            "database.source:",
            "database.rehearsal:",
        ] {
            assert!(
                problems.iter().any(|p| p.starts_with(field)),
                "{field} missing from {problems:#?}"
            );
        }
    }

    #[test]
    fn dns_mode_without_zone_records_or_identifiers_is_rejected() {
        let mut config = example();
        config.traffic = Traffic::Dns {
            hosted_zone_id: String::new(),
            record_name: String::new(),
            ttl_seconds: 60,
            switch_ttl_seconds: 120,
        };
        let problems = config.problems();
        for field in [
            "traffic.hosted_zone_id",
            "traffic.record_name",
            "traffic.switch_ttl_seconds",
            "slots.blue.set_identifier",
            "slots.green.record_value",
        ] {
            assert!(
                problems.iter().any(|p| p.starts_with(field)),
                "{field} missing from {problems:#?}"
            );
        }
    }

    #[test]
    fn unknown_fields_and_strategies_are_rejected_when_parsing() {
        let typo = EXAMPLE.replace("strategy = \"shared\"", "strategy = \"cloned\"");
        let err = ServiceConfig::from_toml(&typo).unwrap_err();
        assert!(err.to_string().contains("cloned"), "{err}");
        let extra = format!("{EXAMPLE}\n[surprise]\nkey = 1\n");
        assert_eq!(
            ServiceConfig::from_toml(&extra).unwrap_err().name(),
            "ConfigInvalid"
        );
    }

    #[test]
    fn the_committed_json_schema_matches_the_types() {
        let committed: serde_json::Value =
            serde_json::from_str(include_str!("../../../docs/service-config.schema.json"))
                .expect("committed schema is JSON");
        assert_eq!(
            committed,
            json_schema(),
            "docs/service-config.schema.json is stale: regenerate it with \
             `cargo run -p bluegreen --example schema > docs/service-config.schema.json`"
        );
    }
}
