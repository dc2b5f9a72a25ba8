//! Incidents and their timeline. Every event is a row before it is a reply
//! in the incident's thread, so the timeline can be exported as written.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, StoreError};
use crate::domain::severity::Severity;
use crate::domain::state::IncidentState;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncidentRow {
    pub id: String,
    pub title: String,
    pub level: i64,
    pub state: IncidentState,
    /// `manual` or `alarm`.
    pub source: String,
    /// What makes two alarms the same incident (alarm name, resource).
    pub dedup_key: Option<String>,
    pub channel: String,
    pub root_message: Option<String>,
    pub opened_ms: i64,
    pub acked_ms: Option<i64>,
    pub resolved_ms: Option<i64>,
    pub updated_ms: i64,
    /// The alarm it came from, as JSON, for redrawing its root message.
    pub context: Option<String>,
    /// From the config's rules or set by hand; none for manual incidents.
    pub severity: Option<Severity>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncidentEvent {
    pub id: String,
    pub incident_id: String,
    pub at_ms: i64,
    pub actor: String,
    pub kind: String,
    pub body: String,
    pub message_id: Option<String>,
}

fn insert_event(e: &IncidentEvent) -> sqlx::query::Query<'_, sqlx::Any, sqlx::any::AnyArguments> {
    sqlx::query(
        "INSERT INTO incident_events (id, incident_id, at_ms, actor, kind, body, message_id) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&e.id)
    .bind(&e.incident_id)
    .bind(e.at_ms)
    .bind(&e.actor)
    .bind(&e.kind)
    .bind(&e.body)
    .bind(&e.message_id)
}

pub(super) const COLUMNS: &str = "id, title, level, state, source, dedup_key, channel, root_message, opened_ms, acked_ms, resolved_ms, updated_ms, context, severity";

pub(super) fn incident(r: &AnyRow) -> Result<IncidentRow, sqlx::Error> {
    Ok(IncidentRow {
        id: r.try_get("id")?,
        title: r.try_get("title")?,
        level: r.try_get("level")?,
        state: super::decode_state(r)?,
        source: r.try_get("source")?,
        dedup_key: r.try_get("dedup_key")?,
        channel: r.try_get("channel")?,
        root_message: r.try_get("root_message")?,
        opened_ms: r.try_get("opened_ms")?,
        acked_ms: r.try_get("acked_ms")?,
        resolved_ms: r.try_get("resolved_ms")?,
        updated_ms: r.try_get("updated_ms")?,
        context: r.try_get("context")?,
        // A word this version does not know reads as none, not as a
        // broken incident.
        severity: r
            .try_get::<Option<String>, _>("severity")?
            .and_then(|s| s.parse().ok()),
    })
}

/// What a new incident starts with, written with its row in one
/// transaction: a crash leaves either all of it or none.
#[derive(Debug, Clone, Default)]
pub struct FirstSteps {
    pub escalate_at_ms: Option<i64>,
    pub remind_at_ms: Option<i64>,
    pub events: Vec<IncidentEvent>,
    /// The pages of the starting level (SNS topics, PagerDuty).
    pub pages: Vec<super::NewPage>,
}

/// Whether an incident was opened, or its key already has one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opened {
    Opened,
    /// Another delivery or replica opened the unresolved incident of
    /// this key first.
    KeyTaken,
}

impl Store {
    pub async fn insert_incident(
        &self,
        i: &IncidentRow,
        first: &FirstSteps,
    ) -> Result<Opened, StoreError> {
        let mut tx = self.pool().begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO incidents (id, title, level, state, source, dedup_key, channel, root_message, opened_ms, acked_ms, resolved_ms, updated_ms, context, next_escalation_ms, next_reminder_ms, opening_step, severity, announced_level) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, 1, $16, $17)",
        )
        .bind(&i.id)
        .bind(&i.title)
        .bind(i.level)
        .bind(i.state.as_str())
        .bind(&i.source)
        .bind(&i.dedup_key)
        .bind(&i.channel)
        .bind(&i.root_message)
        .bind(i.opened_ms)
        .bind(i.acked_ms)
        .bind(i.resolved_ms)
        .bind(i.updated_ms)
        .bind(&i.context)
        .bind(first.escalate_at_ms)
        .bind(first.remind_at_ms)
        .bind(i.severity.map(Severity::as_str))
        // An incident that starts above L1 owes the announcement of its
        // starting level only (its people are told), not of every level below.
        .bind((i.level - 1).max(1))
        .execute(&mut *tx)
        .await;
        match inserted {
            Ok(_) => {}
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                tx.rollback().await?;
                return Ok(Opened::KeyTaken);
            }
            Err(e) => return Err(e.into()),
        }
        for e in &first.events {
            insert_event(e).execute(&mut *tx).await?;
        }
        super::pages::insert_pages(&mut tx, &i.id, &first.pages, i.opened_ms, super::now_ms())
            .await?;
        tx.commit().await?;
        Ok(Opened::Opened)
    }

    pub async fn incident(&self, id: &str) -> Result<Option<IncidentRow>, StoreError> {
        let r = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM incidents WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        Ok(r.as_ref().map(incident).transpose()?)
    }

    pub async fn set_incident_root(&self, id: &str, root_message: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE incidents SET root_message = $1 WHERE id = $2")
            .bind(root_message)
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    pub async fn add_incident_event(&self, e: &IncidentEvent) -> Result<(), StoreError> {
        insert_event(e).execute(self.pool()).await?;
        Ok(())
    }

    /// Records the root message unless one is recorded already; `false`
    /// then (another replica posted one first).
    pub async fn set_incident_root_once(
        &self,
        id: &str,
        root_message: &str,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE incidents SET root_message = $1 WHERE id = $2 AND root_message IS NULL",
        )
        .bind(root_message)
        .bind(id)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn set_event_message(&self, event_id: &str, ts: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE incident_events SET message_id = $1 WHERE id = $2")
            .bind(ts)
            .bind(event_id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    pub async fn incident_events(
        &self,
        incident_id: &str,
    ) -> Result<Vec<IncidentEvent>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, incident_id, at_ms, actor, kind, body, message_id FROM incident_events WHERE incident_id = $1 ORDER BY at_ms, id",
        )
        .bind(incident_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(IncidentEvent {
                    id: r.try_get("id")?,
                    incident_id: r.try_get("incident_id")?,
                    at_ms: r.try_get("at_ms")?,
                    actor: r.try_get("actor")?,
                    kind: r.try_get("kind")?,
                    body: r.try_get("body")?,
                    message_id: r.try_get("message_id")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    /// Open incidents (not resolved), newest first.
    pub async fn open_incidents(&self) -> Result<Vec<IncidentRow>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM incidents WHERE state <> 'resolved' ORDER BY opened_ms DESC LIMIT 200"
        )))
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(incident)
            .collect::<Result<_, _>>()
            .map_err(StoreError::from)
    }

    /// The open incident with this key, if any.
    pub async fn open_incident_by_key(&self, key: &str) -> Result<Option<IncidentRow>, StoreError> {
        let r = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM incidents WHERE dedup_key = $1 AND state <> 'resolved' ORDER BY opened_ms DESC LIMIT 1"
        )))
        .bind(key)
        .fetch_optional(self.pool())
        .await?;
        Ok(r.as_ref().map(incident).transpose()?)
    }
}

impl Store {
    /// Acknowledges an open incident, which ends the reminders at its level
    /// and, with `stop_clock`, its escalation; `false` if it was not open.
    pub async fn ack_incident(
        &self,
        id: &str,
        now_ms: i64,
        stop_clock: bool,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE incidents SET state = 'acknowledged', acked_ms = $1, updated_ms = $1, next_reminder_ms = NULL, \
             next_escalation_ms = CASE WHEN $2 = 1 THEN NULL ELSE next_escalation_ms END \
             WHERE id = $3 AND state = 'open'",
        )
        .bind(now_ms)
        .bind(i64::from(stop_clock))
        .bind(id)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Resolves an incident; `false` if it was already resolved.
    pub async fn resolve_incident(&self, id: &str, now_ms: i64) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE incidents SET state = 'resolved', resolved_ms = $1, updated_ms = $1 WHERE id = $2 AND state <> 'resolved'",
        )
        .bind(now_ms)
        .bind(id)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Resolves a recovered incident whose quiet period is over, checked in
    /// the same statement: one that fired again meanwhile stays open.
    pub async fn auto_resolve_incident(&self, id: &str, now_ms: i64) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE incidents SET state = 'resolved', resolved_ms = $1, updated_ms = $1 \
             WHERE id = $2 AND state = 'recovered' AND resolve_at_ms IS NOT NULL AND resolve_at_ms <= $1",
        )
        .bind(now_ms)
        .bind(id)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }
}

impl Store {
    /// Sets (or clears) when a recovered incident resolves itself, and its state.
    pub async fn set_auto_resolve(
        &self,
        id: &str,
        state: IncidentState,
        at_ms: Option<i64>,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE incidents SET state = $1, resolve_at_ms = $2, updated_ms = $3 WHERE id = $4 AND state <> 'resolved'")
            .bind(state.as_str())
            .bind(at_ms)
            .bind(now_ms)
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Recovered incidents whose quiet period is over.
    pub async fn due_auto_resolves(&self, now_ms: i64) -> Result<Vec<IncidentRow>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM incidents WHERE state = 'recovered' AND resolve_at_ms IS NOT NULL \
             AND resolve_at_ms <= $1 LIMIT 100"
        )))
        .bind(now_ms)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(incident)
            .collect::<Result<_, _>>()
            .map_err(StoreError::from)
    }
}

impl Store {
    /// Remembers the channel opened for an incident (at L3).
    pub async fn set_incident_channel(&self, id: &str, channel: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE incidents SET dedicated_channel = $1 WHERE id = $2")
            .bind(channel)
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// The unresolved incident whose own channel this is, if any.
    pub async fn incident_by_channel(
        &self,
        channel: &str,
    ) -> Result<Option<IncidentRow>, StoreError> {
        let r = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM incidents WHERE dedicated_channel = $1 AND state <> 'resolved' LIMIT 1"
        )))
        .bind(channel)
        .fetch_optional(self.pool())
        .await?;
        Ok(r.as_ref().map(incident).transpose()?)
    }

    pub async fn set_next_reminder(&self, id: &str, at_ms: Option<i64>) -> Result<(), StoreError> {
        sqlx::query("UPDATE incidents SET next_reminder_ms = $1 WHERE id = $2")
            .bind(at_ms)
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Open (unacknowledged) incidents whose reminder time has come, with
    /// that time, which [`Store::claim_reminder`] needs.
    pub async fn due_reminders(&self, now_ms: i64) -> Result<Vec<(IncidentRow, i64)>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS}, next_reminder_ms FROM incidents WHERE state = 'open' \
             AND next_reminder_ms IS NOT NULL AND next_reminder_ms <= $1 ORDER BY next_reminder_ms LIMIT 100"
        )))
        .bind(now_ms)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| Ok((incident(r)?, r.try_get("next_reminder_ms")?)))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    /// Moves a due reminder on; `true` for exactly one caller.
    pub async fn claim_reminder(
        &self,
        id: &str,
        due_ms: i64,
        next_ms: Option<i64>,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE incidents SET next_reminder_ms = $1 WHERE id = $2 AND next_reminder_ms = $3 AND state = 'open'",
        )
        .bind(next_ms)
        .bind(id)
        .bind(due_ms)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Records the state an alarm of this incident last reported; a storm
    /// repeats the same state thousands of times, so an unchanged state is
    /// only read, not written.
    pub async fn set_incident_alarm(
        &self,
        incident_id: &str,
        alarm: &str,
        state: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let stored = sqlx::query(
            "SELECT state FROM incident_alarms WHERE incident_id = $1 AND alarm_name = $2",
        )
        .bind(incident_id)
        .bind(alarm)
        .fetch_optional(self.pool())
        .await?;
        if let Some(row) = stored
            && row.try_get::<String, _>("state")? == state
        {
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO incident_alarms (incident_id, alarm_name, state, updated_ms) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (incident_id, alarm_name) DO UPDATE SET state = excluded.state, updated_ms = excluded.updated_ms",
        )
        .bind(incident_id)
        .bind(alarm)
        .bind(state)
        .bind(now_ms)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The incident's alarms that last reported ALARM.
    pub async fn firing_alarms(&self, incident_id: &str) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(
            "SELECT alarm_name FROM incident_alarms WHERE incident_id = $1 AND state = 'ALARM' ORDER BY alarm_name",
        )
        .bind(incident_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| r.try_get("alarm_name"))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }
}
