//! Discord over the gateway: serenity's client keeps the WebSocket that
//! Discord delivers interactions on when no Interactions Endpoint URL is
//! set, so the bot needs no public URL. Each interaction goes through the
//! same [`DiscordIngress::handle`] as the HTTP route; the answer goes back
//! over REST (`POST /interactions/{id}/{token}/callback`) before any click
//! is handed to the engine.

use std::sync::Arc;

use serenity::all::{Context, EventHandler, GatewayIntents, Interaction, Ready};
use serenity::client::{Client, ClientBuilder};
use serenity::gateway::ShardManager;
use serenity::http::Http;
use serenity::model::id::InteractionId;

use super::ingress::{DiscordIngress, Interaction as Wire};
use crate::engine::Engine;

struct Handler {
    engine: Arc<Engine>,
    ingress: Arc<DiscordIngress>,
}

/// The interaction in Discord's wire format, which `handle` reads.
fn to_wire(interaction: &Interaction) -> Option<Wire> {
    let kind = match interaction {
        Interaction::Ping(_) => 1,
        Interaction::Command(_) => 2,
        Interaction::Component(_) => 3,
        Interaction::Autocomplete(_) => 4,
        Interaction::Modal(_) => 5,
        _ => 0,
    };
    let mut value = serde_json::to_value(interaction).ok()?;
    value["type"] = serde_json::json!(kind);
    serde_json::from_value(value).ok()
}

#[serenity::async_trait]
impl EventHandler for Handler {
    async fn ready(&self, _ctx: Context, ready: Ready) {
        tracing::info!(user = %ready.user.name, "Discord gateway ready");
    }

    async fn interaction_create(&self, ctx: Context, interaction: Interaction) {
        let Some(wire) = to_wire(&interaction) else {
            tracing::warn!("gateway interaction not understood; ignored");
            return;
        };
        let (id, token) = (wire.id.clone(), wire.token.clone());
        let handled = match self.ingress.handle(&self.engine, wire).await {
            Ok(h) => h,
            Err(e) => {
                tracing::info!(reason = %e, "gateway interaction refused");
                return;
            }
        };
        let Ok(id) = id.parse::<u64>() else { return };
        if let Err(e) = ctx
            .http
            .create_interaction_response(
                InteractionId::new(id),
                &token,
                &handled.response,
                Vec::new(),
            )
            .await
        {
            tracing::warn!(error = %e, "interaction answer not sent");
        }
        if let Some(click) = handled.click {
            let engine = self.engine.clone();
            self.engine
                .spawn(async move { engine.on_button(click).await });
        }
    }
}

pub struct Gateway {
    shards: Arc<ShardManager>,
}

impl Gateway {
    /// Connects with the intents interactions need: none beyond GUILDS
    /// (INTERACTION_CREATE is sent whatever the intents).
    pub async fn start(
        engine: Arc<Engine>,
        ingress: Arc<DiscordIngress>,
        // A client of its own, built like the chat adapter's (same token,
        // base URL and application id).
        http: Http,
    ) -> Result<Self, serenity::Error> {
        let mut client: Client = ClientBuilder::new_with_http(http, GatewayIntents::GUILDS)
            .event_handler(Handler { engine, ingress })
            .await?;
        let shards = client.shard_manager.clone();
        tokio::spawn(async move {
            if let Err(e) = client.start().await {
                tracing::error!(error = %e, "Discord gateway stopped");
            }
        });
        Ok(Self { shards })
    }

    pub async fn shutdown(&self) {
        self.shards.shutdown_all().await;
    }
}
