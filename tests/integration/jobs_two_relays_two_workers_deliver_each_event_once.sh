# Two processes, each with an outbox relay and a worker pool, share one
# Postgres and one Redis while 10,000 events are published: every event is
# relayed once and handled exactly once (10,000 distinct effects, and not a
# single redelivery skipped by the inbox: no event was sent twice). Then
# 200 of them are published again on purpose (their outbox rows marked
# unsent, as a relay that crashed before marking them would leave them):
# each comes back, the inbox absorbs it, and no effect happens twice.
source "$BH_SOURCE_DIR/tests/integration/jobs_lib.bash"
source "$BH_SOURCE_DIR/tests/lib/pg.sh"
N=10000
export "$(concurrency_var)=4"

probe_start A
probe_start B
start=$(date +%s)
probe publish "$N" 10 64 4 || fail "publishing failed"
wait_until 90 "$N effects" equals "$N" field effects
elapsed=$(( $(date +%s) - start ))
[ "$(field distinct)" = "$N" ] || fail "effects are not distinct: $(probe count)"
[ "$(field skips)" = 0 ] || fail "some events were delivered twice: $(probe count)"
[ "$(probe backlog)" = 0 ] || fail "events left in the outbox"
wait_until 10 "the queue to drain" equals 0 stat in_flight
[ "$(stat ready)" = 0 ] || fail "jobs left in the queue"

# Duplicate publish: the relays send these 200 events a second time.
D=200
pg "UPDATE platform.outbox SET sent_at = NULL WHERE seq IN (SELECT seq FROM platform.outbox
      WHERE type = 'probe.$PROBE_RUN' ORDER BY seq LIMIT $D); NOTIFY bh_outbox;" >/dev/null
redelivered() { echo $(( $(field skips) + $(field effects) - N )); }
wait_until 60 "$D redeliveries" at_least "$D" redelivered
wait_until 10 "the queue to drain" equals 0 stat in_flight
[ "$(field effects)" = "$N" ] || fail "a redelivered event was handled again: $(probe count)"
[ "$(field skips)" = "$D" ] || fail "expected $D inbox skips: $(probe count)"
[ "$(pg "SELECT count(*) FROM platform.jobs_probe_effect WHERE run = '$PROBE_RUN'")" = "$N" ] ||
    fail "effect rows in the database differ from $N"
[ "$(pg "SELECT count(*) FROM platform.inbox WHERE consumer = 'probe.$PROBE_RUN'")" = "$N" ] ||
    fail "inbox rows differ from $N"
pass "$D events published twice were each handled once (the inbox skipped $D)"
bh_stop "$PID_A"
bh_stop "$PID_B"
moved() { sed -n 's/.*relay: stopped after moving \([0-9]*\) event.*/\1/p' "$1"; }
a=$(moved "$LOG_A") b=$(moved "$LOG_B")
[ -n "$a" ] && [ -n "$b" ] || fail "a relay did not report"
# Informative only: relays of other processes on this database (other tests'
# servers) may move some of these events, and these relays some of theirs.
echo "relay A moved $a, relay B moved $b; all handled within ${elapsed}s"
pass "two relays and two workers delivered $N events, each handled exactly once (with $D redelivered)"
