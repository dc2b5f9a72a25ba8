-- Stored messages from AWS become a work queue that every replica works
-- on: a row is claimed with a lease (renewed while its holder lives, taken
-- over when it expires), retried with backoff, and finished with what was
-- done with it. `alarm_key` and `changed_ms` (the alarm's StateChangeTime)
-- keep one alarm's messages in order across replicas.
ALTER TABLE sns_messages ADD COLUMN alarm_key TEXT;
ALTER TABLE sns_messages ADD COLUMN changed_ms BIGINT;
ALTER TABLE sns_messages ADD COLUMN attempts BIGINT NOT NULL DEFAULT 0;
ALTER TABLE sns_messages ADD COLUMN next_attempt_ms BIGINT NOT NULL DEFAULT 0;
ALTER TABLE sns_messages ADD COLUMN lease_holder TEXT;
ALTER TABLE sns_messages ADD COLUMN lease_until_ms BIGINT;
ALTER TABLE sns_messages ADD COLUMN outcome TEXT;
ALTER TABLE sns_messages ADD COLUMN processed_by TEXT;
ALTER TABLE sns_messages ADD COLUMN last_error TEXT;
UPDATE sns_messages SET next_attempt_ms = received_ms WHERE processed_ms IS NULL;
UPDATE sns_messages SET outcome = 'processed' WHERE processed_ms IS NOT NULL;
CREATE INDEX IF NOT EXISTS sns_messages_due ON sns_messages (next_attempt_ms) WHERE processed_ms IS NULL;
CREATE INDEX IF NOT EXISTS sns_messages_leased ON sns_messages (lease_until_ms) WHERE processed_ms IS NULL;
CREATE INDEX IF NOT EXISTS sns_messages_alarm ON sns_messages (alarm_key, changed_ms);

-- Per alarm, the newest state change that was applied: an older message
-- after it is history. Written in the same transaction as the row's finish.
CREATE TABLE IF NOT EXISTS alarm_applied (
    alarm_key   TEXT PRIMARY KEY,
    changed_ms  BIGINT NOT NULL
);

-- Singletons (the Discord gateway): one holder at a time, until the lease
-- runs out without being renewed.
CREATE TABLE IF NOT EXISTS leases (
    name      TEXT PRIMARY KEY,
    holder    TEXT NOT NULL,
    until_ms  BIGINT NOT NULL
);

-- An escalation is announced at least once: the level moves first, then a
-- sweep announces every level above `announced_level` (holding a short
-- lease while it posts) and only then records it as announced.
ALTER TABLE incidents ADD COLUMN announced_level BIGINT NOT NULL DEFAULT 1;
ALTER TABLE incidents ADD COLUMN announce_lease_ms BIGINT;
ALTER TABLE incidents ADD COLUMN escalated_by TEXT;
UPDATE incidents SET announced_level = level;

-- A plan being executed is held by one replica under a lease it renews;
-- when the lease runs out (the replica died mid-plan) another replica
-- re-reads AWS and records what actually changed. `outcome` is written
-- after every change, not only at the end.
ALTER TABLE plans ADD COLUMN exec_holder TEXT;
ALTER TABLE plans ADD COLUMN exec_lease_ms BIGINT;
