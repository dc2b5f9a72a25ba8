//! Scheduled-report bookkeeping: which slot of which report has run. The
//! claim is an INSERT that only one replica can win (the primary key), on
//! SQLite and PostgreSQL alike.

use sqlx::Row;

use super::{Store, StoreError};
use crate::domain::state::ReportRunState;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportRun {
    pub report: String,
    pub slot_ms: i64,
    pub claimed_ms: i64,
    pub finished_ms: Option<i64>,
    pub outcome: ReportRunState,
}

impl Store {
    /// Claims `report`'s slot under a lease until `lease_ms` (wall clock);
    /// true only for the one caller that wins it.
    pub async fn claim_report(
        &self,
        report: &str,
        slot_ms: i64,
        now_ms: i64,
        lease_ms: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO report_runs (report, slot_ms, claimed_ms, outcome, lease_ms) VALUES ($1, $2, $3, 'running', $4) \
             ON CONFLICT (report, slot_ms) DO NOTHING",
        )
        .bind(report)
        .bind(slot_ms)
        .bind(now_ms)
        .bind(lease_ms)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Claims a slot again, so that one replica tries it: one whose message
    /// could not be posted (chat was down) and was last tried before
    /// `tried_before_ms`, or one left `running` by a replica that stopped
    /// renewing its lease (it died before it could post or record; a slot
    /// claimed by a replica of the version before leases counts as held
    /// for ten minutes).
    pub async fn retake_report(
        &self,
        report: &str,
        slot_ms: i64,
        now_ms: i64,
        tried_before_ms: i64,
        lease_ms: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE report_runs SET outcome = 'running', claimed_ms = $1, finished_ms = NULL, lease_ms = $2 \
             WHERE report = $3 AND slot_ms = $4 \
             AND ((outcome = 'unposted' AND claimed_ms <= $5) \
                  OR (outcome = 'running' AND COALESCE(lease_ms, claimed_ms + 600000) < $6))",
        )
        .bind(now_ms)
        .bind(lease_ms)
        .bind(report)
        .bind(slot_ms)
        .bind(tried_before_ms)
        .bind(super::now_ms())
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Extends the lease on a slot being posted.
    pub async fn renew_report_lease(
        &self,
        report: &str,
        slot_ms: i64,
        lease_ms: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE report_runs SET lease_ms = $1 WHERE report = $2 AND slot_ms = $3 AND outcome = 'running'",
        )
        .bind(lease_ms)
        .bind(report)
        .bind(slot_ms)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    pub async fn finish_report(
        &self,
        report: &str,
        slot_ms: i64,
        now_ms: i64,
        outcome: ReportRunState,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE report_runs SET finished_ms = $1, outcome = $2 WHERE report = $3 AND slot_ms = $4",
        )
        .bind(now_ms)
        .bind(outcome.as_str())
        .bind(report)
        .bind(slot_ms)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The runs of `report`, newest slot first.
    pub async fn report_runs(
        &self,
        report: &str,
        limit: i64,
    ) -> Result<Vec<ReportRun>, StoreError> {
        let rows = sqlx::query(
            "SELECT report, slot_ms, claimed_ms, finished_ms, outcome FROM report_runs \
             WHERE report = $1 ORDER BY slot_ms DESC LIMIT $2",
        )
        .bind(report)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ReportRun {
                    report: r.try_get("report")?,
                    slot_ms: r.try_get("slot_ms")?,
                    claimed_ms: r.try_get("claimed_ms")?,
                    finished_ms: r.try_get("finished_ms")?,
                    outcome: r
                        .try_get::<String, _>("outcome")?
                        .parse()
                        .map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }
}
