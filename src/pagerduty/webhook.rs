//! `POST /pagerduty/webhook`: PagerDuty's v3 webhooks. The raw body is
//! checked against `X-PagerDuty-Signature` (one or more `v1=<hex>` values,
//! comma separated, each an HMAC-SHA256 of the body under a subscription
//! secret; several during a rotation) in constant time before it is read.
//! A forged or unsigned request gets 401 and changes nothing; a signed one
//! that is not JSON, 400; anything signed and readable, 200, whether or
//! not it concerns an incident of ours (PagerDuty would only retry it).

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use hmac::{Hmac, KeyInit, Mac};
use serde::Deserialize;
use sha2::Sha256;

use crate::config::Secret;
use crate::engine::Engine;
use crate::pager::{NoticeKind, NoticeOutcome, PagerDutyNotice};

pub const ROUTE: &str = "/pagerduty/webhook";

#[derive(Clone)]
pub struct PagerDutyState {
    pub engine: Arc<Engine>,
    /// `PAGERDUTY_WEBHOOK_SECRET`; without it the route answers 404.
    pub secret: Option<Secret>,
}

pub fn router(state: PagerDutyState) -> Router {
    Router::new().route(ROUTE, post(webhook)).with_state(state)
}

/// Whether one of the header's `v1=` signatures is the body's HMAC under
/// `secret`. Each candidate is compared in constant time (`verify_slice`).
pub fn verify(secret: &[u8], header: &str, body: &[u8]) -> bool {
    let Ok(mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return false;
    };
    let mac = mac.chain_update(body);
    header
        .split(',')
        .filter_map(|s| s.trim().strip_prefix("v1="))
        .filter_map(|h| hex::decode(h).ok())
        .any(|sig| mac.clone().verify_slice(&sig).is_ok())
}

/// The part of a v3 webhook payload the bot reads (PagerDuty's
/// "Webhook Payload": `event.id`, `event_type`, `agent`, `data`).
#[derive(Debug, Deserialize)]
struct Payload {
    event: Event,
}

#[derive(Debug, Deserialize)]
struct Event {
    id: String,
    event_type: String,
    #[serde(default)]
    agent: Option<Agent>,
    #[serde(default)]
    data: Option<Data>,
}

#[derive(Debug, Deserialize)]
struct Agent {
    #[serde(default)]
    summary: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Data {
    #[serde(default)]
    incident_key: Option<String>,
}

/// The body as a notice; `Err` when it is not a v3 webhook payload.
pub fn parse(body: &[u8]) -> Result<PagerDutyNotice, serde_json::Error> {
    let p: Payload = serde_json::from_slice(body)?;
    Ok(PagerDutyNotice {
        event_id: p.event.id,
        kind: NoticeKind::parse(&p.event.event_type),
        incident_key: p.event.data.and_then(|d| d.incident_key),
        agent: p.event.agent.and_then(|a| a.summary),
    })
}

async fn webhook(
    State(state): State<PagerDutyState>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    let Some(secret) = &state.secret else {
        return (
            StatusCode::NOT_FOUND,
            "PagerDuty webhooks are off: PAGERDUTY_WEBHOOK_SECRET is not set\n".into(),
        );
    };
    let signature = headers
        .get("x-pagerduty-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !verify(secret.expose().as_bytes(), signature, &body) {
        tracing::warn!("PagerDuty webhook refused: no valid signature");
        return (StatusCode::UNAUTHORIZED, "invalid signature\n".into());
    }
    let notice = match parse(&body) {
        Ok(n) => n,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                format!("not a PagerDuty v3 webhook payload: {e}\n"),
            );
        }
    };
    match state.engine.pagerduty(&notice).await {
        Ok(NoticeOutcome::Ignored(why)) => {
            tracing::info!(event = %notice.event_id, reason = %why, "PagerDuty webhook ignored");
            (StatusCode::OK, format!("ignored: {why}\n"))
        }
        Ok(outcome) => (StatusCode::OK, format!("{outcome:?}\n").to_lowercase()),
        Err(e) => {
            // PagerDuty retries a 5xx, which is what a store or chat
            // failure calls for.
            tracing::warn!(event = %notice.event_id, error = %e, "PagerDuty webhook not handled");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "not handled; retry\n".into(),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign(secret: &str, body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("key");
        mac.update(body);
        format!("v1={}", hex::encode(mac.finalize().into_bytes()))
    }

    #[test]
    fn any_listed_v1_signature_will_do_and_nothing_else() {
        let body = br#"{"event":{"id":"1","event_type":"pagey.ping"}}"#;
        let good = sign("s3cret", body);
        assert!(verify(b"s3cret", &good, body));
        let rotated = format!("{},{good}", sign("old", body));
        assert!(verify(b"s3cret", &rotated, body));
        assert!(!verify(b"s3cret", &sign("other", body), body));
        assert!(!verify(b"s3cret", "", body));
        assert!(!verify(b"s3cret", &good.replace("v1=", "v0="), body));
        assert!(!verify(b"s3cret", "v1=zz", body));
        assert!(!verify(b"s3cret", &good, br#"{"event":{}}"#));
    }

    #[test]
    fn a_payload_reads_into_a_notice() {
        let body = br#"{"event":{"id":"01BZ","event_type":"incident.acknowledged",
            "agent":{"summary":"Ada Lovelace","type":"user_reference"},
            "data":{"id":"PGR0VU2","incident_key":"scalebot-INC-1","status":"acknowledged"}}}"#;
        let n = parse(body).expect("a notice");
        assert_eq!(n.kind, NoticeKind::Acknowledged);
        assert_eq!(n.incident_key.as_deref(), Some("scalebot-INC-1"));
        assert_eq!(n.agent.as_deref(), Some("Ada Lovelace"));
        assert!(parse(b"{not json").is_err());
        assert!(parse(br#"{"event":{"id":"1"}}"#).is_err());
    }
}
