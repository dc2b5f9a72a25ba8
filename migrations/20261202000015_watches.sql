-- The runbook's step 3 after a reserved-concurrency change ("monitor for
-- improvement"): one row per watch, checked every interval by whichever
-- replica claims it (`lease_until_ms`), deleted once its verdict is
-- posted, so a restart or a dead replica does not end a watch silently.
CREATE TABLE IF NOT EXISTS watches (
    id              TEXT PRIMARY KEY,
    incident_id     TEXT NOT NULL,
    function        TEXT NOT NULL,
    reserved        BIGINT,
    changed_ms      BIGINT NOT NULL,
    checks_done     BIGINT NOT NULL DEFAULT 0,
    next_check_ms   BIGINT NOT NULL,
    lease_until_ms  BIGINT
);
CREATE INDEX IF NOT EXISTS watches_due ON watches (next_check_ms);
