//! The edge: accepting connections and serving the router on them.
//!
//! `axum::serve` runs hyper without a timer, so a client that sends a
//! request head one byte at a time holds its connection for ever. Here
//! every connection is hyper's HTTP/1 connection with a timer:
//!
//! - **Header-read timeout** (`server.header_read_timeout_seconds`): a
//!   request head (request line and headers) not complete this long after
//!   it was started closes the connection; an idle keep-alive connection
//!   is closed after the same time.
//! - **Connection limits**: at most `server.max_connections` open
//!   connections, and `server.max_connections_per_ip` from one client (an
//!   IPv6 client counts by its /64, which is what one host is given). A
//!   connection beyond either is closed as soon as it is accepted, so the
//!   listen backlog never fills with clients nobody will serve.
//! - **Graceful shutdown**: when `shutdown` resolves, no connection is
//!   accepted any more, idle connections close, and requests in flight
//!   finish (for at most the request timeout and a second).
//!
//! The per-request limits (request timeout, requests in flight, body
//! size) are layers on the router (`server/mod.rs`).

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};

use super::settings::ServerSettings;

/// How often a refused connection or a failed accept is logged at most.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// Serves `app` on `listener` until `shutdown` resolves, then waits for
/// the connections still open to finish their requests.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    settings: &ServerSettings,
    shutdown: impl Future<Output = ()>,
) {
    let table = Arc::new(Connections::new(
        settings.max_connections,
        settings.max_connections_per_ip,
    ));
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(settings.header_read_timeout);
    let graceful = GracefulShutdown::new();
    let mut shutdown = pin!(shutdown);
    let mut accept_errors = Throttled::default();
    loop {
        let accepted = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(conn) => conn,
            Err(e) => {
                // Out of file descriptors, most likely: give the open
                // connections time to close rather than spin.
                accept_errors.note(|n| tracing::warn!(error = %e, failures = n, "accept failed"));
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Some(slot) = table.admit(peer.ip()) else {
            continue;
        };
        serve_connection(&http, &graceful, &app, stream, peer, slot);
    }
    drop(listener);
    let grace = settings.request_timeout + Duration::from_secs(1);
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            waited_s = grace.as_secs(),
            "connections still open at shutdown; not waiting for them any longer"
        );
    }
}

/// One connection on a task of its own; its slot is given back when it
/// ends, whichever way.
fn serve_connection(
    http: &http1::Builder,
    graceful: &GracefulShutdown,
    app: &Router,
    stream: TcpStream,
    peer: SocketAddr,
    slot: Slot,
) {
    let _ = stream.set_nodelay(true);
    let service = TowerToHyperService::new(app.clone());
    let conn = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            // Header-read timeouts, resets, malformed requests: the
            // client's business, not an operator's.
            tracing::debug!(%peer, error = %e, "connection ended with an error");
        }
        drop(slot);
    });
}

/// The open connections, in all and per client.
struct Connections {
    max: usize,
    /// 0: no limit per client.
    per_client: usize,
    state: Mutex<Counts>,
}

#[derive(Default)]
struct Counts {
    open: usize,
    by_client: HashMap<IpAddr, usize>,
    refused: Throttled,
}

impl Connections {
    fn new(max: usize, per_client: usize) -> Self {
        Self {
            max,
            per_client,
            state: Mutex::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Counts> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A slot for a connection from `ip`, or `None` when it is one too
    /// many (logged, at most every ten seconds).
    fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<Slot> {
        let client = client_of(ip);
        let mut counts = self.lock();
        let from_client = counts.by_client.get(&client).copied().unwrap_or(0);
        let reason = if counts.open >= self.max {
            Some("server.max_connections")
        } else if self.per_client > 0 && from_client >= self.per_client {
            Some("server.max_connections_per_ip")
        } else {
            None
        };
        if let Some(limit) = reason {
            counts.refused.note(|n| {
                tracing::warn!(%client, limit, refused = n, "connection refused: limit reached");
            });
            return None;
        }
        counts.open += 1;
        *counts.by_client.entry(client).or_default() += 1;
        Some(Slot {
            table: self.clone(),
            client,
        })
    }

    fn release(&self, client: IpAddr) {
        let mut counts = self.lock();
        counts.open = counts.open.saturating_sub(1);
        if let Some(n) = counts.by_client.get_mut(&client) {
            *n -= 1;
            if *n == 0 {
                counts.by_client.remove(&client);
            }
        }
    }
}

/// What one client is counted as: an IPv4 address (an IPv4-mapped IPv6
/// one too), or an IPv6 address's /64.
fn client_of(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let mut octets = v6.octets();
            octets[8..].fill(0);
            IpAddr::from(octets)
        }
        v4 => v4,
    }
}

/// A connection's place in [`Connections`], given back on drop.
struct Slot {
    table: Arc<Connections>,
    client: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.table.release(self.client);
    }
}

/// Counts events and lets one log line through every [`LOG_EVERY`], with
/// the number since the last one.
#[derive(Default)]
struct Throttled {
    since_logged: u64,
    logged_at: Option<Instant>,
}

impl Throttled {
    fn note(&mut self, log: impl FnOnce(u64)) {
        self.since_logged += 1;
        if self.logged_at.is_none_or(|t| t.elapsed() >= LOG_EVERY) {
            log(self.since_logged);
            self.since_logged = 0;
            self.logged_at = Some(Instant::now());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("an address")
    }

    #[test]
    fn limits_count_per_client_and_in_all() {
        let table = Arc::new(Connections::new(3, 2));
        let a1 = table.admit(ip("10.0.0.1")).expect("first");
        let a2 = table.admit(ip("10.0.0.1")).expect("second");
        assert!(
            table.admit(ip("10.0.0.1")).is_none(),
            "third from one client"
        );
        let b1 = table.admit(ip("10.0.0.2")).expect("another client");
        assert!(table.admit(ip("10.0.0.3")).is_none(), "over the total");
        drop(a1);
        let a3 = table.admit(ip("10.0.0.1")).expect("a slot was given back");
        drop((a2, a3, b1));
        assert_eq!(table.lock().open, 0);
        assert!(table.lock().by_client.is_empty());
    }

    #[test]
    fn zero_per_client_is_no_limit() {
        let table = Arc::new(Connections::new(10, 0));
        let slots: Vec<_> = (0..10)
            .filter_map(|_| table.admit(ip("10.0.0.1")))
            .collect();
        assert_eq!(slots.len(), 10);
    }

    #[test]
    fn an_ipv6_client_is_its_64_and_mapped_ipv4_is_ipv4() {
        assert_eq!(
            client_of(ip("2001:db8:1:2:aaaa::1")),
            client_of(ip("2001:db8:1:2:bbbb::2"))
        );
        assert_ne!(
            client_of(ip("2001:db8:1:2::1")),
            client_of(ip("2001:db8:1:3::1"))
        );
        assert_eq!(client_of(ip("::ffff:10.0.0.1")), ip("10.0.0.1"));
    }
}
