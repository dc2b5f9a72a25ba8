//! SNS messages as received: stored before the 2xx, deduplicated on
//! `MessageId`, marked when processed.
//!
//! The 2xx must wait for the row to be committed, and one commit per message
//! would make SQLite's single writer the limit of an alarm storm; so one
//! writer task commits whatever has arrived meanwhile in one transaction
//! (group commit) and then answers each waiting request.

use sqlx::{AnyPool, Row};
use tokio::sync::{mpsc, oneshot};

use super::{Store, StoreError};

/// One SNS message to store.
#[derive(Debug, Clone)]
pub struct SnsRecord {
    pub message_id: String,
    pub topic: String,
    pub kind: String,
    pub body: String,
    pub received_ms: i64,
    /// The alarm it is about (its name), which keeps one alarm's messages
    /// in order across replicas; `None` for anything else.
    pub alarm_key: Option<String>,
    /// The alarm's `StateChangeTime`.
    pub changed_ms: Option<i64>,
}

type Reply = oneshot::Sender<Result<bool, String>>;

/// What the writer task does: store a message (and answer when committed),
/// or finish one (nobody waits for that; a finish lost in a crash only
/// means the message's lease runs out and it is processed again).
pub(super) enum SnsOp {
    Insert(SnsRecord, Reply),
    Finished(super::inbox::Finish),
    /// Answered once everything queued before it is committed.
    Flush(oneshot::Sender<()>),
    /// A work-queue claim (SQLite), run after the batch's writes and
    /// answered once committed.
    Claim(super::inbox::Claim, ClaimReply),
}

type ClaimReply = oneshot::Sender<Result<Vec<super::Claimed>, String>>;

/// What a committed batch answers: per insert whether it was new, per
/// claim the rows it claimed.
struct Written {
    inserted: Vec<bool>,
    claimed: Vec<Vec<super::Claimed>>,
}

const BATCH: usize = 256;

pub(super) fn spawn_sns_writer(pool: AnyPool) -> mpsc::Sender<SnsOp> {
    let (tx, mut rx) = mpsc::channel::<SnsOp>(8 * 1024);
    tokio::spawn(async move {
        let mut batch = Vec::with_capacity(BATCH);
        while rx.recv_many(&mut batch, BATCH).await > 0 {
            match write_batch(&pool, &batch).await {
                Ok(written) => answer(&mut batch, written),
                Err(e) => {
                    // Nothing acknowledged: every sender answers 5xx and SNS
                    // delivers again.
                    tracing::warn!(error = %e, ops = batch.len(), "SNS batch not stored");
                    fail(&mut batch, &e.to_string());
                }
            }
        }
    });
    tx
}

fn answer(batch: &mut Vec<SnsOp>, written: Written) {
    let mut inserted = written.inserted.into_iter();
    let mut claimed = written.claimed.into_iter();
    for op in batch.drain(..) {
        match op {
            SnsOp::Insert(_, reply) => {
                let _ = reply.send(Ok(inserted.next().unwrap_or(false)));
            }
            SnsOp::Flush(done) => {
                let _ = done.send(());
            }
            SnsOp::Claim(_, reply) => {
                let _ = reply.send(Ok(claimed.next().unwrap_or_default()));
            }
            SnsOp::Finished(_) => {}
        }
    }
}

fn fail(batch: &mut Vec<SnsOp>, error: &str) {
    for op in batch.drain(..) {
        match op {
            SnsOp::Insert(_, reply) => {
                let _ = reply.send(Err(error.to_owned()));
            }
            SnsOp::Flush(done) => {
                let _ = done.send(());
            }
            SnsOp::Claim(_, reply) => {
                let _ = reply.send(Err(error.to_owned()));
            }
            SnsOp::Finished(_) => {}
        }
    }
}

/// Writes the batch in one transaction: inserts, finishes, the finishes'
/// repeat notes, then claims (which see this batch's inserts). Each kind is
/// one statement for the batch where it can be: a storm is thousands of
/// rows a second, and a statement is a round trip on PostgreSQL.
async fn write_batch(pool: &AnyPool, batch: &[SnsOp]) -> Result<Written, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let records: Vec<&SnsRecord> = batch
        .iter()
        .filter_map(|op| match op {
            SnsOp::Insert(r, _) => Some(r),
            _ => None,
        })
        .collect();
    let inserted = insert_records(&mut tx, &records).await?;
    let finishes: Vec<&super::inbox::Finish> = batch
        .iter()
        .filter_map(|op| match op {
            SnsOp::Finished(f) => Some(f),
            _ => None,
        })
        .collect();
    let finished = super::inbox::write_finishes(&mut tx, &finishes).await?;
    // A storm's repeats for one incident: one write per batch, not one each.
    let mut notes: Vec<super::RepeatNote> = Vec::new();
    for f in finishes.iter().filter(|f| finished.contains(&f.message_id)) {
        if let Some(note) = &f.repeat
            && !notes.iter_mut().any(|n| n.absorb(note))
        {
            notes.push(note.clone());
        }
    }
    for note in &notes {
        note.write(&mut tx).await?;
    }
    let mut claimed = Vec::new();
    for op in batch {
        if let SnsOp::Claim(claim, _) = op {
            claimed.push(claim.run(&mut tx).await?);
        }
    }
    tx.commit().await?;
    Ok(Written { inserted, claimed })
}

/// Inserts the records in one statement; per record, whether it was new
/// (a message id stored before, or twice in this batch, is not).
async fn insert_records(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    records: &[&SnsRecord],
) -> Result<Vec<bool>, sqlx::Error> {
    if records.is_empty() {
        return Ok(Vec::new());
    }
    let rows: Vec<String> = (0..records.len())
        .map(|i| {
            let b = i * 8;
            format!(
                "(${}, ${}, ${}, ${}, ${}, NULL, ${}, ${}, ${})",
                b + 1,
                b + 2,
                b + 3,
                b + 4,
                b + 5,
                b + 6,
                b + 7,
                b + 8
            )
        })
        .collect();
    let sql = format!(
        "INSERT INTO sns_messages (message_id, received_ms, topic, kind, body, processed_ms, \
         alarm_key, changed_ms, next_attempt_ms) VALUES {} \
         ON CONFLICT (message_id) DO NOTHING RETURNING message_id",
        rows.join(", ")
    );
    // Due now by the wall clock, which leases and claims use: the demo's
    // `received_ms` is simulated time, running ahead of it.
    let due = super::now_ms();
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for r in records {
        q = q
            .bind(&r.message_id)
            .bind(r.received_ms)
            .bind(&r.topic)
            .bind(&r.kind)
            .bind(&r.body)
            .bind(&r.alarm_key)
            .bind(r.changed_ms)
            .bind(due);
    }
    let mut new: std::collections::HashSet<String> = q
        .fetch_all(&mut **tx)
        .await?
        .iter()
        .map(|r| r.try_get::<String, _>("message_id"))
        .collect::<Result<_, _>>()?;
    // The first request for an id is told it was new, a copy is not.
    Ok(records.iter().map(|r| new.remove(&r.message_id)).collect())
}

impl Store {
    /// Stores a message, committed when this returns; `false` when this
    /// message id was already stored (a redelivery).
    pub async fn record_sns(&self, record: SnsRecord) -> Result<bool, StoreError> {
        let (tx, rx) = oneshot::channel();
        self.sns_writer
            .send(SnsOp::Insert(record, tx))
            .await
            .map_err(|_| StoreError::WriterGone)?;
        rx.await
            .map_err(|_| StoreError::WriterGone)?
            .map_err(StoreError::Batch)
    }

    /// Waits until every insert and finish queued before this call is
    /// committed (or its batch failed).
    pub async fn flush_sns(&self) -> Result<(), StoreError> {
        let (tx, rx) = oneshot::channel();
        self.sns_writer
            .send(SnsOp::Flush(tx))
            .await
            .map_err(|_| StoreError::WriterGone)?;
        rx.await.map_err(|_| StoreError::WriterGone)
    }

    /// A claim run in the writer's next transaction (SQLite).
    pub(super) async fn claim_in_writer(
        &self,
        claim: super::inbox::Claim,
    ) -> Result<Vec<super::Claimed>, StoreError> {
        let (tx, rx) = oneshot::channel();
        self.sns_writer
            .send(SnsOp::Claim(claim, tx))
            .await
            .map_err(|_| StoreError::WriterGone)?;
        rx.await
            .map_err(|_| StoreError::WriterGone)?
            .map_err(StoreError::Batch)
    }

    /// Queues a finish in the writer's next transaction.
    pub(super) async fn queue_finish(&self, f: super::inbox::Finish) -> Result<(), StoreError> {
        self.sns_writer
            .send(SnsOp::Finished(f))
            .await
            .map_err(|_| StoreError::WriterGone)
    }

    pub async fn sns_count(&self) -> Result<i64, StoreError> {
        let r = sqlx::query("SELECT COUNT(*) AS n FROM sns_messages")
            .fetch_one(self.pool())
            .await?;
        Ok(r.try_get("n")?)
    }
}
