//! Amazon SNS messages delivered over HTTP(S): parsing and signature checks.
//!
//! Anyone can POST to a public `/sns` endpoint, so nothing in a message is
//! believed until its signature verifies against a certificate that really
//! came from SNS. This module does the parts that need no network: it parses
//! the body, checks the URLs a message points at, builds the exact string SNS
//! signed and verifies the RSA signature. Fetching the certificate (and
//! confirming a subscription) is left to the HTTP caller, which fetches only
//! when [`Verifier::cached_key`] has nothing for the URL. A certificate URL
//! must be on the SNS endpoint of the topic's own region, and the
//! certificate must be issued to SNS (`names.rs`).

pub mod names;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use dashmap::DashMap;
use ring::signature::{
    RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY, RSA_PKCS1_2048_8192_SHA256,
    RsaPublicKeyComponents,
};
use serde::Deserialize;
use url::Url;
use x509_parser::pem::parse_x509_pem;
use x509_parser::public_key::PublicKey;

/// Why a message was refused. Each message is meant to be read by whoever
/// set up the subscription, so it says what is wrong and, where it can, what
/// to change.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum SnsError {
    #[error("the request body is not an SNS message in JSON: {0}")]
    Malformed(String),
    #[error(
        "raw message delivery is on: SNS then sends no signature; turn RawMessageDelivery off for this subscription"
    )]
    RawDelivery,
    #[error(
        "the SNS message type {0:?} is not one this endpoint handles (Notification, SubscriptionConfirmation, UnsubscribeConfirmation)"
    )]
    UnknownType(String),
    #[error("the SNS {kind} has no {field} field, which its signature covers")]
    MissingField {
        kind: &'static str,
        field: &'static str,
    },
    #[error(
        "the topic {0} is not in the allowed topic list; add it to the SNS settings to accept it"
    )]
    TopicNotAllowed(String),
    #[error("the signing certificate URL {url:?} is refused: {reason}")]
    CertUrl { url: String, reason: &'static str },
    #[error("the subscribe URL {url:?} is refused: {reason}")]
    SubscribeUrl { url: String, reason: &'static str },
    #[error(
        "the signature version {0:?} is not supported; only 1 (SHA1withRSA) and 2 (SHA256withRSA) are"
    )]
    UnsupportedSignatureVersion(String),
    #[error("the signature is not valid base64")]
    SignatureEncoding,
    #[error("the signing certificate could not be read: {0}")]
    Certificate(String),
    #[error("the signing certificate is outside its validity period")]
    CertificateExpired,
    #[error(
        "the signing certificate is issued to {0}, not to SNS (sns.amazonaws.com): it is not one SNS signs with"
    )]
    CertificateSubject(String),
    #[error("the signing certificate does not hold an RSA public key, which SNS always uses")]
    NotRsa,
    #[error(
        "the signature does not match the message: it was changed on the way or not signed by the certificate's key"
    )]
    BadSignature,
    #[error("the extra trusted certificate in the SNS settings is not a PEM certificate: {0}")]
    ExtraCa(String),
}

/// The three kinds of message SNS sends to an HTTP(S) subscriber; each is
/// signed over a different set of fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum MessageType {
    Notification,
    SubscriptionConfirmation,
    UnsubscribeConfirmation,
}

impl MessageType {
    pub fn as_str(self) -> &'static str {
        match self {
            MessageType::Notification => "Notification",
            MessageType::SubscriptionConfirmation => "SubscriptionConfirmation",
            MessageType::UnsubscribeConfirmation => "UnsubscribeConfirmation",
        }
    }
}

/// An SNS HTTP(S) delivery body. Values are kept as the exact strings SNS
/// sent, because the signature covers those bytes, not any re-rendering.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SnsMessage {
    #[serde(rename = "Type")]
    pub kind: MessageType,
    pub message_id: String,
    pub topic_arn: String,
    #[serde(default)]
    pub subject: Option<String>,
    pub message: String,
    pub timestamp: String,
    pub signature_version: String,
    pub signature: String,
    /// Lambda's SNS records spell it `SigningCertUrl`; accepting both lets the
    /// same type serve a record that was forwarded from there.
    #[serde(rename = "SigningCertURL", alias = "SigningCertUrl")]
    pub signing_cert_url: String,
    #[serde(default, rename = "UnsubscribeURL", alias = "UnsubscribeUrl")]
    pub unsubscribe_url: Option<String>,
    #[serde(default, rename = "SubscribeURL", alias = "SubscribeUrl")]
    pub subscribe_url: Option<String>,
    #[serde(default)]
    pub token: Option<String>,
    #[serde(default)]
    pub message_attributes: Option<serde_json::Value>,
}

impl SnsMessage {
    /// Parses a delivery body whatever its `Content-Type` says (SNS sends
    /// `text/plain` by default). A body with neither `Signature` nor
    /// `SigningCertURL` is what raw message delivery produces, so it gets an
    /// error that names the setting rather than a bare "missing field".
    pub fn from_json(body: &[u8]) -> Result<Self, SnsError> {
        let value: serde_json::Value =
            serde_json::from_slice(body).map_err(|e| SnsError::Malformed(e.to_string()))?;
        let object = value
            .as_object()
            .ok_or_else(|| SnsError::Malformed("the body is not a JSON object".into()))?;
        let has = |key: &str| object.contains_key(key);
        if !has("Signature") && !has("SigningCertURL") && !has("SigningCertUrl") {
            return Err(SnsError::RawDelivery);
        }
        if let Some(kind) = object.get("Type") {
            let kind = kind.as_str().unwrap_or_default();
            if !matches!(
                kind,
                "Notification" | "SubscriptionConfirmation" | "UnsubscribeConfirmation"
            ) {
                return Err(SnsError::UnknownType(kind.to_string()));
            }
        }
        serde_json::from_value(value).map_err(|e| SnsError::Malformed(e.to_string()))
    }

    /// SNS's own timestamp (RFC 3339 with `Z`), for callers that refuse stale
    /// replays; `None` when it does not parse.
    pub fn sent_at(&self) -> Option<DateTime<Utc>> {
        DateTime::parse_from_rfc3339(&self.timestamp)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }
}

/// Builds the exact text SNS signed. The key order is fixed per message type
/// and no other field may appear, or a genuine signature will not verify.
pub fn string_to_sign(msg: &SnsMessage) -> Result<String, SnsError> {
    let kind = msg.kind.as_str();
    let required = |field: &'static str, value: &Option<String>| -> Result<String, SnsError> {
        value.clone().ok_or(SnsError::MissingField { kind, field })
    };
    let mut pairs: Vec<(&str, String)> = vec![
        ("Message", msg.message.clone()),
        ("MessageId", msg.message_id.clone()),
    ];
    match msg.kind {
        MessageType::Notification => {
            if let Some(subject) = &msg.subject {
                pairs.push(("Subject", subject.clone()));
            }
            pairs.push(("Timestamp", msg.timestamp.clone()));
        }
        MessageType::SubscriptionConfirmation | MessageType::UnsubscribeConfirmation => {
            pairs.push((
                "SubscribeURL",
                required("SubscribeURL", &msg.subscribe_url)?,
            ));
            pairs.push(("Timestamp", msg.timestamp.clone()));
            pairs.push(("Token", required("Token", &msg.token)?));
        }
    }
    pairs.push(("TopicArn", msg.topic_arn.clone()));
    pairs.push(("Type", kind.to_string()));

    let mut out = String::new();
    for (key, value) in pairs {
        out.push_str(key);
        out.push('\n');
        out.push_str(&value);
        out.push('\n');
    }
    Ok(out)
}

/// The AWS SDKs' host rule, `^sns\.[a-zA-Z0-9-]{3,}\.amazonaws\.com(\.cn)?$`,
/// written out so no regex engine is needed for one pattern.
fn is_sns_host(host: &str) -> bool {
    let Some(rest) = host.strip_prefix("sns.") else {
        return false;
    };
    let Some(region) = rest
        .strip_suffix(".amazonaws.com")
        .or_else(|| rest.strip_suffix(".amazonaws.com.cn"))
    else {
        return false;
    };
    region.len() >= 3
        && region
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// Whether the URL's host is one the settings add to SNS's: `host` (any
/// port) or `host:port` (that port only).
fn is_extra_host(url: &Url, extra_hosts: &[String]) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    let with_port = url.port().map(|p| format!("{host}:{p}"));
    extra_hosts.iter().any(|h| {
        h.eq_ignore_ascii_case(host)
            || with_port
                .as_deref()
                .is_some_and(|hp| h.eq_ignore_ascii_case(hp))
    })
}

/// Shared by the two URL checks: a URL is only trusted when fetching it can
/// only reach SNS (or a host the operator named in the settings).
fn check_sns_url(url: &str, extra_hosts: &[String]) -> Result<Url, &'static str> {
    let parsed = Url::parse(url).map_err(|_| "it is not a valid URL")?;
    if parsed.scheme() != "https" {
        return Err("it is not https");
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("it carries a user name or password");
    }
    let host = parsed.host_str().ok_or("it has no host")?;
    if is_extra_host(&parsed, extra_hosts) {
        return Ok(parsed);
    }
    if !is_sns_host(host) {
        return Err("its host is not an SNS endpoint (sns.<region>.amazonaws.com)");
    }
    // A non-standard port on an AWS host is not something SNS ever uses.
    if parsed.port().is_some() {
        return Err("it names a port, which SNS URLs never do");
    }
    Ok(parsed)
}

/// Refuses a certificate URL an attacker could point at their own key.
/// `extra_hosts` exists for test servers and comes only from explicit
/// configuration; those hosts may use any port.
pub fn check_cert_url(url: &str, extra_hosts: &[String]) -> Result<(), SnsError> {
    let refuse = |reason| SnsError::CertUrl {
        url: url.to_string(),
        reason,
    };
    let parsed = check_sns_url(url, extra_hosts).map_err(refuse)?;
    if !parsed.path().ends_with(".pem") {
        return Err(refuse("its path does not end in .pem"));
    }
    Ok(())
}

/// Refuses a certificate URL on another region's SNS endpoint than the
/// topic's (SNS serves a topic's certificate from the topic's own region),
/// so one allowed topic does not let a sender make the bot fetch from
/// every region. An extra host from the settings is not tied to a region.
pub fn check_cert_region(
    url: &str,
    topic_arn: &str,
    extra_hosts: &[String],
) -> Result<(), SnsError> {
    let parsed = Url::parse(url).map_err(|_| SnsError::CertUrl {
        url: url.to_string(),
        reason: "it is not a valid URL",
    })?;
    let host = parsed.host_str().unwrap_or_default();
    if is_extra_host(&parsed, extra_hosts) || names::is_region_endpoint(host, topic_arn) {
        return Ok(());
    }
    Err(SnsError::CertUrl {
        url: url.to_string(),
        reason: "its host is not the SNS endpoint of the topic's region",
    })
}

/// Refuses a subscribe URL that is not SNS, so confirming a subscription can
/// not be turned into a request to an arbitrary (possibly internal) host.
pub fn check_subscribe_url(url: &str, extra_hosts: &[String]) -> Result<(), SnsError> {
    check_sns_url(url, extra_hosts)
        .map(|_| ())
        .map_err(|reason| SnsError::SubscribeUrl {
            url: url.to_string(),
            reason,
        })
}

/// The RSA key taken from a signing certificate. The certificate itself is
/// not kept: only the key and its expiry matter for later messages.
#[derive(Debug, Clone)]
pub struct SigningKey {
    components: RsaPublicKeyComponents<Vec<u8>>,
    not_after: i64,
}

impl SigningKey {
    /// Reads the key out of a PEM certificate fetched from `cert_url`,
    /// refusing one outside its validity period, not issued to SNS
    /// ([`names::issued_to_sns`]) or without an RSA key.
    pub fn from_pem(pem: &[u8], cert_url: &str) -> Result<Self, SnsError> {
        let (_, pem) = parse_x509_pem(pem).map_err(|e| SnsError::Certificate(e.to_string()))?;
        let cert = pem
            .parse_x509()
            .map_err(|e| SnsError::Certificate(e.to_string()))?;
        if !cert.validity().is_valid() {
            return Err(SnsError::CertificateExpired);
        }
        let issued_to = names::subject_names(&cert);
        let endpoint = Url::parse(cert_url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
            .filter(|h| is_sns_host(h));
        if !names::issued_to_sns(&issued_to, endpoint.as_deref()) {
            let shown = if issued_to.is_empty() {
                "no name".to_owned()
            } else {
                issued_to.join(", ")
            };
            return Err(SnsError::CertificateSubject(shown));
        }
        let key = cert
            .public_key()
            .parsed()
            .map_err(|e| SnsError::Certificate(e.to_string()))?;
        let PublicKey::RSA(rsa) = key else {
            return Err(SnsError::NotRsa);
        };
        // DER integers carry a leading zero when the top bit is set; ring
        // wants minimal big-endian bytes.
        let minimal = |bytes: &[u8]| {
            let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
            bytes[start..].to_vec()
        };
        Ok(Self {
            components: RsaPublicKeyComponents {
                n: minimal(rsa.modulus),
                e: minimal(rsa.exponent),
            },
            not_after: cert.validity().not_after.timestamp(),
        })
    }

    fn expired(&self) -> bool {
        Utc::now().timestamp() > self.not_after
    }
}

/// What a deployment trusts, plus the certificate keys already fetched.
/// One per process: the cache saves a certificate fetch on every message.
#[derive(Debug, Default)]
pub struct Verifier {
    extra_hosts: Vec<String>,
    extra_ca_pem: Option<Vec<u8>>,
    allowed_topics: Vec<String>,
    keys: DashMap<String, Arc<SigningKey>>,
}

impl Verifier {
    /// An empty `allowed_topics` accepts no topic: a forgotten setting must
    /// not open the endpoint to every topic in every account.
    pub fn new(allowed_topics: Vec<String>) -> Self {
        Self {
            allowed_topics,
            ..Self::default()
        }
    }

    /// Hosts besides SNS allowed to serve certificates and subscribe URLs;
    /// only for test setups, and only from explicit configuration.
    pub fn with_extra_hosts(mut self, hosts: Vec<String>) -> Self {
        self.extra_hosts = hosts;
        self
    }

    /// A CA (or self-signed certificate) the caller's HTTPS client should
    /// also trust when fetching from an extra host. Checked here so a bad
    /// setting fails at start-up rather than on the first alarm.
    pub fn with_extra_ca_pem(mut self, pem: Vec<u8>) -> Result<Self, SnsError> {
        let (_, parsed) = parse_x509_pem(&pem).map_err(|e| SnsError::ExtraCa(e.to_string()))?;
        parsed
            .parse_x509()
            .map_err(|e| SnsError::ExtraCa(e.to_string()))?;
        self.extra_ca_pem = Some(pem);
        Ok(self)
    }

    pub fn extra_hosts(&self) -> &[String] {
        &self.extra_hosts
    }

    pub fn extra_ca_pem(&self) -> Option<&[u8]> {
        self.extra_ca_pem.as_deref()
    }

    pub fn topic_allowed(&self, topic_arn: &str) -> bool {
        self.allowed_topics.iter().any(|t| t == topic_arn)
    }

    /// The key for a certificate URL if it was fetched before and has not
    /// expired since; the caller fetches only when this is `None`.
    pub fn cached_key(&self, url: &str) -> Option<Arc<SigningKey>> {
        let key = self.keys.get(url)?.clone();
        if key.expired() {
            self.keys.remove(url);
            return None;
        }
        Some(key)
    }

    pub fn insert(&self, url: &str, key: SigningKey) -> Arc<SigningKey> {
        let key = Arc::new(key);
        self.keys.insert(url.to_string(), key.clone());
        key
    }

    /// The checks that need no certificate, in the order SNS documents:
    /// topic first, so messages for other topics cost no fetch at all; then
    /// the certificate URL (an SNS host, the topic's region).
    pub fn precheck(&self, msg: &SnsMessage) -> Result<(), SnsError> {
        if !self.topic_allowed(&msg.topic_arn) {
            return Err(SnsError::TopicNotAllowed(msg.topic_arn.clone()));
        }
        check_cert_url(&msg.signing_cert_url, &self.extra_hosts)?;
        check_cert_region(&msg.signing_cert_url, &msg.topic_arn, &self.extra_hosts)?;
        signature_algorithm(&msg.signature_version)?;
        Ok(())
    }

    /// Reads the key of the certificate fetched from `cert_url` (checked
    /// as [`SigningKey::from_pem`] does) and caches it under that URL.
    pub fn learn(&self, cert_url: &str, cert_pem: &[u8]) -> Result<Arc<SigningKey>, SnsError> {
        let key = SigningKey::from_pem(cert_pem, cert_url)?;
        Ok(self.insert(cert_url, key))
    }

    /// Verifies `msg` with the certificate the caller fetched from its
    /// `SigningCertURL`, and caches the certificate's key under that URL.
    pub fn verify(&self, msg: &SnsMessage, cert_pem: &[u8]) -> Result<(), SnsError> {
        self.precheck(msg)?;
        let key = self.learn(&msg.signing_cert_url, cert_pem)?;
        verify_signature(msg, &key)
    }

    /// Verifies `msg` with a key already at hand (usually from
    /// [`Verifier::cached_key`]).
    pub fn verify_with_key(&self, msg: &SnsMessage, key: &SigningKey) -> Result<(), SnsError> {
        self.precheck(msg)?;
        if key.expired() {
            return Err(SnsError::CertificateExpired);
        }
        verify_signature(msg, key)
    }
}

type Algorithm = &'static ring::signature::RsaParameters;

/// Version 1 is SHA1withRSA, version 2 SHA256withRSA. Anything else is
/// refused rather than guessed, so a downgrade can not be slipped in.
fn signature_algorithm(version: &str) -> Result<Algorithm, SnsError> {
    match version {
        "1" => Ok(&RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY),
        "2" => Ok(&RSA_PKCS1_2048_8192_SHA256),
        other => Err(SnsError::UnsupportedSignatureVersion(other.to_string())),
    }
}

fn verify_signature(msg: &SnsMessage, key: &SigningKey) -> Result<(), SnsError> {
    use base64::Engine as _;
    let algorithm = signature_algorithm(&msg.signature_version)?;
    let signature = base64::engine::general_purpose::STANDARD
        .decode(msg.signature.trim())
        .map_err(|_| SnsError::SignatureEncoding)?;
    let text = string_to_sign(msg)?;
    key.components
        .verify(algorithm, text.as_bytes(), &signature)
        .map_err(|_| SnsError::BadSignature)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use ring::rand::SystemRandom;
    use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
    use std::sync::OnceLock;

    const TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:chatops-alarms";
    const CERT_URL: &str = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem";

    /// ring can verify SHA1withRSA but not sign with it, so version 1 is
    /// tested against signatures OpenSSL made (`openssl dgst -sha1 -sign`)
    /// with this throwaway key over `notification(Some("ALARM: x"))`. That
    /// also checks the string to sign against an independent signer.
    const OPENSSL_KEY_PEM: &str = "-----BEGIN PRIVATE KEY-----
MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQDLsqvtPhChLyFx
heW5wwxIj1QbQIPmRmrQ3UZdK/TNDEfP0SVlIH/3YixpQDI5iZUlGar8fL50m4XB
LoT/iRDDtDGwBACkG+CvM+QvAhEZxh5KzwiGbduANPtGNHrVBl2MIMjSWCgk+uZi
PPp33i0N9PR1AQoSpQmm89Dy+s8dVWEk2p7ekfgUaFbOtqgBcNbfmMUiQl+0z0SV
qGocUTTQHZrcYiQUUsBZq48JF6Dn3vYLvEM331RnHM++cElfBk6zu422iabZWLqf
mU/Hp2EsjrD/+6BMp8iVDoZQourbhEl5CfrRptAjG6MGzK8e9V7EoahOoQvPugCI
2YExaMHFAgMBAAECggEAILXEXgiFaxzCZhR2W2oy4sQBYY7un1/Xb0rZLcUNPpAm
R/zx4FdjtToSn6QrbInnZVnF113Ax8Dhra/ms5IzGvoosHc0EyZW4kuW7OWMEXN7
EdBFMjEZ+nCHmTJ8NxEanJH3La/yYl3X+RaJsg3/dipLxy4vi+bssd6dQyd7ct4l
gYC8NBw0EqHb063+2+6OTgNe+jii801pPCCSx4pY8DV8JELcBk6OmYlhOG6lH9Da
47dn3MSzA2G1/QqanhcNtEvvwvztOyaKh9Iuk7lvVOnLeNzUjXzjU/fpjFRDwZYg
bBA0RVKmOpomamqLTVmiW5AFiGDdqYXNCKB9uQ8HAQKBgQD1CjhhDsi1cO4o1Ouj
SBUPwJJF/8h3q/bL9qDZpm9d6pva8My6t5gR567dMhwTN9WeumDDothzkbS95O27
EzDBgBrWQkXgd4OOYsMajpJB6J5/14/ZeLlRyAb+EfZdwb+y/xbym83wN+xNqMEC
/BkEq1KrRKzFV1V6oqG+LG1lNQKBgQDUzxLHFVjGgqPDyFHRApeQU5/qtheBk+Fo
6xNEXjXlbfY2AG4xMOF7jenASyntqg2OeUrevRn0Y6TAoiGN/MjoSqX4L42fEg0U
iTN2LIfEIleESTRHywrCSTRZ7GkFnLCXlzjJ/2J4QyLaqBGQ5PRLkmQTgXqyON4v
VtsS3cBMUQKBgEXE1zCraPJgaS8vELi4+WY2ym8r2QRZ7jc8zaeq/+KZvi6kiWZQ
h/fxI5TPg7blGunK32pUn5SoU/INkLLHUAaIVxvSWtsCrG6KKEsTdQlXFmoIEmk1
Om7SqUsGCkO/urlYcEw7mHNhOOMTvYEADo+JyEwDjb3SlAAK9kqTk8JRAoGBAJwm
NUkPSMygHzoRSrdqh3vHYJgAdM8Hi2ZI1yJbXoCyZu7I8hH2I/1c7B/FB0b0eG4K
Yf1+FAVW+BTA4o4k5eZMn+u0ON53iFGBOtmDYztvV3ghntLvET3uKROyfH05s/oH
ZAwT8FT+LhzzJbCDzx2ElRoa78TGJYHm4Wi+fdOBAoGABFNPbPlpUgv+bJKIAKcV
EwE4JvKG3t8Gz5BnGMoCzQvQrFpb6vwTLs7Spmjw2U0WUYOt5GEf2uCbLN3W9+sR
OhlWX51ZVKTmMOSdeTzjlIrpiKch50VOrfQQo6V02GfBs45bLxpAc4AZPTb1TZxM
zJw+vT6E2cLqoBSSK5eIde8=
-----END PRIVATE KEY-----\n";
    const OPENSSL_SIG_V1: &str = "n9NghSqMqixP0HXenfPUqLEEd4/M5eEgAHRg7SSTUPYWY9P5mHdhPtgJ7FoZIMb/4WWbK6I9hAznHR5bvAQqG27Zk/tOoGhmm4Egltxwg/j/HRwjdBx/0B8bNQDATZU8B9/JJE22FPYYcmR3Z7cs0cb3CKhJy6paVNNnwdd+aI5uHpXfRuSK48JPJrEMPhYun0KV3SwiBnGos4RMnRS061w/cN89WXNDgybYBvWJoAPSxPQ/GRD8nZRubdalQ7LXAgc2/huX+sfYVGfX8hVbjvz3Mdxk9x/1HGBKsIvsmoLPipXZmhRi5rzXKxPoKPwI62DnJKkZ3zo3zPLBlkQkrQ==";
    const OPENSSL_SIG_V2: &str = "acqSCyW1zoT08/egwz/JIKpp0xnDHpfSVO2DIuAR35kNvkQCQdiaj65OeSImmhFpw1UKBc1UfFAfJy8wE6U4+br06fBmE68BELPZWaLxodZKVb90BKqUtDhMHemcugi8g4dxOZ1nKObHMWZW0JCiwmsYP9iQHJCkyl2Gn/CfS0vJz8ZOtQyqhn7SqiJUd7E6ec0kaXCrJVP7XbhmY708vy2TfzlOIzLro0EOsndu34joAEDZW+I3G3SR9OajbhmMjcRU1bW8T4gaz0CGDY4DJMd10lAMHpgVy1spy58xdCTPi6EImzzePbH1NT4SxWezWj5HZy9OASSD7J7r5gi7hw==";

    /// A certificate for the OpenSSL key, made here so its validity period
    /// does not depend on when the vectors were generated.
    fn openssl_cert_pem() -> &'static [u8] {
        static PEM: OnceLock<String> = OnceLock::new();
        PEM.get_or_init(|| {
            let key = rcgen::KeyPair::from_pem(OPENSSL_KEY_PEM).expect("OpenSSL key");
            rcgen::CertificateParams::new(vec!["sns.amazonaws.com".into()])
                .expect("params")
                .self_signed(&key)
                .expect("self-signed cert")
                .pem()
        })
        .as_bytes()
    }

    fn openssl_signed(version: &str) -> SnsMessage {
        let mut msg = notification(Some("ALARM: x"));
        msg.signature_version = version.into();
        msg.signature = match version {
            "1" => OPENSSL_SIG_V1,
            _ => OPENSSL_SIG_V2,
        }
        .into();
        msg
    }

    struct TestSigner {
        cert_pem: String,
        key: RsaKeyPair,
    }

    /// RSA key generation is slow, so every test shares one key and cert.
    fn signer() -> &'static TestSigner {
        static SIGNER: OnceLock<TestSigner> = OnceLock::new();
        SIGNER.get_or_init(|| {
            let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).expect("RSA key");
            let params =
                rcgen::CertificateParams::new(vec!["sns.amazonaws.com".into()]).expect("params");
            let cert = params.self_signed(&key).expect("self-signed cert");
            let key = RsaKeyPair::from_pkcs8(&key.serialize_der()).expect("ring reads the key");
            TestSigner {
                cert_pem: cert.pem(),
                key,
            }
        })
    }

    fn notification(subject: Option<&str>) -> SnsMessage {
        SnsMessage {
            kind: MessageType::Notification,
            message_id: "6f3c1a52-0d7e-5b8e-9a1f-2c7d4e8b9a10".into(),
            topic_arn: TOPIC.into(),
            subject: subject.map(str::to_string),
            message: r#"{"AlarmName":"prod-api-5xx-high","NewStateValue":"ALARM"}"#.into(),
            timestamp: "2025-05-14T10:00:41.262Z".into(),
            signature_version: "2".into(),
            signature: String::new(),
            signing_cert_url: CERT_URL.into(),
            unsubscribe_url: Some("https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe".into()),
            subscribe_url: None,
            token: None,
            message_attributes: None,
        }
    }

    fn confirmation() -> SnsMessage {
        SnsMessage {
            kind: MessageType::SubscriptionConfirmation,
            subject: None,
            message: "You have chosen to subscribe to the topic".into(),
            subscribe_url: Some(
                "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&Token=t".into(),
            ),
            token: Some("2336412f37fb687f5d51e6e2425c464de".into()),
            unsubscribe_url: None,
            ..notification(None)
        }
    }

    /// Signs as SignatureVersion 2 with the generated key.
    fn sign(mut msg: SnsMessage) -> SnsMessage {
        msg.signature_version = "2".into();
        let text = string_to_sign(&msg).expect("string to sign");
        let key = &signer().key;
        let mut sig = vec![0; key.public().modulus_len()];
        key.sign(
            &RSA_PKCS1_SHA256,
            &SystemRandom::new(),
            text.as_bytes(),
            &mut sig,
        )
        .expect("sign");
        msg.signature = base64::engine::general_purpose::STANDARD.encode(sig);
        msg
    }

    fn verifier() -> Verifier {
        Verifier::new(vec![TOPIC.into()])
    }

    fn pem() -> &'static [u8] {
        signer().cert_pem.as_bytes()
    }

    #[test]
    fn both_signature_versions_verify() {
        let v = verifier();
        for version in ["1", "2"] {
            let msg = openssl_signed(version);
            assert_eq!(
                v.verify(&msg, openssl_cert_pem()),
                Ok(()),
                "version {version}"
            );
        }
        let msg = sign(notification(Some("ALARM: \"x\" in US East")));
        assert_eq!(v.verify(&msg, pem()), Ok(()));
        let msg = sign(confirmation());
        assert_eq!(v.verify(&msg, pem()), Ok(()), "confirmation");
    }

    #[test]
    fn a_cached_key_verifies_without_the_pem() {
        let v = verifier();
        assert!(v.cached_key(CERT_URL).is_none());
        let msg = sign(notification(None));
        v.verify(&msg, pem()).expect("first verify");
        let key = v.cached_key(CERT_URL).expect("cached");
        assert_eq!(v.verify_with_key(&msg, &key), Ok(()));
    }

    #[test]
    fn a_tampered_message_fails() {
        let mut msg = sign(notification(None));
        msg.message = msg.message.replace("ALARM", "OK");
        assert_eq!(verifier().verify(&msg, pem()), Err(SnsError::BadSignature));
        for version in ["1", "2"] {
            let mut msg = openssl_signed(version);
            msg.message = msg.message.replace("ALARM", "OK");
            assert_eq!(
                verifier().verify(&msg, openssl_cert_pem()),
                Err(SnsError::BadSignature),
                "version {version}"
            );
        }
    }

    #[test]
    fn a_signature_made_with_the_other_hash_fails() {
        let mut msg = openssl_signed("1");
        msg.signature_version = "2".into();
        assert_eq!(
            verifier().verify(&msg, openssl_cert_pem()),
            Err(SnsError::BadSignature)
        );
        let mut msg = openssl_signed("2");
        msg.signature_version = "1".into();
        assert_eq!(
            verifier().verify(&msg, openssl_cert_pem()),
            Err(SnsError::BadSignature)
        );
    }

    #[test]
    fn another_certificate_does_not_verify() {
        let msg = openssl_signed("1");
        assert_eq!(verifier().verify(&msg, pem()), Err(SnsError::BadSignature));
    }

    #[test]
    fn a_wrong_signature_fails() {
        let mut msg = sign(notification(None));
        let other = sign(notification(Some("another subject")));
        msg.signature = other.signature;
        assert_eq!(verifier().verify(&msg, pem()), Err(SnsError::BadSignature));
        msg.signature = "not base64!".into();
        assert_eq!(
            verifier().verify(&msg, pem()),
            Err(SnsError::SignatureEncoding)
        );
    }

    #[test]
    fn an_unknown_signature_version_is_refused() {
        let mut msg = sign(notification(None));
        msg.signature_version = "3".into();
        assert_eq!(
            verifier().verify(&msg, pem()),
            Err(SnsError::UnsupportedSignatureVersion("3".into()))
        );
    }

    #[test]
    fn a_topic_not_allowed_is_refused_before_anything_else() {
        let msg = sign(notification(None));
        let v = Verifier::new(vec!["arn:aws:sns:us-east-1:123456789012:other".into()]);
        assert_eq!(
            v.verify(&msg, b"not even a pem"),
            Err(SnsError::TopicNotAllowed(TOPIC.into()))
        );
        assert!(matches!(
            Verifier::new(vec![]).verify(&msg, pem()),
            Err(SnsError::TopicNotAllowed(_))
        ));
    }

    #[test]
    fn bad_cert_urls_are_refused() {
        let bad = [
            "http://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem",
            "https://evil.example.com/SimpleNotificationService-abc.pem",
            "https://sns.us-east-1.amazonaws.com.evil.com/x.pem",
            "https://sns.us.amazonaws.com/x.pem",
            "https://user:pw@sns.us-east-1.amazonaws.com/x.pem",
            "https://user@sns.us-east-1.amazonaws.com/x.pem",
            "https://sns.us-east-1.amazonaws.com/x.txt",
            "https://sns.us-east-1.amazonaws.com/x.txt?a=.pem",
            "https://sns.us-east-1.amazonaws.com:8443/x.pem",
            "not a url",
        ];
        for url in bad {
            assert!(
                matches!(check_cert_url(url, &[]), Err(SnsError::CertUrl { .. })),
                "{url} should be refused"
            );
        }
        let mut msg = sign(notification(None));
        msg.signing_cert_url = "http://sns.us-east-1.amazonaws.com/x.pem".into();
        assert!(matches!(
            verifier().verify(&msg, pem()),
            Err(SnsError::CertUrl { .. })
        ));
    }

    #[test]
    fn good_cert_urls_are_accepted() {
        for url in [
            CERT_URL,
            "https://sns.cn-north-1.amazonaws.com.cn/SimpleNotificationService-abc.pem",
            "https://SNS.EU-WEST-1.AMAZONAWS.COM/SimpleNotificationService-abc.pem",
        ] {
            assert_eq!(check_cert_url(url, &[]), Ok(()), "{url}");
        }
        let extra = vec!["127.0.0.1".to_string()];
        assert_eq!(
            check_cert_url("https://127.0.0.1:8443/cert.pem", &extra),
            Ok(())
        );
        assert!(check_cert_url("https://127.0.0.1:8443/cert.pem", &[]).is_err());
        assert!(check_cert_url("http://127.0.0.1:8443/cert.pem", &extra).is_err());
    }

    #[test]
    fn a_certificate_url_in_another_region_is_refused() {
        let mut msg = sign(notification(None));
        msg.signing_cert_url =
            "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-abc.pem".into();
        assert!(matches!(
            verifier().precheck(&msg),
            Err(SnsError::CertUrl { reason, .. }) if reason.contains("region")
        ));
        // A host from the settings is not tied to a region.
        let v = Verifier::new(vec![TOPIC.into()]).with_extra_hosts(vec!["127.0.0.1".into()]);
        msg.signing_cert_url = "https://127.0.0.1:8443/cert.pem".into();
        assert_eq!(v.precheck(&msg), Ok(()));
    }

    /// A certificate for the OpenSSL key, issued to `name` only.
    fn openssl_cert_for(name: &str) -> String {
        let key = rcgen::KeyPair::from_pem(OPENSSL_KEY_PEM).expect("OpenSSL key");
        let mut params = rcgen::CertificateParams::new(vec![name.into()]).expect("params");
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.self_signed(&key).expect("self-signed cert").pem()
    }

    #[test]
    fn the_certificate_must_be_issued_to_sns() {
        let msg = openssl_signed("2");
        let evil = openssl_cert_for("evil.example");
        assert_eq!(
            verifier().verify(&msg, evil.as_bytes()),
            Err(SnsError::CertificateSubject(
                "evil.example, evil.example".into()
            ))
        );
        assert!(verifier().cached_key(CERT_URL).is_none(), "nothing cached");
        // Issued to the endpoint that served it: taken too.
        let endpoint = openssl_cert_for("sns.us-east-1.amazonaws.com");
        assert_eq!(verifier().verify(&msg, endpoint.as_bytes()), Ok(()));
        let elsewhere = openssl_cert_for("sns.eu-west-1.amazonaws.com");
        assert!(matches!(
            verifier().verify(&msg, elsewhere.as_bytes()),
            Err(SnsError::CertificateSubject(_))
        ));
    }

    #[test]
    fn subscribe_urls_use_the_same_host_rule() {
        let url = confirmation().subscribe_url.expect("has one");
        assert_eq!(check_subscribe_url(&url, &[]), Ok(()));
        assert!(matches!(
            check_subscribe_url("https://169.254.169.254/latest/meta-data/", &[]),
            Err(SnsError::SubscribeUrl { .. })
        ));
        assert!(check_subscribe_url("http://sns.us-east-1.amazonaws.com/?Action=X", &[]).is_err());
    }

    #[test]
    fn subject_changes_the_string_to_sign() {
        let without = string_to_sign(&notification(None)).expect("without");
        let with = string_to_sign(&notification(Some("ALARM: x"))).expect("with");
        assert!(!without.contains("Subject"));
        assert!(with.contains(
            "MessageId\n6f3c1a52-0d7e-5b8e-9a1f-2c7d4e8b9a10\nSubject\nALARM: x\nTimestamp\n"
        ));
        assert_eq!(
            without,
            "Message\n{\"AlarmName\":\"prod-api-5xx-high\",\"NewStateValue\":\"ALARM\"}\n\
             MessageId\n6f3c1a52-0d7e-5b8e-9a1f-2c7d4e8b9a10\n\
             Timestamp\n2025-05-14T10:00:41.262Z\n\
             TopicArn\narn:aws:sns:us-east-1:123456789012:chatops-alarms\n\
             Type\nNotification\n"
        );
        // A signature over one does not verify the other.
        let mut msg = sign(notification(Some("ALARM: x")));
        msg.subject = None;
        assert_eq!(verifier().verify(&msg, pem()), Err(SnsError::BadSignature));
    }

    #[test]
    fn confirmation_string_to_sign_has_its_own_keys() {
        let text = string_to_sign(&confirmation()).expect("text");
        let keys: Vec<&str> = text.lines().step_by(2).collect();
        assert_eq!(
            keys,
            [
                "Message",
                "MessageId",
                "SubscribeURL",
                "Timestamp",
                "Token",
                "TopicArn",
                "Type"
            ]
        );
        let mut msg = confirmation();
        msg.token = None;
        assert_eq!(
            string_to_sign(&msg),
            Err(SnsError::MissingField {
                kind: "SubscriptionConfirmation",
                field: "Token"
            })
        );
    }

    #[test]
    fn parses_the_protocol_example_body() {
        let body = r#"{"Type":"Notification","MessageId":"6f3c1a52-0d7e-5b8e-9a1f-2c7d4e8b9a10","TopicArn":"arn:aws:sns:us-east-1:123456789012:chatops-alarms","Subject":"ALARM: \"prod-api-5xx-high\" in US East (N. Virginia)","Message":"{\"AlarmName\":\"prod-api-5xx-high\"}","Timestamp":"2025-05-14T10:00:41.262Z","SignatureVersion":"2","Signature":"AAAA","SigningCertURL":"https://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem","UnsubscribeURL":"https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe"}"#;
        let msg = SnsMessage::from_json(body.as_bytes()).expect("parses");
        assert_eq!(msg.kind, MessageType::Notification);
        assert_eq!(
            msg.subject.as_deref(),
            Some("ALARM: \"prod-api-5xx-high\" in US East (N. Virginia)")
        );
        assert_eq!(msg.signing_cert_url, CERT_URL);
        assert!(msg.sent_at().is_some());
    }

    #[test]
    fn unknown_type_raw_delivery_and_junk_are_errors() {
        let unknown = r#"{"Type":"Surprise","MessageId":"m","TopicArn":"t","Message":"x","Timestamp":"t","SignatureVersion":"1","Signature":"s","SigningCertURL":"u"}"#;
        assert_eq!(
            SnsMessage::from_json(unknown.as_bytes()),
            Err(SnsError::UnknownType("Surprise".into()))
        );
        assert!(serde_json::from_str::<SnsMessage>(unknown).is_err());
        let raw = r#"{"AlarmName":"prod-api-5xx-high","NewStateValue":"ALARM"}"#;
        assert_eq!(
            SnsMessage::from_json(raw.as_bytes()),
            Err(SnsError::RawDelivery)
        );
        assert!(
            SnsError::RawDelivery
                .to_string()
                .contains("RawMessageDelivery off")
        );
        assert!(matches!(
            SnsMessage::from_json(b"{\"Type\":\"Notif"),
            Err(SnsError::Malformed(_))
        ));
        assert!(matches!(
            SnsMessage::from_json(b"[1,2]"),
            Err(SnsError::Malformed(_))
        ));
    }

    #[test]
    fn a_pem_that_is_not_a_certificate_is_refused() {
        let msg = sign(notification(None));
        assert!(matches!(
            verifier().verify(
                &msg,
                b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
            ),
            Err(SnsError::Certificate(_))
        ));
        assert!(matches!(
            Verifier::new(vec![]).with_extra_ca_pem(b"junk".to_vec()),
            Err(SnsError::ExtraCa(_))
        ));
        let v = Verifier::new(vec![])
            .with_extra_ca_pem(pem().to_vec())
            .expect("a real cert is accepted");
        assert!(v.extra_ca_pem().is_some());
    }
}
