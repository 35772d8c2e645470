-- A charge whose answer never came (the provider did not answer within the
-- time budget, or the process stopped during the call) is 'unknown': money
-- may have moved. Like a pending one it blocks the organization's other
-- charges until it is settled, exactly once, by whoever learns the outcome
-- first: the reconciler (asking the provider by the attempt's id, which is
-- the idempotency key every charge carries) or the provider's webhook.
-- docs/adr/0004-payment-timeout-is-unknown.md.
ALTER TABLE billing.payment_attempts DROP CONSTRAINT payment_attempts_outcome_check;
ALTER TABLE billing.payment_attempts ADD CONSTRAINT payment_attempts_outcome_check
    CHECK (outcome IN ('pending', 'unknown', 'succeeded', 'declined', 'error'));

-- Who settled it: the charging request itself, the reconciler, or a webhook.
ALTER TABLE billing.payment_attempts ADD COLUMN settled_by text
    CHECK (settled_by IN ('charge', 'reconciler', 'webhook'));

DROP INDEX billing.payment_attempts_one_pending_per_org;
CREATE UNIQUE INDEX payment_attempts_one_in_flight_per_org ON billing.payment_attempts (org_id)
    WHERE outcome IN ('pending', 'unknown');
