-- When an open incident moves up a level; a restarted bot resumes from here.
ALTER TABLE incidents ADD COLUMN next_escalation_ms BIGINT;
