#!/usr/bin/env bash
# Fence 3, in Postgres: each module role may use its own schema and no
# other; the application's login role (NOINHERIT) can read nothing by itself.
# Checked for every pair of modules, against the real migrated database.
set -euo pipefail
: "${DATABASE_URL:?}" "${BH_BUILD_DIR:?}"
source "$BH_BUILD_DIR/fence/link-context.sh"
read -r -a modules <<<"${BH_MODULES//;/ }"
fail() { echo "FAIL: $*" >&2; exit 1; }
psql_as() { # role, sql
    psql "$DATABASE_URL" -v ON_ERROR_STOP=1 -qAtX -c "SET ROLE $1" -c "$2" 2>&1
}
checks=0
for m in "${modules[@]}"; do
    psql_as "bh_$m" "CREATE TABLE IF NOT EXISTS $m.fence_probe (x int)" >/dev/null ||
        fail "bh_$m cannot create a table in its own schema"
done
for m in "${modules[@]}"; do
    for other in "${modules[@]}"; do
        out=$(psql_as "bh_$m" "SELECT count(*) FROM $other.fence_probe") && ok=yes || ok=no
        if [ "$m" = "$other" ]; then
            [ $ok = yes ] || fail "bh_$m cannot read its own schema: $out"
        else
            [ $ok = no ] || fail "bh_$m can read $other.fence_probe"
            grep -q "permission denied" <<<"$out" || fail "unexpected error: $out"
        fi
        checks=$((checks + 1))
    done
done
echo "ok - $checks role/schema pairs: each module role reads only its own schema"

if psql_as "bh_tasks" "SELECT * FROM auth.users LIMIT 1" >/tmp/db_fence.$$ 2>&1; then
    rm -f /tmp/db_fence.$$; fail "bh_tasks can read auth.users"
fi
grep -q "permission denied for schema auth" /tmp/db_fence.$$ || { cat /tmp/db_fence.$$; rm -f /tmp/db_fence.$$; fail "unexpected error"; }
rm -f /tmp/db_fence.$$
echo "ok - as bh_tasks, SELECT * FROM auth.users: permission denied"

out=$(psql "$DATABASE_URL" -qAtX -c "SELECT count(*) FROM auth.fence_probe" 2>&1) &&
    fail "the login role reads a module schema without SET ROLE"
grep -q "permission denied" <<<"$out" || fail "unexpected: $out"
echo "ok - the login role (NOINHERIT) reads nothing without SET ROLE"

out=$(psql_as "bh_tasks" "CREATE TABLE auth.planted (x int)" 2>&1) && fail "bh_tasks created a table in auth"
echo "ok - bh_tasks cannot create tables in another module's schema"
for m in "${modules[@]}"; do psql_as "bh_$m" "DROP TABLE IF EXISTS $m.fence_probe" >/dev/null; done
