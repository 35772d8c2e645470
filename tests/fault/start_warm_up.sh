#!/usr/bin/env bash
# Start-up warm-up: the server opens every pool's first Postgres connection
# and every Redis user's first connection at start, all at once, before any
# readiness probe asks. A module whose Postgres role or Redis user cannot
# log in does not keep the others from opening, and readiness names exactly
# what failed. A server started with Postgres and Redis down still starts,
# and becomes ready once they are back, without a restart.
source "$(dirname "$0")/../lib/common.sh"
source "$BH_SOURCE_DIR/tests/lib/pg.sh"
: "${BH_DEVENV_DIR:?}"
devenv=$BH_SOURCE_DIR/scripts/devenv
rcli() { "$devenv" redis-cli "$BH_DEVENV_DIR" "$@"; }
POOLS="platform auth billing tasks notifications"

# wait_warm_up: the server's "warm-up: ..." log line, once it is written.
wait_warm_up() {
    local line
    for _ in $(seq 1 150); do
        line=$(grep -o '"msg":"warm-up: [^"]*"' "$BH_LOG" | head -1 || true)
        [ -n "$line" ] && { echo "${line#\"msg\":}"; return 0; }
        kill -0 "$BH_PID" 2>/dev/null || fail "server exited: $(tail -5 "$BH_LOG")"
        sleep 0.1
    done
    fail "no warm-up line in the log: $(tail -5 "$BH_LOG")"
}

# pool_open MODULE: open connections of MODULE's Postgres pool (/metrics).
pool_open() {
    ops_curl -fsS "$BH_URL/metrics" |
        sed -n "s/^bulkhead_db_pool_connections{module=\"$1\",state=\"open\"} //p"
}

wait_ready() {
    for _ in $(seq 1 75); do
        api GET /health/ready
        [ "$STATUS" = 200 ] && [ "$(jget .status)" = ready ] && return 0
        sleep 0.2
    done
    fail "not ready again: $STATUS $BODY"
}

# 1. Every pool's first connection is open before the first probe.
bh_start serve --no-workers
line=$(wait_warm_up)
[[ "$line" == *"warm-up: 10 of 10 connections open"* ]] || fail "warm-up: $line"
for m in $POOLS; do
    [ "$(pool_open "$m")" -ge 1 ] || fail "pool $m has no open connection after the warm-up"
done
api GET /health/ready
expect 200
[ "$(jget .status)" = ready ] || fail "not ready after the warm-up: $BODY"
pass "warm-up opened every pool and Redis user before any probe: $line"
bh_stop

# 1b. With workers: they start after the warm-up, so they reuse its
# connections rather than open more while the first ones open.
bh_start serve
line=$(wait_warm_up)
for _ in $(seq 1 100); do grep -q '"msg":"relay: started' "$BH_LOG" && break; sleep 0.1; done
warm_at=$(grep -n '"msg":"warm-up: ' "$BH_LOG" | head -1 | cut -d: -f1)
jobs_at=$(grep -n '"msg":"jobs: [0-9]* worker thread' "$BH_LOG" | head -1 | cut -d: -f1)
relay_at=$(grep -n '"msg":"relay: started' "$BH_LOG" | head -1 | cut -d: -f1)
[ -n "$jobs_at" ] && [ -n "$relay_at" ] || fail "workers did not start: $(tail -5 "$BH_LOG")"
[ "$warm_at" -lt "$jobs_at" ] && [ "$warm_at" -lt "$relay_at" ] ||
    fail "workers started before the warm-up was over (log lines $warm_at, $jobs_at, $relay_at)"
pass "workers and relay start after the warm-up"
bh_stop

# 2. One module's Postgres role and another's Redis user cannot log in: the
# others still open, and readiness names exactly those two.
logins_refused=0
restore_logins() {
    [ "$logins_refused" = 1 ] || return 0
    pg 'GRANT bh_billing TO bulkhead' >/dev/null 2>&1 || true
    rcli ACL SETUSER notifications on >/dev/null 2>&1 || true
    logins_refused=0
}
bh_on_exit restore_logins
logins_refused=1
pg 'REVOKE bh_billing FROM bulkhead'
[ "$(rcli ACL SETUSER notifications off)" = OK ] || fail "cannot disable the Redis user"
bh_start serve --no-workers
line=$(wait_warm_up)
[[ "$line" == *"warm-up: 8 of 10 connections open"* && "$line" == *postgres.billing* &&
    "$line" == *redis.notifications* ]] || fail "warm-up with two logins refused: $line"
[ "$(pool_open billing)" = 0 ] || fail "billing's pool opened without its role"
for m in platform auth tasks notifications; do
    [ "$(pool_open "$m")" -ge 1 ] || fail "pool $m did not open beside billing's failure"
done
api GET /health/ready
expect 503
[ "$(jget .status)" = unavailable ] &&
    [ "$(jget '.failed | sort | join(",")')" = "postgres.billing,redis.notifications" ] ||
    fail "readiness with two logins refused: $BODY"
pass "one role and one Redis user refused: the other eight open; readiness fails exactly those"
restore_logins
wait_ready
pass "logins allowed again: ready without a restart"
bh_stop

# 3. Started while Postgres accepts connections but never answers (its
# postmaster stopped): the warm-up waits out its connect budget, the first
# probe does not wait for it past its own budget (curl's limit is only a
# guard against a hang: the connect budget here is 10 s).
pm_pid=$(head -1 "$BH_DEVENV_DIR/pg/data/postmaster.pid")
bh_on_exit "kill -CONT $pm_pid 2>/dev/null"
kill -STOP "$pm_pid"
# (The URL may carry parameters already: scripts/test-tsan adds its own.)
case $DATABASE_URL in
  *connect_timeout=*) frozen_url=$DATABASE_URL ;;
  *\?*) frozen_url="$DATABASE_URL&connect_timeout=10" ;;
  *) frozen_url="$DATABASE_URL?connect_timeout=10" ;;
esac
DATABASE_URL=$frozen_url bh_start serve --no-workers
code=$(curl -s -o "$BH_TMP/ready" -w '%{http_code}' --max-time 4 "$BH_URL/health/ready" || true)
[ "$code" = 503 ] && [ "$(jq -r .checks.postgres.auth <"$BH_TMP/ready")" = down ] ||
    fail "readiness during a frozen start: $code $(cat "$BH_TMP/ready" 2>/dev/null)"
pass "Postgres frozen at start: the first probe answers 503 within its budget"
kill -CONT "$pm_pid"
wait_ready
pass "Postgres answering again: ready without a restart"
bh_stop

# 4. Started with Postgres and Redis both down.
restore_servers() {
    "$devenv" start-redis "$BH_DEVENV_DIR" >/dev/null 2>&1 || true
    "$devenv" start-pg "$BH_DEVENV_DIR" >/dev/null 2>&1 || true
}
bh_on_exit restore_servers
"$devenv" stop-pg "$BH_DEVENV_DIR" >/dev/null
"$devenv" stop-redis "$BH_DEVENV_DIR" >/dev/null
bh_start serve --no-workers
line=$(wait_warm_up)
[[ "$line" == *"warm-up: 0 of 10 connections open"* ]] || fail "warm-up with both down: $line"
api GET /health/live
expect 200
api GET /health/ready
expect 503
[ "$(jget .status)" = unavailable ] && [ "$(jget .checks.postgres.auth)" = down ] &&
    [ "$(jget .checks.redis.auth)" = down ] || fail "readiness with both down: $BODY"
pass "started with Postgres and Redis down: live 200, ready 503 naming both"
restore_servers
wait_ready
pass "Postgres and Redis back: ready without a restart"
bh_stop
