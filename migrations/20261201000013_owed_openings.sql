-- Opening an incident decides it (row, first deadlines, key) in one
-- transaction while the alarm's message is taken in; what follows in chat
-- (the root message, the alarm's chart, the L1 diagnostics) is owed work
-- that any replica may claim, so an alarm storm is decided at the store's
-- pace, not at the chat's one-post-per-second pace. `opening_step` is the
-- next step owed (NULL when the opening is done); `opening_lease_ms` the
-- claim of the replica doing it, or when a failed step may be tried again.
ALTER TABLE incidents ADD COLUMN opening_step BIGINT;
ALTER TABLE incidents ADD COLUMN opening_lease_ms BIGINT;
CREATE INDEX IF NOT EXISTS incidents_opening_owed ON incidents (opening_step) WHERE opening_step IS NOT NULL;

-- Repeated ALARMs of a firing incident, gathered into one reply per
-- coalescing window. Counted in the same transaction that finishes the
-- message, so a repeat is counted once whoever takes it in; the reply is
-- owed work (claimed with `lease_until_ms`, deleted once posted). At most
-- one open window (`claimed = 0`) per incident gathers new repeats.
CREATE TABLE IF NOT EXISTS alarm_repeats (
    id              TEXT PRIMARY KEY,
    incident_id     TEXT NOT NULL,
    count           BIGINT NOT NULL,
    alarms          TEXT NOT NULL,
    last_reason     TEXT NOT NULL,
    due_ms          BIGINT NOT NULL,
    claimed         BIGINT NOT NULL DEFAULT 0,
    lease_until_ms  BIGINT
);
CREATE UNIQUE INDEX IF NOT EXISTS alarm_repeats_open ON alarm_repeats (incident_id) WHERE claimed = 0;
CREATE INDEX IF NOT EXISTS alarm_repeats_due ON alarm_repeats (due_ms);
