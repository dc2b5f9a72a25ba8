//! The Discord adapter: embeds and buttons (`render.rs`) sent through
//! serenity's REST client, whose rate limiter waits as Discord's headers
//! say (`Retry-After` on a 429, `X-RateLimit-Remaining`/`-Reset-After`
//! before one). Threads are made from messages; attachments go as
//! multipart with the image shown in an embed.
//!
//! Interactions: a slash command's first answer is given by the ingress;
//! the engine's first post to that channel answering that user
//! ([`Message::answers`]) becomes the edit of
//! that answer (`@original`) while its token is fresh, and an ordinary
//! channel message after that. `ephemeral` uses the clicker's own
//! interaction token (a follow-up only they see).

pub mod commands;
pub mod gateway;
pub mod ingress;
pub mod render;
pub mod settings;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde_json::{Value, json};
use serenity::builder::CreateAttachment;
use serenity::http::{Http, HttpBuilder};
use serenity::model::id::{ChannelId, GuildId, MessageId};

use crate::chat::pace::Pacer;
use crate::chat::{Attachment, Chat, ChatError, Message, MessageRef};
use crate::config::Secret;
use crate::metrics::Metrics;
use settings::DiscordSettings;

/// Discord invalidates an interaction token after 15 minutes; stop using
/// it a little earlier so that a slow call does not cross the line.
const TOKEN_LIFE: Duration = Duration::from_secs(14 * 60);

/// An interaction whose token the bot may still use.
#[derive(Debug, Clone)]
struct Pending {
    token: String,
    user: String,
    at: Instant,
}

impl Pending {
    fn fresh(&self) -> bool {
        self.at.elapsed() < TOKEN_LIFE
    }
}

pub struct DiscordChat {
    http: Arc<Http>,
    guild_id: Option<GuildId>,
    pacer: Pacer,
    max_wait: Duration,
    metrics: Arc<Metrics>,
    /// Per channel, slash commands whose answer waits for the engine's
    /// first post (oldest first).
    commands: Mutex<HashMap<String, VecDeque<Pending>>>,
    /// Per (channel, user), the newest click: for messages only they see.
    clicks: Mutex<HashMap<(String, String), Pending>>,
    /// Per user, their role ids as of their latest interaction (every
    /// interaction carries them, so a clicker's entry is always current).
    roles: Mutex<HashMap<String, Vec<String>>>,
    /// Titles of recent top-level messages, to name a thread made from
    /// one; bounded (an unknown root gets a plain name).
    titles: Mutex<Titles>,
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("discord.extra_ca_pem_file {path}: {message}")]
    Ca { path: String, message: String },
    #[error("cannot build the Discord HTTP client: {0}")]
    Build(String),
}

/// The titles of the most recent messages, oldest forgotten first.
#[derive(Default)]
struct Titles {
    by_id: HashMap<String, String>,
    order: VecDeque<String>,
}

impl Titles {
    const KEEP: usize = 1000;

    fn remember(&mut self, id: &str, title: &str) {
        if self.by_id.insert(id.to_owned(), title.to_owned()).is_none() {
            self.order.push_back(id.to_owned());
        }
        while self.order.len() > Self::KEEP {
            if let Some(old) = self.order.pop_front() {
                self.by_id.remove(&old);
            }
        }
    }
}

/// serenity's REST client for `settings`, pointed at `api_url`.
pub fn http(settings: &DiscordSettings, token: &Secret) -> Result<Http, ClientError> {
    let mut builder = HttpBuilder::new(token.expose());
    if settings.extra_ca_pem_file.is_some() || !settings.host_addresses.is_empty() {
        tracing::warn!(
            hosts = ?settings.host_addresses,
            ca = ?settings.extra_ca_pem_file,
            "discord.host_addresses / extra_ca_pem_file are set: Discord is reached elsewhere (tests only)"
        );
        let mut client = reqwest012::Client::builder().use_rustls_tls();
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
        builder = builder.client(
            client
                .build()
                .map_err(|e| ClientError::Build(e.to_string()))?,
        );
    }
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

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn snowflake(what: &str, id: &str) -> Result<u64, ChatError> {
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
const THREAD_ALREADY_CREATED: isize = 160004;

fn discord_code(e: &serenity::Error) -> Option<isize> {
    match e {
        serenity::Error::Http(serenity::http::HttpError::UnsuccessfulRequest(r)) => {
            Some(r.error.code)
        }
        _ => None,
    }
}

impl DiscordChat {
    pub fn new(
        settings: &DiscordSettings,
        token: &Secret,
        metrics: Arc<Metrics>,
    ) -> Result<Self, ClientError> {
        let mut http = http(settings, token)?;
        if let Some(r) = http.ratelimiter.as_mut() {
            let m = metrics.clone();
            r.set_ratelimit_callback(Box::new(move |info| {
                m.chat_rate_limited("discord");
                tracing::info!(
                    path = %info.path,
                    global = info.global,
                    wait_ms = info.timeout.as_millis() as u64,
                    "Discord rate limit: waiting as asked"
                );
            }));
        }
        Ok(Self {
            http: Arc::new(http),
            guild_id: settings.guild_id,
            pacer: Pacer::new(settings.post_interval, settings.post_burst),
            max_wait: settings.max_retry_after,
            metrics,
            commands: Mutex::new(HashMap::new()),
            clicks: Mutex::new(HashMap::new()),
            roles: Mutex::new(HashMap::new()),
            titles: Mutex::new(Titles::default()),
        })
    }

    pub fn http(&self) -> Arc<Http> {
        self.http.clone()
    }

    /// A slash command in `channel` was answered; the engine's next post
    /// there replaces that answer.
    pub fn command_answered(&self, channel: &str, user: &str, token: &str) {
        let mut commands = lock(&self.commands);
        let queue = commands.entry(channel.to_owned()).or_default();
        queue.retain(Pending::fresh);
        queue.push_back(Pending {
            token: token.to_owned(),
            user: user.to_owned(),
            at: Instant::now(),
        });
    }

    /// A button was clicked; what the engine tells the clicker goes to them
    /// alone through this token.
    pub fn clicked(&self, channel: &str, user: &str, token: &str) {
        let mut clicks = lock(&self.clicks);
        clicks.retain(|_, p| p.fresh());
        clicks.insert(
            (channel.to_owned(), user.to_owned()),
            Pending {
                token: token.to_owned(),
                user: user.to_owned(),
                at: Instant::now(),
            },
        );
    }

    /// The member's roles, as the interaction they just sent carries them.
    pub fn member_roles(&self, user: &str, roles: Vec<String>) {
        lock(&self.roles).insert(user.to_owned(), roles);
    }

    /// The oldest fresh answer to `user`'s command in `channel`, taken so
    /// that it is replaced once. Expired tokens are dropped on the way.
    fn next_command(&self, channel: &str, user: &str) -> Option<Pending> {
        let mut commands = lock(&self.commands);
        let queue = commands.get_mut(channel)?;
        queue.retain(Pending::fresh);
        let at = queue.iter().position(|p| p.user == user)?;
        queue.remove(at)
    }

    /// Runs one REST call: counted, bounded in time, errors as sentences
    /// without bodies. Against Discord itself serenity's rate limiter waits
    /// out 429s and empty buckets as the headers say, so a 429 rarely gets
    /// here; through a proxy serenity has no limiter (it would bypass the
    /// proxy), so a 429 is retried here, backing off from one second, until
    /// `max_retry_after_seconds` is spent. Only 429s are retried: Discord
    /// did nothing with those, while a lost answer to anything else may
    /// hide a message that was posted.
    async fn call<T, F, Fut>(&self, method: &str, mut f: F) -> Result<T, ChatError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = serenity::Result<T>>,
    {
        let started = Instant::now();
        let mut wait = Duration::from_secs(1);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result =
                match tokio::time::timeout(self.max_wait + Duration::from_secs(30), f()).await {
                    Ok(r) => r,
                    Err(_) => {
                        self.metrics.chat_call(method, "rate_limited");
                        tracing::warn!(method, "Discord rate limit: gave up waiting");
                        return Err(ChatError::RateLimited {
                            platform: "Discord",
                            method: method.into(),
                            attempts: attempt,
                        });
                    }
                };
            match result {
                Ok(v) => {
                    self.metrics.chat_call(method, "ok");
                    return Ok(v);
                }
                Err(serenity::Error::Http(serenity::http::HttpError::UnsuccessfulRequest(r)))
                    if r.status_code.as_u16() == 429 =>
                {
                    self.metrics.chat_call(method, "rate_limited");
                    self.metrics.chat_rate_limited(method);
                    if started.elapsed() + wait > self.max_wait {
                        tracing::warn!(method, attempt, "Discord rate limit: giving up");
                        return Err(ChatError::RateLimited {
                            platform: "Discord",
                            method: method.into(),
                            attempts: attempt,
                        });
                    }
                    tracing::info!(
                        method,
                        attempt,
                        wait_ms = wait.as_millis() as u64,
                        "Discord rate limit: waiting"
                    );
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(30));
                }
                Err(serenity::Error::Http(serenity::http::HttpError::UnsuccessfulRequest(r))) => {
                    self.metrics.chat_call(method, "api_error");
                    return Err(ChatError::Api {
                        platform: "Discord",
                        method: method.into(),
                        code: format!(
                            "HTTP {} code {}: {}",
                            r.status_code.as_u16(),
                            r.error.code,
                            r.error.message
                        ),
                    });
                }
                Err(e) => {
                    self.metrics.chat_call(method, "transport_error");
                    return Err(ChatError::Transport {
                        platform: "Discord",
                        method: method.into(),
                        message: short_error(&e),
                    });
                }
            }
        }
    }

    /// The thread made from `root` (its id is the root message's id),
    /// created on first use. An existing thread is fine: nothing to store.
    async fn thread_of(&self, root: &MessageRef) -> Result<u64, ChatError> {
        let channel = snowflake("thread", &root.channel)?;
        let message = snowflake("thread", &root.id)?;
        let name = lock(&self.titles)
            .by_id
            .get(&root.id)
            .cloned()
            .unwrap_or_else(|| format!("scalebot {}", root.id));
        let req = json!({
            "name": crate::domain::truncate(&name, 90),
            "auto_archive_duration": 1440,
        });
        let created = tokio::time::timeout(
            self.max_wait + Duration::from_secs(30),
            self.http.create_thread_from_message(
                ChannelId::new(channel),
                MessageId::new(message),
                &req,
                None,
            ),
        )
        .await;
        match created {
            Ok(Ok(_)) => {
                self.metrics.chat_call("threads.create", "ok");
                Ok(message)
            }
            Ok(Err(e)) if discord_code(&e) == Some(THREAD_ALREADY_CREATED) => Ok(message),
            Ok(Err(e)) => {
                // The thread may exist already although Discord said
                // something else (e.g. a lost answer); posting will tell.
                tracing::warn!(error = %short_error(&e), "thread not created; posting into it anyway");
                Ok(message)
            }
            Err(_) => Ok(message),
        }
    }

    async fn send(
        &self,
        channel: u64,
        body: &Value,
        files: Vec<CreateAttachment>,
    ) -> Result<MessageRef, ChatError> {
        self.pacer.wait(&channel.to_string()).await;
        let sent = self
            .call("messages.create", || {
                self.http
                    .send_message(ChannelId::new(channel), files.clone(), body)
            })
            .await?;
        Ok(MessageRef {
            channel: channel.to_string(),
            id: sent.id.get().to_string(),
        })
    }
}

fn short_error(e: &serenity::Error) -> String {
    match e {
        serenity::Error::Http(serenity::http::HttpError::UnsuccessfulRequest(r)) => {
            format!("HTTP {}", r.status_code.as_u16())
        }
        serenity::Error::Http(_) => "an HTTP error".into(),
        serenity::Error::Json(_) => "an answer that is not Discord's JSON".into(),
        _ => "a client error".into(),
    }
}

#[async_trait]
impl Chat for DiscordChat {
    async fn post(
        &self,
        channel: &str,
        thread: Option<&MessageRef>,
        message: &Message,
    ) -> Result<MessageRef, ChatError> {
        let body = render::body(message);
        if let Some(root) = thread {
            let thread_id = self.thread_of(root).await?;
            let posted = self.send(thread_id, &body, Vec::new()).await?;
            if message.broadcast {
                // Discord has no "also send to channel": a copy goes there.
                self.send(snowflake("post", channel)?, &body, Vec::new())
                    .await?;
            }
            return Ok(posted);
        }
        let pending = message
            .answers
            .as_deref()
            .and_then(|user| self.next_command(channel, user));
        if let Some(pending) = pending {
            match self
                .call("interactions.edit_original", || {
                    self.http
                        .edit_original_interaction_response(&pending.token, &body, Vec::new())
                })
                .await
            {
                Ok(edited) => {
                    tracing::debug!(user = %pending.user, "command answer replaced");
                    let id = edited.id.get().to_string();
                    if let Some(title) = &message.title {
                        lock(&self.titles).remember(&id, title);
                    }
                    return Ok(MessageRef {
                        channel: channel.to_owned(),
                        id,
                    });
                }
                Err(e) => tracing::info!(error = %e, "answer not editable; posting to the channel"),
            }
        }
        let posted = self
            .send(snowflake("post", channel)?, &body, Vec::new())
            .await?;
        if let Some(title) = &message.title {
            lock(&self.titles).remember(&posted.id, title);
        }
        Ok(posted)
    }

    async fn update(&self, at: &MessageRef, message: &Message) -> Result<(), ChatError> {
        let channel = snowflake("update", &at.channel)?;
        let id = snowflake("update", &at.id)?;
        let body = render::body(message);
        self.call("messages.edit", || {
            self.http.edit_message(
                ChannelId::new(channel),
                MessageId::new(id),
                &body,
                Vec::new(),
            )
        })
        .await?;
        Ok(())
    }

    async fn upload(
        &self,
        channel: &str,
        thread: Option<&MessageRef>,
        file: &Attachment,
    ) -> Result<(), ChatError> {
        let target = match thread {
            Some(root) => self.thread_of(root).await?,
            None => snowflake("upload", channel)?,
        };
        let mut attachment = CreateAttachment::bytes(file.bytes.clone(), file.filename.clone());
        attachment.description = Some(crate::domain::truncate(&file.alt_text, 1000));
        // An image is shown inside an embed that carries its title; any
        // other file is a plain attachment under its title.
        let body = if file.content_type.starts_with("image/") {
            json!({
                "embeds": [{
                    "title": crate::domain::truncate(&file.title, 250),
                    "image": { "url": format!("attachment://{}", file.filename) },
                }],
                "allowed_mentions": { "parse": [] },
            })
        } else {
            json!({
                "content": crate::domain::truncate(&file.title, render::CONTENT_MAX - 1),
                "allowed_mentions": { "parse": [] },
            })
        };
        self.send(target, &body, vec![attachment]).await?;
        Ok(())
    }

    async fn ephemeral(
        &self,
        channel: &str,
        user: &str,
        message: &Message,
    ) -> Result<(), ChatError> {
        let click = lock(&self.clicks)
            .get(&(channel.to_owned(), user.to_owned()))
            .filter(|p| p.fresh())
            .cloned();
        let mut body = render::body(message);
        if let Some(pending) = click {
            body["flags"] = json!(64);
            let sent = self
                .call("interactions.followup", || {
                    self.http
                        .create_followup_message(&pending.token, &body, Vec::new())
                })
                .await;
            if sent.is_ok() {
                return Ok(());
            }
        }
        // Outside an interaction Discord has no message for one person: the
        // channel sees it, addressed to them.
        let mut addressed = message.clone();
        addressed.text = format!("{} {}", crate::chat::mention(user), message.text);
        let mut body = render::body(&addressed);
        body["allowed_mentions"] = json!({ "users": [user] });
        self.send(snowflake("ephemeral", channel)?, &body, Vec::new())
            .await?;
        Ok(())
    }

    async fn create_channel(&self, name: &str, members: &[String]) -> Result<String, ChatError> {
        let guild = self.guild_id.ok_or_else(|| ChatError::Api {
            platform: "Discord",
            method: "channels.create".into(),
            code: "discord.guild_id is not set".into(),
        })?;
        // Members see the channel: a role (`&id`) or a member overwrite
        // allowing VIEW_CHANNEL | SEND_MESSAGES.
        let overwrites: Vec<Value> = members
            .iter()
            .map(|m| match m.strip_prefix('&') {
                Some(role) => json!({"id": role, "type": 0, "allow": "3072", "deny": "0"}),
                None => json!({"id": m, "type": 1, "allow": "3072", "deny": "0"}),
            })
            .collect();
        let req = json!({
            "name": crate::domain::truncate(name, 99),
            "type": 0,
            "permission_overwrites": overwrites,
        });
        let created = self
            .call("channels.create", || {
                self.http.create_channel(guild, &req, None)
            })
            .await?;
        Ok(created.id.get().to_string())
    }

    /// The members of a role (`&<id>`) among the people who have used the
    /// bot: the ingress records each member's roles with every interaction,
    /// which is all a permission check needs (the clicker is always known).
    async fn group_members(&self, group: &str) -> Result<Vec<String>, ChatError> {
        let role = group.trim_start_matches('&');
        Ok(lock(&self.roles)
            .iter()
            .filter(|(_, roles)| roles.iter().any(|r| r == role))
            .map(|(user, _)| user.clone())
            .collect())
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

#[cfg(test)]
mod tests {
    use super::*;

    fn chat() -> DiscordChat {
        let mut settings = settings::test_defaults();
        settings.application_id = Some(serenity::model::id::ApplicationId::new(
            1_100_000_000_000_000_001,
        ));
        DiscordChat::new(&settings, &Secret::new("t"), Arc::new(Metrics::default()))
            .expect("a client")
    }

    #[test]
    fn answers_are_replaced_in_order_and_never_after_the_token_expires() {
        let chat = chat();
        chat.command_answered("C1", "U1", "old");
        chat.command_answered("C1", "U1", "first");
        chat.command_answered("C1", "U2", "second");
        if let Some(q) = lock(&chat.commands).get_mut("C1")
            && let Some(old) = Instant::now().checked_sub(TOKEN_LIFE + Duration::from_secs(1))
        {
            q[0].at = old;
        }
        // Each user's own answer, oldest first, once; the expired token is
        // never used; another channel has none.
        let token = |c: &str, u: &str| chat.next_command(c, u).map(|p| p.token);
        assert_eq!(token("C1", "U2").as_deref(), Some("second"));
        assert_eq!(token("C1", "U1").as_deref(), Some("first"));
        assert_eq!(token("C1", "U1"), None);
        assert_eq!(token("C2", "U1"), None);
    }

    #[test]
    fn thread_titles_are_bounded() {
        let mut t = Titles::default();
        for i in 0..(Titles::KEEP + 10) {
            t.remember(&i.to_string(), "x");
        }
        assert_eq!(t.by_id.len(), Titles::KEEP);
        assert!(!t.by_id.contains_key("0"));
        assert!(t.by_id.contains_key(&(Titles::KEEP + 9).to_string()));
    }

    #[tokio::test]
    async fn role_members_are_those_seen_with_the_role() {
        let chat = chat();
        chat.member_roles("U1", vec!["R1".into(), "R2".into()]);
        chat.member_roles("U2", vec!["R2".into()]);
        let mut r2 = chat.group_members("&R2").await.unwrap_or_default();
        r2.sort();
        assert_eq!(r2, vec!["U1", "U2"]);
        // A member's roles are replaced by their latest interaction.
        chat.member_roles("U1", vec![]);
        assert_eq!(
            chat.group_members("&R1").await.unwrap_or_default(),
            Vec::<String>::new()
        );
    }
}
