//! The audit log: every command, who, what, where, when, and its outcome.
//!
//! Writes go through one batching writer task so that the ack path never
//! waits on a disk sync: a burst of commands costs one transaction, not one
//! each. `Store::flush` waits for everything queued so far.

use sqlx::{AnyPool, Row};
use tokio::sync::{mpsc, oneshot};

use super::{Store, StoreError, now_ms};

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AuditId(pub String);

impl AuditId {
    pub fn new() -> Self {
        Self(uuid::Uuid::new_v4().to_string())
    }
}

impl Default for AuditId {
    fn default() -> Self {
        Self::new()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub id: String,
    pub at_ms: i64,
    pub platform: String,
    pub actor: String,
    pub channel: String,
    pub command: String,
    pub outcome: String,
    pub detail: String,
    pub finished_ms: Option<i64>,
}

pub(super) enum Op {
    Insert(AuditEntry),
    Finish {
        id: String,
        outcome: String,
        detail: String,
        at_ms: i64,
    },
    Flush(oneshot::Sender<()>),
}

const BATCH: usize = 512;

pub(super) fn spawn_writer(pool: AnyPool) -> mpsc::Sender<Op> {
    let (tx, mut rx) = mpsc::channel::<Op>(16 * 1024);
    tokio::spawn(async move {
        let mut ops = Vec::with_capacity(BATCH);
        while rx.recv_many(&mut ops, BATCH).await > 0 {
            let mut waiters = Vec::new();
            // A failed batch is retried a few times (SQLite busy, a
            // PostgreSQL failover) before its rows are given up and logged.
            let mut attempt = 0;
            loop {
                match write_batch(&pool, &ops).await {
                    Ok(()) => break,
                    Err(e) if attempt < 5 => {
                        attempt += 1;
                        tracing::warn!(error = %e, attempt, "audit batch failed; retrying");
                        tokio::time::sleep(std::time::Duration::from_millis(200 * attempt)).await;
                    }
                    Err(e) => {
                        tracing::error!(error = %e, rows = ops.len(), "audit batch lost after retries");
                        break;
                    }
                }
            }
            for op in ops.drain(..) {
                if let Op::Flush(w) = op {
                    waiters.push(w);
                }
            }
            for w in waiters {
                let _ = w.send(());
            }
        }
    });
    tx
}

/// Rows per multi-row INSERT: 9 parameters each stays far below SQLite's
/// and PostgreSQL's parameter limits.
const ROWS_PER_INSERT: usize = 100;

async fn write_batch(pool: &AnyPool, ops: &[Op]) -> Result<(), sqlx::Error> {
    if ops.iter().all(|o| matches!(o, Op::Flush(_))) {
        return Ok(());
    }
    let mut tx = pool.begin().await?;
    // Consecutive inserts go in multi-row statements (one round trip to the
    // database thread per hundred rows); order with updates is kept.
    let mut pending: Vec<&AuditEntry> = Vec::new();
    for op in ops {
        match op {
            Op::Insert(e) => {
                pending.push(e);
                if pending.len() == ROWS_PER_INSERT {
                    insert_rows(&mut tx, &pending).await?;
                    pending.clear();
                }
            }
            Op::Finish {
                id,
                outcome,
                detail,
                at_ms,
            } => {
                insert_rows(&mut tx, &pending).await?;
                pending.clear();
                sqlx::query(
                    "UPDATE audit_log SET outcome = $1, detail = $2, finished_ms = $3 WHERE id = $4",
                )
                .bind(outcome)
                .bind(detail)
                .bind(*at_ms)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            }
            Op::Flush(_) => {}
        }
    }
    insert_rows(&mut tx, &pending).await?;
    tx.commit().await
}

async fn insert_rows(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    rows: &[&AuditEntry],
) -> Result<(), sqlx::Error> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut sql = String::from(
        "INSERT INTO audit_log (id, at_ms, platform, actor, channel, command, outcome, detail, finished_ms) VALUES ",
    );
    for i in 0..rows.len() {
        let b = i * 9;
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str(&format!(
            "(${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, ${})",
            b + 1,
            b + 2,
            b + 3,
            b + 4,
            b + 5,
            b + 6,
            b + 7,
            b + 8,
            b + 9
        ));
    }
    sql.push_str(" ON CONFLICT (id) DO NOTHING");
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for e in rows {
        q = q
            .bind(e.id.clone())
            .bind(e.at_ms)
            .bind(e.platform.clone())
            .bind(e.actor.clone())
            .bind(e.channel.clone())
            .bind(e.command.clone())
            .bind(e.outcome.clone())
            .bind(e.detail.clone())
            .bind(e.finished_ms);
    }
    q.execute(&mut **tx).await?;
    Ok(())
}

impl Store {
    /// Queues an audit row; waits only when the queue is full.
    pub async fn audit(&self, entry: AuditEntry) -> Result<(), StoreError> {
        self.writer
            .send(Op::Insert(entry))
            .await
            .map_err(|_| StoreError::WriterGone)
    }

    /// Records how a command ended.
    pub async fn audit_finish(
        &self,
        id: &AuditId,
        outcome: &str,
        detail: &str,
    ) -> Result<(), StoreError> {
        self.writer
            .send(Op::Finish {
                id: id.0.clone(),
                outcome: outcome.into(),
                detail: detail.into(),
                at_ms: now_ms(),
            })
            .await
            .map_err(|_| StoreError::WriterGone)
    }

    /// The newest entries first.
    pub async fn audit_entries(&self, limit: i64) -> Result<Vec<AuditEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, at_ms, platform, actor, channel, command, outcome, detail, finished_ms \
             FROM audit_log ORDER BY at_ms DESC, id LIMIT $1",
        )
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(AuditEntry {
                    id: r.try_get("id")?,
                    at_ms: r.try_get("at_ms")?,
                    platform: r.try_get("platform")?,
                    actor: r.try_get("actor")?,
                    channel: r.try_get("channel")?,
                    command: r.try_get("command")?,
                    outcome: r.try_get("outcome")?,
                    detail: r.try_get("detail")?,
                    finished_ms: r.try_get("finished_ms")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }
}
