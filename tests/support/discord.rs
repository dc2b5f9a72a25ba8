//! A local Discord-compatible REST server under `/api/v10/...`, the prefix
//! serenity keeps when `HttpBuilder::proxy` points it here. It records what
//! the channels would show: messages (JSON or multipart with files),
//! edits, threads made from messages, interaction answers and follow-ups,
//! registered commands; and answers 429 with Discord's rate-limit headers
//! on demand. It also speaks enough of the gateway (`GET /gateway`, then a
//! WebSocket: HELLO, IDENTIFY → READY, heartbeats, queued dispatches) for
//! serenity's client to receive INTERACTION_CREATE from it.

#![allow(dead_code)]

use std::collections::{HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::ws::{Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, mpsc};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

pub const BOT_TOKEN: &str = "discord-test-bot-token";
pub const APPLICATION_ID: &str = "1100000000000000001";
pub const GUILD_ID: &str = "1200000000000000001";

#[derive(Debug, Clone)]
pub struct File {
    pub filename: String,
    pub bytes: Vec<u8>,
}

/// One recorded request.
#[derive(Debug, Clone)]
pub struct Call {
    pub method: String,
    /// The path after `/api/v10`.
    pub path: String,
    /// The JSON body (`payload_json` of a multipart one).
    pub body: Value,
    pub files: Vec<File>,
    /// The id of the message the call made or changed, if any.
    pub message_id: Option<String>,
    pub at: Instant,
}

#[derive(Default)]
struct Inner {
    calls: Vec<Call>,
    next_id: u64,
    threads: HashSet<String>,
    /// Path prefix → (429s left, seconds).
    limits: Vec<(String, u32, f64)>,
    rate_limited: Vec<(String, Instant)>,
    /// Path prefix → seconds: the next success there says the bucket is
    /// empty (`X-RateLimit-Remaining: 0`) until that many seconds pass.
    exhausted: Vec<(String, f64)>,
    /// Dispatches waiting for the next identified gateway connection.
    dispatches: VecDeque<(String, Value)>,
    identified: Vec<Value>,
}

#[derive(Clone)]
pub struct FakeDiscord {
    inner: Arc<Mutex<Inner>>,
    changed: Arc<Notify>,
    pub addr: SocketAddr,
    /// The same API over HTTPS, with a certificate for discord.com issued
    /// by [`FakeDiscord::ca_pem`]: for a client that really goes to
    /// `https://discord.com` (serenity with its rate limiter).
    pub tls_addr: SocketAddr,
    pub ca_pem: String,
}

impl FakeDiscord {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fake discord");
        let addr = listener.local_addr().expect("addr");
        let tls_tcp = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fake discord (TLS)");
        let tls_addr = tls_tcp.local_addr().expect("addr");
        let (acceptor, ca_pem) = tls_for("discord.com");
        let fake = Self {
            inner: Arc::new(Mutex::new(Inner {
                next_id: 1_300_000_000_000_000_000,
                ..Default::default()
            })),
            changed: Arc::new(Notify::new()),
            addr,
            tls_addr,
            ca_pem,
        };
        let app = Router::new()
            .route("/api/v10/{*rest}", any(api))
            .route("/gateway", get(gateway))
            .with_state(fake.clone());
        let tls_app = app.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let tls_listener = TlsListener::spawn(tls_tcp, acceptor, tls_addr);
        tokio::spawn(async move {
            let _ = axum::serve(tls_listener, tls_app).await;
        });
        fake
    }

    /// The next success under `prefix` reports an empty bucket that
    /// refills after `secs` (`X-RateLimit-Remaining: 0`, `-Reset-After`).
    pub fn exhaust(&self, prefix: &str, secs: f64) {
        self.lock().exhausted.push((prefix.to_owned(), secs));
    }

    /// What `discord.api_url` is set to.
    pub fn api_url(&self) -> String {
        format!("http://{}/api/v10", self.addr)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The next `times` requests whose path starts with `prefix` get 429.
    pub fn rate_limit(&self, prefix: &str, times: u32, retry_after_secs: f64) {
        self.lock()
            .limits
            .push((prefix.to_owned(), times, retry_after_secs));
    }

    pub fn rate_limited(&self) -> Vec<(String, Instant)> {
        self.lock().rate_limited.clone()
    }

    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    /// Messages created in channel (or thread) `channel`, oldest first.
    pub fn messages(&self, channel: &str) -> Vec<Call> {
        let path = format!("/channels/{channel}/messages");
        self.calls()
            .into_iter()
            .filter(|c| c.method == "POST" && c.path == path)
            .collect()
    }

    /// Edits of message `id` in `channel`, oldest first.
    pub fn edits(&self, channel: &str, id: &str) -> Vec<Call> {
        let path = format!("/channels/{channel}/messages/{id}");
        self.calls()
            .into_iter()
            .filter(|c| c.method == "PATCH" && c.path == path)
            .collect()
    }

    /// Threads created from messages: (channel, message id, name).
    pub fn threads(&self) -> Vec<(String, String, String)> {
        self.calls()
            .into_iter()
            .filter(|c| c.method == "POST" && c.path.ends_with("/threads"))
            .filter_map(|c| {
                let parts: Vec<&str> = c.path.split('/').collect();
                // /channels/{ch}/messages/{id}/threads
                Some((
                    parts.get(2)?.to_string(),
                    parts.get(4)?.to_string(),
                    c.body["name"].as_str().unwrap_or_default().to_owned(),
                ))
            })
            .collect()
    }

    /// Edits of an interaction's first answer (`@original`), by token.
    pub fn original_edits(&self, token: &str) -> Vec<Call> {
        let path = format!("/webhooks/{APPLICATION_ID}/{token}/messages/@original");
        self.calls()
            .into_iter()
            .filter(|c| c.method == "PATCH" && c.path == path)
            .collect()
    }

    /// Follow-ups sent with an interaction's token.
    pub fn followups(&self, token: &str) -> Vec<Call> {
        let path = format!("/webhooks/{APPLICATION_ID}/{token}");
        self.calls()
            .into_iter()
            .filter(|c| c.method == "POST" && c.path == path)
            .collect()
    }

    /// Waits until `check` holds, or panics after `secs` with `what`.
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
            if Instant::now() > deadline {
                panic!(
                    "timed out after {secs}s waiting for {what}; calls: {:#?}",
                    self.calls()
                        .iter()
                        .map(|c| format!("{} {} {}", c.method, c.path, c.body))
                        .collect::<Vec<_>>()
                );
            }
            let _ = tokio::time::timeout(Duration::from_millis(50), self.changed.notified()).await;
        }
    }

    /// Queues a gateway dispatch (`t`, `d`) for the connected client.
    pub fn dispatch(&self, event: &str, data: Value) {
        self.lock().dispatches.push_back((event.to_owned(), data));
        self.changed.notify_waiters();
    }

    /// IDENTIFY payloads received on the gateway.
    pub fn identified(&self) -> Vec<Value> {
        self.lock().identified.clone()
    }

    fn next_id(&self) -> String {
        let mut inner = self.lock();
        inner.next_id += 1;
        inner.next_id.to_string()
    }
}

/// Every text a message body shows: content, embeds, buttons.
pub fn shown(body: &Value) -> String {
    format!(
        "{}\n{}\n{}",
        body["content"], body["embeds"], body["components"]
    )
}

/// The buttons of a message body: (label, custom_id, style).
pub fn buttons(body: &Value) -> Vec<(String, String, u64)> {
    body["components"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|row| row["components"].as_array().cloned().unwrap_or_default())
        .map(|b| {
            (
                b["label"].as_str().unwrap_or_default().to_owned(),
                b["custom_id"].as_str().unwrap_or_default().to_owned(),
                b["style"].as_u64().unwrap_or_default(),
            )
        })
        .collect()
}

/// A message object as Discord returns it (the fields serenity requires).
pub fn message(id: &str, channel: &str, body: &Value) -> Value {
    json!({
        "id": id,
        "channel_id": channel,
        "author": {"id": APPLICATION_ID, "username": "scalebot", "discriminator": "0",
                   "global_name": null, "avatar": null, "bot": true},
        "content": body["content"].as_str().unwrap_or_default(),
        "timestamp": "2026-11-28T00:00:00.000000+00:00",
        "edited_timestamp": null,
        "tts": false,
        "mention_everyone": false,
        "mentions": [],
        "mention_roles": [],
        "attachments": [],
        "embeds": [],
        "components": [],
        "pinned": false,
        "type": 0,
        "flags": body["flags"].as_u64().unwrap_or(0),
    })
}

/// The parts of a `multipart/form-data` body: (name, filename, bytes).
fn multipart(content_type: &str, body: &[u8]) -> Vec<(String, Option<String>, Vec<u8>)> {
    let Some(boundary) = content_type.split("boundary=").nth(1) else {
        return Vec::new();
    };
    let delimiter = format!("--{}", boundary.trim_matches('"'));
    let mut parts = Vec::new();
    let d = delimiter.as_bytes();
    let mut starts = Vec::new();
    let mut i = 0;
    while i + d.len() <= body.len() {
        if &body[i..i + d.len()] == d {
            starts.push(i);
            i += d.len();
        } else {
            i += 1;
        }
    }
    for w in starts.windows(2) {
        let part = &body[w[0] + d.len()..w[1]];
        let part = part.strip_prefix(b"\r\n").unwrap_or(part);
        let Some(split) = part.windows(4).position(|x| x == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&part[..split]).to_string();
        let mut content = part[split + 4..].to_vec();
        if content.ends_with(b"\r\n") {
            content.truncate(content.len() - 2);
        }
        let attr = |key: &str| {
            head.split(&format!("{key}=\""))
                .nth(1)
                .and_then(|r| r.split('"').next())
                .map(str::to_owned)
        };
        parts.push((
            attr(" name").or_else(|| attr("name")).unwrap_or_default(),
            attr("filename"),
            content,
        ));
    }
    parts
}

async fn api(
    State(fake): State<FakeDiscord>,
    Path(rest): Path<String>,
    method: Method,
    _uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = format!("/{rest}");
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    // Interaction webhooks are authorised by their token, not the bot's.
    if !path.starts_with("/webhooks/") && auth != format!("Bot {BOT_TOKEN}") {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"message": "401: Unauthorized", "code": 0})),
        )
            .into_response();
    }
    {
        let mut inner = fake.lock();
        let hit = inner
            .limits
            .iter_mut()
            .find(|(prefix, left, _)| *left > 0 && path.starts_with(prefix.as_str()));
        if let Some((_, left, secs)) = hit {
            *left -= 1;
            let secs = *secs;
            inner.rate_limited.push((path.clone(), Instant::now()));
            drop(inner);
            fake.changed.notify_waiters();
            return (
                StatusCode::TOO_MANY_REQUESTS,
                [
                    ("content-type", "application/json".to_owned()),
                    ("retry-after", format!("{secs}")),
                    ("x-ratelimit-limit", "5".to_owned()),
                    ("x-ratelimit-remaining", "0".to_owned()),
                    ("x-ratelimit-reset-after", format!("{secs}")),
                    ("x-ratelimit-bucket", "fake-bucket".to_owned()),
                    ("x-ratelimit-scope", "user".to_owned()),
                ],
                json!({"message": "You are being rate limited.", "retry_after": secs, "global": false}).to_string(),
            )
                .into_response();
        }
    }
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let (json_body, files) = if content_type.starts_with("multipart/form-data") {
        let mut json_body = Value::Null;
        let mut files = Vec::new();
        for (name, filename, bytes) in multipart(&content_type, &body) {
            match filename {
                Some(filename) => files.push(File { filename, bytes }),
                None if name == "payload_json" => {
                    json_body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                }
                None => {}
            }
        }
        (json_body, files)
    } else {
        (
            serde_json::from_slice(&body).unwrap_or(Value::Null),
            Vec::new(),
        )
    };
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let method_s = method.as_str().to_owned();
    let (status, answer, message_id) = match (method_s.as_str(), parts.as_slice()) {
        ("POST", ["channels", channel, "messages"]) => {
            let id = fake.next_id();
            (StatusCode::OK, message(&id, channel, &json_body), Some(id))
        }
        ("PATCH", ["channels", channel, "messages", id]) => (
            StatusCode::OK,
            message(id, channel, &json_body),
            Some((*id).to_owned()),
        ),
        ("POST", ["channels", channel, "messages", id, "threads"]) => {
            let fresh = fake.lock().threads.insert((*id).to_owned());
            if !fresh {
                (
                    StatusCode::BAD_REQUEST,
                    json!({"message": "A thread has already been created for this message", "code": 160004}),
                    None,
                )
            } else {
                (
                    StatusCode::CREATED,
                    json!({"id": id, "type": 11, "guild_id": GUILD_ID, "parent_id": channel,
                           "name": json_body["name"], "owner_id": APPLICATION_ID,
                           "rate_limit_per_user": 0, "flags": 0}),
                    None,
                )
            }
        }
        ("PATCH", ["webhooks", _app, _token, "messages", "@original"]) => {
            let id = fake.next_id();
            (StatusCode::OK, message(&id, "1", &json_body), Some(id))
        }
        ("POST", ["webhooks", _app, _token]) => {
            let id = fake.next_id();
            (StatusCode::OK, message(&id, "1", &json_body), Some(id))
        }
        ("GET", ["gateway"]) => (
            StatusCode::OK,
            json!({"url": format!("ws://{}/gateway", fake.addr)}),
            None,
        ),
        ("GET", ["gateway", "bot"]) => (
            StatusCode::OK,
            json!({"url": format!("ws://{}/gateway", fake.addr), "shards": 1,
                   "session_start_limit": {"total": 1000, "remaining": 999, "reset_after": 0, "max_concurrency": 1}}),
            None,
        ),
        ("POST", ["interactions", _id, _token, "callback"]) => {
            (StatusCode::NO_CONTENT, Value::Null, None)
        }
        ("POST", ["guilds", guild, "channels"]) => {
            let id = fake.next_id();
            (
                StatusCode::CREATED,
                json!({"id": id, "type": 0, "guild_id": guild, "name": json_body["name"],
                       "position": 0, "permission_overwrites": [], "nsfw": false, "flags": 0}),
                None,
            )
        }
        ("PUT", ["applications", app, "commands"])
        | ("PUT", ["applications", app, "guilds", _, "commands"]) => {
            let guild = parts.get(3).copied();
            let list: Vec<Value> = json_body
                .as_array()
                .into_iter()
                .flatten()
                .enumerate()
                .map(|(i, c)| {
                    let mut c = c.clone();
                    c["id"] = json!(format!("14000000000000000{i:02}"));
                    c["application_id"] = json!(app);
                    c["version"] = json!("1400000000000000001");
                    c["default_member_permissions"] = Value::Null;
                    if let Some(g) = guild {
                        c["guild_id"] = json!(g);
                    }
                    c
                })
                .collect();
            (StatusCode::OK, Value::Array(list), None)
        }
        _ => (
            StatusCode::NOT_FOUND,
            json!({"message": "404: Not Found", "code": 0}),
            None,
        ),
    };
    if status.is_success() {
        fake.lock().calls.push(Call {
            method: method_s,
            path: path.clone(),
            body: json_body,
            files,
            message_id,
            at: Instant::now(),
        });
        fake.changed.notify_waiters();
    }
    if status == StatusCode::NO_CONTENT {
        return status.into_response();
    }
    let exhausted = {
        let mut inner = fake.lock();
        let at = inner
            .exhausted
            .iter()
            .position(|(prefix, _)| path.starts_with(prefix.as_str()));
        at.map(|i| inner.exhausted.remove(i).1)
    };
    match exhausted {
        Some(secs) if status.is_success() => (
            status,
            [
                ("x-ratelimit-limit", "1".to_owned()),
                ("x-ratelimit-remaining", "0".to_owned()),
                ("x-ratelimit-reset-after", format!("{secs}")),
                ("x-ratelimit-bucket", "fake-bucket".to_owned()),
            ],
            axum::Json(answer),
        )
            .into_response(),
        _ => (status, axum::Json(answer)).into_response(),
    }
}

/// A TLS acceptor for `host` and the PEM of the CA that issued it.
fn tls_for(host: &str) -> (TlsAcceptor, String) {
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "scalebot test Discord CA");
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca = CertifiedIssuer::self_signed(ca_params, ca_key).expect("CA cert");
    let key = KeyPair::generate().expect("server key");
    let mut params = CertificateParams::new(vec![host.to_owned()]).expect("server params");
    params.distinguished_name.push(DnType::CommonName, host);
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let cert = params.signed_by(&key, &ca).expect("server cert");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone(), CertificateDer::from(ca.der().to_vec())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
        .expect("TLS server config");
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    (TlsAcceptor::from(Arc::new(tls)), ca.pem())
}

/// TLS connections for `axum::serve`; handshakes run on tasks of their own.
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

async fn gateway(State(fake): State<FakeDiscord>, ws: WebSocketUpgrade) -> Response {
    ws.on_upgrade(move |socket| serve_gateway(fake, socket))
}

/// The gateway as Discord runs it, reduced to what a bot that only handles
/// interactions sees: HELLO, READY after IDENTIFY, ACKs to heartbeats, and
/// the queued dispatches with increasing sequence numbers.
async fn serve_gateway(fake: FakeDiscord, mut socket: WebSocket) {
    let send = |v: Value| WsMessage::Text(v.to_string().into());
    if socket
        .send(send(json!({"op": 10, "d": {"heartbeat_interval": 41250}})))
        .await
        .is_err()
    {
        return;
    }
    let mut seq = 0u64;
    let mut ready = false;
    loop {
        if ready {
            let next = fake.lock().dispatches.pop_front();
            if let Some((t, d)) = next {
                seq += 1;
                if socket
                    .send(send(json!({"op": 0, "s": seq, "t": t, "d": d})))
                    .await
                    .is_err()
                {
                    return;
                }
                continue;
            }
        }
        tokio::select! {
            msg = socket.recv() => match msg {
                Some(Ok(WsMessage::Text(t))) => {
                    let Ok(v) = serde_json::from_str::<Value>(&t) else { continue };
                    match v["op"].as_u64() {
                        Some(2) => {
                            fake.lock().identified.push(v["d"].clone());
                            seq += 1;
                            let ready_event = json!({"op": 0, "s": seq, "t": "READY", "d": {
                                "v": 10,
                                "user": {"id": APPLICATION_ID, "username": "scalebot", "discriminator": "0",
                                         "global_name": null, "avatar": null, "bot": true,
                                         "verified": true, "mfa_enabled": false, "flags": 0},
                                "guilds": [{"id": GUILD_ID, "unavailable": true}],
                                "session_id": "fake-session",
                                "resume_gateway_url": format!("ws://{}/gateway", fake.addr),
                                "shard": [0, 1],
                                "application": {"id": APPLICATION_ID, "flags": 0}
                            }});
                            if socket.send(send(ready_event)).await.is_err() {
                                return;
                            }
                            ready = true;
                            fake.changed.notify_waiters();
                        }
                        Some(1) if socket.send(send(json!({"op": 11}))).await.is_err() => return,
                        _ => {}
                    }
                }
                Some(Ok(_)) => {}
                _ => return,
            },
            _ = fake.changed.notified() => {}
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
    }
}
