//! The HTTP server: each platform brings its own routes and state; this
//! module only puts them together with health, readiness and metrics (or
//! serves metrics on a listener of their own, `server.metrics_listen`), and
//! the layers every route shares: the body limit, the request timeout
//! (408), the limit of requests in flight (503, `in_flight.rs`), and the
//! request metrics (`request_metrics.rs`), which count every request once
//! (refusals of these layers included), so no handler does. `edge.rs`
//! serves the router: connections, their limits and the header-read
//! timeout.

pub mod edge;
mod health;
mod in_flight;
mod request_metrics;
pub mod settings;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::middleware;
use axum::routing::get;
use slack_morphism::signature_verifier::SlackEventSignatureVerifier;
use tower_http::timeout::TimeoutLayer;

use crate::aws::sns_intake::{self, SnsIngress, SnsState};
use crate::config::Secret;
use crate::demo::chat::WebChat;
use crate::demo::ingress::{self as web, WebState};
use crate::demo::origin::SameOrigin;
use crate::demo::settings::DemoSettings;
use crate::discord::ingress::{self as discord, DiscordIngress, DiscordState};
use crate::engine::Engine;
use crate::pagerduty::webhook::{self as pagerduty, PagerDutyState};
use crate::slack::ingress::{self as slack, SlackState};

use in_flight::InFlight;
use request_metrics::RequestMetrics;
use settings::ServerSettings;

/// The routes that acknowledge a platform's delivery (Slack's and
/// Discord's 3-second window, SNS's timeout): their latency also goes into
/// `scalebot_ack_seconds`.
const ACK_ROUTES: &[&str] = &[
    slack::COMMANDS_ROUTE,
    slack::INTERACTIONS_ROUTE,
    discord::ROUTE,
    sns_intake::ROUTE,
];

/// What the routes are built from. A platform that is not configured
/// still has its routes, which answer 404 (so that a misdirected request
/// is refused the same way on every deployment).
#[derive(Clone)]
pub struct AppState {
    pub engine: Arc<Engine>,
    pub slack_verifier: Option<Arc<SlackEventSignatureVerifier>>,
    pub sns: Option<Arc<SnsIngress>>,
    pub web: Option<Arc<WebChat>>,
    /// The web chat's users and clock speed (under `scalebot demo`).
    pub demo: Arc<DemoSettings>,
    /// Which `Host` and `Origin` the web chat answers (under `scalebot demo`).
    pub same_origin: SameOrigin,
    pub discord: Option<Arc<DiscordIngress>>,
    /// `PAGERDUTY_WEBHOOK_SECRET`: `/pagerduty/webhook` answers 404 without it.
    pub pagerduty_secret: Option<Secret>,
}

/// The public router: every platform's routes, the health routes, and
/// `/metrics` unless `server.metrics_listen` serves it apart.
pub fn router(state: AppState, server: &ServerSettings) -> Router {
    let engine = state.engine.clone();
    let mut health = Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz));
    if server.metrics_listen.is_none() {
        health = health.route("/metrics", get(health::metrics));
    }
    let routes = Router::new()
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
        .merge(pagerduty::router(PagerDutyState {
            engine: engine.clone(),
            secret: state.pagerduty_secret,
        }))
        .merge(web::router(WebState {
            engine: engine.clone(),
            web: state.web,
            demo: state.demo,
            same_origin: state.same_origin,
        }))
        .merge(health.with_state(engine.clone()));
    with_shared_layers(routes, &engine, server)
}

/// The router of `server.metrics_listen`: metrics and health only, for the
/// scraper and the probes.
pub fn metrics_router(engine: Arc<Engine>, server: &ServerSettings) -> Router {
    let routes = Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .with_state(engine.clone());
    with_shared_layers(routes, &engine, server)
}

/// The limits and the request metrics every route has, on either listener.
fn with_shared_layers(routes: Router, engine: &Engine, server: &ServerSettings) -> Router {
    let request_metrics = RequestMetrics {
        metrics: engine.metrics().clone(),
        ack_routes: ACK_ROUTES,
    };
    routes
        .layer(DefaultBodyLimit::max(server.max_body_bytes))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            server.request_timeout,
        ))
        .layer(middleware::from_fn_with_state(
            InFlight::new(server.max_in_flight_requests),
            in_flight::limit,
        ))
        // `layer`, not `route_layer`: the fallback (404) is counted too.
        .layer(middleware::from_fn_with_state(
            request_metrics,
            request_metrics::record,
        ))
}
