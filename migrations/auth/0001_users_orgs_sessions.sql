-- The auth schema: users, organizations and their members, and login
-- sessions with their rotating refresh tokens (stored only as SHA-256).

create table auth.users (
    id            uuid primary key,
    email         text not null check (email = lower(email) and length(email) <= 254),
    name          text not null check (length(name) between 1 and 100),
    password_hash text not null,            -- Argon2id, libsodium's encoded form
    created_at    timestamptz not null default now(),
    updated_at    timestamptz not null default now()
);
create unique index users_email_key on auth.users (email);

create table auth.orgs (
    id         uuid primary key,
    name       text not null check (length(name) between 1 and 100),
    created_by uuid not null references auth.users (id),
    created_at timestamptz not null default now()
);

create table auth.members (
    org_id     uuid not null references auth.orgs (id) on delete cascade,
    user_id    uuid not null references auth.users (id) on delete cascade,
    role       text not null check (role in ('owner', 'admin', 'member')),
    created_at timestamptz not null default now(),
    primary key (org_id, user_id)
);
create index members_user_idx on auth.members (user_id, org_id);

-- One session per login: the family of refresh tokens that rotate from it.
-- revoked_at ends it; redis_synced tells whether its access tokens are
-- already on the Redis denylist (the reconciler pushes the ones that are not).
create table auth.sessions (
    id             uuid primary key,
    user_id        uuid not null references auth.users (id) on delete cascade,
    created_at     timestamptz not null default now(),
    client_addr    text,
    user_agent     text,
    revoked_at     timestamptz,
    revoked_reason text check (revoked_reason in ('logout', 'logout_all', 'reuse', 'password')),
    redis_synced   boolean not null default true
);
create index sessions_live_by_user on auth.sessions (user_id) where revoked_at is null;
create index sessions_unsynced on auth.sessions (revoked_at) where not redis_synced;
create index sessions_revoked_at on auth.sessions (revoked_at) where revoked_at is not null;

create table auth.refresh_tokens (
    token_hash   text primary key check (length(token_hash) = 64),
    session_id   uuid not null references auth.sessions (id) on delete cascade,
    created_at   timestamptz not null default now(),
    expires_at   timestamptz not null,
    used_at      timestamptz,               -- rotated: a child exists
    child_hash   text,
    child_sealed text                       -- the child, sealed under a key only the parent opens
);
create index refresh_tokens_session_idx on auth.refresh_tokens (session_id);
