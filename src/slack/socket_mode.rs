//! Slack Socket Mode: the same engine fed over a WebSocket that the bot
//! opens, for workspaces where the bot has no public URL. slack-morphism's
//! listener connects, acks each envelope with our reply, and reconnects.

use std::sync::Arc;

use slack_morphism::errors::SlackClientError;
use slack_morphism::prelude::*;

use crate::chat::ButtonAction;
use crate::config::Secret;
use crate::engine::{ButtonEvent, CommandRequest, Engine, Visibility};
use crate::slack::chat::{Connector, content};

pub struct SocketMode {
    listener: SlackClientSocketModeListener<Connector>,
}

impl SocketMode {
    /// Opens the connection (`apps.connections.open`, then the WebSocket).
    pub async fn start(
        engine: Arc<Engine>,
        client: Arc<SlackClient<Connector>>,
        app_token: &Secret,
    ) -> Result<Self, SlackClientError> {
        let callbacks = SlackSocketModeListenerCallbacks::new()
            .with_command_events(on_command)
            .with_interaction_events(on_interaction);
        let environment = Arc::new(
            SlackClientEventsListenerEnvironment::new(client)
                .with_error_handler(on_error)
                .with_user_state(engine),
        );
        let listener = SlackClientSocketModeListener::new(
            &SlackClientSocketModeConfig::new(),
            environment,
            callbacks,
        );
        let token = SlackApiToken::new(app_token.expose().to_owned().into());
        listener.listen_for(&token).await?;
        listener.start().await;
        tracing::info!("Slack Socket Mode connected");
        Ok(Self { listener })
    }

    pub async fn shutdown(&self) {
        self.listener.shutdown().await;
    }
}

/// The engine travels as listener state: slack-morphism's callbacks are
/// plain function pointers.
async fn on_command(
    ev: SlackCommandEvent,
    _client: Arc<SlackHyperClient>,
    state: SlackClientEventsUserState,
) -> UserCallbackResult<SlackCommandEventResponse> {
    let engine = state
        .read()
        .await
        .get_user_state::<Arc<Engine>>()
        .cloned()
        .ok_or("Socket Mode listener has no engine")?;
    let ack = engine
        .accept(CommandRequest {
            via: "slack".into(),
            user: ev.user_id.to_string(),
            channel: ev.channel_id.to_string(),
            text: ev.text.unwrap_or_default(),
            incident: None,
        })
        .await;
    let response_type = match ack.visibility {
        Visibility::Ephemeral => SlackMessageResponseType::Ephemeral,
        Visibility::InChannel => SlackMessageResponseType::InChannel,
    };
    Ok(SlackCommandEventResponse::new(content(&ack.message)).with_response_type(response_type))
}

async fn on_interaction(
    ev: SlackInteractionEvent,
    _client: Arc<SlackHyperClient>,
    state: SlackClientEventsUserState,
) -> UserCallbackResult<SlackInteractionResponse> {
    let engine = state
        .read()
        .await
        .get_user_state::<Arc<Engine>>()
        .cloned()
        .ok_or("Socket Mode listener has no engine")?;
    if let SlackInteractionEvent::BlockActions(ev) = ev {
        let channel = ev
            .channel
            .as_ref()
            .map(|c| c.id.to_string())
            .unwrap_or_default();
        for action in ev.actions.unwrap_or_default() {
            let value = action.value.unwrap_or_default();
            let action = match ButtonAction::parse(action.action_id.as_ref(), &value) {
                Ok(a) => a,
                Err(e) => {
                    tracing::info!(error = %e, "click on a button the bot does not know");
                    continue;
                }
            };
            let event = ButtonEvent {
                via: "slack".into(),
                user: ev
                    .user
                    .as_ref()
                    .map(|u| u.id.to_string())
                    .unwrap_or_default(),
                channel: channel.clone(),
                action,
            };
            let e = engine.clone();
            engine.spawn(async move { e.on_button(event).await });
        }
    }
    Ok(SlackInteractionResponse::from(()))
}

fn on_error(
    err: Box<dyn std::error::Error + Send + Sync>,
    _client: Arc<SlackHyperClient>,
    _state: SlackClientEventsUserState,
) -> axum::http::StatusCode {
    tracing::warn!(error = %err, "Socket Mode event failed");
    axum::http::StatusCode::OK
}
