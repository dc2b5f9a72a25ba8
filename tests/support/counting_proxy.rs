//! A small HTTP proxy in front of an AWS endpoint (moto) that counts every
//! request by method and path before passing it on unchanged, so that a
//! test can tell how often separate `scalebot serve` processes called an
//! operation: `PUT /2017-10-31/functions/{name}/concurrency` is Lambda's
//! PutFunctionConcurrency.
//!
//! A request is counted when it has arrived whole, and it then reaches the
//! endpoint even if the client dies before the answer (it is forwarded in a
//! task of its own): AWS, too, applies a call whose caller was killed.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tokio::sync::Notify;

/// One request as the proxy saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    /// Without the query.
    pub path: String,
    pub at: Instant,
    /// The endpoint's status, once it answered (0: no answer).
    pub status: u16,
}

struct Shared {
    target: String,
    client: reqwest::Client,
    seen: Mutex<Vec<Seen>>,
    /// Woken at every request's arrival.
    arrived: Notify,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Seen>> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner())
    }
}

pub struct CountingProxy {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl CountingProxy {
    /// Listens on a loopback port and forwards to `target` (a base URL).
    pub async fn start(target: &str) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the counting proxy");
        let addr = listener.local_addr().expect("proxy address");
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(60))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("proxy client");
        let shared = Arc::new(Shared {
            target: target.trim_end_matches('/').to_owned(),
            client,
            seen: Mutex::new(Vec::new()),
            arrived: Notify::new(),
        });
        let app = Router::new().fallback(forward).with_state(shared.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, shared, task }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// How many `method path` requests arrived.
    pub fn count(&self, method: &str, path: &str) -> usize {
        self.shared
            .lock()
            .iter()
            .filter(|s| s.method == method && s.path == path)
            .count()
    }

    /// Waits until a `method path` request has arrived; `false` if none
    /// has after `within`.
    pub async fn wait_for(&self, method: &str, path: &str, within: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            // Registered before the look, so that no arrival is missed.
            let arrival = self.shared.arrived.notified();
            if self.count(method, path) > 0 {
                return true;
            }
            if tokio::time::timeout_at(deadline, arrival).await.is_err() {
                return self.count(method, path) > 0;
            }
        }
    }

    /// Every request so far, in arrival order.
    pub fn seen(&self) -> Vec<Seen> {
        self.shared.lock().clone()
    }

    /// Requests counted by `METHOD path`.
    pub fn counts(&self) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        for s in self.shared.lock().iter() {
            *out.entry(format!("{} {}", s.method, s.path)).or_default() += 1;
        }
        out
    }
}

impl Drop for CountingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn forward(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let incoming = match super::forward::read(request, 16 * 1024 * 1024).await {
        Ok(incoming) => incoming,
        Err(refused) => return refused,
    };
    let index = {
        let mut seen = shared.lock();
        seen.push(Seen {
            method: incoming.parts.method.to_string(),
            path: incoming.parts.uri.path().to_owned(),
            at: Instant::now(),
            status: 0,
        });
        seen.len() - 1
    };
    shared.arrived.notify_waiters();
    let req = incoming.to(&shared.client, &shared.target);
    // A task of its own: hyper drops this handler when the client's
    // connection goes (a replica killed mid-call), and the call must still
    // reach AWS, as it would have once sent.
    let done = shared.clone();
    let call = tokio::spawn(async move {
        let resp = req.send().await?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await?;
        done.lock()[index].status = status.as_u16();
        Ok::<_, reqwest::Error>((status, headers, bytes))
    });
    match call.await {
        Ok(Ok((status, headers, bytes))) => super::forward::answer(status, &headers, bytes),
        Ok(Err(e)) => (
            StatusCode::BAD_GATEWAY,
            format!("the endpoint did not answer: {e}\n"),
        )
            .into_response(),
        Err(e) => (StatusCode::BAD_GATEWAY, format!("forwarding failed: {e}\n")).into_response(),
    }
}
