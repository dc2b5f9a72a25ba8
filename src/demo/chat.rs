//! The demo's web chat, a third [`Chat`] implementation: channels, threads,
//! messages and files kept in memory, every change pushed to the browsers
//! as an event (server-sent events, see `ingress/web.rs`). The page renders
//! the platform-neutral [`Message`] itself, so nothing here knows HTML.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use serde::Serialize;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::chat::{
    Attachment, Button, ButtonStyle, Chat, ChatError, Message, MessageRef, Syntax, Tone,
};

/// The author of everything the bot posts.
pub const BOT: &str = "scalebot";

/// Files kept in memory; older ones are dropped (their messages stay, the
/// image then fails to load), so a demo left running for days stays small.
const MAX_FILES: usize = 500;

#[derive(Debug, Clone, Serialize)]
pub struct WebButton {
    pub label: String,
    pub action_id: String,
    pub value: String,
    pub style: &'static str,
    pub confirm: Option<WebConfirm>,
}

#[derive(Debug, Clone, Serialize)]
pub struct WebConfirm {
    pub title: String,
    pub text: String,
    pub confirm: String,
    pub deny: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct WebField {
    pub label: String,
    pub value: String,
}

/// A [`Message`] as the page receives it.
#[derive(Debug, Clone, Serialize)]
pub struct WebBody {
    pub title: Option<String>,
    pub tone: &'static str,
    pub text: String,
    pub fields: Vec<WebField>,
    pub footer: Option<String>,
    pub buttons: Vec<WebButton>,
}

/// The page's markup (Slack-like: `*bold*`, `` `code` ``, `<@user>`,
/// `<#channel>`, `<url|label>`). Outside text has the characters the page
/// would read as markup replaced by look-alikes, so it shows as typed and
/// mentions nobody.
pub struct WebMarkup;

impl Syntax for WebMarkup {
    fn markup(&self, s: &str) -> String {
        s.to_owned()
    }
    fn verbatim(&self, s: &str) -> String {
        s.chars()
            .map(|c| match c {
                '<' => '‹',
                '>' => '›',
                '*' => '∗',
                '`' => 'ˋ',
                '_' => '＿',
                other => other,
            })
            .collect()
    }
    fn user(&self, id: &str) -> String {
        format!("<@{id}>")
    }
    fn group(&self, id: &str) -> String {
        format!("<@{}>", id.trim_start_matches('&'))
    }
    fn channel(&self, id: &str) -> String {
        format!("<#{id}>")
    }
    fn link(&self, url: &str, label: &str) -> String {
        format!("<{url}|{}>", self.verbatim(label))
    }
}

impl From<&Message> for WebBody {
    fn from(m: &Message) -> Self {
        let button = |b: &Button| WebButton {
            label: b.label.clone(),
            action_id: b.action.action_id().to_owned(),
            value: b.action.value(),
            style: match b.style {
                ButtonStyle::Default => "default",
                ButtonStyle::Primary => "primary",
                ButtonStyle::Danger => "danger",
            },
            confirm: b.confirm.as_ref().map(|c| WebConfirm {
                title: c.title.clone(),
                text: c.text.clone(),
                confirm: c.confirm.clone(),
                deny: c.deny.clone(),
            }),
        };
        Self {
            title: m.title.clone(),
            tone: match m.tone {
                Tone::Neutral => "neutral",
                Tone::Good => "good",
                Tone::Warning => "warning",
                Tone::Bad => "bad",
            },
            text: m.text.render(&WebMarkup),
            fields: m
                .fields
                .iter()
                .map(|f| WebField {
                    label: f.label.clone(),
                    value: f.value.clone(),
                })
                .collect(),
            footer: m.footer.as_ref().map(|f| f.render(&WebMarkup)),
            buttons: m.buttons.iter().map(button).collect(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct WebFile {
    pub url: String,
    pub filename: String,
    pub title: String,
    pub alt_text: String,
    pub content_type: String,
    pub image: bool,
}

/// One entry of a channel: a message or a file, maybe in a thread, maybe
/// visible to one user only.
#[derive(Debug, Clone, Serialize)]
pub struct WebMessage {
    pub id: String,
    pub channel: String,
    /// The root message's id when this is a reply.
    pub thread: Option<String>,
    pub author: String,
    /// Set on ephemeral messages: only this user sees them.
    pub to: Option<String>,
    pub at_ms: i64,
    /// What the user typed, on the echo of a command.
    pub command: Option<String>,
    pub body: Option<WebBody>,
    pub file: Option<WebFile>,
    pub edited: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct WebChannel {
    pub id: String,
    pub name: String,
    pub members: Vec<String>,
}

/// What the browsers are told.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum WebEvent {
    Message { message: WebMessage },
    Update { message: WebMessage },
    Channel { channel: WebChannel },
}

impl WebEvent {
    /// Whether `user` may see this event.
    pub fn visible_to(&self, user: &str) -> bool {
        match self {
            WebEvent::Message { message } | WebEvent::Update { message } => {
                message.to.as_deref().is_none_or(|to| to == user)
            }
            WebEvent::Channel { .. } => true,
        }
    }
}

#[derive(Default)]
struct State {
    channels: BTreeMap<String, WebChannel>,
    messages: Vec<WebMessage>,
    files: HashMap<String, (String, Arc<Vec<u8>>)>,
    /// File ids, oldest first.
    file_order: VecDeque<String>,
    next: u64,
}

impl State {
    fn next_id(&mut self, prefix: &str) -> String {
        self.next += 1;
        format!("{prefix}{}", self.next)
    }
}

pub struct WebChat {
    state: Mutex<State>,
    events: broadcast::Sender<WebEvent>,
    /// Cancelled at shutdown so that open event streams end.
    closing: CancellationToken,
    clock: Arc<dyn crate::clock::Clock>,
}

impl WebChat {
    pub fn new(channels: &[&str], clock: Arc<dyn crate::clock::Clock>) -> Self {
        let (events, _) = broadcast::channel(1024);
        let mut state = State::default();
        for name in channels {
            state.channels.insert(
                (*name).to_owned(),
                WebChannel {
                    id: (*name).to_owned(),
                    name: (*name).to_owned(),
                    members: Vec::new(),
                },
            );
        }
        Self {
            state: Mutex::new(state),
            events,
            closing: CancellationToken::new(),
            clock,
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn emit(&self, event: WebEvent) {
        // No browser listening is not an error.
        let _ = self.events.send(event);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<WebEvent> {
        self.events.subscribe()
    }

    pub fn closing(&self) -> CancellationToken {
        self.closing.clone()
    }

    /// Ends every event stream (graceful shutdown waits for them).
    pub fn close(&self) {
        self.closing.cancel();
    }

    pub fn channels(&self) -> Vec<WebChannel> {
        self.state().channels.values().cloned().collect()
    }

    pub fn has_channel(&self, id: &str) -> bool {
        self.state().channels.contains_key(id)
    }

    /// Every message `user` may see, oldest first.
    pub fn history(&self, user: &str) -> Vec<WebMessage> {
        self.state()
            .messages
            .iter()
            .filter(|m| m.to.as_deref().is_none_or(|to| to == user))
            .cloned()
            .collect()
    }

    pub fn file(&self, id: &str) -> Option<(String, Arc<Vec<u8>>)> {
        self.state().files.get(id).cloned()
    }

    /// Adds a message and tells the browsers.
    fn push(&self, build: impl FnOnce(String, i64) -> WebMessage) -> WebMessage {
        let at_ms = self.clock.now().timestamp_millis();
        let message = {
            let mut s = self.state();
            let id = s.next_id("m");
            let message = build(id, at_ms);
            s.messages.push(message.clone());
            message
        };
        self.emit(WebEvent::Message {
            message: message.clone(),
        });
        message
    }

    /// What the person typed and the bot's immediate answer, shown to
    /// them alone (as Slack shows a slash command's ephemeral ack).
    pub fn record_ack(&self, channel: &str, user: &str, typed: &str, ack: &Message) {
        self.push(|id, at_ms| WebMessage {
            id,
            channel: channel.to_owned(),
            thread: None,
            author: BOT.into(),
            to: Some(user.to_owned()),
            at_ms,
            command: Some(typed.to_owned()),
            body: Some(ack.into()),
            file: None,
            edited: false,
        });
    }

    fn unknown_channel(method: &str, channel: &str) -> ChatError {
        ChatError::Api {
            platform: "web chat",
            method: method.to_owned(),
            code: format!("channel_not_found ({channel})"),
        }
    }
}

#[async_trait]
impl Chat for WebChat {
    async fn post(
        &self,
        channel: &str,
        thread: Option<&MessageRef>,
        message: &Message,
    ) -> Result<MessageRef, ChatError> {
        if !self.has_channel(channel) {
            return Err(Self::unknown_channel("post", channel));
        }
        let posted = self.push(|id, at_ms| WebMessage {
            id,
            channel: channel.to_owned(),
            thread: thread.map(|t| t.id.clone()),
            author: BOT.into(),
            to: None,
            at_ms,
            command: None,
            body: Some(message.into()),
            file: None,
            edited: false,
        });
        Ok(MessageRef {
            channel: channel.to_owned(),
            id: posted.id,
        })
    }

    async fn update(&self, at: &MessageRef, message: &Message) -> Result<(), ChatError> {
        let updated = {
            let mut s = self.state();
            let found = s
                .messages
                .iter_mut()
                .find(|m| m.id == at.id && m.channel == at.channel);
            match found {
                Some(m) => {
                    m.body = Some(message.into());
                    m.edited = true;
                    m.clone()
                }
                None => {
                    return Err(ChatError::Api {
                        platform: "web chat",
                        method: "update".into(),
                        code: format!("message_not_found ({})", at.id),
                    });
                }
            }
        };
        self.emit(WebEvent::Update { message: updated });
        Ok(())
    }

    async fn upload(
        &self,
        channel: &str,
        thread: Option<&MessageRef>,
        file: &Attachment,
    ) -> Result<(), ChatError> {
        if !self.has_channel(channel) {
            return Err(Self::unknown_channel("upload", channel));
        }
        let file_id = {
            let mut s = self.state();
            let id = s.next_id("f");
            s.files.insert(
                id.clone(),
                (file.content_type.to_owned(), Arc::new(file.bytes.clone())),
            );
            s.file_order.push_back(id.clone());
            while s.file_order.len() > MAX_FILES {
                if let Some(old) = s.file_order.pop_front() {
                    s.files.remove(&old);
                }
            }
            id
        };
        self.push(|id, at_ms| WebMessage {
            id,
            channel: channel.to_owned(),
            thread: thread.map(|t| t.id.clone()),
            author: BOT.into(),
            to: None,
            at_ms,
            command: None,
            body: None,
            file: Some(WebFile {
                url: format!("/web/files/{file_id}"),
                filename: file.filename.clone(),
                title: file.title.clone(),
                alt_text: file.alt_text.clone(),
                content_type: file.content_type.to_owned(),
                image: file.content_type.starts_with("image/"),
            }),
            edited: false,
        });
        Ok(())
    }

    async fn ephemeral(
        &self,
        channel: &str,
        user: &str,
        message: &Message,
    ) -> Result<(), ChatError> {
        if !self.has_channel(channel) {
            return Err(Self::unknown_channel("ephemeral", channel));
        }
        self.push(|id, at_ms| WebMessage {
            id,
            channel: channel.to_owned(),
            thread: None,
            author: BOT.into(),
            to: Some(user.to_owned()),
            at_ms,
            command: None,
            body: Some(message.into()),
            file: None,
            edited: false,
        });
        Ok(())
    }

    async fn create_channel(&self, name: &str, members: &[String]) -> Result<String, ChatError> {
        let channel = WebChannel {
            id: name.to_owned(),
            name: name.to_owned(),
            members: members.to_vec(),
        };
        self.state()
            .channels
            .insert(name.to_owned(), channel.clone());
        self.emit(WebEvent::Channel { channel });
        Ok(name.to_owned())
    }

    /// The web chat has no user groups: roles list user names directly.
    async fn group_members(&self, _group: &str) -> Result<Vec<String>, ChatError> {
        Ok(Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SystemClock;

    fn chat() -> WebChat {
        WebChat::new(&["ops", "incidents"], Arc::new(SystemClock))
    }

    #[tokio::test]
    async fn replies_thread_under_their_root_and_updates_reach_subscribers() {
        let chat = chat();
        let mut events = chat.subscribe();
        let root = chat
            .post("incidents", None, &Message::text("root"))
            .await
            .expect("posted");
        chat.post("incidents", Some(&root), &Message::text("reply"))
            .await
            .expect("reply");
        chat.update(&root, &Message::text("root, edited"))
            .await
            .expect("updated");
        let history = chat.history("alice");
        assert_eq!(history.len(), 2);
        assert_eq!(history[1].thread.as_deref(), Some(root.id.as_str()));
        assert!(history[0].edited);
        let kinds: Vec<&str> = (0..3)
            .map(|_| match events.try_recv().expect("event") {
                WebEvent::Message { .. } => "message",
                WebEvent::Update { .. } => "update",
                WebEvent::Channel { .. } => "channel",
            })
            .collect();
        assert_eq!(kinds, ["message", "message", "update"]);
    }

    #[tokio::test]
    async fn ephemerals_are_seen_by_their_user_only_and_unknown_channels_fail() {
        let chat = chat();
        chat.ephemeral("ops", "bob", &Message::text("psst"))
            .await
            .expect("sent");
        assert_eq!(chat.history("bob").len(), 1);
        assert!(chat.history("alice").is_empty());
        assert!(
            chat.post("nowhere", None, &Message::text("x"))
                .await
                .is_err()
        );
        let id = chat
            .create_channel("inc-1", &["alice".into()])
            .await
            .expect("created");
        assert!(chat.has_channel(&id));
    }

    #[tokio::test]
    async fn old_files_are_dropped_beyond_the_cap() {
        let chat = chat();
        let file = Attachment {
            filename: "a.png".into(),
            title: "a".into(),
            alt_text: "a".into(),
            content_type: "image/png",
            bytes: vec![1, 2, 3],
        };
        for _ in 0..=MAX_FILES {
            chat.upload("ops", None, &file).await.expect("uploaded");
        }
        let urls: Vec<String> = chat
            .history("alice")
            .iter()
            .filter_map(|m| m.file.as_ref().map(|f| f.url.clone()))
            .collect();
        let id = |url: &str| url.trim_start_matches("/web/files/").to_owned();
        assert!(chat.file(&id(&urls[0])).is_none(), "the oldest is gone");
        assert!(chat.file(&id(&urls[MAX_FILES])).is_some());
    }
}
