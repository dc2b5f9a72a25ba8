//! Discord over the gateway: serenity's client keeps the WebSocket that
//! Discord delivers interactions on when no Interactions Endpoint URL is
//! set, so the bot needs no public URL. Each interaction goes through the
//! same [`DiscordIngress::handle`] as the HTTP route; the answer goes back
//! over REST (`POST /interactions/{id}/{token}/callback`) before any click
//! is handed to the engine.

use std::sync::Arc;
use std::time::Duration;

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

/// The store lease that makes one replica the gateway holder: Discord
/// would send every interaction to each session that identifies with the
/// same token and shard, so several replicas must not all connect.
pub const LEASE: &str = "discord-gateway";
const LEASE_FOR: Duration = Duration::from_secs(6);
const RENEW_EVERY: Duration = Duration::from_secs(2);

/// Builds a fresh REST client each time this replica takes the lease.
pub type MakeHttp = Box<dyn Fn() -> Result<Http, String> + Send + Sync>;

/// The gateway on whichever replica holds [`LEASE`]: this replica tries to
/// take it every [`RENEW_EVERY`], connects when it has it, and disconnects
/// when it loses it; when the holder dies its lease runs out within
/// [`LEASE_FOR`] and another replica connects.
pub struct LeasedGateway {
    stop: tokio_util::sync::CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl LeasedGateway {
    pub fn spawn(engine: Arc<Engine>, ingress: Arc<DiscordIngress>, http: MakeHttp) -> Self {
        let stop = tokio_util::sync::CancellationToken::new();
        let task = tokio::spawn(hold(engine, ingress, http, stop.clone()));
        Self { stop, task }
    }

    /// Disconnects and gives the lease up, so that another replica need
    /// not wait for it to run out.
    pub async fn shutdown(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}

async fn hold(
    engine: Arc<Engine>,
    ingress: Arc<DiscordIngress>,
    http: MakeHttp,
    stop: tokio_util::sync::CancellationToken,
) {
    let holder = engine.replica().to_owned();
    let mut connected: Option<Gateway> = None;
    loop {
        let now = crate::store::now_ms();
        let held = match engine
            .store()
            .hold_lease(LEASE, &holder, now, now + LEASE_FOR.as_millis() as i64)
            .await
        {
            Ok(held) => held,
            Err(e) => {
                // Unsure whether the lease still holds: another replica may
                // take it, so this one lets go rather than answer twice.
                tracing::warn!(error = %e, "gateway lease not renewed");
                false
            }
        };
        connected = match (held, connected) {
            (true, None) => connect(&engine, &ingress, &http).await,
            (false, Some(gateway)) => {
                tracing::info!("gateway lease lost: disconnecting");
                gateway.shutdown().await;
                None
            }
            (_, same) => same,
        };
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tokio::time::sleep(RENEW_EVERY) => {}
        }
    }
    if let Some(gateway) = connected {
        gateway.shutdown().await;
        if let Err(e) = engine.store().release_lease(LEASE, &holder).await {
            tracing::warn!(error = %e, "gateway lease not released");
        }
    }
}

async fn connect(
    engine: &Arc<Engine>,
    ingress: &Arc<DiscordIngress>,
    http: &MakeHttp,
) -> Option<Gateway> {
    let client = match http() {
        Ok(client) => client,
        Err(e) => {
            tracing::error!(error = %e, "Discord client not built");
            return None;
        }
    };
    match Gateway::start(engine.clone(), ingress.clone(), client).await {
        Ok(gateway) => {
            tracing::info!(replica = engine.replica(), "gateway lease held: connected");
            Some(gateway)
        }
        Err(e) => {
            tracing::error!(error = %e, "Discord gateway did not start");
            None
        }
    }
}
