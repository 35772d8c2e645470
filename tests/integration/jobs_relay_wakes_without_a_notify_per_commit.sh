# The relay's wake-up (platform/src/relay.c, migrations/platform/0004): a
# commit that writes events notifies only while a relay sleeps holding the
# sleep lock; a busy relay looks again by itself, and a relay going to sleep
# takes the lock, then looks once more. With the relay's polling set to a
# minute, events published one at a time to an idle relay and a burst from
# four threads are all delivered within seconds: no commit goes unseen.
source "$BH_SOURCE_DIR/tests/integration/jobs_lib.bash"
source "$BH_SOURCE_DIR/tests/lib/pg.sh"
export BULKHEAD_OUTBOX_POLL_MS=60000

probe_start A
for i in 1 2 3 4 5; do
    sleep 0.3 # the relay goes back to sleep
    probe publish 1
    wait_until 20 "event $i to wake the sleeping relay" equals "$i" field effects
done
pass "five events published to a sleeping relay woke it each time"

probe publish 3000 1 64 4
wait_until 40 "the burst" equals 3005 field effects
[ "$(field distinct)" = 3005 ] || fail "an event was handled twice: $(probe count)"
[ "$(probe backlog)" = 0 ] || fail "events left in the outbox"
pass "3,000 events committed one per transaction while the relay was busy were all relayed"

# The trigger: a commit notifies while another session holds the sleep lock,
# and does not while none can (the lock held shared: no relay asleep).
bh_stop "$PID_A"
insert_listening() {
    psql "$BH_PG_ADMIN_URL" -qAtX -v ON_ERROR_STOP=1 -c "LISTEN bh_outbox" \
        -c "INSERT INTO platform.outbox (id, type, aggregate_id, occurred_at, payload)
            SELECT gen_random_uuid(), 'probe.lockcheck$PROBE_RUN', 'x', now(), '{}'::jsonb" \
        -c "SELECT 1" 2>&1
}
pg_hold_open
pg_hold "SELECT pg_advisory_lock(7090880081620430712);"
asleep=$(insert_listening)
pg_hold "SELECT pg_advisory_unlock(7090880081620430712);"
pg_hold "SELECT pg_advisory_lock_shared(7090880081620430712);"
busy=$(insert_listening)
pg_hold_close
pg "DELETE FROM platform.outbox WHERE type = 'probe.lockcheck$PROBE_RUN'" >/dev/null
grep -q 'notification "bh_outbox"' <<<"$asleep" || fail "no notification for a sleeping relay: $asleep"
grep -q 'notification' <<<"$busy" && fail "a commit notified while no relay could be asleep: $busy"
pass "an outbox commit notifies only while a relay may be asleep"
