//! `[discord]`: how Discord reaches the bot and the bot Discord, parsed
//! into serenity's own types.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::num::NonZeroU64;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Deserializer};
use serenity::model::id::{ApplicationId, GuildId};

use crate::config::{ConfigError, DiscordSecrets, values};

pub const DISCORD_API_URL: &str = "https://discord.com/api/v10";

/// How Discord delivers interactions to the bot; responses always go over
/// HTTP. Discord itself allows only one: an Interactions Endpoint URL set in
/// the developer portal turns gateway delivery off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DiscordMode {
    /// The bot opens the gateway WebSocket (serenity's client); no public URL.
    Gateway,
    /// Discord POSTs to `/discord/interactions`, signed with Ed25519.
    Http,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiscordSettings {
    pub mode: DiscordMode,
    /// The application id from the developer portal (`""`: not set).
    #[serde(deserialize_with = "snowflake")]
    pub application_id: Option<ApplicationId>,
    /// The server (guild) the bot works in: the only one whose
    /// interactions it answers (`serve` needs it), where it opens an
    /// incident's own channel, and the default of `discord register --guild`.
    #[serde(deserialize_with = "snowflake")]
    pub guild_id: Option<GuildId>,
    /// Discord's REST API; a local Discord-compatible server in tests.
    #[serde(deserialize_with = "api_url")]
    pub api_url: url::Url,
    /// Posts to one channel are paced to one per this interval after a
    /// burst of `post_burst` (Discord allows about 5 per 5 s per channel);
    /// zero turns pacing off.
    #[serde(rename = "post_interval_ms", deserialize_with = "values::millis")]
    pub post_interval: Duration,
    pub post_burst: u32,
    /// The longest one call may wait for rate limits (429 `Retry-After`,
    /// `X-RateLimit-Reset-After`) before it is given up.
    #[serde(
        rename = "max_retry_after_seconds",
        deserialize_with = "values::seconds"
    )]
    pub max_retry_after: Duration,
    /// Tests only (warned about at start-up): an extra root CA for
    /// Discord's HTTPS, and addresses to reach hosts at instead of DNS
    /// (`"discord.com" = "127.0.0.1:8443"`), so that a local server can
    /// stand in for discord.com with serenity's rate limiter in use.
    pub extra_ca_pem_file: Option<PathBuf>,
    pub host_addresses: BTreeMap<String, SocketAddr>,
}

/// An id such as `1100000000000000001`; `""` is "not set".
fn snowflake<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: From<NonZeroU64>,
{
    let s = String::deserialize(d)?;
    if s.is_empty() {
        return Ok(None);
    }
    s.parse::<NonZeroU64>()
        .map(|id| Some(T::from(id)))
        .map_err(|_| serde::de::Error::custom(format!("{s:?} is not a Discord id (a snowflake)")))
}

/// serenity speaks API version 10 and puts `/api/v10` on every path itself.
fn api_url<'de, D: Deserializer<'de>>(d: D) -> Result<url::Url, D::Error> {
    let url = values::url(d)?;
    if !url.as_str().trim_end_matches('/').ends_with("/api/v10") {
        return Err(serde::de::Error::custom(
            "must end in /api/v10 (serenity speaks API version 10)",
        ));
    }
    Ok(url)
}

impl DiscordSettings {
    /// The base serenity's `HttpBuilder::proxy` wants: the API URL without
    /// its `/api/v10` path (serenity puts that back on every request).
    /// `None` for Discord itself.
    pub fn proxy_base(&self) -> Option<String> {
        let url = self.api_url.as_str().trim_end_matches('/');
        if url == DISCORD_API_URL {
            return None;
        }
        Some(url.trim_end_matches("/api/v10").to_owned())
    }

    /// What `serve` on Discord needs besides the bot token.
    pub fn require_for_serve(&self, secrets: &DiscordSecrets) -> Result<(), ConfigError> {
        if self.application_id.is_none() {
            return Err(ConfigError::Mismatch(
                "DISCORD_BOT_TOKEN is set but discord.application_id is not: the bot needs its application id to answer interactions",
            ));
        }
        if self.guild_id.is_none() {
            return Err(ConfigError::Mismatch(
                "DISCORD_BOT_TOKEN is set but discord.guild_id is not: the bot answers only in its own server, so it needs that server's id",
            ));
        }
        if self.mode == DiscordMode::Http && secrets.public_key.is_none() {
            return Err(ConfigError::MissingSecret(
                "DISCORD_PUBLIC_KEY",
                " (the application's hex public key) for discord.mode = \"http\"",
            ));
        }
        Ok(())
    }
}

/// The defaults' `[discord]`, for unit tests elsewhere in this folder.
#[cfg(test)]
pub(crate) fn test_defaults() -> DiscordSettings {
    tests::parse("").expect("the defaults parse")
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::Secret;

    /// The whole file is read (and so checked) but only `[discord]` kept.
    #[derive(Debug, Deserialize)]
    struct File {
        discord: DiscordSettings,
    }

    pub(super) fn parse(text: &str) -> Result<DiscordSettings, ConfigError> {
        crate::config::parse::<File>(Path::new("x.toml"), text).map(|f| f.discord)
    }

    #[test]
    fn discord_settings_are_checked() {
        let s = parse("").expect("defaults");
        assert_eq!(s.api_url.as_str(), DISCORD_API_URL);
        assert_eq!(s.proxy_base(), None);
        assert_eq!((s.application_id, s.guild_id), (None, None));
        let s = parse("[discord]\napi_url = \"http://127.0.0.1:9/api/v10\"\nmode = \"http\"\nguild_id = \"42\"\n")
            .expect("a local API");
        assert_eq!(s.proxy_base().as_deref(), Some("http://127.0.0.1:9"));
        assert_eq!(s.guild_id, Some(GuildId::new(42)));
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
            let err = parse(toml).unwrap_err();
            assert!(err.to_string().contains(key), "{toml}: {err}");
        }
    }

    #[test]
    fn http_mode_needs_the_public_key_and_any_mode_the_application_and_guild_ids() {
        let mut discord =
            parse("[discord]\napplication_id = \"1100000000000000001\"\nguild_id = \"42\"\nmode = \"http\"\n")
                .expect("valid");
        let mut secrets = DiscordSecrets {
            bot_token: Some(Secret::new("t")),
            public_key: None,
        };
        let err = discord.require_for_serve(&secrets).unwrap_err();
        assert!(err.to_string().contains("DISCORD_PUBLIC_KEY"), "{err}");
        secrets.public_key = Some(Secret::new("ab"));
        assert!(discord.require_for_serve(&secrets).is_ok());
        secrets.public_key = None;
        discord.mode = DiscordMode::Gateway;
        assert!(discord.require_for_serve(&secrets).is_ok());
        discord.guild_id = None;
        let err = discord.require_for_serve(&secrets).unwrap_err();
        assert!(err.to_string().contains("discord.guild_id"), "{err}");
        discord.guild_id = Some(GuildId::new(42));
        discord.application_id = None;
        assert!(discord.require_for_serve(&secrets).is_err());
    }
}
