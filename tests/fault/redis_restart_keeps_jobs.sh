#!/usr/bin/env bash
# Redis runs with AOF: what the queue writes through its Lua scripts (jobs,
# routes, leases) survives a restart, and a client that has not
# authenticated can do nothing before or after it.
source "$(dirname "$0")/../lib/common.sh"
: "${BH_DEVENV_DIR:?}" "${REDIS_PORT:?}"
devenv=$BH_SOURCE_DIR/scripts/devenv
bh_on_exit '"$devenv" start-redis "$BH_DEVENV_DIR" >/dev/null 2>&1'
as() { local u=$1 p=$2; shift 2; redis-cli -h 127.0.0.1 -p "$REDIS_PORT" --no-auth-warning --user "$u" --pass "$p" "$@"; }
key="bh:restart-probe:$$"

as platform "$BULKHEAD_REDIS_PASSWORD" EVAL \
    "redis.call('RPUSH', KEYS[1], 'job-1'); redis.call('HSET', KEYS[2], 'state', 'leased'); return 1" \
    2 "$key:list" "$key:hash" >/dev/null
"$devenv" stop-redis "$BH_DEVENV_DIR" >/dev/null
"$devenv" start-redis "$BH_DEVENV_DIR" >/dev/null
[ "$(as admin "$BH_REDIS_ADMIN_PASSWORD" LRANGE "$key:list" 0 -1)" = job-1 ] ||
    fail "a list written by a Lua script was lost in the restart"
[ "$(as admin "$BH_REDIS_ADMIN_PASSWORD" HGET "$key:hash" state)" = leased ] ||
    fail "a hash written by a Lua script was lost in the restart"
pass "writes made by Lua scripts survive a Redis restart (AOF replay)"

out=$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" GET "$key:list" 2>&1 || true)
grep -q NOAUTH <<<"$out" || fail "an unauthenticated client read a key: $out"
pass "an unauthenticated client is refused (NOAUTH)"
as admin "$BH_REDIS_ADMIN_PASSWORD" DEL "$key:list" "$key:hash" >/dev/null
