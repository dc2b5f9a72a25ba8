//! Liveness, readiness and metrics.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;

use std::sync::Arc;

use crate::engine::Engine;

pub async fn healthz() -> &'static str {
    "ok\n"
}

/// The work queue has stalled when a message has been due this long with
/// no replica claiming it (claims are made within a second when a worker
/// runs; a storm of 20,000 drains in well under this).
const STALLED_AFTER: std::time::Duration = std::time::Duration::from_secs(60);

/// Ready when the store answers and the work queue is being worked.
pub async fn readyz(State(engine): State<Arc<Engine>>) -> impl IntoResponse {
    if let Err(e) = engine.store().ping().await {
        tracing::warn!(error = %e, "readiness check failed");
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "store unreachable\n".to_owned(),
        );
    }
    match engine.inbox_waiting().await {
        Ok(waited) if waited > STALLED_AFTER => {
            tracing::warn!(waited_s = waited.as_secs(), "work queue stalled");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "work queue stalled: a stored message has waited {} s for a worker\n",
                    waited.as_secs()
                ),
            )
        }
        Ok(_) => (StatusCode::OK, "ready\n".to_owned()),
        Err(e) => {
            tracing::warn!(error = %e, "work queue not readable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "store unreachable\n".to_owned(),
            )
        }
    }
}

pub async fn metrics(State(engine): State<Arc<Engine>>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        engine.metrics().render(),
    )
}
