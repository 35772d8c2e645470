-- Billing's catalogue of plans and the one subscription every organization
-- has. Money is integer cents, never floating point. Runs as bh_billing,
-- which owns schema billing; nothing here refers to another module's schema
-- (org_id is a plain uuid: no foreign key crosses a module boundary).

CREATE TABLE billing.plans (
    id            text PRIMARY KEY CHECK (id ~ '^[a-z][a-z0-9_]{0,31}$'),
    name          text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    -- Orders plans from cheapest to richest: a move to a higher rank is an
    -- upgrade (applies now, prorated), to a lower one a downgrade (applies
    -- at the period end).
    rank          integer NOT NULL UNIQUE,
    price_cents   bigint NOT NULL CHECK (price_cents >= 0),
    currency      text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    interval      text NOT NULL CHECK (interval IN ('month', 'year')),
    trial_days    integer NOT NULL DEFAULT 0 CHECK (trial_days BETWEEN 0 AND 365),
    -- NULL means unlimited.
    limit_tasks   bigint CHECK (limit_tasks >= 0),
    limit_members bigint CHECK (limit_members >= 1)
);

COMMENT ON TABLE billing.plans IS
  'The plan catalogue (GET /v1/plans). limit_* NULL = unlimited. Prices in integer cents.';

INSERT INTO billing.plans (id, name, rank, price_cents, currency, interval, trial_days,
                           limit_tasks, limit_members)
VALUES ('free',     'Free',     0,    0, 'USD', 'month',  0,   50,    3),
       ('pro',      'Pro',      1, 1200, 'USD', 'month', 14, 5000,   25),
       ('business', 'Business', 2, 4900, 'USD', 'month', 14, NULL, NULL);

CREATE TABLE billing.subscriptions (
    id                   uuid PRIMARY KEY,
    org_id               uuid NOT NULL,
    plan_id              text NOT NULL REFERENCES billing.plans (id),
    status               text NOT NULL
                         CHECK (status IN ('trialing', 'active', 'past_due', 'canceled')),
    current_period_start timestamptz NOT NULL,
    current_period_end   timestamptz NOT NULL,
    cancel_at_period_end boolean NOT NULL DEFAULT false,
    -- A downgrade waits here until the period ends.
    pending_plan_id      text REFERENCES billing.plans (id),
    -- Dunning: how many renewal charges failed in a row, and when the next
    -- retry is due (NULL when nothing is owed).
    dunning_attempts     integer NOT NULL DEFAULT 0 CHECK (dunning_attempts >= 0),
    next_retry_at        timestamptz,
    -- When the status last changed: webhook events older than this cannot
    -- move the subscription back (out-of-order delivery).
    status_changed_at    timestamptz NOT NULL DEFAULT now(),
    canceled_at          timestamptz,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    CHECK (current_period_end > current_period_start),
    CHECK (pending_plan_id IS NULL OR pending_plan_id <> plan_id)
);

-- Exactly one subscription per organization: a second one is a conflict.
CREATE UNIQUE INDEX subscriptions_one_per_org ON billing.subscriptions (org_id);
-- The renewal sweep looks for subscriptions whose period (or retry) is due.
CREATE INDEX subscriptions_due ON billing.subscriptions (current_period_end)
    WHERE status <> 'canceled';
CREATE INDEX subscriptions_retry_due ON billing.subscriptions (next_retry_at)
    WHERE next_retry_at IS NOT NULL;

COMMENT ON TABLE billing.subscriptions IS
  'One row per organization. Entitlements: the plan''s limits while trialing, active or '
  'past_due; the free plan''s once canceled.';
