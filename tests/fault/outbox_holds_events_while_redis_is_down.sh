# Redis stops while transactions keep writing events: every write still
# commits (the outbox is in Postgres), the events wait in the outbox, the
# relay keeps retrying behind the Redis breaker, and once Redis is back every
# event is delivered and handled exactly once, also when 50 of them are
# relayed a second time (as after a relay that died before marking them).
source "$BH_SOURCE_DIR/tests/integration/jobs_lib.bash"
source "$BH_SOURCE_DIR/tests/lib/pg.sh"
: "${BH_DEVENV_DIR:?the fault tests need scripts/with-devenv (BH_DEVENV_DIR)}"
redis_up() { "$BH_SOURCE_DIR/scripts/devenv" start-redis "$BH_DEVENV_DIR" >/dev/null 2>&1; }
bh_on_exit redis_up

probe_start A
probe publish 100 || fail "publishing with Redis up failed"
wait_until 30 "the first 100 effects" equals 100 field effects

"$BH_SOURCE_DIR/scripts/devenv" stop-redis "$BH_DEVENV_DIR" >/dev/null 2>&1
probe publish 300 5 16 2 || fail "writes failed while Redis was down"
[ "$(probe backlog)" = 300 ] || fail "expected 300 events waiting in the outbox, got $(probe backlog)"
sleep 2 # the relay and the workers retry against a dead Redis meanwhile
[ "$(probe backlog)" = 300 ] || fail "events left the outbox while Redis was down"
[ "$(field effects)" = 100 ] || fail "effects appeared while Redis was down"
kill -0 "$PID_A" || fail "the worker died while Redis was down"
pass "with Redis down, 300 events committed and wait in the outbox"

redis_up || fail "Redis did not restart"
wait_until 60 "all 400 effects" equals 400 field effects
[ "$(field distinct)" = 400 ] || fail "duplicate effects: $(probe count)"
[ "$(probe backlog)" = 0 ] || fail "events left in the outbox"
pg "UPDATE platform.outbox SET sent_at = NULL WHERE seq IN (SELECT seq FROM platform.outbox
      WHERE type = 'probe.$PROBE_RUN' ORDER BY seq DESC LIMIT 50); NOTIFY bh_outbox;" >/dev/null
redelivered() { echo $(( $(field skips) + $(field effects) - 400 )); }
wait_until 30 "50 redeliveries" at_least 50 redelivered
[ "$(field effects)" = 400 ] && [ "$(field skips)" = 50 ] ||
    fail "50 events relayed again were not all absorbed by the inbox: $(probe count)"
bh_stop "$PID_A"
pass "after Redis came back, all 400 events were delivered and handled once (50 of them twice)"
