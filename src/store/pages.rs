//! Pages outside chat as owed work (migration 16): stored with the
//! escalation that causes them, claimed under a lease by any replica,
//! retried with backoff, finished with their outcome and then said in the
//! incident's thread. PagerDuty's acknowledge and resolve are derived from
//! the incident's state once its trigger was sent, so whatever acknowledges
//! or resolves an incident (a button, a command, the auto-resolve sweep),
//! PagerDuty follows.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, StoreError};

/// `target` of a PagerDuty page.
pub const PAGERDUTY: &str = "pagerduty";
/// `action` of an SNS page.
pub const SNS_PAGE: &str = "page";

/// A page owed when an incident reaches a level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPage {
    pub level: i64,
    /// `sns:<topic ARN>` or `pagerduty`.
    pub target: String,
    /// `page` (SNS) or `trigger` (PagerDuty).
    pub action: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRow {
    pub id: String,
    pub incident_id: String,
    pub level: i64,
    pub target: String,
    pub action: String,
    pub created_ms: i64,
    pub attempts: i64,
    /// `sent`, `failed` or `skipped`; none while owed.
    pub outcome: Option<String>,
    /// The peer's message id, or the last error.
    pub detail: Option<String>,
}

const COLUMNS: &str =
    "id, incident_id, level, target, action, created_ms, attempts, outcome, detail";

fn page(r: &AnyRow) -> Result<PageRow, sqlx::Error> {
    Ok(PageRow {
        id: r.try_get("id")?,
        incident_id: r.try_get("incident_id")?,
        level: r.try_get("level")?,
        target: r.try_get("target")?,
        action: r.try_get("action")?,
        created_ms: r.try_get("created_ms")?,
        attempts: r.try_get("attempts")?,
        outcome: r.try_get("outcome")?,
        detail: r.try_get("detail")?,
    })
}

/// Stores the pages of a level inside the caller's transaction; a page
/// already owed for the same (incident, level, target, action) stays one.
pub(super) async fn insert_pages(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    incident_id: &str,
    pages: &[NewPage],
    created_ms: i64,
    due_ms: i64,
) -> Result<(), StoreError> {
    for p in pages {
        sqlx::query(
            "INSERT INTO pages (id, incident_id, level, target, action, created_ms, next_attempt_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
        )
        .bind(uuid::Uuid::new_v4().to_string())
        .bind(incident_id)
        .bind(p.level)
        .bind(&p.target)
        .bind(&p.action)
        .bind(created_ms)
        .bind(due_ms)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

impl Store {
    /// Claims up to `limit` owed pages (to send, or to say in the thread)
    /// until `until_ms`.
    pub async fn claim_due_pages(
        &self,
        now_ms: i64,
        until_ms: i64,
        limit: i64,
    ) -> Result<Vec<PageRow>, StoreError> {
        let rows = self
            .claim_due_rows(
                "SELECT id FROM pages WHERE posted = 0 AND next_attempt_ms <= $1 \
                 AND (lease_until_ms IS NULL OR lease_until_ms < $1) ORDER BY next_attempt_ms LIMIT $2",
                "UPDATE pages SET lease_until_ms = $1 WHERE id = $2 AND posted = 0 \
                 AND (lease_until_ms IS NULL OR lease_until_ms < $3) \
                 RETURNING id, incident_id, level, target, action, created_ms, attempts, outcome, detail",
                now_ms,
                until_ms,
                limit,
            )
            .await?;
        Ok(rows.iter().map(page).collect::<Result<_, _>>()?)
    }

    /// Extends the claim of a page being sent or said.
    pub async fn renew_page(&self, id: &str, until_ms: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE pages SET lease_until_ms = $1 WHERE id = $2 AND posted = 0")
            .bind(until_ms)
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// A failed attempt: owed again from `retry_at_ms`, by anyone.
    pub async fn page_retry(
        &self,
        id: &str,
        attempts: i64,
        retry_at_ms: i64,
        error: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE pages SET attempts = $1, next_attempt_ms = $2, detail = $3, lease_until_ms = NULL \
             WHERE id = $4 AND outcome IS NULL",
        )
        .bind(attempts)
        .bind(retry_at_ms)
        .bind(error)
        .bind(id)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The page's outcome, recorded once (still claimed: the thread line
    /// follows). `false` when it was already recorded.
    pub async fn page_finished(
        &self,
        id: &str,
        attempts: i64,
        outcome: &str,
        detail: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE pages SET attempts = $1, outcome = $2, detail = $3, finished_ms = $4 \
             WHERE id = $5 AND outcome IS NULL",
        )
        .bind(attempts)
        .bind(outcome)
        .bind(detail)
        .bind(now_ms)
        .bind(id)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The page is said in the thread: nothing is owed any more.
    pub async fn page_posted(&self, id: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE pages SET posted = 1, lease_until_ms = NULL WHERE id = $1")
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// The thread line failed: owed again from `retry_at_ms`.
    pub async fn page_post_failed(&self, id: &str, retry_at_ms: i64) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE pages SET lease_until_ms = NULL, next_attempt_ms = $1 WHERE id = $2 AND posted = 0",
        )
        .bind(retry_at_ms)
        .bind(id)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Every page of an incident, oldest first.
    pub async fn pages_of(&self, incident_id: &str) -> Result<Vec<PageRow>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM pages WHERE incident_id = $1 ORDER BY created_ms, level, target, action"
        )))
        .bind(incident_id)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.iter().map(page).collect::<Result<_, _>>()?)
    }
}

impl Store {
    /// Owes PagerDuty an `acknowledge` for each incident acknowledged after
    /// its trigger was sent, and a `resolve` for each one resolved since:
    /// one row each per incident, whoever notices first.
    pub async fn owe_pagerduty_followups(
        &self,
        created_ms: i64,
        due_ms: i64,
    ) -> Result<(), StoreError> {
        let sent_trigger = "FROM pages t JOIN incidents i ON i.id = t.incident_id \
             WHERE t.target = 'pagerduty' AND t.action = 'trigger' \
             AND t.attempts > 0 AND t.outcome IS NOT NULL AND t.outcome <> 'skipped'";
        for (action, when) in [
            (
                "acknowledge",
                "i.state = 'acknowledged' AND i.acked_ms >= t.created_ms",
            ),
            ("resolve", "i.state = 'resolved'"),
        ] {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO pages (id, incident_id, level, target, action, created_ms, next_attempt_ms) \
                 SELECT DISTINCT 'pd-{action}-' || i.id, i.id, 0, 'pagerduty', '{action}', $1, $2 \
                 {sent_trigger} AND {when} AND NOT EXISTS (SELECT 1 FROM pages f \
                 WHERE f.incident_id = i.id AND f.level = 0 AND f.target = 'pagerduty' AND f.action = '{action}') \
                 ON CONFLICT DO NOTHING"
            )))
            .bind(created_ms)
            .bind(due_ms)
            .execute(self.pool())
            .await?;
        }
        Ok(())
    }

    /// PagerDuty acknowledged the incident itself: nothing to tell it back.
    pub async fn pagerduty_acknowledged(
        &self,
        incident_id: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO pages (id, incident_id, level, target, action, created_ms, next_attempt_ms, \
             outcome, detail, finished_ms, posted) \
             VALUES ($1, $2, 0, 'pagerduty', 'acknowledge', $3, $3, 'skipped', 'acknowledged in PagerDuty', $3, 1) \
             ON CONFLICT DO NOTHING",
        )
        .bind(format!("pd-acknowledge-{incident_id}"))
        .bind(incident_id)
        .bind(now_ms)
        .execute(self.pool())
        .await?;
        Ok(())
    }
}
