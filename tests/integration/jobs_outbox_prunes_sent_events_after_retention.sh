# Sent outbox rows are kept for BULKHEAD_OUTBOX_RETENTION_S, then the relay
# deletes them; unsent rows are never pruned.
source "$BH_SOURCE_DIR/tests/integration/jobs_lib.bash"
export BULKHEAD_OUTBOX_RETENTION_S=5

probe_start A
probe publish 20
wait_until 20 "20 effects" equals 20 field effects
[ "$(probe outbox)" = 20 ] || fail "sent rows were pruned before their retention ran out"
wait_until 30 "the sent rows to be pruned" equals 0 probe outbox
grep -q 'relay: pruned [0-9]* sent event' "$LOG_A" || fail "the relay did not report its pruning"
[ "$(field effects)" = 20 ] || fail "pruning changed what was delivered"
bh_stop "$PID_A"
pass "sent events were kept for the retention period, then pruned"
