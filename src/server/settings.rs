//! `[server]`: where the HTTP ingress listens (and, optionally, where the
//! metrics and health routes listen on their own), how much it reads, and
//! how long and how many clients it serves at once (`edge.rs`).

use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use crate::config::values;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    pub listen: SocketAddr,
    /// A second listener for `/metrics`, `/readyz` and `/healthz` only (for
    /// example `127.0.0.1:9090`, reachable by the scraper and the probes
    /// but not from the internet). When set, `/metrics` is no longer served
    /// on `listen`; the health routes stay there too, for load balancers.
    #[serde(default)]
    pub metrics_listen: Option<SocketAddr>,
    /// Larger request bodies get 413 before anything reads them.
    #[serde(deserialize_with = "body_limit")]
    pub max_body_bytes: usize,
    /// A connection that has not sent a whole request head (request line
    /// and headers) this long after it started one is closed: slow clients
    /// cannot hold connections open by trickling bytes.
    #[serde(
        rename = "header_read_timeout_seconds",
        deserialize_with = "positive_seconds"
    )]
    pub header_read_timeout: Duration,
    /// A request whose answer is not ready this long after its head
    /// arrived (its body read included) is answered 408.
    #[serde(
        rename = "request_timeout_seconds",
        deserialize_with = "positive_seconds"
    )]
    pub request_timeout: Duration,
    /// Open connections at most; a connection beyond it is closed as soon
    /// as it is accepted.
    #[serde(deserialize_with = "values::at_least_one")]
    pub max_connections: usize,
    /// Open connections from one client address at most (0: no limit).
    /// Behind a load balancer or proxy every connection comes from its
    /// address: raise this to `max_connections` or set 0 there.
    pub max_connections_per_ip: usize,
    /// Requests handled at once; one more is answered 503 at once
    /// (Slack, Discord and SNS retry), rather than queued.
    #[serde(deserialize_with = "values::at_least_one")]
    pub max_in_flight_requests: usize,
}

/// Below 1 KiB not even a Slack interaction fits.
fn body_limit<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    let n = usize::deserialize(d)?;
    if n < 1024 {
        return Err(serde::de::Error::custom("must be at least 1024"));
    }
    Ok(n)
}

/// A timeout of 0 would refuse every request.
fn positive_seconds<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    values::at_least_one::<D, u64>(d).map(Duration::from_secs)
}
