//! A small W3C WebDriver client over reqwest, enough to drive Debian's
//! headless Chromium through `chromedriver`: sessions, navigation, element
//! lookup, clicks, typing, scripts and screenshots. (A client crate such as
//! fantoccini would add a second HTTP stack to build for these few calls.)

#![allow(dead_code)]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};

/// W3C's key for an element reference in JSON.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";
pub const ENTER: &str = "\u{E007}";
pub const TAB: &str = "\u{E004}";

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// `chromedriver` on a free port, killed on drop.
pub struct Driver {
    child: Child,
    base: String,
    http: reqwest::Client,
}

/// One browser; each has a profile of its own, so that two sessions of
/// one driver are two people (their own session storage).
pub struct Session<'d> {
    driver: &'d Driver,
    id: String,
    _profile: tempfile::TempDir,
}

#[derive(Debug, Clone)]
pub struct Element(String);

impl Element {
    pub fn from_id(id: &str) -> Self {
        Self(id.to_owned())
    }

    /// The element as a script argument.
    pub fn to_json(&self) -> Value {
        json!({ ELEMENT: self.0 })
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl Driver {
    /// `None` when Chromium or chromedriver is not installed.
    pub async fn start() -> Option<Self> {
        if !std::path::Path::new(CHROMIUM).exists() || !std::path::Path::new(CHROMEDRIVER).exists()
        {
            return None;
        }
        let port = free_port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let driver = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::new(),
        };
        let started = Instant::now();
        loop {
            if let Ok(r) = driver
                .http
                .get(format!("{}/status", driver.base))
                .send()
                .await
                && let Ok(v) = r.json::<Value>().await
                && v["value"]["ready"] == true
            {
                return Some(driver);
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "chromedriver did not become ready"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        match self.try_call(method.clone(), path, body).await {
            Ok(v) => v,
            Err(e) => panic!("{method} {path}: {e}"),
        }
    }

    /// The call's value, or WebDriver's error (`stale element reference`,
    /// `element click intercepted`, …) with its message.
    async fn try_call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, String> {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.expect("webdriver request");
        let status = r.status();
        let v: Value = r.json().await.unwrap_or(Value::Null);
        if status.is_success() {
            Ok(v["value"].clone())
        } else {
            Err(format!(
                "{status} {}: {}",
                v["value"]["error"].as_str().unwrap_or("?"),
                v["value"]["message"].as_str().unwrap_or_default()
            ))
        }
    }

    pub async fn session(&self) -> Session<'_> {
        let profile = tempfile::tempdir().expect("profile dir");
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--window-size=1400,1000",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain([format!("--user-data-dir={}", profile.path().display())])
        .collect::<Vec<_>>();
        let caps = json!({
            "capabilities": { "alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": { "binary": CHROMIUM, "args": args }
            }}
        });
        let v = self
            .call(reqwest::Method::POST, "/session", Some(caps))
            .await;
        let id = v["sessionId"].as_str().expect("session id").to_owned();
        Session {
            driver: self,
            id,
            _profile: profile,
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Session<'_> {
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        self.driver
            .call(method, &format!("/session/{}{path}", self.id), body)
            .await
    }

    pub async fn goto(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", Some(json!({ "url": url })))
            .await;
    }

    pub async fn find(&self, css: &str) -> Element {
        let v = self
            .call(
                reqwest::Method::POST,
                "/element",
                Some(json!({ "using": "css selector", "value": css })),
            )
            .await;
        Element(
            v[ELEMENT]
                .as_str()
                .unwrap_or_else(|| panic!("no element for {css}: {v}"))
                .to_owned(),
        )
    }

    pub async fn click(&self, e: &Element) {
        self.call(
            reqwest::Method::POST,
            &format!("/element/{}/click", e.0),
            Some(json!({})),
        )
        .await;
    }

    /// A click that may fail (the element was redrawn meanwhile, or
    /// something covers it), with WebDriver's reason.
    pub async fn try_click(&self, e: &Element) -> Result<(), String> {
        self.driver
            .try_call(
                reqwest::Method::POST,
                &format!("/session/{}/element/{}/click", self.id, e.0),
                Some(json!({})),
            )
            .await
            .map(|_| ())
    }

    pub async fn type_text(&self, e: &Element, text: &str) {
        self.call(
            reqwest::Method::POST,
            &format!("/element/{}/value", e.0),
            Some(json!({ "text": text })),
        )
        .await;
    }

    /// Runs `script` (a function body; `arguments` holds `args`).
    pub async fn run(&self, script: &str, args: Value) -> Value {
        self.call(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({ "script": script, "args": args })),
        )
        .await
    }

    /// Runs `script` until it returns something other than null or false.
    pub async fn wait_for(
        &self,
        what: &str,
        script: &str,
        args: Value,
        timeout: Duration,
    ) -> Value {
        let started = Instant::now();
        loop {
            let v = self.run(script, args.clone()).await;
            if !(v.is_null() || v == false) {
                return v;
            }
            if started.elapsed() > timeout {
                let page = self.run("return document.body.innerText;", json!([])).await;
                panic!("{what}: not seen within {timeout:?}; the page shows:\n{page}");
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    pub async fn screenshot(&self) -> Vec<u8> {
        let v = self.call(reqwest::Method::GET, "/screenshot", None).await;
        base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap_or_default())
            .expect("base64 PNG")
    }

    pub async fn quit(self) {
        self.driver
            .call(
                reqwest::Method::DELETE,
                &format!("/session/{}", self.id),
                None,
            )
            .await;
    }
}
