-- Pages outside chat (SNS topics, PagerDuty), as owed work: one row per
-- (incident, level, target, action), written in the same transaction that
-- moves the incident to the level, so a page is never lost and never owed
-- twice. Any replica claims a due row under a lease (`lease_until_ms`),
-- sends it, records `outcome` ('sent', 'failed', 'skipped'), then says it
-- in the incident's thread (`posted`). A failed send is owed again at
-- `next_attempt_ms`, with backoff, until `attempts` runs out.
-- `target` is `sns:<topic ARN>` or `pagerduty`; `action` is `page` for SNS
-- and PagerDuty's `trigger`, `acknowledge` or `resolve` (the last two with
-- level 0: they follow the incident, not a level).
CREATE TABLE IF NOT EXISTS pages (
    id               TEXT PRIMARY KEY,
    incident_id      TEXT NOT NULL,
    level            BIGINT NOT NULL,
    target           TEXT NOT NULL,
    action           TEXT NOT NULL,
    created_ms       BIGINT NOT NULL,
    attempts         BIGINT NOT NULL DEFAULT 0,
    next_attempt_ms  BIGINT NOT NULL,
    lease_until_ms   BIGINT,
    outcome          TEXT,
    detail           TEXT,
    finished_ms      BIGINT,
    posted           BIGINT NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX IF NOT EXISTS pages_once ON pages (incident_id, level, target, action);
CREATE INDEX IF NOT EXISTS pages_owed ON pages (next_attempt_ms) WHERE posted = 0;
