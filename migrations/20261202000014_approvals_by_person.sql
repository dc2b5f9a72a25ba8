-- One approval per person, not per account: `person` is who stands behind
-- the approver's identity (`person:<name>` for an identity `[people]` maps,
-- else `<platform>:<user id>`), and the unique index makes a second
-- approval by the same person a no-op on any replica, whichever account it
-- comes from. Rows from before carry their approver as the person.
ALTER TABLE approvals ADD COLUMN person TEXT;
UPDATE approvals SET person = approver WHERE person IS NULL;
CREATE UNIQUE INDEX IF NOT EXISTS approvals_one_per_person ON approvals (plan_id, person);
