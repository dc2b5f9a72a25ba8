//! `spawn_demo`: the real `scalebot demo` application (web chat, simulated
//! account, simulated clock) on port 0 with a fresh SQLite store, and a
//! small client for its web-chat API.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use scalebot::engine::Engine;
use scalebot::settings_file::SettingsFile;
use scalebot::startup::Application;
use serde_json::{Value, json};
use tokio::sync::oneshot;

pub struct DemoApp {
    pub base: String,
    pub http: reqwest::Client,
    pub engine: Arc<Engine>,
    stop: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

/// The demo on `config/demo.toml`, with simulated time from `start` at
/// `speed` times the wall clock.
pub async fn spawn_demo(speed: f64, start: &str) -> DemoApp {
    let mut settings = SettingsFile::load(std::path::Path::new("config/demo.toml"))
        .expect("config/demo.toml loads");
    let dir = tempfile::tempdir().expect("temp dir");
    settings.server.listen = "127.0.0.1:0".parse().expect("address");
    settings.store.url = format!("sqlite://{}", dir.path().join("demo.db").display());
    settings.demo.speed = speed;
    settings.demo.start = Some(start.parse().expect("an RFC 3339 start"));
    let app = Application::build_demo(settings)
        .await
        .expect("the demo builds");
    let base = format!("http://127.0.0.1:{}", app.port());
    let engine = app.engine();
    let (tx, rx) = oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        app.run_until(async {
            let _ = rx.await;
        })
        .await
        .expect("the demo serves");
    });
    DemoApp {
        base,
        http: reqwest::Client::new(),
        engine,
        stop: Some(tx),
        server: Some(server),
        _dir: dir,
    }
}

impl DemoApp {
    pub async fn post(&self, path: &str, body: &str) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
            .await
            .expect("request");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn command(&self, user: &str, channel: &str, text: &str) -> (u16, Value) {
        let body = json!({ "user": user, "channel": channel, "text": text }).to_string();
        self.post("/web/api/command", &body).await
    }

    pub async fn button(
        &self,
        user: &str,
        channel: &str,
        action_id: &str,
        value: &str,
    ) -> (u16, Value) {
        let body =
            json!({ "user": user, "channel": channel, "action_id": action_id, "value": value })
                .to_string();
        self.post("/web/api/button", &body).await
    }

    /// Every message `user` may see.
    pub async fn messages(&self, user: &str) -> Vec<Value> {
        let state: Value = self
            .http
            .get(format!("{}/web/api/state?user={user}", self.base))
            .send()
            .await
            .expect("state")
            .json()
            .await
            .expect("state JSON");
        state["messages"].as_array().cloned().unwrap_or_default()
    }

    /// Waits until some message `user` sees satisfies `pred`.
    pub async fn wait_for(&self, user: &str, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let started = Instant::now();
        loop {
            if let Some(m) = self.messages(user).await.into_iter().find(|m| pred(m)) {
                return m;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "no message {what} within 60 s; messages: {:#?}",
                self.messages(user).await
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = tokio::time::timeout(Duration::from_secs(20), server).await;
        }
    }
}

/// A message's text: title, text and field values, for matching.
pub fn text_of(m: &Value) -> String {
    let b = &m["body"];
    let mut s = format!(
        "{} {}",
        b["title"].as_str().unwrap_or(""),
        b["text"].as_str().unwrap_or("")
    );
    for f in b["fields"].as_array().into_iter().flatten() {
        s.push(' ');
        s.push_str(f["value"].as_str().unwrap_or(""));
    }
    s
}

/// The value of the button labelled `label` (prefix match) on `m`.
pub fn button_value(m: &Value, label: &str) -> Option<String> {
    m["body"]["buttons"]
        .as_array()?
        .iter()
        .find(|b| b["label"].as_str().is_some_and(|l| l.starts_with(label)))
        .and_then(|b| b["value"].as_str().map(str::to_owned))
}
