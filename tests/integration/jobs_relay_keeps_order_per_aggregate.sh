# Two relays race over the outbox while four writers publish numbered events
# for 8 aggregates: each relay skips rows whose aggregate has an older unsent
# row held by the other, so the queue receives every aggregate's events in
# order. A single worker thread then drains the queue and the effects show
# no aggregate out of order. First, the skip itself, held open on purpose:
# an event waits as long as an older event of its aggregate is held by
# another relay, and goes once that one is sent.
source "$BH_SOURCE_DIR/tests/integration/jobs_lib.bash"
source "$BH_SOURCE_DIR/tests/lib/pg.sh"

# The older event is held by "another relay": this test's session keeps it
# locked (FOR KEY SHARE, which the relays' FOR UPDATE SKIP LOCKED passes by
# and which survives the update that marks it unsent). The newer event of
# the same aggregate must stay unsent while an event of another aggregate,
# written after both, is sent (so a relay pass has seen them).
export "$(concurrency_var)=0"
probe_start R3
tag="guard.order.$PROBE_RUN"
uuid() { cat /proc/sys/kernel/random/uuid; }
OLDER=$(uuid) NEWER=$(uuid) OTHER=$(uuid)
cols="id, type, aggregate_id, occurred_at, payload, sent_at"
pg "INSERT INTO platform.outbox ($cols) VALUES ('$OLDER', '$tag', '$tag', now(), '{}', now())"
pg "INSERT INTO platform.outbox ($cols) VALUES ('$NEWER', '$tag', '$tag', now(), '{}', now())"
pg_hold_open
# After the held session ends (exit hooks run in order), or it would wait on it.
bh_on_exit "pg \"DELETE FROM platform.outbox WHERE type = '$tag'\" >/dev/null"
pg_hold "BEGIN; SELECT 1 FROM platform.outbox WHERE id = '$OLDER' FOR KEY SHARE;"
pg "UPDATE platform.outbox SET sent_at = NULL WHERE id IN ('$OLDER', '$NEWER')"
pg "INSERT INTO platform.outbox ($cols) VALUES ('$OTHER', '$tag', '$tag-other', now(), '{}', NULL)"
unsent() { pg "SELECT count(*) FROM platform.outbox WHERE id = '$1' AND sent_at IS NULL"; }
wait_until 20 "the event of another aggregate to be sent" equals 0 unsent "$OTHER"
[ "$(unsent "$NEWER")" = 1 ] || fail "an event was relayed while an older one of its aggregate was unsent"
pg_hold "ROLLBACK;"
wait_until 20 "the held event and the one behind it to be sent" equals 0 unsent "$NEWER"
[ "$(unsent "$OLDER")" = 0 ] || fail "the older event is still unsent"
bh_stop "$PID_R3"
pass "an event waited behind an older event of its aggregate held by another relay"

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
