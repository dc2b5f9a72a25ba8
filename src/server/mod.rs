//! The HTTP server: each platform brings its own routes and state; this
//! module only puts them together with health, readiness and metrics, and
//! the limits every route shares.

mod health;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use slack_morphism::signature_verifier::SlackEventSignatureVerifier;

use crate::aws::sns_intake::{self, SnsIngress, SnsState};
use crate::demo::chat::WebChat;
use crate::demo::ingress::{self as web, WebState};
use crate::discord::ingress::{self as discord, DiscordIngress, DiscordState};
use crate::engine::Engine;
use crate::slack::ingress::{self as slack, SlackState};

/// What the routes are built from. A platform that is not configured
/// still has its routes, which answer 404 (so that a misdirected request
/// is refused the same way on every deployment).
#[derive(Clone)]
pub struct AppState {
    pub engine: Arc<Engine>,
    pub slack_verifier: Option<Arc<SlackEventSignatureVerifier>>,
    pub sns: Option<Arc<SnsIngress>>,
    pub web: Option<Arc<WebChat>>,
    pub discord: Option<Arc<DiscordIngress>>,
}

pub fn router(state: AppState, max_body_bytes: usize) -> Router {
    let engine = state.engine.clone();
    Router::new()
        .merge(slack::router(SlackState {
            engine: engine.clone(),
            slack_verifier: state.slack_verifier,
        }))
        .merge(discord::router(DiscordState {
            engine: engine.clone(),
            discord: state.discord,
        }))
        .merge(sns_intake::router(SnsState {
            engine: engine.clone(),
            sns: state.sns,
        }))
        .merge(web::router(WebState {
            engine: engine.clone(),
            web: state.web,
        }))
        .merge(
            Router::new()
                .route("/healthz", get(health::healthz))
                .route("/readyz", get(health::readyz))
                .route("/metrics", get(health::metrics))
                .with_state(engine),
        )
        .layer(DefaultBodyLimit::max(max_body_bytes))
}
