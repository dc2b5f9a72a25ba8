//! The store's PostgreSQL connections over TCP have `TCP_NODELAY` set.
//!
//! sqlx 0.9.0 stopped setting it (sqlx#4335) and every round trip then
//! waited ~40 ms on Nagle's algorithm and delayed ACKs: one replica took
//! 587 alarms/s instead of 1,949/s. `vendor/sqlx-core` puts it back; this
//! test reads the option off the process's own sockets, so it fails if the
//! patch is dropped before a released sqlx sets it again.

use std::net::SocketAddr;
use std::os::fd::{BorrowedFd, RawFd};

use scalebot::config::StoreSettings;
use scalebot::store::Store;
use socket2::SockRef;

use crate::store::postgres_url;

struct PgSocket {
    fd: RawFd,
    nodelay: bool,
}

/// (local, peer) of `fd` if it is a connected TCP socket.
fn tcp_ends(sock: &SockRef<'_>) -> Option<(SocketAddr, SocketAddr)> {
    let local = sock.local_addr().ok()?.as_socket()?;
    let peer = sock.peer_addr().ok()?.as_socket()?;
    Some((local, peer))
}

/// Every TCP socket of this process whose peer is PostgreSQL's port. Other
/// tests open and close sockets meanwhile, so a socket counts only if its
/// two ends were the same before and after its option was read.
fn postgres_sockets(port: u16) -> Vec<PgSocket> {
    let mut found = Vec::new();
    let entries = std::fs::read_dir("/proc/self/fd").expect("/proc/self/fd");
    for entry in entries.flatten() {
        let Some(fd) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
            continue;
        };
        // SAFETY: the fd is only read with getsockopt/getsockname/getpeername
        // and never closed here; if another thread closes it meanwhile the
        // calls fail with EBADF and the ends check below discards it.
        let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
        let sock = SockRef::from(&borrowed);
        let Some(before) = tcp_ends(&sock) else {
            continue;
        };
        if before.1.port() != port {
            continue;
        }
        let Ok(nodelay) = sock.tcp_nodelay() else {
            continue;
        };
        if tcp_ends(&sock) == Some(before) {
            found.push(PgSocket { fd, nodelay });
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_connections_to_postgres_set_tcp_nodelay() {
    let url = postgres_url().await;
    let parsed = url::Url::parse(&url).expect("PostgreSQL URL");
    assert!(
        parsed.host_str().is_some_and(|h| !h.is_empty()),
        "this test needs PostgreSQL over TCP, not a unix socket: {url}"
    );
    let port = parsed.port().unwrap_or(5432);
    let store = Store::connect(&StoreSettings {
        url,
        max_connections: 2,
    })
    .await
    .expect("connects");
    store.ping().await.expect("ping");

    let sockets = postgres_sockets(port);
    assert!(
        !sockets.is_empty(),
        "no TCP socket to PostgreSQL's port {port} found in /proc/self/fd"
    );
    let slow: Vec<RawFd> = sockets
        .iter()
        .filter(|s| !s.nodelay)
        .map(|s| s.fd)
        .collect();
    assert!(
        slow.is_empty(),
        "PostgreSQL sockets without TCP_NODELAY (fds {slow:?}): is vendor/sqlx-core's patch gone?"
    );
}
