-- A plan's result is recorded, then said in chat; `said_ms` is set once it
-- was. A finished plan without it (its replica died or Slack failed between
-- the two) is said again by any replica. Plans finished before this
-- migration were said.
ALTER TABLE plans ADD COLUMN said_ms BIGINT;
UPDATE plans SET said_ms = COALESCE(finished_ms, 0);
