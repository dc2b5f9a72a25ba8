//! Leases for singletons (the Discord gateway): one holder at a time, taken
//! over by another replica once the holder stops renewing; and the claim
//! of due rows of owed work under a lease (repeat replies, watches).

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, StoreError};

impl Store {
    /// Claims due rows one by one: `due` (binds: now, limit) lists their
    /// ids, `claim` (binds: until, id, now) takes one if nobody holds it
    /// and returns it. A row another replica claimed in between is skipped.
    pub(super) async fn claim_due_rows(
        &self,
        due: &'static str,
        claim: &'static str,
        now_ms: i64,
        until_ms: i64,
        limit: i64,
    ) -> Result<Vec<AnyRow>, StoreError> {
        let ids = sqlx::query(due)
            .bind(now_ms)
            .bind(limit)
            .fetch_all(self.pool())
            .await?;
        let mut claimed = Vec::new();
        for r in ids {
            let id: String = r.try_get("id")?;
            let row = sqlx::query(claim)
                .bind(until_ms)
                .bind(&id)
                .bind(now_ms)
                .fetch_optional(self.pool())
                .await?;
            claimed.extend(row);
        }
        Ok(claimed)
    }

    /// Takes or renews the lease `name` for `holder` until `until_ms`;
    /// `true` when `holder` has it now.
    pub async fn hold_lease(
        &self,
        name: &str,
        holder: &str,
        now_ms: i64,
        until_ms: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO leases (name, holder, until_ms) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, until_ms = excluded.until_ms \
             WHERE leases.holder = excluded.holder OR leases.until_ms < $4",
        )
        .bind(name)
        .bind(holder)
        .bind(until_ms)
        .bind(now_ms)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Gives the lease up at once (a clean shutdown), so that another
    /// replica need not wait for it to run out.
    pub async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM leases WHERE name = $1 AND holder = $2")
            .bind(name)
            .bind(holder)
            .execute(self.pool())
            .await?;
        Ok(())
    }
}
