#!/usr/bin/env bash
# Postgres stopped under a running API: requests that need it answer a fast
# 503 problem with Retry-After (never a hang, a crash or a 500), a task in
# the cache is still served, liveness stays up, and everything recovers by
# itself when Postgres is back: no restart.
source "$BH_SOURCE_DIR/tests/lib/common.sh"
source "$BH_SOURCE_DIR/tests/lib/tasks.sh"
: "${BH_DEVENV_DIR:?}"
devenv=$BH_SOURCE_DIR/scripts/devenv
bh_on_exit '"$devenv" start-pg "$BH_DEVENV_DIR" >/dev/null 2>&1'
BULKHEAD_DB_POOL_WAIT_MS=500 bh_start serve --no-workers

read -r TOKEN ORG _ _ <<<"$(tasks_signup pgdown)"
T="/v1/orgs/$ORG/tasks"
api POST "$T" '{"title":"cached before the outage"}'
expect 201
TASK=$(jget .id)
api GET "$T/$TASK"
api GET "$T/$TASK"
[ "$(header X-Cache)" = hit ] || fail "warm cache: X-Cache $(header X-Cache)"

"$devenv" stop-pg "$BH_DEVENV_DIR" >/dev/null

for attempt in 1 2 3; do
    start=$(date +%s%N)
    api POST "$T" '{"title":"during the outage"}'
    ms=$(( ($(date +%s%N) - start) / 1000000 ))
    expect 503 "POST $attempt with Postgres down"
    [ "$(header Content-Type)" = application/problem+json ] || fail "503 is not a problem"
    [ -n "$(header Retry-After)" ] || fail "503 without Retry-After"
    [ "$ms" -lt 3000 ] || fail "POST $attempt took $ms ms with Postgres down"
done
pass "Postgres down: a write answers 503 problem + Retry-After in ${ms} ms"

# Past a few passes of auth's denylist reconciler (every 1 s), which cannot
# reach Postgres: that must not make auth distrust Redis and fall back to
# the missing Postgres for every request.
sleep 2.5
api GET "$T/$TASK"
expect 200 "cached GET with Postgres down"
[ "$(header X-Cache)" = hit ] || fail "cached GET with Postgres down: X-Cache $(header X-Cache)"
pass "Postgres down: the cached task is still served (X-Cache: hit), also after 2.5 s"

api GET /health/live
expect 200
api GET /health/ready
expect 503
[ "$(jget .checks.postgres.tasks)" = down ] || fail "readiness: $BODY"
pass "Postgres down: liveness 200, readiness 503 naming postgres"

"$devenv" start-pg "$BH_DEVENV_DIR" >/dev/null
for _ in $(seq 1 50); do
    api POST "$T" '{"title":"after the outage"}'
    [ "$STATUS" = 201 ] && break
    sleep 0.2
done
expect 201 "POST after Postgres came back"
pass "Postgres back: writes succeed again without a restart"
