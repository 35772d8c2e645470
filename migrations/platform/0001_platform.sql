-- The platform's first migration. The schema `platform` and the role
-- bh_platform come from scripts/db-setup; the migrations ledger
-- (platform.schema_migrations) is created by the migration runner itself
-- before any file runs, since it has to record this one. Here it is only
-- documented, for anyone who opens the database with psql.
-- Migrations run in a transaction the runner opens: no BEGIN/COMMIT here.

COMMENT ON TABLE platform.schema_migrations IS
  'Applied migrations, one row per file (module, version), with the SHA-256 of '
  'the file as applied: an edited applied migration is refused. Written only by '
  'bulkhead migrate.';
