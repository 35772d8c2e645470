#!/usr/bin/env bash
# Graceful degradation of the task cache: with Redis stopped, GET one task
# answers from Postgres (X-Cache: bypass), writes still work, nothing is a
# 5xx; when Redis returns, the cache is used again without a restart, and
# an entry Redis kept across its outage is never served stale.
source "$BH_SOURCE_DIR/tests/lib/common.sh"
source "$BH_SOURCE_DIR/tests/lib/tasks.sh"
: "${BH_DEVENV_DIR:?}"
devenv=$BH_SOURCE_DIR/scripts/devenv
restore() { "$devenv" start-redis "$BH_DEVENV_DIR" >/dev/null 2>&1 || true; }
bh_on_exit restore

bh_start serve --no-workers

read -r TOKEN ORG _ _ <<<"$(tasks_signup degrade)"
T="/v1/orgs/$ORG/tasks"
api POST "$T" '{"title":"before the outage"}'
expect 201
TASK=$(jget .id)
api GET "$T/$TASK"
api GET "$T/$TASK"
[ "$(header X-Cache)" = hit ] || fail "warm cache: X-Cache $(header X-Cache)"
rcli() { redis-cli -p "$REDIS_PORT" --user admin --pass "$BH_REDIS_ADMIN_PASSWORD" --no-auth-warning "$@"; }
old_entry=$(rcli GET "tasks:task:$TASK")
[ -n "$old_entry" ] || fail "no cache entry before the outage"

"$devenv" stop-redis "$BH_DEVENV_DIR" >/dev/null
for i in $(seq 1 10); do
  start=$(date +%s%N)
  api GET "$T/$TASK"
  ms=$(( ($(date +%s%N) - start) / 1000000 ))
  expect 200 "GET $i with Redis down"
  [ "$(header X-Cache)" = bypass ] || fail "GET $i with Redis down: X-Cache $(header X-Cache)"
done
[ "$ms" -lt 500 ] || fail "a bypassed read took $ms ms (the breaker should fail fast)"
pass "Redis down: GET answers 200 from Postgres with X-Cache: bypass (last in ${ms} ms)"

api PATCH "$T/$TASK" '{"title":"during the outage"}'
expect 200 "PATCH with Redis down"
api GET "$T/$TASK"
expect 200
[ "$(jget .title)" = "during the outage" ] && [ "$(header X-Cache)" = bypass ] || fail "read-your-write: $BODY"
api POST "$T" '{"title":"created during the outage"}'
expect 201 "POST with Redis down"
api GET "$T"
expect 200 "list with Redis down"
pass "writes and lists work with Redis down; reads see the new state"

"$devenv" start-redis "$BH_DEVENV_DIR" >/dev/null
# A Redis with persistence comes back with the pre-outage entry; make sure
# this one does too, whatever its persistence settings.
rcli SET "tasks:task:$TASK" "$old_entry" PX 60000 >/dev/null
for _ in $(seq 1 50); do
  api GET "$T/$TASK"
  expect 200 "GET while Redis comes back"
  [ "$(header X-Cache)" != bypass ] && break
  sleep 0.2
done
[ "$(header X-Cache)" = miss ] || fail "Redis back: X-Cache $(header X-Cache) (the pre-outage entry must be gone)"
[ "$(jget .title)" = "during the outage" ] || fail "stale entry served after the outage: $BODY"
api GET "$T/$TASK"
[ "$(header X-Cache)" = hit ] && [ "$(jget .title)" = "during the outage" ] || fail "after recovery: $(header X-Cache) $BODY"
pass "Redis back: the cache recovers by itself, and the entry it kept from before the outage is not served"
