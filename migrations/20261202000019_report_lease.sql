-- A report slot is held under a lease (wall-clock ms) its replica renews
-- while it builds and posts the report; a slot left `running` by a replica
-- that died is taken again once the lease has run out.
ALTER TABLE report_runs ADD COLUMN lease_ms BIGINT;
