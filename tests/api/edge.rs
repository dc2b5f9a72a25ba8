//! The edge under slow clients (loopback only, bounded in time): 2,000
//! slow-loris connections, each sending a partial request head and then
//! one byte every two seconds, do not stop a signed `/scale help` from
//! being answered within a second, and the header-read timeout closes
//! every one of them; connections beyond the per-client limit are closed
//! as soon as they are accepted; a body that never arrives gets 408 after
//! the request timeout, and a request beyond the limit in flight 503;
//! shutdown closes idle connections at once and waits for slow ones no
//! longer than their header timeout.
//!
//! The slow clients come from 127.0.0.2 onwards (Linux routes all of
//! 127.0.0.0/8 to loopback), 80 from each, under the per-client limit;
//! the signed command comes from 127.0.0.1. Client and server share this
//! process, so each slow connection costs two file descriptors: the test
//! sizes itself to the soft open-file limit (`ulimit -n`), and says so if
//! that means fewer than 2,000.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::support::app::{Options, SIGNING_SECRET, TestApp, now, sign, slash_body, spawn_app};

const SLOW_CLIENTS: usize = 2000;
const PER_SOURCE: usize = 80;
const PER_IP_LIMIT: usize = 100;
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
const TRICKLE_EVERY: Duration = Duration::from_secs(2);

/// The soft limit on open files, from /proc (no libc here).
fn open_file_limit() -> Option<usize> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// As many slow clients as the open-file limit allows, up to 2,000 (two
/// descriptors each, and 600 for everything else in the test binary).
fn slow_client_count() -> usize {
    match open_file_limit() {
        Some(limit) if limit < 2 * SLOW_CLIENTS + 600 => {
            let n = limit.saturating_sub(600) / 2;
            eprintln!(
                "slow loris: ulimit -n is {limit}, so {n} slow clients instead of {SLOW_CLIENTS}"
            );
            n
        }
        _ => SLOW_CLIENTS,
    }
}

async fn connect_from(source: Ipv4Addr, server: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::from((source, 0)))?;
    socket.connect(server).await
}

/// One slow client: a partial request head, then a byte every two
/// seconds, until the server closes the connection; how long after the
/// first byte that was (`None`: still open after 30 s).
async fn slow_loris(mut stream: TcpStream) -> Option<Duration> {
    let started = Instant::now();
    let head = b"POST /slack/commands HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ";
    if stream.write_all(head).await.is_err() {
        return Some(started.elapsed());
    }
    let mut buf = [0u8; 512];
    let mut next = tokio::time::Instant::now() + TRICKLE_EVERY;
    while started.elapsed() < Duration::from_secs(30) {
        tokio::select! {
            read = stream.read(&mut buf) => match read {
                Ok(0) | Err(_) => return Some(started.elapsed()),
                Ok(_) => {} // an error response; the close follows
            },
            () = tokio::time::sleep_until(next) => {
                if stream.write_all(b"a").await.is_err() {
                    return Some(started.elapsed());
                }
                next += TRICKLE_EVERY;
            }
        }
    }
    None
}

/// `/scale help`, signed, on a connection of its own; its latency.
async fn signed_help(app: &TestApp) -> Duration {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    let body = slash_body("help", "U0EDGE", "C0EDGE");
    let ts = now();
    let started = Instant::now();
    let resp = client
        .post(format!("{}/slack/commands", app.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-slack-request-timestamp", ts.to_string())
        .header("x-slack-signature", sign(SIGNING_SECRET, ts, &body))
        .body(body)
        .send()
        .await
        .expect("the command is answered");
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    let latency = started.elapsed();
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("/scale"), "the help text: {text}");
    latency
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_loris_connections_do_not_stop_a_signed_command_and_are_cut_off() {
    let app = spawn_app(Options {
        tweak: Some(Box::new(|s| {
            s.server.header_read_timeout = HEADER_TIMEOUT;
            s.server.max_connections_per_ip = PER_IP_LIMIT;
        })),
        ..Options::default()
    })
    .await;
    let server: SocketAddr = app
        .base
        .trim_start_matches("http://")
        .parse()
        .expect("address");
    let n = slow_client_count();
    let opened = Instant::now();
    let mut loris = Vec::with_capacity(n);
    for i in 0..n {
        let source = Ipv4Addr::new(127, 0, 0, 2 + (i / PER_SOURCE) as u8);
        let stream = connect_from(source, server)
            .await
            .expect("a slow connection");
        loris.push(tokio::spawn(slow_loris(stream)));
    }
    let opening = opened.elapsed();

    // While they trickle: the signed command, five times, each on a new
    // connection, each answered within a second.
    let mut latencies = Vec::new();
    for _ in 0..5 {
        latencies.push(signed_help(&app).await);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let worst = latencies.iter().max().copied().unwrap_or_default();
    assert!(
        worst < Duration::from_secs(1),
        "answered within 1 s: {latencies:?}"
    );

    let mut closed_after = Vec::with_capacity(n);
    for task in loris {
        closed_after.push(task.await.expect("slow client task"));
    }
    let still_open = closed_after.iter().filter(|c| c.is_none()).count();
    assert_eq!(still_open, 0, "every slow connection is closed");
    let mut closed: Vec<Duration> = closed_after.into_iter().flatten().collect();
    closed.sort();
    let (first, last) = (closed[0], closed[closed.len() - 1]);
    // Closed by the header timeout: not before it, and not long after.
    assert!(
        first >= HEADER_TIMEOUT - Duration::from_millis(500),
        "closed early: {first:?}"
    );
    assert!(
        last <= HEADER_TIMEOUT + Duration::from_secs(3),
        "closed late: {last:?}"
    );
    eprintln!(
        "slow loris: {n} connections opened in {:.2} s; signed /scale help answered in {:?} (worst {} ms); \
         all closed by the {} s header-read timeout between {:.2} s and {:.2} s after their first byte",
        opening.as_secs_f64(),
        latencies.iter().map(|l| l.as_millis()).collect::<Vec<_>>(),
        worst.as_millis(),
        HEADER_TIMEOUT.as_secs(),
        first.as_secs_f64(),
        last.as_secs_f64()
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_per_client_limit_are_closed_at_once() {
    let app = spawn_app(Options {
        tweak: Some(Box::new(|s| {
            s.server.header_read_timeout = HEADER_TIMEOUT;
            s.server.max_connections_per_ip = 20;
        })),
        ..Options::default()
    })
    .await;
    let server: SocketAddr = app
        .base
        .trim_start_matches("http://")
        .parse()
        .expect("address");
    let source = Ipv4Addr::new(127, 0, 0, 250);
    let mut streams = Vec::new();
    for _ in 0..25 {
        streams.push(connect_from(source, server).await.expect("connect"));
    }
    // A closed connection reads EOF (or a reset) at once; an open one is
    // still waiting a second later (the header timeout is five).
    let reads = streams.iter_mut().map(|stream| async move {
        let mut buf = [0u8; 16];
        let read = tokio::time::timeout(Duration::from_secs(1), stream.read(&mut buf)).await;
        matches!(read, Ok(Ok(0)) | Ok(Err(_)))
    });
    let closed = futures::future::join_all(reads)
        .await
        .into_iter()
        .filter(|c| *c)
        .count();
    assert_eq!(closed, 5, "the five beyond the limit of 20");
    // Another client is served meanwhile.
    assert!(signed_help(&app).await < Duration::from_secs(1));
    drop(streams);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_idle_connections_and_is_not_held_by_slow_ones() {
    let app = spawn_app(Options {
        tweak: Some(Box::new(|s| s.server.header_read_timeout = HEADER_TIMEOUT)),
        ..Options::default()
    })
    .await;
    let server: SocketAddr = app
        .base
        .trim_start_matches("http://")
        .parse()
        .expect("address");
    let source = Ipv4Addr::new(127, 0, 0, 251);
    let mut idle = Vec::new();
    let mut slow = Vec::new();
    for _ in 0..20 {
        idle.push(connect_from(source, server).await.expect("connect"));
        let stream = connect_from(source, server).await.expect("connect");
        slow.push(tokio::spawn(slow_loris(stream)));
    }
    // A served keep-alive connection, idle now.
    assert!(signed_help(&app).await < Duration::from_secs(1));
    let stopping = Instant::now();
    let stop = tokio::spawn(app.stop());
    let reads = idle.iter_mut().map(|stream| async move {
        let mut buf = [0u8; 16];
        let read = tokio::time::timeout(Duration::from_secs(2), stream.read(&mut buf)).await;
        matches!(read, Ok(Ok(0)) | Ok(Err(_)))
    });
    let closed = futures::future::join_all(reads).await;
    assert!(
        closed.iter().all(|c| *c),
        "idle connections close at shutdown: {closed:?}"
    );
    stop.await.expect("stopped");
    let stopped = stopping.elapsed();
    assert!(
        stopped <= HEADER_TIMEOUT + Duration::from_secs(2),
        "shutdown waited {stopped:?}"
    );
    for task in slow {
        assert!(task.await.expect("slow client").is_some(), "closed");
    }
}

/// Reads what the server sends until it closes or `within` passes.
async fn read_answer(stream: &mut TcpStream, within: Duration) -> String {
    let mut answer = Vec::new();
    let mut buf = [0u8; 1024];
    let deadline = tokio::time::Instant::now() + within;
    while let Ok(Ok(n)) = tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
        if n == 0 {
            break;
        }
        answer.extend_from_slice(&buf[..n]);
        if answer.windows(4).any(|w| w == b"\r\n\r\n") {
            break;
        }
    }
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_body_gets_408_and_requests_beyond_the_limit_in_flight_get_503() {
    let app = spawn_app(Options {
        tweak: Some(Box::new(|s| {
            s.server.request_timeout = Duration::from_secs(2);
            s.server.max_in_flight_requests = 2;
        })),
        ..Options::default()
    })
    .await;
    let server: SocketAddr = app
        .base
        .trim_start_matches("http://")
        .parse()
        .expect("address");
    // Two requests whose bodies never finish: each holds a place in flight.
    let head = "POST /slack/commands HTTP/1.1\r\nHost: 127.0.0.1\r\n\
                Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\ntoken=";
    let started = Instant::now();
    let mut slow = Vec::new();
    for _ in 0..2 {
        let mut stream = TcpStream::connect(server).await.expect("connect");
        stream.write_all(head.as_bytes()).await.expect("write");
        slow.push(stream);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let resp = reqwest::Client::new()
        .get(format!("{}/healthz", app.base))
        .send()
        .await
        .expect("answered");
    assert_eq!(resp.status().as_u16(), 503, "a third request in flight");
    assert_eq!(
        resp.headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("1")
    );
    for stream in &mut slow {
        let answer = read_answer(stream, Duration::from_secs(5)).await;
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer:?}");
    }
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(2) && waited < Duration::from_secs(4),
        "{waited:?}"
    );
    // Their places are free again.
    assert!(signed_help(&app).await < Duration::from_secs(1));
    let metrics = app.get("/metrics").await.text().await.expect("metrics");
    let series = r#"scalebot_requests_total{route="/healthz",outcome="overloaded"} 1"#;
    assert!(metrics.contains(series), "{series} in:\n{metrics}");
    app.stop().await;
}
