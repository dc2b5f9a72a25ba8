//! Inbound HTTP: every request is verified, parsed and acknowledged here;
//! anything slow happens in the engine after the ack.

pub mod discord;
pub mod discord_gateway;
mod health;
pub mod sim_alarms;
pub mod slack;
pub mod sns;
pub mod socket_mode;
pub mod web;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use slack_morphism::signature_verifier::SlackEventSignatureVerifier;

use crate::engine::Engine;

#[derive(Clone)]
pub struct AppState {
    pub engine: Arc<Engine>,
    /// `None` when no signing secret is set: the HTTP Slack routes then
    /// refuse everything (Socket Mode needs no signature).
    pub slack_verifier: Option<Arc<SlackEventSignatureVerifier>>,
    /// `None` when no SNS topic is allowed: `/sns` then refuses everything.
    pub sns: Option<Arc<sns::SnsIngress>>,
    /// The demo's web chat; `None` outside `scalebot demo`, where its
    /// routes answer 404.
    pub web: Option<Arc<crate::chat::web::WebChat>>,
    /// `None` when the bot serves Slack: `/discord/interactions` then
    /// refuses everything.
    pub discord: Option<Arc<discord::DiscordIngress>>,
}

pub fn router(state: AppState, max_body_bytes: usize) -> Router {
    Router::new()
        .route("/slack/commands", post(slack::commands))
        .route("/slack/interactions", post(slack::interactions))
        .route("/discord/interactions", post(discord::interactions))
        .route("/sns", post(sns::sns))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .route("/", get(web::page))
        .route("/web/api/state", get(web::state))
        .route("/web/api/events", get(web::events))
        .route("/web/api/command", post(web::command))
        .route("/web/api/button", post(web::button))
        .route("/web/files/{id}", get(web::file))
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .with_state(state)
}
