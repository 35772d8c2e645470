#!/usr/bin/env bash
# Readiness tells which dependency is down, and recovers by itself: stop
# Redis, then Postgres, and watch /health/ready say so (503 with a body
# naming the dependency) while /health/live stays 200 and fast.
source "$(dirname "$0")/../lib/common.sh"
: "${BH_DEVENV_DIR:?}"
bh_start serve --no-workers
devenv=$BH_SOURCE_DIR/scripts/devenv
restore() { "$devenv" start-redis "$BH_DEVENV_DIR" >/dev/null 2>&1 || true
            "$devenv" start-pg "$BH_DEVENV_DIR" >/dev/null 2>&1 || true; }
bh_on_exit restore

api GET /health/ready; expect 200

"$devenv" stop-redis "$BH_DEVENV_DIR" >/dev/null
api GET /health/ready
expect 503
[ "$(jget .status)" = degraded ] && [ "$(jget .checks.redis.tasks)" = down ] &&
    [ "$(jget .checks.postgres.tasks)" = up ] || fail "ready with Redis down: $BODY"
t=$(curl -s -o /dev/null -w '%{time_total}' "$BH_URL/health/live")
awk -v t="$t" 'BEGIN { exit !(t < 0.5) }' || fail "/health/live slow with Redis down: ${t}s"
pass "Redis down: /health/ready is 503 and names redis; /health/live answers in ${t}s"

"$devenv" start-redis "$BH_DEVENV_DIR" >/dev/null
for _ in $(seq 1 50); do api GET /health/ready; [ "$STATUS" = 200 ] && break; sleep 0.2; done
expect 200
pass "Redis back: /health/ready is 200 again without a restart"

"$devenv" stop-pg "$BH_DEVENV_DIR" >/dev/null
start=$(date +%s%N)
api GET /health/ready
ms=$(( ($(date +%s%N) - start) / 1000000 ))
expect 503
[ "$(jget .checks.postgres.auth)" = down ] || fail "ready with Postgres down: $BODY"
pass "Postgres down: /health/ready is 503 and names postgres (${ms} ms)"

"$devenv" start-pg "$BH_DEVENV_DIR" >/dev/null
for _ in $(seq 1 50); do api GET /health/ready; [ "$STATUS" = 200 ] && break; sleep 0.2; done
expect 200
pass "Postgres back: /health/ready is 200 again without a restart"
