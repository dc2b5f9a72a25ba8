//! A local Slack-compatible Web API server that records every call and
//! answers as Slack documents: `chat.postMessage`, `chat.update`, the
//! three-step file upload, `apps.connections.open` with a loopback Socket
//! Mode WebSocket, and 429 with `Retry-After` on demand.
//!
//! For chaos tests, [`FakeSlack::inject_faults`] makes a seeded share of
//! some methods' calls fail with a 5xx or a 429: such a call changes
//! nothing (it is kept apart, in [`FakeSlack::failures`]), as when Slack
//! itself failed. Off unless a test turns it on.

#![allow(dead_code)]

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::ws::{Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use tokio::sync::Notify;

pub const BOT_TOKEN: &str = "xoxb-test-bot-token";
pub const APP_TOKEN: &str = "xapp-test-app-token";

#[derive(Debug, Clone)]
pub struct Call {
    pub method: String,
    pub args: Value,
    pub at: Instant,
}

#[derive(Debug, Clone)]
pub struct Upload {
    pub file_id: String,
    pub filename: String,
    pub declared_length: usize,
    pub bytes: Vec<u8>,
    pub channel: Option<String>,
    pub thread_ts: Option<String>,
    pub title: Option<String>,
}

/// Seeded failures of some Web API methods (see [`FakeSlack::inject_faults`]).
#[derive(Debug, Clone)]
pub struct Faults {
    /// The same seed gives the same sequence of answers for the same
    /// sequence of calls.
    pub seed: u64,
    /// The methods that fail, e.g. `chat.postMessage`, `chat.update`.
    pub methods: Vec<String>,
    /// The share of their calls answered with a 500, 502 or 503.
    pub server_errors: f64,
    /// The share answered 429 with `Retry-After: retry_after_secs`.
    pub rate_limits: f64,
    pub retry_after_secs: u64,
}

impl Faults {
    /// About 10 % 5xx and 5 % 429 (`Retry-After: 1`) on posts and updates.
    pub fn posts(seed: u64) -> Self {
        Self {
            seed,
            methods: vec!["chat.postMessage".into(), "chat.update".into()],
            server_errors: 0.10,
            rate_limits: 0.05,
            retry_after_secs: 1,
        }
    }
}

/// A call the fake failed on purpose; nothing it asked for happened.
#[derive(Debug, Clone)]
pub struct Failure {
    pub method: String,
    pub status: u16,
    pub args: Value,
    pub at: Instant,
}

#[derive(Default)]
struct Inner {
    faults: Option<(Faults, StdRng)>,
    failures: Vec<Failure>,
    calls: Vec<Call>,
    rate_limited: Vec<(String, Instant)>,
    limits: HashMap<String, (u32, u64)>,
    next_ts: u64,
    next_file: u64,
    pending_uploads: HashMap<String, Upload>,
    uploads: Vec<Upload>,
    envelopes: VecDeque<Value>,
    acks: Vec<Value>,
    sockets_opened: u32,
    groups: HashMap<String, Vec<String>>,
}

#[derive(Clone)]
pub struct FakeSlack {
    inner: Arc<Mutex<Inner>>,
    changed: Arc<Notify>,
    pub addr: SocketAddr,
}

impl FakeSlack {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fake slack");
        let addr = listener.local_addr().expect("addr");
        let fake = Self {
            inner: Arc::new(Mutex::new(Inner {
                next_ts: 1,
                next_file: 1,
                ..Default::default()
            })),
            changed: Arc::new(Notify::new()),
            addr,
        };
        let app = Router::new()
            .route("/api/{method}", any(api))
            .route("/upload/{file_id}", post(upload))
            .route("/socket", get(socket))
            .with_state(fake.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        fake
    }

    pub fn api_url(&self) -> String {
        format!("http://{}/api", self.addr)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The next `times` calls of `method` get 429 with `Retry-After`.
    pub fn rate_limit(&self, method: &str, times: u32, retry_after_secs: u64) {
        self.lock()
            .limits
            .insert(method.to_owned(), (times, retry_after_secs));
    }

    /// From now on a seeded share of `faults.methods` calls fail.
    pub fn inject_faults(&self, faults: Faults) {
        let rng = StdRng::seed_from_u64(faults.seed);
        self.lock().faults = Some((faults, rng));
    }

    /// Every call answers normally again.
    pub fn clear_faults(&self) {
        self.lock().faults = None;
    }

    /// The calls of `method` failed on purpose by the injected faults.
    pub fn failures(&self, method: &str) -> Vec<Failure> {
        self.lock()
            .failures
            .iter()
            .filter(|f| f.method == method)
            .cloned()
            .collect()
    }

    /// The status an injected fault gives this call of `method`, if any.
    fn draw_fault(&self, method: &str, args: &Value) -> Option<(u16, u64)> {
        let mut inner = self.lock();
        let (faults, rng) = inner.faults.as_mut()?;
        if !faults.methods.iter().any(|m| m == method) {
            return None;
        }
        let draw: f64 = rng.random();
        let retry = faults.retry_after_secs;
        let status = if draw < faults.server_errors {
            [500, 502, 503][rng.random_range(0..3)]
        } else if draw < faults.server_errors + faults.rate_limits {
            429
        } else {
            return None;
        };
        let at = Instant::now();
        inner.failures.push(Failure {
            method: method.to_owned(),
            status,
            args: args.clone(),
            at,
        });
        if status == 429 {
            inner.rate_limited.push((method.to_owned(), at));
        }
        Some((status, retry))
    }

    pub fn calls(&self, method: &str) -> Vec<Call> {
        self.lock()
            .calls
            .iter()
            .filter(|c| c.method == method)
            .cloned()
            .collect()
    }

    pub fn rate_limited(&self, method: &str) -> Vec<Instant> {
        self.lock()
            .rate_limited
            .iter()
            .filter(|(m, _)| m == method)
            .map(|(_, t)| *t)
            .collect()
    }

    /// Messages posted to `channel`, oldest first.
    pub fn posts(&self, channel: &str) -> Vec<Value> {
        self.calls("chat.postMessage")
            .into_iter()
            .filter(|c| c.args["channel"] == channel)
            .map(|c| c.args)
            .collect()
    }

    pub fn uploads(&self) -> Vec<Upload> {
        self.lock().uploads.clone()
    }

    pub fn acks(&self) -> Vec<Value> {
        self.lock().acks.clone()
    }

    pub fn sockets_opened(&self) -> u32 {
        self.lock().sockets_opened
    }

    /// What `usergroups.users.list` answers for `group`.
    pub fn set_group(&self, group: &str, users: &[&str]) {
        self.lock().groups.insert(
            group.to_owned(),
            users.iter().map(|u| u.to_string()).collect(),
        );
    }

    /// Ephemeral messages shown to `user`.
    pub fn ephemerals(&self, user: &str) -> Vec<Value> {
        self.calls("chat.postEphemeral")
            .into_iter()
            .filter(|c| c.args["user"] == user)
            .map(|c| c.args)
            .collect()
    }

    /// Replies in the thread of `ts` in `channel`, oldest first.
    pub fn thread(&self, channel: &str, ts: &str) -> Vec<Value> {
        self.calls("chat.postMessage")
            .into_iter()
            .filter(|c| c.args["channel"] == channel && c.args["thread_ts"] == ts)
            .map(|c| c.args)
            .collect()
    }

    /// The newest `chat.update` of message `ts`.
    pub fn latest_update(&self, ts: &str) -> Option<Value> {
        self.calls("chat.update")
            .into_iter()
            .filter(|c| c.args["ts"] == ts)
            .map(|c| c.args)
            .next_back()
    }

    /// Queues a Socket Mode envelope for the next connected socket.
    pub fn push_envelope(&self, envelope: Value) {
        self.lock().envelopes.push_back(envelope);
        self.changed.notify_waiters();
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
                panic!("timed out after {secs}s waiting for {what}");
            }
            let _ = tokio::time::timeout(Duration::from_millis(50), self.changed.notified()).await;
        }
    }

    fn record(&self, method: &str, args: Value) {
        self.lock().calls.push(Call {
            method: method.to_owned(),
            args,
            at: Instant::now(),
        });
        self.changed.notify_waiters();
    }
}

fn args_of(headers: &HeaderMap, query: Option<String>, body: &Bytes) -> Value {
    let ct = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if ct.starts_with("application/json") {
        return serde_json::from_slice(body).unwrap_or(Value::Null);
    }
    let text = if body.is_empty() {
        query.unwrap_or_default()
    } else {
        String::from_utf8_lossy(body).into_owned()
    };
    let map: HashMap<String, String> = serde_urlencoded::from_str(&text).unwrap_or_default();
    serde_json::to_value(map).unwrap_or(Value::Null)
}

fn ok(v: Value) -> Response {
    let mut body = json!({"ok": true});
    if let (Some(b), Some(extra)) = (body.as_object_mut(), v.as_object()) {
        for (k, val) in extra {
            b.insert(k.clone(), val.clone());
        }
    }
    axum::Json(body).into_response()
}

fn err(code: &str) -> Response {
    axum::Json(json!({"ok": false, "error": code})).into_response()
}

async fn api(
    State(fake): State<FakeSlack>,
    Path(method): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let expected = if method == "apps.connections.open" {
        APP_TOKEN
    } else {
        BOT_TOKEN
    };
    if auth != format!("Bearer {expected}") {
        return err("not_authed");
    }
    {
        let mut inner = fake.lock();
        if let Some((times, retry)) = inner.limits.get(&method).copied()
            && times > 0
        {
            inner.limits.insert(method.clone(), (times - 1, retry));
            inner.rate_limited.push((method.clone(), Instant::now()));
            drop(inner);
            fake.changed.notify_waiters();
            return (
                StatusCode::TOO_MANY_REQUESTS,
                [
                    ("retry-after", retry.to_string()),
                    ("content-type", "application/json".into()),
                ],
                json!({"ok": false, "error": "ratelimited"}).to_string(),
            )
                .into_response();
        }
    }
    let mut args = args_of(&headers, query, &body);
    if let Some((status, retry)) = fake.draw_fault(&method, &args) {
        fake.changed.notify_waiters();
        return injected_failure(status, retry);
    }
    let response = match method.as_str() {
        "chat.postMessage" => {
            if args["channel"].as_str().unwrap_or_default().is_empty() {
                return err("channel_not_found");
            }
            let ts = {
                let mut inner = fake.lock();
                inner.next_ts += 1;
                format!("1700000000.{:06}", inner.next_ts)
            };
            // Tests find threads by the ts Slack gave each post.
            args["_ts"] = json!(ts);
            ok(json!({
                "channel": args["channel"],
                "ts": ts,
                "message": {"ts": ts, "text": args["text"], "type": "message"},
            }))
        }
        // As Slack answers: the updated message is echoed back.
        "chat.update" => ok(json!({
            "channel": args["channel"],
            "ts": args["ts"],
            "text": args["text"],
            "message": {"text": args["text"], "blocks": args["blocks"]},
        })),
        "files.getUploadURLExternal" => {
            let length: usize = args["length"]
                .as_str()
                .and_then(|l| l.parse().ok())
                .unwrap_or(0);
            let filename = args["filename"].as_str().unwrap_or_default().to_owned();
            if length == 0 || filename.is_empty() {
                return err("invalid_arguments");
            }
            let mut inner = fake.lock();
            let id = format!("F{:04}", inner.next_file);
            inner.next_file += 1;
            inner.pending_uploads.insert(
                id.clone(),
                Upload {
                    file_id: id.clone(),
                    filename,
                    declared_length: length,
                    bytes: Vec::new(),
                    channel: None,
                    thread_ts: None,
                    title: None,
                },
            );
            ok(json!({"upload_url": format!("http://{}/upload/{id}", fake.addr), "file_id": id}))
        }
        "files.completeUploadExternal" => {
            let files = args["files"].as_array().cloned().unwrap_or_default();
            let mut done = Vec::new();
            let mut inner = fake.lock();
            for f in &files {
                let id = f["id"].as_str().unwrap_or_default();
                let Some(mut up) = inner.pending_uploads.remove(id) else {
                    return err("file_not_found");
                };
                up.channel = args["channel_id"].as_str().map(str::to_owned);
                up.thread_ts = args["thread_ts"].as_str().map(str::to_owned);
                up.title = f["title"].as_str().map(str::to_owned);
                done.push(json!({"id": id, "title": up.title}));
                inner.uploads.push(up);
            }
            ok(json!({"files": done}))
        }
        "apps.connections.open" => ok(json!({"url": format!("ws://{}/socket", fake.addr)})),
        "chat.postEphemeral" => ok(json!({"message_ts": "1700000000.999999"})),
        "conversations.create" => {
            let name = args["name"].as_str().unwrap_or_default();
            if name.is_empty()
                || name.len() > 80
                || name.chars().any(|c| {
                    !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
                })
            {
                return err("invalid_name_specials");
            }
            let id = format!("C0DED{}", name.len());
            ok(
                json!({"channel": {"id": id, "name": name, "created": 1_700_000_000, "is_channel": true}}),
            )
        }
        "conversations.invite" => {
            ok(json!({"channel": {"id": args["channel"], "created": 1_700_000_000}}))
        }
        "usergroups.users.list" => {
            let group = args["usergroup"].as_str().unwrap_or_default().to_owned();
            let users = fake.lock().groups.get(&group).cloned().unwrap_or_default();
            ok(json!({"users": users}))
        }
        _ => err("unknown_method"),
    };
    fake.record(&method, args);
    response
}

/// What Slack answers when it is overloaded (429, with `Retry-After`) or
/// failing (a 5xx from its edge, HTML rather than JSON).
fn injected_failure(status: u16, retry_after_secs: u64) -> Response {
    if status == 429 {
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [
                ("retry-after", retry_after_secs.to_string()),
                ("content-type", "application/json".into()),
            ],
            json!({"ok": false, "error": "ratelimited"}).to_string(),
        )
            .into_response();
    }
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        [("content-type", "text/html")],
        format!("<html><body><h1>{status}</h1></body></html>"),
    )
        .into_response()
}

/// Step 2 of the upload: the bytes, posted to the URL step 1 returned.
async fn upload(
    State(fake): State<FakeSlack>,
    Path(file_id): Path<String>,
    body: Bytes,
) -> Response {
    let mut inner = fake.lock();
    match inner.pending_uploads.get_mut(&file_id) {
        Some(up) => {
            up.bytes = body.to_vec();
            drop(inner);
            fake.record("upload", json!({"file_id": file_id, "bytes": body.len()}));
            (StatusCode::OK, format!("OK - {}", body.len())).into_response()
        }
        None => (StatusCode::NOT_FOUND, "no such upload").into_response(),
    }
}

async fn socket(State(fake): State<FakeSlack>, ws: WebSocketUpgrade) -> Response {
    ws.on_upgrade(move |socket| serve_socket(fake, socket))
}

async fn serve_socket(fake: FakeSlack, mut socket: WebSocket) {
    fake.lock().sockets_opened += 1;
    let hello = json!({"type": "hello", "num_connections": 1, "connection_info": {"app_id": "A0TEST"}, "debug_info": {"host": "fake"}});
    if socket
        .send(WsMessage::Text(hello.to_string().into()))
        .await
        .is_err()
    {
        return;
    }
    loop {
        let next = fake.lock().envelopes.pop_front();
        if let Some(env) = next
            && socket
                .send(WsMessage::Text(env.to_string().into()))
                .await
                .is_err()
        {
            return;
        }
        tokio::select! {
            msg = socket.recv() => match msg {
                Some(Ok(WsMessage::Text(t))) => {
                    if let Ok(v) = serde_json::from_str::<Value>(&t) {
                        fake.lock().acks.push(v);
                        fake.changed.notify_waiters();
                    }
                }
                Some(Ok(WsMessage::Ping(p))) => { let _ = socket.send(WsMessage::Pong(p)).await; }
                Some(Ok(_)) => {}
                _ => return,
            },
            _ = fake.changed.notified() => {}
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
    }
}
