//! `POST /slack/commands` and `POST /slack/interactions`.
//!
//! The signature is checked on the raw body before anything is parsed
//! (HMAC-SHA256 over `v0:{timestamp}:{body}`, constant-time, 5-minute
//! window, by slack-morphism's verifier). A request that fails gets 401 and
//! changes nothing.
//!
//! Slack requests carry no nonce, so a verified request is then remembered
//! in the store (its timestamp and signature, until the window closes; see
//! `store/replays.rs`), and a copy sent again changes nothing: a replayed
//! slash command is answered 200 with an ephemeral "already handled" (what
//! the person who typed it sees, should a copy ever come from Slack itself,
//! is a sentence rather than an error) and is not audited or run; a
//! replayed click gets the empty 200 and reaches no engine. Both count as
//! `outcome="replayed"`. Slack does not retry slash commands or clicks,
//! and this bot subscribes to no Events API events (whose retries would
//! carry `X-Slack-Retry-Num`), so no copy is ever legitimate. When the
//! store cannot record the request it is refused with 503, unrun.

use crate::engine::Engine;
use axum::Router;
use axum::routing::post;
use slack_morphism::signature_verifier::SlackEventSignatureVerifier;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;

use crate::chat::ButtonAction;
use crate::engine::{Ack, ButtonEvent, CommandRequest, Visibility};
use crate::metrics::Outcome;
use crate::store::{SeenRequest, Sighting};

pub const COMMANDS_ROUTE: &str = "/slack/commands";
pub const INTERACTIONS_ROUTE: &str = "/slack/interactions";

/// The slash-command form fields the bot uses (Slack sends more).
#[derive(Debug, Deserialize)]
struct SlashForm {
    command: String,
    #[serde(default)]
    text: String,
    user_id: String,
    channel_id: String,
}

/// Why a Slack request is refused: its status, its one-line body and its
/// `outcome` label; nothing was parsed or changed.
#[derive(Debug, thiserror::Error)]
enum Rejection {
    #[error("missing X-Slack-Signature or X-Slack-Request-Timestamp")]
    MissingHeaders,
    #[error("signature check failed")]
    BadSignature,
    #[error("request is not signed for this app or is too old")]
    Stale,
    #[error("expected application/x-www-form-urlencoded")]
    ContentType,
    #[error("malformed body: {0}")]
    Malformed(String),
    #[error("Slack HTTP ingress is off: no SLACK_SIGNING_SECRET is set")]
    NoSecret,
    #[error("the bot cannot record this request right now; nothing was done, try again")]
    Unrecorded,
}

impl Rejection {
    fn status(&self) -> StatusCode {
        match self {
            Rejection::MissingHeaders | Rejection::BadSignature | Rejection::Stale => {
                StatusCode::UNAUTHORIZED
            }
            Rejection::ContentType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Rejection::Malformed(_) => StatusCode::BAD_REQUEST,
            Rejection::NoSecret => StatusCode::NOT_FOUND,
            Rejection::Unrecorded => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
    fn outcome(&self) -> &'static str {
        match self {
            Rejection::MissingHeaders => "missing_signature",
            Rejection::BadSignature => "bad_signature",
            Rejection::Stale => "stale",
            Rejection::ContentType => "bad_content_type",
            Rejection::Malformed(_) => "malformed",
            Rejection::NoSecret => "disabled",
            Rejection::Unrecorded => "store_unavailable",
        }
    }
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        tracing::info!(reason = %self, "request refused");
        (
            self.status(),
            Extension(Outcome(self.outcome())),
            format!("{self}\n"),
        )
            .into_response()
    }
}

fn header_str<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// A verified request: its body as text, and what tells a copy of it
/// from the first.
struct Verified<'b> {
    text: &'b str,
    seen: SeenRequest,
}

/// Verifies the signature and returns the body as text.
fn verify<'b>(
    state: &SlackState,
    headers: &HeaderMap,
    body: &'b Bytes,
) -> Result<Verified<'b>, Rejection> {
    let verifier = state.slack_verifier.as_ref().ok_or(Rejection::NoSecret)?;
    let (Some(signature), Some(timestamp)) = (
        header_str(headers, "x-slack-signature"),
        header_str(headers, "x-slack-request-timestamp"),
    ) else {
        return Err(Rejection::MissingHeaders);
    };
    // A body that is not UTF-8 was not produced by Slack.
    let text = std::str::from_utf8(body).map_err(|_| Rejection::BadSignature)?;
    use slack_morphism::signature_verifier::SlackEventSignatureVerifierError as E;
    verifier
        .verify(signature, text, timestamp)
        .map_err(|e| match e {
            E::IncorrectOrExpiredTimestampError(_) => Rejection::Stale,
            _ => Rejection::BadSignature,
        })?;
    let form = header_str(headers, header::CONTENT_TYPE.as_str())
        .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"));
    if !form {
        return Err(Rejection::ContentType);
    }
    // The verifier has parsed it; the signature is only valid until then.
    let signed_at: i64 = timestamp.parse().map_err(|_| Rejection::Stale)?;
    let window_closes =
        signed_at.saturating_add(SlackEventSignatureVerifier::MAX_TIMESTAMP_AGE_SECONDS);
    Ok(Verified {
        text,
        seen: SeenRequest::until("slack", format!("{timestamp}:{signature}"), window_closes),
    })
}

/// Remembers a verified request; whether it is the first copy.
async fn first_sight(state: &SlackState, seen: SeenRequest) -> Result<Sighting, Rejection> {
    state.engine.store().first_sight(seen).await.map_err(|e| {
        tracing::error!(error = %e, "a Slack request could not be recorded; refused");
        Rejection::Unrecorded
    })
}

/// What a replayed request is told: it was handled when it first came.
pub const ALREADY_HANDLED: &str = "This request was already handled; a copy of it changes nothing.";

fn replayed_command() -> Response {
    tracing::warn!("a replayed slash command was refused");
    (
        Extension(Outcome("replayed")),
        Json(serde_json::json!({"response_type": "ephemeral", "text": ALREADY_HANDLED})),
    )
        .into_response()
}

#[derive(serde::Serialize)]
pub struct AckBody {
    response_type: &'static str,
    text: String,
    blocks: Vec<slack_morphism::prelude::SlackBlock>,
}

/// The ack body Slack shows the user, serialised once, straight from the
/// block types.
pub fn ack_json(ack: &Ack) -> AckBody {
    AckBody {
        response_type: match ack.visibility {
            Visibility::Ephemeral => "ephemeral",
            Visibility::InChannel => "in_channel",
        },
        text: crate::slack::chat::fallback(&ack.message),
        blocks: crate::slack::chat::blocks(&ack.message),
    }
}

/// What the Slack routes need.
#[derive(Clone)]
pub struct SlackState {
    pub engine: Arc<Engine>,
    /// `None` when no signing secret is set: the HTTP Slack routes then
    /// refuse everything (Socket Mode needs no signature).
    pub slack_verifier: Option<Arc<SlackEventSignatureVerifier>>,
}

pub fn router(state: SlackState) -> Router {
    Router::new()
        .route(COMMANDS_ROUTE, post(commands))
        .route(INTERACTIONS_ROUTE, post(interactions))
        .with_state(state)
}

async fn commands(
    State(state): State<SlackState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Rejection> {
    let Verified { text, seen } = verify(&state, &headers, &body)?;
    if first_sight(&state, seen).await? == Sighting::Repeat {
        return Ok(replayed_command());
    }
    let request = parse_command(text).map_err(Rejection::Malformed)?;
    let ack = state.engine.accept(request).await;
    Ok(Json(ack_json(&ack)).into_response())
}

/// A verified `/slack/commands` body as the command the engine takes, or
/// why it is malformed. Public so that the fuzz targets (`tests/fuzz.rs`)
/// can feed it arbitrary bodies; the route is its only other caller.
pub fn parse_command(text: &str) -> Result<CommandRequest, String> {
    let form: SlashForm = serde_urlencoded::from_str(text).map_err(|e| e.to_string())?;
    tracing::debug!(command = %form.command, user = %form.user_id, "slash command");
    Ok(CommandRequest {
        via: "slack".into(),
        user: form.user_id,
        channel: form.channel_id,
        text: form.text,
        incident: None,
    })
}

#[derive(Debug, Deserialize)]
struct InteractionForm {
    payload: String,
}

#[derive(Debug, Deserialize)]
struct InteractionPayload {
    #[serde(rename = "type")]
    kind: String,
    user: Id,
    channel: Option<Id>,
    container: Option<Container>,
    #[serde(default)]
    actions: Vec<InteractionAction>,
}

#[derive(Debug, Deserialize)]
struct Id {
    id: String,
}

#[derive(Debug, Deserialize)]
struct Container {
    channel_id: Option<String>,
}

#[derive(Debug, Deserialize)]
struct InteractionAction {
    action_id: String,
    #[serde(default)]
    value: String,
}

/// Button clicks (`block_actions`): acknowledged at once with an empty
/// 200; the engine handles the click afterwards and answers in the channel.
/// The outcome is `ignored` for anything but clicks, else that of the last
/// button (`ok`, or `refused` for a button the bot does not draw);
/// `replayed` for a copy of a request already handled.
async fn interactions(
    State(state): State<SlackState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Extension<Outcome>), Rejection> {
    let Verified { text, seen } = verify(&state, &headers, &body)?;
    if first_sight(&state, seen).await? == Sighting::Repeat {
        tracing::warn!("a replayed Slack interaction was refused");
        return Ok((StatusCode::OK, Extension(Outcome("replayed"))));
    }
    let (clicks, outcome) = parse_interaction(text).map_err(Rejection::Malformed)?;
    for event in clicks {
        let engine = state.engine.clone();
        state
            .engine
            .spawn(async move { engine.on_button(event).await });
    }
    Ok((StatusCode::OK, Extension(outcome)))
}

/// A verified `/slack/interactions` body as the clicks the engine is to
/// handle, with the request's outcome label (see [`interactions`]), or why
/// it is malformed. Public so that the fuzz targets (`tests/fuzz.rs`) can
/// feed it arbitrary bodies; the route is its only other caller.
pub fn parse_interaction(text: &str) -> Result<(Vec<ButtonEvent>, Outcome), String> {
    let form: InteractionForm = serde_urlencoded::from_str(text).map_err(|e| e.to_string())?;
    let payload: InteractionPayload =
        serde_json::from_str(&form.payload).map_err(|e| e.to_string())?;
    let channel = payload
        .channel
        .map(|c| c.id)
        .or_else(|| payload.container.and_then(|c| c.channel_id))
        .unwrap_or_default();
    let mut outcome = Outcome("ignored");
    let mut clicks = Vec::new();
    if payload.kind == "block_actions" {
        for action in payload.actions {
            let action = match ButtonAction::parse(&action.action_id, &action.value) {
                Ok(a) => a,
                Err(e) => {
                    // Not a button this bot draws; Slack only needs the 200.
                    tracing::info!(error = %e, "click on a button the bot does not know");
                    outcome = Outcome("refused");
                    continue;
                }
            };
            outcome = Outcome::OK;
            clicks.push(ButtonEvent {
                via: "slack".into(),
                user: payload.user.id.clone(),
                channel: channel.clone(),
                action,
            });
        }
    }
    Ok((clicks, outcome))
}
