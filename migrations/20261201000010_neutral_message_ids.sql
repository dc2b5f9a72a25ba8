-- Chat message handles are platform-neutral: a Slack `ts`, a Discord
-- message id or a web-chat id. The columns say so.
ALTER TABLE incidents RENAME COLUMN root_ts TO root_message;
ALTER TABLE incident_events RENAME COLUMN message_ts TO message_id;
ALTER TABLE plans RENAME COLUMN message_ts TO message_id;
