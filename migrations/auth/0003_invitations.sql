-- Invitations: adding someone to an organization asks them first. An admin
-- invites a registered user; the membership (and member.added) exists only
-- once the invitee accepts; an admin may revoke a pending one. One pending invitation per org and user; a
-- pending one past expires_at counts for nothing and may be renewed.
create table auth.invitations (
    id         uuid primary key,
    org_id     uuid not null references auth.orgs (id) on delete cascade,
    user_id    uuid not null references auth.users (id) on delete cascade,
    role       text not null check (role in ('owner', 'admin', 'member')),
    invited_by uuid references auth.users (id) on delete set null,
    status     text not null default 'pending'
               check (status in ('pending', 'accepted', 'declined', 'revoked')),
    created_at timestamptz not null default now(),
    expires_at timestamptz not null,
    decided_at timestamptz
);
create unique index invitations_pending_key on auth.invitations (org_id, user_id)
    where status = 'pending';
create index invitations_pending_by_user on auth.invitations (user_id, created_at)
    where status = 'pending';
