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

/// Upper bound for any single timeout: Step Functions executions are capped at one year, but a
/// deployment that waits more than a day for anything is a mistake in the config.
pub const MAX_TIMEOUT_SECONDS: u64 = 24 * 60 * 60;
/// The deployment state machine's `TimeoutSeconds` (48 h). A config whose waits cannot all fit
/// would let the execution time out mid-way, so validation refuses it (a test keeps this equal
/// to the definition).
pub const EXECUTION_TIMEOUT_SECONDS: u64 = 48 * 60 * 60;
/// What the execution needs beyond the configured waits: step calls, retries, the ending's
/// grace (an hour, generous: a step call takes seconds).
pub(crate) const EXECUTION_OVERHEAD_SECONDS: u64 = 60 * 60;

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
    /// Health checks that gate the approval (every field has a default; the checks require
    /// at least one smoke check).
    #[serde(default)]
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
        /// Who moves production between the old release and the new: `slots` (default) or
        /// `ecs` (see [`Engine`]).
        #[serde(default, skip_serializing_if = "Engine::is_slots")]
        engine: Engine,
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
        #[schemars(range(min = 1, max = 172800))]
        ttl_seconds: u64,
        /// TTL set ahead of a switch so clients pick up the change quickly.
        #[serde(default = "default_switch_ttl")]
        #[schemars(range(min = 1))]
        switch_ttl_seconds: u64,
    },
}

/// `traffic.engine`: who moves production between the old release and the new (DESIGN 28).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Engine {
    /// Two ECS services, the slots; bluegreen moves the listener's weights (or the records in
    /// DNS mode). Works for every service, DNS mode included.
    #[default]
    Slots,
    /// One ECS service with `deploymentConfiguration.strategy = BLUE_GREEN`: ECS runs both
    /// revisions in it and moves traffic between its two target groups (`slots.blue` and
    /// `slots.green` name the one service and those two groups); bluegreen answers the
    /// service's lifecycle hooks from the deployment's record (see `crate::ecs_hook`).
    Ecs,
}

impl Engine {
    /// Whether this is the default engine (two services).
    pub fn is_slots(&self) -> bool {
        *self == Engine::Slots
    }
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
    /// ECS's own test rule (`traffic.engine = "ecs"`): the service's blue/green routes the
    /// preview header to the new revision; bluegreen adds and points nothing.
    Ecs,
}

impl Traffic {
    /// Who moves production: the listener mode's `engine`; DNS mode has only the slots.
    pub fn engine(&self) -> Engine {
        match self {
            Traffic::Listener { engine, .. } => *engine,
            Traffic::Dns { .. } => Engine::Slots,
        }
    }

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

    /// The settings of a header rule to pre-prod: `test_rule`, else the default header (on
    /// ECS's engine, the rule to `isolated` pre-prod's own service).
    pub fn header_rule(&self) -> TestRule {
        match self {
            Traffic::Listener {
                test_rule: Some(rule),
                ..
            } => rule.clone(),
            _ => TestRule::default(),
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
                engine: Engine::Ecs,
                ..
            } => TestRoute::Ecs,
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
/// The default `traffic.switch_ttl_seconds` (also what `adopt` writes).
pub fn default_switch_ttl() -> u64 {
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
        #[schemars(range(min = 1, max = 86400))]
        interval_seconds: u64,
    },
    /// Add `step_percent` every `interval_seconds` until everything moved.
    Linear {
        /// Step size, 1–99.
        step_percent: u8,
        /// Time between steps.
        #[schemars(range(min = 1, max = 86400))]
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
    #[schemars(range(min = 1, max = 86400))]
    pub launch_timeout_seconds: u64,
    /// How long a pre-prod slot may exist before scheduled teardown removes it.
    #[serde(default = "default_ttl_hours")]
    #[schemars(range(min = 1, max = 720))]
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
    #[schemars(range(min = 1, max = 86400))]
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

pub(crate) fn default_db_env() -> String {
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
    #[schemars(range(min = 1, max = 86400))]
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
    #[schemars(range(min = 1, max = 100))]
    pub consecutive_passes: u32,
    /// Per-request timeout.
    #[serde(default = "default_request_timeout")]
    #[schemars(range(min = 1, max = 60000))]
    pub request_timeout_ms: u64,
    /// How long targets may take to become healthy and pass a clean run of smoke rounds.
    #[serde(default = "default_health_timeout")]
    #[schemars(range(min = 1, max = 86400))]
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
pub const HEALTH_CHECK_FUNCTION_TIMEOUT_SECONDS: u64 = 150;
/// How long one look's smoke rounds (and the test rule's probe before them) may take at
/// most. A paced invocation begins its last look by its window's end (`crate::looks`), so the
/// function's timeout holds the window, this, and the look's other calls (target health, the
/// record, the lease): a test holds that sum.
pub const SMOKE_BUDGET_SECONDS: u64 = 100;

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
    #[schemars(range(min = 1, max = 86400))]
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
        let total: u64 = config.execution_waits().iter().map(|w| w.seconds).sum();
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
    fn ecs_engine_says_what_it_cannot_do() {
        let mut config = example();
        config.slots.green.service = config.slots.blue.service.clone();
        config.approval.timeout_seconds = 24 * 3600;
        if let Traffic::Listener { engine, shift, .. } = &mut config.traffic {
            *engine = Engine::Ecs;
            *shift = Some(Shift::Canary {
                percent: 10,
                interval_seconds: 60,
            });
        }
        config.bake.seconds = 23 * 3600 + 1;
        config.database.strategy = DbStrategy::Shared;
        config
            .preprod
            .environment
            .insert("FEATURE".into(), "preview".into());
        let problems = config.problems();
        for field in [
            "traffic.shift",
            "traffic.production_rule_arn",
            "approval.timeout_seconds",
            "bake.seconds",
            "preprod.environment",
        ] {
            assert!(
                problems.iter().any(|p| p.starts_with(field)),
                "{field} missing from {problems:#?}"
            );
        }
        // `isolated` runs pre-prod in a service of its own, and ECS deploys after the
        // approval: a day-long approval holds no ECS stage.
        config.database.strategy = DbStrategy::Isolated;
        let problems = config.problems();
        assert!(
            !problems
                .iter()
                .any(|p| p.starts_with("database.strategy") || p.starts_with("approval")),
            "{problems:#?}"
        );
        // One service for both slots is what ECS's engine means, not a mistake.
        assert!(
            !problems.iter().any(|p| p.starts_with("slots")),
            "{problems:#?}"
        );
        // The test gate's budget counts the health checks and the approval together: 23 h in
        // all is the most.
        config.bake.seconds = 600;
        config.database.strategy = DbStrategy::Shared;
        config.migration = None;
        config.approval.timeout_seconds = 23 * 3600 - config.health.timeout_seconds;
        assert!(!config.problems().iter().any(|p| p.starts_with("approval")));
        // Within those limits, with `none` or `shared`, the engine is accepted.
        config.preprod.environment.clear();
        config.database.rehearsal = false;
        if let Traffic::Listener { shift, routes, .. } = &mut config.traffic {
            *shift = None;
            *routes = Routes::Word(RoutesWord::Primary);
        }
        // Reached through ECS's own test rule: bluegreen's test listener is refused.
        assert!(
            config
                .problems()
                .iter()
                .any(|p| p.contains("ECS's own test rule"))
        );
        if let Traffic::Listener {
            test_listener_arn,
            production_rule_arn,
            production_listener_arn,
            ..
        } = &mut config.traffic
        {
            *test_listener_arn = None;
            let rule = production_listener_arn.replace(":listener/", ":listener-rule/");
            *production_rule_arn = Some(format!("{rule}/0123456789abcdef"));
        }
        assert_eq!(config.problems(), Vec::<String>::new());
        // `isolated` (pre-prod in a service of its own) may set the header rule to it, with
        // the test rule's checks; other strategies may not (ECS's test rule is the way there).
        config.database.strategy = DbStrategy::Isolated;
        config.database.source = Some(DbSource::RdsInstance {
            identifier: "shop-db".into(),
        });
        let header = |config: &mut ServiceConfig, name: &str| {
            if let Traffic::Listener { test_rule, .. } = &mut config.traffic {
                *test_rule = Some(TestRule {
                    header: name.into(),
                    source_ips: Vec::new(),
                });
            }
        };
        header(&mut config, "x-preview");
        assert_eq!(config.problems(), Vec::<String>::new());
        header(&mut config, "Host");
        assert!(
            config
                .problems()
                .iter()
                .any(|p| p.starts_with("traffic.test_rule.header"))
        );
        header(&mut config, "x-preview");
        config.database.strategy = DbStrategy::None;
        assert!(
            config
                .problems()
                .iter()
                .any(|p| p.contains("ECS's own test rule"))
        );
        if let Traffic::Listener { test_rule, .. } = &mut config.traffic {
            *test_rule = None;
        }
        assert_eq!(config.problems(), Vec::<String>::new());
        config.approval.timeout_seconds += 1;
        assert!(config.problems().iter().any(|p| p.starts_with("approval")));
        // The slots engine still refuses it.
        if let Traffic::Listener { engine, .. } = &mut config.traffic {
            *engine = Engine::Slots;
        }
        assert!(
            config
                .problems()
                .iter()
                .any(|p| p.contains("different ECS services"))
        );
        // And parses from TOML, defaulting to the slots.
        let toml = EXAMPLE.replace(
            "mode = \"listener\"",
            "mode = \"listener\"\nengine = \"ecs\"",
        );
        assert_eq!(
            ServiceConfig::from_toml(&toml).unwrap().traffic.engine(),
            Engine::Ecs
        );
        assert_eq!(example().traffic.engine(), Engine::Slots);
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
