//! Plans awaiting confirmation and their approvals.
//!
//! A plan is written before its message is posted, and claimed with one
//! conditional `UPDATE … WHERE state = 'pending'` before anything is called
//! on AWS: whoever's update changes the row runs it, every other click,
//! retry or replica finds it taken.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, StoreError};
use crate::domain::people::Person;
use crate::domain::state::PlanState;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanRow {
    pub id: String,
    pub command: String,
    pub requester: String,
    pub platform: String,
    pub channel: String,
    pub incident_id: Option<String>,
    /// The changes as JSON (the engine's `Change` list).
    pub changes: String,
    pub role: String,
    pub approvals_needed: i64,
    pub destructive: bool,
    pub dry_run: bool,
    pub state: PlanState,
    pub created_ms: i64,
    pub expires_ms: i64,
    pub message_channel: Option<String>,
    pub message_id: Option<String>,
    pub outcome: Option<String>,
    pub undo_of: Option<String>,
    pub finished_ms: Option<i64>,
}

const COLUMNS: &str = "id, command, requester, platform, channel, incident_id, changes, role, approvals_needed, \
     destructive, dry_run, state, created_ms, expires_ms, message_channel, message_id, outcome, undo_of, finished_ms";

fn row(r: &AnyRow) -> Result<PlanRow, sqlx::Error> {
    Ok(PlanRow {
        id: r.try_get("id")?,
        command: r.try_get("command")?,
        requester: r.try_get("requester")?,
        platform: r.try_get("platform")?,
        channel: r.try_get("channel")?,
        incident_id: r.try_get("incident_id")?,
        changes: r.try_get("changes")?,
        role: r.try_get("role")?,
        approvals_needed: r.try_get("approvals_needed")?,
        destructive: r.try_get::<i64, _>("destructive")? != 0,
        dry_run: r.try_get::<i64, _>("dry_run")? != 0,
        state: super::decode_state(r)?,
        created_ms: r.try_get("created_ms")?,
        expires_ms: r.try_get("expires_ms")?,
        message_channel: r.try_get("message_channel")?,
        message_id: r.try_get("message_id")?,
        outcome: r.try_get("outcome")?,
        undo_of: r.try_get("undo_of")?,
        finished_ms: r.try_get("finished_ms")?,
    })
}

impl Store {
    pub async fn insert_plan(&self, p: &PlanRow) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO plans (id, command, requester, platform, channel, incident_id, changes, role, approvals_needed, \
             destructive, dry_run, state, created_ms, expires_ms, message_channel, message_id, outcome, undo_of, finished_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)",
        )
        .bind(&p.id)
        .bind(&p.command)
        .bind(&p.requester)
        .bind(&p.platform)
        .bind(&p.channel)
        .bind(&p.incident_id)
        .bind(&p.changes)
        .bind(&p.role)
        .bind(p.approvals_needed)
        .bind(i64::from(p.destructive))
        .bind(i64::from(p.dry_run))
        .bind(p.state.as_str())
        .bind(p.created_ms)
        .bind(p.expires_ms)
        .bind(&p.message_channel)
        .bind(&p.message_id)
        .bind(&p.outcome)
        .bind(&p.undo_of)
        .bind(p.finished_ms)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    pub async fn plan(&self, id: &str) -> Result<Option<PlanRow>, StoreError> {
        let r = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM plans WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        Ok(r.as_ref().map(row).transpose()?)
    }

    pub async fn set_plan_message(
        &self,
        id: &str,
        channel: &str,
        ts: &str,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE plans SET message_channel = $1, message_id = $2 WHERE id = $3")
            .bind(channel)
            .bind(ts)
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Records `approver`'s approval as `person`'s; `false` when this
    /// person had already approved, from this identity or another (the
    /// conflict is on either unique key).
    pub async fn add_approval(
        &self,
        plan_id: &str,
        approver: &str,
        person: &Person,
        at_ms: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO approvals (plan_id, approver, person, at_ms) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        )
        .bind(plan_id)
        .bind(approver)
        .bind(person.as_str())
        .bind(at_ms)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Approvers in the order they approved.
    pub async fn approvals(&self, plan_id: &str) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(
            "SELECT approver FROM approvals WHERE plan_id = $1 ORDER BY at_ms, approver",
        )
        .bind(plan_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| r.try_get("approver"))
            .collect::<Result<_, _>>()
            .map_err(StoreError::from)
    }

    /// Moves a plan from `pending` to `state` if it is still pending (and,
    /// for `executing`, not expired). `true` for exactly one caller.
    pub async fn transition_plan(
        &self,
        id: &str,
        state: PlanState,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE plans SET state = $1 WHERE id = $2 AND state = 'pending' AND ($1 <> 'executing' OR expires_ms > $3)",
        )
        .bind(state.as_str())
        .bind(id)
        .bind(now_ms)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Claims a pending, unexpired plan for execution by `holder` until
    /// `until_ms` (wall clock); `true` for exactly one caller.
    pub async fn start_plan(
        &self,
        id: &str,
        now_ms: i64,
        holder: &str,
        until_ms: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE plans SET state = 'executing', exec_holder = $1, exec_lease_ms = $2 \
             WHERE id = $3 AND state = 'pending' AND expires_ms > $4",
        )
        .bind(holder)
        .bind(until_ms)
        .bind(id)
        .bind(now_ms)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The replica executing the plan, or saying its result, is alive.
    pub async fn renew_plan_lease(
        &self,
        id: &str,
        holder: &str,
        until_ms: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE plans SET exec_lease_ms = $1 WHERE id = $2 AND exec_holder = $3 \
             AND (state = 'executing' OR result_unsaid = 1)",
        )
        .bind(until_ms)
        .bind(id)
        .bind(holder)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The outcome so far, after each change.
    pub async fn record_plan_progress(&self, id: &str, outcome: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE plans SET outcome = $1 WHERE id = $2 AND state = 'executing'")
            .bind(outcome)
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Executing plans whose replica stopped renewing, each taken over by
    /// `holder` until `until_ms`.
    pub async fn take_over_orphaned_plans(
        &self,
        holder: &str,
        now_ms: i64,
        until_ms: i64,
    ) -> Result<Vec<PlanRow>, StoreError> {
        self.take_plans("state = 'executing'", holder, now_ms, until_ms)
            .await
    }

    /// A plan matching `due` (a fixed condition) whose lease ran out, taken
    /// by `holder` until `until_ms` with one conditional update. One at a
    /// time: the work on it renews its lease alone, so a second one taken
    /// now could lapse while the first is still being worked on.
    async fn take_plans(
        &self,
        due: &'static str,
        holder: &str,
        now_ms: i64,
        until_ms: i64,
    ) -> Result<Vec<PlanRow>, StoreError> {
        let lapsed = "(exec_lease_ms IS NULL OR exec_lease_ms < $1)";
        let found = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM plans WHERE {due} AND {lapsed} LIMIT 1"
        )))
        .bind(now_ms)
        .fetch_all(self.pool())
        .await?;
        let mut taken = Vec::new();
        for r in &found {
            let p = row(r)?;
            let claimed = sqlx::query(sqlx::AssertSqlSafe(format!(
                "UPDATE plans SET exec_holder = $2, exec_lease_ms = $3 WHERE id = $4 AND {due} AND {lapsed}"
            )))
            .bind(now_ms)
            .bind(holder)
            .bind(until_ms)
            .bind(&p.id)
            .execute(self.pool())
            .await?;
            if claimed.rows_affected() == 1 {
                taken.push(p);
            }
        }
        Ok(taken)
    }

    /// Records how a plan ended, as already said in chat.
    pub async fn finish_plan(
        &self,
        id: &str,
        state: PlanState,
        outcome: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE plans SET state = $1, outcome = $2, finished_ms = $3, said_ms = $3 WHERE id = $4",
        )
        .bind(state.as_str())
        .bind(outcome)
        .bind(now_ms)
        .bind(id)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Records how an executed plan ended, not yet said: `holder` keeps it
    /// until `lease_ms` (wall clock) to say it, then any replica may.
    pub async fn finish_plan_unsaid(
        &self,
        id: &str,
        state: PlanState,
        outcome: &str,
        now_ms: i64,
        lease_ms: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE plans SET state = $1, outcome = $2, finished_ms = $3, said_ms = NULL, \
             result_unsaid = 1, exec_lease_ms = $4 WHERE id = $5",
        )
        .bind(state.as_str())
        .bind(outcome)
        .bind(now_ms)
        .bind(lease_ms)
        .bind(id)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    pub async fn mark_plan_said(&self, id: &str, now_ms: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE plans SET said_ms = $1, result_unsaid = 0 WHERE id = $2")
            .bind(now_ms)
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Executed plans whose result was recorded but never said, and whose
    /// lease ran out, each taken by `holder` until `until_ms`.
    pub async fn take_unsaid_plans(
        &self,
        holder: &str,
        now_ms: i64,
        until_ms: i64,
    ) -> Result<Vec<PlanRow>, StoreError> {
        self.take_plans(
            "state IN ('done', 'failed', 'partial') AND result_unsaid = 1",
            holder,
            now_ms,
            until_ms,
        )
        .await
    }

    /// Pending plans whose time is up, each claimed as `expired` by this caller.
    pub async fn expire_due_plans(&self, now_ms: i64) -> Result<Vec<PlanRow>, StoreError> {
        let due = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM plans WHERE state = 'pending' AND expires_ms <= $1 ORDER BY expires_ms LIMIT 100"
        )))
        .bind(now_ms)
        .fetch_all(self.pool())
        .await?;
        let mut expired = Vec::new();
        for r in &due {
            let mut p = row(r)?;
            let claimed = sqlx::query("UPDATE plans SET state = 'expired', finished_ms = $1 WHERE id = $2 AND state = 'pending'")
                .bind(now_ms)
                .bind(&p.id)
                .execute(self.pool())
                .await?;
            if claimed.rows_affected() == 1 {
                p.state = PlanState::Expired;
                expired.push(p);
            }
        }
        Ok(expired)
    }

    /// The newest executed plans, for `/scale undo` without an id.
    pub async fn recent_plans(&self, limit: i64) -> Result<Vec<PlanRow>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM plans ORDER BY created_ms DESC LIMIT $1"
        )))
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(row)
            .collect::<Result<_, _>>()
            .map_err(StoreError::from)
    }
}

impl Store {
    /// The plans of an incident, oldest first (for its timeline).
    pub async fn plans_of_incident(&self, incident_id: &str) -> Result<Vec<PlanRow>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM plans WHERE incident_id = $1 ORDER BY created_ms"
        )))
        .bind(incident_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(row)
            .collect::<Result<_, _>>()
            .map_err(StoreError::from)
    }
}
