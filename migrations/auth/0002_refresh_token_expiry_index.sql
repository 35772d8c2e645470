-- The periodic purge of long-expired refresh tokens looks them up by expiry.
create index refresh_tokens_expires_idx on auth.refresh_tokens (expires_at);
