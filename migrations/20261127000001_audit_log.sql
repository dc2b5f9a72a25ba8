-- Every command, who ran it, where, when, and how it ended.
-- Portable SQL: the same file runs on SQLite and PostgreSQL.
CREATE TABLE IF NOT EXISTS audit_log (
    id          TEXT PRIMARY KEY,
    at_ms       BIGINT NOT NULL,
    platform    TEXT NOT NULL,
    actor       TEXT NOT NULL,
    channel     TEXT NOT NULL,
    command     TEXT NOT NULL,
    outcome     TEXT NOT NULL,
    detail      TEXT NOT NULL DEFAULT '',
    finished_ms BIGINT
);
CREATE INDEX IF NOT EXISTS audit_log_at ON audit_log (at_ms);
