# Redis stops while transactions keep writing events: every write still
# commits (the outbox is in Postgres), the events wait in the outbox, the
# relay keeps retrying behind the Redis breaker, and once Redis is back every
# event is delivered and handled exactly once.
source "$BH_SOURCE_DIR/tests/integration/jobs_lib.bash"
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
bh_stop "$PID_A"
pass "after Redis came back, all 400 events were delivered and handled once"
