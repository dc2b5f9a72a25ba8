//! The `Chat` port on Discord: posts (a command's answer edited in place
//! while its token is fresh), thread replies, uploads, messages for one
//! person, channels and role members.

use async_trait::async_trait;
use serde_json::{Value, json};
use serenity::builder::CreateAttachment;
use serenity::model::id::{ChannelId, MessageId};

use super::client::snowflake;
use super::{DiscordChat, lock, render};
use crate::chat::{Attachment, Chat, ChatError, Message, MessageRef};

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
        addressed.text = crate::chat::Text::new()
            .user(user)
            .markup(" ")
            .append(message.text.clone());
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
