//! The secrets: from the environment only, never from a file, and never
//! printed (see [`Secret`]).

use std::fmt;

use super::ConfigError;

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

/// The Slack secrets, read from the environment only.
#[derive(Debug, Clone, Default)]
pub struct SlackSecrets {
    pub bot_token: Option<Secret>,
    pub signing_secret: Option<Secret>,
    pub app_token: Option<Secret>,
}

impl SlackSecrets {
    pub fn from_env() -> Self {
        Self {
            bot_token: from_env("SLACK_BOT_TOKEN"),
            signing_secret: from_env("SLACK_SIGNING_SECRET"),
            app_token: from_env("SLACK_APP_TOKEN"),
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
        Self {
            bot_token: from_env("DISCORD_BOT_TOKEN"),
            public_key: from_env("DISCORD_PUBLIC_KEY"),
        }
    }
}

/// The PagerDuty secrets, read from the environment only.
#[derive(Debug, Clone, Default)]
pub struct PagerDutySecrets {
    /// `PAGERDUTY_ROUTING_KEY`: the Events API v2 integration key of the
    /// service the levels with `pagerduty = true` page.
    pub routing_key: Option<Secret>,
    /// `PAGERDUTY_WEBHOOK_SECRET`: the signing secret of the v3 webhook
    /// subscription that calls `/pagerduty/webhook`; without it the route
    /// refuses everything.
    pub webhook_secret: Option<Secret>,
}

impl PagerDutySecrets {
    pub fn from_env() -> Self {
        Self {
            routing_key: from_env("PAGERDUTY_ROUTING_KEY"),
            webhook_secret: from_env("PAGERDUTY_WEBHOOK_SECRET"),
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
    pub pagerduty: PagerDutySecrets,
}

impl Secrets {
    pub fn from_env() -> Self {
        Self {
            slack: SlackSecrets::from_env(),
            discord: DiscordSecrets::from_env(),
            pagerduty: PagerDutySecrets::from_env(),
        }
    }

    /// Discord when its token is set and Slack's is not.
    pub fn is_discord(&self) -> bool {
        self.discord.bot_token.is_some() && self.slack.bot_token.is_none()
    }

    /// What `serve` needs whatever the platform: one bot token, and on
    /// Slack a way to receive. Discord's needs depend on its settings
    /// section (`DiscordSettings::require_for_serve`).
    pub fn require_for_serve(&self) -> Result<(), ConfigError> {
        if self.discord.bot_token.is_some() && self.slack.bot_token.is_some() {
            return Err(ConfigError::Mismatch(
                "both SLACK_BOT_TOKEN and DISCORD_BOT_TOKEN are set: one process serves one chat platform; run one per platform",
            ));
        }
        if self.is_discord() {
            return Ok(());
        }
        self.slack.require_for_serve()
    }
}

impl From<SlackSecrets> for Secrets {
    fn from(slack: SlackSecrets) -> Self {
        Self {
            slack,
            discord: DiscordSecrets::default(),
            pagerduty: PagerDutySecrets::default(),
        }
    }
}

/// A secret from the environment; unset or blank is none.
fn from_env(name: &str) -> Option<Secret> {
    std::env::var(name)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .map(|v| Secret::new(v.trim()))
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
}
