-- A NOTIFY at commit takes a database-wide lock held through the commit's
-- WAL flush, so notifying commits run one at a time. Only a relay asleep on
-- LISTEN needs the notification: a busy relay looks again by itself after
-- every batch. A relay going to sleep holds advisory lock 7090880081620430712
-- (session, exclusive; relay.c), so a transaction that writes events
-- notifies only when it cannot take that lock shared. While it holds it
-- shared, no relay can go to sleep without seeing its events first: the
-- relay takes the lock, then looks once more, then sleeps.
CREATE OR REPLACE FUNCTION platform.outbox_notify() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    IF NOT pg_try_advisory_xact_lock_shared(7090880081620430712) THEN
        PERFORM pg_notify('bh_outbox', '');
    END IF;
    RETURN NULL;
END
$$;
