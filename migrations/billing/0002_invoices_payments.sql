-- Payment methods, invoices (numbered per organization without gaps, totals
-- that must equal their lines, immutable once finalized), payment attempts,
-- idempotency keys, usage counters fed by events, the event inbox and the
-- webhook deduplication ledger. Runs as bh_billing; schema billing only.

-- The one stored card per organization. provider_ref is the provider's own
-- handle, opaque to the domain: only the provider adapter interprets it.
CREATE TABLE billing.payment_methods (
    org_id       uuid PRIMARY KEY,
    provider     text NOT NULL,
    provider_ref text NOT NULL,
    brand        text NOT NULL,
    last4        text NOT NULL CHECK (last4 ~ '^[0-9]{4}$'),
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);

-- The invoice number allocator: one row per organization, locked by the
-- UPDATE that takes the next number, so concurrent invoices queue on it and a
-- rolled-back invoice gives its number back (no gaps, no duplicates).
CREATE TABLE billing.invoice_counters (
    org_id      uuid PRIMARY KEY,
    last_number bigint NOT NULL CHECK (last_number > 0)
);

CREATE TABLE billing.invoices (
    id              uuid PRIMARY KEY,
    org_id          uuid NOT NULL,
    subscription_id uuid NOT NULL REFERENCES billing.subscriptions (id),
    number          bigint NOT NULL CHECK (number > 0),
    -- draft → open (finalized) → paid | void. paid and void are final.
    status          text NOT NULL DEFAULT 'draft'
                    CHECK (status IN ('draft', 'open', 'paid', 'void')),
    reason          text NOT NULL CHECK (reason IN ('plan_change', 'renewal')),
    plan_id         text NOT NULL REFERENCES billing.plans (id),
    from_plan_id    text REFERENCES billing.plans (id),
    currency        text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    total_cents     bigint NOT NULL CHECK (total_cents >= 0),
    period_start    timestamptz NOT NULL,
    period_end      timestamptz NOT NULL,
    attempt_count   integer NOT NULL DEFAULT 0 CHECK (attempt_count >= 0),
    created_at      timestamptz NOT NULL,
    finalized_at    timestamptz,
    paid_at         timestamptz,
    voided_at       timestamptz,
    UNIQUE (org_id, number),
    CHECK ((status = 'draft') = (finalized_at IS NULL)),
    CHECK ((status = 'paid') = (paid_at IS NOT NULL)),
    CHECK ((status = 'void') = (voided_at IS NOT NULL)),
    CHECK (period_end > period_start)
);

CREATE INDEX invoices_subscription_open ON billing.invoices (subscription_id)
    WHERE status = 'open';

CREATE TABLE billing.invoice_lines (
    invoice_id   uuid NOT NULL REFERENCES billing.invoices (id),
    position     integer NOT NULL CHECK (position >= 1),
    kind         text NOT NULL
                 CHECK (kind IN ('subscription', 'proration_charge', 'proration_credit')),
    description  text NOT NULL CHECK (length(description) BETWEEN 1 AND 200),
    plan_id      text NOT NULL REFERENCES billing.plans (id),
    amount_cents bigint NOT NULL,
    period_start timestamptz NOT NULL,
    period_end   timestamptz NOT NULL,
    PRIMARY KEY (invoice_id, position),
    -- A credit takes money off; everything else adds.
    CHECK (CASE kind WHEN 'proration_credit' THEN amount_cents < 0 ELSE amount_cents >= 0 END)
);

-- An invoice's total is the sum of its lines, checked when the transaction
-- commits (deferred), so the lines and the total may be written in any order.
CREATE FUNCTION billing.check_invoice_total() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    inv_id    uuid;
    inv_total bigint;
    lines_sum bigint;
BEGIN
    IF TG_TABLE_NAME = 'invoices' THEN
        inv_id := NEW.id;
    ELSIF TG_OP = 'DELETE' THEN
        inv_id := OLD.invoice_id;
    ELSE
        inv_id := NEW.invoice_id;
    END IF;
    SELECT i.total_cents INTO inv_total FROM billing.invoices i WHERE i.id = inv_id;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    SELECT coalesce(sum(l.amount_cents), 0) INTO lines_sum
      FROM billing.invoice_lines l WHERE l.invoice_id = inv_id;
    IF inv_total <> lines_sum THEN
        RAISE EXCEPTION 'invoice % has total % but its lines sum to %', inv_id, inv_total, lines_sum
            USING ERRCODE = 'check_violation', CONSTRAINT = 'invoice_total_is_sum_of_lines';
    END IF;
    RETURN NULL;
END
$$;

CREATE CONSTRAINT TRIGGER invoice_total_is_sum_of_lines
    AFTER INSERT OR UPDATE ON billing.invoices
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION billing.check_invoice_total();

CREATE CONSTRAINT TRIGGER invoice_lines_sum_to_total
    AFTER INSERT OR UPDATE OR DELETE ON billing.invoice_lines
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION billing.check_invoice_total();

-- A finalized invoice is a legal record: its amounts, number and lines never
-- change, it is never deleted, and paid or void are final states. Only its
-- status (forward), payment and attempt bookkeeping may move.
CREATE FUNCTION billing.guard_finalized_invoice() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF OLD.status <> 'draft' THEN
            RAISE EXCEPTION 'invoice % is finalized and cannot be deleted', OLD.id
                USING ERRCODE = 'check_violation', CONSTRAINT = 'invoice_immutable';
        END IF;
        RETURN OLD;
    END IF;
    IF OLD.status IN ('paid', 'void') AND NEW.status <> OLD.status THEN
        RAISE EXCEPTION 'invoice % is % and cannot become %', OLD.id, OLD.status, NEW.status
            USING ERRCODE = 'check_violation', CONSTRAINT = 'invoice_status_forward_only';
    END IF;
    IF OLD.status <> 'draft' AND NEW.status = 'draft' THEN
        RAISE EXCEPTION 'invoice % cannot go back to draft', OLD.id
            USING ERRCODE = 'check_violation', CONSTRAINT = 'invoice_status_forward_only';
    END IF;
    IF OLD.status <> 'draft' AND (
           NEW.total_cents <> OLD.total_cents OR NEW.currency <> OLD.currency
        OR NEW.number <> OLD.number OR NEW.org_id <> OLD.org_id
        OR NEW.subscription_id <> OLD.subscription_id OR NEW.plan_id <> OLD.plan_id
        OR NEW.from_plan_id IS DISTINCT FROM OLD.from_plan_id OR NEW.reason <> OLD.reason
        OR NEW.period_start <> OLD.period_start OR NEW.period_end <> OLD.period_end
        OR NEW.created_at <> OLD.created_at OR NEW.finalized_at <> OLD.finalized_at) THEN
        RAISE EXCEPTION 'invoice % is finalized: its contents cannot change', OLD.id
            USING ERRCODE = 'check_violation', CONSTRAINT = 'invoice_immutable';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER invoice_immutable
    BEFORE UPDATE OR DELETE ON billing.invoices
    FOR EACH ROW EXECUTE FUNCTION billing.guard_finalized_invoice();

CREATE FUNCTION billing.guard_finalized_invoice_lines() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    inv_id uuid;
BEGIN
    inv_id := CASE WHEN TG_OP = 'DELETE' THEN OLD.invoice_id ELSE NEW.invoice_id END;
    IF EXISTS (SELECT 1 FROM billing.invoices i WHERE i.id = inv_id AND i.status <> 'draft')
       OR (TG_OP = 'UPDATE' AND EXISTS (SELECT 1 FROM billing.invoices i
                                         WHERE i.id = OLD.invoice_id AND i.status <> 'draft')) THEN
        RAISE EXCEPTION 'invoice % is finalized: its lines cannot change', inv_id
            USING ERRCODE = 'check_violation', CONSTRAINT = 'invoice_immutable';
    END IF;
    RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
END
$$;

CREATE TRIGGER invoice_lines_immutable
    BEFORE INSERT OR UPDATE OR DELETE ON billing.invoice_lines
    FOR EACH ROW EXECUTE FUNCTION billing.guard_finalized_invoice_lines();

-- Every charge of an invoice, whatever came of it. At most one charge per
-- organization is in flight: a second concurrent plan change gets a conflict
-- instead of a second charge.
CREATE TABLE billing.payment_attempts (
    id            uuid PRIMARY KEY,
    invoice_id    uuid NOT NULL REFERENCES billing.invoices (id),
    org_id        uuid NOT NULL,
    amount_cents  bigint NOT NULL CHECK (amount_cents > 0),
    source        text NOT NULL CHECK (source IN ('charge', 'webhook')),
    outcome       text NOT NULL CHECK (outcome IN ('pending', 'succeeded', 'declined', 'error')),
    failure_code  text,
    provider_ref  text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    finished_at   timestamptz
);

CREATE UNIQUE INDEX payment_attempts_one_pending_per_org ON billing.payment_attempts (org_id)
    WHERE outcome = 'pending';
CREATE INDEX payment_attempts_invoice ON billing.payment_attempts (invoice_id);

-- Idempotency keys (docs/patterns.md, "Idempotency keys"): the first request
-- with a key claims the row in its own short transaction; its response is
-- stored when it is done, and replayed for the same key and body for 24 h.
CREATE TABLE billing.idempotency_keys (
    org_id        uuid NOT NULL,
    key           text NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    request_hash  text NOT NULL,          -- SHA-256 of method, route and body
    status        integer,                -- NULL while the first request is in flight
    response_type text,
    response_body text,
    created_at    timestamptz NOT NULL,   -- billing's clock: expiry is 24 h after this
    locked_until  timestamptz NOT NULL,   -- an in-flight claim older than this was abandoned
    completed_at  timestamptz,
    PRIMARY KEY (org_id, key)
);

CREATE INDEX idempotency_keys_created ON billing.idempotency_keys (created_at);

-- Usage, counted from task.* and member.* events (eventually consistent; the
-- limit checks themselves are exact: the caller counts on its transaction).
CREATE TABLE billing.usage (
    org_id     uuid PRIMARY KEY,
    tasks      bigint NOT NULL DEFAULT 0 CHECK (tasks >= 0),
    members    bigint NOT NULL DEFAULT 0 CHECK (members >= 0),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE billing.inbox (
    consumer text NOT NULL,
    event_id uuid NOT NULL,
    seen_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);

-- Webhook deliveries already handled, by the provider's event id: a
-- redelivered event is acknowledged without a second effect.
CREATE TABLE billing.webhook_events (
    provider    text NOT NULL,
    event_id    text NOT NULL CHECK (length(event_id) BETWEEN 1 AND 255),
    type        text NOT NULL,
    occurred_at timestamptz NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (provider, event_id)
);
