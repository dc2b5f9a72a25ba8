//! A local stand-in for PagerDuty's Events API v2 (`POST /v2/enqueue`),
//! answering as its reference documents: 202 `{"status":"success",
//! "message":"Event processed","dedup_key":…}` for a valid event, 400
//! `{"status":"invalid event",…}` for one without its required fields
//! (`routing_key`, `event_action`, and on a trigger `payload.summary`,
//! `payload.source`, `payload.severity`), and 500 on demand. It keeps the
//! state PagerDuty would give each dedup key (triggered, acknowledged,
//! resolved) and signs v3 webhooks as PagerDuty does, so a test can play
//! PagerDuty's side both ways.

#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::sync::Notify;

pub const ROUTING_KEY: &str = "R0UT1NGKEYR0UT1NGKEYR0UT1NGKEY12";
pub const WEBHOOK_SECRET: &str = "whsec-test-pagerduty-v3";

#[derive(Default)]
struct Inner {
    /// Events accepted (202), in order.
    events: Vec<Value>,
    /// Requests answered with anything else: (status, body).
    refused: Vec<(u16, Value)>,
    /// The next this many requests get a 500 and change nothing.
    fail_next: usize,
    /// dedup key → `triggered`, `acknowledged` or `resolved`.
    states: std::collections::BTreeMap<String, String>,
}

#[derive(Clone)]
pub struct FakePagerDuty {
    pub addr: std::net::SocketAddr,
    inner: Arc<Mutex<Inner>>,
    changed: Arc<Notify>,
}

impl FakePagerDuty {
    pub async fn start() -> Self {
        let fake = Self {
            addr: "127.0.0.1:0".parse().expect("addr"),
            inner: Arc::default(),
            changed: Arc::new(Notify::new()),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let app = Router::new()
            .route("/v2/enqueue", post(enqueue))
            .with_state(fake.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, ..fake }
    }

    pub fn events_url(&self) -> String {
        format!("http://{}/v2/enqueue", self.addr)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn fail_next(&self, n: usize) {
        self.lock().fail_next = n;
    }

    pub fn events(&self) -> Vec<Value> {
        self.lock().events.clone()
    }

    pub fn refused(&self) -> Vec<(u16, Value)> {
        self.lock().refused.clone()
    }

    /// `(event_action, dedup_key)` of every accepted event.
    pub fn actions(&self) -> Vec<(String, String)> {
        self.events()
            .iter()
            .map(|e| {
                (
                    e["event_action"].as_str().unwrap_or_default().to_owned(),
                    e["dedup_key"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    }

    pub fn state_of(&self, dedup_key: &str) -> Option<String> {
        self.lock().states.get(dedup_key).cloned()
    }

    pub async fn wait_for<T>(
        &self,
        secs: u64,
        what: &str,
        mut check: impl FnMut(&Self) -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(v) = check(self) {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "timed out after {secs}s waiting for {what}"
            );
            let _ = tokio::time::timeout(Duration::from_millis(50), self.changed.notified()).await;
        }
    }
}

/// What the Events API v2 requires of an event, as its reference lists it.
fn invalid(e: &Value) -> Vec<String> {
    let mut errors = Vec::new();
    if e["routing_key"] != ROUTING_KEY {
        errors.push("'routing_key' is invalid".to_owned());
    }
    let action = e["event_action"].as_str().unwrap_or_default();
    if !["trigger", "acknowledge", "resolve"].contains(&action) {
        errors.push("'event_action' is invalid".to_owned());
    }
    if action != "trigger" && e["dedup_key"].as_str().is_none_or(str::is_empty) {
        errors.push("'dedup_key' is missing".to_owned());
    }
    if action == "trigger" {
        for field in ["summary", "source", "severity"] {
            if e["payload"][field].as_str().is_none_or(str::is_empty) {
                errors.push(format!("'payload.{field}' is missing"));
            }
        }
        let severity = e["payload"]["severity"].as_str().unwrap_or_default();
        if !["critical", "error", "warning", "info"].contains(&severity) {
            errors.push("'payload.severity' is invalid".to_owned());
        }
    }
    errors
}

async fn enqueue(State(fake): State<FakePagerDuty>, body: String) -> (StatusCode, String) {
    let event: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    let answer = {
        let mut inner = fake.lock();
        if inner.fail_next > 0 {
            inner.fail_next -= 1;
            let answer = json!({"status": "error", "message": "Internal server error"});
            inner.refused.push((500, event));
            (StatusCode::INTERNAL_SERVER_ERROR, answer)
        } else if let errors @ [_, ..] = invalid(&event).as_slice() {
            let answer = json!({"status": "invalid event", "message": "Event object is invalid", "errors": errors});
            inner.refused.push((400, event));
            (StatusCode::BAD_REQUEST, answer)
        } else {
            let key = event["dedup_key"].as_str().unwrap_or_default().to_owned();
            let next = match event["event_action"].as_str() {
                Some("trigger") => "triggered",
                Some("acknowledge") => "acknowledged",
                _ => "resolved",
            };
            inner.states.insert(key.clone(), next.to_owned());
            inner.events.push(event);
            (
                StatusCode::ACCEPTED,
                json!({"status": "success", "message": "Event processed", "dedup_key": key}),
            )
        }
    };
    fake.changed.notify_waiters();
    (answer.0, answer.1.to_string())
}

/// `X-PagerDuty-Signature` for `body`, as PagerDuty computes it: `v1=` and
/// the hex HMAC-SHA256 of the raw body under the subscription's secret.
pub fn signature(secret: &str, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("key");
    mac.update(body.as_bytes());
    format!("v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// A v3 webhook payload (fields from PagerDuty's "Webhook Payload" and
/// "incident" data type) for an event on the incident of `dedup_key`.
pub fn webhook_body(event_type: &str, dedup_key: &str, agent: &str) -> String {
    json!({
        "event": {
            "id": format!("01DEV{}", uuid::Uuid::new_v4().simple()),
            "event_type": event_type,
            "resource_type": "incident",
            "occurred_at": "2026-12-02T03:41:22.169Z",
            "agent": {
                "html_url": "https://acme.pagerduty.com/users/PLH1HKV",
                "id": "PLH1HKV",
                "self": "https://api.pagerduty.com/users/PLH1HKV",
                "summary": agent,
                "type": "user_reference"
            },
            "client": {"name": "PagerDuty"},
            "data": {
                "id": "PGR0VU2",
                "type": "incident",
                "self": "https://api.pagerduty.com/incidents/PGR0VU2",
                "html_url": "https://acme.pagerduty.com/incidents/PGR0VU2",
                "number": 2,
                "status": if event_type == "incident.resolved" { "resolved" } else { "acknowledged" },
                "incident_key": dedup_key,
                "created_at": "2026-12-02T03:40:27Z",
                "title": "A scalebot incident",
                "urgency": "high",
                "resolve_reason": null
            }
        }
    })
    .to_string()
}
