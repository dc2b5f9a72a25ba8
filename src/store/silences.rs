//! Silences, the alarms they held back, the hourly digest of those, and
//! an incident's severity: all in the store, so that every replica silences
//! the same alarms and one posts each digest. Nothing expires a silence but
//! the clock: a row whose `until_ms` has passed is simply no longer active.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, StoreError};
use crate::domain::severity::Severity;

/// A `/scale silence`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SilenceRow {
    pub id: String,
    /// A name pattern (`domain::glob`), checked before it was stored.
    pub pattern: String,
    pub reason: String,
    pub created_by: String,
    pub created_ms: i64,
    pub until_ms: i64,
}

/// One alarm notification a silence or a maintenance window held back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SilencedAlarm {
    /// The SNS message's id: a retried message is recorded once.
    pub message_id: String,
    pub alarm_name: String,
    pub state: String,
    pub reason: String,
    /// `SIL-…` or `window <name>`.
    pub silenced_by: String,
    pub at_ms: i64,
}

fn silence(r: &AnyRow) -> Result<SilenceRow, sqlx::Error> {
    Ok(SilenceRow {
        id: r.try_get("id")?,
        pattern: r.try_get("pattern")?,
        reason: r.try_get("reason")?,
        created_by: r.try_get("created_by")?,
        created_ms: r.try_get("created_ms")?,
        until_ms: r.try_get("until_ms")?,
    })
}

fn silenced(r: &AnyRow) -> Result<SilencedAlarm, sqlx::Error> {
    Ok(SilencedAlarm {
        message_id: r.try_get("message_id")?,
        alarm_name: r.try_get("alarm_name")?,
        state: r.try_get("state")?,
        reason: r.try_get("reason")?,
        silenced_by: r.try_get("silenced_by")?,
        at_ms: r.try_get("at_ms")?,
    })
}

/// How long a claimed digest may stay unposted (wall clock) before its
/// replica is taken for dead; longer than a post waiting out Slack's 429s.
const DIGEST_LEASE_MS: i64 = 300_000;

/// Digests claimed by a replica that died before posting them: their
/// alarms go back to wait for a later digest (at least once).
async fn release_abandoned_digests(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
) -> Result<(), sqlx::Error> {
    let now = super::now_ms();
    sqlx::query(
        "UPDATE silenced_alarms SET digest_slot_ms = NULL WHERE digest_slot_ms IN \
         (SELECT slot_ms FROM silence_digests WHERE posted_ms IS NULL AND lease_ms < $1)",
    )
    .bind(now)
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        "UPDATE silence_digests SET lease_ms = NULL WHERE posted_ms IS NULL AND lease_ms < $1",
    )
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

impl Store {
    pub async fn insert_silence(&self, s: &SilenceRow) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO silences (id, pattern, reason, created_by, created_ms, until_ms) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&s.id)
        .bind(&s.pattern)
        .bind(&s.reason)
        .bind(&s.created_by)
        .bind(s.created_ms)
        .bind(s.until_ms)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Silences in force at `now_ms`, the soonest to end first.
    pub async fn active_silences(&self, now_ms: i64) -> Result<Vec<SilenceRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, pattern, reason, created_by, created_ms, until_ms FROM silences \
             WHERE until_ms > $1 AND ended_ms IS NULL ORDER BY until_ms, id LIMIT 200",
        )
        .bind(now_ms)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(silence)
            .collect::<Result<_, _>>()
            .map_err(StoreError::from)
    }

    /// Ends a silence still in force; `false` if there is none by that id.
    pub async fn end_silence(&self, id: &str, by: &str, now_ms: i64) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE silences SET ended_by = $1, ended_ms = $2 WHERE id = $3 AND ended_ms IS NULL AND until_ms > $2",
        )
        .bind(by)
        .bind(now_ms)
        .bind(id)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn record_silenced(&self, a: &SilencedAlarm) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO silenced_alarms (message_id, alarm_name, state, reason, silenced_by, at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (message_id) DO NOTHING",
        )
        .bind(&a.message_id)
        .bind(&a.alarm_name)
        .bind(&a.state)
        .bind(&a.reason)
        .bind(&a.silenced_by)
        .bind(a.at_ms)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Claims the digest of the hour ending at `slot_ms` for this caller:
    /// the held-back alarms from before it that no digest took yet, oldest
    /// first; `None` when there are none or another replica has the slot.
    pub async fn claim_silence_digest(
        &self,
        slot_ms: i64,
        now_ms: i64,
    ) -> Result<Option<Vec<SilencedAlarm>>, StoreError> {
        let mut tx = self.pool().begin().await?;
        release_abandoned_digests(&mut tx).await?;
        tx.commit().await?;
        let pending: i64 = sqlx::query(
            "SELECT COUNT(*) AS n FROM silenced_alarms WHERE digest_slot_ms IS NULL AND at_ms < $1",
        )
        .bind(slot_ms)
        .fetch_one(self.pool())
        .await?
        .try_get("n")?;
        if pending == 0 {
            return Ok(None);
        }
        let mut tx = self.pool().begin().await?;
        let won = sqlx::query(
            "INSERT INTO silence_digests (slot_ms, claimed_ms, lease_ms) VALUES ($1, $2, $3) \
             ON CONFLICT (slot_ms) DO NOTHING",
        )
        .bind(slot_ms)
        .bind(now_ms)
        .bind(super::now_ms() + DIGEST_LEASE_MS)
        .execute(&mut *tx)
        .await?;
        if won.rows_affected() != 1 {
            tx.rollback().await?;
            return Ok(None);
        }
        sqlx::query(
            "UPDATE silenced_alarms SET digest_slot_ms = $1 WHERE digest_slot_ms IS NULL AND at_ms < $1",
        )
        .bind(slot_ms)
        .execute(&mut *tx)
        .await?;
        let rows = sqlx::query(
            "SELECT message_id, alarm_name, state, reason, silenced_by, at_ms FROM silenced_alarms \
             WHERE digest_slot_ms = $1 ORDER BY at_ms, message_id",
        )
        .bind(slot_ms)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let taken = rows.iter().map(silenced).collect::<Result<Vec<_>, _>>()?;
        Ok(Some(taken))
    }

    /// The digest of `slot_ms` is posted.
    pub async fn silence_digest_posted(&self, slot_ms: i64, now_ms: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE silence_digests SET posted_ms = $1 WHERE slot_ms = $2")
            .bind(now_ms)
            .bind(slot_ms)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// The digest of `slot_ms` could not be posted: its alarms go into the
    /// next hour's.
    pub async fn silence_digest_failed(&self, slot_ms: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE silenced_alarms SET digest_slot_ms = NULL WHERE digest_slot_ms = $1")
            .bind(slot_ms)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Sets an unresolved incident's severity; `false` if it is resolved
    /// or gone.
    pub async fn set_incident_severity(
        &self,
        id: &str,
        severity: Severity,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE incidents SET severity = $1, updated_ms = $2 WHERE id = $3 AND state <> 'resolved'",
        )
        .bind(severity.as_str())
        .bind(now_ms)
        .bind(id)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }
}
