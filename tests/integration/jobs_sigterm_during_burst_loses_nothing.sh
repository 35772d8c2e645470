# SIGTERM while a worker is busy with a burst of slow jobs: it stops taking
# jobs, lets those in flight finish within the grace period and hands the
# rest back to the queue; a second worker finishes the burst. No job is lost
# and none has its effect twice.
source "$BH_SOURCE_DIR/tests/integration/jobs_lib.bash"
N=200
export "$(concurrency_var)=4" PROBE_SLEEP_MS=150

# 1. A generous grace: the jobs in flight finish and are acknowledged.
export PROBE_RUN=$(new_run)
BULKHEAD_SHUTDOWN_GRACE_MS=10000 probe_start A
probe publish "$N" 5 16 2
wait_until 30 "the burst to be under way" at_least 8 field effects
bh_stop "$PID_A" || fail "worker A exited with an error: $(tail -5 "$LOG_A")"
grep -q 'handed back' "$LOG_A" && fail "jobs were handed back despite the grace period"
[ "$(stat in_flight)" = 0 ] || fail "jobs still leased after a graceful stop"
done_a=$(field effects)
[ "$done_a" -lt "$N" ] || fail "the burst ended before SIGTERM; nothing was tested"
PROBE_SLEEP_MS=0 probe_start B
wait_until 60 "all $N effects" equals "$N" field effects
[ "$(field distinct)" = "$N" ] || fail "duplicate effects: $(probe count)"
[ "$(field skips)" = 0 ] || fail "a finished job ran again: $(probe count)"
bh_stop "$PID_B"
pass "SIGTERM with grace: $done_a jobs finished on A, the rest on B, each once"

# 2. A grace shorter than a job: the jobs in flight are handed back at once
#    and run again elsewhere; the inbox absorbs the runs that had committed.
export PROBE_RUN=$(new_run) PROBE_SLEEP_MS=0 PROBE_SLEEP_AFTER_MS=400
BULKHEAD_SHUTDOWN_GRACE_MS=50 probe_start C
probe publish "$N" 5 16 2
wait_until 30 "the burst to be under way" at_least 8 field effects
bh_stop "$PID_C" || fail "worker C exited with an error: $(tail -5 "$LOG_C")"
grep -q 'handed back to their queue' "$LOG_C" || fail "nothing was handed back: $(tail -5 "$LOG_C")"
[ "$(stat in_flight)" = 0 ] || fail "jobs still leased after the stop"
PROBE_SLEEP_AFTER_MS=0 probe_start D
wait_until 60 "all $N effects" equals "$N" field effects
[ "$(field distinct)" = "$N" ] || fail "duplicate effects: $(probe count)"
[ "$(field skips)" -ge 1 ] || fail "no handed-back job ran again: $(probe count)"
wait_until 10 "the queue to drain" equals 0 stat in_flight
[ "$(stat ready)" = 0 ] || fail "jobs left in the queue"
bh_stop "$PID_D"
pass "SIGTERM past the grace: in-flight jobs were handed back, ran again, effects stayed single"
