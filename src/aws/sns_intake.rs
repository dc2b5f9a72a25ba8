//! `POST /sns`: CloudWatch alarms delivered by SNS over HTTPS.
//!
//! Every message is verified (topic allow-list, certificate URL on the SNS
//! endpoint of the topic's region over HTTPS, a certificate issued to SNS
//! and fetched under the limits of `sns_certs.rs`, RSA signature v1/v2
//! over the exact string to sign) and
//! stored, deduplicated on `MessageId`, before the 2xx; SNS redelivers what
//! the bot did not keep. Processing (incidents, subscription confirmation)
//! happens after the answer, by the work queue (`engine::inbox`) of
//! whichever replica claims the message first.

use axum::Router;
use axum::routing::post;
use std::sync::Arc;
use std::time::Duration;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::alarm::Alarm;

use super::sns_certs::{CertFailure, CertFetcher, CertLimits};
use crate::engine::inbox::{Decoder, notification};
use crate::engine::{Engine, Inbound};
use crate::metrics::Outcome;
use crate::sns::{MessageType, SnsError, SnsMessage, Verifier, check_subscribe_url};

pub const ROUTE: &str = "/sns";

pub struct SnsIngress {
    pub verifier: Arc<Verifier>,
    /// Fetches signing certificates and confirms subscriptions: HTTPS only,
    /// no redirects, short timeouts.
    pub http: reqwest::Client,
    /// Certificates on demand: deduplicated, failures remembered, capped.
    pub certs: CertFetcher,
}

impl SnsIngress {
    pub fn new(
        verifier: Verifier,
        addresses: &std::collections::BTreeMap<String, std::net::SocketAddr>,
        limits: CertLimits,
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
        let http = builder.build()?;
        let verifier = Arc::new(verifier);
        Ok(Self {
            certs: CertFetcher::new(http.clone(), verifier.clone(), limits),
            verifier,
            http,
        })
    }
}

/// Why a delivery is refused: its status (a 5xx makes SNS retry), its
/// one-line body and its `outcome` label; nothing is stored.
#[derive(Debug, thiserror::Error)]
enum Rejection {
    #[error("SNS ingress is off: no sns.allowed_topics in the config")]
    Disabled,
    /// `x-amz-sns-rawdelivery: true`.
    #[error("{}", SnsError::RawDelivery)]
    RawDelivery,
    /// The body is not an SNS message (whatever the reason, raw delivery
    /// without its header included).
    #[error(transparent)]
    Unparsed(SnsError),
    #[error("header x-amz-sns-message-type {declared} does not match Type {kind}")]
    TypeMismatch {
        declared: String,
        kind: &'static str,
    },
    /// The topic, certificate URL, certificate or signature check failed.
    #[error(transparent)]
    Unverified(SnsError),
    /// The certificate host may be briefly unreachable, or this minute's
    /// certificate fetches are used up: a 5xx makes SNS try again.
    #[error("{0}")]
    CertUnavailable(String),
    #[error("{}", CertFailure::Capped)]
    CertFetchCapped,
    #[error("not stored; retry")]
    NotStored,
}

impl Rejection {
    fn status(&self) -> StatusCode {
        match self {
            Rejection::Disabled => StatusCode::NOT_FOUND,
            Rejection::RawDelivery | Rejection::Unparsed(_) | Rejection::TypeMismatch { .. } => {
                StatusCode::BAD_REQUEST
            }
            Rejection::Unverified(SnsError::TopicNotAllowed(_)) => StatusCode::FORBIDDEN,
            Rejection::Unverified(SnsError::BadSignature | SnsError::SignatureEncoding) => {
                StatusCode::UNAUTHORIZED
            }
            Rejection::Unverified(_) => StatusCode::BAD_REQUEST,
            Rejection::CertUnavailable(_) | Rejection::CertFetchCapped | Rejection::NotStored => {
                StatusCode::SERVICE_UNAVAILABLE
            }
        }
    }

    fn outcome(&self) -> &'static str {
        match self {
            Rejection::Disabled => "disabled",
            Rejection::RawDelivery => "raw_delivery",
            Rejection::Unparsed(_) | Rejection::TypeMismatch { .. } => "invalid",
            Rejection::Unverified(SnsError::TopicNotAllowed(_)) => "topic_not_allowed",
            Rejection::Unverified(SnsError::BadSignature | SnsError::SignatureEncoding) => {
                "bad_signature"
            }
            Rejection::Unverified(_) => "invalid",
            Rejection::CertUnavailable(_) => "cert_unavailable",
            Rejection::CertFetchCapped => "cert_fetch_capped",
            Rejection::NotStored => "store_error",
        }
    }
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        let outcome = self.outcome();
        tracing::info!(outcome, reason = %self, "SNS message refused");
        (
            self.status(),
            Extension(Outcome(outcome)),
            format!("{self}\n"),
        )
            .into_response()
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
    Router::new().route(ROUTE, post(sns)).with_state(state)
}

async fn sns(
    State(state): State<SnsState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Rejection> {
    let ingress = state.sns.clone().ok_or(Rejection::Disabled)?;
    if headers
        .get("x-amz-sns-rawdelivery")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    {
        return Err(Rejection::RawDelivery);
    }
    let msg = SnsMessage::from_json(&body).map_err(Rejection::Unparsed)?;
    if let Some(declared) = headers
        .get("x-amz-sns-message-type")
        .and_then(|v| v.to_str().ok())
        && declared != msg.kind.as_str()
    {
        return Err(Rejection::TypeMismatch {
            declared: declared.to_owned(),
            kind: msg.kind.as_str(),
        });
    }
    ingress
        .verifier
        .precheck(&msg)
        .map_err(Rejection::Unverified)?;
    let key = ingress
        .certs
        .key(&msg.signing_cert_url)
        .await
        .map_err(|failure| match failure {
            CertFailure::Unavailable(why) => Rejection::CertUnavailable(why),
            CertFailure::Invalid(e) => Rejection::Unverified(e),
            CertFailure::Capped => Rejection::CertFetchCapped,
        })?;
    ingress
        .verifier
        .verify_with_key(&msg, &key)
        .map_err(Rejection::Unverified)?;
    let engine = state.engine.clone();
    let now = engine.now().timestamp_millis();
    let body_text = String::from_utf8_lossy(&body);
    let order = match msg.kind {
        MessageType::Notification => Alarm::order_of(&msg.message),
        _ => None,
    };
    let (alarm_key, changed_ms) = order.map_or((None, None), |(k, c)| (Some(k), c));
    let record = crate::store::SnsRecord {
        message_id: msg.message_id.clone(),
        topic: msg.topic_arn.clone(),
        kind: msg.kind.as_str().to_owned(),
        body: body_text.into_owned(),
        received_ms: now,
        alarm_key,
        changed_ms,
    };
    match engine.store().record_sns(record).await {
        Ok(true) => {}
        Ok(false) => {
            return Ok((
                StatusCode::OK,
                Extension(Outcome("duplicate")),
                "duplicate\n",
            )
                .into_response());
        }
        Err(e) => {
            tracing::error!(error = %e, "SNS message not stored");
            return Err(Rejection::NotStored);
        }
    }
    engine.wake_inbox();
    Ok((StatusCode::OK, "stored\n").into_response())
}

/// Turns a stored SNS message into what the engine takes in, confirming a
/// subscription with AWS on the way.
pub struct SnsDecoder(pub Arc<SnsIngress>);

#[async_trait::async_trait]
impl Decoder for SnsDecoder {
    async fn decode(&self, body: &str) -> Result<Inbound, String> {
        let msg = match SnsMessage::from_json(body.as_bytes()) {
            Ok(msg) => msg,
            // Stored only after it parsed: this is not a retryable state.
            Err(e) => {
                return Ok(Inbound::NotUnderstood {
                    topic: "(unknown)".into(),
                    subject: None,
                    why: format!("the stored message cannot be read again ({e})"),
                });
            }
        };
        match msg.kind {
            MessageType::Notification => Ok(notification(&msg)),
            MessageType::SubscriptionConfirmation => confirm(&self.0, &msg).await,
            MessageType::UnsubscribeConfirmation => Ok(Inbound::Unsubscribed {
                topic: msg.topic_arn.clone(),
            }),
        }
    }
}

/// Confirms a subscription by visiting its `SubscribeURL` (checked like a
/// certificate URL first).
async fn confirm(ingress: &SnsIngress, msg: &SnsMessage) -> Result<Inbound, String> {
    let url = msg.subscribe_url.clone().unwrap_or_default();
    check_subscribe_url(&url, ingress.verifier.extra_hosts()).map_err(|e| e.to_string())?;
    match ingress.http.get(&url).send().await {
        Ok(r) if r.status().is_success() => Ok(Inbound::Subscribed {
            topic: msg.topic_arn.clone(),
        }),
        Ok(r) => Err(format!("confirming the subscription: HTTP {}", r.status())),
        Err(e) => Err(format!("confirming the subscription: {e}")),
    }
}
