-- Incidents, their timeline, plans awaiting confirmation and approvals.
-- Portable SQL: the same file runs on SQLite and PostgreSQL.
CREATE TABLE IF NOT EXISTS incidents (
    id           TEXT PRIMARY KEY,
    title        TEXT NOT NULL,
    level        BIGINT NOT NULL,
    state        TEXT NOT NULL,
    source       TEXT NOT NULL,
    dedup_key    TEXT,
    channel      TEXT NOT NULL,
    root_ts      TEXT,
    opened_ms    BIGINT NOT NULL,
    acked_ms     BIGINT,
    resolved_ms  BIGINT,
    updated_ms   BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS incidents_open ON incidents (state, dedup_key);

CREATE TABLE IF NOT EXISTS incident_events (
    id           TEXT PRIMARY KEY,
    incident_id  TEXT NOT NULL,
    at_ms        BIGINT NOT NULL,
    actor        TEXT NOT NULL,
    kind         TEXT NOT NULL,
    body         TEXT NOT NULL,
    message_ts   TEXT
);
CREATE INDEX IF NOT EXISTS incident_events_by_incident ON incident_events (incident_id, at_ms);

CREATE TABLE IF NOT EXISTS plans (
    id                TEXT PRIMARY KEY,
    command           TEXT NOT NULL,
    requester         TEXT NOT NULL,
    platform          TEXT NOT NULL,
    channel           TEXT NOT NULL,
    incident_id       TEXT,
    changes           TEXT NOT NULL,
    role              TEXT NOT NULL,
    approvals_needed  BIGINT NOT NULL,
    destructive       BIGINT NOT NULL,
    dry_run           BIGINT NOT NULL,
    state             TEXT NOT NULL,
    created_ms        BIGINT NOT NULL,
    expires_ms        BIGINT NOT NULL,
    message_channel   TEXT,
    message_ts        TEXT,
    outcome           TEXT,
    undo_of           TEXT,
    finished_ms       BIGINT
);
CREATE INDEX IF NOT EXISTS plans_pending ON plans (state, expires_ms);

CREATE TABLE IF NOT EXISTS approvals (
    plan_id   TEXT NOT NULL,
    approver  TEXT NOT NULL,
    at_ms     BIGINT NOT NULL,
    PRIMARY KEY (plan_id, approver)
);
