# A handler that always fails: the job is retried with exponential backoff
# and full jitter (each delay drawn from [0, base * 2^(n-1)]), lands in the
# dead letters after its last attempt with the error and the attempt
# history, and `bulkhead jobs retry` puts it back; `retry --all` and
# `purge-dead` work on every dead job.
source "$BH_SOURCE_DIR/tests/integration/jobs_lib.bash"
export BULKHEAD_JOBS_BACKOFF_BASE_MS=100 PROBE_MAX_ATTEMPTS=4
export PROBE_FAIL_FILE="$BH_TMP/fail"
touch "$PROBE_FAIL_FILE"

probe_start A
probe publish 1
wait_until 30 "the job to die" equals 1 stat dead
[ "$(field effects)" = 0 ] || fail "a failing handler had an effect"

"$BH_BIN" jobs dead --queue "$(queue)" --json >"$BH_TMP/dead.json" || fail "jobs dead failed"
BODY=$(cat "$BH_TMP/dead.json")
[ "$(jget 'select(.queue != null) | .attempts')" = 4 ] || fail "expected 4 attempts: $BODY"
jget '.last_error' | grep -q 'handler returned service_unavailable' || fail "no last error: $BODY"
[ "$(jget '.history | length')" = 4 ] || fail "expected 4 history entries: $BODY"
[ "$(jget '.type')" = "event:probe.$PROBE_RUN" ] || fail "wrong type: $BODY"
# Retry n waited retry_in_ms, drawn from [0, 100 * 2^(n-1)]: the bound
# doubles each time, and every wait was at least the delay drawn.
jq -e '.history as $h
       | [range(0; 3) | . as $i
          | ($h[$i].retry_in_ms >= 0) and ($h[$i].retry_in_ms <= (100 * pow(2; $i)))
            and ($h[$i + 1].at - $h[$i].at >= $h[$i].retry_in_ms)]
       | all' <<<"$BODY" >/dev/null || fail "retry delays out of their backoff bounds: $BODY"
[ "$(jget '.history[3].retry_in_ms')" = null ] || fail "the last failure scheduled a retry"
grep -q 'moved to the dead letters' "$LOG_A" || fail "no dead-letter log line"
pass "after 4 failed attempts with backoff bounds 100, 200, 400 ms the job is a dead letter"

# Fixed: retry it by id.
rm -f "$PROBE_FAIL_FILE"
id=$(jget '.id')
"$BH_BIN" jobs retry "$id" | grep -q 'retried 1 job' || fail "jobs retry failed"
wait_until 20 "the retried job to run" equals 1 field effects
[ "$(stat dead)" = 0 ] || fail "the dead letter is still there"
"$BH_BIN" jobs retry "$id" >/dev/null 2>&1 && fail "retrying a job that is not dead succeeded"
pass "bulkhead jobs retry ID brought it back and it ran once"

# Two more die; retry --all brings both back.
touch "$PROBE_FAIL_FILE"
probe publish 2
wait_until 30 "two jobs to die" equals 2 stat dead
rm -f "$PROBE_FAIL_FILE"
"$BH_BIN" jobs retry --all --queue "$(queue)" | grep -q 'retried 2 job' || fail "retry --all failed"
wait_until 20 "the retried jobs to run" equals 3 field effects
pass "bulkhead jobs retry --all brought every dead job back"

# One more dies; purge-dead deletes it.
touch "$PROBE_FAIL_FILE"
probe publish 1
wait_until 30 "a job to die" equals 1 stat dead
"$BH_BIN" jobs purge-dead --queue "$(queue)" | grep -q 'purged 1 dead job' || fail "purge failed"
[ "$(stat dead)" = 0 ] || fail "purge left dead jobs"
[ "$("$BH_BIN" jobs dead --queue "$(queue)" --json | wc -l)" = 0 ] || fail "dead jobs still listed"
bh_stop "$PID_A"
pass "bulkhead jobs purge-dead deleted the dead letters"
