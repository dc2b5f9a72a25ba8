//! The demo's web chat over HTTP: the page itself, its state, an event
//! stream (server-sent events), and two JSON endpoints that feed the same
//! engine entry points as Slack: `engine.accept` for a typed command and
//! `engine.on_button` for a click.
//!
//! There is no login: the visitor picks one of the demo's user names, and
//! roles come from `[roles]` in the demo config. Requests naming an unknown
//! user, channel or button, or whose JSON does not parse, get a 4xx with a
//! sentence and change nothing; so do requests from another web page, or
//! POSTs that are not `application/json` (`origin.rs`, checked first).

use crate::engine::Engine;
use axum::Router;
use axum::routing::{get, post};
use std::convert::Infallible;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;

use crate::catalog::{ParseError, Parsed};
use crate::chat::{ButtonAction, ButtonError};
use crate::demo::chat::{WebBody, WebChat};
use crate::demo::origin::{self, SameOrigin};
use crate::demo::settings::DemoSettings;
use crate::engine::{ButtonEvent, CommandRequest, Visibility};
use crate::metrics::Outcome;

const PAGE: &str = include_str!("../../assets/web/index.html");

/// Why a web chat request is refused: its status, a JSON body with a
/// sentence the page shows as it is (to someone who may be trying the bot
/// for the first time: no parser output, no status codes, no internal
/// ids), and the `refused` outcome; nothing changed. The details a
/// developer needs go to the log.
#[derive(Debug, thiserror::Error)]
enum Rejection {
    #[error(
        "The web chat is part of `scalebot demo` only; this bot is set up for Slack or Discord."
    )]
    Disabled,
    /// What the JSON parser said, for the log.
    #[error(
        "The chat could not read this request, so nothing was done. Reload the page and try again."
    )]
    Malformed(String),
    /// The users to pick from, as words ("alice, bob or carol").
    #[error("Pick a demo user first ({0}): who you are decides what you may do.")]
    NoUser(String),
    #[error("There is no demo user called `{0}`. Reload the page and pick {1}.")]
    UnknownUser(String, String),
    #[error("There is no channel `{0}` in this demo; pick one of the channels on the left.")]
    UnknownChannel(String),
    /// Which button and why, for the log.
    #[error(
        "The chat does not know this button, so nothing was done. Reload the page to get the current buttons."
    )]
    Button(#[from] ButtonError),
    #[error(
        "That is not a scalebot command: `{0}`. Type `/scale` and a command, or `/scale help` to see them all."
    )]
    NotScale(String),
    #[error(
        "This file is gone: the demo keeps files only while it runs. Run the command again for a new one."
    )]
    NoFile(String),
}

impl Rejection {
    /// What the sentence leaves out, for whoever reads the log.
    fn detail(&self) -> String {
        match self {
            Rejection::Malformed(e) => e.clone(),
            Rejection::Button(e) => e.to_string(),
            Rejection::NoFile(id) => format!("file {id}"),
            _ => String::new(),
        }
    }
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        let status = match self {
            Rejection::Disabled | Rejection::NoFile(_) => StatusCode::NOT_FOUND,
            Rejection::Malformed(_) => StatusCode::BAD_REQUEST,
            Rejection::UnknownUser(..) | Rejection::NoUser(_) => StatusCode::FORBIDDEN,
            Rejection::UnknownChannel(_) | Rejection::Button(_) | Rejection::NotScale(_) => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
        };
        tracing::info!(reason = %self, detail = %self.detail(), "web chat request refused");
        (
            status,
            Extension(Outcome("refused")),
            Json(json!({ "error": self.to_string() })),
        )
            .into_response()
    }
}

fn web(state: &WebState) -> Result<Arc<WebChat>, Rejection> {
    state.web.clone().ok_or(Rejection::Disabled)
}

/// "alice", "alice or bob", "one of alice, bob or carol".
fn one_of(users: &[String]) -> String {
    match users {
        [] => "a user".into(),
        [one] => one.clone(),
        [rest @ .., last] => {
            let list = format!("{} or {last}", rest.join(", "));
            if rest.len() > 1 {
                format!("one of {list}")
            } else {
                list
            }
        }
    }
}

/// At most `max` characters of what someone typed or sent, for a sentence.
fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max).collect();
    out.push('…');
    out
}

/// A command that does not parse, said for the box under the command
/// line: a sentence with the command's usage, where the catalog's own
/// words ("unknown command `x`", "missing <function>") are terse.
fn explain(e: &ParseError) -> String {
    match e {
        ParseError::UnknownVerb { verb, suggestion } => {
            let guess = suggestion
                .as_ref()
                .map(|s| format!(" Did you mean `/scale {s}`?"))
                .unwrap_or_default();
            format!(
                "There is no command `{}`.{guess} Type `/scale help` to see them all.",
                clip(verb, 40)
            )
        }
        ParseError::MissingArg { arg, usage } => {
            format!("This command needs <{arg}>. Type it like this: `{usage}`.")
        }
        ParseError::BadArg { arg, reason, usage } => {
            format!("That <{arg}> will not do: {reason}. Type it like this: `{usage}`.")
        }
        ParseError::TooMany { extra, usage } => format!(
            "This command takes less than that (`{}` is one word too many). Type it like this: `{usage}`.",
            clip(extra, 40)
        ),
    }
}

/// The demo user a request names; a page that has not picked one sends
/// `null` (or nothing), which gets a sentence rather than a serde error.
fn known_user(state: &WebState, user: &Option<String>) -> Result<String, Rejection> {
    let users = &state.demo.users;
    match user {
        None => Err(Rejection::NoUser(one_of(users))),
        Some(u) if users.iter().any(|known| known == u) => Ok(u.clone()),
        Some(u) => Err(Rejection::UnknownUser(clip(u, 40), one_of(users))),
    }
}

fn parse<T: for<'de> Deserialize<'de>>(body: &Bytes) -> Result<T, Rejection> {
    serde_json::from_slice(body).map_err(|e| Rejection::Malformed(e.to_string()))
}

/// What the web chat's routes need.
#[derive(Clone)]
pub struct WebState {
    pub engine: Arc<Engine>,
    /// `None` outside `scalebot demo`, where these routes answer 404.
    pub web: Option<Arc<WebChat>>,
    pub demo: Arc<DemoSettings>,
    /// Which `Host`, `Origin` and `Content-Type` the routes take
    /// (`origin.rs`): only the demo's own page may drive the chat.
    pub same_origin: SameOrigin,
}

pub fn router(state: WebState) -> Router {
    let guard = axum::middleware::from_fn_with_state(state.same_origin, origin::guard);
    Router::new()
        .route("/", get(page))
        .route("/web/api/state", get(self::state))
        .route("/web/api/events", get(events))
        .route("/web/api/command", post(command))
        .route("/web/api/button", post(button))
        .route("/web/files/{id}", get(file))
        .route_layer(guard)
        .with_state(state)
}

pub async fn page(State(state): State<WebState>) -> Response {
    match web(&state) {
        Ok(_) => Html(PAGE).into_response(),
        Err(r) => r.into_response(),
    }
}

#[derive(Debug, Deserialize)]
pub struct UserQuery {
    user: Option<String>,
}

#[derive(Serialize)]
struct UserInfo {
    name: String,
    roles: Vec<String>,
}

#[derive(Serialize)]
struct CommandInfo {
    name: String,
    usage: String,
    summary: String,
}

/// The users to pick from; with `?user=`, also the channels, the history
/// that user may see, and the catalog for completion.
pub async fn state(State(state): State<WebState>, Query(q): Query<UserQuery>) -> Response {
    let web = match web(&state) {
        Ok(w) => w,
        Err(r) => return r.into_response(),
    };
    let settings = state.engine.settings();
    let users: Vec<UserInfo> = state
        .demo
        .users
        .iter()
        .map(|u| UserInfo {
            name: u.clone(),
            roles: settings
                .roles
                .iter()
                .filter(|(_, members)| members.contains(u))
                .map(|(role, _)| role.clone())
                .collect(),
        })
        .collect();
    let Some(user) = q.user else {
        return Json(json!({ "users": users })).into_response();
    };
    if let Err(r) = known_user(&state, &Some(user.clone())) {
        return r.into_response();
    }
    let commands: Vec<CommandInfo> = state
        .engine
        .catalog()
        .iter()
        .map(|c| CommandInfo {
            name: c.name.clone(),
            usage: c.usage.clone(),
            summary: c.summary.clone(),
        })
        .collect();
    Json(json!({
        "me": user,
        "users": users,
        "channels": web.channels(),
        "messages": web.history(&user),
        "commands": commands,
        "incidents_channel": settings.channels.incidents,
        "now_ms": state.engine.now().timestamp_millis(),
        "speed": state.demo.speed,
        "timezone": settings.display.timezone.name(),
    }))
    .into_response()
}

/// Live updates for one user: every public event and that user's
/// ephemeral ones. Ends at shutdown.
pub async fn events(State(state): State<WebState>, Query(q): Query<UserQuery>) -> Response {
    let web = match web(&state) {
        Ok(w) => w,
        Err(r) => return r.into_response(),
    };
    let user = match known_user(&state, &q.user) {
        Ok(u) => u,
        Err(r) => return r.into_response(),
    };
    let rx = web.subscribe();
    let closing = web.closing();
    let stream =
        futures::stream::unfold((rx, closing, user), |(mut rx, closing, user)| async move {
            loop {
                let received = tokio::select! {
                    _ = closing.cancelled() => return None,
                    r = rx.recv() => r,
                };
                match received {
                    Ok(event) if event.visible_to(&user) => {
                        let data = serde_json::to_string(&event).unwrap_or_default();
                        let event = Event::default().data(data);
                        return Some((Ok::<_, Infallible>(event), (rx, closing, user)));
                    }
                    Ok(_) => {}
                    // The page reloads its state when it fell behind.
                    Err(RecvError::Lagged(_)) => {
                        let event = Event::default().event("resync").data("{}");
                        return Some((Ok(event), (rx, closing, user)));
                    }
                    Err(RecvError::Closed) => return None,
                }
            }
        });
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}

#[derive(Debug, Deserialize)]
struct CommandBody {
    #[serde(default)]
    user: Option<String>,
    channel: String,
    text: String,
}

/// A typed command: the same `engine.accept` as a Slack slash command. The
/// ack goes back in the response and, visible to the typist only, into
/// the channel. A command that does not parse is answered 422 with the
/// engine's explanation (outcome `ok`: the request itself was fine).
pub async fn command(State(state): State<WebState>, body: Bytes) -> Response {
    let result = async {
        let web = web(&state)?;
        let body: CommandBody = parse(&body)?;
        let user = known_user(&state, &body.user)?;
        if !web.has_channel(&body.channel) {
            return Err(Rejection::UnknownChannel(clip(&body.channel, 40)));
        }
        let typed = body.text.trim().to_owned();
        let text = match typed.strip_prefix("/scale") {
            Some(rest) if rest.is_empty() || rest.starts_with(char::is_whitespace) => {
                rest.trim().to_owned()
            }
            _ if typed.starts_with('/') => return Err(Rejection::NotScale(clip(&typed, 60))),
            _ => typed.clone(),
        };
        let parse_error = match state.engine.catalog().parse(&text) {
            Parsed::Error(e) => Some(e),
            _ => None,
        };
        let parsed_ok = parse_error.is_none();
        let ack = state
            .engine
            .accept(CommandRequest {
                via: "web".into(),
                user: user.clone(),
                channel: body.channel.clone(),
                text,
                incident: None,
            })
            .await;
        web.record_ack(&body.channel, &user, &typed, &ack.message);
        let status = if parsed_ok {
            StatusCode::OK
        } else {
            StatusCode::UNPROCESSABLE_ENTITY
        };
        let visibility = match ack.visibility {
            Visibility::Ephemeral => "ephemeral",
            Visibility::InChannel => "in_channel",
        };
        let reply = json!({
            "ok": parsed_ok,
            "visibility": visibility,
            "message": WebBody::from(&ack.message),
            "error": parse_error.as_ref().map(explain),
        });
        Ok((status, Extension(Outcome::OK), Json(reply)))
    }
    .await;
    result.into_response()
}

#[derive(Debug, Deserialize)]
struct ButtonBody {
    #[serde(default)]
    user: Option<String>,
    channel: String,
    action_id: String,
    #[serde(default)]
    value: String,
}

/// A click: acknowledged at once (202); the engine handles it afterwards
/// and answers in the channel, exactly as for Slack's `block_actions`.
pub async fn button(State(state): State<WebState>, body: Bytes) -> Response {
    let result = (|| {
        let web = web(&state)?;
        let body: ButtonBody = parse(&body)?;
        let user = known_user(&state, &body.user)?;
        if !web.has_channel(&body.channel) {
            return Err(Rejection::UnknownChannel(clip(&body.channel, 40)));
        }
        let action = ButtonAction::parse(&body.action_id, &body.value)?;
        Ok((user, body.channel, action))
    })();
    match result {
        Ok((user, channel, action)) => {
            let event = ButtonEvent {
                via: "web".into(),
                user,
                channel,
                action,
            };
            let engine = state.engine.clone();
            state
                .engine
                .spawn(async move { engine.on_button(event).await });
            (StatusCode::ACCEPTED, Json(json!({ "ok": true }))).into_response()
        }
        Err(r) => r.into_response(),
    }
}

/// An uploaded file (charts, post-mortems).
pub async fn file(State(state): State<WebState>, Path(id): Path<String>) -> Response {
    let web = match web(&state) {
        Ok(w) => w,
        Err(r) => return r.into_response(),
    };
    match web.file(&id) {
        Some((content_type, bytes)) => (
            [
                (header::CONTENT_TYPE, content_type),
                (header::CACHE_CONTROL, "max-age=86400".to_owned()),
            ],
            bytes.as_ref().clone(),
        )
            .into_response(),
        None => Rejection::NoFile(id).into_response(),
    }
}
