# Helpers for the async backbone's tests (sourced by tests/integration/jobs_*.sh
# and tests/fault/*outbox*.sh; not a test itself: it does not end in .sh).
# They drive $BH_BUILD_DIR/jobs_probe (tests/integration/jobs_probe.c): a probe
# module whose handler writes a countable effect after bh_inbox_seen().
# Every test gets its own PROBE_RUN, hence its own event type and queue, so
# tests sharing one Postgres and one Redis never see each other's jobs.
source "$BH_SOURCE_DIR/tests/lib/common.sh"

PROBE="$BH_BUILD_DIR/jobs_probe"
[ -x "$PROBE" ] || skip "jobs_probe is not built"
[ -n "${DATABASE_URL:-}" ] || skip "no dev environment (run under scripts/with-devenv)"

# A fresh run name: [a-z0-9]{12}.
new_run() { od -An -tx1 -N6 /dev/urandom | tr -d ' \n'; }
export PROBE_RUN=${PROBE_RUN:-$(new_run)}
export BULKHEAD_LOG_LEVEL=${BULKHEAD_LOG_LEVEL:-info}

# The database is migrated by the harness (scripts/run-tests), once.
"$PROBE" setup 2>>"$BH_TMP/probe.log" || { cat "$BH_TMP/probe.log" >&2; fail "probe setup failed"; }

probe() { "$PROBE" "$@" 2>>"$BH_TMP/probe.log"; }

# The queue of this run, and its concurrency variable.
queue() { echo "probe_$PROBE_RUN"; }
concurrency_var() { echo "BULKHEAD_QUEUE_PROBE_${PROBE_RUN^^}_CONCURRENCY"; }

# probe_start NAME: starts `jobs_probe work` in the background with the
# caller's environment; sets PID_<NAME> and LOG_<NAME>.
probe_start() {
    local name=$1 log="$BH_TMP/work-$1.log" pid i
    "$PROBE" work >"$log" 2>&1 &
    pid=$!
    BH_PIDS+=("$pid")
    printf -v "PID_$name" '%s' "$pid"
    printf -v "LOG_$name" '%s' "$log"
    for i in $(seq 1 100); do
        grep -q 'jobs_probe: working' "$log" 2>/dev/null && return 0
        kill -0 "$pid" 2>/dev/null || { cat "$log" >&2; fail "worker $name exited at start"; }
        sleep 0.1
    done
    fail "worker $name did not start"
}

# field NAME: a figure of `jobs_probe count` (effects, distinct, skips).
field() { probe count | tr ' ' '\n' | sed -n "s/^$1=//p"; }

# stat COLUMN: this run's queue figure from `jobs stats` (ready, in_flight, delayed, dead).
stat() {
    local col
    case $1 in ready) col=2 ;; in_flight) col=3 ;; delayed) col=4 ;; dead) col=5 ;; esac
    probe jobs stats | awk -v q="$(queue)" -v c="$col" '$1 == q { print $c; found = 1 }
                                                   END { if (!found) print 0 }'
}

# wait_until SECONDS WHAT CMD...: polls CMD until it succeeds.
wait_until() {
    local secs=$1 what=$2 i
    shift 2
    for i in $(seq 1 $((secs * 10))); do
        "$@" && return 0
        sleep 0.1
    done
    fail "timed out after ${secs}s waiting for $what"
}

equals() { [ "$("${@:2}")" = "$1" ]; }
at_least() { [ "$("${@:2}")" -ge "$1" ]; }
