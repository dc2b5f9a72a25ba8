//! Watches after a change that should move a metric, as owed work: each
//! check is claimed with a lease by one replica, its count recorded, and
//! the watch deleted once its verdict is posted.

use sqlx::Row;

use super::{Store, StoreError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchRow {
    pub id: String,
    pub incident_id: String,
    pub function: String,
    pub reserved: Option<i64>,
    /// The `AWS/Lambda` metric watched (`Throttles`, …).
    pub metric: String,
    /// Lambda's `Resource` dimension (`<function>:<alias>`) when the metric
    /// is one of an alias or version, else the function's own.
    pub resource: Option<String>,
    /// When the change was made (the engine's clock, for CloudWatch).
    pub changed_ms: i64,
    pub checks_done: i64,
}

impl Store {
    /// Starts a watch; its first check is due at `first_check_ms`.
    pub async fn add_watch(&self, w: &WatchRow, first_check_ms: i64) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO watches (id, incident_id, function, reserved, metric, resource, changed_ms, \
             checks_done, next_check_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&w.id)
        .bind(&w.incident_id)
        .bind(&w.function)
        .bind(w.reserved)
        .bind(&w.metric)
        .bind(&w.resource)
        .bind(w.changed_ms)
        .bind(w.checks_done)
        .bind(first_check_ms)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Claims up to `limit` watches whose next check is due, until `until_ms`.
    pub async fn claim_due_watches(
        &self,
        now_ms: i64,
        until_ms: i64,
        limit: i64,
    ) -> Result<Vec<WatchRow>, StoreError> {
        let rows = self
            .claim_due_rows(
                "SELECT id FROM watches WHERE next_check_ms <= $1 \
                 AND (lease_until_ms IS NULL OR lease_until_ms < $1) ORDER BY next_check_ms LIMIT $2",
                "UPDATE watches SET lease_until_ms = $1 WHERE id = $2 \
                 AND (lease_until_ms IS NULL OR lease_until_ms < $3) \
                 RETURNING id, incident_id, function, reserved, metric, resource, changed_ms, checks_done",
                now_ms,
                until_ms,
                limit,
            )
            .await?;
        let mut claimed = Vec::with_capacity(rows.len());
        for r in rows {
            claimed.push(WatchRow {
                id: r.try_get("id")?,
                incident_id: r.try_get("incident_id")?,
                function: r.try_get("function")?,
                reserved: r.try_get("reserved")?,
                metric: r.try_get("metric")?,
                resource: r.try_get("resource")?,
                changed_ms: r.try_get("changed_ms")?,
                checks_done: r.try_get("checks_done")?,
            });
        }
        Ok(claimed)
    }

    /// A check done without a verdict: the next one is due at `next_ms`
    /// (also used to try a failed verdict post again).
    pub async fn watch_checked(
        &self,
        id: &str,
        checks_done: i64,
        next_ms: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE watches SET checks_done = $1, next_check_ms = $2, lease_until_ms = NULL WHERE id = $3",
        )
        .bind(checks_done)
        .bind(next_ms)
        .bind(id)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The verdict is posted: the watch is over.
    pub async fn watch_done(&self, id: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM watches WHERE id = $1")
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }
}
