-- A plan's result is recorded, then said in chat. `result_unsaid` is 1
-- from the record until it was said (`said_ms`); such a plan (Slack failed,
-- or its replica died between the two) is said again by any replica. A
-- flag rather than `said_ms IS NULL`, so that plans finished by replicas
-- still on the previous version, which never set it, are not said twice.
ALTER TABLE plans ADD COLUMN said_ms BIGINT;
ALTER TABLE plans ADD COLUMN result_unsaid BIGINT NOT NULL DEFAULT 0;
