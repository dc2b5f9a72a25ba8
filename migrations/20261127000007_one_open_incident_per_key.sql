-- At most one unresolved incident per alarm, whatever the number of
-- concurrent deliveries or replicas.
CREATE UNIQUE INDEX IF NOT EXISTS incidents_one_open_per_key ON incidents (dedup_key) WHERE state <> 'resolved';
