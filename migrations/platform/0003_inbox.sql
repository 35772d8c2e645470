-- The inbox of consumers that run as the platform (BLUEPRINT §4,
-- docs/patterns.md "Idempotent consumers"): bh_inbox_seen() records here
-- when the handler's transaction runs as "platform", exactly as each module
-- records in its own <module>.inbox.

CREATE TABLE platform.inbox (
    consumer text        NOT NULL,
    event_id uuid        NOT NULL,
    seen_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);

COMMENT ON TABLE platform.inbox IS
  'Events already handled by platform-run consumers: a redelivered event is skipped.';
