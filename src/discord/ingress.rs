//! Discord interactions: `POST /discord/interactions` (HTTP mode) and the
//! gateway (`discord_gateway.rs`) both end in [`DiscordIngress::handle`],
//! which answers within Discord's 3 seconds and hands slow work to the
//! engine.
//!
//! HTTP mode checks, before anything is parsed: the Ed25519 signature over
//! `X-Signature-Timestamp` followed by the raw body, against the
//! application's public key (ring, constant-time); and the timestamp's age,
//! at most five minutes either way (serenity's verifier does not check
//! that). Any failure is 401 and changes nothing: Discord itself sends bad
//! signatures now and then to check that the endpoint refuses them.
//!
//! Inside those five minutes a captured request would verify again, so the
//! id of every interaction the bot acts on (not PINGs, not types it
//! refuses) is remembered in the store until the window has closed
//! (`store/replays.rs`, shared by all replicas); a copy is refused with 400
//! "already handled" and reaches no engine. Discord never sends an
//! interaction twice, so only a replay is refused. When the store cannot
//! record the id the interaction is refused with 503, unrun.

use axum::Router;
use axum::routing::post;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use ring::signature::{ED25519, UnparsedPublicKey};
use serde::Deserialize;
use serde_json::{Value, json};
use serenity::model::id::GuildId;

use crate::chat::ButtonAction;
use crate::discord::render::{self, parse_custom_id};
use crate::discord::{DiscordChat, commands};
use crate::engine::{ButtonEvent, CommandRequest, Engine};
use crate::metrics::Outcome;
use crate::store::{SeenRequest, Sighting};

/// How far a request's timestamp may be from the bot's clock.
const MAX_AGE_SECS: i64 = 300;

/// Interaction types (Discord docs).
const PING: u8 = 1;
const APPLICATION_COMMAND: u8 = 2;
const MESSAGE_COMPONENT: u8 = 3;
const AUTOCOMPLETE: u8 = 4;

/// Why an interaction is refused: over HTTP its status, its one-line body
/// and its `outcome` label; nothing reaches the engine.
#[derive(Debug, thiserror::Error)]
pub enum Rejection {
    #[error("missing X-Signature-Ed25519 or X-Signature-Timestamp")]
    MissingHeaders,
    #[error("signature check failed")]
    BadSignature,
    #[error("timestamp is more than five minutes from now")]
    Stale,
    #[error("malformed interaction: {0}")]
    Malformed(String),
    #[error("unsupported interaction type {0}")]
    UnknownType(u8),
    #[error(
        "Discord HTTP interactions are off: set discord.mode = \"http\" and DISCORD_PUBLIC_KEY"
    )]
    Disabled,
    #[error("this interaction was already handled; a copy of it changes nothing")]
    Replayed,
    #[error("the bot cannot record this interaction right now; nothing was done, try again")]
    Unrecorded,
}

impl Rejection {
    fn status(&self) -> StatusCode {
        match self {
            Rejection::MissingHeaders | Rejection::BadSignature | Rejection::Stale => {
                StatusCode::UNAUTHORIZED
            }
            Rejection::Malformed(_) | Rejection::UnknownType(_) | Rejection::Replayed => {
                StatusCode::BAD_REQUEST
            }
            Rejection::Disabled => StatusCode::NOT_FOUND,
            Rejection::Unrecorded => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
    fn outcome(&self) -> &'static str {
        match self {
            Rejection::MissingHeaders => "missing_signature",
            Rejection::BadSignature => "bad_signature",
            Rejection::Stale => "stale",
            Rejection::Malformed(_) => "malformed",
            Rejection::UnknownType(_) => "unknown_type",
            Rejection::Disabled => "disabled",
            Rejection::Replayed => "replayed",
            Rejection::Unrecorded => "store_unavailable",
        }
    }
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        tracing::info!(route = ROUTE, reason = %self, "request refused");
        (
            self.status(),
            Extension(Outcome(self.outcome())),
            format!("{self}\n"),
        )
            .into_response()
    }
}

/// The application's Ed25519 public key.
#[derive(Clone)]
pub struct Verifier {
    key: [u8; 32],
}

#[derive(Debug, thiserror::Error)]
#[error("DISCORD_PUBLIC_KEY is not 64 hex characters (an Ed25519 public key)")]
pub struct BadKey;

impl Verifier {
    pub fn from_hex(hex_key: &str) -> Result<Self, BadKey> {
        let bytes = hex::decode(hex_key.trim()).map_err(|_| BadKey)?;
        let key: [u8; 32] = bytes.try_into().map_err(|_| BadKey)?;
        Ok(Self { key })
    }

    /// Checks the headers against `body`, with `now` in Unix seconds; the
    /// signed timestamp.
    pub fn verify(&self, headers: &HeaderMap, body: &[u8], now: i64) -> Result<i64, Rejection> {
        let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let (Some(signature), Some(timestamp)) =
            (get("x-signature-ed25519"), get("x-signature-timestamp"))
        else {
            return Err(Rejection::MissingHeaders);
        };
        let signature = hex::decode(signature).map_err(|_| Rejection::BadSignature)?;
        let mut signed = Vec::with_capacity(timestamp.len() + body.len());
        signed.extend_from_slice(timestamp.as_bytes());
        signed.extend_from_slice(body);
        UnparsedPublicKey::new(&ED25519, &self.key)
            .verify(&signed, &signature)
            .map_err(|_| Rejection::BadSignature)?;
        // Checked after the signature, so the answer says nothing about
        // timestamps to someone who cannot sign.
        let ts: i64 = timestamp.parse().map_err(|_| Rejection::Stale)?;
        if now.saturating_sub(ts).saturating_abs() > MAX_AGE_SECS {
            return Err(Rejection::Stale);
        }
        Ok(ts)
    }
}

/// What Discord sends, as far as the bot reads it.
#[derive(Debug, Deserialize)]
pub struct Interaction {
    #[serde(rename = "type")]
    pub kind: u8,
    pub id: String,
    pub token: String,
    /// The server it came from; `None` in a direct message.
    #[serde(default)]
    pub guild_id: Option<String>,
    #[serde(default)]
    pub channel_id: Option<String>,
    #[serde(default)]
    pub channel: Option<IdOnly>,
    #[serde(default)]
    pub member: Option<Member>,
    #[serde(default)]
    pub user: Option<IdOnly>,
    #[serde(default)]
    pub data: Value,
    #[serde(default)]
    pub message: Value,
}

impl Interaction {
    /// Who sent it (the member in a guild, the user in a DM) and in which
    /// channel.
    pub fn requester(&self) -> Result<(String, String), Rejection> {
        let user = match (&self.member, &self.user) {
            (Some(m), _) => m.user.id.clone(),
            (None, Some(u)) => u.id.clone(),
            (None, None) => return Err(Rejection::Malformed("no member or user".into())),
        };
        let channel = self
            .channel_id
            .clone()
            .or_else(|| self.channel.as_ref().map(|c| c.id.clone()))
            .ok_or_else(|| Rejection::Malformed("no channel_id".into()))?;
        Ok((user, channel))
    }
}

/// The interaction types the bot acts on (a PING only gets its PONG).
fn acted_on(kind: u8) -> bool {
    matches!(kind, APPLICATION_COMMAND | MESSAGE_COMPONENT | AUTOCOMPLETE)
}

#[derive(Debug, Deserialize)]
pub struct IdOnly {
    pub id: String,
}

#[derive(Debug, Deserialize)]
pub struct Member {
    pub user: IdOnly,
    #[serde(default)]
    pub roles: Vec<String>,
}

/// The answer to give Discord now, and a click for the engine afterwards.
pub struct Handled {
    pub response: Value,
    pub click: Option<ButtonEvent>,
}

pub struct DiscordIngress {
    pub chat: Arc<DiscordChat>,
    /// `None` in gateway mode: the HTTP route then refuses everything.
    pub verifier: Option<Verifier>,
    /// `discord.guild_id`: the one server the bot answers in. `None`
    /// (which `serve` does not allow) answers nowhere.
    pub guild: Option<GuildId>,
}

/// The answer to an interaction from outside the bot's server: a sentence
/// only the sender sees (an autocomplete gets no choices). Nothing else
/// happens: no engine call, no roles recorded.
fn elsewhere(ix: &Interaction) -> Handled {
    let response = if ix.kind == AUTOCOMPLETE {
        json!({"type": 8, "data": {"choices": []}})
    } else {
        let text = match ix.guild_id {
            None => {
                "🚫 scalebot does not answer in direct messages. Use `/scale` in your team's server."
            }
            Some(_) => "🚫 scalebot answers only in its own server. Nothing was done here.",
        };
        json!({"type": 4, "data": {"content": text, "flags": 64, "allowed_mentions": {"parse": []}}})
    };
    Handled {
        response,
        click: None,
    }
}

impl DiscordIngress {
    /// Answers one verified interaction; only parsing and the engine's
    /// accept (an audit enqueue) happen before the answer.
    pub async fn handle(
        &self,
        engine: &Arc<Engine>,
        ix: Interaction,
    ) -> Result<Handled, Rejection> {
        if ix.kind == PING {
            return Ok(Handled {
                response: json!({"type": 1}),
                click: None,
            });
        }
        if !acted_on(ix.kind) {
            return Err(Rejection::UnknownType(ix.kind));
        }
        let ours = self.guild.map(|g| g.to_string());
        if ix.guild_id.is_none() || ix.guild_id != ours {
            tracing::info!(
                guild = ix.guild_id.as_deref().unwrap_or("a direct message"),
                "interaction from outside the bot's server refused"
            );
            return Ok(elsewhere(&ix));
        }
        let (user, channel) = ix.requester()?;
        match ix.kind {
            AUTOCOMPLETE => {
                let typed = commands::focused(&ix.data).unwrap_or_default();
                let settings = engine.settings();
                let mut names: Vec<String> = settings
                    .runbook
                    .functions
                    .iter()
                    .chain(settings.functions.keys())
                    .map(ToString::to_string)
                    .collect();
                names.sort();
                names.dedup();
                Ok(Handled {
                    response: commands::choices(&names, &typed),
                    click: None,
                })
            }
            APPLICATION_COMMAND => {
                let Some(text) = commands::text_of(engine.catalog(), &ix.data) else {
                    return Err(Rejection::Malformed("not the /scale command".into()));
                };
                self.record_roles(&ix, &user);
                let ack = engine
                    .accept(CommandRequest {
                        via: "discord".into(),
                        user: user.clone(),
                        channel: channel.clone(),
                        text,
                        incident: None,
                    })
                    .await;
                let mut data = render::body(&ack.message);
                if ack.job {
                    // Public, so that the engine's result can replace it.
                    self.chat.command_answered(&channel, &user, &ix.token);
                } else {
                    data["flags"] = json!(64);
                }
                Ok(Handled {
                    response: json!({"type": 4, "data": data}),
                    click: None,
                })
            }
            _ => self.component(ix, user, channel),
        }
    }

    /// The member's current roles, for the engine's role checks; only
    /// from interactions that are acted on.
    fn record_roles(&self, ix: &Interaction, user: &str) {
        if let Some(m) = &ix.member {
            self.chat.member_roles(user, m.roles.clone());
        }
    }

    fn component(
        &self,
        ix: Interaction,
        user: String,
        channel: String,
    ) -> Result<Handled, Rejection> {
        let custom_id = ix.data["custom_id"]
            .as_str()
            .ok_or_else(|| Rejection::Malformed("no custom_id".into()))?;
        let (action, value, ask) = parse_custom_id(custom_id)
            .ok_or_else(|| Rejection::Malformed("a custom_id the bot did not make".into()))?;
        if action == "dismiss" {
            return Ok(Handled {
                response: json!({"type": 7, "data": {"content": "Not run.", "components": []}}),
                click: None,
            });
        }
        let action =
            ButtonAction::parse(action, value).map_err(|e| Rejection::Malformed(e.to_string()))?;
        if ask {
            // The second click Discord's missing confirm dialog stands for:
            // only the clicker sees it; its red button is the real one.
            let embed = &ix.message["embeds"][0];
            let title = embed["title"].as_str().unwrap_or("Run this?");
            let mut lines: Vec<String> = Vec::new();
            for f in embed["fields"].as_array().into_iter().flatten() {
                lines.push(format!(
                    "{}: {}",
                    f["name"].as_str().unwrap_or_default(),
                    f["value"].as_str().unwrap_or_default()
                ));
            }
            return Ok(Handled {
                response: json!({"type": 4, "data": render::second_click(&action, title, &lines.join("\n"))}),
                click: None,
            });
        }
        self.record_roles(&ix, &user);
        self.chat.clicked(&channel, &user, &ix.token);
        let ephemeral = ix.message["flags"].as_u64().is_some_and(|f| f & 64 != 0);
        let response = if ephemeral {
            // The second-click dialog: replaced, so it cannot run twice.
            json!({"type": 7, "data": {"content": "▶️ Sent.", "components": []}})
        } else {
            // The engine redraws the message itself.
            json!({"type": 6})
        };
        Ok(Handled {
            response,
            click: Some(ButtonEvent {
                via: "discord".into(),
                user,
                channel,
                action,
            }),
        })
    }
}

pub const ROUTE: &str = "/discord/interactions";

/// What the Discord route needs.
#[derive(Clone)]
pub struct DiscordState {
    pub engine: Arc<Engine>,
    /// `None` when the bot serves Slack, or Discord through the gateway:
    /// `/discord/interactions` then refuses everything.
    pub discord: Option<Arc<DiscordIngress>>,
}

pub fn router(state: DiscordState) -> Router {
    Router::new()
        .route(ROUTE, post(interactions))
        .with_state(state)
}

pub async fn interactions(
    State(state): State<DiscordState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, Rejection> {
    let ingress = state.discord.clone().ok_or(Rejection::Disabled)?;
    let verifier = ingress.verifier.as_ref().ok_or(Rejection::Disabled)?;
    let now = state.engine.now().timestamp();
    let signed_at = verifier.verify(&headers, &body, now)?;
    let ix: Interaction =
        serde_json::from_slice(&body).map_err(|e| Rejection::Malformed(e.to_string()))?;
    if acted_on(ix.kind) {
        let seen = SeenRequest::until(
            "discord",
            ix.id.clone(),
            signed_at.saturating_add(MAX_AGE_SECS),
        );
        match state.engine.store().first_sight(seen).await {
            Ok(Sighting::First) => {}
            Ok(Sighting::Repeat) => {
                tracing::warn!(id = %ix.id, "a replayed Discord interaction was refused");
                return Err(Rejection::Replayed);
            }
            Err(e) => {
                tracing::error!(error = %e, "a Discord interaction could not be recorded; refused");
                return Err(Rejection::Unrecorded);
            }
        }
    }
    let handled = ingress.handle(&state.engine, ix).await?;
    if let Some(click) = handled.click {
        let engine = state.engine.clone();
        state
            .engine
            .spawn(async move { engine.on_button(click).await });
    }
    Ok(Json(handled.response))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::signature::{Ed25519KeyPair, KeyPair};

    fn key() -> Ed25519KeyPair {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new())
            .unwrap_or_else(|_| panic!("pkcs8"));
        Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap_or_else(|_| panic!("key"))
    }

    fn headers(key: &Ed25519KeyPair, ts: &str, body: &[u8]) -> HeaderMap {
        let mut signed = ts.as_bytes().to_vec();
        signed.extend_from_slice(body);
        let mut h = HeaderMap::new();
        let sig = hex::encode(key.sign(&signed).as_ref());
        h.insert(
            "x-signature-ed25519",
            sig.parse().unwrap_or_else(|_| panic!("header")),
        );
        h.insert(
            "x-signature-timestamp",
            ts.parse().unwrap_or_else(|_| panic!("header")),
        );
        h
    }

    #[test]
    fn signature_then_age_is_checked() {
        let k = key();
        let v = Verifier::from_hex(&hex::encode(k.public_key().as_ref())).expect("key");
        let body = br#"{"type":1}"#;
        let now = 1_800_000_000;
        assert!(
            v.verify(&headers(&k, "1800000000", body), body, now)
                .is_ok()
        );
        assert!(
            v.verify(&headers(&k, "1800000000", body), body, now + 300)
                .is_ok()
        );
        assert!(matches!(
            v.verify(&headers(&k, "1800000000", body), body, now + 301),
            Err(Rejection::Stale)
        ));
        assert!(matches!(
            v.verify(&headers(&k, "1800000000", body), b"{\"type\":2}", now),
            Err(Rejection::BadSignature)
        ));
        // A signed timestamp that is not a number is refused too.
        assert!(matches!(
            v.verify(&headers(&k, "soon", body), body, now),
            Err(Rejection::Stale)
        ));
        assert!(matches!(
            v.verify(&HeaderMap::new(), body, now),
            Err(Rejection::MissingHeaders)
        ));
    }

    /// A signed timestamp at the ends of i64 once overflowed `now - ts`
    /// (a panic in debug builds); it is stale, like any far-off time.
    #[test]
    fn an_extreme_signed_timestamp_is_stale() {
        let k = key();
        let v = Verifier::from_hex(&hex::encode(k.public_key().as_ref())).expect("key");
        let body = br#"{"type":1}"#;
        for ts in [i64::MIN, i64::MAX] {
            let ts = ts.to_string();
            assert!(matches!(
                v.verify(&headers(&k, &ts, body), body, 1_800_000_000),
                Err(Rejection::Stale)
            ));
        }
    }

    #[test]
    fn a_public_key_must_be_32_bytes_of_hex() {
        assert!(Verifier::from_hex("zz").is_err());
        assert!(Verifier::from_hex(&"ab".repeat(31)).is_err());
        assert!(Verifier::from_hex(&"ab".repeat(32)).is_ok());
    }
}
