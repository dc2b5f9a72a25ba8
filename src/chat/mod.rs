//! The Chat port: a small platform-neutral message model and the trait that
//! each chat adapter implements (Block Kit for Slack, embeds for Discord, the
//! demo's web chat).

pub mod button;
pub mod pace;
pub mod text;

use async_trait::async_trait;

pub use button::{ButtonAction, ButtonError};
pub use text::{Span, Syntax, Text};

/// Where a message is, so it can be replied to or updated.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MessageRef {
    pub channel: String,
    /// Slack's `ts`; the message id elsewhere.
    pub id: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Tone {
    #[default]
    Neutral,
    Good,
    Warning,
    Bad,
}

impl Tone {
    pub fn emoji(self) -> &'static str {
        match self {
            Tone::Neutral => "ℹ️",
            Tone::Good => "✅",
            Tone::Warning => "⚠️",
            Tone::Bad => "🚨",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub label: String,
    pub value: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ButtonStyle {
    #[default]
    Default,
    Primary,
    Danger,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Confirm {
    pub title: String,
    pub text: String,
    pub confirm: String,
    pub deny: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Button {
    pub label: String,
    pub action: ButtonAction,
    pub style: ButtonStyle,
    pub confirm: Option<Confirm>,
}

/// A platform-neutral message.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Message {
    pub title: Option<String>,
    pub tone: Tone,
    /// Spans: the bot's markup (`*bold*`, `` `code` ``), verbatim outside
    /// text, typed mentions, channels and links.
    pub text: Text,
    pub fields: Vec<Field>,
    /// Small print under the message (sources, times, links).
    pub footer: Option<Text>,
    pub buttons: Vec<Button>,
    /// A thread reply that the whole channel should see too (Slack's
    /// `reply_broadcast`); ignored outside a thread.
    pub broadcast: bool,
    /// The user whose command this message answers. Discord shows it in
    /// place of that command's first answer while the interaction token
    /// lasts; Slack ignores it.
    pub answers: Option<String>,
}

impl Message {
    pub fn text(text: impl Into<Text>) -> Self {
        Self {
            text: text.into(),
            ..Default::default()
        }
    }

    pub fn field(mut self, label: impl Into<String>, value: impl Into<String>) -> Self {
        self.fields.push(Field {
            label: label.into(),
            value: value.into(),
        });
        self
    }

    /// The plain text used for notifications and screen readers.
    pub fn fallback(&self) -> String {
        let mut s = String::new();
        if let Some(t) = &self.title {
            s.push_str(t);
            s.push_str(": ");
        }
        s.push_str(&self.text.plain());
        s
    }
}

pub use crate::chart::Image;

/// Any file to attach (a post-mortem, an export).
#[derive(Debug, Clone)]
pub struct Attachment {
    pub filename: String,
    pub title: String,
    pub alt_text: String,
    pub content_type: &'static str,
    pub bytes: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChatError {
    #[error("{platform} refused {method}: {code}")]
    Api {
        platform: &'static str,
        method: String,
        code: String,
    },
    #[error("{platform} kept rate-limiting {method} after {attempts} attempts")]
    RateLimited {
        platform: &'static str,
        method: String,
        attempts: u32,
    },
    #[error("could not reach {platform} for {method}: {message}")]
    Transport {
        platform: &'static str,
        method: String,
        message: String,
    },
}

/// The deadline of one call to a chat platform's API (a 429's wait is
/// apart from it): a hung connection fails the call, and the work it was
/// part of is retried, rather than holding a sweep or a queue slot.
pub const CALL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);

#[async_trait]
pub trait Chat: Send + Sync + 'static {
    /// Posts to a channel, or as a reply in `thread` when given.
    async fn post(
        &self,
        channel: &str,
        thread: Option<&MessageRef>,
        message: &Message,
    ) -> Result<MessageRef, ChatError>;

    /// Replaces a message the bot posted.
    async fn update(&self, at: &MessageRef, message: &Message) -> Result<(), ChatError>;

    /// Attaches a file to a channel, or to a thread when given.
    async fn upload(
        &self,
        channel: &str,
        thread: Option<&MessageRef>,
        file: &Attachment,
    ) -> Result<(), ChatError>;

    /// Attaches a PNG to a channel, or to a thread when given.
    async fn upload_png(
        &self,
        channel: &str,
        thread: Option<&MessageRef>,
        image: &Image,
    ) -> Result<(), ChatError> {
        let file = Attachment {
            filename: image.filename.clone(),
            title: image.title.clone(),
            alt_text: image.alt_text.clone(),
            content_type: "image/png",
            bytes: image.png.clone(),
        };
        self.upload(channel, thread, &file).await
    }

    /// A message only `user` sees, in `channel`.
    async fn ephemeral(
        &self,
        channel: &str,
        user: &str,
        message: &Message,
    ) -> Result<(), ChatError>;

    /// Creates a channel and invites `members` (user ids); returns its id.
    async fn create_channel(&self, name: &str, members: &[String]) -> Result<String, ChatError>;

    /// The members of a user group (Slack `S…` ids, Discord role ids).
    async fn group_members(&self, group: &str) -> Result<Vec<String>, ChatError>;
}
