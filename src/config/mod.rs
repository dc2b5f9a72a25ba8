//! Typed settings: a TOML file for everything that is not a secret, laid
//! over the shipped defaults (`config/defaults.toml`, see `load.rs`) and
//! parsed once into the values the code uses; the environment for the
//! secrets (which never print, see [`Secret`]).
//!
//! This leaf holds what the services read ([`Settings`]). Each platform
//! brings its own section (`slack/settings.rs`, `discord/settings.rs`,
//! `demo/settings.rs`, `server/settings.rs`), and `settings_file.rs` puts
//! the whole file together.

mod load;
mod paging;
mod people;
mod permissions;
mod reports;
mod runbook;
mod secrets;
mod severities;
mod silences;
pub mod values;

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Deserializer};

use crate::domain::FunctionName;
use crate::domain::people::People;

pub use load::{defaults, load, parse};
pub use paging::{PagerDutySettings, PagingSettings};
pub use people::deserialize_people;
pub use permissions::PermissionSettings;
pub use reports::ReportSettings;
pub use runbook::{EscalationSettings, FunctionSettings, JoinBy, LevelSettings, RunbookSettings};
pub use secrets::{DiscordSecrets, PagerDutySecrets, Secret, Secrets, SlackSecrets};
pub use severities::{AlarmFacts, SeverityRule, SeveritySettings};
pub use silences::{MaintenanceWindow, SilenceSettings, WindowTime};

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

/// What the services read: every section of the file but the platforms'.
#[derive(Debug, Clone)]
pub struct Settings {
    pub aws: AwsSettings,
    pub store: StoreSettings,
    pub channels: ChannelSettings,
    pub display: DisplaySettings,
    pub catalog: CatalogSettings,
    pub runbook: RunbookSettings,
    /// Guardrails and facts per Lambda function, by name.
    pub functions: BTreeMap<FunctionName, FunctionSettings>,
    /// Role name → members: Slack user ids (`U…`), Slack user-group ids
    /// (`S…`), Discord user ids, Discord role ids written `&<id>`.
    pub roles: BTreeMap<String, Vec<String>>,
    /// Which roles may control incidents and read AWS data.
    pub permissions: PermissionSettings,
    /// Which identities are one person (`[people]`): approvals count people.
    pub people: People,
    pub prices: PriceSettings,
    pub rds_proxy: RdsProxySettings,
    pub sns: SnsSettings,
    pub escalation: EscalationSettings,
    pub reports: ReportSettings,
    /// Retries of pages, and the thread link they carry.
    pub paging: PagingSettings,
    /// PagerDuty's Events API (the routing key is a secret).
    pub pagerduty: PagerDutySettings,
    /// Which severity and starting level an alarm gets.
    pub severities: SeveritySettings,
    /// Maintenance windows.
    pub silences: SilenceSettings,
}

impl Settings {
    /// Guardrails for a function: its own section, or the defaults.
    pub fn function(&self, name: &str) -> FunctionSettings {
        self.functions.get(name).cloned().unwrap_or_default()
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
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
    /// Signing certificates fetched in any minute at most; a message whose
    /// certificate is not known yet gets 503 (SNS retries) beyond it.
    #[serde(deserialize_with = "values::at_least_one")]
    pub cert_fetches_per_minute: usize,
    /// A certificate URL whose fetch failed is not fetched again for this
    /// long; its messages get the same answer meanwhile.
    #[serde(
        rename = "cert_failure_cache_seconds",
        deserialize_with = "values::seconds"
    )]
    pub cert_failure_ttl: std::time::Duration,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceSettings {
    /// USD per GB-second of provisioned concurrency (eu-central-1 list price).
    pub provisioned_gb_second: f64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RdsProxySettings {
    /// From the instance's engine when left out.
    #[serde(default, deserialize_with = "engine_family")]
    pub engine_family: Option<EngineFamily>,
    /// The Secrets Manager secret with the database credentials.
    pub secret_arn: String,
    /// The IAM role the proxy uses to read the secret.
    pub role_arn: String,
    pub subnet_ids: Vec<String>,
    pub security_group_ids: Vec<String>,
}

/// The engine families RDS Proxy supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineFamily {
    Postgresql,
    Mysql,
    Sqlserver,
}

impl EngineFamily {
    /// As the RDS API writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            EngineFamily::Postgresql => "POSTGRESQL",
            EngineFamily::Mysql => "MYSQL",
            EngineFamily::Sqlserver => "SQLSERVER",
        }
    }
}

/// `""` is accepted as "left out", as it always was.
fn engine_family<'de, D: Deserializer<'de>>(d: D) -> Result<Option<EngineFamily>, D::Error> {
    let s = String::deserialize(d)?;
    let all = [
        EngineFamily::Postgresql,
        EngineFamily::Mysql,
        EngineFamily::Sqlserver,
    ];
    match all.into_iter().find(|f| f.as_str() == s) {
        Some(f) => Ok(Some(f)),
        None if s.is_empty() => Ok(None),
        None => Err(serde::de::Error::custom(format!(
            "`{s}` is not POSTGRESQL, MYSQL or SQLSERVER"
        ))),
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AwsSettings {
    pub region: String,
    #[serde(default, deserialize_with = "values::optional_url")]
    pub endpoint_url: Option<url::Url>,
    /// Total time for one AWS operation, retries included.
    pub operation_timeout_seconds: u64,
    /// Attempts per AWS operation (the SDK backs off between them).
    #[serde(deserialize_with = "values::at_least_one")]
    pub max_attempts: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreSettings {
    /// Handed to sqlx as it is; its scheme picks the backend.
    #[serde(deserialize_with = "store_url")]
    pub url: String,
    pub max_connections: u32,
}

fn store_url<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let url = String::deserialize(d)?;
    if url.starts_with("sqlite:") || url.starts_with("postgres") {
        Ok(url)
    } else {
        Err(serde::de::Error::custom(
            "must start with sqlite:// or postgres://",
        ))
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelSettings {
    pub incidents: String,
    pub reports: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DisplaySettings {
    /// Of every time the bot shows, and of chart time axes.
    #[serde(deserialize_with = "values::time_zone")]
    pub timezone: chrono_tz::Tz,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogSettings {
    /// Folder of runbook commands, one TOML file each.
    pub commands_dir: PathBuf,
    /// Folder of chart definitions, one TOML file each.
    pub charts_dir: PathBuf,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct Proxy {
        rds_proxy: RdsProxySettings,
    }

    #[test]
    fn an_engine_family_is_one_rds_proxy_knows() {
        let family = |v: &str| {
            let text = format!("[rds_proxy]\nengine_family = \"{v}\"\n");
            parse::<Proxy>(std::path::Path::new("x.toml"), &text).map(|p| p.rds_proxy.engine_family)
        };
        assert_eq!(family("MYSQL").ok(), Some(Some(EngineFamily::Mysql)));
        assert_eq!(family("").ok(), Some(None));
        let err = family("ORACLE").expect_err("not supported");
        assert!(
            err.to_string()
                .contains("key `rds_proxy.engine_family`: `ORACLE` is not POSTGRESQL"),
            "{err}"
        );
    }

    #[test]
    fn a_function_without_a_section_gets_the_template() {
        let f = FunctionSettings::default();
        assert_eq!((f.max_reserved, f.max_provisioned), (1000, 500));
    }
}
