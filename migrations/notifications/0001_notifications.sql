-- The notifications schema: the in-app inbox, per-user preferences, email
-- deliveries, and the consumer inbox that makes every event handler
-- idempotent. Runs as bh_notifications, owner of schema `notifications`.
-- Users, orgs and events are plain uuids: no reference leaves the schema.

-- Times leave the database as RFC 3339 UTC text ("2026-01-01T12:00:00Z",
-- with the fraction only when there is one), whatever the session TimeZone.
CREATE FUNCTION notifications.rfc3339(ts timestamptz) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS')
        || CASE WHEN extract(microseconds FROM ts AT TIME ZONE 'UTC')::bigint % 1000000 = 0 THEN ''
                ELSE '.' || rtrim(to_char(ts AT TIME ZONE 'UTC', 'US'), '0') END
        || 'Z'
$$;

-- Events already handled, per consumer: bh_inbox_seen() inserts here on the
-- handler's transaction, so an event's effect and its "seen" mark commit
-- together and a redelivery finds the mark.
CREATE TABLE notifications.inbox (
    consumer text        NOT NULL,
    event_id uuid        NOT NULL,
    seen_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);

-- The in-app inbox. `type` is the event type that caused the notification.
CREATE TABLE notifications.notifications (
    id         uuid        PRIMARY KEY,
    user_id    uuid        NOT NULL,
    org_id     uuid,
    type       text        NOT NULL,
    title      text        NOT NULL,
    body       text        NOT NULL,
    data       jsonb       NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(data) = 'object'),
    event_id   uuid        NOT NULL,
    read_at    timestamptz,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
-- Newest first per user (the list and its cursor), and the unread subset.
CREATE INDEX notifications_user_created_idx
    ON notifications.notifications (user_id, created_at DESC, id DESC);
CREATE INDEX notifications_user_unread_idx
    ON notifications.notifications (user_id, created_at DESC, id DESC) WHERE read_at IS NULL;

-- What each user wants, per type and channel. No row: the default (on).
CREATE TABLE notifications.preferences (
    user_id    uuid        NOT NULL,
    type       text        NOT NULL,
    channel    text        NOT NULL CHECK (channel IN ('in_app', 'email')),
    enabled    boolean     NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, type, channel)
);

-- One email to send: rendered when the event is handled (so a retry sends
-- the same message), sent by the notifications.send_email job. The lease
-- (claimed_until) keeps two copies of the job from sending it twice.
CREATE TABLE notifications.deliveries (
    id              uuid        PRIMARY KEY,
    user_id         uuid        NOT NULL,
    event_id        uuid        NOT NULL,
    notification_id uuid,
    type            text        NOT NULL,
    to_address      text        NOT NULL,
    to_name         text        NOT NULL DEFAULT '',
    subject         text        NOT NULL,
    text_body       text        NOT NULL,
    html_body       text        NOT NULL,
    status          text        NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'sent', 'failed')),
    transport       text,
    attempts        integer     NOT NULL DEFAULT 0,
    last_error      text,
    claimed_until   timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    sent_at         timestamptz
);
CREATE INDEX deliveries_event_idx ON notifications.deliveries (event_id);
CREATE INDEX deliveries_unsent_idx ON notifications.deliveries (created_at)
    WHERE status <> 'sent';
