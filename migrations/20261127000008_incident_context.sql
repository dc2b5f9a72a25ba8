-- The alarm an incident came from, as JSON, so its root message can be
-- redrawn whole after every change.
ALTER TABLE incidents ADD COLUMN context TEXT;
-- The channel opened for the incident at L3, where `/scale incident ack`
-- needs no id.
ALTER TABLE incidents ADD COLUMN dedicated_channel TEXT;
-- The next reminder at the current level; cleared by an acknowledgement.
ALTER TABLE incidents ADD COLUMN next_reminder_ms BIGINT;
-- The alarms an incident joined, and the last state each reported: with
-- join_by = "resource" an incident recovers only when all are OK.
CREATE TABLE IF NOT EXISTS incident_alarms (
    incident_id TEXT NOT NULL,
    alarm_name  TEXT NOT NULL,
    state       TEXT NOT NULL,
    updated_ms  BIGINT NOT NULL,
    PRIMARY KEY (incident_id, alarm_name)
);
