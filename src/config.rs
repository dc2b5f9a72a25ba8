//! Typed settings: a TOML file for everything that is not a secret, the
//! environment for the secrets (which never print, see [`Secret`]).

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{path}: key `{key}`: {message}")]
    Invalid {
        path: PathBuf,
        key: String,
        message: String,
    },
    #[error("environment variable {0} is required{1}")]
    MissingSecret(&'static str, &'static str),
    /// Settings and secrets that do not fit together.
    #[error("{0}")]
    Mismatch(&'static str),
}

/// A value that must never reach a log line or a debug dump.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    pub server: ServerSettings,
    pub slack: SlackSettings,
    pub discord: DiscordSettings,
    pub aws: AwsSettings,
    pub store: StoreSettings,
    pub channels: ChannelSettings,
    pub display: DisplaySettings,
    pub catalog: CatalogSettings,
    pub runbook: RunbookSettings,
    /// Guardrails and facts per Lambda function, by name.
    pub functions: BTreeMap<String, FunctionSettings>,
    /// Role name → members: Slack user ids (`U…`), Slack user-group ids
    /// (`S…`), Discord user ids, Discord role ids written `&<id>`.
    pub roles: BTreeMap<String, Vec<String>>,
    pub prices: PriceSettings,
    pub rds_proxy: RdsProxySettings,
    pub sns: SnsSettings,
    pub escalation: EscalationSettings,
    pub reports: ReportSettings,
    pub demo: DemoSettings,
}

/// The runbook's routine operations as scheduled reports, posted to
/// `channels.reports`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReportSettings {
    /// Post the reports on schedule (the `/scale health|review|capacity`
    /// commands work either way).
    pub enabled: bool,
    /// The time zone the report times are in; daylight saving is followed.
    pub timezone: String,
    /// Daily health check, every day at this local time (`HH:MM`).
    pub daily_at: String,
    /// Weekly scaling-policy review: this weekday at `weekly_at`.
    pub weekly_day: String,
    pub weekly_at: String,
    /// Monthly capacity plan: the first `weekly_day` of each month at this time.
    pub monthly_at: String,
    /// A report missed while the bot was down is posted once when it comes
    /// back within this many minutes of its time; later, it is skipped.
    pub catch_up_minutes: u64,
    /// How often the scheduler looks for a due report.
    pub check_interval_seconds: u64,
    /// The daily policy snapshots are kept this many days.
    pub snapshot_retention_days: u32,
    /// Functions in the reports; empty means `runbook.functions`.
    pub functions: Vec<String>,
    /// The RDS instance; empty means `runbook.database`.
    pub database: String,
    /// ElastiCache cluster ids (`CacheClusterId`, the replication group's
    /// nodes); empty means `<runbook.cache_group>-001`.
    pub cache_clusters: Vec<String>,
}

impl Default for ReportSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            timezone: "Europe/Berlin".into(),
            daily_at: "09:00".into(),
            weekly_day: "monday".into(),
            weekly_at: "10:00".into(),
            monthly_at: "10:00".into(),
            catch_up_minutes: 360,
            check_interval_seconds: 30,
            snapshot_retention_days: 90,
            functions: Vec::new(),
            database: String::new(),
            cache_clusters: Vec::new(),
        }
    }
}

/// `scalebot demo`: the simulated account and the web chat.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DemoSettings {
    /// The names a visitor can pick in the web chat; `[roles]` lists them
    /// directly.
    pub users: Vec<String>,
    /// How many times faster than the wall clock simulated time runs.
    pub speed: f64,
    /// The traffic model's seed: the same seed gives the same metrics.
    pub seed: u64,
    /// Where simulated time starts (RFC 3339); the wall clock when unset.
    pub start: Option<String>,
}

impl Default for DemoSettings {
    fn default() -> Self {
        Self {
            users: Vec::new(),
            speed: 1.0,
            seed: 42,
            start: None,
        }
    }
}

impl DemoSettings {
    /// The configured start, if any and valid (validated at load).
    pub fn start_at(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        self.start
            .as_deref()
            .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
            .map(|t| t.with_timezone(&chrono::Utc))
    }
}

/// The runbook's escalation levels, L1 to L4.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EscalationSettings {
    pub levels: Vec<LevelSettings>,
    /// At this level the bot opens a channel of the incident's own and
    /// invites that level's people (none: never).
    pub dedicated_channel_at: Option<i64>,
    /// After an alarm returns to OK, the incident resolves itself when it
    /// stays quiet this long, unless someone keeps it open (none: never).
    pub resolve_after_ok_seconds: Option<u64>,
    /// Acknowledging stops the reminders at the current level; with this
    /// set it also stops the escalation clock until someone escalates.
    pub ack_stops_clock: bool,
    /// What makes a second alarm join an open incident: `alarm` (the same
    /// alarm name) or `resource` (the same function, database or cache,
    /// whichever alarm fired).
    pub join_by: JoinBy,
    /// Repeated notifications for an open incident within this window
    /// become one thread reply ("fired 37 more times"), so a storm does not
    /// flood the thread; every one is still stored.
    pub coalesce_seconds: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JoinBy {
    #[default]
    Alarm,
    Resource,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LevelSettings {
    pub name: String,
    /// Who is mentioned when an incident reaches this level: Slack user ids
    /// (`U…`) or user-group ids (`S…`).
    #[serde(default)]
    pub mention: Vec<String>,
    /// How long an unresolved incident stays at this level before it moves
    /// up; none at the last level.
    pub escalate_after_seconds: Option<u64>,
    /// While an incident sits at this level unacknowledged, the level's
    /// people are reminded this often (none: no reminders).
    #[serde(default)]
    pub remind_every_seconds: Option<u64>,
}

impl Default for EscalationSettings {
    fn default() -> Self {
        let level = |name: &str, after: Option<u64>| LevelSettings {
            name: name.into(),
            mention: Vec::new(),
            escalate_after_seconds: after,
            remind_every_seconds: None,
        };
        Self {
            levels: vec![
                level("L1 automated response", Some(5 * 60)),
                // The runbook: escalate if the issue persists more than 30 minutes.
                level("L2 operations team", Some(30 * 60)),
                level("L3 engineering team", Some(30 * 60)),
                level("L4 emergency response", None),
            ],
            dedicated_channel_at: Some(3),
            resolve_after_ok_seconds: Some(15 * 60),
            ack_stops_clock: false,
            join_by: JoinBy::Alarm,
            coalesce_seconds: 10,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SnsSettings {
    /// Topic ARNs whose messages `POST /sns` accepts; anything else is refused.
    pub allowed_topics: Vec<String>,
    /// Extra hosts (`host[:port]`) trusted to serve signing certificates,
    /// besides `sns.<region>.amazonaws.com`. For tests and private
    /// partitions only; the bot warns at start-up when this is set.
    pub extra_cert_hosts: Vec<String>,
    /// A PEM file with an extra root CA for fetching signing certificates
    /// (tests only; warned about at start-up).
    pub extra_ca_pem_file: Option<PathBuf>,
    /// Addresses to use for certificate hosts instead of DNS, e.g.
    /// `"sns.eu-central-1.amazonaws.com" = "127.0.0.1:4443"`: lets a test
    /// serve AWS-hosted certificate URLs locally. The host check and TLS
    /// verification still apply. Tests only; warned about at start-up.
    pub cert_host_addresses: BTreeMap<String, std::net::SocketAddr>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RunbookSettings {
    /// Run everything except the changing AWS call, and say so everywhere.
    pub dry_run: bool,
    /// A plan not confirmed within this many seconds expires.
    pub plan_ttl_seconds: u64,
    /// The reserved concurrency the throttles button proposes (the runbook's 100).
    pub throttles_raise_to: i32,
    /// The functions the batch procedures act on.
    pub functions: Vec<String>,
    /// The alias that carries provisioned concurrency and its scaling policy.
    pub default_alias: String,
    /// After a concurrency change, how often the metric is checked again
    /// (the runbook's `watch -n 30`) and for how long.
    pub monitor_interval_seconds: u64,
    pub monitor_max_minutes: u64,
    /// Cost runaway: the provisioned-concurrency utilization target to set
    /// (0.1–0.9; the runbook's `TargetValue=90.0` is out of range for this
    /// metric) and the reserved concurrency for every function.
    pub cost_runaway_target: f64,
    pub cost_runaway_reserved: i32,
    /// Emergency scale-down: reserved concurrency for every function.
    pub scale_down_reserved: i32,
    /// The ElastiCache replication group the scale-down and rollback touch.
    pub cache_group: String,
    /// The RDS instance of the RDS procedures and reports.
    pub database: String,
    /// The environment name used in policy names (`{env}-lambda-scaling-policy`).
    pub environment: String,
}

impl Default for RunbookSettings {
    fn default() -> Self {
        Self {
            dry_run: false,
            plan_ttl_seconds: 900,
            throttles_raise_to: 100,
            functions: [
                "persona-api",
                "vc-start",
                "vc-result",
                "auth-handler",
                "upload-service",
            ]
            .map(String::from)
            .to_vec(),
            default_alias: "live".into(),
            monitor_interval_seconds: 30,
            monitor_max_minutes: 10,
            cost_runaway_target: 0.9,
            cost_runaway_reserved: 10,
            scale_down_reserved: 5,
            cache_group: "matbakh-redis".into(),
            database: "matbakh-db".into(),
            environment: "production".into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FunctionSettings {
    pub min_reserved: i32,
    pub max_reserved: i32,
    pub min_provisioned: i32,
    pub max_provisioned: i32,
    /// Memory size, for the provisioned-concurrency cost estimate.
    pub memory_mb: u32,
}

impl Default for FunctionSettings {
    fn default() -> Self {
        Self {
            min_reserved: 0,
            max_reserved: 1000,
            min_provisioned: 0,
            max_provisioned: 500,
            memory_mb: 1024,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PriceSettings {
    /// USD per GB-second of provisioned concurrency (eu-central-1 list price).
    pub provisioned_gb_second: f64,
}

impl Default for PriceSettings {
    fn default() -> Self {
        Self {
            provisioned_gb_second: 0.000_004_166_7,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RdsProxySettings {
    /// `POSTGRESQL` or `MYSQL`.
    pub engine_family: String,
    /// The Secrets Manager secret with the database credentials.
    pub secret_arn: String,
    /// The IAM role the proxy uses to read the secret.
    pub role_arn: String,
    pub subnet_ids: Vec<String>,
    pub security_group_ids: Vec<String>,
}

impl Settings {
    /// Guardrails for a function: its own section, or the defaults.
    pub fn function(&self, name: &str) -> FunctionSettings {
        self.functions.get(name).cloned().unwrap_or_default()
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSettings {
    pub listen: SocketAddr,
    /// Larger request bodies get 413 before anything reads them.
    pub max_body_bytes: usize,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 3000)),
            max_body_bytes: 64 * 1024,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SlackSettings {
    pub api_url: String,
    /// How many times a post is retried after Slack answers 429.
    pub max_rate_limit_retries: u32,
    /// The longest `Retry-After` the bot honours before giving up on a post.
    pub max_retry_after_seconds: u64,
    /// Posts to one channel are paced to one per this many milliseconds
    /// (Slack's guidance: about one per second), after a burst of
    /// `post_burst`; 0 turns pacing off.
    pub post_interval_ms: u64,
    pub post_burst: u32,
}

impl Default for SlackSettings {
    fn default() -> Self {
        Self {
            api_url: "https://slack.com/api".into(),
            post_interval_ms: 1000,
            post_burst: 3,
            max_rate_limit_retries: 5,
            max_retry_after_seconds: 120,
        }
    }
}

/// How Discord delivers interactions to the bot; responses always go over
/// HTTP. Discord itself allows only one: an Interactions Endpoint URL set in
/// the developer portal turns gateway delivery off.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DiscordMode {
    /// The bot opens the gateway WebSocket (serenity's client); no public URL.
    #[default]
    Gateway,
    /// Discord POSTs to `/discord/interactions`, signed with Ed25519.
    Http,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DiscordSettings {
    pub mode: DiscordMode,
    /// The application id (a snowflake) from the developer portal.
    pub application_id: String,
    /// The server (guild) whose channels the bot uses: needed to open an
    /// incident's own channel, and the default of `discord register --guild`.
    pub guild_id: String,
    /// Discord's REST API; a local Discord-compatible server in tests.
    pub api_url: String,
    /// Posts to one channel are paced to one per this many milliseconds
    /// after a burst of `post_burst` (Discord allows about 5 per 5 s per
    /// channel); 0 turns pacing off.
    pub post_interval_ms: u64,
    pub post_burst: u32,
    /// The longest one call may wait for rate limits (429 `Retry-After`,
    /// `X-RateLimit-Reset-After`) before it is given up.
    pub max_retry_after_seconds: u64,
    /// Tests only (warned about at start-up): an extra root CA for
    /// Discord's HTTPS, and addresses to reach hosts at instead of DNS
    /// (`"discord.com" = "127.0.0.1:8443"`), so that a local server can
    /// stand in for discord.com with serenity's rate limiter in use.
    pub extra_ca_pem_file: Option<PathBuf>,
    pub host_addresses: BTreeMap<String, SocketAddr>,
}

impl Default for DiscordSettings {
    fn default() -> Self {
        Self {
            mode: DiscordMode::Gateway,
            application_id: String::new(),
            guild_id: String::new(),
            api_url: DISCORD_API_URL.into(),
            post_interval_ms: 1000,
            post_burst: 5,
            max_retry_after_seconds: 120,
            extra_ca_pem_file: None,
            host_addresses: BTreeMap::new(),
        }
    }
}

pub const DISCORD_API_URL: &str = "https://discord.com/api/v10";

impl DiscordSettings {
    /// The base serenity's `HttpBuilder::proxy` wants: the API URL without
    /// its `/api/v10` path (serenity puts that back on every request).
    /// `None` for Discord itself.
    pub fn proxy_base(&self) -> Option<String> {
        let url = self.api_url.trim_end_matches('/');
        if url == DISCORD_API_URL {
            return None;
        }
        Some(url.trim_end_matches("/api/v10").to_owned())
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AwsSettings {
    pub region: String,
    pub endpoint_url: Option<String>,
    /// Total time for one AWS operation, retries included.
    pub operation_timeout_seconds: u64,
    /// Attempts per AWS operation (the SDK backs off between them).
    pub max_attempts: u32,
}

impl Default for AwsSettings {
    fn default() -> Self {
        Self {
            region: "eu-central-1".into(),
            endpoint_url: None,
            operation_timeout_seconds: 20,
            max_attempts: 3,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreSettings {
    pub url: String,
    pub max_connections: u32,
}

impl Default for StoreSettings {
    fn default() -> Self {
        Self {
            url: "sqlite://scalebot.db".into(),
            max_connections: 8,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ChannelSettings {
    pub incidents: String,
    pub reports: String,
}

impl Default for ChannelSettings {
    fn default() -> Self {
        Self {
            incidents: "incidents".into(),
            reports: "reports".into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DisplaySettings {
    pub timezone: String,
}

impl Default for DisplaySettings {
    fn default() -> Self {
        Self {
            timezone: "Europe/Berlin".into(),
        }
    }
}

impl DisplaySettings {
    pub fn tz(&self) -> chrono_tz::Tz {
        self.timezone.parse().unwrap_or(chrono_tz::Europe::Berlin)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CatalogSettings {
    /// Folder of runbook commands, one TOML file each.
    pub commands_dir: PathBuf,
    /// Folder of chart definitions, one TOML file each.
    pub charts_dir: PathBuf,
}

impl Default for CatalogSettings {
    fn default() -> Self {
        Self {
            commands_dir: "commands".into(),
            charts_dir: "charts".into(),
        }
    }
}

/// The Slack secrets, read from the environment only.
#[derive(Debug, Clone, Default)]
pub struct SlackSecrets {
    pub bot_token: Option<Secret>,
    pub signing_secret: Option<Secret>,
    pub app_token: Option<Secret>,
}

impl SlackSecrets {
    pub fn from_env() -> Self {
        let get = |name: &str| {
            std::env::var(name)
                .ok()
                .filter(|v| !v.trim().is_empty())
                .map(Secret::new)
        };
        Self {
            bot_token: get("SLACK_BOT_TOKEN"),
            signing_secret: get("SLACK_SIGNING_SECRET"),
            app_token: get("SLACK_APP_TOKEN"),
        }
    }

    /// `serve` needs a bot token to post, and a way to receive: a signing
    /// secret for HTTP, an app token for Socket Mode, or both.
    pub fn require_for_serve(&self) -> Result<(), ConfigError> {
        if self.bot_token.is_none() {
            return Err(ConfigError::MissingSecret(
                "SLACK_BOT_TOKEN",
                " (the bot's xoxb- token)",
            ));
        }
        if self.signing_secret.is_none() && self.app_token.is_none() {
            return Err(ConfigError::MissingSecret(
                "SLACK_SIGNING_SECRET",
                " for HTTP, or SLACK_APP_TOKEN for Socket Mode",
            ));
        }
        Ok(())
    }
}

/// The Discord secrets, read from the environment only.
#[derive(Debug, Clone, Default)]
pub struct DiscordSecrets {
    /// `DISCORD_BOT_TOKEN`: the bot user's token.
    pub bot_token: Option<Secret>,
    /// `DISCORD_PUBLIC_KEY`: the application's Ed25519 public key, hex
    /// (not secret, but kept with the token; needed in HTTP mode).
    pub public_key: Option<Secret>,
}

impl DiscordSecrets {
    pub fn from_env() -> Self {
        let get = |name: &str| {
            std::env::var(name)
                .ok()
                .filter(|v| !v.trim().is_empty())
                .map(|v| Secret::new(v.trim()))
        };
        Self {
            bot_token: get("DISCORD_BOT_TOKEN"),
            public_key: get("DISCORD_PUBLIC_KEY"),
        }
    }
}

/// Every secret the bot reads. The chat platform is chosen by which bot
/// token is set: `SLACK_BOT_TOKEN` for Slack, `DISCORD_BOT_TOKEN` for
/// Discord; one process serves one platform.
#[derive(Debug, Clone, Default)]
pub struct Secrets {
    pub slack: SlackSecrets,
    pub discord: DiscordSecrets,
}

impl Secrets {
    pub fn from_env() -> Self {
        Self {
            slack: SlackSecrets::from_env(),
            discord: DiscordSecrets::from_env(),
        }
    }

    /// Discord when its token is set and Slack's is not.
    pub fn is_discord(&self) -> bool {
        self.discord.bot_token.is_some() && self.slack.bot_token.is_none()
    }

    /// What `serve` needs on the chosen platform.
    pub fn require_for_serve(&self, discord: &DiscordSettings) -> Result<(), ConfigError> {
        if self.discord.bot_token.is_some() && self.slack.bot_token.is_some() {
            return Err(ConfigError::Mismatch(
                "both SLACK_BOT_TOKEN and DISCORD_BOT_TOKEN are set: one process serves one chat platform; run one per platform",
            ));
        }
        if !self.is_discord() {
            return self.slack.require_for_serve();
        }
        if discord.application_id.is_empty() {
            return Err(ConfigError::Mismatch(
                "DISCORD_BOT_TOKEN is set but discord.application_id is not: the bot needs its application id to answer interactions",
            ));
        }
        if discord.mode == DiscordMode::Http && self.discord.public_key.is_none() {
            return Err(ConfigError::MissingSecret(
                "DISCORD_PUBLIC_KEY",
                " (the application's hex public key) for discord.mode = \"http\"",
            ));
        }
        Ok(())
    }
}

impl From<SlackSecrets> for Secrets {
    fn from(slack: SlackSecrets) -> Self {
        Self {
            slack,
            discord: DiscordSecrets::default(),
        }
    }
}

impl Settings {
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> Result<Self, ConfigError> {
        let settings: Settings = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        settings.validate(path)?;
        Ok(settings)
    }

    fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        let invalid = |key: &str, message: String| ConfigError::Invalid {
            path: path.to_owned(),
            key: key.into(),
            message,
        };
        if self.display.timezone.parse::<chrono_tz::Tz>().is_err() {
            return Err(invalid(
                "display.timezone",
                format!("unknown time zone {:?}", self.display.timezone),
            ));
        }
        url::Url::parse(&self.slack.api_url)
            .map_err(|e| invalid("slack.api_url", format!("not a URL: {e}")))?;
        url::Url::parse(&self.discord.api_url)
            .map_err(|e| invalid("discord.api_url", format!("not a URL: {e}")))?;
        if !self
            .discord
            .api_url
            .trim_end_matches('/')
            .ends_with("/api/v10")
        {
            return Err(invalid(
                "discord.api_url",
                "must end in /api/v10 (serenity speaks API version 10)".into(),
            ));
        }
        for (key, value) in [
            ("discord.application_id", &self.discord.application_id),
            ("discord.guild_id", &self.discord.guild_id),
        ] {
            if !value.is_empty() && value.parse::<u64>().map_or(true, |v| v == 0) {
                return Err(invalid(
                    key,
                    format!("{value:?} is not a Discord id (a snowflake)"),
                ));
            }
        }
        if let Some(endpoint) = &self.aws.endpoint_url {
            url::Url::parse(endpoint)
                .map_err(|e| invalid("aws.endpoint_url", format!("not a URL: {e}")))?;
        }
        if !(self.store.url.starts_with("sqlite:") || self.store.url.starts_with("postgres")) {
            return Err(invalid(
                "store.url",
                "must start with sqlite:// or postgres://".into(),
            ));
        }
        if self.aws.max_attempts == 0 {
            return Err(invalid("aws.max_attempts", "must be at least 1".into()));
        }
        for (name, f) in &self.functions {
            crate::domain::FunctionName::parse(name)
                .map_err(|e| invalid(&format!("functions.{name}"), e.0))?;
            if f.min_reserved > f.max_reserved || f.min_reserved < 0 {
                return Err(invalid(
                    &format!("functions.{name}.min_reserved"),
                    "must be between 0 and max_reserved".into(),
                ));
            }
            if f.min_provisioned > f.max_provisioned || f.min_provisioned < 0 {
                return Err(invalid(
                    &format!("functions.{name}.min_provisioned"),
                    "must be between 0 and max_provisioned".into(),
                ));
            }
        }
        for (i, name) in self.runbook.functions.iter().enumerate() {
            crate::domain::FunctionName::parse(name)
                .map_err(|e| invalid(&format!("runbook.functions[{i}]"), e.0))?;
        }
        if !(0.1..=0.9).contains(&self.runbook.cost_runaway_target) {
            return Err(invalid(
                "runbook.cost_runaway_target",
                "must be between 0.1 and 0.9 (a utilization fraction)".into(),
            ));
        }
        if self.runbook.plan_ttl_seconds == 0 {
            return Err(invalid(
                "runbook.plan_ttl_seconds",
                "must be at least 1".into(),
            ));
        }
        if self.escalation.levels.len() != 4 {
            return Err(invalid(
                "escalation.levels",
                "must list the runbook's four levels, L1 to L4".into(),
            ));
        }
        if self
            .escalation
            .levels
            .iter()
            .any(|l| l.remind_every_seconds == Some(0) || l.escalate_after_seconds == Some(0))
        {
            return Err(invalid(
                "escalation.levels",
                "remind_every_seconds and escalate_after_seconds must be at least 1".into(),
            ));
        }
        self.validate_reports(path)?;
        if !(self.demo.speed.is_finite() && self.demo.speed > 0.0) {
            return Err(invalid("demo.speed", "must be a number above 0".into()));
        }
        if let Some(start) = &self.demo.start
            && chrono::DateTime::parse_from_rfc3339(start).is_err()
        {
            return Err(invalid(
                "demo.start",
                format!("{start:?} is not an RFC 3339 time such as 2026-11-27T14:00:00Z"),
            ));
        }
        if self.server.max_body_bytes < 1024 {
            return Err(invalid(
                "server.max_body_bytes",
                "must be at least 1024".into(),
            ));
        }
        Ok(())
    }
}

impl Settings {
    fn validate_reports(&self, path: &Path) -> Result<(), ConfigError> {
        let invalid = |key: &str, message: String| ConfigError::Invalid {
            path: path.to_owned(),
            key: format!("reports.{key}"),
            message,
        };
        let r = &self.reports;
        if r.timezone.parse::<chrono_tz::Tz>().is_err() {
            return Err(invalid(
                "timezone",
                format!("unknown time zone {:?}", r.timezone),
            ));
        }
        for (key, value) in [
            ("daily_at", &r.daily_at),
            ("weekly_at", &r.weekly_at),
            ("monthly_at", &r.monthly_at),
        ] {
            if crate::schedule::parse_time(value).is_none() {
                return Err(invalid(key, format!("{value:?} is not a time HH:MM")));
            }
        }
        if crate::schedule::parse_weekday(&r.weekly_day).is_none() {
            return Err(invalid(
                "weekly_day",
                format!("{:?} is not a weekday (monday … sunday)", r.weekly_day),
            ));
        }
        if r.check_interval_seconds == 0 {
            return Err(invalid(
                "check_interval_seconds",
                "must be at least 1".into(),
            ));
        }
        if r.snapshot_retention_days == 0 {
            return Err(invalid(
                "snapshot_retention_days",
                "must be at least 1".into(),
            ));
        }
        for (i, name) in r.functions.iter().enumerate() {
            crate::domain::FunctionName::parse(name)
                .map_err(|e| invalid(&format!("functions[{i}]"), e.0))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let s = Secret::new("xoxb-very-secret");
        assert!(!format!("{s:?}").contains("very-secret"));
        let all = SlackSecrets {
            bot_token: Some(s),
            ..Default::default()
        };
        assert!(!format!("{all:?}").contains("very-secret"));
    }

    #[test]
    fn the_platform_follows_the_bot_token() {
        let discord = DiscordSettings {
            application_id: "1100000000000000001".into(),
            mode: DiscordMode::Http,
            ..Default::default()
        };
        let mut secrets = Secrets {
            slack: SlackSecrets::default(),
            discord: DiscordSecrets {
                bot_token: Some(Secret::new("t")),
                public_key: None,
            },
        };
        assert!(secrets.is_discord());
        let err = secrets.require_for_serve(&discord).unwrap_err();
        assert!(err.to_string().contains("DISCORD_PUBLIC_KEY"), "{err}");
        secrets.discord.public_key = Some(Secret::new("ab"));
        assert!(secrets.require_for_serve(&discord).is_ok());
        let gateway = DiscordSettings {
            mode: DiscordMode::Gateway,
            ..discord.clone()
        };
        secrets.discord.public_key = None;
        assert!(secrets.require_for_serve(&gateway).is_ok());
        let unnamed = DiscordSettings::default();
        assert!(secrets.require_for_serve(&unnamed).is_err());
        secrets.slack.bot_token = Some(Secret::new("xoxb"));
        assert!(!secrets.is_discord());
        let err = secrets.require_for_serve(&discord).unwrap_err();
        assert!(
            err.to_string()
                .contains("one process serves one chat platform"),
            "{err}"
        );
        assert!(!format!("{secrets:?}").contains("xoxb"));
    }

    #[test]
    fn discord_settings_are_checked() {
        let s = Settings::parse(Path::new("x.toml"), "").expect("defaults");
        assert_eq!(s.discord.api_url, DISCORD_API_URL);
        assert_eq!(s.discord.proxy_base(), None);
        let s = Settings::parse(
            Path::new("x.toml"),
            "[discord]\napi_url = \"http://127.0.0.1:9/api/v10\"\nmode = \"http\"\n",
        )
        .expect("a local API");
        assert_eq!(
            s.discord.proxy_base().as_deref(),
            Some("http://127.0.0.1:9")
        );
        for (toml, key) in [
            (
                "[discord]\napi_url = \"http://127.0.0.1:9/api\"\n",
                "discord.api_url",
            ),
            (
                "[discord]\napplication_id = \"abc\"\n",
                "discord.application_id",
            ),
            ("[discord]\nguild_id = \"0\"\n", "discord.guild_id"),
            ("[discord]\nmode = \"websocket\"\n", "mode"),
        ] {
            let err = Settings::parse(Path::new("x.toml"), toml).unwrap_err();
            assert!(err.to_string().contains(key), "{toml}: {err}");
        }
    }

    #[test]
    fn defaults_match_the_documented_ones() {
        let s = Settings::parse(Path::new("x.toml"), "").expect("empty config is valid");
        assert_eq!(s.server.listen.to_string(), "127.0.0.1:3000");
        assert_eq!(s.slack.api_url, "https://slack.com/api");
        assert_eq!(s.store.url, "sqlite://scalebot.db");
        assert_eq!(s.display.timezone, "Europe/Berlin");
    }

    #[test]
    fn unknown_keys_and_bad_values_name_the_key() {
        let err = Settings::parse(Path::new("x.toml"), "[server]\nlisten_on = 1\n").unwrap_err();
        assert!(err.to_string().contains("listen_on"), "{err}");
        let err = Settings::parse(Path::new("x.toml"), "[display]\ntimezone = \"Mars/Base\"\n")
            .unwrap_err();
        assert!(err.to_string().contains("display.timezone"), "{err}");
        let err =
            Settings::parse(Path::new("x.toml"), "[reports]\ndaily_at = \"9 am\"\n").unwrap_err();
        assert!(err.to_string().contains("reports.daily_at"), "{err}");
        let err =
            Settings::parse(Path::new("x.toml"), "[reports]\nweekly_day = \"mo\"\n").unwrap_err();
        assert!(err.to_string().contains("reports.weekly_day"), "{err}");
    }
}
