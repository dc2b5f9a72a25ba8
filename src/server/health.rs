//! Liveness, readiness and metrics.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;

use std::sync::Arc;

use crate::engine::Engine;

pub async fn healthz() -> &'static str {
    "ok\n"
}

/// Ready when the store answers.
pub async fn readyz(State(engine): State<Arc<Engine>>) -> impl IntoResponse {
    match engine.store().ping().await {
        Ok(()) => (StatusCode::OK, "ready\n".to_owned()),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
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
