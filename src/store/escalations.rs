//! Escalation in the store: deadlines, the conditional claim that moves an
//! incident up one level, and the announcements owed for each level (posted
//! at least once, each under a short lease).

use sqlx::Row;

use super::incidents::{COLUMNS, incident};
use super::pages::NewPage;
use super::{IncidentRow, Store, StoreError};

/// One move up a level: from where, by whom (none: the clock), the new
/// level's deadlines and the pages it owes.
#[derive(Debug, Clone)]
pub struct LevelUp<'a> {
    pub from_level: i64,
    pub by: Option<&'a str>,
    pub next_ms: Option<i64>,
    pub remind_ms: Option<i64>,
    /// The engine's clock.
    pub now_ms: i64,
    pub pages: Vec<NewPage>,
}

impl Store {
    pub async fn set_next_escalation(
        &self,
        id: &str,
        at_ms: Option<i64>,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE incidents SET next_escalation_ms = $1 WHERE id = $2")
            .bind(at_ms)
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Unresolved, unrecovered incidents whose escalation time has come.
    pub async fn due_escalations(&self, now_ms: i64) -> Result<Vec<IncidentRow>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM incidents WHERE state IN ('open', 'acknowledged') \
             AND next_escalation_ms IS NOT NULL AND next_escalation_ms <= $1 ORDER BY next_escalation_ms LIMIT 100"
        )))
        .bind(now_ms)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(incident)
            .collect::<Result<_, _>>()
            .map_err(StoreError::from)
    }

    /// Moves an incident from `up.from_level` up one level; `true` for
    /// exactly one caller (replicas and a restarted bot never escalate
    /// twice). The announcement is owed until [`Store::announced`] records
    /// it; the new level's pages are owed from the same transaction.
    pub async fn claim_escalation(&self, id: &str, up: &LevelUp<'_>) -> Result<bool, StoreError> {
        let mut tx = self.pool().begin().await?;
        // The new level's people have not acknowledged anything yet, but an
        // acknowledged incident is being worked on: no reminders for it.
        let done = sqlx::query(
            "UPDATE incidents SET level = $1, next_escalation_ms = $2, updated_ms = $3, \
             next_reminder_ms = CASE WHEN state = 'open' THEN $4 ELSE NULL END, escalated_by = $7 \
             WHERE id = $5 AND level = $6 AND state IN ('open', 'acknowledged')",
        )
        .bind(up.from_level + 1)
        .bind(up.next_ms)
        .bind(up.now_ms)
        .bind(up.remind_ms)
        .bind(id)
        .bind(up.from_level)
        .bind(up.by)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        // Due at once on the wall clock, which the page sweep's leases use.
        super::pages::insert_pages(&mut tx, id, &up.pages, up.now_ms, super::now_ms()).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Incidents with an escalation not yet announced and nobody posting
    /// it: (incident, the level to announce, who escalated it).
    pub async fn owed_announcements(
        &self,
        now_ms: i64,
    ) -> Result<Vec<(IncidentRow, i64, Option<String>)>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS}, announced_level, escalated_by FROM incidents \
             WHERE announced_level < level AND state <> 'resolved' \
             AND (announce_lease_ms IS NULL OR announce_lease_ms < $1) ORDER BY updated_ms LIMIT 100"
        )))
        .bind(now_ms)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                let announced: i64 = r.try_get("announced_level")?;
                Ok((incident(r)?, announced + 1, r.try_get("escalated_by")?))
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    /// Takes the announcement of `level` for this caller until `until_ms`;
    /// `true` for one caller at a time.
    pub async fn claim_announcement(
        &self,
        id: &str,
        level: i64,
        now_ms: i64,
        until_ms: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE incidents SET announce_lease_ms = $1 WHERE id = $2 AND announced_level = $3 \
             AND (announce_lease_ms IS NULL OR announce_lease_ms < $4)",
        )
        .bind(until_ms)
        .bind(id)
        .bind(level - 1)
        .bind(now_ms)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The announcement of `level` was posted; `false` when the lease ran
    /// out and another replica had recorded it first.
    pub async fn announced(&self, id: &str, level: i64) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE incidents SET announced_level = $1, announce_lease_ms = NULL \
             WHERE id = $2 AND announced_level = $3",
        )
        .bind(level)
        .bind(id)
        .bind(level - 1)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// A failed announcement: owed again from `retry_at_ms`. Also extends
    /// the claim of one still being posted.
    pub async fn release_announcement(&self, id: &str, retry_at_ms: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE incidents SET announce_lease_ms = $1 WHERE id = $2")
            .bind(retry_at_ms)
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }
}
