-- The watch after a change follows the metric that change should move:
-- `Throttles` after a reserved-concurrency change (every watch before
-- this), `ProvisionedConcurrencySpilloverInvocations` after provisioned
-- concurrency is raised, on the alias or version in `resource`
-- (`<function>:<qualifier>`, Lambda's `Resource` dimension).
ALTER TABLE watches ADD COLUMN metric TEXT NOT NULL DEFAULT 'Throttles';
ALTER TABLE watches ADD COLUMN resource TEXT;
