-- Every SNS message the bot accepted, stored before it answers 2xx so that
-- SNS redelivers whatever the bot did not keep; MessageId deduplicates.
CREATE TABLE IF NOT EXISTS sns_messages (
    message_id    TEXT PRIMARY KEY,
    received_ms   BIGINT NOT NULL,
    topic         TEXT NOT NULL,
    kind          TEXT NOT NULL,
    body          TEXT NOT NULL,
    processed_ms  BIGINT
);
