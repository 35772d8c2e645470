#!/usr/bin/env bash
# Readiness follows docs/adr/0003-readiness-policy.md and recovers by
# itself: with Redis stopped the server stays ready (200) but says
# "degraded" and names the failed checks, because reads and writes keep
# working; with Postgres stopped it is not ready (503, naming postgres).
# /health/live stays 200 and fast throughout.
source "$(dirname "$0")/../lib/common.sh"
: "${BH_DEVENV_DIR:?}"
bh_start serve --no-workers
devenv=$BH_SOURCE_DIR/scripts/devenv
restore() { "$devenv" start-redis "$BH_DEVENV_DIR" >/dev/null 2>&1 || true
            "$devenv" start-pg "$BH_DEVENV_DIR" >/dev/null 2>&1 || true; }
bh_on_exit restore

# The first probe opens every pool's connection: give a loaded machine time.
for _ in $(seq 1 50); do api GET /health/ready; [ "$STATUS" = 200 ] && break; sleep 0.2; done
expect 200

"$devenv" stop-redis "$BH_DEVENV_DIR" >/dev/null
api GET /health/ready
expect 200 "ready with Redis down"
[ "$(jget .status)" = degraded ] && [ "$(jget .checks.redis.tasks)" = down ] &&
    [ "$(jget .checks.postgres.tasks)" = up ] &&
    [ "$(jget 'any(.failed[]; . == "redis.tasks")')" = true ] &&
    [ "$(jget '[.failed[] | select(startswith("postgres"))] | length')" = 0 ] ||
    fail "ready with Redis down: $BODY"
[ -z "$(header Retry-After)" ] || fail "a ready answer with Retry-After"
t=$(curl -s -o /dev/null -w '%{time_total}' "$BH_URL/health/live")
awk -v t="$t" 'BEGIN { exit !(t < 0.5) }' || fail "/health/live slow with Redis down: ${t}s"
pass "Redis down: /health/ready is 200, status degraded, failed names redis.*; /health/live answers in ${t}s"

"$devenv" start-redis "$BH_DEVENV_DIR" >/dev/null
for _ in $(seq 1 50); do api GET /health/ready; [ "$(jget .status)" = ready ] && break; sleep 0.2; done
expect 200
[ "$(jget .status)" = ready ] && [ "$(jget '.failed | length')" = 0 ] || fail "after Redis came back: $BODY"
pass "Redis back: /health/ready says ready again without a restart"

"$devenv" stop-pg "$BH_DEVENV_DIR" >/dev/null
start=$(date +%s%N)
api GET /health/ready
ms=$(( ($(date +%s%N) - start) / 1000000 ))
expect 503
[ "$(jget .status)" = unavailable ] && [ "$(jget .checks.postgres.auth)" = down ] &&
    [ "$(jget 'any(.failed[]; . == "postgres.auth")')" = true ] ||
    fail "ready with Postgres down: $BODY"
pass "Postgres down: /health/ready is 503 and names postgres (${ms} ms)"

"$devenv" start-pg "$BH_DEVENV_DIR" >/dev/null
for _ in $(seq 1 50); do api GET /health/ready; [ "$STATUS" = 200 ] && break; sleep 0.2; done
expect 200
pass "Postgres back: /health/ready is 200 again without a restart"
