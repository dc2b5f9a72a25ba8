//! SNS messages as received: stored before the 2xx, deduplicated on
//! `MessageId`, marked when processed.

use super::{Store, StoreError};

impl Store {
    /// `false` when this message id was already stored (a redelivery).
    pub async fn record_sns(
        &self,
        message_id: &str,
        topic: &str,
        kind: &str,
        body: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO sns_messages (message_id, received_ms, topic, kind, body, processed_ms) \
             VALUES ($1, $2, $3, $4, $5, NULL) ON CONFLICT (message_id) DO NOTHING",
        )
        .bind(message_id)
        .bind(now_ms)
        .bind(topic)
        .bind(kind)
        .bind(body)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn mark_sns_processed(
        &self,
        message_id: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE sns_messages SET processed_ms = $1 WHERE message_id = $2")
            .bind(now_ms)
            .bind(message_id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    pub async fn sns_count(&self) -> Result<i64, StoreError> {
        use sqlx::Row;
        let r = sqlx::query("SELECT COUNT(*) AS n FROM sns_messages")
            .fetch_one(self.pool())
            .await?;
        Ok(r.try_get("n")?)
    }
}
