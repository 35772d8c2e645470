#!/usr/bin/env bash
# The plan limit on tasks (free plan: 50): past it, creating answers 402
# plan_limit_exceeded with the limit and the usage; at limit-1, parallel
# creates yield exactly one 201 (the org's counter row serialises them);
# deleting a task frees its place. The race is also held open on purpose:
# two creates at limit-1 are made to wait inside their transactions until
# both are in flight, and still only one task is committed.
source "$BH_SOURCE_DIR/tests/lib/common.sh"
source "$BH_SOURCE_DIR/tests/lib/tasks.sh"
source "$BH_SOURCE_DIR/tests/lib/pg.sh"

bh_start

read -r TOKEN ORG _ _ <<<"$(tasks_signup limited)"
T="/v1/orgs/$ORG/tasks"

# Fill up to one below the limit, which the first refusal tells us.
limit=""
for i in $(seq 1 1000); do
  api POST "$T" "{\"title\":\"t$i\"}"
  if [ "$STATUS" = 402 ]; then
    limit=$(jget .limit)
    [ "$(jget .code)" = plan_limit_exceeded ] || fail "code: $BODY"
    [ "$(jget .usage)" = "$limit" ] || fail "usage at the limit: $BODY"
    [ "$(jget .status)" = 402 ] && [ -n "$(jget .request_id)" ] || fail "problem: $BODY"
    break
  fi
  expect 201 "task $i under the limit"
  last=$(jget .id)
done
[ -n "$limit" ] && [ "$limit" -ge 1 ] || fail "no plan limit reached after 1000 tasks"
[ "$i" = $((limit + 1)) ] || fail "refused at task $i with limit $limit"
pass "creating past the plan limit ($limit) answers 402 plan_limit_exceeded with limit and usage"

api DELETE "$T/$last"
expect 204
api POST "$T" '{"title":"the freed place"}'
expect 201 "a deleted task frees its place"
api DELETE "$T/$(jget .id)"
expect 204
pass "deleting a task frees its place under the limit"

# At limit-1, the race with its window held open: a trigger (for this org's
# "held" titles only) makes each insert wait for an advisory lock this test
# holds, so both creates are inside their transactions at once, whatever
# the machine's timing. Then the lock goes and the database must hold
# exactly the limit.
key=$$
fn="tasks.test_hold_insert_$$"
pg_hold_open # first: its exit hook must end the lock before the trigger is dropped
pg "CREATE FUNCTION $fn() RETURNS trigger LANGUAGE plpgsql AS
      \$f\$ BEGIN PERFORM pg_advisory_xact_lock_shared(74718, $key); RETURN NEW; END \$f\$;
    CREATE TRIGGER test_hold_insert_$$ BEFORE INSERT ON tasks.tasks FOR EACH ROW
      WHEN (NEW.org_id = '$ORG' AND NEW.title LIKE 'held %') EXECUTE FUNCTION $fn();" >/dev/null
bh_on_exit "pg 'DROP TRIGGER IF EXISTS test_hold_insert_$$ ON tasks.tasks; DROP FUNCTION IF EXISTS $fn()' >/dev/null"
pg_hold "SELECT pg_advisory_lock(74718, $key);"
pids=()
rm -f "$BH_TMP"/race.*
waiting() { [ "$(pg_waiting '%INSERT INTO tasks.tasks%')" = "$1" ]; }
# The second create starts once the first waits: a server thread that
# accepted both connections before blocking in the first would otherwise
# hold the second back, and the race would never happen.
for k in 1 2; do
  curl -sS -o /dev/null -w '%{http_code}\n' -X POST -H "Authorization: Bearer $TOKEN" \
    -H 'Content-Type: application/json' --data "{\"title\":\"held $k\"}" "$BH_URL$T" \
    >"$BH_TMP/race.$k" &
  pids+=($!)
  for i in $(seq 1 200); do waiting "$k" && break; sleep 0.025; done
  waiting "$k" || fail "create $k did not reach its insert"
done
pg_hold "SELECT pg_advisory_unlock(74718, $key);"
wait "${pids[@]}"
codes=$(cat "$BH_TMP"/race.* | sort | tr '\n' ' ')
[ "$codes" = "201 402 " ] || fail "two held creates at limit-1 answered: $codes"
[ "$(pg "SELECT count(*) FROM tasks.tasks WHERE org_id = '$ORG'")" = "$limit" ] ||
  fail "the org holds $(pg "SELECT count(*) FROM tasks.tasks WHERE org_id = '$ORG'") tasks, limit $limit"
[ "$(pg "SELECT tasks FROM tasks.org_counters WHERE org_id = '$ORG'")" = "$limit" ] ||
  fail "the org's counter is not $limit"
pass "two creates held inside their transactions at limit-1: one 201, one 402, $limit tasks in the database"
api GET "$T?limit=1"
api DELETE "$T/$(jget '.data[0].id')"
expect 204

# post_burst N TITLE: N creates from one curl, all connections opened at
# once (so they overlap in the server), one status code a line in $BH_TMP/burst.
post_burst() {
  local args=()
  for k in $(seq 1 "$1"); do args+=(-o /dev/null "$BH_URL$T"); done
  curl -sS -Z --parallel-immediate --parallel-max "$1" -w '%{http_code}\n' -X POST \
    -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
    --data "{\"title\":\"$2\"}" "${args[@]}" >"$BH_TMP/burst"
}

# Back at limit-1: race eight creates, as fast as the machine lets them.
for round in 1 2 3; do
  post_burst 8 "race $round"
  created=$(grep -c '^201$' "$BH_TMP/burst" || true)
  refused=$(grep -c '^402$' "$BH_TMP/burst" || true)
  [ "$created" = 1 ] && [ "$refused" = 7 ] || fail "round $round: $created created, $refused refused: $(tr '\n' ' ' <"$BH_TMP/burst")"
  # Back to limit-1 for the next round.
  api GET "$T?limit=1"
  api DELETE "$T/$(jget '.data[0].id')"
  expect 204
done
pass "eight parallel creates at limit-1 yield exactly one 201 and seven 402 (three rounds)"

# A plan without a task limit counts nothing (no per-org lock); moving back
# to a limited plan must still see every task the org has.
set_plan() {
  psql "${BH_PG_ADMIN_URL:?}" -qAtX -v ON_ERROR_STOP=1 \
    -c "UPDATE billing.subscriptions SET plan_id = '$2' WHERE org_id = '$1'" >/dev/null
}
read -r TOKEN ORG _ _ <<<"$(tasks_signup unlimited)"
T="/v1/orgs/$ORG/tasks"
for i in 1 2; do api POST "$T" "{\"title\":\"limited $i\"}"; expect 201; done
set_plan "$ORG" business
post_burst 8 unlimited
[ "$(grep -c '^201$' "$BH_TMP/burst" || true)" = 8 ] ||
  fail "unlimited plan: $(tr '\n' ' ' <"$BH_TMP/burst")"
set_plan "$ORG" free
for i in $(seq 11 1000); do
  api POST "$T" "{\"title\":\"again $i\"}"
  [ "$STATUS" = 402 ] && break
  expect 201 "task $i under the limit"
done
[ "$i" = $((limit + 1)) ] && [ "$(jget .usage)" = "$limit" ] ||
  fail "after a plan without limit: refused at task $i (limit $limit): $BODY"
pass "tasks created under a plan without limit count when the limit returns"
