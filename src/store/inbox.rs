//! The stored messages from AWS as a work queue shared by every replica.
//!
//! A worker claims due rows with a lease; while it lives it renews the
//! leases it holds, so a slow chat call is not mistaken for a dead replica,
//! and when it dies its leases run out and another replica takes the rows
//! over. A failed attempt is retried with backoff; a finished row records
//! what was done with it and by whom. One alarm's messages are never held
//! by two replicas at once, so they are taken in the order they arrived.

use sqlx::{Any, Row, Transaction};

use super::{Backend, Store, StoreError};

/// A claimed message.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub message_id: String,
    pub body: String,
    pub alarm_key: Option<String>,
    pub changed_ms: Option<i64>,
    /// Including this one.
    pub attempts: i64,
}

/// A stored message not yet processed.
#[derive(Debug, Clone)]
pub struct PendingSns {
    pub message_id: String,
    pub body: String,
}

/// A row done with: what was done, by which replica, when.
#[derive(Debug, Clone)]
pub struct Finish {
    pub message_id: String,
    pub outcome: String,
    pub by: String,
    pub at_ms: i64,
    /// An alarm's state change that was applied: (alarm, StateChangeTime).
    pub applied: Option<(String, i64)>,
    /// A repeated ALARM, counted for its incident's coalesced reply.
    pub repeat: Option<super::RepeatNote>,
}

/// Writes a batch's finishes; the ids that were finished now (finishing
/// twice, after a lease was taken over from a replica that was only slow,
/// keeps the first outcome). Each alarm's newest applied state change is
/// then written once for the batch.
pub(super) async fn write_finishes(
    tx: &mut Transaction<'_, Any>,
    finishes: &[&Finish],
) -> Result<std::collections::HashSet<String>, sqlx::Error> {
    let finished = finish_rows_at_once(tx, finishes).await?;
    let mut applied: std::collections::BTreeMap<&str, i64> = Default::default();
    for (key, changed) in finishes.iter().filter_map(|f| f.applied.as_ref()) {
        let newest = applied.entry(key).or_insert(*changed);
        *newest = (*newest).max(*changed);
    }
    for (key, changed) in applied {
        sqlx::query(
            "INSERT INTO alarm_applied (alarm_key, changed_ms) VALUES ($1, $2) \
             ON CONFLICT (alarm_key) DO UPDATE SET changed_ms = excluded.changed_ms \
             WHERE alarm_applied.changed_ms < excluded.changed_ms",
        )
        .bind(key)
        .bind(changed)
        .execute(&mut **tx)
        .await?;
    }
    Ok(finished)
}

/// One statement for the batch: on PostgreSQL a statement per row (a
/// round trip each) made the open-loop p99 four times longer.
async fn finish_rows_at_once(
    tx: &mut Transaction<'_, Any>,
    finishes: &[&Finish],
) -> Result<std::collections::HashSet<String>, sqlx::Error> {
    let mut finished = std::collections::HashSet::new();
    if finishes.is_empty() {
        return Ok(finished);
    }
    let rows: Vec<String> = (0..finishes.len())
        .map(|i| {
            let b = i * 4;
            format!("(${}, ${}, ${}, ${})", b + 1, b + 2, b + 3, b + 4)
        })
        .collect();
    // VALUES columns are column1… on both SQLite and PostgreSQL.
    let sql = format!(
        "UPDATE sns_messages SET processed_ms = v.column2, outcome = v.column3, processed_by = v.column4, \
         lease_holder = NULL, lease_until_ms = NULL \
         FROM (VALUES {}) AS v \
         WHERE sns_messages.message_id = v.column1 AND sns_messages.processed_ms IS NULL \
         RETURNING sns_messages.message_id",
        rows.join(", ")
    );
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for f in finishes {
        q = q
            .bind(&f.message_id)
            .bind(f.at_ms)
            .bind(&f.outcome)
            .bind(&f.by);
    }
    for r in q.fetch_all(&mut **tx).await? {
        finished.insert(r.try_get::<String, _>("message_id")?);
    }
    Ok(finished)
}

/// PostgreSQL: claims from all replicas take turns (one short statement
/// each), so that two replicas never both see an alarm as not in flight.
const CLAIM_LOCK: i64 = 0x5ca1_ab07;

/// Due rows held by nobody, oldest first, whose alarm has no row held by
/// anyone (the subquery is small: only rows in flight).
const CLAIM: &str = "UPDATE sns_messages SET lease_holder = $1, lease_until_ms = $2, attempts = attempts + 1 \
     WHERE message_id IN ( \
       SELECT m.message_id FROM sns_messages m \
       WHERE m.processed_ms IS NULL AND m.next_attempt_ms <= $3 \
         AND (m.lease_until_ms IS NULL OR m.lease_until_ms < $3) \
         AND (m.alarm_key IS NULL OR m.alarm_key NOT IN ( \
           SELECT o.alarm_key FROM sns_messages o \
           WHERE o.processed_ms IS NULL AND o.lease_until_ms >= $3 AND o.alarm_key IS NOT NULL)) \
       ORDER BY m.next_attempt_ms, m.received_ms, m.message_id LIMIT $4) \
     RETURNING message_id, body, alarm_key, changed_ms, attempts";

/// A claim of up to `limit` due messages for `holder` until `until_ms`.
#[derive(Debug, Clone)]
pub(super) struct Claim {
    holder: String,
    now_ms: i64,
    until_ms: i64,
    limit: i64,
}

impl Claim {
    /// Runs the claim in `tx`; the rows in the order the worker takes them.
    pub(super) async fn run(
        &self,
        tx: &mut Transaction<'_, Any>,
    ) -> Result<Vec<Claimed>, sqlx::Error> {
        let rows = sqlx::query(CLAIM)
            .bind(&self.holder)
            .bind(self.until_ms)
            .bind(self.now_ms)
            .bind(self.limit)
            .fetch_all(&mut **tx)
            .await?;
        let mut claimed = rows
            .iter()
            .map(|r| {
                Ok(Claimed {
                    message_id: r.try_get("message_id")?,
                    body: r.try_get("body")?,
                    alarm_key: r.try_get("alarm_key")?,
                    changed_ms: r.try_get("changed_ms")?,
                    attempts: r.try_get::<i64, _>("attempts")?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
        // RETURNING gives no order; the worker takes them in this one.
        claimed.sort_by_key(|c| (c.changed_ms, c.message_id.clone()));
        Ok(claimed)
    }
}

impl Store {
    /// Claims up to `limit` due messages for `holder` until `until_ms`,
    /// oldest first.
    pub async fn claim_inbox(
        &self,
        holder: &str,
        now_ms: i64,
        until_ms: i64,
        limit: i64,
    ) -> Result<Vec<Claimed>, StoreError> {
        let claim = Claim {
            holder: holder.to_owned(),
            now_ms,
            until_ms,
            limit,
        };
        if self.backend() == Backend::Sqlite {
            // SQLite has one writer: a claim in a transaction of its own
            // would wait on the group-commit writer's lock (and it on the
            // claim's) with SQLite's sleeping busy handler; in the writer's
            // batch it waits for nothing.
            return self.claim_in_writer(claim).await;
        }
        let mut tx = self.pool().begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(CLAIM_LOCK)
            .execute(&mut *tx)
            .await?;
        let claimed = claim.run(&mut tx).await?;
        tx.commit().await?;
        Ok(claimed)
    }

    /// Extends every lease `holder` still has: it is alive.
    pub async fn renew_inbox_leases(
        &self,
        holder: &str,
        now_ms: i64,
        until_ms: i64,
    ) -> Result<u64, StoreError> {
        // On PostgreSQL the rows the writer is finishing right now are
        // locked by its batch: renewing them would wait for it, in another
        // order than it takes them, and deadlock (a second's wait, then a
        // failed batch). They are done anyway, so they are skipped.
        let query = match self.backend() {
            Backend::Postgres => {
                "UPDATE sns_messages SET lease_until_ms = $1 WHERE message_id IN ( \
                   SELECT message_id FROM sns_messages \
                   WHERE lease_holder = $2 AND processed_ms IS NULL AND lease_until_ms >= $3 \
                   FOR UPDATE SKIP LOCKED)"
            }
            Backend::Sqlite => {
                "UPDATE sns_messages SET lease_until_ms = $1 \
                 WHERE lease_holder = $2 AND processed_ms IS NULL AND lease_until_ms >= $3"
            }
        };
        let done = sqlx::query(query)
            .bind(until_ms)
            .bind(holder)
            .bind(now_ms)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected())
    }

    /// A failed attempt: the lease is given back and the row is due again
    /// at `retry_at_ms`.
    pub async fn retry_inbox(
        &self,
        message_id: &str,
        holder: &str,
        retry_at_ms: i64,
        error: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE sns_messages SET lease_holder = NULL, lease_until_ms = NULL, \
             next_attempt_ms = $1, last_error = $2 \
             WHERE message_id = $3 AND lease_holder = $4 AND processed_ms IS NULL",
        )
        .bind(retry_at_ms)
        .bind(error)
        .bind(message_id)
        .bind(holder)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Marks a message done, in the SNS writer's next transaction.
    pub async fn finish_inbox(&self, finish: Finish) -> Result<(), StoreError> {
        self.queue_finish(finish).await
    }

    /// Whether a newer state change of the same alarm is stored: then this
    /// one is not the alarm's state any more, and opens nothing.
    pub async fn newer_alarm_message(
        &self,
        alarm_key: &str,
        changed_ms: i64,
    ) -> Result<bool, StoreError> {
        let r = sqlx::query(
            "SELECT message_id FROM sns_messages WHERE alarm_key = $1 AND changed_ms > $2 LIMIT 1",
        )
        .bind(alarm_key)
        .bind(changed_ms)
        .fetch_optional(self.pool())
        .await?;
        Ok(r.is_some())
    }

    /// The newest state change of this alarm that was applied, if any.
    pub async fn applied_alarm_ms(&self, alarm_key: &str) -> Result<Option<i64>, StoreError> {
        let r = sqlx::query("SELECT changed_ms FROM alarm_applied WHERE alarm_key = $1")
            .bind(alarm_key)
            .fetch_optional(self.pool())
            .await?;
        Ok(match r {
            Some(r) => Some(r.try_get("changed_ms")?),
            None => None,
        })
    }

    /// Since when the oldest message that is due and held by nobody has
    /// been waiting: `/readyz` fails when that is too long ago.
    pub async fn oldest_unclaimed_due_ms(&self, now_ms: i64) -> Result<Option<i64>, StoreError> {
        let r = sqlx::query(
            "SELECT MIN(next_attempt_ms) AS due FROM sns_messages \
             WHERE processed_ms IS NULL AND next_attempt_ms <= $1 \
               AND (lease_until_ms IS NULL OR lease_until_ms < $1)",
        )
        .bind(now_ms)
        .fetch_one(self.pool())
        .await?;
        Ok(r.try_get("due")?)
    }

    /// Messages stored but not processed, oldest first.
    pub async fn unprocessed_sns(&self, limit: i64) -> Result<Vec<PendingSns>, StoreError> {
        let rows = sqlx::query(
            "SELECT message_id, body FROM sns_messages WHERE processed_ms IS NULL \
             ORDER BY received_ms, message_id LIMIT $1",
        )
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(PendingSns {
                    message_id: r.try_get("message_id")?,
                    body: r.try_get("body")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }
}
