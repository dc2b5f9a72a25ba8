//! `POST /sns`: CloudWatch alarms delivered by SNS over HTTPS.
//!
//! Every message is verified (topic allow-list, certificate URL on an SNS
//! host over HTTPS, RSA signature v1/v2 over the exact string to sign) and
//! stored, deduplicated on `MessageId`, before the 2xx; SNS redelivers what
//! the bot did not keep. Processing (incidents, subscription confirmation)
//! happens after the answer.

use axum::Router;
use axum::routing::post;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::alarm::Alarm;
use crate::chat::Message;
use crate::engine::Engine;
use crate::sns::{MessageType, SnsError, SnsMessage, Verifier, check_subscribe_url};

/// Signing certificates are small; a larger answer is not one.
const MAX_CERT_BYTES: usize = 64 * 1024;

pub struct SnsIngress {
    pub verifier: Verifier,
    /// Fetches signing certificates and confirms subscriptions: HTTPS only,
    /// no redirects, short timeouts.
    pub http: reqwest::Client,
}

impl SnsIngress {
    pub fn new(
        verifier: Verifier,
        addresses: &std::collections::BTreeMap<String, std::net::SocketAddr>,
    ) -> Result<Self, reqwest::Error> {
        let mut builder = reqwest::Client::builder()
            .https_only(true)
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(3))
            .timeout(Duration::from_secs(5));
        if let Some(pem) = verifier.extra_ca_pem() {
            builder = builder.add_root_certificate(reqwest::Certificate::from_pem(pem)?);
        }
        for (host, addr) in addresses {
            builder = builder.resolve(host, *addr);
        }
        Ok(Self {
            verifier,
            http: builder.build()?,
        })
    }

    async fn fetch_cert(&self, url: &str) -> Result<Vec<u8>, String> {
        let resp = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| format!("fetching {url}: {e}"))?;
        if !resp.status().is_success() {
            return Err(format!("fetching {url}: HTTP {}", resp.status()));
        }
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| format!("reading {url}: {e}"))?;
        if bytes.len() > MAX_CERT_BYTES {
            return Err(format!("{url} is larger than a certificate"));
        }
        Ok(bytes.to_vec())
    }
}

fn refuse(
    state: &SnsState,
    started: Instant,
    status: StatusCode,
    outcome: &str,
    text: String,
) -> Response {
    state
        .engine
        .metrics()
        .request("/sns", outcome, Some(started.elapsed().as_secs_f64()));
    tracing::info!(outcome, reason = %text, "SNS message refused");
    (status, format!("{text}\n")).into_response()
}

fn status_of(e: &SnsError) -> (StatusCode, &'static str) {
    match e {
        SnsError::TopicNotAllowed(_) => (StatusCode::FORBIDDEN, "topic_not_allowed"),
        SnsError::BadSignature | SnsError::SignatureEncoding => {
            (StatusCode::UNAUTHORIZED, "bad_signature")
        }
        _ => (StatusCode::BAD_REQUEST, "invalid"),
    }
}

/// What `/sns` needs.
#[derive(Clone)]
pub struct SnsState {
    pub engine: Arc<Engine>,
    /// `None` when no SNS topic is allowed: `/sns` then refuses everything.
    pub sns: Option<Arc<SnsIngress>>,
}

pub fn router(state: SnsState) -> Router {
    Router::new().route("/sns", post(sns)).with_state(state)
}

pub async fn sns(State(state): State<SnsState>, headers: HeaderMap, body: Bytes) -> Response {
    let started = Instant::now();
    let Some(ingress) = state.sns.clone() else {
        return refuse(
            &state,
            started,
            StatusCode::NOT_FOUND,
            "disabled",
            "SNS ingress is off: no sns.allowed_topics in the config".into(),
        );
    };
    if headers
        .get("x-amz-sns-rawdelivery")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    {
        let e = SnsError::RawDelivery;
        return refuse(
            &state,
            started,
            StatusCode::BAD_REQUEST,
            "raw_delivery",
            e.to_string(),
        );
    }
    let msg = match SnsMessage::from_json(&body) {
        Ok(m) => m,
        Err(e) => {
            return refuse(
                &state,
                started,
                StatusCode::BAD_REQUEST,
                "invalid",
                e.to_string(),
            );
        }
    };
    if let Some(declared) = headers
        .get("x-amz-sns-message-type")
        .and_then(|v| v.to_str().ok())
        && declared != msg.kind.as_str()
    {
        return refuse(
            &state,
            started,
            StatusCode::BAD_REQUEST,
            "invalid",
            format!(
                "header x-amz-sns-message-type {declared} does not match Type {}",
                msg.kind.as_str()
            ),
        );
    }
    if let Err(e) = ingress.verifier.precheck(&msg) {
        let (status, outcome) = status_of(&e);
        return refuse(&state, started, status, outcome, e.to_string());
    }
    let verified = match ingress.verifier.cached_key(&msg.signing_cert_url) {
        Some(key) => ingress.verifier.verify_with_key(&msg, &key),
        None => match ingress.fetch_cert(&msg.signing_cert_url).await {
            Ok(pem) => ingress.verifier.verify(&msg, &pem),
            // The certificate host may be briefly unreachable: a 5xx makes
            // SNS try again.
            Err(e) => {
                return refuse(
                    &state,
                    started,
                    StatusCode::SERVICE_UNAVAILABLE,
                    "cert_unavailable",
                    e,
                );
            }
        },
    };
    if let Err(e) = verified {
        let (status, outcome) = status_of(&e);
        return refuse(&state, started, status, outcome, e.to_string());
    }
    let engine = state.engine.clone();
    let now = engine.now().timestamp_millis();
    let body_text = String::from_utf8_lossy(&body);
    let record = crate::store::SnsRecord {
        message_id: msg.message_id.clone(),
        topic: msg.topic_arn.clone(),
        kind: msg.kind.as_str().to_owned(),
        body: body_text.into_owned(),
        received_ms: now,
    };
    match engine.store().record_sns(record).await {
        Ok(true) => {}
        Ok(false) => {
            state.engine.metrics().request(
                "/sns",
                "duplicate",
                Some(started.elapsed().as_secs_f64()),
            );
            return (StatusCode::OK, "duplicate\n").into_response();
        }
        Err(e) => {
            tracing::error!(error = %e, "SNS message not stored");
            return refuse(
                &state,
                started,
                StatusCode::SERVICE_UNAVAILABLE,
                "store_error",
                "not stored; retry".into(),
            );
        }
    }
    state
        .engine
        .metrics()
        .request("/sns", "ok", Some(started.elapsed().as_secs_f64()));
    let e2 = engine.clone();
    engine.spawn(async move { process(e2, ingress, msg).await });
    (StatusCode::OK, "stored\n").into_response()
}

/// Processes what an earlier run stored but did not get to (it stopped
/// between the 2xx and the end of processing): nothing SNS was told is
/// stored is lost.
pub async fn replay_unprocessed(engine: Arc<Engine>, ingress: Arc<SnsIngress>) {
    let pending = match engine.store().unprocessed_sns(10_000).await {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(error = %e, "stored SNS messages not read");
            return;
        }
    };
    if !pending.is_empty() {
        tracing::info!(
            count = pending.len(),
            "processing SNS messages stored before a restart"
        );
    }
    for p in pending {
        match SnsMessage::from_json(p.body.as_bytes()) {
            Ok(msg) => process(engine.clone(), ingress.clone(), msg).await,
            Err(e) => {
                tracing::warn!(message_id = %p.message_id, error = %e, "stored SNS message unreadable")
            }
        }
    }
}

async fn process(engine: Arc<Engine>, ingress: Arc<SnsIngress>, msg: SnsMessage) {
    let incidents = engine.settings().channels.incidents.clone();
    let result: Result<(), String> = match msg.kind {
        MessageType::Notification => match Alarm::from_message(&msg.message) {
            Ok(alarm) => engine.on_alarm(alarm).await.map_err(|e| e.to_string()),
            Err(e) => Err(format!("not a CloudWatch alarm: {e}")),
        },
        MessageType::SubscriptionConfirmation => {
            let url = msg.subscribe_url.clone().unwrap_or_default();
            match check_subscribe_url(&url, ingress.verifier.extra_hosts()) {
                Err(e) => Err(e.to_string()),
                Ok(()) => match ingress.http.get(&url).send().await {
                    Ok(r) if r.status().is_success() => {
                        let text = format!(
                            "🔔 Subscribed to SNS topic `{}`: its alarms now open incidents here.",
                            msg.topic_arn
                        );
                        engine
                            .chat()
                            .post(&incidents, None, &Message::text(text))
                            .await
                            .map(|_| ())
                            .map_err(|e| e.to_string())
                    }
                    Ok(r) => Err(format!("confirming the subscription: HTTP {}", r.status())),
                    Err(e) => Err(format!("confirming the subscription: {e}")),
                },
            }
        }
        MessageType::UnsubscribeConfirmation => {
            let text = format!(
                "🔕 SNS topic `{}` unsubscribed this endpoint.",
                msg.topic_arn
            );
            engine
                .chat()
                .post(&incidents, None, &Message::text(text))
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        }
    };
    match result {
        Ok(()) => {
            if let Err(e) = engine
                .store()
                .mark_sns_processed(&msg.message_id, engine.now().timestamp_millis())
                .await
            {
                tracing::warn!(error = %e, "SNS message not marked processed");
            }
        }
        Err(e) => {
            tracing::warn!(message_id = %msg.message_id, error = %e, "SNS message not processed")
        }
    }
}
