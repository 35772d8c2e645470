#!/usr/bin/env bash
# Cache-aside for GET one task: miss then hit (X-Cache), entries keyed
# tasks:task:<id> with a TTL, invalidated after every committed change, no
# stale entry left by reads racing writes, and one Postgres read per hot key
# when its entry goes away under load (the single-flight lease). The lease
# rules are also checked with the race held open on purpose: a fill that
# lost its lease writes nothing, a lease someone else holds is not taken,
# and a read of another org's task fills nothing.
source "$BH_SOURCE_DIR/tests/lib/common.sh"
source "$BH_SOURCE_DIR/tests/lib/tasks.sh"
source "$BH_SOURCE_DIR/tests/lib/pg.sh"

: "${REDIS_PORT:?}" "${BH_REDIS_ADMIN_PASSWORD:?}"
rcli() { redis-cli -p "$REDIS_PORT" --user admin --pass "$BH_REDIS_ADMIN_PASSWORD" --no-auth-warning "$@"; }

BULKHEAD_TASKS_CACHE_TTL_MS=30000 bh_start

read -r TOKEN ORG _ _ <<<"$(tasks_signup cache)"
T="/v1/orgs/$ORG/tasks"
api POST "$T" '{"title":"cached"}'
expect 201
TASK=$(jget .id)

api GET "$T/$TASK"
expect 200
[ "$(header X-Cache)" = miss ] || fail "first read: X-Cache $(header X-Cache)"
first=$BODY
api GET "$T/$TASK"
[ "$(header X-Cache)" = hit ] || fail "second read: X-Cache $(header X-Cache)"
[ "$BODY" = "$first" ] || fail "a hit differs from the miss: $BODY vs $first"
[ "$(header ETag)" = '"v1"' ] || fail "ETag of a hit: $(header ETag)"
ttl=$(rcli PTTL "tasks:task:$TASK")
[ "$ttl" -gt 0 ] && [ "$ttl" -le 33000 ] || fail "entry TTL $ttl ms (configured 30000 +-10%)"
pass "miss then hit with the same body, under tasks:task:<id> with a TTL"

api PATCH "$T/$TASK" '{"title":"changed"}'
expect 200
[ "$(rcli EXISTS "tasks:task:$TASK")" = 0 ] || fail "PATCH left the entry in Redis"
api GET "$T/$TASK"
[ "$(header X-Cache)" = miss ] && [ "$(jget .title)" = changed ] && [ "$(jget .version)" = 2 ] ||
  fail "read after PATCH: $(header X-Cache) $BODY"
api DELETE "$T/$TASK"
expect 204
[ "$(rcli EXISTS "tasks:task:$TASK")" = 0 ] || fail "DELETE left the entry in Redis"
api GET "$T/$TASK"
expect 404 "a deleted task is not served from the cache"
pass "PATCH and DELETE invalidate after commit: the next read is a miss with the new state"

# Reads racing writes: four readers hammer the task while it is patched
# 40 times; afterwards the cache must hold the last version or nothing.
api POST "$T" '{"title":"raced"}'
RACED=$(jget .id)
for r in 1 2 3 4; do
  ( while [ ! -e "$BH_TMP/stop" ]; do
      curl -s -o /dev/null -H "Authorization: Bearer $TOKEN" "$BH_URL$T/$RACED"
    done ) &
  readers+=($!)
done
for i in $(seq 1 40); do
  api PATCH "$T/$RACED" "{\"title\":\"raced $i\"}"
  expect 200
done
touch "$BH_TMP/stop"
wait "${readers[@]}"
cached=$(rcli GET "tasks:task:$RACED")
if [ -n "$cached" ]; then
  [ "${cached%% *}" = 41 ] || fail "the cache kept version ${cached%% *} after version 41 was committed"
fi
api GET "$T/$RACED"
[ "$(jget .version)" = 41 ] && [ "$(jget .title)" = "raced 40" ] || fail "read after the race: $BODY"
pass "reads racing 40 writes leave no stale entry (the fill lease refuses old versions)"

# Stampede: the hot entry disappears while 64 requests want it at once.
api GET "$T/$RACED"
before=$(tasks_metric bulkhead_tasks_cache_db_loads_total)
rcli DEL "tasks:task:$RACED" >/dev/null
seq 1 64 | xargs -P 64 -I{} curl -s -o /dev/null -w '%{http_code}\n' \
  -H "Authorization: Bearer $TOKEN" "$BH_URL$T/$RACED" >"$BH_TMP/stampede"
after=$(tasks_metric bulkhead_tasks_cache_db_loads_total)
[ "$(grep -c '^200$' "$BH_TMP/stampede")" = 64 ] || fail "stampede answers: $(sort "$BH_TMP/stampede" | uniq -c)"
loads=$((after - before))
echo "# 64 concurrent reads of an expired hot key: $loads Postgres read(s)"
[ "$loads" -le 3 ] || fail "$loads Postgres reads for one expired key (single flight expected)"
pass "64 concurrent reads of an expired key cost $loads Postgres read(s), not 64"

# A fill whose lease went away while it read Postgres (a writer deletes the
# lease when it commits; or the lease expired) must not write. The reader is
# held inside its Postgres read by a table lock this test takes, the lease is
# deleted, then the reader goes on.
api POST "$T" '{"title":"lease lost"}'
LOST=$(jget .id)
rcli DEL "tasks:task:$LOST" >/dev/null
pg_hold_open
pg_hold "BEGIN; LOCK TABLE tasks.tasks IN ACCESS EXCLUSIVE MODE;"
curl -s -o "$BH_TMP/lost.body" -w '%{http_code}' -H "Authorization: Bearer $TOKEN" \
  "$BH_URL$T/$LOST" >"$BH_TMP/lost.code" &
reader=$!
for i in $(seq 1 200); do [ "$(rcli EXISTS "tasks:fill:$LOST")" = 1 ] && break; sleep 0.01; done
[ "$(rcli EXISTS "tasks:fill:$LOST")" = 1 ] || fail "the reader did not take the fill lease"
rcli DEL "tasks:fill:$LOST" >/dev/null
pg_hold "ROLLBACK;"
wait "$reader"
[ "$(cat "$BH_TMP/lost.code")" = 200 ] || fail "the held read answered $(cat "$BH_TMP/lost.code")"
[ "$(rcli EXISTS "tasks:task:$LOST")" = 0 ] ||
  fail "a fill without its lease wrote the cache: $(rcli GET "tasks:task:$LOST")"
pass "a fill that lost its lease while reading Postgres writes nothing to the cache"

# A lease someone else holds is not taken over (SET NX): the reader answers
# from Postgres without filling, and the holder's lease is untouched.
rcli SET "tasks:fill:$LOST" someone-else PX 10000 >/dev/null
api GET "$T/$LOST"
expect 200
[ "$(jget .title)" = "lease lost" ] || fail "read while another holds the lease: $BODY"
[ "$(rcli GET "tasks:fill:$LOST")" = someone-else ] || fail "the reader took another's fill lease"
[ "$(rcli EXISTS "tasks:task:$LOST")" = 0 ] || fail "a reader without the lease filled the cache"
rcli DEL "tasks:fill:$LOST" >/dev/null
pass "a lease held by another reader is neither taken nor filled over"

# Another org's task id with a cold cache: 404 as if it did not exist, and
# the lookup (id and org together) finds nothing to cache.
read -r OTHER OTHER_ORG _ _ <<<"$(tasks_signup cache-other)"
TOKEN=$OTHER api GET "/v1/orgs/$OTHER_ORG/tasks/$LOST"
expect 404 "another org's task"
[ "$(rcli EXISTS "tasks:task:$LOST")" = 0 ] || fail "reading another org's task id filled the cache"
[ "$(rcli EXISTS "tasks:fill:$LOST")" = 0 ] || fail "a refused read kept its fill lease"
pass "another org's task id, cache cold: 404 and nothing cached"
