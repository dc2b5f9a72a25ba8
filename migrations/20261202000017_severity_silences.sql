-- Severities and silences (portable SQL: SQLite and PostgreSQL alike).
--
-- An incident's severity, from the config's rules when it was opened or
-- from `/scale incident <id> severity`; NULL for incidents opened before
-- severities existed and for manual-intervention incidents.
ALTER TABLE incidents ADD COLUMN severity TEXT;

-- `/scale silence`: a pattern silenced until `until_ms` (compared with the
-- clock; nothing expires them but time), or until someone unsilences it
-- (`ended_ms`). Every replica reads the same rows.
CREATE TABLE IF NOT EXISTS silences (
    id          TEXT PRIMARY KEY,
    pattern     TEXT NOT NULL,
    reason      TEXT NOT NULL,
    created_by  TEXT NOT NULL,
    created_ms  BIGINT NOT NULL,
    until_ms    BIGINT NOT NULL,
    ended_by    TEXT,
    ended_ms    BIGINT
);
CREATE INDEX IF NOT EXISTS silences_active ON silences (until_ms);

-- Each alarm notification a silence or maintenance window held back, keyed
-- by its SNS message id so that a retried message is listed once;
-- `digest_slot_ms` is the hour whose digest took it (NULL: not yet).
CREATE TABLE IF NOT EXISTS silenced_alarms (
    message_id      TEXT PRIMARY KEY,
    alarm_name      TEXT NOT NULL,
    state           TEXT NOT NULL,
    reason          TEXT NOT NULL,
    silenced_by     TEXT NOT NULL,
    at_ms           BIGINT NOT NULL,
    digest_slot_ms  BIGINT
);
CREATE INDEX IF NOT EXISTS silenced_alarms_digest ON silenced_alarms (digest_slot_ms, at_ms);

-- One hourly digest per slot across replicas: the one whose INSERT lands
-- posts it.
CREATE TABLE IF NOT EXISTS silence_digests (
    slot_ms     BIGINT PRIMARY KEY,
    claimed_ms  BIGINT NOT NULL,
    posted_ms   BIGINT,
    -- Wall clock: a digest still unposted after this was abandoned (its
    -- replica died); its alarms go into a later digest.
    lease_ms    BIGINT
);
