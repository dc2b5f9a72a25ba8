//! Policy snapshots: what scalable targets and scaling policies looked
//! like, by day, so that `/scale rollback <date>` can restore them.

use sqlx::Row;

use super::{Store, StoreError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotRow {
    pub id: String,
    pub taken_ms: i64,
    /// `YYYY-MM-DD` in the display time zone.
    pub day: String,
    pub reason: String,
    /// JSON: the targets and policies.
    pub body: String,
}

/// The `reason` of the snapshot taken with the daily report.
pub const DAILY: &str = "daily";

impl Store {
    /// Deletes daily snapshots taken before `before_ms`; the ones taken
    /// before a change stay (an undo may still need them). Returns how many.
    pub async fn prune_daily_snapshots(&self, before_ms: i64) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM policy_snapshots WHERE reason = $1 AND taken_ms < $2")
            .bind(DAILY)
            .bind(before_ms)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected())
    }

    pub async fn insert_snapshot(&self, s: &SnapshotRow) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO policy_snapshots (id, taken_ms, day, reason, body) VALUES ($1, $2, $3, $4, $5)")
            .bind(&s.id)
            .bind(s.taken_ms)
            .bind(&s.day)
            .bind(&s.reason)
            .bind(&s.body)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// The snapshot of `day`: the daily one (the runbook's
    /// `backup/lambda-policy-${DATE}.json`) when there is one, else the
    /// last one taken that day (before a change the bot made).
    pub async fn snapshot_of_day(&self, day: &str) -> Result<Option<SnapshotRow>, StoreError> {
        let r = sqlx::query(
            "SELECT id, taken_ms, day, reason, body FROM policy_snapshots WHERE day = $1 \
             ORDER BY CASE WHEN reason = $2 THEN 0 ELSE 1 END, taken_ms DESC LIMIT 1",
        )
        .bind(day)
        .bind(DAILY)
        .fetch_optional(self.pool())
        .await?;
        r.map(|r| {
            Ok(SnapshotRow {
                id: r.try_get("id")?,
                taken_ms: r.try_get("taken_ms")?,
                day: r.try_get("day")?,
                reason: r.try_get("reason")?,
                body: r.try_get("body")?,
            })
        })
        .transpose()
        .map_err(|e: sqlx::Error| StoreError::from(e))
    }

    /// Days that have snapshots, newest first.
    pub async fn snapshot_days(&self, limit: i64) -> Result<Vec<String>, StoreError> {
        let rows =
            sqlx::query("SELECT DISTINCT day FROM policy_snapshots ORDER BY day DESC LIMIT $1")
                .bind(limit)
                .fetch_all(self.pool())
                .await?;
        rows.iter()
            .map(|r| r.try_get("day"))
            .collect::<Result<_, _>>()
            .map_err(StoreError::from)
    }
}
