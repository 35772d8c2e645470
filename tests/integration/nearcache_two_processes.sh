#!/usr/bin/env bash
# The near cache (platform/nearcache.h) across two server processes sharing
# one Redis: reads served from process memory never outlive a change made in
# the other process — a task update, a membership removal, a logout — and
# when the invalidation connection drops, the cache empties. No sleeps
# between the change and the read that must see it: the bound is what Redis
# and the kernel take to carry one invalidation message.
source "$BH_SOURCE_DIR/tests/lib/common.sh"
source "$BH_SOURCE_DIR/tests/lib/tasks.sh"

: "${REDIS_PORT:?}" "${BH_REDIS_ADMIN_PASSWORD:?}"
rcli() { redis-cli -p "$REDIS_PORT" --user admin --pass "$BH_REDIS_ADMIN_PASSWORD" --no-auth-warning "$@"; }

bh_start
URL_A=$BH_URL
bh_start
URL_B=$BH_URL
on() { BH_URL=$1; } # which process the next api call goes to

# nc_metric URL NAME_AND_LABELS: one /metrics line of that process.
nc_metric() { BH_URL=$1 tasks_metric "$2"; }
hits_b() { nc_metric "$URL_B" "bulkhead_redis_nearcache_requests_total{user=\"$1\",result=\"hit\"}"; }

# Both processes track their prefixes before anything is read.
for u in "$URL_A" "$URL_B"; do
  for i in $(seq 1 50); do
    [ "$(nc_metric "$u" 'bulkhead_redis_nearcache_tracking{user="tasks"}')" = 1 ] &&
      [ "$(nc_metric "$u" 'bulkhead_redis_nearcache_tracking{user="auth"}')" = 1 ] && break
    sleep 0.1
  done
  [ "$(nc_metric "$u" 'bulkhead_redis_nearcache_tracking{user="tasks"}')" = 1 ] || fail "$u does not track tasks:*"
done

on "$URL_A"
read -r TOKEN ORG _ _ <<<"$(tasks_signup nearcache)"
OWNER=$TOKEN
T="/v1/orgs/$ORG/tasks"
api POST "$T" '{"title":"near"}'
expect 201
TASK=$(jget .id)

# Warm B (the first read fills Redis, the second B's memory): the third
# read comes from B's memory (auth and tasks).
on "$URL_B"
api GET "$T/$TASK"
expect 200
api GET "$T/$TASK"
expect 200
before_tasks=$(hits_b tasks)
before_auth=$(hits_b auth)
api GET "$T/$TASK"
expect 200
[ "$(header X-Cache)" = hit ] || fail "warm read in B: X-Cache $(header X-Cache)"
[ "$(hits_b tasks)" -gt "$before_tasks" ] || fail "B read the task from Redis, not from its near cache"
[ "$(hits_b auth)" -gt "$before_auth" ] || fail "B read the denylist and role from Redis, not from its near cache"
pass "a warm read in B is answered from B's memory (task, denylist and role)"

# A task update in A is never served stale by B.
for i in 1 2 3 4 5; do
  on "$URL_A"
  api PATCH "$T/$TASK" "{\"title\":\"near $i\"}"
  expect 200
  on "$URL_B"
  api GET "$T/$TASK"
  expect 200
  [ "$(jget .title)" = "near $i" ] && [ "$(jget .version)" = $((i + 1)) ] ||
    fail "B served a stale task after update $i in A: $BODY"
  api GET "$T/$TASK"
  [ "$(jget .title)" = "near $i" ] || fail "B's second read after update $i: $BODY"
done
pass "five updates in A: each next read in B has the new version"

# A membership removed in A takes effect in B at once.
on "$URL_A"
new_user nearcache-member >/dev/null
MEMBER=$TOKEN
MEMBER_ID=$USER_ID
MEMBER_EMAIL=$EMAIL
TOKEN=$OWNER
add_member "$ORG" "$MEMBER_EMAIL" member
on "$URL_B"
TOKEN=$MEMBER
api GET "$T/$TASK"
expect 200 "member reads in B"
api GET "$T/$TASK"
expect 200 "member reads in B again (role now in B's near cache)"
on "$URL_A"
TOKEN=$OWNER
api DELETE "/v1/orgs/$ORG/members/$MEMBER_ID"
expect 204 "owner removes the member in A"
on "$URL_B"
TOKEN=$MEMBER
api GET "$T/$TASK"
expect 404 "a removed member's next read in B"
pass "a membership removed in A: the next request in B is refused"

# Logout in A: the very next request with that token in B is refused.
on "$URL_B"
TOKEN=$OWNER
api GET "$T/$TASK"
expect 200
api GET "$T/$TASK"
expect 200
on "$URL_A"
api POST /v1/auth/logout ''
[ "$STATUS" = 204 ] || [ "$STATUS" = 200 ] || fail "logout in A: $STATUS $BODY"
on "$URL_B"
api GET "$T/$TASK"
expect 401 "the logged-out token's next request in B"
pass "logout in A: the next request in B is refused"

# The invalidation connection drops: B empties its near cache.
on "$URL_A"
read -r TOKEN ORG2 _ _ <<<"$(tasks_signup nearcache-kill)"
api POST "/v1/orgs/$ORG2/tasks" '{"title":"kill"}'
TASK2=$(jget .id)
on "$URL_B"
api GET "/v1/orgs/$ORG2/tasks/$TASK2"
api GET "/v1/orgs/$ORG2/tasks/$TASK2"
expect 200
entries=$(nc_metric "$URL_B" 'bulkhead_redis_nearcache_entries{user="tasks"}')
[ "$entries" -gt 0 ] || fail "B's near cache holds nothing before the kill"
flushes=$(nc_metric "$URL_B" 'bulkhead_redis_nearcache_flushes_total{user="tasks"}')
ids=$(rcli CLIENT LIST | awk '/name=bh-nearcache-tasks /{ for (i = 1; i <= NF; i++) if ($i ~ /^id=/) print substr($i, 4) }')
[ -n "$ids" ] || fail "no invalidation connection named bh-nearcache-tasks in CLIENT LIST"
for id in $ids; do rcli CLIENT KILL ID "$id" >/dev/null; done
for i in $(seq 1 50); do
  [ "$(nc_metric "$URL_B" 'bulkhead_redis_nearcache_flushes_total{user="tasks"}')" -gt "$flushes" ] && break
  sleep 0.1
done
[ "$(nc_metric "$URL_B" 'bulkhead_redis_nearcache_flushes_total{user="tasks"}')" -gt "$flushes" ] ||
  fail "B did not notice its invalidation connection was killed"
[ "$(nc_metric "$URL_B" 'bulkhead_redis_nearcache_entries{user="tasks"}')" = 0 ] ||
  fail "B still holds entries after its invalidation connection was killed"
pass "CLIENT KILL of the invalidation connection empties B's near cache"

# It reconnects and serves correctly again, from Redis then from memory.
for i in $(seq 1 50); do
  [ "$(nc_metric "$URL_B" 'bulkhead_redis_nearcache_tracking{user="tasks"}')" = 1 ] && break
  sleep 0.1
done
[ "$(nc_metric "$URL_B" 'bulkhead_redis_nearcache_tracking{user="tasks"}')" = 1 ] || fail "B did not track again"
on "$URL_A"
api PATCH "/v1/orgs/$ORG2/tasks/$TASK2" '{"title":"after kill"}'
expect 200
on "$URL_B"
api GET "/v1/orgs/$ORG2/tasks/$TASK2"
[ "$(jget .title)" = "after kill" ] || fail "B after reconnecting: $BODY"
pass "B tracks again after the drop and sees A's next update"
