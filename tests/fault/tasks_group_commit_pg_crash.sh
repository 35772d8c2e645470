#!/usr/bin/env bash
# Postgres goes away while a batch of task creates is in flight (group
# commit, docs/adr/0007-group-commit.md): the batch is held inside its
# INSERT (a trigger waits for an advisory lock this test holds), more
# creates queue behind it, then Postgres crashes (stopped in immediate
# mode). Every create of the batch, and every one queued behind it,
# answers 503 problem+json; when Postgres is
# back none of their tasks or events exists (all or nothing), and the next
# creates succeed without a restart.
source "$BH_SOURCE_DIR/tests/lib/common.sh"
source "$BH_SOURCE_DIR/tests/lib/tasks.sh"
source "$BH_SOURCE_DIR/tests/lib/pg.sh"
source "$BH_SOURCE_DIR/tests/lib/group_commit.sh"
: "${BH_DEVENV_DIR:?}"
devenv=$BH_SOURCE_DIR/scripts/devenv
bh_on_exit '"$devenv" start-pg "$BH_DEVENV_DIR" >/dev/null 2>&1'
# A held statement must outlast a loaded machine's queueing of the others.
export BULKHEAD_DB_STATEMENT_TIMEOUT_MS=120000
BULKHEAD_DB_POOL_WAIT_MS=500 bh_start serve --no-workers

read -r TOKEN ORG _ _ <<<"$(tasks_signup gc-crash)"
T="/v1/orgs/$ORG/tasks"
pg "UPDATE billing.subscriptions SET plan_id = 'business' WHERE org_id = '$ORG'" >/dev/null
gc_hold_setup "$ORG"

# A first create holds the way while three queue; let it through, and the
# three run as one batch, held at its first row.
gc_post a '{"title":"held1 first"}'
gc_wait_insert_held 1
gc_post b '{"title":"held2 batch one"}'
gc_wait_waiting 1
gc_post c '{"title":"batch two"}'
gc_wait_waiting 2
gc_post d '{"title":"batch three"}'
gc_wait_waiting 3
before=$(tasks_metric 'bulkhead_tasks_create_batches_total{size="3-4"}')
gc_release 1
gc_wait_waiting 0
gc_wait_insert_held 1
[ "$(tasks_metric 'bulkhead_tasks_create_batches_total{size="3-4"}')" -gt "$before" ] ||
  fail "the three creates did not form one batch"
# Two more queue behind the batch in flight.
gc_post e '{"title":"queued one"}'
gc_wait_waiting 1
gc_post f '{"title":"queued two"}'
gc_wait_waiting 2

# A crash, not a shutdown: with a fast shutdown the held session may die
# first, its lock pass to the batch, and the batch commit before its own
# backend is told to stop (then 201 would be right). -m immediate ends
# every backend where it stands.
# The test cluster runs without synchronous commit (BH_DEVENV_FAST), so the
# first create's acknowledged commit may still sit in WAL buffers: a
# checkpoint makes it survive the crash as a synchronous commit would.
pg "CHECKPOINT" >/dev/null
BH_PG_STOP_MODE=immediate "$devenv" stop-pg "$BH_DEVENV_DIR" >/dev/null
gc_hold_lost
gc_finish a b c d e f
[ "$(gc_status a)" = 201 ] || fail "the create before the batch: $(gc_status a) $(gc_body a)"
for k in b c d e f; do
  [ "$(gc_status $k)" = 503 ] || fail "create $k with Postgres gone: $(gc_status $k) $(gc_body $k)"
  [ "$(gc_header $k Content-Type)" = application/problem+json ] || fail "create $k: 503 is not a problem"
done
pass "Postgres stopped under a batch in flight: its three creates and the two queued answer 503 problem+json"

"$devenv" start-pg "$BH_DEVENV_DIR" >/dev/null
for _ in $(seq 1 50); do
  api POST "$T" '{"title":"after the crash"}'
  [ "$STATUS" = 201 ] && break
  sleep 0.2
done
expect 201 "a create after Postgres came back"
api POST "$T" '{"title":"and another"}'
expect 201
for title in "held2 batch one" "batch two" "batch three" "queued one" "queued two"; do
  [ "$(pg "SELECT count(*) FROM tasks.tasks WHERE org_id = '$ORG' AND title = '$title'")" = 0 ] ||
    fail "a task of the failed batch exists: $title"
  [ "$(pg "SELECT count(*) FROM platform.outbox WHERE payload->'data'->>'title' = '$title'")" = 0 ] ||
    fail "an event of the failed batch exists: $title"
done
[ "$(pg "SELECT count(*) FROM tasks.tasks WHERE org_id = '$ORG'")" = 3 ] ||
  fail "the org holds $(pg "SELECT count(*) FROM tasks.tasks WHERE org_id = '$ORG'") tasks, not 3"
[ "$(pg "SELECT count(*) FROM platform.outbox WHERE payload->>'org_id' = '$ORG' AND type = 'task.created'")" = 3 ] ||
  fail "the org's task.created events are not exactly its 3 tasks"
pass "Postgres back: nothing of the failed batch was committed, and creates succeed again"
