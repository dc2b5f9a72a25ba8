//! The config file as a whole: one field per TOML section. This is the only
//! place that sees every section; start-up hands the services their
//! [`Settings`] and each platform its own section, so a service never reads
//! a platform's settings. Loading (defaults, typed values, errors by key)
//! is the leaf's, `config::load`.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::config::{
    self, AwsSettings, CatalogSettings, ChannelSettings, ConfigError, DisplaySettings,
    EscalationSettings, FunctionSettings, PagerDutySettings, PagingSettings, PermissionSettings,
    PriceSettings, RdsProxySettings, ReportSettings, RunbookSettings, Secrets, Settings,
    SeveritySettings, SilenceSettings, SnsSettings, StoreSettings,
};
use crate::demo::settings::DemoSettings;
use crate::discord::settings::DiscordSettings;
use crate::domain::FunctionName;
use crate::domain::people::People;
use crate::server::settings::ServerSettings;
use crate::slack::settings::SlackSettings;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingsFile {
    pub server: ServerSettings,
    pub slack: SlackSettings,
    pub discord: DiscordSettings,
    pub aws: AwsSettings,
    pub store: StoreSettings,
    pub channels: ChannelSettings,
    pub display: DisplaySettings,
    pub catalog: CatalogSettings,
    pub runbook: RunbookSettings,
    pub functions: BTreeMap<FunctionName, FunctionSettings>,
    pub roles: BTreeMap<String, Vec<String>>,
    pub permissions: PermissionSettings,
    #[serde(deserialize_with = "config::deserialize_people")]
    pub people: People,
    pub prices: PriceSettings,
    pub rds_proxy: RdsProxySettings,
    pub sns: SnsSettings,
    pub escalation: EscalationSettings,
    pub reports: ReportSettings,
    pub paging: PagingSettings,
    pub pagerduty: PagerDutySettings,
    pub severities: SeveritySettings,
    pub silences: SilenceSettings,
    /// Read only by `scalebot demo`.
    pub demo: DemoSettings,
}

impl SettingsFile {
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        config::load(path)
    }

    pub fn parse(path: &Path, text: &str) -> Result<Self, ConfigError> {
        config::parse(path, text)
    }

    /// What the services read: every section but the platforms'.
    pub fn services(&self) -> Settings {
        Settings {
            aws: self.aws.clone(),
            store: self.store.clone(),
            channels: self.channels.clone(),
            display: self.display.clone(),
            catalog: self.catalog.clone(),
            runbook: self.runbook.clone(),
            functions: self.functions.clone(),
            roles: self.roles.clone(),
            permissions: self.permissions.clone(),
            people: self.people.clone(),
            prices: self.prices.clone(),
            rds_proxy: self.rds_proxy.clone(),
            sns: self.sns.clone(),
            escalation: self.escalation.clone(),
            reports: self.reports.clone(),
            paging: self.paging.clone(),
            pagerduty: self.pagerduty.clone(),
            severities: self.severities.clone(),
            silences: self.silences.clone(),
        }
    }

    /// What `serve` needs on the platform the secrets choose.
    pub fn require_for_serve(&self, secrets: &Secrets) -> Result<(), ConfigError> {
        secrets.require_for_serve()?;
        if secrets.is_discord() {
            self.discord.require_for_serve(&secrets.discord)?;
        }
        Ok(())
    }
}

impl Default for SettingsFile {
    /// The defaults alone, which tests start from. A unit test loads the
    /// embedded file, so the panic below would be a broken build.
    fn default() -> Self {
        match config::defaults() {
            Ok(file) => file,
            Err(e) => panic!("the embedded defaults are broken: {e}"),
        }
    }
}

#[cfg(test)]
mod tests;
