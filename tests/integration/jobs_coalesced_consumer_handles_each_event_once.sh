# A coalesced consumer (a subscription with a batch handler) takes the
# deliveries queued right behind each other in batches, one transaction per
# batch, and still handles every event exactly once: through a worker killed
# in the middle of a batch, a second delivery of every event (a re-fan-out),
# and a poison event inside a batch, which alone ends in the dead letters.
# Jobs of another type on the same queue run as before.
source "$BH_SOURCE_DIR/tests/integration/jobs_lib.bash"
export BULKHEAD_JOBS_LEASE_MS=1500 PROBE_BATCH=16

noops_ran() { cat "$BH_TMP"/work-*.log | grep -o 'no-op job [^ ]* ran' | sort -u | wc -l; }
batches() { probe batches | tr ' ' '\n' | sed -n "s/^$1=//p"; }

# 1. A worker killed while two batches are in its hands: every job of both
#    comes back after its lease and runs once on the next worker; the no-op
#    jobs queued before and after the events run too.
probe enqueue-noop 30
probe publish 600 10 16
PROBE_SLEEP_MS=60000 probe_start A
wait_until 30 "the events to be relayed" equals 0 probe backlog
probe enqueue-noop 30
wait_until 30 "both workers to hold a batch" at_least 2 grep -c 'handling a batch of 16' "$LOG_A"
[ "$(stat in_flight)" -ge 32 ] || fail "the batches are not leased: $(stat in_flight) in flight"
kill -KILL "$PID_A"
wait "$PID_A" 2>/dev/null || true
[ "$(field effects)" = 0 ] || fail "the killed worker's batches took effect"
probe_start B
wait_until 60 "every event to be handled" equals 600 field effects
wait_until 30 "the queue to drain" equals 0 stat in_flight
[ "$(field distinct)" = 600 ] || fail "an event was handled twice: $(probe count)"
[ "$(field skips)" = 0 ] || fail "unexpected inbox skips: $(probe count)"
grep -q 'outlived their lease: [0-9]* back in the queue' "$LOG_B" ||
    fail "the killed worker's batches were not swept: $(cat "$LOG_B")"
[ "$(batches largest)" -gt 1 ] || fail "no batch ran: $(probe batches)"
wait_until 30 "the no-op jobs to run" equals 60 noops_ran
[ "$(stat ready)" = 0 ] && [ "$(stat dead)" = 0 ] || fail "jobs left: $(probe jobs stats)"
pass "killed mid-batch: each of 600 events handled once, in batches; 60 other jobs ran"

# 2. Every event delivered again: the batched inbox skips them all.
[ "$(probe resend)" = 600 ] || fail "could not mark the events unsent"
wait_until 60 "the second deliveries" equals 600 field skips
wait_until 30 "the queue to drain" equals 0 stat in_flight
[ "$(field effects)" = 600 ] && [ "$(field distinct)" = 600 ] ||
    fail "a redelivered event took effect again: $(probe count)"
bh_stop "$PID_B"
pass "a second delivery of all 600 events is absorbed by the batched inbox"

# 3. A poison event inside a batch: the batch runs again one by one, the
#    others take effect once, the poison one alone goes to the dead letters;
#    each aggregate's events take effect in order.
export PROBE_RUN=$(new_run)
export PROBE_POISON=37 PROBE_MAX_ATTEMPTS=2 BULKHEAD_JOBS_BACKOFF_BASE_MS=20
export BULKHEAD_JOBS_BACKOFF_MAX_MS=50 "$(concurrency_var)=1"
probe publish 200 10 8
probe_start C
wait_until 60 "the poison event to die" equals 1 stat dead
wait_until 30 "the other events" equals 199 field effects
wait_until 30 "the queue to drain" equals 0 stat in_flight
[ "$(field distinct)" = 199 ] || fail "an event was handled twice: $(probe count)"
[ "$(stat ready)" = 0 ] && [ "$(stat delayed)" = 0 ] || fail "jobs left: $(probe jobs stats)"
[ "$(probe order)" = 0 ] || fail "$(probe order) event(s) took effect out of order"
grep -q 'running them one by one' "$LOG_C" || fail "the failed batch was not split: $(cat "$LOG_C")"
[ "$(batches largest)" -gt 1 ] || fail "no batch ran: $(probe batches)"
bh_stop "$PID_C"
pass "a poison event in a batch dies alone; the other 199 take effect once, in order"
