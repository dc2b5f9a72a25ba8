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
    /// Claims `report`'s slot; true only for the one caller that wins it.
    pub async fn claim_report(
        &self,
        report: &str,
        slot_ms: i64,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO report_runs (report, slot_ms, claimed_ms, outcome) VALUES ($1, $2, $3, 'running') \
             ON CONFLICT (report, slot_ms) DO NOTHING",
        )
        .bind(report)
        .bind(slot_ms)
        .bind(now_ms)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Claims a slot whose message could not be posted (chat was down) and
    /// was last tried before `tried_before_ms`, so that one replica tries
    /// it again; true only for the winner.
    pub async fn retake_unposted_report(
        &self,
        report: &str,
        slot_ms: i64,
        now_ms: i64,
        tried_before_ms: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE report_runs SET outcome = 'running', claimed_ms = $1, finished_ms = NULL \
             WHERE report = $2 AND slot_ms = $3 AND outcome = 'unposted' AND claimed_ms <= $4",
        )
        .bind(now_ms)
        .bind(report)
        .bind(slot_ms)
        .bind(tried_before_ms)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
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
