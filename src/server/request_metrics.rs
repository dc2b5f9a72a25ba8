//! The one place inbound requests are counted: a middleware on every route
//! (and the fallback) that records the route, the outcome and, for the
//! routes that answer a platform inside its acknowledgement window, the
//! latency.
//!
//! - **route**: axum's [`MatchedPath`] (the route template, so
//!   `/web/files/{id}` is one series), or `unmatched` for the fallback.
//! - **outcome**: the [`Outcome`] the handler put into the response's
//!   extensions (each ingress's error type does so for its refusals), or
//!   one derived from the status code ([`Outcome::from_status`]).
//! - **latency**: from the request reaching the router to the response
//!   being ready, observed in `scalebot_ack_seconds` for the routes listed
//!   in [`RequestMetrics::ack_routes`] only.
//!
//! Each request runs in a `request` span naming its route, so a handler's
//! log lines (refusals included) say which route they came from.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

use crate::metrics::{Metrics, Outcome};

/// The route label of a request no route matched.
pub const UNMATCHED: &str = "unmatched";

/// The middleware's state.
#[derive(Clone)]
pub struct RequestMetrics {
    pub metrics: Arc<Metrics>,
    /// The routes whose latency is an acknowledgement (Slack's and
    /// Discord's 3-second window, SNS's delivery timeout).
    pub ack_routes: &'static [&'static str],
}

/// Use with `axum::middleware::from_fn_with_state` and `Router::layer`
/// (not `route_layer`, so the fallback is counted too).
pub async fn record(
    State(state): State<RequestMetrics>,
    matched: Option<MatchedPath>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let route = matched.as_ref().map_or(UNMATCHED, MatchedPath::as_str);
    let span = tracing::info_span!("request", route);
    let response = next.run(request).instrument(span).await;
    let outcome = response
        .extensions()
        .get::<Outcome>()
        .copied()
        .unwrap_or_else(|| Outcome::from_status(response.status().as_u16()));
    let latency = state
        .ack_routes
        .contains(&route)
        .then(|| started.elapsed().as_secs_f64());
    state.metrics.request(route, outcome.as_str(), latency);
    response
}
