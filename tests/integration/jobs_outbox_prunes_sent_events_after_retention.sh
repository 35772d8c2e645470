# Sent outbox rows are kept for BULKHEAD_OUTBOX_RETENTION_S, then the relay
# deletes them; unsent rows are never pruned, however old.
source "$BH_SOURCE_DIR/tests/integration/jobs_lib.bash"
source "$BH_SOURCE_DIR/tests/lib/pg.sh"
export BULKHEAD_OUTBOX_RETENTION_S=5

probe_start A
probe publish 20
wait_until 20 "20 effects" equals 20 field effects
[ "$(probe outbox)" = 20 ] || fail "sent rows were pruned before their retention ran out"
wait_until 30 "the sent rows to be pruned" equals 0 probe outbox
grep -q 'relay: pruned [0-9]* sent event' "$LOG_A" || fail "the relay did not report its pruning"
[ "$(field effects)" = 20 ] || fail "pruning changed what was delivered"
pass "sent events were kept for the retention period, then pruned"

# An unsent event far older than the retention (Redis was down for a month)
# must outlive every prune. To keep it unsent while relays run, it waits
# behind an older event of its aggregate that this test holds locked (FOR
# KEY SHARE: the relays' FOR UPDATE SKIP LOCKED passes it by, and the lock
# survives the update that marks it unsent). A sent event just as old,
# written afterwards, shows when a prune has run.
tag="guard.prune.$PROBE_RUN"
uuid() { cat /proc/sys/kernel/random/uuid; }
HELD=$(uuid) OLD_UNSENT=$(uuid) OLD_SENT=$(uuid)
row() { echo "('$1', '$tag', '$2', now() - interval '$3', now() - interval '$3', '{}', now() - interval '$4')"; }
cols="id, type, aggregate_id, occurred_at, recorded_at, payload, sent_at"
pg "INSERT INTO platform.outbox ($cols) VALUES $(row "$HELD" "$tag" '0 s' '0 s')"
pg "INSERT INTO platform.outbox ($cols) VALUES $(row "$OLD_UNSENT" "$tag" '30 days' '0 s')"
pg_hold_open
# After the held session ends (exit hooks run in order), or it would wait on it.
bh_on_exit "pg \"DELETE FROM platform.outbox WHERE type = '$tag'\" >/dev/null"
pg_hold "BEGIN; SELECT 1 FROM platform.outbox WHERE id = '$HELD' FOR KEY SHARE;"
pg "UPDATE platform.outbox SET sent_at = NULL WHERE id IN ('$HELD', '$OLD_UNSENT')"
pg "INSERT INTO platform.outbox ($cols) VALUES $(row "$OLD_SENT" "$tag-sent" '30 days' '30 days')"
row_count() { pg "SELECT count(*) FROM platform.outbox WHERE id = '$1' AND ${2:-true}"; }
wait_until 30 "a prune to delete the old sent event" equals 0 row_count "$OLD_SENT"
[ "$(row_count "$OLD_UNSENT" 'sent_at IS NULL')" = 1 ] ||
    fail "a prune deleted an unsent event 30 days past the retention"
[ "$(row_count "$HELD" 'sent_at IS NULL')" = 1 ] || fail "the held event changed"
pg_hold_close
bh_stop "$PID_A"
pass "a prune deleted a 30-day-old sent event and kept a 30-day-old unsent one"
