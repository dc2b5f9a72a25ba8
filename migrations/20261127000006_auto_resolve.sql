-- A recovered incident resolves itself at this time unless kept open.
ALTER TABLE incidents ADD COLUMN resolve_at_ms BIGINT;
