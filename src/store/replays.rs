//! Replay protection: the signed requests already handled.
//!
//! Slack and Discord requests carry no nonce, so a captured request stays
//! valid until its signed timestamp leaves the 5-minute window. Each
//! verified request is remembered here until then (Slack: its timestamp and
//! `v0=` signature; Discord: the interaction id), and a copy is told from
//! the first by one `INSERT … ON CONFLICT DO NOTHING`, on SQLite and
//! PostgreSQL alike, so that it holds across replicas.
//!
//! The answer is needed before the ack, and one commit per request would
//! make SQLite's single writer the limit of the ack path; so, like the SNS
//! writer, one task commits whatever has arrived meanwhile in one
//! transaction and then answers each waiting request. The same task
//! deletes, once a minute, the rows whose window has closed.

use std::time::Duration;

use sqlx::{AnyPool, Row};
use tokio::sync::{mpsc, oneshot};

use super::{Store, StoreError, now_ms};

/// How long a request is remembered after its signature's window closes:
/// room for clocks that differ between replicas.
pub const CLOCK_MARGIN_SECS: i64 = 60;

/// How often expired rows are deleted.
const PRUNE_EVERY: Duration = Duration::from_secs(60);

const BATCH: usize = 256;

/// A verified request to remember until `expires_ms`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenRequest {
    /// `slack` or `discord`: each platform has its own keys.
    pub platform: &'static str,
    pub key: String,
    pub expires_ms: i64,
}

impl SeenRequest {
    /// A request whose signature is accepted until `window_closes` (Unix
    /// seconds: its signed timestamp plus the window), remembered until
    /// then and [`CLOCK_MARGIN_SECS`] more.
    pub fn until(platform: &'static str, key: impl Into<String>, window_closes: i64) -> Self {
        Self {
            platform,
            key: key.into(),
            expires_ms: window_closes
                .saturating_add(CLOCK_MARGIN_SECS)
                .saturating_mul(1000),
        }
    }
}

/// Whether a request is the first copy or a repeat of one already handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sighting {
    First,
    Repeat,
}

type Reply = oneshot::Sender<Result<bool, String>>;

pub(super) type ReplayOp = (SeenRequest, Reply);

pub(super) fn spawn_replay_writer(pool: AnyPool) -> mpsc::Sender<ReplayOp> {
    let (tx, mut rx) = mpsc::channel::<ReplayOp>(8 * 1024);
    tokio::spawn(async move {
        let mut batch = Vec::with_capacity(BATCH);
        let mut prune = tokio::time::interval(PRUNE_EVERY);
        prune.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                // `recv_many` is cancel safe: nothing is lost to the tick.
                n = rx.recv_many(&mut batch, BATCH) => {
                    if n == 0 {
                        return;
                    }
                    answer_batch(&pool, &mut batch).await;
                }
                _ = prune.tick() => {
                    if let Err(e) = prune_expired(&pool, now_ms()).await {
                        tracing::debug!(error = %e, "expired request signatures not pruned");
                    }
                }
            }
        }
    });
    tx
}

/// Commits the batch and answers each sender; on failure every sender gets
/// the error (and its request is refused, so nothing runs unremembered).
async fn answer_batch(pool: &AnyPool, batch: &mut Vec<ReplayOp>) {
    match write_batch(pool, batch).await {
        Ok(first) => {
            for ((_, reply), first) in batch.drain(..).zip(first) {
                let _ = reply.send(Ok(first));
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, requests = batch.len(), "request signatures not stored");
            for (_, reply) in batch.drain(..) {
                let _ = reply.send(Err(e.to_string()));
            }
        }
    }
}

/// Inserts the batch in one transaction; per request, whether it was new.
/// Two copies in one batch: the first inserts, the second finds its row.
async fn write_batch(pool: &AnyPool, batch: &[ReplayOp]) -> Result<Vec<bool>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let mut first = Vec::with_capacity(batch.len());
    for (r, _) in batch {
        let done = sqlx::query(
            "INSERT INTO seen_requests (platform, request_key, expires_ms) VALUES ($1, $2, $3) \
             ON CONFLICT (platform, request_key) DO NOTHING",
        )
        .bind(r.platform)
        .bind(&r.key)
        .bind(r.expires_ms)
        .execute(&mut *tx)
        .await?;
        first.push(done.rows_affected() == 1);
    }
    tx.commit().await?;
    Ok(first)
}

async fn prune_expired(pool: &AnyPool, now_ms: i64) -> Result<u64, sqlx::Error> {
    let done = sqlx::query("DELETE FROM seen_requests WHERE expires_ms < $1")
        .bind(now_ms)
        .execute(pool)
        .await?;
    Ok(done.rows_affected())
}

impl Store {
    /// Remembers a verified request, committed when this returns:
    /// [`Sighting::First`] for the first copy on any replica sharing this
    /// store, [`Sighting::Repeat`] for every later one.
    pub async fn first_sight(&self, request: SeenRequest) -> Result<Sighting, StoreError> {
        let (tx, rx) = oneshot::channel();
        self.replay_writer
            .send((request, tx))
            .await
            .map_err(|_| StoreError::WriterGone)?;
        let first = rx
            .await
            .map_err(|_| StoreError::WriterGone)?
            .map_err(StoreError::Batch)?;
        Ok(if first {
            Sighting::First
        } else {
            Sighting::Repeat
        })
    }

    /// Deletes the requests remembered past their expiry (the writer does
    /// this once a minute); how many were deleted.
    pub async fn prune_seen_requests(&self, now_ms: i64) -> Result<u64, StoreError> {
        Ok(prune_expired(self.pool(), now_ms).await?)
    }

    /// How many requests are remembered.
    pub async fn seen_request_count(&self) -> Result<i64, StoreError> {
        let r = sqlx::query("SELECT COUNT(*) AS n FROM seen_requests")
            .fetch_one(self.pool())
            .await?;
        Ok(r.try_get("n")?)
    }
}
