//! A stand-in for Amazon SNS's side of an HTTP(S) subscription: messages
//! signed exactly as SNS signs them (SignatureVersion 2, SHA256withRSA over
//! `scalebot::sns::string_to_sign`, so fixture and bot agree by
//! construction), and a local HTTPS server that serves the signing
//! certificate and answers subscription confirmations.
//!
//! Everything hangs off a test CA: it issues the HTTPS server's certificate
//! (for `localhost` and `127.0.0.1`) and the RSA signing certificate, issued
//! to `sns.amazonaws.com` as AWS issues them, so a bot that trusts
//! [`SnsSigner::ca_pem`] as an extra root and [`SnsSigner::host`] as an
//! extra certificate host can fetch and check the certificate the way it
//! would from SNS.
//!
//! Any `/<name>.pem` serves that certificate, except `/wrong-subject-*.pem`
//! (the same key, issued to `evil.example`: a certificate SNS never signs
//! with) and `/missing-*.pem` (404). Every GET of a `.pem` path is counted
//! by path.

#![allow(dead_code)]

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine as _;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, PKCS_RSA_SHA256, SanType,
};
use ring::rand::SystemRandom;
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use scalebot::sns::{SnsMessage, string_to_sign};

/// Where the default signing certificate is served.
pub const CERT_PATH: &str = "/SimpleNotificationService-test.pem";
/// The name the HTTPS server's certificate is issued for.
pub const HOST_NAME: &str = "localhost";
/// Where moto says its signing certificates are (moto::REGION).
pub const MOTO_CERT_HOST: &str = "sns.eu-central-1.amazonaws.com";

pub struct SnsSigner {
    /// `https://localhost:PORT/SimpleNotificationService-test.pem`
    pub cert_url: String,
    /// `localhost:PORT`: what the bot must be configured to trust as an
    /// extra certificate host.
    pub host: String,
    /// `localhost`, the host alone. `scalebot::sns::check_cert_url` compares
    /// extra hosts with the URL's host *without* its port, so a `Verifier`
    /// built directly needs this one rather than [`SnsSigner::host`].
    pub host_name: String,
    /// The server's socket address (`127.0.0.1:PORT`).
    pub addr: SocketAddr,
    /// PEM of the CA that issued both the HTTPS server's certificate and the
    /// signing certificate; the bot adds it as an extra trusted root.
    pub ca_pem: String,
    /// PEM of the signing certificate, as served at [`SnsSigner::cert_url`].
    pub cert_pem: String,
    /// Counts GETs of any certificate path (to test the bot's cache). The
    /// signer is shared by every test in the binary, so compare before and
    /// after, or use [`SnsSigner::fetches_of`] with a URL of the test's own.
    pub fetches: Arc<AtomicUsize>,
    key: RsaKeyPair,
    shared: Arc<Shared>,
}

/// What the server and the signer share.
struct Shared {
    cert_pem: String,
    /// The same key, issued to `evil.example`.
    wrong_subject_pem: String,
    fetches: Arc<AtomicUsize>,
    fetches_by_path: Mutex<HashMap<String, usize>>,
    confirmed: Mutex<Vec<String>>,
    /// Token → topic, so a confirmation answers with the right ARN.
    topics: Mutex<HashMap<String, String>>,
    /// A moto server that certificate requests for AWS's host go to.
    upstream: Mutex<Option<String>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

static SIGNER: OnceLock<SnsSigner> = OnceLock::new();

impl SnsSigner {
    /// Starts the HTTPS server (once per test binary, on a runtime of its
    /// own so that it outlives each test's runtime) and returns the signer.
    pub fn get() -> &'static SnsSigner {
        SIGNER.get_or_init(Self::start)
    }

    fn start() -> Self {
        let ca_key = KeyPair::generate().expect("CA key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "scalebot test SNS CA");
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca = CertifiedIssuer::self_signed(ca_params, ca_key).expect("CA cert");

        let server_key = KeyPair::generate().expect("server key");
        // Also AWS's certificate host, for a bot told to reach it here
        // (sns.cert_host_addresses) while moto signs the messages.
        let mut server_params =
            CertificateParams::new(vec![HOST_NAME.to_string(), MOTO_CERT_HOST.to_string()])
                .expect("server params");
        server_params
            .subject_alt_names
            .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        server_params
            .distinguished_name
            .push(DnType::CommonName, HOST_NAME);
        server_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let server_cert = server_params
            .signed_by(&server_key, &ca)
            .expect("server cert");

        // RSA 2048, as SNS uses; ring cannot generate RSA keys, rcgen can.
        let signing_key = KeyPair::generate_for(&PKCS_RSA_SHA256).expect("RSA key");
        let issued_to = |name: &str| {
            let mut params =
                CertificateParams::new(vec![name.to_string()]).expect("signing params");
            params.distinguished_name.push(DnType::CommonName, name);
            params.signed_by(&signing_key, &ca).expect("signing cert")
        };
        // SNS's certificates name sns.amazonaws.com, whichever region serves them.
        let signing_cert = issued_to("sns.amazonaws.com");
        let wrong_subject = issued_to("evil.example");
        let key = RsaKeyPair::from_pkcs8(&signing_key.serialize_der()).expect("ring reads the key");

        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut tls = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(
                vec![
                    server_cert.der().clone(),
                    CertificateDer::from(ca.der().to_vec()),
                ],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der())),
            )
            .expect("TLS server config");
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        let acceptor = TlsAcceptor::from(Arc::new(tls));

        let fetches = Arc::new(AtomicUsize::new(0));
        let shared = Arc::new(Shared {
            cert_pem: signing_cert.pem(),
            wrong_subject_pem: wrong_subject.pem(),
            fetches: fetches.clone(),
            fetches_by_path: Mutex::default(),
            confirmed: Mutex::default(),
            topics: Mutex::default(),
            upstream: Mutex::default(),
        });

        let (tx, rx) = std::sync::mpsc::channel();
        let state = shared.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("sns runtime");
            rt.block_on(async move {
                let tcp = TcpListener::bind("127.0.0.1:0").await.expect("bind sns");
                let addr = tcp.local_addr().expect("addr");
                let listener = TlsListener::spawn(tcp, acceptor, addr);
                let app = Router::new()
                    .route("/confirm", get(confirm))
                    .fallback(certificate)
                    .with_state(state);
                tx.send(addr).expect("send addr");
                let _ = axum::serve(listener, app).await;
            });
        });
        let addr = rx.recv().expect("sns server address");

        let host = format!("{HOST_NAME}:{}", addr.port());
        Self {
            cert_url: format!("https://{host}{CERT_PATH}"),
            host,
            host_name: HOST_NAME.to_string(),
            addr,
            ca_pem: ca.pem(),
            cert_pem: shared.cert_pem.clone(),
            fetches,
            key,
            shared,
        }
    }

    /// Certificate requests that arrive for [`MOTO_CERT_HOST`] are answered
    /// by the moto server at `url` (which serves the certificates it signs
    /// SNS deliveries with).
    pub fn proxy_aws_certs_to(&self, url: &str) {
        *lock(&self.shared.upstream) = Some(url.trim_end_matches('/').to_owned());
    }

    /// Another URL serving the same certificate (`https://HOST/{name}.pem`),
    /// so a test can count its own fetches with [`SnsSigner::fetches_of`]
    /// while other tests use the shared server.
    pub fn cert_url_named(&self, name: &str) -> String {
        format!("https://{}/{name}.pem", self.host)
    }

    /// GETs so far of the certificate at `cert_url` (one of this server's).
    pub fn fetches_of(&self, cert_url: &str) -> usize {
        let path = url::Url::parse(cert_url)
            .map(|u| u.path().to_string())
            .unwrap_or_default();
        lock(&self.shared.fetches_by_path)
            .get(&path)
            .copied()
            .unwrap_or(0)
    }

    /// GETs so far of every certificate path that starts with `/{prefix}`.
    pub fn fetches_with_prefix(&self, prefix: &str) -> usize {
        let prefix = format!("/{prefix}");
        lock(&self.shared.fetches_by_path)
            .iter()
            .filter(|(path, _)| path.starts_with(&prefix))
            .map(|(_, n)| n)
            .sum()
    }

    /// Tokens of every `GET /confirm?Token=…` so far, oldest first.
    pub fn confirmed_tokens(&self) -> Vec<String> {
        lock(&self.shared.confirmed).clone()
    }

    /// A signed Notification, as SNS POSTs it to an HTTP(S) subscriber.
    pub fn notification(
        &self,
        topic: &str,
        message_id: &str,
        subject: Option<&str>,
        message: &str,
    ) -> Value {
        let mut msg = json!({
            "Type": "Notification",
            "MessageId": message_id,
            "TopicArn": topic,
            "Message": message,
            "Timestamp": now(),
            "SignatureVersion": "2",
            "Signature": "",
            "SigningCertURL": self.cert_url,
            "UnsubscribeURL": self.unsubscribe_url(topic),
        });
        if let Some(subject) = subject {
            msg["Subject"] = json!(subject);
        }
        self.sign(&mut msg);
        msg
    }

    /// A signed SubscriptionConfirmation whose SubscribeURL is
    /// `https://HOST/confirm?Token=<token>` on this server.
    pub fn subscription_confirmation(&self, topic: &str, token: &str) -> Value {
        lock(&self.shared.topics).insert(token.to_string(), topic.to_string());
        let subscribe_url = url::Url::parse_with_params(
            &format!("https://{}/confirm", self.host),
            &[("Token", token)],
        )
        .expect("subscribe URL");
        let mut msg = json!({
            "Type": "SubscriptionConfirmation",
            "MessageId": uuid::Uuid::new_v4().to_string(),
            "Token": token,
            "TopicArn": topic,
            "Message": format!(
                "You have chosen to subscribe to the topic {topic}.\n\
                 To confirm the subscription, visit the SubscribeURL included in this message."
            ),
            "SubscribeURL": subscribe_url.as_str(),
            "Timestamp": now(),
            "SignatureVersion": "2",
            "Signature": "",
            "SigningCertURL": self.cert_url,
        });
        self.sign(&mut msg);
        msg
    }

    /// Sets `SignatureVersion` to "2" and signs `msg` again, so a test that
    /// edited a field gets a *valid* signature over the edited message.
    pub fn sign(&self, msg: &mut Value) {
        msg["SignatureVersion"] = json!("2");
        self.sign_raw(msg);
    }

    /// Replaces `Signature` with a SHA256withRSA signature over the message
    /// as it stands, touching nothing else: with `SignatureVersion` "1" the
    /// result is a SHA256 signature labelled as SHA1, which must not verify.
    /// Panics if `msg` is not an SNS message the bot would parse.
    pub fn sign_raw(&self, msg: &mut Value) {
        if msg.get("Signature").is_none() {
            msg["Signature"] = json!("");
        }
        let body = serde_json::to_vec(msg).expect("JSON");
        let parsed = SnsMessage::from_json(&body)
            .unwrap_or_else(|e| panic!("the fixture signs only SNS messages: {e}"));
        let text = string_to_sign(&parsed).unwrap_or_else(|e| panic!("nothing to sign: {e}"));
        let mut signature = vec![0; self.key.public().modulus_len()];
        self.key
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                text.as_bytes(),
                &mut signature,
            )
            .expect("RSA signing");
        msg["Signature"] = json!(base64::engine::general_purpose::STANDARD.encode(signature));
    }

    fn unsubscribe_url(&self, topic: &str) -> String {
        url::Url::parse_with_params(
            &format!("https://{}/", self.host),
            &[
                ("Action", "Unsubscribe"),
                ("SubscriptionArn", &format!("{topic}:scalebot-test")),
            ],
        )
        .expect("unsubscribe URL")
        .to_string()
    }
}

/// SNS's timestamp format: UTC, milliseconds, `Z`.
fn now() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

/// `GET /<name>.pem`: the signing certificate, counted.
async fn certificate(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: axum::http::HeaderMap,
) -> Response {
    let path = uri.path();
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    let upstream = lock(&shared.upstream).clone();
    if let Some(upstream) = upstream.filter(|_| host.starts_with(MOTO_CERT_HOST)) {
        let fetched = reqwest::Client::new()
            .get(format!("{upstream}{path}"))
            // moto picks the service from a SigV4 credential scope, not the Host.
            .header(
                header::AUTHORIZATION,
                "AWS4-HMAC-SHA256 Credential=testing/20261128/eu-central-1/sns/aws4_request, SignedHeaders=host, Signature=0",
            )
            .send()
            .await;
        return match fetched {
            Ok(r) => {
                let status =
                    StatusCode::from_u16(r.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
                (status, r.bytes().await.unwrap_or_default()).into_response()
            }
            Err(e) => (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
        };
    }
    let is_cert = path
        .strip_prefix('/')
        .is_some_and(|name| name.ends_with(".pem") && !name.contains('/'));
    if method != Method::GET || !is_cert {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    }
    shared.fetches.fetch_add(1, Ordering::SeqCst);
    *lock(&shared.fetches_by_path)
        .entry(path.to_string())
        .or_default() += 1;
    let pem = if path.starts_with("/missing-") {
        return (StatusCode::NOT_FOUND, "no such certificate").into_response();
    } else if path.starts_with("/wrong-subject-") {
        shared.wrong_subject_pem.clone()
    } else {
        shared.cert_pem.clone()
    };
    ([(header::CONTENT_TYPE, "application/x-x509-ca-cert")], pem).into_response()
}

/// `GET /confirm?Token=…`: what SNS's ConfirmSubscription action answers.
async fn confirm(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let Some(token) = query.get("Token") else {
        return (StatusCode::BAD_REQUEST, "missing Token").into_response();
    };
    lock(&shared.confirmed).push(token.clone());
    let topic = lock(&shared.topics)
        .get(token)
        .cloned()
        .unwrap_or_else(|| "arn:aws:sns:us-east-1:123456789012:unknown".to_string());
    let request_id = uuid::Uuid::new_v4();
    let subscription = uuid::Uuid::new_v4();
    let xml = format!(
        "<ConfirmSubscriptionResponse xmlns=\"http://sns.amazonaws.com/doc/2010-03-31/\">\n  \
         <ConfirmSubscriptionResult>\n    \
         <SubscriptionArn>{topic}:{subscription}</SubscriptionArn>\n  \
         </ConfirmSubscriptionResult>\n  \
         <ResponseMetadata>\n    <RequestId>{request_id}</RequestId>\n  </ResponseMetadata>\n\
         </ConfirmSubscriptionResponse>\n"
    );
    ([(header::CONTENT_TYPE, "text/xml")], xml).into_response()
}

/// TLS connections for `axum::serve`. Handshakes run on tasks of their own,
/// so one stalled client does not hold up the others.
struct TlsListener {
    rx: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    addr: SocketAddr,
}

impl TlsListener {
    fn spawn(tcp: TcpListener, acceptor: TlsAcceptor, addr: SocketAddr) -> Self {
        let (tx, rx) = mpsc::channel(64);
        tokio::spawn(async move {
            loop {
                let Ok((stream, peer)) = tcp.accept().await else {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                let acceptor = acceptor.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    let handshake =
                        tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream));
                    if let Ok(Ok(tls)) = handshake.await {
                        let _ = tx.send((tls, peer)).await;
                    }
                });
            }
        });
        Self { rx, addr }
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.rx.recv().await {
            Some(conn) => conn,
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.addr)
    }
}
