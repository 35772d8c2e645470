# A worker killed with SIGKILL in the middle of a job: the job stays leased,
# comes back when its lease expires, runs again on another worker, and its
# effect happens exactly once (the inbox absorbs the second run when the
# first had already committed).
source "$BH_SOURCE_DIR/tests/integration/jobs_lib.bash"
export BULKHEAD_JOBS_LEASE_MS=1500

# 1. Killed before its transaction committed: the rerun does the effect.
export PROBE_RUN=$(new_run)
PROBE_SLEEP_MS=60000 probe_start A
probe publish 1
wait_until 20 "the job to be leased" equals 1 stat in_flight
kill -KILL "$PID_A"
wait "$PID_A" 2>/dev/null || true
[ "$(field effects)" = 0 ] || fail "an effect was recorded by the killed worker"
probe_start B
wait_until 20 "the job to run again after its lease expired" equals 1 field effects
grep -q 'outlived their lease: 1 back in the queue' "$LOG_B" ||
    fail "the sweeper did not report the expired lease: $(cat "$LOG_B")"
[ "$(field skips)" = 0 ] || fail "unexpected inbox skip"
wait_until 10 "the queue to drain" equals 0 stat in_flight
bh_stop "$PID_B"
pass "killed before commit: the job ran again after its lease and its effect happened once"

# 2. Killed after its effect committed but before the acknowledgement: the
#    rerun finds the event in the inbox and skips the effect.
export PROBE_RUN=$(new_run)
PROBE_SLEEP_AFTER_MS=60000 probe_start C
probe publish 1
wait_until 20 "the first run's effect" equals 1 field effects
kill -KILL "$PID_C"
wait "$PID_C" 2>/dev/null || true
probe_start D
wait_until 20 "the job to run again" equals 1 field skips
[ "$(field effects)" = 1 ] || fail "the effect happened twice"
grep -q 'already handled: skipped' "$LOG_D" || fail "the rerun did not go through the inbox"
wait_until 10 "the queue to drain" equals 0 stat in_flight
[ "$(stat ready)" = 0 ] || fail "jobs left in the queue"
bh_stop "$PID_D"
pass "killed after commit: the job ran again and the inbox kept the effect single"
