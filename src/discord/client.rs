//! serenity's REST client: built for the settings (an extra CA and fixed
//! addresses in tests, a proxy), the `/scale` registration, and Discord's
//! ids and errors as the rest of the adapter needs them.

use serenity::http::{Http, HttpBuilder};
use serenity::model::id::GuildId;

use super::commands;
use super::settings::DiscordSettings;
use crate::chat::ChatError;
use crate::config::Secret;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("discord.extra_ca_pem_file {path}: {message}")]
    Ca { path: String, message: String },
    #[error("cannot build the Discord HTTP client: {0}")]
    Build(String),
}

/// serenity's REST client for `settings`, pointed at `api_url`.
pub fn http(settings: &DiscordSettings, token: &Secret) -> Result<Http, ClientError> {
    let mut builder = HttpBuilder::new(token.expose());
    // serenity's own client has no deadline: a hung connection would hold
    // a sweep or a work-queue slot for ever.
    let mut client = reqwest012::Client::builder()
        .use_rustls_tls()
        .connect_timeout(std::time::Duration::from_secs(5))
        .timeout(crate::chat::CALL_TIMEOUT);
    if settings.extra_ca_pem_file.is_some() || !settings.host_addresses.is_empty() {
        tracing::warn!(
            hosts = ?settings.host_addresses,
            ca = ?settings.extra_ca_pem_file,
            "discord.host_addresses / extra_ca_pem_file are set: Discord is reached elsewhere (tests only)"
        );
        if let Some(path) = &settings.extra_ca_pem_file {
            let ca_err = |message: String| ClientError::Ca {
                path: path.display().to_string(),
                message,
            };
            let pem = std::fs::read(path).map_err(|e| ca_err(e.to_string()))?;
            let cert =
                reqwest012::Certificate::from_pem(&pem).map_err(|e| ca_err(e.to_string()))?;
            client = client.add_root_certificate(cert);
        }
        for (host, addr) in &settings.host_addresses {
            client = client.resolve(host, *addr);
        }
    }
    builder = builder.client(
        client
            .build()
            .map_err(|e| ClientError::Build(e.to_string()))?,
    );
    if let Some(id) = settings.application_id {
        builder = builder.application_id(id);
    }
    if let Some(proxy) = settings.proxy_base() {
        // serenity swaps `https://discord.com` for this on every request,
        // except those its rate limiter sends (they go to discord.com
        // whatever the proxy), so the limiter is off here and `call`
        // retries 429s itself.
        builder = builder.proxy(proxy).ratelimiter_disabled(true);
    }
    Ok(builder.build())
}

pub(super) fn snowflake(what: &str, id: &str) -> Result<u64, ChatError> {
    id.parse::<u64>()
        .ok()
        .filter(|v| *v != 0)
        .ok_or_else(|| ChatError::Api {
            platform: "Discord",
            method: what.into(),
            code: format!("{id:?} is not a Discord id"),
        })
}

/// The JSON error code Discord answers when a thread already exists for a
/// message (after a restart, or a race between two posts).
pub(super) const THREAD_ALREADY_CREATED: isize = 160004;

pub(super) fn discord_code(e: &serenity::Error) -> Option<isize> {
    match e {
        serenity::Error::Http(serenity::http::HttpError::UnsuccessfulRequest(r)) => {
            Some(r.error.code)
        }
        _ => None,
    }
}

pub(super) fn short_error(e: &serenity::Error) -> String {
    match e {
        serenity::Error::Http(serenity::http::HttpError::UnsuccessfulRequest(r)) => {
            format!("HTTP {}", r.status_code.as_u16())
        }
        serenity::Error::Http(_) => "an HTTP error".into(),
        serenity::Error::Json(_) => "an answer that is not Discord's JSON".into(),
        _ => "a client error".into(),
    }
}

/// Registers `/scale` from the catalog: for one guild (instant; for
/// testing) or globally (production). Returns the number of commands
/// Discord now holds for that scope.
pub async fn register(
    settings: &DiscordSettings,
    token: &Secret,
    catalog: &crate::catalog::Catalog,
    guild: Option<&str>,
) -> Result<usize, ChatError> {
    if settings.application_id.is_none() {
        return Err(ChatError::Api {
            platform: "Discord",
            method: "commands.register".into(),
            code: "discord.application_id is not set".into(),
        });
    }
    let http = http(settings, token).map_err(|e| ChatError::Transport {
        platform: "Discord",
        method: "commands.register".into(),
        message: e.to_string(),
    })?;
    let defs = commands::definitions(catalog);
    let result = match guild {
        Some(g) => {
            let guild = snowflake("commands.register", g)?;
            http.create_guild_commands(GuildId::new(guild), &defs).await
        }
        None => http.create_global_commands(&defs).await,
    };
    match result {
        Ok(list) => Ok(list.len()),
        Err(e) => Err(ChatError::Api {
            platform: "Discord",
            method: "commands.register".into(),
            code: match &e {
                serenity::Error::Http(serenity::http::HttpError::UnsuccessfulRequest(r)) => {
                    format!("HTTP {}: {}", r.status_code.as_u16(), r.error.message)
                }
                other => short_error(other),
            },
        }),
    }
}
