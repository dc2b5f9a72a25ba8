//! SNS signing certificates, fetched on demand but never on anyone's
//! say-so alone.
//!
//! `POST /sns` is open to anyone, and a message names the URL of the
//! certificate it claims to be signed with. Before any fetch the URL must
//! be on the SNS endpoint of the topic's region (`sns::Verifier::precheck`);
//! then, for a URL whose key is not cached yet:
//!
//! - **One fetch per URL at a time**: requests that need a certificate
//!   already being fetched wait for that fetch (it runs on a task of its
//!   own, so a client that hangs up does not cancel it for the others).
//! - **Failures are remembered** for `sns.cert_failure_cache_seconds`: a
//!   URL that failed is not fetched again before then, and its requests
//!   get the same answer at once (503 when the host failed, so SNS retries;
//!   400 when what it served is not SNS's certificate).
//! - **At most `sns.cert_fetches_per_minute` fetches** in any minute; a
//!   request that would need one more gets 503 without a fetch. SNS
//!   retries, and a genuine certificate is fetched once the minute has
//!   room again.
//!
//! A fetched certificate must be issued to SNS (`sns::names`) before its
//! key is cached.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures::FutureExt;
use futures::future::{BoxFuture, Shared};

use crate::sns::{SigningKey, SnsError, Verifier};

/// Signing certificates are small; a larger answer is not one.
const MAX_CERT_BYTES: usize = 64 * 1024;

/// The window the fetch cap counts in.
const WINDOW: Duration = Duration::from_secs(60);

/// How many certificates may be fetched, and how long a failure stands.
#[derive(Debug, Clone, Copy)]
pub struct CertLimits {
    pub fetches_per_minute: usize,
    pub failure_ttl: Duration,
}

/// Why there is no key for a certificate URL.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CertFailure {
    /// The host did not serve it (unreachable, timeout, an HTTP error):
    /// worth a retry later.
    #[error("{0}")]
    Unavailable(String),
    /// It served something that is not SNS's signing certificate.
    #[error(transparent)]
    Invalid(SnsError),
    /// The minute's fetches are used up; nothing was fetched.
    #[error(
        "the signing certificate is not known yet and sns.cert_fetches_per_minute certificates were fetched in the last minute; retry later"
    )]
    Capped,
}

type Fetch = Shared<BoxFuture<'static, Result<Arc<SigningKey>, CertFailure>>>;

#[derive(Default)]
struct State {
    in_flight: HashMap<String, Fetch>,
    /// URL → when it failed and how.
    failed: HashMap<String, (Instant, CertFailure)>,
    budget: Budget,
}

/// When each fetch of the last [`WINDOW`] started, oldest first.
#[derive(Default)]
struct Budget(VecDeque<Instant>);

impl Budget {
    /// Counts a fetch starting at `now` if fewer than `max` started in the
    /// window before it.
    fn take(&mut self, now: Instant, max: usize) -> bool {
        while self
            .0
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= WINDOW)
        {
            self.0.pop_front();
        }
        if self.0.len() >= max {
            return false;
        }
        self.0.push_back(now);
        true
    }
}

/// Fetches certificates under the rules above; keys go into the
/// [`Verifier`]'s cache.
pub struct CertFetcher {
    http: reqwest::Client,
    verifier: Arc<Verifier>,
    limits: CertLimits,
    state: Arc<Mutex<State>>,
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

impl CertFetcher {
    pub fn new(http: reqwest::Client, verifier: Arc<Verifier>, limits: CertLimits) -> Self {
        Self {
            http,
            verifier,
            limits,
            state: Arc::default(),
        }
    }

    /// The key of the certificate at `url` (a URL that passed
    /// `Verifier::precheck`): cached, fetched by a request before this
    /// one, or fetched now if the minute allows.
    pub async fn key(&self, url: &str) -> Result<Arc<SigningKey>, CertFailure> {
        if let Some(key) = self.verifier.cached_key(url) {
            return Ok(key);
        }
        let fetch = {
            let mut state = lock(&self.state);
            let now = Instant::now();
            state
                .failed
                .retain(|_, (at, _)| now.saturating_duration_since(*at) < self.limits.failure_ttl);
            if let Some((_, failure)) = state.failed.get(url) {
                return Err(failure.clone());
            }
            match state.in_flight.get(url) {
                Some(fetch) => fetch.clone(),
                None => self.start(&mut state, url, now)?,
            }
        };
        fetch.await
    }

    /// Starts a fetch of `url` if the minute has room (the caller holds
    /// the lock, so the task cannot finish before it is registered).
    fn start(&self, state: &mut State, url: &str, now: Instant) -> Result<Fetch, CertFailure> {
        if !state.budget.take(now, self.limits.fetches_per_minute) {
            tracing::warn!(
                url,
                cap = self.limits.fetches_per_minute,
                "SNS certificate not fetched: the fetches of this minute are used up"
            );
            return Err(CertFailure::Capped);
        }
        let task = tokio::spawn(fetch_and_learn(
            self.http.clone(),
            self.verifier.clone(),
            self.state.clone(),
            url.to_owned(),
        ));
        let fetch = async move {
            task.await.unwrap_or_else(|e| {
                Err(CertFailure::Unavailable(format!(
                    "the certificate fetch stopped: {e}"
                )))
            })
        }
        .boxed()
        .shared();
        state.in_flight.insert(url.to_owned(), fetch.clone());
        Ok(fetch)
    }
}

/// One fetch: the certificate, its checks, the key cached or the failure
/// remembered, and the URL no longer in flight.
async fn fetch_and_learn(
    http: reqwest::Client,
    verifier: Arc<Verifier>,
    state: Arc<Mutex<State>>,
    url: String,
) -> Result<Arc<SigningKey>, CertFailure> {
    let result = match fetch(&http, &url).await {
        Ok(pem) => verifier.learn(&url, &pem).map_err(CertFailure::Invalid),
        Err(e) => Err(CertFailure::Unavailable(e)),
    };
    let mut state = lock(&state);
    state.in_flight.remove(&url);
    match &result {
        Ok(_) => tracing::info!(url, "SNS signing certificate fetched"),
        Err(failure) => {
            tracing::warn!(url, reason = %failure, "SNS signing certificate not usable");
            state
                .failed
                .insert(url.clone(), (Instant::now(), failure.clone()));
        }
    }
    result
}

/// GETs the certificate: HTTPS only, no redirects, the client's timeouts.
async fn fetch(http: &reqwest::Client, url: &str) -> Result<Vec<u8>, String> {
    let resp = http
        .get(url)
        .send()
        .await
        .map_err(|e| format!("fetching {url}: {e}"))?;
    if !resp.status().is_success() {
        return Err(format!("fetching {url}: HTTP {}", resp.status()));
    }
    if resp
        .content_length()
        .is_some_and(|n| n > MAX_CERT_BYTES as u64)
    {
        return Err(format!("{url} is larger than a certificate"));
    }
    let bytes = resp
        .bytes()
        .await
        .map_err(|e| format!("reading {url}: {e}"))?;
    if bytes.len() > MAX_CERT_BYTES {
        return Err(format!("{url} is larger than a certificate"));
    }
    Ok(bytes.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_counts_the_last_minute() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut budget = Budget::default();
        assert!(budget.take(at(0), 2));
        assert!(budget.take(at(10), 2));
        assert!(!budget.take(at(59), 2), "two in the minute already");
        assert!(budget.take(at(60), 2), "the first one left the window");
        assert!(!budget.take(at(69), 2));
        assert!(budget.take(at(70), 2));
        assert_eq!(budget.0.len(), 2);
    }
}
