//! A small round-robin HTTP proxy, as a load balancer in front of several
//! `scalebot serve` replicas: each request goes to the next replica; a
//! replica that refuses the connection (down, or not listening yet) is
//! skipped and the next one tried. Once a request has been sent, it is not
//! sent again: if the replica dies before it answers, the client gets a 502
//! and retries itself, as SNS and Slack do.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// What the proxy did so far.
#[derive(Debug, Clone, Default)]
pub struct ProxyStats {
    /// Requests answered by each backend (any status), by index.
    pub answered: Vec<u64>,
    /// Connection attempts refused (a replica down), skipped to the next.
    pub refused: u64,
    /// Requests sent whose answer never came (the replica died meanwhile,
    /// or timed out): answered 502.
    pub lost: u64,
    /// Requests for which no replica accepted a connection: answered 503.
    pub none_up: u64,
}

struct Shared {
    backends: Vec<SocketAddr>,
    next: AtomicUsize,
    answered: Vec<AtomicU64>,
    refused: AtomicU64,
    lost: AtomicU64,
    none_up: AtomicU64,
    client: reqwest::Client,
}

pub struct RoundRobinProxy {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl RoundRobinProxy {
    pub async fn start(backends: Vec<SocketAddr>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the proxy");
        let addr = listener.local_addr().expect("proxy address");
        let client = reqwest::Client::builder()
            .no_proxy()
            .connect_timeout(Duration::from_secs(1))
            .timeout(Duration::from_secs(30))
            .pool_idle_timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("proxy client");
        let shared = Arc::new(Shared {
            answered: backends.iter().map(|_| AtomicU64::new(0)).collect(),
            backends,
            next: AtomicUsize::new(0),
            refused: AtomicU64::new(0),
            lost: AtomicU64::new(0),
            none_up: AtomicU64::new(0),
            client,
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

    pub fn stats(&self) -> ProxyStats {
        let s = &self.shared;
        ProxyStats {
            answered: s
                .answered
                .iter()
                .map(|a| a.load(Ordering::Relaxed))
                .collect(),
            refused: s.refused.load(Ordering::Relaxed),
            lost: s.lost.load(Ordering::Relaxed),
            none_up: s.none_up.load(Ordering::Relaxed),
        }
    }
}

impl Drop for RoundRobinProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn forward(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let incoming = match super::forward::read(request, 4 * 1024 * 1024).await {
        Ok(incoming) => incoming,
        Err(refused) => return refused,
    };
    let n = shared.backends.len();
    let first = shared.next.fetch_add(1, Ordering::Relaxed);
    for i in 0..n {
        let index = (first + i) % n;
        let backend = shared.backends[index];
        let req = incoming.to(&shared.client, &format!("http://{backend}"));
        match req.send().await {
            Ok(resp) => {
                let status = resp.status();
                let headers = resp.headers().clone();
                let bytes = match resp.bytes().await {
                    Ok(b) => b,
                    Err(e) => {
                        shared.lost.fetch_add(1, Ordering::Relaxed);
                        return bad_gateway(backend, &e);
                    }
                };
                shared.answered[index].fetch_add(1, Ordering::Relaxed);
                return super::forward::answer(status, &headers, bytes);
            }
            // Nothing was sent: the next replica may take it.
            Err(e) if e.is_connect() => {
                shared.refused.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                shared.lost.fetch_add(1, Ordering::Relaxed);
                return bad_gateway(backend, &e);
            }
        }
    }
    shared.none_up.fetch_add(1, Ordering::Relaxed);
    (StatusCode::SERVICE_UNAVAILABLE, "no replica is up\n").into_response()
}

fn bad_gateway(backend: SocketAddr, e: &reqwest::Error) -> Response {
    (
        StatusCode::BAD_GATEWAY,
        format!("replica {backend} did not answer: {e}\n"),
    )
        .into_response()
}
