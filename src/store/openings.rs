//! What follows an incident's opening in chat, as owed work: the root
//! message, then the alarm's chart, then the L1 diagnostics. The incident
//! row says which step is next; a replica claims the row with a lease,
//! does the steps, and records each as it goes, so a step done is not done
//! again and a step owed is done by someone even if its replica dies.

use sqlx::Row;

use super::incidents::{COLUMNS, incident};
use super::{IncidentRow, Store, StoreError};

/// The steps of an opening, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum OpeningStep {
    Root = 1,
    Chart = 2,
    Diagnostics = 3,
}

impl OpeningStep {
    pub fn next(self) -> Option<Self> {
        match self {
            Self::Root => Some(Self::Chart),
            Self::Chart => Some(Self::Diagnostics),
            Self::Diagnostics => None,
        }
    }

    fn from_i64(v: i64) -> Option<Self> {
        match v {
            1 => Some(Self::Root),
            2 => Some(Self::Chart),
            3 => Some(Self::Diagnostics),
            _ => None,
        }
    }
}

impl Store {
    /// Incidents whose opening is owed and not held by anyone, oldest first.
    pub async fn owed_openings(&self, now_ms: i64, limit: i64) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(
            "SELECT id FROM incidents WHERE opening_step IS NOT NULL \
             AND (opening_lease_ms IS NULL OR opening_lease_ms < $1) \
             ORDER BY opened_ms LIMIT $2",
        )
        .bind(now_ms)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .iter()
            .map(|r| r.try_get("id"))
            .collect::<Result<_, _>>()?)
    }

    /// Claims an owed opening until `until_ms`: the incident and its next
    /// step, or `None` when it is done or held by another replica.
    pub async fn claim_opening(
        &self,
        id: &str,
        now_ms: i64,
        until_ms: i64,
    ) -> Result<Option<(IncidentRow, OpeningStep)>, StoreError> {
        let claimed = sqlx::query(
            "UPDATE incidents SET opening_lease_ms = $1 WHERE id = $2 AND opening_step IS NOT NULL \
             AND (opening_lease_ms IS NULL OR opening_lease_ms < $3)",
        )
        .bind(until_ms)
        .bind(id)
        .bind(now_ms)
        .execute(self.pool())
        .await?;
        if claimed.rows_affected() != 1 {
            return Ok(None);
        }
        let r = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS}, opening_step FROM incidents WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        let Some(r) = r else { return Ok(None) };
        let step = r
            .try_get::<Option<i64>, _>("opening_step")?
            .and_then(OpeningStep::from_i64);
        Ok(step.map(|s| incident(&r).map(|i| (i, s))).transpose()?)
    }

    /// Records a step as done: the next one is owed (still held by this
    /// claim), or the opening is finished.
    pub async fn advance_opening(
        &self,
        id: &str,
        next: Option<OpeningStep>,
    ) -> Result<(), StoreError> {
        let q = match next {
            Some(_) => "UPDATE incidents SET opening_step = $1 WHERE id = $2",
            None => "UPDATE incidents SET opening_step = $1, opening_lease_ms = NULL WHERE id = $2",
        };
        sqlx::query(q)
            .bind(next.map(|s| s as i64))
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Extends the claim of an opening still being worked on.
    pub async fn renew_opening(&self, id: &str, until_ms: i64) -> Result<(), StoreError> {
        self.release_opening(id, until_ms).await
    }

    /// Lets a claimed opening go after a failed step: anyone may try it
    /// again from `retry_at_ms`.
    pub async fn release_opening(&self, id: &str, retry_at_ms: i64) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE incidents SET opening_lease_ms = $1 WHERE id = $2 AND opening_step IS NOT NULL",
        )
        .bind(retry_at_ms)
        .bind(id)
        .execute(self.pool())
        .await?;
        Ok(())
    }
}
