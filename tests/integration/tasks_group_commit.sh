#!/usr/bin/env bash
# Group commit of task creates (docs/adr/0007-group-commit.md): creates that
# arrive while a create's transaction is in flight wait, then run together
# as one transaction. A first create is held inside its INSERT (a trigger
# waits for an advisory lock this test holds) while three more queue behind
# it, so the batch forms whatever the machine's timing. Each batched create
# gets its own 201 with its own task, exactly one task.created event with
# its own request's trace, and the batch shows in /metrics. A batch with one
# row Postgres refuses (a project of another org) answers that create 422
# on project_id and creates the others. A limit that returns after a period
# without one still counts every task (also covered by tasks_plan_limit).
source "$BH_SOURCE_DIR/tests/lib/common.sh"
source "$BH_SOURCE_DIR/tests/lib/tasks.sh"
source "$BH_SOURCE_DIR/tests/lib/pg.sh"
source "$BH_SOURCE_DIR/tests/lib/group_commit.sh"

# A held statement must outlast a loaded machine's queueing of the others.
export BULKHEAD_DB_STATEMENT_TIMEOUT_MS=120000
bh_start serve --no-workers

set_plan() { pg "UPDATE billing.subscriptions SET plan_id = '$2' WHERE org_id = '$1'" >/dev/null; }

read -r OTHER_TOKEN OTHER_ORG _ _ <<<"$(tasks_signup gc-other)"
TOKEN=$OTHER_TOKEN
api POST "/v1/orgs/$OTHER_ORG/projects" '{"name":"not yours"}'
expect 201
FOREIGN_PROJECT=$(jget .id)

read -r TOKEN ORG USER _ <<<"$(tasks_signup gc)"
T="/v1/orgs/$ORG/tasks"
set_plan "$ORG" business
gc_hold_setup "$ORG"

# ---- a batch of three, formed behind a held create
before=$(tasks_metric 'bulkhead_tasks_create_batches_total{size="3-4"}')
gc_post a '{"title":"held1 first"}'
gc_wait_insert_held 1
gc_post b '{"title":"second","priority":"high"}'
gc_wait_waiting 1
gc_post c "{\"title\":\"third\",\"assignee_id\":\"$USER\"}"
gc_wait_waiting 2
gc_post d '{"title":"fourth","description":"d"}'
gc_wait_waiting 3
gc_release 1
gc_finish a b c d
for k in a b c d; do
  [ "$(gc_status $k)" = 201 ] || fail "create $k: $(gc_status $k) $(gc_body $k)"
done
after=$(tasks_metric 'bulkhead_tasks_create_batches_total{size="3-4"}')
[ "$after" -gt "$before" ] || fail "no batch of 3-4 creates counted ($before -> $after)"
pass "three creates queued behind one in flight ran as one batch: four 201s"

declare -A want=([a]="held1 first" [b]=second [c]=third [d]=fourth)
for k in a b c d; do
  BODY=$(gc_body $k)
  id=$(jget .id)
  [ "$(jget .title)" = "${want[$k]}" ] && [ "$(jget .org_id)" = "$ORG" ] &&
    [ "$(jget .created_by)" = "$USER" ] && [ "$(jget .version)" = 1 ] ||
    fail "create $k answered another task: $BODY"
  [ "$(gc_header $k Location)" = "$T/$id" ] || fail "create $k: Location $(gc_header $k Location)"
  [ "$(pg "SELECT count(*) FROM tasks.tasks WHERE id = '$id' AND title = '${want[$k]}'")" = 1 ] ||
    fail "task $k is not stored"
  rid=$(gc_header $k X-Request-Id)
  events=$(pg "SELECT count(*) FROM platform.outbox WHERE aggregate_id = '$id'
                 AND type = 'task.created' AND payload->'data'->>'task_id' = '$id'
                 AND payload->'data'->>'title' = '${want[$k]}'
                 AND payload->>'org_id' = '$ORG' AND payload->>'actor_id' = '$USER'
                 AND payload->'trace'->>'request_id' = '$rid'
                 AND payload->>'occurred_at' IS NOT NULL AND payload->>'id' = id::text")
  [ "$events" = 1 ] || fail "task $k: $events matching task.created events (request $rid): $(tasks_events "$id")"
done
BODY=$(gc_body b)
[ "$(jget .priority)" = high ] || fail "create b lost its priority: $BODY"
BODY=$(gc_body c)
[ "$(jget .assignee_id)" = "$USER" ] || fail "create c lost its assignee: $BODY"
[ "$(pg "SELECT count(*) FROM platform.outbox WHERE aggregate_id = '$(jget .id)' AND type = 'task.assigned'")" = 1 ] ||
  fail "create c has no task.assigned event"
[ "$(tasks_events "$(jget .id)" | jq -r .type | tr '\n' ' ')" = "task.created task.assigned " ] ||
  fail "create c's events are out of order: $(tasks_events "$(jget .id)")"
pass "each batched create has its own task and exactly one task.created event carrying its own request id"

# ---- one row of the batch refused: that create 422, the others 201
gc_hold 1
gc_post e '{"title":"held1 again"}'
gc_wait_insert_held 1
gc_post f "{\"title\":\"foreign\",\"project_id\":\"$FOREIGN_PROJECT\"}"
gc_wait_waiting 1
gc_post g '{"title":"fine one"}'
gc_wait_waiting 2
gc_post h '{"title":"fine two"}'
gc_wait_waiting 3
gc_release 1
gc_finish e f g h
[ "$(gc_status e)" = 201 ] && [ "$(gc_status g)" = 201 ] && [ "$(gc_status h)" = 201 ] ||
  fail "the good creates of a batch with a refused row: e $(gc_status e) g $(gc_status g) h $(gc_status h)"
[ "$(gc_status f)" = 422 ] || fail "foreign project in a batch: $(gc_status f) $(gc_body f)"
BODY=$(gc_body f)
[ "$(gc_header f Content-Type)" = application/problem+json ] || fail "422 is not a problem"
jq -e '.errors[] | select(.field == "project_id")' <<<"$BODY" >/dev/null ||
  fail "422 does not name project_id: $BODY"
[ "$(pg "SELECT count(*) FROM tasks.tasks WHERE org_id = '$ORG' AND title = 'foreign'")" = 0 ] ||
  fail "the refused create left a task"
for k in g h; do
  BODY=$(gc_body $k)
  [ "$(pg "SELECT count(*) FROM platform.outbox WHERE aggregate_id = '$(jget .id)' AND type = 'task.created'")" = 1 ] ||
    fail "create $k has no single task.created event"
done
pass "a batch with a project of another org: that create answers 422 on project_id, the others 201"

# ---- a limit that returns after a period without one still counts all
n=$(pg "SELECT count(*) FROM tasks.tasks WHERE org_id = '$ORG'")
set_plan "$ORG" free  # limit 50, counted from here, reseeding the counter
api POST "$T" '{"title":"counted"}'
expect 201
[ "$(pg "SELECT tasks FROM tasks.org_counters WHERE org_id = '$ORG'")" = $((n + 1)) ] ||
  fail "counter after limited: $(pg "SELECT tasks FROM tasks.org_counters WHERE org_id = '$ORG'"), $((n + 1)) tasks"
set_plan "$ORG" business
for i in 1 2 3; do api POST "$T" "{\"title\":\"uncounted $i\"}"; expect 201; done
[ "$(pg "SELECT tasks FROM tasks.org_counters WHERE org_id = '$ORG'")" = $((n + 1)) ] ||
  fail "a create without limit touched the counter"
set_plan "$ORG" free
api POST "$T" '{"title":"counted again"}'
expect 201
[ "$(pg "SELECT tasks FROM tasks.org_counters WHERE org_id = '$ORG'")" = $((n + 5)) ] ||
  fail "limited -> unlimited -> limited: counter $(pg "SELECT tasks FROM tasks.org_counters WHERE org_id = '$ORG'"), $((n + 5)) tasks"
pass "limited -> unlimited -> limited: the counter is not touched without a limit and counts every task when it returns"
