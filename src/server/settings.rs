//! `[server]`: where the HTTP ingress listens, and how much it reads.

use std::net::SocketAddr;

use serde::{Deserialize, Deserializer};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    pub listen: SocketAddr,
    /// Larger request bodies get 413 before anything reads them.
    #[serde(deserialize_with = "body_limit")]
    pub max_body_bytes: usize,
}

/// Below 1 KiB not even a Slack interaction fits.
fn body_limit<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    let n = usize::deserialize(d)?;
    if n < 1024 {
        return Err(serde::de::Error::custom("must be at least 1024"));
    }
    Ok(n)
}
