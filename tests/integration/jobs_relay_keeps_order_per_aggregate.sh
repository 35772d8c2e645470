# Two relays race over the outbox while four writers publish numbered events
# for 8 aggregates: each relay skips rows whose aggregate has an older unsent
# row held by the other, so the queue receives every aggregate's events in
# order. A single worker thread then drains the queue and the effects show
# no aggregate out of order.
source "$BH_SOURCE_DIR/tests/integration/jobs_lib.bash"
N=3000

# Relays only: no workers for this queue yet.
export "$(concurrency_var)=0" BULKHEAD_OUTBOX_BATCH=50
probe_start R1
probe_start R2
probe publish "$N" 3 8 4 || fail "publishing failed"
wait_until 60 "the outbox to drain" equals 0 probe backlog
wait_until 10 "$N queued jobs" equals "$N" stat ready
bh_stop "$PID_R1"
bh_stop "$PID_R2"

export "$(concurrency_var)=1" BULKHEAD_OUTBOX_RELAY=0
probe_start W
wait_until 60 "$N effects" equals "$N" field effects
[ "$(probe order)" = 0 ] || fail "$(probe order) event(s) handled out of order"
[ "$(field distinct)" = "$N" ] || fail "duplicate effects: $(probe count)"
bh_stop "$PID_W"
pass "two relays kept every aggregate's $N events in order"
