# shellcheck shell=bash
# Helpers for the group-commit tests (sourced after common.sh, tasks.sh and
# pg.sh): a held batch of task creates, and creates queued behind it.
#
#   gc_hold_setup ORG       a trigger makes inserts of ORG's tasks titled
#                           "held<K> ..." wait for advisory lock K (1..3),
#                           which the held session takes now
#   gc_release K            the held session lets lock K go
#   gc_hold K               ... and takes it again
#   gc_hold_lost            after Postgres stopped: the held session died
#                           with it; forget it (nothing to close)
#   gc_post NAME JSON       POSTs JSON as a task of $ORG in the background;
#                           its status, body and headers land in
#                           $BH_TMP/gc.NAME.{status,body,headers}
#   gc_wait_waiting N       waits until N creates wait for the batch in flight
#   gc_wait_insert_held N   waits until N task INSERTs wait on a lock
#   gc_finish NAME...       waits for those POSTs to end
#   gc_status NAME / gc_body NAME / gc_header NAME HEADER

GC_LOCK=74720

gc_hold_setup() {
  local fn="tasks.test_gc_hold_$$"
  pg_hold_open
  pg "CREATE FUNCTION $fn() RETURNS trigger LANGUAGE plpgsql AS
        \$f\$ BEGIN PERFORM pg_advisory_xact_lock_shared($GC_LOCK,
                             substr(NEW.title, 5, 1)::int); RETURN NEW; END \$f\$;
      CREATE TRIGGER test_gc_hold_$$ BEFORE INSERT ON tasks.tasks FOR EACH ROW
        WHEN (NEW.org_id = '$1' AND NEW.title ~ '^held[1-3] ') EXECUTE FUNCTION $fn();" >/dev/null
  bh_on_exit "pg 'DROP TRIGGER IF EXISTS test_gc_hold_$$ ON tasks.tasks; DROP FUNCTION IF EXISTS $fn()' >/dev/null 2>&1"
  pg_hold "SELECT pg_advisory_lock($GC_LOCK, 1), pg_advisory_lock($GC_LOCK, 2), pg_advisory_lock($GC_LOCK, 3);"
}

gc_release() { pg_hold "SELECT pg_advisory_unlock($GC_LOCK, $1);"; }
gc_hold() { pg_hold "SELECT pg_advisory_lock($GC_LOCK, $1);"; }

gc_hold_lost() {
  local i
  for i in $(seq 1 100); do kill -0 "$BH_PG_HOLD_PID" 2>/dev/null || break; sleep 0.05; done
  exec {BH_PG_HOLD_FD}>&-
  BH_PG_HOLD_FD=
}

GC_PIDS=()
gc_post() {
  local f="$BH_TMP/gc.$1"
  curl -sS -o "$f.body" -D "$f.headers" -w '%{http_code}' -X POST \
    -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
    --data-binary "$2" "$BH_URL/v1/orgs/$ORG/tasks" >"$f.status" 2>/dev/null &
  GC_PIDS+=($!)
  BH_PIDS+=($!)
}

gc_wait_waiting() {
  local i
  for i in $(seq 1 400); do
    [ "$(tasks_metric bulkhead_tasks_creates_waiting)" = "$1" ] && return 0
    sleep 0.025
  done
  fail "expected $1 creates waiting for the batch in flight, found $(tasks_metric bulkhead_tasks_creates_waiting)"
}

gc_wait_insert_held() {
  local i
  for i in $(seq 1 400); do
    [ "$(pg_waiting '%INSERT INTO tasks.tasks%')" = "$1" ] && return 0
    sleep 0.025
  done
  fail "expected $1 task inserts waiting on a lock, found $(pg_waiting '%INSERT INTO tasks.tasks%')"
}

gc_finish() {
  local name
  wait "${GC_PIDS[@]}" 2>/dev/null || true
  GC_PIDS=()
  for name in "$@"; do
    [ -s "$BH_TMP/gc.$name.status" ] || fail "create $name got no answer"
    contract_record POST "/v1/orgs/$ORG/tasks" "$(gc_status "$name")" \
      "$BH_TMP/gc.$name.headers" "$BH_TMP/gc.$name.body"
  done
}

gc_status() { cat "$BH_TMP/gc.$1.status"; }
gc_body() { cat "$BH_TMP/gc.$1.body"; }
gc_header() {
  grep -i "^$2:" "$BH_TMP/gc.$1.headers" | head -1 | cut -d: -f2- | sed 's/^ //' | tr -d '\r'
}
