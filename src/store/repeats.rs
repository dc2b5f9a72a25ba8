//! Repeated ALARMs of a firing incident, gathered into one reply per
//! coalescing window, in the store: a repeat is counted in the transaction
//! that finishes its message (so once, whichever replica took it in), and
//! the reply is owed work that a sweep claims, posts and then deletes.

use sqlx::{Any, Row, Transaction};

use super::{Store, StoreError};

/// One more repeat for an incident's open window (opened if none is).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepeatNote {
    pub incident_id: String,
    pub alarm: String,
    pub reason: String,
    /// When the window closes, if this repeat opens it.
    pub due_ms: i64,
    /// Repeats this note stands for (the writer adds up one batch's).
    pub count: i64,
}

impl RepeatNote {
    pub fn new(incident_id: &str, alarm: &str, reason: &str, due_ms: i64) -> Self {
        Self {
            incident_id: incident_id.to_owned(),
            alarm: alarm.to_owned(),
            reason: reason.to_owned(),
            due_ms,
            count: 1,
        }
    }

    /// One more repeat of the same alarm for the same incident.
    pub fn again(&self, reason: String) -> Self {
        Self {
            reason,
            count: 1,
            ..self.clone()
        }
    }

    /// Adds `other` (a later repeat) to this note, when both are for the
    /// same incident and alarm.
    pub(super) fn absorb(&mut self, other: &RepeatNote) -> bool {
        if other.incident_id != self.incident_id || other.alarm != self.alarm {
            return false;
        }
        self.count += other.count;
        other.reason.clone_into(&mut self.reason);
        true
    }
}

/// A closed window, claimed for its reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepeatWindow {
    pub id: String,
    pub incident_id: String,
    pub count: i64,
    pub alarms: Vec<String>,
    pub last_reason: String,
}

/// The alarm names of a window, one per line.
const SEP: char = '\n';

impl RepeatNote {
    pub(super) async fn write(&self, tx: &mut Transaction<'_, Any>) -> Result<(), sqlx::Error> {
        let open = sqlx::query(
            "SELECT id, alarms FROM alarm_repeats WHERE incident_id = $1 AND claimed = 0",
        )
        .bind(&self.incident_id)
        .fetch_optional(&mut **tx)
        .await?;
        if let Some(r) = open {
            let id: String = r.try_get("id")?;
            let mut alarms: String = r.try_get("alarms")?;
            if !alarms.split(SEP).any(|a| a == self.alarm) {
                alarms.push(SEP);
                alarms.push_str(&self.alarm);
            }
            sqlx::query(
                "UPDATE alarm_repeats SET count = count + $1, alarms = $2, last_reason = $3 WHERE id = $4",
            )
            .bind(self.count)
            .bind(alarms)
            .bind(&self.reason)
            .bind(id)
            .execute(&mut **tx)
            .await?;
            return Ok(());
        }
        // Two replicas opening a window for one incident at once (alarms
        // joined by resource): the second adds to the first's.
        sqlx::query(
            "INSERT INTO alarm_repeats (id, incident_id, count, alarms, last_reason, due_ms) \
             VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (incident_id) WHERE claimed = 0 \
             DO UPDATE SET count = alarm_repeats.count + excluded.count, last_reason = excluded.last_reason",
        )
        .bind(uuid::Uuid::new_v4().to_string())
        .bind(&self.incident_id)
        .bind(self.count)
        .bind(&self.alarm)
        .bind(&self.reason)
        .bind(self.due_ms)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }
}

impl Store {
    /// Claims up to `limit` windows that are due and held by nobody,
    /// until `until_ms`; new repeats of their incidents open new windows.
    pub async fn claim_due_repeats(
        &self,
        now_ms: i64,
        until_ms: i64,
        limit: i64,
    ) -> Result<Vec<RepeatWindow>, StoreError> {
        let rows = self
            .claim_due_rows(
                "SELECT id FROM alarm_repeats WHERE due_ms <= $1 \
                 AND (lease_until_ms IS NULL OR lease_until_ms < $1) ORDER BY due_ms LIMIT $2",
                "UPDATE alarm_repeats SET claimed = 1, lease_until_ms = $1 WHERE id = $2 \
                 AND (lease_until_ms IS NULL OR lease_until_ms < $3) \
                 RETURNING id, incident_id, count, alarms, last_reason",
                now_ms,
                until_ms,
                limit,
            )
            .await?;
        let mut claimed = Vec::with_capacity(rows.len());
        for r in rows {
            let alarms: String = r.try_get("alarms")?;
            claimed.push(RepeatWindow {
                id: r.try_get("id")?,
                incident_id: r.try_get("incident_id")?,
                count: r.try_get("count")?,
                alarms: alarms.split(SEP).map(str::to_owned).collect(),
                last_reason: r.try_get("last_reason")?,
            });
        }
        Ok(claimed)
    }

    /// The window's reply was posted.
    pub async fn repeats_posted(&self, id: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM alarm_repeats WHERE id = $1")
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// The reply failed: tried again from `retry_at_ms`.
    pub async fn repeats_retry(&self, id: &str, retry_at_ms: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE alarm_repeats SET lease_until_ms = $1 WHERE id = $2")
            .bind(retry_at_ms)
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }
}
