-- Scheduled reports: one row per (report, scheduled slot). The primary key
-- is the lease: of several replicas (or a restarted bot) only the first
-- INSERT of a slot succeeds, so each slot is posted at most once.
CREATE TABLE IF NOT EXISTS report_runs (
    report       TEXT NOT NULL,
    slot_ms      BIGINT NOT NULL,
    claimed_ms   BIGINT NOT NULL,
    finished_ms  BIGINT,
    outcome      TEXT NOT NULL DEFAULT 'running',
    PRIMARY KEY (report, slot_ms)
);
