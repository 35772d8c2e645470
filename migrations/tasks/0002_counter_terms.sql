-- A counter counts an organization's tasks only while its plan has a task
-- limit; creates under a plan without one do not touch it (no per-org lock,
-- no statement of its own). So the counter records the terms it counts
-- under (billing's text for the limit's source rows, billing_limits()): a
-- counted create whose terms differ counts the org's tasks again instead of
-- trusting a count that a period without limit may have left behind.
-- Rows from before this column get '' and are counted again once.
ALTER TABLE tasks.org_counters ADD COLUMN terms text NOT NULL DEFAULT '';
