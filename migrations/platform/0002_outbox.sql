-- The transactional outbox (BLUEPRINT §4, docs/patterns.md "Transactional
-- outbox"). A module inserts its event here on the transaction of the change
-- (bh_outbox_publish); the relay moves committed rows to the job queues and
-- marks them sent; sent rows are pruned after BULKHEAD_OUTBOX_RETENTION_S.
-- Module roles get INSERT on this table and nothing else (granted by the
-- migration runner after the platform migrations).

CREATE TABLE platform.outbox (
    id           uuid        PRIMARY KEY,
    -- Outbox order. An identity column: a module role inserting a row needs
    -- no privilege on its sequence (unlike serial).
    seq          bigint      GENERATED ALWAYS AS IDENTITY UNIQUE,
    type         text        NOT NULL CHECK (length(type) BETWEEN 1 AND 100),
    -- Events of one aggregate are relayed in seq order.
    aggregate_id text        NOT NULL CHECK (length(aggregate_id) BETWEEN 1 AND 200),
    occurred_at  timestamptz NOT NULL,
    -- When the row was written (close to its commit): relay lag and backlog age.
    recorded_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    -- The envelope {id, type, occurred_at, org_id, actor_id, data, trace}.
    payload      jsonb       NOT NULL,
    sent_at      timestamptz
);

COMMENT ON TABLE platform.outbox IS
  'Domain events written on the transaction of their change; relayed to the '
  'Redis job queues at least once, in order per aggregate. Modules may only INSERT.';

-- The relay claims the oldest unsent rows, and checks for older unsent rows
-- of the same aggregate; both stay small because sent rows drop out.
CREATE INDEX outbox_unsent ON platform.outbox (seq) WHERE sent_at IS NULL;
CREATE INDEX outbox_unsent_aggregate ON platform.outbox (aggregate_id, seq)
    WHERE sent_at IS NULL;
-- Pruning finds sent rows past the retention.
CREATE INDEX outbox_sent ON platform.outbox (sent_at) WHERE sent_at IS NOT NULL;

-- Wakes the relays (LISTEN bh_outbox) when a transaction that wrote events
-- commits: notifications are delivered at commit, and one per statement is
-- enough (Postgres folds identical notifications of a transaction into one).
CREATE FUNCTION platform.outbox_notify() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('bh_outbox', '');
    RETURN NULL;
END
$$;

CREATE TRIGGER outbox_notify AFTER INSERT ON platform.outbox
    FOR EACH STATEMENT EXECUTE FUNCTION platform.outbox_notify();
