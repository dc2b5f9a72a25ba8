//! The global limit of requests being handled at once
//! (`server.max_in_flight_requests`). One more is answered 503 with
//! `Retry-After: 1` straight away rather than queued: every platform that
//! calls the bot retries (Slack and SNS on a 5xx, Discord's users by
//! clicking again), and a queue would only turn a burst into timeouts.
//! A request holds its place until its response is ready; a streamed body
//! (the demo's event stream) does not hold one.

use std::sync::Arc;

use axum::Extension;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::sync::Semaphore;

use crate::metrics::Outcome;

/// The middleware's state: one per server, shared by every route.
#[derive(Clone)]
pub struct InFlight(Arc<Semaphore>);

impl InFlight {
    pub fn new(max: usize) -> Self {
        Self(Arc::new(Semaphore::new(
            max.clamp(1, Semaphore::MAX_PERMITS),
        )))
    }
}

/// Use with `axum::middleware::from_fn_with_state`.
pub async fn limit(State(in_flight): State<InFlight>, request: Request, next: Next) -> Response {
    let Ok(_place) = in_flight.0.clone().try_acquire_owned() else {
        // Counted in the request metrics (outcome `overloaded`); a log line
        // per refusal would flood the log in the very moment it matters.
        tracing::debug!("request refused: server.max_in_flight_requests reached");
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, "1")],
            Extension(Outcome("overloaded")),
            "the bot is busy; try again in a second\n",
        )
            .into_response();
    };
    next.run(request).await
}
