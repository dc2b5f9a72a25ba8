-- Snapshots of scalable targets and scaling policies (the runbook's
-- backup/lambda-policy-${DATE}.json), taken before every change and daily.
CREATE TABLE IF NOT EXISTS policy_snapshots (
    id        TEXT PRIMARY KEY,
    taken_ms  BIGINT NOT NULL,
    day       TEXT NOT NULL,
    reason    TEXT NOT NULL,
    body      TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS policy_snapshots_day ON policy_snapshots (day, taken_ms);
