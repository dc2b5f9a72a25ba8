//! The Discord adapter: embeds and buttons (`render.rs`) sent through
//! serenity's REST client (`client.rs`), whose rate limiter waits as
//! Discord's headers say (`Retry-After` on a 429,
//! `X-RateLimit-Remaining`/`-Reset-After` before one). Threads are made
//! from messages; attachments go as multipart with the image shown in an
//! embed. This file holds `DiscordChat`'s state and its REST calls;
//! `chat.rs` is the `Chat` port on top of them.
//!
//! Interactions: a slash command's first answer is given by the ingress;
//! the engine's first post to that channel answering that user
//! ([`Message::answers`]) becomes the edit of
//! that answer (`@original`) while its token is fresh, and an ordinary
//! channel message after that. `ephemeral` uses the clicker's own
//! interaction token (a follow-up only they see).

mod chat;
mod client;
pub mod commands;
pub mod gateway;
pub mod ingress;
pub mod render;
pub mod settings;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use serenity::builder::CreateAttachment;
use serenity::http::Http;
use serenity::model::id::{ChannelId, GuildId, MessageId};

pub use self::client::{ClientError, http, register};
use self::client::{THREAD_ALREADY_CREATED, discord_code, short_error, snowflake};
use crate::chat::pace::Pacer;
use crate::chat::{ChatError, MessageRef};
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

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::Chat;

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
