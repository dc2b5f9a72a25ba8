//! The Slack adapter: Block Kit rendering and the Web API through
//! slack-morphism, with 429s retried after Slack's `Retry-After`.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use slack_morphism::errors::SlackClientError;
use slack_morphism::prelude::*;

use crate::chat::pace::Pacer;
use crate::chat::{Attachment, ButtonStyle, Chat, ChatError, Message, MessageRef, Syntax};
use crate::config::Secret;
use crate::metrics::Metrics;
use crate::slack::settings::SlackSettings;

pub type Connector = SlackClientHyperHttpsConnector;

pub struct SlackChat {
    client: Arc<SlackClient<Connector>>,
    token: SlackApiToken,
    max_retries: u32,
    max_retry_after: Duration,
    metrics: Arc<Metrics>,
    pacer: Pacer,
}

/// A client for `api_url`, plain `http://` included so that the bot can run
/// against a local Slack-compatible server.
pub fn client(api_url: &str) -> Result<Arc<SlackClient<Connector>>, std::io::Error> {
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_native_roots()?
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .build();
    let base = api_url.trim_end_matches('/');
    let connector = SlackClientHyperConnector::with_connector(https).with_slack_api_url(base);
    Ok(Arc::new(SlackClient::new(connector)))
}

impl SlackChat {
    pub fn new(
        settings: &SlackSettings,
        bot_token: &Secret,
        metrics: Arc<Metrics>,
    ) -> Result<Self, std::io::Error> {
        Ok(Self {
            client: client(settings.api_url.as_str())?,
            token: SlackApiToken::new(bot_token.expose().to_owned().into()),
            max_retries: settings.max_rate_limit_retries,
            max_retry_after: settings.max_retry_after,
            metrics,
            pacer: Pacer::new(settings.post_interval, settings.post_burst),
        })
    }

    pub fn client(&self) -> Arc<SlackClient<Connector>> {
        self.client.clone()
    }

    /// Runs one Web API call, waiting out 429s as Slack asks.
    async fn call<T, F, Fut>(&self, method: &str, mut f: F) -> Result<T, ChatError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = ClientResult<T>>,
    {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let Ok(answer) = tokio::time::timeout(crate::chat::CALL_TIMEOUT, f()).await else {
                self.metrics.chat_call(method, "timeout");
                return Err(ChatError::Transport {
                    platform: "Slack",
                    method: method.into(),
                    message: format!("no answer within {} s", crate::chat::CALL_TIMEOUT.as_secs()),
                });
            };
            match answer {
                Ok(v) => {
                    self.metrics.chat_call(method, "ok");
                    return Ok(v);
                }
                Err(SlackClientError::RateLimitError(e)) => {
                    self.metrics.chat_call(method, "rate_limited");
                    self.metrics.chat_rate_limited(method);
                    let wait = e.retry_after.unwrap_or(Duration::from_secs(1));
                    if attempt > self.max_retries || wait > self.max_retry_after {
                        tracing::warn!(method, attempt, "Slack rate limit: giving up");
                        return Err(ChatError::RateLimited {
                            platform: "Slack",
                            method: method.into(),
                            attempts: attempt,
                        });
                    }
                    tracing::info!(
                        method,
                        attempt,
                        wait_ms = wait.as_millis() as u64,
                        "Slack rate limit: waiting as asked"
                    );
                    tokio::time::sleep(wait).await;
                }
                Err(SlackClientError::ApiError(e)) => {
                    self.metrics.chat_call(method, "api_error");
                    return Err(ChatError::Api {
                        platform: "Slack",
                        method: method.into(),
                        code: e.code,
                    });
                }
                Err(e) => {
                    self.metrics.chat_call(method, "transport_error");
                    // Not retried: Slack may have acted on a request whose
                    // answer was lost, and a post must not appear twice.
                    return Err(ChatError::Transport {
                        platform: "Slack",
                        method: method.into(),
                        message: short_error(&e),
                    });
                }
            }
        }
    }
}

/// A one-line reason without response bodies, which may echo tokens.
fn short_error(e: &SlackClientError) -> String {
    match e {
        SlackClientError::HttpError(h) => format!("HTTP {}", h.status_code),
        SlackClientError::ProtocolError(_) => "an answer that is not Slack's JSON".into(),
        SlackClientError::EndOfStream(_) => "the connection closed early".into(),
        SlackClientError::HttpProtocolError(_) => "an HTTP protocol error".into(),
        _ => "a client error".into(),
    }
}

/// Slack's limits: header 150 chars, section text 3000, field 2000.
fn clip(s: &str, max: usize) -> String {
    crate::domain::truncate(s, max.saturating_sub(1))
}

/// The notification text. Slack reads it as mrkdwn too, so outside text in
/// it is escaped like in the blocks: `<!channel>` in a note stays words.
pub fn fallback(message: &Message) -> String {
    let text = message.text.render(&Mrkdwn);
    match &message.title {
        Some(t) => format!("{}: {text}", Mrkdwn.verbatim(t)),
        None => text,
    }
}

/// Slack's mrkdwn for the neutral text spans. Outside text is escaped as
/// Slack asks (`&`, `<`, `>`), which also keeps `<!channel>`, `<!here>`
/// and `<@U…>` in it from becoming mentions.
pub struct Mrkdwn;

impl Syntax for Mrkdwn {
    fn markup(&self, s: &str) -> String {
        s.to_owned()
    }
    fn verbatim(&self, s: &str) -> String {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    }
    fn user(&self, id: &str) -> String {
        format!("<@{id}>")
    }
    fn group(&self, id: &str) -> String {
        match id.strip_prefix('&') {
            // A Discord role in a Slack workspace names nobody.
            Some(role) => format!("@{}", self.verbatim(role)),
            None => format!("<!subteam^{id}>"),
        }
    }
    fn channel(&self, id: &str) -> String {
        format!("<#{id}>")
    }
    fn link(&self, url: &str, label: &str) -> String {
        format!("<{}|{}>", url.replace('|', "%7C"), self.verbatim(label))
    }
}

/// Block Kit for a message.
pub fn blocks(message: &Message) -> Vec<SlackBlock> {
    let mut blocks: Vec<SlackBlock> = Vec::new();
    if let Some(title) = &message.title {
        blocks.push(
            SlackHeaderBlock::new(pt!(clip(
                &format!("{} {}", message.tone.emoji(), title),
                150
            )))
            .into(),
        );
    }
    if !message.text.is_empty() {
        blocks.push(
            SlackSectionBlock::new()
                .with_text(md!(clip(&message.text.render(&Mrkdwn), 3000)))
                .into(),
        );
    }
    for chunk in message.fields.chunks(10) {
        let fields = chunk
            .iter()
            .map(|f| md!(clip(&format!("*{}*\n{}", f.label, f.value), 2000)))
            .collect();
        blocks.push(SlackSectionBlock::new().with_fields(fields).into());
    }
    if !message.buttons.is_empty() {
        let elements = message
            .buttons
            .iter()
            .take(25)
            .map(|b| {
                let mut el = SlackBlockButtonElement::new(pt!(clip(&b.label, 75)))
                    .with_action_id(b.action.action_id().into())
                    .with_value(b.action.value());
                match b.style {
                    ButtonStyle::Primary => el = el.with_style(SlackBlockButtonStyle::Primary),
                    ButtonStyle::Danger => el = el.with_style(SlackBlockButtonStyle::Danger),
                    ButtonStyle::Default => {}
                }
                if let Some(c) = &b.confirm {
                    let mut item = SlackBlockConfirmItem::new(
                        pt!(clip(&c.title, 100)),
                        md!(clip(&c.text, 300)),
                        pt!(clip(&c.confirm, 30)),
                        pt!(clip(&c.deny, 30)),
                    );
                    if b.style == ButtonStyle::Danger {
                        item = item.with_style("danger".into());
                    }
                    el = el.with_confirm(item);
                }
                el.into()
            })
            .collect();
        blocks.push(SlackActionsBlock::new(elements).into());
    }
    if let Some(footer) = &message.footer {
        blocks.push(
            SlackContextBlock::new(vec![SlackContextBlockElement::MarkDown(
                SlackBlockMarkDownText::new(clip(&footer.render(&Mrkdwn), 2000)),
            )])
            .into(),
        );
    }
    blocks
}

pub fn content(message: &Message) -> SlackMessageContent {
    SlackMessageContent::new()
        .with_text(clip(&fallback(message), 3000))
        .with_blocks(blocks(message))
}

#[async_trait]
impl Chat for SlackChat {
    async fn post(
        &self,
        channel: &str,
        thread: Option<&MessageRef>,
        message: &Message,
    ) -> Result<MessageRef, ChatError> {
        let mut req =
            SlackApiChatPostMessageRequest::new(channel.to_owned().into(), content(message));
        if let Some(t) = thread {
            req = req.with_thread_ts(t.id.clone().into());
            if message.broadcast {
                req = req.with_reply_broadcast(true);
            }
        }
        self.pacer.wait(channel).await;
        let resp = self
            .call("chat.postMessage", || {
                let session = self.client.open_session(&self.token);
                let req = req.clone();
                async move { session.chat_post_message(&req).await }
            })
            .await?;
        Ok(MessageRef {
            channel: resp.channel.to_string(),
            id: resp.ts.to_string(),
        })
    }

    async fn update(&self, at: &MessageRef, message: &Message) -> Result<(), ChatError> {
        let req = SlackApiChatUpdateRequest::new(
            at.channel.clone().into(),
            content(message),
            at.id.clone().into(),
        );
        self.call("chat.update", || {
            let session = self.client.open_session(&self.token);
            let req = req.clone();
            async move { session.chat_update(&req).await }
        })
        .await?;
        Ok(())
    }

    async fn upload(
        &self,
        channel: &str,
        thread: Option<&MessageRef>,
        image: &Attachment,
    ) -> Result<(), ChatError> {
        // files.upload is retired; the three-step upload replaces it.
        let get = SlackApiFilesGetUploadUrlExternalRequest::new(
            image.filename.clone(),
            image.bytes.len(),
        )
        .with_alt_txt(clip(&image.alt_text, 1000));
        let target = self
            .call("files.getUploadURLExternal", || {
                let session = self.client.open_session(&self.token);
                let get = get.clone();
                async move { session.get_upload_url_external(&get).await }
            })
            .await?;
        let put = SlackApiFilesUploadViaUrlRequest::new(
            target.upload_url.clone(),
            image.bytes.clone(),
            image.content_type.into(),
        );
        self.call("files.upload_via_url", || {
            let session = self.client.open_session(&self.token);
            let put = put.clone();
            async move { session.files_upload_via_url(&put).await }
        })
        .await?;
        let mut complete = SlackApiFilesCompleteUploadExternalRequest::new(vec![
            SlackApiFilesComplete::new(target.file_id.clone()).with_title(image.title.clone()),
        ])
        .with_channel_id(channel.to_owned().into());
        if let Some(t) = thread {
            complete = complete.with_thread_ts(t.id.clone().into());
        }
        // Sharing the file posts a message in the channel: paced like one.
        self.pacer.wait(channel).await;
        self.call("files.completeUploadExternal", || {
            let session = self.client.open_session(&self.token);
            let complete = complete.clone();
            async move { session.files_complete_upload_external(&complete).await }
        })
        .await?;
        Ok(())
    }

    async fn ephemeral(
        &self,
        channel: &str,
        user: &str,
        message: &Message,
    ) -> Result<(), ChatError> {
        let req = SlackApiChatPostEphemeralRequest::new(
            channel.to_owned().into(),
            user.to_owned().into(),
            content(message),
        );
        self.call("chat.postEphemeral", || {
            let session = self.client.open_session(&self.token);
            let req = req.clone();
            async move { session.chat_post_ephemeral(&req).await }
        })
        .await?;
        Ok(())
    }

    async fn group_members(&self, group: &str) -> Result<Vec<String>, ChatError> {
        let req = SlackApiUserGroupsUsersListRequest::new(group.to_owned().into());
        let resp = self
            .call("usergroups.users.list", || {
                let session = self.client.open_session(&self.token);
                let req = req.clone();
                async move { session.usergroups_users_list(&req).await }
            })
            .await?;
        Ok(resp.users.iter().map(|u| u.to_string()).collect())
    }

    async fn create_channel(&self, name: &str, members: &[String]) -> Result<String, ChatError> {
        let req = SlackApiConversationsCreateRequest::new(name.to_owned());
        let created = self
            .call("conversations.create", || {
                let session = self.client.open_session(&self.token);
                let req = req.clone();
                async move { session.conversations_create(&req).await }
            })
            .await?;
        let channel = created.channel.id.to_string();
        if !members.is_empty() {
            let invite = SlackApiConversationsInviteRequest::new(
                channel.clone().into(),
                members.iter().map(|m| m.clone().into()).collect(),
            );
            self.call("conversations.invite", || {
                let session = self.client.open_session(&self.token);
                let invite = invite.clone();
                async move { session.conversations_invite(&invite).await }
            })
            .await?;
        }
        Ok(channel)
    }
}
